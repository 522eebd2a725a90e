"""The DiCE paper's IPD comparison (LOLA-DiCE at several look-ahead depths against LOLA-PG and NL-PG), plus
LOLA-OM and the exact-gradient learners, and the throughput of ``lola_dice`` at several seed counts.

    python benchmarks/opponent_shaping.py --json --out-dir runs/opponent_shaping      # the comparison (64 seeds)
    python benchmarks/opponent_shaping.py --throughput --json                          # seeds x updates per second
    python benchmarks/opponent_shaping.py --throughput --seed-batch 1,0 --json        # ... one seed at a time, and all
    python benchmarks/opponent_shaping.py --coin-game nl_pg,lola_pg --seeds 4 --out-dir DIR   # own-coin fractions
    python benchmarks/opponent_shaping.py --coin-game-runs RUN1,RUN2 --out-dir DIR  # ... of train.py output dirs
    python benchmarks/opponent_shaping.py --coin-game-runs A/coin_game.json,RUN3     # ... with earlier summaries
    python benchmarks/opponent_shaping.py --quick                                      # a small smoke run
    python benchmarks/opponent_shaping.py --lola-table --out-dir DIR                   # the LOLA paper's Table 3
    python benchmarks/opponent_shaping.py --lola-coin nl_pg,lola_pg,lola_om --seeds 4 --checkpoint-every 50 \
        --time-budget 3600 --out-dir DIR          # its Coin Game (resumable: rerun the same command to continue)
    python benchmarks/opponent_shaping.py --coin-critic --set batch_size=200 --set num_updates=40 \
        --set episode_chunks=1 --out-dir DIR     # the reference code's critic, with and without batch norm
    python benchmarks/opponent_shaping.py --coin-directions 10 --out-dir DIR   # first step, LOLA's term: signal, noise

Every method trains with its published settings (``default_config``) on ``--seeds`` seeds inside one jit;
compile time is reported apart from run time. The comparison writes ``ipd_comparison.png`` and
``ipd_comparison.json`` to ``--out-dir``; ``--json`` prints the JSON document on stdout.

``--lola-table`` trains NL-Ex, LOLA-Ex, NL-PG, LOLA-PG and LOLA-OM with the LOLA paper's settings (the sampled
learners with ``preset=lola_paper``; IMP discounted by 0.9) and classifies each agent's final memory-one policy
with ``envs.iterated.tit_for_tat`` (IPD) and ``mixed_nash`` (IMP), beside the paper's Table 3 (``lola_table.json``,
``.png``). ``--lola-coin`` trains the Coin Game learners at the paper's settings in chunks of ``--checkpoint-every``
updates, round-robin over the learners, checkpointing each learner's seeds after every chunk and rewriting
``coin_game_lola_paper.json`` (and ``.png``) with the updates done so far; the same command resumes from the
checkpoints, ``--time-budget`` stops it cleanly, and ``--first-seed`` gives a run of other seeds (joined later
with ``--coin-game-runs``).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
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
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from envs.iterated import mixed_nash, tit_for_tat  # noqa: E402
from jaxmarl_core import outputs  # noqa: E402
from jaxmarl_core.config import from_defaults, parse_overrides  # noqa: E402

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


COIN_METHODS = {"nl_pg": "NL-PG", "lola_pg": "LOLA-PG", "lola_om": "LOLA-OM", "lola_dice": "LOLA-DiCE K=1"}


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
             seed_ids: np.ndarray, report: bool = True, **extra) -> dict:
    """One learner's row (printed on stderr if ``report``): own [S, U] own-coin fractions (both agents averaged),
    reward [S, U, 2] per step, seed_ids [S] the seeds' indices (train.py's seed i)."""
    last = max(1, int(round(tail * own.shape[1])))
    final = own[:, -last:].mean(1)
    row = {"method": COIN_METHODS[algo_name], "algo": algo_name, **outputs.mean_ci95(final),
           "per_seed": final.tolist(), "seed_ids": [int(i) for i in seed_ids], "tail_updates": last,
           "reward_per_step": float(reward[:, -last:].mean()), "num_updates": num_updates, "batch_size": batch_size,
           **extra, "curve_mean": own.mean(0).tolist(),
           "curve_std": (own.std(0, ddof=1) if own.shape[0] > 1 else 0 * own[0]).tolist()}
    if report:
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
    for key in ("theta_moved", "theta_init_norm"):  # per seed, where every part has them
        if all(key in p for p in parts):
            row[key] = np.concatenate([p[key] for p in parts])[order].tolist()
    _report(row)
    return row


def _report(row: dict) -> None:
    print(f"{row['method']:14s} own-coin fraction {row['mean']:.3f} [{row['ci95_low']:.3f}, {row['ci95_high']:.3f}] "
          f"over the last {row['tail_updates']} logged updates ({row['n']} seeds)", file=sys.stderr)


def coin_doc(rows: list, out_dir: str | None, name: str = "coin_game", **extra) -> dict:
    seeds = max(r["n"] for r in rows)
    doc = {"benchmark": "coin_game_own_coins", "seeds": seeds, **machine_info(), **extra, "results": rows,
           "against_nl_pg": against_naive(rows)}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        dump(doc, os.path.join(out_dir, f"{name}.json"))
        bands = {f"{r['method']} ({r['n']} seeds)": (np.array(r["curve_mean"]), None if r.get("curve_std") is None
                                                      else 1.96 * np.array(r["curve_std"]) / np.sqrt(r["n"]))
                 for r in rows}
        plot(bands, "Coin Game: own-coin fraction (mean and 95% band)", "own-coin fraction",
             os.path.join(out_dir, f"{name}.png"))
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


# The LOLA paper's Table 3 (Foerster et al., 2018): the share of agents playing TFT (IPD) or Nash (IMP) and the
# average reward per step, R (std), at the end of training, 50 runs each. LOLA-OM is not in the table.
PAPER_TABLE_3 = {
    "NL-Ex": {"ipd": {"percent": 20.8, "reward": -1.98, "reward_std": 0.14},
              "imp": {"percent": 0.0, "reward": 0.0, "reward_std": 0.37}},
    "LOLA-Ex": {"ipd": {"percent": 81.0, "reward": -1.06, "reward_std": 0.19},
                "imp": {"percent": 98.8, "reward": 0.0, "reward_std": 0.02}},
    "NL-PG": {"ipd": {"percent": 0.0, "reward": -1.98, "reward_std": 0.01},
              "imp": {"percent": 13.2, "reward": 0.0, "reward_std": 0.19}},
    "LOLA-PG": {"ipd": {"percent": 66.4, "reward": -1.17, "reward_std": 0.34},
                "imp": {"percent": 93.2, "reward": 0.0, "reward_std": 0.06}},
}
TABLE_METHODS = {"nl_exact": "NL-Ex", "lola_exact": "LOLA-Ex", "nl_pg": "NL-PG", "lola_pg": "LOLA-PG",
                 "lola_om": "LOLA-OM"}
# Thresholds of the criteria: the first is the table's, the others show how much the shares depend on it.
TFT_MARGINS = (0.5, 0.25, 0.1)  # |P(C) - TFT's| below this in the four memory states
NASH_TOLS = (0.1, 0.05, 0.2)  # |P(heads) - 1/2| below this in all five states
PAPER_COIN = {"NL-PG": 0.5, "LOLA-PG": 0.8, "LOLA-OM": 0.6}  # own-coin fractions read off the paper's Coin Game plot


def table_env(game: str):
    """The game with the LOLA paper's discount (IMP 0.9; the IPD's 0.96 is the environment's default)."""
    if game == "imp":
        from algos.opponent_shaping import PAPER_IMP_DISCOUNT

        return envs.make("imp", discount=PAPER_IMP_DISCOUNT)
    return envs.make(game)


