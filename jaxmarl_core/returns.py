"""Discounted returns and generalised advantage estimation over time-major [T, ...] arrays.

Episode ends follow gymnax-1.0 semantics: ``terminated`` stops bootstrapping (the true end), while a ``truncated``
step bootstraps from the value of the observation it reached (``next_values``, computed on ``final_obs``) and cuts
the recursion so nothing leaks into the next episode.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _reverse_scan(fn, init, xs):
    return jax.lax.scan(fn, init, xs, reverse=True)[1]


def discounted_returns(rewards: jax.Array, terminated: jax.Array, truncated: jax.Array, gamma: float,
                       next_values: jax.Array | None = None) -> jax.Array:
    """[T, ...] rewards -> [T, ...] returns G_t = r_t + gamma * (G_{t+1} or a bootstrap at episode ends).

    ``next_values`` ([T, ...], optional) bootstraps at truncations and after the last step; without it both are 0.
    ``terminated``/``truncated`` broadcast against ``rewards`` (e.g. [T] against [T, N]).
    """
    terminated = expand_flags(terminated, rewards)
    truncated = expand_flags(truncated, rewards)
    nv = jnp.zeros_like(rewards) if next_values is None else next_values
    not_term = 1.0 - terminated.astype(rewards.dtype)
    cut = jnp.logical_or(terminated, truncated).astype(rewards.dtype)

    def body(g_next, x):
        r, nt, c, v = x
        g = r + gamma * nt * ((1.0 - c) * g_next + c * v)
        return g, g

    return _reverse_scan(body, nv[-1], (rewards, not_term, cut, nv))


def gae(rewards: jax.Array, values: jax.Array, next_values: jax.Array, terminated: jax.Array,
        truncated: jax.Array, gamma: float, lam: float, drop_truncated: bool = False) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation.

    rewards, values, next_values: [T, ...] (``values`` of the observations acted on, ``next_values`` of the
    observations reached, i.e. of ``final_obs`` at episode ends); -> (advantages [T, ...], targets [T, ...]).
    ``drop_truncated`` is HARL's ``use_proper_time_limits``: a truncated (and not terminated) step gets advantage 0
    and its own value as target, so the steps before it bootstrap from the value of the state it was taken in and
    ``next_values`` at truncations is not used. Without it a truncated step bootstraps from ``next_values``.
    """
    terminated = expand_flags(terminated, rewards)
    truncated = expand_flags(truncated, rewards)
    not_term = 1.0 - terminated.astype(rewards.dtype)
    cont = 1.0 - jnp.logical_or(terminated, truncated).astype(rewards.dtype)
    keep = 1.0 - drop_truncated * jnp.logical_and(truncated, jnp.logical_not(terminated)).astype(rewards.dtype)
    deltas = rewards + gamma * not_term * next_values - values

    def body(a_next, x):
        d, c, k = x
        a = k * (d + gamma * lam * c * a_next)
        return a, a

    adv = _reverse_scan(body, jnp.zeros_like(rewards[0]), (deltas, cont, keep))
    return adv, adv + values


def lambda_returns(rewards: jax.Array, next_values: jax.Array, terminated: jax.Array, cut: jax.Array, gamma: float,
                   lam: float) -> jax.Array:
    """TD(lambda) targets over sequences [T, ...] (as pymarl2's ``build_td_lambda_targets``, without its masking):

        G_t = r_t + gamma * (1 - terminated_t) * ((1 - lam) * v_t + lam * (G_{t+1} if not cut_t else v_t))

    with v_t = ``next_values[t]``, the value of the observation step t reached, and ``cut_t`` where the sequence
    stops after step t (an episode end, a truncation, the last stored step: forced at t = T - 1). lam = 0 gives the
    one-step targets r_t + gamma * (1 - terminated_t) * v_t; lam = 1 the discounted return bootstrapped at cuts.
    """
    terminated = expand_flags(terminated, rewards)
    cut = expand_flags(cut, rewards).at[-1].set(True)
    not_term = 1.0 - terminated.astype(rewards.dtype)

    def body(g_next, x):
        r, nt, c, v = x
        g = r + gamma * nt * ((1.0 - lam) * v + lam * jnp.where(c, v, g_next))
        return g, g

    return _reverse_scan(body, next_values[-1], (rewards, not_term, cut, next_values))


def expand_flags(flags: jax.Array, like: jax.Array) -> jax.Array:
    """Broadcast flags [T] (or [B], []) against an array [T, ...] by appending axes."""
    flags = jnp.asarray(flags)
    return jnp.reshape(flags, flags.shape + (1,) * (like.ndim - flags.ndim))
