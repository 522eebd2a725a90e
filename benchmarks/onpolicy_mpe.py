"""HAPPO and MAPPO on MPE beside HARL's published curves (Zhong et al., 2024; PKU-MARL/HARL's README figure).

HARL's MPE setting, reproduced here: every agent is trained on the sum of all agents' rewards (``team_reward``),
25-step episodes, HARL's tuned MPE hyperparameters (the algorithms' defaults: 20 environments x 200 steps per
update, 5 epochs, one minibatch, Adam 5e-4, hidden layers 128-128, value normalisation, truncated steps as HARL's
use_proper_time_limits treats them). HARL reports the episode return as the sum of the agents' rewards over the
25 steps; so does this script (``episode_return`` summed over agents, averaged over the last ``--tail`` share of
updates and over seeds). HARL's runner also evaluates its actors with ``deterministic=True`` (each one's most
likely action) on 20 episodes; with ``--eval-envs 20`` (the default) every update does the same (``eval_return``)
and rows carry both the training and the evaluation returns.

    python benchmarks/onpolicy_mpe.py --tasks spread_discrete,spread_continuous --seeds 2 --json \\
        --out benchmarks/results/cpu/onpolicy_mpe.json --plot benchmarks/results/cpu/onpolicy_mpe.png
    python benchmarks/onpolicy_mpe.py --quick          # a short smoke run
    python benchmarks/onpolicy_mpe.py --tasks spread_discrete --algos happo --env-arg integration=pettingzoo_1_22 \
        --set truncation=bootstrap                     # PettingZoo 1.22's physics; the other truncation rule

HARL's numbers are read off the README figure (``assets/mpe_learning_curve.jpg``) by eye, about +-2. HARL ran
PettingZoo 1.22.2's ``simple_spread_v2``, in which every agent also "collided" with itself: -1 per agent per step
in its local reward, fixed in PettingZoo 1.22.4 (PR 894) and absent from mpe2. With local_ratio 0.5, 3 agents and
25 steps that is a constant -37.5 per episode, added to our spread returns in ``final_return_harl_convention``.
"""
from __future__ import annotations

import argparse
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

import envs  # noqa: E402
from algos.onpolicy import OnPolicyConfig  # noqa: E402
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from jaxmarl_core import outputs  # noqa: E402
from jaxmarl_core.config import parse_overrides  # noqa: E402

# HARL's spread (PettingZoo 1.22.2) minus mpe2's: the self-collision penalty, -1 x local_ratio x N agents x 25 steps
SPREAD_SELF_COLLISION = -1.0 * 0.5 * 3 * 25
# task -> (environment, continuous, {algo: {environment steps: HARL's episode return read off its figure}})
TASKS = {
    "spread_discrete": ("mpe_spread", False, {"happo": {3_000_000: -66, 10_000_000: -63},
                                              "mappo": {3_000_000: -66, 10_000_000: -58}}),
    "spread_continuous": ("mpe_spread", True, {"happo": {3_000_000: -78, 10_000_000: -66},
                                               "mappo": {3_000_000: -82, 10_000_000: -70}}),
    "reference_discrete": ("mpe_reference", False, {"happo": {3_000_000: -33, 10_000_000: -12},
                                                    "mappo": {3_000_000: -32, 10_000_000: -12}}),
    "speaker_listener_discrete": ("mpe_speaker_listener", False, {"happo": {3_000_000: -12, 10_000_000: -10},
                                                                  "mappo": {3_000_000: -15, 10_000_000: -13}}),
    "speaker_listener_continuous": ("mpe_speaker_listener", True, {"happo": {3_000_000: -9, 10_000_000: -8},
                                                                   "mappo": {3_000_000: -9, 10_000_000: -8}}),
}


def harl_at(readings: dict, steps: int) -> float | None:
    """HARL's reading at ``steps`` (linear between the read points; None before the first)."""
    points = sorted(readings)
    if steps < points[0]:
        return None
    return float(np.interp(steps, points, [readings[p] for p in points]))


