"""DGN's training loop (Jiang et al., 2020, section 3.4; released code PKU-RL/DGN) as one update:

1. act: ``rollout_len`` steps of ``num_envs`` environments; every agent takes the epsilon-greedy action of
   Q(O_{+i}, . ; theta), its neighbourhood N(i) (the ``Neighbourhood`` capability) read from the state it acts in;
2. store: each joint transition (O, N, a, r, O', N', terminated) in the replay, N' being the neighbourhoods of the
   state reached before any automatic reset (with ``fixed_relation``, the paper's choice, N' = N); terminated is
   per agent: the episode's, or the agent's own end (``AgentEpisodes``: a delivered packet; the released routing
   code's ``done``);
3. learn (``num_sgd`` times, once the replay holds ``learning_starts``): on a batch of S transitions

       y_i = r_i + gamma * (1 - terminated_i) * max_a' Q(O'_{+i}, a'; theta')           (theta': the target network)
       L(theta) = 1/S sum 1/N sum_i (y_i - Q(O_{+i}, a_i; theta))^2
                  + lambda * 1/S sum 1/N sum_i 1/H sum_h KL(G_h(O'_{+i}; theta') || G_h(O_{+i}; theta))

   where G_h is head h's attention distribution over N(i) in the upper relation kernel (DGN-R, ``relation_reg`` =
   lambda; the released PyTorch code's ``kl_div(log_softmax(att_t), softmax(att_target_t+1))``, whose 'mean'
   reduction also divides by the number of slots K), then a Polyak step theta' <- tau theta + (1 - tau) theta';
4. log: the reward per step (mean over agents, and per agent), the environment's scalar ``info`` (battle: kills
   and deaths per step), the TD and KL terms, epsilon.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from algos.graph.config import DGNConfig
from algos.graph.model import DGN, build_model
from jaxmarl_core import optim
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.qnetworks import action_values, epsilon_greedy, masked_max
from jaxmarl_core.replay import ReplayBuffer
from jaxmarl_core.rollout import agents_terminated
from jaxmarl_core.targets import polyak_update
from jaxmarl_core.training import Trainer, XlaOptions


@struct.dataclass
class GraphSample:
    """One joint transition: obs [N, D], idx int32 [N, K], mask bool [N, K], avail bool [N, A], action int32 [N],
    reward [N], terminated bool [N] (``rollout.agents_terminated``), then next_obs, next_idx, next_mask, next_avail
    of the state reached."""

    obs: jax.Array
    idx: jax.Array
    mask: jax.Array
    avail: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    next_obs: jax.Array
    next_idx: jax.Array
    next_mask: jax.Array
    next_avail: jax.Array


@struct.dataclass
class GraphState:
    params: Any
    target_params: Any
    opt_state: Any
    buffer: ReplayBuffer
    obs: LearnerObs  # leaves [B, ...]
    env_state: Any  # [B, ...]
    step: jax.Array  # int32: updates done


def optimiser(cfg: DGNConfig) -> optax.GradientTransformation:
    return optim.clipped(optax.adam(cfg.lr), cfg.max_grad_norm)


def epsilon(cfg: DGNConfig, step: jax.Array) -> jax.Array:
    """epsilon_start * epsilon_decay ** (whole periods of environment steps done), at least epsilon_end."""
    periods = (step * cfg.steps_per_update) // cfg.epsilon_period
    return jnp.maximum(cfg.epsilon_end, cfg.epsilon_start * cfg.epsilon_decay ** periods.astype(jnp.float32))


def attention_kl(logits_p: jax.Array, logits_q: jax.Array, mask: jax.Array) -> jax.Array:
    """KL(q || p) of attention distributions over K slots: logits [..., H, K] (masked slots at the lowest finite
    value), mask bool [..., K] -> [..., H]; sum over the unmasked slots of q (log q - log p)."""
    log_p = jax.nn.log_softmax(logits_p, axis=-1)
    log_q = jax.nn.log_softmax(logits_q, axis=-1)
    terms = jnp.exp(log_q) * (log_q - log_p)
    return jnp.sum(jnp.where(mask[..., None, :], terms, 0.0), axis=-1)


def dgn_loss(model: DGN, cfg: DGNConfig, params, target_params, batch: GraphSample):
    """The module's step 3 on a batch (leaves [S, ...]) -> (loss, (td, kl))."""
    q, logits = model.apply(params, batch.obs, batch.idx, batch.mask)
    next_idx, next_mask = ((batch.idx, batch.mask) if cfg.fixed_relation else (batch.next_idx, batch.next_mask))
    q_next, logits_next = model.apply(target_params, batch.next_obs, next_idx, next_mask)
    bootstrap = jnp.where(batch.terminated, 0.0, masked_max(q_next, batch.next_avail))
    y = jax.lax.stop_gradient(batch.reward + cfg.gamma * bootstrap)
    td = jnp.mean(jnp.square(y - action_values(q, batch.action)))
    kl = jnp.mean(attention_kl(logits[-1], jax.lax.stop_gradient(logits_next[-1]), next_mask))
    return td + cfg.relation_reg * kl, (td, kl)


