"""Value decomposition: the paper checks of IQL, VDN and QMIX on the two-step game (Rashid et al., 2018) and the
one-shot cooperative matrix games (climbing, penalty with k = -100, the non-monotonic game).

    python benchmarks/value_decomposition.py --seeds 16 --out results.json

Two exploration regimes: "uniform" (epsilon 1 throughout: every joint action equally likely, the QMIX paper's
full-exploration data, the greedy policy read from the learned values) and "annealed" (the default config: epsilon
1 -> 0.05 over the first half of the run). For each learner and game: how many seeds' greedy joint policy earns each
return (``greedy_return`` at the end of training), and on the two-step game the learned Q_tot table (median over
seeds; Q_i for IQL), to read beside the paper's Table 1 (full exploration). The matrix games also report the
ceiling of an additive fit: the payoff of the joint action that maximises the least-squares fit Q_1(a_1) + Q_2(a_2)
of the payoffs under uniform play (the row and column means), which VDN's greedy policy reaches under uniform
exploration.

The flicker group (``--only flicker``, 8 seeds by default there): feed-forward ``iql`` and recurrent ``drqn`` on
``mpe_simple`` (one agent, 25-step episodes, observing its velocity and the landmark's relative position) as it is
and under ``flicker`` (every step's observation blanked with probability ``--flicker-prob``, default
``FLICKER_PROB``), at equal environment steps. A seed's score is its greedy policy's return (``eval_steps``: one
fresh episode after each update) averaged over the last tenth of the updates; each (learner, variant) reports the
mean and 95% Student-t interval of the scores over seeds, and the flickered task the interval of the per-seed
differences DRQN - IQL (seed i of each; the two runs are independent, so the pairs are too).
"""
from __future__ import annotations

import argparse
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from algos.value_decomposition.config import ValueDecompositionConfig  # noqa: E402
from algos.value_decomposition.model import build_model  # noqa: E402
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from jaxmarl_core.learner_view import LearnerView  # noqa: E402
from jaxmarl_core.outputs import mean_ci95  # noqa: E402

REGIMES = {"uniform": {"epsilon_start": 1.0, "epsilon_end": 1.0}, "annealed": {}}
MATRIX_GAMES = (("matrix_climbing", {}), ("matrix_penalty", {"k": -100.0}), ("matrix_nonmonotonic", {}))
FLICKER_TASK = "mpe_simple"
FLICKER_PROB = 0.5
FLICKER_STEPS = 400_000  # environment steps per seed
FLICKER_HORIZON = 25  # mpe_simple's episode length

def additive_ceiling(payoff: np.ndarray) -> float:
    """The payoff of the joint action maximising the least-squares additive fit of a 2-player common payoff [A, A]
    under uniform play: the argmax of the row means and of the column means."""
    return float(payoff[np.argmax(payoff.mean(axis=1)), np.argmax(payoff.mean(axis=0))])


def counts(values: np.ndarray) -> dict[str, int]:
    """{return: number of seeds} of the final greedy returns [S]."""
    keys, n = np.unique(np.round(values, 3), return_counts=True)
    return {f"{k:g}": int(c) for k, c in zip(keys, n)}


def q_table(env, cfg: dict, variant: str, params) -> dict[str, list]:
    """Median over seeds of Q_tot (vdn, qmix) or of each agent's Q (iql) at the two-step game's three states:
    {state: [[a_0][a_1]]} (iql: [agent][action])."""
    config = ValueDecompositionConfig(**cfg)
    model = build_model(LearnerView(env, with_state=config.mixer == "qmix"), config)

    def table(p, s):
        """Q_tot [A, A] (iql: Q [N, A]) at the state one-hot s [3]."""
        q = model.q_values(p, jnp.broadcast_to(s, (1, 2, 3)))[0]  # [N, A]
        if config.mixer == "none":
            return q
        joint = jnp.stack(jnp.meshgrid(q[0], q[1], indexing="ij"), -1).reshape(-1, 2)  # [A * A, N]
        return model.mix(p, joint, jnp.broadcast_to(s, (4, 3))).reshape(2, 2)

    out = {}
    for name, s in zip(("first", "2A", "2B"), jnp.eye(3)):
        values = jax.vmap(table, in_axes=(0, None))(params, s)
        out[name] = np.round(np.median(np.asarray(values, np.float64), axis=0), 2).tolist()
    return out


