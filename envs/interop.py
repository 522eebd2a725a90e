"""Interoperability: JaxMARL environments under our contract, and ours under JaxMARL's and PettingZoo's APIs.

``from_jaxmarl(name, **kwargs)`` wraps any environment of JaxMARL's registry (``jaxmarl.make(name, **kwargs)``) as
an ``Environment`` (docs/design.md, "Environments"): agents in JaxMARL's ``env.agents`` order on the leading axis,
observations zero-padded to the widest agent (``[N, *max shape]``), discrete actions ``[N]`` and continuous ones
``[N, A_max]`` (each agent reads its first ``A_i``), rewards ``[N]`` float32. The state is JaxMARL's own, and the key
handling is JaxMARL's (``step`` splits the key into the step's and the reset's in the same order), so the wrapped
environment stepped with the keys of the original gives its observations and rewards exactly, resets included.

JaxMARL has one ``dones["__all__"]``; the split into ``terminated`` and ``truncated``, the global state and the
capabilities come from the rules of the environment's family (``FAMILIES``):

- MPE (``MPE_*``): never terminated, truncated at the time limit; global state: every agent's observation,
  concatenated; ``FixedHorizon``, ``SimplexActions`` (a continuous agent's movement block of 5 if it moves, then
  its message block), and ``TeamReward`` for the four cooperative scenarios.
- SMAX (``SMAX``, ``*EnemySMAX``): terminated when a team is wiped out, truncated otherwise; global state:
  JaxMARL's ``get_world_state``; ``TeamReward`` "common" against a scripted enemy; ``info["won"]`` (bool) on the
  step an episode ends with every enemy dead and an ally alive (where JaxMARL pays its ``won_battle_bonus``).
- MABrax (``ant_4x2``, ...): terminated on brax's ``done`` without ``truncation``, truncated with it; global
  state: brax's full observation; ``TeamReward`` "common".
- any other: truncated when ``state.step`` reached ``max_steps``, terminated otherwise; global state from
  ``get_world_state`` where the class has one.

JaxMARL's MPE and SMAX end an episode by time on the step that starts with ``max_steps`` steps taken, so an MPE
episode lasts ``max_steps + 1`` steps (``num_steps``), where mpe2's (and our ``mpe_*``) last ``max_cycles``.
``AvailableActions`` comes from JaxMARL's ``get_avail_actions`` where the class defines one (SMAX, Hanabi, ...),
from the spaces otherwise (the base class's default). MABrax is built with ``auto_reset=False`` unless asked
otherwise: brax's own reset would replace the observation an episode ends on, which ``info["final_obs"]`` keeps.
``info["agent_done"]`` (bool ``[N]``) carries JaxMARL's per-agent dones (a dead SMAX unit).

The name ``smax`` is JaxMARL's ``HeuristicEnemySMAX`` on a SMAC map (``map_name``, default ``3m``, as in
JaxMARL's own MAPPO baseline); every SMAX name takes ``map_name`` for JaxMARL's ``scenario``, and an environment
built on a named map is called ``jaxmarl:ID(MAP)`` (``jaxmarl:HeuristicEnemySMAX(3m)``).

``to_jaxmarl(env)`` presents one of ours with JaxMARL's ``MultiAgentEnv`` API (dicts keyed by agent name; written
against that API without importing JaxMARL), and ``to_pettingzoo(env)`` as a PettingZoo ``ParallelEnv`` (numpy in
and out, each agent's observation unpadded to its own space).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core.capabilities import GlobalState, has
from jaxmarl_core.env import Environment, TimeStep
from jaxmarl_core.spaces import Box, Discrete, MultiDiscrete, Space

PREFIX = "jaxmarl:"
JAXMARL_INSTALL = "pip install -e .[jaxmarl]"
ALIASES = {"smax": ("HeuristicEnemySMAX", {"map_name": "3m"})}
SIMPLE_ARG_TYPES = (bool, int, float, str)


def _import_jaxmarl(name: str = "JaxMARL environments"):
    """The ``jaxmarl`` module, or a one-line ``ValueError`` naming the install command."""
    try:
        import jaxmarl
    except ImportError:
        raise ValueError(f"{name} needs JaxMARL, which is not installed: {JAXMARL_INSTALL}") from None
    return jaxmarl


# -- the rules of each JaxMARL family -----------------------------------------------------------------------------
def _mpe_split(env, state, done):
    return jnp.zeros_like(done), done


def _teams_alive(env, state) -> tuple[jax.Array, jax.Array]:
    """(some ally alive, some enemy alive) in a SMAX state."""
    inner = getattr(state, "state", state)  # the *EnemySMAX states hold SMAX's
    return jnp.any(inner.unit_alive[: env.num_allies]), jnp.any(inner.unit_alive[env.num_allies:])


def _smax_split(env, state, done):
    allies, enemies = _teams_alive(env, state)
    terminated = done & ~(allies & enemies)
    return terminated, done & ~terminated


def _mabrax_split(env, state, done):
    truncated = done & (state.info["truncation"] > 0)
    return done & ~truncated, truncated


def _smax_won(env, state):
    """The step JaxMARL pays ``won_battle_bonus``: every enemy dead, an ally alive (SMAX allows draws)."""
    allies, enemies = _teams_alive(env, state)
    return allies & ~enemies


def _generic_split(env, state, done):
    limit = getattr(env, "max_steps", None)
    if limit is None or not hasattr(state, "step"):
        return done, jnp.zeros_like(done)
    truncated = done & (state.step >= limit)
    return done & ~truncated, truncated


MPE_MOVE_DIM = 5  # JaxMARL's continuous MPE action: [no-op, -x, +x, -y, +y], then the message


def _mpe_simplices(env) -> tuple[tuple[int, ...], ...]:
    """Per agent, its action's soft one-hot blocks: a discrete agent's one block of its actions; a continuous
    agent's movement block (if it moves) and its message block (the rest of the vector, if any)."""
    out = []
    for i, agent in enumerate(env.agents):
        space = env.action_space(agent)
        if type(space).__name__ == "Discrete":
            out.append((int(space.n),))
            continue
        width, move = int(space.shape[0]), MPE_MOVE_DIM if bool(env.moveable[i]) else 0
        out.append(tuple(d for d in (move, width - move) if d > 0))
    return tuple(out)


