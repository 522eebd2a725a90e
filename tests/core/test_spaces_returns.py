"""Spaces (jittable sample/contains) and discounted returns / GAE against plain Python loops."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_core.returns import discounted_returns, gae, lambda_returns
from jaxmarl_core.spaces import Box, Discrete, MultiDiscrete


@pytest.mark.parametrize("space", [Discrete(5), MultiDiscrete((2, 3, 7)), Box(-1.0, 2.0, (3, 2)),
                                   Box([0.0, -np.inf], [np.inf, 1.0], (2,))])
def test_samples_are_contained_under_jit_and_vmap(space):
    keys = jax.random.split(jax.random.PRNGKey(0), 2048)
    xs = jax.jit(jax.vmap(space.sample))(keys)
    assert xs.shape == (2048, *space.shape)
    assert bool(jnp.all(jax.jit(jax.vmap(space.contains))(xs)))


def test_contains_rejects_what_is_outside():
    d = Discrete(3)
    assert not bool(d.contains(3)) and not bool(d.contains(-1)) and not bool(d.contains(jnp.array([1])))
    assert not bool(d.contains(1.5)) and bool(d.contains(2))
    m = MultiDiscrete((2, 3))
    assert not bool(m.contains(jnp.array([1, 3]))) and not bool(m.contains(jnp.array([1])))
    assert bool(m.contains(jnp.array([1, 2])))
    b = Box(0.0, 1.0, (2,))
    assert not bool(b.contains(jnp.array([0.5, 1.5]))) and not bool(b.contains(jnp.zeros(3)))
    for bad, message in [(lambda: Discrete(0), r"Discrete space needs n > 0, got 0$"),
                         (lambda: MultiDiscrete((2, 0)), r"MultiDiscrete space needs positive sizes, got \(2, 0\)$"),
                         (lambda: Box(0.0, 1.0, (0,)), r"Box shape must be positive, got \(0,\)$"),
                         (lambda: Box(1.0, 0.0, (1,)), r"Box needs low <= high$")]:
        with pytest.raises(ValueError, match=message):
            bad()


def reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Plain-loop GAE and bootstrapped returns: rewards etc. [T, N]; flags [T]."""
    t_len = rewards.shape[0]
    adv, ret = np.zeros_like(rewards), np.zeros_like(rewards)
    a_next, g_next = np.zeros(rewards.shape[1]), next_values[-1]
    for t in reversed(range(t_len)):
        boot = 0.0 if terminated[t] else next_values[t]
        delta = rewards[t] + gamma * boot - values[t]
        end = terminated[t] or truncated[t]
        a_next = delta + (0.0 if end else gamma * lam * a_next)
        adv[t] = a_next
        g_next = rewards[t] + gamma * (boot if end or t == t_len - 1 else g_next)
        ret[t] = g_next
    return adv, ret


def test_gae_and_returns_match_loops_with_terminations_and_truncations():
    rng = np.random.default_rng(0)
    t_len, n = 40, 3
    rewards = rng.normal(size=(t_len, n)).astype(np.float32)
    values = rng.normal(size=(t_len, n)).astype(np.float32)
    next_values = rng.normal(size=(t_len, n)).astype(np.float32)
    terminated = np.zeros(t_len, bool)
    truncated = np.zeros(t_len, bool)
    terminated[[7, 25]] = True
    truncated[[15, 33]] = True
    want_adv, want_ret = reference(rewards, values, next_values, terminated, truncated, 0.9, 0.8)
    adv, targets = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values), terminated, truncated,
                       0.9, 0.8)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, want_adv + values, rtol=1e-5, atol=1e-5)
    ret = discounted_returns(jnp.asarray(rewards), terminated, truncated, 0.9, jnp.asarray(next_values))
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)
    # a truncated step bootstraps from the value of the observation it reached and nothing of the next episode
    np.testing.assert_allclose(adv[15], rewards[15] + 0.9 * next_values[15] - values[15], rtol=1e-5)
    np.testing.assert_allclose(adv[7], rewards[7] - values[7], rtol=1e-5)  # terminated: no bootstrap
    # lambda = 1: GAE targets are the bootstrapped discounted returns when next_values[t] = values[t + 1] inside
    # episodes (at episode ends next_values is the value of final_obs)
    ends = terminated | truncated
    consistent = np.where(ends[:, None], next_values, np.roll(values, -1, axis=0))
    consistent[-1] = next_values[-1]
    _, targets1 = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(consistent), terminated, truncated,
                      0.9, 1.0)
    ret1 = discounted_returns(jnp.asarray(rewards), terminated, truncated, 0.9, jnp.asarray(consistent))
    np.testing.assert_allclose(targets1, ret1, rtol=1e-4, atol=1e-4)


