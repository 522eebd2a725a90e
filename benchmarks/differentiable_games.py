"""Game-gradient methods on the AgA paper's differentiable games (Li et al., 2024): the toy game's rate of reaching
social welfare 2 and trajectories, the two-player public goods table, and the speed of many games in one jit.

    python benchmarks/differentiable_games.py --out results.json --plot results.png --scatter pg.png   # full size
    python benchmarks/differentiable_games.py --quick --json                           # smoke sizes

- toy (``game_aga_toy``): every method from ``--inits`` initialisations U[-3, 3]^2 (vmapped, one jit per method),
  the fraction ending at social welfare >= 1.99 (of at most 2), and the trajectories from three fixed starts.
- public goods (``public_goods``): ``--runs`` runs of every method from U[-1, 1]^2 logits, 100 updates: final
  rewards r1, r2, social welfare SW = r1 + r2 and equality E = 1 - Gini (``jaxmarl_core.social.equality``),

      Gini = sum_i sum_j |r_i - r_j| / (2 n sum_i r_i),   for n = 2:  E = 1 - |r1 - r2| / (2 (r1 + r2)),

  mean and 95% interval over runs; every run's final actions (the paper's appendix scatter, ``--scatter``), and the
  steps each run takes to converge: the first update t after which no player's action (contributed share) moves by
  more than ``CONVERGED`` (1e-3) in one update, up to the last of the 100 (runs still moving count 100).
- efficiency (the paper's computational-efficiency table): per method, Duration = the median wall time of one jitted
  call running ``--efficiency-games`` public goods games (vmapped, U[-1, 1] logits) for the table's 100 updates
  (one game's update takes well under a microsecond here, too little to time apart from the call's fixed cost and
  the machine's noise), Step Time = Duration / 100 (one update of all those games), Steps = the median steps to
  converge above, and each Step Time over Simul-Ind's; all methods compiled first, then timed in
  ``--efficiency-repeats`` rounds that alternate the methods (so a load from other processes falls on all of them),
  the 1-minute load average recorded.
- speed: ``--instances`` toy games x ``--steps`` updates of every method in one jitted call (final state only),
  compile time apart, the median of ``--repeats`` timed runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from algos.game_gradient_play import METHODS, initial_state  # noqa: E402
from benchmarks.common import emit, machine_info, time_compiled, train_many  # noqa: E402
from jaxmarl_core import outputs, social, sweep  # noqa: E402

TOY_STARTS = ((1.0, -1.0), (-2.0, 0.5), (0.5, 2.0))  # our choice: the paper's starting points were not retrieved
WELFARE_REACHED = 1.99
PARTS = ("toy", "public_goods", "efficiency", "speed")
CONVERGED = 1e-3  # an update moving no player's contributed share by more than this counts as converged


def config_for(env, method: str, **changes):
    algo = algos.get("simul_ind")
    config = dataclasses.replace(algo.default_config(env), method=method, **changes)
    config.validate(env)
    return algo, config


def toy(methods, inits: int, num_updates: int) -> dict:
    env = envs.make("game_aga_toy")
    rows, paths = [], {}
    for method in methods:
        res = train_many("simul_ind", env, {"method": method, "num_updates": num_updates}, inits)
        welfare = res["metrics"]["social_welfare"][:, -1]  # [inits]
        finite = np.isfinite(welfare)
        rows.append({"method": method, "inits": inits, "num_updates": num_updates,
                     "reached_welfare_2": float(np.mean(finite & (welfare >= WELFARE_REACHED))),
                     "diverged": float(np.mean(~finite)),
                     "final_welfare": outputs.mean_ci95(welfare[finite]) if finite.any() else None,
                     "compile_s": res["compile_s"], "run_s": res["median_s"]})
        algo, config = config_for(env, method, num_updates=num_updates)
        trainer = algo.make_train(env, config)
        key = jax.random.PRNGKey(0)
        run = jax.jit(lambda s, trainer=trainer, key=key: trainer.run(s, key, 0, num_updates)[1])
        paths[method] = [np.concatenate([[start], np.asarray(run(initial_state(env, config, start))["action"])])
                         for start in TOY_STARTS]
        print(f"toy {method:9s} reached welfare 2 in {rows[-1]['reached_welfare_2']:.3f} of {inits}, diverged "
              f"{rows[-1]['diverged']:.3f}", file=sys.stderr)
    trajectories = [{"method": m, "start": list(s), "end": p[-1].tolist(),
                     "end_welfare": float(np.sum(env.exact_value(p[-1].reshape(2, 1))))}
                    for m, ps in paths.items() for s, p in zip(TOY_STARTS, ps)]
    return {"rows": rows, "trajectories": trajectories, "paths": paths,
            "settings": {"init": "U[-3, 3]^2", "optimiser": "adam", "lr": 0.01, "reached": WELFARE_REACHED}}


def steps_to_converge(actions: np.ndarray) -> np.ndarray:
    """actions [runs, U, N] after each update -> [runs]: the first update t (1..U) after which every later update
    moves every action by at most ``CONVERGED``; U where the last update still moves one more."""
    moves = np.abs(np.diff(actions, axis=1)).max(-1) > CONVERGED  # [runs, U - 1]: [k] is update k + 2's move
    return np.where(moves.any(1), actions.shape[1] - np.argmax(moves[:, ::-1], axis=1), 1)


def public_goods(methods, runs: int) -> dict:
    env = envs.make("public_goods")
    rows = []
    for method in methods:
        res = train_many("simul_ind", env, {"method": method}, runs)
        r = res["metrics"]["reward_per_step"][:, -1].astype(np.float64)  # [runs, 2]
        actions = np.asarray(res["metrics"]["action"], np.float64)  # [runs, U, 2]
        welfare = r.sum(axis=1)
        equality = np.asarray(social.equality(r), np.float64)
        steps = steps_to_converge(actions)
        rows.append({"method": method, "runs": runs, "num_updates": res["num_updates"],
                     "r1": outputs.mean_ci95(r[:, 0]), "r2": outputs.mean_ci95(r[:, 1]),
                     "social_welfare": outputs.mean_ci95(welfare), "equality": outputs.mean_ci95(equality),
                     "final_actions_mean": actions[:, -1].mean(axis=0).tolist(),
                     "final_actions": actions[:, -1].tolist(),
                     "steps_to_converge": {"median": float(np.median(steps)), **outputs.mean_ci95(steps),
                                           "converged": float(np.mean(steps < res["num_updates"]))}})
        print(f"public goods {method:9s} r1 {rows[-1]['r1']['mean']:.3f} r2 {rows[-1]['r2']['mean']:.3f} SW "
              f"{rows[-1]['social_welfare']['mean']:.3f} E {rows[-1]['equality']['mean']:.4f}, steps "
              f"{np.median(steps):.0f}", file=sys.stderr)
    return {"rows": rows, "settings": {"init": "logits U[-1, 1]^2", "optimiser": "sgd", "lr": 1.0,
                                       "multiplier": float(env.default_params.multiplier), "converged": CONVERGED}}


def efficiency(methods, games: int, repeats: int, pg_rows: list[dict]) -> list[dict]:
    """The public goods game's ``games`` games x 100 updates of each method in one jitted call (final parameters
    only): every method compiled, then ``repeats`` rounds timing each once in turn -> rows with Duration, Steps
    (from ``pg_rows``), Step Time and the ratio to Simul-Ind's Step Time."""
    env = envs.make("public_goods")
    keys = jax.random.split(jax.random.PRNGKey(0), games)
    compiled, compile_s = {}, {}
    for method in methods:
        algo, config = config_for(env, method)
        trainer = algo.make_train(env, config)
        updates = config.num_updates

        def final(keys, trainer=trainer, steps=updates):
            return jax.vmap(lambda key: trainer.run(trainer.init_state(key), key, 0, steps)[0].theta)(keys)

        start = time.perf_counter()
        compiled[method] = sweep.jit(final, trainer.xla).lower(keys).compile()
        compile_s[method] = time.perf_counter() - start
        jax.block_until_ready(compiled[method](keys))  # warm-up
    load = [os.getloadavg()[0]]
    times = {m: [] for m in methods}
    for _ in range(repeats):
        for method in methods:
            start = time.perf_counter()
            jax.block_until_ready(compiled[method](keys))
            times[method].append(time.perf_counter() - start)
    load.append(os.getloadavg()[0])
    steps = {row["method"]: row["steps_to_converge"]["median"] for row in pg_rows}
    rows = []
    for method in methods:
        duration = float(np.median(times[method]))
        rows.append({"method": method, "games": games, "updates": updates, "compile_s": compile_s[method],
                     "runs_s": times[method], "duration_s": duration, "steps": steps[method],
                     "step_time_s": duration / updates, "load_avg_1min": load})
    base = next((r["step_time_s"] for r in rows if r["method"] == "simul_ind"), None)
    for row in rows:
        row["step_time_ratio"] = row["step_time_s"] / base if base else None
        print(f"efficiency {row['method']:9s} duration {1e3 * row['duration_s']:.2f} ms, steps {row['steps']}, "
              f"step time {1e6 * row['step_time_s']:.0f} us" + (f" ({row['step_time_ratio']:.2f}x)" if base else ""),
              file=sys.stderr)
    return rows


