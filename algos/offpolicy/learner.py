"""The off-policy training loop: the learner state, one gradient step (critics, actors, targets), one update
(act, store, learn, log) and the ``Trainer``.

One gradient step on a batch (o, a, r, o') drawn uniformly from replay (``agent_batches``: one batch per agent, as
openai/maddpg draws, for that agent's critic, actor and fits), all agents at once:
1. target actions a'_j = mu'_j(o'_j) of the target actors (gumbel: a relaxed sample; TD3: plus the clipped smoothing
   noise clip(N(0, sigma^2), -c, c), then clipped to the Box);
2. critics: y_c = r_c + gamma (1 - terminated) min_k Q'_{c,k}(o', a'), r_c agent c's reward (or the team's sum);
   each critic c minimises sum_k mean (Q_{c,k}(o, a) - y_c)^2 with its own Adam (gradient norm clipped per critic);
   a truncated step bootstraps from o', a terminated one never does;
3. every ``policy_delay`` steps, the actors: agent i ascends Q_{c(i),1}(o, a_1 .. mu_i(o_i) .. a_N), with
   - MADDPG, MATD3, DDPG: the others' actions a_j from the batch, all agents at once;
   - HADDPG, HATD3 (HARL): the others' actions from their current policies, agents moving one after another in a
     random order (``fixed_order``: 0..N-1), each agent after its step replacing its action by its updated policy's,
     so agent i_m sees the already-updated actions of i_1 .. i_{m-1};
   minus MADDPG's penalty ``logit_reg`` * mean(raw^2) on the gumbel actors' logits;
4. on those same steps, the targets: theta' <- tau theta + (1 - tau) theta' (actors and critics).
Steps 3-4 are skipped (``lax.cond``: not computed on the one-seed path) on the other steps, where the actors, their
optimiser states and the targets stay as they are.

MADDPG's extensions. ``ensemble`` K: sub-policy k of agent i takes its actor step on a batch drawn from the
transitions in which agent i played k (of the shared buffer, or with ``sub_buffers`` from its own buffer D_i^(k) of
``buffer_size // K``, which each update's transitions enter for every agent and the sub-policy it played; under
``ensemble_draw=group`` the agents of a group, who play the same draw, share it: ``buffer_owners``); the
critics' targets act each agent by the target of the sub-policy it played.
``infer_policies``: agent i fits phi_i^j to each other agent's stored actions, minimising
-E[log phi_i^j(a_j | o_j)] - infer_entropy * H(phi_i^j), and critic i's target takes a_j' ~ phi'_i^j(o_j') for every
j != i (a Gumbel-softmax sample of the fit's Polyak target). The stored a_j is a soft sample softmax(l + g) of each
block, whose mean is flatter than the policy softmax(l): a fit to it is flatter too (``fit_total_variation``
measures by how much). ``infer_hard`` fits the one-hot of each block's argmax instead, argmax(l + g), which is an
exact draw of the categorical softmax(l) whatever the temperature. The replayed batch mixes the actions of every
policy the buffer has seen; ``infer_recent`` fits the update's own transitions instead, the current policies' only.

One update: act for ``rollout_len`` steps in ``num_envs`` environments (uniformly random Box actions for the first
``warmup_steps`` steps; then gumbel samples, or tanh actions with Gaussian exploration noise), store them, take
``num_sgd`` gradient steps once the buffer holds ``learning_starts`` transitions (before that none is computed), and
log: ``critic_loss``, ``q_mean`` (and ``approx_loss``) averaged over the update's gradient steps, ``actor_loss`` over
its actor steps only (nan on an update without one, as every loss before ``learning_starts``).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from algos.offpolicy.config import OffPolicyConfig
from algos.offpolicy.model import Model, build_model
from algos.onpolicy.learner import episode_returns
from jaxmarl_core import optim
from jaxmarl_core.distributions import block_one_hot, block_softmax
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.replay import ReplayBuffer, uniform_slots
from jaxmarl_core.rollout import RolloutCarry, reset_carry, rollout
from jaxmarl_core.targets import polyak_update
from jaxmarl_core.training import Trainer, XlaOptions


@struct.dataclass
class Sample:
    """One stored transition: obs, next_obs ``LearnerObs`` records ([N, D] observations, [N, A] available actions of
    discrete agents), action float32 [N, A] (the soft or one-hot vector the critics see), reward [N], terminated,
    policy int32 [N] (each agent's sub-policy; 0 without an ensemble)."""

    obs: LearnerObs
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: LearnerObs
    policy: jax.Array = None


@struct.dataclass
class Nets:
    """Parameters (actors stacked [N, ...], critics [C, K, ...]), their targets and optimiser states; ``it`` counts
    gradient steps (TD3's delay)."""

    actor: Any
    critic: Any
    actor_target: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    it: jax.Array
    approx: Any = None  # inferred policies: agent i's fits of agent j's policy, leaves [N, N, ...]
    approx_target: Any = None
    approx_opt: Any = None


@struct.dataclass
class OffPolicyState:
    nets: Nets
    buffer: ReplayBuffer
    carry: RolloutCarry
    running_return: jax.Array  # [B, N]
    last_return: jax.Array  # [N]
    step: jax.Array  # int32: updates done
    sub_buffers: ReplayBuffer | None = None  # sub_buffers: D^(k) of each owner (buffer_owners), leaves [K, G, ...]


def optimiser(lr: float, max_grad_norm: float) -> optax.GradientTransformation:
    return optim.clipped(optax.adam(lr), max_grad_norm)


def critic_rewards(cfg: OffPolicyConfig, reward: jax.Array) -> jax.Array:
    """reward [B, N] -> each critic's [C, B] (the team's sum under ``team_reward``)."""
    return jnp.sum(reward, axis=-1)[None] if cfg.team_reward else reward.T


def critic_target(model: Model, cfg: OffPolicyConfig, nets: Nets, batch: Sample, c, key) -> jax.Array:
    """Module step 1 and critic ``c``'s target y_c [B] on its batch (inferred policies: the others' next actions
    from agent c's target fits of their policies, ``inferred_next_action``)."""
    k_act, k_noise = jax.random.split(key)
    next_raw = model.raw_of(nets.actor_target, batch.next_obs.obs, batch.policy)
    next_action = model.action(next_raw, slice(None), batch.next_obs.avail, k_act if model.relaxation == "gumbel"
                               else None)
    next_action = model.explore(next_action, k_noise, cfg.target_noise, cfg.noise_clip)
    if cfg.infer_policies:
        next_action = inferred_next_action(model, nets, batch, next_action, c, jax.random.fold_in(k_act, 1))
    critic_c = jax.tree.map(lambda leaf: leaf[c], nets.critic_target)
    next_q = jnp.min(model.q_one(critic_c, model.critic_inputs(batch.next_obs.obs, next_action)[c]), axis=0)
    return critic_rewards(cfg, batch.reward)[c] + cfg.gamma * jnp.where(batch.terminated, 0.0, next_q)


def critic_step(model: Model, cfg: OffPolicyConfig, tx, nets: Nets, batches: Sample, key, batch_axis=None):
    """Module steps 1-2 -> (critic params, optimiser states, mean loss, mean Q); ``batches``: one for every critic
    (``batch_axis`` None) or one per critic (leaves [C, B, ...], 0)."""

    def loss(cp, x_c, y_c):
        q = model.q_one(cp, x_c)  # [K, B]
        return jnp.sum(jnp.mean(jnp.square(q - jax.lax.stop_gradient(y_c)), axis=-1)), jnp.mean(q)

    def one(cp, opt, c, batch):
        y_c = critic_target(model, cfg, nets, batch, c, key)
        x_c = model.critic_inputs(batch.obs.obs, batch.action)[c]
        (value, q), grads = jax.value_and_grad(loss, has_aux=True)(cp, x_c, y_c)
        updates, opt = tx.update(grads, opt, cp)
        return optax.apply_updates(cp, updates), opt, value, q

    cp, opt, losses, qs = jax.vmap(one, in_axes=(0, 0, 0, batch_axis))(nets.critic, nets.critic_opt,
                                                                        jnp.arange(model.num_critics), batches)
    return cp, opt, jnp.mean(losses), jnp.mean(qs)


def inferred_next_action(model: Model, nets: Nets, batch: Sample, own: jax.Array, i, key) -> jax.Array:
    """The next joint action [B, N, A] critic i's target sees: agent i's own target actor's (``own``) and, for every
    other agent j, a Gumbel-softmax sample of agent i's target fit of j's policy (the key of fitter i is the i-th
    of ``split(key, N)``)."""
    n = model.num_agents
    logits = model.raw(jax.tree.map(lambda leaf: leaf[i], nets.approx_target), batch.next_obs.obs)  # [B, N, A]
    fitted = model.action(logits, slice(None), batch.next_obs.avail, jax.random.split(key, n)[i])
    return jnp.where((jnp.arange(n) == i)[None, :, None], own, fitted)


def approximation_loss(model: Model, cfg: OffPolicyConfig, approx_ij, agent_j, obs: LearnerObs, action):
    """-(mean log-likelihood of agent j's stored soft action + infer_entropy * mean entropy) of agent i's fit of
    agent j: the categorical log-likelihood sum_a a_j[a] log softmax(logits)[a] within each soft one-hot block."""
    logits = model.actor.apply(approx_ij, obs.obs[:, agent_j])
    blocks = model.available_blocks(agent_j, None if obs.avail is None else obs.avail[:, agent_j])
    probs = block_softmax(logits, blocks, model.num_blocks)
    logp = jnp.where(blocks >= 0, jnp.log(jnp.maximum(probs, jnp.finfo(probs.dtype).tiny)), 0.0)
    target = action[:, agent_j]
    if cfg.infer_hard:
        target = block_one_hot(target, blocks, model.num_blocks)
    loglik = jnp.sum(target * logp, axis=-1)
    entropy = -jnp.sum(probs * logp, axis=-1)
    return -jnp.mean(loglik + cfg.infer_entropy * entropy)


def fit_total_variation(model: Model, actors, approx, obs: LearnerObs, key, samples: int = 64):
    """How far the inferred policies are from the policies they fit, on observations with leaves [B, N, ...]: the
    total variation between agent j's policy (the softmax of each block) and

    - agent i's fit of it -> [N (who fits), N (whose)], 0 on the diagonal;
    - the mean of ``samples`` soft samples softmax(l_j + g) of it (what a fit to the soft stored actions tends to)
      -> [N];

    each averaged over agent j's blocks and the B observations."""
    n = model.num_agents
    blocks = jnp.broadcast_to(model.available_blocks(slice(None), obs.avail),
                              obs.obs.shape[:-1] + (model.num_actions,))  # [B, N, A]
    per_agent_blocks = jnp.max(jnp.asarray(model.blocks), axis=-1) + 1  # [N]

    def tv(p, q):
        return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1) / per_agent_blocks

    logits = model.raw(actors, obs.obs)  # [B, N, A]
    policy = block_softmax(logits, blocks, model.num_blocks)
    fitted = block_softmax(model.approx_raw(approx, obs.obs), blocks, model.num_blocks)  # [N, B, N, A]
    fits = jnp.where(jnp.eye(n, dtype=bool), 0.0, jnp.mean(tv(fitted, policy[None]), axis=1))
    u = jax.random.uniform(key, (samples,) + logits.shape, minval=jnp.finfo(logits.dtype).tiny, maxval=1.0)
    soft_mean = jnp.mean(block_softmax(logits - jnp.log(-jnp.log(u)), blocks, model.num_blocks), axis=0)
    return fits, jnp.mean(tv(soft_mean, policy), axis=0)


