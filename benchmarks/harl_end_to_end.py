"""End to end against HARL's own code: one user-facing command each on MPE spread, timed from outside as whole
processes (imports, compile or start-up, training).

    python benchmarks/harl_end_to_end.py --harl-dir HARL --harl-python VENV/bin/python --json
    python benchmarks/harl_end_to_end.py --algo hatd3 --steps 20000 --marginal-steps 60000 --harl-dir HARL ...

``--algo happo`` (discrete spread) or ``hatd3`` (continuous spread, HARL's physics). Ours: ``train.py --algo ALGO
--env mpe_spread ... --seeds 1 --set total_steps=STEPS``, twice in a row on one fresh compilation cache directory
(cold: an empty cache; warm: the same command again). HARL: ``examples/train.py`` with its tuned config for
``simple_spread_v2-discrete`` happo or ``simple_spread_v2-continuous`` hatd3 (the settings our defaults take) and
``--num_env_steps STEPS --cuda False --use_eval False`` (no evaluation episodes). HARL needs torch and PettingZoo 1.22
(``simple_spread_v2``) in the interpreter given by ``--harl-python``. The order is ours cold, HARL, ours warm,
repeated ``--repeats`` times; the ratio is HARL's median over ours. ``--marginal-steps M`` also runs ours warm and
HARL at M steps: the difference of the two budgets over the difference of the times is each side's training rate
without start-up and compile (HARL's off-policy runner takes its warm-up steps on top of ``--num_env_steps``, which
the difference cancels).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

from benchmarks.common import emit, machine_info  # noqa: E402

ROOT = os.path.dirname(_HERE)
OUT = os.path.join(_HERE, "results", "cpu", "harl_end_to_end.json")
# algo -> (our train.py arguments, HARL's tuned config under its repository)
SETUPS = {
    "happo": (["--algo", "happo", "--env", "mpe_spread"],
              os.path.join("tuned_configs", "pettingzoo_mpe", "simple_spread_v2-discrete", "happo", "config.json")),
    "hatd3": (["--algo", "hatd3", "--env", "mpe_spread", "--env-arg", "continuous=true",
               "--env-arg", "integration=pettingzoo_1_22"],
              os.path.join("tuned_configs", "pettingzoo_mpe", "simple_spread_v2-continuous", "hatd3", "config.json")),
}


def timed(cmd: list[str], cwd: str, env: dict | None = None) -> float:
    """Wall seconds of one process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=tuple(SETUPS), default="happo")
    p.add_argument("--harl-dir", required=True, help="a checkout of PKU-MARL/HARL")
    p.add_argument("--harl-python", default=sys.executable, help="interpreter with torch and pettingzoo 1.22")
    p.add_argument("--steps", type=int, default=200_000, help="environment steps (default %(default)s)")
    p.add_argument("--marginal-steps", type=int, default=0, metavar="M",
                   help="also run ours warm and HARL at M > --steps steps for the training rates (0: no)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", default=OUT)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.steps <= 0 or args.repeats <= 0:
        p.error("--steps and --repeats must be positive")
    if args.marginal_steps and args.marginal_steps <= args.steps:
        p.error("--marginal-steps must be above --steps (or 0)")
    our_args, harl_config = SETUPS[args.algo]
    harl_env = dict(os.environ, PYTHONPATH=os.path.abspath(args.harl_dir))

    def commands(steps: int, tmp: str) -> tuple[list[str], list[str]]:
        ours = [sys.executable, os.path.join(ROOT, "train.py"), *our_args, "--seeds", "1", "--set",
                f"total_steps={steps}", "--quiet", "--compile-cache", os.path.join(tmp, "xla")]
        harl = [args.harl_python, "train.py", "--load_config", os.path.join(os.path.abspath(args.harl_dir),
                harl_config), "--exp_name", "end_to_end", "--num_env_steps", str(steps), "--cuda", "False",
                "--use_eval", "False", "--log_dir", os.path.join(tmp, "harl")]
        return ours, harl

    harl_cwd = os.path.join(args.harl_dir, "examples")
    rows = {"ours_cold_s": [], "harl_s": [], "ours_warm_s": []}
    if args.marginal_steps:
        rows |= {"harl_marginal_s": [], "ours_warm_marginal_s": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="harl-e2e-") as tmp:
            ours, harl = commands(args.steps, tmp)
            rows["ours_cold_s"].append(timed([*ours, "--out", os.path.join(tmp, "cold")], ROOT))
            rows["harl_s"].append(timed(harl, harl_cwd, harl_env))
            rows["ours_warm_s"].append(timed([*ours, "--out", os.path.join(tmp, "warm")], ROOT))
            if args.marginal_steps:
                ours, harl = commands(args.marginal_steps, tmp)
                rows["harl_marginal_s"].append(timed(harl, harl_cwd, harl_env))
                rows["ours_warm_marginal_s"].append(timed([*ours, "--out", os.path.join(tmp, "marginal")], ROOT))
        print({k: round(v[-1], 1) for k, v in rows.items()}, file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    doc = {"benchmark": "harl_end_to_end", **machine_info(), "algo": args.algo, "steps": args.steps,
           "repeats": args.repeats, "order": "ours cold, HARL, ours warm (then HARL, ours warm at --marginal-steps), "
           "per repeat", **rows, "median_s": med, "harl_over_ours_cold": med["harl_s"] / med["ours_cold_s"],
           "harl_over_ours_warm": med["harl_s"] / med["ours_warm_s"]}
    if args.marginal_steps:
        extra = args.marginal_steps - args.steps
        rate = {"ours": extra / (med["ours_warm_marginal_s"] - med["ours_warm_s"]),
                "harl": extra / (med["harl_marginal_s"] - med["harl_s"])}
        doc |= {"marginal_steps": args.marginal_steps, "training_steps_per_s": rate,
                "ours_over_harl_training_rate": rate["ours"] / rate["harl"]}
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
