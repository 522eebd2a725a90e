"""On-policy multi-agent actor-critic: IPPO, MAPPO, MAA2C and the heterogeneous-agent HAPPO, HATRPO, HAA2C (Kuba
et al., 2022; Zhong et al., 2024, reference code PKU-MARL/HARL) on one code path.

One update: ``rollout_len`` steps in ``num_envs`` environments (``jaxmarl_core.rollout``), values of the observations
acted on and reached (``final_obs``/the state before the reset), GAE (``jaxmarl_core.returns.gae``) with optional
value normalisation, normalised advantages, the actors' update, then the critic's (``critic_epochs`` x
``num_minibatches`` steps of the clipped Huber value loss). A truncated step is treated as HARL's
``use_proper_time_limits`` does (``truncation="harl"``: advantage 0, its own value as target, the steps before it
bootstrapping from the value of its observation) or bootstraps from the value of ``final_obs``
(``truncation="bootstrap"``); terminations never bootstrap.

How the variants differ (fields of ``OnPolicyConfig``):
- critic: ``centralised_critic`` (MAPPO/HA*: one network on ``env.global_state`` with one value head per agent's
  reward, a single head under ``team_reward`` as HARL's EP critic) or each agent's critic on its own observation
  (IPPO); value targets enter the ValueNorm minibatch by minibatch before they are normalised, as in HARL's critic;
- actor objective ``actor_update``: "ppo" (clipped surrogate, ``ppo_epochs`` x ``num_minibatches``), "a2c" (the
  unclipped importance-weighted surrogate), "trpo" (natural gradient by conjugate gradient on Fisher-vector products
  and a backtracking line search; one step on the whole batch);
- ``sequential`` (HA*): agents move one after another in a fresh random order (``fixed_order`` keeps 0..N-1), each
  agent's surrogate weighted by M = product of new/old probability ratios of the agents moved before it (kept in
  log space under ``stop_gradient``; ``use_factor=False`` drops it). Only the moving agent's parameters and
  optimiser state are gathered from and scattered back into the agent-stacked ones.
- ``share_params``: one actor (and, for IPPO, one critic) for all agents, optionally with a one-hot agent id
  (``agent_id``); otherwise parameters and optimiser states are stacked on a leading agent axis and applied with vmap.

Observations padded to a common size are fed as they are; discrete actions are masked by ``env.avail_actions``;
continuous (Box) actions are diagonal Gaussians over each agent's true dimensions (padded dimensions are 0 and are
clipped with the rest to the Box bounds before the environment sees them). Recurrent (GRU) actors and critics
re-run over the whole rollout from the state they had at its start (minibatches split environments, not time).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from jaxmarl_core import actor_critic, distributions, trpo
from jaxmarl_core.config import Config, require_nonnegative, require_positive, require_positive_int
from jaxmarl_core.networks import Actor, Critic, initial_hidden
from jaxmarl_core.returns import gae
from jaxmarl_core.rollout import RolloutCarry, reset_carry, rollout
from jaxmarl_core.spaces import Box, Discrete
from jaxmarl_core.training import Trainer
from jaxmarl_core.value_norm import ValueNorm

VARIANTS = {  # name -> (centralised_critic, sequential, actor_update)
    "ippo": (False, False, "ppo"),
    "mappo": (True, False, "ppo"),
    "maa2c": (True, False, "a2c"),
    "happo": (True, True, "ppo"),
    "hatrpo": (True, True, "trpo"),
    "haa2c": (True, True, "a2c"),
}
ACTOR_UPDATES = ("ppo", "a2c", "trpo")
TRUNCATIONS = ("bootstrap", "harl")


@dataclasses.dataclass(frozen=True)
class OnPolicyConfig(Config):
    """HARL's defaults (``configs/algos_cfgs/happo.yaml`` and friends). One update takes num_envs * rollout_len
    environment steps; ``total_steps // (num_envs * rollout_len)`` updates are run."""

    actor_update: str = "ppo"  # "ppo" | "a2c" | "trpo"
    centralised_critic: bool = True  # V(global_state) (MAPPO, HA*) or V_i(obs_i) (IPPO)
    sequential: bool = False  # the heterogeneous-agent sequential update (HA*)
    total_steps: int = 10_000_000  # environment steps per seed
    num_envs: int = 20
    rollout_len: int = 200
    lr: float = 5e-4  # actor learning rate (Adam, eps adam_eps)
    critic_lr: float = 5e-4
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2  # PPO ratio clip and value clip
    ppo_epochs: int = 5  # actor epochs (PPO and A2C)
    critic_epochs: int = 5
    num_minibatches: int = 1  # for actor and critic
    entropy_coef: float = 0.01
    value_coef: float = 1.0
    max_grad_norm: float = 10.0  # 0: no clipping
    use_value_norm: bool = True
    clip_value_loss: bool = True
    huber_delta: float = 10.0  # 0: squared error
    recurrent: bool = False  # GRU actor and critic
    hidden_size: int = 128  # hidden_sizes = (hidden_size,) * hidden_layers
    hidden_layers: int = 2
    feature_norm: bool = True  # LayerNorm of the network inputs
    share_params: bool = False
    agent_id: bool = False  # append a one-hot agent id to the actor's (and IPPO critic's) input
    kl_threshold: float = 0.01  # HATRPO
    cg_iters: int = 10
    cg_damping: float = 0.1
    backtrack_coef: float = 0.8
    accept_ratio: float = 0.5
    ls_steps: int = 10
    fixed_order: bool = False  # sequential update in the order 0..N-1 instead of a random permutation
    use_factor: bool = True  # weight each agent's surrogate by the factor M of the agents moved before it
    team_reward: bool = False  # train every agent on the sum of all agents' rewards (HARL's MPE convention)
    lr_decay: bool = False  # HARL's use_linear_lr_decay: Adam's rates fall linearly, lr * (1 - u / num_updates)
    eval_envs: int = 0  # HARL's evaluation each update: environments acting on each actor's most likely action
    eval_steps: int = 25  # steps each evaluation environment runs; the episodes it completes give ``eval_return``
    truncation: str = "harl"  # "harl": HARL's use_proper_time_limits, a truncated step gets advantage 0 and the
    # steps before it bootstrap from the value of its observation; "bootstrap": it bootstraps from V(final_obs)

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * self.hidden_layers

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_len

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.steps_per_update

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("ppo_epochs", "critic_epochs", "num_minibatches", "hidden_size", "hidden_layers",
                     "cg_iters", "ls_steps", "eval_steps"):
            require_positive_int(self, name)
        if isinstance(self.eval_envs, bool) or not isinstance(self.eval_envs, int) or self.eval_envs < 0:
            raise ValueError(f"eval_envs must be a non-negative integer (0: no evaluation), got {self.eval_envs!r}")
        for name in ("lr", "critic_lr", "adam_eps", "kl_threshold"):
            require_positive(self, name)
        for name in ("clip_eps", "entropy_coef", "value_coef", "max_grad_norm", "huber_delta", "cg_damping",
                     "accept_ratio"):
            require_nonnegative(self, name)
        for name in ("gamma", "gae_lambda", "backtrack_coef"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if self.actor_update not in ACTOR_UPDATES:
            raise ValueError(f"actor_update must be one of {ACTOR_UPDATES}, got {self.actor_update!r}")
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {self.truncation!r}")
        if self.num_updates < 1:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least num_envs * rollout_len "
                             f"({self.steps_per_update})")
        if self.recurrent and self.num_envs % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs ({self.num_envs}) "
                             "for recurrent networks (minibatches split environments)")
        if self.steps_per_update % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs * rollout_len "
                             f"({self.steps_per_update})")
        if self.centralised_critic and _missing(env, "global_state"):
            raise ValueError(f"centralised_critic needs env.global_state, which {env.name} does not implement")
        if self.sequential and self.share_params:
            raise ValueError("share_params must be False for the sequential (heterogeneous-agent) update: every "
                             "agent has its own actor")
        if self.share_params:
            if len(set(env.observation_spaces)) != 1 or len(set(env.action_spaces)) != 1:
                raise ValueError(f"share_params needs agents with identical observation and action spaces; "
                                 f"{env.name}'s agents differ")