def approximation_step(model: Model, cfg: OffPolicyConfig, tx, approx, opt, batches: Sample, batch_axis=None):
    """One Adam step of every fit (i, j), j != i, on the actions of agent i's batch (``batches``: one for all,
    ``batch_axis`` None, or one per agent, leaves [N, B, ...], 0) -> (params, opt states, mean loss)."""
    n = model.num_agents

    def one(p_ij, opt_ij, i, j, batch):
        value, grads = jax.value_and_grad(approximation_loss, argnums=2)(model, cfg, p_ij, j, batch.obs,
                                                                         batch.action)
        updates, new_opt = tx.update(grads, opt_ij, p_ij)
        moved = (optax.apply_updates(p_ij, updates), new_opt)
        return jax.tree.map(lambda a, b: jnp.where(i == j, b, a), moved, (p_ij, opt_ij)), value

    i, j = jnp.meshgrid(jnp.arange(n), jnp.arange(n), indexing="ij")
    (p, opt), losses = jax.vmap(jax.vmap(one, in_axes=(0, 0, 0, 0, None)), in_axes=(0, 0, 0, 0, batch_axis))(
        approx, opt, i, j, batches)
    return p, opt, jnp.sum(jnp.where(i != j, losses, 0.0)) / max(n * (n - 1), 1)


