"""The shared core of the Multi-Particle Environments: world state, physics and the action/observation plumbing.

A port of PettingZoo's ``mpe2`` 1.1 (``_mpe_utils/core.py`` and ``simple_env.py``). Entities are the agents
followed by the landmarks; positions and velocities are ``[E, 2]``. One world step, as in mpe2's ``World.step``:

1. action force of each movable agent: ``u * accel`` (accel 5.0 unless the scenario sets one), where discrete
   actions 0..4 mean no-op, -x, +x, -y, +y and continuous ones give ``u = (a[2] - a[1], a[4] - a[3])``;
2. contact force between every pair of colliding entities ``a, b``:
   ``contact_force * (p_a - p_b) / |p_a - p_b| * k * log(1 + exp(-(|p_a - p_b| - (size_a + size_b)) / k))``
   with ``k = contact_margin`` (a softplus penetration), on movable entities only;
3. integration of movable entities in mpe2's order: ``pos += vel * dt`` (with the old velocity), then
   ``vel *= 1 - damping``, ``vel += force / mass * dt`` and a clip of the speed to ``max_speed``
   (``integration="pettingzoo_1_22"``: PettingZoo <= 1.22's order, the velocity first, then ``pos += vel * dt``);
4. communication: a speaking agent's state ``c`` becomes its message (a one-hot of the discrete choice, or the
   continuous values), a silent agent's is zero.

Discrete actions follow mpe2's joint encoding: an agent that moves and speaks has ``5 * dim_c`` actions
(``move = a % 5``, ``message = a // 5``), one that only speaks ``dim_c``. Continuous actions lie in ``[0, 1]``
(clipped, as mpe2's wrapper does): ``5`` movement values followed by ``dim_c`` message values. Episodes last
exactly ``max_cycles`` steps and end with ``truncated=True``; mpe2 never terminates them.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete

DEFAULT_ACCEL = 5.0
MOVE_DIM = 5  # no-op, -x, +x, -y, +y
INTEGRATIONS = ("mpe2", "pettingzoo_1_22")
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], np.float32)


@struct.dataclass
class MPEParams(EnvParams):
    """Physics constants (scalars) and per-entity properties a study may vmap over.

    size, max_speed (``inf`` = unbounded), mass: [E]; accel: [N] (the action sensitivity); local_ratio: the weight
    of the local reward where a scenario mixes local and global rewards (spread, reference), unused elsewhere.
    """

    dt: jax.Array
    damping: jax.Array
    contact_force: jax.Array
    contact_margin: jax.Array
    local_ratio: jax.Array
    size: jax.Array
    accel: jax.Array
    max_speed: jax.Array
    mass: jax.Array


@struct.dataclass
class MPEState:
    """p_pos, p_vel: [E, 2] float32 (agents first, then landmarks); c: [N, dim_c] communication states;
    goal: [G] int32 scenario-specific assignments (landmark indices; see each scenario); t: int32 step count.

    A scenario without messages (``dim_c = 0``) or goals has ``c`` or ``goal`` None rather than an empty array (empty
    arrays cannot be checkpointed)."""

    p_pos: jax.Array
    p_vel: jax.Array
    c: jax.Array | None
    goal: jax.Array | None
    t: jax.Array


class Layout(NamedTuple):
    """Static structure of a scenario: per-agent flags ``[N]``, per-entity flags ``[E]`` and properties."""

    num_agents: int
    num_landmarks: int
    dim_c: int
    movable: tuple[bool, ...]  # [N]; landmarks never move
    silent: tuple[bool, ...]  # [N]
    collide: tuple[bool, ...]  # [E]
    size: tuple[float, ...]  # [E]
    accel: tuple[float, ...]  # [N]
    max_speed: tuple[float, ...]  # [E]


def agent_layout(num_agents: int, num_landmarks: int, dim_c: int, *, movable=True, silent=True, collide=False,
                 size=0.05, accel=DEFAULT_ACCEL, max_speed=np.inf, landmark_collide=False,
                 landmark_size=0.05) -> Layout:
    """A ``Layout`` from scalars or per-agent / per-landmark sequences (a scalar applies to all)."""

    def per(value, n, kind):
        return tuple(np.broadcast_to(np.asarray(value, dtype=kind), (n,)).tolist())

    return Layout(num_agents, num_landmarks, dim_c, per(movable, num_agents, bool), per(silent, num_agents, bool),
                  per(collide, num_agents, bool) + per(landmark_collide, num_landmarks, bool),
                  per(size, num_agents, float) + per(landmark_size, num_landmarks, float),
                  per(accel, num_agents, float), per(max_speed, num_agents, float) + (np.inf,) * num_landmarks)


def positive_int(scenario: str, **values) -> None:
    """Raise ``ValueError`` naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{scenario}: {name} must be a positive integer, got {value!r}")


