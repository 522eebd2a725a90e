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


@pytest.mark.parametrize("arg", ["n_agents=0", "sigma=0", "num_choices=0"])
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


def test_train_writes_metrics_whose_width_does_not_grow_with_the_agents(tmp_path, fast_compile):
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
