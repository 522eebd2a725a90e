"""Actor and critic networks of the on-policy actor-critic family (flax linen), initialised as in HARL.

Every network maps ``(hidden, x, resets)`` to its outputs over a time-major sequence, so feed-forward and recurrent
versions share one calling convention:

    x       [L, ..., D]   inputs (L steps; any batch dimensions after the first axis)
    resets  bool[L, ...]  True where an episode starts: a recurrent state returns to zeros before that step
    hidden  [..., H]      the recurrent state before the first step (None for feed-forward networks)

A feed-forward network ignores ``hidden`` and ``resets`` and returns ``None`` for the hidden sequence.
Layers: optional LayerNorm of the inputs (HARL's feature normalisation), then ``Dense -> ReLU -> LayerNorm`` per
hidden size (orthogonal init with gain sqrt(2), zero biases), then, if recurrent, a GRU (orthogonal weights, zero
biases) followed by LayerNorm (``layer_norm=False``: no LayerNorm after the layers and the GRU), then
``Dense -> ReLU`` per ``head_sizes`` (none by default; gain sqrt(2)), then a linear head (orthogonal, gain 0.01 for
the actor, 1 for the critic).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def orthogonal(gain: float = 1.0):
    """Orthogonal initialiser (as ``nn.initializers.orthogonal``: Q of the QR of a Gaussian matrix, R's diagonal made
    positive, times ``gain``) in plain ``jnp`` ops: jaxlib 0.10's batched LAPACK calls can deadlock on few cores
    (see ``jaxmarl_core.linalg``), and stacked per-agent networks are initialised under ``vmap``.

    One jitted function per gain, its shape and dtype static: flax's ``apply`` checks every existing parameter's
    shape by tracing its initialiser abstractly, and a jitted initialiser is traced once per shape instead of at
    every call of every network in a training step."""
    return _orthogonal(float(gain))


@functools.cache
def _orthogonal(gain: float):
    @functools.partial(jax.jit, static_argnums=(1, 2))
    def init(key, shape, dtype=jnp.float32):
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        m, k = max(rows, cols), min(rows, cols)
        # drawn flat: the numbers of jax.random.normal(key, (m, k)), whose random-bit kernel compiles faster
        a = jax.random.normal(key, (m * k,), jnp.float32).reshape(m, k)
        q = _orthonormal_columns(a)
        q = q.T if rows < cols else q
        return (gain * q).reshape(shape).astype(dtype)

    return init


def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Gram-Schmidt (each projection applied twice, for accuracy in float32) of the columns of a [m, k], m >= k."""
    k = a.shape[1]

    def body(i, q):
        done = (jnp.arange(k) < i).astype(a.dtype)  # the columns already orthonormalised
        v = a[:, i]
        for _ in range(2):
            v = v - (q * done) @ ((q * done).T @ v)
        return q.at[:, i].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, k, body, jnp.zeros_like(a))


class MLPTorso(nn.Module):
    """x [..., D] -> features [..., hidden_sizes[-1]]."""

    hidden_sizes: Sequence[int]
    feature_norm: bool = True
    layer_norm: bool = True  # LayerNorm after each layer's ReLU

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.feature_norm:
            x = nn.LayerNorm()(x)
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=orthogonal(np.sqrt(np.float32(2.0))), bias_init=nn.initializers.zeros)(x)
            x = nn.relu(x)
            x = nn.LayerNorm()(x) if self.layer_norm else x
        return x


