"""Value normalisation as a pure pytree: running, debiased mean and variance of value targets (HARL's ValueNorm:
exponential averages with weight ``beta`` of the batch mean and mean square, a debiasing term, variance clamped at
1e-2).

    vn = ValueNorm.create(())               # scalar values
    vn = vn.update(targets)                 # targets [B, ...]: statistics over the leading axis
    loss = (vn.normalize(targets) - v_pred) ** 2;  values = vn.denormalize(v_pred)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ValueNorm:
    mean: jax.Array  # [...] exponential average of batch means (biased towards 0 early)
    mean_sq: jax.Array  # [...] exponential average of batch mean squares
    debias: jax.Array  # scalar: the total weight the averages have received
    beta: float = struct.field(pytree_node=False, default=0.99999)
    epsilon: float = struct.field(pytree_node=False, default=1e-5)

    @classmethod
    def create(cls, shape: tuple[int, ...] = (), beta: float = 0.99999, epsilon: float = 1e-5) -> ValueNorm:
        zeros = jnp.zeros(shape, jnp.float32)
        return cls(mean=zeros, mean_sq=zeros, debias=jnp.zeros((), jnp.float32), beta=beta, epsilon=epsilon)

    def update(self, x: jax.Array, norm_axes: int = 1) -> ValueNorm:
        """Fold in a batch x [B_1 .. B_norm_axes, ...], averaged over its first ``norm_axes`` axes."""
        axes = tuple(range(norm_axes))
        x = jnp.asarray(x, jnp.float32)
        w = self.beta
        return self.replace(mean=w * self.mean + (1.0 - w) * jnp.mean(x, axis=axes),
                            mean_sq=w * self.mean_sq + (1.0 - w) * jnp.mean(x ** 2, axis=axes),
                            debias=w * self.debias + (1.0 - w))

    def stats(self) -> tuple[jax.Array, jax.Array]:
        """(debiased mean, debiased variance clamped at 1e-2)."""
        scale = jnp.maximum(self.debias, self.epsilon)
        mean = self.mean / scale
        return mean, jnp.maximum(self.mean_sq / scale - mean ** 2, 1e-2)

    def normalize(self, x: jax.Array) -> jax.Array:
        mean, var = self.stats()
        return (x - mean) / jnp.sqrt(var)

    def denormalize(self, x: jax.Array) -> jax.Array:
        mean, var = self.stats()
        return x * jnp.sqrt(var) + mean
