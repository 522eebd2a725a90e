"""Iterated two-player matrix games with memory-one observations: IPD and iterated matching pennies (IMP).

Actions: 0 = cooperate (IMP: heads), 1 = defect (tails). Each agent observes a one-hot of 5 states in its *own*
perspective: 0 = start, then the previous joint action (own, other) as 1 = CC, 2 = CD, 3 = DC, 4 = DD. Payoffs and
the discount are the LOLA paper's (IPD: CC -1, CD -3, DC 0, DD -2; IMP: +1/-1; gamma 0.96). Episodes last
``num_steps`` steps (150, the LOLA-DiCE rollout length) and end with ``truncated=True``.

``exact_value`` gives the closed-form infinite-horizon discounted values of two memory-one policies, each 5 sigmoid
logits of cooperating (indexed like the observation): V = p0^T (I - gamma P)^{-1} r.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core import linalg
from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete

NUM_STATES = 5
# Row: joint action (a0, a1) in agent 0's order CC, CD, DC, DD; payoffs[i, a0, a1] is player i's reward.
IPD_PAYOFFS = np.array([[[-1, -3], [0, -2]], [[-1, 0], [-3, -2]]], np.float32)
IMP_PAYOFFS = np.array([[[1, -1], [-1, 1]], [[-1, 1], [1, -1]]], np.float32)
# Agent 1 sees joint action (a1, a0): its memory state index for joint index 2*a0 + a1.
_SWAP = np.array([0, 2, 1, 3])


@struct.dataclass
class IteratedParams(EnvParams):
    payoffs: jax.Array  # [2, 2, 2] float32
    discount: jax.Array  # float32 scalar, the discount of exact_value (and of learners that read it)


@struct.dataclass
class IteratedState:
    t: jax.Array  # int32 scalar: steps taken in this episode
    joint: jax.Array  # int32 scalar: 0 at the start, else 1 + 2*a0 + a1 (agent 0's perspective)


@dataclasses.dataclass(frozen=True)
class IteratedMatrixGame(Environment):
    deterministic: ClassVar[bool] = True
    game: str = "ipd"  # "ipd" or "imp"
    num_steps: int = 150
    discount: float = 0.96

    def __post_init__(self):
        if self.game not in ("ipd", "imp"):
            raise ValueError(f"game must be 'ipd' or 'imp', got {self.game!r}")
        if not isinstance(self.num_steps, int) or self.num_steps <= 0:
            raise ValueError(f"{self.game}: num_steps must be a positive integer, got {self.num_steps!r}")
        if not 0.0 <= float(self.discount) < 1.0:
            raise ValueError(f"{self.game}: discount must be in [0, 1), got {self.discount!r}")

    @property
    def name(self) -> str:
        return self.game

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def default_params(self) -> IteratedParams:
        payoffs = IPD_PAYOFFS if self.game == "ipd" else IMP_PAYOFFS
        return IteratedParams(payoffs=jnp.asarray(payoffs), discount=jnp.float32(self.discount))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (NUM_STATES,)),) * 2

    @property
    def action_spaces(self):
        return (Discrete(2),) * 2

    def _obs(self, joint: jax.Array) -> jax.Array:
        """[2, 5] one-hot memory states, each in its agent's own perspective."""
        a0, a1 = (joint - 1) // 2, (joint - 1) % 2  # joint = 1 + 2 a0 + a1 after the first step
        own = jnp.where(joint > 0, 1 + 2 * a1 + a0, 0)
        return jax.nn.one_hot(jnp.stack([joint, own]), NUM_STATES, dtype=jnp.float32)

    def reset_env(self, key, params):
        state = IteratedState(t=jnp.zeros((), jnp.int32), joint=jnp.zeros((), jnp.int32))
        return self._obs(state.joint), state

    def step_env(self, key, state, actions, params):
        a0, a1 = actions[0].astype(jnp.int32), actions[1].astype(jnp.int32)
        row = jnp.where(a0 == 0, params.payoffs[:, 0], params.payoffs[:, 1])  # [2, 2]: selects without a gather
        reward = jnp.where(a1 == 0, row[:, 0], row[:, 1])
        new = IteratedState(t=state.t + 1, joint=1 + 2 * a0 + a1)
        return TimeStep(obs=self._obs(new.joint), state=new, reward=reward,
                        terminated=jnp.asarray(False), truncated=new.t >= self.num_steps, info={})

    def global_state(self, state, params=None):
        """[5]: one-hot of the joint memory state in agent 0's perspective."""
        return jax.nn.one_hot(state.joint, NUM_STATES, dtype=jnp.float32)

    # -- exact (closed-form) values ---------------------------------------------------------------------------
    @property
    def num_states(self) -> int:
        """Tabular states: the start and the four previous joint actions (agent 0's perspective)."""
        return NUM_STATES

    def state_index(self, state: IteratedState) -> jax.Array:
        """int32: 0 at the start, else 1 + 2*a0 + a1 for the previous joint action."""
        return state.joint

    @property
    def policy_param_shape(self) -> tuple[int, ...]:
        """Per-agent policy parameters: [5] logits of cooperating, one per memory state."""
        return (NUM_STATES,)

    def policy_probs(self, policy_params: jax.Array) -> jax.Array:
        """[2, 5] logits -> [2, 5] probabilities of cooperating in each (own-perspective) state."""
        return jax.nn.sigmoid(policy_params)

    def exact_value(self, policy_params: jax.Array, params: IteratedParams | None = None,
                    per_step: bool = False) -> jax.Array:
        """[2, 5] logits -> [2] discounted values sum_t gamma^t E[r_t] (times 1 - gamma if ``per_step``)."""
        params = self.default_params if params is None else params
        p = self.policy_probs(policy_params)
        x = jnp.concatenate([p[0, :1], p[0, 1:]])  # agent 0: P(C) at start, CC, CD, DC, DD
        y = jnp.concatenate([p[1, :1], p[1, 1:][_SWAP]])  # agent 1, re-indexed to agent 0's joint order

        def joint(px, py):  # P(CC), P(CD), P(DC), P(DD) for independent cooperation probs
            return jnp.stack([px * py, px * (1 - py), (1 - px) * py, (1 - px) * (1 - py)], axis=-1)

        p0 = joint(x[0], y[0])  # [4]
        transition = joint(x[1:], y[1:])  # [4, 4]: row = previous joint action
        gamma = params.discount
        occupancy = linalg.solve(jnp.eye(4) - gamma * transition.T, p0)  # (I - gamma P)^-T p0
        value = params.payoffs.reshape(2, 4) @ occupancy
        return value * (1.0 - gamma) if per_step else value

    def exact_policy_metrics(self, policy_params: jax.Array) -> dict:
        return {"p_coop": self.policy_probs(policy_params)}


