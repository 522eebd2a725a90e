"""GA-AC (Liu et al., 2020, "Multi-Agent Game Abstraction via Graph Attention Neural Network", section 4.3): MAAC's
attention actor-critic (Iqbal & Sha, 2019) whose critic first abstracts the game with G2ANet's hard attention.

Critic of agent i (one set of parameters for all agents, so relabelling agents permutes its outputs):

    s_i = relu(W_s [o_i, group_i]),  e_j = relu(W_e [o_j, group_j, onehot(a_j)])    (observation; observation-action)
    W_h^{ij} = hard attention of i over j != i: a bi-GRU over the pairs (s_i, e_j), straight-through Gumbel 0/1
    x_i = sum_{j kept} W_h^{ij} softmax_j(q(s_i) . k(e_j) / sqrt(d)) v(e_j)        (soft attention over the kept)
    Q_i(o, a_{-i}, .) = W_Q relu(W_f [s_i, x_i])  in R^A                           (every own action at once)

``critic``: ``g2a`` (GA-AC), ``soft`` (no hard attention: MAAC's critic) or ``none`` (x_i = 0: no communication).

One update:

1. act: ``rollout_len`` steps of ``num_envs`` environments, a_i ~ pi_i(. | o_i) (per-agent actors);
2. store the joint transitions (o, a, r, terminated, o') in a replay of ``buffer_size``;
3. once it holds ``learning_starts``, ``num_sgd`` times on a batch of ``batch_size``:
   critic: y_i = r_i + gamma (1 - terminated) (Q'_i(o', a')[a'_i] - alpha log pi'_i(a'_i | o'_i)) with a' ~ pi'
   (target actors and critic), loss mean_i (Q_i(o, a)[a_i] - y_i)^2;
   actors: a ~ pi(o) (current actors), b_i = sum_c pi_i(c | o_i) Q_i(o, a_{-i}, c), loss
   mean_i log pi_i(a_i | o_i) (alpha log pi_i(a_i | o_i) - (Q_i[a_i] - b_i)) with the bracket held constant
   (MAAC's counterfactual baseline and entropy term, alpha = 1 / reward_scale);
   then Polyak steps of both targets (``tau``);
4. log: the reward per step, per agent, the losses, and the hard attention's kept share of edges.

Differences from MAAC's code: its target subtracts alpha log pi after the discount (here inside it, the soft Bellman
target), its per-agent encoders and heads are one shared network here with a group one-hot in the input, and the
attention logits' L2 penalty is left out.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from algos.graph.g2anet_model import HardAttention
from algos.graph.learner import reset_envs, scalar_info
from algos.mean_field.config import check_env as check_spaces
from jaxmarl_core import optim
from jaxmarl_core.config import BatchedRollouts, Config, require_nonnegative, require_positive, require_positive_int
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.networks import MaskedMultiHeadAttention, PlainMLP
from jaxmarl_core.replay import ReplayBuffer
from jaxmarl_core.targets import polyak_update
from jaxmarl_core.training import Trainer, XlaOptions

CRITICS = ("g2a", "soft", "none")


def complete_graph(n: int) -> np.ndarray:
    """Every agent's neighbourhood of all agents, itself first, then the others cyclically after it: row i is
    ``i, i + 1, ..., i - 1 (mod N)``, int [N, N]. The bi-GRU reads the others in this order, so relabelling the agents
    by a cyclic shift permutes the critic's outputs exactly (the soft and ``none`` critics: any relabelling)."""
    return (np.arange(n)[:, None] + np.arange(n)[None, :]) % n


class GAACCritic(nn.Module):
    """(obs [..., N, D] (group one-hot appended), actions one-hot [..., N, A], key or None) -> (q [..., N, A],
    keep [..., N, N] (slot k of agent i is agent ``complete_graph(N)[i, k]``; slot 0, itself, always 0))."""

    num_actions: int
    hidden_size: int = 128
    critic: str = "g2a"
    num_heads: int = 4
    head_dim: int = 32
    gru_size: int = 32
    temperature: float = 1.0

    @nn.compact
    def __call__(self, obs, actions, key=None):
        n = obs.shape[-2]
        s = nn.relu(nn.Dense(self.hidden_size, name="state")(obs))
        e = nn.relu(nn.Dense(self.hidden_size, name="state_action")(jnp.concatenate([obs, actions], axis=-1)))
        idx = jnp.broadcast_to(complete_graph(n), obs.shape[:-2] + (n, n))
        others = jnp.broadcast_to(np.arange(n) > 0, idx.shape)
        if self.critic == "g2a":
            keep, _ = HardAttention(self.gru_size, self.temperature)(e, idx, jnp.ones_like(others), key, own=s)
            x, _ = MaskedMultiHeadAttention(self.num_heads, self.head_dim, self.hidden_size, name="soft")(
                e, idx, others & (keep > 0.5), keep, query=s)
        elif self.critic == "soft":
            keep = others.astype(s.dtype)
            x, _ = MaskedMultiHeadAttention(self.num_heads, self.head_dim, self.hidden_size, name="soft")(
                e, idx, others, query=s)
        else:
            keep, x = jnp.zeros(idx.shape, s.dtype), jnp.zeros_like(s)
        f = nn.relu(nn.Dense(self.hidden_size, name="features")(jnp.concatenate([s, x], axis=-1)))
        return nn.Dense(self.num_actions, name="q")(f), keep


