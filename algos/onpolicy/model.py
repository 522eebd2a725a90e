"""The on-policy learners' networks and what they see: actor and critic inputs from the learner's records
(``jaxmarl_core.learner_view.LearnerObs``), all agents' networks applied at once, action log-probabilities, and the
actors as a rollout policy.

Agents' networks are stacked on a leading parameter axis and applied with ``vmap`` over the agent axis of the
inputs, or (shared parameters) one network takes all agents as a batch axis. Arrays are laid out [L, B, N, ...]:
L steps of a sequence (1 for feed-forward networks), B environments or samples, N agents.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmarl_core import distributions
from jaxmarl_core.learner_view import LearnerObs, LearnerView, padded_action_mask
from jaxmarl_core.networks import Actor, Critic, append_agent_ids, initial_hidden


@dataclasses.dataclass(frozen=True)
class Model:
    """Static structure of the learner's networks (no parameters).

    shared_actor: one actor for all agents (else stacked per agent); separate_critics: one critic per agent (IPPO
    without sharing); centralised: the critic values the global state, one head per agent (or one under a team
    reward) broadcast to [.., N], or (agent_state) each agent's copy of the state with its one-hot id appended, one
    head; action_mask: [N][A] which padded dimensions of Box actions are real (continuous).
    """

    actor: Actor
    critic: Critic
    num_agents: int
    discrete: bool
    num_actions: int
    shared_actor: bool
    separate_critics: bool
    centralised: bool
    agent_state: bool
    agent_id: bool
    recurrent: bool
    hidden_sizes: tuple[int, ...]
    action_mask: tuple[tuple[bool, ...], ...]

    @property
    def per_agent_critic_inputs(self) -> bool:
        """Whether the critic's inputs and hidden states have an agent axis [..., N, ...]."""
        return self.agent_state or not self.centralised


def build_model(view: LearnerView, cfg) -> Model:
    """The networks of ``cfg`` (an ``OnPolicyConfig``) for the environment behind ``view``."""
    n, discrete = view.num_agents, view.discrete
    # HARL's EP critic: a head per agent (one under a team reward); per-agent inputs: a single head
    critic_outputs = n if cfg.centralised_critic and not cfg.agent_state and not cfg.team_reward else 1
    head = (cfg.hidden_size,) * cfg.head_layers
    return Model(actor=Actor(view.num_actions, not discrete, cfg.hidden_sizes, cfg.recurrent, cfg.feature_norm,
                             head_sizes=head, layer_norm=cfg.layer_norm),
                 critic=Critic(critic_outputs, cfg.hidden_sizes, cfg.recurrent, cfg.feature_norm, head_sizes=head,
                               layer_norm=cfg.layer_norm),
                 num_agents=n, discrete=discrete, num_actions=view.num_actions, shared_actor=cfg.share_params,
                 separate_critics=not cfg.centralised_critic and not cfg.share_params,
                 centralised=cfg.centralised_critic, agent_state=cfg.agent_state, agent_id=cfg.agent_id,
                 recurrent=cfg.recurrent,
                 hidden_sizes=cfg.hidden_sizes,
                 action_mask=tuple(map(tuple, padded_action_mask(view.env.action_spaces).tolist())))


def leading(rec: LearnerObs, count: int = 1) -> LearnerObs:
    """Add ``count`` leading axes of size 1 to every leaf of a record."""
    return jax.tree.map(lambda x: x.reshape((1,) * count + x.shape), rec)


# -- inputs ----------------------------------------------------------------------------------------------------------
def with_agent_id(model: Model, obs: jax.Array) -> jax.Array:
    """[..., N, D] -> [..., N, D + N] with each agent's one-hot id appended (when ``model.agent_id``)."""
    return append_agent_ids(obs) if model.agent_id else obs