def criterion(game: str, p_coop: np.ndarray, threshold: float) -> np.ndarray:
    """bool [...]: TFT (IPD) or Nash (IMP) of memory-one policies p_coop [..., 5]."""
    return tit_for_tat(p_coop, threshold) if game == "ipd" else mixed_nash(p_coop, threshold)


def bootstrap_percent(hits: np.ndarray, draws: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the percentage of True in hits [S, 2], resampling runs (the two agents of
    a run are not independent)."""
    rng = np.random.default_rng(0)
    runs = hits.mean(-1)
    means = runs[rng.integers(0, runs.size, (draws, runs.size))].mean(-1) * 100
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def table_row(game: str, algo_name: str, env, res: dict) -> dict:
    """One method on one game: criteria of the final policies, per-step rewards, and the criterion's curve."""
    import jax

    theta = res["out"].state.theta  # [S, 2, 5]
    p_final = np.asarray(env.policy_probs(theta))
    params = env.default_params
    reward = np.asarray(jax.vmap(lambda t: env.exact_value(t, params, per_step=True))(theta))  # [S, 2]
    thresholds = TFT_MARGINS if game == "ipd" else NASH_TOLS
    hits = criterion(game, p_final, thresholds[0])  # [S, 2]
    low, high = bootstrap_percent(hits)
    label = TABLE_METHODS[algo_name]
    curve = criterion(game, res["metrics"]["p_coop"], thresholds[0]).mean((0, 2)) * 100  # [U]: before each update
    row = {"method": label, "algo": algo_name, "game": game, "criterion": "TFT" if game == "ipd" else "Nash",
           "threshold": thresholds[0], "percent": float(hits.mean() * 100), "percent_ci95": [low, high],
           "percent_runs_both": float(hits.all(-1).mean() * 100),
           "percent_at": {str(t): float(criterion(game, p_final, t).mean() * 100) for t in thresholds},
           "reward": float(reward.mean()), "reward_std": float(reward.std(ddof=1)),
           "reward_run_mean": outputs.mean_ci95(reward.mean(-1)), "p_coop_mean": p_final.mean(0).tolist(),
           "p_coop_final": p_final.tolist(), "paper": PAPER_TABLE_3.get(label, {}).get(game),
           "config": res["config"], "num_updates": res["num_updates"], "seeds": int(theta.shape[0]),
           "compile_s": res["compile_s"], "run_s": res["median_s"], "curve_percent": curve.tolist()}
    paper = row["paper"]
    print(f"{game.upper()} {label:8s} {row['criterion']} {row['percent']:5.1f}% [{low:5.1f}, {high:5.1f}] "
          f"(paper {paper['percent'] if paper else '-'})  R {row['reward']:+.3f} ({row['reward_std']:.2f}) "
          f"(paper {paper['reward'] if paper else '-'})  compile {res['compile_s']:.0f}s run {res['median_s']:.0f}s",
          file=sys.stderr, flush=True)
    return row


def lola_table(games: list[str], methods: list[str], seeds: int, pg_overrides: dict, out_dir: str | None,
               name: str = "lola_table") -> dict:
    """The LOLA paper's Table 3: every method on every game with its paper settings (``pg_overrides`` changes the
    sampled learners' ``preset=lola_paper`` config); the JSON (and plot) is rewritten after each method."""
    rows: list[dict] = []
    doc = {"benchmark": "lola_table_3", "seeds": seeds, **machine_info(), "pg_overrides": pg_overrides,
           "criteria": {"ipd": f"tit_for_tat, margin {TFT_MARGINS[0]} (share of agents)",
                        "imp": f"mixed_nash, tolerance {NASH_TOLS[0]} (share of agents)"},
           "paper": "Foerster et al. (2018), Learning with Opponent-Learning Awareness, Table 3", "results": rows}
    for game in games:
        env = table_env(game)
        for algo_name in methods:
            sampled = algo_name not in ("nl_exact", "lola_exact")
            overrides = {"preset": "lola_paper", **pg_overrides} if sampled else {}
            rows.append(table_row(game, algo_name, env, train_many(algo_name, env, overrides, seeds, warmup=False)))
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
                dump(doc, os.path.join(out_dir, f"{name}.json"))
                plot_table(rows, os.path.join(out_dir, f"{name}.png"))
    return doc


def plot_table(rows: list[dict], path: str) -> None:
    """Per game, each method's share of agents meeting the criterion over training, its paper value dotted."""
    plt = outputs.pyplot()
    games = sorted({r["game"] for r in rows}, key=["ipd", "imp"].index)
    fig, axes = plt.subplots(1, len(games), figsize=(6 * len(games), 4.2), squeeze=False)
    for ax, game in zip(axes[0], games):
        for r in (r for r in rows if r["game"] == game):
            curve = np.array(r["curve_percent"])
            x = np.linspace(0, 1, curve.size)
            (line,) = ax.plot(x, curve, label=f"{r['method']} ({r['percent']:.1f}%)", lw=1.3,
                              ls="--" if r["method"].endswith("-Ex") else "-")
            if r["paper"]:
                ax.axhline(r["paper"]["percent"], color=line.get_color(), ls=":", lw=1)
        ax.set_xlabel("share of training")
        ax.set_ylabel(f"% of agents playing {'TFT' if game == 'ipd' else 'Nash'}")
        ax.set_title(f"{game.upper()} (dotted: the paper's Table 3)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=110)


def same_study(stored: dict, settings: dict, config_type: type) -> bool:
    """Whether a study's stored settings (JSON) are ``settings``, config fields added to ``config_type`` since the
    study began counting as the same where they hold their defaults (they change nothing it ran)."""
    defaults = json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(config_type)
                                      if f.default is not dataclasses.MISSING}))
    old = stored.get("config", {})
    added = {k: v for k, v in settings["config"].items() if k not in old}
    if any(v != defaults.get(k) for k, v in added.items()):
        return False
    return {**stored, "config": {**old, **added}} == settings


