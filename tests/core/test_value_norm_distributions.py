"""Value normalisation against its closed form, masked action distributions against numpy/scipy."""
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxmarl_core.distributions import gaussian_entropy, gaussian_log_prob, masked_categorical, sample_gaussian
from jaxmarl_core.value_norm import ValueNorm


def test_value_norm_is_the_debiased_exponential_average():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(64, 2)) for _ in range(3)]
    beta = 0.9
    vn = ValueNorm.create((2,), beta=beta)
    update = jax.jit(lambda v, x: v.update(x))
    for x in batches:
        vn = update(vn, x)
    weights = np.array([(1 - beta) * beta ** (2 - k) for k in range(3)])  # the latest batch weighs most
    total = weights.sum()  # = 1 - beta^3, the debiasing term
    mean = sum(w * x.mean(0) for w, x in zip(weights, batches)) / total
    mean_sq = sum(w * (x ** 2).mean(0) for w, x in zip(weights, batches)) / total
    got_mean, got_var = vn.stats()
    np.testing.assert_allclose(float(vn.debias), 1 - beta ** 3, rtol=1e-6)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(got_var, np.maximum(mean_sq - mean ** 2, 1e-2), rtol=1e-4)
    y = jnp.asarray(batches[0], jnp.float32)
    np.testing.assert_allclose(vn.denormalize(vn.normalize(y)), y, rtol=1e-5, atol=1e-5)


def test_value_norm_with_beta_zero_standardises_the_batch_and_vmaps():
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(4, 256))  # four independent normalisers
    vn = jax.vmap(lambda b: ValueNorm.create((), beta=0.0).update(b))(jnp.asarray(x, jnp.float32))
    z = np.asarray(jax.vmap(lambda v, b: v.normalize(b))(vn, jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(z, (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True), rtol=1e-3, atol=1e-3)
    assert float(ValueNorm.create(()).stats()[1]) == np.float32(1e-2)  # no data yet: the variance floor


def test_masked_categorical_never_gives_mass_to_unavailable_actions():
    logits = jnp.array([[1.0, 2.0, 0.5, -1.0], [0.3, 0.2, 0.1, 0.0]])
    avail = jnp.array([[True, False, True, True], [False, False, True, False]])
    dist = masked_categorical(logits, avail)
    probs = np.asarray(dist.probs)
    expected = np.where(avail, np.exp(logits), 0.0)
    expected = expected / expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    safe = np.where(expected > 0, expected, 1.0)
    np.testing.assert_allclose(dist.entropy(), -(expected * np.log(safe)).sum(-1), atol=1e-5)
    np.testing.assert_allclose(dist.log_prob(jnp.array([2, 2])), np.log(expected[[0, 1], [2, 2]]), atol=1e-5)
    n = 100_000
    draws = np.asarray(dist.sample(seed=jax.random.PRNGKey(0), sample_shape=(n,)))  # [n, 2]
    assert np.all(np.asarray(avail)[[0, 1], draws]), "a masked action was drawn"
    assert np.all(draws[:, 1] == 2)  # the only available action of row 1
    counts = np.bincount(draws[:, 0], minlength=4)  # row 0: three available actions, frequencies as the softmax's
    assert counts[1] == 0
    want = np.exp(np.float64(logits[0]))[[0, 2, 3]]
    p_value = stats.chisquare(counts[[0, 2, 3]], n * want / want.sum()).pvalue
    assert p_value > 1e-4, (counts, n * want / want.sum(), p_value)


def test_gaussian_with_padded_dimensions_matches_scipy():
    rng = np.random.default_rng(2)
    mean, log_std, action = rng.normal(size=(3, 5, 4))
    mask = np.array([True, True, False, True])
    lp = gaussian_log_prob(jnp.asarray(mean), jnp.asarray(log_std), jnp.asarray(action), jnp.asarray(mask))
    expected = stats.norm.logpdf(action, mean, np.exp(log_std))[:, mask].sum(-1)
    np.testing.assert_allclose(lp, expected, rtol=1e-5)
    ent = gaussian_entropy(jnp.asarray(log_std), jnp.asarray(mask))
    np.testing.assert_allclose(ent, stats.norm.entropy(0.0, np.exp(log_std))[:, mask].sum(-1), rtol=1e-5)
    # 100,000 draws of each of the 5 x 4 Gaussians: padded dimensions 0, the others' mean and standard deviation
    # within 5 standard errors (of the mean std / sqrt(n), of the standard deviation about std / sqrt(2 n))
    n = 100_000
    big = lambda x: jnp.asarray(np.broadcast_to(x, (n, *x.shape)), jnp.float32)  # noqa: E731
    draws = np.asarray(sample_gaussian(jax.random.PRNGKey(1), big(mean), big(log_std), jnp.asarray(mask)), np.float64)
    std = np.exp(log_std)
    assert np.all(draws[:, :, ~mask] == 0.0)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean)[:, mask], 5 * std[:, mask] / np.sqrt(n))
    np.testing.assert_array_less(np.abs(draws.std(0, ddof=1) - std)[:, mask], 5 * std[:, mask] / np.sqrt(2 * (n - 1)))
