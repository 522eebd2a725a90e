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

REGIMES = {"uniform": {"epsilon_start": 1.0, "epsilon_end": 1.0}, "annealed": {}}
MATRIX_GAMES = (("matrix_climbing", {}), ("matrix_penalty", {"k": -100.0}), ("matrix_nonmonotonic", {}))

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--out", help="write the JSON document here")
    p.add_argument("--only", choices=("two_step", "matrix"), help="run one group of checks")
    args = p.parse_args(argv)
    doc = {"machine": machine_info(), "seeds": args.seeds}
    if args.only in (None, "two_step"):
        doc["two_step"] = two_step(args.seeds)
    if args.only in (None, "matrix"):
        doc["matrix_games"] = matrix_games(args.seeds)
    text = dump(doc, args.out)
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
