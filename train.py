"""Train any registered algorithm on any compatible environment, vmapped over seeds.

    python train.py --algo lola_exact --env ipd --seeds 8
    python train.py --algo nl_exact --env imp --seeds 64 --set num_updates=500 --plot --out runs/imp_nl
    python train.py --resume --out runs/imp_nl

Outputs in --out: config.json, metrics.csv (one row per logged update per seed), summary.json (final metrics with
mean and 95% interval over seeds, wall/compile/run time, updates per second), curves.png (--plot) and orbax
checkpoints/. Bad input exits with status 2 and a one-line message before anything is compiled.

Compiled functions are kept in a persistent XLA compilation cache, so running the same command again starts in
seconds: ``--compile-cache DIR|off``, else ``$JAXMARL_COMPILE_CACHE``, else the per-user cache directory
(``~/.cache/jaxmarl-core/xla`` on Linux; see ``jaxmarl_core/compile_cache.py``). Progress goes to stderr: a line
when compiling starts and ends, then one at least every ``PROGRESS_EVERY_S`` seconds or so (``--quiet``: none).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import gc
import importlib.util
import json
import os
import sys
import time

USAGE_ERROR = 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


@contextlib.contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off inside (as it was after): importing the libraries and tracing the
    programs allocate hundreds of thousands of objects that live on and almost no cycles, so the collections they
    trigger find nothing and cost a noticeable part of a start-up (``benchmarks/RESULTS.md``, "Start-up: compile
    time")."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _parser(algo_names, env_names) -> argparse.ArgumentParser:
    p = _Parser(
        prog="train.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a multi-agent RL algorithm, end to end inside one jax.jit, vmapped over seeds.",
        epilog="algorithms: " + ", ".join(algo_names) + "\nenvironments: " + ", ".join(env_names)
        + ", jaxmarl:NAME (JaxMARL's environment NAME, e.g. jaxmarl:smax; pip install -e .[jaxmarl])"
        + "\n\n--list shows which pairs are compatible and each algorithm's config fields.")
    p.add_argument("--algo", help="algorithm name")
    p.add_argument("--env", help="environment name")
    p.add_argument("--seeds", type=int, default=8, help="number of seeds trained in parallel (default 8)")
    p.add_argument("--seed", type=int, default=0, help="base seed: seed i uses fold_in(PRNGKey(seed), i)")
    p.add_argument("--first-seed", type=int, default=0, metavar="K",
                   help="train seeds K, ..., K + SEEDS - 1 (default 0): a study split into runs over machines or "
                        "sessions has the seeds of one run")
    p.add_argument("--out", help="output directory (default runs/ALGO-ENV-TIMESTAMP)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="environment constructor argument")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="K",
                   help="save an orbax checkpoint every K updates (the final state is always saved)")
    p.add_argument("--log-every", type=int, default=0, metavar="K",
                   help="write metrics of every K-th update to metrics.csv (default: at most 1000 rows per seed)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--plot", action="store_true", help="write curves.png")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--compile-cache", metavar="DIR|off",
                   help="persistent XLA compilation cache: a second run of the same command skips most of its "
                        "compile (default: $JAXMARL_COMPILE_CACHE, else the per-user cache directory, "
                        "~/.cache/jaxmarl-core/xla on Linux); 'off' compiles everything afresh")
    p.add_argument("--seed-batch", type=int, default=None, metavar="B",
                   help="seeds vectorised together on each device, the rest in sequence; 0: all (default: the "
                        "algorithm's choice on CPU, all on GPU/TPU). Speed only: the numbers agree up to float "
                        "rounding")
    p.add_argument("--list", action="store_true", help="list algorithms, environments and compatible pairs")
    return p


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers (saved as config.json)."""

    algo: str
    env: str
    env_args: dict
    config: dict
    seeds: int
    seed: int
    checkpoint_every: int
    log_every: int
    first_seed: int = 0


