"""The DiCE paper's IPD comparison (LOLA-DiCE at several look-ahead depths against LOLA-PG and NL-PG), plus
LOLA-OM and the exact-gradient learners, and the throughput of ``lola_dice`` at several seed counts.

    python benchmarks/opponent_shaping.py --json --out-dir runs/opponent_shaping      # the comparison (64 seeds)
    python benchmarks/opponent_shaping.py --throughput --json                          # seeds x updates per second
    python benchmarks/opponent_shaping.py --throughput --seed-batch 1,0 --json        # ... one seed at a time, and all
    python benchmarks/opponent_shaping.py --coin-game nl_pg,lola_pg --seeds 4 --out-dir DIR   # own-coin fractions
    python benchmarks/opponent_shaping.py --coin-game-runs RUN1,RUN2 --out-dir DIR  # ... of train.py output dirs
    python benchmarks/opponent_shaping.py --coin-game-runs A/coin_game.json,RUN3     # ... with earlier summaries
    python benchmarks/opponent_shaping.py --quick                                      # a small smoke run

Every method trains with its published settings (``default_config``) on ``--seeds`` seeds inside one jit;
compile time is reported apart from run time. The comparison writes ``ipd_comparison.png`` and
``ipd_comparison.json`` to ``--out-dir``; ``--json`` prints the JSON document on stdout.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from jaxmarl_core import outputs  # noqa: E402

# (label, algorithm, config overrides) in the order of the DiCE paper's figure.
METHODS = [("NL-PG", "nl_pg", {}), ("LOLA-PG", "lola_pg", {}), ("LOLA-OM", "lola_om", {})] + [
    (f"LOLA-DiCE K={k}", "lola_dice", {"lookahead": k}) for k in (1, 2, 3)] + [
    ("NL-Ex", "nl_exact", {}), ("LOLA-Ex", "lola_exact", {})]


def comparison(env_name: str, seeds: int, overrides: dict, out_dir: str | None) -> dict:
    env = envs.make(env_name)
    rows, curves = [], {}
    for label, algo_name, extra in METHODS:
        res = train_many(algo_name, env, {**extra, **(overrides if algo_name.endswith(("_pg", "_om", "_dice"))
                                                       else {})}, seeds)
        per_step = res["metrics"]["reward_per_step"].mean(-1)  # [S, U]: averaged over the two agents
        curves[label] = band(per_step)
        p_coop = res["metrics"]["p_coop"][:, -1]  # [S, 2, 5]
        rows.append({"method": label, "algo": algo_name, **outputs.mean_ci95(per_step[:, -1]),
                     "mean_abs_p_coop_minus_half": float(np.abs(p_coop - 0.5).mean()),
                     "p_coop_mean": p_coop.mean(0).tolist(),
                     "num_updates": res["num_updates"], "compile_s": res["compile_s"], "run_s": res["median_s"],
                     "curve_mean": per_step.mean(0).tolist()})
        print(f"{label:16s} final reward/step {rows[-1]['mean']:+.3f} "
              f"[{rows[-1]['ci95_low']:+.3f}, {rows[-1]['ci95_high']:+.3f}]  "
              f"mean |p_coop - 0.5| {rows[-1]['mean_abs_p_coop_minus_half']:.3f}  "
              f"compile {res['compile_s']:.1f}s run {res['median_s']:.1f}s", file=sys.stderr)
    doc = {"benchmark": "opponent_shaping_comparison", "env": env_name, "seeds": seeds, **machine_info(),
           "results": rows}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        dump(doc, os.path.join(out_dir, f"{env_name}_comparison.json"))
        plot(curves, f"{env_name.upper()}: opponent shaping ({seeds} seeds, mean and 95% band)",
             "average reward per step", os.path.join(out_dir, f"{env_name}_comparison.png"))
    return doc


COIN_METHODS = {"nl_pg": "NL-PG", "lola_pg": "LOLA-PG", "lola_dice": "LOLA-DiCE K=1"}


def coin_game(algo_names: list[str], seeds: int, overrides: dict, tail: float, out_dir: str | None) -> dict:
    """The LOLA paper's Coin Game result: the fraction of the coins an agent picks up that are its own colour
    (both agents averaged; per seed, the mean over the last ``tail`` share of updates)."""
    env = envs.make("coin_game")
    rows = []
    for algo_name in algo_names:
        res = train_many(algo_name, env, overrides, seeds, warmup=False)
        own = res["metrics"]["own_coin_fraction"].mean(-1)  # [S, U]
        reward = res["metrics"]["reward_per_step"]  # [S, U, 2]
        rows.append(coin_row(algo_name, own, reward, tail, res["num_updates"], res["config"]["batch_size"],
                             np.arange(seeds), logged_updates=res["num_updates"], compile_s=res["compile_s"],
                             run_s=res["median_s"]))
    return coin_doc(rows, out_dir)


def coin_game_from_runs(sources: list[str], tail: float, out_dir: str | None) -> dict:
    """``coin_game``'s summary of finished ``train.py --env coin_game`` runs. A source is a run directory
    (config.json and metrics.csv; e.g. a long run resumed from its checkpoints) or a JSON document this script
    wrote; the parts of one algorithm on disjoint seeds (a study split with ``train.py --first-seed``) make one
    row."""
    parts: dict[str, list[dict]] = {}
    for source in sources:
        for row in _coin_json_rows(source) if source.endswith(".json") else [_coin_run_row(source, tail)]:
            parts.setdefault(row["algo"], []).append(row)
    return coin_doc([merge_coin_rows(group) for group in parts.values()], out_dir)


def _coin_run_row(run_dir: str, tail: float) -> dict:
    with open(os.path.join(run_dir, "config.json")) as f:
        run = json.load(f)["run"]
    if run["env"] != "coin_game" or run["algo"] not in COIN_METHODS:
        raise ValueError(f"{run_dir}: a train.py run of {', '.join(COIN_METHODS)} on coin_game is needed, "
                         f"found {run['algo']} on {run['env']}")
    table = np.genfromtxt(os.path.join(run_dir, "metrics.csv"), delimiter=",", names=True, deletechars="")
    table = table[np.lexsort((table["update"], table["seed"]))]
    seed_ids, updates = np.unique(table["seed"]).astype(int), np.unique(table["update"])
    if table.size != seed_ids.size * updates.size or updates[-1] != run["config"]["num_updates"]:
        raise ValueError(f"{run_dir}: metrics.csv does not hold every seed up to the last update")

    def column(name):  # [S, U]
        return np.asarray(table[name], float).reshape(seed_ids.size, updates.size)

    own = (column("own_coin_fraction/0") + column("own_coin_fraction/1")) / 2
    reward = np.stack([column("reward_per_step/0"), column("reward_per_step/1")], axis=-1)
    return coin_row(run["algo"], own, reward, tail, run["config"]["num_updates"], run["config"]["batch_size"],
                    seed_ids, sources=[run_dir], logged_updates=int(updates.size))


def _coin_json_rows(path: str) -> list[dict]:
    with open(path) as f:
        doc = json.load(f)
    if doc.get("benchmark") != "coin_game_own_coins":
        raise ValueError(f"{path}: not a Coin Game summary of this script")
    for row in doc["results"]:
        if "seed_ids" not in row:
            raise ValueError(f"{path}: the {row['algo']} row does not say which seeds it holds (seed_ids)")
        row.setdefault("sources", [path])
    return doc["results"]


def coin_row(algo_name: str, own: np.ndarray, reward: np.ndarray, tail: float, num_updates: int, batch_size: int,
             seed_ids: np.ndarray, **extra) -> dict:
    """One learner's row: own [S, U] own-coin fractions (both agents averaged), reward [S, U, 2] per step,
    seed_ids [S] the seeds' indices (train.py's seed i)."""
    last = max(1, int(round(tail * own.shape[1])))
    final = own[:, -last:].mean(1)
    row = {"method": COIN_METHODS[algo_name], "algo": algo_name, **outputs.mean_ci95(final),
           "per_seed": final.tolist(), "seed_ids": [int(i) for i in seed_ids], "tail_updates": last,
           "reward_per_step": float(reward[:, -last:].mean()), "num_updates": num_updates, "batch_size": batch_size,
           **extra, "curve_mean": own.mean(0).tolist(),
           "curve_std": (own.std(0, ddof=1) if own.shape[0] > 1 else 0 * own[0]).tolist()}
    _report(row)
    return row


def merge_coin_rows(parts: list[dict]) -> dict:
    """One row of one algorithm from rows on disjoint seeds: the seeds' tail values are joined (sorted by seed) and
    the per-update curves pooled exactly (mean and sample standard deviation over all seeds)."""
    if len(parts) == 1:
        return parts[0]
    algo_name = parts[0]["algo"]
    for key in ("num_updates", "batch_size", "tail_updates", "logged_updates"):
        if len({p.get(key) for p in parts}) > 1:
            raise ValueError(f"{algo_name}: the parts to merge differ in {key} ({[p.get(key) for p in parts]})")
    if any(p.get("curve_std") is None for p in parts):
        raise ValueError(f"{algo_name}: a part without curve_std cannot be pooled")
    ids = np.concatenate([p["seed_ids"] for p in parts])
    unique, counts = np.unique(ids, return_counts=True)
    repeated = unique[counts > 1].tolist()
    if repeated:
        raise ValueError(f"{algo_name}: seeds {repeated} appear in more than one part")
    order = np.argsort(ids)
    final = np.concatenate([p["per_seed"] for p in parts])[order]
    n = np.array([p["n"] for p in parts], float)[:, None]  # [P, 1]
    means, stds = np.array([p["curve_mean"] for p in parts]), np.array([p["curve_std"] for p in parts])  # [P, U]
    mean = (n * means).sum(0) / n.sum()
    var = ((n - 1) * stds**2 + n * (means - mean) ** 2).sum(0) / max(n.sum() - 1, 1)
    row = {"method": parts[0]["method"], "algo": algo_name, **outputs.mean_ci95(final), "per_seed": final.tolist(),
           "seed_ids": ids[order].tolist(), "tail_updates": parts[0]["tail_updates"],
           "reward_per_step": float((n[:, 0] * [p["reward_per_step"] for p in parts]).sum() / n.sum()),
           "num_updates": parts[0]["num_updates"], "batch_size": parts[0]["batch_size"],
           "logged_updates": parts[0].get("logged_updates"), "sources": sum((p["sources"] for p in parts), []),
           "curve_mean": mean.tolist(), "curve_std": np.sqrt(var).tolist()}
    _report(row)
    return row


def _report(row: dict) -> None:
    print(f"{row['method']:14s} own-coin fraction {row['mean']:.3f} [{row['ci95_low']:.3f}, {row['ci95_high']:.3f}] "
          f"over the last {row['tail_updates']} logged updates ({row['n']} seeds)", file=sys.stderr)


def coin_doc(rows: list, out_dir: str | None) -> dict:
    seeds = max(r["n"] for r in rows)
    doc = {"benchmark": "coin_game_own_coins", "seeds": seeds, **machine_info(), "results": rows,
           "against_nl_pg": against_naive(rows)}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        dump(doc, os.path.join(out_dir, "coin_game.json"))
        bands = {f"{r['method']} ({r['n']} seeds)": (np.array(r["curve_mean"]), None if r.get("curve_std") is None
                                                      else 1.96 * np.array(r["curve_std"]) / np.sqrt(r["n"]))
                 for r in rows}
        plot(bands, "Coin Game: own-coin fraction (mean and 95% band)", "own-coin fraction",
             os.path.join(out_dir, "coin_game.png"))
    return doc


def against_naive(rows: list) -> list[dict]:
    """Each other learner against NL-PG: the paired difference of the seeds' own-coin fractions on the seeds both
    rows hold (mean, 95% t interval, on how many seeds it is higher) and Welch's t over all seeds of each."""
    from scipy import stats

    naive = next((r for r in rows if r["algo"] == "nl_pg"), None)
    out = []
    for row in rows:
        if naive is None or row is naive or "seed_ids" not in row or "seed_ids" not in naive:
            continue
        mine, theirs = (dict(zip(r["seed_ids"], r["per_seed"])) for r in (row, naive))
        shared = sorted(set(mine) & set(theirs))
        diff = np.array([mine[i] - theirs[i] for i in shared])
        welch = stats.ttest_ind(row["per_seed"], naive["per_seed"], equal_var=False) if min(
            row["n"], naive["n"]) > 1 else None
        out.append({"method": row["method"], "shared_seeds": len(shared),
                    "paired_difference": outputs.mean_ci95(diff) if shared else None,
                    "higher_on": int((diff > 0).sum()), "welch_t": None if welch is None else float(welch.statistic),
                    "welch_p": None if welch is None else float(welch.pvalue)})
    return out


