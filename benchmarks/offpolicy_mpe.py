"""MADDPG, MATD3, HADDPG and HATD3 on continuous MPE beside HARL's off-policy table (Zhong et al., 2024; the
PKU-MARL/HARL README's MPE curves, continuous actions, 5M steps).

HARL's setting, reproduced here (the algorithms' defaults, ``algos.offpolicy.harl_defaults``): one critic on the sum
of the agents' rewards, 20 environments, 50 gradient steps every 50 steps of each, 10000 warm-up steps of random
actions, batch 1000, Adam 5e-4 / 1e-3, hidden layers 128-128, Polyak 0.005, gamma 0.99; tanh actors with Gaussian
exploration noise 0.1. The episode return is the agents' rewards summed over agents and over the 25 steps, averaged
over the last ``--tail`` share of updates and over seeds: of the exploring actors (``final_return``) and of
``--eval-envs`` environments acting deterministically each update (``final_eval_return``, HARL's evaluation).
HARL's spread ran PettingZoo 1.22.2, whose agents also collided with themselves (a constant -37.5 per episode, see
``benchmarks/onpolicy_mpe.py``); ``*_harl_convention`` adds it on spread.

    python benchmarks/offpolicy_mpe.py --tasks spread --algos hatd3,maddpg --seeds 2 --total-steps 200000 --json \\
        --out benchmarks/results/cpu/offpolicy_mpe_spread_200k.json
    python benchmarks/offpolicy_mpe.py --tasks spread --algos hatd3,maddpg --seeds 4 --env-arg \\
        integration=pettingzoo_1_22 --chunks 50 --time-limit 1800 --out offpolicy_mpe_spread_5m.json
                                                        # HARL's table (5M steps): the JSON after every 100k steps
    python benchmarks/offpolicy_mpe.py --quick          # a short smoke run
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

import envs  # noqa: E402
from algos.offpolicy import OffPolicyConfig, harl_defaults  # noqa: E402
from benchmarks.common import dump, machine_info, train_chunked  # noqa: E402
from benchmarks.onpolicy_mpe import SPREAD_SELF_COLLISION  # noqa: E402
from jaxmarl_core.config import parse_overrides  # noqa: E402

HARL_STEPS = 5_000_000
# task -> (environment, {algo: HARL's episode return at 5M steps, read off its README curves})
TASKS = {
    "spread": ("mpe_spread", {"hatd3": -63, "matd3": -63, "haddpg": -65, "maddpg": -65}),
    "reference": ("mpe_reference", {"hatd3": -11, "matd3": -11, "haddpg": -14, "maddpg": -15}),
    "speaker_listener": ("mpe_speaker_listener", {"hatd3": -9, "matd3": -9, "haddpg": -9, "maddpg": -9}),
}
ALGOS = ("hatd3", "matd3", "haddpg", "maddpg")


def tail_mean(curve: np.ndarray, tail: float) -> np.ndarray:
    """[S, U] -> [S]: the mean over each seed's last ``tail`` share of updates (NaN entries skipped)."""
    last = max(1, int(round(tail * curve.shape[1])))
    return np.nanmean(curve[:, -last:], axis=1)


def run(task: str, algo: str, seeds: int, total_steps: int, tail: float, overrides: dict,
        env_args: dict | None = None, chunks: int = 1, time_limit: float = 0.0,
        on_chunk: Callable[[dict], None] | None = None) -> dict:
    """One algorithm on one task -> its row; ``on_chunk(row so far)`` after each of ``chunks`` pieces of training,
    which stops after the first piece that ends past ``time_limit`` seconds (0: none)."""
    env_name, _ = TASKS[task]
    env = envs.make(env_name, continuous=True, **(env_args or {}))
    harl_like = harl_defaults() if algo == "maddpg" else {}  # HARL's MADDPG: HARL's settings, not the paper's
    res = train_chunked(algo, env, {**harl_like, "total_steps": total_steps, **overrides}, seeds, chunks,
                        time_limit, on_chunk and (lambda r: on_chunk(make_row(task, algo, seeds, tail, env_args, r))))
    row = make_row(task, algo, seeds, tail, env_args, res)
    print(f"{algo} on {task}: {row['final_return']:.1f} after {row['env_steps']:,} steps "
          f"({row['final_return_harl_convention']:.1f} in HARL's convention; HARL ~{row['harl_return_5m']} at 5M); "
          f"{row['env_steps_per_s']:,.0f} env steps/s", file=sys.stderr)
    return row


