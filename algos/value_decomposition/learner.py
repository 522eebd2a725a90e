"""The value-based training loop: the learner state (networks, targets, optimiser, replay buffer, environments),
one update (act, store, learn, copy the targets, log) and the ``Trainer`` that runs it.

One update, for IQL, VDN and QMIX alike (the mixer is the only difference, ``model.Model.mix``):
1. epsilon from the schedule at the environment steps taken so far (``qnetworks.epsilon_schedule``);
2. collect ``rollout_len`` steps in ``num_envs`` environments, each agent epsilon-greedy on its own Q-values over its
   available actions (``jaxmarl_core.rollout`` over the learner's view, which records the available actions, the
   global state and the state each step reached before any reset); recurrent agents start fresh episodes;
3. add the transitions to the replay buffer (recurrent agents: the episodes, masked after their end, each stored
   as its records o_0, ..., o_T (``Replayed``): o_{t+1} is both step t's o' and step t + 1's o);
4. ``num_sgd`` gradient steps on batches drawn uniformly from the buffer, taken only once it holds
   ``learning_starts`` transitions (``episode_batch_size`` episodes). The TD target of a transition (o, a, r, o'):

       y = r + gamma * (1 - terminated) * mix_target(max_{a' in avail(o')} Q_target(o', a'), s')

   with double Q the online network picks a' and the target network values it; a truncated step (a time limit)
   bootstraps from o', the observation it reached, and a terminated one never does (``td_lambda`` > 0: the
   TD(lambda) target along the replayed episode instead, ``returns.lambda_returns``). The loss is the mean squared
   TD error mix(Q(o, a), s) - y over the unmasked steps, per agent for IQL. A batch is a set of sequences [L, B]:
   L = 1 for feed-forward agents; recurrent agents run their GRU once over each episode o_0, ..., o_L from its
   start (o_{t+1} is the o' of step t), whose outputs give both Q(o_t, .) and Q(o', .) (the target network once
   over the same inputs with its own parameters);
5. copy the online parameters into the targets every ``target_update`` updates (``targets.periodic_update``);
6. metrics: the return of the episodes completed, the TD loss, epsilon, and the greedy policy's return (a greedy
   rollout after every ``eval_every``-th update and the last; the updates between repeat the latest).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from algos.onpolicy.learner import episode_returns
from algos.value_decomposition.config import ValueDecompositionConfig
from algos.value_decomposition.model import Model, build_model
from jaxmarl_core import optim
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.qnetworks import action_values, double_q_max, epsilon_greedy, epsilon_schedule, masked_max
from jaxmarl_core.replay import Episode, ReplayBuffer
from jaxmarl_core.returns import lambda_returns
from jaxmarl_core.rollout import RolloutCarry, reset_carry, rollout
from jaxmarl_core.targets import periodic_update
from jaxmarl_core.training import Trainer, XlaOptions


@struct.dataclass
class Sample:
    """One stored transition: obs, next_obs ``LearnerObs`` records ([N, D] observations, [N, A] available actions,
    [S] global state), action int32 [N], reward [N], terminated bool []."""

    obs: LearnerObs
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: LearnerObs


@struct.dataclass
class Replayed:
    """One stored episode of recurrent agents: ``obs`` the records o_0, ..., o_T ([T + 1] leading axis; o_{t+1} the
    observation step t reached, before any reset), action int32 [T, N], reward [T, N], terminated bool [T]. Within
    the episode o_{t+1} is also step t + 1's o, so each record is stored once."""

    obs: LearnerObs
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array

    @classmethod
    def of(cls, traj) -> Replayed:
        """A rollout's steps [T, ...] -> its records o_0 and the T observations reached, [T + 1, ...]."""
        obs = jax.tree.map(lambda o, reached: jnp.concatenate([o[:1], reached]), traj.obs, traj.next_obs)
        return cls(obs=obs, action=traj.action, reward=traj.reward, terminated=traj.terminated)

    def transitions(self) -> Sample:
        """The transitions (o_t, a_t, r_t, terminated_t, o_{t+1}), leaves [T, ...] (along axis 0): o_t equals the
        step's stored o wherever the episode had not ended before step t."""
        return Sample(obs=jax.tree.map(lambda x: x[:-1], self.obs), action=self.action, reward=self.reward,
                      terminated=self.terminated, next_obs=jax.tree.map(lambda x: x[1:], self.obs))