class CoinStudyRun:
    """One Coin Game learner's seeds in a resumable study: a compiled chunk of ``chunk`` updates, its orbax
    checkpoints (state and the metrics so far) and the seeds' initial policies (``theta0.npy``, so that a resume
    initialises nothing) in ``directory``, and the metrics on the host."""

    METRICS = ("own_coin_fraction", "reward_per_step")  # [2] per update, and the critic's loss with critic="trunk"

    def __init__(self, algo_name: str, env, overrides: dict, seeds: int, first_seed: int, chunk: int,
                 directory: str):
        import jax

        from jaxmarl_core import sweep
        from jaxmarl_core.checkpoint import Checkpoints

        algo = algos.get(algo_name)
        self.algo_name, self.seeds, self.first_seed, self.directory = algo_name, seeds, first_seed, directory
        self.config = from_defaults(algo.default_config, env, overrides)
        self.config.validate(env)
        self.trainer = algo.make_train(env, self.config)
        self.num_updates = self.trainer.num_updates
        if self.num_updates % chunk:
            raise ValueError(f"--checkpoint-every ({chunk}) must divide the number of updates ({self.num_updates})")
        self.chunk = chunk
        self.metric_names = self.metrics_of(self.config)
        settings = {"algo": algo_name, "config": dataclasses.asdict(self.config), "seeds": seeds,
                    "first_seed": first_seed, "chunk": chunk}
        os.makedirs(directory, exist_ok=True)
        settings_path = os.path.join(directory, "study.json")
        settings, stored = json.loads(json.dumps(settings)), None
        if os.path.exists(settings_path):
            with open(settings_path) as f:
                stored = json.load(f)
            if not same_study(stored, settings, type(self.config)):
                raise ValueError(f"{directory} holds a study with other settings: the same --set, --env-arg, --seeds "
                                 "and --checkpoint-every resume it, another --out-dir starts a new one")
        if stored != settings:
            outputs.atomic_write_json(settings_path, settings)
        self.keys = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(0, seeds, first_seed),
                                                      sweep.padded_size(seeds)))
        seed_batch = sweep.resolve_seed_batch(self.trainer, None)
        t0 = time.perf_counter()
        self.ckpts = Checkpoints(os.path.join(directory, "checkpoints"), keep=2)
        step = self.ckpts.latest_step()
        init = sweep.jit(sweep.map_seeds(self.trainer.init_state, seed_batch), self.trainer.xla)
        theta0_path = os.path.join(directory, "theta0.npy")  # [S, 2, P]: the seeds' initial policies
        if step is not None and os.path.exists(theta0_path):  # resumed: the state's shapes only, nothing initialised
            self.state, self.theta0 = jax.eval_shape(init, self.keys), np.load(theta0_path)
        else:
            self.state = init(self.keys)
            self.theta0 = self._theta()
            buffer = io.BytesIO()
            np.save(buffer, self.theta0)
            outputs.atomic_write(theta0_path, buffer.getvalue())
        self._chunk_fn = sweep.jit(sweep.map_seeds(lambda sk, start: self.trainer.run(*sk, start, chunk),
                                                   seed_batch), self.trainer.xla)
        self.compile_s, self.run_s, self.done, self.trained = 0.0, 0.0, 0, 0  # trained: updates of this process
        self.metrics = {k: np.zeros((seeds, 0, 2), np.float32) for k in self.metric_names}
        if step is not None:
            one_seed = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), self.state)
            restored = self.ckpts.restore(step, checkpoint_like(one_seed, seeds, step, self.metric_names))
            self.state = sweep.shard_seeds(sweep.pad_seeds(restored["state"], sweep.padded_size(seeds)))
            self.metrics, self.done = restored["metrics"], step
        self.compile_s += time.perf_counter() - t0
        self.last_chunk_s = 0.0

    @classmethod
    def metrics_of(cls, config) -> tuple[str, ...]:
        """The metrics a study of ``config`` checkpoints."""
        return cls.METRICS + (("value_error",) if config.critic == "trunk" else ())

    def advance(self) -> None:
        """Train the next chunk of updates and checkpoint."""
        import jax

        t0 = time.perf_counter()
        if self.last_chunk_s == 0.0:  # compile apart from the first chunk's run
            self._chunk_fn = self._chunk_fn.lower((self.state, self.keys), np.int32(0)).compile()
            self.compile_s += time.perf_counter() - t0
            t0 = time.perf_counter()
        self.state, m = self._chunk_fn((self.state, self.keys), np.int32(self.done))
        m = jax.device_get(m)
        self.last_chunk_s = time.perf_counter() - t0
        self.run_s += self.last_chunk_s
        self.metrics = {k: np.concatenate([self.metrics[k], np.asarray(m[k][:self.seeds], np.float32)], axis=1)
                        for k in self.metric_names}
        self.done += self.chunk
        self.trained += self.chunk
        self.ckpts.save(self.done, {"state": jax.tree.map(lambda x: x[:self.seeds], self.state),
                                    "metrics": self.metrics})

    def _theta(self) -> np.ndarray:
        """[S, 2, P]: the seeds' policy parameters now."""
        import jax

        return np.asarray(jax.device_get(self.state.theta))[:self.seeds]

    def window_row(self, tail: float, upto: int) -> dict:
        """The own-coin fraction over the last ``tail`` share of the first ``upto`` updates (mean over seeds, 95%
        interval, per seed) and the seeds."""
        own = self.metrics["own_coin_fraction"][:, :upto].mean(-1)  # [S, upto]
        row = coin_row(self.algo_name, own, self.metrics["reward_per_step"][:, :upto], tail, self.num_updates,
                       self.config.batch_size, self.first_seed + np.arange(self.seeds), report=False)
        return {k: row[k] for k in ("method", "algo", "mean", "ci95_low", "ci95_high", "n", "per_seed", "seed_ids",
                                    "tail_updates")}

    def row(self, tail: float) -> dict:
        own = self.metrics["own_coin_fraction"].mean(-1)  # [S, U]
        critic = {"value_error_curve": self.metrics["value_error"].mean(0).tolist()} if "value_error" in self.metrics \
            else {}  # [U, 2]: each agent's critic loss, mean over seeds
        return coin_row(self.algo_name, own, self.metrics["reward_per_step"], tail, self.num_updates,
                        self.config.batch_size, self.first_seed + np.arange(self.seeds), logged_updates=self.done,
                        updates_done=self.done, compile_s=self.compile_s, run_s=self.run_s,
                        theta_moved=np.linalg.norm(self._theta() - self.theta0, axis=-1).tolist(),
                        theta_init_norm=np.linalg.norm(self.theta0, axis=-1).tolist(),
                        s_per_update=self.run_s / self.trained if self.trained else None, sources=[self.directory],
                        paper=PAPER_COIN.get(COIN_METHODS[self.algo_name]), **critic)


