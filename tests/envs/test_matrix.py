"""One-shot matrix games: textbook payoffs, the homogeneity trap, and exact values by brute force."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs

# (row payoff, column payoff) of joint actions, written from the textbook games, independent of envs.matrix.
TEXTBOOK = {
    "matrix_pd": {(0, 0): (-1, -1), (0, 1): (-3, 0), (1, 0): (0, -3), (1, 1): (-2, -2)},
    "matrix_mp": {(0, 0): (1, -1), (0, 1): (-1, 1), (1, 0): (-1, 1), (1, 1): (1, -1)},
    "matrix_sh": {(0, 0): (4, 4), (0, 1): (0, 3), (1, 0): (3, 0), (1, 1): (3, 3)},
    "matrix_chicken": {(0, 0): (0, 0), (0, 1): (-1, 1), (1, 0): (1, -1), (1, 1): (-10, -10)},
    "matrix_bos": {(0, 0): (2, 1), (0, 1): (0, 0), (1, 0): (0, 0), (1, 1): (1, 2)},
    # rock, paper, scissors: paper beats rock, scissors beat paper, rock beats scissors
    "matrix_rps": {(1, 0): (1, -1), (2, 1): (1, -1), (0, 2): (1, -1), (0, 1): (-1, 1), (1, 1): (0, 0)},
    "matrix_climbing": {(0, 0): (11, 11), (0, 1): (-30, -30), (1, 1): (7, 7), (1, 2): (6, 6), (2, 2): (5, 5)},
    "matrix_nonmonotonic": {(0, 0): (8, 8), (0, 1): (-12, -12), (2, 0): (-12, -12), (1, 1): (0, 0), (2, 2): (0, 0)},
    "matrix_penalty": {(0, 0): (10, 10), (0, 2): (-10, -10), (1, 1): (2, 2), (2, 0): (-10, -10), (2, 2): (10, 10)},
}


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_payoffs_match_the_textbook_game(name):
    env = envs.make(name)
    _, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for joint, want in TEXTBOOK[name].items():
        ts = step(jax.random.PRNGKey(1), state, jnp.array(joint))
        np.testing.assert_array_equal(ts.reward, want, err_msg=f"{name} {joint}")
        assert bool(ts.terminated) and not bool(ts.truncated)


def test_penalty_game_takes_its_penalty_argument():
    env = envs.make("matrix_penalty", k=-50.0)
    _, state = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(env.step(jax.random.PRNGKey(0), state, jnp.array([0, 2])).reward, [-50, -50])
    with pytest.raises(ValueError, match="k"):
        envs.make("matrix_penalty", k=3.0)


@pytest.mark.parametrize("n", [4, 6])
def test_homogeneity_trap_rewards_exactly_the_two_split_profiles(n):
    env = envs.make("matrix_trap", n_agents=n)
    _, state = env.reset(jax.random.PRNGKey(0))
    joints = jnp.array(list(itertools.product((0, 1), repeat=n)))
    rewards = jax.jit(jax.vmap(lambda a: env.step(jax.random.PRNGKey(0), state, a).reward))(joints)
    half = n // 2
    for joint, r in zip(np.asarray(joints), np.asarray(rewards)):
        first, second = joint[:half], joint[half:]
        split = (all(first == 0) and all(second == 1)) or (all(first == 1) and all(second == 0))
        np.testing.assert_array_equal(r, np.full(n, 1.0 if split else 0.0), err_msg=str(joint))
    assert float(env.exact_value(jnp.zeros((n, 2)))[0]) == pytest.approx(2 / 2 ** n)  # uniform policies


@pytest.mark.parametrize("name,kwargs", [("matrix_rps", {}), ("matrix_climbing", {}), ("matrix_trap", {"n_agents": 4}),
                                         ("matrix_bos", {})])
def test_exact_value_is_the_brute_force_expectation(name, kwargs):
    env = envs.make(name, **kwargs)
    n, a = env.num_agents, env.num_actions
    logits = np.random.default_rng(0).normal(size=(n, a))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    _, state = env.reset(jax.random.PRNGKey(0))
    want = np.zeros(n)
    for joint in itertools.product(range(a), repeat=n):
        r = np.asarray(env.step(jax.random.PRNGKey(0), state, jnp.array(joint)).reward, np.float64)
        want += np.prod([probs[i, joint[i]] for i in range(n)]) * r
    np.testing.assert_allclose(env.exact_value(jnp.asarray(logits, jnp.float32)), want, rtol=1e-5, atol=1e-5)


def test_one_jit_vmaps_over_many_payoff_tables():
    env = envs.make("matrix_pd")
    tables = jax.random.normal(jax.random.PRNGKey(0), (64, 2, 2, 2))
    params = jax.vmap(lambda p: env.default_params.replace(payoffs=p))(tables)
    _, state = env.reset(jax.random.PRNGKey(0))
    rewards = jax.jit(jax.vmap(lambda p: env.step(jax.random.PRNGKey(0), state, jnp.array([1, 0]), p).reward))(params)
    np.testing.assert_allclose(rewards, tables[:, :, 1, 0])