def actor_loss(model: Model, cfg: OffPolicyConfig, critic, p_i, agent, obs: LearnerObs, joint: jax.Array, key):
    """Agent ``agent``'s loss: -mean Q_{c,1}(o, a with a_agent = its policy's action) + logit_reg * mean(raw^2)."""
    raw = model.actor.apply(p_i, obs.obs[:, agent])
    avail = None if obs.avail is None else obs.avail[:, agent]
    own = model.action(raw, agent, avail, key if model.relaxation == "gumbel" else None)
    joint = joint.at[:, agent].set(own)
    c = 0 if cfg.team_reward else agent
    x = model.critic_inputs(obs.obs, joint)[c]
    q = model.q_one(jax.tree.map(lambda leaf: leaf[c], critic), x)[0]
    mask = jnp.asarray(model.dim_mask)[agent]
    reg = jnp.sum(jnp.where(mask, jnp.square(raw), 0.0)) / (raw.shape[0] * jnp.sum(mask))
    return -jnp.mean(q) + cfg.logit_reg * reg


def actor_step(model: Model, cfg: OffPolicyConfig, tx, critic, p_i, opt_i, agent, obs, joint, key):
    """One Adam step of agent ``agent``'s actor against the others' actions ``joint`` [B, N, A]."""
    value, grads = jax.value_and_grad(actor_loss, argnums=3)(model, cfg, critic, p_i, agent, obs, joint, key)
    updates, opt_i = tx.update(grads, opt_i, p_i)
    return optax.apply_updates(p_i, updates), opt_i, value


