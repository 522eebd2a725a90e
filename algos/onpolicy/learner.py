"""The on-policy training loop: the learner state, one update (collect, evaluate advantages, move the actors, fit
the critic, log), HARL's greedy evaluation and the ``Trainer`` that runs it.

One update, for HAPPO (Kuba et al., 2022, Algorithm 1) and its relatives:
1. collect ``rollout_len`` steps in ``num_envs`` environments with the current actors (``jaxmarl_core.rollout`` over
   the learner's view, which records observations, available actions, the global state and episode starts);
2. value the states acted on and the states reached (``final_obs``: before an automatic reset);
3. advantages by GAE on the denormalised values (``jaxmarl_core.returns.gae``), normalised over the batch;
4. the actors' update (``actor.update_actors``: PPO/A2C/TRPO, all at once or one agent after another);
5. the critic's update (``critic.update_critic``) towards the GAE returns;
6. metrics: returns of the episodes completed (and the share won where the environment reports wins), losses,
   exact expected payoffs of matrix games, and the means of the environment's ``StepMetrics``.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from algos.onpolicy.actor import update_actors
from algos.onpolicy.config import OnPolicyConfig
from algos.onpolicy.critic import update_critic
from algos.onpolicy.model import (
    Model,
    actor_all,
    actor_inputs,
    build_model,
    critic_all,
    critic_inputs,
    dist_stats,
    init_params,
    leading,
    make_policy,
)
from jaxmarl_core import actor_critic, distributions, optim, social
from jaxmarl_core.capabilities import MatrixPayoffs, StepMetrics, has
from jaxmarl_core.learner_view import LearnerView
from jaxmarl_core.networks import initial_hidden
from jaxmarl_core.returns import gae
from jaxmarl_core.rollout import RolloutCarry, episode_outcomes, reset_carry, rollout, step_means
from jaxmarl_core.training import Trainer, XlaOptions
from jaxmarl_core.value_norm import ValueNorm


@struct.dataclass
class OnPolicyState:
    actor_params: Any  # stacked on a leading agent axis unless share_params
    actor_opt: Any
    critic_params: Any  # stacked for IPPO without sharing
    critic_opt: Any
    value_norm: ValueNorm  # statistics per agent's value target [N]
    carry: RolloutCarry  # learner records (leaves [B, ...]), env states, actor hidden [B, N, H] (or None)
    critic_hidden: Any  # [B, (N,) H] or None
    running_return: jax.Array  # [B, N] rewards so far in each environment's current episode
    last_return: jax.Array  # [N] mean return of the episodes completed in the latest update that had any


def linear_decay(lr: float, steps_per_update: int, num_updates: int) -> optax.Schedule:
    """HARL's linear learning-rate decay as an optax schedule of the optimiser's step count: constant within an
    update (``steps_per_update`` Adam steps), ``lr * (1 - u / num_updates)`` in update u = 0 .. num_updates - 1."""

    def schedule(count):
        return lr * (1.0 - (count // steps_per_update) / num_updates)

    return schedule


def optimiser(cfg: OnPolicyConfig, lr: float, epochs: int) -> optax.GradientTransformation:
    """Adam (eps ``adam_eps``) after global-norm clipping, its rate decaying linearly with ``lr_decay``."""
    rate = linear_decay(lr, epochs * cfg.num_minibatches, cfg.num_updates) if cfg.lr_decay else lr
    return optim.clipped(optax.adam(rate, eps=cfg.adam_eps), cfg.max_grad_norm)


def episode_returns(running, traj):
    """Sum rewards [T, B, N] into the running returns [B, N] -> (running returns after the last step, mean return
    [N] of the episodes that ended, their count)."""

    def accumulate(running, step):
        reward, done = step
        running = running + reward
        return jnp.where(done[:, None], 0.0, running), (running, done)

    done = jnp.logical_or(traj.terminated, traj.truncated)
    running, (totals, dones) = jax.lax.scan(accumulate, running, (traj.reward, done))
    count = jnp.sum(dones)
    return running, jnp.sum(jnp.where(dones[..., None], totals, 0.0), axis=(0, 1)) / jnp.maximum(count, 1), count


def shaped_reward(cfg: OnPolicyConfig, reward: jax.Array) -> jax.Array:
    """The rewards [..., N] the agents train on: their own, the sum of all agents' (``team_reward``: Simul-Co), or
    shaped by social value orientation (``svo_weight`` > 0, ``jaxmarl_core.social.svo_reward``)."""
    if cfg.team_reward:
        return social.collective_reward(reward)
    if cfg.svo_weight > 0:
        return social.svo_reward(reward, jnp.deg2rad(cfg.svo_angle), cfg.svo_weight)
    return reward


def evaluate(view: LearnerView, model: Model, cfg: OnPolicyConfig, params, aparams, key):
    """HARL's evaluation: ``eval_envs`` fresh environments run ``eval_steps`` steps on the actors' most likely
    actions -> mean return [N] of the episodes they complete (NaN if none)."""
    k_reset, k_run = jax.random.split(key)
    n = model.num_agents
    h = initial_hidden(model.hidden_sizes, (cfg.eval_envs, n)) if model.recurrent else None
    carry = reset_carry(k_reset, view, params, h, batch_size=cfg.eval_envs)
    traj = rollout(k_run, view, params, make_policy(model, aparams, greedy=True), carry, cfg.eval_steps,
                   batched=True)[1]
    _, mean, count = episode_returns(jnp.zeros((cfg.eval_envs, n)), traj)
    return jnp.where(count > 0, mean, jnp.nan)


def expected_reward(view: LearnerView, model: Model, params, aparams):
    """Exact expected payoffs [N] of a matrix game under the actors' mixed strategies at the first observation."""
    rec, _ = view.reset(jax.random.PRNGKey(0), params)
    obs, mask, first = actor_inputs(model, leading(rec, 2))
    h = initial_hidden(model.hidden_sizes, (1, model.num_agents)) if model.recurrent else None
    _, logits, _ = actor_all(model, aparams, h, obs, first)
    probs = distributions.masked_categorical(logits[0, 0], mask[0, 0]).probs
    return view.env.expected_payoffs(probs, params)