@struct.dataclass
class OnPolicyState:
    actor_params: Any  # stacked on a leading agent axis unless share_params
    actor_opt: Any
    critic_params: Any  # stacked for IPPO without sharing
    critic_opt: Any
    value_norm: ValueNorm  # statistics per agent's value target [N]
    carry: RolloutCarry  # learner observations [B, N, F], env states, actor hidden [B, N, H] (or None)
    critic_hidden: Any  # [B, (N,) H] or None
    running_return: jax.Array  # [B, N] rewards so far in each environment's current episode
    last_return: jax.Array  # [N] mean return of the episodes completed in the latest update that had any


def _missing(env, method: str) -> bool:
    """True where ``env.method(state, params)`` is not implemented."""
    params = env.default_params
    _, state = jax.eval_shape(env.reset, jax.random.PRNGKey(0), params)
    try:
        jax.eval_shape(getattr(env, method), state, params)
    except NotImplementedError:
        return True
    return False


def check_env(env, variant: str = "mappo") -> str | None:
    spaces = env.action_spaces
    discrete = all(isinstance(s, Discrete) for s in spaces)
    if not discrete and not all(isinstance(s, Box) and len(s.shape) == 1 for s in spaces):
        return f"needs all-Discrete or all-Box (vector) action spaces; {env.name} has {spaces}"
    if not all(isinstance(s, Box) for s in env.observation_spaces):
        return f"needs Box observation spaces; {env.name} has {env.observation_spaces}"
    if discrete and _missing(env, "avail_actions"):
        return f"discrete actions need env.avail_actions; {env.name} does not implement it"
    if VARIANTS[variant][0] and _missing(env, "global_state"):
        return f"a centralised critic needs env.global_state; {env.name} does not implement it"
    return None