def _concatenated_obs(env, state):
    obs = env.get_obs(state)
    return jnp.concatenate([jnp.ravel(obs[a]) for a in env.agents])


def _world_state(env, state):
    return env.get_world_state(state)


def _brax_obs(env, state):
    return state.obs


@dataclasses.dataclass(frozen=True)
class Family:
    """How one JaxMARL family maps onto our contract (see the module's table)."""

    split: Callable  # (jaxmarl env, state reached, done) -> (terminated, truncated)
    global_state: Callable | None = None  # (jaxmarl env, state) -> [S]
    team_reward: dict[str, str] = dataclasses.field(default_factory=dict)  # JaxMARL id -> "common" / "sum"
    horizon: Callable | None = None  # (jaxmarl env) -> steps every episode lasts (FixedHorizon), if they all do
    defaults: dict = dataclasses.field(default_factory=dict)  # constructor arguments we set unless given
    arg_classes: tuple[str, ...] = ()  # JaxMARL classes the constructor forwards **kwargs to
    won: Callable | None = None  # (jaxmarl env, state reached) -> bool: the allies won (``info["won"]`` at an end)
    simplices: Callable | None = None  # (jaxmarl env) -> per agent, its soft one-hot action blocks (SimplexActions)


MABRAX_IDS = ("ant_4x2", "halfcheetah_6x1", "hopper_3x1", "humanoid_9|8", "walker2d_2x3")
FAMILIES = {
    "mpe": Family(_mpe_split, _concatenated_obs, horizon=lambda env: int(env.max_steps) + 1, simplices=_mpe_simplices,
                  team_reward={"MPE_simple_v3": "common", "MPE_simple_spread_v3": "sum",
                               "MPE_simple_reference_v3": "sum", "MPE_simple_speaker_listener_v4": "common"}),
    "smax": Family(_smax_split, _world_state, arg_classes=("SMAX",), won=_smax_won,
                   team_reward={"HeuristicEnemySMAX": "common", "LearnedPolicyEnemySMAX": "common"}),
    "mabrax": Family(_mabrax_split, _brax_obs, defaults={"auto_reset": False},
                     team_reward=dict.fromkeys(MABRAX_IDS, "common")),
    "generic": Family(_generic_split),
}


