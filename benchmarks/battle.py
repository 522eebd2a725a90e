"""Battle throughput: agent-steps per second of ``envs.battle`` beside magent2's C++ engine, in the same run.

Ours: ``benchmarks.envs.make_rollout`` (the environment benchmark's rollout): reset a batch of games, then
``--steps`` steps under ``lax.scan`` with uniform random legal actions (``avail_actions``: every action for the
living, staying put for the dead) and the automatic reset, observations computed at every step and carried through
the scan; compiled ahead of time (compile time reported apart). Configurations: vmapped 64 v 64 battles on the
40 x 40 map at several batch sizes, and single battles of 1,024 v 1,024 (160 x 160) and 5,184 v 5,184 (360 x 360),
magent2's maps for those team sizes (its ``generate_map`` puts (0.2 map_size)^2 agents a side).

magent2: one game (it has no batched API) with the same map and blocks (``benchmarks.magent2_battle``), a Python
loop of: uniform random actions (``numpy`` ``integers(0, 21)`` per living agent), ``set_action`` per team,
``step``, ``get_reward``, ``clear_dead``, and both teams' observations (``get_observation``) fetched every step; a
fresh game when one ends. Each of its timed runs plays ``batch * steps`` steps, the agent-steps of one of ours.

    agent-steps/s = batch * 2n * steps / median wall time  (agent slots, living or not, as for magent2's 2n at start)

The two sides' timed runs alternate (ours, magent2, ours, ...), so a load shared with other processes falls on both.

    python benchmarks/battle.py --json --out benchmarks/results/cpu/battle.json
    python benchmarks/battle.py --quick --batch-sizes 2 --no-large --small 12,1
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
import numpy as np  # noqa: E402

import envs  # noqa: E402
from benchmarks.common import RolloutSizes, dump, int_list, machine_info  # noqa: E402
from benchmarks.envs import make_rollout  # noqa: E402
from benchmarks.magent2_battle import Magent2Battle, magent2_available  # noqa: E402
from envs.battle import NUM_ACTIONS, block_positions  # noqa: E402

SMALL = (40, 64)  # (map_size, n_per_side): the mean-field paper's battle
LARGE = ((160, 1024), (360, 5184))
SIZES = RolloutSizes(steps=100, repeats=5, quick_steps=5, quick_repeats=2, batch_sizes=(1, 8, 32, 128, 512))


def ours(map_size: int, n_per_side: int, batch_size: int, steps: int, seed: int):
    """-> (compile_s, run()): ``run()`` plays ``steps`` steps of ``batch_size`` games and blocks until done."""
    env = envs.make("battle", map_size=map_size, n_per_side=n_per_side)
    args = (jax.random.PRNGKey(seed), env.default_params)
    start = time.perf_counter()
    compiled = jax.jit(make_rollout(env, batch_size, steps)).lower(*args).compile()
    compile_s = time.perf_counter() - start
    return compile_s, lambda: jax.block_until_ready(compiled(*args))


def magent2(map_size: int, n_per_side: int, steps: int, seed: int):
    """-> run(): ``steps`` steps of one magent2 game (a fresh game after one ends)."""
    positions = block_positions(map_size, n_per_side)
    rng = np.random.default_rng(seed)
    game = [Magent2Battle(map_size, positions, seed)]

    def run():
        total = 0.0
        for _ in range(steps):
            g = game[0]
            for handle in g.handles:
                g.env.get_observation(handle)
            actions = rng.integers(0, NUM_ACTIONS, 2 * n_per_side).astype(np.int32)
            reward, _, done = g.step(actions)
            total += float(reward.sum())
            if done:
                game[0] = Magent2Battle(map_size, positions, seed)
        return total

    return run


def measure(map_size: int, n_per_side: int, batch_size: int, steps: int, repeats: int, seed: int,
            with_magent2: bool) -> dict:
    """One configuration: both sides' runs alternating after a warm-up of each -> a result row."""
    compile_s, run_ours = ours(map_size, n_per_side, batch_size, steps, seed)
    run_ref = magent2(map_size, n_per_side, batch_size * steps, seed) if with_magent2 else None
    run_ours()
    if run_ref:
        run_ref()
    times_ours, times_ref = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        run_ours()
        times_ours.append(time.perf_counter() - start)
        if run_ref:
            start = time.perf_counter()
            run_ref()
            times_ref.append(time.perf_counter() - start)
    agents = 2 * n_per_side
    row = {"map_size": map_size, "n_per_side": n_per_side, "batch_size": batch_size, "steps": steps,
           "compile_s": compile_s, "runs_s": times_ours, "median_s": statistics.median(times_ours),
           "agent_steps_per_s": batch_size * agents * steps / statistics.median(times_ours)}
    if run_ref:
        ref = agents * batch_size * steps / statistics.median(times_ref)
        row["magent2"] = {"runs_s": times_ref, "median_s": statistics.median(times_ref), "agent_steps_per_s": ref}
        row["ratio"] = row["agent_steps_per_s"] / ref
    return row


