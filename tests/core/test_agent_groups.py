"""Agent groups (``jaxmarl_core.spaces.AgentGroup``, ``Environment.groups``) and the per-group columns of
``metrics.csv`` and ``summary.json`` (``jaxmarl_core.outputs``)."""
import numpy as np
import pytest

import envs
from jaxmarl_core import outputs
from jaxmarl_core.spaces import AgentGroup, Box, Discrete, group_agents, per_agent_spaces

OBS, OBS_BIG = Box(0.0, 1.0, (1,)), Box(-1.0, 1.0, (3,))
ACT = Discrete(4)


def test_group_agents_finds_runs_of_equal_spaces_and_expands_back():
    obs = (OBS_BIG, OBS, OBS, Box(0.0, 1.0, (1,)), OBS_BIG)
    act = (ACT, ACT, ACT, ACT, Discrete(4))
    groups = group_agents(obs, act)
    assert [(g.name, g.size) for g in groups] == [("group0", 1), ("group1", 3), ("group2", 1)]
    assert groups[1].observation_space == OBS and groups[1].action_space == ACT
    assert per_agent_spaces(groups) == (obs, act)
    alike = group_agents((OBS,) * 4, (ACT,) * 4)
    assert alike == (AgentGroup("agents", 4, OBS, ACT),)
    with pytest.raises(ValueError, match=r"one action space per observation space, got 2 observation spaces and 3 "
                                         r"action spaces$"):
        group_agents((OBS,) * 2, (ACT,) * 3)
    with pytest.raises(ValueError, match=r"got 3 observation spaces and 2 action spaces$"):
        group_agents((OBS,) * 3, (ACT,) * 2)


@pytest.mark.parametrize("name, size, message", [
    ("", 1, r"AgentGroup name must be non-empty without '/', got ''$"),
    ("a/b", 1, r"AgentGroup name must be non-empty without '/', got 'a/b'$"),
    ("a", 0, r"size must be a positive integer, got 0$"),
    ("a", 2.0, r"size must be a positive integer, got 2\.0$"),
    ("a", True, r"size must be a positive integer, got True$")])
def test_agent_group_rejects_bad_names_and_sizes(name, size, message):
    with pytest.raises(ValueError, match=message):
        AgentGroup(name, size, OBS, ACT)


@pytest.mark.parametrize("name", envs.list_envs())
def test_every_environment_has_groups_covering_its_agents_with_its_spaces(name):
    env = envs.make(name)
    groups = env.groups
    assert sum(g.size for g in groups) == env.num_agents
    assert per_agent_spaces(groups) == (tuple(env.observation_spaces), tuple(env.action_spaces))
    assert len({g.name for g in groups}) == len(groups)


def test_group_layout_of_existing_environments():
    def layout(name):
        return [(g.name, g.size) for g in envs.make(name).groups]

    assert layout("matrix_mp") == [("agents", 2)]
    assert layout("matrix_trap") == [("agents", 4)]
    assert layout("mpe_spread") == [("agents", 3)]
    assert layout("mpe_speaker_listener") == [("group0", 1), ("group1", 1)]
    assert layout("mpe_tag") == [("group0", 3), ("group1", 1)]
    assert layout("mpe_world_comm") == [("group0", 1), ("group1", 3), ("group2", 2)]


def _metrics(rng, n, seeds=2, updates=3, actions=3):
    return {"reward": rng.normal(size=(seeds, updates, n)).astype(np.float32),
            "policy": rng.uniform(size=(seeds, updates, n, actions)).astype(np.float32),
            "episodes": rng.integers(0, 9, size=(seeds, updates))}