def coin_study(algo_names: list[str], seeds: int, first_seed: int, overrides: dict, env_args: dict, chunk: int,
               budget: float, tail: float, out_dir: str) -> dict:
    """The Coin Game at the LOLA paper's settings (``preset=lola_paper`` and ``overrides``): chunks of ``chunk``
    updates round-robin over the learners until all are done or the next chunk would pass ``budget`` seconds; each
    chunk is checkpointed and the summary JSON rewritten, so an interrupted study loses at most a chunk per learner."""
    start = time.perf_counter()
    env = envs.make("coin_game", **env_args)
    last = first_seed + seeds - 1
    runs = [CoinStudyRun(name, env, {"preset": "lola_paper", **overrides}, seeds, first_seed, chunk,
                         os.path.join(out_dir, f"{name}_seeds_{first_seed}_{last}")) for name in algo_names]
    doc: dict = {}
    while True:
        pending = [r for r in runs if r.done < r.num_updates]
        progressed = False
        for r in pending:
            elapsed = time.perf_counter() - start
            if elapsed + max(r.last_chunk_s, 0.0) > budget:
                continue
            r.advance()
            progressed = True
            print(f"{r.algo_name}: update {r.done}/{r.num_updates}, {r.last_chunk_s / chunk:.3g} s/update "
                  f"(compile {r.compile_s:.0f} s), {time.perf_counter() - start:.0f} s elapsed", file=sys.stderr,
                  flush=True)
            coin_doc([x.row(tail) for x in runs if x.done > 0], out_dir, "coin_game_lola_paper", env_args=env_args,
                     overrides=overrides, budget_s=budget, elapsed_s=time.perf_counter() - start,
                     at_equal_updates=at_equal_updates(runs, tail))
        if not pending or not progressed:
            break
    rows = [x.row(tail) for x in runs if x.done > 0]
    if rows:  # also where this call had nothing left to train: the summary of the checkpoints as they are
        doc = coin_doc(rows, out_dir, "coin_game_lola_paper", env_args=env_args, overrides=overrides, budget_s=budget,
                       elapsed_s=time.perf_counter() - start, at_equal_updates=at_equal_updates(runs, tail))
    for r in runs:
        r.ckpts.close()
    return doc


