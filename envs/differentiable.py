"""Two-player differentiable games: each player's action is one real number and its payoff a closed form of both.

Sign convention: the papers give losses l_i to minimise; here every game gives values V_i = -l_i to maximise (the
library's convention), and ``exact_value(theta)`` is V at the joint action the parameters theta [2, 1] encode. A
one-shot episode is one step: the players send their actions [2, 1], receive V as rewards and the episode ends
(``terminated``). The games, in the papers' losses (x = theta_0, y = theta_1):

    bilinear:      l_1 = x y,                       l_2 = -x y            zero-sum; equilibrium (0, 0)
    tandem:        l_1 = (x + y)^2 - 2 x,           l_2 = (x + y)^2 - 2 y  fixed points x + y = 1 (Letcher et al.,
                                                                          2019, SOS)
    aga_toy:       l_1 = -sin(x y + y^2),           l_2 = -cos(1 + x - (1 + y)^2 + x y^2)
                                                                          social welfare V_1 + V_2 at most 2 (Li et
                                                                          al., 2024, AgA, the two-player toy game)
    public_goods:  a_i = sigmoid(theta_i) in (0, 1) the share of an endowment of 1 player i contributes;
                   l_i = -(1 - a_i + m (a_1 + a_2) / 2), with 1 < m < 2 the multiplier of the pot (default 1.5):
                   contributing nothing dominates (Nash equilibrium a = (0, 0)), both contributing everything is the
                   social optimum (a = (1, 1))

The first three games act with the raw parameters (action = theta); the public goods game's action is the share
``sigmoid(theta)`` (its Box space is [0, 1]).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box

GAMES = ("bilinear", "tandem", "aga_toy", "public_goods")


@struct.dataclass
class DifferentiableParams(EnvParams):
    multiplier: jax.Array  # float32 scalar: the public goods game's pot multiplier m (unused by the other games)


@struct.dataclass
class DifferentiableState:
    t: jax.Array  # int32 scalar: steps taken in the episode (always 0 between one-shot episodes)


def game_values(game: str, actions: jax.Array, multiplier: jax.Array) -> jax.Array:
    """actions [2] (the public goods game: contributed shares in [0, 1]) -> values [2] = -losses."""
    x, y = actions[0], actions[1]
    if game == "bilinear":
        losses = jnp.stack([x * y, -x * y])
    elif game == "tandem":
        losses = jnp.stack([(x + y) ** 2 - 2 * x, (x + y) ** 2 - 2 * y])
    elif game == "aga_toy":
        losses = jnp.stack([-jnp.sin(x * y + y ** 2), -jnp.cos(1 + x - (1 + y) ** 2 + x * y ** 2)])
    else:  # public_goods
        pot = multiplier * (x + y) / 2
        losses = -jnp.stack([1 - x + pot, 1 - y + pot])
    return -losses


@dataclasses.dataclass(frozen=True)
class DifferentiableGame(Environment):
    deterministic: ClassVar[bool] = True
    game: str = "bilinear"
    multiplier: float = 1.5  # public_goods only

    def __post_init__(self):
        if self.game not in GAMES:
            raise ValueError(f"game must be one of {', '.join(GAMES)}, got {self.game!r}")
        if self.game == "public_goods" and not 1.0 < float(self.multiplier) < 2.0:
            raise ValueError(f"game_public_goods: multiplier must be in (1, 2) (a social dilemma for two players), "
                             f"got {self.multiplier!r}")

    @property
    def name(self) -> str:
        return f"game_{self.game}" if self.game != "public_goods" else "public_goods"

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def default_params(self) -> DifferentiableParams:
        return DifferentiableParams(multiplier=jnp.float32(self.multiplier))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (1,)),) * 2

    @property
    def action_spaces(self):
        low, high = (0.0, 1.0) if self.game == "public_goods" else (-float("inf"), float("inf"))
        return (Box(low, high, (1,)),) * 2

    @property
    def num_actions(self) -> int:
        """Width of the continuous action: one number per player."""
        return 1

    def avail_actions(self, state, params=None) -> jax.Array:
        """bool[2, 1]: each player's single action dimension."""
        return jnp.ones((2, 1), jnp.bool_)

    def global_state(self, state, params=None):
        """[1]: a constant (a one-shot game has no state)."""
        return jnp.ones((1,), jnp.float32)

    def reset_env(self, key, params):
        return jnp.ones((2, 1), jnp.float32), DifferentiableState(t=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, actions, params):
        reward = game_values(self.game, jnp.asarray(actions, jnp.float32)[:, 0], params.multiplier)
        return TimeStep(obs=jnp.ones((2, 1), jnp.float32), state=DifferentiableState(t=state.t + 1),
                        reward=reward.astype(jnp.float32), terminated=jnp.asarray(True),
                        truncated=jnp.asarray(False), info={})

    # -- exact (closed-form) values: the parameters are the actions ------------------------------------------------
    @property
    def policy_param_shape(self) -> tuple[int, ...]:
        """Per-player parameters: [1], the action (public goods: the logit of the contributed share)."""
        return (1,)

    def actions(self, policy_params: jax.Array) -> jax.Array:
        """[2, 1] parameters -> [2] actions (public goods: shares sigmoid(theta))."""
        a = policy_params[:, 0]
        return jax.nn.sigmoid(a) if self.game == "public_goods" else a

    def exact_value(self, policy_params: jax.Array, params: DifferentiableParams | None = None,
                    per_step: bool = False) -> jax.Array:
        """[2, 1] parameters -> [2] values of the joint action (one step, so ``per_step`` changes nothing)."""
        params = self.default_params if params is None else params
        return game_values(self.game, self.actions(policy_params), params.multiplier)

    def exact_policy_metrics(self, policy_params: jax.Array) -> dict:
        return {"action": self.actions(policy_params)}


__all__ = ["DifferentiableGame", "DifferentiableParams", "GAMES", "game_values"]
