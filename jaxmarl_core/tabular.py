"""Tabular games: exact models of small two-player stochastic games, value iteration on them, and the online
loop that tabular learners (Q-learning, PHC, Minimax-Q, ...) share.

A tabular stochastic game (docs/design.md, "Capabilities") exposes ``num_states``, ``state_index(state) -> int32`` and
``tabular_model(params) -> TabularModel``: the transition and expected-reward tensors over the state indices.
The episode's end is the probability mass missing from ``transition`` (goals, a draw, a terminal step), so values
are expected discounted sums up to the end of the episode. A one-shot matrix game is the tabular game with one state.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core import linalg
from jaxmarl_core.capabilities import TabularStates
from jaxmarl_core.solvers import restrict, select_nash, zero_sum_value


@struct.dataclass
class TabularModel:
    transition: jax.Array  # [S, A, A, S]: P(next state s', episode goes on | s, a_0, a_1); rows sum to <= 1
    reward: jax.Array  # [S, A, A, 2]: expected reward of each player for the step (s, a_0, a_1)
    initial: jax.Array  # [S]: distribution of an episode's first state
    avail: jax.Array | None = None  # [S, 2, A] bool: each player's legal actions (None: all of them)


def compiled_model(build: Callable) -> Callable:
    """Decorates an environment's ``tabular_model(self, params)``: one XLA program per environment (which must be
    hashable) instead of running its vmapped rules op by op, so capability checks and ``--list`` stay instant;
    ``params`` None means ``self.default_params``. Inside a traced function it is traced like any other call."""
    program = jax.jit(build, static_argnums=0)

    @functools.wraps(build)
    def tabular_model(self, params=None) -> TabularModel:
        return program(self, self.default_params if params is None else params)

    return tabular_model


def q_values(model: TabularModel, values: jax.Array, gamma: float) -> jax.Array:
    """Joint-action values Q[s, a_0, a_1, i] = r_i + gamma * sum_s' P(s' | s, a) V_i(s'); values: [S, 2]."""
    return model.reward + gamma * jnp.einsum("sabt,ti->sabi", model.transition, values)


def minimax_values(model: TabularModel, gamma: float, num_iters: int = 200) -> tuple[jax.Array, jax.Array,
                                                                                      jax.Array]:
    """Shapley's value iteration for a zero-sum game (player 0 maximises its reward, player 1 receives its negative):
    -> (V [S] player 0's minimax values, x [S, A] player 0's and y [S, A] player 1's maximin strategies)."""

    def backup(v):
        q = q_values(model, jnp.stack([v, -v], axis=-1), gamma)[..., 0]  # [S, A, A]
        return jax.vmap(zero_sum_value)(q)

    def body(v, _):
        return backup(v)[0], None

    v, _ = jax.lax.scan(body, jnp.zeros(model.reward.shape[0], jnp.float32), None, length=num_iters)
    value, x, y = backup(v)
    return value, x, y


def legal(model: TabularModel) -> jax.Array:
    """[S, 2, A] bool: each player's legal actions in each state (all of them where the model gives none)."""
    if model.avail is not None:
        return model.avail
    num_s, num_a = model.reward.shape[:2]
    return jnp.ones((num_s, 2, num_a), bool)


def nash_values(model: TabularModel, gamma: float, selection: str = "first", player: int = 0,
                num_iters: int = 300, values: jax.Array | None = None, order: str = "support",
                labels: tuple[int, ...] | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Value iteration of a general-sum game's Nash Q-values (Hu & Wellman 2003, eq. 5): V(s) <- the values of the
    stage game Q(s) = (Q_0(s), Q_1(s)) at the equilibrium that ``selection`` picks (``solvers.select_nash`` with
    ``order`` and Lemke-Howson's ``labels``, legal actions only), from ``values`` [S, 2] (zeros where None).
    -> (V [S, 2], x [S, A], y [S, A]): the values and both players' stage strategies at the last iterate."""

    def backup(v):
        q = q_values(model, v, gamma)  # [S, A, A, 2]

        def stage(q_s, avail_s):
            A, B = restrict(q_s[..., 0], q_s[..., 1], avail_s[0], avail_s[1])
            x, y = select_nash(A, B, selection, player, order, labels, jnp.concatenate(avail_s))
            return jnp.stack([x @ q_s[..., 0] @ y, x @ q_s[..., 1] @ y]), x, y

        return jax.vmap(stage)(q, legal(model))

    def body(v, _):
        return backup(v)[0], None

    start = jnp.zeros(model.reward.shape[:1] + (2,), jnp.float32) if values is None else values
    v, _ = jax.lax.scan(body, start, None, length=num_iters)
    return backup(v)


def policy_values(model: TabularModel, x: jax.Array, y: jax.Array, gamma: float) -> jax.Array:
    """[S, 2]: each player's exact discounted value when players 0 and 1 follow the stationary policies
    x [S, A] and y [S, A]."""
    transition = jnp.einsum("sabt,sa,sb->st", model.transition, x, y)
    reward = jnp.einsum("sabi,sa,sb->si", model.reward, x, y)
    eye = jnp.eye(transition.shape[0], dtype=transition.dtype)
    return linalg.solve(eye - gamma * transition, reward)


def best_response(model: TabularModel, policy: jax.Array, player: int, gamma: float,
                  num_iters: int = 500) -> tuple[jax.Array, jax.Array]:
    """A best response of ``player`` (0 or 1) to the other player's fixed stationary ``policy`` [S, A], by value
    iteration on the induced single-agent MDP over its legal actions: -> (values [S], a greedy deterministic policy
    [S, A])."""
    if player == 0:
        transition = jnp.einsum("sabt,sb->sat", model.transition, policy)
        reward = jnp.einsum("sab,sb->sa", model.reward[..., 0], policy)
    else:
        transition = jnp.einsum("sabt,sa->sbt", model.transition, policy)
        reward = jnp.einsum("sab,sa->sb", model.reward[..., 1], policy)

    avail = legal(model)[:, player]  # [S, A]

    def body(v, _):
        return jnp.max(jnp.where(avail, reward + gamma * transition @ v, -jnp.inf), axis=-1), None

    v, _ = jax.lax.scan(body, jnp.zeros(reward.shape[0], jnp.float32), None, length=num_iters)
    q = jnp.where(avail, reward + gamma * transition @ v, -jnp.inf)
    return jnp.max(q, axis=-1), jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1])


def nash_conv(model: TabularModel, x: jax.Array, y: jax.Array, gamma: float) -> jax.Array:
    """Sum over players of what a best response gains over the profile (x, y), from the initial distribution."""
    values = policy_values(model, x, y, gamma)  # [S, 2]
    br0 = best_response(model, y, 0, gamma)[0]
    br1 = best_response(model, x, 1, gamma)[0]
    return model.initial @ (br0 - values[:, 0]) + model.initial @ (br1 - values[:, 1])


def num_states(env) -> int:
    """Number of tabular states of ``env`` (1 without the ``TabularStates`` capability: a one-shot matrix game)."""
    return int(env.num_states) if isinstance(env, TabularStates) else 1


def state_index(env, state: Any) -> jax.Array:
    """int32 scalar index of ``state`` in [0, num_states(env))."""
    if isinstance(env, TabularStates):
        return jnp.asarray(env.state_index(state), jnp.int32)
    return jnp.zeros((), jnp.int32)


def harmonic(base: float, decay_steps: float, t: jax.Array) -> jax.Array:
    """The step-size schedule base / (1 + t / decay_steps); constant where decay_steps is 0."""
    if decay_steps == 0:
        return jnp.asarray(base, jnp.float32)
    return base / (1.0 + jnp.asarray(t, jnp.float32) / decay_steps)


def run_online(env, params, act: Callable, learn: Callable, learner: Any, env_state: Any, key: jax.Array,
               num_steps: int) -> tuple[Any, Any, dict]:
    """``num_steps`` environment steps of an online learner under ``lax.scan``.

    act(learner, s, avail, key) -> actions [N] in state index s, where avail bool [N, A] are the legal actions
    (``env.avail_actions``); learn(learner, s, avail, actions, reward [N], s_next, avail_next, terminated) ->
    learner, where s_next indexes the state the step reached before any automatic reset (bootstrap from it unless
    terminated) and avail_next [N, A] are its legal actions.
    Returns (learner, env_state, metrics): ``reward_per_step`` [N] and ``episodes`` (ended).
    """

    def step(carry, k):
        learner, env_state = carry
        k_act, k_env = jax.random.split(k)
        s = state_index(env, env_state)
        avail = env.avail_actions(env_state, params)
        actions = act(learner, s, avail, k_act)
        ts, final_state = env.step_with_final_state(k_env, env_state, actions, params)
        learner = learn(learner, s, avail, actions, ts.reward, state_index(env, final_state),
                        env.avail_actions(final_state, params), ts.terminated)
        return (learner, ts.state), (ts.reward, ts.done)

    (learner, env_state), (rewards, done) = jax.lax.scan(step, (learner, env_state),
                                                         jax.random.split(key, num_steps))
    return learner, env_state, {"reward_per_step": jnp.mean(rewards, axis=0), "episodes": jnp.sum(done)}


def explore(pi: jax.Array, avail: jax.Array, epsilon: float) -> jax.Array:
    """(1 - epsilon) pi + epsilon * uniform over the legal actions: pi [..., A], avail bool [..., A] -> [..., A]."""
    legal_actions = avail.astype(pi.dtype)
    return (1.0 - epsilon) * pi + epsilon * legal_actions / jnp.sum(legal_actions, axis=-1, keepdims=True)


def greedy(q: jax.Array, avail: jax.Array) -> jax.Array:
    """One-hot [..., A] of the best legal action of q [..., A] (avail bool [..., A]; the first among ties)."""
    return jax.nn.one_hot(jnp.argmax(jnp.where(avail, q, -jnp.inf), axis=-1), q.shape[-1])


def q_learning(q: jax.Array, s: jax.Array, actions: jax.Array, reward: jax.Array, s_next: jax.Array,
               avail_next: jax.Array, terminated: jax.Array, lr: jax.Array, gamma: float) -> jax.Array:
    """Each agent's one-step Q-learning update of its own table q [N, S, A] at (s, actions [N]), bootstrapping from
    the best legal action (avail_next bool [N, A]) of s_next -> q."""
    agents = jnp.arange(q.shape[0])
    best_next = jnp.max(jnp.where(avail_next, q[agents, s_next], -jnp.inf), axis=-1)
    target = reward + gamma * (1.0 - terminated) * best_next
    old = q[agents, s, actions]
    return q.at[agents, s, actions].set(old + lr * (target - old))


def play(env, params, pi0: jax.Array, pi1: jax.Array, key: jax.Array, episodes: int, max_len: int = 300):
    """Play ``episodes`` games of a zero-sum tabular game where players 0 and 1 follow the stationary policies
    pi0, pi1 [S, A] (one episode each, at most ``max_len`` steps): -> (fraction won by player 0, fraction won by
    player 1, fraction drawn or unfinished), a win being an episode that ends with a positive reward."""

    def one(k):
        k_reset, k_run = jax.random.split(k)
        _, state = env.reset(k_reset, params)

        def step(carry, k):
            state, result, running = carry
            k_act, k_env = jax.random.split(k)
            s = state_index(env, state)
            logits = jnp.log(jnp.stack([pi0[s], pi1[s]]))
            actions = jax.random.categorical(k_act, logits)
            ts = env.step(k_env, state, actions, params)
            result = jnp.where(running & ts.terminated, jnp.sign(ts.reward[0]), result)
            return (ts.state, result, running & ~ts.done), None

        (_, result, _), _ = jax.lax.scan(step, (state, jnp.float32(0), jnp.bool_(True)),
                                         jax.random.split(k_run, max_len))
        return result

    result = jax.vmap(one)(jax.random.split(key, episodes))
    return jnp.mean(result > 0), jnp.mean(result < 0), jnp.mean(result == 0)
