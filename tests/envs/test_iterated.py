"""Iterated games: observations, payoffs, and the closed-form value checked three independent ways."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxmarl_core.rollout import reset_carry, rollout
from tests.conftest import optimised_jit

GAMMA = 0.96


def numpy_values(theta, payoffs, gamma=GAMMA, terms=None):
    """Independent numpy value of two memory-one policies (theta [2, 5] logits, own-perspective states).

    Enumerates the 4 joint actions in agent 0's order (CC, CD, DC, DD); agent 1's state for joint (a0, a1) is its
    own-perspective (a1, a0). ``terms``: None for the matrix inverse, else a truncated power series."""
    p = 1 / (1 + np.exp(-np.asarray(theta, np.float64)))
    joints = [(a0, a1) for a0 in (0, 1) for a1 in (0, 1)]

    def prob(pc, a):
        return pc if a == 0 else 1 - pc

    def own_state(agent, a0, a1):  # index 1..4 of the memory state in this agent's perspective
        mine, other = (a0, a1) if agent == 0 else (a1, a0)
        return 1 + 2 * mine + other

    p0 = np.array([prob(p[0, 0], a0) * prob(p[1, 0], a1) for a0, a1 in joints])
    trans = np.array([[prob(p[0, own_state(0, *prev)], a0) * prob(p[1, own_state(1, *prev)], a1)
                       for a0, a1 in joints] for prev in joints])
    r = np.array([[payoffs[i][a0][a1] for a0, a1 in joints] for i in range(2)])  # [2, 4]
    if terms is None:
        occupancy = np.linalg.solve(np.eye(4) - gamma * trans.T, p0)
    else:
        occupancy, dist = np.zeros(4), p0.copy()
        for t in range(terms):
            occupancy += gamma ** t * dist
            dist = dist @ trans
    return r @ occupancy


@pytest.mark.parametrize("game", ["ipd", "imp"])
def test_observations_and_payoffs(game):
    env = envs.make(game)
    obs, state = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(obs, [[1, 0, 0, 0, 0]] * 2)
    ts = env.step(jax.random.PRNGKey(1), state, jnp.array([0, 1]))  # agent 0 cooperates, agent 1 defects
    np.testing.assert_array_equal(ts.obs[0], [0, 0, 1, 0, 0])  # agent 0 sees CD (own C, other D)
    np.testing.assert_array_equal(ts.obs[1], [0, 0, 0, 1, 0])  # agent 1 sees DC (own D, other C)
    want = {"ipd": [-3, 0], "imp": [-1, 1]}[game]
    np.testing.assert_array_equal(ts.reward, want)
    table = {"ipd": {(0, 0): (-1, -1), (0, 1): (-3, 0), (1, 0): (0, -3), (1, 1): (-2, -2)},
             "imp": {(0, 0): (1, -1), (0, 1): (-1, 1), (1, 0): (-1, 1), (1, 1): (1, -1)}}[game]
    for (a0, a1), r in table.items():
        np.testing.assert_array_equal(env.step(jax.random.PRNGKey(2), state, jnp.array([a0, a1])).reward, r)


PAYOFFS = {"ipd": [[[-1, -3], [0, -2]], [[-1, 0], [-3, -2]]], "imp": [[[1, -1], [-1, 1]], [[-1, 1], [1, -1]]]}


@pytest.mark.parametrize("game", ["ipd", "imp"])
def test_exact_value_matches_independent_numpy_formulas(game):
    env = envs.make(game)
    value = jax.jit(env.exact_value)
    for seed in range(5):
        theta = np.random.default_rng(seed).normal(0, 1.5, (2, 5)).astype(np.float32)
        got = np.asarray(value(jnp.asarray(theta)))
        np.testing.assert_allclose(got, numpy_values(theta, PAYOFFS[game]), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(got, numpy_values(theta, PAYOFFS[game], terms=2000), rtol=1e-4, atol=1e-3)
    theta = jnp.asarray(np.random.default_rng(9).normal(size=(2, 5)), jnp.float32)
    np.testing.assert_allclose(env.exact_value(theta, per_step=True), (1 - GAMMA) * env.exact_value(theta),
                               rtol=1e-6)


def test_exact_value_matches_monte_carlo_within_one_percent():
    """Discounted returns of vmapped 400-step rollouts (gamma^400 ~ 1e-7) against the closed form."""
    env = envs.make("ipd", num_steps=400)
    params = env.default_params
    episodes = 8192

    def returns(theta, key):
        def policy(k, obs, _):
            p = jax.nn.sigmoid(jnp.sum(obs * theta, -1))
            return (jax.random.uniform(k, (2,)) >= p).astype(jnp.int32), None, None

        def one(k):
            k0, k1 = jax.random.split(k)
            tr = rollout(k1, env, params, policy, reset_carry(k0, env, params), 400)[1]
            return jnp.sum(GAMMA ** jnp.arange(400)[:, None] * tr.reward, axis=0)  # [2]

        return jax.vmap(one)(jax.random.split(key, episodes))

    returns = optimised_jit(returns)
    for seed in range(3):
        theta = jax.random.normal(jax.random.PRNGKey(100 + seed), (2, 5))
        g = np.asarray(returns(theta, jax.random.PRNGKey(seed)), np.float64)  # [E, 2]
        mc, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(episodes)
        exact = np.asarray(env.exact_value(theta, params))
        assert np.all(4 * se < 0.01 * np.abs(exact)), "the sample must be large enough to resolve 1%"
        np.testing.assert_allclose(mc, exact, rtol=0.01)


@pytest.mark.parametrize("game", ["ipd", "imp"])
def test_exact_value_gradient_matches_finite_differences(game):
    env = envs.make(game)
    theta = np.random.default_rng(3).normal(size=(2, 5))
    jac = np.asarray(jax.jacrev(env.exact_value)(jnp.asarray(theta, jnp.float32)))  # [2 values, 2, 5]
    eps = 1e-5
    fd = np.zeros((2, 2, 5))
    for idx in np.ndindex(2, 5):
        up, down = theta.copy(), theta.copy()
        up[idx] += eps
        down[idx] -= eps
        fd[(slice(None),) + idx] = (numpy_values(up, PAYOFFS[game]) - numpy_values(down, PAYOFFS[game])) / (2 * eps)
    np.testing.assert_allclose(jac, fd, rtol=2e-3, atol=2e-3)
