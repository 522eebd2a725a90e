"""Exact-gradient naive learning (NL-Ex) and LOLA (LOLA-Ex), Foerster et al. (2018).

Each agent i has policy parameters theta_i and the closed-form value V_i(theta) of the environment
(``env.exact_value``: discounted sums in iterated games). All agents update simultaneously:

    NL:    theta_i <- theta_i + delta * grad_i V_i
    LOLA:  theta_i <- theta_i + delta * grad_i V_i + delta * eta * sum_{j != i} (grad_j V_i)^T grad_i grad_j V_j

The LOLA term is the gradient in theta_i of sum_j sg(grad_j V_i) . grad_j V_j(theta), a derivative through a
derivative (Hessian-vector products, ``jax.jvp`` of ``jax.grad``): the first-order Taylor expansion of the
look-ahead value V_i(theta_i, theta_-i + eta grad_-i V_-i). The directions are ``jaxmarl_core.game_gradients``'s;
this learner applies plain gradient ascent to them. With ``taylor=False`` the look-ahead value itself is differentiated
(what LOLA-DiCE computes with exact values and one look-ahead step); it adds the term LOLA drops,
eta * grad_i grad_j V_i . grad_j V_j, plus O(eta^2). Paper defaults: IPD delta = eta = 1 with 200 updates; IMP
delta = 0.1, eta = 1 with 1,000 updates; theta ~ N(0, 1).
"""
from __future__ import annotations

import dataclasses

import jax
from flax import struct

from jaxmarl_core import game_gradients
from jaxmarl_core.capabilities import ExactValue, missing
from jaxmarl_core.config import Config, require_nonnegative, require_positive
from jaxmarl_core.training import Trainer


@dataclasses.dataclass(frozen=True)
class ExactConfig(Config):
    num_updates: int = 200
    lr: float = 1.0  # delta, the step size of the agent's own gradient
    lookahead_lr: float = 1.0  # eta, the step size of the opponent's naive update LOLA looks ahead over
    init_std: float = 1.0  # theta ~ N(0, init_std^2)
    lola: bool = True  # False: naive learning
    taylor: bool = True  # False: differentiate the look-ahead value instead of its first-order expansion

    def validate(self, env) -> None:
        super().validate(env)
        require_positive(self, "lr")
        require_nonnegative(self, "lookahead_lr")
        require_nonnegative(self, "init_std")


@struct.dataclass
class ExactState:
    theta: jax.Array  # [N, P] per-agent policy parameters


def check_env(env) -> str | None:
    """Why this algorithm cannot run on ``env`` (None if it can)."""
    reason = missing(env, ExactValue)
    if reason:
        return f"{reason} (closed-form values from exact_value)"
    if env.num_agents < 2:
        return f"needs at least two agents; {env.name} has {env.num_agents}"
    return None


def default_config(env, lola: bool = True) -> ExactConfig:
    """The LOLA paper's settings for ``env`` (IMP uses delta = 0.1 and 1,000 updates)."""
    if env.name == "imp":
        return ExactConfig(num_updates=1000, lr=0.1, lookahead_lr=1.0, lola=lola)
    return ExactConfig(lola=lola)


def direction(value_fn: game_gradients.ValueFn, config: ExactConfig) -> game_gradients.Direction:
    """The configured ascent direction theta [N, P] -> [N, P]: NL's own gradients or LOLA's corrected ones."""
    if config.lola:
        return game_gradients.lola(value_fn, config.lookahead_lr, config.taylor)
    return game_gradients.naive(value_fn)


def make_train(env, config: ExactConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    n, shape = env.num_agents, tuple(env.policy_param_shape)

    def value_fn(theta):
        return env.exact_value(theta, params)

    ascent = direction(value_fn, config)

    def init(key):
        return ExactState(theta=config.init_std * jax.random.normal(key, (n,) + shape))

    def update(state, key):
        theta = state.theta + config.lr * ascent(state.theta)  # plain gradient ascent with step delta
        metrics = {"reward_per_step": env.exact_value(theta, params, per_step=True),
                   **env.exact_policy_metrics(theta)}
        return ExactState(theta=theta), metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates)
