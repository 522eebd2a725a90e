"""One-shot normal-form (matrix) games with N players.

Payoffs live in ``MatrixParams.payoffs`` with shape ``[N, A, ..., A]`` (one axis per player), so one jit can vmap
over many games of the same shape. Every episode is one step: it ends with ``terminated=True``. Observations are a
constant ``[N, 1]`` of ones (there is nothing to observe before a one-shot move).

Exact learners use ``exact_value``: each player's expected payoff under independent softmax policies.
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


@struct.dataclass
class MatrixParams(EnvParams):
    payoffs: jax.Array  # [N, A, ..., A] float32: payoffs[i, a_0, ..., a_{N-1}] is player i's reward


@struct.dataclass
class MatrixState:
    t: jax.Array  # int32 scalar: steps taken in the current episode (always 0 between one-shot episodes)


def _bimatrix(row, col=None):
    """Nested [A, A] lists of row and column payoffs (col defaults to -row, zero-sum) -> [2, A, A] tuple."""
    row = np.asarray(row, np.float32)
    col = -row if col is None else np.asarray(col, np.float32)
    return np.stack([row, col])


def _common(payoff):
    """A common-payoff (team) two-player game."""
    payoff = np.asarray(payoff, np.float32)
    return np.stack([payoff, payoff])


def homogeneity_trap_payoffs(n_agents: int) -> np.ndarray:
    """[N, 2, ..., 2]: every player gets 1 iff the first half plays 0 and the second half 1, or the reverse."""
    half = n_agents // 2
    table = np.zeros((2,) * n_agents, np.float32)
    first = (0,) * half + (1,) * half
    table[first] = 1.0
    table[tuple(1 - a for a in first)] = 1.0
    return np.broadcast_to(table, (n_agents,) + table.shape).copy()


# Row player's (and column player's) payoffs; action 0 is the first row/column.
GAMES = {
    # Prisoner's dilemma, actions (cooperate, defect), the LOLA paper's stage game (same as `ipd`).
    "pd": lambda: _bimatrix([[-1, -3], [0, -2]], [[-1, 0], [-3, -2]]),
    # Matching pennies, actions (heads, tails): the row player wins on a match (same as `imp`'s stage game).
    "mp": lambda: _bimatrix([[1, -1], [-1, 1]]),
    # Stag hunt, actions (stag, hare): payoff-dominant (stag, stag) and risk-dominant (hare, hare).
    "sh": lambda: _bimatrix([[4, 0], [3, 3]], [[4, 3], [0, 3]]),
    # Chicken, actions (swerve, straight).
    "chicken": lambda: _bimatrix([[0, -1], [1, -10]], [[0, 1], [-1, -10]]),
    # Battle of the sexes, actions (opera, football): the row player prefers opera.
    "bos": lambda: _bimatrix([[2, 0], [0, 1]], [[1, 0], [0, 2]]),
    # Rock-paper-scissors, actions (rock, paper, scissors), zero-sum.
    "rps": lambda: _bimatrix([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]),
    # Climbing game (Claus & Boutilier, 1998), common payoff.
    "climbing": lambda: _common([[11, -30, 0], [-30, 7, 6], [0, 0, 5]]),
    # The non-monotonic game of QTRAN (Son et al., 2019) and Weighted QMIX (Rashid et al., 2020), common payoff: the
    # optimum (0, 0) is surrounded by penalties, so no additive (VDN) value ranks it first.
    "nonmonotonic": lambda: _common([[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]),
}


def penalty_payoffs(k: float) -> np.ndarray:
    """Penalty game (Claus & Boutilier, 1998), common payoff with miscoordination penalty ``k <= 0``."""
    return _common([[10, 0, k], [0, 2, 0], [k, 0, 10]])


@dataclasses.dataclass(frozen=True)
class MatrixGame(Environment):
    """A one-shot game given by its payoff table (a static default; ``params.payoffs`` is what is used)."""

    deterministic: ClassVar[bool] = True
    game: str
    table: tuple  # nested tuples [N, A, ..., A]: the default payoffs

    @classmethod
    def from_array(cls, game: str, payoffs: np.ndarray) -> MatrixGame:
        payoffs = np.asarray(payoffs, np.float32)
        n = payoffs.shape[0]
        if payoffs.ndim != n + 1 or len(set(payoffs.shape[1:])) != 1:
            raise ValueError(f"payoffs must have shape [N, A, ..., A] with N action axes, got {payoffs.shape}")
        return cls(game=game, table=_to_tuple(payoffs))

    @property
    def name(self) -> str:
        return f"matrix_{self.game}"

    @property
    def payoff_array(self) -> np.ndarray:
        return np.asarray(self.table, np.float32)

    @property
    def num_agents(self) -> int:
        return len(self.table)

    @property
    def num_actions(self) -> int:
        return len(self.table[0])

    @property
    def default_params(self) -> MatrixParams:
        return MatrixParams(payoffs=jnp.asarray(self.payoff_array))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (1,)),) * self.num_agents

    @property
    def action_spaces(self):
        return (Discrete(self.num_actions),) * self.num_agents

    def reset_env(self, key, params):
        return jnp.ones((self.num_agents, 1), jnp.float32), MatrixState(t=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, actions, params):
        actions = jnp.asarray(actions, jnp.int32)
        reward = params.payoffs[(slice(None),) + tuple(actions[i] for i in range(self.num_agents))]
        obs = jnp.ones((self.num_agents, 1), jnp.float32)
        return TimeStep(obs=obs, state=MatrixState(t=state.t + 1), reward=reward.astype(jnp.float32),
                        terminated=jnp.asarray(True), truncated=jnp.asarray(False), info={})

    def global_state(self, state, params=None):
        """[1]: a constant (a one-shot game has no state)."""
        return jnp.ones((1,), jnp.float32)

    # -- exact (closed-form) values for exact-gradient learners ------------------------------------------------
    @property
    def policy_param_shape(self) -> tuple[int, ...]:
        """Per-agent policy parameters: [A] softmax logits."""
        return (self.num_actions,)

    def policy_probs(self, policy_params: jax.Array) -> jax.Array:
        """[N, A] logits -> [N, A] action probabilities."""
        return jax.nn.softmax(policy_params, axis=-1)

    def exact_value(self, policy_params: jax.Array, params: MatrixParams | None = None,
                    per_step: bool = False) -> jax.Array:
        """[N, A] logits -> [N] expected payoffs (one step, so ``per_step`` changes nothing)."""
        return self.expected_payoffs(self.policy_probs(policy_params), params)

    def expected_payoffs(self, probs: jax.Array, params: MatrixParams | None = None) -> jax.Array:
        """[N, A] mixed strategies -> [N] each player's expected payoff (multilinear in the strategies)."""
        params = self.default_params if params is None else params
        value = params.payoffs
        for i in range(self.num_agents):
            value = jnp.tensordot(value, probs[i], axes=([1], [0]))
        return value

    def deviation_gains(self, probs: jax.Array, params: MatrixParams | None = None) -> jax.Array:
        """[N]: what each player gains by its best pure deviation from the mixed profile probs [N, A] (all 0 at a
        Nash equilibrium; their sum is NashConv)."""
        diag = jnp.arange(self.num_agents)
        action_values = jax.jacrev(self.expected_payoffs)(probs, params)[diag, diag]  # [N, A]: values are linear
        return jnp.max(action_values, axis=-1) - self.expected_payoffs(probs, params)

    def exact_policy_metrics(self, policy_params: jax.Array) -> dict:
        return {"action_probs": self.policy_probs(policy_params)}


def _to_tuple(a: np.ndarray):
    return tuple(_to_tuple(x) for x in a) if a.ndim else float(a)


def make_matrix_game(game: str, **kwargs) -> MatrixGame:
    if game == "penalty":
        k = float(kwargs.pop("k", -10.0))
        if k > 0:
            raise ValueError(f"matrix_penalty: k is the miscoordination penalty and must be <= 0, got {k}")
        payoffs = penalty_payoffs(k)
    elif game == "trap":
        n = kwargs.pop("n_agents", 4)
        if not isinstance(n, int) or n < 2 or n % 2 or n > 16:
            raise ValueError(f"matrix_trap: n_agents must be an even integer in [2, 16], got {n!r}")
        payoffs = homogeneity_trap_payoffs(n)
    else:
        payoffs = GAMES[game]()
    if kwargs:
        raise ValueError(f"matrix_{game}: unknown argument(s) {sorted(kwargs)}")
    return MatrixGame.from_array(game, payoffs)


MATRIX_GAMES = tuple(GAMES) + ("penalty", "trap")

__all__ = ["MatrixGame", "MatrixParams", "MatrixState", "make_matrix_game", "MATRIX_GAMES",
           "homogeneity_trap_payoffs", "penalty_payoffs"]