def init(view: LearnerView, model: Model, cfg: OnPolicyConfig, params, actor_tx, critic_tx, key) -> OnPolicyState:
    """Fresh actors, critic(s), optimisers, value statistics and ``num_envs`` fresh episodes."""
    k_env, k_actor, k_critic = jax.random.split(key, 3)
    b, n = cfg.num_envs, model.num_agents
    h_a = initial_hidden(model.hidden_sizes, (b, n)) if model.recurrent else None
    carry = reset_carry(k_env, view, params, h_a, batch_size=b)
    x_a = actor_inputs(model, leading(carry.obs))[0][:, :1, 0]
    x_c = critic_inputs(model, leading(carry.obs))[0][:, :1]
    per_agent = model.per_agent_critic_inputs
    h_c = initial_hidden(model.hidden_sizes, (b, n) if per_agent else (b,)) if model.recurrent else None
    actor_params = init_params(model, model.actor, k_actor, x_a, not model.shared_actor)
    critic_params = init_params(model, model.critic, k_critic, x_c[:, :, 0] if per_agent else x_c,
                                model.separate_critics)
    init_a = actor_tx.init if model.shared_actor else jax.vmap(actor_tx.init)
    init_c = jax.vmap(critic_tx.init) if model.separate_critics else critic_tx.init
    return OnPolicyState(actor_params=actor_params, actor_opt=init_a(actor_params), critic_params=critic_params,
                         critic_opt=init_c(critic_params), value_norm=ValueNorm.create((n,)), carry=carry,
                         critic_hidden=h_c, running_return=jnp.zeros((b, n)), last_return=jnp.zeros((n,)))


