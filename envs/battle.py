"""MAgent's battle (Zheng et al., 2018) as the mean-field code (Yang et al., 2018) and magent2's ``battle`` play it.

Two teams ("red", agents ``0 .. n-1``, and "blue", agents ``n .. 2n-1``) of identical soldiers on a square grid
whose border cells are walls. The default is the mean-field paper's game: a 40 x 40 map, 64 against 64 placed in two
8 x 8 blocks (every other cell, magent2's ``generate_map``), max hp 10, and the episode cut at magent2's
``max_cycles`` of 1000 steps (the mean-field code stops at 400). Cells are (x, y) = (column, row). (magent2's
PettingZoo ``battle_v4`` plays the same rules on a 45 x 45 map and by default without the minimap channels.)

Actions (21, magent2's order): 13 moves, the offsets (dx, dy) with dx^2 + dy^2 <= 4 listed row by row (``6`` is
staying put), then 8 attacks on the neighbouring cells, row by row (``MOVE_OFFSETS``, ``ATTACK_OFFSETS``).

One step, in magent2's order (``GridWorld::step``):

1. Attacks, one at a time in a random order. An attacker killed earlier in the order does nothing. An attack on a
   cell holding an opponent takes ``damage`` hp; the target dies when its hp falls below 0 (magent2's
   ``be_attack``: with hp 10, damage 2 and recovery 0.1 the 6th hit kills) and leaves the map at once, so later
   attacks on its cell hit nothing. Every attack pays ``attack_penalty``; the killing one also ``kill_reward``;
   a hit that does not kill earns ``attack_opponent_reward`` (magent2's ``attack`` rule fires on a last operation
   that is an attack, not a kill). An agent that dies gets ``dead_penalty`` in place of everything it earned this
   step (``be_attack`` overwrites its reward), plus ``attack_opponent_reward`` if it had hit without killing before.
2. Recovery: every surviving agent regains ``step_recover`` hp, capped at the maximum.
3. Moves, one at a time in agent order (red before blue): a move succeeds if its target cell is inside the walls
   and empty at that moment (agents moved earlier have left their cells and taken their targets); otherwise the
   agent stays. On maps larger than 99 x 99 magent2 moves the agents away from its parallel bands' edges first
   (``large_map_mode``); ``move_order`` gives the same order.
4. Rewards: ``step_reward`` plus the above. The episode terminates when a team has no agent left and is truncated
   after ``max_cycles`` steps.

The sequential rules run in parallel here: both orders are triangular (an agent's outcome depends only on agents
earlier in the order), so iterating the parallel update until it stops changing (``lax.while_loop``) gives the
sequential result exactly, in as many rounds as the longest chain of agents waiting on each other.

Observations (mean-field code / magent2 ``GridWorld.get_observation`` with ``minimap_mode``), flattened
``[N, 13 * 13 * 7 + 34]``: a 13 x 13 view centred on the agent (cells within distance 6) with channels (wall (the
border cells; cells off the map read 0, as in magent2), own team's presence, own team's hp / max hp, own team's
minimap, the same three for the opponents), then 34 features
(the agent's id in 10 binary digits, its last action one-hot (zeros before its first), its last reward, x / width,
y / height). The minimap channels hold the team's density over the map scaled to 13 x 13 cells of
``ceil(size / 13)`` map cells (each cell's count over the team's number of living agents; magent2 divides 0 by 0
once a team is gone, here the channel is then 0), plus 1 at the agent's own minimap cell. ``split_observation``
cuts the flat vector into (view, features).

Dead agents keep their slot (fixed capacity): their observations and rewards are zero and only staying put is
available to them (``avail_actions``); ``info["alive"]`` holds who lives after the step.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.config import require_positive_int
from jaxmarl_core.env import EnvParams, GroupedEnvironment, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete


def circle_offsets(radius: float, inner_radius: float) -> np.ndarray:
    """int32 [K, 2]: offsets (dx, dy) with inner_radius < distance < radius (magent2's ``CircleRange`` with odd
    width), row by row (dy, then dx, increasing)."""
    r = int(radius)
    return np.array([(dx, dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                     if inner_radius - 1e-8 < math.hypot(dx, dy) < radius + 1e-8], np.int32)


def view_mask(radius: int) -> np.ndarray:
    """bool [2r+1, 2r+1] ([row, col]): the cells of the square around an agent within its view circle."""
    mask = np.zeros((2 * radius + 1, 2 * radius + 1), bool)
    seen = circle_offsets(radius, 0.0) + radius
    mask[seen[:, 1], seen[:, 0]] = True
    return mask


MOVE_OFFSETS = circle_offsets(2.0, 0.0)  # speed 2: 13 cells, index 6 is (0, 0)
ATTACK_OFFSETS = circle_offsets(1.5, 0.5)  # attack range 1.5 without the centre: the 8 neighbours
NUM_MOVES, NUM_ATTACKS = len(MOVE_OFFSETS), len(ATTACK_OFFSETS)
NUM_ACTIONS = NUM_MOVES + NUM_ATTACKS
STAY = int(np.flatnonzero((MOVE_OFFSETS == 0).all(1))[0])
VIEW_RADIUS = 6
VIEW = 2 * VIEW_RADIUS + 1
VIEW_CHANNELS = 7
EMBEDDING_SIZE = 10
FEATURE_SIZE = EMBEDDING_SIZE + NUM_ACTIONS + 1 + 2
VIEW_MASK = view_mask(VIEW_RADIUS)  # [13, 13]
GAP = 3  # magent2's generate_map: the blocks' distance from the map's middle column
_NONE = np.iinfo(np.int32).max  # "no rank": later than every agent


@struct.dataclass
class BattleParams(EnvParams):
    max_hp: jax.Array  # float32 scalars
    damage: jax.Array
    step_recover: jax.Array
    step_reward: jax.Array
    kill_reward: jax.Array
    dead_penalty: jax.Array
    attack_penalty: jax.Array
    attack_opponent_reward: jax.Array


@struct.dataclass
class BattleState:
    pos: jax.Array  # int32 [N, 2]: (x, y), column and row
    hp: jax.Array  # float32 [N]
    alive: jax.Array  # bool [N]
    last_action: jax.Array  # int32 [N]: NUM_ACTIONS before the first step
    last_reward: jax.Array  # float32 [N]
    t: jax.Array  # int32 scalar: steps taken in this episode


def block_positions(map_size: int, n_per_side: int) -> np.ndarray | None:
    """int32 [2n, 2]: magent2's ``generate_map`` for n agents a side (a block of ceil(sqrt n) columns and rows,
    every other cell, filled column by column, left of the middle for red and right of it for blue), or None
    where the blocks do not fit inside the walls. With n = (0.2 * map_size)^2 it is magent2's map exactly."""
    k = math.isqrt(n_per_side - 1) + 1
    side = 2 * k
    ys = range((map_size - side) // 2, (map_size - side) // 2 + side, 2)
    lefts = range(map_size // 2 - GAP - side, map_size // 2 - GAP, 2)
    rights = range(map_size // 2 + GAP, map_size // 2 + GAP + side, 2)
    blocks = [[(x, y) for x in xs for y in ys][:n_per_side] for xs in (lefts, rights)]
    pos = np.array(blocks[0] + blocks[1], np.int32)
    return pos if (pos.min() >= 1 and pos.max() <= map_size - 2) else None


def fixed_point(update, start: jax.Array, aux):
    """Iterate ``x <- update(x)`` (``update(x) -> (new x, aux)``) from ``start`` (bool [N]) until x stops changing
    -> (x, the aux of x). For a triangular update (x_i depends only on the x_j earlier in some order) the fixed
    point is unique, so it is the one-at-a-time result, reached after as many rounds as the longest chain."""

    def body(carry):
        x, _, _ = carry
        new, out = update(x)
        return new, x, out

    x, _, aux = jax.lax.while_loop(lambda c: jnp.any(c[0] != c[1]), body, (start, ~start, aux))
    return x, aux


def stable_sort_positions(keys: jax.Array) -> jax.Array:
    """int32 [n]: each element's place in a stable ascending sort of ``keys`` (uint32 [n]).

    XLA's CPU sort of a single array is several times faster than its key-value sort: sort the keys alone, find each
    key's place with a binary search, and only where two keys are equal (rare for random 32-bit keys) redo it with
    the key-value sort (a ``while_loop`` that runs no round when there is no tie, also under ``vmap``)."""
    n = keys.shape[0]
    ordered = jax.lax.sort(keys, is_stable=False)
    place = jnp.searchsorted(ordered, keys, side="left", method="scan_unrolled").astype(jnp.int32)
    tie = jnp.any(ordered[1:] == ordered[:-1])
    ids = jnp.arange(n, dtype=jnp.int32)

    def exact(carry):
        # the barrier ties the keys to the loop's state, so XLA does not hoist the sort out of the loop
        k, _ = jax.lax.optimization_barrier((keys, carry[0]))
        return jnp.zeros((n,), jnp.int32).at[jax.lax.sort_key_val(k, ids)[1]].set(ids), jnp.bool_(False)

    place, _ = jax.lax.while_loop(lambda c: c[1], exact, (place, tie))
    return place


def random_permutation(key: jax.Array, n: int) -> jax.Array:
    """int32 [n]: ``jax.random.permutation(key, n)`` bit for bit, faster on CPU: the same rounds of stable sorts by
    fresh random 32-bit keys, each done by ``stable_sort_positions`` and a scatter."""
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))  # as jax.random's shuffle
    x = jnp.arange(n, dtype=jnp.int32)
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        x = jnp.zeros_like(x).at[stable_sort_positions(jax.random.bits(subkey, (n,), jnp.uint32))].set(
            x, unique_indices=True)
    return x


def split_observation(obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[..., 13 * 13 * 7 + 34] -> (view [..., 13, 13, 7], features [..., 34])."""
    size = VIEW * VIEW * VIEW_CHANNELS
    return obs[..., :size].reshape(obs.shape[:-1] + (VIEW, VIEW, VIEW_CHANNELS)), obs[..., size:]


def row_layout(map_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int32 [13 * 13 * 7 + 34] x 3: for each column of an observation row, the agent's start it counts from in
    ``Battle.observe``'s source (0: its team's map at the window's corner, 1: its features, 2: its team's block of
    minimaps and the zero), the offset from that start, and for minimap columns the minimap cell (else -1)."""
    width = map_size + 2 * VIEW_RADIUS
    map_channel = {0: 0, 1: 1, 2: 2, 4: 3, 5: 4}  # view channel -> channel of the team's map
    start, offset, cell = [], [], []
    for dy, dx, c in itertools.product(range(VIEW), range(VIEW), range(VIEW_CHANNELS)):
        if c in (3, 6):  # own, then the opponents' minimap: the first and the second pair of the team's block
            start.append(2), offset.append((c == 6) * 2 * VIEW * VIEW + dy * VIEW + dx), cell.append(dy * VIEW + dx)
        elif VIEW_MASK[dy, dx]:
            start.append(0), offset.append((dy * width + dx) * 5 + map_channel[c]), cell.append(-1)
        else:  # outside the view circle: the zero closing the team's block
            start.append(2), offset.append(4 * VIEW * VIEW), cell.append(-1)
    start += [1] * FEATURE_SIZE
    offset += list(range(FEATURE_SIZE))
    cell += [-1] * FEATURE_SIZE
    return tuple(np.array(t, np.int32) for t in (start, offset, cell))


@dataclasses.dataclass(frozen=True)
class Battle(GroupedEnvironment):
    """Two teams of ``n_per_side`` agents on a ``map_size`` x ``map_size`` grid; reward constants and hp rules
    are ``BattleParams`` (defaults: magent2's battle)."""

    map_size: int = 40
    n_per_side: int = 64
    max_cycles: int = 1000

    def __post_init__(self):
        for name in ("map_size", "n_per_side", "max_cycles"):
            require_positive_int(self, name)
        if block_positions(self.map_size, self.n_per_side) is None:
            need = next(m for m in itertools.count(self.map_size + 1)
                        if block_positions(m, self.n_per_side) is not None)
            raise ValueError(f"battle: map_size={self.map_size} is too small for n_per_side={self.n_per_side} "
                             f"(two blocks of agents every other cell need map_size >= {need})")

    @property
    def name(self) -> str:
        return "battle"

    @property
    def num_agents(self) -> int:
        return 2 * self.n_per_side

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def default_params(self) -> BattleParams:
        f = jnp.float32
        return BattleParams(max_hp=f(10.0), damage=f(2.0), step_recover=f(0.1), step_reward=f(-0.005),
                            kill_reward=f(5.0), dead_penalty=f(-0.1), attack_penalty=f(-0.1),
                            attack_opponent_reward=f(0.2))

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        obs = Box(-np.inf, np.inf, (VIEW * VIEW * VIEW_CHANNELS + FEATURE_SIZE,))
        return tuple(AgentGroup(team, self.n_per_side, obs, Discrete(NUM_ACTIONS)) for team in ("red", "blue"))

    @property
    def team(self) -> np.ndarray:
        """int32 [N]: 0 for red, 1 for blue."""
        return np.repeat(np.arange(2, dtype=np.int32), self.n_per_side)

    # -- episode -----------------------------------------------------------------------------------------------
    def initial_state(self, pos: jax.Array, params: BattleParams | None = None,
                      alive: jax.Array | None = None) -> BattleState:
        """A first state with agents at ``pos`` [N, 2] (distinct cells inside the walls), full hp, no last action;
        ``alive`` [N] (default all) leaves the others out."""
        params = self.default_params if params is None else params
        n = self.num_agents
        alive = jnp.ones((n,), bool) if alive is None else jnp.asarray(alive, bool)
        return BattleState(pos=jnp.asarray(pos, jnp.int32), hp=jnp.full((n,), params.max_hp, jnp.float32),
                           alive=alive, last_action=jnp.full((n,), NUM_ACTIONS, jnp.int32),
                           last_reward=jnp.zeros((n,), jnp.float32), t=jnp.zeros((), jnp.int32))

    def reset_env(self, key, params):
        state = self.initial_state(block_positions(self.map_size, self.n_per_side), params)
        return self.observe(state, params), state

    def step_env(self, key, state, actions, params):
        """actions int32 [N] -> TimeStep; the key orders the attacks."""
        actions = jnp.asarray(actions, jnp.int32)
        alive = state.alive
        team = jnp.asarray(self.team)
        rank = random_permutation(key, self.num_agents)  # attack order
        hit, kill, acted, killed, hp = self.resolve_attacks(state.pos, state.hp, alive, actions, rank, params)

        reward = jnp.full(alive.shape, params.step_reward)
        reward = jnp.where(acted, reward + jnp.where(kill, params.kill_reward + params.attack_penalty,
                                                     params.attack_penalty), reward)
        reward = jnp.where(killed, params.dead_penalty, reward)
        reward = jnp.where(hit & ~kill, reward + params.attack_opponent_reward, reward)
        reward = jnp.where(alive, reward, 0.0)

        survivors = alive & ~killed
        hp = jnp.where(survivors, jnp.minimum(params.max_hp, hp + params.step_recover), hp)
        pos = self.resolve_moves(state.pos, survivors, actions)

        counts = jax.ops.segment_sum(survivors.astype(jnp.int32), team, 2)
        terminated = jnp.any(counts == 0)
        t = state.t + 1
        new_state = BattleState(pos=pos, hp=hp, alive=survivors, last_action=jnp.where(alive, actions,
                                                                                       state.last_action),
                                last_reward=reward, t=t)
        return TimeStep(obs=self.observe(new_state, params), state=new_state, reward=reward.astype(jnp.float32),
                        terminated=terminated, truncated=(t >= self.max_cycles) & ~terminated,
                        info={"alive": survivors, "num_alive": counts})

    # -- rules -------------------------------------------------------------------------------------------------
    def occupancy(self, pos: jax.Array, alive: jax.Array, pad: int = 0) -> jax.Array:
        """int32 [(size + 2 pad)^2]: the living agent's index in each cell of the (padded, flattened) map, -1
        where there is none."""
        width = self.map_size + 2 * pad
        flat = jnp.where(alive, (pos[:, 1] + pad) * width + pos[:, 0] + pad, width * width)
        return jnp.full((width * width,), -1, jnp.int32).at[flat].set(
            jnp.arange(self.num_agents, dtype=jnp.int32), mode="drop")

    def resolve_attacks(self, pos, hp, alive, actions, rank, params):
        """Attacks in the order ``rank`` [N] (a permutation) -> (hit, kill, acted, killed: bool [N], hp [N]).

        acted: the agent attacked while alive; hit: its attack found an opponent; kill: that attack killed;
        killed: the agent died. Target t dies on its m_t-th hit, m_t = the least m with hp_t - m * damage < 0.
        Fixed point over ``acted``: given who acts, each target's attackers in rank order fix when it dies
        (``death_rank``), and an attacker acts if it was not dead before its turn."""
        team = jnp.asarray(self.team)
        size = self.map_size
        occ = self.occupancy(pos, alive)
        attacking = alive & (actions >= NUM_MOVES)
        slot = jnp.clip(actions - NUM_MOVES, 0, NUM_ATTACKS - 1)
        offsets = jnp.asarray(ATTACK_OFFSETS)
        # who attacks agent t from each neighbouring cell: the agent at pos_t - offset_k attacking with offset k
        src = pos[:, None, :] - offsets[None, :, :]
        src_cell = jnp.clip(src[..., 1], 0, size - 1) * size + jnp.clip(src[..., 0], 0, size - 1)
        attacker = occ[src_cell]  # [N, 8]
        a = jnp.maximum(attacker, 0)
        on_me = (attacker >= 0) & attacking[a] & (slot[a] == jnp.arange(NUM_ATTACKS)) & (team[a] != team[:, None])
        need = self._hits_to_kill(hp, params.damage)

        def death_rank(acted):
            """int32 [N] rank of the attack that kills each agent (``_NONE`` if none), and [N, 8] the place of
            each attacker of the agent among those that act (1-based, in rank order)."""
            valid = on_me & acted[a]
            r = jnp.where(valid, rank[a], _NONE)
            place = 1 + jnp.sum(r[:, None, :] < r[:, :, None], axis=-1)
            killer = valid & (place == need[:, None])
            return jnp.min(jnp.where(killer, r, _NONE), axis=1), place

        def update(acted):
            died_at, place = death_rank(acted)
            return attacking & (died_at > rank), (died_at, place)

        start = (rank, jnp.zeros(on_me.shape, jnp.int32))
        acted, (died_at, place) = fixed_point(update, attacking, start)
        killed = alive & (died_at < _NONE)
        target_cell = (pos[:, 1] + offsets[slot, 1]) * size + pos[:, 0] + offsets[slot, 0]
        target = occ[jnp.clip(target_cell, 0, size * size - 1)]
        tgt = jnp.maximum(target, 0)
        my_place = place[tgt, slot]
        hit = acted & (target >= 0) & (team[tgt] != team) & (my_place <= need[tgt])
        kill = hit & (my_place == need[tgt])
        hits_taken = jnp.minimum(jnp.sum(on_me & acted[a], axis=1), need)
        return hit, kill, acted, killed, hp - hits_taken.astype(jnp.float32) * params.damage

    @staticmethod
    def _hits_to_kill(hp, damage):
        """int32 [N]: the least m >= 1 with hp - m * damage < 0."""
        m = jnp.maximum(jnp.floor(hp / damage).astype(jnp.int32) + 1, 1)
        m = jnp.where(hp - (m - 1).astype(jnp.float32) * damage < 0, m - 1, m)
        m = jnp.where(hp - m.astype(jnp.float32) * damage >= 0, m + 1, m)
        return jnp.maximum(m, 1)

    def move_order(self, pos: jax.Array) -> jax.Array:
        """int32 [N]: each agent's place in magent2's move order (lower first): agent order, except that on maps
        larger than 99 x 99 the agents near the edges of its parallel bands of columns move after the others."""
        order = jnp.arange(self.num_agents, dtype=jnp.int32)
        cells = self.map_size * self.map_size
        if cells <= 99 * 99:
            return order
        bands = 16 if cells > 1000 * 1000 else 8
        width = (self.map_size + bands - 1) // bands
        x = pos[:, 0] % width
        return order + self.num_agents * ((x < 4) | (x > width - 4)).astype(jnp.int32)

    def resolve_moves(self, pos, alive, actions):
        """int32 [N, 2]: positions after the moves, one agent at a time in ``move_order``.

        Fixed point over ``moved``: agent i moves iff its target lies inside the walls, the target's occupant (if
        any) moved away earlier, and no agent earlier than i moved into it."""
        size = self.map_size
        order = self.move_order(pos)
        step = jnp.asarray(MOVE_OFFSETS)[jnp.clip(actions, 0, NUM_MOVES - 1)]
        target = pos + step
        inside = jnp.all((target >= 1) & (target <= size - 2), axis=1)
        tries = alive & (actions < NUM_MOVES) & (actions != STAY) & inside
        cell = jnp.where(tries, target[:, 1] * size + target[:, 0], 0)
        occupant = self.occupancy(pos, alive)[cell]
        k = jnp.maximum(occupant, 0)
        left_in_time = order[k] < order

        def update(moved):
            first_in = jnp.full((size * size,), _NONE, jnp.int32).at[cell].min(jnp.where(moved, order, _NONE))
            free = (occupant < 0) | (moved[k] & left_in_time)
            return tries & free & (first_in[cell] >= order), ()

        moved, _ = fixed_point(update, jnp.zeros_like(tries), ())
        return jnp.where(moved[:, None], target, pos)

    # -- observations ------------------------------------------------------------------------------------------
    def map_channels(self, state: BattleState, params: BattleParams, pad: int = 0) -> jax.Array:
        """float32 [S, S, 5] (S = size + 2 pad, [row, col]): walls, red presence, red hp / max, blue presence,
        blue hp / max; the padding is empty (off the map)."""
        size, width = self.map_size, self.map_size + 2 * pad
        walls = np.zeros((width, width, 1), np.float32)
        walls[pad:pad + size, pad:pad + size] = 1.0
        walls[pad + 1:pad + size - 1, pad + 1:pad + size - 1] = 0.0
        rows = jnp.where(state.alive, state.pos[:, 1] + pad, width)
        cols = state.pos[:, 0] + pad
        channel = 1 + 2 * jnp.asarray(self.team)
        agents = jnp.zeros((width, width, 5), jnp.float32)
        agents = agents.at[rows, cols, channel].set(1.0, mode="drop")
        agents = agents.at[rows, cols, channel + 1].set(state.hp / params.max_hp, mode="drop")
        return agents + jnp.asarray(walls) * jnp.asarray([1.0, 0, 0, 0, 0], jnp.float32)

    def observe(self, state: BattleState, params: BattleParams | None = None) -> jax.Array:
        """float32 [N, 13 * 13 * 7 + 34] (module docstring); zeros for dead agents.

        The whole row is one gather from a flat source: [2, S, S, 5] maps seen by each team (walls, own presence,
        own hp / max, the opponents' presence and hp; S = size + 12, padded), each team's block of minimaps (its
        density, its density + 1, the opponents' density, that + 1, then a zero: [4 * 13 * 13 + 1]) and the
        [N, 34] features. A column's index is one of the agent's three starts (its window's corner in its team's
        map, its features, its team's block; ``row_layout`` says which) plus the column's offset, plus 13 * 13
        where a minimap column is the agent's own minimap cell (the + 1 copy)."""
        params = self.default_params if params is None else params
        n, size, r = self.num_agents, self.map_size, VIEW_RADIUS
        width = size + 2 * r
        team_np = self.team
        team = jnp.asarray(team_np)
        walls = np.zeros((2, width, width, 5), np.float32)
        walls[:, r:r + size, r:r + size, 0] = 1.0
        walls[:, r + 1:r + size - 1, r + 1:r + size - 1, 0] = 0.0
        # each agent writes presence and hp into channels 1, 2 of its team's map and 3, 4 of the opponents'
        rows = jnp.tile(jnp.where(state.alive, state.pos[:, 1] + r, width), 4)
        cols = jnp.tile(state.pos[:, 0] + r, 4)
        seen_by = np.concatenate([team_np, team_np, 1 - team_np, 1 - team_np])
        channel = np.repeat(np.arange(1, 5, dtype=np.int32), n)
        hp = state.hp / params.max_hp
        ones = jnp.ones((n,), jnp.float32)
        maps = jnp.asarray(walls).at[seen_by, rows, cols, channel].set(jnp.concatenate([ones, hp, ones, hp]),
                                                                        mode="drop")

        scale = (size + VIEW - 1) // VIEW
        mini = state.pos // scale  # (x, y) minimap cells
        counts = jax.ops.segment_sum(state.alive.astype(jnp.float32), team, 2)
        density = jnp.zeros((2, VIEW * VIEW), jnp.float32).at[
            jnp.where(state.alive, team, 2), mini[:, 1] * VIEW + mini[:, 0]].add(1.0, mode="drop")
        density = density / jnp.maximum(counts, 1.0)[:, None]
        blocks = jnp.stack([jnp.concatenate([density[t], density[t] + 1.0, density[1 - t], density[1 - t] + 1.0,
                                             jnp.zeros((1,), jnp.float32)]) for t in (0, 1)])

        ids = jnp.arange(n, dtype=jnp.int32)
        embedding = ((ids[:, None] >> jnp.arange(EMBEDDING_SIZE)) & 1).astype(jnp.float32)
        features = jnp.concatenate([
            embedding, jax.nn.one_hot(state.last_action, NUM_ACTIONS, dtype=jnp.float32),
            state.last_reward[:, None], state.pos.astype(jnp.float32) / jnp.float32(size)], -1)

        source = jnp.concatenate([maps.reshape(-1), blocks.reshape(-1), features.reshape(-1)])
        n_maps, n_blocks = maps.size, blocks.size
        # the per-agent terms as [4, N] arrays behind a barrier: XLA would otherwise recompute them (the minimap
        # cell's floor division included) for each of the row's 1,217 columns inside the gather's loop
        corner, own_features, own_block, own_cell = jax.lax.optimization_barrier(jnp.stack([
            (team * width + state.pos[:, 1]) * (width * 5) + state.pos[:, 0] * 5,
            n_maps + n_blocks + ids * FEATURE_SIZE, n_maps + team * blocks.shape[1], mini[:, 1] * VIEW + mini[:, 0]]))
        start, offset, cell = (jnp.asarray(t) for t in row_layout(size))
        base = jnp.where(start == 0, corner[:, None], jnp.where(start == 1, own_features[:, None], own_block[:, None]))
        index = base + offset + jnp.where(cell == own_cell[:, None], VIEW * VIEW, 0)
        row = source.at[index.astype(jnp.uint32)].get(mode="promise_in_bounds")  # unsigned: no negative wrap
        return jnp.where(state.alive[:, None], row, 0.0)

    # -- capabilities ------------------------------------------------------------------------------------------
    def avail_actions(self, state: BattleState, params=None) -> jax.Array:
        """bool [N, 21]: every action for the living, only staying put for the dead."""
        return state.alive[:, None] | (jnp.arange(NUM_ACTIONS) == STAY)[None, :]

    def global_state(self, state: BattleState, params=None) -> jax.Array:
        """float32 [size * size * 5]: the map's walls, presence and hp channels of both teams (``map_channels``)."""
        params = self.default_params if params is None else params
        return self.map_channels(state, params).reshape(-1)

    def neighbour_mean_action(self, state: BattleState, actions: jax.Array, params=None) -> jax.Array:
        """float32 [N, 21]: each agent's mean one-hot action over the living agents of its own team inside its
        view circle (distance <= 6, itself excluded), zeros where there are none and for dead agents."""
        r = VIEW_RADIUS
        width = self.map_size + 2 * r
        team = jnp.asarray(self.team)
        occ = self.occupancy(state.pos, state.alive, pad=r).reshape(width, width)
        code = jnp.where(occ >= 0, team[jnp.maximum(occ, 0)] * NUM_ACTIONS
                         + jnp.asarray(actions, jnp.int32)[jnp.maximum(occ, 0)], -1)
        mask = jnp.asarray(VIEW_MASK).at[r, r].set(False)

        def mean(p, k):
            w = jax.lax.dynamic_slice(code, (p[1], p[0]), (VIEW, VIEW))
            mates = mask & (w >= 0) & (w // NUM_ACTIONS == k)
            total = jnp.sum(jax.nn.one_hot(w % NUM_ACTIONS, NUM_ACTIONS) * mates[..., None], axis=(0, 1))
            return total / jnp.maximum(jnp.sum(mates), 1)

        return jnp.where(state.alive[:, None], jax.vmap(mean)(state.pos, team), 0.0)


__all__ = ["Battle", "BattleParams", "BattleState", "block_positions", "split_observation", "circle_offsets",
           "view_mask", "MOVE_OFFSETS", "ATTACK_OFFSETS", "NUM_ACTIONS", "STAY"]
