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

With one seed per group on one device (``sweep.one_seed_per_call``), the chunk is, as in ``train.py``, the program of
one seed (called once per seed). ``--attribute N`` also attributes the chunk's optimised program to the Python source
that made it (each HLO instruction's ``stack_frame_id``, resolved through the module's stack-frame tables) and prints
the top ``N`` rows of three tables, also kept in the row under ``chunk_attribution``: by the innermost source line
(``source``: a repository file's ``path:line``, a library's ``library/file:line``), by the innermost line of this
repository (``repo_line``: where a library call such as distrax's ``log_prob`` was made) and by file or library
(``file``). Each row counts fusions (the fusion instructions of every non-fused computation, attributed by the
fusion's own frame) and instructions (every instruction, those inside fused computations included, each by its own
frame). Its compile then runs under ``jax.profiler.trace`` (a little slower), which gives each distinct kernel's
``FusionCompiler::Compile`` seconds (``kernel_compile_s``: the MLIR emission of XLA's CPU backend, one part of its
compile; LLVM's optimisation and code generation follow) and orders the rows by them. Instructions an XLA pass made (a
frame but no ``op_name``: the CPU's tree-reduction rewrite turns each reduction of more than 32 elements into a
``reduce-window`` and a ``reduce``) are counted apart as ``<XLA: name>``; a function JAX traces once and reuses
(``jax.random.split``'s threefry) keeps the source of its first call.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time

# no persistent cache in this process: turning it off after ``benchmarks.common`` enabled it at import leaves JAX
# reading it (a program compiled by an earlier process was timed as a cache load)
os.environ["JAXMARL_COMPILE_CACHE"] = "off"
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import train  # noqa: E402
from benchmarks.common import emit, machine_info  # noqa: E402
from benchmarks.compile_time import budget, default_env, make_env, measure_rows, parse_args  # noqa: E402
from jaxmarl_core import config as config_lib  # noqa: E402
from jaxmarl_core import sweep  # noqa: E402

OUT = os.path.join(_HERE, "results", "cpu", "compile_profile.json")


def program_size(hlo: str) -> dict:
    """Counts in an optimised HLO module's text."""
    return {"hlo_instructions": len(re.findall(r"^\s+(?:ROOT )?%\S+ = ", hlo, re.M)),
            "fusions": len(re.findall(r" fusion\(", hlo)), "while_loops": len(re.findall(r" while\(", hlo))}


def _table(hlo: str, name: str) -> dict[int, str]:
    m = re.search(rf"^{name}\n(.*?)(?:\n\n|\Z)", hlo, re.M | re.S)
    rows = (line.split(" ", 1) for line in m.group(1).splitlines()) if m else ()
    return {int(i): rest for i, rest in rows}


def stack_frames(hlo: str) -> dict[int, list[tuple[str, int]]]:
    """An optimised HLO module's stack-frame tables -> {stack_frame_id: [(file, line), innermost first]}. Each
    frame's printed ``parent_frame_id`` is its parent's id plus one (0 or 1: none)."""
    files = {i: v.strip('"') for i, v in _table(hlo, "FileNames").items()}
    locs = {}
    for i, v in _table(hlo, "FileLocations").items():
        d = dict(re.findall(r"(\w+)=(\d+)", v))
        locs[i] = (files[int(d["file_name_id"])], int(d["line"]))
    parents = {}
    for i, v in _table(hlo, "StackFrames").items():
        d = dict(re.findall(r"(\w+)=(\d+)", v))
        parents[i] = (int(d["file_location_id"]), int(d["parent_frame_id"]) - 1)
    stacks = {}
    for i in parents:
        stack, f = [], i
        while f in parents and len(stack) < 200:
            loc, parent = parents[f]
            stack.append(locs[loc])
            f = parent if parent != f else 0
        stacks[i] = stack
    return stacks


def _file_key(path: str, root: str) -> str:
    """A repository file's path relative to ``root``; a library's ``library/file``; else the file's name."""
    if path.startswith(root + os.sep):
        return os.path.relpath(path, root)
    if "site-packages" + os.sep in path:
        parts = path.split("site-packages" + os.sep, 1)[1].split(os.sep)
        return f"{parts[0]}/{parts[-1]}"
    return os.path.basename(path)


def kernel_costs(trace_dir: str) -> dict[str, float]:
    """A ``jax.profiler.trace(trace_dir, create_perfetto_trace=True)`` of a compile -> {fusion name: seconds its
    kernel's ``FusionCompiler::Compile`` took} (XLA's CPU backend compiles each distinct fused computation once:
    fusions of identical computations share one kernel, whose cost goes to the first of them)."""
    import glob
    import gzip
    import json

    costs: dict[str, float] = {}
    for path in glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True):
        with gzip.open(path) as f:
            events = json.load(f)
        for e in events["traceEvents"] if isinstance(events, dict) else events:
            if e.get("ph") == "X" and e.get("name") == "FusionCompiler::Compile":
                name = e.get("args", {}).get("module", "").removesuffix("_kernel_module")
                costs[name] = costs.get(name, 0.0) + e["dur"] / 1e6
    return costs


def attribute(hlo: str, root: str = os.path.dirname(_HERE), costs: dict[str, float] | None = None
              ) -> dict[str, list[dict]]:
    """An optimised HLO module's fusions and instructions by the source that made them -> {"source", "repo_line",
    "file"}: rows ``{"key", "fusions", "instructions"}`` (with ``costs``, ``kernel_compile_s`` too: the seconds of
    ``kernel_costs`` of the row's fusions), most fusions first (then most instructions)."""
    stacks = stack_frames(hlo)
    tables = {"source": {}, "repo_line": {}, "file": {}}
    fused = False
    for line in hlo.splitlines():
        if line.endswith("{") and not line.startswith(" "):
            fused = line.startswith("%fused_") or line.startswith("fused_") or " fused_" in line.split("(")[0]
            continue
        m = re.match(r"^\s+(?:ROOT )?%(\S+) = .*?\s(\S+)\(", line)
        if not m:
            continue
        frame = re.search(r"stack_frame_id=(\d+)", line)
        stack = stacks.get(int(frame.group(1)), []) if frame else []
        is_fusion = m.group(2) == "fusion" and not fused
        if frame and "op_name=" not in line:  # made by an XLA pass (e.g. the CPU's tree-reduction rewrite)
            made = re.sub(r"\.\d+$", "", m.group(1)) if is_fusion else m.group(2)
            keys = (f"<XLA: {made}>",) * 3
        else:
            inner = stack[0] if stack else ("<no source>", 0)
            repo = next(((p, n) for p, n in stack if p.startswith(root + os.sep)), inner)
            keys = tuple(_file_key(path, root) + ("" if n is None else f":{n}")
                         for path, n in (inner, repo, (inner[0], None)))
        for name, key in zip(("source", "repo_line", "file"), keys):
            row = tables[name].setdefault(key, {"key": key, "fusions": 0, "instructions": 0,
                                                **({"kernel_compile_s": 0.0} if costs is not None else {})})
            row["instructions"] += 1
            row["fusions"] += is_fusion
            if costs is not None and is_fusion:
                row["kernel_compile_s"] += costs.get(m.group(1), 0.0)
    order = "kernel_compile_s" if costs is not None else "fusions"
    return {name: sorted(t.values(), key=lambda r: (-r[order], -r["instructions"], r["key"]))
            for name, t in tables.items()}


def print_attribution(title: str, tables: dict[str, list[dict]], top: int) -> None:
    for name, rows in tables.items():
        cost = "kernel_compile_s" in (rows[0] if rows else {})
        print(f"{title}: top {top} by {name} ({'kernel compile CPU s, ' if cost else ''}fusions, instructions)",
              file=sys.stderr)
        for r in rows[:top]:
            secs = f"{r['kernel_compile_s']:7.2f} " if cost else ""
            print(f"  {secs}{r['fusions']:5d} {r['instructions']:6d}  {r['key']}", file=sys.stderr)
    sys.stderr.flush()


def profile(fn, *args, compile_context=contextlib.nullcontext) -> tuple[dict, object]:
    """Trace, lower and compile (within ``compile_context()``) the jitted ``fn`` on ``args`` -> (CPU seconds of each
    and program size, the compiled function)."""
    c0 = time.process_time()
    traced = fn.trace(*args)
    c1 = time.process_time()
    lowered = traced.lower()
    c2 = time.process_time()
    with compile_context():
        compiled = lowered.compile()
    c3 = time.process_time()
    return {"trace_s": c1 - c0, "lower_s": c2 - c1, "compile_s": c3 - c2, **program_size(compiled.as_text())}, compiled


def measure(algo_name: str, updates: int, seeds: int, attribute_top: int = 0) -> dict:
    env_name = default_env(algo_name)
    sets = budget(algo_name, env_name, updates)
    env = make_env(algo_name, env_name)
    algo = algos.get(algo_name)
    config = config_lib.override(algo.default_config(env), sets[1::2])
    trainer = algo.make_train(env, config)
    keys = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(0, seeds), sweep.padded_size(seeds)))
    seed_batch = sweep.resolve_seed_batch(trainer)
    if sweep.one_seed_per_call(seed_batch) and trainer.init_per_seed:  # as train.py: compiled for one seed
        init, init_fn = profile(sweep.jit(trainer.init_state, trainer.xla), keys[0])
        state = jax.tree.map(lambda *xs: np.stack(xs), *[init_fn(k) for k in keys])
    else:
        init, init_fn = profile(sweep.jit(sweep.map_seeds(trainer.init_state, seed_batch), trainer.xla), keys)
        state = init_fn(keys)
    length = train._first_chunk(trainer.num_updates, 0)
    if sweep.one_seed_per_call(seed_batch):  # as train.py: a chunk of one seed, called per seed
        chunk_jit = sweep.jit(lambda sk, start: trainer.run(*sk, start, length), trainer.xla)
        chunk_args = jax.tree.map(lambda x: x[0], (state, keys))
    else:
        chunk_jit = sweep.jit(sweep.map_seeds(lambda sk, start: trainer.run(*sk, start, length), seed_batch),
                              trainer.xla)
        chunk_args = (state, keys)
    attribution = {}
    if attribute_top:
        with tempfile.TemporaryDirectory(prefix="compile-profile-") as trace_dir:
            chunk, chunk_fn = profile(chunk_jit, chunk_args, np.int32(0), compile_context=lambda: jax.profiler.trace(
                trace_dir, create_perfetto_trace=True))  # XLA's compile only: tracing's Python calls fill the trace
            costs = kernel_costs(trace_dir)
        tables = attribute(chunk_fn.as_text(), costs=costs)
        print_attribution(f"{algo_name} on {env_name} chunk", tables, attribute_top)
        attribution = {"chunk_attribution": {name: rows[:attribute_top] for name, rows in tables.items()},
                       "chunk_kernels": len(costs), "chunk_kernel_compile_s": sum(costs.values())}
    else:
        chunk = profile(chunk_jit, chunk_args, np.int32(0))[0]
    total = sum(part[k] for part in (init, chunk) for k in ("trace_s", "lower_s", "compile_s"))
    print(f"{algo_name} on {env_name}: {total:.1f} CPU s (init {init['compile_s']:.1f} s compile, "
          f"{init['fusions']} fusions; chunk {chunk['compile_s']:.1f} s compile, {chunk['fusions']} fusions)",
          file=sys.stderr, flush=True)
    return {"algo": algo_name, "env": env_name, "seeds": seeds, "updates": updates, "set": sets[1::2],
            "seed_batch": seed_batch, "chunk_length": length, "init": init, "chunk": chunk, "total_cpu_s": total,
            **attribution, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv=None) -> int:
    args, names = parse_args(__doc__, OUT, argv, attribute=True)
    jax.config.update("jax_enable_compilation_cache", False)
    doc = {"benchmark": "compile_profile", **machine_info(), "compile_cache": "off", "times": "process CPU seconds",
           "results": measure_rows(lambda n, u, s: measure(n, u, s, args.attribute), args, names)}
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