def policy_actions(model: Model, actors, obs: LearnerObs, key) -> jax.Array:
    """The current policies' actions [B, N, A] without exploration noise (gumbel: a relaxed sample)."""
    return model.action(model.raw(actors, obs.obs), slice(None), obs.avail,
                        key if model.relaxation == "gumbel" else None)


def parallel_actor_update(model: Model, cfg: OffPolicyConfig, tx, actors, opts, critic, batches: Sample, keys,
                          batch_axis=None):
    """All agents at once, each against its batch's replayed actions of the others (MADDPG, MATD3, DDPG):
    actors, opts [N, ...]; batches: one for all (``batch_axis`` None) or one per agent (leaves [N, B, ...], 0)."""

    def one(p_i, opt_i, agent, batch, k):
        return actor_step(model, cfg, tx, critic, p_i, opt_i, agent, batch.obs, batch.action, k)

    p, opt, losses = jax.vmap(one, in_axes=(0, 0, 0, batch_axis, 0))(actors, opts, jnp.arange(model.num_agents),
                                                                       batches, keys)
    return p, opt, jnp.mean(losses)


def update_actors(model: Model, cfg: OffPolicyConfig, tx, nets: Nets, critic, batch: Sample, key,
                  order=None, refresh: bool = True, sub_batches: Sample | None = None, batch_axis=None):
    """Module step 3 -> (actor params, optimiser states, mean loss). ``order`` (int [N]) overrides the sequential
    update's random order; ``refresh=False`` keeps every agent's first action (the identity with MADDPG's step).
    An ensemble's sub-policy k of agent i learns on ``sub_batches`` (leaves [K, N, B, ...]), transitions in which
    agent i played sub-policy k; ``batch_axis`` 0: ``batch`` holds one batch per agent (``agent_batches``)."""
    n = model.num_agents
    k_perm, k_joint, k_agents = jax.random.split(key, 3)
    keys = jax.random.split(k_agents, n)
    if model.ensemble > 1:
        update_k = functools.partial(parallel_actor_update, model, cfg, tx, critic=critic, keys=keys, batch_axis=0)
        p, opt, losses = jax.vmap(lambda a, o, b: update_k(actors=a, opts=o, batches=b))(
            nets.actor, nets.actor_opt, sub_batches)
        return p, opt, jnp.mean(losses)
    if not cfg.sequential:
        return parallel_actor_update(model, cfg, tx, nets.actor, nets.actor_opt, critic, batch, keys, batch_axis)
    if order is None:
        order = jnp.arange(n) if cfg.fixed_order else jax.random.permutation(k_perm, n)
    joint = jax.lax.stop_gradient(policy_actions(model, nets.actor, batch.obs, k_joint))

    def move(carry, agent):
        actors, opts, joint = carry
        p_i, opt_i = jax.tree.map(lambda leaf: leaf[agent], (actors, opts))
        p_i, opt_i, value = actor_step(model, cfg, tx, critic, p_i, opt_i, agent, batch.obs, joint, keys[agent])
        actors, opts = jax.tree.map(lambda leaf, new: leaf.at[agent].set(new), (actors, opts), (p_i, opt_i))
        if refresh:
            raw = model.actor.apply(p_i, batch.obs.obs[:, agent])
            avail = None if batch.obs.avail is None else batch.obs.avail[:, agent]
            own = model.action(raw, agent, avail, jax.random.fold_in(keys[agent], 1)
                               if model.relaxation == "gumbel" else None)
            joint = joint.at[:, agent].set(jax.lax.stop_gradient(own))
        return (actors, opts, joint), value

    (p, opt, _), losses = jax.lax.scan(move, (nets.actor, nets.actor_opt, joint), order)
    return p, opt, jnp.mean(losses)


