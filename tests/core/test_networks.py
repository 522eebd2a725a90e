"""Actor/critic networks (HARL initialisation, resetting GRU) and the KL divergences used by trust-region steps."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core import distributions
from jaxmarl_core.networks import Actor, Critic, initial_hidden, orthogonal


def test_shapes_and_harl_initialisation():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 4))  # [L, B, D]
    resets = jnp.zeros((3, 5), bool)
    actor = Actor(6, hidden_sizes=(32, 32))
    params = jax.jit(actor.init)(jax.random.PRNGKey(1), None, x, resets)
    seq, logits, log_std = jax.jit(actor.apply)(params, None, x, resets)
    assert seq is None and log_std is None and logits.shape == (3, 5, 6)
    head = params["params"]["Dense_0"]["kernel"]  # [32, 6]: orthogonal columns scaled by the gain 0.01
    np.testing.assert_allclose(head.T @ head, 1e-4 * np.eye(6), atol=1e-7)
    hidden = params["params"]["_Body_0"]["MLPTorso_0"]["Dense_1"]["kernel"]  # gain sqrt(2)
    np.testing.assert_allclose(hidden.T @ hidden, 2.0 * np.eye(32), atol=1e-5)
    gauss = Actor(2, continuous=True, hidden_sizes=(8,))
    gauss_params = jax.jit(gauss.init)(jax.random.PRNGKey(2), None, x, resets)
    _, mean, log_std = jax.jit(gauss.apply)(gauss_params, None, x, resets)
    assert mean.shape == (3, 5, 2)
    np.testing.assert_allclose(jnp.exp(log_std), 0.5 * jax.nn.sigmoid(1.0) * np.ones(2), rtol=1e-6)  # HARL's std
    critic = Critic(3, hidden_sizes=(8,), recurrent=True)
    h = initial_hidden((8,), (5,))
    seq, values = jax.jit(critic.apply)(jax.jit(critic.init)(jax.random.PRNGKey(3), h, x, resets), h, x, resets)
    assert seq.shape == (3, 5, 8) and values.shape == (3, 5, 3)


def test_orthogonal_is_the_q_of_the_gaussian_draw_of_flax_convention():
    """As flax's orthogonal initialiser: Q of the QR (numpy's) of normal(key, (max, min)), R's diagonal made
    positive, transposed for wide shapes, times the gain."""
    for shape, gain in (((7, 3), 2.0), ((3, 7), 0.5), ((2, 3, 5), 1.0)):
        key = jax.random.PRNGKey(sum(shape))
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = np.asarray(jax.random.normal(key, (max(rows, cols), min(rows, cols))), np.float64)
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        expected = gain * (q.T if rows < cols else q)
        np.testing.assert_allclose(np.asarray(orthogonal(gain)(key, shape)).reshape(rows, cols), expected, atol=1e-5)


def test_gru_resets_where_an_episode_starts():
    """Outputs from a reset step on equal those of a fresh sequence started there from zeros."""
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 2, 3))
    actor = Actor(4, hidden_sizes=(8,), recurrent=True)
    h0 = jax.random.normal(jax.random.PRNGKey(1), (2, 8))
    resets = jnp.zeros((6, 2), bool).at[3, 0].set(True)
    params = jax.jit(actor.init)(jax.random.PRNGKey(2), h0, x, resets)
    apply = jax.jit(actor.apply)
    seq, out, _ = apply(params, h0, x, resets)
    fresh_seq, fresh_out, _ = apply(params, initial_hidden((8,), (2,)), x[3:], jnp.zeros((3, 2), bool))
    np.testing.assert_allclose(out[3:, 0], fresh_out[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seq[3:, 0], fresh_seq[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[3:, 1], fresh_out[:, 1])  # the other environment carried its state on


def test_without_layer_norm_the_networks_are_plain_dense_relu_gru_layers():
    """``layer_norm=False`` (JaxMARL's MAPPO): no LayerNorm anywhere; the feed-forward actor is exactly
    W_h relu(W_2 relu(W_1 x + b_1) + b_2) + b_h, the recurrent critic's head reads the GRU's state unnormalised."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 4))
    resets = jnp.zeros((3, 5), bool)
    actor = Actor(6, hidden_sizes=(8, 8), feature_norm=False, layer_norm=False)
    params = actor.init(jax.random.PRNGKey(1), None, x, resets)
    assert "LayerNorm" not in str(jax.tree_util.tree_structure(params))
    torso, head = params["params"]["_Body_0"]["MLPTorso_0"], params["params"]["Dense_0"]
    z = x
    for layer in ("Dense_0", "Dense_1"):
        z = np.maximum(z @ torso[layer]["kernel"] + torso[layer]["bias"], 0.0)
    np.testing.assert_allclose(actor.apply(params, None, x, resets)[1], z @ head["kernel"] + head["bias"],
                               rtol=1e-5, atol=1e-6)
    critic = Critic(2, hidden_sizes=(8,), recurrent=True, feature_norm=False, layer_norm=False)
    h = initial_hidden((8,), (5,))
    cparams = critic.init(jax.random.PRNGKey(2), h, x, resets)
    assert "LayerNorm" not in str(jax.tree_util.tree_structure(cparams))
    seq, values = critic.apply(cparams, h, x, resets)
    chead = cparams["params"]["Dense_0"]
    np.testing.assert_allclose(values, seq @ chead["kernel"] + chead["bias"], rtol=1e-5, atol=1e-6)
    normed = Critic(2, hidden_sizes=(8,), recurrent=True, feature_norm=False)
    names = str(jax.tree_util.tree_structure(normed.init(jax.random.PRNGKey(2), h, x, resets)))
    assert names.count("LayerNorm") == 2  # after the torso's layer and after the GRU


def test_kl_divergences_against_distrax_and_masks():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    p, q = jax.random.normal(k1, (4, 5)), jax.random.normal(k2, (4, 5))
    want = distrax.Categorical(logits=p).kl_divergence(distrax.Categorical(logits=q))
    np.testing.assert_allclose(distributions.categorical_kl(p, q), want, rtol=1e-5, atol=1e-6)
    avail = jnp.array([True, True, False, True, False])
    masked = distributions.categorical_kl(p, q, jnp.broadcast_to(avail, p.shape))
    want = distrax.Categorical(logits=p[:, avail]).kl_divergence(distrax.Categorical(logits=q[:, avail]))
    np.testing.assert_allclose(masked, want, rtol=1e-5, atol=1e-6)
    mean_p, mean_q = p[:, :3], q[:, :3]
    ls_p, ls_q = 0.1 * p[:, 2:], 0.2 * q[:, 2:]  # log-stds [4, 3]
    want = distrax.MultivariateNormalDiag(mean_p, jnp.exp(ls_p)).kl_divergence(
        distrax.MultivariateNormalDiag(mean_q, jnp.exp(ls_q)))
    np.testing.assert_allclose(distributions.gaussian_kl(mean_p, ls_p, mean_q, ls_q), want, rtol=1e-5, atol=1e-6)
    dim_mask = jnp.array([True, True, False])
    want = distrax.MultivariateNormalDiag(mean_p[:, :2], jnp.exp(ls_p[:, :2])).kl_divergence(
        distrax.MultivariateNormalDiag(mean_q[:, :2], jnp.exp(ls_q[:, :2])))
    np.testing.assert_allclose(distributions.gaussian_kl(mean_p, ls_p, mean_q, ls_q, dim_mask), want, rtol=1e-5,
                               atol=1e-6)
