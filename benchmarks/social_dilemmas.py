"""Cleanup and Harvest throughput: environment steps per second of ``envs.social_dilemmas`` at a batch of vmapped
games, beside SocialJax's implementation of the same games (``Clean_up``, ``Harvest_open``) in the same run where
``socialjax`` is importable.

Both sides: reset ``batch`` games (7 agents), then ``--steps`` steps under ``lax.scan`` with uniform random actions
(9 in Cleanup, 8 in Harvest), the observations ([7, 11, 11, C]) computed every step and carried through the scan,
episodes restarting at their horizon (1000 steps); compiled ahead of time, compile time reported apart. Ours is the
environment benchmark's rollout (``benchmarks.envs.make_rollout``); SocialJax's calls its ``step_env`` (which
resets inside at the horizon) with individual rewards. The two sides' timed runs alternate after a warm-up of each,
so a load shared with other processes falls on both.

    env-steps/s = batch * steps / median wall time (one env-step moves all 7 agents of one game)

``--frames DIR`` also writes one rendered frame of each game measured (after ``--frame-step`` random steps) as a PNG.

    python benchmarks/social_dilemmas.py --json --out benchmarks/results/cpu/social_dilemmas.json \
        --frames benchmarks/results/cpu
    python benchmarks/social_dilemmas.py --quick --batch-sizes 2
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import envs  # noqa: E402
from benchmarks.common import emit, machine_info  # noqa: E402
from benchmarks.envs import _int_list, make_rollout  # noqa: E402
from envs.social_dilemmas import record_episode, save_frames  # noqa: E402

GAMES = ("cleanup", "harvest")
DEFAULT_BATCH_SIZES = (1024,)
DEFAULT_STEPS, DEFAULT_REPEATS = 100, 5
QUICK_STEPS, QUICK_REPEATS = 5, 2


def socialjax_available() -> bool:
    try:
        import socialjax  # noqa: F401
    except ImportError:
        return False
    return True


def socialjax_env(game: str, num_agents: int):
    """SocialJax's environment of ``game`` with individual rewards."""
    if game == "cleanup":
        from socialjax.environments.cleanup.clean_up import Clean_up
        return Clean_up(num_agents=num_agents, shared_rewards=False)
    from socialjax.environments.common_harvest.harvest_open import Harvest_open
    return Harvest_open(num_agents=num_agents, shared_rewards=False)


def make_socialjax_rollout(env, num_actions: int, batch_size: int, steps: int):
    """``f(key) -> (obs, state, reward_sum)``: the same random rollout through SocialJax's ``reset``/``step_env``."""
    n = env.num_agents

    def one_step(key, state):
        k_act, k_env = jax.random.split(key)
        actions = jax.random.randint(k_act, (n,), 0, num_actions)
        obs, state, reward, _, _ = env.step_env(k_env, state, actions)
        return obs, state, reward

    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, batch_size))
        reward_sum = jnp.zeros((batch_size, n), jnp.float32)

        def body(carry, k):
            _, state, reward_sum = carry
            obs, state, reward = jax.vmap(one_step)(jax.random.split(k, batch_size), state)
            return (obs, state, reward_sum + reward), None

        carry, _ = jax.lax.scan(body, (obs, state, reward_sum), jax.random.split(k_run, steps))
        return carry

    return rollout


def compile_timed(fn, args):
    """-> (compile_s, run()): ``run()`` calls the compiled ``fn(*args)`` and blocks until done."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    return compile_s, lambda: jax.block_until_ready(compiled(*args))


def measure(game: str, batch_size: int, steps: int, repeats: int, seed: int, with_ref: bool) -> dict:
    """One game at one batch size: both sides' runs alternating after a warm-up of each -> a result row."""
    env = envs.make(game)
    key = jax.random.PRNGKey(seed)
    compile_s, run_ours = compile_timed(make_rollout(env, batch_size, steps), (key, env.default_params))
    runs = {"ours": run_ours}
    compiles = {"ours": compile_s}
    if with_ref:
        ref = socialjax_env(game, env.num_agents)
        compiles["socialjax"], runs["socialjax"] = compile_timed(
            make_socialjax_rollout(ref, env.num_actions, batch_size, steps), (key,))
    for run in runs.values():
        run()
    times = {side: [] for side in runs}
    for _ in range(repeats):
        for side, run in runs.items():
            start = time.perf_counter()
            run()
            times[side].append(time.perf_counter() - start)
    row = {"game": game, "num_agents": env.num_agents, "batch_size": batch_size, "steps": steps}
    for side in runs:
        median = statistics.median(times[side])
        row[side] = {"compile_s": compiles[side], "runs_s": times[side], "median_s": median,
                     "env_steps_per_s": batch_size * steps / median}
    if with_ref:
        row["ratio"] = row["ours"]["env_steps_per_s"] / row["socialjax"]["env_steps_per_s"]
    print(f"[bench] {game} batch {batch_size}: " + ", ".join(f"{side} {row[side]['env_steps_per_s']:.4g}"
                                                             for side in runs) + " env-steps/s",
          file=sys.stderr, flush=True)
    return row


