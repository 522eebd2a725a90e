"""Jittable spaces: ``sample(key)`` draws an element, ``contains(x)`` returns a boolean array (no Python branching).

``AgentGroup`` describes a run of identical agents by its spaces, once for the whole group: an environment with
10,000 identical agents declares one group rather than 10,000 spaces.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core.config import require_positive_int


class Space:
    shape: tuple[int, ...]
    dtype: jnp.dtype

    def sample(self, key: jax.Array) -> jax.Array:
        raise NotImplementedError

    def contains(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Discrete(Space):
    """Integers ``0 .. n-1`` (scalar)."""

    n: int
    dtype: jnp.dtype = jnp.int32

    def __post_init__(self):
        if int(self.n) <= 0:
            raise ValueError(f"Discrete space needs n > 0, got {self.n}")

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != ():
            return jnp.asarray(False)
        return (x >= 0) & (x < self.n) & (x == jnp.round(x))


@dataclasses.dataclass(frozen=True)
class MultiDiscrete(Space):
    """Integer vectors with ``0 <= x[i] < nvec[i]``."""

    nvec: tuple[int, ...]
    dtype: jnp.dtype = jnp.int32

    def __post_init__(self):
        object.__setattr__(self, "nvec", tuple(int(n) for n in self.nvec))
        if not self.nvec or min(self.nvec) <= 0:
            raise ValueError(f"MultiDiscrete space needs positive sizes, got {self.nvec}")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.nvec),)

    def sample(self, key: jax.Array) -> jax.Array:
        u = jax.random.uniform(key, self.shape)
        return jnp.floor(u * jnp.asarray(self.nvec)).astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= 0) & (x < jnp.asarray(self.nvec)) & (x == jnp.round(x)))


@dataclasses.dataclass(frozen=True)
class Box(Space):
    """Real arrays of a fixed ``shape`` with elementwise bounds (``-inf``/``inf`` allowed)."""

    low: float | Sequence[float] | np.ndarray
    high: float | Sequence[float] | np.ndarray
    shape: tuple[int, ...] = ()
    dtype: jnp.dtype = jnp.float32

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"Box shape must be positive, got {self.shape}")
        low = np.broadcast_to(np.asarray(self.low, np.float32), self.shape)
        high = np.broadcast_to(np.asarray(self.high, np.float32), self.shape)
        if np.any(low > high):
            raise ValueError("Box needs low <= high")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __hash__(self):
        return hash((self.shape, self.low.tobytes(), self.high.tobytes()))

    def __eq__(self, other):
        return (isinstance(other, Box) and self.shape == other.shape and np.array_equal(self.low, other.low)
                and np.array_equal(self.high, other.high))

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform on bounded coordinates, standard normal (shifted into a half-line) on unbounded ones."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        k1, k2 = jax.random.split(key)
        u = jax.random.uniform(k1, self.shape, minval=jnp.where(jnp.isfinite(low), low, 0.0),
                               maxval=jnp.where(jnp.isfinite(high), high, 1.0))
        n = jax.random.normal(k2, self.shape)
        lo_f, hi_f = jnp.isfinite(low), jnp.isfinite(high)
        x = jnp.where(lo_f & hi_f, u,
                      jnp.where(lo_f, low + jnp.abs(n), jnp.where(hi_f, high - jnp.abs(n), n)))
        return x.astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low) & (x <= self.high))


@dataclasses.dataclass(frozen=True)
class AgentGroup:
    """``size`` identical agents sharing one observation and one action space. An environment's groups lie in
    order and contiguously on the leading agent axis: group k holds agents ``start_k .. start_k + size - 1``."""

    name: str
    size: int
    observation_space: Space
    action_space: Space

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise ValueError(f"AgentGroup name must be non-empty without '/', got {self.name!r}")
        require_positive_int(self, "size")


def group_agents(observation_spaces: Sequence[Space], action_spaces: Sequence[Space]) -> tuple[AgentGroup, ...]:
    """Per-agent spaces [N] -> the runs of consecutive agents with equal spaces: one group ``agents`` when all
    agents are alike, else ``group0``, ``group1``, ... in agent order."""
    if len(observation_spaces) != len(action_spaces):
        raise ValueError(f"group_agents needs one action space per observation space, got {len(observation_spaces)} "
                         f"observation spaces and {len(action_spaces)} action spaces")
    pairs = list(zip(observation_spaces, action_spaces, strict=True))
    runs: list[tuple[Space, Space, int]] = []
    for pair in pairs:
        if runs and runs[-1][:2] == pair:
            runs[-1] = (*pair, runs[-1][2] + 1)
        else:
            runs.append((*pair, 1))
    if len(runs) == 1:
        return (AgentGroup("agents", runs[0][2], runs[0][0], runs[0][1]),)
    return tuple(AgentGroup(f"group{k}", size, obs, act) for k, (obs, act, size) in enumerate(runs))


def per_agent_spaces(groups: Sequence[AgentGroup]) -> tuple[tuple[Space, ...], tuple[Space, ...]]:
    """Groups -> (observation spaces [N], action spaces [N]), one entry per agent (references, not copies)."""
    obs = tuple(s for g in groups for s in (g.observation_space,) * g.size)
    act = tuple(s for g in groups for s in (g.action_space,) * g.size)
    return obs, act
