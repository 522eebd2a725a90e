"""DGN's battle (Jiang et al., 2020, "Graph Convolutional Reinforcement Learning", section 5; released code
PKU-RL/DGN, ``Battle/``): a team of learners against enemies that play a fixed policy, dead units respawned at once,
episodes of a fixed length. Built on MAgent's battle rules (``envs.battle``).

The released code's setting: a 30 x 30 map, 20 learners against 12 enemies, both placed at random cells; after every
step the dead of both teams are cleared and as many fresh units are added at random free cells, so both teams always
field their full number; an episode lasts 300 steps and never ends earlier. The learners' reward (the code's
``battle`` config, its "small" units): 0 a step, -0.01 an attack, +5 an attack that hits an enemy, killing or not
(its reward rule pays a hit that does not kill; MAgent pays a kill the victim's type's ``kill_reward``, 5 for the
code's enemies), -2 for dying. Each learner sees, over its view square, its own team's presence minus the enemies'
hp / max hp (the code's channel 1 minus channel 5) and its position divided by the map size.

Choices where this differs from the released code, documented and tested:

- **Units.** Both teams are the one unit type of ``envs.battle`` (magent2's battle: hp 10, damage 2, recovery 0.1,
  speed 2, attack range 1.5, view radius 6; 21 actions). The code gives its learners hp 12, speed 1, view radius 5,
  attack range 1 (9 actions), recovery 0.4, and its enemies hp 8, speed 2, no recovery: that asymmetry is not
  reproduced (``BattleParams`` holds one unit type), nor are the enemies' own rewards (the code's: -0.02 an attack,
  0 for dying or for killing a learner, no reward rule): the engine pays them the learners' rewards, never reported.
- **The enemies' fixed policy.** The code plays a DQN model pretrained by MAgent ("trusty-battle-game-l"), which is
  not public; here the enemies follow a scripted policy (``enemy_actions``): attack an adjacent learner (one at
  random where there are several), else step towards the nearest learner within the view radius, else move at
  random; with probability ``enemy_epsilon`` a uniformly random action instead.
- **Respawn.** A unit that dies in a step is replaced in the same slot by a fresh unit (full hp, no last action) at a
  uniformly random free cell before the step's observation is made, so the observation after a death is the new
  unit's (the code's next observation, taken before clearing the dead, still shows the dying unit).

Neighbourhoods (the ``Neighbourhood`` capability): learner i's neighbourhood is itself, then the
``num_neighbours - 1`` other learners nearest to it (Euclidean distance between cells, ties to the lower index), as
the code's ``Adjacency`` (4 nearest, the agent itself first at distance 0); slots for which there are not enough
living learners are masked.

``info``: ``kills`` (enemies killed in the step), ``deaths`` (learners killed), float32 scalars.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from envs.battle import (
    ATTACK_OFFSETS,
    MOVE_OFFSETS,
    NUM_ACTIONS,
    VIEW,
    VIEW_RADIUS,
    Battle,
    BattleParams,
    BattleState,
    split_observation,
)
from jaxmarl_core.config import require_positive_int
from jaxmarl_core.env import GroupedEnvironment, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete

NUM_MOVES = len(MOVE_OFFSETS)
OWN_PRESENCE, OTHER_HP = 1, 5  # channels of envs.battle's view (wall, own x3, other x3)


@dataclasses.dataclass(frozen=True)
class TwoTeams(Battle):
    """``envs.battle``'s rules for teams of unequal size: ``n_per_side`` red units (agents ``0 .. n_red - 1``) and
    ``n_blue`` blue ones after them. Its ``reset_env`` is not used (``DGNBattle`` places the units)."""

    n_blue: int = 1

    def __post_init__(self):
        for name in ("map_size", "n_per_side", "n_blue", "max_cycles"):
            require_positive_int(self, name)

    @property
    def num_agents(self) -> int:
        return self.n_per_side + self.n_blue

    @property
    def team(self) -> np.ndarray:
        return np.concatenate([np.zeros(self.n_per_side, np.int32), np.ones(self.n_blue, np.int32)])


def k_nearest(pos: jax.Array, alive: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Each unit's neighbourhood: pos int32 [N, 2], alive bool [N] -> (idx int32 [N, k], mask bool [N, k]); row i is
    i itself, then the k - 1 living others nearest to it (squared Euclidean distance, ties to the lower index);
    mask is False on the slots left over when fewer live (idx there: i) and on every slot of a dead unit."""
    n = pos.shape[0]
    d = pos[:, None, :].astype(jnp.float32) - pos[None, :, :].astype(jnp.float32)
    dist = jnp.sum(d * d, axis=-1)
    eye = jnp.eye(n, dtype=bool)
    dist = jnp.where(eye, -1.0, jnp.where(alive[None, :], dist, jnp.inf))
    order = jnp.argsort(dist, axis=1, stable=True)[:, :k].astype(jnp.int32)
    found = jnp.isfinite(jnp.take_along_axis(dist, order, axis=1)) & alive[:, None]
    own = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], order.shape)
    return jnp.where(found, order, own), found


