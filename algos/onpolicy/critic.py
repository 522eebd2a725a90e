"""The critic update: ``critic_epochs`` x ``num_minibatches`` Adam steps of HARL's clipped Huber value loss on
normalised targets. With value normalisation, every minibatch's returns enter the ``ValueNorm`` before they are
normalised (HARL's critic). Separate critics (IPPO without sharing) train under ``vmap``, each on its own agent's
statistics.

A batch is a dict of arrays [L, M, (N,) ...]: ``x`` (critic inputs), ``first``, ``old_v`` [L, M, N] (normalised
values before the update), ``target`` [L, M, N] (returns) and, for recurrent critics, ``h0`` [1, M, (N,) H].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.onpolicy.config import OnPolicyConfig
from algos.onpolicy.model import Model, critic_apply
from jaxmarl_core import actor_critic
from jaxmarl_core.value_norm import ValueNorm


def critic_loss(model: Model, cfg: OnPolicyConfig, cparams, mb, vn: ValueNorm):
    """value_coef * the clipped Huber loss of the values against the (normalised) targets."""
    h0 = mb["h0"][0] if model.recurrent else None
    _, v = critic_apply(model, cparams, h0, mb["x"], mb["first"])
    target = vn.normalize(mb["target"]) if cfg.use_value_norm else mb["target"]
    value_clip = cfg.clip_eps if cfg.clip_value_loss else None
    loss = actor_critic.value_loss(v, mb["old_v"], target, value_clip, cfg.huber_delta)
    return cfg.value_coef * loss, {"value_loss": loss}


def fold_targets(vn: ValueNorm, mb) -> ValueNorm:
    """HARL's critic: every minibatch's returns [L, m, (N)] enter the ValueNorm before they are normalised."""
    return vn.update(mb["target"].reshape((-1,) + vn.mean.shape))


def train_critic(model: Model, cfg: OnPolicyConfig, tx, cparams, opt_state, batch, vn: ValueNorm, key):
    """One critic's epochs of minibatch steps -> (params, opt state, ValueNorm, metrics)."""

    def loss(p, mb, stats):
        return critic_loss(model, cfg, p, mb, stats)

    return actor_critic.minibatch_sgd(loss, tx, cparams, opt_state, batch, key, cfg.critic_epochs,
                                      cfg.num_minibatches, vn, fold_targets if cfg.use_value_norm else None)


def update_critic(model: Model, cfg: OnPolicyConfig, tx, cparams, opt_state, batch, vn: ValueNorm, key):
    """batch: x [L, M, (N,) ...], first [L, M, (N)], old_v [L, M, N] normalised values, target [L, M, N] returns,
    h0 [1, M, (N,) H]; vn: ValueNorm [N] -> (params, opt states, ValueNorm, metrics)."""
    if not model.separate_critics:
        return train_critic(model, cfg, tx, cparams, opt_state, batch, vn, key)
    per_agent_vn = vn.replace(mean=0, mean_sq=0, debias=None)  # vmap axes: the statistics, not the weight

    def one(p, o, b, v, k):
        return train_critic(model, cfg, tx, p, o, b, v, k)

    p, o, vn, m = jax.vmap(one, in_axes=(0, 0, 2, per_agent_vn, 0), out_axes=(0, 0, per_agent_vn, 0))(
        cparams, opt_state, batch, vn, jax.random.split(key, model.num_agents))
    return p, o, vn, jax.tree.map(jnp.mean, m)
