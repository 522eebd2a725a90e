"""DiCE: first and second derivatives of the surrogate, averaged over many sampled episodes of the IPD, match the
exact derivatives of the closed-form value (``exact_value``) within sampling error.

Tolerance: each component of the batch mean may differ from the exact derivative by at most 4.5 standard errors
(estimated from the per-episode estimates) plus 1% of the largest exact component (the 200-step episodes truncate an
infinite discounted sum: gamma^200 ~ 3e-4).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxmarl_core.dice import dice_objective, magic_box
from jaxmarl_core.policies import MemoryOnePolicy
from jaxmarl_core.rollout import reset_carry, rollout

T, EPISODES = 200, 8192
ENV = envs.make("ipd", num_steps=T)
PARAMS = ENV.default_params
GAMMA = float(PARAMS.discount)
THETA = jnp.array([[0.5, 1.0, -1.0, 0.3, -0.5], [-0.2, 0.8, 0.4, -1.2, 0.1]])


def test_magic_box_value_and_derivatives():
    x = jnp.float32(0.7)
    assert float(magic_box(x)) == 1.0
    def f(a):  # d/da = 2a, d2/da2 = 2 + 4a^2 (the derivatives of exp(a^2 - sg) at 1)
        return magic_box(a * a)

    assert np.isclose(jax.grad(f)(x), 2 * 0.7)
    assert np.isclose(jax.grad(jax.grad(f))(x), 2 + 4 * 0.49, rtol=1e-5)


@functools.cache
def episodes():
    """EPISODES trajectories of THETA, time-major: obs [T, E, 2, 5], actions [T, E, 2], rewards [T, E, 2]."""
    def policy(k, obs, _):
        p = jax.nn.sigmoid(jnp.sum(obs * THETA, -1))
        return (jax.random.uniform(k, (2,)) >= p).astype(jnp.int32), None, None

    def one(k):
        k0, k1 = jax.random.split(k)
        return rollout(k1, ENV, PARAMS, policy, reset_carry(k0, ENV, PARAMS), T)[1]

    return jax.jit(jax.vmap(one, out_axes=1))(jax.random.split(jax.random.PRNGKey(0), EPISODES))


def state_values(theta):
    """[2, 5] exact values of each agent from each own-perspective memory state (numpy, independent of the env)."""
    p = np.asarray(jax.nn.sigmoid(theta), np.float64)
    swap = [0, 2, 1, 3]
    x, y = p[0], np.concatenate([p[1, :1], p[1, 1:][swap]])
    def joint(a, b):
        return np.stack([a * b, a * (1 - b), (1 - a) * b, (1 - a) * (1 - b)], -1)

    trans = joint(x[1:], y[1:])
    r = np.asarray(PARAMS.payoffs).reshape(2, 4)
    future = np.linalg.solve(np.eye(4) - GAMMA * trans, r.T)  # [4, 2]: value from the joint action's next step
    start = joint(x[0], y[0]) @ future  # [2]
    after = trans @ future  # [4 (agent 0's joint order), 2]
    v0 = np.concatenate([[start[0]], after[:, 0]])
    v1 = np.concatenate([[start[1]], after[swap, 1]])
    return jnp.asarray(np.stack([v0, v1]), jnp.float32)


BASELINES = state_values(THETA)
POLICY = MemoryOnePolicy()


def per_episode_objective(theta, ep, i, kind):
    """Agent i's DiCE objective of one episode (obs [T, 2, 5], ...), with the baseline ``kind``."""
    logp = sum(POLICY.log_probs(theta[a], POLICY.encode(ep.obs[:, None, a]), ep.action[:, None, a])[:, 0]
               for a in range(2))
    base = None if kind == "none" else (ep.obs[:, i] @ BASELINES[i])[:, None]
    return dice_objective(logp[:, None], ep.reward[:, i:i + 1], GAMMA, base, any_order=kind == "any_order")


def check(samples, exact, what):
    samples, exact = np.asarray(samples, np.float64), np.asarray(exact, np.float64)
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    bound = 4.5 * se + 0.01 * np.abs(exact).max()
    assert np.all(np.abs(mean - exact) <= bound), f"{what}: estimate {mean}, exact {exact}, bound {bound}"


def exact_v(t, i):
    return ENV.exact_value(t, PARAMS)[i]


@functools.cache
def first_derivatives(kind, i):
    """[EPISODES, 10]: per-episode DiCE estimates of grad V_i (both agents' parameters), baseline ``kind``."""
    eps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), episodes())  # episode-major
    grads = jax.jit(jax.vmap(jax.grad(per_episode_objective), in_axes=(None, 0, None, None)),
                    static_argnums=(2, 3))(THETA, eps, i, kind)
    return np.asarray(grads, np.float64).reshape(EPISODES, -1)


@functools.cache
def cross_second_derivatives(kind, i):
    """[EPISODES, 5]: per-episode estimates of the LOLA term grad_i (v . grad_j V_j), v = grad_j V_i (exact, fixed)."""
    eps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), episodes())
    j = 1 - i
    v = jax.grad(exact_v)(THETA, i)[j]

    def cross(theta, ep):
        return jax.grad(lambda t: jnp.dot(v, jax.grad(per_episode_objective)(t, ep, j, kind)[j]))(theta)[i]

    return np.asarray(jax.jit(jax.vmap(cross, in_axes=(None, 0)))(THETA, eps), np.float64)


@pytest.mark.parametrize("kind", ["none", "dice", "any_order"])
def test_first_derivatives_match_exact_gradient(kind):
    for i in range(2):
        exact = jax.grad(lambda t: ENV.exact_value(t, PARAMS)[i])(THETA)
        check(first_derivatives(kind, i), exact.reshape(-1), f"grad V_{i} ({kind} baseline)")