def two_step(seeds: int) -> list[dict]:
    env = envs.make("two_step")
    rows = []
    for regime, overrides in REGIMES.items():
        for variant in ("iql", "vdn", "qmix"):
            res = train_many(variant, env, overrides, seeds)
            final = res["metrics"]["greedy_return"][:, -1, 0]
            row = {"game": "two_step", "algo": variant, "regime": regime, "seeds": seeds,
                   "greedy_return_counts": counts(final), "compile_s": res["compile_s"], "run_s": res["median_s"],
                   "env_steps": res["num_updates"] * res["env_steps_per_update"]}
            if regime == "uniform":
                row["q_table"] = q_table(env, res["config"], variant, res["out"].state.params)
            rows.append(row)
            print(f"two_step {variant} {regime}: {row['greedy_return_counts']}", file=sys.stderr)
    return rows


def matrix_games(seeds: int) -> list[dict]:
    rows = []
    for name, kwargs in MATRIX_GAMES:
        env = envs.make(name, **kwargs)
        payoff = np.asarray(env.payoff_array[0])
        for regime, overrides in REGIMES.items():
            for variant in ("vdn", "qmix"):
                res = train_many(variant, env, overrides, seeds)
                final = res["metrics"]["greedy_return"][:, -1, 0]
                rows.append({"game": name, "env_args": kwargs, "algo": variant, "regime": regime, "seeds": seeds,
                             "optimum": float(payoff.max()), "additive_ceiling": additive_ceiling(payoff),
                             "greedy_return_counts": counts(final), "compile_s": res["compile_s"],
                             "run_s": res["median_s"], "env_steps": res["num_updates"] * res["env_steps_per_update"]})
                print(f"{name} {variant} {regime}: {rows[-1]['greedy_return_counts']} (optimum {payoff.max():g}, "
                      f"additive ceiling {additive_ceiling(payoff):g})", file=sys.stderr)
    return rows


def flicker(seeds: int, prob: float = FLICKER_PROB, steps: int = FLICKER_STEPS) -> dict:
    """iql and drqn on FLICKER_TASK unflickered and flickered: each run's scores over seeds, and the flickered
    difference drqn - iql."""
    overrides = {"total_steps": steps, "epsilon_decay_steps": steps // 2,
                 "eval_steps": FLICKER_HORIZON}
    variants = {"unflickered": envs.make(FLICKER_TASK),
                "flickered": envs.make("flicker", env=FLICKER_TASK, prob=prob)}
    rows, scores = [], {}
    for variant, env in variants.items():
        for algo in ("iql", "drqn"):
            res = train_many(algo, env, overrides, seeds, warmup=False)
            greedy = res["metrics"]["greedy_return"][..., 0]  # [S, U] (one agent)
            tail = max(1, greedy.shape[1] // 10)
            scores[algo, variant] = greedy[:, -tail:].mean(axis=1)
            summary = mean_ci95(scores[algo, variant])
            rows.append({"algo": algo, "variant": variant, "seeds": seeds,
                         "env_steps": res["num_updates"] * res["env_steps_per_update"],
                         "greedy_return_last_tenth": summary, "updates_averaged": tail,
                         "per_seed": np.round(scores[algo, variant], 3).tolist(),
                         "final_episode_return": mean_ci95(res["metrics"]["episode_return"][:, -1, 0]),
                         "compile_s": res["compile_s"], "run_s": res["median_s"]})
            print(f"flicker {variant} {algo}: {summary['mean']:.2f} [{summary['ci95_low']:.2f}, "
                  f"{summary['ci95_high']:.2f}] ({res['median_s']:.1f} s)", file=sys.stderr)
    diff = mean_ci95(scores["drqn", "flickered"] - scores["iql", "flickered"])
    print(f"flicker drqn - iql (flickered): {diff['mean']:.2f} [{diff['ci95_low']:.2f}, {diff['ci95_high']:.2f}]",
          file=sys.stderr)
    return {"task": FLICKER_TASK, "prob": prob, "overrides": overrides, "runs": rows,
            "drqn_minus_iql_flickered": diff}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, help="seeds per run (default 16; 8 for --only flicker)")
    p.add_argument("--out", help="write the JSON document here")
    p.add_argument("--flicker-prob", type=float, default=FLICKER_PROB, help="the flicker group's blanking probability")
    p.add_argument("--flicker-steps", type=int, default=FLICKER_STEPS, help="the flicker group's steps per seed")
    p.add_argument("--only", choices=("two_step", "matrix", "flicker"), help="run one group of checks")
    args = p.parse_args(argv)
    seeds = args.seeds or (8 if args.only == "flicker" else 16)
    doc = {"machine": machine_info(), "seeds": seeds}
    if args.only in (None, "two_step"):
        doc["two_step"] = two_step(seeds)
    if args.only in (None, "matrix"):
        doc["matrix_games"] = matrix_games(seeds)
    if args.only in (None, "flicker"):
        doc["flicker"] = flicker(seeds, args.flicker_prob, args.flicker_steps)
    text = dump(doc, args.out)
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
