"""Tabular mean-field Q-learning, the learner of the Ising experiment (Yang et al., 2018, section 5.1; released code
mlii/mfrl, ``main_MFQ_Ising.py``).

Every agent j keeps a table Q_j[k, a] over its own binary action a and its neighbours' mean action discretised to
``mean_bins`` levels, k = round(abar_j[1] * (mean_bins - 1)) (abar_j[1]: the fraction of its neighbours that took
action 1; on the Ising torus with 5 bins, k is the number of up neighbours, the code's table index). One step:

1. acting: each agent samples a ~ pi_j(a | abar_prev) = softmax_a(Q_j[k_prev, a] / tau), Boltzmann at temperature
   tau on the mean action of the neighbours' previous actions (uniformly random ones before the first step, as the
   code's random initial spins; a new episode continues from the last actions, as in a repeated game);
2. the new mean action abar_j = mean of the neighbours' one-hot actions of this step (``NeighbourMeanAction``);
3. the mean-field value of the next step, v_j = sum_a pi_j(a | abar_j) Q_j[k, a] with k the bin of abar_j (the mean
   action the agent acts on next);
4. Q_j[k, a] <- Q_j[k, a] + lr * (r_j + gamma * (1 - terminated) * v_j - Q_j[k, a]) for a ``update_fraction`` of the
   agents drawn at random (the code's ``act_rate``), k the bin of this step's mean action (``mean_action="current"``,
   the paper's Q(s, a, abar)) or of the previous one that the agent acted on (``"previous"``, the released code's
   index). The code's defaults: gamma = 0 (the reward alone), lr = 0.1, 10,000 steps.

One update is ``steps_per_update`` environment steps; metrics are the means over its steps of the environment's
scalar ``info`` entries (the Ising order parameter) and of the rewards.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.capabilities import NeighbourMeanAction, missing
from jaxmarl_core.config import OnlineConfig, require_nonnegative, require_positive, require_positive_int
from jaxmarl_core.qnetworks import boltzmann_value
from jaxmarl_core.spaces import Discrete
from jaxmarl_core.training import Trainer

MEAN_ACTIONS = ("current", "previous")


@dataclasses.dataclass(frozen=True)
class TabularMFQConfig(OnlineConfig):
    total_steps: int = 10_000  # the code's time steps (one episode of the Ising game)
    steps_per_update: int = 100
    temperature: float = 1.0  # tau of the Boltzmann policy
    lr: float = 0.1
    gamma: float = 0.0  # the code learns the immediate reward
    mean_bins: int = 5  # levels of the discretised mean action (the code: neighbours + 1)
    mean_action: str = "current"  # "current" (the paper's Q(s, a, abar)) or "previous" (the code's table index)
    update_fraction: float = 1.0  # agents updated per step (the code's act_rate)

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("temperature", "lr", "update_fraction"):
            require_positive(self, name)
        require_nonnegative(self, "gamma")
        require_positive_int(self, "mean_bins")
        if self.mean_bins < 2:
            raise ValueError(f"mean_bins must be at least 2, got {self.mean_bins}")
        if self.gamma >= 1 or self.update_fraction > 1:
            raise ValueError(f"gamma must lie in [0, 1) and update_fraction in (0, 1], got {self.gamma} and "
                             f"{self.update_fraction}")
        if self.mean_action not in MEAN_ACTIONS:
            raise ValueError(f"mean_action must be one of {MEAN_ACTIONS}, got {self.mean_action!r}")


@struct.dataclass
class TabularMFQState:
    q: jax.Array  # [N, mean_bins, 2]: each agent's table
    prev_actions: jax.Array  # int32[N]: the previous step's actions (random before the first)
    env_state: object
    t: jax.Array  # int32: environment steps taken


def check_env(env) -> str | None:
    reason = missing(env, NeighbourMeanAction)
    if reason:
        return reason
    if not all(isinstance(s, Discrete) and s.n == 2 for s in env.action_spaces):
        return f"the tabular MF-Q discretises the mean of binary actions (Discrete(2)); {env.name} has other actions"
    return None


def default_config(env) -> TabularMFQConfig:
    return TabularMFQConfig()


def mean_bin(mean_action: jax.Array, bins: int) -> jax.Array:
    """[..., 2] mean one-hot action -> int32[...]: round(abar[1] * (bins - 1))."""
    return jnp.round(mean_action[..., 1] * (bins - 1)).astype(jnp.int32)


def _step(env, cfg: TabularMFQConfig, env_params, s: TabularMFQState, key):
    """One environment step and table update (the module's steps 1-4) -> (state, (reward [N], info scalars))."""
    k_act, k_env, k_sub = jax.random.split(key, 3)
    n = env.num_agents
    agents = jnp.arange(n)
    k_prev_bin = mean_bin(env.neighbour_mean_action(s.env_state, s.prev_actions, env_params), cfg.mean_bins)
    actions = jax.random.categorical(k_act, s.q[agents, k_prev_bin] / cfg.temperature).astype(jnp.int32)  # 1.
    ts = env.step(k_env, s.env_state, actions, env_params)
    k_bin = mean_bin(env.neighbour_mean_action(s.env_state, actions, env_params), cfg.mean_bins)  # 2.
    v_next = boltzmann_value(s.q[agents, k_bin], jnp.ones((n, 2), bool), cfg.temperature)  # 3.
    target = ts.reward + cfg.gamma * jnp.where(ts.terminated, 0.0, v_next)
    row = k_bin if cfg.mean_action == "current" else k_prev_bin
    chosen = jax.random.permutation(k_sub, n) < int(round(cfg.update_fraction * n))  # 4.
    old = s.q[agents, row, actions]
    q = s.q.at[agents, row, actions].set(jnp.where(chosen, old + cfg.lr * (target - old), old))
    info = {name: v for name, v in ts.info.items() if name != "final_obs" and jnp.ndim(v) == 0}
    return TabularMFQState(q=q, prev_actions=actions, env_state=ts.state, t=s.t + 1), (ts.reward, info)


def init(env, cfg: TabularMFQConfig, env_params, key) -> TabularMFQState:
    k_env, k_prev = jax.random.split(key)
    _, env_state = env.reset(k_env, env_params)
    n = env.num_agents
    return TabularMFQState(q=jnp.zeros((n, cfg.mean_bins, 2)), prev_actions=jax.random.randint(k_prev, (n,), 0, 2),
                           env_state=env_state, t=jnp.zeros((), jnp.int32))


def update(env, cfg: TabularMFQConfig, env_params, state: TabularMFQState, key):
    """``steps_per_update`` steps -> (state, metrics: the steps' mean reward per agent [N] and overall, each scalar
    ``info`` entry's mean, the agents' mean table [mean_bins, 2])."""
    state, (rewards, info) = jax.lax.scan(functools.partial(_step, env, cfg, env_params), state,
                                          jax.random.split(key, cfg.steps_per_update))
    metrics = {"reward": jnp.mean(rewards), "reward_per_step": jnp.mean(rewards, axis=0),
               **{name: jnp.mean(v) for name, v in info.items()}, "q_mean": jnp.mean(state.q, axis=0)}
    return state, metrics


def make_train(env, config: TabularMFQConfig, params=None) -> Trainer:
    env_params = env.default_params if params is None else params
    statics = (env, config, env_params)
    return Trainer(init=functools.partial(init, *statics), update=functools.partial(update, *statics),
                   num_updates=config.num_updates, env_steps_per_update=config.steps_per_update)