def make_row(task: str, algo: str, seeds: int, tail: float, env_args: dict | None, res: dict) -> dict:
    """A (possibly partial) training result -> the task's row: final returns over the last ``tail`` of the updates
    done, the curves, timings and ``complete`` (every planned update done)."""
    env_name, harl = TASKS[task]
    metrics = res["metrics"]
    team = metrics["episode_return"].sum(axis=-1)  # [S, U]
    steps = res["num_updates"] * res["env_steps_per_update"]
    planned = res["planned_updates"] * res["env_steps_per_update"]
    offset = SPREAD_SELF_COLLISION if env_name == "mpe_spread" else 0.0
    per_seed = tail_mean(team, tail)
    row = {"task": task, "env": env_name, "env_args": env_args or {}, "algo": algo, "seeds": seeds, "env_steps": steps,
           "planned_env_steps": planned, "complete": steps == planned,
           "final_return": float(per_seed.mean()), "final_return_per_seed": per_seed.tolist(),
           "final_return_harl_convention": float(per_seed.mean()) + offset, "harl_convention_offset": offset,
           "harl_return_5m": harl[algo], "compile_s": res["compile_s"], "run_s": res["median_s"],
           "env_steps_per_s": seeds * steps / res["median_s"],
           "curve_steps": ((np.arange(team.shape[1]) + 1) * res["env_steps_per_update"]).tolist(),
           "curve": team.mean(axis=0).tolist()}
    if "eval_return" in metrics:
        team_eval = metrics["eval_return"].sum(axis=-1)
        eval_per_seed = tail_mean(team_eval, tail)
        row.update(final_eval_return=float(eval_per_seed.mean()), final_eval_return_per_seed=eval_per_seed.tolist(),
                   final_eval_return_harl_convention=float(eval_per_seed.mean()) + offset,
                   eval_curve=np.nanmean(team_eval, axis=0).tolist())
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="spread")
    p.add_argument("--algos", default="hatd3,maddpg")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--total-steps", type=float, default=HARL_STEPS)
    p.add_argument("--tail", type=float, default=0.05, help="share of the last updates averaged for the result")
    p.add_argument("--eval-envs", type=int, default=20, help="deterministic evaluation environments per update")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="environment argument of every task (e.g. integration=pettingzoo_1_22, HARL's MPE physics)")
    p.add_argument("--chunks", type=int, default=1,
                   help="train in this many equal pieces (dividing the updates), writing --out after each")
    p.add_argument("--time-limit", type=float, default=0.0, metavar="S",
                   help="stop each run after the first piece that ends past S seconds of training (0: none); the "
                        "JSON then holds the partial curve (complete: false)")
    p.add_argument("--quick", action="store_true", help="one seed, 4,000 steps, small networks and batches")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="write the JSON document here (atomically)")
    args = p.parse_args(argv)
    tasks, algo_names = args.tasks.split(","), args.algos.split(",")
    for flag, given, valid in (("--tasks", tasks, tuple(TASKS)), ("--algos", algo_names, ALGOS)):
        unknown = [name for name in given if name not in valid]
        if unknown:
            p.error(f"{flag}: {unknown[0]!r} is not in HARL's table; valid: {', '.join(valid)}")
    if (args.seeds <= 0 or args.total_steps <= 0 or not 0 < args.tail <= 1 or args.eval_envs < 0
            or args.chunks <= 0 or args.time_limit < 0):
        p.error("--seeds, --total-steps and --chunks must be positive, --eval-envs and --time-limit >= 0 and --tail "
                "in (0, 1]")
    overrides = {"eval_envs": args.eval_envs}
    if args.quick:
        args.seeds, args.total_steps = 1, min(args.total_steps, 4_000)
        overrides.update(hidden_size=16, num_envs=4, rollout_len=25, num_sgd=4, batch_size=64, buffer_size=4_000,
                         learning_starts=500, warmup_steps=500, eval_envs=min(args.eval_envs, 2))
    try:
        overrides.update(parse_overrides(OffPolicyConfig, args.set))
        env_args = {task: envs.parse_env_args(TASKS[task][0], args.env_arg) for task in tasks}
    except ValueError as e:
        p.error(str(e))
    header = {"benchmark": "offpolicy_mpe", **machine_info(),
              "harl_source": "PKU-MARL/HARL README MPE curves (continuous, 5M steps), as quoted in issue 20",
              "reward_convention": "episode return = sum over agents and over the 25 steps of mpe2's rewards; one "
                                   "critic on the summed reward, as HARL's MPE wrapper",
              "config_overrides": overrides, "time_limit_s": args.time_limit, "chunks": args.chunks}
    rows: list[dict] = []

    def partial(row: dict) -> None:  # the finished rows and the one under way, after every piece
        if args.out:
            dump({**header, "results": rows + [row]}, args.out)

    try:
        for task in tasks:
            for algo in algo_names:
                rows.append(run(task, algo, args.seeds, int(args.total_steps), args.tail, overrides, env_args[task],
                                args.chunks, args.time_limit, partial))
    except ValueError as e:  # --chunks not dividing the updates
        p.error(str(e))
    text = dump({**header, "results": rows}, args.out)
    if args.json:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
