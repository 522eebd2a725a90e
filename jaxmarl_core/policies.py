"""Policies whose parameters are one flat vector, so that N agents stack to ``[N, P]`` and higher-order tools
(``jax.jacrev`` of gradients, Hessian-vector products) see plain arrays.

A policy maps ``(params [P], state, obs) -> (logits [A], state)``; ``state`` is a recurrent state (a dummy for
memoryless policies) that starts every episode at ``initial_state()``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


def sample_categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Draw from softmax(logits [..., A]) by inverting the CDF: one uniform per draw (``jax.random.categorical``
    draws A Gumbels), which matters where sampling dominates the cost. -> int32 [...]."""
    return categorical_from_uniform(jax.random.uniform(key, logits.shape[:-1] + (1,)), logits)


def _with_constant(x: jax.Array) -> jax.Array:
    """[..., F] -> [..., F + 1]: the features and a constant 1."""
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def categorical_from_uniform(u: jax.Array, logits: jax.Array) -> jax.Array:
    """The draw of ``sample_categorical`` from given uniforms u [..., 1] in [0, 1). -> int32 [...]."""
    if logits.shape[-1] == 2:  # P(a = 0) = sigmoid(l0 - l1): no softmax, no cumulative sum
        return (u[..., 0] >= jax.nn.sigmoid(logits[..., 0] - logits[..., 1])).astype(jnp.int32)
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    return jnp.sum(u > cdf[..., :-1], axis=-1).astype(jnp.int32)


class FlatPolicy:
    num_actions: int

    def init(self, key: jax.Array) -> jax.Array:
        """-> [P] initial parameters."""
        raise NotImplementedError

    def initial_state(self) -> Any:
        raise NotImplementedError

    def step(self, params: jax.Array, state: Any, obs: jax.Array) -> tuple[jax.Array, Any]:
        """One observation -> (logits [A], next state)."""
        raise NotImplementedError

    def batch_step(self, params: jax.Array, state: Any, obs: jax.Array) -> tuple[jax.Array, Any]:
        """Every agent's policy on a batch of games: params [N, P], state [B, N, ...], obs [B, N, ...] ->
        (logits [B, N, A], next state)."""
        return jax.vmap(jax.vmap(self.step), in_axes=(None, 0, 0))(params, state, obs)

    def sequence_logits(self, params: jax.Array, obs: jax.Array) -> jax.Array:
        """[T, ...] observations of one episode (from its start) -> [T, A] logits."""

        def body(state, o):
            logits, state = self.step(params, state, o)
            return state, logits

        return jax.lax.scan(body, self.initial_state(), obs)[1]

    def encode(self, obs: jax.Array) -> jax.Array:
        """What a stored episode keeps of each observation [..., *obs_shape], the input of ``log_probs`` and
        ``features`` (default: all of it)."""
        return obs

    def features(self, inputs: jax.Array, batch_dims: int) -> jax.Array:
        """Encoded observations with ``batch_dims`` leading axes -> [..., F] features of a linear baseline: the
        flattened observation and a constant."""
        return _with_constant(inputs.reshape(inputs.shape[:batch_dims] + (-1,)).astype(jnp.float32))

    def log_probs(self, params: jax.Array, inputs: jax.Array, actions: jax.Array) -> jax.Array:
        """Time-major episodes of encoded observations inputs [T, B, ...] and actions [T, B] -> [T, B]
        log-probabilities of the actions."""
        return _chosen(jax.vmap(self.sequence_logits, in_axes=(None, 1), out_axes=1)(params, inputs), actions)


