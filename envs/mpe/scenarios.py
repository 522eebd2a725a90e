"""The nine MPE scenarios of mpe2 1.1 (agent order, sizes, rewards and observation layouts as there).

Observation layouts (``rel(x) = x - own position``; groups of agents in agent order):

- ``simple``: ``[vel, rel(landmark)]``.
- ``spread``: ``[vel, pos, rel(landmarks), rel(other agents), comm of others]`` (comm is silent: zeros).
- ``adversary``: adversary ``[rel(landmarks), rel(others)]``; good agents ``[rel(goal), rel(landmarks), rel(others)]``.
- ``tag``: ``[vel, pos, rel(obstacles), rel(others), vel of good others]``.
- ``push``: adversary ``[vel, rel(landmarks), rel(other)]``; good agent
  ``[vel, rel(goal), own colour, rel(landmarks), landmark colours, rel(other)]``.
- ``reference``: ``[vel, rel(landmarks), colour of own goal landmark, comm of the other]``.
- ``speaker_listener``: speaker ``[goal colour]``; listener ``[vel, rel(landmarks), speaker's comm]``.
- ``crypto``: eve ``[alice's comm]``; bob ``[key, alice's comm]``; alice ``[goal colour, key]``.
- ``world_comm``: adversaries (leader first) ``[vel, pos, rel(landmarks), rel(others), vel of good others,
  in_forest, leader's comm]``; good agents ``[vel, pos, rel(landmarks), rel(others), in_forest, vel of good
  others]``; others hidden by forests read as zeros.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from envs.mpe.core import (
    MPEEnv,
    MPEParams,
    MPEState,
    agent_layout,
    bound_penalty,
    dist,
    members_except,
    others,
    positive_int,
)


def _rel(pos: jax.Array, rows, cols) -> jax.Array:
    """Flattened relative positions: pos [E, 2] -> [len(rows), 2 * k] with ``pos[cols[r]] - pos[rows[r]]``.

    ``cols`` is [len(rows), k] (per-row entities) or [k] (the same for every row)."""
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    target = pos[cols] if cols.ndim == 2 else pos[cols][None]
    return (target - pos[rows][:, None, :]).reshape(len(rows), -1)


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def _mix(local: jax.Array, global_: jax.Array, params: MPEParams) -> jax.Array:
    """mpe2's ``global * (1 - local_ratio) + local * local_ratio``."""
    return global_ * (1.0 - params.local_ratio) + local * params.local_ratio


def _check_ratio(name: str, local_ratio: float) -> None:
    if isinstance(local_ratio, bool) or not isinstance(local_ratio, (int, float, np.number)) \
            or not 0.0 <= float(local_ratio) <= 1.0:
        raise ValueError(f"{name}: local_ratio must be a number in [0, 1], got {local_ratio!r}")


@dataclasses.dataclass(frozen=True)
class Simple(MPEEnv):
    """``simple_v3``: one agent, one landmark; reward ``-|agent - landmark|^2``. No ``goal``."""

    env_name: ClassVar[str] = "mpe_simple"
    team_reward: ClassVar[str] = "common"  # one agent

    @property
    def layout(self):
        return agent_layout(1, 1, 0)

    def rewards(self, state, params):
        return -jnp.sum(jnp.square(state.p_pos[:1] - state.p_pos[1]), axis=-1)

    def obs_blocks(self, state, params):
        return (jnp.concatenate([state.p_vel[:1], state.p_pos[1:2] - state.p_pos[:1]], axis=-1),)


