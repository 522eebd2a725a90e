"""Gaussian squeeze (``envs.mean_field``): one group of identical agents, up to 10,000, stepped under jit; and
``train.py``'s metrics.csv, whose width does not grow with the number of agents."""
import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import train
from jaxmarl_core import outputs

BIG = 10_000


def numpy_reward(total, mu=400.0, sigma=200.0):
    total = np.float64(total)
    return total * np.exp(-((total - mu) ** 2) / sigma ** 2)


@pytest.fixture(scope="module")
def big_step():
    env = envs.make("gaussian_squeeze", n_agents=BIG)
    return env, jax.jit(env.step)


def test_ten_thousand_agents_in_one_group_step_under_jit_with_the_shared_reward(big_step):
    env, step = big_step
    (group,) = env.groups
    assert (group.name, group.size, group.action_space.n) == ("agents", BIG, 10)
    assert len(env.action_spaces) == BIG and env.num_actions == 10
    obs, state = env.reset(jax.random.PRNGKey(0))
    assert obs.shape == (BIG, 1)
    rng = np.random.default_rng(0)
    for density in (0.005, 0.01, 0.02):  # totals around 225, 450 and 900: both sides of the peak
        actions = rng.integers(0, 10, BIG) * (rng.uniform(size=BIG) < density)
        ts = step(jax.random.PRNGKey(1), state, jnp.asarray(actions, jnp.int32))
        expected = numpy_reward(actions.sum())
        assert float(ts.info["total"]) == actions.sum()
        assert ts.reward.shape == (BIG,) and ts.reward.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(ts.reward), expected, rtol=1e-5)
        assert expected > 1.0
        assert bool(ts.terminated) and not bool(ts.truncated)
    avail = env.avail_actions(state)
    assert avail.shape == (BIG, 10) and bool(jnp.all(avail))


def test_reward_of_random_play_matches_numpy_for_other_centres():
    env = envs.make("gaussian_squeeze", n_agents=60, mu=150.0, sigma=50.0, num_choices=6)
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0))
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 6, size=(32, 60))
    ts = jax.jit(jax.vmap(env.step, in_axes=(None, None, 0, None)))(jax.random.PRNGKey(0), state,
                                                                    jnp.asarray(actions), params)
    expected = numpy_reward(actions.sum(1), 150.0, 50.0)
    np.testing.assert_allclose(np.asarray(ts.reward), np.repeat(expected[:, None], 60, 1), rtol=1e-5)


def test_optimum_is_445_with_the_default_centre_and_clipped_for_small_populations():
    x, r = envs.make("gaussian_squeeze", n_agents=1000).optimum()
    assert float(x) == 445.0
    np.testing.assert_allclose(float(r), numpy_reward(445.0), rtol=1e-6)
    np.testing.assert_allclose(float(r), 423.03, atol=0.01)
    totals = np.arange(0, 9001)
    assert totals[np.argmax(numpy_reward(totals))] == 445
    x, r = envs.make("gaussian_squeeze", n_agents=10).optimum()  # at most 90: the best is all agents on 9
    assert float(x) == 90.0
    np.testing.assert_allclose(float(r), numpy_reward(90.0), rtol=1e-6)


def test_a_unit_scales_every_choice_and_keeps_the_paper_optimum_at_any_population():
    """unit = 100 / N: N agents share the 100-agent range 0 .. 900, so x* = 445 and r* = 423.03 as at N = 100."""
    env = envs.make("gaussian_squeeze", n_agents=500, unit=0.2)
    x, r = env.optimum()
    np.testing.assert_allclose([float(x), float(r)], [445.0, numpy_reward(445.0)], rtol=1e-6)
    actions = np.random.default_rng(2).integers(0, 10, size=500)
    _, state = env.reset(jax.random.PRNGKey(0))
    ts = env.step(jax.random.PRNGKey(1), state, jnp.asarray(actions, jnp.int32))
    np.testing.assert_allclose(float(ts.info["total"]), 0.2 * actions.sum(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ts.reward), numpy_reward(0.2 * actions.sum()), rtol=1e-5)


