"""The recurrent policy networks against flax's own layers: the grid convolution computed as a matrix product equals
``nn.Conv`` (same parameters, same initialisation, same outputs), and the log-probabilities of whole episodes, with
the layers before the recurrence applied to all observations at once, equal a scan of the one-step policy, values and
gradients; batch normalisation equals flax's ``BatchNorm`` on batch statistics."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_core.policies import FlatPolicy, RecurrentPolicy, _GridConv, batch_normalise

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


def test_batch_normalise_is_flax_batch_norm_on_batch_statistics():
    """Values and gradients (through the batch's mean and variance) against ``nn.BatchNorm`` with the LOLA reference
    code's TensorFlow defaults: an offset, no scale, epsilon 1e-3."""
    x = 3.0 * jax.random.normal(KEY, (7, 5, 3, 3, 20)) + 1.0
    offset = jax.random.normal(jax.random.PRNGKey(1), (20,))
    flax_bn = nn.BatchNorm(use_running_average=False, use_scale=False, epsilon=1e-3)
    stats = flax_bn.init(KEY, x)["batch_stats"]

    def reference(x):
        return flax_bn.apply({"params": {"bias": offset}, "batch_stats": stats}, x, mutable=["batch_stats"])[0]

    np.testing.assert_allclose(batch_normalise(x, offset), reference(x), atol=2e-6)
    grads = [jax.grad(lambda x: jnp.sum(jnp.sin(f(x))))(x) for f in (lambda x: batch_normalise(x, offset), reference)]
    np.testing.assert_allclose(*grads, atol=2e-6)
    assert float(jnp.abs(grads[0]).max()) > 0.1


def test_batch_normalised_policy_acts_as_it_scores_a_step():
    """``batch_norm``: the logits ``batch_step`` acts on (each agent's games of one step normalised together) are
    those ``log_probs`` gives the same step's observations; one observation alone and the GRU are refused."""
    policy = RecurrentPolicy(obs_shape=(3, 3, 4), num_actions=4, cell="conv_lstm", batch_norm=True)
    assert policy.num_params == RecurrentPolicy(obs_shape=(3, 3, 4), num_actions=4, cell="conv_lstm").num_params
    theta = jax.vmap(policy.init)(jax.random.split(KEY, 2))
    obs = jax.random.bernoulli(KEY, 0.3, (6, 2, 3, 3, 4)).astype(jnp.float32)  # [B, N, ...]
    state = jax.tree.map(lambda s: jnp.broadcast_to(s, (6, 2) + s.shape), policy.initial_state())
    logits = policy.batch_step(theta, state, obs)[0]  # [B, N, A]
    actions = jax.random.randint(KEY, (1, 6), 0, 4)
    for n in range(2):
        expected = jnp.take_along_axis(jax.nn.log_softmax(logits[:, n]), actions[0, :, None], axis=-1)[:, 0]
        np.testing.assert_allclose(policy.log_probs(theta[n], obs[None, :, n], actions)[0], expected, atol=1e-6)
    halved = policy.log_probs(theta[0], obs[None, :3, 0], actions[:, :3])  # other games: other statistics
    assert float(jnp.abs(halved - policy.log_probs(theta[0], obs[None, :, 0], actions)[:, :3]).max()) > 1e-4
    with pytest.raises(ValueError, match="no logits for one observation alone"):
        policy.step(theta[0], policy.initial_state(), obs[0, 0])
    with pytest.raises(ValueError, match="batch_norm needs cell='conv_lstm'"):
        RecurrentPolicy(obs_shape=(3, 3, 4), num_actions=4, batch_norm=True)