def learn_step(model: Model, cfg: OffPolicyConfig, actor_tx, critic_tx, nets: Nets, batch: Sample, key,
               sub_batches: Sample | None = None, recent: Sample | None = None):
    """One gradient step (module steps 1-4) -> (nets, metrics); ``batch``: one for all agents, or under
    ``agent_batches`` one per agent (leaves [N, B, ...]) for its critic, actor and fits; ``sub_batches``: an
    ensemble's (``update_actors``); ``recent``: the update's own transitions, which ``infer_recent`` fits."""
    k_critic, k_actor = jax.random.split(key)
    axis = 0 if cfg.agent_batches else None
    critic, critic_opt, critic_loss, q_mean = critic_step(model, cfg, critic_tx, nets, batch, k_critic, axis)
    it = nets.it + 1
    policy_step = it % cfg.policy_delay == 0
    keep = jax.lax.cond(  # a real skip on the one-seed path (a select only where something vmaps this step)
        policy_step,
        lambda: update_actors(model, cfg, actor_tx, nets, critic, batch, k_actor, sub_batches=sub_batches,
                              batch_axis=axis),
        lambda: (nets.actor, nets.actor_opt, jnp.full((), jnp.nan, critic_loss.dtype)))
    tau = jnp.where(policy_step, cfg.tau, 0.0)
    metrics = {"critic_loss": critic_loss, "actor_loss": keep[2], "q_mean": q_mean}
    approx = {}
    if cfg.infer_policies:
        fit_batch, fit_axis = (recent, None) if cfg.infer_recent else (batch, axis)
        fit, fit_opt, metrics["approx_loss"] = approximation_step(model, cfg, actor_tx, nets.approx, nets.approx_opt,
                                                                  fit_batch, fit_axis)
        approx = dict(approx=fit, approx_opt=fit_opt, approx_target=polyak_update(fit, nets.approx_target, tau))
    new = Nets(actor=keep[0], critic=critic, actor_opt=keep[1], critic_opt=critic_opt,
               actor_target=polyak_update(keep[0], nets.actor_target, tau),
               critic_target=polyak_update(critic, nets.critic_target, tau), it=it, **approx)
    return new, metrics