def _build(spec: RunSpec, set_texts: list[str] | None = None):
    """-> (algorithm, env, config); every check happens here, before anything is traced."""
    import algos
    import envs
    from jaxmarl_core.config import from_defaults, parse_overrides

    try:
        algo = algos.get(spec.algo)
    except ValueError as e:
        raise UsageError(f"--algo: {e}") from None
    try:
        envs.check_name(spec.env)
    except ValueError as e:
        raise UsageError(f"--env: {e}") from None
    try:
        env = envs.make(spec.env, **spec.env_args)
    except ValueError as e:
        raise UsageError(f"--env-arg: {e}") from None
    reason = algo.check_env(env)
    if reason:
        raise UsageError(f"--algo {spec.algo} cannot run on --env {spec.env}: {reason}")
    try:
        changes = spec.config if set_texts is None else parse_overrides(type(algo.default_config(env)), set_texts)
        config = from_defaults(algo.default_config, env, changes)
        config.validate(env)
    except ValueError as e:
        message = str(e)
        raise UsageError(message if message.startswith("--set") else f"--set: {message}") from None
    return algo, env, config


def _check_out(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"--out: cannot write to {path!r}: {e.strerror or e}") from None


def _list(algo_names, env_names) -> str:
    import algos
    import envs

    lines = ["compatible pairs (algorithm: environments)"]
    built = {name: envs.make(name) for name in env_names}
    for a in algo_names:
        ok = [e for e in env_names if algos.compatible(a, built[e]) is None]
        lines.append(f"  {a}: {', '.join(ok) or '-'}")
    lines.append("\nconfig fields (--set FIELD=VALUE), with defaults")
    for a in algo_names:
        algo = algos.get(a)
        env = next((built[e] for e in env_names if algos.compatible(a, built[e]) is None), None)
        if env is not None:
            cfg = algo.default_config(env)
            fields = ", ".join(f"{k}={v!r}" for k, v in cfg.flat_items())
            lines.append(f"  {a}: {fields}")
    lines.append("\nenvironment arguments (--env-arg KEY=VALUE)")
    for e in env_names:
        args = envs.env_args(e)
        lines.append(f"  {e}: {', '.join(f'{k}={v!r}' for k, v in args.items()) or '-'}")
    return "\n".join(lines)


