"""Actor updates: the PPO and A2C surrogates by epochs of minibatch Adam steps, HATRPO's natural-gradient step with
a line search, and how agents move: all at once (one shared actor, or stacked actors under ``vmap``) or one after
another (the heterogeneous-agent update of HAPPO, HATRPO, HAA2C).

A batch is a dict of arrays [L, M, (N,) ...] (L = 1 for feed-forward networks, M sequences or samples): ``obs``,
``first``, ``action``, ``mask`` (available actions or real Box dimensions), ``adv`` (normalised advantages),
``old_logp`` (log-probabilities under the policy that acted), ``log_factor`` (log M of the agents moved before) and,
for recurrent actors, ``h0`` [1, M, (N,) H] (the hidden state at the rollout's start).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from algos.onpolicy.config import GAME_GRADIENT_UPDATES, OnPolicyConfig, TRPOConfig
from algos.onpolicy.model import Model, actor_all, dist_stats
from jaxmarl_core import actor_critic, distributions, trpo
from jaxmarl_core import game_gradients as gg


def actor_forward(model: Model, aparams, batch):
    """One agent's (or the shared) actor on batch leaves [L, M, ...] -> (out [L, M, A], log_std [A] or None)."""
    h0 = batch["h0"][0] if model.recurrent else None
    return model.actor.apply(aparams, h0, batch["obs"], batch["first"])[1:]


def log_probs_entropy(model: Model, aparams, batch):
    """-> (log-probabilities [L, M], entropies [L, M]) of the batch's actions."""
    return dist_stats(model, *actor_forward(model, aparams, batch), batch["action"], batch["mask"])


def surrogate_loss(model: Model, cfg: OnPolicyConfig, aparams, mb, _):
    """PPO's clipped (A2C: unclipped) factor-weighted surrogate, negated, minus the entropy bonus."""
    clip = cfg.clip_eps if cfg.actor_update == "ppo" else None
    logp, ent = log_probs_entropy(model, aparams, mb)
    policy_loss = -jnp.mean(actor_critic.surrogate_terms(logp, mb["old_logp"], mb["adv"], mb["log_factor"], clip))
    entropy = jnp.mean(ent)
    ratio = jnp.mean(jnp.exp(logp - mb["old_logp"]))
    return policy_loss - cfg.entropy_coef * entropy, {"actor_loss": policy_loss, "entropy": entropy, "ratio": ratio}


def kl_of_outputs(model: Model, new, old, batch):
    """Mean KL(old || new) over the batch from both policies' ``actor_forward`` outputs."""
    out, log_std = new
    out_old, log_std_old = old
    if model.discrete:
        kl = distributions.categorical_kl(out_old, out, batch["mask"])
    else:
        kl = distributions.gaussian_kl(out_old, jnp.broadcast_to(log_std_old, out.shape), out,
                                       jnp.broadcast_to(log_std, out.shape), batch["mask"])
    return jnp.mean(kl)


def trpo_step(model: Model, cfg: TRPOConfig, aparams, batch):
    """One natural-gradient step with line search on the whole batch (HARL's HATRPO actor update):
    maximise the factor-weighted surrogate subject to mean KL(old || new) <= ``cfg.kl_threshold``."""
    theta, unravel = ravel_pytree(aparams)
    old = jax.lax.stop_gradient(actor_forward(model, aparams, batch))  # the old policy, traced once

    def surrogate_of(logp):
        return jnp.mean(actor_critic.surrogate_terms(logp, batch["old_logp"], batch["adv"], batch["log_factor"],
                                                     None))

    def surrogate(th):
        return surrogate_of(log_probs_entropy(model, unravel(th), batch)[0])

    def surrogate_and_kl(th):  # one forward for both
        out = actor_forward(model, unravel(th), batch)
        logp = dist_stats(model, *out, batch["action"], batch["mask"])[0]
        return surrogate_of(logp), kl_of_outputs(model, out, old, batch)

    fvp = trpo.gauss_newton_fisher_product(lambda th: actor_forward(model, unravel(th), batch),
                                           lambda out: kl_of_outputs(model, out, old, batch), theta, cfg.cg_damping)
    step, expected = trpo.natural_step(jax.grad(surrogate)(theta), fvp, cfg.kl_threshold, cfg.cg_iters)
    res = trpo.line_search(surrogate, surrogate_and_kl, theta, step, expected, cfg.kl_threshold, cfg.accept_ratio,
                           cfg.backtrack_coef, cfg.ls_steps)
    new = unravel(res.theta)
    logp, entropy = log_probs_entropy(model, new, batch)
    return new, {"actor_loss": -surrogate_of(logp), "entropy": jnp.mean(entropy), "kl": res.kl,
                 "ls_accepted": res.accepted.astype(jnp.float32), "ls_fraction": res.fraction}