def write_frames(directory: str, games: list[str], frame_step: int, seed: int) -> list[str]:
    """One PNG per game: the frame after ``frame_step`` uniformly random steps -> the paths."""
    paths = []
    for game in games:
        env = envs.make(game)

        def policy(key, obs, env=env):
            return jax.random.randint(key, (env.num_agents,), 0, env.num_actions)

        frames = jax.jit(lambda k, env=env, policy=policy: record_episode(env, k, policy, frame_step))(
            jax.random.PRNGKey(seed))
        path = os.path.join(directory, f"{game}_frame.png")
        save_frames(frames[-1], path)
        paths.append(path)
    return paths


def format_table(doc: dict) -> str:
    """The results as a text table, one row per game and batch size."""
    columns = (("game", lambda r: r["game"]), ("batch", lambda r: r["batch_size"]),
               ("compile s", lambda r: f"{r['ours']['compile_s']:.2f}"),
               ("ours env-steps/s", lambda r: f"{r['ours']['env_steps_per_s']:.4g}"),
               ("SocialJax env-steps/s", lambda r: f"{r['socialjax']['env_steps_per_s']:.4g}" if "ratio" in r else "-"),
               ("ratio", lambda r: f"{r['ratio']:.2f}" if "ratio" in r else "-"))
    rows = [[name for name, _ in columns]] + [[str(cell(r)) for _, cell in columns] for r in doc["results"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    text = [" ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    settings = doc["settings"]
    return "\n".join([f"backend {doc['backend']} ({doc['device']}), {doc['cpu_count']} CPUs, {settings['steps']} "
                      f"steps, median of {settings['repeats']} alternating runs; SocialJax: {doc['socialjax']}", "",
                      text[0], "-" * len(text[0]), *text[1:]])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", default=",".join(GAMES), help="comma-separated (default: cleanup,harvest)")
    parser.add_argument("--batch-sizes", type=_int_list, default=list(DEFAULT_BATCH_SIZES),
                        help="numbers of vmapped games (default: 1024)")
    parser.add_argument("--steps", type=int, help=f"steps per run (default {DEFAULT_STEPS}; --quick {QUICK_STEPS})")
    parser.add_argument("--repeats", type=int, help=f"timed runs of each side (default {DEFAULT_REPEATS})")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_STEPS} steps, {QUICK_REPEATS} "
                                                             "repeats")
    parser.add_argument("--no-socialjax", action="store_true", help="skip SocialJax even when importable")
    parser.add_argument("--frames", help="write one rendered frame of each game as DIR/GAME_frame.png")
    parser.add_argument("--frame-step", type=int, default=200, help="random steps before that frame (200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of the table")
    parser.add_argument("--out", help="also write the JSON document to this file (atomically)")
    args = parser.parse_args(argv)
    args.steps = args.steps or (QUICK_STEPS if args.quick else DEFAULT_STEPS)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    args.games = [g for g in args.games.split(",") if g]
    if args.steps <= 0 or args.repeats <= 0 or args.frame_step <= 0:
        parser.error("--steps, --repeats and --frame-step must be positive")
    if any(b <= 0 for b in args.batch_sizes):
        parser.error("--batch-sizes must be positive")
    unknown = set(args.games) - set(GAMES)
    if unknown or not args.games:
        parser.error(f"--games: choose from {', '.join(GAMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with_ref = socialjax_available() and not args.no_socialjax
    start = time.perf_counter()
    results = [measure(game, batch, args.steps, args.repeats, args.seed, with_ref)
               for game in args.games for batch in args.batch_sizes]
    ref = "skipped (--no-socialjax)" if args.no_socialjax else "not installed"
    if with_ref:
        import socialjax
        ref = f"socialjax {getattr(socialjax, '__version__', 'unknown')}"
    frames = write_frames(args.frames, args.games, args.frame_step, args.seed) if args.frames else []
    doc = {"benchmark": "social_dilemmas", **machine_info(),
           "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "settings": {"games": args.games, "batch_sizes": args.batch_sizes, "steps": args.steps,
                        "repeats": args.repeats, "quick": args.quick, "seed": args.seed},
           "socialjax": ref, "results": results, "frames": [os.path.basename(p) for p in frames],
           "total_wall_s": time.perf_counter() - start}
    emit(doc, args.out, args.json)
    if not args.json:
        print(format_table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
