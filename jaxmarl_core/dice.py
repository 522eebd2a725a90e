"""The DiCE estimator (Foerster et al., 2018): surrogate objectives whose derivatives of every order are unbiased
estimators of the derivatives of an expected discounted return.

MagicBox: ``magic_box(x) = exp(x - stop_gradient(x))``, which is 1 in value and carries ``d/dtheta x`` into every
derivative. The surrogate of one agent's return over a time-major batch of trajectories is

    L = mean_b sum_t gamma^t r_t * MagicBox(sum_{l <= t} sum_agents log pi(u_l))
        + sum_t gamma^t (1 - MagicBox(sum_agents log pi(u_t))) * b_t          (baseline; zero in value)

where the log-probabilities are those of every stochastic node that influences r_t (all agents' past actions) and
``b_t`` is a baseline (a state value). The baseline term has zero mean in every derivative and reduces the variance
of first derivatives. ``any_order=True`` uses instead the baseline of Mao et al. (2019), which also reduces the
variance of higher derivatives (the LOLA cross terms) and is still unbiased in every order:

        + sum_t gamma^t MagicBox(sum_{l < t} sum_agents log pi(u_l)) (1 - MagicBox(sum_agents log pi(u_t))) * b_t
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def magic_box(x: jax.Array) -> jax.Array:
    return jnp.exp(x - jax.lax.stop_gradient(x))


def dice_objective(logp: jax.Array, rewards: jax.Array, gamma: float, baseline: jax.Array | None = None,
                   any_order: bool = False) -> jax.Array:
    """Scalar DiCE surrogate of the expected discounted return.

    logp: [T, B] summed log-probabilities of all agents' actions at each step (the stochastic nodes of step t);
    rewards: [T, B] the agent's rewards; baseline: [T, B] state values b_t (e.g. a critic's), or None.
    """
    t = rewards.shape[0]
    discounts = (gamma ** jnp.arange(t, dtype=rewards.dtype))[:, None]
    deps = _cumsum_time(logp)
    objective = jnp.sum(discounts * rewards * magic_box(deps), axis=0)
    if baseline is not None:
        past = magic_box(deps - logp) if any_order else 1.0
        objective = objective + jnp.sum(discounts * past * (1.0 - magic_box(logp)) * baseline, axis=0)
    return jnp.mean(objective)


def _cumsum_time(x: jax.Array) -> jax.Array:
    """Cumulative sum over the leading time axis as a scan: on CPU several times faster than ``jnp.cumsum`` (a
    quadratic reduce-window) once differentiated to second order."""

    def body(total, x_t):
        total = total + x_t
        return total, total

    return jax.lax.scan(body, jnp.zeros_like(x[0]), x)[1]
