"""Value iteration on tabular stochastic games against independent numpy/scipy computations."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

from jaxmarl_core import tabular

GAMMA = 0.9


def random_game(seed, num_states=4, num_actions=3, zero_sum=True):
    rng = np.random.default_rng(seed)
    transition = rng.random((num_states, num_actions, num_actions, num_states))
    go_on = rng.uniform(0.5, 1.0, (num_states, num_actions, num_actions, 1))  # the rest ends the episode
    transition = transition / transition.sum(-1, keepdims=True) * go_on
    r0 = rng.normal(size=(num_states, num_actions, num_actions))
    r1 = -r0 if zero_sum else rng.normal(size=r0.shape)
    initial = rng.dirichlet(np.ones(num_states))
    model = tabular.TabularModel(transition=jnp.asarray(transition, jnp.float32),
                                 reward=jnp.asarray(np.stack([r0, r1], -1), jnp.float32),
                                 initial=jnp.asarray(initial, jnp.float32))
    return model, transition, np.stack([r0, r1], -1), initial


def lp_value(matrix):
    """Value of the zero-sum game max_x min_y x^T M y by scipy's linprog."""
    n, m = matrix.shape
    c = np.zeros(n + 1)
    c[-1] = -1.0  # maximise v
    a_ub = np.hstack([-matrix.T, np.ones((m, 1))])  # v - x^T M[:, j] <= 0
    a_eq = np.hstack([np.ones((1, n)), np.zeros((1, 1))])
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(m), A_eq=a_eq, b_eq=[1.0],
                  bounds=[(0, None)] * n + [(None, None)], method="highs")
    return res.x[-1]


def test_minimax_values_match_shapley_iteration_with_linprog():
    games = [random_game(seed) for seed in range(3)]
    models = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[g[0] for g in games])

    def solve(model):
        value, x, y = tabular.minimax_values(model, GAMMA)
        return value, tabular.nash_conv(model, x, y, GAMMA)

    values, gaps = jax.jit(jax.vmap(solve))(models)  # three games in one call
    for (_, transition, reward, _), value, gap in zip(games, values, gaps):
        v = np.zeros(transition.shape[0])
        for _ in range(200):
            q = reward[..., 0] + GAMMA * np.einsum("sabt,t->sab", transition, v)
            v = np.array([lp_value(q[s]) for s in range(len(v))])
        np.testing.assert_allclose(value, v, atol=1e-4)
        assert float(gap) < 1e-3  # the maximin strategies are an equilibrium: nobody gains by deviating


def exact_values(transition, reward, x, y):
    """[S, 2]: numpy solve of V = r + gamma P V under the stationary profile (x, y)."""
    p = np.einsum("sabt,sa,sb->st", transition, x, y)
    return np.linalg.solve(np.eye(len(p)) - GAMMA * p, np.einsum("sabi,sa,sb->si", reward, x, y))


def brute_force_best_response(transition, reward, policy, player):
    """[S]: the best value ``player`` reaches with any of its deterministic stationary policies, state by state."""
    num_states, num_actions = policy.shape
    best = np.full(num_states, -np.inf)
    for actions in itertools.product(range(num_actions), repeat=num_states):
        pure = np.eye(num_actions)[list(actions)]
        profile = (pure, policy) if player == 0 else (policy, pure)
        best = np.maximum(best, exact_values(transition, reward, *profile)[:, player])
    return best


def test_policy_and_best_response_values_match_numpy():
    model, transition, reward, initial = random_game(7, num_states=3, num_actions=2, zero_sum=False)
    rng = np.random.default_rng(1)
    x, y = rng.dirichlet(np.ones(2), 3), rng.dirichlet(np.ones(2), 3)
    jx, jy = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    expected = exact_values(transition, reward, x, y)
    np.testing.assert_allclose(tabular.policy_values(model, jx, jy, GAMMA), expected, atol=1e-4)
    best0 = brute_force_best_response(transition, reward, y, 0)
    br, greedy = tabular.best_response(model, jy, 0, GAMMA)
    np.testing.assert_allclose(br, best0, atol=1e-4)
    np.testing.assert_allclose(tabular.policy_values(model, greedy, jy, GAMMA)[:, 0], best0,
                               atol=1e-4)  # the greedy policy earns the best-response value
    best1 = brute_force_best_response(transition, reward, x, 1)
    gap = initial @ (best0 - expected[:, 0]) + initial @ (best1 - expected[:, 1])
    np.testing.assert_allclose(float(tabular.nash_conv(model, jx, jy, GAMMA)), gap, atol=1e-4)


def test_harmonic_schedule():
    assert float(tabular.harmonic(0.5, 0, 1000)) == 0.5
    np.testing.assert_allclose(float(tabular.harmonic(0.5, 100.0, 100)), 0.25)
