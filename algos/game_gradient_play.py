"""Game-gradient play: every player follows one transformation of the simultaneous gradient, on exact values.

Each player i holds parameters theta_i (in the differentiable games, its action) and the closed-form values V(theta)
of ``env.exact_value``. Every update, all players move at once along the method's ascent direction d(theta) from
``jaxmarl_core.game_gradients`` (the papers' descent directions on the losses l = -V, negated), through an optax
optimiser (``sgd``: theta + lr * d exactly; or ``adam``):

    simul_ind:  xi                                   each player its own gradient (simultaneous gradient)
    simul_co:   xi_c                                 every player the collective value's gradient, sum_j V_j
    lookahead:  (I - alpha H_o) xi                   Zhang & Lesser (2010), as in Letcher et al. (2019)
    lola:       (I - alpha H_o) xi - alpha chi       LOLA with the look-ahead term, as in Letcher et al. (2019)
    sos:        xi_0 - p alpha chi                   Letcher et al. (2019): a = 0.5, b = 0.1
    sga:        xi + lam A^T xi                      Balduzzi et al. (2018), alignment sign, epsilon = 0.1
    cga:        xi + gamma H^T xi                    consensus, Mescheder et al. (2017)
    aga:        xi_c + lam (xi + H_c^T xi_c)         Li et al. (2024), lam's sign by the paper's rule
    svo:        grad_i V'_i, V'_i = V_i - w |theta_svo - atan2(mean_{j != i} V_j, V_i)|
                                                     social value orientation (McKee et al., 2020), the AgA
                                                     paper's baseline: each player its own gradient of its
                                                     SVO-shaped value (``jaxmarl_core.social.svo_reward``)

(all on the losses, as written in ``jaxmarl_core.game_gradients``). Defaults: SOS a = 0.5, b = 0.1, SGA epsilon =
0.1 and lam = 1, CGA gamma = 1 (the SOS reference code's), AgA |lam| = 1, SVO w = 1 and theta_svo = 45 degrees
(our choice); step sizes per game in ``default_config``.
Parameters start uniform in [init_low, init_high]. ``method=lola`` (no registry name of its own: ``lola_exact`` is
Foerster et al.'s form without the look-ahead term) runs the SOS paper's LOLA.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from algos import lola
from jaxmarl_core import game_gradients as gg
from jaxmarl_core import social
from jaxmarl_core.config import Config, require_nonnegative, require_positive
from jaxmarl_core.training import Trainer

METHODS = ("simul_ind", "simul_co", "lookahead", "lola", "sos", "sga", "cga", "aga", "svo")
OPTIMISERS = {"sgd": optax.sgd, "adam": optax.adam}


@dataclasses.dataclass(frozen=True)
class GamePlayConfig(Config):
    method: str = "simul_ind"  # one of METHODS
    num_updates: int = 200
    lr: float = 0.1  # the optimiser's step size
    optimiser: str = "sgd"  # "sgd" or "adam"
    lookahead_lr: float = 0.1  # alpha: the opponents' step LookAhead, LOLA and SOS look ahead over
    sos_a: float = 0.5
    sos_b: float = 0.1
    sga_epsilon: float = 0.1
    sga_lambda: float = 1.0
    cga_gamma: float = 1.0
    aga_lambda: float = 1.0  # |lam|; its sign is AgA's rule
    svo_weight: float = 1.0  # w of the SVO-shaped values
    svo_angle: float = 45.0  # theta_svo in degrees
    init_low: float = -1.0  # theta ~ U[init_low, init_high]
    init_high: float = 1.0

    def validate(self, env) -> None:
        super().validate(env)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"optimiser must be one of {', '.join(OPTIMISERS)}, got {self.optimiser!r}")
        require_positive(self, "lr")
        for name in ("lookahead_lr", "sos_a", "sos_b", "sga_epsilon", "sga_lambda", "cga_gamma", "aga_lambda",
                     "svo_weight"):
            require_nonnegative(self, name)
        if self.init_low > self.init_high:
            raise ValueError(f"init_low ({self.init_low}) must be <= init_high ({self.init_high})")


@struct.dataclass
class GamePlayState:
    theta: jax.Array  # [N, *policy_param_shape] per-player parameters
    opt_state: Any


def check_env(env, variant: str = "simul_ind") -> str | None:
    """Why ``variant`` cannot run on ``env`` (None if it can): exact values and two or more players, as NL-Ex."""
    return lola.check_env(env)


def default_config(env, variant: str = "simul_ind") -> GamePlayConfig:
    """The method ``variant`` with the papers' hyperparameters. Step sizes: 0.1 (lr = alpha, the SOS paper's tandem
    game); the AgA toy game Adam at 0.01 for 1,000 updates from U[-3, 3]^2 (plain steps of 0.1 overflow on its
    steep slopes); the public goods game steps of 1 for 100 updates (the AgA paper's 100 steps)."""
    if env.name == "game_aga_toy":
        return GamePlayConfig(method=variant, num_updates=1000, optimiser="adam", lr=0.01, init_low=-3.0,
                              init_high=3.0)
    if env.name == "public_goods":
        return GamePlayConfig(method=variant, num_updates=100, lr=1.0, lookahead_lr=1.0)
    return GamePlayConfig(method=variant)


def direction(value_fn: gg.ValueFn, config: GamePlayConfig) -> gg.Direction:
    """The configured ascent direction theta [N, P] -> [N, P]."""
    m = config.method
    if m == "simul_ind":
        return gg.naive(value_fn)
    if m == "simul_co":
        return gg.collective_gradient(value_fn)
    if m == "lookahead":
        return gg.lookahead(value_fn, config.lookahead_lr)
    if m == "lola":
        return gg.lola_lookahead(value_fn, config.lookahead_lr)
    if m == "sos":
        return gg.sos(value_fn, config.lookahead_lr, config.sos_a, config.sos_b)
    if m == "sga":
        return gg.sga(value_fn, config.sga_epsilon, config.sga_lambda)
    if m == "cga":
        return gg.consensus(value_fn, config.cga_gamma)
    if m == "svo":
        angle = jnp.deg2rad(config.svo_angle)
        return gg.naive(lambda theta: social.svo_reward(value_fn(theta), angle, config.svo_weight))
    return gg.aga(value_fn, config.aga_lambda)


def initial_state(env, config: GamePlayConfig, theta: jax.Array) -> GamePlayState:
    """The state a run starts in from chosen parameters theta [N, *policy_param_shape] (not drawn)."""
    theta = jnp.asarray(theta, jnp.float32).reshape((env.num_agents,) + tuple(env.policy_param_shape))
    return GamePlayState(theta=theta, opt_state=OPTIMISERS[config.optimiser](config.lr).init(theta))


def make_train(env, config: GamePlayConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    shape = (env.num_agents,) + tuple(env.policy_param_shape)
    optimiser = OPTIMISERS[config.optimiser](config.lr)

    def value_fn(theta):  # [N, *shape] -> [N]
        return env.exact_value(theta, params)

    flat_shape = (env.num_agents, -1)
    ascent = direction(lambda flat: value_fn(flat.reshape(shape)), config)  # directions take theta [N, P]

    def init(key):
        return initial_state(env, config, jax.random.uniform(key, shape, minval=config.init_low,
                                                             maxval=config.init_high))

    def update(state, key):
        d = ascent(state.theta.reshape(flat_shape)).reshape(shape)
        updates, opt_state = optimiser.update(-d, state.opt_state, state.theta)  # optax descends: -d
        theta = optax.apply_updates(state.theta, updates)
        values = env.exact_value(theta, params, per_step=True)
        metrics = {"reward_per_step": values, "social_welfare": values.sum(), **env.exact_policy_metrics(theta)}
        return GamePlayState(theta=theta, opt_state=opt_state), metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates)


__all__ = ["GamePlayConfig", "GamePlayState", "METHODS", "check_env", "default_config", "direction", "initial_state",
           "make_train"]