def _chosen(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """logits [..., A] and actions [...] -> [...] the actions' log-probabilities."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


@dataclasses.dataclass(frozen=True)
class MemoryOnePolicy(FlatPolicy):
    """Two actions, one logit of action 0 per one-hot state: logits = (params . obs, 0), i.e. P(a = 0) =
    sigmoid(params . obs) (the layout of ``exact_value`` in the iterated games)."""

    num_states: int = 5
    init_std: float = 0.0
    num_actions: int = 2

    def init(self, key):
        return self.init_std * jax.random.normal(key, (self.num_states,))

    def initial_state(self):
        return jnp.zeros(())

    def step(self, params, state, obs):
        return jnp.stack([jnp.sum(obs * params), jnp.zeros(())]), state

    def batch_step(self, params, state, obs):
        logit = jnp.einsum("bns,ns->bn", obs, params)  # a contraction: much faster than a vmapped ``step``
        return jnp.stack([logit, jnp.zeros_like(logit)], axis=-1), state

    def sequence_logits(self, params, obs):
        logit = obs @ params
        return jnp.stack([logit, jnp.zeros_like(logit)], axis=-1)

    def encode(self, obs):
        """One-hot states [..., S] -> int32 state indices [...]: a fifth of the memory, and ``log_probs`` gathers
        instead of contracting."""
        return jnp.argmax(obs, axis=-1).astype(jnp.int32)

    def features(self, inputs, batch_dims):
        return _with_constant(jax.nn.one_hot(inputs, self.num_states, dtype=jnp.float32))

    def log_probs(self, params, inputs, actions):
        logit = params[inputs]  # [T, B]: log P(a = 0) = log sigmoid(logit), log P(a = 1) = log sigmoid(-logit)
        return jax.nn.log_sigmoid(jnp.where(actions == 0, logit, -logit))


def _same_padding_taps(height: int, width: int, size: int) -> np.ndarray:
    """[size, size, HW, HW] 0/1: tap (dy, dx) of a SAME-padded size x size convolution reads input cell p for output
    cell q."""
    taps = np.zeros((size, size, height * width, height * width), np.float32)
    for r in range(height):
        for c in range(width):
            for dy in range(size):
                for dx in range(size):
                    rr, cc = r + dy - size // 2, c + dx - size // 2
                    if 0 <= rr < height and 0 <= cc < width:
                        taps[dy, dx, rr * width + cc, r * width + c] = 1.0
    return taps


class _GridConv(nn.Module):
    """``nn.Conv(features, (size, size), padding="SAME")`` with the same parameters and initialisation: [..., H, W, C]
    -> [..., H, W, features]. On grids of at most size x size cells (the Coin Game's 3 x 3) it is one matrix product
    with the dense [H W C, H W features] matrix of the convolution, which computes as many products as the padded
    convolution and which XLA's CPU code runs, and differentiates in the kernel, faster than a convolution."""

    features: int
    size: int = 3
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        height, width, channels = x.shape[-3:]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.size, self.size, channels, self.features))
        batch = x.shape[:-3]
        if height * width > self.size**2:
            y = jax.lax.conv_general_dilated(x.reshape((-1, height, width, channels)), kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")).reshape(batch + (-1,))
        else:
            taps = _same_padding_taps(height, width, self.size)
            dense = jnp.einsum("yxpq,yxio->piqo", taps, kernel).reshape(height * width * channels, -1)
            y = x.reshape(batch + (-1,)) @ dense
        if self.use_bias:
            y = y + jnp.tile(self.param("bias", nn.initializers.zeros_init(), (self.features,)), height * width)
        return y.reshape(batch + (height, width, self.features))


BATCH_NORM_EPSILON = 1e-3  # TensorFlow's ``layers.batch_norm`` default, as in the LOLA reference code


def batch_normalise(x: jax.Array, offset: jax.Array) -> jax.Array:
    """x [..., C] normalised per channel by its mean and variance over every other axis (the batch's statistics, in
    the forward pass and under differentiation alike), then shifted by offset [C]: (x - mean) / sqrt(var + eps) +
    offset, TensorFlow's ``layers.batch_norm`` in training mode with its defaults (a learned offset, no scale)."""
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = jnp.square(x - mean).mean(axis=axes)
    return (x - mean) * jax.lax.rsqrt(var + BATCH_NORM_EPSILON) + offset


class _RecurrentNet(nn.Module):
    """``encode`` (the layers before the recurrence, per observation), then ``recur``: the cell ``self.cell`` and the
    logits head ``self.head``."""

    def recur(self, state, x):
        state, y = self.cell(state, x)
        return self.head(y), state

    def __call__(self, state, obs):
        return self.recur(state, self.encode(obs))


class _GRUNet(_RecurrentNet):
    """``encode``: obs (flattened) -> Dense(hidden) + ReLU; ``recur``: GRU(hidden) -> Dense(A) logits."""

    hidden: int
    num_actions: int
    obs_ndim: int  # the rank of one observation (the axes ``encode`` flattens)

    def setup(self):  # the names compact modules would get, so parameters and their initialisation are kept
        self.encoder = nn.Dense(self.hidden, name="Dense_0")
        self.cell = nn.GRUCell(features=self.hidden, name="GRUCell_0")
        self.head = nn.Dense(self.num_actions, name="Dense_1")

    def encode(self, obs):
        """[..., *obs_shape] -> [..., hidden]."""
        return nn.relu(self.encoder(obs.reshape(obs.shape[:obs.ndim - self.obs_ndim] + (-1,))))


class _ConvLSTMNet(_RecurrentNet):
    """``encode``: obs [..., H, W, C] -> two 3x3 convolutions with ReLU, flattened; ``recur``: LSTM(hidden) ->
    Dense(A) logits. ``batch_norm``: each convolution without a bias, batch-normalised (``batch_normalise`` over all
    the observations ``encode`` is given) before its ReLU."""

    hidden: int
    num_actions: int
    channels: int
    batch_norm: bool = False

    def setup(self):
        self.convs = [_GridConv(self.channels, use_bias=not self.batch_norm, name=f"Conv_{i}") for i in range(2)]
        if self.batch_norm:
            self.offsets = [self.param(f"BatchNorm_{i}", nn.initializers.zeros_init(), (self.channels,))
                            for i in range(2)]
        self.cell = nn.OptimizedLSTMCell(features=self.hidden, name="OptimizedLSTMCell_0")
        self.head = nn.Dense(self.num_actions, name="Dense_0")

    def encode(self, obs):
        x = obs
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = nn.relu(batch_normalise(x, self.offsets[i]) if self.batch_norm else x)
        return x.reshape(x.shape[:-3] + (-1,))


@dataclasses.dataclass(frozen=True)
class RecurrentPolicy(FlatPolicy):
    """obs (flattened) -> Dense(hidden) + ReLU -> GRU(hidden) -> Dense(A) logits; the GRU state carries memory.

    ``cell="conv_lstm"``: the LOLA paper's Coin Game network instead, obs [H, W, C] -> two 3x3 convolutions of
    ``channels`` filters (SAME padding) with ReLU -> LSTM(hidden) -> Dense(A); its state is the LSTM's (c, h).
    ``batch_norm`` (conv_lstm): the convolutions batch-normalised as in the LOLA reference code, so an observation's
    logits depend on the batch it comes in: ``batch_step`` normalises over the games of one step, ``log_probs``
    over all the steps of the episodes it is given, and ``step`` (one observation) is refused."""

    obs_shape: tuple
    num_actions: int
    hidden: int = 32
    cell: str = "gru"  # "gru" or "conv_lstm"
    channels: int = 20  # conv_lstm: filters of each convolution
    batch_norm: bool = False

    def __post_init__(self):
        if self.cell not in ("gru", "conv_lstm"):
            raise ValueError(f"cell must be 'gru' or 'conv_lstm', got {self.cell!r}")
        if self.batch_norm and self.cell != "conv_lstm":
            raise ValueError(f"batch_norm needs cell='conv_lstm' (the convolutions it normalises), got {self.cell!r}")

    @property
    def _net(self) -> nn.Module:
        if self.cell == "conv_lstm":
            return _ConvLSTMNet(hidden=self.hidden, num_actions=self.num_actions, channels=self.channels,
                                batch_norm=self.batch_norm)
        return _GRUNet(hidden=self.hidden, num_actions=self.num_actions, obs_ndim=len(self.obs_shape))

    def _variables(self, key):
        return self._net.init(key, self.initial_state(), jnp.zeros(self.obs_shape))

    @property
    def num_params(self) -> int:
        shapes = jax.eval_shape(self._variables, jax.random.PRNGKey(0))
        return sum(x.size for x in jax.tree.leaves(shapes))

    def init(self, key):
        return ravel_pytree(self._variables(key))[0]

    def _unraveler(self):
        """flat [P] -> the network's variables (built from shapes only: no initialisation is run)."""
        template = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                                jax.eval_shape(self._variables, jax.random.PRNGKey(0)))
        return ravel_pytree(template)[1]

    def initial_state(self):
        if self.cell == "conv_lstm":
            return jnp.zeros((self.hidden,)), jnp.zeros((self.hidden,))
        return jnp.zeros((self.hidden,))

    def step(self, params, state, obs):
        if self.batch_norm:
            raise ValueError("a batch-normalised policy has no logits for one observation alone: use batch_step or "
                             "log_probs")
        return self._net.apply(self._unraveler()(params), state, obs)

    def batch_step(self, params, state, obs):
        if not self.batch_norm:
            return super().batch_step(params, state, obs)
        x = jax.vmap(self.encoded, in_axes=(0, 1), out_axes=1)(params, obs)  # [B, N, F]: each agent's games together

        def recur(p, s, x_n):
            return self._net.apply(self._unraveler()(p), s, x_n, method="recur")

        return jax.vmap(jax.vmap(recur), in_axes=(None, 0, 0))(params, state, x)

    def encoded(self, params: jax.Array, inputs: jax.Array) -> jax.Array:
        """Observations [..., *obs_shape] -> [..., F]: the layers before the recurrence under params [P]."""
        return self._net.apply(self._unraveler()(params), inputs, method="encode")

    def trunk_features(self, params: jax.Array, inputs: jax.Array) -> jax.Array:
        """[..., *obs_shape] -> [..., F + 1]: ``encoded`` and a constant, the features of a value head on the
        encoder (the LOLA reference code's critic)."""
        return _with_constant(self.encoded(params, inputs))

    def log_probs(self, params, inputs, actions):
        """As ``FlatPolicy.log_probs``, with the layers before the recurrence applied once to all T B observations
        and only the recurrent cell scanned over T (XLA's gradients of one large product beat T small ones)."""
        variables = self._unraveler()(params)
        x = self._net.apply(variables, inputs, method="encode")  # [T, B, F]
        state = jax.tree.map(lambda s: jnp.broadcast_to(s, (inputs.shape[1],) + s.shape), self.initial_state())

        def body(state, x_t):
            logits, state = self._net.apply(variables, state, x_t, method="recur")
            return state, logits

        return _chosen(jax.lax.scan(body, state, x)[1], actions)