def actor_inputs(model: Model, rec: LearnerObs) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Records with leaves [..., N, ...] -> (actor inputs [..., N, D (+ N)], action mask [..., N, A] (available
    actions, or real Box dimensions), episode starts [..., N])."""
    obs = with_agent_id(model, rec.obs)
    mask = rec.avail if model.discrete else jnp.broadcast_to(jnp.asarray(model.action_mask), obs.shape[:-1]
                                                              + (model.num_actions,))
    return obs, mask, jnp.broadcast_to(rec.first[..., None], obs.shape[:-1])


def critic_inputs(model: Model, rec: LearnerObs) -> tuple[jax.Array, jax.Array]:
    """-> (critic inputs: the global state [..., S] (centralised), each agent's state with its id [..., N, S + N]
    (agent_state) or [..., N, D (+ N)], episode starts [...] or [..., N])."""
    if model.centralised and not model.agent_state:
        return rec.global_state, rec.first
    if model.agent_state:
        state = rec.global_state[..., None, :]
        x = append_agent_ids(jnp.broadcast_to(state, state.shape[:-2] + (model.num_agents, state.shape[-1])))
    else:
        x = with_agent_id(model, rec.obs)
    return x, jnp.broadcast_to(rec.first[..., None], x.shape[:-1])


# -- networks over [L, B, N, ...] ------------------------------------------------------------------------------------
def per_agent(fn, stacked: bool, out_axes):
    """fn(params, h [B, H], x [L, B, D], resets [L, B]) for all agents at once: vmapped over stacked params
    (h [B, N, H], x [L, B, N, D], resets [L, B, N]), or fn itself for shared ones."""
    return jax.vmap(fn, in_axes=(0, 1, 2, 2), out_axes=out_axes) if stacked else fn


def actor_all(model: Model, aparams, h, x, resets):
    """-> (hidden seq [L, B, N, H] or None, out [L, B, N, A], log_std [(N,) A] or None)."""
    axes = (2, 2, None if model.discrete else 0)
    return per_agent(model.actor.apply, not model.shared_actor, axes)(aparams, h, x, resets)


def critic_apply(model: Model, cparams, h, x, resets):
    """One critic -> (hidden seq or None, normalised values: [L, B, N] centralised, else [L, B, (N)]). A shared critic
    on per-agent inputs (h [B, N, H], x [L, B, N, D], resets [L, B, N]) takes the agents as part of its batch
    ([L, B * N, D]: each layer one product over all rows, which XLA runs faster on CPU than the same rows with an
    agent axis of their own)."""
    if model.per_agent_critic_inputs and not model.separate_critics:
        length, b, n = x.shape[:3]
        seq, v = model.critic.apply(cparams, None if h is None else h.reshape(b * n, *h.shape[2:]),
                                    x.reshape(length, b * n, *x.shape[3:]), resets.reshape(length, b * n))
        return None if seq is None else seq.reshape(length, b, n, *seq.shape[2:]), v[..., 0].reshape(length, b, n)
    seq, v = model.critic.apply(cparams, h, x, resets)
    if model.per_agent_critic_inputs:
        return seq, v[..., 0]
    return seq, jnp.broadcast_to(v, v.shape[:-1] + (model.num_agents,))


def critic_all(model: Model, cparams, h, x, resets):
    """-> (hidden seq or None, normalised values [L, B, N])."""

    def apply(p, h, x, resets):
        return critic_apply(model, p, h, x, resets)

    return per_agent(apply, model.separate_critics, (2, 2))(cparams, h, x, resets)


def dist_stats(model: Model, out, log_std, action, mask):
    """Log-probability and entropy of ``action`` under the policy output, arrays [...]."""
    if model.discrete:
        dist = distributions.masked_categorical(out, mask)
        return dist.log_prob(action), dist.entropy()
    log_std = jnp.broadcast_to(log_std, out.shape)
    return (distributions.gaussian_log_prob(out, log_std, action, mask),
            distributions.gaussian_entropy(log_std, mask))


def init_params(model: Model, net, key, x, stacked: bool):
    """Parameters for inputs like x [1, 1, D]: one network (from the first of N keys) or N stacked ones."""
    h = initial_hidden(model.hidden_sizes, (1,)) if model.recurrent else None
    keys = jax.random.split(key, model.num_agents)

    def one(k):
        return net.init(k, h, x, jnp.ones((1, 1), bool))

    return jax.vmap(one)(keys) if stacked else one(keys[0])


# -- acting ----------------------------------------------------------------------------------------------------------
def make_policy(model: Model, aparams, greedy: bool = False):
    """The actors as a rollout policy (key, records [B, N, ...], hidden [B, N, H]) -> (actions, None, hidden):
    sampling, or (``greedy``) each one's most likely action."""

    def policy(key, rec, h):
        obs, mask, first = actor_inputs(model, leading(rec))
        seq, out, log_std = actor_all(model, aparams, h, obs, first)
        out, mask = out[0], mask[0]
        if model.discrete:
            dist = distributions.masked_categorical(out, mask)
            action = dist.mode() if greedy else dist.sample(seed=key)
        elif greedy:
            action = jnp.where(mask, out, 0.0)
        else:
            action = distributions.sample_gaussian(key, out, jnp.broadcast_to(log_std, out.shape), mask)
        return action, None, None if seq is None else seq[0]

    return policy
