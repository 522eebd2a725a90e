"""The neural mean-field learners' training loop: MF-Q, MF-AC and their independent baselines IL and AC (Yang et
al., 2018, Algorithms 1 and 2).

One update:
1. collect ``rollout_len`` steps in ``num_envs`` environments. Agent j acts on its observation o_j and abar_j, the
   mean one-hot action of its neighbours' previous actions (``NeighbourMeanAction``; the released code's choice:
   the mean over its whole group, itself included): the Q-learners by the Boltzmann policy
   pi(a | o, abar) = softmax_a(Q(o, a, abar) / tau), tau annealed (released code: greedily), the actor-critics by
   the actor pi(a | o). After the step, abar_j becomes the mean of its neighbours' new actions: the mean action of the
   transition and the one the agent acts on next (kept across episode ends, as in a repeated game);
2. MF-Q and IL: every agent's transition (o, a, abar, r, o') goes to its group's replay; ``num_sgd`` times, a batch
   of agent transitions fits Q(o, a, abar) to

       y = r + gamma * (1 - terminated) * v(o'),   v_MF(o') = sum_a' pi(a' | o', abar) Q_target(o', a', abar)

   (the mean-field value, pi the Boltzmann policy of Q_target; IL: v(o') = max_a' Q_target(o', a'); released code:
   double Q, Q_target(o', argmax_a' Q(o', a', abar), abar)), each step followed by a Polyak step of the target;
3. MF-AC and AC: ``num_sgd`` gradient steps on the update's own transitions: the critic fits Q(o, a, abar) to
   y = r + gamma * (1 - terminated) * sum_a' pi(a' | o') Q(o', a', abar) (no gradient through y), and the actor
   ascends log pi(a | o) * (Q(o, a, abar) - sum_b pi(b | o) Q(o, b, abar)) plus an entropy bonus;
4. metrics: the reward per step (mean over agents: the shared reward of a common-reward game), per agent, the
   losses and the environment's scalar ``info`` entries (e.g. the Ising order parameter).

Self-play (``self_play``, the released code's battle training): only the first group learns (steps 2-3 on its
agents); the second acts with the opponent's networks, and after each step in which k episodes end with the
learner's team reward over the episode above the opponent's, opponent <- learner + tau_sp^k (opponent - learner)
(k soft updates opponent <- (1 - tau_sp) learner + tau_sp opponent).

All agents of a group share one set of networks (``env.groups``: agents of a group are identical and contiguous),
and every step works on whole agent axes, so thousands of agents cost no Python loop; groups loop in Python (few).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from algos.mean_field.config import MeanFieldConfig
from algos.mean_field.model import Model, build_model
from jaxmarl_core import optim
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.qnetworks import (
    action_values,
    boltzmann_logits,
    boltzmann_value,
    double_q_max,
    epsilon_schedule,
    greedy_action,
    masked_max,
    masked_q,
)
from jaxmarl_core.replay import ReplayBuffer
from jaxmarl_core.rollout import agents_terminated
from jaxmarl_core.targets import polyak_update
from jaxmarl_core.training import Trainer, XlaOptions


@struct.dataclass
class AgentSample:
    """One agent's transition: obs [D], avail bool [A], action int32 [], mean [A] (its neighbours' mean action of the
    step), reward [], terminated bool [], next_obs [D], next_avail bool [A]."""

    obs: jax.Array
    avail: jax.Array
    action: jax.Array
    mean: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: jax.Array
    next_avail: jax.Array


@struct.dataclass
class MeanFieldState:
    params: dict  # group name -> {"q": ..., ("actor": ...)}
    target_params: dict  # the Q-learners' targets (the online parameters for actor-critics)
    opt_state: Any
    buffers: dict  # group name -> ReplayBuffer of AgentSample (Q-learners; empty for actor-critics)
    obs: LearnerObs  # leaves [B, ...]: the observations to act on
    env_state: Any  # [B, ...]
    mean: jax.Array  # [B, N, A]: each agent's neighbours' mean action of the previous step
    step: jax.Array  # int32: updates done
    opponent: dict  # self-play: {second group name: its parameters}; {} otherwise
    returns: jax.Array  # [B, G]: each group's summed reward over the running episode


def optimiser(cfg: MeanFieldConfig) -> optax.GradientTransformation:
    return optim.clipped(optax.adam(cfg.lr), cfg.max_grad_norm)


def group_slices(env) -> list[tuple[str, slice]]:
    """(group name, its agents' slice of the agent axis) for every group of ``env``."""
    out, start = [], 0
    for g in env.groups:
        out.append((g.name, slice(start, start + g.size)))
        start += g.size
    return out


def learning_slices(cfg: MeanFieldConfig, slices):
    """The groups that learn: all, or the first alone in self-play."""
    return slices[:1] if cfg.self_play else slices


def self_play_update(cfg: MeanFieldConfig, slices, params: dict, opponent: dict, wins: jax.Array) -> dict:
    """``wins`` (int) soft updates of the opponent towards the learner: learner + tau_sp^wins (opponent - learner)."""
    if not cfg.self_play:
        return opponent
    (learner, _), (other, _) = slices
    keep = jnp.power(jnp.float32(cfg.self_play_tau), wins.astype(jnp.float32))
    return {other: jax.tree.map(lambda p, o: p + keep * (o - p), params[learner], opponent[other])}


def mean_actions(env, cfg: MeanFieldConfig, env_params, state, actions: jax.Array, num_actions: int) -> jax.Array:
    """The mean one-hot action [N, A] each agent sees of ``actions`` [N]: its neighbours' (the environment's
    ``neighbour_mean_action``), its group's with the released code's choices, zeros without the mean field."""
    if not cfg.mean_field:
        return jnp.zeros((actions.shape[0], num_actions), jnp.float32)
    if not cfg.released_code:
        return env.neighbour_mean_action(state, actions, env_params)
    one_hot = jax.nn.one_hot(actions, num_actions, dtype=jnp.float32)
    parts = [jnp.broadcast_to(jnp.mean(one_hot[sl], axis=0), one_hot[sl].shape) for _, sl in group_slices(env)]
    return jnp.concatenate(parts, axis=0)


def temperature(cfg: MeanFieldConfig, step: jax.Array) -> jax.Array:
    """The Boltzmann temperature at update ``step``: linear from ``temperature_start`` to ``temperature``."""
    return epsilon_schedule(cfg.temperature_start, cfg.temperature, cfg.temperature_decay_steps)(
        step * cfg.steps_per_update)


def act(model: Model, cfg: MeanFieldConfig, slices, params: dict, obs: LearnerObs, mean: jax.Array, tau, key):
    """Actions [B, N] of every group's agents at Boltzmann temperature tau (module step 1)."""
    actions = []
    for (name, sl), k in zip(slices, jax.random.split(key, len(slices))):
        o, m, avail = obs.obs[:, sl], mean[:, sl], obs.avail[:, sl]
        if cfg.family == "ac":
            logits = masked_q(model.logits(params[name], o), avail)
        else:
            q = model.q(params[name], o, m)
            if cfg.released_code:
                actions.append(greedy_action(q, avail))
                continue
            logits = boltzmann_logits(q, avail, tau)
        actions.append(jax.random.categorical(k, logits).astype(jnp.int32))
    return jnp.concatenate(actions, axis=1)


def collect(view: LearnerView, model: Model, cfg: MeanFieldConfig, env_params, slices, state: MeanFieldState, key):
    """``rollout_len`` steps of the ``num_envs`` environments -> (obs, env_state, mean, opponent, returns) after
    them, and the transitions (leaves [T, B, N, ...]) with the environments' scalar info [T, B]."""
    env, num_actions = view.env, model.num_actions
    means = jax.vmap(lambda s, a: mean_actions(env, cfg, env_params, s, a, num_actions))

    def step(carry, k):
        obs, env_state, mean, opponent, returns = carry
        k_act, k_env = jax.random.split(k)
        actions = act(model, cfg, slices, {**state.params, **opponent}, obs, mean, temperature(cfg, state.step),
                      k_act)
        ts = jax.vmap(view.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, cfg.num_envs), env_state,
                                                          actions, env_params)
        new_mean = means(env_state, actions)
        final = ts.info["final_obs"]
        sample = AgentSample(obs=obs.obs, avail=obs.avail, action=actions, mean=new_mean, reward=ts.reward,
                             terminated=agents_terminated(env, ts),
                             next_obs=final.obs, next_avail=final.avail)
        info = {name: v for name, v in ts.info.items() if name != "final_obs" and v.ndim == 1}
        returns = returns + jnp.stack([jnp.sum(ts.reward[:, sl], axis=1) for _, sl in slices], axis=1)
        done = ts.terminated | ts.truncated
        won = done & (returns[:, 0] > returns[:, -1])
        opponent = self_play_update(cfg, slices, state.params, opponent, jnp.sum(won))
        if cfg.self_play:  # per environment step: episodes ended, and of them won by the learner
            info = {**info, "episodes_ended": done.astype(jnp.float32), "learner_wins": won.astype(jnp.float32)}
        returns = jnp.where(done[:, None], 0.0, returns)
        return (ts.obs, ts.state, new_mean, opponent, returns), (sample, info)

    return jax.lax.scan(step, (state.obs, state.env_state, state.mean, state.opponent, state.returns),
                        jax.random.split(key, cfg.rollout_len))


