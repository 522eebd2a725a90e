"""Independent tabular Q-learning, policy hill-climbing (PHC) and WoLF-PHC (Bowling & Veloso, 2002).

Every agent keeps its own table Q_i[s, a_i] (its own action only) and learns online, one environment step at a time:

    Q_i(s, a) <- Q_i(s, a) + alpha * (r_i + gamma * max_a' Q_i(s', a') - Q_i(s, a))

Q-learning acts epsilon-greedily on Q_i. PHC keeps a mixed policy pi_i(s) that climbs towards the greedy action by
delta: pi(s, a) moves by -min(pi(s, a), delta / (|A| - 1)) for every non-greedy a, and the greedy action gains what
the others lose. WoLF-PHC also keeps the average policy (pi_bar(s) += (pi(s) - pi_bar(s)) / C(s)) and uses the small
step delta_w while "winning" (sum_a pi(s, a) Q(s, a) > sum_a pi_bar(s, a) Q(s, a)) and delta_l = lose_ratio *
delta_w otherwise. Actions are drawn from (1 - epsilon) pi + epsilon uniform. Step sizes decay harmonically,
rate_t = rate_0 / (1 + t / decay_steps), so the policy moves on a slower time-scale than Q (delta_t / alpha_t -> 0).

Works on any env with discrete actions: one-shot matrix games (one state) and tabular stochastic games
(``state_index``/``num_states``). One update is ``steps_per_update`` environment steps; metrics are logged per update.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core import tabular
from jaxmarl_core.capabilities import DeviationGains, Discounted, MatrixPayoffs, TabularStates, has, missing_any
from jaxmarl_core.config import OnlineConfig, require_nonnegative, require_positive
from jaxmarl_core.policies import sample_categorical
from jaxmarl_core.spaces import Discrete
from jaxmarl_core.training import Trainer


@dataclasses.dataclass(frozen=True)
class TabularQConfig(OnlineConfig):
    total_steps: int = 200_000  # environment steps per seed
    steps_per_update: int = 1_000  # environment steps between logged metrics
    gamma: float = 0.9
    lr: float = 0.1  # alpha at t = 0
    lr_decay_steps: float = 100_000.0  # alpha_t = lr / (1 + t / lr_decay_steps); 0: constant
    epsilon: float = 0.05  # exploration: actions from (1 - epsilon) pi + epsilon uniform
    q_init: float = 0.0  # initial Q (Littman's soccer Q-learners: 1)

    def validate(self, env) -> None:
        super().validate(env)
        require_positive(self, "lr")
        for name in ("lr_decay_steps", "gamma", "epsilon"):
            require_nonnegative(self, name)
        if self.gamma > 1 or self.epsilon > 1:
            raise ValueError(f"gamma and epsilon must lie in [0, 1], got {self.gamma} and {self.epsilon}")


@dataclasses.dataclass(frozen=True)
class PHCConfig(TabularQConfig):
    policy_lr: float = 0.0005  # delta (delta_w under WoLF) at t = 0
    policy_decay_steps: float = 20_000.0  # delta_t = policy_lr / (1 + t / policy_decay_steps); 0: constant
    lose_ratio: float = 2.0  # delta_l / delta_w
    wolf: bool = True  # False: PHC with the single step delta

    def validate(self, env) -> None:
        super().validate(env)
        require_positive(self, "policy_lr")
        require_nonnegative(self, "policy_decay_steps")
        if self.lose_ratio < 1:
            raise ValueError(f"lose_ratio (delta_l / delta_w) must be >= 1, got {self.lose_ratio}")


@struct.dataclass
class PHCState:
    q: jax.Array  # [N, S, A] each agent's own-action values
    pi: jax.Array  # [N, S, A] current policies (greedy on Q for Q-learning)
    avg_pi: jax.Array  # [N, S, A] average policies
    counts: jax.Array  # [N, S] visits
    env_state: object
    t: jax.Array  # int32: environment steps taken


def check_env(env) -> str | None:
    reason = missing_any(env, TabularStates, MatrixPayoffs)
    if reason:
        return f"{reason} (a tabular game: a stochastic game's state index or a one-shot matrix game)"
    if not all(isinstance(space, Discrete) for space in env.action_spaces):
        return f"needs discrete actions; {env.name} has continuous ones"
    if len(set(space.n for space in env.action_spaces)) != 1:
        return f"needs the same number of actions for every agent; {env.name} has different ones"
    return None


def default_config(env, variant: str) -> TabularQConfig:
    gamma = float(env.discount) if has(env, Discounted) else 0.9  # the game's own discount where it has one
    if variant == "iql_tabular":
        return TabularQConfig(gamma=gamma)
    return PHCConfig(gamma=gamma, wolf=variant == "wolf_phc")


def climb(pi: jax.Array, q: jax.Array, delta: jax.Array) -> jax.Array:
    """PHC's step of pi [..., A] towards argmax q [..., A] by delta [...], staying on the simplex."""
    num_actions = pi.shape[-1]
    greedy = jax.nn.one_hot(jnp.argmax(q, axis=-1), num_actions, dtype=bool)
    moved = jnp.minimum(pi, delta[..., None] / (num_actions - 1))
    moved = jnp.where(greedy, 0.0, moved)
    return pi - moved + greedy * jnp.sum(moved, axis=-1, keepdims=True)