@pytest.mark.parametrize("name", envs.list_envs())
def test_existing_environments_keep_one_column_per_agent(name):
    """Every registered environment (default arguments) writes exactly the columns and text it wrote without
    groups: the golden runs compare metrics.csv byte for byte."""
    env = envs.make(name)
    if any(g.size > outputs.PER_AGENT_COLUMNS_MAX for g in env.groups):
        pytest.skip(f"{name} has a group above the per-agent limit")
    n = env.num_agents
    metrics = _metrics(np.random.default_rng(0), n)
    updates, seeds = np.array([5, 10, 15]), np.array([7, 3])
    # the golden text, written out here: agent-major columns, seed-major rows, floats as Python's shortest repr
    header = ["seed", "update", *(f"reward/{i}" for i in range(n)),
              *(f"policy/{i}/{a}" for i in range(n) for a in range(3)), "episodes"]
    rows = [[str(seed), str(update), *(repr(float(x)) for x in metrics["reward"][s, u]),
             *(repr(float(x)) for x in metrics["policy"][s, u].reshape(-1)), str(metrics["episodes"][s, u])]
            for s, seed in enumerate(seeds) for u, update in enumerate(updates)]
    want = "".join(",".join(row) + "\n" for row in [header, *rows])
    assert outputs.metrics_csv(metrics, updates, seeds, env.groups) == want
    assert outputs.metrics_csv(metrics, updates, seeds) == want
    final = {k: v[:, -1] for k, v in metrics.items()}
    summary = outputs.summarize(final, env.groups)
    assert list(summary) == header[2:] and summary == outputs.summarize(final)
    for col, values in [("reward/0", final["reward"][:, 0]), (f"reward/{n - 1}", final["reward"][:, n - 1]),
                        (f"policy/{n - 1}/2", final["policy"][:, n - 1, 2]), ("episodes", final["episodes"])]:
        assert summary[col]["n"] == 2
        assert summary[col]["mean"] == pytest.approx(values.mean(dtype=np.float64), rel=1e-12)


def test_large_groups_get_mean_min_max_and_small_ones_keep_their_agents():
    rng = np.random.default_rng(1)
    big = outputs.PER_AGENT_COLUMNS_MAX + 1
    groups = (AgentGroup("scouts", 2, OBS, ACT), AgentGroup("crowd", big, OBS, ACT), AgentGroup("king", 1, OBS, ACT))
    n = 2 + big + 1
    metrics = {**_metrics(rng, n), "matrix": rng.normal(size=(2, 3, n + 1, 2)).astype(np.float32)}
    cols = outputs.flatten_metrics(metrics, 2, groups)
    reward, policy = metrics["reward"], metrics["policy"]
    crowd = slice(2, 2 + big)
    np.testing.assert_array_equal(cols["reward/0"], reward[..., 0])
    np.testing.assert_array_equal(cols["reward/1"], reward[..., 1])
    np.testing.assert_array_equal(cols[f"reward/{n - 1}"], reward[..., n - 1])  # global agent index
    np.testing.assert_allclose(cols["reward/crowd/mean"], reward[..., crowd].mean(-1), rtol=1e-6)
    np.testing.assert_array_equal(cols["reward/crowd/min"], reward[..., crowd].min(-1))
    np.testing.assert_array_equal(cols["reward/crowd/max"], reward[..., crowd].max(-1))
    np.testing.assert_allclose(cols["policy/crowd/mean/2"], policy[:, :, crowd, 2].mean(-1), rtol=1e-6)
    np.testing.assert_array_equal(cols["policy/crowd/max/0"], policy[:, :, crowd, 0].max(-1))
    np.testing.assert_array_equal(cols["policy/1/2"], policy[:, :, 1, 2])
    assert not any(k.startswith("reward/") and k.split("/")[1] in map(str, range(2, 2 + big)) for k in cols)
    # not per agent: a scalar, and an axis whose length is not N, keep their columns
    np.testing.assert_array_equal(cols["episodes"], metrics["episodes"])
    assert sum(k.startswith("matrix/") for k in cols) == (n + 1) * 2
    assert list(cols)[:4] == ["reward/0", "reward/1", "reward/crowd/mean", "reward/crowd/min"]


def test_width_does_not_grow_with_the_group_and_the_limit_is_an_option():
    rng = np.random.default_rng(2)
    updates, seeds = np.arange(1, 4), np.arange(2)

    def header(n, **kw):
        groups = (AgentGroup("agents", n, OBS, ACT),)
        text = outputs.metrics_csv(_metrics(rng, n), updates, seeds, groups, **kw)
        return text.splitlines()[0].split(",")

    limit = outputs.PER_AGENT_COLUMNS_MAX
    at_limit = header(limit)
    assert "reward/0" in at_limit and f"reward/{limit - 1}" in at_limit and "reward/agents/mean" not in at_limit
    assert header(limit + 1) == header(10_000)
    assert "reward/agents/mean" in header(10_000) and "reward/0" not in header(10_000)
    assert header(10, per_agent_max=4) == header(10_000, per_agent_max=4) == header(10_000)
    assert len(header(10)) > len(header(10, per_agent_max=4))
    final = {k: v[:, -1] for k, v in _metrics(rng, 10_000).items()}
    assert len(outputs.summarize(final, (AgentGroup("agents", 10_000, OBS, ACT),))) == len(header(10_000)) - 2
