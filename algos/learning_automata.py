"""Linear learning automata in repeated matrix games (Narendra & Thathachar, 1989): L_R-I and L_R-P.

Each player keeps action probabilities p [A], plays a ~ p, and hears its payoff scaled to beta in [0, 1] by the
range of its payoff table (the S-model: beta = 1 is full success, 0 full failure). The linear update is

    p <- p + a * beta * (e_a - p) + b * (1 - beta) * ((1 - e_a) / (A - 1) - p)

with e_a the one-hot of the action played: reward moves p towards the action played by a * beta, penalty moves it
away by b * (1 - beta). L_R-I (reward-inaction) has b = 0: the automaton only learns from success and, with a small
a, converges to a pure strict equilibrium. L_R-P (reward-penalty) with b = a keeps every action's probability in
play and in matching pennies hovers around the mixed equilibrium, closer the smaller a is (L_R-epsilonP: b << a).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmarl_core import tabular
from jaxmarl_core.capabilities import DeviationGains, MatrixPayoffs, missing
from jaxmarl_core.config import OnlineConfig, require_nonnegative, require_positive
from jaxmarl_core.policies import sample_categorical
from jaxmarl_core.training import Trainer


@dataclasses.dataclass(frozen=True)
class AutomataConfig(OnlineConfig):
    total_steps: int = 100_000  # plays of the game per seed
    steps_per_update: int = 1_000  # plays between logged metrics
    reward_lr: float = 0.01  # a
    penalty_lr: float = 0.0  # b (0: L_R-I)

    def validate(self, env) -> None:
        super().validate(env)
        require_positive(self, "reward_lr")
        require_nonnegative(self, "penalty_lr")
        if self.reward_lr > 1 or self.penalty_lr > 1:
            raise ValueError("reward_lr and penalty_lr must be at most 1")


def check_env(env) -> str | None:
    reason = missing(env, MatrixPayoffs, DeviationGains)
    return reason and f"{reason} (a one-shot matrix game's payoffs scale rewards to [0, 1])"


def default_config(env, variant: str) -> AutomataConfig:
    return AutomataConfig(penalty_lr=0.01 if variant == "lrp" else 0.0)


def automaton_step(p: jax.Array, actions: jax.Array, beta: jax.Array, a: float, b: float) -> jax.Array:
    """The linear update of probabilities p [N, A] after playing actions [N] with successes beta [N] in [0, 1]."""
    num_actions = p.shape[-1]
    played = jax.nn.one_hot(actions, num_actions)
    beta = beta[:, None]
    return p + a * beta * (played - p) + b * (1.0 - beta) * ((1.0 - played) / (num_actions - 1) - p)


def make_train(env, config: AutomataConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    n, num_actions = env.num_agents, env.num_actions
    tables = params.payoffs.reshape(n, -1)
    low, span = jnp.min(tables, axis=1), jnp.maximum(jnp.ptp(tables, axis=1), 1e-12)  # [N]

    def init(key):
        return jnp.full((n, num_actions), 1.0 / num_actions), env.reset(key, params)[1]

    def act(p, s, avail, key):  # a matrix game: every action is legal
        return sample_categorical(key, jnp.log(p))

    def learn(p, s, avail, actions, reward, s_next, avail_next, terminated):
        beta = jnp.clip((reward - low) / span, 0.0, 1.0)
        return automaton_step(p, actions, beta, config.reward_lr, config.penalty_lr)

    def update(state, key):
        p, env_state, metrics = tabular.run_online(env, params, act, learn, *state, key, config.steps_per_update)
        metrics = {**metrics, "policy": p, "nash_conv": jnp.sum(env.deviation_gains(p, params))}
        return (p, env_state), metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates,
                   env_steps_per_update=config.steps_per_update)