def make_train(env, config: TabularQConfig, params=None) -> Trainer:
    """Q-learning for a ``TabularQConfig``, (WoLF-)PHC for a ``PHCConfig``."""
    params = env.default_params if params is None else params
    hill_climb = isinstance(config, PHCConfig)
    n, num_actions, num_s = env.num_agents, env.num_actions, tabular.num_states(env)
    agents = jnp.arange(n)

    def init(key):
        _, env_state = env.reset(key, params)
        uniform = jnp.full((n, num_s, num_actions), 1.0 / num_actions)
        return PHCState(q=jnp.full((n, num_s, num_actions), config.q_init), pi=uniform, avg_pi=uniform,
                        counts=jnp.zeros((n, num_s)), env_state=env_state, t=jnp.zeros((), jnp.int32))

    def behaviour(ls: PHCState, s, avail):  # [N, A]
        pi = ls.pi[agents, s] if hill_climb else tabular.greedy(ls.q[agents, s], avail)
        return tabular.explore(pi, avail, config.epsilon)

    def act(ls, s, avail, key):
        return sample_categorical(key, jnp.log(behaviour(ls, s, avail)))

    def learn(ls: PHCState, s, avail, actions, reward, s_next, avail_next, terminated):
        alpha = tabular.harmonic(config.lr, config.lr_decay_steps, ls.t)
        q = tabular.q_learning(ls.q, s, actions, reward, s_next, avail_next, terminated, alpha, config.gamma)
        counts = ls.counts.at[agents, s].add(1.0)
        pi_s, q_s = ls.pi[agents, s], q[agents, s]  # [N, A]
        avg_s = ls.avg_pi[agents, s]
        avg_s = avg_s + (pi_s - avg_s) / counts[agents, s][:, None]
        if hill_climb:
            delta = jnp.full((n,), tabular.harmonic(config.policy_lr, config.policy_decay_steps, ls.t))
            if config.wolf:
                winning = jnp.sum(pi_s * q_s, axis=-1) > jnp.sum(avg_s * q_s, axis=-1)
                delta = jnp.where(winning, delta, config.lose_ratio * delta)
            pi_s = climb(pi_s, jnp.where(avail, q_s, -jnp.inf), delta)  # towards the best legal action
        else:
            pi_s = tabular.greedy(q_s, avail)
        return PHCState(q=q, pi=ls.pi.at[agents, s].set(pi_s), avg_pi=ls.avg_pi.at[agents, s].set(avg_s),
                        counts=counts, env_state=ls.env_state, t=ls.t + 1)

    s0 = tabular.state_index(env, env.reset(jax.random.PRNGKey(0), params)[1])  # a start state, for the metrics

    def update(ls: PHCState, key):
        ls, env_state, metrics = tabular.run_online(env, params, act, learn, ls, ls.env_state, key,
                                                    config.steps_per_update)
        ls = ls.replace(env_state=env_state)
        policy = ls.pi[:, s0]
        metrics = {**metrics, "policy": policy, "avg_policy": ls.avg_pi[:, s0]}
        if has(env, DeviationGains):
            metrics["nash_conv"] = jnp.sum(env.deviation_gains(policy, params))
        return ls, metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates,
                   env_steps_per_update=config.steps_per_update)
