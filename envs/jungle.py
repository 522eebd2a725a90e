"""DGN's jungle (Jiang et al., 2020, "Graph Convolutional Reinforcement Learning", section 5; released code
PKU-RL/DGN, ``Jungle/``): agents eat stationary foods and may attack each other, which pays the attacker more than
eating and costs the attacked more still (the dilemma). MAgent rules, as the code's ``eat`` config plays them.

The released code's setting: a 30 x 30 map whose border cells are walls, 20 agents and 12 foods at uniformly random
distinct free cells, episodes of 120 steps that never end earlier (no respawn; the code runs every episode to 120
steps). Agents ("small"): hp 400, damage 1, no recovery, speed 1, attack range 1, view radius 5. Foods ("big"):
hp 500, never move or act. 9 actions (MAgent's order): 5 moves, the offsets (dx, dy) with dx^2 + dy^2 <= 1 row by row
(``2`` is staying put), then 4 attacks on the neighbouring cells, row by row (``MOVE_OFFSETS``, ``ATTACK_OFFSETS``).
Rewards (``JungleParams``): every attack costs ``attack_penalty`` (-0.01); an attack that hits a food earns
``eat_reward`` (+1), one that hits another agent earns ``attack_reward`` (+2) and costs the attacked
``attacked_penalty`` (-4, once per attacker); no step reward, kill reward or death penalty.

One step, in MAgent's order (``GridWorld::step``):

1. Attacks, one at a time in a random order (the key's permutation of the agents). An attacker killed earlier in
   the order does nothing. An attack on a cell holding an agent or a food (``attack_in_group``: agents hit agents)
   takes ``damage`` hp; the target dies when its hp falls below 0 and leaves the map at once (later attacks on its
   cell hit nothing). The killing attack earns ``kill_reward`` but not the hit's reward (MAgent's ``attack`` event
   is an attack that did not kill). An agent that dies gets ``dead_penalty`` in place of what it earned so far this
   step, then the hit rewards (as attacker and as attacked) of the step are added.
2. Moves, one agent at a time in agent order: a move succeeds if its target cell is inside the walls and empty at
   that moment (foods are obstacles; agents moved earlier have left their cells and taken their targets).

With the reference's hp nothing dies within 120 steps (at most 4 attackers a step), so the order of attacks never
matters there; deaths and their order are implemented (and tested against magent2) for other ``JungleParams``.

Observations ``[N, 11 * 11 + 2]`` (the code's ``observation``): over the view square centred on the agent ([row,
col], cells within distance 5, others 0), the agents' presence minus the foods' presence (MAgent's view channels 1
and 4: the agent itself counts), then y / size and x / size (the code takes MAgent's last two features reversed).
Dead agents keep their slot with zero observation and reward, and only staying put available.

Neighbourhoods (``Neighbourhood``): agent i itself, then its ``num_neighbours - 1`` nearest living fellow agents
(the code's ``Adjacency``: 4 nearest, itself first; ``envs.dgn_battle.k_nearest``). ``NeighbourMeanAction``: the
mean one-hot action of the living agents within the view circle, itself excluded (as ``envs.battle``).

``info``: ``eats`` (attacks that hit a food) and ``attacks`` (attacks that hit another agent), float32 scalars.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.battle import Battle, circle_offsets, fixed_point, view_mask
from envs.dgn_battle import k_nearest
from jaxmarl_core.config import require_positive_int
from jaxmarl_core.env import EnvParams, GroupedEnvironment, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete

MOVE_OFFSETS = circle_offsets(1.0, 0.0)  # speed 1: 5 cells, index 2 is (0, 0)
ATTACK_OFFSETS = circle_offsets(1.0, 0.5)  # attack range 1 without the centre: the 4 neighbours
NUM_MOVES, NUM_ATTACKS = len(MOVE_OFFSETS), len(ATTACK_OFFSETS)
NUM_ACTIONS = NUM_MOVES + NUM_ATTACKS
STAY = int(np.flatnonzero((MOVE_OFFSETS == 0).all(1))[0])
VIEW_RADIUS = 5
VIEW = 2 * VIEW_RADIUS + 1
OBS_DIM = VIEW * VIEW + 2  # the view, then y and x
VIEW_MASK = view_mask(VIEW_RADIUS).astype(np.float32)  # [11, 11]: 1 within the view circle
_NONE = np.iinfo(np.int32).max  # "never": later than every attack


@struct.dataclass
class JungleParams(EnvParams):
    agent_hp: jax.Array  # float32 scalars
    food_hp: jax.Array
    damage: jax.Array
    attack_penalty: jax.Array
    eat_reward: jax.Array
    attack_reward: jax.Array
    attacked_penalty: jax.Array
    kill_reward: jax.Array
    dead_penalty: jax.Array


@struct.dataclass
class JungleState:
    pos: jax.Array  # int32 [N + F, 2]: (x, y) of the agents, then the foods
    hp: jax.Array  # float32 [N + F]
    alive: jax.Array  # bool [N + F]
    t: jax.Array  # int32 scalar: steps taken in this episode


@dataclasses.dataclass(frozen=True)
class Jungle(GroupedEnvironment):
    """``n_agents`` agents and ``n_foods`` foods on a ``map_size`` square, ``max_cycles`` steps an episode (module
    docstring)."""

    map_size: int = 30
    n_agents: int = 20
    n_foods: int = 12
    max_cycles: int = 120
    num_neighbours: int = 4

    def __post_init__(self):
        for name in ("map_size", "n_agents", "n_foods", "max_cycles", "num_neighbours"):
            require_positive_int(self, name)
        cells = (self.map_size - 2) ** 2 if self.map_size > 2 else 0
        if cells < self.n_agents + self.n_foods:
            raise ValueError(f"jungle: map_size={self.map_size} leaves {cells} free cells, fewer than the "
                             f"{self.n_agents + self.n_foods} agents and foods")
        if self.num_neighbours > self.n_agents:
            raise ValueError(f"jungle: num_neighbours ({self.num_neighbours}) must be at most n_agents "
                             f"({self.n_agents})")

    @property
    def name(self) -> str:
        return "jungle"

    @property
    def num_agents(self) -> int:
        return self.n_agents

    @property
    def num_steps(self) -> int:
        """Every episode lasts ``max_cycles`` steps (``FixedHorizon``): nothing ends it earlier."""
        return self.max_cycles

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def default_params(self) -> JungleParams:
        f = jnp.float32
        return JungleParams(agent_hp=f(400.0), food_hp=f(500.0), damage=f(1.0), attack_penalty=f(-0.01),
                            eat_reward=f(1.0), attack_reward=f(2.0), attacked_penalty=f(-4.0), kill_reward=f(0.0),
                            dead_penalty=f(0.0))

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        return (AgentGroup("agents", self.n_agents, Box(-1.0, 1.0, (OBS_DIM,)), Discrete(NUM_ACTIONS)),)

    # -- episode -----------------------------------------------------------------------------------------------
    def initial_state(self, pos: jax.Array, params: JungleParams | None = None,
                      alive: jax.Array | None = None) -> JungleState:
        """Agents and foods at ``pos`` [N + F, 2] (distinct cells inside the walls), full hp; ``alive`` (default
        all) leaves the others out."""
        params = self.default_params if params is None else params
        n, units = self.n_agents, self.n_agents + self.n_foods
        hp = jnp.where(jnp.arange(units) < n, params.agent_hp, params.food_hp).astype(jnp.float32)
        alive = jnp.ones((units,), bool) if alive is None else jnp.asarray(alive, bool)
        return JungleState(pos=jnp.asarray(pos, jnp.int32), hp=hp, alive=alive, t=jnp.zeros((), jnp.int32))

    def reset_env(self, key, params):
        inner = np.arange(1, self.map_size - 1)
        interior = np.stack(np.meshgrid(inner, inner, indexing="xy"), -1).reshape(-1, 2).astype(np.int32)
        cells = jax.random.choice(key, len(interior), (self.n_agents + self.n_foods,), replace=False)
        state = self.initial_state(jnp.asarray(interior)[cells], params)
        return self.observe(state, params), state

    def step_env(self, key, state, actions, params):
        """actions int32 [N] -> TimeStep; the key orders the attacks."""
        n = self.n_agents
        actions = jnp.asarray(actions, jnp.int32)
        alive = state.alive[:n]
        rank = jax.random.permutation(key, n).astype(jnp.int32)
        acted, target, hit, kill, died, hp = self.resolve_attacks(state, actions, rank, params)
        on_food, on_agent = hit & ~kill & (target >= n), hit & ~kill & (target < n)

        reward = jnp.where(acted, params.attack_penalty + jnp.where(kill, params.kill_reward, 0.0), 0.0)
        reward = jnp.where(died[:n], params.dead_penalty, reward)
        victim = jnp.where(on_agent, target, n)  # n: nobody
        reward = (reward + jnp.where(on_food, params.eat_reward, 0.0) + jnp.where(on_agent, params.attack_reward, 0.0)
                  + jnp.zeros((n + 1,), jnp.float32).at[victim].add(params.attacked_penalty)[:n])
        reward = jnp.where(alive, reward, 0.0).astype(jnp.float32)

        survivors = state.alive & ~died
        new_state = JungleState(pos=self.resolve_moves(state.pos, survivors, actions), hp=hp, alive=survivors,
                                t=state.t + 1)
        info = {"eats": jnp.sum(hit & (target >= n)).astype(jnp.float32),
                "attacks": jnp.sum(hit & (target < n)).astype(jnp.float32)}
        return TimeStep(obs=self.observe(new_state, params), state=new_state, reward=reward,
                        terminated=jnp.zeros((), bool), truncated=new_state.t >= self.max_cycles, info=info)

    # -- rules -------------------------------------------------------------------------------------------------
    def occupancy(self, pos: jax.Array, alive: jax.Array) -> jax.Array:
        """int32 [size * size]: the living unit (agent or food) in each cell of the flattened map, -1 where none."""
        size = self.map_size
        flat = jnp.where(alive, pos[:, 1] * size + pos[:, 0], size * size)
        return jnp.full((size * size,), -1, jnp.int32).at[flat].set(jnp.arange(pos.shape[0], dtype=jnp.int32),
                                                                    mode="drop")

    def resolve_attacks(self, state: JungleState, actions: jax.Array, rank: jax.Array, params: JungleParams):
        """The agents' attacks one at a time in the order ``rank`` [N] (a permutation) -> (acted [N], target int32
        [N] (the unit in the attacked cell, -1 where none), hit [N], kill [N], died [N + F], hp [N + F]).

        Unit u dies on the ``need_u``-th attack it takes, need_u the least m with hp_u - m * damage < 0
        (``Battle._hits_to_kill``). Given which agents act, each unit's attackers sorted by rank fix the rank of
        its killing attack (``died_at``); an agent acts if it attacks and was not killed before its turn, a
        triangular rule, so its fixed point (``battle.fixed_point``) is the one-at-a-time result."""
        n, size = self.n_agents, self.map_size
        pos, alive = state.pos, state.alive
        occ = self.occupancy(pos, alive)
        attacking = alive[:n] & (actions >= NUM_MOVES)
        slot = jnp.clip(actions - NUM_MOVES, 0, NUM_ATTACKS - 1)
        offsets = jnp.asarray(ATTACK_OFFSETS)
        # the agent attacking unit u from direction k stands at pos_u - offset_k and attacks with slot k
        src = jnp.clip(pos[:, None, :] - offsets[None], 0, size - 1)
        attacker = occ[src[..., 1] * size + src[..., 0]]  # [N + F, 4]
        a = jnp.clip(attacker, 0, n - 1)
        aimed = (attacker >= 0) & (attacker < n) & attacking[a] & (slot[a] == jnp.arange(NUM_ATTACKS))
        need = Battle._hits_to_kill(state.hp, params.damage)
        at = jnp.clip(need - 1, 0, NUM_ATTACKS - 1)[:, None]

        def update(acted):
            ranks = jnp.sort(jnp.where(aimed & acted[a], rank[a], _NONE), axis=1)  # [N + F, 4]
            died_at = jnp.where(need <= NUM_ATTACKS, jnp.take_along_axis(ranks, at, axis=1)[:, 0], _NONE)
            return attacking & (died_at[:n] > rank), died_at

        acted, died_at = fixed_point(update, attacking, jnp.full((pos.shape[0],), _NONE, jnp.int32))
        cell = jnp.clip(pos[:n] + offsets[slot], 0, size - 1)
        target = jnp.where(acted, occ[cell[:, 1] * size + cell[:, 0]], -1)
        t = jnp.maximum(target, 0)
        hit = (target >= 0) & (died_at[t] >= rank)
        kill = hit & (died_at[t] == rank)
        hits_taken = jnp.sum(aimed & acted[a] & (rank[a] <= died_at[:, None]), axis=1)
        return acted, target, hit, kill, died_at < _NONE, state.hp - hits_taken.astype(jnp.float32) * params.damage

    def resolve_moves(self, pos: jax.Array, alive: jax.Array, actions: jax.Array) -> jax.Array:
        """int32 [N + F, 2]: positions after the agents' moves, one at a time in agent order (foods stay).

        Agent i moves iff its target lies inside the walls, the unit there (if any) is an agent j < i that moved
        away, and no agent j < i moved into it: a triangular rule, iterated to its fixed point."""
        n, size = self.n_agents, self.map_size
        me = jnp.arange(n, dtype=jnp.int32)
        target = pos[:n] + jnp.asarray(MOVE_OFFSETS)[jnp.clip(actions, 0, NUM_MOVES - 1)]
        inside = jnp.all((target >= 1) & (target <= size - 2), axis=1)
        tries = alive[:n] & (actions < NUM_MOVES) & (actions != STAY) & inside
        cell = jnp.where(tries, target[:, 1] * size + target[:, 0], 0)
        there = self.occupancy(pos, alive)[cell]
        leaves_first = (there >= 0) & (there < me)

        def update(moved):
            entered = jnp.full((size * size,), _NONE, jnp.int32).at[cell].min(jnp.where(moved, me, _NONE))
            empty = (there < 0) | (leaves_first & moved[jnp.clip(there, 0, n - 1)])
            return tries & empty & (entered[cell] >= me), None

        moved, _ = fixed_point(update, jnp.zeros_like(tries), None)
        return pos.at[:n].set(jnp.where(moved[:, None], target, pos[:n]))

    # -- observations ------------------------------------------------------------------------------------------
    def observe(self, state: JungleState, params: JungleParams | None = None) -> jax.Array:
        """float32 [N, 11 * 11 + 2]: agents' minus foods' presence over the view circle, then y / size, x / size;
        zeros for dead agents."""
        n, size, r = self.n_agents, self.map_size, VIEW_RADIUS
        width = size + 2 * r
        sign = jnp.where(jnp.arange(state.pos.shape[0]) < n, 1.0, -1.0)
        grid = jnp.zeros((width, width), jnp.float32).at[
            jnp.where(state.alive, state.pos[:, 1] + r, width), state.pos[:, 0] + r].set(sign, mode="drop")
        views = jax.vmap(lambda p: jax.lax.dynamic_slice(grid, (p[1], p[0]), (VIEW, VIEW)))(state.pos[:n])
        views = views * jnp.asarray(VIEW_MASK)
        where = state.pos[:n, ::-1].astype(jnp.float32) / jnp.float32(size)
        obs = jnp.concatenate([views.reshape(n, -1), where], axis=-1)
        return jnp.where(state.alive[:n, None], obs, 0.0)

    # -- capabilities ------------------------------------------------------------------------------------------
    def avail_actions(self, state: JungleState, params=None) -> jax.Array:
        """bool [N, 9]: every action for the living, only staying put for the dead."""
        return state.alive[:self.n_agents, None] | (jnp.arange(NUM_ACTIONS) == STAY)[None, :]

    def neighbours(self, state: JungleState, params=None) -> tuple[jax.Array, jax.Array]:
        """(idx int32 [N, K], mask bool [N, K]): each agent itself, then its K - 1 nearest living fellow agents."""
        n = self.n_agents
        return k_nearest(state.pos[:n], state.alive[:n], self.num_neighbours)

    def neighbour_mean_action(self, state: JungleState, actions: jax.Array, params=None) -> jax.Array:
        """float32 [N, 9]: the mean one-hot action of the living agents within each living agent's view circle
        (distance <= 5), itself excluded; zeros where there are none."""
        n = self.n_agents
        pos, alive = state.pos[:n], state.alive[:n]
        d = pos[:, None, :] - pos[None, :, :]
        near = (jnp.sum(d * d, axis=-1) <= VIEW_RADIUS ** 2) & ~jnp.eye(n, dtype=bool) & alive[None, :] & alive[:, None]
        total = near.astype(jnp.float32) @ jax.nn.one_hot(actions, NUM_ACTIONS, dtype=jnp.float32)
        return total / jnp.maximum(jnp.sum(near, axis=1, keepdims=True), 1).astype(jnp.float32)

    def global_state(self, state: JungleState, params=None) -> jax.Array:
        """float32 [size * size * 4]: agents' presence and hp / max, foods' presence and hp / max, per cell."""
        params = self.default_params if params is None else params
        n, size = self.n_agents, self.map_size
        units = state.pos.shape[0]
        food = (jnp.arange(units) >= n).astype(jnp.int32)
        max_hp = jnp.where(food == 1, params.food_hp, params.agent_hp)
        rows = jnp.where(state.alive, state.pos[:, 1], size)
        maps = jnp.zeros((size, size, 4), jnp.float32)
        maps = maps.at[rows, state.pos[:, 0], 2 * food].set(1.0, mode="drop")
        maps = maps.at[rows, state.pos[:, 0], 2 * food + 1].set(state.hp / max_hp, mode="drop")
        return maps.reshape(-1)


__all__ = ["Jungle", "JungleParams", "JungleState", "MOVE_OFFSETS", "ATTACK_OFFSETS", "NUM_ACTIONS", "STAY"]