@dataclasses.dataclass(frozen=True)
class GAACConfig(BatchedRollouts, Config):
    """MAAC's released settings (``shariqiqbal2810/MAAC``, ``main.py``) where the paper gives none: 12 rollout threads,
    4 gradient steps per 100 environment steps (here ``num_envs`` x ``rollout_len`` = 96), batches of 1024, Adam
    1e-3 for actors and critic, tau 0.001, gamma 0.99, reward scale 100 (alpha = 0.01), 128 hidden units, 4 attention
    heads, gradient norms clipped at 0.5 (actors) and 10 per agent (critic). ``buffer_size`` is smaller than MAAC's
    1e6 (memory). The hard attention's GRU size and temperature are this implementation's choices."""

    total_steps: int = 1_000_000
    num_envs: int = 12
    rollout_len: int = 8
    hidden_size: int = 128
    critic: str = "g2a"
    num_heads: int = 4
    head_dim: int = 32
    gru_size: int = 32
    temperature: float = 1.0
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 1e-3
    reward_scale: float = 100.0
    batch_size: int = 1024
    buffer_size: int = 100_000
    learning_starts: int = 1024
    num_sgd: int = 4
    actor_max_grad_norm: float = 0.5
    critic_max_grad_norm: float = 10.0  # per agent, as MAAC: the clip is this times the number of agents

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("hidden_size", "num_heads", "head_dim", "gru_size", "batch_size", "buffer_size",
                     "learning_starts", "num_sgd"):
            require_positive_int(self, name)
        for name in ("actor_lr", "critic_lr", "tau", "reward_scale", "temperature"):
            require_positive(self, name)
        for name in ("actor_max_grad_norm", "critic_max_grad_norm"):
            require_nonnegative(self, name)
        if self.critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}, got {self.critic!r}")
        if not 0.0 <= self.gamma < 1.0 or self.tau > 1.0:
            raise ValueError("gamma must lie in [0, 1) and tau in (0, 1]")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must be at most buffer_size ({self.buffer_size})")
        reason = check_env(env)
        if reason:
            raise ValueError(f"ga_ac {reason}")


def check_env(env, variant: str = "ga_ac") -> str | None:
    """Discrete actions and Box observations; at least two agents."""
    return check_spaces(env, variant="il") or (None if env.num_agents > 1 else "needs at least two agents")


def default_config(env, variant: str = "ga_ac") -> GAACConfig:
    return GAACConfig()


@struct.dataclass
class Transition:
    """A joint transition, leaves [..., N, ...]: obs [N, D], avail [N, A], action [N], reward [N], terminated [],
    next_obs [N, D], next_avail [N, A]."""

    obs: jax.Array
    avail: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: jax.Array
    next_avail: jax.Array


@struct.dataclass
class GAACState:
    actor: Any  # stacked per agent: leaves [N, ...]
    critic: Any
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    buffer: ReplayBuffer
    obs: LearnerObs  # leaves [B, ...]
    env_state: Any


@dataclasses.dataclass(frozen=True)
class Parts:
    """The static pieces of a run: the view, the networks, the optimisers and the group one-hot [N, G]."""

    view: LearnerView
    actor: PlainMLP
    critic: GAACCritic
    actor_tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation
    groups: np.ndarray
    cfg: GAACConfig
    env_params: Any


def policy_logits(parts: Parts, actor_params, obs, avail):
    """Per-agent actors: (stacked params, obs [..., N, D], avail [..., N, A]) -> masked log-probabilities
    [..., N, A]."""
    logits = jax.vmap(parts.actor.apply, in_axes=(0, -2), out_axes=-2)(actor_params, obs)
    return jax.nn.log_softmax(jnp.where(avail, logits, jnp.finfo(logits.dtype).min), axis=-1)


