"""Numbers that must not move: a fixed list of short ``train.py`` runs covering every algorithm family, whose
``metrics.csv`` files are kept in ``benchmarks/golden/`` and compared after a restructuring.

    python -m benchmarks.golden_runs --record            # (re)write benchmarks/golden/NAME.csv
    python -m benchmarks.golden_runs --check             # rerun and compare; exit 1 if any run differs
    python -m benchmarks.golden_runs --check --only happo_spread,ippo_gru

``--check`` prints, per run, whether the files are identical, and otherwise the largest absolute and relative
difference over all numeric cells (with ``--rtol``, a run passes when every cell is within it: float rounding where an
operation was reordered). Each run is one process, as a user would start it; the persistent compilation cache is
off so that recording and checking compile alike.

The files are exact for the CPU model they were recorded on: XLA generates different vector code for other CPU
models, so there a run can differ by float rounding with no change to the code. To check a change on another machine,
run ``--check`` before and after it and compare the two reports, or ``--record`` at the base first.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(HERE, "golden")

ONPOLICY = ["--set", "num_envs=4", "--set", "rollout_len=25", "--set", "total_steps=300", "--set", "hidden_size=32"]
SAMPLED = ["--set", "num_updates=3", "--set", "batch_size=16"]
EPISODES = ["--set", "recurrent=true", "--set", "num_envs=4", "--set", "rollout_len=26", "--set", "total_steps=1040",
            "--set", "episode_buffer_size=16", "--set", "episode_batch_size=4", "--set", "hidden_size=16",
            "--set", "target_update=3", "--set", "optimiser=radam", "--set", "lr_decay=true", "--set", "eval_steps=25",
            "--set", "eval_every=4", "--set", "eval_episodes=2"]  # value decomposition's whole-episode replay
OFFPOLICY = ["--set", "num_envs=2", "--set", "rollout_len=10", "--set", "total_steps=200", "--set", "num_sgd=2",
             "--set", "buffer_size=256", "--set", "batch_size=16", "--set", "learning_starts=40",
             "--set", "warmup_steps=40", "--set", "hidden_size=16"]

# name -> train.py arguments (two seeds each; --seeds and --out are added)
RUNS: dict[str, list[str]] = {
    "lola_exact_ipd": ["--algo", "lola_exact", "--env", "ipd", "--set", "num_updates=30"],
    "nl_exact_imp": ["--algo", "nl_exact", "--env", "imp", "--set", "num_updates=30"],
    "lola_pg_ipd": ["--algo", "lola_pg", "--env", "ipd", *SAMPLED],
    "lola_om_imp": ["--algo", "lola_om", "--env", "imp", *SAMPLED],
    "lola_dice_ipd": ["--algo", "lola_dice", "--env", "ipd", *SAMPLED, "--set", "lookahead=2"],
    "nl_pg_coin_game": ["--algo", "nl_pg", "--env", "coin_game", *SAMPLED],
    "lola_pg_coin_game": ["--algo", "lola_pg", "--env", "coin_game", *SAMPLED],
    "wolf_phc_mp": ["--algo", "wolf_phc", "--env", "matrix_mp", "--set", "total_steps=6000",
                    "--set", "steps_per_update=1000"],
    "iql_tabular_soccer": ["--algo", "iql_tabular", "--env", "soccer", "--set", "total_steps=6000",
                           "--set", "steps_per_update=1000"],
    "minimax_q_soccer": ["--algo", "minimax_q", "--env", "soccer", "--set", "total_steps=6000",
                         "--set", "steps_per_update=1000"],
    "nash_q_grid_game_1": ["--algo", "nash_q", "--env", "grid_game_1", "--set", "total_steps=4000",
                           "--set", "steps_per_update=1000"],
    "ffq_foe_rps": ["--algo", "ffq", "--env", "matrix_rps", "--set", "backup=foe", "--set", "total_steps=4000",
                    "--set", "steps_per_update=1000"],
    "wolf_iga_mp": ["--algo", "wolf_iga", "--env", "matrix_mp", "--set", "num_updates=200"],
    "lagging_anchor_rps": ["--algo", "lagging_anchor", "--env", "matrix_rps", "--set", "num_updates=200"],
    "lri_climbing": ["--algo", "lri", "--env", "matrix_climbing", "--set", "total_steps=4000",
                     "--set", "steps_per_update=1000"],
    "happo_spread": ["--algo", "happo", "--env", "mpe_spread", *ONPOLICY],
    "hatrpo_spread": ["--algo", "hatrpo", "--env", "mpe_spread", *ONPOLICY],
    "haa2c_speaker_listener": ["--algo", "haa2c", "--env", "mpe_speaker_listener", *ONPOLICY],
    "mappo_spread_continuous": ["--algo", "mappo", "--env", "mpe_spread", "--env-arg", "continuous=true", *ONPOLICY],
    "happo_reference_continuous": ["--algo", "happo", "--env", "mpe_reference", "--env-arg", "continuous=true",
                                   *ONPOLICY],
    "ippo_gru_simple": ["--algo", "ippo", "--env", "mpe_simple", *ONPOLICY, "--set", "recurrent=true"],
    "maa2c_trap": ["--algo", "maa2c", "--env", "matrix_trap", *ONPOLICY],
    "mappo_coin_game": ["--algo", "mappo", "--env", "coin_game", *ONPOLICY],
    "happo_tag_team": ["--algo", "happo", "--env", "mpe_tag", *ONPOLICY, "--set", "team_reward=true",
                          "--set", "eval_envs=2"],
    "qmix_rnn_spread": ["--algo", "qmix", "--env", "mpe_spread", *EPISODES, "--set", "mixer_init_scale=0.001"],
    "vdn_rnn_spread": ["--algo", "vdn", "--env", "mpe_spread", *EPISODES],
    "drqn_lambda_simple": ["--algo", "drqn", "--env", "mpe_simple", *EPISODES, "--set", "td_lambda=0.6"],
    "qmix_two_step": ["--algo", "qmix", "--env", "two_step", "--set", "total_steps=640"],
    "hatd3_spread_continuous": ["--algo", "hatd3", "--env", "mpe_spread", "--env-arg", "continuous=true", *OFFPOLICY],
    "maddpg_speaker_listener": ["--algo", "maddpg", "--env", "mpe_speaker_listener", *OFFPOLICY],
    "haddpg_reference_continuous": ["--algo", "haddpg", "--env", "mpe_reference", "--env-arg", "continuous=true",
                                    *OFFPOLICY],
    "dgn_battle": ["--algo", "dgn", "--env", "dgn_battle", "--env-arg", "map_size=10", "--env-arg", "n_learners=4",
                   "--env-arg", "n_enemies=2", "--env-arg", "max_cycles=7", "--set", "total_steps=60",
                   "--set", "encoder_size=16", "--set", "num_heads=2", "--set", "head_dim=4",
                   "--set", "buffer_size=256", "--set", "batch_size=4", "--set", "learning_starts=8",
                   "--set", "relation_reg=0.1"],
    "ga_ac_predator_prey": ["--algo", "ga_ac", "--env", "predator_prey", "--set", "total_steps=96",
                            "--set", "num_envs=2", "--set", "rollout_len=8", "--set", "hidden_size=16",
                            "--set", "head_dim=4", "--set", "gru_size=4", "--set", "buffer_size=256",
                            "--set", "batch_size=8", "--set", "learning_starts=16", "--set", "num_sgd=2"],
    "ga_comm_traffic_junction": ["--algo", "ga_comm", "--env", "traffic_junction", "--env-arg", "num_cars=3",
                                 "--env-arg", "max_steps=5", "--set", "total_steps=40", "--set", "num_envs=2",
                                 "--set", "rollout_len=5", "--set", "hidden_size=16", "--set", "head_dim=4",
                                 "--set", "gru_size=4"],
}
SEEDS = 2


def run_one(name: str, out: str) -> str:
    """Run ``name`` into ``out``; -> the path of its metrics.csv."""
    env = dict(os.environ, JAXMARL_COMPILE_CACHE="off", JAX_COMPILATION_CACHE_DIR="")
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *RUNS[name], "--seeds", str(SEEDS), "--quiet",
           "--out", out]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    return os.path.join(out, "metrics.csv")


def read(path: str) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(x) if x not in ("", "nan") else np.nan for x in r] for r in rows[1:]])


def compare(golden: str, fresh: str) -> tuple[bool, float, float]:
    """-> (identical bytes, max |a - b|, max |a - b| / max(|a|, 1e-12)) over the numeric cells."""
    with open(golden, "rb") as a, open(fresh, "rb") as b:
        if a.read() == b.read():
            return True, 0.0, 0.0
    head_a, a = read(golden)
    head_b, b = read(fresh)
    if head_a != head_b or a.shape != b.shape:
        return False, float("inf"), float("inf")
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    rel = diff / np.maximum(np.abs(a), 1e-12)
    return False, float(np.nanmax(diff)), float(np.nanmax(np.where(both_nan, 0.0, rel)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", action="store_true", help="rewrite the golden metrics.csv files")
    mode.add_argument("--check", action="store_true", help="rerun and compare with the golden files")
    p.add_argument("--only", default="", help="comma-separated run names (default: all)")
    p.add_argument("--rtol", type=float, default=0.0, help="relative tolerance per cell for --check (default 0)")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(RUNS)
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        p.error(f"unknown run(s) {', '.join(unknown)}; valid names: {', '.join(RUNS)}")
    os.makedirs(GOLDEN, exist_ok=True)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            fresh = run_one(name, os.path.join(tmp, name))
            golden = os.path.join(GOLDEN, f"{name}.csv")
            if args.record:
                os.replace(fresh, golden)
                print(f"{name}: recorded", flush=True)
                continue
            same, abs_d, rel_d = compare(golden, fresh)
            ok = same or rel_d <= args.rtol
            verdict = "identical" if same else f"max abs diff {abs_d:.3g}, max rel diff {rel_d:.3g}"
            print(f"{name}: {verdict}{'' if ok else '  FAIL'}", flush=True)
            if not ok:
                failed.append(name)
    if failed:
        print(f"{len(failed)} run(s) differ: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