@pytest.mark.parametrize("arg", ["n_agents=0", "sigma=0", "num_choices=0", "unit=0"])
def test_bad_arguments_are_one_line_usage_errors(arg, tmp_path, capsys):
    code = train.main(["--algo", "iql_tabular", "--env", "gaussian_squeeze", "--env-arg", arg,
                       "--out", str(tmp_path / "run")])
    assert code == train.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("train.py: error: --env-arg") and "\n" not in err and arg.split("=")[0] in err


def _train(tmp_path, n):
    out = str(tmp_path / f"n{n}")
    code = train.main(["--algo", "iql_tabular", "--env", "gaussian_squeeze", "--env-arg", f"n_agents={n}",
                       "--seeds", "2", "--set", "total_steps=20", "--set", "steps_per_update=10", "--out", out,
                       "--quiet"])
    assert code == 0
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return rows, summary


def test_train_writes_metrics_whose_width_does_not_grow_with_the_agents(tmp_path):
    """Tabular Q-learning (``iql_tabular``) on the one-state game: 20 agents (above the per-agent limit) and
    10,000 agents give the same columns; 10 agents (below it) keep one column per agent."""
    assert 10 <= outputs.PER_AGENT_COLUMNS_MAX < 20
    rows, summary = _train(tmp_path, BIG)
    rows20, summary20 = _train(tmp_path, 20)
    assert list(rows[0]) == list(rows20[0]) and list(summary["final"]) == list(summary20["final"])
    assert len(rows) == len(rows20) == 4  # 2 seeds x 2 updates
    for row in rows + rows20:  # the reward is shared: every agent's mean reward per step is the same
        assert row["reward_per_step/agents/min"] == row["reward_per_step/agents/max"]
        np.testing.assert_allclose(float(row["reward_per_step/agents/mean"]),
                                   float(row["reward_per_step/agents/min"]), rtol=1e-6)
        assert int(row["episodes"]) == 10  # every step is a one-shot episode
        probs = [float(row[f"policy/agents/mean/{a}"]) for a in range(10)]
        np.testing.assert_allclose(sum(probs), 1.0, rtol=1e-5)
    assert not any(col.split("/")[1].isdigit() for col in rows[0] if "/" in col)
    rows10, _ = _train(tmp_path, 10)
    assert {f"reward_per_step/{i}" for i in range(10)} <= set(rows10[0])
    assert "policy/9/9" in rows10[0] and not any("/agents/" in col for col in rows10[0])


# -- Ising ------------------------------------------------------------------------------------------------------------

def numpy_ising_rewards(spins01: np.ndarray, size: int, field: float = 0.0) -> np.ndarray:
    """r_i = 1/2 s_i * (sum of the 4 torus neighbours' spins) + h s_i, by an explicit loop over the sites."""
    s = 2 * spins01.reshape(size, size) - 1
    r = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            nb = s[(i - 1) % size, j] + s[(i + 1) % size, j] + s[i, (j - 1) % size] + s[i, (j + 1) % size]
            r[i, j] = 0.5 * s[i, j] * nb + field * s[i, j]
    return r.reshape(-1)


def numpy_neighbour_mean(actions: np.ndarray, neighbours, num_actions: int) -> np.ndarray:
    out = np.zeros((len(actions), num_actions))
    for i, nb in enumerate(neighbours):
        for j in nb:
            out[i, actions[j]] += 1.0 / len(nb)
    return out


@pytest.mark.parametrize("size,field", [(3, 0.0), (5, 0.0), (4, 0.3)])
def test_ising_rewards_order_parameter_and_observation_match_a_loop(size, field):
    env = envs.make("ising", size=size, field=field)
    _, state = env.reset(jax.random.PRNGKey(0))
    rng = np.random.default_rng(size)
    step = jax.jit(env.step)
    for _ in range(4):
        spins = rng.integers(0, 2, size * size)
        ts = step(jax.random.PRNGKey(1), state, jnp.asarray(spins, jnp.int32))
        np.testing.assert_allclose(np.asarray(ts.reward), numpy_ising_rewards(spins, size, field), atol=1e-6)
        ups = spins.sum()
        np.testing.assert_allclose(float(ts.info["order_parameter"]), abs(2 * ups - size * size) / size ** 2,
                                   rtol=1e-6)
        grid = spins.reshape(size, size)
        obs = np.asarray(ts.obs).reshape(size, size, 4)
        for i in range(size):
            for j in range(size):
                want = [grid[(i - 1) % size, j], grid[(i + 1) % size, j], grid[i, (j - 1) % size],
                        grid[i, (j + 1) % size]]
                assert list(obs[i, j]) == want
    # all aligned: every agent's reward is 2 (+ h), the order parameter 1
    ts = step(jax.random.PRNGKey(1), state, jnp.ones((size * size,), jnp.int32))
    np.testing.assert_allclose(np.asarray(ts.reward), 2.0 + field, rtol=1e-6)
    assert float(ts.info["order_parameter"]) == 1.0