def train_actor(model: Model, cfg: OnPolicyConfig, tx, aparams, opt_state, batch, key):
    """One agent's (or the shared actor's) update on batch leaves [L, M, ...] -> (params, opt state, metrics)."""
    if cfg.actor_update == "trpo":
        aparams, metrics = trpo_step(model, cfg.trpo, aparams, batch)
        return aparams, opt_state, metrics

    def loss(p, mb, stats):
        return surrogate_loss(model, cfg, p, mb, stats)

    aparams, opt_state, _, metrics = actor_critic.minibatch_sgd(loss, tx, aparams, opt_state, batch, key,
                                                                cfg.ppo_epochs, cfg.num_minibatches)
    return aparams, opt_state, metrics


def sequential_update(model: Model, cfg: OnPolicyConfig, tx, aparams, opt_state, batch, order, agent_keys):
    """The heterogeneous-agent update (Kuba et al., 2022, Algorithm 1): agents i_1 .. i_N of ``order`` move one
    after another, agent i_m maximising its surrogate weighted by M = prod_{j<m} pi_new(a_ij) / pi_old(a_ij) of the
    agents moved before it.

    aparams, opt_state: stacked [N, ...]; batch leaves [L, M, N, ...]; order: int [N]; agent_keys [N, 2]
    -> (params, opt states, metrics averaged over agents)."""
    # 1. gather the agents' params, optimiser states, keys and data in the order they move (agent axis first)
    moving = jax.tree.map(lambda x: jnp.take(x, order, axis=0), (aparams, opt_state, agent_keys))
    data = jax.tree.map(lambda x: jnp.moveaxis(jnp.take(x, order, axis=2), 2, 0), batch)

    def move(log_factor, xs):
        p_i, o_i, k_i, data_i = xs
        # 2. agent i_m's update on its surrogate weighted by the factor M so far
        data_i = {**data_i, "log_factor": log_factor}
        p_i, o_i, metrics = train_actor(model, cfg, tx, p_i, o_i, data_i, k_i)
        # 3. M <- M * pi_new(a_im) / pi_old(a_im) under the updated policy
        if cfg.use_factor:
            new_logp = log_probs_entropy(model, p_i, data_i)[0]
            log_factor = actor_critic.next_log_factor(log_factor, new_logp, data_i["old_logp"])
        return log_factor, (p_i, o_i, metrics)

    zero = jnp.zeros(batch["adv"].shape[:2])  # M = 1 for the first agent to move
    _, (p_moved, o_moved, metrics) = jax.lax.scan(move, zero, (*moving, data))
    # 4. scatter back to agent order
    inverse = jnp.argsort(order)
    aparams, opt_state = jax.tree.map(lambda x: jnp.take(x, inverse, axis=0), (p_moved, o_moved))
    return aparams, opt_state, jax.tree.map(jnp.mean, metrics)


def joint_surrogates(model: Model, cfg: OnPolicyConfig, aparams, batch):
    """The game AgA and CGA adjust: agent i's value V_i = mean[min(rho A_i, clip(rho, 1 -+ eps) A_i)] + c H_i, rho =
    prod_k pi_k(a_k) / pi_k,old(a_k) the joint ratio of all agents' stacked actors, A_i agent i's advantage and H_i
    its policy's entropy (coefficient ``entropy_coef``). Through rho every V_i depends on every actor, so grad_i V_j
    is agent j's policy gradient in agent i's parameters and the collective value sum_j V_j that of the summed
    advantages.

    aparams: stacked [N, ...]; batch leaves [L, M, N, ...] -> (V [N], metrics)."""
    h0 = batch["h0"][0] if model.recurrent else None
    _, out, log_std = actor_all(model, aparams, h0, batch["obs"], batch["first"])
    logp, ent = dist_stats(model, out, log_std, batch["action"], batch["mask"])  # [L, M, N]
    log_rho = jnp.sum(logp - batch["old_logp"], axis=-1, keepdims=True)  # [L, M, 1]
    surrogate = jnp.mean(actor_critic.surrogate_terms(log_rho, 0.0, batch["adv"], 0.0, cfg.clip_eps), axis=(0, 1))
    entropy = jnp.mean(ent, axis=(0, 1))
    return surrogate + cfg.entropy_coef * entropy, {"actor_loss": -jnp.mean(surrogate), "entropy": jnp.mean(entropy),
                                                    "ratio": jnp.mean(jnp.exp(log_rho))}