def q_loss(model: Model, cfg: MeanFieldConfig, params, target_params, batch: AgentSample, tau) -> jax.Array:
    """The mean squared TD error of Q(o, a, abar) on a batch of agent transitions [M, ...] (module step 2)."""
    chosen = action_values(model.q(params, batch.obs, batch.mean), batch.action)
    q_next = model.q(target_params, batch.next_obs, batch.mean)
    if cfg.released_code:
        v_next = double_q_max(model.q(params, batch.next_obs, batch.mean), q_next, batch.next_avail)
    elif cfg.mean_field:
        v_next = boltzmann_value(q_next, batch.next_avail, tau)
    else:
        v_next = masked_max(q_next, batch.next_avail)
    target = cfg.reward_scale * batch.reward + cfg.gamma * jnp.where(batch.terminated, 0.0, v_next)
    return jnp.mean(jnp.square(chosen - jax.lax.stop_gradient(target)))


def ac_loss(model: Model, cfg: MeanFieldConfig, params, batch: AgentSample) -> jax.Array:
    """The critic's squared TD error plus the actor's policy-gradient loss and entropy bonus on agent transitions
    [M, ...] (module step 3)."""
    q = model.q(params, batch.obs, batch.mean)
    logits = masked_q(model.logits(params, batch.obs), batch.avail)
    log_pi = jax.nn.log_softmax(logits, axis=-1)
    pi = jnp.exp(log_pi)
    next_pi = jax.nn.softmax(masked_q(model.logits(params, batch.next_obs), batch.next_avail), axis=-1)
    v_next = jnp.sum(next_pi * model.q(params, batch.next_obs, batch.mean), axis=-1)
    target = jax.lax.stop_gradient(cfg.reward_scale * batch.reward
                                   + cfg.gamma * jnp.where(batch.terminated, 0.0, v_next))
    chosen = action_values(q, batch.action)
    advantage = jax.lax.stop_gradient(chosen - jnp.sum(pi * q, axis=-1))
    entropy = -jnp.sum(jnp.where(pi > 0, pi * log_pi, 0.0), axis=-1)
    actor = -jnp.mean(action_values(log_pi, batch.action) * advantage) - cfg.entropy_coef * jnp.mean(entropy)
    return jnp.mean(jnp.square(chosen - target)) + actor


