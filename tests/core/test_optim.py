"""The learners' optimiser on flattened parameters against optax's own chain on the parameter tree."""
import jax
import numpy as np
import optax
import pytest

from jaxmarl_core import optim


def tree(key):
    """A small network's parameters: kernels, biases and a LayerNorm scale of unequal sizes."""
    k = jax.random.split(key, 4)
    return {"dense_0": {"kernel": jax.random.normal(k[0], (5, 7)), "bias": jax.random.normal(k[1], (7,))},
            "norm": {"scale": jax.random.normal(k[2], (7,))}, "head": {"kernel": jax.random.normal(k[3], (7, 3))}}


def run(tx, params, grads):
    """Three steps of ``tx`` along the gradients ``grads`` [3, ...] -> parameters after each step."""
    state = tx.init(params)
    out = []
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out, state


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.5, 1e3])
def test_clipped_matches_the_unflattened_chain(max_grad_norm):
    params = tree(jax.random.PRNGKey(0))
    grads = [jax.tree.map(lambda x: 3.0 * x, tree(jax.random.PRNGKey(i))) for i in (1, 2, 3)]
    clip = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm > 0 else []
    ref, _ = run(optax.chain(*clip, optax.adam(1e-2, eps=1e-5)), params, grads)
    ours, state = run(optim.clipped(optax.adam(1e-2, eps=1e-5), max_grad_norm), params, grads)
    for r, o in zip(ref, ours):
        for a, b in zip(jax.tree.leaves(r), jax.tree.leaves(o)):  # float rounding: the clip's norm is summed in
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-8)  # another order, kernels vectorise other lengths
    size = sum(x.size for x in jax.tree.leaves(params))
    moments = [x for x in jax.tree.leaves(state) if x.ndim == 1]
    assert moments and all(m.shape == (size,) for m in moments)


def test_clipped_clips_the_global_norm():
    params = tree(jax.random.PRNGKey(0))
    grads = jax.tree.map(lambda x: 100.0 * x, tree(jax.random.PRNGKey(1)))
    tx = optim.clipped(optax.sgd(1.0), 0.5)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(optax.global_norm(updates)) == pytest.approx(0.5, rel=1e-5)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    assert all(u.shape == p.shape for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)))
