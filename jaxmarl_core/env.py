"""The environment contract (docs/design.md, "Environments"); optional features are the protocols of
``jaxmarl_core.capabilities``.

An environment is a frozen dataclass holding only static structure (agent counts, horizons); the numbers a study
may vmap over live in an ``EnvParams`` pytree passed to every method. Agents are a leading axis: ``obs`` is
``[N, ...]``, discrete actions ``[N]``, rewards ``[N]``; ``terminated`` and ``truncated`` are scalar booleans.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.spaces import AgentGroup, Discrete, Space, group_agents, per_agent_spaces


@struct.dataclass
class EnvParams:
    """Base class of environment parameter pytrees (subclasses add fields)."""


@struct.dataclass
class TimeStep:
    """What ``step`` returns.

    obs: [N, ...]; reward: [N] float32; terminated, truncated: bool scalars; info: dict of arrays, always with
    ``final_obs`` (the observation reached by the step, before any automatic reset).
    """

    obs: jax.Array
    state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    info: dict

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


@dataclasses.dataclass(frozen=True)
class Environment:
    """Base class: subclasses implement ``reset_env`` and ``step_env``; ``step`` adds the automatic reset."""

    # True where ``reset`` and ``step`` never use their key (matrix and iterated games): batched rollouts then give
    # one key to the whole batch instead of drawing B keys a step, which dominates the cost of such cheap steps.
    deterministic: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def num_agents(self) -> int:
        raise NotImplementedError

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def observation_spaces(self) -> tuple[Space, ...]:
        raise NotImplementedError

    @property
    def action_spaces(self) -> tuple[Space, ...]:
        raise NotImplementedError

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        """Groups of identical agents, in order and contiguous on the agent axis (sizes sum to N). By default the
        runs of consecutive agents with equal spaces; a large population declares its groups and derives the
        per-agent tuples from them (``spaces.per_agent_spaces``)."""
        return group_agents(self.observation_spaces, self.action_spaces)

    # -- to implement -------------------------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, Any]:
        """-> (obs [N, ...], state)."""
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: Any, actions: jax.Array, params: EnvParams) -> TimeStep:
        """One transition without automatic reset; ``info`` may carry extra per-step arrays."""
        raise NotImplementedError

    # -- the contract ---------------------------------------------------------------------------------------------
    def reset(self, key: jax.Array, params: EnvParams | None = None) -> tuple[jax.Array, Any]:
        params = self.default_params if params is None else params
        return self.reset_env(key, params)

    def step(self, key: jax.Array, state: Any, actions: jax.Array, params: EnvParams | None = None) -> TimeStep:
        """Step with automatic reset: when the episode ends, ``obs``/``state`` are a fresh episode's and
        ``info["final_obs"]`` is the observation the episode ended on."""
        return self.step_with_final_state(key, state, actions, params)[0]

    def step_with_final_state(self, key: jax.Array, state: Any, actions: jax.Array,
                              params: EnvParams | None = None) -> tuple[TimeStep, Any]:
        """``step`` and the state the step reached before any reset (tabular learners bootstrap from its index)."""
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        ts = self.step_env(key_step, state, actions, params)
        reset_obs, reset_state = self.reset_env(key_reset, params)
        done = ts.done
        obs = jax.tree.map(lambda r, o: jnp.where(done, r, o), reset_obs, ts.obs)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, ts.state)
        info = dict(ts.info)
        info["final_obs"] = ts.obs
        return ts.replace(obs=obs, state=new_state, info=info), ts.state

    def avail_actions(self, state: Any, params: EnvParams | None = None) -> jax.Array:
        """bool[N, A]: legal (and not padded) actions. This default serves environments whose agents all have
        discrete action spaces (every action legal, ``False`` only on the padding of smaller spaces); it raises
        ``NotImplementedError`` for other spaces. Environments with illegal actions or continuous actions that
        still mask a padded axis override it. (The centralised state is the ``GlobalState`` capability of
        ``jaxmarl_core.capabilities``, which the base class does not provide.)"""
        sizes = [s.n for s in self.action_spaces if isinstance(s, Discrete)]
        if len(sizes) != self.num_agents:
            raise NotImplementedError(f"{self.name}: avail_actions is defined for discrete action spaces")
        a_max = max(sizes)
        return jnp.arange(a_max)[None, :] < jnp.asarray(sizes)[:, None]

    @property
    def num_actions(self) -> int:
        """Largest number of discrete actions over agents (the padded action axis)."""
        return max(s.n for s in self.action_spaces)


class GroupedEnvironment(Environment):
    """Base of large populations: a subclass declares ``groups``; the per-agent spaces derive from them."""

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        raise NotImplementedError

    @property
    def observation_spaces(self) -> tuple[Space, ...]:
        return per_agent_spaces(self.groups)[0]

    @property
    def action_spaces(self) -> tuple[Space, ...]:
        return per_agent_spaces(self.groups)[1]