def test_ising_episode_is_truncated_at_num_steps():
    env = envs.make("ising", size=2, num_steps=3)
    _, state = env.reset(jax.random.PRNGKey(0))
    flags = []
    for t in range(3):
        ts = env.step(jax.random.PRNGKey(t), state, jnp.zeros((4,), jnp.int32))
        state = ts.state
        flags.append((bool(ts.terminated), bool(ts.truncated)))
    assert flags == [(False, False), (False, False), (False, True)]


@pytest.mark.parametrize("name,kwargs,num_actions", [("ising", {"size": 4}, 2), ("ising", {"size": 3}, 2),
                                                     ("gaussian_squeeze", {"n_agents": 7, "num_choices": 4}, 4)])
def test_neighbour_mean_action_matches_a_loop(name, kwargs, num_actions):
    env = envs.make(name, **kwargs)
    n = env.num_agents
    if name == "ising":
        size = kwargs["size"]
        neighbours = [[((i // size - 1) % size) * size + i % size, ((i // size + 1) % size) * size + i % size,
                       (i // size) * size + (i % size - 1) % size, (i // size) * size + (i % size + 1) % size]
                      for i in range(n)]
    else:
        neighbours = [[j for j in range(n) if j != i] for i in range(n)]
    _, state = env.reset(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    for _ in range(3):
        actions = rng.integers(0, num_actions, n)
        got = np.asarray(jax.jit(env.neighbour_mean_action)(state, jnp.asarray(actions, jnp.int32)))
        np.testing.assert_allclose(got, numpy_neighbour_mean(actions, neighbours, num_actions), atol=1e-6)


def test_onsager_curve_matches_the_known_critical_point():
    from envs.mean_field import TAU_CRITICAL, onsager_magnetisation

    # Onsager's T_c = 2 J / ln(1 + sqrt 2) = 2.269185 J at beta J = 1 / T; here beta J = 1 / (2 tau)
    np.testing.assert_allclose(2 * TAU_CRITICAL, 2.269185, atol=1e-6)
    taus = np.array([0.3, 0.9, 1.1, TAU_CRITICAL * 0.999, TAU_CRITICAL * 1.001, 2.0])
    m = onsager_magnetisation(taus)
    beta = 1 / (2 * taus)
    expected = np.where(taus < TAU_CRITICAL, np.clip(1 - np.sinh(2 * beta) ** -4, 0, None) ** 0.125, 0.0)
    np.testing.assert_allclose(m, expected, atol=1e-12)
    assert m[0] > 0.999 and 0 < m[3] < 0.6 and m[4] == 0.0 and np.all(np.diff(m) <= 0)
    # tabulated values of the square lattice's spontaneous magnetisation (Yang, 1952) at k T / J = 1.0, 2.0, 2.2,
    # i.e. tau = T / (2 J): 0.99928, 0.91132, 0.78476
    np.testing.assert_allclose(onsager_magnetisation(np.array([0.5, 1.0, 1.1])), [0.99928, 0.91132, 0.78476],
                               atol=1e-5)


@pytest.mark.parametrize("arg", ["size=1", "size=0", "num_steps=0"])
def test_ising_bad_arguments_are_one_line_usage_errors(arg, tmp_path, capsys):
    code = train.main(["--algo", "mfq_tabular", "--env", "ising", "--env-arg", arg, "--out", str(tmp_path / "run")])
    assert code == train.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("train.py: error: --env-arg") and "\n" not in err and arg.split("=")[0] in err
