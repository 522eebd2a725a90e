"""G2ANet's two-stage attention (Liu et al., 2020, "Multi-Agent Game Abstraction via Graph Attention Neural
Network", section 4.1, Figure 3) and the GA-Comm policy built on it (section 4.2), shared by all agents:

    e_i = relu(W_e o_i)                                                   (observation encoder)
    hard attention, for agent i over the others j in its neighbourhood, in the neighbourhood's order:
        h_ij = BiGRU((e_i, e_j) for j = j_1 .. j_{K-1})_j                 (a bi-directional GRU over the pairs)
        W_h^{ij} = gumbel_softmax(W_g h_ij)[keep]  in {0, 1}               (straight-through: exact 0/1 forward)
    (two classes: with m = logit_keep - logit_drop and L a standard logistic draw, the difference of the two Gumbel
    draws, the sample is 1[m + L > 0] forward and sigmoid((m + L) / temperature) backward)
    soft attention over the kept agents (the relation kernel ``jaxmarl_core.networks.MaskedMultiHeadAttention``,
    masked to the kept ones and gated by W_h, so a dropped edge has weight exactly 0 and passes no gradient):
        x_i = sum_{j kept} W_h^{ij} softmax_j(q_i . k_j / sqrt(d)) v_j
    GA-Comm: pi(. | o_i) = softmax(W_pi relu(W_f [e_i, x_i])),  V(o_i) = W_V relu(W_f [e_i, x_i])

``comm`` chooses the message x_i: ``g2a`` (the above), ``soft`` (soft attention over every neighbour, no hard
attention), ``mean`` (CommNet's mean of the neighbours' e_j, Sukhbaatar et al., 2016) or ``none`` (x_i = 0: no
communication). The neighbourhood (``idx``, ``mask``: the ``Neighbourhood`` capability, the agent itself in slot
0) fixes who may be attended to; slot 0 is never attended (the paper's x_i sums over j != i; e_i enters directly).

Choices where this differs from the paper and its reference code (documented, not recoverable or simplified): the
encoder is one feed-forward layer (GA-Comm uses an LSTM); the GRU carries its state unchanged over masked slots, so
absent agents change nothing; the soft attention renormalises over the kept agents (the reference code weights the
softmax over all agents by W_h); the Gumbel sample is straight-through with temperature ``temperature`` (the
reference code: a soft sample at temperature 0.01). Without a key (``key=None``) the hard attention keeps an edge
where its keep logit is the larger (no noise), so evaluation and the tests are deterministic.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmarl_core.networks import MaskedMultiHeadAttention, gather_neighbours, orthogonal

COMM = ("g2a", "soft", "mean", "none")


class PairBiGRU(nn.Module):
    """A GRU run both ways over agent i's pairs (e_i, e_j), j = the neighbourhood's slots 1..K-1 in order:
    (e [..., N, H], idx int [..., N, K], valid bool [..., N, K - 1]) -> h [..., N, K - 1, 2G] (forward state, then
    backward state, after each slot). The GRU is flax's ``nn.GRUCell`` (Cho et al., 2014):

        r = sigmoid(W_ir x + b_ir + W_hr h),  z = sigmoid(W_iz x + b_iz + W_hz h)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h

    written out so that it costs less: the input x = (e_i, e_j) is linear, so W x = W_self e_i + W_other e_j is
    projected once per agent (N rows, not N (K - 1) pairs) and the other's part gathered; the three gates' input and
    hidden matrices are one matrix each ([2H, 3G], [G, 3G]); the K - 1 slots are one ``lax.scan`` each way.
    A masked slot keeps the state unchanged, so absent agents change nothing. ``own`` (optional, [..., N, H])
    replaces e_i on the agent's own side of the pairs (GA-AC: its observation's encoding, the others'
    observation-action encodings)."""

    features: int

    @nn.compact
    def __call__(self, e, idx, valid, own=None):
        g = self.features
        mine = e if own is None else own
        out = []
        for direction in ("forward", "backward"):
            w_in = self.param(f"{direction}_input", nn.initializers.lecun_normal(), (2 * e.shape[-1], 3 * g))
            b_in = self.param(f"{direction}_input_bias", nn.initializers.zeros_init(), (3 * g,))
            w_h = self.param(f"{direction}_hidden", orthogonal(), (g, 3 * g))
            b_hn = self.param(f"{direction}_hidden_bias", nn.initializers.zeros_init(), (g,))
            self_part = mine @ w_in[:e.shape[-1]] + b_in  # [..., N, 3G]
            other = gather_neighbours(e @ w_in[e.shape[-1]:], idx)[..., 1:, :]  # [..., N, K-1, 3G]
            x = self_part[..., None, :] + other

            def step(h, inputs, w_h=w_h, b_hn=b_hn):
                x_k, valid_k = inputs
                xr, xz, xn = jnp.split(x_k, 3, axis=-1)
                hr, hz, hn = jnp.split(h @ w_h, 3, axis=-1)
                r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
                new = (1.0 - z) * jnp.tanh(xn + r * (hn + b_hn)) + z * h
                h = jnp.where(valid_k[..., None], new, h)
                return h, h

            h0 = jnp.zeros(x.shape[:-2] + (g,), e.dtype)
            _, states = jax.lax.scan(step, h0, (jnp.moveaxis(x, -2, 0), jnp.moveaxis(valid, -1, 0)),
                                     reverse=direction == "backward")  # [K-1, ..., N, G], in slot order
            out.append(jnp.moveaxis(states, 0, -2))
        return jnp.concatenate(out, axis=-1)


class HardAttention(nn.Module):
    """(e [..., N, H], idx int [..., N, K], mask bool [..., N, K], key or None, own [..., N, H] or None: see
    ``PairBiGRU``) -> (keep [..., N, K] (0/1, straight-through gradient; slot 0 and masked slots 0), logits
    [..., N, K - 1, 2] (drop, keep) of slots 1..K-1)."""

    gru_size: int = 32
    temperature: float = 1.0

    @nn.compact
    def __call__(self, e, idx, mask, key, own=None):
        valid = mask[..., 1:]
        h = PairBiGRU(self.gru_size, name="gru")(e, idx, valid, own)  # [..., N, K-1, 2G]
        logits = nn.Dense(2, name="gate")(h)
        margin = logits[..., 1] - logits[..., 0]
        if key is not None:  # g_keep - g_drop of two Gumbel draws is a standard logistic draw
            u = jax.random.uniform(key, (margin.size,), minval=jnp.finfo(e.dtype).tiny, maxval=1.0)
            margin = margin + (jnp.log(u) - jnp.log1p(-u)).reshape(margin.shape)
        soft = jax.nn.sigmoid(margin / self.temperature)
        keep = soft + jax.lax.stop_gradient((margin > 0).astype(e.dtype) - soft)
        keep = jnp.where(valid, keep, 0.0)
        return jnp.concatenate([jnp.zeros_like(keep[..., :1]), keep], axis=-1), logits


class GAComm(nn.Module):
    """GA-Comm's policy and value: (obs [..., N, D], idx [..., N, K], mask [..., N, K], key or None) ->
    (logits [..., N, A], value [..., N], keep [..., N, K] (the hard attention's edges; every unmasked other slot
    for ``soft`` and ``mean``, none for ``none``), soft attention logits [..., N, H, K])."""

    num_actions: int
    hidden_size: int = 128
    comm: str = "g2a"
    num_heads: int = 1
    head_dim: int = 32
    gru_size: int = 32
    temperature: float = 1.0

    @nn.compact
    def __call__(self, obs, idx, mask, key=None):
        e = nn.relu(nn.Dense(self.hidden_size, name="encoder")(obs))
        others = mask.at[..., 0].set(False)
        if self.comm == "g2a":
            keep, _ = HardAttention(self.gru_size, self.temperature)(e, idx, mask, key)
        else:
            keep = others.astype(e.dtype)
        attention = jnp.zeros(idx.shape[:-1] + (self.num_heads, idx.shape[-1]), e.dtype)
        if self.comm in ("g2a", "soft"):
            kept = others & (keep > 0.5)
            x, attention = MaskedMultiHeadAttention(self.num_heads, self.head_dim, self.hidden_size,
                                                    name="soft")(e, idx, kept, keep)
        elif self.comm == "mean":
            count = jnp.maximum(jnp.sum(others, axis=-1, keepdims=True), 1)
            x = jnp.sum(jnp.where(others[..., None], gather_neighbours(e, idx), 0.0), axis=-2) / count
        else:
            x, keep = jnp.zeros_like(e), jnp.zeros_like(keep)
        f = nn.relu(nn.Dense(self.hidden_size, name="features")(jnp.concatenate([e, x], axis=-1)))
        return nn.Dense(self.num_actions, name="policy")(f), nn.Dense(1, name="value")(f)[..., 0], keep, attention