def make_policy(model: Model, cfg: OffPolicyConfig, actors, random: jax.Array | bool = False,
                deterministic: bool = False):
    """The actors as a rollout policy on records [B, N, ...] -> (environment actions, (critic actions [B, N, A],
    sub-policies [B, N]), sub-policies): exploring (gumbel samples, or tanh actions plus noise), uniformly random Box
    actions where ``random``, or (``deterministic``) the actions without noise. An ensemble draws each agent's
    sub-policy uniformly at every episode's first step (``ensemble_draw=group``: one index for each agent group, which
    all its agents play) and keeps it to the episode's end."""

    def policy(key, rec: LearnerObs, playing):
        k_act, k_noise, k_rand, k_sub = jax.random.split(key, 4)
        if model.draws:  # one draw per agent group, played by all its agents (the paper's ensembles)
            drawn = jax.random.randint(k_sub, playing.shape[:1] + (max(model.draws) + 1,), 0, model.ensemble)
            drawn = drawn[:, jnp.asarray(model.draws)]
        else:
            drawn = jax.random.randint(k_sub, playing.shape, 0, model.ensemble)
        playing = jnp.where(rec.first[:, None], drawn, playing)
        action = model.action(model.raw_of(actors, rec.obs, playing), slice(None), rec.avail,
                              None if deterministic else k_act)
        if not deterministic:
            action = model.explore(action, k_noise, cfg.expl_noise)
        if model.relaxation == "tanh":
            low, high = jnp.asarray(model.low), jnp.asarray(model.high)
            uniform = low + jax.random.uniform(k_rand, action.shape) * (high - low)
            action = jnp.where(random, uniform, action)
        return model.env_action(action), (action, playing), playing

    return policy


def sub_policy_batches(model: Model, cfg: OffPolicyConfig, buffer: ReplayBuffer, key) -> Sample:
    """For each sub-policy k and agent i, ``batch_size`` transitions drawn uniformly from those in which agent i
    played k (its replay buffer D_i^(k); all stored transitions while it has none) -> leaves [K, N, B, ...]."""
    filled = jnp.arange(buffer.capacity) < buffer.size

    def draw(k, agent, key):
        mine = filled & (buffer.items.policy[:, agent] == k)
        weights = jnp.where(jnp.any(mine), mine, filled).astype(jnp.float32)
        slots = jax.random.choice(key, buffer.capacity, (cfg.batch_size,), p=weights / jnp.sum(weights))
        return jax.tree.map(lambda store: store[slots], buffer.items)

    ks, agents = jnp.meshgrid(jnp.arange(model.ensemble), jnp.arange(model.num_agents), indexing="ij")
    keys = jax.random.split(key, model.ensemble * model.num_agents).reshape(ks.shape + (-1,))
    return jax.vmap(jax.vmap(draw))(ks, agents, keys)


def buffer_owners(model: Model) -> np.ndarray:
    """int [N]: whose D^(k) each agent's sub-policy k learns from: its own (0..N-1), or under ``ensemble_draw=group``
    its group's, since every agent of a group plays the group's draw and so would store the same transitions."""
    return np.asarray(model.draws) if model.draws else np.arange(model.num_agents)


def sub_policy_buffers(model: Model, cfg: OffPolicyConfig, example: Sample) -> ReplayBuffer:
    """An empty buffer D^(k) of ``buffer_size // ensemble`` transitions for each sub-policy k of each owner
    (``buffer_owners``): leaves [K, G, ...], G agents or agent groups."""
    one = ReplayBuffer.create(example, cfg.buffer_size // cfg.ensemble)
    owners = int(buffer_owners(model).max()) + 1
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (model.ensemble, owners) + x.shape), one)


