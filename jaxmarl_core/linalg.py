"""Small dense linear solves in plain ``jax.numpy``, for batches of many small systems.

``jnp.linalg.solve`` calls LAPACK through a custom call that, in jaxlib 0.10 on CPU, splits large batches over the
runtime's thread pool and can deadlock when two such calls run at once on a machine with few cores (seen on 2 cores:
the run stops with every thread waiting). Gauss-Jordan elimination with partial pivoting in ``jnp`` ops has no such
call and vectorises over any batch. Derivatives are implicit, dx = a^-1 (db - da x) and d(a^-1) = -a^-1 da a^-1,
rather than the elimination's own derivative (whose nested graphs made higher-order gradients, as LOLA takes them,
slow to compile).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """x with a x = b. a: [..., n, n]; b: [..., n] or [..., n, k] (batch axes broadcast). Singular systems give
    non-finite entries."""
    vector = b.ndim == a.ndim - 1
    x = _solve(a, b[..., None] if vector else b)
    return x[..., 0] if vector else x


@jax.custom_jvp
def _solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """x [..., n, k] with a x = b: Gauss-Jordan elimination with partial pivoting. a: [..., n, n]; b: [..., n, k]."""
    n = a.shape[-1]
    shape = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m = jnp.concatenate([jnp.broadcast_to(a, shape + a.shape[-2:]), jnp.broadcast_to(b, shape + b.shape[-2:])],
                        axis=-1)  # [..., n, n + k] augmented matrix
    rows = jnp.arange(n)

    def eliminate(col, m):
        is_col = rows == col  # [n]
        column = jnp.take(m, col, axis=-1)  # [..., n]
        pivot = jnp.argmax(jnp.where(rows >= col, jnp.abs(column), -1.0), axis=-1)  # largest at or below col
        pivot_row = jnp.take_along_axis(m, pivot[..., None, None], axis=-2)[..., 0, :]  # [..., n + k]
        col_row = jnp.take(m, col, axis=-2)
        m = jnp.where((rows == pivot[..., None])[..., None], col_row[..., None, :], m)  # swap rows col, pivot
        pivot_row = pivot_row / jnp.take(pivot_row, col, axis=-1)[..., None]
        factors = jnp.where(is_col, 0.0, jnp.take(m, col, axis=-1))  # [..., n]
        m = m - factors[..., None] * pivot_row[..., None, :]
        return jnp.where(is_col[:, None], pivot_row[..., None, :], m)

    m = jax.lax.fori_loop(0, n, eliminate, m) if n > 8 else _unrolled(eliminate, n, m)
    return m[..., n:]


@_solve.defjvp
def _solve_jvp(primals, tangents):
    """d(a^-1 b) = a^-1 (db - da x), with a^-1 applied as a matrix product (linear in the tangents, so transposable)."""
    (a, b), (da, db) = primals, tangents
    x = _solve(a, b)
    return x, _inverse(a) @ (db - da @ x)


@jax.custom_jvp
def _inverse(a: jax.Array) -> jax.Array:
    """a^-1 [..., n, n] by elimination."""
    return _solve(a, jnp.broadcast_to(jnp.eye(a.shape[-1], dtype=a.dtype), a.shape))


@_inverse.defjvp
def _inverse_jvp(primals, tangents):
    """d(a^-1) = -a^-1 da a^-1: the inverse once, whatever the order of differentiation."""
    (a,), (da,) = primals, tangents
    inverse = _inverse(a)
    return inverse, -inverse @ da @ inverse


def _unrolled(body, n: int, m: jax.Array) -> jax.Array:
    for col in range(n):
        m = body(col, m)
    return m
