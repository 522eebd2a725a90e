"""Shared benchmark plumbing: ahead-of-time compilation timed apart from runs, machine facts, JSON output.

Importing it turns on the persistent compilation cache as ``train.py`` does (``jaxmarl_core.compile_cache``; every
benchmark script imports this module before it compiles anything): a compile time measured with the cache holding
the function is a warm one. ``JAXMARL_COMPILE_CACHE=off`` measures cold compiles; ``machine_info`` records which."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import algos
from jaxmarl_core import compile_cache, sweep
from jaxmarl_core.config import from_defaults
from jaxmarl_core.outputs import atomic_write

COMPILE_CACHE = compile_cache.enable()  # the directory in use, or None


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


@dataclasses.dataclass(frozen=True)
class RolloutSizes:
    """The throughput benchmarks' shared flags: steps per timed rollout and timed runs, by default and under
    ``--quick``, vmapped batch sizes, seed and JSON output."""

    steps: int
    repeats: int
    quick_steps: int
    quick_repeats: int
    batch_sizes: tuple[int, ...]

    def parser(self, doc: str) -> argparse.ArgumentParser:
        """A parser holding the shared flags, described by ``doc``'s first paragraph; add the script's own."""
        parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--batch-sizes", type=int_list, default=list(self.batch_sizes),
                            help=f"comma-separated batch sizes (default: {','.join(map(str, self.batch_sizes))})")
        parser.add_argument("--steps", type=int,
                            help=f"steps per run (default {self.steps}; --quick {self.quick_steps})")
        parser.add_argument("--repeats", type=int,
                            help=f"timed runs after one warm-up (default {self.repeats}; --quick {self.quick_repeats})")
        parser.add_argument("--quick", action="store_true",
                            help=f"smoke test: {self.quick_steps} steps, {self.quick_repeats} repeats")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true",
                            help="print one JSON document on stdout instead of the table")
        parser.add_argument("--out", help="also write the JSON document to this file (atomically)")
        return parser

    def parse(self, parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
        """Parse, fill ``--steps``/``--repeats`` from ``--quick`` and reject non-positive ones."""
        args = parser.parse_args(argv)
        if args.steps is None:
            args.steps = self.quick_steps if args.quick else self.steps
        if args.repeats is None:
            args.repeats = self.quick_repeats if args.quick else self.repeats
        if args.steps <= 0 or args.repeats <= 0:
            parser.error("--steps and --repeats must be positive")
        return args


def time_compiled(fn: Callable, args: tuple, repeats: int, warmup: bool = True, cpu: dict | None = None,
                  xla: sweep.XlaOptions | None = None) -> tuple[float, list[float], Any]:
    """AOT-compile ``fn(*args)`` (with the training jits' ``compiler_options(xla)``), warm up once
    (unless ``warmup`` is False: long trainings, where a second run would only double the wall time), time
    ``repeats`` calls -> (compile_s, [run_s], last output). ``cpu``, when given, receives the process's CPU seconds
    (all its threads, ``time.process_time``) of the same intervals: ``compile_s`` and ``runs_s``, less sensitive
    than wall time to other jobs on a shared machine."""
    start, cpu_start = time.perf_counter(), time.process_time()
    compiled = sweep.jit(fn, xla).lower(*args).compile()
    compile_s = time.perf_counter() - start
    cpu_times = {"compile_s": time.process_time() - cpu_start, "runs_s": []}
    if warmup:
        jax.block_until_ready(compiled(*args))
    out = None
    runs = []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - start)
        cpu_times["runs_s"].append(time.process_time() - cpu_start)
    if cpu is not None:
        cpu.update(cpu_times)
    return compile_s, runs, out


def machine_info() -> dict:
    """Backend, device, versions, CPU count and compilation cache directory (None: off) of this run."""
    import jaxlib

    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": f"{device.platform}:{device.device_kind}",
            "num_devices": jax.device_count(), "jax_version": jax.__version__,
            "jaxlib_version": getattr(jaxlib, "__version__", None), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "compile_cache": COMPILE_CACHE}


def dump(doc: dict, path: str | None = None) -> str:
    """The JSON text of ``doc``; also written atomically to ``path`` when given."""
    text = json.dumps(doc, indent=2) + "\n"
    if path:
        atomic_write(path, text)
    return text


def emit(doc: dict, path: str | None, as_json: bool) -> None:
    """``dump`` the document to ``path`` and, with ``as_json``, print it on stdout (the scripts' ``--json``)."""
    text = dump(doc, path)
    if as_json:
        print(text, end="")


def finish(doc: dict, start: float, path: str | None, as_json: bool, plot: Callable | None = None) -> int:
    """Record the wall time since ``start``, ``emit`` the document and, with ``plot``, call ``plot(doc, PNG path
    beside path)``; -> 0, a script's exit status."""
    doc["wall_s"] = time.time() - start
    emit(doc, path, as_json)
    if plot is not None and path:
        plot(doc, os.path.splitext(path)[0] + ".png")
    return 0


def train_many(algo_name: str, env, overrides: dict, seeds: int, repeats: int = 1, params=None,
               warmup: bool = True, seed_batch: int | None = None, first_seed: int = 0) -> dict:
    """Train seeds ``first_seed``, ..., ``first_seed + seeds - 1`` of ``algo_name`` (its default config for ``env``
    with ``overrides``; a ``preset`` among them picks those defaults, ``config.from_defaults``) in one jit, seeds
    split over every visible device and vectorised in groups of ``seed_batch`` (None: the algorithm's default) as
    ``train.py`` does (on CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=C`` makes C devices of C cores);
    -> config, timings (``cpu_s``: the process's CPU seconds, ``time_compiled``), the output (``out``: final states
    and metrics) and its metrics as numpy."""
    algo = algos.get(algo_name)
    config = from_defaults(algo.default_config, env, overrides)
    config.validate(env)
    trainer = algo.make_train(env, config, params)
    keys = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(0, seeds, first_seed), sweep.padded_size(seeds)))
    seed_batch = sweep.resolve_seed_batch(trainer, seed_batch)
    cpu: dict = {}
    compile_s, runs, out = time_compiled(sweep.map_seeds(trainer, seed_batch), (keys,), repeats, warmup, cpu,
                                         trainer.xla)
    out = jax.tree.map(lambda x: x[:seeds], out)  # drop the seeds padded up to a multiple of the device count
    return {"config": dataclasses.asdict(config), "compile_s": compile_s, "runs_s": runs,
            "median_s": float(np.median(runs)), "cpu_s": cpu, "seed_batch": seed_batch, "out": out,
            "metrics": jax.tree.map(np.asarray, out.metrics),
            "num_updates": trainer.num_updates, "env_steps_per_update": trainer.env_steps_per_update}