def store_sub_policies(model: Model, buffers: ReplayBuffer, samples: Sample) -> ReplayBuffer:
    """Each transition (leaves [B, ...]) into D_g^(k) for every owner g, k the sub-policy g's (first) agent played."""
    owners = buffer_owners(model)
    first = np.array([np.flatnonzero(owners == g)[0] for g in range(int(owners.max()) + 1)])
    ks, agents = jnp.meshgrid(jnp.arange(model.ensemble), jnp.asarray(first), indexing="ij")
    return jax.vmap(jax.vmap(lambda buf, k, i: buf.add_where(samples, samples.policy[:, i] == k)))(
        buffers, ks, agents)


def sub_buffer_batches(model: Model, cfg: OffPolicyConfig, buffers: ReplayBuffer, key) -> Sample:
    """For each sub-policy k and agent i, ``batch_size`` transitions drawn uniformly from its owner's D^(k), with the
    (k, i)-th of ``split(key, K * N)`` -> leaves [K, N, B, ...]."""
    keys = jax.random.split(key, model.ensemble * model.num_agents).reshape(model.ensemble, model.num_agents, -1)
    ks, owners = jnp.meshgrid(jnp.arange(model.ensemble), jnp.asarray(buffer_owners(model)), indexing="ij")

    def draw(k, g, key):  # a gather from the stacked store: no copy of D_g^(k)
        slots = uniform_slots(key, buffers.size[k, g], cfg.batch_size)
        return jax.tree.map(lambda store: store[k, g, slots], buffers.items)

    return jax.vmap(jax.vmap(draw))(ks, owners, keys)


def evaluate(view: LearnerView, model: Model, cfg: OffPolicyConfig, env_params, actors, key):
    """Mean return [N] of the episodes completed by ``eval_envs`` fresh environments acting deterministically for
    ``eval_steps`` steps (NaN if none)."""
    k_reset, k_run = jax.random.split(key)
    carry = reset_carry(k_reset, view, env_params, jnp.zeros((cfg.eval_envs, model.num_agents), jnp.int32),
                        batch_size=cfg.eval_envs)
    traj = rollout(k_run, view, env_params, make_policy(model, cfg, actors, deterministic=True), carry,
                   cfg.eval_steps, batched=True)[1]
    _, mean, count = episode_returns(jnp.zeros((cfg.eval_envs, model.num_agents)), traj)
    return jnp.where(count > 0, mean, jnp.nan)


def init(view: LearnerView, model: Model, cfg: OffPolicyConfig, env_params, actor_tx, critic_tx, key):
    """Fresh actors and critics (targets equal to them), optimisers, an empty buffer and ``num_envs`` episodes."""
    k_env, k_actor, k_critic = jax.random.split(key, 3)
    carry = reset_carry(k_env, view, env_params, jnp.zeros((cfg.num_envs, model.num_agents), jnp.int32),
                        batch_size=cfg.num_envs)
    actor, critic = model.init_actors(k_actor), model.init_critics(k_critic)
    one = jax.tree.map(lambda x: x[0], carry.obs)
    n = model.num_agents
    example = Sample(obs=one, action=jnp.zeros((n, model.num_actions)), reward=jnp.zeros((n,)),
                     terminated=jnp.zeros((), bool), next_obs=one, policy=jnp.zeros((n,), jnp.int32))
    init_actor_opt = jax.vmap(jax.vmap(actor_tx.init)) if model.ensemble > 1 else jax.vmap(actor_tx.init)
    nets = Nets(actor=actor, critic=critic, actor_target=actor, critic_target=critic,
                actor_opt=init_actor_opt(actor), critic_opt=jax.vmap(critic_tx.init)(critic),
                it=jnp.zeros((), jnp.int32))
    if cfg.infer_policies:
        approx = model.init_approximations(jax.random.fold_in(k_actor, 1))
        nets = nets.replace(approx=approx, approx_target=approx, approx_opt=jax.vmap(jax.vmap(actor_tx.init))(approx))
    return OffPolicyState(nets=nets, buffer=ReplayBuffer.create(example, cfg.buffer_size), carry=carry,
                          running_return=jnp.zeros((cfg.num_envs, n)), last_return=jnp.zeros((n,)),
                          step=jnp.zeros((), jnp.int32),
                          sub_buffers=sub_policy_buffers(model, cfg, example) if cfg.sub_buffers else None)


