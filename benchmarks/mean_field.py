"""Mean-field MARL (Yang et al., 2018): the Ising order parameter of the tabular MF-Q against temperature beside
Onsager's exact magnetisation, and the Gaussian squeeze reward of MF-Q, MF-AC, IL and AC against the number of
agents, as JSON (and a PNG of each with --plot).

Ising convention: the released code's reward (half the spin times the neighbours' sum) and a Boltzmann policy at
temperature tau on exact action values sample the heat bath at beta J = 1 / (2 tau), so tau_c = 1 / ln(1 + sqrt 2)
and M(tau) = (1 - sinh(1 / tau)^-4)^(1/8) below it. The order parameter of a run is its mean |N_up - N_down| / N over
the second half of its steps; each temperature gives the mean over seeds with a 95% Student-t interval.

Gaussian squeeze: the summary's ``reward`` (the shared reward per step) over the last tenth of training, as a
fraction of r* (``GaussianSqueeze.optimum``), per method and N, mean over seeds with a 95% interval. Each choice
counts ``--unit-agents / N`` towards the total (the environment's ``unit``; 100 by default: N agents share the
paper's 100-agent range 0 .. 900, so x* = 445 and r* stay those of the paper at every N; 0: the literal total, unit 1).

Battle (``--parts battle``): each method trained by the released code's self-play (``self_play=true``: the red
team learns, blue plays its copy, soft-updated towards it after each episode red's team reward wins), then its red
networks against every other method's blue ones, ``--games`` games per seed pair (the code's ``battle.py``: Q-learners
greedy, actor-critics sampling their policy; a game is won by the side with more survivors at its end, the code's
kill count). The code trains 2,000 rounds of 400 steps; ``--battle-steps`` sets the budget here.

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

import jax  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from algos.mean_field.config import MeanFieldConfig  # noqa: E402
from algos.mean_field.evaluate import cross_play, wins  # noqa: E402
from benchmarks.common import emit, machine_info, train_many  # noqa: E402
from envs.mean_field import TAU_CRITICAL, onsager_magnetisation  # noqa: E402
from jaxmarl_core.config import parse_overrides  # noqa: E402
from jaxmarl_core.outputs import mean_ci95, pyplot, save_figure  # noqa: E402

SQUEEZE_ALGOS = ("mfq", "mfac", "il", "ac")
# the squeeze's settings (overrides of each learner's default config): rewards in hundreds, so the temperature is too;
# a fixed Boltzmann temperature of 0.5 (50 reward units): every agent's response to the previous step's mean action
# moves the total by about N u^2 Var(a) r''(x*) / tau, which must stay below 1 for the population to settle (u the
# unit, Var(a) = 8.25 of uniform play, r''(x*) = -0.023): tau > 0.19 at N = 100, u = 1
SQUEEZE_SETS = {"reward_scale": 0.01, "temperature": 0.5, "temperature_start": 0.5, "lr": 1e-3}


# the code's battle training (train_battle.py): Adam 1e-4, Boltzmann temperature from 1 down to 0.1 (its eps schedule
# reaches 0.2 at 80% of the rounds and 0.1 at the end; linear to 0.1 at 80% here), self-play with tau 0.01
BATTLE_SETS = {"self_play": True, "self_play_tau": 0.01, "lr": 1e-4, "temperature_start": 1.0, "temperature": 0.1}


def battle(names, map_size, n_per_side, max_cycles, steps, seeds, games, sets) -> dict:
    """Self-play training of each method, then every ordered pair of different methods in cross-play."""
    env = envs.make("battle", map_size=map_size, n_per_side=n_per_side, max_cycles=max_cycles)
    trained, training = {}, []
    for name in names:
        overrides = {**BATTLE_SETS, "temperature_decay_steps": max(1, int(0.8 * steps)), **sets, "total_steps": steps}
        fields = algos.get(name).default_config(env).to_dict()
        res = train_many(name, env, {k: v for k, v in overrides.items() if k in fields}, seeds, warmup=False)
        m, per_update = res["metrics"], res["env_steps_per_update"]
        episodes = (m["episodes_ended"] * per_update).sum(axis=1)
        trained[name] = (MeanFieldConfig(**res["config"]), res["out"].state)
        training.append({"algo": name, "episodes": episodes.tolist(),
                         "learner_wins": (m["learner_wins"] * per_update).sum(axis=1).tolist(),
                         "reward_last_tenth": m["reward"][:, -max(1, m["reward"].shape[1] // 10):].mean(1).tolist(),
                         "compile_s": res["compile_s"], "run_s": res["median_s"], "config": res["config"]})
    rows = []
    for first in names:
        for second in names:
            if first == second:
                continue
            (cfg_a, state_a), (cfg_b, state_b) = trained[first], trained[second]

            def play(pa, pb, key, cfg_a=cfg_a, cfg_b=cfg_b):
                return cross_play(env, ((cfg_a, pa), (cfg_b, pb)), games, max_cycles, key)

            start = time.time()
            survivors = jax.jit(jax.vmap(play))(state_a.params["red"], state_b.opponent["blue"],
                                                jax.random.split(jax.random.PRNGKey(1), seeds))
            counts = [wins(s) for s in survivors]
            rate = np.array([c["first"] / games for c in counts])
            rows.append({"first": first, "second": second, "games_per_seed": games,
                         "win_rate": mean_ci95(rate), "per_seed": counts,
                         "mean_survivors": np.asarray(survivors).mean(axis=(0, 1)).tolist(),
                         "wall_s": time.time() - start})
    return {"map_size": map_size, "n_per_side": n_per_side, "max_cycles": max_cycles, "steps": steps,
            "seeds": seeds, "games": games, "training": training, "rows": rows}


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


def squeeze(names, ns, steps, seeds, sets, unit_agents, save=None) -> dict:
    """Each method at each N, each choice counting ``unit_agents / N`` (0: 1); ``save(part)`` (if given) after every
    row, so a long run keeps what it finished."""
    rows = []
    for name in names:
        for n in ns:
            unit = unit_agents / n if unit_agents else 1.0
            env = envs.make("gaussian_squeeze", n_agents=n, unit=unit)
            r_star = float(env.optimum()[1])
            overrides = {**SQUEEZE_SETS, **sets, "total_steps": steps}
            fields = algos.get(name).default_config(env).to_dict()
            overrides = {k: v for k, v in overrides.items() if k in fields}
            res = train_many(name, env, overrides, seeds, warmup=False)
            reward = res["metrics"]["reward"]  # [seeds, updates]
            late = reward[:, -max(1, reward.shape[1] // 10):].mean(axis=1)
            rows.append({"algo": name, "n_agents": n, "unit": unit, "r_star": r_star, "reward": mean_ci95(late),
                         "fraction_of_r_star": mean_ci95(late / r_star), "per_seed": late.tolist(),
                         "curve": reward.mean(axis=0).tolist(), "compile_s": res["compile_s"],
                         "run_s": res["median_s"], "config": res["config"]})
            if save:
                save({"steps": steps, "seeds": seeds, "unit_agents": unit_agents, "rows": rows})
    return {"steps": steps, "seeds": seeds, "unit_agents": unit_agents, "rows": rows}


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
    p.add_argument("--squeeze-steps", type=int, default=4_000)
    p.add_argument("--unit-agents", type=float, default=100.0,
                   help="each squeeze choice counts this / N towards the total (0: 1, the literal total)")
    p.add_argument("--battle-steps", type=int, default=20_000)
    p.add_argument("--map-size", type=int, default=40)
    p.add_argument("--n-per-side", type=int, default=64)
    p.add_argument("--max-cycles", type=int, default=400, help="battle steps per game (the code's max_steps)")
    p.add_argument("--games", type=int, default=50, help="cross-play games per seed pair")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--set", action="append", default=[], help="field=value for the squeeze and battle learners")
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
    bad = [n for n in names if n not in SQUEEZE_ALGOS] + [x for x in parts if x not in ("ising", "squeeze", "battle")]
    if bad:
        p.error(f"unknown --algos or --parts entries: {', '.join(bad)}")
    sets = parse_overrides(algos.mean_field.MeanFieldConfig, args.set)
    if args.quick:
        args.size, args.ising_steps, args.seeds, args.squeeze_steps = 4, 200, 2, 16
        args.taus, args.ns = "0.5,3.0", "10"
        args.map_size, args.n_per_side, args.max_cycles, args.battle_steps, args.games = 20, 8, 10, 160, 3
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
                                 args.unit_agents, save)
    if "battle" in parts:
        doc["battle"] = battle(names, args.map_size, args.n_per_side, args.max_cycles, args.battle_steps, args.seeds,
                               args.games, sets)
    doc["wall_s"] = time.time() - start
    emit(doc, args.out, args.json)
    if args.plot and args.out:
        plot(doc, os.path.splitext(args.out)[0] + ".png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