def checkpoint_like(one_seed, seeds: int, step: int, metric_names: tuple[str, ...]) -> dict:
    """The tree a study's checkpoint ``step`` holds, as zeros: the seeds' states [S, ...] (``one_seed``: one seed's
    state or its shapes) and the metrics [S, step, 2]."""
    import jax

    return {"state": jax.tree.map(lambda x: np.zeros((seeds,) + tuple(x.shape), x.dtype), one_seed),
            "metrics": {k: np.zeros((seeds, step, 2), np.float32) for k in metric_names}}


def study_state(directory: str, env) -> tuple[str, object, int, int, object]:
    """A ``--lola-coin`` learner's directory -> (its algorithm's name, its config, the updates done, its first
    seed, that seed's state in the last checkpoint). Nothing is initialised: the state's shapes come from
    ``jax.eval_shape``."""
    import jax

    from jaxmarl_core.checkpoint import Checkpoints

    with open(os.path.join(directory, "study.json")) as f:
        stored = json.load(f)
    algo = algos.get(stored["algo"])
    config = from_defaults(algo.default_config, env, stored["config"])
    config.validate(env)
    shapes = jax.eval_shape(algo.make_train(env, config).init_state, jax.random.PRNGKey(0))
    ckpts = Checkpoints(os.path.join(directory, "checkpoints"))
    try:
        step = ckpts.latest_step()
        if step is None:
            raise ValueError(f"{directory} holds no checkpoint yet")
        restored = ckpts.restore(step, checkpoint_like(shapes, stored["seeds"], step, CoinStudyRun.metrics_of(config)))
    finally:
        ckpts.close()
    return stored["algo"], config, step, stored["first_seed"], jax.tree.map(lambda x: x[0], restored["state"])


