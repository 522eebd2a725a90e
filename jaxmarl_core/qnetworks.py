"""Q-networks for value-based multi-agent learners (IQL, VDN, QMIX, DRQN, MF-Q, DGN) and action selection with
available-action masks.

A ``QNetwork`` follows the calling convention of ``jaxmarl_core.networks`` (time-major sequences, episode-start
resets): ``(hidden [..., H] | None, x [L, ..., D], resets bool[L, ...]) -> (hidden seq [L, ..., H] | None,
q [L, ..., A])``. Layers: ``networks.MLPTorso`` (optional input LayerNorm, then Dense -> ReLU -> LayerNorm per hidden
size, the LayerNorm left out with ``layer_norm=False``), then, if recurrent, the resetting GRU
``networks.ScannedGRU`` (the layout of DRQN's and pymarl's recurrent agent, with the torso's LayerNorms added), then
a linear head with one output per action.

``AgentQNetworks`` applies one for all N agents on the layout ``[L, B, N, ...]`` (steps, environments, agents):
either one shared network (optionally with a one-hot agent id appended to each agent's input) or N networks whose
parameters are stacked on a leading agent axis and applied with ``vmap``.

Masks: ``avail`` is bool[..., A], True where an action is available. Unavailable actions get the dtype's lowest
finite value, so a row without any available action (a terminal step in some environments) gives a finite max that
a TD target's (1 - done) factor removes, never a NaN.

    greedy:           a = argmax_{a: avail} Q(a)
    epsilon-greedy:   with probability epsilon a uniform available action, otherwise the greedy one, so every
                      available non-greedy action has probability epsilon / |avail|
    TD target's max:  max_{a: avail'} Q_target(s', a)
    double Q:         Q_target(s', argmax_{a: avail'} Q_online(s', a))
    Boltzmann:        pi(a) = softmax_{a: avail}(Q(a) / tau); its value sum_a pi(a) Q(a) (the mean-field target)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmarl_core.networks import MLPTorso, ScannedGRU, append_agent_ids, initial_hidden, orthogonal


class QNetwork(nn.Module):
    """(hidden [..., H] | None, x [L, ..., D], resets bool[L, ...]) -> (hidden seq [L, ..., H] | None,
    q [L, ..., action_dim]); H = hidden_sizes[-1]. Feed-forward networks ignore hidden and resets."""

    action_dim: int
    hidden_sizes: Sequence[int] = (64,)
    recurrent: bool = False
    feature_norm: bool = False
    layer_norm: bool = True  # LayerNorm after each hidden layer's ReLU

    @nn.compact
    def __call__(self, hidden, x, resets):
        z = MLPTorso(self.hidden_sizes, self.feature_norm, self.layer_norm)(x)
        seq = None
        if self.recurrent:
            _, seq = ScannedGRU(self.hidden_sizes[-1])(hidden, (z, resets))
            z = seq
        return seq, nn.Dense(self.action_dim, kernel_init=orthogonal(1.0), bias_init=nn.initializers.zeros)(z)


@dataclasses.dataclass(frozen=True)
class AgentQNetworks:
    """Q-networks of N agents with equal observation and action sizes, on inputs [L, B, N, D].

    shared: one network for all agents (parameters as ``net.init`` gives them); otherwise N networks, every
    parameter leaf stacked on a leading agent axis [N, ...] (agent i's are ``jax.tree.map(lambda p: p[i], params)``).
    agent_id: append a one-hot agent id [N] to each agent's input (how a shared network tells agents apart).
    """

    net: QNetwork
    num_agents: int
    shared: bool = True
    agent_id: bool = True

    def initial_hidden(self, batch_size: int) -> jax.Array | None:
        """Zeros [B, N, H] (None for feed-forward networks): the recurrent state at an episode's start."""
        if not self.net.recurrent:
            return None
        return initial_hidden(self.net.hidden_sizes, (batch_size, self.num_agents))

    def inputs(self, obs: jax.Array) -> jax.Array:
        """obs [..., N, D] -> the networks' inputs [..., N, D (+ N)]."""
        return append_agent_ids(obs) if self.agent_id else obs

    def init(self, key: jax.Array, obs_dim: int):
        """Parameters for observations of size obs_dim: one network's, or N stacked ones (one key each)."""
        x = self.inputs(jnp.zeros((1, 1, self.num_agents, obs_dim), jnp.float32))[:, :, 0]  # [1, 1, D (+ N)]
        h = initial_hidden(self.net.hidden_sizes, (1,)) if self.net.recurrent else None
        resets = jnp.ones((1, 1), bool)
        if self.shared:
            return self.net.init(key, h, x, resets)
        return jax.vmap(lambda k: self.net.init(k, h, x, resets))(jax.random.split(key, self.num_agents))

    def apply(self, params, hidden: jax.Array | None, obs: jax.Array, resets: jax.Array):
        """(hidden [B, N, H] | None, obs [L, B, N, D], resets bool[L, B, N]) -> (hidden seq [L, B, N, H] | None,
        q [L, B, N, A])."""
        x = self.inputs(obs)
        if self.shared:
            return self.net.apply(params, hidden, x, resets)
        h_axis = None if hidden is None else 1
        seq_axis = 2 if self.net.recurrent else None
        return jax.vmap(self.net.apply, in_axes=(0, h_axis, 2, 2), out_axes=(seq_axis, 2))(params, hidden, x, resets)


def masked_q(q: jax.Array, avail: jax.Array) -> jax.Array:
    """q [..., A] with unavailable actions (avail bool[..., A] False) set to the dtype's lowest finite value."""
    return jnp.where(avail, q, jnp.finfo(q.dtype).min)


def greedy_action(q: jax.Array, avail: jax.Array) -> jax.Array:
    """argmax over the available actions: q [..., A], avail bool[..., A] -> int32[...]."""
    return jnp.argmax(masked_q(q, avail), axis=-1).astype(jnp.int32)


def masked_max(q: jax.Array, avail: jax.Array) -> jax.Array:
    """max over the available actions: q [..., A], avail bool[..., A] -> [...]."""
    return jnp.max(masked_q(q, avail), axis=-1)


def action_values(q: jax.Array, actions: jax.Array) -> jax.Array:
    """The values of the chosen actions: q [..., A], actions int[...] -> [...]."""
    return jnp.take_along_axis(q, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def double_q_max(q_online: jax.Array, q_target: jax.Array, avail: jax.Array) -> jax.Array:
    """Double Q-learning's bootstrap value: the target network's value of the online network's masked greedy
    action; q_online, q_target [..., A], avail bool[..., A] -> [...]."""
    return action_values(q_target, greedy_action(q_online, avail))


def boltzmann_logits(q: jax.Array, avail: jax.Array, temperature: float | jax.Array) -> jax.Array:
    """Logits of the Boltzmann policy at temperature tau: q / tau, unavailable actions masked; [..., A]."""
    return masked_q(q / temperature, avail)


def boltzmann_value(q: jax.Array, avail: jax.Array, temperature: float | jax.Array) -> jax.Array:
    """sum_a pi(a) q(a) under the Boltzmann policy pi = softmax(q / tau) over the available actions:
    q [..., A], avail bool[..., A] -> [...]."""
    pi = jax.nn.softmax(boltzmann_logits(q, avail, temperature), axis=-1)
    return jnp.sum(jnp.where(avail, pi * q, 0.0), axis=-1)


def epsilon_greedy(key: jax.Array, q: jax.Array, avail: jax.Array, epsilon: float | jax.Array) -> jax.Array:
    """With probability epsilon a uniform available action, otherwise the greedy one, independently per row:
    q [..., A], avail bool[..., A] -> int32[...]."""
    k_explore, k_action = jax.random.split(key)
    explore = jax.random.uniform(k_explore, q.shape[:-1]) < epsilon
    uniform = jax.random.categorical(k_action, masked_q(jnp.zeros_like(q), avail)).astype(jnp.int32)
    return jnp.where(explore, uniform, greedy_action(q, avail))


def epsilon_schedule(start: float = 1.0, end: float = 0.05, decay_steps: int = 50_000,
                     begin: int = 0) -> optax.Schedule:
    """Epsilon by step (an optax schedule): ``start`` until ``begin``, then linear to ``end`` over ``decay_steps``
    steps, then ``end`` (pymarl's QMIX: 1 -> 0.05 over 50,000 steps)."""
    return optax.linear_schedule(start, end, decay_steps, transition_begin=begin)
