"""Where an algorithm's start-up compile goes: the two functions ``train.py`` compiles for a default run (as in
``benchmarks/compile_time.py``: the first environment of its preference list, ``--updates`` updates, ``--seeds``
seeds), the initialisation and the first training chunk, each split into tracing, lowering and XLA's compile.

    python benchmarks/compile_profile.py --only happo,hatrpo,mappo

Times are process CPU seconds (``time.process_time``: all threads of this process), so two profiles taken on a busy
machine stay comparable where wall-clock times do not; XLA may compile on several threads, so they can exceed the
wall-clock compile of ``compile_time.py``. Each function also gets the size of its optimised program: HLO
instructions, fusions (roughly one generated kernel each: the compile grows with them) and while loops. The
persistent compilation cache is off in this process. The document is written to ``--out`` (default
``benchmarks/results/cpu/compile_profile.json``); rows of algorithms not profiled in this call are kept.
"""
from __future__ import annotations

import os
import re
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
import train  # noqa: E402
from benchmarks.common import emit, machine_info  # noqa: E402
from benchmarks.compile_time import budget, default_env, measure_rows, parse_args  # noqa: E402
from jaxmarl_core import config as config_lib  # noqa: E402
from jaxmarl_core import sweep  # noqa: E402

OUT = os.path.join(_HERE, "results", "cpu", "compile_profile.json")


def program_size(hlo: str) -> dict:
    """Counts in an optimised HLO module's text."""
    return {"hlo_instructions": len(re.findall(r"^\s+(?:ROOT )?%\S+ = ", hlo, re.M)),
            "fusions": len(re.findall(r" fusion\(", hlo)), "while_loops": len(re.findall(r" while\(", hlo))}


def profile(fn, *args) -> tuple[dict, object]:
    """Trace, lower and compile the jitted ``fn`` on ``args`` -> (CPU seconds of each and program size, the
    compiled function)."""
    c0 = time.process_time()
    traced = fn.trace(*args)
    c1 = time.process_time()
    lowered = traced.lower()
    c2 = time.process_time()
    compiled = lowered.compile()
    c3 = time.process_time()
    return {"trace_s": c1 - c0, "lower_s": c2 - c1, "compile_s": c3 - c2, **program_size(compiled.as_text())}, compiled


def measure(algo_name: str, updates: int, seeds: int) -> dict:
    env_name = default_env(algo_name)
    sets = budget(algo_name, env_name, updates)
    env = envs.make(env_name)
    algo = algos.get(algo_name)
    config = config_lib.override(algo.default_config(env), sets[1::2])
    trainer = algo.make_train(env, config)
    keys = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(0, seeds), sweep.padded_size(seeds)))
    seed_batch = sweep.resolve_seed_batch(trainer)
    init, init_fn = profile(sweep.jit(sweep.map_seeds(trainer.init_state, seed_batch)), keys)
    state = init_fn(keys)
    length = train._first_chunk(trainer.num_updates, 0)
    chunk = profile(sweep.jit(sweep.map_seeds(lambda sk, start: trainer.run(*sk, start, length), seed_batch)),
                    (state, keys), np.int32(0))[0]
    total = sum(part[k] for part in (init, chunk) for k in ("trace_s", "lower_s", "compile_s"))
    print(f"{algo_name} on {env_name}: {total:.1f} CPU s (init {init['compile_s']:.1f} s compile, "
          f"{init['fusions']} fusions; chunk {chunk['compile_s']:.1f} s compile, {chunk['fusions']} fusions)",
          file=sys.stderr, flush=True)
    return {"algo": algo_name, "env": env_name, "seeds": seeds, "updates": updates, "set": sets[1::2],
            "seed_batch": seed_batch, "chunk_length": length, "init": init, "chunk": chunk, "total_cpu_s": total,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv=None) -> int:
    args, names = parse_args(__doc__, OUT, argv)
    jax.config.update("jax_enable_compilation_cache", False)
    doc = {"benchmark": "compile_profile", **machine_info(), "compile_cache": "off", "times": "process CPU seconds",
           "results": measure_rows(measure, args, names)}
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