def collect(view: LearnerView, model: DGN, cfg: DGNConfig, env_params, state: GraphState, key):
    """Steps 1-2: ``rollout_len`` steps of the ``num_envs`` environments -> ((obs, env_state) after them,
    (transitions [T, B, ...], scalar info [T, B]))."""
    env = view.env
    neighbours = jax.vmap(lambda s: env.neighbours(s, env_params))
    step_env = jax.vmap(view.step_with_final_state, in_axes=(0, 0, 0, None))
    eps = epsilon(cfg, state.step)

    def step(carry, k):
        obs, env_state = carry
        k_act, k_env = jax.random.split(k)
        idx, mask = neighbours(env_state)
        q, _ = model.apply(state.params, obs.obs, idx, mask)
        actions = epsilon_greedy(k_act, q, obs.avail, eps)
        ts, final_state = step_env(jax.random.split(k_env, cfg.num_envs), env_state, actions, env_params)
        next_idx, next_mask = neighbours(final_state)
        final = ts.info["final_obs"]
        sample = GraphSample(obs=obs.obs, idx=idx, mask=mask, avail=obs.avail, action=actions, reward=ts.reward,
                             terminated=agents_terminated(env, ts), next_obs=final.obs, next_idx=next_idx,
                             next_mask=next_mask, next_avail=final.avail)
        return (ts.obs, ts.state), (sample, scalar_info(ts.info))

    return jax.lax.scan(step, (state.obs, state.env_state), jax.random.split(key, cfg.rollout_len))


def scalar_info(info: dict) -> dict:
    """A batched step's ``info`` entries that are one number per environment ([B]), ``final_obs`` left out."""
    return {name: v for name, v in info.items() if name != "final_obs" and v.ndim == 1}


def reset_envs(view: LearnerView, num_envs: int, env_params, key):
    """``num_envs`` fresh episodes -> (LearnerObs leaves [B, ...], environment states [B, ...])."""
    return jax.vmap(view.reset, in_axes=(0, None))(jax.random.split(key, num_envs), env_params)


def init(view: LearnerView, model: DGN, cfg: DGNConfig, env_params, tx, key) -> GraphState:
    """Fresh network (target equal to it), an empty replay and ``num_envs`` fresh episodes."""
    k_env, k_net = jax.random.split(key)
    obs, env_state = reset_envs(view, cfg.num_envs, env_params, k_env)
    idx, mask = jax.vmap(lambda s: view.env.neighbours(s, env_params))(env_state)
    params = model.init(k_net, obs.obs[0], idx[0], mask[0])
    first = jax.tree.map(lambda x: x[0], obs)
    example = GraphSample(obs=first.obs, idx=idx[0], mask=mask[0], avail=first.avail,
                          action=jnp.zeros(first.obs.shape[:1], jnp.int32),
                          reward=jnp.zeros(first.obs.shape[:1], jnp.float32),
                          terminated=jnp.zeros(first.obs.shape[:1], bool),
                          next_obs=first.obs, next_idx=idx[0], next_mask=mask[0], next_avail=first.avail)
    return GraphState(params=params, target_params=params, opt_state=tx.init(params),
                      buffer=ReplayBuffer.create(example, cfg.buffer_size), obs=obs, env_state=env_state,
                      step=jnp.zeros((), jnp.int32))


def update(view: LearnerView, model: DGN, cfg: DGNConfig, env_params, tx, state: GraphState, key):
    """One update (the module's steps 1-4) -> (new state, metrics)."""
    k_roll, k_sgd = jax.random.split(key)
    (obs, env_state), (traj, info) = collect(view, model, cfg, env_params, state, k_roll)
    buffer = state.buffer.add(jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), traj))
    learn = buffer.can_sample(cfg.learning_starts)
    grad_fn = jax.value_and_grad(functools.partial(dgn_loss, model, cfg), has_aux=True)

    def sgd_step(carry, k):
        params, target_params, opt_state = carry
        (_, (td, kl)), grads = grad_fn(params, target_params, buffer.sample(k, cfg.batch_size))
        updates, new_opt = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        new = (new_params, polyak_update(new_params, target_params, cfg.target_tau), new_opt)
        return jax.tree.map(lambda a, b: jnp.where(learn, a, b), new, carry), (td, kl)

    (params, target_params, opt_state), (td, kl) = jax.lax.scan(
        sgd_step, (state.params, state.target_params, state.opt_state), jax.random.split(k_sgd, cfg.num_sgd))
    metrics = {"reward": jnp.mean(traj.reward), "reward_per_step": jnp.mean(traj.reward, axis=(0, 1)),
               "td_loss": jnp.mean(td), "relation_kl": jnp.mean(kl),
               "learning": learn.astype(jnp.int32), "epsilon": epsilon(cfg, state.step),
               **{name: jnp.mean(v) for name, v in info.items()}}
    new_state = GraphState(params=params, target_params=target_params, opt_state=opt_state, buffer=buffer,
                           obs=obs, env_state=env_state, step=state.step + 1)
    return new_state, metrics


def assemble(init_fn, update_fn, build, make_optimiser, env, config, params=None) -> Trainer:
    """The Trainer of a graph learner whose ``init_fn(view, model, config, env_params, tx, key)`` and
    ``update_fn(view, model, config, env_params, tx, state, key)`` take the model ``build(config, num_actions)``
    and the optimiser ``make_optimiser(config)``."""
    env_params = env.default_params if params is None else params
    view = LearnerView(env)
    model = build(config, view.num_actions)
    statics = (view, model, config, env_params, make_optimiser(config))
    return Trainer(init=functools.partial(init_fn, *statics), update=functools.partial(update_fn, *statics),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update,
                   seed_batch=1, init_per_seed=True, xla=XlaOptions(quick_backend=True))


def make_train(env, config: DGNConfig, params=None) -> Trainer:
    return assemble(init, update, build_model, optimiser, env, config, params)