@struct.dataclass
class ValueState:
    params: Any  # {"agent": ..., "mixer": ...}
    target_params: Any
    opt_state: Any
    buffer: ReplayBuffer  # of Sample, or of Episode(Replayed, mask [T]) for recurrent agents
    carry: RolloutCarry  # learner records (leaves [B, ...]), environment states, agents' hidden [B, N, H] (or None)
    running_return: jax.Array  # [B, N] rewards so far in each environment's current episode
    last_return: jax.Array  # [N] mean return of the episodes completed in the latest update that had any
    greedy: jax.Array  # [N] the latest greedy rollout's mean return (0 before the first)
    step: jax.Array  # int32: updates done


def optimiser(cfg: ValueDecompositionConfig) -> optax.GradientTransformation:
    """pymarl's RMSprop (alpha 0.99, eps 1e-5), Adam or RAdam (JaxMARL's baselines), after global-norm clipping;
    with ``lr_decay`` the rate falls linearly to 0 over the run's gradient steps (counted once learning starts)."""
    lr = optax.linear_schedule(cfg.lr, 0.0, cfg.num_updates * cfg.num_sgd) if cfg.lr_decay else cfg.lr
    if cfg.optimiser == "rmsprop":
        opt = optax.rmsprop(lr, decay=0.99, eps=1e-5)
    else:
        opt = optax.adam(lr) if cfg.optimiser == "adam" else optax.radam(lr)
    return optim.clipped(opt, cfg.max_grad_norm)


def team_reward(reward: jax.Array, mode: str) -> jax.Array:
    """reward [..., N] -> each agent's own [..., N] ("none") or the team's [...] ("common": agent 0's, which every
    agent shares; "sum"; "mean")."""
    if mode == "none":
        return reward
    if mode == "common":
        return reward[..., 0]
    return jnp.sum(reward, axis=-1) if mode == "sum" else jnp.mean(reward, axis=-1)


def make_policy(model: Model, params, epsilon):
    """The agents acting epsilon-greedily (epsilon 0: greedily) on a batch of records [B, ...] -> actions [B, N];
    the policy state is the agents' hidden state [B, N, H] (None for feed-forward agents)."""

    def policy(key, obs: LearnerObs, hidden):
        seq, q = model.apply(params, hidden, obs.obs[None], obs.first[None])
        action = epsilon_greedy(key, q[0], obs.avail, epsilon)
        return action, None, None if seq is None else seq[0]

    return policy


def td_loss(model: Model, cfg: ValueDecompositionConfig, params, target_params, steps: Sample,
            mask: jax.Array) -> jax.Array:
    """The mean squared TD error over the steps of a batch of sequences (leaves [L, B, ...]) where mask bool[L, B]
    is True; module step 4."""
    obs, next_obs = steps.obs, steps.next_obs
    length = mask.shape[0]
    h0 = model.initial_hidden(mask.shape[1])
    if model.recurrent:  # within an episode next_obs[t] is obs[t + 1]: one unroll over o_0, ..., o_L
        inputs = jnp.concatenate([obs.obs[:1], next_obs.obs])  # [L + 1, B, N, D]
        first = jnp.concatenate([obs.first[:1], jnp.zeros_like(obs.first)])
        q_all = model.apply(params, h0, inputs, first)[1]  # [L + 1, B, N, A]
        q_next = model.apply(target_params, h0, inputs, first)[1][1:]
        q, q_next_online = q_all[:length], q_all[1:]
    else:  # one sequence step: the online network on o and o' at once, the target on o'
        no_reset = jnp.zeros((2 * length,) + obs.first.shape[1:], bool)
        q_all = model.apply(params, None, jnp.concatenate([obs.obs, next_obs.obs]), no_reset)[1]
        q_next = model.apply(target_params, None, next_obs.obs, no_reset[:length])[1]
        q, q_next_online = q_all[:length], q_all[length:]
    chosen = action_values(q, steps.action)  # [L, B, N]
    if cfg.double_q:
        next_v = double_q_max(q_next_online, q_next, next_obs.avail)
    else:
        next_v = masked_max(q_next, next_obs.avail)
    next_v = jnp.where(jnp.any(next_obs.avail, axis=-1), next_v, 0.0)  # an agent without actions adds nothing
    q_mix = model.mix(params, chosen, obs.global_state)  # [L, B] ([L, B, N] for IQL)
    next_mix = model.mix(target_params, next_v, next_obs.global_state)
    reward = team_reward(steps.reward, cfg.team_reward)
    if cfg.mixer == "none" and cfg.team_reward != "none":
        reward = jnp.broadcast_to(reward[..., None], q_mix.shape)
    extra = (1,) * (q_mix.ndim - 2)
    if cfg.td_lambda > 0:
        cut = ~jnp.concatenate([mask[1:], jnp.zeros_like(mask[:1])])  # the sequence stops after step t
        target = lambda_returns(reward, next_mix, steps.terminated, cut, cfg.gamma, cfg.td_lambda)
    else:
        target = reward + cfg.gamma * jnp.where(steps.terminated.reshape(mask.shape + extra), 0.0, next_mix)
    weight = jnp.broadcast_to(mask.reshape(mask.shape + extra), q_mix.shape)
    sq = jnp.square(q_mix - jax.lax.stop_gradient(target))
    return jnp.sum(jnp.where(weight, sq, 0.0)) / jnp.maximum(jnp.sum(weight), 1)


