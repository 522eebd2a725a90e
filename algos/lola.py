"""Exact-gradient naive learning (NL-Ex) and LOLA (LOLA-Ex), Foerster et al. (2018).

Each agent i has policy parameters theta_i and the closed-form value V_i(theta) of the environment
(``env.exact_value``: discounted sums in iterated games). All agents update simultaneously:

    NL:    theta_i <- theta_i + delta * grad_i V_i
    LOLA:  theta_i <- theta_i + delta * grad_i V_i + delta * eta * sum_{j != i} (grad_j V_i)^T grad_i grad_j V_j

The LOLA term is the gradient in theta_i of sum_j sg(grad_j V_i) . grad_j V_j(theta), a derivative through a
derivative (Hessian-vector products, ``jax.jvp`` of ``jax.grad``): the first-order Taylor expansion of the look-ahead
value V_i(theta_i, theta_-i + eta grad_-i V_-i). With ``taylor=False`` the look-ahead value itself is differentiated
(what LOLA-DiCE computes with exact values and one look-ahead step); it adds the term LOLA drops,
eta * grad_i grad_j V_i . grad_j V_j, plus O(eta^2). Paper defaults: IPD delta = eta = 1 with 200 updates; IMP
delta = 0.1, eta = 1 with 1,000 updates; theta ~ N(0, 1).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

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
    if not (hasattr(env, "exact_value") and hasattr(env, "policy_param_shape")):
        return f"needs an environment with closed-form values (exact_value); {env.name} has none"
    if env.num_agents < 2:
        return f"needs at least two agents; {env.name} has {env.num_agents}"
    return None


def default_config(env, lola: bool = True) -> ExactConfig:
    """The LOLA paper's settings for ``env`` (IMP uses delta = 0.1 and 1,000 updates)."""
    if env.name == "imp":
        return ExactConfig(num_updates=1000, lr=0.1, lookahead_lr=1.0, lola=lola)
    return ExactConfig(lola=lola)


def exact_update(value_fn: Callable[[jax.Array], jax.Array], theta: jax.Array, lr: float, lookahead_lr: float,
                 lola: bool, taylor: bool = True) -> jax.Array:
    """One simultaneous NL or LOLA step. value_fn: [N, P] -> [N]; theta: [N, P] -> new theta [N, P]."""
    n = theta.shape[0]
    diag = jnp.arange(n)

    def own_grads(th):  # [N, P]: grad_i V_i
        return jax.jacrev(value_fn)(th)[diag, diag]

    if lola and not taylor:
        def lookahead_value(th, i):  # V_i after every other agent takes its naive step
            others = (diag != i).astype(th.dtype)[:, None]
            return value_fn(th + lookahead_lr * others * own_grads(th))[i]

        step = jax.vmap(lambda i: jax.grad(lookahead_value)(theta, i)[i])(diag)
        return theta + lr * step

    jac = jax.jacrev(value_fn)(theta)  # [N, N, P]: jac[i, j] = grad_j V_i
    step = jac[diag, diag]
    if lola:
        weights = jax.lax.stop_gradient(jac)

        def hvp(i, j):  # grad_i (sg(grad_j V_i) . grad_j V_j): a Hessian-vector product of V_j, forward over reverse
            def grad_i(theta_j):  # grad_i V_j at (theta_i, theta_j), the other agents held fixed
                return jax.grad(lambda theta_i: value_fn(theta.at[i].set(theta_i).at[j].set(theta_j))[j])(theta[i])

            return jax.jvp(grad_i, (theta[j],), (weights[i, j],))[1]

        step = step + lookahead_lr * jnp.stack([sum(hvp(i, j) for j in range(n) if j != i) for i in range(n)])
    return theta + lr * step


def make_train(env, config: ExactConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    n, shape = env.num_agents, tuple(env.policy_param_shape)

    def value_fn(theta):
        return env.exact_value(theta, params)

    def init(key):
        return ExactState(theta=config.init_std * jax.random.normal(key, (n,) + shape))

    def update(state, key):
        theta = exact_update(value_fn, state.theta, config.lr, config.lookahead_lr, config.lola, config.taylor)
        metrics = {"reward_per_step": env.exact_value(theta, params, per_step=True),
                   **env.exact_policy_metrics(theta)}
        return ExactState(theta=theta), metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates)