def update(view: LearnerView, model: Model, cfg: OffPolicyConfig, env_params, actor_tx, critic_tx,
           state: OffPolicyState, key):
    """One update (act, store, learn, log) -> (new state, metrics)."""
    k_roll, k_learn, k_eval = jax.random.split(key, 3)

    # 1. act: uniformly random Box actions during the warm-up
    warm = state.step * cfg.steps_per_update < cfg.warmup_steps
    carry, traj = rollout(k_roll, view, env_params, make_policy(model, cfg, state.nets.actor, random=warm),
                          state.carry, cfg.rollout_len, batched=True)

    # 2. store the T * B transitions
    samples = Sample(obs=traj.obs, action=traj.extras[0], reward=traj.reward, terminated=traj.terminated,
                     next_obs=traj.next_obs, policy=traj.extras[1])
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), samples)
    buffer = state.buffer.add(flat)
    subs_buf = store_sub_policies(model, state.sub_buffers, flat) if cfg.sub_buffers else None

    # 3. gradient steps once the buffer holds learning_starts transitions (and every D_i^(k) one)
    learn = buffer.can_sample(cfg.learning_starts)
    if cfg.sub_buffers:
        learn = learn & jnp.all(subs_buf.size > 0)

    def step(nets, k):
        k_draw, k_step, k_sub = jax.random.split(k, 3)
        if cfg.sub_buffers:
            subs = sub_buffer_batches(model, cfg, subs_buf, k_sub)
        else:
            subs = sub_policy_batches(model, cfg, buffer, k_sub) if model.ensemble > 1 else None
        if cfg.agent_batches:  # openai/maddpg: each agent's update draws its own indices
            batch = jax.vmap(lambda k: buffer.sample(k, cfg.batch_size))(jax.random.split(k_draw, model.num_agents))
        else:
            batch = buffer.sample(k_draw, cfg.batch_size)
        return learn_step(model, cfg, actor_tx, critic_tx, nets, batch, k_step, subs, flat)

    def sgd(nets, k):  # before learning_starts nothing is computed: the nets stay, every loss is nan
        skipped = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), jax.eval_shape(step, nets, k)[1])
        return jax.lax.cond(learn, step, lambda nets, k: (nets, skipped), nets, k)

    nets, losses = jax.lax.scan(sgd, state.nets, jax.random.split(k_learn, cfg.num_sgd))
    losses = {name: (jnp.nanmean if name == "actor_loss" else jnp.mean)(v) for name, v in losses.items()}

    # 4. metrics
    running, finished, count = episode_returns(state.running_return, traj)
    last_return = jnp.where(count > 0, finished, state.last_return)
    metrics = {"episode_return": last_return, "episodes": count, "reward_per_step": jnp.mean(traj.reward, (0, 1)),
               **losses, "learning": learn.astype(jnp.int32)}
    if cfg.eval_envs:
        metrics["eval_return"] = evaluate(view, model, cfg, env_params, nets.actor, k_eval)
    new_state = OffPolicyState(nets=nets, buffer=buffer, carry=carry, running_return=running,
                               last_return=last_return, step=state.step + 1, sub_buffers=subs_buf)
    return new_state, metrics


def make_train(env, config: OffPolicyConfig, params=None) -> Trainer:
    env_params = env.default_params if params is None else params
    view = LearnerView(env)
    model = build_model(view, config)
    actor_tx = optimiser(config.actor_lr, config.max_grad_norm)
    critic_tx = optimiser(config.critic_lr, config.max_grad_norm)
    statics = (view, model, config, env_params, actor_tx, critic_tx)
    return Trainer(init=functools.partial(init, *statics), update=functools.partial(update, *statics),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update, seed_batch=1,
                   xla=XlaOptions(quick_backend=True))