def format_table(doc: dict) -> str:
    lines = [f"backend {doc['backend']} ({doc['device']}), {doc['cpu_count']} CPUs, {doc['settings']['steps']} steps, "
             f"median of {doc['settings']['repeats']} alternating runs; magent2: {doc['magent2']}", ""]
    header = f"{'map':>5} {'n/side':>7} {'batch':>6} {'compile s':>9} {'ours agent-steps/s':>19} " \
             f"{'magent2 agent-steps/s':>22} {'ratio':>7}"
    lines += [header, "-" * len(header)]
    for r in doc["results"]:
        ref = r.get("magent2", {}).get("agent_steps_per_s")
        lines.append(f"{r['map_size']:>5} {r['n_per_side']:>7} {r['batch_size']:>6} {r['compile_s']:>9.2f} "
                     f"{r['agent_steps_per_s']:>19.4g} {'n/a' if ref is None else format(ref, '.4g'):>22} "
                     f"{r.get('ratio', float('nan')):>7.2f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = SIZES.parser(__doc__)
    parser.add_argument("--small", type=int_list, default=list(SMALL),
                        help="MAP_SIZE,N_PER_SIDE of the vmapped battles (default: 40,64)")
    parser.add_argument("--no-large", action="store_true", help="skip the 1,024 and 5,184 a side battles")
    parser.add_argument("--no-magent2", action="store_true", help="skip magent2 even when installed")
    args = SIZES.parse(parser, argv)
    if len(args.small) != 2:
        parser.error(f"--small takes MAP_SIZE,N_PER_SIDE, got {args.small}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with_magent2 = magent2_available() and not args.no_magent2
    configs = [(*args.small, b) for b in args.batch_sizes] + ([] if args.no_large else [(*c, 1) for c in LARGE])
    start = time.perf_counter()
    results = []
    for map_size, n, batch in configs:
        row = measure(map_size, n, batch, args.steps, args.repeats, args.seed, with_magent2)
        results.append(row)
        print(f"[bench] battle {n} v {n} batch {batch}: {row['agent_steps_per_s']:.4g} agent-steps/s"
              f" (magent2 {row.get('magent2', {}).get('agent_steps_per_s', 'n/a')})", file=sys.stderr, flush=True)
    if with_magent2:
        from importlib.metadata import version
        ref = f"magent2 {version('magent2')}"
    else:
        ref = "skipped (--no-magent2)" if args.no_magent2 else "not installed"
    doc = {"benchmark": "battle", **machine_info(),
           "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "settings": {"small": args.small, "batch_sizes": args.batch_sizes, "steps": args.steps,
                        "repeats": args.repeats, "quick": args.quick, "large": not args.no_large, "seed": args.seed},
           "magent2": ref, "results": results, "total_wall_s": time.perf_counter() - start}
    text = dump(doc, args.out)
    print(text if args.json else format_table(doc), end="" if args.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
