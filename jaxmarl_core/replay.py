"""Replay buffers as pure pytrees that live inside a jitted learner's state (vmappable over seeds, usable in
``lax.scan``): a fixed-capacity circular store of items with uniform sampling, and the same store holding whole
episodes for recurrent learners.

    buf = ReplayBuffer.create(example, capacity)        # example: one item, any pytree of arrays
    buf = buf.add(batch)                                 # batch: the item's leaves with a leading axis [B, ...]
    buf = buf.add_where(batch, keep)                     # only the items where keep (bool [B])
    items = buf.sample(key, batch_size)                  # leaves [batch_size, ...], uniform over the stored items
    ok = buf.can_sample(min_size)                        # bool scalar, for lax.cond / jnp.where in the learner

    ep = episode_buffer(example_step, capacity, max_length)   # items: Episode(steps [T, ...], mask bool[T])
    ep = ep.add(Episode(steps, mask))                         # steps [B, T, ...], mask bool[B, T]
    episodes = ep.sample(key, batch_size).time_major()       # steps [T, batch_size, ...], mask [T, batch_size]

Writes go to slots ``position, position + 1, ...`` modulo the capacity, so once full the oldest items are
overwritten first; sampling draws slots with replacement, uniformly over the ``size`` filled ones (``size`` grows
up to the capacity and stays there). Before the first ``add`` there is nothing to sample: check ``can_sample``.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


def uniform_slots(key: jax.Array, size: jax.Array, batch_size: int) -> jax.Array:
    """int32 [batch_size]: slots drawn with replacement, uniformly over the ``size`` filled ones (slot 0 if none)."""
    return jax.random.randint(key, (batch_size,), 0, jnp.maximum(size, 1))


@struct.dataclass
class ReplayBuffer:
    items: Any  # pytree, leaves [capacity, ...]
    position: jax.Array  # int32 scalar: the slot the next item is written to
    size: jax.Array  # int32 scalar: the number of filled slots, at most capacity
    capacity: int = struct.field(pytree_node=False, default=1)

    @classmethod
    def create(cls, example: Any, capacity: int) -> ReplayBuffer:
        """An empty buffer for items shaped (and typed) like ``example``; leaves [capacity, *example.shape]."""
        if capacity < 1:
            raise ValueError(f"replay capacity must be at least 1, got {capacity}")
        items = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
        zero = jnp.zeros((), jnp.int32)
        return cls(items=items, position=zero, size=zero, capacity=capacity)

    def add(self, batch: Any) -> ReplayBuffer:
        """Write B items (leaves [B, ...], B <= capacity) to the next B slots, wrapping around the end."""
        b = jax.tree.leaves(batch)[0].shape[0]
        if b > self.capacity:
            raise ValueError(f"cannot add {b} items at once to a replay buffer of capacity {self.capacity}")
        slots = (self.position + jnp.arange(b)) % self.capacity

        def write(store, x):
            x = jnp.asarray(x)
            if x.shape != (b,) + store.shape[1:]:
                raise ValueError(f"replay add: a leaf of shape {x.shape}, expected {(b,) + store.shape[1:]}")
            return store.at[slots].set(x.astype(store.dtype))

        items = jax.tree.map(write, self.items, batch)
        return self.replace(items=items, position=(self.position + b) % self.capacity,
                            size=jnp.minimum(self.size + b, self.capacity))

    def add_where(self, batch: Any, keep: jax.Array) -> ReplayBuffer:
        """Write only the items of ``batch`` (leaves [B, ...], B <= capacity) where ``keep`` (bool [B]), in their
        order, to the next ``sum(keep)`` slots, wrapping around the end (``add`` when every item is kept)."""
        b = jax.tree.leaves(batch)[0].shape[0]
        if b > self.capacity:
            raise ValueError(f"cannot add {b} items at once to a replay buffer of capacity {self.capacity}")
        count = jnp.sum(keep).astype(jnp.int32)
        rank = jnp.cumsum(keep) - 1  # the kept item's place among the kept
        slots = jnp.where(keep, (self.position + rank) % self.capacity, self.capacity)  # out of range: dropped
        items = jax.tree.map(lambda store, x: store.at[slots].set(jnp.asarray(x).astype(store.dtype), mode="drop"),
                             self.items, batch)
        return self.replace(items=items, position=(self.position + count) % self.capacity,
                            size=jnp.minimum(self.size + count, self.capacity))

    def sample(self, key: jax.Array, batch_size: int) -> Any:
        """``batch_size`` items drawn with replacement, uniformly over the filled slots -> leaves [batch_size, ...]."""
        slots = uniform_slots(key, self.size, batch_size)
        return jax.tree.map(lambda store: store[slots], self.items)

    def can_sample(self, min_size: int = 1) -> jax.Array:
        """bool scalar: at least ``min_size`` items are stored."""
        return self.size >= min_size


@struct.dataclass
class Episode:
    """A whole episode padded to a fixed length T: ``steps`` (pytree, leaves [..., T, ...]) and ``mask``
    (bool[..., T], True on the episode's steps, False on the padding after it)."""

    steps: Any
    mask: jax.Array

    def time_major(self) -> Episode:
        """Batch-major [B, T, ...] -> time-major [T, B, ...], the layout of the networks' sequences."""
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), self)


def episode_buffer(example_step: Any, capacity: int, max_length: int) -> ReplayBuffer:
    """An empty buffer of ``capacity`` episodes of up to ``max_length`` steps shaped like ``example_step``: its items
    are ``Episode(steps [max_length, ...], mask bool[max_length])``, added and sampled whole."""
    steps = jax.tree.map(lambda x: jnp.zeros((max_length,) + jnp.shape(x), jnp.asarray(x).dtype), example_step)
    return ReplayBuffer.create(Episode(steps=steps, mask=jnp.zeros((max_length,), bool)), capacity)