@dataclasses.dataclass(frozen=True)
class Spread(MPEEnv):
    """``simple_spread_v3``: N agents (size 0.15, colliding) cover N landmarks. Reward per agent
    ``global * (1 - local_ratio) + local * local_ratio`` with global ``-sum_landmarks min_agents dist`` and local
    ``-(number of other agents it overlaps)``. No ``goal``."""

    N: int = 3
    local_ratio: float = 0.5
    env_name: ClassVar[str] = "mpe_spread"
    team_reward: ClassVar[str] = "sum"  # cooperative; local collision penalties make the rewards differ

    def __post_init__(self):
        super().__post_init__()
        positive_int(self.name, N=self.N)
        _check_ratio(self.name, self.local_ratio)

    def local_ratio_default(self):
        return self.local_ratio

    @property
    def layout(self):
        return agent_layout(self.N, self.N, 2, collide=True, size=0.15)

    def rewards(self, state, params):
        n = self.N
        agents, marks = state.p_pos[:n], state.p_pos[n:]
        global_ = -jnp.sum(jnp.min(dist(agents[:, None], marks[None]), axis=0))
        size = params.size[:n]
        touching = dist(agents[:, None], agents[None]) < size[:, None] + size[None, :]
        local = -jnp.sum(touching & ~np.eye(n, dtype=bool), axis=1).astype(jnp.float32)
        return _mix(local, global_, params)

    def obs_blocks(self, state, params):
        n = self.N
        rows = np.arange(n)
        oth = others(n)
        return (jnp.concatenate([state.p_vel[:n], state.p_pos[:n], _rel(state.p_pos, rows, np.arange(n, 2 * n)),
                                 _rel(state.p_pos, rows, oth), _flat(state.c[oth])], axis=-1),)


@dataclasses.dataclass(frozen=True)
class Adversary(MPEEnv):
    """``simple_adversary_v3``: one adversary (agent 0) and N good agents, N landmarks; ``goal = [landmark]``.
    Adversary reward ``-dist(adversary, goal)``; good agents ``-min_good dist(good, goal) + dist(adversary, goal)``.
    """

    N: int = 2
    env_name: ClassVar[str] = "mpe_adversary"
    num_goals: ClassVar[int] = 1

    def __post_init__(self):
        super().__post_init__()
        positive_int(self.name, N=self.N)

    @property
    def layout(self):
        return agent_layout(self.N + 1, self.N, 2, size=0.15, landmark_size=0.08)

    def rewards(self, state, params):
        n = self.N + 1
        goal_pos = state.p_pos[n + state.goal[0]]
        d = dist(state.p_pos[:n], goal_pos)
        good = -jnp.min(d[1:]) + d[0]
        return jnp.concatenate([-d[:1], jnp.broadcast_to(good, (self.N,))])

    def obs_blocks(self, state, params):
        n = self.N + 1
        marks = np.arange(n, n + self.N)
        oth = others(n)
        adversary = jnp.concatenate([_rel(state.p_pos, [0], marks), _rel(state.p_pos, [0], oth[:1])], axis=-1)
        good = np.arange(1, n)
        goal_rel = state.p_pos[n + state.goal[0]][None] - state.p_pos[1:n]
        good_obs = jnp.concatenate([goal_rel, _rel(state.p_pos, good, marks), _rel(state.p_pos, good, oth[1:])],
                                   axis=-1)
        return adversary, good_obs


@dataclasses.dataclass(frozen=True)
class Tag(MPEEnv):
    """``simple_tag_v3``: adversaries (agents ``0..A-1``: size 0.075, accel 3, max speed 1) chase good agents
    (size 0.05, accel 4, max speed 1.3) among obstacles (size 0.2). Each good agent gets ``-10`` per adversary
    touching it and ``-bound_penalty(pos)``; every adversary gets ``+10`` per touching (good, adversary) pair.
    No ``goal``."""

    num_good: int = 1
    num_adversaries: int = 3
    num_obstacles: int = 2
    env_name: ClassVar[str] = "mpe_tag"
    landmark_limit: ClassVar[float] = 0.9

    def __post_init__(self):
        super().__post_init__()
        positive_int(self.name, num_good=self.num_good, num_adversaries=self.num_adversaries,
                     num_obstacles=self.num_obstacles)

    @property
    def layout(self):
        a, g = self.num_adversaries, self.num_good
        adv = np.arange(a + g) < a
        return agent_layout(a + g, self.num_obstacles, 2, collide=True, size=np.where(adv, 0.075, 0.05),
                            accel=np.where(adv, 3.0, 4.0), max_speed=np.where(adv, 1.0, 1.3),
                            landmark_collide=True, landmark_size=0.2)

    def rewards(self, state, params):
        a, n = self.num_adversaries, self.num_agents
        base = _chase_rewards(state, params, a, n, 10.0)
        return base - jnp.where(np.arange(n) >= a, bound_penalty(state.p_pos[:n]), 0.0)

    def obs_blocks(self, state, params):
        a, n = self.num_adversaries, self.num_agents
        pos, vel = state.p_pos, state.p_vel
        good = np.arange(a, n)
        oth = others(n)

        def block(rows, good_others):
            return jnp.concatenate([vel[rows], pos[rows], _rel(pos, rows, np.arange(n, self.num_entities)),
                                    _rel(pos, rows, oth[rows]), _flat(vel[good_others])], axis=-1)

        return block(np.arange(a), members_except(range(a), good)), block(good, members_except(good, good))