def greedy_return(view: LearnerView, model: Model, cfg: ValueDecompositionConfig, env_params, params, key):
    """The greedy joint policy's return [N] over ``eval_steps`` steps of ``eval_episodes`` fresh episodes, the mean
    over them (the rewards up to each one's end; exact for deterministic games whose episodes end within
    ``eval_steps``)."""
    k_reset, k_run = jax.random.split(key)
    b = cfg.eval_episodes
    carry = reset_carry(k_reset, view, env_params, model.initial_hidden(b), batch_size=b)
    traj = rollout(k_run, view, env_params, make_policy(model, params, 0.0), carry, cfg.eval_steps, batched=True)[1]
    before_end = until_first_end(traj)  # [T, B]
    return jnp.mean(jnp.sum(jnp.where(before_end[..., None], traj.reward, 0.0), axis=0), axis=0)


def until_first_end(traj) -> jax.Array:
    """bool [T, B]: the steps of a rollout up to and including each environment's first episode end."""
    done = jnp.logical_or(traj.terminated, traj.truncated)
    return jnp.cumsum(done, axis=0) - done == 0


def make_buffer(cfg: ValueDecompositionConfig, example: Sample) -> ReplayBuffer:
    """Transitions (feed-forward agents) or episodes of ``rollout_len`` steps (recurrent agents: ``Replayed``)."""
    if not cfg.recurrent:
        return ReplayBuffer.create(example, cfg.buffer_size)
    steps = jax.tree.map(lambda x: jnp.zeros((cfg.rollout_len,) + x.shape, x.dtype), example)
    records = jax.tree.map(lambda x: jnp.zeros((cfg.rollout_len + 1,) + x.shape, x.dtype), example.obs)
    episode = Episode(steps=Replayed(obs=records, action=steps.action, reward=steps.reward,
                                     terminated=steps.terminated), mask=jnp.zeros((cfg.rollout_len,), bool))
    return ReplayBuffer.create(episode, cfg.episode_buffer_size)


def init(view: LearnerView, model: Model, cfg: ValueDecompositionConfig, env_params, tx, key) -> ValueState:
    """Fresh networks (targets equal to them), optimiser, an empty replay buffer and ``num_envs`` fresh episodes."""
    k_env, k_net = jax.random.split(key)
    carry = reset_carry(k_env, view, env_params, model.initial_hidden(cfg.num_envs), batch_size=cfg.num_envs)
    params = model.init(k_net)
    one = jax.tree.map(lambda x: x[0], carry.obs)
    n = view.num_agents
    example = Sample(obs=one, action=jnp.zeros((n,), jnp.int32), reward=jnp.zeros((n,), jnp.float32),
                     terminated=jnp.zeros((), bool), next_obs=one)
    return ValueState(params=params, target_params=params, opt_state=tx.init(params),
                      buffer=make_buffer(cfg, example), carry=carry,
                      running_return=jnp.zeros((cfg.num_envs, n)), last_return=jnp.zeros((n,)),
                      greedy=jnp.zeros((n,)), step=jnp.zeros((), jnp.int32))


