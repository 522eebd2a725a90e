"""The two-step game of the QMIX paper (Rashid et al., 2018, section 6.1 and its appendix), a cooperative game whose
optimal joint policy a sum of per-agent values (VDN) cannot represent but QMIX's monotonic mixing can.

Two agents with two actions each (0 and 1, the paper's A and B). In the first state, agent 0's action alone chooses
the second state: action 0 leads to state 2A, action 1 to state 2B (agent 1's action does nothing, and the first
step pays 0). In state 2A every joint action pays 7; in state 2B the joint action (a_0, a_1) pays
``[[0, 1], [1, 8]][a_0][a_1]``. Both agents receive the same reward, and the episode ends after the second step
(``terminated``). The optimal joint policy goes to 2B and plays (1, 1) for 8.

States are indexed 0 (the first state), 1 (2A) and 2 (2B). Each agent observes the state's one-hot [3], which is
also the global state: the game is fully observable, as in the paper, where agents and mixer see the state.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete
from jaxmarl_core.tabular import TabularModel

FIRST, STATE_2A, STATE_2B = 0, 1, 2
NUM_STATES = 3
NUM_ACTIONS = 2


def two_step_payoffs() -> np.ndarray:
    """[3, 2, 2]: the common reward of each state and joint action (a_0, a_1)."""
    return np.array([[[0, 0], [0, 0]], [[7, 7], [7, 7]], [[0, 1], [1, 8]]], np.float32)


@struct.dataclass
class TwoStepParams(EnvParams):
    payoffs: jax.Array  # [3, 2, 2] float32: the common reward of each state and joint action


@struct.dataclass
class TwoStepState:
    s: jax.Array  # int32 scalar: the state index (0 first, 1 2A, 2 2B)
    t: jax.Array  # int32 scalar: steps taken in the episode


@dataclasses.dataclass(frozen=True)
class TwoStepGame(Environment):
    deterministic: ClassVar[bool] = True
    discount: ClassVar[float] = 0.99  # the paper's discount (its Q_tot of the first state is 0.99 * 8)

    @property
    def name(self) -> str:
        return "two_step"

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def num_steps(self) -> int:
        """Every episode lasts two steps."""
        return 2

    @property
    def default_params(self) -> TwoStepParams:
        return TwoStepParams(payoffs=jnp.asarray(two_step_payoffs()))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (NUM_STATES,)),) * 2

    @property
    def action_spaces(self):
        return (Discrete(NUM_ACTIONS),) * 2

    def _obs(self, state: TwoStepState) -> jax.Array:
        """[2, 3]: the state's one-hot for each agent."""
        return jnp.broadcast_to(self.global_state(state), (2, NUM_STATES))

    def reset_env(self, key, params):
        state = TwoStepState(s=jnp.asarray(FIRST, jnp.int32), t=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    def step_env(self, key, state, actions, params):
        actions = jnp.asarray(actions, jnp.int32)
        reward = params.payoffs[state.s, actions[0], actions[1]]
        nxt = jnp.where(state.s == FIRST, STATE_2A + actions[0], state.s).astype(jnp.int32)
        new = TwoStepState(s=nxt, t=state.t + 1)
        return TimeStep(obs=self._obs(new), state=new, reward=jnp.full((2,), reward, jnp.float32),
                        terminated=new.t >= 2, truncated=jnp.asarray(False), info={})

    def global_state(self, state, params=None):
        """[3]: the state's one-hot."""
        return jax.nn.one_hot(state.s, NUM_STATES, dtype=jnp.float32)

    # -- the tabular view -----------------------------------------------------------------------------------------
    @property
    def num_states(self) -> int:
        return NUM_STATES

    def state_index(self, state: TwoStepState) -> jax.Array:
        return state.s.astype(jnp.int32)

    def tabular_model(self, params: TwoStepParams | None = None) -> TabularModel:
        """transition [3, 2, 2, 3] (the second states end the episode), reward [3, 2, 2, 2], initial [3]."""
        params = self.default_params if params is None else params
        transition = np.zeros((NUM_STATES, NUM_ACTIONS, NUM_ACTIONS, NUM_STATES), np.float32)
        transition[FIRST, 0, :, STATE_2A] = 1.0
        transition[FIRST, 1, :, STATE_2B] = 1.0
        reward = jnp.broadcast_to(params.payoffs[..., None], (NUM_STATES, NUM_ACTIONS, NUM_ACTIONS, 2))
        return TabularModel(transition=jnp.asarray(transition), reward=reward,
                            initial=jax.nn.one_hot(FIRST, NUM_STATES, dtype=jnp.float32))