def family_of(env_id: str) -> str:
    if env_id.startswith("MPE_"):
        return "mpe"
    if env_id in ("SMAX", "HeuristicEnemySMAX", "LearnedPolicyEnemySMAX"):
        return "smax"
    if env_id in MABRAX_IDS:
        return "mabrax"
    return "generic"


def _resolve(name: str) -> tuple[str, dict]:
    """``jaxmarl:NAME`` or ``NAME`` -> (JaxMARL id, our default arguments); unknown names list the valid ones."""
    name = name.removeprefix(PREFIX)
    jaxmarl = _import_jaxmarl(PREFIX + name)
    env_id, defaults = ALIASES.get(name, (name, {}))
    if env_id not in jaxmarl.registration.registered_envs:
        valid = ", ".join(PREFIX + n for n in (*ALIASES, *jaxmarl.registration.registered_envs))
        raise ValueError(f"unknown JaxMARL environment {name!r}; valid names: {valid}")
    return env_id, {**FAMILIES[family_of(env_id)].defaults, **defaults}


def _constructor_args(cls) -> dict:
    """Keyword arguments with simple defaults of ``cls.__init__`` and of the classes it forwards ``**kwargs`` to
    along its MRO."""
    out = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.default is not inspect.Parameter.empty and isinstance(p.default, SIMPLE_ARG_TYPES):
                out.setdefault(p.name, p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return out


@functools.cache
def jaxmarl_env_args(name: str) -> dict:
    """The constructor arguments (with simple defaults) of a JaxMARL environment, ours applied, for ``--env-arg``."""
    env_id, defaults = _resolve(name)
    jaxmarl = _import_jaxmarl()
    family = FAMILIES[family_of(env_id)]
    env = jaxmarl.make(env_id, **_build_kwargs(env_id, dict(defaults)))
    args = _constructor_args(type(env))
    for cls_name in family.arg_classes:
        for k, v in _constructor_args(getattr(jaxmarl.environments, cls_name)).items():
            args.setdefault(k, v)
    if family_of(env_id) == "smax":
        args.setdefault("map_name", None)
    return {**args, **defaults}


def _build_kwargs(env_id: str, kwargs: dict) -> dict:
    """Our arguments -> JaxMARL's: SMAX's ``map_name`` becomes its ``scenario``."""
    map_name = kwargs.pop("map_name", None)
    if map_name is not None:
        from jaxmarl.environments.smax import map_name_to_scenario

        try:
            kwargs["scenario"] = map_name_to_scenario(map_name)
        except KeyError:
            raise ValueError(f"unknown SMAX map {map_name!r}") from None
    return kwargs


# -- JaxMARL -> ours ----------------------------------------------------------------------------------------------
def _space(s) -> Space:
    """A JaxMARL (gymnax-style) space -> ours."""
    kind = type(s).__name__
    if kind == "Discrete":
        return Discrete(int(s.n))
    if kind == "MultiDiscrete":
        return MultiDiscrete(tuple(int(n) for n in np.asarray(s.num_categories)))
    if kind == "Box":
        return Box(np.asarray(s.low, np.float32), np.asarray(s.high, np.float32), tuple(s.shape))
    raise ValueError(f"JaxMARL space {kind} has no counterpart here (Discrete, MultiDiscrete, Box)")


def _pad_to(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    x = jnp.asarray(x)
    return jnp.pad(x, [(0, d - s) for s, d in zip(x.shape, shape)])


@dataclasses.dataclass(frozen=True, eq=False)
class FromJaxMARL(Environment):
    """A JaxMARL ``MultiAgentEnv`` under our contract (see the module); ``jaxmarl_env`` is the wrapped instance."""

    jaxmarl_env: Any
    env_id: str
    map_name: str | None = None  # SMAX: the SMAC map it was built on, where named

    @property
    def name(self) -> str:
        """``jaxmarl:ID``, or ``jaxmarl:ID(MAP)`` for SMAX built on a named map."""
        return PREFIX + self.env_id + (f"({self.map_name})" if self.map_name else "")

    @property
    def family(self) -> Family:
        return FAMILIES[family_of(self.env_id)]

    @property
    def agents(self) -> tuple[str, ...]:
        return tuple(self.jaxmarl_env.agents)

    @property
    def num_agents(self) -> int:
        return len(self.jaxmarl_env.agents)

    @functools.cached_property
    def observation_spaces(self) -> tuple[Space, ...]:
        return tuple(_space(self.jaxmarl_env.observation_space(a)) for a in self.agents)

    @functools.cached_property
    def action_spaces(self) -> tuple[Space, ...]:
        return tuple(_space(self.jaxmarl_env.action_space(a)) for a in self.agents)

    @property
    def num_actions(self) -> int:
        """Width of the padded action axis: discrete choices, or continuous / multi-discrete dimensions."""
        return max(s.n if isinstance(s, Discrete) else int(np.prod(s.shape)) for s in self.action_spaces)

    def _obs(self, obs: dict) -> jax.Array:
        """JaxMARL's dict -> [N, *max shape], zero-padded."""
        shape = tuple(max(d) for d in zip(*(s.shape for s in self.observation_spaces)))
        dtype = jnp.result_type(*(obs[a] for a in self.agents))
        return jnp.stack([_pad_to(obs[a], shape).astype(dtype) for a in self.agents])

    def _actions(self, actions: jax.Array) -> dict:
        """[N] or [N, A_max] -> JaxMARL's dict, each agent's true width."""
        out = {}
        for i, (agent, space) in enumerate(zip(self.agents, self.action_spaces)):
            out[agent] = actions[i] if isinstance(space, Discrete) else actions[i, : space.shape[0]]
        return out

    def reset_env(self, key, params):
        obs, state = self.jaxmarl_env.reset(key)
        return self._obs(obs), state

    def step_env(self, key, state, actions, params):
        obs, state, reward, dones, _ = self.jaxmarl_env.step_env(key, state, self._actions(actions))
        done = jnp.asarray(dones["__all__"], bool)
        terminated, truncated = self.family.split(self.jaxmarl_env, state, done)
        info = {"agent_done": jnp.stack([jnp.asarray(dones[a], bool) for a in self.agents])}
        if self.family.won is not None:
            info["won"] = done & self.family.won(self.jaxmarl_env, state)
        return TimeStep(obs=self._obs(obs), state=state,
                        reward=jnp.stack([jnp.asarray(reward[a], jnp.float32) for a in self.agents]),
                        terminated=terminated, truncated=truncated, info=info)

    def avail_actions(self, state, params=None):
        """bool[N, A]: JaxMARL's masks (padded with False) where its class defines them; else from the spaces."""
        if not _defines_avail_actions(self.jaxmarl_env):
            return super().avail_actions(state, params)
        avail = self.jaxmarl_env.get_avail_actions(state)
        return jnp.stack([_pad_to(jnp.asarray(avail[a], bool), (self.num_actions,)) for a in self.agents])


def _defines_avail_actions(env) -> bool:
    from jaxmarl.environments.multi_agent_env import MultiAgentEnv

    return type(env).get_avail_actions is not MultiAgentEnv.get_avail_actions


class _GlobalState:
    def global_state(self, state, params=None):
        """[S]: the family's world state (see the module)."""
        rule = self.family.global_state or _world_state
        return jnp.ravel(rule(self.jaxmarl_env, state))


class _FixedHorizon:
    num_steps = property(lambda self: self.family.horizon(self.jaxmarl_env))


class _TeamReward:
    team_reward = property(lambda self: self.family.team_reward[self.env_id])


class _SimplexActions:
    action_simplices = property(lambda self: self.family.simplices(self.jaxmarl_env))


@functools.cache
def _from_jaxmarl_class(mixins: tuple[type, ...]) -> type:
    """One class per set of capabilities (``capabilities.has`` then sees exactly those declared)."""
    if not mixins:
        return FromJaxMARL
    return type("FromJaxMARL" + "".join(m.__name__ for m in mixins), (*mixins, FromJaxMARL), {})


def from_jaxmarl(name: str, **kwargs) -> FromJaxMARL:
    """JaxMARL's ``name`` (a registry id such as ``MPE_simple_spread_v3``, ``HeuristicEnemySMAX``, ``ant_4x2``, or
    ``smax``; ``jaxmarl:`` prefix optional) built with ``kwargs``, under our contract with its family's
    capabilities. Without JaxMARL installed, a ``ValueError`` names the install command."""
    env_id, defaults = _resolve(name)
    jaxmarl = _import_jaxmarl()
    try:
        env = jaxmarl.make(env_id, **_build_kwargs(env_id, {**defaults, **kwargs}))
    except TypeError as e:
        raise ValueError(f"{PREFIX}{name.removeprefix(PREFIX)}: {e}") from None
    family = FAMILIES[family_of(env_id)]
    mixins = []
    if family.global_state is not None or callable(getattr(type(env), "get_world_state", None)):
        mixins.append(_GlobalState)
    if family.horizon is not None:
        mixins.append(_FixedHorizon)
    if env_id in family.team_reward:
        mixins.append(_TeamReward)
    if family.simplices is not None:
        mixins.append(_SimplexActions)
    map_name = {**defaults, **kwargs}.get("map_name") if family_of(env_id) == "smax" else None
    return _from_jaxmarl_class(tuple(mixins))(jaxmarl_env=env, env_id=env_id, map_name=map_name)


# -- ours -> JaxMARL ----------------------------------------------------------------------------------------------
def _unpad(x, space: Space):
    """An agent's row of a padded array -> its space's shape."""
    return x[tuple(slice(0, d) for d in space.shape)]


class ToJaxMARL:
    """One of our environments with JaxMARL's ``MultiAgentEnv`` API: ``reset(key) -> (obs, state)``,
    ``step(key, state, actions) -> (obs, state, rewards, dones, infos)`` with dicts keyed by ``agents``
    (``agent_0``, ...), ``dones["__all__"]``, automatic reset, ``observation_space(agent)``,
    ``action_space(agent)``, ``get_avail_actions(state)``; ``get_world_state(state)`` where the environment has a
    global state. Observations are each agent's own (unpadded); ``infos`` holds ``terminated``, ``truncated`` and
    ``final_obs`` (a dict like the observations)."""

    def __init__(self, env: Environment, params: Any = None):
        self.env = env
        self.params = env.default_params if params is None else params
        self.num_agents = env.num_agents
        self.agents = [f"agent_{i}" for i in range(env.num_agents)]
        self.observation_spaces = dict(zip(self.agents, env.observation_spaces))
        self.action_spaces = dict(zip(self.agents, env.action_spaces))

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def agent_classes(self) -> dict:
        """{group name: its agents} (``env.groups``)."""
        out, start = {}, 0
        for group in self.env.groups:
            out[group.name] = self.agents[start:start + group.size]
            start += group.size
        return out

    def observation_space(self, agent: str) -> Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> Space:
        return self.action_spaces[agent]

    def _dict(self, x) -> dict:
        return {a: _unpad(x[i], s) for i, (a, s) in enumerate(zip(self.agents, self.env.observation_spaces))}

    def _joint(self, actions: dict) -> jax.Array:
        rows = [jnp.asarray(actions[a]) for a in self.agents]
        if all(isinstance(s, Discrete) for s in self.env.action_spaces):
            return jnp.stack(rows).astype(jnp.int32)
        width = self.env.num_actions
        return jnp.stack([jnp.pad(r.astype(jnp.float32), (0, width - r.shape[0])) for r in rows])

    def reset(self, key):
        obs, state = self.env.reset(key, self.params)
        return self._dict(obs), state

    def step(self, key, state, actions: dict, reset_state=None):
        if reset_state is not None:
            raise NotImplementedError("ToJaxMARL resets with a fresh episode only (reset_state is not supported)")
        ts = self.env.step(key, state, self._joint(actions), self.params)
        dones = dict.fromkeys(self.agents, ts.done)
        dones["__all__"] = ts.done
        infos = {"terminated": ts.terminated, "truncated": ts.truncated,
                 "final_obs": self._dict(ts.info["final_obs"])}
        return self._dict(ts.obs), ts.state, dict(zip(self.agents, ts.reward)), dones, infos

    def get_avail_actions(self, state) -> dict:
        avail = self.env.avail_actions(state, self.params)
        return {a: avail[i, : s.n] for i, (a, s) in enumerate(zip(self.agents, self.env.action_spaces))}

    def get_world_state(self, state) -> jax.Array:
        if not has(self.env, GlobalState):
            raise NotImplementedError(f"{self.env.name} has no global state")
        return self.env.global_state(state, self.params)


def to_jaxmarl(env: Environment, params: Any = None) -> ToJaxMARL:
    """``env`` (with ``params``, default its own) as a JaxMARL-style ``MultiAgentEnv`` (see ``ToJaxMARL``)."""
    return ToJaxMARL(env, params)


# -- ours -> PettingZoo -------------------------------------------------------------------------------------------
def _gym_space(space: Space):
    from gymnasium import spaces as gym

    if isinstance(space, Discrete):
        return gym.Discrete(space.n)
    if isinstance(space, MultiDiscrete):
        return gym.MultiDiscrete(list(space.nvec))
    return gym.Box(low=np.asarray(space.low), high=np.asarray(space.high), shape=space.shape, dtype=np.float32)


def to_pettingzoo(env: Environment, params: Any = None):
    """``env`` as a PettingZoo ``ParallelEnv``: agents ``agent_0``, ..., numpy observations cut to each agent's
    space (cast to its dtype), ``infos[agent]["action_mask"]`` for discrete agents; the episode ends for every agent
    at once (``agents`` becomes empty) when ``env`` terminates or truncates. ``reset(seed=s)`` draws keys from
    ``PRNGKey(s)``; a reset without a seed continues the key sequence."""
    from pettingzoo import ParallelEnv

    class PettingZooEnv(ParallelEnv):
        metadata = {"name": env.name, "render_modes": [], "is_parallelizable": True}

        def __init__(self):
            self.env = env
            self.params = env.default_params if params is None else params
            self.possible_agents = [f"agent_{i}" for i in range(env.num_agents)]
            self.agents = []
            self.observation_spaces = {a: _gym_space(s) for a, s in zip(self.possible_agents, env.observation_spaces)}
            self.action_spaces = {a: _gym_space(s) for a, s in zip(self.possible_agents, env.action_spaces)}
            self._jaxmarl = ToJaxMARL(env, self.params)
            self._reset = jax.jit(lambda key: env.reset(key, self.params))
            self._step = jax.jit(lambda key, state, a: env.step_env(key, state, a, self.params))
            self._avail = jax.jit(lambda state: env.avail_actions(state, self.params))
            self._key = jax.random.PRNGKey(0)
            self._state = None

        def observation_space(self, agent):
            return self.observation_spaces[agent]

        def action_space(self, agent):
            return self.action_spaces[agent]

        def _next_key(self):
            self._key, key = jax.random.split(self._key)
            return key

        def _observe(self, obs) -> dict:
            return {a: np.asarray(_unpad(np.asarray(obs)[i], s), dtype=self.observation_spaces[a].dtype)
                    for i, (a, s) in enumerate(zip(self.possible_agents, env.observation_spaces))}

        def _infos(self) -> dict:
            infos = {a: {} for a in self.agents}
            if all(isinstance(s, Discrete) for s in env.action_spaces):
                avail = np.asarray(self._avail(self._state))
                for i, (a, s) in enumerate(zip(self.possible_agents, env.action_spaces)):
                    if a in infos:
                        infos[a]["action_mask"] = avail[i, : s.n].astype(np.int8)
            return infos

        def reset(self, seed=None, options=None):
            if seed is not None:
                self._key = jax.random.PRNGKey(seed)
            obs, self._state = self._reset(self._next_key())
            self.agents = list(self.possible_agents)
            return self._observe(obs), self._infos()

        def step(self, actions):
            joint = self._jaxmarl._joint({a: actions.get(a, np.zeros(s.shape, s.dtype))
                                          for a, s in self.action_spaces.items()})
            ts = self._step(self._next_key(), self._state, joint)
            self._state = ts.state
            obs = {a: o for a, o in self._observe(ts.obs).items() if a in self.agents}
            rewards = {a: float(ts.reward[i]) for i, a in enumerate(self.possible_agents) if a in self.agents}
            terminations = dict.fromkeys(self.agents, bool(ts.terminated))
            truncations = dict.fromkeys(self.agents, bool(ts.truncated))
            infos = self._infos()
            if bool(ts.done):
                self.agents = []
            return obs, rewards, terminations, truncations, infos

        def state(self):
            if not has(env, GlobalState):
                raise NotImplementedError(f"{env.name} has no global state")
            return np.asarray(env.global_state(self._state, self.params))

    return PettingZooEnv()


__all__ = ["from_jaxmarl", "to_jaxmarl", "to_pettingzoo", "FromJaxMARL", "ToJaxMARL", "FAMILIES", "PREFIX",
           "JAXMARL_INSTALL", "jaxmarl_env_args"]