def init(view: LearnerView, model: Model, cfg: MeanFieldConfig, env_params, tx, slices, key) -> MeanFieldState:
    """Fresh networks per group (targets equal to them), empty replays and ``num_envs`` fresh episodes, every agent
    first acting on the uniform mean over its available actions."""
    k_env, k_net = jax.random.split(key)
    obs, env_state = jax.vmap(view.reset, in_axes=(0, None))(jax.random.split(k_env, cfg.num_envs), env_params)
    nets = {name: model.init(k) for (name, _), k in zip(slices, jax.random.split(k_net, len(slices)))}
    params = {name: nets[name] for name, _ in learning_slices(cfg, slices)}
    opponent = {name: nets[name] for name, _ in slices[1:]} if cfg.self_play else {}
    avail = obs.avail.astype(jnp.float32)
    mean = avail / jnp.sum(avail, axis=-1, keepdims=True)
    buffers = {}
    if cfg.family == "q":
        a = model.num_actions
        example = AgentSample(obs=jnp.zeros((model.obs_dim,)), avail=jnp.zeros((a,), bool),
                              action=jnp.zeros((), jnp.int32), mean=jnp.zeros((a,)), reward=jnp.zeros(()),
                              terminated=jnp.zeros((), bool), next_obs=jnp.zeros((model.obs_dim,)),
                              next_avail=jnp.zeros((a,), bool))
        buffers = {name: ReplayBuffer.create(example, cfg.buffer_size) for name, _ in learning_slices(cfg, slices)}
    return MeanFieldState(params=params, target_params=params, opt_state=tx.init(params), buffers=buffers, obs=obs,
                          env_state=env_state, mean=mean, step=jnp.zeros((), jnp.int32), opponent=opponent,
                          returns=jnp.zeros((cfg.num_envs, len(slices)), jnp.float32))


