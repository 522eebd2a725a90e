"""End to end against HARL's own code: one user-facing command each on MPE spread, timed from outside as whole
processes (imports, compile or start-up, training).

    python benchmarks/harl_end_to_end.py --harl-dir HARL --harl-python VENV/bin/python --json
    python benchmarks/harl_end_to_end.py --algo hatd3 --steps 20000 --marginal-steps 60000 --harl-dir HARL ...
    python benchmarks/harl_end_to_end.py --only-ours --ours-root BASE --ours-root . --repeats 3

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

``--only-ours`` leaves HARL out (no ``--harl-dir`` needed). ``--ours-root DIR`` (repeatable) times the ``train.py`` of
other checkouts of this repository (say, before and after a change) in alternation: each repeat runs every root cold
then warm (its own fresh cache), the roots' order rotating from one repeat to the next. Every run of ours also records
its process CPU seconds (all threads), its ``summary.json``'s compile and training seconds and the load average at
its start and end, and its seconds outside ``train.run`` (``ours_runs``).
"""
from __future__ import annotations

import argparse
import json
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


def timed_ours(cmd: list[str], cwd: str, out: str) -> dict:
    """One run of our ``train.py`` (``cmd`` with ``--out out``) -> wall and process CPU seconds (all threads), the
    compile and training seconds of its summary, the seconds outside ``train.run`` (interpreter, imports, the
    configuration, exit) and the 1-minute load average at its start and end."""
    load0, cpu0 = os.getloadavg()[0], os.times()
    wall = timed([*cmd, "--out", out], cwd)
    cpu1 = os.times()
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return {"wall_s": wall, "cpu_s": (cpu1.children_user + cpu1.children_system)
            - (cpu0.children_user + cpu0.children_system), "compile_s": summary["compile_time_s"],
            "train_s": summary["run_time_s"], "outside_run_s": wall - summary["wall_time_s"],
            "load": [load0, os.getloadavg()[0]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=tuple(SETUPS), default="happo")
    p.add_argument("--harl-dir", help="a checkout of PKU-MARL/HARL (required unless --only-ours)")
    p.add_argument("--harl-python", default=sys.executable, help="interpreter with torch and pettingzoo 1.22")
    p.add_argument("--steps", type=int, default=200_000, help="environment steps (default %(default)s)")
    p.add_argument("--marginal-steps", type=int, default=0, metavar="M",
                   help="also run ours warm and HARL at M > --steps steps for the training rates (0: no)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--only-ours", action="store_true", help="time our command only (cold and warm), not HARL's")
    p.add_argument("--ours-root", action="append", default=[], metavar="DIR",
                   help="a checkout of this repository whose train.py is timed (repeatable, in alternation; default: "
                        "this one)")
    p.add_argument("--out", default=OUT)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.steps <= 0 or args.repeats <= 0:
        p.error("--steps and --repeats must be positive")
    if args.marginal_steps and args.marginal_steps <= args.steps:
        p.error("--marginal-steps must be above --steps (or 0)")
    if not args.only_ours and not args.harl_dir:
        p.error("--harl-dir is required unless --only-ours")
    if args.only_ours and args.marginal_steps:
        p.error("--marginal-steps compares with HARL: drop it with --only-ours")
    if len(args.ours_root) > 1 and not args.only_ours:
        p.error("several --ours-root need --only-ours")
    roots = [os.path.abspath(r) for r in args.ours_root] or [ROOT]
    if len(set(roots)) < len(roots):
        p.error("--ours-root: the same checkout twice")
    for r in roots:
        if not os.path.isfile(os.path.join(r, "train.py")):
            p.error(f"--ours-root {r}: no train.py there")
    our_args, harl_config = SETUPS[args.algo]
    harl_env = dict(os.environ, PYTHONPATH=os.path.abspath(args.harl_dir or os.curdir))

    def commands(steps: int, tmp: str, root: str = roots[0]) -> tuple[list[str], list[str]]:
        ours = [sys.executable, os.path.join(root, "train.py"), *our_args, "--seeds", "1", "--set",
                f"total_steps={steps}", "--quiet", "--compile-cache", os.path.join(tmp, "xla")]
        harl = [args.harl_python, "train.py", "--load_config", os.path.join(os.path.abspath(args.harl_dir or os.curdir),
                harl_config), "--exp_name", "end_to_end", "--num_env_steps", str(steps), "--cuda", "False",
                "--use_eval", "False", "--log_dir", os.path.join(tmp, "harl")]
        return ours, harl

    if args.only_ours:
        return only_ours(args, roots, commands)
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


def only_ours(args, roots: list[str], commands) -> int:
    """Our command alone, cold then warm, for every root per repeat, the roots' order rotating."""
    runs = {r: {"cold": [], "warm": []} for r in roots}
    for i in range(args.repeats):
        for root in roots[i % len(roots):] + roots[:i % len(roots)]:
            with tempfile.TemporaryDirectory(prefix="ours-e2e-") as tmp:
                ours = commands(args.steps, tmp, root)[0]
                for phase in ("cold", "warm"):
                    runs[root][phase].append(timed_ours(ours, root, os.path.join(tmp, phase)))
            print(root, {ph: round(v[-1]["wall_s"], 2) for ph, v in runs[root].items()}, file=sys.stderr, flush=True)

    def medians(rows: list[dict]) -> dict:
        return {k: statistics.median(r[k] for r in rows) for k in ("wall_s", "cpu_s", "compile_s", "train_s",
                                                                    "outside_run_s")}

    doc = {"benchmark": "harl_end_to_end", **machine_info(), "algo": args.algo, "steps": args.steps,
           "repeats": args.repeats, "only_ours": True, "order": "per repeat, every root cold then warm (a fresh "
           "cache each), the roots' order rotating", "roots": roots, "ours_runs": runs,
           "median": {r: {ph: medians(v) for ph, v in runs[r].items()} for r in roots}}
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
