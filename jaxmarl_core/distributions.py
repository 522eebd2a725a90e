"""Action distributions with masking, for agents padded to a common action space (docs/design.md, "Environments").

Discrete: a ``distrax.Categorical`` whose unavailable actions (``avail_actions`` False) get probability 0.
Continuous: a diagonal Gaussian whose padded action dimensions (``dim_mask`` False) count neither in the
log-probability nor in the entropy.
Relaxed: the Gumbel-softmax (Jang et al., 2017; Maddison et al., 2017) over blocks of an action vector, each block a
soft one-hot (MADDPG's actions):

    y = softmax((logits + g) / temperature) within each block,  g = -log(-log u),  u ~ U(0, 1)

``hard`` gives the straight-through version: the forward value is the one-hot of each block's argmax (a sample of
the categorical softmax(logits)), the gradient that of the soft y.
"""
from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp


def masked_categorical(logits: jax.Array, avail: jax.Array | None = None) -> distrax.Categorical:
    """logits [..., A], avail bool[..., A] (at least one True per row) -> Categorical over the available actions."""
    if avail is not None:
        logits = jnp.where(avail, logits, jnp.finfo(logits.dtype).min)
    return distrax.Categorical(logits=logits)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array,
                      dim_mask: jax.Array | None = None) -> jax.Array:
    """Log-density of action [..., D] under N(mean, exp(log_std)^2) per dimension, summed over the dimensions
    where dim_mask [..., D] is True (all if None) -> [...]."""
    per_dim = distrax.Normal(mean, jnp.exp(log_std)).log_prob(action)
    if dim_mask is not None:
        per_dim = jnp.where(dim_mask, per_dim, 0.0)
    return jnp.sum(per_dim, axis=-1)


def gaussian_entropy(log_std: jax.Array, dim_mask: jax.Array | None = None) -> jax.Array:
    """Entropy of the diagonal Gaussian over the unmasked dimensions: sum of 0.5 log(2 pi e) + log_std -> [...]."""
    per_dim = 0.5 * jnp.log(2.0 * jnp.pi * jnp.e) + log_std
    if dim_mask is not None:
        per_dim = jnp.where(dim_mask, per_dim, 0.0)
    return jnp.sum(per_dim, axis=-1)


def sample_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array,
                    dim_mask: jax.Array | None = None) -> jax.Array:
    """A draw [..., D] of N(mean, exp(log_std)^2); padded dimensions are 0."""
    action = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return action if dim_mask is None else jnp.where(dim_mask, action, 0.0)


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array, avail: jax.Array | None = None) -> jax.Array:
    """KL(p || q) [...] between categoricals given by logits [..., A], over the available actions only."""
    logp = jax.nn.log_softmax(masked_categorical(logits_p, avail).logits, axis=-1)
    logq = jax.nn.log_softmax(masked_categorical(logits_q, avail).logits, axis=-1)
    terms = jnp.exp(logp) * (logp - logq)
    if avail is not None:
        terms = jnp.where(avail, terms, 0.0)
    return jnp.sum(terms, axis=-1)


def gaussian_kl(mean_p: jax.Array, log_std_p: jax.Array, mean_q: jax.Array, log_std_q: jax.Array,
                dim_mask: jax.Array | None = None) -> jax.Array:
    """KL(p || q) [...] between diagonal Gaussians [..., D], summed over the unmasked dimensions."""
    var_ratio = jnp.exp(2.0 * (log_std_p - log_std_q))
    per_dim = 0.5 * (var_ratio + ((mean_p - mean_q) / jnp.exp(log_std_q)) ** 2 - 1.0 - jnp.log(var_ratio))
    if dim_mask is not None:
        per_dim = jnp.where(dim_mask, per_dim, 0.0)
    return jnp.sum(per_dim, axis=-1)


def block_softmax(x: jax.Array, blocks: jax.Array, num_blocks: int) -> jax.Array:
    """Softmax of x [..., A] within each block: ``blocks`` int [..., A] gives each entry's block 0..num_blocks-1, or
    -1 (padding or unavailable: output 0)."""
    out = jnp.zeros_like(x)
    for b in range(num_blocks):
        inside = blocks == b
        z = jnp.where(inside, x, -jnp.inf)
        z = z - jax.lax.stop_gradient(jnp.max(jnp.where(inside, x, jnp.finfo(x.dtype).min), axis=-1, keepdims=True))
        e = jnp.where(inside, jnp.exp(z), 0.0)
        out = out + e / jnp.maximum(jnp.sum(e, axis=-1, keepdims=True), jnp.finfo(x.dtype).tiny)
    return out


def block_one_hot(x: jax.Array, blocks: jax.Array, num_blocks: int) -> jax.Array:
    """The one-hot [..., A] of each block's argmax of x [..., A] (blocks as in ``block_softmax``)."""
    out = jnp.zeros_like(x)
    for b in range(num_blocks):
        inside = blocks == b
        best = jnp.argmax(jnp.where(inside, x, -jnp.inf), axis=-1)
        out = out + jnp.where(inside, jax.nn.one_hot(best, x.shape[-1], dtype=x.dtype), 0.0)
    return out


def gumbel_softmax(key: jax.Array, logits: jax.Array, blocks: jax.Array, num_blocks: int, temperature: float = 1.0,
                   hard: bool = False) -> jax.Array:
    """A relaxed sample [..., A] of the blocks' categoricals softmax(logits) (module docstring); entries of block -1
    are 0."""
    u = jax.random.uniform(key, logits.shape, logits.dtype, minval=jnp.finfo(logits.dtype).tiny, maxval=1.0)
    noisy = (logits - jnp.log(-jnp.log(u))) / temperature
    soft = block_softmax(noisy, blocks, num_blocks)
    if not hard:
        return soft
    return soft + jax.lax.stop_gradient(block_one_hot(noisy, blocks, num_blocks) - soft)
