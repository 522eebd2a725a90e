"""Pieces of on-policy actor-critic learners shared by the variants in ``algos.onpolicy``: the (factor-weighted,
optionally clipped) surrogate, the HAPPO factor, HARL's clipped Huber value loss, epochs of minibatch Adam steps,
and the array layouts the learners train on.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def surrogate_terms(logp: jax.Array, old_logp: jax.Array, adv: jax.Array, log_factor: jax.Array,
                    clip_eps: float | None) -> jax.Array:
    """Per-sample surrogate M * min(r A, clip(r, 1 -+ eps) A) with r = exp(logp - old_logp) and M = exp(log_factor)
    (no clipping when clip_eps is None: the A2C/TRPO surrogate M r A); arrays [...] -> [...]."""
    ratio = jnp.exp(logp - old_logp)
    surr = ratio * adv
    if clip_eps is not None:
        surr = jnp.minimum(surr, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)
    return jnp.exp(log_factor) * surr


def next_log_factor(log_factor: jax.Array, new_logp: jax.Array, old_logp: jax.Array) -> jax.Array:
    """The factor after one more agent moved: log M + log(pi_new / pi_old) of its actions, under stop_gradient."""
    return jax.lax.stop_gradient(log_factor + new_logp - old_logp)


def huber(x: jax.Array, delta: float) -> jax.Array:
    """Huber loss with threshold delta (squared error / 2 when delta is 0)."""
    if delta == 0:
        return 0.5 * x ** 2
    a = jnp.abs(x)
    return jnp.where(a <= delta, 0.5 * x ** 2, delta * (a - 0.5 * delta))


def value_loss(pred: jax.Array, old_pred: jax.Array, target: jax.Array, clip_eps: float | None,
               delta: float) -> jax.Array:
    """HARL's value loss: max of the Huber errors of the prediction and of the prediction clipped to old +- eps."""
    loss = huber(target - pred, delta)
    if clip_eps is not None:
        clipped = old_pred + jnp.clip(pred - old_pred, -clip_eps, clip_eps)
        loss = jnp.maximum(loss, huber(target - clipped, delta))
    return jnp.mean(loss)


def minibatch_sgd(loss_fn, tx, params, opt_state, batch: dict, key: jax.Array, epochs: int, num_minibatches: int,
                  stats=None, fold=None, grad_fn=None):
    """``epochs`` passes of ``num_minibatches`` Adam steps on ``loss_fn(params, minibatch, stats) -> (loss, aux)``,
    or along ``grad_fn(params, minibatch, stats) -> (descent direction like params, aux)`` in place of the loss's
    gradient (a gradient adjustment that is no gradient of a loss; ``loss_fn`` is then unused).

    batch: leaves [L, M, ...] (L = 1 for feed-forward networks); minibatches split the M axis, reshuffled every
    epoch (no shuffle with one minibatch). ``stats``: a state carried through the steps; with ``fold``, each step
    first sets ``stats = fold(stats, minibatch)`` (HARL's critic folds every minibatch's returns into its ValueNorm
    before normalising them) -> (params, opt_state, stats, mean aux)."""
    m = jax.tree.leaves(batch)[0].shape[1]
    size = m // num_minibatches
    grad_fn = grad_fn or jax.grad(loss_fn, has_aux=True)

    def epoch(carry, k):
        shuffled = batch
        if num_minibatches > 1:
            perm = jax.random.permutation(k, m)
            shuffled = jax.tree.map(lambda x: jnp.take(x, perm, axis=1), batch)
        mbs = jax.tree.map(lambda x: jnp.swapaxes(x.reshape(x.shape[0], num_minibatches, size, *x.shape[2:]), 0, 1),
                           shuffled)

        def step(c, mb):
            p, o, s = c
            s = s if fold is None else fold(s, mb)
            grads, aux = grad_fn(p, mb, s)
            updates, o = tx.update(grads, o, p)
            return (optax.apply_updates(p, updates), o, s), aux

        return jax.lax.scan(step, carry, mbs)

    (params, opt_state, stats), aux = jax.lax.scan(epoch, (params, opt_state, stats), jax.random.split(key, epochs))
    return params, opt_state, stats, jax.tree.map(jnp.mean, aux)


def sequence_layout(x: jax.Array, recurrent: bool) -> jax.Array:
    """[T, B, ...] -> [T, B, ...] (recurrent: whole sequences) or [1, T * B, ...] (feed-forward: samples)."""
    return x if recurrent else x.reshape(1, x.shape[0] * x.shape[1], *x.shape[2:])


def merge_agents(x: jax.Array) -> jax.Array:
    """[L, M, N, ...] -> [L, M * N, ...]: agents as extra samples (shared parameters)."""
    return x.reshape(x.shape[0], x.shape[1] * x.shape[2], *x.shape[3:])