# -- Table 3 criteria of the LOLA paper (its thresholds are not stated; these are ours) ---------------------------
# Memory states in each agent's own perspective: 0 start, 1 CC, 2 CD, 3 DC, 4 DD (own action first).
TFT_TARGET = np.array([1.0, 0.0, 1.0, 0.0], np.float32)  # P(C) of tit-for-tat after CC, CD, DC, DD


def tit_for_tat(p_coop: np.ndarray, margin: float = 0.5) -> np.ndarray:
    """bool [...]: which memory-one IPD policies play tit-for-tat, p_coop [..., 5] (P(cooperate) per own-perspective
    state): in each of the four memory states P(C) lies within ``margin`` of TFT's (1 after the opponent cooperated,
    0 after it defected). ``margin=0.5`` rounds each probability to the nearer pure action. The start state is not
    judged (it is one step of an episode; TFT's first move is a convention)."""
    return np.all(np.abs(np.asarray(p_coop)[..., 1:] - TFT_TARGET) < margin, axis=-1)


def mixed_nash(p_coop: np.ndarray, tol: float = 0.1) -> np.ndarray:
    """bool [...]: which memory-one IMP policies p_coop [..., 5] play the stage game's mixed equilibrium in every
    state (the LOLA paper's "Nash"): P(heads) within ``tol`` of 1/2 in all five states."""
    return np.all(np.abs(np.asarray(p_coop) - 0.5) < tol, axis=-1)