def default_config(env, variant: str = "mappo") -> OnPolicyConfig:
    centralised, sequential, actor_update = VARIANTS[variant]
    homogeneous = len(set(env.observation_spaces)) == 1 and len(set(env.action_spaces)) == 1
    return OnPolicyConfig(actor_update=actor_update, centralised_critic=centralised, sequential=sequential,
                          share_params=homogeneous and not sequential and variant != "ippo",
                          ppo_epochs=1 if variant == "maa2c" else 5)


# -- the learner's view of the environment ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LearnerView:
    """The environment as the learner sees it: observations [N, F] = [obs (D) | avail (A, discrete) | global state
    (S, centralised critics) | episode-start flag (1)], so one rollout records everything training needs, and
    ``final_obs`` carries the global state reached before an automatic reset. Continuous actions are clipped to
    the Box bounds before they reach the environment."""

    env: Any
    obs_dim: int
    num_actions: int
    state_dim: int
    discrete: bool
    low: Any = None  # [N, A] Box bounds (continuous)
    high: Any = None

    @property
    def deterministic(self) -> bool:
        return self.env.deterministic

    def features(self, obs, state, params, first):
        n = obs.shape[0]
        parts = [obs.reshape(n, -1).astype(jnp.float32)]
        if self.discrete:
            parts.append(self.env.avail_actions(state, params).astype(jnp.float32))
        if self.state_dim:
            gs = self.env.global_state(state, params).reshape(-1).astype(jnp.float32)
            parts.append(jnp.broadcast_to(gs, (n, gs.shape[0])))
        parts.append(jnp.full((n, 1), first, jnp.float32))
        return jnp.concatenate(parts, axis=-1)

    def split(self, x):
        """[..., F] -> (obs [..., D], avail [..., A] bool or None, global state [..., S], first [...] bool)."""
        d, a, s = self.obs_dim, self.num_actions if self.discrete else 0, self.state_dim
        avail = x[..., d:d + a] > 0.5 if self.discrete else None
        return x[..., :d], avail, x[..., d + a:d + a + s], x[..., -1] > 0.5

    def reset(self, key, params):
        obs, state = self.env.reset(key, params)
        return self.features(obs, state, params, True), state

    def step(self, key, state, actions, params):
        if not self.discrete:
            actions = jnp.clip(actions, jnp.asarray(self.low), jnp.asarray(self.high))
        ts, final_state = self.env.step_with_final_state(key, state, actions, params)
        info = dict(ts.info)
        info["final_obs"] = self.features(ts.info["final_obs"], final_state, params, False)
        return ts.replace(obs=self.features(ts.obs, ts.state, params, ts.done), info=info)