def speed(methods, instances: int, steps: int, repeats: int) -> list[dict]:
    """Final parameters of ``instances`` toy games after ``steps`` updates of each method, one jit per method."""
    env = envs.make("game_aga_toy")
    rows = []
    for method in methods:
        algo, config = config_for(env, method, num_updates=steps)
        trainer = algo.make_train(env, config)

        def final(keys, trainer=trainer):
            def one(key):
                return trainer.run(trainer.init_state(key), key, 0, steps)[0].theta  # metrics unused: not computed

            return jax.vmap(one)(keys)

        keys = jax.random.split(jax.random.PRNGKey(0), instances)
        compile_s, runs, _ = time_compiled(final, (keys,), repeats)
        median = float(np.median(runs))
        rows.append({"method": method, "instances": instances, "steps": steps, "compile_s": compile_s,
                     "runs_s": runs, "median_s": median, "us_per_step": 1e6 * median / steps,
                     "game_steps_per_s": instances * steps / median})
        print(f"speed {method:9s} {instances} x {steps}: {median:.2f} s ({rows[-1]['us_per_step']:.0f} us per "
              f"step of all games), compile {compile_s:.1f} s", file=sys.stderr)
    return rows


def plot(toy_doc: dict, path: str) -> None:
    plt = outputs.pyplot()
    env = envs.make("game_aga_toy")
    grid = np.linspace(-3, 3, 121)
    x, y = np.meshgrid(grid, grid)
    welfare = np.asarray(jax.vmap(lambda a, b: env.exact_value(jnp.stack([a, b])[:, None]).sum())(x.ravel(), y.ravel()))
    fig, axes = plt.subplots(1, len(TOY_STARTS), figsize=(5.5 * len(TOY_STARTS), 5))
    for k, ax in enumerate(np.atleast_1d(axes)):
        ax.contourf(x, y, welfare.reshape(x.shape), levels=20, cmap="Greys_r")
        for method, ps in toy_doc["paths"].items():
            ax.plot(ps[k][:, 0], ps[k][:, 1], lw=1.2, label=method)
        ax.plot(*TOY_STARTS[k], "k*", ms=10)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_xlabel("a1")
        ax.set_ylabel("a2")
        ax.set_title(f"from {TOY_STARTS[k]}; shade: social welfare (light = high)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=110)


def plot_public_goods(pg_doc: dict, path: str) -> None:
    """The paper's appendix scatter: every run's final actions (a1, a2) coloured by method, an X at each method's
    mean; left the whole square, then each corner's runs magnified (the runs' spread is far below the square's)."""
    plt = outputs.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    rows = pg_doc["rows"]
    every = np.concatenate([np.asarray(r["final_actions"]) for r in rows])
    low = every.sum(1) < 1  # the runs near (0, 0) and those near (1, 1)
    views = [("all runs", (-0.05, 1.05), (-0.05, 1.05))]
    for name, part in (("near (0, 0)", every[low]), ("near (1, 1)", every[~low])):
        if len(part):
            pad = 0.1 * max(float(np.ptp(part)), 1e-4)
            views.append((name, (part[:, 0].min() - pad, part[:, 0].max() + pad),
                          (part[:, 1].min() - pad, part[:, 1].max() + pad)))
    for ax, (name, xlim, ylim) in zip(axes, views):
        for k, row in enumerate(rows):
            a, mean = np.asarray(row["final_actions"]), np.asarray(row["final_actions_mean"])
            ax.scatter(*a.T, s=14, alpha=0.5, color=f"C{k % 10}", label=row["method"])
            ax.scatter(*mean, marker="X", s=150, color=f"C{k % 10}", edgecolors="k")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel("player 1's contributed share a1")
        ax.set_ylabel("player 2's contributed share a2")
        ax.set_title(name, fontsize=9)
    for ax in axes[len(views):]:
        ax.axis("off")
    axes[0].legend(fontsize=7, loc="center right")
    fig.suptitle(f"public goods game: {rows[0]['runs']} runs per method, final actions after {rows[0]['num_updates']} "
                 "updates (X: each method's mean)", fontsize=10)
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inits", type=int, default=1000, help="toy-game initialisations per method")
    p.add_argument("--toy-updates", type=int, default=1000, help="updates per toy-game run")
    p.add_argument("--runs", type=int, default=50, help="public goods runs per method")
    p.add_argument("--instances", type=int, default=10_000, help="games in the speed runs")
    p.add_argument("--steps", type=int, default=1000, help="updates in the speed runs")
    p.add_argument("--repeats", type=int, default=3, help="timed speed runs per method (median)")
    p.add_argument("--efficiency-games", type=int, default=10_000,
                   help="public goods games in each timed efficiency call")
    p.add_argument("--efficiency-repeats", type=int, default=21,
                   help="alternating rounds timing the public goods runs of every method (median)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--out", default=None, help="where the JSON document goes")
    p.add_argument("--plot", default=None, help="where the toy game's trajectory plot (PNG) goes")
    p.add_argument("--scatter", default=None, help="where the public goods game's action scatter (PNG) goes")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    args = p.parse_args(argv)
    if min(args.inits, args.toy_updates, args.runs, args.instances, args.steps, args.repeats,
           args.efficiency_games, args.efficiency_repeats) <= 0:
        p.error("--inits, --toy-updates, --runs, --instances, --steps, --repeats and --efficiency-* must be positive")
    methods, parts = args.methods.split(","), args.parts.split(",")
    if not set(methods) <= set(METHODS):
        p.error(f"--methods: choose from {', '.join(METHODS)}")
    if not set(parts) <= set(PARTS) or ("efficiency" in parts and "public_goods" not in parts):
        p.error(f"--parts: choose from {', '.join(PARTS)} (efficiency takes its Steps from public_goods)")
    if args.quick:
        args.inits, args.toy_updates, args.runs, args.instances, args.steps, args.repeats = 8, 20, 4, 16, 10, 1
        args.efficiency_games, args.efficiency_repeats = 4, 2
    doc = {"benchmark": "differentiable_games", **machine_info()}
    if "toy" in parts:
        toy_doc = toy(methods, args.inits, args.toy_updates)
        doc["toy"] = {k: v for k, v in toy_doc.items() if k != "paths"}
        if args.plot:
            plot(toy_doc, args.plot)
    if "public_goods" in parts:
        doc["public_goods"] = public_goods(methods, args.runs)
        if args.scatter:
            plot_public_goods(doc["public_goods"], args.scatter)
    if "efficiency" in parts:
        doc["efficiency"] = efficiency(methods, args.efficiency_games, args.efficiency_repeats,
                                       doc["public_goods"]["rows"])
    if "speed" in parts:
        doc["speed"] = speed(methods, args.instances, args.steps, args.repeats)
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
