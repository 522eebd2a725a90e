"""Classical matrix-game learners learn what their papers say: WoLF-PHC and WoLF-IGA converge to the mixed
equilibrium where PHC and IGA circle it, the lagging anchor converges in zero-sum games, L_R-I finds the pure strict
equilibrium and L_R-P hovers at the mixed one."""
import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
from algos import gradient_play, learning_automata, policy_hill_climbing
from jaxmarl_core import solvers
from tests.conftest import optimised_jit

SEEDS = 16


@functools.cache
def run(algo: str, env_name: str, **overrides):
    """Train ``algo`` on ``env_name`` over SEEDS seeds -> metrics as numpy arrays [seeds, updates, ...]."""
    env = envs.make(env_name)
    config = dataclasses.replace(algos.get(algo).default_config(env), **overrides)
    config.validate(env)
    trainer = algos.get(algo).make_train(env, config)
    out = optimised_jit(jax.vmap(trainer))(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    return {k: np.asarray(v) for k, v in out.metrics.items()}


def max_deviation(policy, num_actions):
    """[seeds, updates]: largest |pi(a) - 1/A| over players and actions (the uniform equilibrium of MP and RPS)."""
    return np.abs(policy - 1.0 / num_actions).max(axis=(-1, -2))


@pytest.mark.parametrize("game,num_actions", [("matrix_mp", 2), ("matrix_rps", 3)])
def test_wolf_phc_current_policy_converges_where_phc_cycles(game, num_actions):
    wolf = max_deviation(run("wolf_phc", game)["policy"], num_actions)
    phc = max_deviation(run("phc", game)["policy"], num_actions)
    quarter = wolf.shape[1] * 3 // 4
    # the learners start at the uniform equilibrium, so first: WoLF-PHC's policy left it (a frozen one would not)
    moved = wolf.max(axis=1)  # [seeds]: the largest deviation over the run
    assert np.all(moved > 0.03), moved  # measured: MP >= 0.062, RPS >= 0.107
    assert wolf[:, -1].max() < 0.05, wolf[:, -1]  # measured: MP 0.018, RPS 0.040 (worst of 16 seeds)
    assert np.all(wolf[:, -1] < moved / 2), wolf[:, -1] / moved  # and came back; measured: ratio <= 0.28
    assert np.all(phc[:, quarter:].max(axis=1) > 0.2), phc[:, quarter:].max(axis=1)  # measured >= 0.37


def test_iql_tabular_defects_in_the_prisoners_dilemma():
    policy = run("iql_tabular", "matrix_pd")["policy"]  # greedy policies [seeds, updates, 2, 2]
    assert np.all(policy[:, -1, :, 1] == 1.0)


def test_wolf_iga_converges_in_2x2_games_where_iga_circles_matching_pennies():
    games = ("matrix_mp", "matrix_pd", "matrix_sh", "matrix_chicken", "matrix_bos")
    env = envs.make("matrix_mp")
    payoffs = jnp.stack([envs.make(g).default_params.payoffs for g in games])  # one jit over the five games
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)

    def train(payoffs, wolf):
        config = dataclasses.replace(algos.get("wolf_iga").default_config(env), num_updates=2000, wolf=wolf)
        trainer = gradient_play.make_train(env, config, env.default_params.replace(payoffs=payoffs))
        return jax.vmap(trainer)(keys).metrics["nash_conv"]

    wolf = np.asarray(jax.jit(jax.vmap(functools.partial(train, wolf=True)))(payoffs))  # [games, seeds, updates]
    assert wolf[:, :, -1].max() < 1e-3, wolf[:, :, -1].max(axis=1)
    iga = np.asarray(jax.jit(functools.partial(train, wolf=False))(payoffs[0]))
    assert np.median(iga[:, -500:].min(axis=1)) > 0.5  # measured: 1.0 (the orbit keeps its distance)


@pytest.mark.parametrize("game", ["matrix_mp", "matrix_rps"])
def test_lagging_anchor_converges_where_gradient_play_cycles(game):
    anchored = run("lagging_anchor", game, num_updates=3000)["nash_conv"]
    plain = run("lagging_anchor", game, num_updates=3000, anchor=0.0)["nash_conv"]
    assert anchored[:, -1].max() < 1e-3, anchored[:, -1]
    assert np.median(plain[:, -500:].min(axis=1)) > 0.3  # measured: MP 1.0, RPS 0.58