def _resolve(argv) -> tuple[RunSpec, argparse.Namespace, list[str] | None]:
    import algos
    import envs

    parser = _parser(algos.list_algos(), envs.list_envs())
    args = parser.parse_args(argv)
    if args.list:
        print(_list(algos.list_algos(), envs.list_envs()))
        raise SystemExit(0)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib, which is not installed: pip install -e .[plot]")
    if args.seed_batch is not None and args.seed_batch < 0:
        raise UsageError(f"--seed-batch must be >= 0 (0: all seeds at once), got {args.seed_batch}")
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out, the directory of the run to continue")
        path = os.path.join(args.out, "config.json")
        if not os.path.exists(path):
            raise UsageError(f"--resume: {path} does not exist; nothing to resume")
        with open(path) as f:
            saved = json.load(f)["run"]
        spec = RunSpec(**saved)
        for flag, given, kept in (("--algo", args.algo, spec.algo), ("--env", args.env, spec.env)):
            if given is not None and given != kept:
                raise UsageError(f"{flag} {given} differs from the run being resumed ({kept})")
        if args.set or args.env_arg:
            raise UsageError("--resume continues a run as it was configured: drop --set and --env-arg")
        return spec, args, None
    if not args.algo or not args.env:
        raise UsageError("--algo and --env are required (see --help, or --list for compatible pairs)")
    if args.seeds <= 0:
        raise UsageError(f"--seeds must be a positive integer, got {args.seeds}")
    if args.first_seed < 0:
        raise UsageError(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.log_every < 0:
        raise UsageError(f"--log-every must be >= 0, got {args.log_every}")
    if args.algo not in algos.list_algos():
        raise UsageError(f"--algo: unknown algorithm {args.algo!r}; valid names: {', '.join(algos.list_algos())}")
    try:
        envs.check_name(args.env)
    except ValueError as e:
        raise UsageError(f"--env: {e}") from None
    try:
        env_args = envs.parse_env_args(args.env, args.env_arg)
    except ValueError as e:
        raise UsageError(f"--env-arg: {e}") from None
    spec = RunSpec(algo=args.algo, env=args.env, env_args=env_args, config={}, seeds=args.seeds, seed=args.seed,
                   checkpoint_every=args.checkpoint_every, log_every=args.log_every, first_seed=args.first_seed)
    return spec, args, list(args.set)


PROGRESS_EVERY_S = 10.0  # chunks of about this long at most: a progress line (and Ctrl-C) at least this often
FIRST_CHUNKS = 200  # the first chunk is about 1/FIRST_CHUNKS of the run


def _divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit`` (at least 1)."""
    d = max(1, min(n, limit))
    while n % d:
        d -= 1
    return d


def _first_chunk(remaining: int, checkpoint_every: int) -> int:
    """Length of the first chunk of a run with ``remaining`` updates to go: ``checkpoint_every`` if checkpoints are
    saved (chunks end at checkpoints), else a divisor of ``remaining`` near ``remaining / FIRST_CHUNKS``, so that
    chunks of that one length cover the run and the first progress line comes early."""
    if checkpoint_every > 0:
        return checkpoint_every
    return _divisor_at_most(remaining, remaining // FIRST_CHUNKS)


def _later_chunk(first: int, seconds: float, remaining: int, checkpoint_every: int) -> int:
    """Length of the chunks after the first (``first`` updates that ran in ``seconds``), with ``remaining`` updates
    still to go. At most one length besides ``first`` (each is one more compile), and only where ``first`` is far
    off: a divisor of ``first`` when its chunks take over ``PROGRESS_EVERY_S`` (every chunk boundary stays one of
    ``first``'s); a multiple ``k * first`` of at most ``PROGRESS_EVERY_S`` when ``first`` would take over
    4 ``FIRST_CHUNKS`` calls (an awkward divisor: per-call overhead), the tail then in chunks of ``first``."""
    if checkpoint_every > 0 or remaining <= 0:
        return first
    per_update = seconds / first
    if seconds > PROGRESS_EVERY_S:
        return _divisor_at_most(first, int(PROGRESS_EVERY_S / per_update))
    if remaining > 4 * FIRST_CHUNKS * first:
        k = min(int(PROGRESS_EVERY_S / max(seconds, 1e-9)), -(-remaining // (FIRST_CHUNKS * first)))
        return max(1, k) * first
    return first


def _chunk_length(t: int, total: int, first: int, later: int | None) -> int:
    """Length of the chunk starting at update ``t``: ``later`` while it fits, else ``first`` (or what is left)."""
    return later if later is not None and total - t >= later else min(first, total - t)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class _Progress:
    """Progress lines on stderr: compiling (start, end), then training at most ``every`` seconds apart (one line
    rewritten in place on a terminal) and at the end; nothing when ``quiet``."""

    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.quiet = label, total, quiet
        self.tty = sys.stderr.isatty()
        self.every = 0.5 if self.tty else PROGRESS_EVERY_S / 2
        self.t_start, self.start, self.last = time.perf_counter(), 0, None
        self.line_open = False  # a line rewritten in place has no newline yet

    def _write(self, line: str, in_place: bool = False) -> None:
        if self.quiet:
            return
        if in_place and self.tty:
            sys.stderr.write("\r" + line)
        else:
            self._end_line()
            sys.stderr.write(line + "\n")
        self.line_open = in_place and self.tty
        sys.stderr.flush()

    def _end_line(self) -> None:
        if self.line_open:
            sys.stderr.write("\n")
            self.line_open = False

    def compiling(self, what: str) -> float:
        self._write(f"{self.label}: compiling {what} ...")
        return time.perf_counter()

    def compiled(self, since: float) -> None:
        seconds = time.perf_counter() - since
        self.t_start += seconds  # the training rate leaves compiles out
        self._write(f"{self.label}: compiled in {_duration(seconds)}")

    def begin(self, start: int) -> None:
        """Training starts at update ``start`` (compiling is done)."""
        self.t_start, self.start, self.last = time.perf_counter(), start, None

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if done < self.total and self.last is not None and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.t_start
        rate = (done - self.start) / max(elapsed, 1e-9)
        eta = (self.total - done) / max(rate, 1e-9)
        self._write(f"{self.label}: update {done}/{self.total} ({100 * done / self.total:.0f}%), {rate:.3g} "
                    f"updates/s, {_duration(elapsed)} elapsed, ~{_duration(eta)} left", in_place=True)
        if done >= self.total:
            self._end_line()


def run(spec: RunSpec, out: str, config, algo, env, resume: bool, plot: bool, quiet: bool,
        seed_batch: int | None = None, compile_cache: str | None = None) -> dict:
    """Train, checkpoint and write outputs; returns the summary. ``seed_batch``: seeds vectorised together per
    device (None: the algorithm's choice, ``sweep.resolve_seed_batch``); ``compile_cache``: the persistent cache
    directory in use (recorded in the summary; traced programs are kept there too, ``jaxmarl_core.programs``)."""
    import jax
    import numpy as np

    from jaxmarl_core import outputs, programs, sweep

    t_wall = time.perf_counter()
    trainer = algo.make_train(env, config)
    num_updates = trainer.num_updates
    ckpt_every = spec.checkpoint_every
    log_every = spec.log_every or max(1, -(-num_updates // 1000))

    n = spec.seeds
    n_pad = sweep.padded_size(n)
    keys = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(spec.seed, n, spec.first_seed), n_pad))
    seed_batch = sweep.resolve_seed_batch(trainer, seed_batch)
    per_seed = sweep.one_seed_per_call(seed_batch)  # chunks of one seed, called per seed, its state on the device
    run_keys = sweep.split_seeds(keys) if per_seed else keys
    init_per_seed = per_seed and trainer.init_per_seed  # the initialisation of one seed, called per seed
    init_fn = trainer.init_state if init_per_seed else sweep.map_seeds(trainer.init_state, seed_batch)
    options = sweep.compiler_options(trainer.xla)
    traced = f"{spec.algo} on {env!r} with {config!r}, seed_batch={seed_batch}, init_per_seed={init_per_seed}"
    sources: dict[str, str] = {}  # program -> where its trace came from (``programs.Program.source``)
    chunk_fns: dict[int, object] = {}
    compile_time = 0.0
    compile_cpu = 0.0  # process CPU seconds (all threads) of the same intervals
    progress = _Progress(f"{spec.algo} on {spec.env} x{n} seeds", num_updates, quiet)

    def compiled_chunk(length, announce=True, lowered_hook=None):
        nonlocal compile_time, compile_cpu
        if length not in chunk_fns:
            t0 = progress.compiling(f"chunks of {length} updates") if announce else time.perf_counter()
            c0 = time.process_time()

            def chunk(sk, start):
                return trainer.run(*sk, start, length)

            fn = chunk if per_seed else sweep.map_seeds(chunk, seed_batch)
            seeded = (state_shapes, keys)
            if per_seed:  # one seed's shapes (``state_shapes`` are already those with ``init_per_seed``)
                def one_seed(tree, cut):
                    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[cut:], x.dtype), tree)

                seeded = (one_seed(state_shapes, 0 if init_per_seed else 1), one_seed(keys, 1))
            lowered = programs.lower(fn, (seeded, np.int32(0)), f"chunk of {length} updates of {traced}",
                                     compile_cache, options)
            sources[f"chunk of {length}"] = lowered.source
            if lowered_hook is not None:
                lowered_hook()
            chunk_fns[length] = sweep.per_seed_calls(lowered.compile()) if per_seed else lowered.compile()
            if announce:
                compile_time += time.perf_counter() - t0
                compile_cpu += time.process_time() - c0
                progress.compiled(t0)
        return chunk_fns[length]

    ckpts = None
    start = 0
    if resume:
        ckpts = _checkpoints(os.path.join(out, "checkpoints"))
        step = ckpts.latest_step()
        if step is None:
            ckpts.close()
            raise UsageError(f"--resume: no checkpoint in {os.path.join(out, 'checkpoints')}")
        start = step
    first = _first_chunk(num_updates - start, ckpt_every)

    with _gc_paused():  # tracing: no cycles to collect
        since = progress.compiling("initialisation and training step")
        since_cpu = time.process_time()
        init_lowered = programs.lower(init_fn, (run_keys[0] if init_per_seed else keys,), f"initialisation of {traced}",
                                      compile_cache, options)
        sources["initialisation"] = init_lowered.source
        state_shapes = init_lowered.out_info  # the first chunk is lowered before the state exists
        if not init_per_seed:
            state_shapes = sweep.seed_shapes(state_shapes)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            init_compiled = pool.submit(init_lowered.compile)  # XLA compiles it while the first chunk is traced

            def open_checkpoints():  # orbax's import, once the chunk is lowered, beside XLA's compile (no GIL)
                nonlocal ckpts
                if ckpts is None:
                    ckpts = pool.submit(_checkpoints, os.path.join(out, "checkpoints"))

            if start < num_updates:
                compiled_chunk(min(first, num_updates - start), announce=False, lowered_hook=open_checkpoints)
            open_checkpoints()
            init_compiled = init_compiled.result()
            ckpts = ckpts if resume else ckpts.result()
    compile_time += time.perf_counter() - since
    compile_cpu += time.process_time() - since_cpu
    metrics_host: list[dict] = []
    if resume:  # the checkpoint's state, read into arrays shaped as the initialisation's output (not computed)
        stacked = state_shapes if not init_per_seed else jax.tree.map(
            lambda x: jax.ShapeDtypeStruct((len(keys),) + x.shape, x.dtype), state_shapes)
        # the metrics of one update: {name: [S_pad, 1, ...]}
        one = jax.eval_shape(jax.vmap(lambda s, k: trainer.run(s, k, 0, 1)[1]), stacked, keys)
        like = {"state": jax.tree.map(lambda x: np.zeros((n,) + x.shape[1:], x.dtype), stacked),
                "metrics": jax.tree.map(lambda x: np.zeros((n, start) + x.shape[2:], x.dtype), one)}
        restored = ckpts.restore(start, like)
        state = sweep.shard_seeds(sweep.pad_seeds(restored["state"], n_pad))
        metrics_host.append(restored["metrics"])
        if per_seed:
            state = sweep.split_seeds(state)
    elif init_per_seed:  # one state per seed, as the chunks take them
        state = [init_compiled(k) for k in run_keys]
    else:
        state = init_compiled(keys)  # one program over the seeds (compiled per seed, a GRU's initial weights move)
        if per_seed:
            state = sweep.split_seeds(state)

    def snapshot(step):
        merged = _concat(metrics_host)
        stacked = sweep.stack_seeds(state) if per_seed else state
        ckpts.save(step, {"state": jax.tree.map(lambda x: x[:n], stacked), "metrics": merged})

    def train_chunk(fn, state, t):
        """One chunk from update ``t`` -> (state, metrics [S_pad, length, ...])."""
        if not per_seed:
            return fn((state, run_keys), np.int32(t))
        outs = fn(list(zip(state, run_keys)), np.int32(t))
        return [s for s, _ in outs], sweep.stack_seeds([m for _, m in outs])

    later = None  # chosen from the first chunk's time
    progress.compiled(since)
    progress.begin(start)
    t_run = 0.0
    t = start
    try:
        while t < num_updates:
            length = _chunk_length(t, num_updates, first, later)
            fn = compiled_chunk(length)
            t0 = time.perf_counter()
            new_state, m = train_chunk(fn, state, t)
            m = jax.tree.map(lambda x: np.asarray(x[:n]), jax.device_get(m))  # waits: a Ctrl-C meanwhile is raised here
            seconds = time.perf_counter() - t0
            t_run += seconds
            # one statement, with no call inside: a Ctrl-C comes before or after it, so the handler's snapshot has
            # the state, update count and metrics of one moment
            state, t, metrics_host = new_state, t + length, [*metrics_host, m]
            if later is None:
                later = _later_chunk(length, seconds, num_updates - t, ckpt_every)
            if ckpt_every > 0 and t % ckpt_every == 0 and t < num_updates:
                snapshot(t)
            progress(t)
    except KeyboardInterrupt:
        if t > start and t not in ckpts.steps():  # not saved already by --checkpoint-every (orbax will not overwrite)
            snapshot(t)
        ckpts.close()
        sys.stderr.write(f"\ninterrupted after update {t}; continue with: python train.py --resume --out {out}\n")
        raise SystemExit(130) from None
    if t > start:
        snapshot(num_updates)
    ckpts.close()

    metrics = _concat(metrics_host)  # {name: [S, U, ...]}
    logged = np.arange(log_every - 1, num_updates, log_every)
    if logged.size == 0 or logged[-1] != num_updates - 1:
        logged = np.append(logged, num_updates - 1)
    seeds = spec.first_seed + np.arange(n)
    outputs.atomic_write(os.path.join(out, "metrics.csv"),
                         outputs.metrics_csv({k: v[:, logged] for k, v in metrics.items()}, logged + 1, seeds,
                                             env.groups))
    total_updates = n * (num_updates - start)
    summary = {
        "algo": spec.algo, "env": spec.env, "seeds": n, "first_seed": spec.first_seed, "num_updates": num_updates,
        "resumed_from_update": start if resume else None,
        "final": outputs.summarize({k: v[:, -1] for k, v in metrics.items()}, env.groups),
        "wall_time_s": time.perf_counter() - t_wall,
        "compile_time_s": compile_time,
        "compile_cpu_s": compile_cpu,
        "run_time_s": t_run,
        "updates_per_second": (num_updates - start) / t_run if t_run > 0 else None,
        "seed_updates_per_second": total_updates / t_run if t_run > 0 else None,
        "env_steps_per_second": (total_updates * trainer.env_steps_per_update / t_run
                                 if t_run > 0 and trainer.env_steps_per_update else None),
        "devices": [str(d) for d in jax.devices()],
        "seed_batch": seed_batch,
        "compile_cache": compile_cache,
        "programs": sources,
    }
    outputs.atomic_write_json(os.path.join(out, "summary.json"), summary)
    if plot:
        outputs.plot_curves({k: v[:, logged] for k, v in metrics.items()}, logged + 1,
                            os.path.join(out, "curves.png"), title=f"{spec.algo} on {spec.env} ({n} seeds)",
                            groups=env.groups)
    return summary


def _checkpoints(directory: str):
    """The run's ``Checkpoints`` (orbax is imported here, not before: its import takes a noticeable part of a
    short run's start)."""
    from jaxmarl_core.checkpoint import Checkpoints

    return Checkpoints(directory)


def _concat(chunks: list[dict]) -> dict:
    import numpy as np

    if not chunks:
        return {}
    return {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}


def main(argv=None) -> int:
    try:
        with _gc_paused():
            spec, args, set_texts = _resolve(argv)
            algo, env, config = _build(spec, set_texts)
        spec = dataclasses.replace(spec, config=dataclasses.asdict(config))
        out = args.out or os.path.join("runs", f"{spec.algo}-{spec.env}-{time.strftime('%Y%m%d-%H%M%S')}")
        _check_out(out)
        ckpt_dir = os.path.join(out, "checkpoints")
        if not args.resume and os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
            raise UsageError(f"--out {out} holds checkpoints of an earlier run: add --resume to continue it, "
                             "or choose another --out")
    except UsageError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    from jaxmarl_core import compile_cache, outputs

    cache = compile_cache.enable(args.compile_cache)
    if not args.resume:
        outputs.atomic_write_json(os.path.join(out, "config.json"), {"run": dataclasses.asdict(spec)})
    try:
        summary = run(spec, out, config, algo, env, args.resume, args.plot, args.quiet, args.seed_batch, cache)
    except UsageError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    if not args.quiet:
        ranked = sorted(summary["final"].items(), key=lambda kv: "reward" not in kv[0])  # rewards first
        finals = ", ".join(f"{k} {v['mean']:.4g}" for k, v in ranked[:6])
        print(f"{spec.algo} on {spec.env}, {spec.seeds} seeds, {summary['num_updates']} updates: {finals}")
        print(f"compile {summary['compile_time_s']:.1f}s, run {summary['run_time_s']:.2f}s; outputs in {out}")
    return 0


def _exit(code: int) -> None:
    """End the process with ``code`` once what it wrote is out: the outputs are on disk (written atomically, the
    checkpoints closed) and JAX has no computation pending, so the interpreter's teardown of XLA's client and of
    the imported modules is skipped (its cost: ``benchmarks/RESULTS.md``, "Start-up: compile time")."""
    if "jax" in sys.modules:
        sys.modules["jax"].effects_barrier()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written to it
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
