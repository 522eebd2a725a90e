"""DGN's network (Jiang et al., 2020, section 3 and Figure 1; the released battle code's sizes), shared by all
agents:

    h_0 = encoder(o_i)                                         (MLP: encoder_size, hidden_size; ReLU)
    h_l = relation kernel l over {h_{l-1, j}: j in N(i)}          (masked multi-head attention, l = 1 .. L)
    Q(o, ., i) = W [h_0, h_1, ..., h_L] + b                     (linear head on the concatenation)

The neighbourhood N(i) is ``idx[i, :]`` where ``mask[i, :]`` (the ``Neighbourhood`` capability: i itself first), so
layer l + 1 reads the layer-l features of i's neighbours, and two layers see the neighbours' neighbours."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmarl_core.networks import MaskedMultiHeadAttention


class DGN(nn.Module):
    """(obs [..., N, D], idx int32 [..., N, K], mask bool [..., N, K]) -> (q [..., N, A], logits of every layer
    [L, ..., N, H, K])."""

    num_actions: int
    encoder_size: int = 512
    hidden_size: int = 128
    num_heads: int = 8
    head_dim: int = 16
    conv_layers: int = 2

    @nn.compact
    def __call__(self, obs: jax.Array, idx: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nn.relu(nn.Dense(self.encoder_size)(obs))
        h = nn.relu(nn.Dense(self.hidden_size)(h))
        features, logits = [h], []
        for _ in range(self.conv_layers):
            h, att = MaskedMultiHeadAttention(self.num_heads, self.head_dim, self.hidden_size)(h, idx, mask)
            features.append(h)
            logits.append(att)
        q = nn.Dense(self.num_actions)(jnp.concatenate(features, axis=-1))
        return q, jnp.stack(logits)


def build_model(cfg, num_actions: int) -> DGN:
    return DGN(num_actions=num_actions, encoder_size=cfg.encoder_size, hidden_size=cfg.hidden_size,
               num_heads=cfg.num_heads, head_dim=cfg.head_dim, conv_layers=cfg.conv_layers)