def band(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v [S, U] -> mean [U] and the half-width [U] of a normal 95% band of the mean over seeds."""
    half = 1.96 * v.std(0, ddof=1) / np.sqrt(v.shape[0]) if v.shape[0] > 1 else 0 * v[0]
    return v.mean(0), half


def plot(bands: dict, title: str, ylabel: str, path: str) -> None:
    """bands: {label: (mean [U], half-width [U] or None for no band)}."""
    plt = outputs.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (mean, half) in bands.items():
        x = np.arange(1, mean.size + 1)
        (line,) = ax.plot(x, mean, label=label, lw=1.3, ls="--" if label.endswith("-Ex") else "-")
        if half is not None:
            ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=110)


def throughput(seed_counts: list[int], overrides: dict, repeats: int, seed_batches: list[int | None]) -> dict:
    """``lola_dice`` on ``ipd`` with the published settings (``overrides`` aside), for every seed count and seed
    batch (seeds vectorised together per device; None: the algorithm's default); each row also projects the wall
    time of a full run of the published number of updates from the measured rate (every update costs the same)."""
    env = envs.make("ipd")
    published_updates = algos.get("lola_dice").default_config(env).num_updates
    rows = []
    for seeds, seed_batch in itertools.product(seed_counts, seed_batches):
        res = train_many("lola_dice", env, overrides, seeds, repeats, seed_batch=seed_batch)
        updates = res["num_updates"]
        rate = seeds * updates / res["median_s"]
        rows.append({"algo": "lola_dice", "env": "ipd", "seeds": seeds, "seed_batch": res["seed_batch"],
                     "num_updates": updates,
                     "compile_s": res["compile_s"], "median_s": res["median_s"], "runs_s": res["runs_s"],
                     "seed_updates_per_s": rate,
                     "env_steps_per_s": seeds * updates * res["env_steps_per_update"] / res["median_s"],
                     "published_num_updates": published_updates,
                     "projected_published_run_s": seeds * published_updates / rate})
        print(f"lola_dice x{seeds} seeds (seed batch {res['seed_batch']}): {rate:.1f} seed-updates/s, "
              f"compile {res['compile_s']:.1f}s, run "
              f"{res['median_s']:.1f}s for {updates} updates; {published_updates} updates would take "
              f"{rows[-1]['projected_published_run_s']:.0f}s", file=sys.stderr)
    return {"benchmark": "opponent_shaping_throughput", **machine_info(), "results": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="ipd", choices=["ipd", "imp"])
    p.add_argument("--seeds", type=int, default=64)
    p.add_argument("--throughput", action="store_true", help="measure lola_dice seeds x updates per second")
    p.add_argument("--seed-counts", default="1,64,512")
    p.add_argument("--seed-batch", default=None,
                   help="comma-separated seed batches to measure (seeds vectorised together per device; 0: all; "
                        "default: the algorithm's choice)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per throughput row (median)")
    p.add_argument("--num-updates", type=int, default=None,
                   help="override the number of updates (all methods; --throughput defaults to 20)")
    p.add_argument("--coin-game", default=None, metavar="ALGOS",
                   help="the Coin Game's own-coin fractions of these learners (comma-separated: nl_pg, lola_pg, "
                        "lola_dice) instead of the IPD comparison")
    p.add_argument("--coin-game-runs", default=None, metavar="DIRS",
                   help="summarise finished train.py Coin Game runs (comma-separated output directories, or "
                        "coin_game.json summaries written earlier) as --coin-game does, without training; runs of "
                        "one algorithm on disjoint seeds (train.py --first-seed) are merged into one row")
    p.add_argument("--tail", type=float, default=0.1,
                   help="--coin-game, --coin-game-runs: share of the last updates averaged")
    p.add_argument("--quick", action="store_true", help="8 seeds, 20 updates of 16 episodes")
    p.add_argument("--out-dir", default=None, help="where the comparison's JSON and plot go")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    args = p.parse_args(argv)
    if args.seeds <= 0 or args.repeats <= 0:
        p.error("--seeds and --repeats must be positive")
    try:
        seed_batches = [None] if args.seed_batch is None else [int(b) for b in args.seed_batch.split(",")]
        counts = [int(c) for c in args.seed_counts.split(",")]
    except ValueError:
        p.error("--seed-batch and --seed-counts take comma-separated integers")
    if any(b < 0 for b in seed_batches if b is not None) or any(c <= 0 for c in counts):
        p.error("--seed-batch values must be >= 0 and --seed-counts positive")
    overrides = {"num_updates": 20, "batch_size": 16} if args.quick else {}
    if args.num_updates is not None:
        if args.num_updates <= 0:
            p.error("--num-updates must be positive")
        overrides["num_updates"] = args.num_updates
    if args.throughput:
        overrides.setdefault("num_updates", 20)
        if args.quick:
            counts = [c for c in counts if c <= 64]
        doc = throughput(counts, overrides, args.repeats, seed_batches)
    elif args.coin_game_runs:
        if not 0 < args.tail <= 1:
            p.error("--tail lies in (0, 1]")
        try:
            doc = coin_game_from_runs(args.coin_game_runs.split(","), args.tail, args.out_dir)
        except (OSError, ValueError, KeyError) as e:
            p.error(f"--coin-game-runs: {e}")
    elif args.coin_game:
        names = args.coin_game.split(",")
        if any(n not in COIN_METHODS for n in names) or not 0 < args.tail <= 1:
            p.error(f"--coin-game takes some of {', '.join(COIN_METHODS)}; --tail lies in (0, 1]")
        doc = coin_game(names, 2 if args.quick else args.seeds, overrides, args.tail, args.out_dir)
    else:
        doc = comparison(args.env, 8 if args.quick else args.seeds, overrides, args.out_dir)
    if args.json:
        print(dump(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