@dataclasses.dataclass(frozen=True)
class PredatorPrey(Tag):
    """G2ANet's predator-prey (Liu et al., 2020, section 5): MPE's ``simple_tag`` physics, rewards and observations
    (``Tag``) with more agents: ``num_adversaries`` slower predators (agents ``0..P-1``) chase ``num_good`` faster
    prey among ``num_obstacles`` obstacles; every agent learns. The paper's counts could not be recovered here, so the
    defaults (5 predators, 2 prey, 2 obstacles, 25 steps, discrete actions) are this library's choice; the class
    only renames ``Tag`` so that runs and results name the setting."""

    num_good: int = 2
    num_adversaries: int = 5
    env_name: ClassVar[str] = "predator_prey"


def _chase_rewards(state: MPEState, params: MPEParams, a: int, n: int, hit: float) -> jax.Array:
    """The contact part of the predator-prey rewards (tag, world_comm) -> [N]: each adversary (agents ``0..a-1``)
    gets ``hit`` per overlapping (good, adversary) pair, each good agent ``-hit`` per adversary overlapping it."""
    pos, size = state.p_pos[:n], params.size[:n]
    touching = dist(pos[a:, None], pos[None, :a]) < size[a:, None] + size[None, :a]
    pairs = jnp.sum(touching).astype(jnp.float32)
    good = -hit * jnp.sum(touching, axis=1)
    return jnp.concatenate([jnp.full((a,), hit) * pairs, good])


@dataclasses.dataclass(frozen=True)
class Push(MPEEnv):
    """``simple_push_v3``: an adversary (agent 0) and a good agent (agent 1), colliding, two landmarks;
    ``goal = [landmark]``. Good agent ``-dist(good, goal)``; adversary ``dist(good, goal) - dist(adversary, goal)``.
    """

    env_name: ClassVar[str] = "mpe_push"
    num_goals: ClassVar[int] = 1
    LANDMARK_COLOURS: ClassVar[np.ndarray] = np.array([[0.1, 0.9, 0.1], [0.1, 0.1, 0.9]], np.float32)
    AGENT_COLOURS: ClassVar[np.ndarray] = np.array([[0.25, 0.75, 0.25], [0.25, 0.25, 0.75]], np.float32)

    @property
    def layout(self):
        return agent_layout(2, 2, 2, collide=True)

    def rewards(self, state, params):
        d = dist(state.p_pos[:2], state.p_pos[2 + state.goal[0]])
        return jnp.stack([d[1] - d[0], -d[1]])

    def obs_blocks(self, state, params):
        pos, vel = state.p_pos, state.p_vel
        marks = np.arange(2, 4)
        adversary = jnp.concatenate([vel[:1], _rel(pos, [0], marks), pos[1:2] - pos[:1]], axis=-1)
        good = jnp.concatenate([vel[1:2], pos[2 + state.goal[0]][None] - pos[1:2],
                                jnp.asarray(self.AGENT_COLOURS)[state.goal], _rel(pos, [1], marks),
                                jnp.asarray(self.LANDMARK_COLOURS).reshape(1, -1), pos[:1] - pos[1:2]], axis=-1)
        return adversary, good