def others(n: int) -> np.ndarray:
    """int [n, n-1]: row i lists every index but i, in order."""
    return np.array([[j for j in range(n) if j != i] for i in range(n)], np.int32).reshape(n, n - 1)


def members_except(rows, members) -> np.ndarray:
    """int [len(rows), k]: for each index in ``rows``, the ``members`` other than itself (same count per row)."""
    rows, members = list(rows), list(members)
    table = [[m for m in members if m != r] for r in rows]
    width = len(table[0]) if table else 0
    return np.array(table, np.int32).reshape(len(rows), width)


def dist(a: jax.Array, b: jax.Array) -> jax.Array:
    """Euclidean distance over the last axis (length 2), broadcasting the rest."""
    return jnp.sqrt(jnp.sum(jnp.square(a - b), axis=-1))


def bound_penalty(pos: jax.Array) -> jax.Array:
    """mpe2's out-of-area penalty summed over coordinates: pos [..., 2] -> [...].

    Per coordinate ``x = |p|``: 0 below 0.9, ``10 (x - 0.9)`` below 1, else ``min(exp(2x - 2), 10)``."""
    x = jnp.abs(pos)
    pen = jnp.where(x < 0.9, 0.0, jnp.where(x < 1.0, (x - 0.9) * 10.0, jnp.minimum(jnp.exp(2.0 * x - 2.0), 10.0)))
    return jnp.sum(pen, axis=-1)


def _index(x: jax.Array, idx: np.ndarray) -> jax.Array:
    """``x[idx]`` for a static index array, as a slice when the indices are contiguous."""
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return x[int(idx[0]):int(idx[0]) + idx.size]
    return x[idx]


def _set(x: jax.Array, idx: np.ndarray, value: jax.Array) -> jax.Array:
    """``x.at[idx].set(value)`` for a static index array, as a slice update when the indices are contiguous."""
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return jax.lax.dynamic_update_slice_in_dim(x, value.astype(x.dtype), int(idx[0]), axis=0)
    return x.at[idx].set(value)


def world_step(layout: Layout, p_pos: jax.Array, p_vel: jax.Array, u: jax.Array, params: MPEParams,
               position_first: bool = True):
    """mpe2's ``World.step`` physics: p_pos, p_vel [E, 2], u [N, 2] (scaled action forces) -> (p_pos, p_vel).

    mpe2 moves each entity by its old velocity, then damps and accelerates it (``position_first``), as PettingZoo has
    since 1.23 (PR 970); PettingZoo 1.22 and before (the MPE of HARL's published runs) updated the velocity first and
    moved by the new one."""
    movable = np.flatnonzero(layout.movable)  # agents that move (landmarks never do)
    if movable.size == 0:
        return p_pos, p_vel
    force = _index(u, movable)
    colliders = np.flatnonzero(layout.collide)
    hit = np.intersect1d(movable, colliders)  # movable colliders: the entities contact forces act on
    if hit.size and colliders.size > 1:
        delta = _index(p_pos, hit)[:, None, :] - _index(p_pos, colliders)[None, :, :]  # [H, C, 2]
        self_pair = hit[:, None] == colliders[None, :]
        d = jnp.sqrt(jnp.sum(jnp.square(delta), axis=-1))
        d = jnp.where(self_pair, 1.0, d)
        size = params.size
        d_min = _index(size, hit)[:, None] + _index(size, colliders)[None, :]
        k = params.contact_margin
        penetration = jnp.logaddexp(0.0, -(d - d_min) / k) * k
        scale = jnp.where(self_pair, 0.0, params.contact_force * penetration / d)
        contact = jnp.sum(delta * scale[..., None], axis=1)  # [H, 2]
        rows = np.searchsorted(movable, hit)
        force = force + contact if rows.size == movable.size else force.at[rows].add(contact)
    pos = _index(p_pos, movable)
    vel = _index(p_vel, movable)
    if position_first:
        pos = pos + vel * params.dt
    vel = vel * (1.0 - params.damping)
    vel = vel + force / _index(params.mass, movable)[:, None] * params.dt
    max_speed = _index(params.max_speed, movable)[:, None]
    speed = jnp.sqrt(jnp.square(vel[:, :1]) + jnp.square(vel[:, 1:]))
    vel = jnp.where(speed > max_speed, vel / speed * max_speed, vel)
    if not position_first:
        pos = pos + vel * params.dt
    return _set(p_pos, movable, pos), _set(p_vel, movable, vel)