@dataclasses.dataclass(frozen=True)
class DGNBattle(GroupedEnvironment):
    """``n_learners`` learners (the agents) against ``n_enemies`` scripted enemies on a ``map_size`` square,
    ``max_cycles`` steps an episode (module docstring)."""

    map_size: int = 30
    n_learners: int = 20
    n_enemies: int = 12
    max_cycles: int = 300
    num_neighbours: int = 4
    enemy_epsilon: float = 0.0

    def __post_init__(self):
        for name in ("map_size", "n_learners", "n_enemies", "max_cycles", "num_neighbours"):
            require_positive_int(self, name)
        cells = (self.map_size - 2) ** 2
        if cells < 2 * (self.n_learners + self.n_enemies):
            raise ValueError(f"dgn_battle: map_size={self.map_size} leaves {cells} free cells, fewer than twice the "
                             f"{self.n_learners + self.n_enemies} units (respawns need room)")
        if self.num_neighbours > self.n_learners:
            raise ValueError(f"dgn_battle: num_neighbours ({self.num_neighbours}) must be at most n_learners "
                             f"({self.n_learners})")
        if not 0.0 <= self.enemy_epsilon <= 1.0:
            raise ValueError(f"dgn_battle: enemy_epsilon must lie in [0, 1], got {self.enemy_epsilon}")

    @property
    def name(self) -> str:
        return "dgn_battle"

    @property
    def engine(self) -> TwoTeams:
        return TwoTeams(map_size=self.map_size, n_per_side=self.n_learners, n_blue=self.n_enemies,
                        max_cycles=self.max_cycles)

    @property
    def num_agents(self) -> int:
        return self.n_learners

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def num_steps(self) -> int:
        """Every episode lasts ``max_cycles`` steps (``FixedHorizon``): respawns keep both teams on the map."""
        return self.max_cycles

    @property
    def obs_dim(self) -> int:
        return VIEW * VIEW + 2

    @property
    def default_params(self) -> BattleParams:
        f = jnp.float32
        # kill_reward: the code's enemies' (MAgent pays the victim's type's), here also paid to enemies that kill
        return BattleParams(max_hp=f(10.0), damage=f(2.0), step_recover=f(0.1), step_reward=f(0.0),
                            kill_reward=f(5.0), dead_penalty=f(-2.0), attack_penalty=f(-0.01),
                            attack_opponent_reward=f(5.0))

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        return (AgentGroup("learners", self.n_learners, Box(-1.0, 1.0, (self.obs_dim,)), Discrete(NUM_ACTIONS)),)

    # -- episode -----------------------------------------------------------------------------------------------
    def interior(self) -> np.ndarray:
        """int32 [(size - 2)^2, 2]: the cells inside the walls, row by row."""
        inner = np.arange(1, self.map_size - 1)
        return np.stack(np.meshgrid(inner, inner, indexing="xy"), -1).reshape(-1, 2).astype(np.int32)

    def reset_env(self, key, params):
        engine = self.engine
        cells = jax.random.choice(key, len(self.interior()), (engine.num_agents,), replace=False)
        state = engine.initial_state(jnp.asarray(self.interior())[cells], params)
        return self.observe(state, params), state

    def respawn(self, key: jax.Array, state: BattleState, params: BattleParams) -> BattleState:
        """Every dead unit replaced in its slot by a fresh one (full hp, no last action or reward) at a distinct
        uniformly random free cell."""
        interior = jnp.asarray(self.interior())
        size = self.map_size
        occupied = self.engine.occupancy(state.pos, state.alive)[interior[:, 1] * size + interior[:, 0]] >= 0
        shuffled = jnp.argsort(jnp.where(occupied, 2.0, jax.random.uniform(key, (interior.shape[0],))))
        dead = ~state.alive
        slot = jnp.cumsum(dead) - 1
        pos = jnp.where(dead[:, None], interior[shuffled[jnp.maximum(slot, 0)]], state.pos)
        return state.replace(pos=pos, hp=jnp.where(dead, params.max_hp, state.hp),
                             alive=jnp.ones_like(state.alive),
                             last_action=jnp.where(dead, NUM_ACTIONS, state.last_action),
                             last_reward=jnp.where(dead, 0.0, state.last_reward))

    def enemy_actions(self, key: jax.Array, state: BattleState) -> jax.Array:
        """int32 [n_enemies]: the scripted policy (module docstring) of the living enemies."""
        engine, n = self.engine, self.n_learners
        size = self.map_size
        pos = state.pos[n:]
        occ = engine.occupancy(state.pos, state.alive)
        k_pick, k_move, k_eps, k_rand = jax.random.split(key, 4)
        # attacks: a learner in a neighbouring cell, one at random
        cell = pos[:, None, :] + jnp.asarray(ATTACK_OFFSETS)[None]
        inside = jnp.all((cell >= 0) & (cell < size), axis=-1)
        who = occ[jnp.clip(cell[..., 1], 0, size - 1) * size + jnp.clip(cell[..., 0], 0, size - 1)]
        adjacent = inside & (who >= 0) & (who < n)
        slot = jax.random.categorical(k_pick, jnp.where(adjacent, 0.0, -jnp.inf))
        # moves: towards the nearest living learner within the view radius
        d = state.pos[None, :n, :] - pos[:, None, :]
        dist = jnp.where(state.alive[None, :n], jnp.sum(d * d, axis=-1), jnp.iinfo(jnp.int32).max)
        nearest = jnp.argmin(dist, axis=1)
        visible = jnp.min(dist, axis=1) <= VIEW_RADIUS ** 2
        goal = state.pos[nearest]
        after = pos[:, None, :] + jnp.asarray(MOVE_OFFSETS)[None]
        gap = jnp.sum(jnp.square(goal[:, None, :] - after), axis=-1)
        towards = jnp.argmin(gap, axis=1)
        wander = jax.random.randint(k_move, (self.n_enemies,), 0, NUM_MOVES)
        scripted = jnp.where(jnp.any(adjacent, axis=1), NUM_MOVES + slot, jnp.where(visible, towards, wander))
        random = jax.random.randint(k_rand, (self.n_enemies,), 0, NUM_ACTIONS)
        explore = jax.random.uniform(k_eps, (self.n_enemies,)) < self.enemy_epsilon
        return jnp.where(explore, random, scripted).astype(jnp.int32)

    def step_env(self, key, state, actions, params):
        """actions int32 [n_learners] -> TimeStep of the learners."""
        k_enemy, k_step, k_spawn = jax.random.split(key, 3)
        n = self.n_learners
        joint = jnp.concatenate([jnp.asarray(actions, jnp.int32), self.enemy_actions(k_enemy, state)])
        ts = self.engine.step_env(k_step, state, joint, params)
        died = state.alive & ~ts.state.alive
        new_state = self.respawn(k_spawn, ts.state, params)
        info = {"kills": jnp.sum(died[n:]).astype(jnp.float32), "deaths": jnp.sum(died[:n]).astype(jnp.float32)}
        return TimeStep(obs=self.observe(new_state, params), state=new_state, reward=ts.reward[:n],
                        terminated=jnp.zeros((), bool), truncated=new_state.t >= self.max_cycles, info=info)

    def observe(self, state: BattleState, params: BattleParams | None = None) -> jax.Array:
        """float32 [n_learners, 13 * 13 + 2]: own presence minus enemy hp / max over the view, then x / size,
        y / size."""
        view, features = split_observation(self.engine.observe(state, params)[:self.n_learners])
        grid = view[..., OWN_PRESENCE] - view[..., OTHER_HP]
        return jnp.concatenate([grid.reshape(self.n_learners, -1), features[:, -2:]], axis=-1)

    # -- capabilities ------------------------------------------------------------------------------------------
    def neighbours(self, state: BattleState, params=None) -> tuple[jax.Array, jax.Array]:
        """(idx int32 [n_learners, K], mask bool [n_learners, K]): each learner itself, then its K - 1 nearest
        living fellow learners (``k_nearest``)."""
        n = self.n_learners
        return k_nearest(state.pos[:n], state.alive[:n], self.num_neighbours)

    def global_state(self, state: BattleState, params=None) -> jax.Array:
        """float32 [size * size * 5]: walls, then presence and hp of the learners and of the enemies."""
        params = self.default_params if params is None else params
        return self.engine.map_channels(state, params).reshape(-1)

    def neighbour_mean_action(self, state: BattleState, actions: jax.Array, params=None) -> jax.Array:
        """float32 [n_learners, 21]: the mean one-hot action of the living learners within each learner's view
        circle, itself excluded (``envs.battle``'s rule)."""
        joint = jnp.concatenate([jnp.asarray(actions, jnp.int32), jnp.zeros((self.n_enemies,), jnp.int32)])
        return self.engine.neighbour_mean_action(state, joint, params)[:self.n_learners]


__all__ = ["DGNBattle", "TwoTeams", "k_nearest"]
