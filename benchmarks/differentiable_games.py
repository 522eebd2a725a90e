"""Game-gradient methods on the AgA paper's differentiable games (Li et al., 2024): the toy game's rate of reaching
social welfare 2 and trajectories, the two-player public goods table, and the speed of many games in one jit.

    python benchmarks/differentiable_games.py --out results.json --plot results.png   # all three, full size
    python benchmarks/differentiable_games.py --quick --json                           # smoke sizes

- toy (``game_aga_toy``): every method from ``--inits`` initialisations U[-3, 3]^2 (vmapped, one jit per method),
  the fraction ending at social welfare >= 1.99 (of at most 2), and the trajectories from three fixed starts.
- public goods (``public_goods``): ``--runs`` runs of every method from U[-1, 1]^2 logits, 100 updates: final
  rewards r1, r2, social welfare r1 + r2 and equality E = 1 - Gini = 1 - |r1 - r2| / (2 (r1 + r2)), mean and 95%
  interval over runs.
- speed: ``--instances`` toy games x ``--steps`` updates of every method in one jitted call (final state only),
  compile time apart, the median of ``--repeats`` timed runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

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
from jaxmarl_core import outputs  # noqa: E402

TOY_STARTS = ((1.0, -1.0), (-2.0, 0.5), (0.5, 2.0))  # our choice: the paper's starting points were not retrieved
WELFARE_REACHED = 1.99


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


def public_goods(methods, runs: int) -> dict:
    env = envs.make("public_goods")
    rows = []
    for method in methods:
        res = train_many("simul_ind", env, {"method": method}, runs)
        r = res["metrics"]["reward_per_step"][:, -1].astype(np.float64)  # [runs, 2]
        welfare = r.sum(axis=1)
        equality = 1.0 - np.abs(r[:, 0] - r[:, 1]) / (2.0 * welfare)
        rows.append({"method": method, "runs": runs, "num_updates": res["num_updates"],
                     "r1": outputs.mean_ci95(r[:, 0]), "r2": outputs.mean_ci95(r[:, 1]),
                     "social_welfare": outputs.mean_ci95(welfare), "equality": outputs.mean_ci95(equality),
                     "final_actions_mean": res["metrics"]["action"][:, -1].mean(axis=0).tolist()})
        print(f"public goods {method:9s} r1 {rows[-1]['r1']['mean']:.3f} r2 {rows[-1]['r2']['mean']:.3f} SW "
              f"{rows[-1]['social_welfare']['mean']:.3f} E {rows[-1]['equality']['mean']:.4f}", file=sys.stderr)
    return {"rows": rows, "settings": {"init": "logits U[-1, 1]^2", "optimiser": "sgd", "lr": 1.0,
                                       "multiplier": float(env.default_params.multiplier)}}


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inits", type=int, default=1000, help="toy-game initialisations per method")
    p.add_argument("--toy-updates", type=int, default=1000, help="updates per toy-game run")
    p.add_argument("--runs", type=int, default=50, help="public goods runs per method")
    p.add_argument("--instances", type=int, default=10_000, help="games in the speed runs")
    p.add_argument("--steps", type=int, default=1000, help="updates in the speed runs")
    p.add_argument("--repeats", type=int, default=3, help="timed speed runs per method (median)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--out", default=None, help="where the JSON document goes")
    p.add_argument("--plot", default=None, help="where the toy game's trajectory plot (PNG) goes")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    args = p.parse_args(argv)
    if min(args.inits, args.toy_updates, args.runs, args.instances, args.steps, args.repeats) <= 0:
        p.error("--inits, --toy-updates, --runs, --instances, --steps and --repeats must be positive")
    methods = args.methods.split(",")
    if not set(methods) <= set(METHODS):
        p.error(f"--methods: choose from {', '.join(METHODS)}")
    if args.quick:
        args.inits, args.toy_updates, args.runs, args.instances, args.steps, args.repeats = 8, 20, 4, 16, 10, 1
    toy_doc = toy(methods, args.inits, args.toy_updates)
    doc = {"benchmark": "differentiable_games", **machine_info(),
           "toy": {k: v for k, v in toy_doc.items() if k != "paths"}, "public_goods": public_goods(methods, args.runs),
           "speed": speed(methods, args.instances, args.steps, args.repeats)}
    if args.plot:
        plot(toy_doc, args.plot)
    emit(doc, args.out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
