"""JAX's random bits lowered without loops on CPU.

Every ``jax.random`` draw hashes counters with Threefry-2x32 (20 rounds; Salmon et al., 2011, "Parallel random
numbers: as easy as 1, 2, 3", the Random123 library). On CPU JAX lowers the hash as a 5-step ``while`` loop of 4
rounds each (a smaller program); on GPU as the 20 rounds in a row. In the training programs, where a rollout draws
keys and actions at every step, each loop compiles to several kernels of its own and runs them 5 times, copying its
carry in between. ``use_unrolled()`` lowers the hash on CPU as the 20 rounds in a row (``hash_2x32``), emitted once
per shape as an out-of-line function: the same integer operations in the same order, so the same bits.

    key schedule:  ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA);  x0 += ks[0], x1 += ks[1]
    round r:       x0 += x1;  x1 = rotl(x1, R[r % 8]) ^ x0        R = (13, 15, 26, 6, 17, 29, 16, 24)
    after rounds 4g (g = 1..5):  x0 += ks[g % 3];  x1 += ks[(g + 1) % 3] + g
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
PARITY = 0x1BD11BDA


def _rotate_left(x: jax.Array, d: int) -> jax.Array:
    return (x << jnp.uint32(d)) | (x >> jnp.uint32(32 - d))


def hash_2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds of the counters (x0, x1) under the key (k0, k1), all uint32 and broadcast
    together -> the two output words; the module's formulas, rounds unrolled."""
    k0, k1, x0, x1 = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.uint32) for a in (k0, k1, x0, x1)))
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for group in range(1, 6):
        for r in range(4):
            x0 = x0 + x1
            x1 = _rotate_left(x1, ROTATIONS[(4 * (group - 1) + r) % 8]) ^ x0
        x0 = x0 + ks[group % 3]
        x1 = x1 + ks[(group + 1) % 3] + jnp.uint32(group)
    return x0, x1


@functools.cache
def use_unrolled() -> None:
    """From now on, in this process, lower the Threefry hash of every ``jax.random`` draw on CPU with ``hash_2x32``
    (programs already lowered keep theirs; the persistent cache tells the two apart by their programs)."""
    rule = mlir.lower_fun(lambda k0, k1, x0, x1: list(hash_2x32(k0, k1, x0, x1)), multiple_results=True)
    mlir.register_lowering(threefry2x32_p, rule, platform="cpu", inline=False)
