"""Start-up cost of each algorithm's default run: cold compile, warm compile, speed after compile, end to end.

    python benchmarks/compile_time.py                          # every registered algorithm
    python benchmarks/compile_time.py --only happo,lola_exact --updates 10
    python benchmarks/compile_time.py --resume --out FILE      # only the algorithms FILE has no row for yet

Each algorithm runs on a representative environment (``REPRESENTATIVE``: its paper's or its tests' game, with the
environment arguments of ``ENV_ARGS``; otherwise the first of ``PREFERENCE`` it can train on); two ``train.py``
processes run the same short command (its default config with ``--updates`` updates, ``--seeds`` seeds):

- cold: a fresh, empty compilation cache directory;
- warm: the same command again, with the cache the cold run filled.

Each row gives, per process, ``compile_s`` and ``compile_cpu_s`` (``summary.json``'s ``compile_time_s`` and
``compile_cpu_s``: tracing, lowering and compiling or loading the initialisation and training-chunk functions, in
wall and process CPU seconds; CPU seconds are less distorted by other jobs on a shared machine), ``run_s``,
``updates_per_s`` and ``env_steps_per_s`` after compile, ``wall_s`` (``train.py``'s own wall time), ``process_s`` and
``process_cpu_s`` (the whole process, imports included, timed from outside: wall, and user + system CPU seconds of
the child). The document is written to ``--out`` (default ``benchmarks/results/cpu/compile_time.json``) after each
algorithm, so a stopped call continues with ``--resume``; rows of algorithms not measured in this call are kept from
the file already there.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import algos  # noqa: E402
import envs  # noqa: E402
from benchmarks.common import dump, emit, machine_info  # noqa: E402

ROOT = os.path.dirname(_HERE)
OUT = os.path.join(_HERE, "results", "cpu", "compile_time.json")
# An algorithm's default environment: its entry in REPRESENTATIVE, else the first of PREFERENCE it can train on.
PREFERENCE = ("mpe_spread", "soccer", "ipd", "matrix_mp")
_GAME_GRADIENT = ("simul_ind", "simul_co", "lookahead", "sos", "sga", "cga", "aga", "svo")
REPRESENTATIVE = {
    **dict.fromkeys(_GAME_GRADIENT, "game_tandem"),  # the game-gradient methods' test game (two numbers)
    **dict.fromkeys(("aga_ppo", "cga_ppo"), "harvest"),  # their papers' sequential social dilemma
    **dict.fromkeys(("mfq", "mfac", "il", "ac"), "battle"),  # mean-field Q / AC and their independent baselines
    "mfq_tabular": "ising", "dgn": "dgn_battle", "ga_comm": "traffic_junction",
    **dict.fromkeys(("haddpg", "hatd3"), "mpe_spread"),  # continuous spread (ENV_ARGS), HARL's task
}
ENV_ARGS = {"haddpg": ["--env-arg", "continuous=true"], "hatd3": ["--env-arg", "continuous=true"]}


def default_env(algo_name: str) -> str:
    if algo_name in REPRESENTATIVE:
        return REPRESENTATIVE[algo_name]
    return next(e for e in PREFERENCE if algos.compatible(algo_name, envs.make(e)) is None)


def make_env(algo_name: str, env_name: str):
    """The environment with ``ENV_ARGS`` applied (parsed as ``train.py`` parses ``--env-arg``)."""
    return envs.make(env_name, **envs.parse_env_args(env_name, ENV_ARGS.get(algo_name, [])[1::2]))


def budget(algo_name: str, env_name: str, updates: int) -> list[str]:
    """``--set`` arguments that shorten the default config to ``updates`` updates."""
    fields = algos.get(algo_name).default_config(make_env(algo_name, env_name)).to_dict()
    if "num_updates" in fields:
        return ["--set", f"num_updates={updates}"]
    if "rollout_len" in fields:  # on-policy: updates of num_envs * rollout_len environment steps
        return ["--set", f"total_steps={updates * fields['num_envs'] * fields['rollout_len']}"]
    return ["--set", f"total_steps={updates * fields['steps_per_update']}"]


def run_once(cmd: list[str], out: str) -> dict:
    """One ``train.py`` process; -> its timings."""
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([*cmd, "--out", out], cwd=ROOT, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    return {"compile_s": s["compile_time_s"], "compile_cpu_s": s["compile_cpu_s"], "run_s": s["run_time_s"],
            "updates_per_s": s["updates_per_second"], "env_steps_per_s": s["env_steps_per_second"],
            "wall_s": s["wall_time_s"], "process_s": process_s, "process_cpu_s": process_cpu_s,
            "load_average": os.getloadavg()}


def measure(algo_name: str, updates: int, seeds: int) -> dict:
    env_name = default_env(algo_name)
    sets = budget(algo_name, env_name, updates)
    with tempfile.TemporaryDirectory(prefix="compile-time-") as tmp:
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--algo", algo_name, "--env", env_name,
               *ENV_ARGS.get(algo_name, []), "--seeds", str(seeds), *sets, "--quiet",
               "--compile-cache", os.path.join(tmp, "xla")]
        try:
            cold = run_once(cmd, os.path.join(tmp, "cold"))
            warm = run_once(cmd, os.path.join(tmp, "warm"))
        except RuntimeError as e:  # kept as a row (a later --resume measures it again)
            print(e, file=sys.stderr, flush=True)
            return {"algo": algo_name, "env": env_name, "updates": None, "seeds": seeds, "error": str(e)[-2000:]}
    print(f"{algo_name} on {env_name}: compile cold {cold['compile_s']:.1f}s ({cold['compile_cpu_s']:.1f} CPU s), "
          f"warm {warm['compile_s']:.1f}s ({warm['compile_cpu_s']:.1f} CPU s); process cold {cold['process_s']:.1f}s, "
          f"warm {warm['process_s']:.1f}s", file=sys.stderr, flush=True)
    return {"algo": algo_name, "env": env_name, "env_args": ENV_ARGS.get(algo_name, [])[1::2], "seeds": seeds,
            "updates": updates, "set": sets[1::2],
            "cold": cold, "warm": warm, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def parse_args(doc: str, out: str, argv=None, attribute: bool = False) -> tuple[argparse.Namespace, list[str]]:
    """The command line this script shares with ``compile_profile.py`` (``attribute``: its ``--attribute N``)
    -> (arguments, algorithm names)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help="comma-separated algorithm names (default: all)")
    p.add_argument("--updates", type=int, default=5, help="updates per run (default 5: runs of seconds)")
    p.add_argument("--seeds", type=int, default=8, help="seeds per run (default 8, train.py's default)")
    p.add_argument("--out", default=out, help="JSON document to write (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--resume", action="store_true",
                   help="skip algorithms --out already has a row for at the same --updates and --seeds")
    p.add_argument("--note", default="", help="a note kept in the document (e.g. the machine's load)")
    if attribute:
        p.add_argument("--attribute", type=int, default=0, metavar="N",
                       help="attribute the chunk's optimised program to its sources; print the top N rows")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or algos.list_algos()
    unknown = sorted(set(names) - set(algos.list_algos()))
    if unknown:
        p.error(f"--only: unknown algorithm(s) {', '.join(unknown)}; valid: {', '.join(algos.list_algos())}")
    if args.updates <= 0 or args.seeds <= 0 or getattr(args, "attribute", 0) < 0:
        p.error("--updates and --seeds must be positive, --attribute not negative")
    return args, names