def harl_proper_time_limits_gae(rewards, value_preds, masks, bad_masks, gamma, lam):
    """HARL's OnPolicyCriticBufferEP.compute_returns (use_proper_time_limits, use_gae, no ValueNorm), transcribed:
    value_preds, masks, bad_masks [T + 1, ...] where index t + 1 describes the step taken at t."""
    returns = np.zeros_like(rewards)
    g = 0.0
    for step in reversed(range(rewards.shape[0])):
        delta = rewards[step] + gamma * value_preds[step + 1] * masks[step + 1] - value_preds[step]
        g = delta + gamma * lam * masks[step + 1] * g
        g = bad_masks[step + 1] * g
        returns[step] = g + value_preds[step]
    return returns


def test_gae_drop_truncated_matches_harls_proper_time_limits():
    rng = np.random.default_rng(1)
    t_len, n = 50, 2
    rewards = rng.normal(size=(t_len, n)).astype(np.float32)
    value_preds = rng.normal(size=(t_len + 1, n)).astype(np.float32)
    terminated = np.zeros(t_len, bool)
    truncated = np.zeros(t_len, bool)
    terminated[[9, 30]] = True
    truncated[[19, 44]] = True
    masks = np.ones((t_len + 1, 1), np.float32)
    masks[1:][terminated | truncated] = 0.0
    bad_masks = np.ones((t_len + 1, 1), np.float32)
    bad_masks[1:][truncated] = 0.0
    want = harl_proper_time_limits_gae(rewards, value_preds, masks, bad_masks, 0.95, 0.9)
    # ours takes the value of the observation reached; at episode ends that value is of final_obs, which HARL
    # never uses: random numbers there must not change the result
    next_values = value_preds[1:].copy()
    next_values[terminated | truncated] = rng.normal(size=(4, n))
    adv, targets = gae(jnp.asarray(rewards), jnp.asarray(value_preds[:-1]), jnp.asarray(next_values), terminated,
                       truncated, 0.95, 0.9, drop_truncated=True)
    np.testing.assert_allclose(targets, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv[truncated], 0.0, atol=1e-6)
    np.testing.assert_allclose(adv[18], rewards[18] + 0.95 * value_preds[19] - value_preds[18], rtol=1e-5)


def forward_view_lambda_return(rewards, next_values, terminated, cut, gamma, lam, t):
    """The lambda-return of step t from its n-step returns (Sutton & Barto, eq. 12.3, truncated at the segment's
    end e: the weight of the n-step returns past it goes to the longest one): (1 - lam) * sum_{n < m} lam^(n - 1)
    G^(n) + lam^(m - 1) G^(m), m = e - t + 1, G^(n) = sum_{k < n} gamma^k r_{t+k} + gamma^n (1 - term) v_{t+n-1}."""
    e = t
    while not (terminated[e] or cut[e] or e == len(rewards) - 1):
        e += 1
    m = e - t + 1

    def n_step(n):
        last = t + n - 1
        boot = 0.0 if terminated[last] else next_values[last]
        return sum(gamma ** k * rewards[t + k] for k in range(n)) + gamma ** n * boot

    return (1 - lam) * sum(lam ** (n - 1) * n_step(n) for n in range(1, m)) + lam ** (m - 1) * n_step(m)


def test_lambda_returns_by_hand_and_from_the_forward_view():
    # two steps, by hand: G_1 = 2 + 0.5 * 20 = 12; G_0 = 1 + 0.5 * (0.4 * 10 + 0.6 * 12) = 6.6
    got = lambda_returns(jnp.array([1.0, 2.0]), jnp.array([10.0, 20.0]), jnp.zeros(2, bool), jnp.zeros(2, bool),
                         0.5, 0.6)
    np.testing.assert_allclose(got, [6.6, 12.0], rtol=1e-6)
    rng = np.random.default_rng(1)
    t_len = 12
    rewards, next_values = rng.normal(size=t_len), rng.normal(size=t_len)
    terminated, cut = np.zeros(t_len, bool), np.zeros(t_len, bool)
    terminated[4], cut[8] = True, True  # an episode that terminates, one truncated (or masked) after step 8
    for lam in (0.0, 0.6, 1.0):
        got = lambda_returns(jnp.asarray(rewards, jnp.float32), jnp.asarray(next_values, jnp.float32), terminated,
                             cut, 0.9, lam)
        want = [forward_view_lambda_return(rewards, next_values, terminated, cut, 0.9, lam, t) for t in range(t_len)]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    one_step = rewards + 0.9 * np.where(terminated, 0.0, next_values)
    np.testing.assert_allclose(lambda_returns(jnp.asarray(rewards), jnp.asarray(next_values), terminated, cut, 0.9,
                                              0.0), one_step, rtol=1e-5)