def update(view: LearnerView, model: Model, cfg: ValueDecompositionConfig, env_params, tx, state: ValueState, key,
           t: jax.Array):
    """Update index t (the module's steps 1-6) -> (new state, metrics)."""
    k_roll, k_sgd, k_eval, k_reset = jax.random.split(key, 4)

    # 1. epsilon at the environment steps taken so far
    epsilon = epsilon_schedule(cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_decay_steps)(
        state.step * cfg.steps_per_update)

    # 2. collect: traj leaves [T, B, ...] (recurrent agents: from fresh episodes)
    carry, running = state.carry, state.running_return
    if cfg.recurrent:
        carry = reset_carry(k_reset, view, env_params, model.initial_hidden(cfg.num_envs), batch_size=cfg.num_envs)
        running = jnp.zeros_like(running)
    carry, traj = rollout(k_roll, view, env_params, make_policy(model, state.params, epsilon), carry,
                          cfg.rollout_len, batched=True)

    # 3. store the T * B transitions, or the B episodes
    if cfg.recurrent:
        episodes = Episode(steps=Replayed.of(traj), mask=until_first_end(traj)).time_major()  # [T, B] -> [B, T]
        buffer = state.buffer.add(episodes)
    else:
        samples = Sample(obs=traj.obs, action=traj.action, reward=traj.reward, terminated=traj.terminated,
                         next_obs=traj.next_obs)
        buffer = state.buffer.add(jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), samples))

    def draw(k):
        """A batch of sequences: (steps [L, B, ...], mask [L, B])."""
        if cfg.recurrent:
            batch = buffer.sample(k, cfg.episode_batch_size).time_major()
            return batch.steps.transitions(), batch.mask
        batch = buffer.sample(k, cfg.batch_size)
        return jax.tree.map(lambda x: x[None], batch), jnp.ones((1, cfg.batch_size), bool)

    # 4. gradient steps on sampled batches, once the buffer holds enough
    learn = buffer.can_sample(cfg.episode_batch_size if cfg.recurrent else cfg.learning_starts)

    def sgd_step(carry, k):
        params, opt_state = carry
        steps, mask = draw(k)
        loss, grads = jax.value_and_grad(td_loss, argnums=2)(model, cfg, params, state.target_params, steps, mask)
        updates, new_opt = tx.update(grads, opt_state, params)
        new = (optax.apply_updates(params, updates), new_opt)
        return jax.tree.map(lambda a, b: jnp.where(learn, a, b), new, (params, opt_state)), loss

    (params, opt_state), losses = jax.lax.scan(sgd_step, (state.params, state.opt_state),
                                               jax.random.split(k_sgd, cfg.num_sgd))

    # 5. the targets: a copy every target_update updates
    step = state.step + 1
    target_params = periodic_update(params, state.target_params, step, cfg.target_update)

    # 6. metrics
    running, finished, count = episode_returns(running, traj)
    last_return = jnp.where(count > 0, finished, state.last_return)
    metrics = {"episode_return": last_return, "episodes": count, "reward_per_step": jnp.mean(traj.reward, (0, 1)),
               "td_loss": jnp.mean(losses), "epsilon": epsilon, "learning": learn.astype(jnp.int32)}
    greedy = state.greedy
    if cfg.eval_steps:  # t is the same for all vmapped seeds: the branch not taken is not run
        evaluate = ((t + 1) % cfg.eval_every == 0) | (t + 1 == cfg.num_updates)
        greedy = jax.lax.cond(evaluate, lambda: greedy_return(view, model, cfg, env_params, params, k_eval),
                              lambda: state.greedy)
        metrics["greedy_return"] = greedy
    new_state = ValueState(params=params, target_params=target_params, opt_state=opt_state, buffer=buffer,
                           carry=carry, running_return=running, last_return=last_return, greedy=greedy, step=step)
    return new_state, metrics


def make_train(env, config: ValueDecompositionConfig, params=None) -> Trainer:
    env_params = env.default_params if params is None else params
    view = LearnerView(env, with_state=config.mixer == "qmix")
    model = build_model(view, config)
    tx = optimiser(config)
    statics = (view, model, config, env_params, tx)
    return Trainer(init=functools.partial(init, *statics), update=functools.partial(update, *statics),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update, indexed=True,
                   seed_batch=1, xla=XlaOptions(library_reductions=config.recurrent, quick_backend=True))
