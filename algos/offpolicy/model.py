"""The off-policy learners' networks and actions: deterministic actors (one per agent, stacked), critics (one per
agent, or one under a team reward; two of each with ``twin``) and how an actor's output becomes an action.

Arrays are laid out [B, N, ...]: B samples (or environments), N agents; A is the padded action width.

    actor:   raw_i = mu_i(o_i)                                   [B, A]
    gumbel:  a_i = GumbelSoftmax(raw_i) within each soft one-hot block of agent i's action (MADDPG); a Discrete
             agent's one block masked to its available actions, straight-through (the environment takes the argmax)
    tanh:    a_i = low_i + (tanh(raw_i) + 1) / 2 * (high_i - low_i)   (HARL's DeterministicPolicy), exploration
             a_i + N(0, (expl_noise * half-range)^2) clipped to the Box
    critic:  Q_c(x_c) with x_c = [o_1 .. o_N, a_1 .. a_N] ("joint", the same for every c) or [o_c, a_c] ("local")
             -> q [C, K, B]: C critics (N, or 1 under a team reward), K = 2 with ``twin`` (else 1)
    mixed:   ``critic_kinds`` (a kind per agent group): every x_c is N (D + A) wide, a local critic's [o_c, a_c, 0 .. 0]
             with its first layer's kernel zero beyond row D + A (so it computes and learns the local critic's
             function: the padded rows meet zero inputs and get zero gradients)
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from algos.offpolicy.config import OffPolicyConfig, agent_critic_kinds
from jaxmarl_core.capabilities import SimplexActions, has
from jaxmarl_core.distributions import block_one_hot, block_softmax, gumbel_softmax
from jaxmarl_core.learner_view import LearnerView, padded_action_mask
from jaxmarl_core.networks import PlainMLP
from jaxmarl_core.spaces import Discrete


def action_blocks(view: LearnerView) -> np.ndarray:
    """int [N, A]: each action entry's soft one-hot block (from ``SimplexActions``; a Discrete agent's actions, or a
    Box without that capability, are block 0), -1 for padding."""
    spaces = view.env.action_spaces
    sizes = view.env.action_simplices if has(view.env, SimplexActions) else tuple(
        (s.n,) if isinstance(s, Discrete) else s.shape for s in spaces)
    blocks = -np.ones((len(spaces), view.num_actions), np.int32)
    for i, agent in enumerate(sizes):
        blocks[i, :sum(agent)] = np.repeat(np.arange(len(agent)), agent)
    return blocks


@dataclasses.dataclass(frozen=True)
class Model:
    """Static structure of the networks (no parameters). ``blocks`` [N][A], ``low``, ``high`` [N][A] (Box bounds;
    padding 0), ``dim_mask`` [N][A] (real action entries), ``local_critics`` [C] (mixed kinds: which critics are
    local; empty when all are ``local_critic``'s kind), ``draws`` [N] (an ensemble drawing one sub-policy index per
    agent group: each agent's group; empty: one per agent)."""

    actor: PlainMLP
    critic: PlainMLP
    num_agents: int
    obs_dim: int
    num_actions: int
    discrete: bool
    relaxation: str
    local_critic: bool
    num_critics: int
    num_q: int
    blocks: tuple
    num_blocks: int
    low: tuple
    high: tuple
    dim_mask: tuple
    ensemble: int = 1
    local_critics: tuple = ()
    draws: tuple = ()  # ensemble_draw=group: each agent's group, whose one draw it plays; empty: a draw per agent

    # -- parameters ---------------------------------------------------------------------------------------------
    def init_actors(self, key) -> dict:
        """N actors, leaves stacked [N, ...] ([K, N, ...] for an ensemble of K sub-policies per agent)."""
        x = jnp.zeros((1, self.obs_dim))
        if self.ensemble > 1:
            keys = jax.random.split(key, self.ensemble * self.num_agents).reshape(self.ensemble, self.num_agents, -1)
            return jax.vmap(jax.vmap(lambda k: self.actor.init(k, x)))(keys)
        return jax.vmap(lambda k: self.actor.init(k, x))(jax.random.split(key, self.num_agents))

    def init_critics(self, key) -> dict:
        """C x K critics, leaves stacked [C, K, ...]."""
        width = self.obs_dim + self.num_actions
        keys = jax.random.split(key, self.num_critics * self.num_q).reshape(self.num_critics, self.num_q, -1)
        if not self.local_critics:
            x = jnp.zeros((1, width if self.local_critic else self.num_agents * width))
            return jax.vmap(jax.vmap(lambda k: self.critic.init(k, x)))(keys)
        joint = self.num_agents * width

        def one(c):  # critic c's K networks at its kind's width, the first kernel zero-padded to the joint width
            x = jnp.zeros((1, width if self.local_critics[c] else joint))
            params = jax.vmap(lambda k: self.critic.init(k, x))(keys[c])
            layer = params["params"]["Dense_0"]
            kernel = layer["kernel"]  # [K, width or joint, H]
            pad = jnp.zeros(kernel.shape[:1] + (joint - kernel.shape[1],) + kernel.shape[2:], kernel.dtype)
            return {**params, "params": {**params["params"], "Dense_0": {
                **layer, "kernel": jnp.concatenate([kernel, pad], axis=1)}}}

        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *[one(c) for c in range(self.num_critics)])

    # -- actors ---------------------------------------------------------------------------------------------------
    def raw(self, aparams, obs: jax.Array) -> jax.Array:
        """All actors: obs [B, N, D] -> raw outputs [B, N, A]."""
        return jax.vmap(self.actor.apply, in_axes=(0, 1), out_axes=1)(aparams, obs)

    def init_approximations(self, key) -> dict:
        """Agent i's approximation of agent j's policy for every (i, j), leaves stacked [N, N, ...]."""
        x = jnp.zeros((1, self.obs_dim))
        n = self.num_agents
        keys = jax.random.split(key, n * n).reshape(n, n, -1)
        return jax.vmap(jax.vmap(lambda k: self.actor.init(k, x)))(keys)

    def approx_raw(self, approx, obs: jax.Array) -> jax.Array:
        """Every agent's fits of every agent's policy: obs [B, N, D] -> logits [N (who fits), B, N (whose), A]."""
        return jax.vmap(self.raw)(approx, jnp.broadcast_to(obs, (self.num_agents,) + obs.shape))

    def raw_of(self, aparams, obs: jax.Array, policy: jax.Array) -> jax.Array:
        """The playing sub-policies' raw outputs [B, N, A] (``policy`` int [B, N]: each agent's sub-policy; ignored
        without an ensemble)."""
        if self.ensemble == 1:
            return self.raw(aparams, obs)
        every = jax.vmap(self.raw, in_axes=(0, None))(aparams, obs)  # [K, B, N, A]
        return jnp.take_along_axis(every, policy[None, ..., None], axis=0)[0]

    def available_blocks(self, agent, avail: jax.Array | None) -> jax.Array:
        """Agent ``agent``'s action blocks (``slice(None)``: all agents'), -1 where ``avail`` is False."""
        blocks = jnp.asarray(self.blocks)[agent]
        return blocks if avail is None else jnp.where(avail, blocks, -1)

    def action(self, raw: jax.Array, agent, avail: jax.Array | None, key: jax.Array | None) -> jax.Array:
        """Raw outputs [B, A] of agent ``agent`` (an int or a traced index; ``slice(None)`` with raw [B, N, A] for
        all agents) -> the action the critic sees: a relaxed sample (gumbel; key None: its mode, the softmax or,
        for Discrete agents, the one-hot argmax) or the scaled tanh."""
        if self.relaxation == "gumbel":
            blocks = self.available_blocks(agent, avail)
            if key is None:
                fn = block_one_hot if self.discrete else block_softmax
                return fn(raw, blocks, self.num_blocks)
            return gumbel_softmax(key, raw, blocks, self.num_blocks, hard=self.discrete)
        low, high = jnp.asarray(self.low)[agent], jnp.asarray(self.high)[agent]
        return low + (raw + 1.0) * 0.5 * (high - low)

    def explore(self, action: jax.Array, key: jax.Array, scale: float, clip: float | None = None) -> jax.Array:
        """Box actions [B, N, A] plus Gaussian noise of ``scale`` half-ranges (clipped to ``clip`` half-ranges),
        clipped to the Box (gumbel actions are returned unchanged)."""
        if self.relaxation == "gumbel" or scale == 0.0:
            return action
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        half = (high - low) / 2
        noise = jax.random.normal(key, action.shape) * scale * half
        if clip is not None:
            noise = jnp.clip(noise, -clip * half, clip * half)
        return jnp.clip(action + noise, low, high)

    def env_action(self, action: jax.Array) -> jax.Array:
        """What the environment takes: the argmax [B, N] of Discrete agents' one-hots, else the action itself."""
        return jnp.argmax(action, axis=-1).astype(jnp.int32) if self.discrete else action

    # -- critics --------------------------------------------------------------------------------------------------
    def critic_inputs(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """obs [B, N, D], actions [B, N, A] -> each critic's input [C, B, X] (mixed kinds: a local critic's
        [o_c, a_c] zero-padded to the joint width X = N (D + A))."""
        own = jnp.moveaxis(jnp.concatenate([obs, action], axis=-1), 1, 0)  # [N, B, D + A]
        if self.local_critic:
            return own
        b = obs.shape[0]
        joint = jnp.concatenate([obs.reshape(b, -1), action.reshape(b, -1)], axis=-1)
        if not self.local_critics:
            return jnp.broadcast_to(joint, (self.num_critics,) + joint.shape)
        padded = jnp.pad(own, ((0, 0), (0, 0), (0, joint.shape[-1] - own.shape[-1])))
        return jnp.where(jnp.asarray(self.local_critics)[:, None, None], padded, joint[None])

    def q_one(self, cparams_c, x: jax.Array) -> jax.Array:
        """One critic's K networks (leaves [K, ...]) on x [B, X] -> [K, B]."""
        return jax.vmap(self.critic.apply, in_axes=(0, None))(cparams_c, x)[..., 0]

    def q_values(self, cparams, obs: jax.Array, action: jax.Array) -> jax.Array:
        """All critics -> q [C, K, B]."""
        return jax.vmap(self.q_one)(cparams, self.critic_inputs(obs, action))


def build_model(view: LearnerView, cfg: OffPolicyConfig) -> Model:
    n = view.num_agents
    blocks = action_blocks(view)
    if view.discrete:
        low = high = np.zeros((n, view.num_actions), np.float32)
    else:
        low, high = view.action_bounds()
    return Model(actor=PlainMLP(view.num_actions, cfg.hidden_sizes, tanh=cfg.relaxation == "tanh"),
                 critic=PlainMLP(1, cfg.hidden_sizes), num_agents=n, obs_dim=view.obs_dim,
                 num_actions=view.num_actions, discrete=view.discrete, relaxation=cfg.relaxation,
                 local_critic=cfg.critic == "local" and not cfg.critic_kinds, num_critics=1 if cfg.team_reward else n,
                 num_q=2 if cfg.twin else 1, blocks=tuple(map(tuple, blocks.tolist())),
                 num_blocks=int(blocks.max()) + 1, low=tuple(map(tuple, low.tolist())),
                 high=tuple(map(tuple, high.tolist())),
                 dim_mask=tuple(map(tuple, padded_action_mask(view.env.action_spaces).tolist())),
                 ensemble=cfg.ensemble, draws=tuple(np.repeat(np.arange(len(view.env.groups)), [
                     g.size for g in view.env.groups]).tolist()) if cfg.ensemble_draw == "group" else (),
                 local_critics=tuple(kind == "local" for kind in agent_critic_kinds(
                     cfg, view.env)) if cfg.critic_kinds else ())
