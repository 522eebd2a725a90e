"""Training throughput: environment steps per second of whole training runs (sampling, returns, every gradient
step), one jit of ``vmap(train)`` over seeds, compile time apart, median of repeats.

    python benchmarks/train_throughput.py --json                      # happo and mappo on mpe_spread, 1 and 8 seeds
    python benchmarks/train_throughput.py --algos ippo,happo --envs mpe_spread,mpe_tag --seeds 1,16 --total-steps 1e6
    python benchmarks/train_throughput.py --quick                     # small smoke run

Each row trains ``--total-steps`` environment steps per seed with the algorithm's default config for that
environment (``--set field=value`` overrides fields) and reports

    env_steps_per_s = seeds * total_steps / median run time    (every seed's steps count)
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import algos  # noqa: E402
import envs  # noqa: E402
from benchmarks.common import emit, machine_info, train_many  # noqa: E402
from jaxmarl_core.config import override  # noqa: E402


def measure(algo_name: str, env_name: str, seeds: int, overrides: dict, repeats: int) -> dict:
    env = envs.make(env_name)
    res = train_many(algo_name, env, overrides, seeds, repeats)
    steps = res["num_updates"] * res["env_steps_per_update"]
    rate = seeds * steps / res["median_s"]
    print(f"{algo_name} on {env_name} x{seeds} seeds: {rate:,.0f} env steps/s, compile {res['compile_s']:.1f}s, "
          f"run {res['median_s']:.2f}s for {steps} steps per seed", file=sys.stderr)
    return {"algo": algo_name, "env": env_name, "seeds": seeds, "env_steps_per_seed": steps,
            "num_updates": res["num_updates"], "compile_s": res["compile_s"], "runs_s": res["runs_s"],
            "median_s": res["median_s"], "env_steps_per_s": rate}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="happo,mappo")
    p.add_argument("--envs", default="mpe_spread")
    p.add_argument("--seeds", default="1,8", help="comma-separated seed counts")
    p.add_argument("--total-steps", type=float, default=200_000, help="environment steps per seed")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="config override")
    p.add_argument("--quick", action="store_true", help="one seed count (1), 2 repeats, a short run")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="also write the JSON document here (atomically)")
    args = p.parse_args(argv)
    algo_names = args.algos.split(",")
    env_names = args.envs.split(",")
    for name in algo_names:
        if name not in algos.list_algos():
            p.error(f"--algos: unknown algorithm {name!r}; valid: {', '.join(algos.list_algos())}")
    for name in env_names:
        if name not in envs.list_envs():
            p.error(f"--envs: unknown environment {name!r}; valid: {', '.join(envs.list_envs())}")
    try:
        seed_counts = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if min(seed_counts) <= 0 or args.repeats <= 0 or args.total_steps <= 0:
        p.error("--seeds, --repeats and --total-steps must be positive")
    if args.quick:
        seed_counts, args.repeats, args.total_steps = [1], 2, min(args.total_steps, 20_000)
    rows = []
    for algo_name in algo_names:
        for env_name in env_names:
            env = envs.make(env_name)
            reason = algos.compatible(algo_name, env)
            if reason:
                p.error(f"{algo_name} cannot train on {env_name}: {reason}")
            try:
                config = override(algos.get(algo_name).default_config(env),
                                  args.set + [f"total_steps={int(args.total_steps)}"])
                config.validate(env)
            except ValueError as e:
                p.error(str(e))
            overrides = dataclasses.asdict(config)
            rows.extend(measure(algo_name, env_name, seeds, overrides, args.repeats) for seeds in seed_counts)
    doc = {"benchmark": "train_throughput", **machine_info(), "results": rows}
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
