"""Smoke tests of the benchmark scripts through their command lines (JSON output, flags)."""
import itertools
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_env_benchmark_json_smoke(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/envs.py", "--json", "--quick", "--envs", "ipd,matrix_pd",
           "--batch-sizes", "1,4", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout holds the JSON document and nothing else
    assert json.loads(out.read_text()) == doc
    for field in ("backend", "device", "jax_version", "cpu_count", "timestamp", "settings", "results", "peers"):
        assert field in doc, field
    assert doc["settings"]["steps"] == 100 and doc["settings"]["repeats"] == 3
    rows = {(r["env"], r["batch_size"]): r for r in doc["results"]}
    assert sorted(rows) == [("ipd", 1), ("ipd", 4), ("matrix_pd", 1), ("matrix_pd", 4)]
    for (_env, batch), r in rows.items():
        assert r["steps_per_s"] > 0 and r["compile_s"] > 0 and len(r["runs_s"]) == 3
        assert r["num_agents"] == 2 and r["agent_steps_per_s"] == 2 * r["steps_per_s"]
        assert abs(r["steps_per_s"] - batch * r["steps"] / r["median_s"]) < 1e-6 * r["steps_per_s"]
    assert "jaxmarl" in doc["peers"]


def run_json(args, tmp_path, timeout=300):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, *args, "--json", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == doc
    return doc


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_training_benchmarks_json_smoke(tmp_path):
    doc = run_json(["benchmarks/train_throughput.py", "--quick", "--algos", "mappo", "--envs", "mpe_simple",
                    "--set", "hidden_size=16", "--set", "ppo_epochs=1", "--total-steps", "4000"], tmp_path)
    (row,) = doc["results"]
    assert row["env_steps_per_seed"] == 4000 and row["seeds"] == 1 and len(row["runs_s"]) == 2
    assert abs(row["env_steps_per_s"] - 4000 / row["median_s"]) < 1e-6 * row["env_steps_per_s"]
    doc = run_json(["benchmarks/onpolicy_mpe.py", "--quick", "--tasks", "speaker_listener_discrete", "--algos",
                    "mappo", "--total-steps", "8000", "--set", "truncation=bootstrap", "--env-arg",
                    "integration=pettingzoo_1_22", "--first-seed", "3"], tmp_path)
    (row,) = doc["results"]
    assert doc["config_overrides"]["truncation"] == "bootstrap"
    assert row["env_args"] == {"integration": "pettingzoo_1_22"} and row["seed_ids"] == [3]
    assert row["env_steps"] == 8000 and len(row["curve"]) == 2 and row["harl_return"] is None  # before 3M steps
    assert row["final_return"] < 0 and "team_reward" in doc["reward_convention"]
    assert len(row["eval_curve"]) == 2 and row["final_eval_return"] < 0  # greedy evaluation, on by default


def test_training_benchmarks_reject_bad_flags(capsys):
    from benchmarks import onpolicy_mpe, train_throughput

    for script, args in ((train_throughput, ["--algos", "nope"]), (onpolicy_mpe, ["--tasks", "nope"]),
                         (onpolicy_mpe, ["--set", "nope=1"]), (onpolicy_mpe, ["--env-arg", "nope=1"])):
        with pytest.raises(SystemExit) as exit_info:
            script.main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "valid" in err, err


@pytest.mark.slow  # about 30 s of compiling on 2 cores
def test_offpolicy_mpe_benchmark_json_smoke(tmp_path):
    """Two pieces of training, cut after the first by the time limit: a partial curve."""
    doc = run_json(["benchmarks/offpolicy_mpe.py", "--quick", "--algos", "hatd3", "--total-steps", "2000",
                    "--chunks", "2", "--time-limit", "1e-6"], tmp_path)
    (row,) = doc["results"]
    assert row["env_steps"] == 1000 and row["planned_env_steps"] == 2000 and not row["complete"]
    assert len(row["curve"]) == 10 and row["harl_return_5m"] == -63
    assert row["final_return"] < 0 and row["harl_convention_offset"] == -37.5 and row["final_eval_return"] < 0


@pytest.mark.slow  # a few minutes of compiling on 2 cores
def test_maddpg_paper_benchmark_json_smoke(tmp_path):
    doc = run_json(["benchmarks/maddpg_paper.py", "--quick", "--arms", "maddpg,ddpg", "--total-steps", "5000"],
                   tmp_path)
    rows = {r["arm"]: r for r in doc["results"]}
    assert set(rows) == {"maddpg", "ddpg"} and rows["ddpg"]["config"]["critic"] == "local"
    for r in rows.values():
        assert r["env_steps"] == 5000 and r["seeds"] == 2 and len(r["target_reach_percent_per_seed"]) == 2
        assert 0 <= r["target_reach_percent"]["mean"] <= 100 and r["final_distance"]["mean"] > 0
        assert 0 <= r["nearest_goal_percent"]["mean"] <= 100
        assert len(r["deterministic"]["target_reach_percent"]["per_seed"]) == 2
    assert rows["maddpg"]["paper_target_reach_percent"] == 84.0


@pytest.mark.slow  # a few minutes of compiling on 2 cores
def test_maddpg_paper_competitive_tasks_json_smoke(tmp_path):
    """Deception and predator-prey: the mixed pairings train their groups' critic kinds and report the outcomes."""
    dec = run_json(["benchmarks/maddpg_paper.py", "--task", "deception", "--quick", "--total-steps", "3000"], tmp_path,
                   timeout=900)
    rows = {r["arm"]: r for r in dec["results"]}
    assert set(rows) == {"maddpg_agents_ddpg_adversary", "ddpg_agents_maddpg_adversary"}
    assert rows["maddpg_agents_ddpg_adversary"]["config"]["critic_kinds"] == "local,joint"
    for r in rows.values():
        assert len(r["agents_success_percent_per_seed"]) == 2 and 0 <= r["adversary_success_percent"]["mean"] <= 100
        assert 0 < r["agents_distance"]["mean"] and 0 < r["adversary_distance"]["mean"]
    pp = run_json(["benchmarks/maddpg_paper.py", "--task", "predator_prey", "--quick", "--total-steps", "3000",
                   "--arms", "maddpg_predators_ddpg_prey"], tmp_path, timeout=600)
    (row,) = pp["results"]
    assert row["config"]["critic_kinds"] == "joint,local" and row["touches_per_episode"]["mean"] >= 0


def test_maddpg_paper_communication_outcomes_on_hand_made_episodes():
    """Two episodes of one seed, goal landmark 1 in both: the listener ends touching it in the first, and nearest
    landmark 2 in the second (the message not followed)."""
    from benchmarks.maddpg_paper import communication_outcomes

    final_obs = np.zeros((1, 2, 2, 11), np.float32)
    final_obs[0, :, 0, :3] = [0.15, 0.65, 0.15]  # the speaker sees landmark 1's colour
    final_obs[0, 0, 1, 2:8] = [1.0, 0.0, 0.1, 0.0, 0.0, 1.0]  # landmarks 0, 1, 2 relative to the listener
    final_obs[0, 1, 1, 2:8] = [1.0, 0.0, 0.5, 0.5, 0.0, 0.3]
    reward = np.zeros((1, 25, 2, 2), np.float32)
    reward[0, -1, :, :] = -np.array([0.1, np.hypot(0.5, 0.5)])[:, None] ** 2
    out = communication_outcomes(reward, final_obs)
    np.testing.assert_allclose(out["target_reach_percent"], [50.0])
    np.testing.assert_allclose(out["nearest_goal_percent"], [50.0])
    np.testing.assert_allclose(out["final_distance"], [(0.1 + np.hypot(0.5, 0.5)) / 2], rtol=1e-6)
    np.testing.assert_allclose(out["final_squared_distance"], [(0.01 + 0.5) / 2], rtol=1e-6)


def test_maddpg_paper_rejects_an_arm_of_another_task(capsys):
    from benchmarks import maddpg_paper

    with pytest.raises(SystemExit) as exit_info:
        maddpg_paper.main(["--task", "deception", "--arms", "maddpg_inferred"])
    assert exit_info.value.code == 2 and "is not one of maddpg_agents_ddpg_adversary" in capsys.readouterr().err


@pytest.mark.slow  # about two minutes of compiling on 2 cores
def test_maddpg_paper_ensembles_json_smoke(tmp_path):
    """Keep-away's ensemble experiment: both populations trained, the four pairings cross-played per seed."""
    doc = run_json(["benchmarks/maddpg_paper.py", "--ensembles", "--task", "keep_away", "--quick", "--total-steps",
                    "3000"], tmp_path, timeout=900)
    assert [r["pairing"] for r in doc["results"]] == ["E v E", "E v S", "S v E", "S v S"] and doc["sub_policies"] == 3
    assert [p["config"]["ensemble"] for p in doc["populations"]] == [3, 1]
    for r in doc["results"]:
        assert len(r["agents_reward_per_seed"]) == 2 and r["agents_reward"]["mean"] < 0
    gain = doc["ensemble_gains"]["agents_gain_vs_single_adversaries"]
    rows = {r["pairing"]: r for r in doc["results"]}
    np.testing.assert_allclose(gain["per_seed"], np.subtract(rows["E v S"]["agents_reward_per_seed"],
                                                             rows["S v S"]["agents_reward_per_seed"]))
    # the same study grown one seed per call in --actors-dir: the first call stores seed 0 and writes no document
    cmd = [sys.executable, "benchmarks/maddpg_paper.py", "--ensembles", "--task", "keep_away", "--quick",
           "--total-steps", "3000", "--actors-dir", str(tmp_path / "actors"), "--max-new-seeds", "1"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0 and first.stdout == "" and "1 of 2 seeds stored" in first.stderr, first.stderr
    assert sorted(os.listdir(tmp_path / "actors" / "keep_away_ensemble")) == ["population.json", "seed_0.npz"]
    grown = run_json(cmd[1:], tmp_path, timeout=900)
    for r, want in zip(grown["results"], doc["results"]):
        np.testing.assert_allclose(r["agents_reward_per_seed"], want["agents_reward_per_seed"], rtol=1e-4)
        np.testing.assert_allclose(r["adversaries_reward_per_seed"], want["adversaries_reward_per_seed"], rtol=1e-4)
    other = subprocess.run([*cmd[:-4], "--total-steps", "4000", *cmd[-4:]], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)  # other settings: refused before training
    assert other.returncode == 2 and "holds a population trained with other settings" in other.stderr


def test_maddpg_paper_ensemble_scores_and_flags(capsys):
    """The sides' rewards and the 0-1 normalised scores on hand-made numbers; bad flag combinations exit 2."""
    from benchmarks import maddpg_paper

    reward = np.zeros((2, 3, 4, 2))  # [S, T, E, N]: agent 0 the adversary
    reward[0, :, :, 0], reward[1, :, :, 0], reward[:, :, :, 1] = 1.0, 2.0, -1.0
    sides = maddpg_paper.side_rewards(reward, (0,))
    np.testing.assert_allclose(sides["adversaries_reward"], [3.0, 6.0])
    np.testing.assert_allclose(sides["agents_reward"], [-3.0, -3.0])
    rows = [{"agents_reward": {"mean": m}} for m in (-4.0, -2.0, -3.0, -2.0)]
    assert maddpg_paper.normalised(rows, "agents") == [0.0, 1.0, 0.5, 1.0]
    per_pairing = {pair: {"agents_reward": np.array([i, 2.0 * i]), "adversaries_reward": np.array([-i, 0.0]),
                          "agents_success_percent": np.array([10.0 * i, 5.0])}
                   for i, pair in enumerate([("ensemble", "ensemble"), ("ensemble", "single"), ("single", "ensemble"),
                                             ("single", "single")])}
    gains = maddpg_paper.ensemble_gains(per_pairing)
    vs_single = gains["agents_gain_vs_single_adversaries"]  # E v S - S v S
    assert vs_single["per_seed"] == [-2.0, -4.0] and vs_single["pairings"] == ["E v S", "S v S"]
    assert vs_single["outcomes"]["agents_success_percent"]["per_seed"] == [-20.0, 0.0]
    assert vs_single["outcomes"]["adversaries_reward"]["per_seed"] == [2.0, 0.0]
    assert "agents_reward" not in vs_single["outcomes"]
    as_adversary = gains["adversaries_gain_vs_ensemble_agents"]  # E v E - E v S
    assert as_adversary["per_seed"] == [1.0, 0.0]
    assert as_adversary["outcomes"]["agents_reward"]["per_seed"] == [-1.0, -2.0]
    for args in (["--task", "keep_away"], ["--ensembles"], ["--ensembles", "--task", "deception", "--arms", "x"],
                 ["--ensembles", "--task", "keep_away", "--sub-policies", "1"], ["--actors-dir", "x"],
                 ["--ensembles", "--task", "keep_away", "--max-new-seeds", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            maddpg_paper.main(args)
        assert exit_info.value.code == 2, args
    capsys.readouterr()


def test_offpolicy_mpe_benchmark_rejects_bad_flags(capsys):
    from benchmarks import offpolicy_mpe

    for args in (["--tasks", "nope"], ["--algos", "ddpg"], ["--set", "nope=1"], ["--env-arg", "nope=1"]):
        with pytest.raises(SystemExit) as exit_info:
            offpolicy_mpe.main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "valid" in err, err


def test_reference_comparisons_name_the_missing_reference_code(tmp_path):
    """The comparisons with HARL's code and PettingZoo 1.22 need a checkout of each; without one they say so."""
    for script, flag in (("benchmarks/harl_equivalence.py", "--harl-dir"),
                         ("benchmarks/pettingzoo_1_22_equivalence.py", "--pettingzoo-src")):
        proc = subprocess.run([sys.executable, script, flag, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2 and flag in proc.stderr, proc.stderr


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_opponent_shaping_benchmark_json_smoke(tmp_path):
    def run(*args):
        proc = subprocess.run([sys.executable, "benchmarks/opponent_shaping.py", "--quick", "--num-updates", "2",
                               "--json", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    doc = run("--coin-game", "nl_pg", "--out-dir", str(tmp_path))
    (row,) = doc["results"]
    assert row["method"] == "NL-PG" and row["num_updates"] == 2 and len(row["per_seed"]) == 2
    assert 0.0 <= row["mean"] <= 1.0 and len(row["curve_mean"]) == 2
    assert json.loads((tmp_path / "coin_game.json").read_text()) == doc and (tmp_path / "coin_game.png").exists()
    doc = run("--throughput", "--seed-counts", "2", "--seed-batch", "1,0")
    assert [(r["seeds"], r["seed_batch"], r["num_updates"]) for r in doc["results"]] == [(2, 1, 2), (2, 0, 2)]
    assert all(r["seed_updates_per_s"] > 0 for r in doc["results"])


def _opponent_shaping(*args, timeout=300):
    return subprocess.run([sys.executable, "benchmarks/opponent_shaping.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_lola_table_json_smoke(tmp_path):
    from envs.iterated import tit_for_tat

    proc = _opponent_shaping("--lola-table", "--games", "ipd", "--methods", "nl_pg", "--seeds", "2", "--set",
                             "batch_size=4", "--set", "num_updates=2", "--json", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads((tmp_path / "lola_table.json").read_text()) == doc and (tmp_path / "lola_table.png").exists()
    (row,) = doc["results"]
    assert (row["method"], row["criterion"], row["paper"]) == (
        "NL-PG", "TFT", {"percent": 0.0, "reward": -1.98, "reward_std": 0.01})
    assert row["config"]["preset"] == "lola_paper" and row["config"]["batch_size"] == 4 and row["config"]["lr"] == 1.0
    assert len(row["curve_percent"]) == 2 and np.shape(row["p_coop_final"]) == (2, 2, 5)
    hits = tit_for_tat(np.array(row["p_coop_final"]))
    assert row["percent"] == pytest.approx(100 * hits.mean()) and row["percent_at"]["0.5"] == row["percent"]
    assert row["percent_ci95"][0] <= row["percent"] <= row["percent_ci95"][1]
    for bad, fragment in ((["--lola-table", "--methods", "lola_dice"], "--methods some of"),
                          (["--lola-coin", "lola_pg"], "--lola-coin needs --out-dir")):
        proc = _opponent_shaping(*bad, timeout=120)
        assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_coin_critic_and_directions_json_smoke(tmp_path):
    """--coin-critic: the reference critic's curvature with and without batch normalisation, and a short training
    with it; normalised features (about unit variance each, 180 of them) make the value head's Hessian large.
    --coin-directions: nl_pg's first directions and lola_pg's shaping terms with and without it."""
    proc = _opponent_shaping("--coin-critic", "--set", "batch_size=20", "--set", "num_updates=3", "--set",
                             "episode_chunks=1", "--env-arg", "num_steps=10", "--json", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads((tmp_path / "coin_game_critic.json").read_text()) == doc
    plain, normalised = doc["rows"]
    assert (plain["batch_norm"], normalised["batch_norm"]) == (False, True)
    for row in (plain, normalised):
        assert row["largest_stable_step"] == pytest.approx(2.0 / row["top_eigenvalue"])
        assert row["critic_lr"] == 1.0 and len(row["updates"]) == 3 and 0.0 <= row["active_features_at_end"] <= 1.0
        last = row["updates"][-1]
        assert np.shape(last["value_error"]) == np.shape(last["theta_moved"]) == (2,)
    assert normalised["top_eigenvalue"] > 10.0
    proc = _opponent_shaping("--coin-directions", "3", "--set", "batch_size=8", "--set", "episode_chunks=1",
                             "--env-arg", "num_steps=6", "--json", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads((tmp_path / "coin_game_directions.json").read_text()) == doc
    assert [(r["batch_norm"], r["batches"], r["batch_size"]) for r in doc["rows"]] == [(False, 3, 8), (True, 3, 8)]
    for row in doc["rows"]:  # the signal is an unbiased estimate (it may come out negative), never above the mean
        assert np.all(np.array(row["norm_mean_direction_sq"]) <= np.array(row["mean_norm_sq"]))
        assert np.all(np.array(row["shaping_norm_mean_sq"]) <= np.array(row["shaping_mean_norm_sq"]))
        assert np.all(np.array(row["shaping_mean_norm_sq"]) > 0.0)  # LOLA's term is there, and apart from NL's
        assert np.shape(row["naive_dot_shaping_means"]) == (2,)
        assert all(np.shape(v) == (2,) and min(v) > 0 for v in row["standard_errors"].values())
    proc = _opponent_shaping("--coin-directions", "1", "--out-dir", str(tmp_path), timeout=120)
    assert proc.returncode == 2 and "at least 3 batches" in proc.stderr, proc.stderr
    proc = _opponent_shaping("--lola-table", "--from-study", str(tmp_path), timeout=120)
    assert proc.returncode == 2 and "--from-study goes with --coin-directions" in proc.stderr, proc.stderr
    proc = _opponent_shaping("--coin-directions", "3", "--from-study", str(tmp_path / "none"), timeout=120)
    assert proc.returncode == 2 and "study.json" in proc.stderr, proc.stderr


def test_directions_jackknife_bounds_the_spread_of_the_estimates():
    """The unbiased |E a|^2 and E a . E b from K draws average to the true values over many repeats of K Gaussian
    draws, and their jackknife standard errors are conservative: near the spread where the mean dominates, about
    (2 (K - 1) / (K - 2))^(1/2) times it where the mean is near zero."""
    from benchmarks.opponent_shaping import _jackknife_se, _mean_product

    rng = np.random.default_rng(0)
    k = 10
    for mu_a, mu_b, most in (([1.0, 0.5, -1.0, 0.5], [0.5, 1.0, 0.0, 0.0], 1.15),
                             ([0.05, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], np.sqrt(2 * (k - 1) / (k - 2)) * 1.05)):
        mu_a, mu_b = np.array(mu_a), np.array(mu_b)
        a = mu_a + rng.normal(size=(3000, k, 1, 4))  # [repeats, K, N, P]
        b = mu_b + 0.5 * (a - mu_a) + rng.normal(size=a.shape)
        for x, y, true in ((a, a, mu_a @ mu_a), (a, b, mu_a @ mu_b)):
            est = np.array([_mean_product(xr, yr)[0] for xr, yr in zip(x, y)])
            se = np.sqrt(np.mean([_jackknife_se(xr, yr)[0] ** 2 for xr, yr in zip(x, y)]))
            assert abs(est.mean() - true) < 4 * est.std() / np.sqrt(len(est))
            assert 0.95 * est.std() < se < most * est.std()


def test_lola_coin_study_compares_learners_at_equal_updates():
    """While a study runs its learners have done different numbers of updates: the equal-updates summary averages
    each one over the same first updates (the fewest done) and pairs its seeds with NL-PG's there."""
    import types

    from benchmarks.opponent_shaping import CoinStudyRun, at_equal_updates

    def run(algo, own):  # own [S, U]: the seeds' own-coin fractions, the same for both agents
        metrics = {"own_coin_fraction": np.repeat(own[..., None], 2, -1), "reward_per_step": np.zeros(own.shape + (2,))}
        fake = types.SimpleNamespace(algo_name=algo, metrics=metrics, done=own.shape[1], num_updates=8, seeds=2,
                                     first_seed=0, config=types.SimpleNamespace(batch_size=4))
        fake.window_row = lambda tail, upto: CoinStudyRun.window_row(fake, tail, upto)
        return fake

    naive = run("nl_pg", np.array([[0.5, 0.5, 0.5, 0.5, 0.9, 0.9], [0.6, 0.6, 0.6, 0.6, 0.9, 0.9]]))
    lola = run("lola_pg", np.array([[0.5, 0.5, 0.7, 0.7], [0.6, 0.6, 0.7, 0.8]]))
    doc = at_equal_updates([naive, run("lola_om", np.zeros((2, 0))), lola], tail=0.5)
    assert doc["updates"] == 4 and [r["method"] for r in doc["results"]] == ["NL-PG", "LOLA-PG"]
    np.testing.assert_allclose(doc["results"][0]["per_seed"], [0.5, 0.6])  # updates 3 and 4, not 5 and 6
    np.testing.assert_allclose(doc["results"][1]["per_seed"], [0.7, 0.75])
    (paired,) = doc["against_nl_pg"]
    assert paired["method"] == "LOLA-PG" and paired["shared_seeds"] == 2 and paired["higher_on"] == 2
    np.testing.assert_allclose(paired["paired_difference"]["mean"], 0.175)
    assert at_equal_updates([run("nl_pg", np.zeros((2, 0)))], tail=0.5) is None


@pytest.mark.slow  # about a minute and a half: two small Coin Game studies, directions from one
def test_lola_coin_study_resumes_to_the_same_numbers(tmp_path):
    """An interrupted study (its last checkpoint removed) resumed by the same command ends where an uninterrupted
    one does."""
    import shutil

    args = ["--lola-coin", "nl_pg", "--seeds", "2", "--checkpoint-every", "2", "--set", "num_updates=4", "--set",
            "batch_size=4", "--set", "episode_chunks=2", "--set", "network=gru", "--set", "batch_norm=false", "--set",
            "hidden=4", "--env-arg", "num_steps=5", "--out-dir"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert _opponent_shaping(*args, str(whole)).returncode == 0
    shutil.copytree(whole, cut)
    shutil.rmtree(cut / "nl_pg_seeds_0_1" / "checkpoints" / "4")
    proc = _opponent_shaping(*args, str(cut))
    assert proc.returncode == 0 and "nl_pg: update 4/4" in proc.stderr and "update 2/4" not in proc.stderr
    (a,), (b,) = (json.loads((d / "coin_game_lola_paper.json").read_text())["results"] for d in (whole, cut))
    assert a["updates_done"] == b["updates_done"] == 4 and a["per_seed"] == b["per_seed"]
    equal = json.loads((whole / "coin_game_lola_paper.json").read_text())["at_equal_updates"]
    assert equal["updates"] == 4 and equal["results"][0]["per_seed"] == a["per_seed"]
    study = str(whole / "nl_pg_seeds_0_1")  # the directions at its first seed after 4 updates, on larger batches
    proc = _opponent_shaping("--coin-directions", "3", "--set", "batch_size=6", "--env-arg", "num_steps=5",
                             "--from-study", study, "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["rows"]
    assert (row["from"], row["study_algo"], row["updates_done"], row["seed"]) == ("study", "nl_pg", 4, 0)
    assert row["batch_norm"] is False and row["batch_size"] == 6 and np.all(np.array(row["shaping_mean_norm_sq"]) > 0)
    init, moved, now = (np.array(x) for x in (a["theta_init_norm"][0], a["theta_moved"][0], row["theta_norm"]))
    assert np.all(np.abs(now - init) <= moved + 1e-5) and not np.allclose(now, init)  # the trained state, not theta_0
    proc = _opponent_shaping("--coin-directions", "3", "--set", "hidden=8", "--from-study", study)
    assert proc.returncode == 2 and "the network is the study's" in proc.stderr, proc.stderr
    assert a["curve_mean"] == b["curve_mean"] and a["batch_size"] == 4
    assert a["theta_moved"] == b["theta_moved"] and np.all(np.array(a["theta_moved"]) > 0)  # [seeds, agents]
    assert np.array(a["theta_moved"]).shape == (2, 2) and a["theta_init_norm"] == b["theta_init_norm"]
    settings_path = whole / "nl_pg_seeds_0_1" / "study.json"
    settings = json.loads(settings_path.read_text())
    del settings["config"]["critic"]  # a study begun before a config field was added (at its default) resumes
    settings_path.write_text(json.dumps(settings))
    theta0 = whole / "nl_pg_seeds_0_1" / "theta0.npy"  # the initial policies, kept so a resume initialises nothing
    theta0.unlink()  # ... a study without them initialises once more and writes them
    proc = _opponent_shaping(*args, str(whole))  # finished: nothing to train, the summary rewritten as it was
    (c,) = json.loads((whole / "coin_game_lola_paper.json").read_text())["results"]
    assert proc.returncode == 0 and "nl_pg: update" not in proc.stderr and c["s_per_update"] is None
    assert (c["per_seed"], c["curve_mean"], c["theta_moved"]) == (a["per_seed"], a["curve_mean"], a["theta_moved"])
    np.testing.assert_allclose(np.linalg.norm(np.load(theta0), axis=-1), a["theta_init_norm"], rtol=1e-6)
    np.save(theta0, 2 * np.load(theta0))  # with them, the stored ones are what a resume measures from
    assert _opponent_shaping(*args, str(whole)).returncode == 0
    (d,) = json.loads((whole / "coin_game_lola_paper.json").read_text())["results"]
    np.testing.assert_allclose(d["theta_init_norm"], 2 * np.array(a["theta_init_norm"]), rtol=1e-6)
    assert json.loads(settings_path.read_text())["config"]["critic"] == "linear"  # the settings are completed
    settings["config"]["critic"] = "trunk"  # ... but one at another value is another study
    settings_path.write_text(json.dumps(settings))
    proc = _opponent_shaping(*args, str(whole))
    assert proc.returncode == 2 and "holds a study with other settings" in proc.stderr, proc.stderr


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_classical_grid_games_benchmark_json_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/classical.py", "--grid-games", "--quick", "--json", "--out-dir",
                           str(tmp_path), "--grid-order", "lemke_howson", "--grid-lh-order", "agent2_first"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads((tmp_path / "grid_games_lh_agent2_first_2.json").read_text()) == doc
    assert doc["protocol"]["order"] == "lemke_howson" and doc["protocol"]["lh_actions"] == "2,3,1,0"
    assert doc["protocol"]["lh_order"] == "agent2_first"
    assert [(r["env"], r["selection"], r["runs"], r["paper"]) for r in doc["table10"]] == [
        ("grid_game_2", "first", 4, 0.68), ("grid_game_2", "second", 4, 0.90)]
    assert len(doc["tables11_12"]) == 10 and doc["tables11_12"][0]["paper"] == 0.50  # single / single
    for row in doc["table10"] + doc["tables11_12"]:
        conv = row["nash_conv_per_run"]
        assert len(conv) == 4 and min(conv) > -1e-3 and row["equilibrium_rate"] == sum(c < 0.1 for c in conv) / 4
    first, same = doc["table10"][0], doc["tables11_12"][-2]  # first / first pairs one learner with itself
    assert (same["agent_1"], same["agent_2"]) == ("first", "first")
    assert same["nash_conv_per_run"] == first["nash_conv_per_run"]


def _coin_run(path, seeds, algo="lola_pg", lower=0.0):
    """A synthetic train.py Coin Game run of 4 updates: seed s, update u has own-coin fractions 0.5 + 0.1 s +
    0.01 u - lower and 0.02 more (rows out of order)."""
    path.mkdir()
    config = {"algo": algo, "env": "coin_game", "config": {"num_updates": 4, "batch_size": 8}}
    (path / "config.json").write_text(json.dumps({"run": config}))
    rows = ["seed,update,coins_per_step,own_coin_fraction/0,own_coin_fraction/1,reward_per_step/0,reward_per_step/1"]
    for update, seed in itertools.product([4, 1, 2, 3], seeds):
        own = 0.5 + 0.1 * seed + 0.01 * update - lower
        rows.append(f"{seed},{update},0.2,{own},{own + 0.02},{0.1 * seed},-0.1")
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    return str(path)


def _coin_runs_cli(*args):
    return subprocess.run([sys.executable, "benchmarks/opponent_shaping.py", "--coin-game-runs", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_coin_game_summary_of_train_runs(tmp_path):
    """--coin-game-runs reads train.py's config.json and metrics.csv and averages the last updates of each seed
    over both agents; a study split over runs (train.py --first-seed), one of them summarised earlier, gives the
    row of the whole study; overlapping seeds and other algorithms are rejected."""
    whole = _coin_run(tmp_path / "whole", [0, 1, 2])
    proc = _coin_runs_cli(whole, "--tail", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["results"]
    assert row["method"] == "LOLA-PG" and row["tail_updates"] == 2 and row["num_updates"] == 4
    np.testing.assert_allclose(row["per_seed"], [0.545, 0.645, 0.745])  # updates 3 and 4, both agents
    np.testing.assert_allclose(row["curve_mean"], [0.61 + 0.01 * u for u in range(1, 5)])
    np.testing.assert_allclose(row["curve_std"], [0.1] * 4)
    first = _coin_run(tmp_path / "first", [0])
    assert _coin_runs_cli(first, "--tail", "0.5", "--out-dir", str(tmp_path / "s")).returncode == 0
    summary = str(tmp_path / "s" / "coin_game.json")
    proc = _coin_runs_cli(f"{_coin_run(tmp_path / 'rest', [2, 1])},{summary}", "--tail", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    (merged,) = json.loads(proc.stdout)["results"]
    assert merged["seed_ids"] == [0, 1, 2] and merged["n"] == 3
    for key in ("per_seed", "curve_mean", "curve_std", "mean", "ci95_low", "ci95_high", "reward_per_step"):
        np.testing.assert_allclose(merged[key], row[key], rtol=1e-12, err_msg=key)
    naive = _coin_run(tmp_path / "naive", [1, 2, 3], algo="nl_pg", lower=0.05)
    proc = _coin_runs_cli(f"{whole},{naive}", "--tail", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (paired,) = doc["against_nl_pg"]  # LOLA-PG is 0.05 higher on the shared seeds 1 and 2
    assert paired["method"] == "LOLA-PG" and paired["shared_seeds"] == 2 and paired["higher_on"] == 2
    np.testing.assert_allclose([paired["paired_difference"][k] for k in ("mean", "ci95_low", "ci95_high")],
                               [0.05] * 3, atol=1e-12)
    lola_pg, nl_pg = (r["per_seed"] for r in doc["results"])
    welch = stats.ttest_ind(lola_pg, nl_pg, equal_var=False)
    np.testing.assert_allclose([paired["welch_t"], paired["welch_p"]], [welch.statistic, welch.pvalue])
    proc = _coin_runs_cli(f"{whole},{summary}", "--tail", "0.5")
    assert proc.returncode == 2 and "seeds [0] appear in more than one part" in proc.stderr, proc.stderr
    proc = _coin_runs_cli(f"{tmp_path / 'rest'},{summary}", "--tail", "0.25")
    assert proc.returncode == 2 and "tail_updates" in proc.stderr, proc.stderr
    proc = _coin_runs_cli(_coin_run(tmp_path / "other", [0], algo="nash_q"))
    assert proc.returncode == 2 and "coin_game" in proc.stderr, proc.stderr


def test_battle_benchmark_json_smoke(tmp_path):
    doc = run_json(["benchmarks/battle.py", "--quick", "--batch-sizes", "2", "--no-large", "--small", "12,1"], tmp_path)
    (row,) = doc["results"]
    assert (row["map_size"], row["n_per_side"], row["batch_size"], row["steps"]) == (12, 1, 2, 5)
    assert len(row["runs_s"]) == 2 and row["compile_s"] > 0
    assert abs(row["agent_steps_per_s"] - 2 * 2 * 5 / row["median_s"]) < 1e-6 * row["agent_steps_per_s"]
    if doc["magent2"].startswith("magent2 "):  # measured beside ours when installed
        assert row["magent2"]["agent_steps_per_s"] > 0 and row["ratio"] > 0
    else:
        assert doc["magent2"] == "not installed" and "magent2" not in row


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_graph_benchmark_json_smoke(tmp_path):
    doc = run_json(["benchmarks/graph.py", "--quick", "--methods", "dgn_r", "--throughput-steps", "0"], tmp_path)
    (row,) = doc["rows"]
    assert row["method"] == "dgn_r" and row["config"]["relation_reg"] > 0 and len(row["per_seed"]["reward"]) == 2
    assert row["kills_per_episode"]["mean"] == pytest.approx(10 * np.mean(row["per_seed"]["kills"]))
    assert row["agent_steps_per_s"] == pytest.approx(2 * 24 * 4 / row["run_s"]) and "throughput" not in doc


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_graph_benchmark_jungle_json_smoke(tmp_path):
    doc = run_json(["benchmarks/graph.py", "--game", "jungle", "--quick", "--methods", "il"], tmp_path)
    (row,) = doc["rows"]
    assert row["method"] == "il" and doc["env_args"]["n_foods"] == 2 and len(row["per_seed"]["reward"]) == 2
    seeds = row["per_seed"]
    assert row["attacks_per_episode"]["mean"] == pytest.approx(np.mean(seeds["attacks"]))
    share = np.array(seeds["attacks"]) / np.maximum(np.add(seeds["attacks"], seeds["eats"]), 1e-9)
    np.testing.assert_allclose(seeds["attack_share"], share, rtol=1e-6)
    assert row["agent_steps_per_s"] == pytest.approx(2 * 24 * 4 / row["run_s"])
    assert doc["random_policy"]["episodes"] == 4 and 0.0 <= doc["random_policy"]["attack_share"] <= 1.0


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_graph_benchmark_traffic_junction_json_smoke(tmp_path):
    doc = run_json(["benchmarks/graph.py", "--game", "traffic_junction", "--quick", "--methods", "no_comm,commnet"],
                   tmp_path)
    assert [r["method"] for r in doc["rows"]] == ["no_comm", "commnet"]
    for row, comm in zip(doc["rows"], ("none", "mean")):
        assert row["config"]["comm"] == comm and len(row["per_seed"]["success"]) == 2
        assert row["success"]["mean"] == pytest.approx(np.mean(row["per_seed"]["success"]))
        assert 0.0 <= row["success"]["mean"] <= 1.0 and row["agent_steps_per_s"] > 0


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_graph_benchmark_routing_json_smoke(tmp_path):
    doc = run_json(["benchmarks/graph.py", "--game", "routing", "--quick", "--methods", "dgn,floyd_bl,floyd"], tmp_path)
    assert [r["method"] for r in doc["rows"]] == ["dgn", "floyd_bl", "floyd"]
    dgn, limited, free = doc["rows"]
    assert dgn["config"]["gamma"] == 0.98 and len(dgn["per_seed"]["throughput"]) == 2
    assert limited["steps_per_env"] == free["steps_per_env"] == 10  # the learner's tail, in whole episodes of 10
    for row in doc["rows"]:
        assert row["throughput"]["mean"] == pytest.approx(np.mean(row["per_seed"]["throughput"]))
        assert row["mean_delay"]["mean"] == pytest.approx(np.mean(row["per_seed"]["mean_delay"]))
    # without the bandwidth limit no packet waits: Floyd delivers at least as fast as with it
    assert free["throughput"]["mean"] >= limited["throughput"]["mean"] > 0


@pytest.mark.slow  # the default suite's time budget; run with -m slow
def test_graph_benchmark_predator_prey_json_smoke(tmp_path):
    doc = run_json(["benchmarks/graph.py", "--game", "predator_prey", "--quick", "--methods", "no_comm,maddpg"],
                   tmp_path)
    assert [(r["method"], r["algo"]) for r in doc["rows"]] == [("no_comm", "ga_ac"), ("maddpg", "maddpg")]
    assert doc["rows"][0]["config"]["critic"] == "none"
    for row in doc["rows"]:
        seeds = row["per_seed"]
        assert len(seeds["predator_reward"]) == 2
        np.testing.assert_allclose(seeds["touches_per_episode"], np.asarray(seeds["predator_reward"]) / 10 * 5)
        assert row["predator_reward"]["mean"] == pytest.approx(np.mean(seeds["predator_reward"]))
        assert row["agent_steps_per_s"] == pytest.approx(2 * 48 * 3 / row["run_s"])


def test_social_dilemmas_benchmark_json_smoke(tmp_path):
    doc = run_json(["benchmarks/social_dilemmas.py", "--quick", "--batch-sizes", "2", "--games", "harvest",
                    "--frames", str(tmp_path), "--frame-step", "3"], tmp_path)
    (row,) = doc["results"]
    assert (row["game"], row["num_agents"], row["batch_size"], row["steps"]) == ("harvest", 7, 2, 5)
    assert len(row["ours"]["runs_s"]) == 2 and row["ours"]["compile_s"] > 0
    assert abs(row["ours"]["env_steps_per_s"] - 2 * 5 / row["ours"]["median_s"]) < 1e-6 * row["ours"]["env_steps_per_s"]
    if doc["socialjax"].startswith("socialjax "):  # measured beside ours when importable
        assert row["socialjax"]["env_steps_per_s"] > 0 and row["ratio"] > 0
    else:
        assert doc["socialjax"] == "not installed" and "socialjax" not in row
    from PIL import Image
    assert Image.open(tmp_path / "harvest_frame.png").size == (22 * 8, 16 * 8)
    assert doc["frames"] == ["harvest_frame.png"]


@pytest.mark.slow  # five training programs to compile (the baselines', and AgA's lambdas together)
def test_social_dilemmas_method_table_smoke(tmp_path):
    doc = run_json(["benchmarks/social_dilemmas.py", "--methods", "--table-agents", "2", "--table-horizon", "30",
                    "--table-envs", "2", "--table-updates", "2", "--tail", "1", "--seeds", "2", "--lambdas",
                    "0.1,100"], tmp_path, timeout=900)
    methods = [row["method"] for row in doc["rows"]]
    assert methods == ["Simul-Ind", "Simul-Co", "SVO", "CGA", "AgA (lambda=0.1)", "AgA (lambda=100)"]
    for row in doc["rows"]:
        returns = np.asarray(row["per_seed"]["returns"])  # [seeds, agents]
        assert returns.shape == (2, 2) and np.all(returns >= 0)
        np.testing.assert_allclose(row["per_seed"]["social_welfare"], returns.sum(1), rtol=1e-6)
        gini = np.abs(returns[:, 0] - returns[:, 1]) / np.maximum(2 * returns.sum(1), 1e-12)
        np.testing.assert_allclose(row["per_seed"]["equality"], np.where(returns.sum(1) > 0, 1 - gini, 1.0),
                                   rtol=1e-5)
    assert (tmp_path / "bench.png").exists()


@pytest.mark.slow  # two training programs to compile (Simul-Ind's, and AgA's lambdas together)
def test_social_dilemmas_cleanup_table_smoke(tmp_path):
    doc = run_json(["benchmarks/social_dilemmas.py", "--methods", "--table-game", "cleanup", "--table-layout",
                    "small", "--baselines", "Simul-Ind", "--table-agents", "2", "--table-horizon", "20",
                    "--table-envs", "2", "--table-updates", "3", "--tail", "2", "--seeds", "2", "--lambdas",
                    "0.1,100"], tmp_path, timeout=600)
    assert doc["settings"]["layout"] == "small"
    assert [row["method"] for row in doc["rows"]] == ["Simul-Ind", "AgA (lambda=0.1)", "AgA (lambda=100)"]
    for row in doc["rows"]:
        seeds = row["per_seed"]
        # one whole episode per game and update: the apples eaten per episode (step means x horizon) are the returns
        np.testing.assert_allclose(seeds["apples_eaten"], seeds["social_welfare"], rtol=1e-5, atol=1e-5)
        assert np.all(np.asarray(seeds["clean_hits"]) <= np.asarray(seeds["clean_fired"]) + 1e-6)
        assert np.all(np.asarray(seeds["clean_hits"]) <= np.asarray(seeds["cleaned"]) + 1e-6)
        assert all(0.0 <= f <= 1.0 for f in seeds["dirt_fraction"]) and len(row["curves"]["dirt_fraction"]) == 3
        if row["algo"] == "aga_ppo":  # lam < 0 exactly where one factor of the rule is negative
            lam, a, b = (np.asarray(seeds[f"aga_{k}negative_share"]) for k in ("", "stability_", "alignment_"))
            assert np.all((np.abs(a - b) - 1e-6 <= lam) & (lam <= np.minimum(a + b, 2 - a - b) + 1e-6))
        else:
            assert "aga_negative_share" not in row
    assert (tmp_path / "bench.png").exists()


@pytest.mark.slow  # one training program to compile
def test_social_dilemmas_trained_episode_smoke(tmp_path):
    gif = tmp_path / "episode.gif"
    cmd = [sys.executable, "benchmarks/social_dilemmas.py", "--trained-episode", str(gif), "--table-game", "cleanup",
           "--table-layout", "small", "--table-agents", "2", "--table-horizon", "12", "--table-envs", "2",
           "--table-updates", "2", "--tail", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Simul-Co after 2 updates: episode returns [" in proc.stderr
    from PIL import Image
    assert Image.open(gif).n_frames >= 2  # 13 frames, identical ones merged by the GIF writer


def test_social_dilemmas_table_flags_are_checked():
    from benchmarks.social_dilemmas import parse_args

    assert parse_args(["--methods", "--table-game", "cleanup", "--table-layout", "small"]).table_layout == "small"
    assert parse_args(["--methods"]).baselines == ["Simul-Ind", "Simul-Co", "SVO", "CGA"]
    for argv in (["--table-layout", "small"], ["--baselines", "Simul-Ind,Selfish"],  # Harvest has no layouts
                 ["--trained-episode", "ep.gif", "--episode-method", "AgA"]):
        with pytest.raises(SystemExit):
            parse_args(["--methods", *argv])


def test_value_decomposition_benchmark_smoke(tmp_path):
    out = tmp_path / "vd.json"
    cmd = [sys.executable, "benchmarks/value_decomposition.py", "--only", "two_step", "--learners", "vdn", "--seeds",
           "2", "--updates", "3", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["two_step"]
    assert [(r["algo"], r["regime"]) for r in rows] == [("vdn", "uniform"), ("vdn", "annealed")]
    for r in rows:
        assert r["env_steps"] == 3 * 16 * 2 and sum(r["greedy_return_counts"].values()) == 2
    assert np.shape(rows[0]["q_table"]["2B"]) == (2, 2)
    assert rows[0]["paper_q_table"]["2B"] == [[-1.87, 2.31], [2.33, 6.51]] and "paper_q_table" not in rows[1]


def test_time_compiled_reports_the_process_cpu_seconds_of_each_interval():
    """A call that keeps a core busy (8 products of 128 x 128 matrices, about 34 MFLOP) is counted in the process's
    CPU seconds, which no thread can push above the wall time times the cores."""
    import jax
    import jax.numpy as jnp

    from benchmarks.common import time_compiled

    def busy(x):
        return jax.lax.fori_loop(0, 8, lambda i, a: jnp.tanh(a @ a), x)

    cpu: dict = {}
    compile_s, runs, _ = time_compiled(busy, (jnp.eye(128) * 0.5,), repeats=2, warmup=False, cpu=cpu)
    assert len(cpu["runs_s"]) == 2 and 0 < cpu["compile_s"]
    for wall, seconds in zip(runs, cpu["runs_s"]):
        assert 0 < seconds <= wall * os.cpu_count() + 0.01


def test_value_decomposition_side_by_side_takes_jaxmarls_settings(tmp_path):
    """JaxMARL's QLearning config files (their keys, YAML 1.1 spelling) -> our config with the same settings."""
    import envs
    from algos.value_decomposition import default_config
    from benchmarks import value_decomposition as vdb
    from benchmarks.jaxmarl_qlearning import PEER_CONFIG
    from jaxmarl_core.config import replace

    folder = tmp_path / "baselines" / "QLearning" / "config"
    (folder / "alg").mkdir(parents=True)
    (folder / "config.yaml").write_text('"NUM_SEEDS": 1\n"SEED": 0\n"WANDB_MODE": "disabled"\n"SAVE_PATH": "models"\n')
    (folder / "alg" / PEER_CONFIG).write_text(
        '"TOTAL_TIMESTEPS": 1e7\n"NUM_ENVS": 8\n"NUM_STEPS": 26\n"BUFFER_SIZE": 5000\n"BUFFER_BATCH_SIZE": 32\n'
        '"HIDDEN_SIZE": 64\n"MIXER_EMBEDDING_DIM": 32\n"MIXER_HYPERNET_HIDDEN_DIM": 128\n"MIXER_INIT_SCALE": 0.001\n'
        '"EPS_START": 1.0\n'
        '"EPS_FINISH": 0.05\n"EPS_DECAY": 0.1\n"MAX_GRAD_NORM": 25\n"TARGET_UPDATE_INTERVAL": 200\n"NUM_EPOCHS": 1\n'
        '"LR": 0.005\n"LR_LINEAR_DECAY": True\n"GAMMA": 0.9\n"ENV_NAME": "MPE_simple_spread_v3"\n'
        '"TEST_INTERVAL": 0.05\n"TEST_NUM_ENVS": 512\n')
    cfg = vdb.peer_config(str(tmp_path), 41_600)
    assert cfg["TOTAL_TIMESTEPS"] == 41_600 and cfg["SAVE_PATH"] is None and cfg["WANDB_MODE"] != "disabled"
    env = envs.make(vdb.PEER_TASK)
    ours = replace(default_config(env, "qmix"), vdb.matched_overrides(cfg))
    ours.validate(env)
    assert ours.num_updates == 41_600 // (26 * 8) == 200 and ours.steps_per_update == 208
    assert ours.epsilon_decay_steps == 20 * 208 and ours.episode_buffer_size == 5000 and ours.episode_batch_size == 32
    assert (ours.lr, ours.lr_decay, ours.optimiser, ours.gamma, ours.max_grad_norm) == (0.005, True, "radam", 0.9, 25)
    assert ours.recurrent and not ours.layer_norm and ours.hypernet_embed == 128 and ours.mixer_init_scale == 0.001
    assert ours.target_update == 200 and ours.team_reward == "sum"
    assert (ours.eval_every, ours.eval_episodes, ours.eval_steps) == (10, 512, 25)


def test_value_decomposition_side_by_side_checks_its_repo(tmp_path, capsys):
    """A folder without JaxMARL's baselines, or a --jaxmarl-python that is no executable file, is a one-line error
    (exit 2) before anything compiles."""
    from benchmarks import value_decomposition as vdb

    with pytest.raises(SystemExit) as exit_info:
        vdb.main(["--only", "jaxmarl", "--jaxmarl-repo", str(tmp_path)])
    assert exit_info.value.code == 2 and "--jaxmarl-repo" in capsys.readouterr().err
    (tmp_path / "baselines" / "QLearning").mkdir(parents=True)
    for python in (str(tmp_path / "no-python"), str(tmp_path)):  # absent; not an executable file
        with pytest.raises(SystemExit) as exit_info:
            vdb.main(["--only", "jaxmarl", "--jaxmarl-repo", str(tmp_path), "--jaxmarl-python", python])
        assert exit_info.value.code == 2 and "--jaxmarl-python" in capsys.readouterr().err


@pytest.mark.slow  # a child process and two compilations, about 20 s on 2 cores
def test_value_decomposition_side_by_side_ours_on_two_host_devices():
    """``--our-devices 2``: ours trains in a child process that sees two host devices (the seeds split over them),
    and learns what it learns in this process with one, to float rounding; this process keeps its own devices."""
    import jax

    from benchmarks import value_decomposition as vdb

    flags = os.environ["XLA_FLAGS"]
    overrides = dict(recurrent=True, total_steps=4 * 8 * 26, num_envs=8, rollout_len=26, episode_buffer_size=64,
                     episode_batch_size=8, hidden_size=16, eval_steps=25, eval_every=2, eval_episodes=4)
    devices = jax.device_count()
    one = vdb.train_ours("qmix", overrides, 2, devices=1)
    two = vdb.train_ours("qmix", overrides, 2, devices=2)
    assert (one["devices"], two["devices"], jax.device_count()) == (devices, 2, devices)
    assert one["num_updates"] == two["num_updates"] == 4
    np.testing.assert_allclose(two["metrics"]["greedy_return"], one["metrics"]["greedy_return"], rtol=1e-4,
                               atol=1e-4)
    assert os.environ["XLA_FLAGS"] == flags


def test_mean_field_benchmark_json_smoke(tmp_path):
    doc = run_json(["benchmarks/mean_field.py", "--quick", "--algos", "mfq,mfac"], tmp_path)
    rows = doc["ising"]["rows"]
    assert [r["tau"] for r in rows] == [0.5, 3.0] and rows[0]["onsager"] > 0.99 and rows[1]["onsager"] == 0.0
    assert all(0.0 <= r["order_parameter"]["mean"] <= 1.0 and len(r["per_seed"]) == 2 for r in rows)
    squeeze = doc["squeeze"]["rows"]
    assert [(r["algo"], r["n_agents"]) for r in squeeze] == [("mfq", 10), ("mfac", 10)]
    assert all(r["r_star"] > 0 and len(r["per_seed"]) == 2 for r in squeeze)


@pytest.mark.slow
def test_mean_field_battle_self_play_and_cross_play_smoke(tmp_path):
    doc = run_json(["benchmarks/mean_field.py", "--quick", "--parts", "battle", "--algos", "mfq,ac"], tmp_path)
    battle = doc["battle"]
    assert [r["algo"] for r in battle["training"]] == ["mfq", "ac"]
    assert all(e > 0 for r in battle["training"] for e in r["episodes"])  # self-play rounds ended
    assert [(r["first"], r["second"]) for r in battle["rows"]] == [("mfq", "ac"), ("ac", "mfq")]
    for row in battle["rows"]:
        assert all(sum(c.values()) == battle["games"] for c in row["per_seed"])
        assert all(0 <= n <= battle["n_per_side"] for n in row["mean_survivors"])


def test_compile_profile_json_smoke(tmp_path):
    doc = run_json(["benchmarks/compile_profile.py", "--only", "lri,wolf_iga", "--updates", "1", "--seeds", "2"],
                   tmp_path)
    assert doc["times"] == "process CPU seconds" and doc["compile_cache"] == "off"
    rows = {r["algo"]: r for r in doc["results"]}
    assert sorted(rows) == ["lri", "wolf_iga"]
    for r in rows.values():
        assert r["seeds"] == 2 and r["updates"] == 1 and r["chunk_length"] == 1
        parts = [r[f][k] for f in ("init", "chunk") for k in ("trace_s", "lower_s", "compile_s")]
        assert min(parts) >= 0 and r["chunk"]["compile_s"] > 0
        assert abs(r["total_cpu_s"] - sum(parts)) < 1e-9
        assert r["chunk"]["hlo_instructions"] > r["chunk"]["fusions"] > 0


def test_compile_time_has_a_compatible_environment_for_every_algorithm():
    import algos
    from benchmarks.compile_time import default_env, make_env

    for name in algos.list_algos():
        env_name = default_env(name)
        assert algos.compatible(name, make_env(name, env_name)) is None, (name, env_name)


@pytest.mark.slow  # two train.py processes per call
def test_compile_time_json_smoke_and_resume(tmp_path):
    args = ["benchmarks/compile_time.py", "--only", "lri", "--updates", "1", "--seeds", "2"]
    doc = run_json(args, tmp_path)
    (row,) = doc["results"]
    assert row["algo"] == "lri" and row["env"] == "matrix_mp" and row["updates"] == 1
    for run in (row["cold"], row["warm"]):
        assert run["compile_s"] > 0 and run["compile_cpu_s"] > 0 and run["process_cpu_s"] > run["compile_cpu_s"]
    again = run_json([*args, "--resume"], tmp_path)  # nothing left to measure: the row is kept as it was
    assert again["results"] == doc["results"]


def test_compile_profile_counts_the_optimised_program():
    import jax
    import jax.numpy as jnp

    from benchmarks.compile_profile import program_size

    def loop(x):
        return jax.lax.fori_loop(0, x[0].astype(jnp.int32), lambda i, v: jnp.sin(v) * 2.0 + v, x)

    size = program_size(jax.jit(loop).lower(jnp.ones(8)).compile().as_text())
    assert size["while_loops"] == 1 and size["fusions"] >= 1
    assert program_size(jax.jit(lambda x: x).lower(jnp.ones(8)).compile().as_text())["while_loops"] == 0


def test_compile_profile_attributes_fusions_to_their_source_lines(tmp_path):
    import jax
    import jax.numpy as jnp

    from benchmarks.compile_profile import attribute, kernel_costs

    def two_kernels(x):
        y = jnp.sort(x) * 3.0
        return jnp.cumsum(jnp.sin(y) + x)

    line = two_kernels.__code__.co_firstlineno
    with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
        hlo = jax.jit(two_kernels).lower(jnp.arange(64.0)).compile().as_text()
    costs = kernel_costs(str(tmp_path))
    tables = attribute(hlo, costs=costs)
    rows = {r["key"]: r for r in tables["source"]}
    here = "tests/test_benchmarks.py"
    assert rows[f"{here}:{line + 2}"]["fusions"] >= 1 and rows[f"{here}:{line + 1}"]["instructions"] >= 1
    assert {r["key"] for r in tables["file"]} >= {here}
    assert sum(r["fusions"] for r in tables["file"]) == hlo.count(" fusion(")
    assert all(r["kernel_compile_s"] >= 0 for r in tables["file"]) and sum(costs.values()) > 0


def test_differentiable_games_benchmark_json_smoke(tmp_path):
    doc = run_json(["benchmarks/differentiable_games.py", "--quick", "--methods", "aga", "--scatter",
                    str(tmp_path / "pg.png")], tmp_path)
    assert [r["method"] for r in doc["toy"]["rows"]] == ["aga"]
    assert all(0.0 <= r["reached_welfare_2"] <= 1.0 and r["inits"] == 8 for r in doc["toy"]["rows"])
    assert len(doc["toy"]["trajectories"]) == 3
    for row in doc["public_goods"]["rows"]:  # welfare is the sum of the rewards; equality lies in (0, 1]
        assert abs(row["social_welfare"]["mean"] - row["r1"]["mean"] - row["r2"]["mean"]) < 1e-5
        assert 0.0 < row["equality"]["mean"] <= 1.0 and row["runs"] == 4
    for row in doc["speed"]:
        assert row["instances"] == 16 and row["steps"] == 10 and row["compile_s"] > 0
        assert abs(row["us_per_step"] - 1e6 * row["median_s"] / 10) < 1e-6 * row["us_per_step"]
    (row,) = doc["public_goods"]["rows"]  # the scatter's points: every run's final shares
    actions = np.asarray(row["final_actions"])
    assert actions.shape == (4, 2) and np.all((actions > 0) & (actions < 1)) and (tmp_path / "pg.png").exists()
    np.testing.assert_allclose(row["final_actions_mean"], actions.mean(0), rtol=1e-6)
    (eff,) = doc["efficiency"]  # no simul_ind here: no ratio
    assert eff["steps"] == row["steps_to_converge"]["median"] and 1 <= eff["steps"] <= 100
    assert len(eff["runs_s"]) == 2 and eff["games"] == 4 and eff["step_time_ratio"] is None
    assert eff["updates"] == 100 and abs(eff["step_time_s"] * 100 - eff["duration_s"]) < 1e-12


def test_differentiable_games_steps_to_converge_counts_the_last_update_that_moves():
    from benchmarks.differentiable_games import CONVERGED, steps_to_converge

    u = 6  # actions after updates 1..6 of three runs: still moving, settling after update 3, never moving
    still, settles, flat = np.linspace(0, 1, u), np.r_[0.0, 0.5, 0.9, 0.9, 0.9 + CONVERGED / 2, 0.9], np.zeros(u)
    actions = np.stack([np.stack([still, flat], -1), np.stack([flat, settles], -1), np.stack([flat, flat], -1)])
    np.testing.assert_array_equal(steps_to_converge(actions), [6, 3, 1])


def test_harl_suites_take_jaxmarl_s_mappo_settings_and_list_the_full_budgets(tmp_path, capsys):
    """JaxMARL's MAPPO config on SMAX (its keys, YAML 1.1 spelling) -> our mappo with the same settings; the GPU
    commands name every suite's preset."""
    import envs
    from algos.onpolicy import default_config
    from benchmarks import harl_suites as hs
    from jaxmarl_core.config import replace

    path = tmp_path / hs.PEER_CONFIG
    path.parent.mkdir(parents=True)
    path.write_text('"LR": 0.002\n"NUM_ENVS": 128\n"NUM_STEPS": 128\n"TOTAL_TIMESTEPS": 1e7\n"GRU_HIDDEN_DIM": 128\n'
                    '"UPDATE_EPOCHS": 4\n"NUM_MINIBATCHES": 4\n"GAMMA": 0.99\n"GAE_LAMBDA": 0.95\n"CLIP_EPS": 0.2\n'
                    '"ENT_COEF": 0.0\n"VF_COEF": 0.5\n"MAX_GRAD_NORM": 0.25\n"OBS_WITH_AGENT_ID": True\n'
                    '"MAP_NAME": "2s3z"\n"ENV_KWARGS": {"see_enemy_actions": True}\n"ANNEAL_LR": True\n'
                    '"WANDB_MODE": "disabled"\n')
    cfg = hs.peer_config(str(tmp_path), "3m", 3)
    assert cfg["MAP_NAME"] == "3m" and cfg["TOTAL_TIMESTEPS"] == 3 * 128 * 128 and cfg["WANDB_MODE"] != "disabled"
    env = envs.make("mpe_spread")  # the settings only: any environment with a global state
    ours = replace(default_config(env, "mappo"), hs.matched_overrides(cfg))
    ours.validate(env)
    assert (ours.num_updates, ours.num_envs, ours.rollout_len) == (3, 128, 128)
    assert (ours.lr, ours.critic_lr, ours.lr_decay, ours.ppo_epochs, ours.critic_epochs, ours.num_minibatches) == (
        0.002, 0.002, True, 4, 4, 4)
    assert (ours.max_grad_norm, ours.entropy_coef, ours.value_coef, ours.clip_eps) == (0.25, 0.0, 0.5, 0.2)
    assert ours.recurrent and ours.hidden_sizes == (128,) and not ours.agent_id and ours.share_params
    assert ours.head_layers == 1 and not ours.layer_norm and not ours.feature_norm and ours.agent_state
    assert not ours.use_value_norm and ours.huber_delta == 0.0
    assert hs.peer_config(str(tmp_path), "3m", 2, (8, 16))["TOTAL_TIMESTEPS"] == 2 * 8 * 16
    assert hs.main(["--gpu-commands"]) == 0
    printed = capsys.readouterr().out
    for preset in ("harl_smac", "harl_mamujoco", "harl_mamujoco_halfcheetah_2x3"):
        assert f"preset={preset} " in printed


@pytest.mark.slow  # compiles JaxMARL's MAPPO and ours on SMAX: minutes
def test_harl_suites_side_by_side_smoke(tmp_path):
    """Both sides at a tiny rollout shape; needs jaxmarl and a checkout of JaxMARL's repository (JAXMARL_REPO)."""
    pytest.importorskip("jaxmarl")
    repo = os.environ.get("JAXMARL_REPO")
    if not repo:
        pytest.skip("JAXMARL_REPO (a checkout of JaxMARL's repository) is not set")
    doc = run_json(["benchmarks/harl_suites.py", "--jaxmarl-repo", repo, "--updates", "2", "--seeds", "2",
                    "--shape", "8", "16"], tmp_path)["smax"]
    assert doc["env_steps_per_seed"] == 2 * 8 * 16 and doc["env"] == "jaxmarl:HeuristicEnemySMAX(3m)"
    for side in ("ours", "jaxmarl"):
        assert len(doc[side]["curve_return"]) == 2 and doc[side]["final_return"]["n"] == 2
        assert 0.0 <= doc[side]["final_win_rate"]["mean"] <= 1.0 and doc[side]["run_s"] > 0


@pytest.mark.slow
def test_harl_end_to_end_smoke(tmp_path):
    harl = tmp_path / "harl"  # a stand-in for HARL's examples/train.py that records its command line
    (harl / "examples").mkdir(parents=True)
    (harl / "examples" / "train.py").write_text("import sys, json\njson.dump(sys.argv[1:], open('argv.json', 'w'))\n")
    out = tmp_path / "e2e.json"
    cmd = [sys.executable, "benchmarks/harl_end_to_end.py", "--harl-dir", str(harl), "--steps", "4000",
           "--marginal-steps", "8000", "--json", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == doc and doc["steps"] == 4000
    assert all(len(doc[k]) == 1 and doc[k][0] > 0 for k in ("ours_cold_s", "harl_s", "ours_warm_s"))
    assert doc["harl_over_ours_warm"] == doc["median_s"]["harl_s"] / doc["median_s"]["ours_warm_s"]
    med = doc["median_s"]
    assert doc["training_steps_per_s"]["ours"] == 4000 / (med["ours_warm_marginal_s"] - med["ours_warm_s"])
    argv = json.loads((harl / "examples" / "argv.json").read_text())  # the last HARL run: the marginal budget
    assert argv[argv.index("--num_env_steps") + 1] == "8000" and argv[argv.index("--use_eval") + 1] == "False"
    assert argv[argv.index("--load_config") + 1].endswith("simple_spread_v2-discrete/happo/config.json")
    bad = subprocess.run([sys.executable, "benchmarks/harl_end_to_end.py", "--harl-dir", str(harl), "--steps", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--steps" in bad.stderr


@pytest.mark.slow
def test_harl_end_to_end_only_ours(tmp_path):
    out = tmp_path / "ours.json"
    cmd = [sys.executable, "benchmarks/harl_end_to_end.py", "--only-ours", "--ours-root", ROOT, "--steps", "4000",
           "--repeats", "2", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    root = os.path.abspath(ROOT)
    assert doc["only_ours"] and doc["roots"] == [root] and "harl_s" not in doc
    for phase in ("cold", "warm"):
        runs = doc["ours_runs"][root][phase]
        assert len(runs) == 2 and all(r["wall_s"] > r["train_s"] > 0 and r["cpu_s"] > 0 for r in runs)
        assert all(r["wall_s"] > r["outside_run_s"] > 0 and len(r["load"]) == 2 for r in runs)
        assert doc["median"][root][phase]["wall_s"] == statistics.median(r["wall_s"] for r in runs)
    # the warm run loads what the cold one compiled
    assert doc["median"][root]["warm"]["compile_s"] < doc["median"][root]["cold"]["compile_s"]
    for args, flag in ((["--steps", "4000"], "--harl-dir"), (["--only-ours", "--ours-root", str(tmp_path)],
                                                             "--ours-root"),
                       (["--only-ours", "--ours-root", ROOT, "--ours-root", ROOT], "--ours-root")):
        bad = subprocess.run([sys.executable, "benchmarks/harl_end_to_end.py", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert bad.returncode == 2 and flag in bad.stderr, bad.stderr