def at_equal_updates(runs: list[CoinStudyRun], tail: float) -> dict | None:
    """The study's learners at equal training: each one over the last ``tail`` share of the first U updates, U the
    fewest any learner with a checkpoint has done, and each against NL-PG there (the rows' own ``against_nl_pg``
    compares each learner's own last updates, at unequal progress while the study runs)."""
    started = [r for r in runs if r.done > 0]
    if not started:
        return None
    upto = min(r.done for r in started)
    rows = [r.window_row(tail, upto) for r in started]
    return {"updates": upto, "results": rows, "against_nl_pg": against_naive(rows)}


def coin_critic(overrides: dict, env_args: dict, games: int, out_dir: str | None) -> dict:
    """The LOLA reference code's Coin Game critic (``critic="trunk"``, its SGD step of 1) with and without its batch
    normalisation (``batch_norm``). At the initialisation: the largest eigenvalue of the value head's Hessian, the
    second moment E[f f^T] of its features f (agent 0's encoder output and a constant) over ``games`` games of 150
    steps played with uniformly random actions; a plain gradient step on the head is stable only below 2 / that.
    Then ``nl_pg`` at the paper's settings with that critic (``overrides``: e.g. ``batch_size``, ``num_updates``),
    one seed: each update's critic loss, own-coin fraction and distance of theta from its start, and at the end the
    share of encoder outputs that are not zero on the same observations (ReLUs still alive)."""
    import jax
    import jax.numpy as jnp

    from algos.opponent_shaping import make_policy
    from jaxmarl_core.rollout import reset_carry, rollout

    env = envs.make("coin_game", **env_args)
    params = env.default_params

    def uniform(key, obs, state):
        return jax.random.randint(key, obs.shape[:2], 0, env.num_actions), obs[:, 0], state

    carry = reset_carry(jax.random.PRNGKey(1), env, params, None, batch_size=games)
    obs = jax.jit(lambda k, c: rollout(k, env, params, uniform, c, env.num_steps, batched=True)[1].extras)(
        jax.random.PRNGKey(2), carry)  # [T, games, *obs]: agent 0's view
    rows = []
    for batch_norm in (False, True):
        cfg = from_defaults(algos.get("nl_pg").default_config, env,
                            {"preset": "lola_paper", "critic": "trunk", **overrides, "batch_norm": batch_norm})
        cfg.validate(env)
        policy = make_policy(env, cfg)
        trainer = algos.get("nl_pg").make_train(env, cfg)
        state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
        features = jax.jit(policy.trunk_features)

        def curvature(theta):
            f = np.asarray(features(theta, obs), np.float64)
            f = f.reshape(-1, f.shape[-1])
            return float(np.linalg.eigvalsh(f.T @ f / len(f))[-1]), float((f[:, :-1] != 0).mean())

        top, _ = curvature(state.theta[0])
        theta0, update, trace = np.asarray(state.theta), jax.jit(trainer.update), []
        for u in range(cfg.num_updates):
            state, m = update(state, jax.random.PRNGKey(100 + u))
            trace.append({"value_error": np.asarray(m["value_error"]).tolist(),
                          "own_coin_fraction": float(jnp.mean(m["own_coin_fraction"])),
                          "theta_moved": np.linalg.norm(np.asarray(state.theta) - theta0, axis=-1).tolist()})
        rows.append({"batch_norm": batch_norm, "top_eigenvalue": top, "largest_stable_step": 2.0 / top,
                     "critic_lr": cfg.critic_lr, "batch_size": cfg.batch_size, "num_updates": cfg.num_updates,
                     "active_features_at_end": curvature(state.theta[0])[1], "updates": trace})
        print(f"batch_norm={batch_norm}: top eigenvalue {top:.3g} (stable below {2 / top:.3g}); value error "
              f"{trace[0]['value_error']} -> {trace[-1]['value_error']}, theta moved {trace[-1]['theta_moved']}",
              file=sys.stderr, flush=True)
    doc = {"what": "the LOLA reference code's Coin Game critic with and without batch normalisation",
           "games": games, "overrides": overrides, "env_args": env_args, "rows": rows, "machine": machine_info()}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        outputs.atomic_write_json(os.path.join(out_dir, "coin_game_critic.json"), doc)
    return doc