@dataclasses.dataclass(frozen=True)
class Reference(MPEEnv):
    """``simple_reference_v3``: two speaking, moving agents (10 messages) and three landmarks;
    ``goal = [landmark of agent 0, landmark of agent 1]``: agent i wants the *other* agent on its landmark.
    Local reward ``-dist(other, goal_i)``, global the mean of the locals, mixed by ``local_ratio``."""

    local_ratio: float = 0.5
    env_name: ClassVar[str] = "mpe_reference"
    team_reward: ClassVar[str] = "sum"  # cooperative; each agent's local term differs
    num_goals: ClassVar[int] = 2
    LANDMARK_COLOURS: ClassVar[np.ndarray] = np.array([[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]],
                                                      np.float32)

    def __post_init__(self):
        super().__post_init__()
        _check_ratio(self.name, self.local_ratio)

    def local_ratio_default(self):
        return self.local_ratio

    @property
    def layout(self):
        return agent_layout(2, 3, 10, silent=False)

    def rewards(self, state, params):
        local = -dist(state.p_pos[1::-1], state.p_pos[2 + state.goal])
        return _mix(local, jnp.mean(local), params)

    def obs_blocks(self, state, params):
        rows = np.arange(2)
        return (jnp.concatenate([state.p_vel[:2], _rel(state.p_pos, rows, np.arange(2, 5)),
                                 jnp.asarray(self.LANDMARK_COLOURS)[state.goal], state.c[1::-1]], axis=-1),)


@dataclasses.dataclass(frozen=True)
class SpeakerListener(MPEEnv):
    """``simple_speaker_listener_v4``: a static speaker (agent 0, 3 messages) sees the goal landmark's colour;
    a silent listener (agent 1) hears it and moves; ``goal = [landmark]``; both get
    ``-|listener - goal|^2``."""

    env_name: ClassVar[str] = "mpe_speaker_listener"
    team_reward: ClassVar[str] = "common"
    num_goals: ClassVar[int] = 1
    LANDMARK_COLOURS: ClassVar[np.ndarray] = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]],
                                                      np.float32)

    @property
    def layout(self):
        return agent_layout(2, 3, 3, movable=(False, True), silent=(False, True), size=0.075, landmark_size=0.04)

    def rewards(self, state, params):
        d2 = jnp.sum(jnp.square(state.p_pos[1] - state.p_pos[2 + state.goal[0]]))
        return jnp.full((2,), -d2)

    def obs_blocks(self, state, params):
        speaker = jnp.asarray(self.LANDMARK_COLOURS)[state.goal]
        listener = jnp.concatenate([state.p_vel[1:2], _rel(state.p_pos, [1], np.arange(2, 5)), state.c[:1]], axis=-1)
        return speaker, listener


@dataclasses.dataclass(frozen=True)
class Crypto(MPEEnv):
    """``simple_crypto_v3``: eve (agent 0), bob (1) and alice (2), static, all speaking 4 messages;
    ``goal = [goal landmark, key landmark]`` whose colours are one-hot vectors of length 4. With
    ``err(x) = |c_x - goal colour|^2`` counted only when ``c_x`` is not all zero: eve gets ``-err(eve)``, bob and
    alice ``err(eve) - err(bob)``."""

    env_name: ClassVar[str] = "mpe_crypto"
    num_goals: ClassVar[int] = 2

    @property
    def layout(self):
        return agent_layout(3, 2, 4, movable=False, silent=False)

    def rewards(self, state, params):
        colour = jax.nn.one_hot(state.goal[0], 4, dtype=jnp.float32)
        err = jnp.sum(jnp.square(state.c[:2] - colour), axis=-1) * jnp.any(state.c[:2] != 0, axis=-1)
        good = err[0] - err[1]
        return jnp.stack([-err[0], good, good])

    def obs_blocks(self, state, params):
        colours = jax.nn.one_hot(state.goal, 4, dtype=jnp.float32)  # goal, key
        alice = state.c[2:3]
        return alice, jnp.concatenate([colours[1:], alice], axis=-1), colours.reshape(1, -1)