def train_chunked(algo_name: str, env, overrides: dict, seeds: int, chunks: int = 1, time_limit: float = 0.0,
                  on_chunk: Callable[[dict], None] | None = None) -> dict:
    """``train_many`` (one repeat, no warm-up) in ``chunks`` equal jitted pieces (``Trainer.run``: the numbers of one
    scan), calling ``on_chunk(result so far)`` after each and stopping after the first chunk that ends past
    ``time_limit`` seconds of training (0: none), so that a long run cut short still leaves a curve; the result's
    ``num_updates`` counts the updates done, ``planned_updates`` all of them."""
    algo = algos.get(algo_name)
    config = from_defaults(algo.default_config, env, overrides)
    config.validate(env)
    trainer = algo.make_train(env, config)
    if chunks <= 0 or trainer.num_updates % chunks:
        raise ValueError(f"chunks ({chunks}) must divide the number of updates ({trainer.num_updates})")
    length = trainer.num_updates // chunks
    keys = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(0, seeds), sweep.padded_size(seeds)))
    seed_batch = sweep.resolve_seed_batch(trainer, None)
    t0 = time.perf_counter()
    state = sweep.jit(sweep.map_seeds(trainer.init_state, seed_batch), trainer.xla).lower(keys).compile()(keys)
    chunk = sweep.jit(sweep.map_seeds(lambda sk, start: trainer.run(*sk, start, length), seed_batch),
                      trainer.xla).lower((state, keys), np.int32(0)).compile()
    compile_s, run_s, pieces = time.perf_counter() - t0, 0.0, []
    for c in range(chunks):
        t0 = time.perf_counter()
        state, metrics = chunk((state, keys), np.int32(c * length))
        pieces.append(jax.tree.map(lambda x: np.asarray(x)[:seeds], jax.device_get(metrics)))
        run_s += time.perf_counter() - t0
        result = {"config": dataclasses.asdict(config), "compile_s": compile_s, "median_s": run_s,
                  "metrics": jax.tree.map(lambda *x: np.concatenate(x, axis=1), *pieces),
                  "num_updates": (c + 1) * length, "planned_updates": trainer.num_updates,
                  "env_steps_per_update": trainer.env_steps_per_update}
        if on_chunk is not None:
            on_chunk(result)
        if 0 < time_limit <= run_s:
            break
    return result
