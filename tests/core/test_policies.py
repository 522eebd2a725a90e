"""The recurrent policy networks against flax's own layers: the grid convolution computed as a matrix product equals
``nn.Conv`` (same parameters, same initialisation, same outputs), and the log-probabilities of whole episodes, with
the layers before the recurrence applied to all observations at once, equal a scan of the one-step policy, values and
gradients."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_core.policies import FlatPolicy, RecurrentPolicy, _GridConv

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("grid", [3, 5])  # 3 x 3: the matrix product; 5 x 5: a convolution
def test_grid_conv_is_flax_conv(grid):
    x = jax.random.normal(KEY, (6, grid, grid, 4))
    ours, flax_conv = _GridConv(20), nn.Conv(20, (3, 3), padding="SAME")
    v_ours, v_flax = ours.init(jax.random.PRNGKey(1), x), flax_conv.init(jax.random.PRNGKey(1), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: a.shape == b.shape and bool((a == b).all()), v_ours, v_flax))
    v = jax.tree.map(lambda a: a + jax.random.normal(jax.random.PRNGKey(2), a.shape), v_flax)  # a bias too
    np.testing.assert_allclose(ours.apply(v, x), flax_conv.apply(v, x), rtol=1e-5, atol=1e-5)
    assert ours.apply(v, x[0]).shape == (grid, grid, 20)  # one observation, no batch axes


@pytest.mark.parametrize("cell", ["gru", "conv_lstm"])
def test_episode_log_probs_equal_a_scan_of_steps(cell):
    policy = RecurrentPolicy(obs_shape=(3, 3, 4), num_actions=4, cell=cell)
    theta = policy.init(KEY)
    obs = jax.random.bernoulli(KEY, 0.3, (9, 5, 3, 3, 4)).astype(jnp.float32)  # [T, B, ...]
    actions = jax.random.randint(jax.random.PRNGKey(3), (9, 5), 0, 4)

    def stepwise(th):  # the generic FlatPolicy.log_probs: a scan of ``step`` per episode
        return FlatPolicy.log_probs(policy, th, obs, actions)

    def hoisted(th):
        return policy.log_probs(th, obs, actions)

    @jax.jit
    def values_and_gradients(th):
        return [(f(th), jax.grad(lambda t: f(t).sum())(th)) for f in (hoisted, stepwise)]

    (lp_a, grad_a), (lp_b, grad_b) = values_and_gradients(theta)
    np.testing.assert_allclose(lp_a, lp_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_a, grad_b, rtol=1e-4, atol=1e-5)