def update(view: LearnerView, model: Model, cfg: OnPolicyConfig, params, actor_tx, critic_tx,
           state: OnPolicyState, key):
    """One update (the module's steps 1-6) -> (new state, metrics)."""
    k_roll, k_actor, k_critic = jax.random.split(key, 3)
    t_len, b = cfg.rollout_len, cfg.num_envs
    h_a0, h_c0 = state.carry.policy_state, state.critic_hidden

    # 1. collect: traj.obs/next_obs records with leaves [T, B, ...], action [T, B, N (, A)], reward [T, B, N]
    carry, traj = rollout(k_roll, view, params, make_policy(model, state.actor_params), state.carry, t_len,
                          batched=True)

    # 2. values of the states acted on, and of the states reached: one more step from the critic's state after each
    # step, time merged into the batch
    x_c, first_c = critic_inputs(model, traj.obs)
    next_x_c = critic_inputs(model, traj.next_obs)[0]
    seq_c, v_norm = critic_all(model, state.critic_params, h_c0, x_c, first_c)
    h_next = None if seq_c is None else seq_c.reshape(t_len * b, *seq_c.shape[2:])
    no_reset = jnp.zeros((1, t_len * b) + first_c.shape[2:], bool)
    _, next_v_norm = critic_all(model, state.critic_params, h_next, next_x_c.reshape(1, t_len * b,
                                                                                     *next_x_c.shape[2:]), no_reset)
    next_v_norm = next_v_norm.reshape(v_norm.shape)

    # 3. advantages and returns of the rewards trained on (``shaped_reward``)
    vn = state.value_norm
    denorm = vn.denormalize if cfg.use_value_norm else (lambda v: v)
    reward = shaped_reward(cfg, traj.reward)
    adv, targets = gae(reward, denorm(v_norm), denorm(next_v_norm), traj.terminated, traj.truncated, cfg.gamma,
                       cfg.gae_lambda, drop_truncated=cfg.truncation == "harl")
    adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-5)

    # 4. the actors, from the log-probabilities of the policy that acted
    def seq(x):
        return actor_critic.sequence_layout(x, model.recurrent)

    obs_a, mask_a, first_a = actor_inputs(model, traj.obs)
    actor_batch = {"obs": seq(obs_a), "first": seq(first_a), "action": seq(traj.action), "mask": seq(mask_a),
                   "adv": seq(adv)}
    if model.recurrent:
        actor_batch["h0"] = h_a0[None]
    _, out, log_std = actor_all(model, state.actor_params, h_a0 if model.recurrent else None, actor_batch["obs"],
                                actor_batch["first"])
    actor_batch["old_logp"] = jax.lax.stop_gradient(
        dist_stats(model, out, log_std, actor_batch["action"], actor_batch["mask"])[0])
    actor_batch["log_factor"] = jnp.zeros_like(actor_batch["adv"])
    actor_params, actor_opt, actor_metrics = update_actors(model, cfg, actor_tx, state.actor_params, state.actor_opt,
                                                           actor_batch, k_actor)

    # 5. the critic
    critic_batch = {"x": seq(x_c), "first": seq(first_c), "old_v": seq(v_norm), "target": seq(targets)}
    if model.recurrent:
        critic_batch["h0"] = h_c0[None]
    critic_params, critic_opt, vn, critic_metrics = update_critic(model, cfg, critic_tx, state.critic_params,
                                                                  state.critic_opt, critic_batch, vn, k_critic)

    # 6. metrics
    running, finished, count = episode_returns(state.running_return, traj)
    last_return = jnp.where(count > 0, finished, state.last_return)
    new_state = OnPolicyState(actor_params=actor_params, actor_opt=actor_opt, critic_params=critic_params,
                              critic_opt=critic_opt, value_norm=vn, carry=carry,
                              critic_hidden=None if seq_c is None else seq_c[-1], running_return=running,
                              last_return=last_return)
    metrics = {"episode_return": last_return, "episodes": count, "reward_per_step": jnp.mean(traj.reward, (0, 1)),
               **episode_outcomes(traj), **actor_metrics, **critic_metrics}
    if has(view.env, StepMetrics):
        metrics.update(step_means(traj, view.env.step_metrics))
    if model.discrete and has(view.env, MatrixPayoffs):
        metrics["expected_reward"] = expected_reward(view, model, params, actor_params)
    if cfg.eval_envs:
        metrics["eval_return"] = evaluate(view, model, cfg, params, actor_params, jax.random.fold_in(key, 1))
    return new_state, metrics


def make_train(env, config: OnPolicyConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    view = LearnerView(env, with_state=config.centralised_critic)
    model = build_model(view, config)
    actor_tx = optimiser(config, config.lr, config.ppo_epochs)
    critic_tx = optimiser(config, config.critic_lr, config.critic_epochs)
    statics = (view, model, config, params, actor_tx, critic_tx)
    return Trainer(init=functools.partial(init, *statics), update=functools.partial(update, *statics),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update, seed_batch=1,
                   xla=XlaOptions(quick_backend=True))