def run(task: str, algo: str, seeds: int, total_steps: int, tail: float, overrides: dict,
        env_args: dict | None = None, first_seed: int = 0) -> dict:
    env_name, continuous, harl = TASKS[task]
    env = envs.make(env_name, continuous=continuous, **(env_args or {}))
    res = train_many(algo, env, {"team_reward": True, "total_steps": total_steps, **overrides}, seeds, warmup=False,
                     first_seed=first_seed)
    team = res["metrics"]["episode_return"].sum(axis=-1)  # [S, U]: the agents' rewards summed over each episode
    last = max(1, int(round(tail * team.shape[1])))
    per_seed = team[:, -last:].mean(axis=1)
    evaluated = "eval_return" in res["metrics"]
    if evaluated:
        team_eval = res["metrics"]["eval_return"].sum(axis=-1)  # [S, U]: greedy actors' episodes
        eval_per_seed = np.nanmean(team_eval[:, -last:], axis=1)
    steps = res["num_updates"] * res["env_steps_per_update"]
    offset = SPREAD_SELF_COLLISION if env_name == "mpe_spread" else 0.0
    row = {"task": task, "env": env_name, "continuous": continuous, "env_args": env_args or {}, "algo": algo,
           "seeds": seeds, "seed_ids": list(range(first_seed, first_seed + seeds)), "env_steps": steps,
           "final_return": float(per_seed.mean()),
           "final_return_per_seed": per_seed.tolist(),
           "final_return_harl_convention": float(per_seed.mean()) + offset, "harl_convention_offset": offset,
           "harl_return": harl_at(harl[algo], steps), "compile_s": res["compile_s"], "run_s": res["median_s"],
           "env_steps_per_s": seeds * steps / res["median_s"],
           "curve_steps": ((np.arange(team.shape[1]) + 1) * res["env_steps_per_update"]).tolist(),
           "curve": team.mean(axis=0).tolist()}
    if evaluated:
        row.update(final_eval_return=float(eval_per_seed.mean()), final_eval_return_per_seed=eval_per_seed.tolist(),
                   final_eval_return_harl_convention=float(eval_per_seed.mean()) + offset,
                   eval_curve=np.nanmean(team_eval, axis=0).tolist())
    greedy = f", greedy {row['final_eval_return_harl_convention']:.1f}" if evaluated else ""
    print(f"{algo} on {task}: {row['final_return']:.1f} after {steps:,} steps, "
          f"{row['final_return_harl_convention']:.1f} in HARL's convention{greedy} (HARL ~{row['harl_return']}); "
          f"{row['env_steps_per_s']:,.0f} env steps/s", file=sys.stderr)
    return row


def plot(rows: list[dict], path: str) -> None:
    plt = outputs.pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r["task"] == task):
            line, = ax.plot(r["curve_steps"], np.asarray(r["curve"]) + r["harl_convention_offset"],
                            label=f"{r['algo']} (ours, training)")
            if "eval_curve" in r:
                ax.plot(r["curve_steps"], np.asarray(r["eval_curve"]) + r["harl_convention_offset"], ":",
                        color=line.get_color(), label=f"{r['algo']} (ours, greedy evaluation)")
            harl = TASKS[task][2][r["algo"]]
            ax.plot(sorted(harl), [harl[s] for s in sorted(harl)], "o--", color=line.get_color(),
                    label=f"{r['algo']} (HARL, read off)")
        ax.set(title=task, xlabel="environment steps", ylabel="episode return, HARL's convention")
        ax.legend(fontsize=7)
    outputs.save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="spread_discrete,spread_continuous")
    p.add_argument("--algos", default="happo,mappo")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0, metavar="K",
                   help="train seeds K, ..., K + seeds - 1 (as train.py), to extend an earlier study")
    p.add_argument("--total-steps", type=float, default=10_000_000)
    p.add_argument("--tail", type=float, default=0.02, help="share of the last updates averaged for the result")
    p.add_argument("--eval-envs", type=int, default=20,
                   help="greedy evaluation episodes per update, as HARL's evaluation (0: none)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the on-policy config (e.g. truncation=harl)")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="environment argument of every task (e.g. integration=pettingzoo_1_22, HARL's MPE physics)")
    p.add_argument("--quick", action="store_true", help="one seed, at most 40,000 steps, small networks")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="write the JSON document here (atomically)")
    p.add_argument("--plot", default=None, help="write the learning curves here (PNG)")
    args = p.parse_args(argv)
    tasks, algo_names = args.tasks.split(","), args.algos.split(",")
    for task in tasks:
        if task not in TASKS:
            p.error(f"--tasks: unknown task {task!r}; valid: {', '.join(TASKS)}")
    for algo in algo_names:
        if algo not in ("happo", "mappo"):
            p.error(f"--algos: HARL's figure gives happo and mappo, got {algo!r}")
    if args.first_seed < 0:
        p.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.seeds <= 0 or args.total_steps <= 0 or not 0 < args.tail <= 1 or args.eval_envs < 0:
        p.error("--seeds and --total-steps must be positive, --eval-envs >= 0 and --tail in (0, 1]")
    overrides = {"eval_envs": args.eval_envs}
    try:
        overrides.update(parse_overrides(OnPolicyConfig, args.set))
        env_args = {task: envs.parse_env_args(TASKS[task][0], args.env_arg) for task in tasks}
    except ValueError as e:
        p.error(str(e))
    if args.quick:
        args.seeds, args.total_steps = 1, min(args.total_steps, 40_000)
        overrides["hidden_size"] = 32
    rows = [run(task, algo, args.seeds, int(args.total_steps), args.tail, overrides, env_args[task],
                args.first_seed) for task in tasks for algo in algo_names]
    doc = {"benchmark": "onpolicy_mpe", **machine_info(),
           "harl_source": "PKU-MARL/HARL README figure assets/mpe_learning_curve.jpg, read by eye (+-2)",
           "reward_convention": "episode return = sum over agents and over the 25 steps of mpe2's rewards; "
                                "agents trained on the summed reward (team_reward=True), as HARL's MPE wrapper",
           "config_overrides": overrides, "results": rows}
    text = dump(doc, args.out)
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