def _view(env, centralised: bool) -> LearnerView:
    params = env.default_params
    obs, state = jax.eval_shape(env.reset, jax.random.PRNGKey(0), params)
    discrete = isinstance(env.action_spaces[0], Discrete)
    state_dim = int(np.prod(jax.eval_shape(env.global_state, state, params).shape)) if centralised else 0
    obs_dim = int(np.prod(obs.shape[1:]))
    if discrete:
        return LearnerView(env, obs_dim, env.num_actions, state_dim, True)
    a_max = max(s.shape[0] for s in env.action_spaces)
    low = np.zeros((env.num_agents, a_max), np.float32)
    high = np.zeros((env.num_agents, a_max), np.float32)
    for i, s in enumerate(env.action_spaces):
        low[i, :s.shape[0]], high[i, :s.shape[0]] = s.low, s.high
    return LearnerView(env, obs_dim, a_max, state_dim, False, tuple(map(tuple, low)), tuple(map(tuple, high)))


def linear_decay(lr: float, steps_per_update: int, num_updates: int) -> optax.Schedule:
    """HARL's linear learning-rate decay as an optax schedule of the optimiser's step count: constant within an
    update (``steps_per_update`` Adam steps), ``lr * (1 - u / num_updates)`` in update u = 0 .. num_updates - 1."""

    def schedule(count):
        return lr * (1.0 - (count // steps_per_update) / num_updates)

    return schedule


def make_train(env, config: OnPolicyConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    cfg = config
    n = env.num_agents
    view = _view(env, cfg.centralised_critic)
    discrete = view.discrete
    num_a, hidden_sizes, recurrent = view.num_actions, cfg.hidden_sizes, cfg.recurrent
    b, t_len = cfg.num_envs, cfg.rollout_len
    clip = None if cfg.actor_update != "ppo" else cfg.clip_eps
    value_clip = cfg.clip_eps if cfg.clip_value_loss else None
    actor_net = Actor(num_a, not discrete, hidden_sizes, recurrent, cfg.feature_norm)
    # a centralised critic values the state for each agent; under a team reward all agents' values are one (HARL's EP
    # critic: a single head)
    critic_outputs = n if cfg.centralised_critic and not cfg.team_reward else 1
    critic_net = Critic(critic_outputs, hidden_sizes, recurrent, cfg.feature_norm)
    separate_critics = not cfg.centralised_critic and not cfg.share_params
    agent_ids = jnp.eye(n, dtype=jnp.float32)
    if discrete:
        dim_mask = None
    else:
        dims = jnp.asarray([s.shape[0] for s in env.action_spaces])
        dim_mask = jnp.arange(num_a)[None, :] < dims[:, None]  # [N, A]

    def make_tx(lr, epochs):
        clip_tx = [optax.clip_by_global_norm(cfg.max_grad_norm)] if cfg.max_grad_norm > 0 else []
        rate = linear_decay(lr, epochs * cfg.num_minibatches, cfg.num_updates) if cfg.lr_decay else lr
        return optax.chain(*clip_tx, optax.adam(rate, eps=cfg.adam_eps))

    actor_tx, critic_tx = make_tx(cfg.lr, cfg.ppo_epochs), make_tx(cfg.critic_lr, cfg.critic_epochs)

    # -- inputs ----------------------------------------------------------------------------------------------------
    def actor_inputs(x):
        """learner features [..., N, F] -> actor inputs [..., N, D (+ N)], avail/dim mask [..., N, A], first."""
        obs, avail, _, first = view.split(x)
        if cfg.agent_id:
            obs = jnp.concatenate([obs, jnp.broadcast_to(agent_ids, obs.shape[:-1] + (n,))], axis=-1)
        mask = avail if discrete else jnp.broadcast_to(dim_mask, obs.shape[:-1] + (num_a,))
        return obs, mask, first

    def critic_inputs(x):
        """learner features [..., N, F] -> critic inputs: [..., S] (centralised) or [..., N, D (+ N)]."""
        obs, _, gs, _ = view.split(x)
        if cfg.centralised_critic:
            return gs[..., 0, :]
        if cfg.agent_id:
            obs = jnp.concatenate([obs, jnp.broadcast_to(agent_ids, obs.shape[:-1] + (n,))], axis=-1)
        return obs

    # -- networks over [L, B, N, ...] ------------------------------------------------------------------------------
    def per_agent(fn, stacked: bool, out_axes):
        """fn(params, h [B, H], x [L, B, D], resets [L, B]) for all agents at once: vmapped over stacked params
        (h [B, N, H], x [L, B, N, D], resets [L, B, N]), or fn itself for shared ones."""
        return jax.vmap(fn, in_axes=(0, 1, 2, 2), out_axes=out_axes) if stacked else fn

    def actor_all(aparams, h, x, resets):
        """-> (hidden seq [L, B, N, H] or None, out [L, B, N, A], log_std [(N,) A] or None)."""
        axes = (2, 2, None if discrete else 0)
        return per_agent(actor_net.apply, not cfg.share_params, axes)(aparams, h, x, resets)

    def critic_apply(cparams, h, x, resets):
        seq, v = critic_net.apply(cparams, h, x, resets)
        if not cfg.centralised_critic:
            return seq, v[..., 0]
        return seq, jnp.broadcast_to(v, v.shape[:-1] + (n,))

    def critic_all(cparams, h, x, resets):
        """-> (hidden seq, normalised values [L, B, N])."""
        return per_agent(critic_apply, separate_critics, (2, 2))(cparams, h, x, resets)

    def dist_stats(out, log_std, action, mask):
        """log-prob and entropy of ``action`` under the policy output, arrays [...]."""
        if discrete:
            dist = distributions.masked_categorical(out, mask)
            return dist.log_prob(action), dist.entropy()
        log_std = jnp.broadcast_to(log_std, out.shape)
        return (distributions.gaussian_log_prob(out, log_std, action, mask),
                distributions.gaussian_entropy(log_std, mask))

    # -- init --------------------------------------------------------------------------------------------------------
    def init_params(net, key, x, stacked):
        """Parameters for inputs like x [1, 1, D]: one network (from the first of n keys) or n stacked ones."""
        h = initial_hidden(hidden_sizes, (1,)) if recurrent else None
        keys = jax.random.split(key, n)

        def one(k):
            return net.init(k, h, x, jnp.ones((1, 1), bool))

        return jax.vmap(one)(keys) if stacked else one(keys[0])

    def init(key):
        k_env, k_actor, k_critic = jax.random.split(key, 3)
        h_a = initial_hidden(hidden_sizes, (b, n)) if recurrent else None
        carry = reset_carry(k_env, view, params, h_a, batch_size=b)
        x_a = actor_inputs(carry.obs[None])[0][:, :1, 0]
        x_c = critic_inputs(carry.obs[None])[:, :1]
        h_c = (initial_hidden(hidden_sizes, (b,) if cfg.centralised_critic else (b, n)) if recurrent else None)
        actor_params = init_params(actor_net, k_actor, x_a, not cfg.share_params)
        critic_params = init_params(critic_net, k_critic, x_c if cfg.centralised_critic else x_c[:, :, 0],
                                    separate_critics)
        init_a = actor_tx.init if cfg.share_params else jax.vmap(actor_tx.init)
        init_c = jax.vmap(critic_tx.init) if separate_critics else critic_tx.init
        return OnPolicyState(actor_params=actor_params, actor_opt=init_a(actor_params), critic_params=critic_params,
                             critic_opt=init_c(critic_params), value_norm=ValueNorm.create((n,)),
                             carry=carry, critic_hidden=h_c,
                             running_return=jnp.zeros((b, n)), last_return=jnp.zeros((n,)))

    # -- acting ------------------------------------------------------------------------------------------------------
    def make_policy(aparams, greedy: bool = False):
        """The actors as a rollout policy: sampling, or (``greedy``) each one's most likely action."""
        def policy(key, x, h):
            obs, mask, first = actor_inputs(x[None])
            seq, out, log_std = actor_all(aparams, h, obs, first)
            out, mask = out[0], mask[0]
            if discrete:
                dist = distributions.masked_categorical(out, mask)
                action = dist.mode() if greedy else dist.sample(seed=key)
            elif greedy:
                action = jnp.where(mask, out, 0.0)
            else:
                action = distributions.sample_gaussian(key, out, jnp.broadcast_to(log_std, out.shape), mask)
            return action, None, None if seq is None else seq[0]
        return policy

    def episode_returns(running, traj):
        """Sum rewards [T, B, N] into the running returns [B, N] -> (running returns after the last step, mean
        return [N] of the episodes that ended, their count)."""
        def accumulate(running, step):
            reward, done = step
            running = running + reward
            return jnp.where(done[:, None], 0.0, running), (running, done)

        done = jnp.logical_or(traj.terminated, traj.truncated)
        running, (totals, dones) = jax.lax.scan(accumulate, running, (traj.reward, done))
        count = jnp.sum(dones)
        return running, jnp.sum(jnp.where(dones[..., None], totals, 0.0), axis=(0, 1)) / jnp.maximum(count, 1), count

    def evaluate(aparams, key):
        """HARL's evaluation: ``eval_envs`` fresh environments run ``eval_steps`` steps on the actors' most likely
        actions -> mean return [N] of the episodes they complete (NaN if none)."""
        k_reset, k_run = jax.random.split(key)
        h = initial_hidden(hidden_sizes, (cfg.eval_envs, n)) if recurrent else None
        carry = reset_carry(k_reset, view, params, h, batch_size=cfg.eval_envs)
        traj = rollout(k_run, view, params, make_policy(aparams, greedy=True), carry, cfg.eval_steps, batched=True)[1]
        _, mean, count = episode_returns(jnp.zeros((cfg.eval_envs, n)), traj)
        return jnp.where(count > 0, mean, jnp.nan)

    # -- the actor update of one agent (or of all agents with shared parameters) ------------------------------------
    def actor_forward(aparams, batch):
        """batch leaves [L, M, ...] -> (out [L, M, A], log_std [A] or None)."""
        h0 = batch["h0"][0] if recurrent else None
        return actor_net.apply(aparams, h0, batch["obs"], batch["first"])[1:]

    def log_probs_entropy(aparams, batch):
        return dist_stats(*actor_forward(aparams, batch), batch["action"], batch["mask"])

    def actor_loss(aparams, mb, _):
        logp, ent = log_probs_entropy(aparams, mb)
        policy_loss = -jnp.mean(actor_critic.surrogate_terms(logp, mb["old_logp"], mb["adv"], mb["log_factor"], clip))
        entropy = jnp.mean(ent)
        ratio = jnp.mean(jnp.exp(logp - mb["old_logp"]))
        return policy_loss - cfg.entropy_coef * entropy, {"actor_loss": policy_loss, "entropy": entropy,
                                                          "ratio": ratio}

    def policy_kl(aparams, old_aparams, batch):
        """Mean KL(old || new) over the batch; the old policy is held fixed."""
        out, log_std = actor_forward(aparams, batch)
        out_old, log_std_old = jax.lax.stop_gradient(actor_forward(old_aparams, batch))
        if discrete:
            kl = distributions.categorical_kl(out_old, out, batch["mask"])
        else:
            kl = distributions.gaussian_kl(out_old, jnp.broadcast_to(log_std_old, out.shape), out,
                                           jnp.broadcast_to(log_std, out.shape), batch["mask"])
        return jnp.mean(kl)

    def trpo_update(aparams, batch):
        """One natural-gradient step with line search on the whole batch (HARL's HATRPO actor update)."""
        theta, unravel = ravel_pytree(aparams)

        def surrogate(th):
            logp = log_probs_entropy(unravel(th), batch)[0]
            return jnp.mean(actor_critic.surrogate_terms(logp, batch["old_logp"], batch["adv"], batch["log_factor"],
                                                         None))

        def kl(th):
            return policy_kl(unravel(th), aparams, batch)

        def fvp(v):
            return trpo.fisher_vector_product(kl, theta, v, cfg.cg_damping)

        step, expected = trpo.natural_step(jax.grad(surrogate)(theta), fvp, cfg.kl_threshold, cfg.cg_iters)
        res = trpo.line_search(surrogate, kl, theta, step, expected, cfg.kl_threshold, cfg.accept_ratio,
                               cfg.backtrack_coef, cfg.ls_steps)
        new = unravel(res.theta)
        return new, {"actor_loss": -surrogate(res.theta), "entropy": jnp.mean(log_probs_entropy(new, batch)[1]),
                     "kl": res.kl, "ls_accepted": res.accepted.astype(jnp.float32), "ls_fraction": res.fraction}

    def train_actor(aparams, opt_state, batch, key):
        """One agent's (or the shared actor's) update on batch leaves [L, M, ...]."""
        if cfg.actor_update == "trpo":
            aparams, metrics = trpo_update(aparams, batch)
            return aparams, opt_state, metrics
        aparams, opt_state, _, metrics = actor_critic.minibatch_sgd(actor_loss, actor_tx, aparams, opt_state, batch,
                                                                    key, cfg.ppo_epochs, cfg.num_minibatches)
        return aparams, opt_state, metrics

    def update_actors(aparams, opt_state, batch, key):
        """batch leaves [L, M, N, ...]; -> (params, opt states, metrics averaged over agents)."""
        k_perm, k_train = jax.random.split(key)
        agent_keys = jax.random.split(k_train, n)
        if cfg.share_params:
            merged = jax.tree.map(actor_critic.merge_agents, batch)
            return train_actor(aparams, opt_state, merged, k_train)
        if not cfg.sequential:
            p, o, m = jax.vmap(train_actor, in_axes=(0, 0, 2, 0))(aparams, opt_state, batch, agent_keys)
            return p, o, jax.tree.map(jnp.mean, m)
        order = jnp.arange(n) if cfg.fixed_order else jax.random.permutation(k_perm, n)
        # gather: the agents' params, optimiser states, data and keys in the order they move (agent axis first)
        moving = jax.tree.map(lambda x: jnp.take(x, order, axis=0), (aparams, opt_state, agent_keys))
        data = jax.tree.map(lambda x: jnp.moveaxis(jnp.take(x, order, axis=2), 2, 0), batch)

        def move(log_factor, xs):
            p_i, o_i, k_i, data_i = xs
            data_i = {**data_i, "log_factor": log_factor}
            p_i, o_i, metrics = train_actor(p_i, o_i, data_i, k_i)
            if cfg.use_factor:
                new_logp = log_probs_entropy(p_i, data_i)[0]
                log_factor = actor_critic.next_log_factor(log_factor, new_logp, data_i["old_logp"])
            return log_factor, (p_i, o_i, metrics)

        zero = jnp.zeros(batch["adv"].shape[:2])
        _, (p_moved, o_moved, metrics) = jax.lax.scan(move, zero, (*moving, data))
        # scatter: back to agent order
        inverse = jnp.argsort(order)
        aparams, opt_state = jax.tree.map(lambda x: jnp.take(x, inverse, axis=0), (p_moved, o_moved))
        return aparams, opt_state, jax.tree.map(jnp.mean, metrics)

    # -- the critic update ------------------------------------------------------------------------------------------
    def critic_loss(cparams, mb, vn):
        h0 = mb["h0"][0] if recurrent else None
        _, v = critic_apply(cparams, h0, mb["x"], mb["first"])
        target = vn.normalize(mb["target"]) if cfg.use_value_norm else mb["target"]
        loss = actor_critic.value_loss(v, mb["old_v"], target, value_clip, cfg.huber_delta)
        return cfg.value_coef * loss, {"value_loss": loss}

    def fold_targets(vn, mb):
        """HARL's critic: every minibatch's returns [L, m, (N)] enter the ValueNorm before they are normalised."""
        return vn.update(mb["target"].reshape((-1,) + vn.mean.shape))

    def train_critic(cparams, opt_state, batch, vn, key):
        return actor_critic.minibatch_sgd(critic_loss, critic_tx, cparams, opt_state, batch, key, cfg.critic_epochs,
                                          cfg.num_minibatches, vn, fold_targets if cfg.use_value_norm else None)

    def update_critic(cparams, opt_state, batch, vn, key):
        """batch: x [L, M, (N,) ...], first [L, M, (N)], old_v [L, M, N] normalised values, target [L, M, N]
        returns, h0 [1, M, (N,) H]; vn: ValueNorm [N] -> (params, opt states, ValueNorm, metrics)."""
        if cfg.centralised_critic or cfg.share_params:
            return train_critic(cparams, opt_state, batch, vn, key)
        per_agent_vn = vn.replace(mean=0, mean_sq=0, debias=None)  # vmap axes: the statistics, not the weight
        p, o, vn, m = jax.vmap(train_critic, in_axes=(0, 0, 2, per_agent_vn, 0), out_axes=(0, 0, per_agent_vn, 0))(
            cparams, opt_state, batch, vn, jax.random.split(key, n))
        return p, o, vn, jax.tree.map(jnp.mean, m)

    # -- exact expected rewards of matrix games ----------------------------------------------------------------------
    exact = discrete and hasattr(env, "expected_payoffs")

    def expected_reward(aparams):
        x, _ = view.reset(jax.random.PRNGKey(0), params)
        obs, mask, first = actor_inputs(x[None, None])
        h = initial_hidden(hidden_sizes, (1, n)) if recurrent else None
        _, logits, _ = actor_all(aparams, h, obs, first)
        probs = distributions.masked_categorical(logits[0, 0], mask[0, 0]).probs
        return env.expected_payoffs(probs, params)

    # -- one update --------------------------------------------------------------------------------------------------
    def update(state: OnPolicyState, key):
        k_roll, k_actor, k_critic = jax.random.split(key, 3)
        h_a0, h_c0 = state.carry.policy_state, state.critic_hidden
        carry, traj = rollout(k_roll, view, params, make_policy(state.actor_params), state.carry, t_len,
                              batched=True)
        # traj: obs/next_obs [T, B, N, F], action [T, B, N (, A)], reward [T, B, N], terminated/truncated [T, B]
        x_c, next_x_c = critic_inputs(traj.obs), critic_inputs(traj.next_obs)
        first_a = actor_inputs(traj.obs)[2]  # [T, B, N]
        first_c = first_a[..., 0] if cfg.centralised_critic else first_a
        seq_c, v_norm = critic_all(state.critic_params, h_c0, x_c, first_c)
        # values of the observations reached: one more step from the state after each step, time merged into batch
        h_next = None if seq_c is None else seq_c.reshape(t_len * b, *seq_c.shape[2:])
        no_reset = jnp.zeros((1, t_len * b) + first_c.shape[2:], bool)
        _, next_v_norm = critic_all(state.critic_params, h_next,
                                    next_x_c.reshape(1, t_len * b, *next_x_c.shape[2:]), no_reset)
        next_v_norm = next_v_norm.reshape(v_norm.shape)
        vn = state.value_norm
        denorm = vn.denormalize if cfg.use_value_norm else (lambda v: v)
        reward = jnp.broadcast_to(traj.reward.sum(-1, keepdims=True), traj.reward.shape) if cfg.team_reward \
            else traj.reward
        adv, targets = gae(reward, denorm(v_norm), denorm(next_v_norm), traj.terminated, traj.truncated,
                           cfg.gamma, cfg.gae_lambda, drop_truncated=cfg.truncation == "harl")
        adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-5)

        # actors
        obs_a, mask_a, _ = actor_inputs(traj.obs)

        def seq(x):
            return actor_critic.sequence_layout(x, recurrent)

        actor_batch = {"obs": seq(obs_a), "first": seq(first_a), "action": seq(traj.action), "mask": seq(mask_a),
                       "adv": seq(adv)}
        if recurrent:
            actor_batch["h0"] = h_a0[None]
        _, out, log_std = actor_all(state.actor_params, actor_batch["h0"][0] if recurrent else None,
                                    actor_batch["obs"], actor_batch["first"])
        actor_batch["old_logp"] = jax.lax.stop_gradient(
            dist_stats(out, log_std, actor_batch["action"], actor_batch["mask"])[0])
        actor_batch["log_factor"] = jnp.zeros_like(actor_batch["adv"])
        actor_params, actor_opt, actor_metrics = update_actors(state.actor_params, state.actor_opt, actor_batch,
                                                               k_actor)

        # critic
        critic_batch = {"x": seq(x_c), "first": seq(first_c), "old_v": seq(v_norm), "target": seq(targets)}
        if recurrent:
            critic_batch["h0"] = h_c0[None]
        critic_params, critic_opt, vn, critic_metrics = update_critic(state.critic_params, state.critic_opt,
                                                                      critic_batch, vn, k_critic)

        running, finished, count = episode_returns(state.running_return, traj)
        last_return = jnp.where(count > 0, finished, state.last_return)

        new_h_c = None if seq_c is None else seq_c[-1]
        new_state = OnPolicyState(actor_params=actor_params, actor_opt=actor_opt, critic_params=critic_params,
                                  critic_opt=critic_opt, value_norm=vn, carry=carry, critic_hidden=new_h_c,
                                  running_return=running, last_return=last_return)
        metrics = {"episode_return": last_return, "episodes": count, "reward_per_step": jnp.mean(traj.reward, (0, 1)),
                   **actor_metrics, **critic_metrics}
        if exact:
            metrics["expected_reward"] = expected_reward(actor_params)
        if cfg.eval_envs:
            metrics["eval_return"] = evaluate(actor_params, jax.random.fold_in(key, 1))
        return new_state, metrics

    return Trainer(init=init, update=update, num_updates=cfg.num_updates, env_steps_per_update=cfg.steps_per_update,
                   seed_batch=1)
