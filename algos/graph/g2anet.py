"""GA-Comm (Liu et al., 2020, section 4.2): G2ANet's communication (``algos.graph.g2anet_model``) inside a shared
policy, trained as IC3Net and CommNet train their policies (REINFORCE with a learnt baseline, an advantage
actor-critic). One update:

1. act: ``rollout_len`` steps of ``num_envs`` environments; at each step a fresh Gumbel key samples the hard
   attention's graph over the neighbourhoods (the ``Neighbourhood`` capability: agent i itself in slot 0, unmasked
   while it is present) and every agent samples a_i ~ pi(. | o, graph);
2. advantages: A_t = GAE(gamma, lambda) of each agent's reward against V(o_i) (IC3Net: gamma = lambda = 1, the
   Monte-Carlo return minus the baseline); an episode end (termination or the time limit) stops the return, and so
   does the end of an agent's own episode where the environment reports one (``info["agent_done"]`` bool [N]: the
   traffic junction's car that reached its destination, whose index may carry a new car afterwards; IC3Net's
   ``is_completed`` mask); the rollout's last step bootstraps from V of the observation it reached. With
   ``normalize_advantages`` (IC3Net's ``--normalize_rewards``) A is standardised over the batch's present agents;
3. learn, one gradient step on the whole batch, over the agents present when they acted (slot 0 of their
   neighbourhood unmasked):

       L(theta) = - mean log pi(a_i | o, graph; theta) A_i + value_coef * mean (V(o_i) - R_i)^2
                  - entropy_coef * mean H(pi(. | o, graph))

   with the graph of step 1 (the same Gumbel key), so the loss differentiates the policy that acted; the hard
   attention learns through its straight-through Gumbel sample;
4. log: the reward per step, the environment's scalar ``info`` (mean over steps), and ``episode_success``: the mean
   of ``info["success"]`` at the episode ends of the update (the traffic junction's success rate: episodes without
   a collision), the previous update's value where no episode ended.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from algos.graph.config import check_env
from algos.graph.g2anet_model import COMM, GAComm
from algos.graph.learner import assemble, reset_envs, scalar_info
from jaxmarl_core import distributions, optim
from jaxmarl_core.capabilities import AgentEpisodes, has
from jaxmarl_core.config import BatchedRollouts, Config, require_nonnegative, require_positive, require_positive_int
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.returns import gae
from jaxmarl_core.training import Trainer


@dataclasses.dataclass(frozen=True)
class GACommConfig(BatchedRollouts, Config):
    """IC3Net's training settings for the traffic junction where they carry over (RMSprop, lr 1e-3, alpha 0.97,
    eps 1e-6; gamma = lambda = 1; value coefficient 0.01; no entropy bonus; 128 hidden units); its batches of 500
    steps from 16 processes become ``num_envs`` x ``rollout_len`` steps per gradient step. The attention sizes
    (one head of 32, a GRU of 32 each way) and the Gumbel temperature are this implementation's choices (the paper
    gives none). ``comm``: ``g2a`` (GA-Comm), ``soft`` (no hard attention), ``mean`` (CommNet), ``none``.
    ``normalize_advantages``: IC3Net's ``--normalize_rewards`` (off by default there and here)."""

    total_steps: int = 1_000_000
    num_envs: int = 16
    rollout_len: int = 20
    hidden_size: int = 128
    comm: str = "g2a"
    num_heads: int = 1
    head_dim: int = 32
    gru_size: int = 32
    temperature: float = 1.0
    lr: float = 1e-3
    rms_decay: float = 0.97
    rms_eps: float = 1e-6
    gamma: float = 1.0
    gae_lambda: float = 1.0
    value_coef: float = 0.01
    entropy_coef: float = 0.0
    normalize_advantages: bool = False  # IC3Net's --normalize_rewards
    max_grad_norm: float = 0.0  # 0: no clipping (IC3Net clips nothing)

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("hidden_size", "num_heads", "head_dim", "gru_size"):
            require_positive_int(self, name)
        for name in ("lr", "temperature", "rms_eps"):
            require_positive(self, name)
        for name in ("value_coef", "entropy_coef", "max_grad_norm"):
            require_nonnegative(self, name)
        if self.comm not in COMM:
            raise ValueError(f"comm must be one of {', '.join(COMM)}, got {self.comm!r}")
        for name in ("gamma", "gae_lambda", "rms_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        reason = check_env(env)
        if reason:
            raise ValueError(f"ga_comm {reason}")


def default_config(env, variant: str = "ga_comm") -> GACommConfig:
    return GACommConfig()


@struct.dataclass
class Batch:
    """Steps of the rollout, leaves [T, B, ...]: obs [N, D], idx/mask [N, K], avail [N, A], key (the step's Gumbel
    key), action [N], reward [N], done [], agent_done [N]."""

    obs: jax.Array
    idx: jax.Array
    mask: jax.Array
    avail: jax.Array
    key: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    agent_done: jax.Array


@struct.dataclass
class GACommState:
    params: Any
    opt_state: Any
    obs: LearnerObs  # leaves [B, ...]
    env_state: Any  # [B, ...]
    success: jax.Array  # the last update's episode success rate


def build_model(cfg: GACommConfig, num_actions: int) -> GAComm:
    return GAComm(num_actions=num_actions, hidden_size=cfg.hidden_size, comm=cfg.comm, num_heads=cfg.num_heads,
                  head_dim=cfg.head_dim, gru_size=cfg.gru_size, temperature=cfg.temperature)


def optimiser(cfg: GACommConfig) -> optax.GradientTransformation:
    return optim.clipped(optax.rmsprop(cfg.lr, decay=cfg.rms_decay, eps=cfg.rms_eps), cfg.max_grad_norm)


def apply_batch(model: GAComm, params, batch: Batch):
    """The policy on every step of a batch, each with its own Gumbel key -> (logits [T, B, N, A], values
    [T, B, N])."""
    def one(obs, idx, mask, key):
        return model.apply(params, obs, idx, mask, key)[:2]

    return jax.vmap(jax.vmap(one))(batch.obs, batch.idx, batch.mask, batch.key)


def loss_fn(model: GAComm, cfg: GACommConfig, params, batch: Batch, adv: jax.Array, returns: jax.Array):
    """Step 3 -> (loss, metrics)."""
    logits, values = apply_batch(model, params, batch)
    dist = distributions.masked_categorical(logits, batch.avail)
    present = batch.mask[..., 0].astype(jnp.float32)
    count = jnp.maximum(jnp.sum(present), 1.0)

    def mean(x):
        return jnp.sum(x * present) / count

    policy = -mean(dist.log_prob(batch.action) * adv)
    value = mean(jnp.square(values - returns))
    entropy = mean(dist.entropy())
    loss = policy + cfg.value_coef * value - cfg.entropy_coef * entropy
    return loss, {"policy_loss": policy, "value_loss": value, "entropy": entropy}


def collect(view: LearnerView, model: GAComm, cfg: GACommConfig, env_params, state: GACommState, key):
    """Step 1 -> ((obs, env_state) after the rollout, Batch [T, B, ...], scalar info [T, B])."""
    env = view.env
    neighbours = jax.vmap(lambda s: env.neighbours(s, env_params))
    policy = jax.vmap(lambda p, o, i, m, k: model.apply(p, o, i, m, k)[0], in_axes=(None, 0, 0, 0, 0))
    step_env = jax.vmap(view.step, in_axes=(0, 0, 0, None))
    agent_episodes = has(env, AgentEpisodes)

    def step(carry, k):
        obs, env_state = carry
        k_graph, k_act, k_env = jax.random.split(k, 3)
        idx, mask = neighbours(env_state)
        keys = jax.random.split(k_graph, cfg.num_envs)
        logits = policy(state.params, obs.obs, idx, mask, keys)
        actions = distributions.masked_categorical(logits, obs.avail).sample(seed=k_act)
        ts = step_env(jax.random.split(k_env, cfg.num_envs), env_state, actions, env_params)
        agent_done = ts.info["agent_done"] if agent_episodes else jnp.zeros_like(ts.reward, bool)
        batch = Batch(obs=obs.obs, idx=idx, mask=mask, avail=obs.avail, key=keys, action=actions, reward=ts.reward,
                      done=ts.done, agent_done=agent_done)
        return (ts.obs, ts.state), (batch, scalar_info(ts.info))

    return jax.lax.scan(step, (state.obs, state.env_state), jax.random.split(key, cfg.rollout_len))


def init(view: LearnerView, model: GAComm, cfg: GACommConfig, env_params, tx, key) -> GACommState:
    """Fresh network and optimiser, ``num_envs`` fresh episodes."""
    k_env, k_net = jax.random.split(key)
    obs, env_state = reset_envs(view, cfg.num_envs, env_params, k_env)
    idx, mask = view.env.neighbours(jax.tree.map(lambda x: x[0], env_state), env_params)
    params = model.init(k_net, obs.obs[0], idx, mask, k_net)
    return GACommState(params=params, opt_state=tx.init(params), obs=obs, env_state=env_state,
                       success=jnp.zeros((), jnp.float32))


def update(view: LearnerView, model: GAComm, cfg: GACommConfig, env_params, tx, state: GACommState, key):
    """One update (the module's steps 1-4) -> (new state, metrics)."""
    k_roll, k_last = jax.random.split(key)
    (obs, env_state), (batch, info) = collect(view, model, cfg, env_params, state, k_roll)

    # 2. advantages: the values of the steps, then of the observation the rollout reached
    _, values = apply_batch(model, state.params, batch)
    idx, mask = jax.vmap(lambda s: view.env.neighbours(s, env_params))(env_state)
    last = jax.vmap(lambda o, i, m, k: model.apply(state.params, o, i, m, k)[1])(
        obs.obs, idx, mask, jax.random.split(k_last, cfg.num_envs))
    next_values = jnp.concatenate([values[1:], last[None]], axis=0)
    ended = batch.done[..., None] | batch.agent_done
    adv, returns = gae(batch.reward, values, next_values, ended, jnp.zeros_like(ended), cfg.gamma, cfg.gae_lambda)
    if cfg.normalize_advantages:
        present = batch.mask[..., 0]
        count = jnp.maximum(jnp.sum(present), 1)
        mean = jnp.sum(jnp.where(present, adv, 0.0)) / count
        std = jnp.sqrt(jnp.sum(jnp.where(present, jnp.square(adv - mean), 0.0)) / count)
        adv = (adv - mean) / (std + 1e-8)

    # 3. one gradient step
    grads, metrics = jax.grad(functools.partial(loss_fn, model, cfg), has_aux=True)(
        state.params, batch, jax.lax.stop_gradient(adv), jax.lax.stop_gradient(returns))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    # 4. log
    ends = jnp.sum(batch.done)
    success = state.success
    if "success" in info:
        success = jnp.where(ends > 0, jnp.sum(info["success"] * batch.done) / jnp.maximum(ends, 1), success)
    metrics = {**metrics, "reward": jnp.mean(batch.reward), "reward_per_step": jnp.mean(batch.reward, axis=(0, 1)),
               "episode_success": success, "episodes": ends.astype(jnp.float32),
               **{name: jnp.mean(v) for name, v in info.items()}}
    return GACommState(params=params, opt_state=opt_state, obs=obs, env_state=env_state, success=success), metrics


def make_train(env, config: GACommConfig, params=None) -> Trainer:
    return assemble(init, update, build_model, optimiser, env, config, params)
