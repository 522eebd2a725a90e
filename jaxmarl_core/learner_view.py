"""The environment as a learner sees it: a structured record per step (``LearnerObs``) in place of the bare
observation, so that one rollout (``jaxmarl_core.rollout``) records everything training needs.

``LearnerView(env)`` wraps an environment with the same ``reset``/``step`` contract, but its observations are
``LearnerObs`` records: each agent's observation flattened to [N, D], the available actions of discrete agents
[N, A], the global state [S] (once per environment, not per agent) and whether the step starts an episode. The
``final_obs`` of a step is the record of the state the step reached before any automatic reset (its global state
and available actions included), which bootstrapping learners value. Continuous (Box) actions are clipped to the
Box bounds before the environment sees them; agents with fewer action dimensions than the widest are padded with
bounds [0, 0]. Available actions and the global state come from the ``AvailableActions`` and ``GlobalState``
capabilities (``jaxmarl_core.capabilities``); discrete agents of an environment without ``AvailableActions`` may take
every action of their own space.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.capabilities import AvailableActions, GlobalState
from jaxmarl_core.env import EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete


@struct.dataclass
class LearnerObs:
    """One environment's step as the learner sees it (a rollout stacks these on leading [T, B] axes).

    obs: [N, D] float32, each agent's observation flattened; avail: [N, A] bool, legal discrete actions (None for
    continuous actions); global_state: [S] float32, the centralised state (None unless asked for); first: [] bool,
    True where the observation starts an episode.
    """

    obs: jax.Array
    avail: jax.Array | None
    global_state: jax.Array | None
    first: jax.Array


def padded_action_mask(spaces) -> np.ndarray:
    """bool [N, A]: action a < n_i of each agent's Discrete space, or dimension a < d_i of its Box (A: the largest)."""
    sizes = [s.n if isinstance(s, Discrete) else s.shape[0] for s in spaces]
    return np.arange(max(sizes))[None, :] < np.asarray(sizes)[:, None]


@dataclasses.dataclass(frozen=True)
class LearnerView:
    """``env`` with ``LearnerObs`` observations; ``with_state`` records the global state (centralised critics,
    mixers). Actions are all-Discrete [N] or all-Box (vector) [N, A], A the widest agent's dimension."""

    env: Any
    with_state: bool = False

    def __post_init__(self):
        spaces = self.env.action_spaces
        if not (all(isinstance(s, Discrete) for s in spaces)
                or all(isinstance(s, Box) and len(s.shape) == 1 for s in spaces)):
            raise ValueError(f"LearnerView needs all-Discrete or all-Box (vector) action spaces; "
                             f"{self.env.name} has {spaces}")
        if self.with_state and not isinstance(self.env, GlobalState):
            raise ValueError(f"the global state needs the GlobalState capability, which {self.env.name} lacks")

    # -- static structure -----------------------------------------------------------------------------------------
    @property
    def deterministic(self) -> bool:
        return self.env.deterministic

    @property
    def num_agents(self) -> int:
        return self.env.num_agents

    @property
    def default_params(self) -> EnvParams:
        return self.env.default_params

    @property
    def discrete(self) -> bool:
        return isinstance(self.env.action_spaces[0], Discrete)

    @property
    def num_actions(self) -> int:
        """A: the padded action axis (discrete actions, or Box dimensions)."""
        return int(padded_action_mask(self.env.action_spaces).shape[1])

    @property
    def obs_dim(self) -> int:
        """D: the flattened observation size (observations padded to a common shape by the environment)."""
        obs = jax.eval_shape(self.env.reset, jax.random.PRNGKey(0), self.default_params)[0]
        return int(np.prod(obs.shape[1:]))

    @property
    def state_dim(self) -> int:
        """S: the global state's size (0 without ``with_state``)."""
        if not self.with_state:
            return 0
        params = self.default_params
        state = jax.eval_shape(self.env.reset, jax.random.PRNGKey(0), params)[1]
        return int(np.prod(jax.eval_shape(self.env.global_state, state, params).shape))

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box bounds (low, high), each float32 [N, A]; padded dimensions are [0, 0]."""
        spaces = self.env.action_spaces
        low = np.zeros((len(spaces), self.num_actions), np.float32)
        high = np.zeros_like(low)
        for i, s in enumerate(spaces):
            low[i, :s.shape[0]], high[i, :s.shape[0]] = s.low, s.high
        return low, high

    # -- the record -------------------------------------------------------------------------------------------------
    def record(self, obs: jax.Array, state: Any, params: EnvParams, first) -> LearnerObs:
        """Observations [N, ...] and the state they were made in -> LearnerObs."""
        n = obs.shape[0]
        avail = None
        if self.discrete:
            avail = (self.env.avail_actions(state, params).astype(bool) if isinstance(self.env, AvailableActions)
                     else jnp.asarray(padded_action_mask(self.env.action_spaces)))
        gs = self.env.global_state(state, params).reshape(-1).astype(jnp.float32) if self.with_state else None
        return LearnerObs(obs=obs.reshape(n, -1).astype(jnp.float32), avail=avail, global_state=gs,
                          first=jnp.asarray(first, bool))

    # -- the environment contract ---------------------------------------------------------------------------------
    def reset(self, key: jax.Array, params: EnvParams | None = None) -> tuple[LearnerObs, Any]:
        params = self.default_params if params is None else params
        obs, state = self.env.reset(key, params)
        return self.record(obs, state, params, True), state

    def step(self, key: jax.Array, state: Any, actions: jax.Array, params: EnvParams | None = None) -> TimeStep:
        """The wrapped environment's step with ``LearnerObs`` observations; ``info["final_obs"]`` is the record of
        the state reached before any reset."""
        return self.step_with_final_state(key, state, actions, params)[0]

    def step_with_final_state(self, key: jax.Array, state: Any, actions: jax.Array,
                              params: EnvParams | None = None) -> tuple[TimeStep, Any]:
        """``step`` and the state the step reached before any reset (learners that query it, e.g. for the
        neighbourhoods of the observation they bootstrap from)."""
        params = self.default_params if params is None else params
        if not self.discrete:
            low, high = self.action_bounds()
            actions = jnp.clip(actions, jnp.asarray(low), jnp.asarray(high))
        ts, final_state = self.env.step_with_final_state(key, state, actions, params)
        info = dict(ts.info)
        info["final_obs"] = self.record(ts.info["final_obs"], final_state, params, False)
        return ts.replace(obs=self.record(ts.obs, ts.state, params, ts.done), info=info), final_state
