"""Value decomposition: the paper checks of IQL, VDN and QMIX on the two-step game (Rashid et al., 2018) and the
one-shot cooperative matrix games (climbing, penalty with k = -100, the non-monotonic game).

    python benchmarks/value_decomposition.py --seeds 16 --out results.json

Two exploration regimes: "uniform" (epsilon 1 throughout: every joint action equally likely, the QMIX paper's
full-exploration data, the greedy policy read from the learned values) and "annealed" (the default config: epsilon
1 -> 0.05 over the first half of the run). For each learner and game: how many seeds' greedy joint policy earns each
return (``greedy_return`` at the end of training), and on the two-step game the learned Q_tot table (median over
seeds; Q_i for IQL) beside the paper's Table 1 (full exploration; ``PAPER_Q_TABLES``). The matrix games also report the
ceiling of an additive fit: the payoff of the joint action that maximises the least-squares fit Q_1(a_1) + Q_2(a_2)
of the payoffs under uniform play (the row and column means), which VDN's greedy policy reaches under uniform
exploration.

The flicker group (``--only flicker``, 8 seeds by default there): feed-forward ``iql`` and recurrent ``drqn`` on
``mpe_simple`` (one agent, 25-step episodes, observing its velocity and the landmark's relative position) as it is
and under ``flicker`` (every step's observation blanked with probability ``--flicker-prob``, default
``FLICKER_PROB``), at equal environment steps. A seed's score is its greedy policy's return (``eval_steps``: one
fresh episode after each update) averaged over the last tenth of the updates; each (learner, variant) reports the
mean and 95% Student-t interval of the scores over seeds, and the flickered task the interval of the per-seed
differences DRQN - IQL (seed i of each; the two runs are independent, so the pairs are too).

The side-by-side group (``--only jaxmarl --jaxmarl-repo PATH``, 4 seeds by default there): JaxMARL's own QMIX and VDN
(``baselines/QLearning/qmix_rnn.py`` and ``vdn_rnn.py`` of a checkout of its repository, never part of this project)
and ours with the same settings (``matched_overrides`` of its ``ql_rnn_mpe.yaml``) on MPE spread, each side in its
own fresh process, the order alternating between algorithms: JaxMARL's run by ``--jaxmarl-python PATH`` (a Python
with ``jaxmarl`` and ``flashbax``, default this one; ``benchmarks/jaxmarl_qlearning.py``), ours by this Python
(``train_ours``). Greedy team returns at JaxMARL's test points (mean and 95% interval over seeds, its seeds' range),
run, compile and end-to-end times, both sides' JAX versions, and both tasks' random-policy returns.

    python benchmarks/value_decomposition.py --only jaxmarl --jaxmarl-repo /path/to/JaxMARL \
        --jaxmarl-python /path/to/venv/bin/python --out r.json --plot r.png

With jaxlib 0.10.0 to 0.10.2 on CPU, JaxMARL's side can hang: its orthogonal initialisers, vmapped over seeds, become
batched LAPACK QR factorisations that jaxlib splits into sub-tasks on XLA's CPU thread pool, and two of them running
at once on a 2-thread pool wait for each other for ever. ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=
false`` makes this rarer, not impossible; jaxlib 0.9.2 and 0.4.38 did not hang in the same test (RESULTS.md), which is
why JaxMARL's side can run in a Python of its own.

Devices: JaxMARL's side runs its seeds vmapped on one device, as its ``single_run`` does. Ours runs as
``train.py`` does, its seeds split over every visible device (``jaxmarl_core.sweep.map_seeds``). With
``--our-devices N`` (N > 1) ours trains in a child process started with ``XLA_FLAGS=
--xla_force_host_platform_device_count=N`` (N host devices of the CPU, the seeds split over them, a library
feature JaxMARL's script does not use), while JaxMARL's stays on one device in its own process, as its script runs.
Each run records its device count (``devices``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from algos.value_decomposition.config import ValueDecompositionConfig  # noqa: E402
from algos.value_decomposition.model import build_model  # noqa: E402
from benchmarks.common import (  # noqa: E402
    dump,
    machine_info,
    train_many,
)
from benchmarks.envs import make_rollout  # noqa: E402
from benchmarks.jaxmarl_qlearning import PEER_ENV, PEER_HORIZON, PEER_SCRIPTS, peer_config  # noqa: E402
from jaxmarl_core import outputs  # noqa: E402
from jaxmarl_core.learner_view import LearnerView  # noqa: E402
from jaxmarl_core.outputs import mean_ci95  # noqa: E402

REGIMES = {"uniform": {"epsilon_start": 1.0, "epsilon_end": 1.0}, "annealed": {}}
MATRIX_GAMES = (("matrix_climbing", {}), ("matrix_penalty", {"k": -100.0}), ("matrix_nonmonotonic", {}))
FLICKER_TASK = "mpe_simple"
FLICKER_PROB = 0.5
FLICKER_STEPS = 400_000  # environment steps per seed
FLICKER_HORIZON = 25  # mpe_simple's episode length
PEER_TASK = "mpe_spread"  # ours; JaxMARL's PEER_ENV is the same scenario
PEER_STEPS = 150_000  # environment steps per seed (the recorded run's budget)
PEER_SEEDS = 4

# The QMIX paper's Table 1 (Rashid et al., 2018): Q_tot [a_0][a_1] learned on the two-step game from uniform data
PAPER_Q_TABLES = {
    "vdn": {"first": [[6.94, 6.94], [6.35, 6.36]], "2A": [[6.99, 7.02], [6.99, 7.02]],
            "2B": [[-1.87, 2.31], [2.33, 6.51]]},
    "qmix": {"first": [[6.93, 6.93], [7.92, 7.92]], "2A": [[7.00, 7.00], [7.00, 7.00]],
             "2B": [[0.00, 1.00], [1.00, 8.00]]},
}


def additive_ceiling(payoff: np.ndarray) -> float:
    """The payoff of the joint action maximising the least-squares additive fit of a 2-player common payoff [A, A]
    under uniform play: the argmax of the row means and of the column means."""
    return float(payoff[np.argmax(payoff.mean(axis=1)), np.argmax(payoff.mean(axis=0))])


def counts(values: np.ndarray) -> dict[str, int]:
    """{return: number of seeds} of the final greedy returns [S]."""
    keys, n = np.unique(np.round(values, 3), return_counts=True)
    return {f"{k:g}": int(c) for k, c in zip(keys, n)}


def q_table(env, cfg: dict, variant: str, params) -> dict[str, list]:
    """Median over seeds of Q_tot (vdn, qmix) or of each agent's Q (iql) at the two-step game's three states:
    {state: [[a_0][a_1]]} (iql: [agent][action])."""
    config = ValueDecompositionConfig(**cfg)
    model = build_model(LearnerView(env, with_state=config.mixer == "qmix"), config)

    def table(p, s):
        """Q_tot [A, A] (iql: Q [N, A]) at the state one-hot s [3]."""
        q = model.q_values(p, jnp.broadcast_to(s, (1, 2, 3)))[0]  # [N, A]
        if config.mixer == "none":
            return q
        joint = jnp.stack(jnp.meshgrid(q[0], q[1], indexing="ij"), -1).reshape(-1, 2)  # [A * A, N]
        return model.mix(p, joint, jnp.broadcast_to(s, (4, 3))).reshape(2, 2)

    out = {}
    for name, s in zip(("first", "2A", "2B"), jnp.eye(3)):
        values = jax.vmap(table, in_axes=(0, None))(params, s)
        out[name] = np.round(np.median(np.asarray(values, np.float64), axis=0), 2).tolist()
    return out


def shortened(variant: str, env, overrides: dict, updates: int | None) -> dict:
    """``overrides`` with the run cut to ``updates`` updates of the default rollout (None: the default length)."""
    if updates is None:
        return overrides
    return {**overrides, "total_steps": updates * algos.get(variant).default_config(env).steps_per_update}


def two_step(seeds: int, learners=("iql", "vdn", "qmix"), updates: int | None = None) -> list[dict]:
    env = envs.make("two_step")
    rows = []
    for regime, overrides in REGIMES.items():
        for variant in learners:
            res = train_many(variant, env, shortened(variant, env, overrides, updates), seeds)
            final = res["metrics"]["greedy_return"][:, -1, 0]
            row = {"game": "two_step", "algo": variant, "regime": regime, "seeds": seeds,
                   "greedy_return_counts": counts(final), "compile_s": res["compile_s"], "run_s": res["median_s"],
                   "env_steps": res["num_updates"] * res["env_steps_per_update"]}
            if regime == "uniform":
                row["q_table"] = q_table(env, res["config"], variant, res["out"].state.params)
                if variant in PAPER_Q_TABLES:
                    row["paper_q_table"] = PAPER_Q_TABLES[variant]
                    print(f"two_step {variant} Q_tot: {row['q_table']}; paper {PAPER_Q_TABLES[variant]}",
                          file=sys.stderr)
            rows.append(row)
            print(f"two_step {variant} {regime}: {row['greedy_return_counts']}", file=sys.stderr)
    return rows


def matrix_games(seeds: int, learners=("vdn", "qmix"), updates: int | None = None) -> list[dict]:
    rows = []
    for name, kwargs in MATRIX_GAMES:
        env = envs.make(name, **kwargs)
        payoff = np.asarray(env.payoff_array[0])
        for regime, overrides in REGIMES.items():
            for variant in learners:
                res = train_many(variant, env, shortened(variant, env, overrides, updates), seeds)
                final = res["metrics"]["greedy_return"][:, -1, 0]
                rows.append({"game": name, "env_args": kwargs, "algo": variant, "regime": regime, "seeds": seeds,
                             "optimum": float(payoff.max()), "additive_ceiling": additive_ceiling(payoff),
                             "greedy_return_counts": counts(final), "compile_s": res["compile_s"],
                             "run_s": res["median_s"], "env_steps": res["num_updates"] * res["env_steps_per_update"]})
                print(f"{name} {variant} {regime}: {rows[-1]['greedy_return_counts']} (optimum {payoff.max():g}, "
                      f"additive ceiling {additive_ceiling(payoff):g})", file=sys.stderr)
    return rows


def flicker(seeds: int, prob: float = FLICKER_PROB, steps: int = FLICKER_STEPS) -> dict:
    """iql and drqn on FLICKER_TASK unflickered and flickered: each run's scores over seeds, and the flickered
    difference drqn - iql."""
    overrides = {"total_steps": steps, "epsilon_decay_steps": steps // 2,
                 "eval_steps": FLICKER_HORIZON}
    variants = {"unflickered": envs.make(FLICKER_TASK),
                "flickered": envs.make("flicker", env=FLICKER_TASK, prob=prob)}
    rows, scores = [], {}
    for variant, env in variants.items():
        for algo in ("iql", "drqn"):
            res = train_many(algo, env, overrides, seeds, warmup=False)
            greedy = res["metrics"]["greedy_return"][..., 0]  # [S, U] (one agent)
            tail = max(1, greedy.shape[1] // 10)
            scores[algo, variant] = greedy[:, -tail:].mean(axis=1)
            summary = mean_ci95(scores[algo, variant])
            rows.append({"algo": algo, "variant": variant, "seeds": seeds,
                         "env_steps": res["num_updates"] * res["env_steps_per_update"],
                         "greedy_return_last_tenth": summary, "updates_averaged": tail,
                         "per_seed": np.round(scores[algo, variant], 3).tolist(),
                         "final_episode_return": mean_ci95(res["metrics"]["episode_return"][:, -1, 0]),
                         "compile_s": res["compile_s"], "run_s": res["median_s"]})
            print(f"flicker {variant} {algo}: {summary['mean']:.2f} [{summary['ci95_low']:.2f}, "
                  f"{summary['ci95_high']:.2f}] ({res['median_s']:.1f} s)", file=sys.stderr)
    diff = mean_ci95(scores["drqn", "flickered"] - scores["iql", "flickered"])
    print(f"flicker drqn - iql (flickered): {diff['mean']:.2f} [{diff['ci95_low']:.2f}, {diff['ci95_high']:.2f}]",
          file=sys.stderr)
    return {"task": FLICKER_TASK, "prob": prob, "overrides": overrides, "runs": rows,
            "drqn_minus_iql_flickered": diff}


def matched_overrides(cfg: dict) -> dict:
    """Our config fields set to JaxMARL's values (recurrent agents on whole-episode replay, as its RNN scripts): the
    rollout shape, replay, networks (no LayerNorm in the agents, QMIX's mixer initialised as theirs), exploration
    (its epsilon anneals over a share of the updates, ours over environment steps), optimiser (RAdam, clipped, its
    rate falling linearly), targets, discount, the summed team reward, and its test: greedy episodes
    (``TEST_NUM_ENVS`` of them) after every ``TEST_INTERVAL`` share of the updates."""
    updates = int(cfg["TOTAL_TIMESTEPS"]) // int(cfg["NUM_STEPS"]) // int(cfg["NUM_ENVS"])
    per_update = int(cfg["NUM_STEPS"]) * int(cfg["NUM_ENVS"])
    return dict(recurrent=True, total_steps=updates * per_update, num_envs=int(cfg["NUM_ENVS"]),
                rollout_len=int(cfg["NUM_STEPS"]), episode_buffer_size=int(cfg["BUFFER_SIZE"]),
                episode_batch_size=int(cfg["BUFFER_BATCH_SIZE"]), hidden_size=int(cfg["HIDDEN_SIZE"]),
                hidden_layers=1, layer_norm=False, mixing_embed=int(cfg["MIXER_EMBEDDING_DIM"]),
                hypernet_embed=int(cfg["MIXER_HYPERNET_HIDDEN_DIM"]),
                mixer_init_scale=float(cfg.get("MIXER_INIT_SCALE", 0.0)), epsilon_start=float(cfg["EPS_START"]),
                epsilon_end=float(cfg["EPS_FINISH"]),
                epsilon_decay_steps=max(1, int(cfg["EPS_DECAY"] * updates)) * per_update,
                max_grad_norm=float(cfg["MAX_GRAD_NORM"]), target_update=int(cfg["TARGET_UPDATE_INTERVAL"]),
                num_sgd=int(cfg["NUM_EPOCHS"]), lr=float(cfg["LR"]), lr_decay=bool(cfg["LR_LINEAR_DECAY"]),
                optimiser="radam", gamma=float(cfg["GAMMA"]), double_q=True, team_reward="sum",
                eval_steps=PEER_HORIZON, eval_every=max(1, int(updates * cfg["TEST_INTERVAL"])),
                eval_episodes=int(cfg["TEST_NUM_ENVS"]))


def run_peer(python: str, repo: str, algo: str, seeds: int, steps: int) -> dict:
    """JaxMARL's side (``benchmarks/jaxmarl_qlearning.py``) of ``algo`` run by ``python`` in its own process ->
    its document, the test returns [S, P] as numpy."""
    doc = run_peer_script(python, ["--repo", repo, "--algo", algo, "--seeds", str(seeds), "--steps", str(steps)])
    doc["test_return"] = np.asarray(doc["test_return"], np.float64)
    return doc


def run_peer_script(python: str, args: list[str]) -> dict:
    """``python benchmarks/jaxmarl_qlearning.py ARGS --out TMP`` (this process's environment) -> the JSON it wrote."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "peer.json")
        subprocess.run([python, os.path.join(_HERE, "jaxmarl_qlearning.py"), *args, "--out", out], check=True)
        with open(out) as f:
            return json.load(f)


def random_policy_returns(python: str, episodes: int = 1024) -> dict:
    """The team return (the agents' returns summed) of uniformly random actions over one episode in our
    ``PEER_TASK`` and, run by ``python``, in JaxMARL's ``PEER_ENV``: the two tasks' scales side by side."""
    ours_env = envs.make(PEER_TASK)
    ours = jax.jit(make_rollout(ours_env, episodes, PEER_HORIZON))(jax.random.PRNGKey(0), ours_env.default_params)[2]
    peer = run_peer_script(python, ["--random-policy", str(episodes)])["team_returns"]
    return {"episodes": episodes, "ours": mean_ci95(np.asarray(ours).sum(axis=1)), "jaxmarl": mean_ci95(peer)}


def _train_child(algo: str, overrides: dict, seeds: int, seed_batch: int | None = None) -> dict:
    """``train_many`` in a child process (``train_ours``): what the side-by-side reads of it, as numpy."""
    import jaxlib

    res = train_many(algo, envs.make(PEER_TASK), overrides, seeds, warmup=False, seed_batch=seed_batch)
    keep = ("compile_s", "median_s", "cpu_s", "seed_batch", "metrics", "num_updates", "env_steps_per_update")
    return {**{k: res[k] for k in keep}, "devices": jax.device_count(), "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__}


def train_ours(algo: str, overrides: dict, seeds: int, devices: int = 1, seed_batch: int | None = None) -> dict:
    """Our side of the side-by-side: ``train_many`` in a child process (this Python, started afresh) with
    ``devices`` host devices (devices > 1: ``XLA_FLAGS``, read when the child imports JAX); ``seed_batch``: seeds
    vectorised together per device (None: the learner's default)."""
    import multiprocessing

    flags = os.environ.get("XLA_FLAGS")
    if devices > 1:
        os.environ["XLA_FLAGS"] = f"{flags or ''} --xla_force_host_platform_device_count={devices}".strip()
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            res = pool.apply(_train_child, (algo, overrides, seeds, seed_batch))
    finally:
        if flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = flags
    if devices > 1 and res["devices"] != devices:
        raise RuntimeError(f"the child process saw {res['devices']} devices, not {devices}")
    return res


def at_points(values: np.ndarray, points: list[int], window: int) -> np.ndarray:
    """Per-update values [S, U] (index u: after update u + 1) averaged over the ``window`` updates ending at each
    point (an update count) -> [S, P]."""
    return np.stack([values[:, max(0, n - window):n].mean(axis=1) for n in points], axis=1)


def jaxmarl_side_by_side(repo: str, seeds: int, steps: int, learners=tuple(PEER_SCRIPTS), devices: int = 1,
                         seed_batch: int | None = None, python: str = sys.executable) -> dict:
    """Each algorithm on both sides with JaxMARL's settings, each side in its own fresh process (JaxMARL's run by
    ``python``, ours by this Python), the order alternating between algorithms (JaxMARL's first for the first,
    ours first for the second, ...): greedy returns at JaxMARL's test points (ours: the mean of as many greedy
    episodes as theirs after the same update, per seed), wall-clock times, each side's process CPU seconds (less
    sensitive to other jobs on a shared machine), the process's end-to-end time (start, imports, compilation, run),
    its JAX version and the load averages (1, 5, 15 min) before and
    after each side. ``devices``, ``seed_batch``: ours on that many host devices, that many seeds vectorised
    together on each (``train_ours``)."""
    cfg = peer_config(repo, steps)
    overrides = matched_overrides(cfg)
    rows = []
    for index, algo in enumerate(learners):
        sides, load = {}, {}
        for side in (("jaxmarl", "ours") if index % 2 == 0 else ("ours", "jaxmarl")):
            before, start = os.getloadavg(), time.perf_counter()
            sides[side] = (run_peer(python, repo, algo, seeds, steps) if side == "jaxmarl"
                           else train_ours(algo, overrides, seeds, devices, seed_batch))
            load[side] = {"end_to_end_s": time.perf_counter() - start, "load_before": before,
                          "load_after": os.getloadavg()}
        peer, res = sides["jaxmarl"], sides["ours"]
        ours = at_points(res["metrics"]["greedy_return"].sum(axis=-1), peer["updates"], 1)
        per_update = res["env_steps_per_update"]
        points = []
        for i, n in enumerate(peer["updates"]):
            theirs = peer["test_return"][:, i]
            points.append({"update": n, "env_steps": n * per_update, "ours": mean_ci95(ours[:, i]),
                           "jaxmarl": mean_ci95(theirs), "jaxmarl_min": float(theirs.min()),
                           "jaxmarl_max": float(theirs.max()),
                           "ours_within_or_above_jaxmarl_spread": bool(ours[:, i].mean() >= theirs.min())})
        final = points[-1]
        row = {"algo": algo, "seeds": seeds, "env_steps": res["num_updates"] * per_update,
               "jaxmarl_script": f"baselines/QLearning/{PEER_SCRIPTS[algo]}", "points": points,
               "final_ours_per_seed": np.round(ours[:, -1], 3).tolist(),
               "final_jaxmarl_per_seed": np.round(peer["test_return"][:, -1], 3).tolist(),
               "order": list(sides),
               "ours": {"compile_s": res["compile_s"], "run_s": res["median_s"],
                        "compile_cpu_s": res["cpu_s"]["compile_s"], "run_cpu_s": res["cpu_s"]["runs_s"][0],
                        **load["ours"], "devices": res["devices"], "seed_batch": res["seed_batch"],
                        "jax_version": res["jax_version"], "jaxlib_version": res["jaxlib_version"]},
               "jaxmarl": {"compile_s": peer["compile_s"], "run_s": peer["run_s"],
                           "compile_cpu_s": peer["compile_cpu_s"], "run_cpu_s": peer["run_cpu_s"], **load["jaxmarl"],
                           **{k: peer[k] for k in ("devices", "jax_version", "jaxlib_version", "jaxmarl_version",
                                                   "python")}},
               "speedup_run": peer["run_s"] / res["median_s"],
               "speedup_compile_and_run": (peer["run_s"] + peer["compile_s"]) / (res["median_s"] + res["compile_s"]),
               "speedup_run_cpu": peer["run_cpu_s"] / res["cpu_s"]["runs_s"][0],
               "speedup_end_to_end": load["jaxmarl"]["end_to_end_s"] / load["ours"]["end_to_end_s"]}
        rows.append(row)
        print(f"{algo}: ours {final['ours']['mean']:.1f} [{final['ours']['ci95_low']:.1f}, "
              f"{final['ours']['ci95_high']:.1f}], JaxMARL {final['jaxmarl']['mean']:.1f} "
              f"[{final['jaxmarl']['ci95_low']:.1f}, {final['jaxmarl']['ci95_high']:.1f}] at {final['env_steps']:,} "
              f"steps; run {res['median_s']:.0f} s vs {peer['run_s']:.0f} s ({row['speedup_run']:.1f}x)",
              file=sys.stderr)
    return {"task": PEER_TASK, "jaxmarl_env": PEER_ENV, "jaxmarl_config": {k: v for k, v in cfg.items()},
            "our_overrides": overrides, "jaxmarl_python": python,
            "random_policy": random_policy_returns(python), "runs": rows}


def plot_side_by_side(doc: dict, path: str) -> None:
    """Greedy return against environment steps, mean and 95% interval over seeds, ours and JaxMARL's."""
    plt = outputs.pyplot()
    runs = doc["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.5), squeeze=False)
    for ax, row in zip(axes[0], runs):
        x = [p["env_steps"] for p in row["points"]]
        for side, style in (("ours", "-"), ("jaxmarl", "--")):
            mean = [p[side]["mean"] for p in row["points"]]
            line, = ax.plot(x, mean, style, label=f"{row['algo']} ({'ours' if side == 'ours' else 'JaxMARL'}, "
                                                 f"{row[side]['run_s']:.0f} s)")
            ax.fill_between(x, [p[side]["ci95_low"] for p in row["points"]],
                            [p[side]["ci95_high"] for p in row["points"]], color=line.get_color(), alpha=0.2)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.set(title=f"{row['algo']} on {doc['task']} ({row['seeds']} seeds)", xlabel="environment steps per seed",
               ylabel="greedy team return")
        ax.legend(fontsize=7)
    outputs.save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, help="seeds per run (default 16; 8 for --only flicker)")
    p.add_argument("--out", help="write the JSON document here")
    p.add_argument("--flicker-prob", type=float, default=FLICKER_PROB, help="the flicker group's blanking probability")
    p.add_argument("--flicker-steps", type=int, default=FLICKER_STEPS, help="the flicker group's steps per seed")
    p.add_argument("--only", choices=("two_step", "matrix", "flicker", "jaxmarl"), help="run one group of checks")
    p.add_argument("--jaxmarl-repo", metavar="PATH",
                   help="a checkout of JaxMARL's repository (its baselines/QLearning): the side-by-side group, run "
                        "with --only jaxmarl or beside the others when given (needs jaxmarl and flashbax)")
    p.add_argument("--jaxmarl-python", metavar="PATH", default=sys.executable,
                   help="the Python that runs JaxMARL's side, one that imports jaxmarl and flashbax (default: this "
                        "one); ours runs in this Python")
    p.add_argument("--jaxmarl-steps", type=int, default=PEER_STEPS, help="the side-by-side's steps per seed")
    p.add_argument("--our-devices", type=int, default=1,
                   help="the side-by-side: ours on this many host devices (default 1, as JaxMARL's)")
    p.add_argument("--our-seed-batch", type=int,
                   help="the side-by-side: our seeds vectorised together per device (default: the learner's, all; "
                        "1: one after another)")
    p.add_argument("--plot", help="write the side-by-side's curves here (PNG)")
    p.add_argument("--learners", help="comma-separated learners of the two-step, matrix and side-by-side groups "
                                      "(default: all)")
    p.add_argument("--updates", type=int, help="the two-step and matrix groups' updates per run (default: the "
                                               "default config's)")
    args = p.parse_args(argv)
    if args.only == "jaxmarl" and not args.jaxmarl_repo:
        p.error("--only jaxmarl needs --jaxmarl-repo PATH")
    if args.jaxmarl_repo and args.only in (None, "jaxmarl"):
        if not os.path.isdir(os.path.join(args.jaxmarl_repo, "baselines", "QLearning")):
            p.error(f"--jaxmarl-repo: {args.jaxmarl_repo} holds no baselines/QLearning (a checkout of JaxMARL's "
                    "repository is needed)")
        if not (os.path.isfile(args.jaxmarl_python) and os.access(args.jaxmarl_python, os.X_OK)):
            p.error(f"--jaxmarl-python: {args.jaxmarl_python} is not an executable file")
        if subprocess.run([args.jaxmarl_python, "-c", "import jaxmarl, flashbax"], capture_output=True).returncode:
            p.error(f"--jaxmarl-python: {args.jaxmarl_python} cannot import jaxmarl and flashbax")
    if args.our_devices <= 0 or (args.our_seed_batch is not None and args.our_seed_batch < 0):
        p.error("--our-devices must be positive and --our-seed-batch non-negative")
    seeds = args.seeds or {"flicker": 8, "jaxmarl": PEER_SEEDS}.get(args.only, 16)
    doc = {"machine": machine_info(), "seeds": seeds}
    chosen = set(args.learners.split(",")) if args.learners else None
    if args.only in (None, "two_step"):
        learners = [v for v in ("iql", "vdn", "qmix") if chosen is None or v in chosen]
        doc["two_step"] = two_step(seeds, learners, args.updates)
    if args.only in (None, "matrix"):
        learners = [v for v in ("vdn", "qmix") if chosen is None or v in chosen]
        doc["matrix_games"] = matrix_games(seeds, learners, args.updates)
    if args.only in (None, "flicker"):
        doc["flicker"] = flicker(seeds, args.flicker_prob, args.flicker_steps)
    if args.jaxmarl_repo and args.only in (None, "jaxmarl"):
        learners = [v for v in PEER_SCRIPTS if chosen is None or v in chosen]
        doc["jaxmarl"] = jaxmarl_side_by_side(args.jaxmarl_repo, seeds, args.jaxmarl_steps, learners,
                                              args.our_devices, args.our_seed_batch, args.jaxmarl_python)
        if args.plot:
            plot_side_by_side(doc["jaxmarl"], args.plot)
    text = dump(doc, args.out)
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
