"""Optional environment capabilities, declared as runtime-checkable protocols.

The environment contract (``jaxmarl_core.env.Environment``) is ``reset``/``step`` and the spaces. Everything else a
learner may need is a capability an environment has or lacks; learners test for it with ``has(env, Cap)`` (never
with ``hasattr`` or a concrete environment class), and ``algos.compatible`` names a missing one (``missing``).
``isinstance`` on a runtime-checkable protocol checks that the members exist, not their signatures: the signatures
below are the contract.

| protocol | members | used by |
| --- | --- | --- |
| ``AvailableActions`` | ``avail_actions(state, params) -> bool[N, A]`` | discrete-action learners (masking) |
| ``GlobalState`` | ``global_state(state, params) -> [S]`` | centralised critics and mixers |
| ``TabularStates`` | ``num_states``, ``state_index(state) -> int32`` | tabular learners, memory-one policies |
| ``TabularModel`` | ``tabular_model(params) -> jaxmarl_core.tabular.TabularModel`` | value iteration, NashConv |
| ``MatrixPayoffs`` | ``expected_payoffs(probs [N, A], params) -> [N]`` | payoff-gradient learners, exact metrics |
| ``DeviationGains`` | ``deviation_gains(probs [N, A], params) -> [N]`` | NashConv of matrix-game strategies |
| ``ExactValue`` | ``policy_param_shape``, ``exact_value(theta [N, *shape], params) -> [N]`` | exact-gradient learners |
| ``FixedHorizon`` | ``num_steps`` (every episode lasts exactly this many steps) | episodic batch learners |
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax


@runtime_checkable
class AvailableActions(Protocol):
    def avail_actions(self, state: Any, params: Any = None) -> jax.Array:
        """bool[N, A]: legal (and not padded) discrete actions."""


@runtime_checkable
class GlobalState(Protocol):
    def global_state(self, state: Any, params: Any = None) -> jax.Array:
        """[S]: a flat view of the whole state, for centralised critics."""


@runtime_checkable
class TabularStates(Protocol):
    @property
    def num_states(self) -> int:
        """Number of tabular states."""

    def state_index(self, state: Any) -> jax.Array:
        """int32 scalar in ``[0, num_states)``."""


@runtime_checkable
class TabularModel(Protocol):
    def tabular_model(self, params: Any = None) -> Any:
        """The exact transition, reward and initial-state tensors (``jaxmarl_core.tabular.TabularModel``)."""


@runtime_checkable
class MatrixPayoffs(Protocol):
    def expected_payoffs(self, probs: jax.Array, params: Any = None) -> jax.Array:
        """[N, A] mixed strategies -> [N] expected payoffs."""


@runtime_checkable
class DeviationGains(Protocol):
    def deviation_gains(self, probs: jax.Array, params: Any = None) -> jax.Array:
        """[N, A] mixed strategies -> [N] gains of each player's best pure deviation."""


@runtime_checkable
class ExactValue(Protocol):
    @property
    def policy_param_shape(self) -> tuple[int, ...]:
        """Per-agent policy parameter shape."""

    def exact_value(self, policy_params: jax.Array, params: Any = None, per_step: bool = False) -> jax.Array:
        """[N, *policy_param_shape] -> [N] closed-form values (per step if ``per_step``)."""


@runtime_checkable
class FixedHorizon(Protocol):
    @property
    def num_steps(self) -> int:
        """Every episode lasts exactly this many steps."""


def has(env: Any, *capabilities: type) -> bool:
    """True where ``env`` has every one of ``capabilities``."""
    return all(isinstance(env, cap) for cap in capabilities)


def missing(env: Any, *capabilities: type) -> str | None:
    """None if ``env`` has every capability, else a sentence naming the first one it lacks."""
    for cap in capabilities:
        if not isinstance(env, cap):
            return f"needs the {cap.__name__} capability, which {getattr(env, 'name', type(env).__name__)} lacks"
    return None