def update(view: LearnerView, model: Model, cfg: MeanFieldConfig, env_params, tx, slices, state: MeanFieldState,
           key):
    """One update (the module's steps 1-4) -> (new state, metrics)."""
    k_roll, k_sgd = jax.random.split(key)
    (obs, env_state, mean, opponent, returns), (traj, info) = collect(view, model, cfg, env_params, slices, state,
                                                                       k_roll)
    learners = learning_slices(cfg, slices)

    def agents_of(sl):
        """The group's agent transitions of this update, flattened: leaves [T * B * size, ...]."""
        return jax.tree.map(lambda x: x[:, :, sl].reshape((-1,) + x.shape[3:]), traj)

    buffers, learn = state.buffers, jnp.asarray(True)
    if cfg.family == "q":
        buffers = {name: state.buffers[name].add(agents_of(sl)) for name, sl in learners}
        learn = jnp.all(jnp.stack([b.can_sample(cfg.learning_starts) for b in buffers.values()]))

    def loss_fn(params, target_params, k):
        total = 0.0
        for (name, sl), kg in zip(learners, jax.random.split(k, len(learners))):
            if cfg.family == "q":
                batch = buffers[name].sample(kg, cfg.batch_size)
                total = total + q_loss(model, cfg, params[name], target_params[name], batch,
                                       temperature(cfg, state.step))
            else:
                total = total + ac_loss(model, cfg, params[name], agents_of(sl))
        return total

    def sgd_step(carry, k):
        params, target_params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, target_params, k)
        updates, new_opt = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        new_target = polyak_update(new_params, target_params, cfg.target_tau) if cfg.family == "q" else new_params
        new = (new_params, new_target, new_opt)
        return jax.tree.map(lambda a, b: jnp.where(learn, a, b), new, carry), loss

    (params, target_params, opt_state), losses = jax.lax.scan(
        sgd_step, (state.params, state.target_params, state.opt_state), jax.random.split(k_sgd, cfg.num_sgd))

    metrics = {"reward": jnp.mean(traj.reward), "reward_per_step": jnp.mean(traj.reward, axis=(0, 1)),
               "loss": jnp.mean(losses), "learning": learn.astype(jnp.int32),
               "temperature": temperature(cfg, state.step),
               **{name: jnp.mean(v) for name, v in info.items()}}
    new_state = MeanFieldState(params=params, target_params=target_params, opt_state=opt_state, buffers=buffers,
                               obs=obs, env_state=env_state, mean=mean, step=state.step + 1, opponent=opponent,
                               returns=returns)
    return new_state, metrics


def make_train(env, config: MeanFieldConfig, params=None) -> Trainer:
    env_params = env.default_params if params is None else params
    view = LearnerView(env)
    model = build_model(config, view.obs_dim, view.num_actions)
    statics = (view, model, config, env_params, optimiser(config), group_slices(env))
    return Trainer(init=functools.partial(init, *statics), update=functools.partial(update, *statics),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update,
                   xla=XlaOptions(quick_backend=True))
