"""Mean-field MARL (Yang et al., 2018): the Ising order parameter of the tabular MF-Q against temperature beside
Onsager's exact magnetisation, and the Gaussian squeeze reward of MF-Q, MF-AC, IL and AC against the number of
agents, as JSON (and a PNG of each with --plot).

Ising convention: the released code's reward (half the spin times the neighbours' sum) and a Boltzmann policy at
temperature tau on exact action values sample the heat bath at beta J = 1 / (2 tau), so tau_c = 1 / ln(1 + sqrt 2)
and M(tau) = (1 - sinh(1 / tau)^-4)^(1/8) below it. The order parameter of a run is its mean |N_up - N_down| / N over
the second half of its steps; each temperature gives the mean over seeds with a 95% Student-t interval.

Gaussian squeeze: the summary's ``reward`` (the shared reward per step) over the last tenth of training, as a
fraction of r* (``GaussianSqueeze.optimum``), per method and N, mean over seeds with a 95% interval.

    python benchmarks/mean_field.py --json --out benchmarks/results/cpu/mean_field.json --plot
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from benchmarks.common import emit, machine_info, train_many  # noqa: E402
from envs.mean_field import TAU_CRITICAL, onsager_magnetisation  # noqa: E402
from jaxmarl_core.config import parse_overrides  # noqa: E402
from jaxmarl_core.outputs import mean_ci95, pyplot, save_figure  # noqa: E402

SQUEEZE_ALGOS = ("mfq", "mfac", "il", "ac")
# the squeeze's settings (overrides of each learner's default config): rewards in hundreds, so the temperature is too
SQUEEZE_SETS = {"reward_scale": 0.01, "temperature": 0.001, "temperature_start": 0.05,
                "temperature_decay_steps": 10_000, "lr": 1e-3}


def ising(taus, size, steps, seeds, mean_action) -> dict:
    env = envs.make("ising", size=size)
    rows = []
    for tau in taus:
        res = train_many("mfq_tabular", env, {"total_steps": steps, "temperature": float(tau),
                                              "mean_action": mean_action}, seeds, warmup=False)
        op = res["metrics"]["order_parameter"]  # [seeds, updates]
        late = op[:, op.shape[1] // 2:].mean(axis=1)
        rows.append({"tau": float(tau), "order_parameter": mean_ci95(late), "per_seed": late.tolist(),
                     "onsager": float(onsager_magnetisation(tau)), "compile_s": res["compile_s"],
                     "run_s": res["median_s"]})
    return {"size": size, "steps": steps, "seeds": seeds, "mean_action": mean_action,
            "tau_critical": TAU_CRITICAL, "rows": rows}


def squeeze(names, ns, steps, seeds, sets, save=None) -> dict:
    """Each method at each N; ``save(part)`` (if given) after every row, so a long run keeps what it finished."""
    rows = []
    for name in names:
        for n in ns:
            env = envs.make("gaussian_squeeze", n_agents=n)
            r_star = float(env.optimum()[1])
            overrides = {**SQUEEZE_SETS, **sets, "total_steps": steps}
            fields = algos.get(name).default_config(env).to_dict()
            overrides = {k: v for k, v in overrides.items() if k in fields}
            res = train_many(name, env, overrides, seeds, warmup=False)
            reward = res["metrics"]["reward"]  # [seeds, updates]
            late = reward[:, -max(1, reward.shape[1] // 10):].mean(axis=1)
            rows.append({"algo": name, "n_agents": n, "r_star": r_star, "reward": mean_ci95(late),
                         "fraction_of_r_star": mean_ci95(late / r_star), "per_seed": late.tolist(),
                         "curve": reward.mean(axis=0).tolist(), "compile_s": res["compile_s"],
                         "run_s": res["median_s"], "config": res["config"]})
            if save:
                save({"steps": steps, "seeds": seeds, "rows": rows})
    return {"steps": steps, "seeds": seeds, "rows": rows}


def _bars(stats: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Means and their 95% intervals as errorbar's (y, yerr [2, K])."""
    mean = np.array([s["mean"] for s in stats])
    return mean, np.stack([mean - np.array([s["ci95_low"] for s in stats]),
                           np.array([s["ci95_high"] for s in stats]) - mean])