class _ResetGRUCell(nn.Module):
    """One GRU step that first zeros the state where ``reset`` is True: (h [..., H], (x [..., D], reset [...]))."""

    features: int

    @nn.compact
    def __call__(self, h: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x, reset = inputs
        h = jnp.where(reset[..., None], jnp.zeros_like(h), h)
        h, _ = nn.GRUCell(self.features, kernel_init=orthogonal(), recurrent_kernel_init=orthogonal(),
                          bias_init=nn.initializers.zeros)(h, x)
        return h, h


ScannedGRU = nn.scan(_ResetGRUCell, variable_broadcast="params", split_rngs={"params": False}, in_axes=0,
                     out_axes=0)
ScannedGRU.__doc__ = ("A GRU scanned over the leading axis: (h [..., H], (x [L, ..., D], resets [L, ...])) -> "
                      "(h_last [..., H], hidden sequence [L, ..., H]); the state is zeroed where resets is True.")


class _Body(nn.Module):
    """The torso and, if recurrent, the GRU: (hidden, x [L, ..., D], resets) -> (hidden seq or None, features)."""

    hidden_sizes: Sequence[int]
    recurrent: bool = False
    feature_norm: bool = True
    layer_norm: bool = True

    @nn.compact
    def __call__(self, hidden, x, resets):
        z = MLPTorso(self.hidden_sizes, self.feature_norm, self.layer_norm)(x)
        if not self.recurrent:
            return None, z
        _, seq = ScannedGRU(self.hidden_sizes[-1])(hidden, (z, resets))
        return seq, nn.LayerNorm()(seq) if self.layer_norm else seq


def _head_layers(z: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """``Dense -> ReLU`` per size between a network's body and its output (JaxMARL's MAPPO has one after its GRU)."""
    for i, size in enumerate(sizes):
        z = nn.relu(nn.Dense(size, kernel_init=orthogonal(np.sqrt(np.float32(2.0))), bias_init=nn.initializers.zeros,
                             name=f"Head_{i}")(z))
    return z


class Actor(nn.Module):
    """Policy network: (hidden, x [L, ..., D], resets [L, ...]) -> (hidden seq [L, ..., H] or None,
    out [L, ..., A], log_std [A] or None).

    Discrete: ``out`` are logits (mask them with ``distributions.masked_categorical``). Continuous: ``out`` is the
    Gaussian mean and the state-independent standard deviation is HARL's ``sigmoid(p / std_x_coef) * std_y_coef``
    of a parameter p initialised to ``std_x_coef`` (returned as its log).
    """

    action_dim: int
    continuous: bool = False
    hidden_sizes: Sequence[int] = (128, 128)
    recurrent: bool = False
    feature_norm: bool = True
    gain: float = 0.01
    std_x_coef: float = 1.0
    std_y_coef: float = 0.5
    head_sizes: Sequence[int] = ()
    layer_norm: bool = True

    @nn.compact
    def __call__(self, hidden, x, resets):
        seq, z = _Body(self.hidden_sizes, self.recurrent, self.feature_norm, self.layer_norm)(hidden, x, resets)
        z = _head_layers(z, self.head_sizes)
        out = nn.Dense(self.action_dim, kernel_init=orthogonal(self.gain), bias_init=nn.initializers.zeros)(z)
        if not self.continuous:
            return seq, out, None
        p = self.param("std_param", nn.initializers.constant(self.std_x_coef), (self.action_dim,))
        log_std = jax.nn.log_sigmoid(p / self.std_x_coef) + jnp.log(self.std_y_coef)
        return seq, out, log_std


class Critic(nn.Module):
    """Value network: (hidden, x [L, ..., D], resets [L, ...]) -> (hidden seq or None, values [L, ..., K])."""

    num_outputs: int = 1
    hidden_sizes: Sequence[int] = (128, 128)
    recurrent: bool = False
    feature_norm: bool = True
    head_sizes: Sequence[int] = ()
    layer_norm: bool = True

    @nn.compact
    def __call__(self, hidden, x, resets):
        seq, z = _Body(self.hidden_sizes, self.recurrent, self.feature_norm, self.layer_norm)(hidden, x, resets)
        z = _head_layers(z, self.head_sizes)
        return seq, nn.Dense(self.num_outputs, kernel_init=orthogonal(1.0), bias_init=nn.initializers.zeros)(z)


def append_agent_ids(x: jax.Array) -> jax.Array:
    """[..., N, D] -> [..., N, D + N]: agent i's row with the one-hot id of i appended."""
    n = x.shape[-2]
    return jnp.concatenate([x, jnp.broadcast_to(jnp.eye(n, dtype=x.dtype), x.shape[:-1] + (n,))], axis=-1)


def initial_hidden(hidden_sizes: Sequence[int], batch_shape: tuple[int, ...]) -> jax.Array:
    """Zeros [*batch_shape, hidden_sizes[-1]]: the recurrent state at an episode's start."""
    return jnp.zeros(tuple(batch_shape) + (hidden_sizes[-1],), jnp.float32)


class PlainMLP(nn.Module):
    """x [..., D] -> [..., out_dim]: ``Dense -> ReLU`` per hidden size, then a linear layer and, with ``tanh``, a tanh
    (HARL's ``PlainMLP``, the off-policy actors and Q-networks; flax's default initialisers, no normalisation)."""

    out_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    tanh: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        x = nn.Dense(self.out_dim)(x)
        return jnp.tanh(x) if self.tanh else x


def gather_neighbours(x: jax.Array, idx: jax.Array) -> jax.Array:
    """Each agent's neighbours' rows: x [..., N, F], idx int [..., N, K] -> [..., N, K, F] (row [i, k] is
    ``x[idx[i, k]]``)."""
    return jnp.take_along_axis(x[..., None, :, :], idx[..., :, :, None].astype(jnp.int32), axis=-2)


class MaskedMultiHeadAttention(nn.Module):
    """Multi-head dot-product attention of each agent over its neighbourhood (DGN's relation kernel, Jiang et al.,
    2020, eq. 1): (x [..., N, D], idx int [..., N, K], mask bool [..., N, K]) -> (out [..., N, out_dim], logits
    [..., N, H, K]); agent i's neighbourhood is the agents ``idx[i, k]`` where ``mask[i, k]``.

        q_ih = relu(W_Q x_i)_h,  k_jh = relu(W_K x_j)_h,  v_jh = relu(W_V x_j)_h      (H heads of head_dim each)
        alpha_ihk = softmax over the unmasked k of (q_ih . k_{idx[i, k] h} / sqrt(head_dim))
        out_i = relu(W_O concat_h sum_k alpha_ihk v_{idx[i, k] h})

    Keys and values are projected once per agent and then gathered (not once per slot). ``logits`` are the scaled
    scores with masked slots at the dtype's lowest finite value, so ``softmax(logits)`` is alpha (0 on masked slots)
    and ``log_softmax`` its logarithm. What a masked slot points at never reaches the output (its weight is exactly
    0); an agent whose every slot is masked gets the output of an all-zero aggregate. The projections are ReLU
    layers, as in the released code (PKU-RL/DGN).

    ``gate`` (optional, [..., N, K]) multiplies alpha_ihk after the softmax: G2ANet's hard attention weights (a
    straight-through 0/1 sample whose gradient reaches the hard attention; slots it drops should also be masked, so
    that the softmax runs over the kept slots only and a dropped slot gets neither weight nor gradient).
    ``query`` (optional, [..., N, D]) replaces x_i in q_ih (MAAC's critic: queries from the observation, keys and
    values from the observation-action encodings)."""

    num_heads: int = 8
    head_dim: int = 16
    out_dim: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, idx: jax.Array, mask: jax.Array,
                 gate: jax.Array | None = None, query: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        h, d = self.num_heads, self.head_dim
        heads = x.shape[:-1] + (h, d)  # [..., N, H, dh]
        q = nn.relu(nn.Dense(h * d, name="query")(x if query is None else query)).reshape(heads)
        k = gather_neighbours(nn.relu(nn.Dense(h * d, name="key")(x)), idx).reshape(idx.shape + (h, d))
        v = gather_neighbours(nn.relu(nn.Dense(h * d, name="value")(x)), idx).reshape(idx.shape + (h, d))
        scores = jnp.einsum("...hd,...khd->...hk", q, k) / jnp.sqrt(jnp.float32(d))
        valid = mask[..., None, :]
        logits = jnp.where(valid, scores, jnp.finfo(scores.dtype).min)
        weights = jnp.where(valid, jax.nn.softmax(logits, axis=-1), 0.0)
        if gate is not None:
            weights = weights * gate[..., None, :]
        mixed = jnp.einsum("...hk,...khd->...hd", weights, v).reshape(x.shape[:-1] + (h * d,))
        return nn.relu(nn.Dense(self.out_dim, name="out")(mixed)), logits