def measure_rows(measure_one, args: argparse.Namespace, names: list[str], write=None) -> list[dict]:
    """``measure_one(name, updates, seeds)`` of each algorithm named, beside the rows of the others already in
    ``args.out`` -> rows sorted by algorithm. ``write(rows)``, when given, is called after each algorithm;
    ``args.resume``: algorithms with a row at the same updates and seeds are not measured again."""
    rows = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            rows = {r["algo"]: r for r in json.load(f).get("results", [])}
    for name in names:
        done = rows.get(name)
        if getattr(args, "resume", False) and done and (done["updates"], done["seeds"]) == (args.updates, args.seeds):
            continue
        rows[name] = measure_one(name, args.updates, args.seeds)
        if write is not None:
            write([rows[n] for n in sorted(rows)])
    return [rows[n] for n in sorted(rows)]


def main(argv=None) -> int:
    args, names = parse_args(__doc__, OUT, argv)
    head = {"benchmark": "compile_time", **machine_info(),
            "compile_cache": "cold: a fresh directory per algorithm; warm: the same directory, second process",
            "default_env_preference": list(PREFERENCE), "representative_env": REPRESENTATIVE, "env_args": ENV_ARGS,
            **({"note": args.note} if args.note else {})}
    rows = measure_rows(measure, args, names, write=lambda rows: dump({**head, "results": rows}, args.out))
    emit({**head, "results": rows}, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