@dataclasses.dataclass(frozen=True)
class WorldComm(MPEEnv):
    """``simple_world_comm_v3``: adversaries (agent 0 the speaking leader, 4 messages; size 0.075, accel 3, max
    speed 1) chase good agents (size 0.045, accel 4, max speed 1.3); landmarks are obstacles (0.2, colliding), food
    (0.03) and forests (0.3). Good agents: ``-5`` per touching adversary, ``-2 bound_penalty(pos)``, ``+2`` per food
    touched, ``-0.05 min_food dist``; adversaries: ``+5`` per touching (good, adversary) pair and
    ``-0.1 min_good dist``. Inside a forest an agent is seen only from the same forest, except by the leader.
    No ``goal``."""

    num_good: int = 2
    num_adversaries: int = 4
    num_obstacles: int = 1
    num_food: int = 2
    num_forests: int = 2
    env_name: ClassVar[str] = "mpe_world_comm"
    landmark_limit: ClassVar[float] = 0.9

    def __post_init__(self):
        super().__post_init__()
        positive_int(self.name, num_good=self.num_good, num_adversaries=self.num_adversaries,
                     num_obstacles=self.num_obstacles, num_food=self.num_food, num_forests=self.num_forests)

    @property
    def layout(self):
        a, g = self.num_adversaries, self.num_good
        adv = np.arange(a + g) < a
        o, f, w = self.num_obstacles, self.num_food, self.num_forests
        return agent_layout(a + g, o + f + w, 4, silent=np.arange(a + g) > 0, collide=True,
                            size=np.where(adv, 0.075, 0.045), accel=np.where(adv, 3.0, 4.0),
                            max_speed=np.where(adv, 1.0, 1.3), landmark_collide=np.arange(o + f + w) < o,
                            landmark_size=np.repeat([0.2, 0.03, 0.3], [o, f, w]))

    def _food(self) -> np.ndarray:
        start = self.num_agents + self.num_obstacles
        return np.arange(start, start + self.num_food)

    def _forests(self) -> np.ndarray:
        return np.arange(self.num_entities - self.num_forests, self.num_entities)

    def _touching(self, state: MPEState, params: MPEParams, targets: np.ndarray) -> jax.Array:
        """bool [N, len(targets)]: agents overlapping the given landmarks."""
        n = self.num_agents
        d = dist(state.p_pos[:n, None], state.p_pos[targets][None])
        return d < params.size[:n, None] + params.size[targets][None, :]

    def rewards(self, state, params):
        a, n = self.num_adversaries, self.num_agents
        base = _chase_rewards(state, params, a, n, 5.0)
        pos = state.p_pos
        food = self._food()
        good_pos = pos[a:n]
        food_d = dist(good_pos[:, None], pos[food][None])
        good = (base[a:] - 2.0 * bound_penalty(good_pos) + 2.0 * jnp.sum(self._touching(state, params, food)[a:], 1)
                - 0.05 * jnp.min(food_d, axis=1))
        adv = base[:a] - 0.1 * jnp.min(dist(pos[:a, None], good_pos[None]), axis=1)
        return jnp.concatenate([adv, good])

    def obs_blocks(self, state, params):
        a, n = self.num_adversaries, self.num_agents
        pos, vel = state.p_pos, state.p_vel
        in_forest = self._touching(state, params, self._forests())  # [N, F]
        outside = ~jnp.any(in_forest, axis=1)
        shared = jnp.any(in_forest[:, None, :] & in_forest[None, :, :], axis=-1)
        leader = np.arange(n) == 0
        visible = shared | (outside[:, None] & outside[None, :]) | leader[:, None]  # [N, N]: i sees j
        forest_sign = jnp.where(in_forest, 1.0, -1.0)
        marks = np.arange(n, self.num_entities)
        oth = others(n)
        good = np.arange(a, n)

        def seen(rows, cols, x):
            return _flat(jnp.where(visible[rows[:, None], cols][..., None], x, 0.0))

        def parts(rows, good_others):
            rel = _rel(pos, rows, oth[rows]).reshape(len(rows), -1, 2)
            return (jnp.concatenate([vel[rows], pos[rows], _rel(pos, rows, marks), seen(rows, oth[rows], rel)], -1),
                    seen(rows, good_others, vel[good_others]), forest_sign[rows])

        adv = np.arange(a)
        head, good_vel, forest = parts(adv, members_except(adv, good))
        comm = jnp.broadcast_to(state.c[:1], (a, state.c.shape[1]))
        adversaries = jnp.concatenate([head, good_vel, forest, comm], axis=-1)
        head, good_vel, forest = parts(good, members_except(good, good))
        return adversaries, jnp.concatenate([head, forest, good_vel], axis=-1)


SCENARIOS = (Simple, Spread, Adversary, Tag, Push, Reference, SpeakerListener, Crypto, WorldComm)