def game_gradient_direction(model: Model, cfg: OnPolicyConfig, aparams, batch):
    """A game-gradient method's descent direction on the game of ``joint_surrogates`` (losses -V) over the stacked
    actors, each agent's parameters flattened to a row, by ``actor_update`` (``jaxmarl_core.game_gradients``,
    Hessian-vector products only):

        aga: xi_c + lam (xi + H_c^T xi_c), lam by AgA's sign rule, |lam| = aga_lambda   (Li et al., 2024)
        cga: xi + gamma H^T xi, gamma = cga_gamma                                       (Mescheder et al., 2017)

    aparams: stacked [N, ...]; batch leaves [L, M, N, ...] -> (direction like aparams, metrics; under AgA
    ``aga_sign``, the sign of lam, and the signs of its rule's factors: ``aga_stability_sign`` of <xi_c, H_c^T xi_c>
    and ``aga_alignment_sign`` of <xi, H_c^T xi_c> + |H_c^T xi_c|^2)."""
    unravel = ravel_pytree(jax.tree.map(lambda x: x[0], aparams))[1]
    theta = jax.vmap(lambda p: ravel_pytree(p)[0])(aparams)  # [N, P]

    def value_fn(th):
        return joint_surrogates(model, cfg, jax.vmap(unravel)(th), batch)[0]

    metrics = joint_surrogates(model, cfg, aparams, batch)[1]
    if cfg.actor_update == "aga":
        ascent, lam, (stability, alignment) = gg.aga_with_lambda(value_fn, theta, cfg.aga_lambda)
        metrics = {**metrics, "aga_sign": jnp.sign(lam), "aga_stability_sign": jnp.sign(stability),
                   "aga_alignment_sign": jnp.sign(alignment)}
    else:
        ascent = gg.consensus(value_fn, cfg.cga_gamma)(theta)
    return jax.vmap(unravel)(-ascent), metrics


def game_gradient_update(model: Model, cfg: OnPolicyConfig, tx, aparams, opt_state, batch, key):
    """``ppo_epochs`` x ``num_minibatches`` steps of every agent's optimiser (its own clipping and Adam, vmapped over
    the agents) along ``game_gradient_direction`` -> (params, opt states, metrics)."""

    def direction(p, mb, _):
        return game_gradient_direction(model, cfg, p, mb)

    per_agent = optax.GradientTransformation(jax.vmap(tx.init), jax.vmap(tx.update))
    aparams, opt_state, _, metrics = actor_critic.minibatch_sgd(None, per_agent, aparams, opt_state, batch, key,
                                                                cfg.ppo_epochs, cfg.num_minibatches,
                                                                grad_fn=direction)
    return aparams, opt_state, metrics


def update_actors(model: Model, cfg: OnPolicyConfig, tx, aparams, opt_state, batch, key):
    """All actors' update on batch leaves [L, M, N, ...] -> (params, opt states, metrics averaged over agents):
    the shared actor on all agents' samples, stacked actors at once (``vmap``), one after another in a fresh
    random order (``sequential``; ``fixed_order`` keeps 0..N-1), or jointly along AgA's or CGA's direction."""
    n = model.num_agents
    k_perm, k_train = jax.random.split(key)
    agent_keys = jax.random.split(k_train, n)
    if cfg.actor_update in GAME_GRADIENT_UPDATES:
        return game_gradient_update(model, cfg, tx, aparams, opt_state, batch, k_train)
    if cfg.share_params:
        merged = jax.tree.map(actor_critic.merge_agents, batch)
        return train_actor(model, cfg, tx, aparams, opt_state, merged, k_train)
    if not cfg.sequential:
        def one(p, o, b, k):
            return train_actor(model, cfg, tx, p, o, b, k)

        p, o, m = jax.vmap(one, in_axes=(0, 0, 2, 0))(aparams, opt_state, batch, agent_keys)
        return p, o, jax.tree.map(jnp.mean, m)
    order = jnp.arange(n) if cfg.fixed_order else jax.random.permutation(k_perm, n)
    return sequential_update(model, cfg, tx, aparams, opt_state, batch, order, agent_keys)
