"""jaxmarl_core.linalg.solve (plain jnp Gauss-Jordan) against numpy, with batches, several right-hand sides,
gradients, and the large vmapped batches that can deadlock jnp.linalg.solve on 2 CPU cores."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core.linalg import solve


def test_solve_matches_numpy_for_small_and_unrolled_sizes():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 9, 16):  # sizes up to 8 are unrolled, larger ones loop
        a = rng.normal(size=(6, n, n)) + n * np.eye(n)  # well conditioned
        b, bs = rng.normal(size=(6, n)), rng.normal(size=(6, n, 3))
        np.testing.assert_allclose(solve(a, b), np.linalg.solve(a, b[..., None])[..., 0], atol=1e-5)
        np.testing.assert_allclose(solve(a, bs), np.linalg.solve(a, bs), atol=1e-5)


def test_solve_pivots_and_differentiates():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])  # a zero leading entry needs a row swap
    np.testing.assert_allclose(solve(a, np.array([1.0, 2.0])), np.linalg.solve(a, [1.0, 2.0]), atol=1e-6)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 4)) + 4 * np.eye(4), rng.normal(size=4)
    ours = jax.grad(lambda m: jnp.sum(solve(m, b) ** 2))(a)
    ref = jax.grad(lambda m: jnp.sum(jnp.linalg.solve(m, b) ** 2))(a)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert not np.all(np.isfinite(solve(np.zeros((2, 2)), np.ones(2))))


def test_large_vmapped_batches_finish():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4096, 6, 6)) + 6 * np.eye(6)
    b = rng.normal(size=(4096, 6))
    x = jax.jit(jax.vmap(solve))(a, b)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", a, x), b, atol=1e-4)