def coin_directions(overrides: dict, env_args: dict, batches: int, out_dir: str | None,
                    study: str | None = None) -> dict:
    """Signal and noise of the update directions on the Coin Game: at the initialisation (``init_state`` of seed 0)
    of ``preset=lola_paper`` changed by ``overrides``, with and without the batch normalisation, or, with ``study``
    (a ``--lola-coin`` learner's directory), at its first seed's state in its last checkpoint, the study's settings
    changed by ``overrides`` (a larger batch, say; not the network's). ``batches`` batches sampled from that state
    with different keys. Per agent: ``nl_pg``'s direction g, the mean squared norm of a batch's g and an unbiased
    estimate of |E g|^2, (|sum g|^2 - sum |g|^2) / (K (K - 1)), and the distance one step of delta travels along
    E g; the same for LOLA's shaping term s = eta * (its second-order part), ``lola_pg``'s direction less
    ``nl_pg``'s on the same batch (the same key samples the same batch), and an unbiased estimate of E g . E s;
    each estimate with its jackknife standard error."""
    import jax

    env = envs.make("coin_game", **env_args)
    base, start, origin = {"preset": "lola_paper"}, None, {"from": "initialisation"}
    if study:
        algo_name, config, done, seed, start = study_state(study, env)
        network = {k: getattr(config, k) for k in ("network", "hidden", "batch_norm")}
        if any(overrides.get(k, v) != v for k, v in network.items()):
            raise ValueError(f"--from-study: the network is the study's ({network}); --set changes the rest")
        base = {k: v for k, v in dataclasses.asdict(config).items() if k != "variant"}
        origin = {"from": "study", "study_algo": algo_name, "updates_done": done, "seed": seed}
    rows = []
    for batch_norm in (False, True) if start is None else (base["batch_norm"],):
        settings = {**base, **overrides, "batch_norm": batch_norm}
        cfg = {name: from_defaults(algos.get(name).default_config, env, settings) for name in ("nl_pg", "lola_pg")}
        for c in cfg.values():
            c.validate(env)
        trainers = {name: algos.get(name).make_train(env, c) for name, c in cfg.items()}
        state = jax.jit(trainers["nl_pg"].init_state)(jax.random.PRNGKey(0)) if start is None else start
        directions = {}
        for name, trainer in trainers.items():  # both step from the same state
            update = jax.jit(trainer.update)
            directions[name] = np.stack([np.asarray((update(state, jax.random.PRNGKey(100 + k))[0].theta
                                                     - state.theta) / cfg[name].lr, np.float64)
                                         for k in range(batches)])
        g, shaping = directions["nl_pg"], directions["lola_pg"] - directions["nl_pg"]  # [K, 2, P]
        signal = _mean_product(g, g)  # [2]
        rows.append({"batch_norm": batch_norm, **origin, "batch_size": cfg["nl_pg"].batch_size,
                     "lr": cfg["nl_pg"].lr, "batches": batches, "mean_norm_sq": (g * g).sum(-1).mean(0).tolist(),
                     "norm_mean_direction_sq": signal.tolist(),
                     "step_along_mean": (cfg["nl_pg"].lr * np.sqrt(np.maximum(signal, 0.0))).tolist(),
                     "theta_norm": np.linalg.norm(np.asarray(state.theta), axis=-1).tolist(),
                     "lookahead_lr": cfg["lola_pg"].lookahead_lr,
                     "shaping_mean_norm_sq": (shaping * shaping).sum(-1).mean(0).tolist(),
                     "shaping_norm_mean_sq": _mean_product(shaping, shaping).tolist(),
                     "naive_dot_shaping_means": _mean_product(g, shaping).tolist(),
                     "standard_errors": {"norm_mean_direction_sq": _jackknife_se(g, g).tolist(),
                                         "shaping_norm_mean_sq": _jackknife_se(shaping, shaping).tolist(),
                                         "naive_dot_shaping_means": _jackknife_se(g, shaping).tolist()}})
        print(f"batch_norm={batch_norm}: |E g|^2 {rows[-1]['norm_mean_direction_sq']}, mean |g|^2 "
              f"{rows[-1]['mean_norm_sq']}; shaping |E s|^2 {rows[-1]['shaping_norm_mean_sq']}, mean |s|^2 "
              f"{rows[-1]['shaping_mean_norm_sq']}", file=sys.stderr, flush=True)
    where = "the initialisation" if start is None else f"{algo_name}'s state after {done} updates"
    doc = {"what": f"nl_pg's update direction and lola_pg's shaping term at {where} on the Coin Game",
           "overrides": overrides, "env_args": env_args, "rows": rows, "machine": machine_info()}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        outputs.atomic_write_json(os.path.join(out_dir, "coin_game_directions.json"), doc)
    return doc


