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
| ``MatrixPayoffs`` | ``payoff_array``, ``expected_payoffs(probs [N, A], params) -> [N]`` | payoff-gradient learners |
| ``DeviationGains`` | ``deviation_gains(probs [N, A], params) -> [N]`` | NashConv of matrix-game strategies |
| ``ExactValue`` | ``policy_param_shape``, ``exact_value(theta [N, *shape], params) -> [N]`` | exact-gradient learners |
| ``FixedHorizon`` | ``num_steps`` (every episode lasts exactly this many steps) | episodic batch learners |
| ``Discounted`` | ``discount``: the discount the game is defined with | learners' default gamma |
| ``TeamReward`` | ``team_reward``: "common" (all agents get one reward) or "sum" (the team's is the sum) | VDN, QMIX |
| ``NeighbourMeanAction`` | ``neighbour_mean_action(state, actions [N], params) -> [N, A]`` | mean-field learners |
| ``SimplexActions`` | ``action_simplices``: per agent, its action's soft one-hot block sizes | MADDPG (Gumbel) |
| ``Neighbourhood`` | ``num_neighbours``, ``neighbours(state, params) -> (int32[N, K], bool[N, K])`` | DGN, GA-Comm |
| ``AgentEpisodes`` | ``agent_episodes``: ``info["agent_done"]`` bool[N] ends agents' own episodes | GA-Comm, DGN, IL |
| ``StepMetrics`` | ``step_metrics``: names of ``info`` entries to log as means over steps | on-policy learners |

A ``MatrixPayoffs`` game's params carry ``payoff_array`` as ``payoffs`` (what learning automata scale rewards by);
an ``ExactValue`` game also gives ``exact_policy_metrics(theta) -> dict`` (readable policies, e.g. probabilities).
``Discounted`` is also the protocol of an ``EnvParams`` pytree that carries the discount as a (vmappable) float32
field (the iterated games): ``isinstance(params, Discounted)``; the environment's own ``discount`` is then the float
its default params are built from.
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
    @property
    def payoff_array(self) -> Any:
        """numpy [N, A, ..., A]: payoff_array[i, a_0, ..., a_{N-1}] is player i's payoff."""

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

    def exact_policy_metrics(self, policy_params: jax.Array) -> dict:
        """Readable per-agent summaries of the policies [N, *policy_param_shape] (e.g. action probabilities)."""


@runtime_checkable
class FixedHorizon(Protocol):
    @property
    def num_steps(self) -> int:
        """Every episode lasts exactly this many steps."""


@runtime_checkable
class Discounted(Protocol):
    @property
    def discount(self) -> Any:
        """The discount factor in [0, 1) the game is defined with (float; float32 scalar on params)."""


@runtime_checkable
class TeamReward(Protocol):
    @property
    def team_reward(self) -> str:
        """How a cooperative game's agents form one team objective: "common" (every agent receives the same reward)
        or "sum" (their rewards differ, and the team's objective is their sum)."""


@runtime_checkable
class NeighbourMeanAction(Protocol):
    def neighbour_mean_action(self, state: Any, actions: jax.Array, params: Any = None) -> jax.Array:
        """float32[N, A]: each agent's mean one-hot discrete action over its neighbours (the agents its environment
        defines as near it, itself excluded; absent or dead agents count as no one), zeros where it has none.
        ``actions``: int32[N], the joint action the mean is taken of (e.g. the previous step's)."""


@runtime_checkable
class SimplexActions(Protocol):
    @property
    def action_simplices(self) -> tuple[tuple[int, ...], ...]:
        """Per agent, the sizes of the consecutive blocks of its action vector that are each a probability vector
        (a soft one-hot: MPE's continuous movement and message), summing to its Box width; a Discrete agent's single
        block is its number of actions."""


@runtime_checkable
class Neighbourhood(Protocol):
    @property
    def num_neighbours(self) -> int:
        """K: the fixed size of every agent's neighbourhood, the agent itself included."""

    def neighbours(self, state: Any, params: Any = None) -> tuple[jax.Array, jax.Array]:
        """(idx int32[N, K], mask bool[N, K]): agent i's neighbourhood is agents ``idx[i, k]`` where
        ``mask[i, k]``; ``idx[i, 0] == i`` (the agent itself first, unmasked while it lives), and masked slots hold
        no one (their index is arbitrary and must not matter)."""


@runtime_checkable
class AgentEpisodes(Protocol):
    @property
    def agent_episodes(self) -> bool:
        """True: agents' own episodes end inside the environment's, and each step's ``info["agent_done"]`` (bool[N])
        marks the agents whose episode ended at that step (an index may carry a new agent from the next step on)."""


@runtime_checkable
class StepMetrics(Protocol):
    @property
    def step_metrics(self) -> tuple[str, ...]:
        """Names of ``info`` entries (each step one number, or one per agent [N]; bool or numeric) that describe how
        the game is played (Cleanup's dirt fraction, apples eaten, ...); learners log their means over the steps and
        environments of an update."""


def has(env: Any, *capabilities: type) -> bool:
    """True where ``env`` has every one of ``capabilities``."""
    return all(isinstance(env, cap) for cap in capabilities)


def missing(env: Any, *capabilities: type) -> str | None:
    """None if ``env`` has every capability, else a sentence naming the first one it lacks."""
    for cap in capabilities:
        if not isinstance(env, cap):
            return _lacks(env, cap.__name__)
    return None


def missing_any(env: Any, *capabilities: type) -> str | None:
    """None if ``env`` has at least one of the capabilities, else a sentence naming them."""
    if any(isinstance(env, cap) for cap in capabilities):
        return None
    return _lacks(env, " or ".join(cap.__name__ for cap in capabilities))


def _lacks(env: Any, names: str) -> str:
    return f"needs the {names} capability, which {getattr(env, 'name', type(env).__name__)} lacks"
