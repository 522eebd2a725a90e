"""Mean-field learners (``algos.mean_field``): the tabular MF-Q orders the Ising lattice below the critical
temperature and not above it, and learns the released code's exact action values; each neural learner learns a small
Gaussian squeeze; bad input fails in one line."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
import train
from algos.mean_field import evaluate as mf_evaluate
from algos.mean_field import learner as mf_learner
from envs.mean_field import TAU_CRITICAL
from jaxmarl_core.config import override


def run(algo, env, sets, seeds=2):
    a = algos.get(algo)
    cfg = override(a.default_config(env), sets)
    cfg.validate(env)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(a.make_train(env, cfg)))(keys).metrics)


@pytest.fixture(scope="module")
def ising_runs():
    """An 8 x 8 torus, 1,500 steps, well below (0.5) and well above (3.0) tau_c = 1.1346."""
    env = envs.make("ising", size=8)
    return {tau: run("mfq_tabular", env, ["total_steps=1500", f"temperature={tau}"]) for tau in (0.5, 3.0)}


def test_tabular_mfq_orders_below_the_critical_temperature_and_not_above(ising_runs):
    assert 0.5 < TAU_CRITICAL < 3.0
    late = {tau: m["order_parameter"][:, -5:].mean(axis=1) for tau, m in ising_runs.items()}  # the last 500 steps
    # Onsager: M(0.5) = 0.9993, M(3.0) = 0; the 64-spin lattice's |M| above tau_c is of order N^-1/2 = 0.125
    assert np.all(late[0.5] > 0.9), late
    assert np.all(late[3.0] < 0.35), late


def test_tabular_mfq_learns_the_released_codes_reward_table(ising_runs):
    """With the mean action of the step (k up neighbours) the reward is deterministic: Q(k, down) = 2 - k and
    Q(k, up) = k - 2 (the code's ``reward_target``); at tau = 3 every bin is visited often."""
    q = ising_runs[3.0]["q_mean"][:, -1]  # [seeds, 5, 2]
    k = np.arange(5)
    np.testing.assert_allclose(q, np.broadcast_to(np.stack([2.0 - k, k - 2.0], 1), q.shape), atol=0.05)


SQUEEZE = {"n_agents": 20, "mu": 40.0, "sigma": 20.0}  # optimum x* = 44.5 of 0..180; r* = 42.3; random play ~0.2
SMALL = ["hidden_size=32", "hidden_layers=1", "reward_scale=0.05", "num_envs=4", "total_steps=4000", "lr=3e-3"]
Q_SETS = ["temperature=0.005", "temperature_start=0.2", "temperature_decay_steps=2000", "batch_size=256",
          "learning_starts=256"]


def random_play_reward(env, samples=20_000) -> float:
    """E[r(x)] with every agent uniform over its choices (Monte Carlo)."""
    totals = np.random.default_rng(0).integers(0, env.num_choices, (samples, env.n_agents)).sum(axis=1)
    return float(np.mean(totals * np.exp(-((totals - env.mu) ** 2) / env.sigma ** 2)))


# il and ac are mfq and mfac without the mean action (one code path): their learning tests run with -m slow
@pytest.mark.parametrize("algo,sets", [("mfac", []), pytest.param("ac", [], marks=pytest.mark.slow)])
def test_actor_critics_settle_near_the_optimum_of_a_small_gaussian_squeeze(algo, sets):
    env = envs.make("gaussian_squeeze", **SQUEEZE)
    r_star = float(env.optimum()[1])
    m = run(algo, env, SMALL + sets)
    start, late = m["reward"][:, :5].mean(), m["reward"][:, m["reward"].shape[1] // 2:].mean(axis=1)
    assert start < 0.3 * r_star and np.all(late > 0.8 * r_star), (start, late, r_star)


@pytest.mark.parametrize("algo", ["mfq", pytest.param("il", marks=pytest.mark.slow)])
def test_q_learners_rise_far_above_random_play_on_a_small_gaussian_squeeze(algo):
    """The Q-learners' shared, nearly greedy Boltzmann policies move the whole population at once, and on the
    squeeze they oscillate about the optimum rather than settle (see benchmarks/RESULTS.md): the bar is four times
    the reward of random play (mean over seeds), not r*."""
    env = envs.make("gaussian_squeeze", **SQUEEZE)
    m = run(algo, env, SMALL + Q_SETS)
    late = m["reward"][:, m["reward"].shape[1] // 2:].mean(axis=1)
    assert late.mean() > 4 * random_play_reward(env), (late, random_play_reward(env))


@pytest.mark.parametrize("argv,fragment", [
    (["--algo", "mfq_tabular", "--env", "ising", "--set", "temperature=0"], "temperature must be positive"),
    (["--algo", "mfq", "--env", "ising", "--set", "temperature=-1"], "temperature must be positive"),
    (["--algo", "mfq_tabular", "--env", "gaussian_squeeze"], "binary actions"),
    (["--algo", "mfq", "--env", "ipd"], "NeighbourMeanAction"),
    (["--algo", "il", "--env", "ising", "--set", "released_code=true"], "mfq only"),
    (["--algo", "mfq", "--env", "gaussian_squeeze", "--set", "self_play=true"], "two agent groups"),
    (["--algo", "mfac", "--env", "battle", "--set", "self_play_tau=1.5"], "self_play_tau must lie in [0, 1]"),
])
def test_bad_input_is_a_one_line_error(argv, fragment, tmp_path, capsys):
    code = train.main([*argv, "--out", str(tmp_path / "run")])
    assert code == train.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and fragment in err, err


def test_released_code_acts_greedily_on_the_group_mean():
    """released_code=true: every agent of the one group sees the same observation and the same group mean, so greedy
    acting gives all the same action and the squeeze's total is a multiple of N at every step; the paper's
    Boltzmann policy mixes actions."""
    env = envs.make("gaussian_squeeze", n_agents=8)
    sets = ["total_steps=30", "num_envs=1", "hidden_size=8", "batch_size=8", "learning_starts=8"]
    released = run("mfq", env, sets + ["released_code=true"])["total"]
    assert np.all(released % 8 == 0), released
    paper = run("mfq", env, sets + ["temperature=1.0", "temperature_start=1.0"])["total"]
    assert np.any(paper % 8 != 0), paper


@pytest.mark.parametrize("wins", [0, 1, 3])
def test_self_play_update_is_the_released_codes_soft_copy_repeated_per_win(wins):
    """k wins: k times opponent <- (1 - tau) * learner + tau * opponent (the code's ``sp_op``), in one step."""
    cfg = algos.get("mfq").default_config(envs.make("battle", map_size=20, n_per_side=8))
    cfg = override(cfg, ["self_play=true", "self_play_tau=0.3"])
    slices = [("red", slice(0, 8)), ("blue", slice(8, 16))]
    rng = np.random.default_rng(0)
    learner, opponent = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    expected = opponent
    for _ in range(wins):
        expected = (1 - 0.3) * learner + 0.3 * expected
    got = mf_learner.self_play_update(cfg, slices, {"red": {"w": learner}}, {"blue": {"w": opponent}},
                                      jnp.asarray(wins))
    np.testing.assert_allclose(np.asarray(got["blue"]["w"]), expected, rtol=1e-5, atol=1e-6)


def test_cross_play_win_rule_counts_survivors():
    survivors = jnp.asarray([[5, 3], [0, 2], [4, 4], [1, 0]])
    assert mf_evaluate.wins(survivors) == {"first": 2, "second": 1, "draw": 1}