def plot(doc: dict, path: str) -> None:
    plt = pyplot()
    parts = [part for part in ("ising", "squeeze") if doc.get(part)]
    fig, axs = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4), squeeze=False)
    axes = dict(zip(parts, axs[0]))
    if "ising" in axes:
        rows = doc["ising"]["rows"]
        taus = np.array([r["tau"] for r in rows])
        grid = np.linspace(taus.min(), taus.max(), 400)
        axes["ising"].plot(grid, onsager_magnetisation(grid), "k-", label="Onsager M(tau)")
        label = f"tabular MF-Q, {doc['ising']['size']}^2 spins"
        axes["ising"].errorbar(taus, *_bars([r["order_parameter"] for r in rows]), fmt="o", label=label)
        axes["ising"].axvline(TAU_CRITICAL, ls=":", c="grey")
        axes["ising"].set(xlabel="temperature tau (beta J = 1 / (2 tau))", ylabel="order parameter", title="Ising")
        axes["ising"].legend()
    if "squeeze" in axes:
        for name in SQUEEZE_ALGOS:
            rows = [r for r in doc["squeeze"]["rows"] if r["algo"] == name]
            if rows:
                axes["squeeze"].errorbar([r["n_agents"] for r in rows], *_bars([r["fraction_of_r_star"] for r in rows]),
                                 fmt="o-", label=name)
        axes["squeeze"].axhline(0.95, ls=":", c="grey")
        axes["squeeze"].set(xlabel="agents N", ylabel="reward / r*", title="Gaussian squeeze")
        axes["squeeze"].legend()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="ising,squeeze")
    p.add_argument("--taus", default="0.5,0.8,1.0,1.1,1.2,1.3,1.5,2.0,3.0")
    p.add_argument("--size", type=int, default=20)
    p.add_argument("--ising-steps", type=int, default=10_000)
    p.add_argument("--mean-action", default="current")
    p.add_argument("--ns", default="100,500,1000")
    p.add_argument("--algos", default=",".join(SQUEEZE_ALGOS))
    p.add_argument("--squeeze-steps", type=int, default=20_000)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--set", action="append", default=[], help="field=value for the squeeze learners")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out")
    p.add_argument("--plot", action="store_true", help="a PNG beside --out")
    p.add_argument("--replot", action="store_true", help="only plot the JSON at --out (no training)")
    args = p.parse_args(argv)
    if args.replot:
        with open(args.out) as f:
            plot(json.load(f), os.path.splitext(args.out)[0] + ".png")
        return 0
    parts = set(args.parts.split(","))
    names = args.algos.split(",")
    bad = [n for n in names if n not in SQUEEZE_ALGOS] + [x for x in parts if x not in ("ising", "squeeze")]
    if bad:
        p.error(f"unknown --algos or --parts entries: {', '.join(bad)}")
    sets = parse_overrides(algos.mean_field.MeanFieldConfig, args.set)
    if args.quick:
        args.size, args.ising_steps, args.seeds, args.squeeze_steps = 4, 200, 2, 16
        args.taus, args.ns = "0.5,3.0", "10"
        sets = {**sets, "batch_size": 8, "learning_starts": 8, "hidden_size": 8}
    start = time.time()
    doc = {**machine_info(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": vars(args) | {"set": sets}}
    if "ising" in parts:
        doc["ising"] = ising([float(t) for t in args.taus.split(",")], args.size, args.ising_steps, args.seeds,
                             args.mean_action)
    if "squeeze" in parts:
        def save(part):
            emit({**doc, "squeeze": part, "partial": True}, args.out, False)

        doc["squeeze"] = squeeze(names, [int(n) for n in args.ns.split(",")], args.squeeze_steps, args.seeds, sets,
                                 save)
    doc["wall_s"] = time.time() - start
    emit(doc, args.out, args.json)
    if args.plot and args.out:
        plot(doc, os.path.splitext(args.out)[0] + ".png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