@dataclasses.dataclass(frozen=True)
class MPEEnv(Environment):
    """Base class of the nine scenarios: subclasses give ``layout``, ``rewards`` and ``obs_blocks`` (and set
    ``env_name``, ``num_goals``, ``landmark_limit``); the physics, action decoding, reset and padding live here.

    Episodes last exactly ``max_cycles`` steps. ``obs`` is ``[N, max_obs_dim]``, each agent's true observation
    zero-padded on the right (``observation_spaces`` give the true sizes). Discrete actions are ``[N]`` ints
    (``avail_actions`` masks the padding); continuous ones ``[N, A_max]`` floats of which each agent's first
    ``action_spaces[i].shape[0]`` are used.
    """

    continuous: bool = False
    max_cycles: int = 25
    integration: str = "mpe2"  # "mpe2", or "pettingzoo_1_22": velocity first, then position (see ``world_step``)
    env_name: ClassVar[str] = "mpe"
    num_goals: ClassVar[int] = 0  # landmark indices drawn at reset into ``state.goal``
    landmark_limit: ClassVar[float] = 1.0  # landmarks start uniform in [-limit, limit]^2, agents in [-1, 1]^2

    @property
    def name(self) -> str:
        return self.env_name

    def __post_init__(self):
        positive_int(self.name, max_cycles=self.max_cycles)
        if not isinstance(self.continuous, bool):
            raise ValueError(f"{self.name}: continuous must be a bool, got {self.continuous!r}")
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"{self.name}: integration must be one of {INTEGRATIONS}, got {self.integration!r}")

    # -- to implement ---------------------------------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        """Static structure: agent and landmark counts, message size, movable/silent/collide flags, properties."""
        raise NotImplementedError

    def rewards(self, state: MPEState, params: MPEParams) -> jax.Array:
        """[N] rewards of the state reached by a step."""
        raise NotImplementedError

    def obs_blocks(self, state: MPEState, params: MPEParams) -> tuple[jax.Array, ...]:
        """Observations of consecutive groups of agents sharing a layout: ``[n_g, d_g]`` each, in agent order."""
        raise NotImplementedError

    def local_ratio_default(self) -> float:
        return 0.0

    # -- spaces and parameters ------------------------------------------------------------------------------------
    @property
    def num_agents(self) -> int:
        return self.layout.num_agents

    @property
    def num_entities(self) -> int:
        return self.layout.num_agents + self.layout.num_landmarks

    @property
    def default_params(self) -> MPEParams:
        lay = self.layout
        f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
        return MPEParams(dt=f32(0.1), damping=f32(0.25), contact_force=f32(1e2), contact_margin=f32(1e-3),
                         local_ratio=f32(self.local_ratio_default()), size=f32(lay.size), accel=f32(lay.accel),
                         max_speed=f32(lay.max_speed), mass=jnp.ones(self.num_entities, jnp.float32))

    @functools.cached_property
    def obs_dims(self) -> tuple[int, ...]:
        """True observation size of each agent."""
        state = jax.eval_shape(self.sample_state, jax.ShapeDtypeStruct((2,), jnp.uint32))
        blocks = jax.eval_shape(self.obs_blocks, state, self.default_params)
        return tuple(b.shape[1] for b in blocks for _ in range(b.shape[0]))

    @property
    def observation_spaces(self):
        return tuple(Box(-np.inf, np.inf, (d,)) for d in self.obs_dims)

    @functools.cached_property
    def action_dims(self) -> tuple[int, ...]:
        """Per agent: the number of discrete actions, or the width of the continuous action vector."""
        lay = self.layout
        dims = []
        for movable, silent in zip(lay.movable, lay.silent):
            move = MOVE_DIM if movable else (0 if self.continuous else 1)
            if not silent:
                move = move + lay.dim_c if self.continuous else move * lay.dim_c
            dims.append(move)
        return tuple(dims)

    @property
    def action_spaces(self):
        if self.continuous:
            return tuple(Box(0.0, 1.0, (d,)) for d in self.action_dims)
        return tuple(Discrete(d) for d in self.action_dims)

    @functools.cached_property
    def action_simplices(self) -> tuple[tuple[int, ...], ...]:
        """Per agent, the blocks of its continuous action that are soft one-hots (``SimplexActions``): the 5 movement
        values, then the ``dim_c`` message values of a speaker; a discrete agent's one block of all its actions."""
        if not self.continuous:
            return tuple((d,) for d in self.action_dims)
        lay = self.layout
        return tuple(((MOVE_DIM,) if movable else ()) + (() if silent else (lay.dim_c,))
                     for movable, silent in zip(lay.movable, lay.silent))

    @property
    def num_actions(self) -> int:
        """Width of the padded action axis (discrete choices or continuous dimensions)."""
        return max(self.action_dims)

    def avail_actions(self, state, params=None) -> jax.Array:
        """bool[N, A_max]: the agent's real actions (discrete) or real action dimensions (continuous)."""
        return jnp.arange(self.num_actions)[None, :] < jnp.asarray(self.action_dims)[:, None]

    # -- dynamics -------------------------------------------------------------------------------------------------
    def decode_actions(self, actions: jax.Array, params: MPEParams) -> tuple[jax.Array, jax.Array]:
        """actions [N] int or [N, A_max] float -> (u [N, 2] force before contacts, c [N, dim_c] messages)."""
        lay = self.layout
        n, dim_c = lay.num_agents, lay.dim_c
        movable = np.asarray(lay.movable)
        speaks = ~np.asarray(lay.silent)
        if self.continuous:
            a = jnp.clip(actions.astype(jnp.float32), 0.0, 1.0)
            u = jnp.stack([a[:, 2] - a[:, 1], a[:, 4] - a[:, 3]], axis=-1) if a.shape[1] >= MOVE_DIM else \
                jnp.zeros((n, 2), jnp.float32)
            offset = np.where(movable, MOVE_DIM, 0)[:, None] + np.arange(dim_c)[None, :]
            offset = np.minimum(offset, a.shape[1] - 1)
            c = jnp.take_along_axis(a, jnp.asarray(offset), axis=1) if dim_c else jnp.zeros((n, 0), jnp.float32)
        else:
            a = actions.astype(jnp.int32)
            move = jnp.where(movable, a % MOVE_DIM, 0)
            u = jnp.asarray(MOVES)[move]
            message = jnp.where(movable, a // MOVE_DIM, a)
            c = jax.nn.one_hot(message, dim_c, dtype=jnp.float32)
        u = u * params.accel[:, None] * movable[:, None]
        c = c * speaks[:, None]
        return u, c

    def reset_env(self, key, params):
        state = self.sample_state(key)
        return self.observations(state, params), state

    def step_env(self, key, state, actions, params):
        u, c = self.decode_actions(actions, params)
        p_pos, p_vel = world_step(self.layout, state.p_pos, state.p_vel, u, params, self.integration == "mpe2")
        state = state.replace(p_pos=p_pos, p_vel=p_vel, c=c if self.layout.dim_c else None, t=state.t + 1)
        return TimeStep(obs=self.observations(state, params), state=state,
                        reward=self.rewards(state, params).astype(jnp.float32), terminated=jnp.asarray(False),
                        truncated=state.t >= self.max_cycles, info={})

    def observations(self, state: MPEState, params: MPEParams) -> jax.Array:
        """[N, max_obs_dim]: every agent's observation, zero-padded."""
        blocks = self.obs_blocks(state, params)
        width = max(b.shape[1] for b in blocks)
        return jnp.concatenate([jnp.pad(b, ((0, 0), (0, width - b.shape[1]))) for b in blocks], axis=0)

    def global_state(self, state, params=None):
        """[sum of obs_dims]: the concatenation of all agents' true (unpadded) observations, in agent order (the
        MPE global state of mpe2's ``state()`` and of MAPPO/HARL)."""
        params = self.default_params if params is None else params
        return jnp.concatenate([b.reshape(-1) for b in self.obs_blocks(state, params)])

    def sample_state(self, key: jax.Array) -> MPEState:
        """A fresh world with mpe2's reset distribution: agents uniform in ``[-1, 1]^2``, landmarks in
        ``[-landmark_limit, landmark_limit]^2``, ``num_goals`` uniform landmark indices, at rest and silent."""
        lay = self.layout
        k_pos, k_goal = jax.random.split(key) if self.num_goals else (key, None)
        limit = np.repeat([1.0, self.landmark_limit], [lay.num_agents, lay.num_landmarks]).astype(np.float32)
        pos = jax.random.uniform(k_pos, (self.num_entities, 2), jnp.float32, -1.0, 1.0) * limit[:, None]
        goal = jax.random.randint(k_goal, (self.num_goals,), 0, lay.num_landmarks) if self.num_goals else None
        return self.initial_state(pos[:lay.num_agents], pos[lay.num_agents:], goal)

    def initial_state(self, agent_pos: jax.Array, landmark_pos: jax.Array, goal=None) -> MPEState:
        """A state at rest with silent channels: agent_pos [N, 2], landmark_pos [L, 2], goal [G] ints (or None)."""
        lay = self.layout
        pos = jnp.concatenate([agent_pos, landmark_pos], axis=0).astype(jnp.float32)
        c = jnp.zeros((lay.num_agents, lay.dim_c), jnp.float32) if lay.dim_c else None
        goal = None if goal is None else jnp.asarray(goal, jnp.int32).reshape(-1)
        return MPEState(p_pos=pos, p_vel=jnp.zeros_like(pos), c=c, goal=goal, t=jnp.zeros((), jnp.int32))
