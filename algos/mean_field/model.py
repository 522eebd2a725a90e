"""The mean-field learners' networks, one set per agent group (all agents of a group share them, as in the paper):
Q(o, a, abar) (or Q(o, a) without the mean action) for every variant, and the actor pi(a | o) of the actor-critic
ones. A network reads the agent's observation o [D] with, for the mean-field variants, its neighbours' mean one-hot
action abar [A] appended (the released code embeds abar apart and concatenates; one MLP on [o, abar] here)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from algos.mean_field.config import MeanFieldConfig
from jaxmarl_core.networks import Actor
from jaxmarl_core.qnetworks import QNetwork


@dataclasses.dataclass(frozen=True)
class Model:
    q_net: QNetwork
    actor: Actor | None  # actor-critic variants
    mean_field: bool
    obs_dim: int
    num_actions: int

    def init(self, key: jax.Array) -> dict:
        """One group's parameters: {"q": ...} (and {"actor": ...} for actor-critic variants)."""
        k_q, k_pi = jax.random.split(key)
        x = jnp.zeros((1, self.obs_dim + self.num_actions * self.mean_field), jnp.float32)
        params = {"q": self.q_net.init(k_q, None, x, None)}
        if self.actor is not None:
            params["actor"] = self.actor.init(k_pi, None, x[:, :self.obs_dim], None)
        return params

    def q(self, params: dict, obs: jax.Array, mean: jax.Array) -> jax.Array:
        """obs [..., D], mean [..., A] (ignored without the mean field) -> Q [..., A]."""
        x = jnp.concatenate([obs, mean], axis=-1) if self.mean_field else obs
        return self.q_net.apply(params["q"], None, x, None)[1]

    def logits(self, params: dict, obs: jax.Array) -> jax.Array:
        """obs [..., D] -> the actor's logits [..., A]."""
        return self.actor.apply(params["actor"], None, obs, None)[1]


def build_model(cfg: MeanFieldConfig, obs_dim: int, num_actions: int) -> Model:
    hidden = (cfg.hidden_size,) * cfg.hidden_layers
    actor = Actor(action_dim=num_actions, hidden_sizes=hidden, feature_norm=False) if cfg.family == "ac" else None
    return Model(q_net=QNetwork(action_dim=num_actions, hidden_sizes=hidden), actor=actor,
                 mean_field=cfg.mean_field, obs_dim=obs_dim, num_actions=num_actions)
