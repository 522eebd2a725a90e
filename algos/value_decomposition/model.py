"""The value-based learners' networks: the agents' Q-networks (``jaxmarl_core.qnetworks.AgentQNetworks``) and the
mixers that turn the agents' chosen Q-values into the value a TD target is fitted to.

    none (IQL):  Q_i(o_i, a_i) for each agent, each fitted to its own target            -> [B, N]
    vdn:         Q_tot = sum_i Q_i(o_i, a_i)                  (Sunehag et al., 2018)     -> [B]
    qmix:        Q_tot = w_2(s)^T elu(W_1(s)^T q + b_1(s)) + V(s),  W_1, w_2 >= 0      -> [B]
                 (Rashid et al., 2018): hypernetworks on the global state s give the mixing weights, made
                 non-negative by an absolute value so that dQ_tot / dQ_i >= 0 (monotonic mixing)

QMIX's layers follow pymarl's ``QMixer`` with ``hypernet_layers=2``: W_1 = |Linear(ReLU(Linear(s, 64)), 32 N)|,
w_2 = |Linear(ReLU(Linear(s, 64)), 32)|, b_1 = Linear(s, 32), V(s) = Linear(ReLU(Linear(s, 32)), 1).
Arrays are laid out [L, B, N, ...]: L steps of a sequence (1 for feed-forward agents), B samples (or environments),
N agents. Recurrent agents (DRQN's layout: torso, GRU, linear head) run over whole episodes.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.value_decomposition.config import ValueDecompositionConfig
from jaxmarl_core.learner_view import LearnerView
from jaxmarl_core.networks import orthogonal
from jaxmarl_core.qnetworks import AgentQNetworks, QNetwork


class QMixer(nn.Module):
    """(q [..., N], state [..., S]) -> Q_tot [...], monotonic in every q_i."""

    num_agents: int
    embed: int = 32
    hypernet_embed: int = 64
    init_scale: float = 0.0  # >0: orthogonal weights of this scale and zero biases (JaxMARL's); 0: flax's defaults

    @nn.compact
    def __call__(self, q: jax.Array, state: jax.Array) -> jax.Array:
        def dense(width):
            if self.init_scale > 0:
                return nn.Dense(width, kernel_init=orthogonal(self.init_scale))
            return nn.Dense(width)

        def hyper(width):
            return jnp.abs(dense(width)(nn.relu(dense(self.hypernet_embed)(state))))

        w1 = hyper(self.embed * self.num_agents).reshape(*state.shape[:-1], self.num_agents, self.embed)
        b1 = dense(self.embed)(state)
        hidden = nn.elu(jnp.einsum("...n,...ne->...e", q, w1) + b1)  # [..., embed]
        w2 = hyper(self.embed)
        v = dense(1)(nn.relu(dense(self.embed)(state)))[..., 0]
        return jnp.sum(hidden * w2, axis=-1) + v


@dataclasses.dataclass(frozen=True)
class Model:
    """Static structure of the learner's networks (no parameters): the agents' Q-networks and the mixer."""

    agents: AgentQNetworks
    mixer: str  # "none" | "vdn" | "qmix"
    qmixer: QMixer | None
    obs_dim: int
    state_dim: int

    def init(self, key: jax.Array) -> dict[str, Any]:
        """{"agent": the agents' parameters, "mixer": QMIX's (empty for the others)}."""
        k_agent, k_mixer = jax.random.split(key)
        params = {"agent": self.agents.init(k_agent, self.obs_dim), "mixer": {}}
        if self.qmixer is not None:
            params["mixer"] = self.qmixer.init(k_mixer, jnp.zeros((1, self.agents.num_agents)),
                                               jnp.zeros((1, self.state_dim)))
        return params

    @property
    def recurrent(self) -> bool:
        return self.agents.net.recurrent

    def initial_hidden(self, batch_size: int) -> jax.Array | None:
        """Zeros [B, N, H] (None for feed-forward agents)."""
        return self.agents.initial_hidden(batch_size)

    def apply(self, params, hidden: jax.Array | None, obs: jax.Array, first: jax.Array):
        """The agents' Q-values on sequences: (hidden [B, N, H] | None, obs [L, B, N, D], first bool[L, B]: where
        an episode starts) -> (hidden seq [L, B, N, H] | None, Q [L, B, N, A])."""
        resets = jnp.broadcast_to(first[..., None], obs.shape[:-1])
        return self.agents.apply(params["agent"], hidden, obs, resets)

    def q_values(self, params, obs: jax.Array) -> jax.Array:
        """Feed-forward agents: obs [B, N, D] -> Q-values [B, N, A] of every agent's actions."""
        return self.apply(params, None, obs[None], jnp.zeros((1, obs.shape[0]), bool))[1][0]

    def next_q_values(self, params, seq: jax.Array | None, next_obs: jax.Array) -> jax.Array:
        """Q-values [L, B, N, A] of the observations reached, next_obs [L, B, N, D]: one more step from the hidden
        state after each step, seq [L, B, N, H] (recurrent agents; feed-forward ones ignore it)."""
        lead = next_obs.shape[:2]
        flat = next_obs.reshape(1, -1, *next_obs.shape[2:])
        hidden = None if seq is None else seq.reshape(-1, *seq.shape[2:])
        q = self.apply(params, hidden, flat, jnp.zeros(flat.shape[:2], bool))[1]
        return q.reshape(*lead, *q.shape[2:])

    def mix(self, params, q: jax.Array, state: jax.Array | None) -> jax.Array:
        """The agents' values q [..., N] -> [..., N] (none: unchanged) or Q_tot [...] (vdn, qmix on state [..., S])."""
        if self.mixer == "none":
            return q
        if self.mixer == "vdn":
            return jnp.sum(q, axis=-1)
        return self.qmixer.apply(params["mixer"], q, state)


def build_model(view: LearnerView, cfg: ValueDecompositionConfig) -> Model:
    net = QNetwork(action_dim=view.num_actions, hidden_sizes=(cfg.hidden_size,) * cfg.hidden_layers,
                   recurrent=cfg.recurrent, feature_norm=cfg.feature_norm, layer_norm=cfg.layer_norm)
    agents = AgentQNetworks(net, view.num_agents, shared=cfg.share_params, agent_id=cfg.share_params and cfg.agent_id)
    qmixer = (QMixer(view.num_agents, cfg.mixing_embed, cfg.hypernet_embed, cfg.mixer_init_scale)
              if cfg.mixer == "qmix" else None)
    return Model(agents=agents, mixer=cfg.mixer, qmixer=qmixer, obs_dim=view.obs_dim, state_dim=view.state_dim)