def critic_q(parts: Parts, critic_params, obs, action, key):
    """Q of every own action [..., N, A] and the kept edges [..., N, N], for joint actions int [..., N]."""
    with_groups = jnp.concatenate([obs, jnp.broadcast_to(parts.groups, obs.shape[:-1] + parts.groups.shape[-1:])],
                                  axis=-1)
    onehot = jax.nn.one_hot(action, parts.view.num_actions, dtype=obs.dtype)
    return parts.critic.apply(critic_params, with_groups, onehot, key)


def critic_loss(parts: Parts, critic_params, state: GAACState, batch: Transition, key):
    """Step 3's critic loss -> (loss, kept share of the edges)."""
    cfg = parts.cfg
    k_act, k_next, k_now = jax.random.split(key, 3)
    next_logp = policy_logits(parts, state.target_actor, batch.next_obs, batch.next_avail)
    next_action = jax.random.categorical(k_act, next_logp)
    q_next, _ = critic_q(parts, state.target_critic, batch.next_obs, next_action, k_next)
    soft_next = (jnp.take_along_axis(q_next, next_action[..., None], -1)[..., 0]
                 - jnp.take_along_axis(next_logp, next_action[..., None], -1)[..., 0] / cfg.reward_scale)
    y = batch.reward + cfg.gamma * jnp.where(batch.terminated[..., None], 0.0, soft_next)
    q, keep = critic_q(parts, critic_params, batch.obs, batch.action, k_now)
    taken = jnp.take_along_axis(q, batch.action[..., None], -1)[..., 0]
    n = keep.shape[-1]
    return jnp.mean(jnp.square(taken - jax.lax.stop_gradient(y))), jnp.sum(keep) / (keep[..., 0].size * (n - 1))


def actor_loss(parts: Parts, actor_params, critic_params, batch: Transition, key):
    """Step 3's actor loss -> (loss, entropy)."""
    k_act, k_q = jax.random.split(key)
    logp = policy_logits(parts, actor_params, batch.obs, batch.avail)
    action = jax.random.categorical(k_act, jax.lax.stop_gradient(logp))
    q, _ = critic_q(parts, critic_params, batch.obs, action, k_q)
    probs = jnp.exp(logp)
    baseline = jnp.sum(jax.lax.stop_gradient(probs) * q, axis=-1)
    taken_q = jnp.take_along_axis(q, action[..., None], -1)[..., 0]
    taken_logp = jnp.take_along_axis(logp, action[..., None], -1)[..., 0]
    weight = jax.lax.stop_gradient(taken_logp / parts.cfg.reward_scale - (taken_q - baseline))
    entropy = -jnp.sum(jnp.where(batch.avail, probs * logp, 0.0), axis=-1)
    return jnp.mean(taken_logp * weight), jnp.mean(entropy)


def collect(parts: Parts, state: GAACState, key):
    """Steps 1-2's rollout -> ((obs, env_state) after it, (transitions [T, B, ...], scalar info [T, B]))."""
    cfg = parts.cfg
    step_env = jax.vmap(parts.view.step, in_axes=(0, 0, 0, None))

    def step(carry, k):
        obs, env_state = carry
        k_act, k_env = jax.random.split(k)
        action = jax.random.categorical(k_act, policy_logits(parts, state.actor, obs.obs, obs.avail))
        ts = step_env(jax.random.split(k_env, cfg.num_envs), env_state, action, parts.env_params)
        final = ts.info["final_obs"]
        sample = Transition(obs=obs.obs, avail=obs.avail, action=action, reward=ts.reward,
                            terminated=ts.terminated, next_obs=final.obs, next_avail=final.avail)
        return (ts.obs, ts.state), (sample, scalar_info(ts.info))

    return jax.lax.scan(step, (state.obs, state.env_state), jax.random.split(key, cfg.rollout_len))