def test_lri_finds_the_pure_strict_equilibrium_and_lrp_the_mixed_one():
    lri = run("lri", "matrix_pd")["policy"]  # [seeds, updates, 2, 2]
    assert np.all(lri[:, -1, :, 1] > 0.99), lri[:, -1, :, 1]  # both defect
    lrp = run("lrp", "matrix_mp")["policy"]
    half = lrp.shape[1] // 2
    assert np.abs(lrp[:, half:, :, 0] - 0.5).mean() < 0.05  # measured 0.029
    moved = np.abs(lrp[..., 0] - 0.5).max(axis=(1, 2))  # it starts at (0.5, 0.5): the automata do move and hover
    assert np.all(moved > 0.04), moved  # measured >= 0.084
    lri_mp = run("lri", "matrix_mp")["policy"]  # without penalties the automata get absorbed at pure actions
    assert np.abs(lri_mp[:, -1, :, 0] - 0.5).mean() > 0.4


def test_same_key_same_result():
    env = envs.make("matrix_rps")
    config = dataclasses.replace(algos.get("wolf_phc").default_config(env), total_steps=2000, steps_per_update=500)
    trainer = jax.jit(algos.get("wolf_phc").make_train(env, config))
    a, b = trainer(jax.random.PRNGKey(3)), trainer(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(a.metrics["policy"], b.metrics["policy"])


def test_climb_and_automaton_steps_stay_on_the_simplex():
    key = jax.random.PRNGKey(0)
    pi = jax.random.dirichlet(key, jnp.ones(4), (64,))
    q = jax.random.normal(jax.random.fold_in(key, 1), (64, 4))
    delta = jax.random.uniform(jax.random.fold_in(key, 2), (64,))
    moved = policy_hill_climbing.climb(pi, q, delta)
    np.testing.assert_allclose(moved.sum(-1), 1.0, atol=1e-6)
    assert float(moved.min()) >= 0.0
    greedy = jnp.argmax(q, axis=-1)
    rows = jnp.arange(64)
    assert bool(jnp.all(moved[rows, greedy] >= pi[rows, greedy]))
    actions = jax.random.randint(jax.random.fold_in(key, 3), (64,), 0, 4)
    beta = jax.random.uniform(jax.random.fold_in(key, 4), (64,))
    stepped = learning_automata.automaton_step(pi, actions, beta, 0.3, 0.2)
    np.testing.assert_allclose(stepped.sum(-1), 1.0, atol=1e-6)
    assert float(stepped.min()) >= 0.0


def test_project_simplex_is_the_euclidean_projection():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 3)) * 2
    p = np.asarray(solvers.project_simplex(jnp.asarray(v, jnp.float32)))
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    grid = np.array([(a, b, 1 - a - b) for a, b in itertools.product(np.linspace(0, 1, 201), repeat=2)
                     if a + b <= 1 + 1e-9])
    for row, proj in zip(v[:20], p[:20]):  # no point of a fine grid of the simplex is closer
        best = np.min(np.sum((grid - row) ** 2, axis=1))
        assert np.sum((proj - row) ** 2) <= best + 1e-5


def test_deviation_gains_match_the_bimatrix_formula():
    """Random asymmetric 3 x 3 bimatrix games (A != B, A != A^T, B != B^T: a transposed table or strategy changes the
    numbers) and random mixed profiles: the environment's and the solver's gains are the written-out formulas."""
    rng = np.random.default_rng(1)
    env = envs.make("matrix_rps")
    for _ in range(4):
        A, B = rng.normal(size=(2, 3, 3)).astype(np.float32)
        x, y = rng.dirichlet(np.ones(3), 2).astype(np.float32)
        want = np.array([np.max(A @ y) - x @ A @ y, np.max(x @ B) - x @ B @ y])
        params = env.default_params.replace(payoffs=jnp.asarray(np.stack([A, B])))
        np.testing.assert_allclose(env.deviation_gains(jnp.asarray(np.stack([x, y])), params), want, atol=1e-5)
        np.testing.assert_allclose(solvers.deviation_gains(A, B, x, y), want, atol=1e-5)
        transposed = np.array([np.max(x @ A), np.max(B @ y)]) - [x @ A @ y, x @ B @ y]  # each table read transposed
        assert np.abs(transposed - want).min() > 1e-3, (transposed, want)  # for both players; measured >= 0.0108


def test_bad_configs_and_pairs_are_rejected():
    env = envs.make("matrix_mp")
    with pytest.raises(ValueError, match="multiple of steps_per_update"):
        dataclasses.replace(algos.get("wolf_phc").default_config(env), total_steps=1500).validate(env)
    with pytest.raises(ValueError, match="lose_ratio"):
        dataclasses.replace(algos.get("wolf_phc").default_config(env), lose_ratio=0.5).validate(env)
    assert "zero-sum" in algos.compatible("lagging_anchor", envs.make("matrix_pd"))
    assert "two-player" in algos.compatible("wolf_iga", envs.make("matrix_trap"))
    assert "matrix game" in algos.compatible("lri", envs.make("ipd"))
    assert gradient_play.check_env(envs.make("matrix_rps"), "lagging_anchor") is None
