"""Exact-gradient play on mixed strategies in matrix games: WoLF-IGA (Bowling & Veloso, 2002) and the lagging
anchor algorithm (Dahl, 2002).

Each player i holds a mixed strategy x_i on the simplex and ascends the gradient of its expected payoff V_i(x)
(``env.expected_payoffs``), projected back onto the simplex:

    WoLF-IGA:        x_i <- P(x_i + eta * l_i * grad_i V_i(x)),   l_i = 1 if V_i(x) > V_i(x_i^e, x_-i) (winning)
                                                                   else lose_ratio (learning fast while losing)
    lagging anchor:  x_i <- P(x_i + eta * grad_i V_i(x) + eta * anchor * (xbar_i - x_i)),
                     xbar_i <- xbar_i + eta * anchor * (x_i - xbar_i)

x^e is a Nash equilibrium of the game (``jaxmarl_core.solvers.bimatrix_nash``). With ``wolf=False`` WoLF-IGA is
plain infinitesimal gradient ascent (IGA), which circles the mixed equilibrium of matching pennies; with
``anchor=0`` the lagging anchor algorithm is plain projected gradient play. For two actions the simplex step moves
the probability of the first action by eta/2 times the paper's derivative dV/d(alpha). Strategies start at a
uniformly drawn point of the simplex (Dirichlet(1)).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.capabilities import DeviationGains, MatrixPayoffs, missing
from jaxmarl_core.config import Config, require_nonnegative, require_positive
from jaxmarl_core.solvers import bimatrix_nash, project_simplex
from jaxmarl_core.training import Trainer


@dataclasses.dataclass(frozen=True)
class GradientPlayConfig(Config):
    num_updates: int = 5_000
    lr: float = 0.01  # eta
    lose_ratio: float = 4.0  # WoLF-IGA: l_max / l_min
    wolf: bool = True  # WoLF-IGA: False gives IGA
    anchor: float = 0.0  # lagging anchor: the anchor's pull and speed (0: no anchor)

    def validate(self, env) -> None:
        super().validate(env)
        require_positive(self, "lr")
        require_nonnegative(self, "anchor")
        if self.lose_ratio < 1:
            raise ValueError(f"lose_ratio (l_max / l_min) must be >= 1, got {self.lose_ratio}")


@struct.dataclass
class GradientPlayState:
    x: jax.Array  # [N, A] mixed strategies
    anchor: jax.Array  # [N, A] lagging anchors
    equilibrium: jax.Array  # [N, A] the Nash equilibrium WoLF compares with (zeros without WoLF)


def check_env(env, variant: str) -> str | None:
    reason = missing(env, MatrixPayoffs, DeviationGains)
    if reason:
        return f"{reason} (a one-shot matrix game's exact expected payoffs)"
    if env.num_agents != 2:
        return f"needs a two-player game; {env.name} has {env.num_agents} players"
    if variant == "lagging_anchor":
        payoffs = env.payoff_array
        if not np.allclose(payoffs[0], -payoffs[1]):
            return f"needs a zero-sum game; {env.name} is not zero-sum"
    return None


def default_config(env, variant: str) -> GradientPlayConfig:
    if variant == "lagging_anchor":
        return GradientPlayConfig(wolf=False, anchor=1.0)
    return GradientPlayConfig()


def make_train(env, config: GradientPlayConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    n, num_actions = env.num_agents, env.num_actions
    diag = jnp.arange(n)

    def init(key):
        x = jax.random.dirichlet(key, jnp.ones(num_actions), (n,))
        eq = jnp.stack(bimatrix_nash(params.payoffs[0], params.payoffs[1])) if config.wolf else jnp.zeros_like(x)
        return GradientPlayState(x=x, anchor=x, equilibrium=eq)

    def update(state: GradientPlayState, key):
        x = state.x
        values = env.expected_payoffs(x, params)  # [N]
        grads = jax.jacrev(env.expected_payoffs)(x, params)[diag, diag]  # [N, A]: grad_i V_i
        step = config.lr * grads
        if config.wolf:
            at_eq = jax.vmap(lambda i: env.expected_payoffs(x.at[i].set(state.equilibrium[i]), params)[i])(diag)
            step = jnp.where((values > at_eq)[:, None], step, config.lose_ratio * step)
        pull = config.lr * config.anchor * (state.anchor - x)
        new_x = project_simplex(x + step + pull)
        new_state = state.replace(x=new_x, anchor=state.anchor - pull)
        metrics = {"reward_per_step": env.expected_payoffs(new_x, params), "policy": new_x,
                   "nash_conv": jnp.sum(env.deviation_gains(new_x, params))}
        return new_state, metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates)