def init(parts: Parts, key) -> GAACState:
    """Fresh actors and critic (targets equal to them), an empty replay and ``num_envs`` fresh episodes."""
    cfg, view = parts.cfg, parts.view
    k_env, k_actor, k_critic = jax.random.split(key, 3)
    obs, env_state = reset_envs(view, cfg.num_envs, parts.env_params, k_env)
    first = jax.tree.map(lambda x: x[0], obs)
    actor = jax.vmap(parts.actor.init, in_axes=(0, 0))(jax.random.split(k_actor, view.num_agents), first.obs)
    action = jnp.zeros(first.obs.shape[:1], jnp.int32)
    with_groups = jnp.concatenate([first.obs, jnp.asarray(parts.groups, first.obs.dtype)], axis=-1)
    critic = parts.critic.init(k_critic, with_groups, jax.nn.one_hot(action, view.num_actions), k_critic)
    example = Transition(obs=first.obs, avail=first.avail, action=action,
                         reward=jnp.zeros(first.obs.shape[:1], jnp.float32), terminated=jnp.zeros((), bool),
                         next_obs=first.obs, next_avail=first.avail)
    return GAACState(actor=actor, critic=critic, target_actor=actor, target_critic=critic,
                     actor_opt=parts.actor_tx.init(actor), critic_opt=parts.critic_tx.init(critic),
                     buffer=ReplayBuffer.create(example, cfg.buffer_size), obs=obs, env_state=env_state)


def update(parts: Parts, state: GAACState, key):
    """One update (the module's steps 1-4) -> (new state, metrics)."""
    cfg = parts.cfg
    k_roll, k_sgd = jax.random.split(key)
    (obs, env_state), (traj, info) = collect(parts, state, k_roll)
    buffer = state.buffer.add(jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), traj))
    learn = buffer.can_sample(cfg.learning_starts)
    state = state.replace(buffer=buffer, obs=obs, env_state=env_state)

    def sgd_step(s: GAACState, k):
        k_batch, k_critic, k_actor = jax.random.split(k, 3)
        batch = buffer.sample(k_batch, cfg.batch_size)
        (q_loss, kept), grads = jax.value_and_grad(functools.partial(critic_loss, parts), has_aux=True)(
            s.critic, s, batch, k_critic)
        updates, critic_opt = parts.critic_tx.update(grads, s.critic_opt, s.critic)
        critic = optax.apply_updates(s.critic, updates)
        (pi_loss, entropy), grads = jax.value_and_grad(functools.partial(actor_loss, parts), has_aux=True)(
            s.actor, critic, batch, k_actor)
        updates, actor_opt = parts.actor_tx.update(grads, s.actor_opt, s.actor)
        actor = optax.apply_updates(s.actor, updates)
        new = s.replace(actor=actor, critic=critic, actor_opt=actor_opt, critic_opt=critic_opt,
                        target_actor=polyak_update(actor, s.target_actor, cfg.tau),
                        target_critic=polyak_update(critic, s.target_critic, cfg.tau))
        return jax.tree.map(lambda a, b: jnp.where(learn, a, b), new, s), (q_loss, pi_loss, entropy, kept)

    state, (q_loss, pi_loss, entropy, kept) = jax.lax.scan(sgd_step, state, jax.random.split(k_sgd, cfg.num_sgd))
    metrics = {"reward": jnp.mean(traj.reward), "reward_per_step": jnp.mean(traj.reward, axis=(0, 1)),
               "critic_loss": jnp.mean(q_loss), "actor_loss": jnp.mean(pi_loss), "entropy": jnp.mean(entropy),
               "kept_edges": jnp.mean(kept), "learning": learn.astype(jnp.int32),
               **{name: jnp.mean(v) for name, v in info.items()}}
    return state, metrics


def build(env, cfg: GAACConfig, params=None) -> Parts:
    view = LearnerView(env)
    sizes = [g.size for g in env.groups]
    groups = np.repeat(np.eye(len(sizes), dtype=np.float32), sizes, axis=0)
    critic = GAACCritic(num_actions=view.num_actions, hidden_size=cfg.hidden_size, critic=cfg.critic,
                        num_heads=cfg.num_heads, head_dim=cfg.head_dim, gru_size=cfg.gru_size,
                        temperature=cfg.temperature)

    return Parts(view=view, actor=PlainMLP(view.num_actions, (cfg.hidden_size, cfg.hidden_size)), critic=critic,
                 actor_tx=optim.clipped(optax.adam(cfg.actor_lr), cfg.actor_max_grad_norm),
                 critic_tx=optim.clipped(optax.adam(cfg.critic_lr), cfg.critic_max_grad_norm * view.num_agents),
                 groups=groups, cfg=cfg,
                 env_params=env.default_params if params is None else params)


def make_train(env, config: GAACConfig, params=None) -> Trainer:
    parts = build(env, config, params)
    return Trainer(init=functools.partial(init, parts), update=functools.partial(update, parts),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update,
                   seed_batch=1, init_per_seed=True, xla=XlaOptions(quick_backend=True))