@pytest.mark.parametrize("kind", ["dice", "any_order"])
def test_cross_second_derivative_matches_exact_hvp(kind):
    """The LOLA term: grad_1 (v . grad_2 V_2) with v = grad_2 V_1 (and symmetrically for agent 2)."""
    for i in range(2):
        j = 1 - i
        v = jax.grad(exact_v)(THETA, i)[j]  # grad_j V_i, a fixed vector
        exact = jax.grad(lambda t: jnp.dot(v, jax.grad(exact_v)(t, j)[j]))(THETA)[i]
        check(cross_second_derivatives(kind, i), exact, f"cross HVP of agent {i} ({kind} baseline)")


def test_baselines_reduce_the_variance():
    """The state-value baseline cuts every component's standard error of the first derivatives ~9-11x (measured);
    it leaves the LOLA cross term's as it is, which only Mao et al.'s ``any_order`` baseline cuts (~6-10x). The
    thresholds are far outside the sampling error of a ratio of standard errors over 8192 episodes (~2%)."""
    for i in range(2):
        none, dice = (first_derivatives(kind, i).std(0, ddof=1) for kind in ("none", "dice"))
        assert np.all(none > 4.0 * dice), (i, none / dice)
        dice, any_order = (cross_second_derivatives(kind, i).std(0, ddof=1) for kind in ("dice", "any_order"))
        assert np.all(dice > 3.0 * any_order), (i, dice / any_order)


def test_baselined_second_derivatives_on_a_hand_made_trajectory():
    """One 3-step trajectory of a tabular softmax policy (2 states x 3 actions), l_t = log pi(a_t | s_t), S_t =
    sum_{l <= t} l_l, P_t = S_t - l_t. With MagicBox's value 1, gradient grad x and Hessian H x + grad x grad x^T:
        d2 L = sum_t gamma^t r_t (H S_t + g S_t g S_t^T) - sum_t gamma^t b_t (H l_t + g l_t g l_t^T)   ("dice"),
    and "any_order" (MagicBox(P_t) (1 - MagicBox(l_t)) b_t) adds - sum_t gamma^t b_t (g P_t g l_t^T + g l_t g P_t^T).
    Gradients and Hessians of the log-softmax in closed form (numpy)."""
    gamma, states, actions = 0.9, np.array([0, 1, 0]), np.array([2, 0, 1])
    rewards, baseline = np.array([1.0, -0.5, 2.0]), np.array([0.3, -1.2, 0.8])
    theta = np.array([[0.2, -0.4, 0.7], [-0.3, 0.5, 0.1]])

    def objective(th, kind):  # th [6]
        logp = jax.nn.log_softmax(th.reshape(2, 3)[states], axis=-1)[np.arange(3), actions]
        base = None if kind == "none" else jnp.asarray(baseline[:, None], jnp.float32)
        return dice_objective(logp[:, None], jnp.asarray(rewards[:, None], jnp.float32), gamma, base,
                              any_order=kind == "any_order")

    pi = np.exp(theta) / np.exp(theta).sum(1, keepdims=True)
    grad_l, hess_l = np.zeros((3, 2, 3)), np.zeros((3, 2, 3, 2, 3))
    for t, (s, a) in enumerate(zip(states, actions)):
        grad_l[t, s] = np.eye(3)[a] - pi[s]
        hess_l[t, s, :, s, :] = -(np.diag(pi[s]) - np.outer(pi[s], pi[s]))
    grad_l, hess_l = grad_l.reshape(3, 6), hess_l.reshape(3, 6, 6)
    grad_s, hess_s = np.cumsum(grad_l, 0), np.cumsum(hess_l, 0)
    grad_p = grad_s - grad_l
    disc = gamma ** np.arange(3)
    want = {"none": sum(disc[t] * rewards[t] * (hess_s[t] + np.outer(grad_s[t], grad_s[t])) for t in range(3))}
    want["dice"] = want["none"] - sum(disc[t] * baseline[t] * (hess_l[t] + np.outer(grad_l[t], grad_l[t]))
                                      for t in range(3))
    want["any_order"] = want["dice"] - sum(disc[t] * baseline[t] * (np.outer(grad_p[t], grad_l[t])
                                                                    + np.outer(grad_l[t], grad_p[t])) for t in range(3))
    # the three kinds' Hessians differ far beyond the tolerance
    assert min(np.abs(want["none"] - want["dice"]).max(), np.abs(want["dice"] - want["any_order"]).max()) > 0.1

    @jax.jit
    def derivatives(x):
        return {kind: (jax.grad(objective)(x, kind), jax.hessian(objective)(x, kind)) for kind in want}

    got = derivatives(jnp.asarray(theta.reshape(-1), jnp.float32))
    for kind, hess in want.items():
        grad = sum(disc[t] * (rewards[t] * grad_s[t] - (kind != "none") * baseline[t] * grad_l[t]) for t in range(3))
        np.testing.assert_allclose(got[kind][0], grad, rtol=1e-5, atol=1e-6, err_msg=kind)
        np.testing.assert_allclose(got[kind][1], hess, rtol=1e-5, atol=1e-6, err_msg=kind)


def test_memory_one_batch_step_is_the_vmapped_step():
    params = jax.random.normal(jax.random.PRNGKey(0), (2, 5))
    obs = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(1), (7, 2), 0, 5), 5)  # [B, N, 5]
    state = jnp.zeros((7, 2))
    fast, _ = POLICY.batch_step(params, state, obs)
    slow, _ = jax.vmap(jax.vmap(POLICY.step), in_axes=(None, 0, 0))(params, state, obs)
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