def _mean_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b [K, N, P]: K paired draws of two random vectors per n -> [N], an unbiased estimate of E a . E b from
    the pairs of different draws, (sum a . sum b - sum a . b) / (K (K - 1))."""
    k = a.shape[0]
    return ((a.sum(0) * b.sum(0)).sum(-1) - (a * b).sum((0, 2))) / (k * (k - 1))


def _jackknife_se(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b [K, N, P] (K >= 3) -> [N]: the jackknife standard error of ``_mean_product(a, b)`` from its K
    leave-one-draw-out estimates. Conservative: about the estimate's spread where the means dominate it, up to
    (2 (K - 1) / (K - 2))^(1/2) times it (1.5 at K = 10) where they are near zero."""
    k = a.shape[0]
    leave_out = np.stack([_mean_product(np.delete(a, i, 0), np.delete(b, i, 0)) for i in range(k)])  # [K, N]
    return np.sqrt((k - 1) / k * ((leave_out - leave_out.mean(0)) ** 2).sum(0))


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
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per method (default 64; --lola-table 50; --lola-coin 4)")
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
    p.add_argument("--lola-table", action="store_true", help="the LOLA paper's Table 3 (IPD and IMP)")
    p.add_argument("--games", default="ipd,imp", help="--lola-table: the games (comma-separated)")
    p.add_argument("--methods", default=",".join(TABLE_METHODS),
                   help="--lola-table: the methods (comma-separated algorithm names)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="--lola-table, --lola-coin: change a field of the sampled learners' preset=lola_paper config")
    p.add_argument("--name", default=None,
                   help="--lola-table: the output files' name (default lola_table): one per setting of a sweep")
    p.add_argument("--lola-coin", default=None, metavar="ALGOS",
                   help="the Coin Game at the LOLA paper's settings for these learners (comma-separated: nl_pg, "
                        "lola_pg, lola_om), resumable")
    p.add_argument("--first-seed", type=int, default=0, help="--lola-coin: train seeds K, ..., K + SEEDS - 1")
    p.add_argument("--checkpoint-every", type=int, default=50,
                   help="--lola-coin: updates per chunk, each checkpointed (must divide the number of updates)")
    p.add_argument("--time-budget", type=float, default=float("inf"),
                   help="--lola-coin: seconds; no chunk starts that would end after them")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="--lola-coin: Coin Game constructor arguments (e.g. num_steps for a small test)")
    p.add_argument("--coin-critic", action="store_true",
                   help="the LOLA reference code's Coin Game critic: its Hessian's scale with and without batch "
                        "normalisation, and nl_pg trained with it (--set batch_size=..., num_updates=...)")
    p.add_argument("--coin-directions", type=int, default=0, metavar="K",
                   help="nl_pg's update direction and lola_pg's shaping term at the initialisation (or --from-study) "
                        "on the Coin Game from K >= 3 batches, with and without batch normalisation (signal |E g|^2 "
                        "and mean |g|^2)")
    p.add_argument("--from-study", default=None, metavar="DIR",
                   help="--coin-directions: measure at the last checkpoint of this --lola-coin learner's directory "
                        "(e.g. OUT/nl_pg_seeds_0_0) instead of the initialisation, with the study's settings as --set "
                        "changes them (e.g. batch_size; not the network)")
    p.add_argument("--quick", action="store_true", help="8 seeds, 20 updates of 16 episodes")
    p.add_argument("--out-dir", default=None, help="where the comparison's JSON and plot go")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = 50 if args.lola_table else 4 if args.lola_coin else 64
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
    if args.from_study and not args.coin_directions:
        p.error("--from-study goes with --coin-directions")
    if args.lola_table or args.lola_coin or args.coin_critic or args.coin_directions:
        return lola_main(p, args, overrides)
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


def lola_main(p: argparse.ArgumentParser, args, overrides: dict) -> int:
    """--lola-table, --lola-coin, --coin-critic, --coin-directions: arguments checked (one-line errors) before anything
    compiles."""
    from algos.opponent_shaping import ShapingConfig

    try:
        overrides = {**overrides, **parse_overrides(ShapingConfig, args.set)}
        env_args = envs.parse_env_args("coin_game", args.env_arg)
    except ValueError as e:
        p.error(str(e))
    if args.coin_critic or args.coin_directions:
        if args.coin_directions in (1, 2) or args.coin_directions < 0:
            p.error("--coin-directions takes at least 3 batches")
        try:
            doc = (coin_critic(overrides, env_args, 300, args.out_dir) if args.coin_critic else
                   coin_directions(overrides, env_args, args.coin_directions, args.out_dir, args.from_study))
        except (OSError, ValueError, KeyError) as e:
            p.error(str(e))
    elif args.lola_table:
        games, methods = args.games.split(","), args.methods.split(",")
        if any(g not in ("ipd", "imp") for g in games) or any(m not in TABLE_METHODS for m in methods):
            p.error(f"--games takes ipd, imp; --methods some of {', '.join(TABLE_METHODS)}")
        try:
            for g, m in itertools.product(games, methods):
                if m not in ("nl_exact", "lola_exact"):
                    from_defaults(algos.get(m).default_config, table_env(g),
                                  {"preset": "lola_paper", **overrides}).validate(table_env(g))
        except ValueError as e:
            p.error(str(e))
        doc = lola_table(games, methods, args.seeds, overrides, args.out_dir, args.name or "lola_table")
    else:
        names = args.lola_coin.split(",")
        if any(n not in ("nl_pg", "lola_pg", "lola_om") for n in names) or not 0 < args.tail <= 1:
            p.error("--lola-coin takes some of nl_pg, lola_pg, lola_om; --tail lies in (0, 1]")
        if not args.out_dir or args.first_seed < 0 or args.checkpoint_every <= 0 or not args.time_budget > 0:
            p.error("--lola-coin needs --out-dir, --first-seed >= 0, --checkpoint-every > 0 and --time-budget > 0")
        try:
            doc = coin_study(names, args.seeds, args.first_seed, overrides, env_args, args.checkpoint_every,
                             args.time_budget, args.tail, args.out_dir)
        except ValueError as e:
            p.error(str(e))
    if args.json:
        print(dump(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
