"""HARL's suites: our MAPPO beside JaxMARL's own MAPPO on SMAX 3m, at equal environment steps, run in turn in one
process; and the full budgets of HARL's SMAC and multi-agent MuJoCo runs, to run on a GPU.

    python benchmarks/harl_suites.py --jaxmarl-repo /path/to/JaxMARL --out results.json

The side by side: JaxMARL's ``baselines/MAPPO/mappo_rnn_smax.py`` (from a checkout of its repository, never part of
this project; its ``config/mappo_homogenous_rnn_smax.yaml`` with ``MAP_NAME`` set to ``--map``) and our ``mappo`` on
``jaxmarl:smax`` (the same ``HeuristicEnemySMAX`` map and ``ENV_KWARGS``) with its settings (``matched_overrides``):
its rollout shape (``NUM_ENVS`` x ``NUM_STEPS``), optimiser, epochs, minibatches, clipping, discount, GRU width, one
shared actor on the observation alone (``OBS_WITH_AGENT_ID`` puts the agent's id in the critic's world state only),
a ``Dense -> ReLU`` after the GRU (``head_layers=1``), no LayerNorm, no value normalisation, and its critic: one
network applied per agent to the environment's world state with that agent's one-hot id appended (its
``SMAXWorldStateWrapper``; ours ``agent_state=True``). What differs: the layer after the GRU starts at gain 2 in its
actor (sqrt 2 in ours).
``--set FIELD=VALUE`` changes our side's config further. Both sides report,
per update, the mean return of the episodes that ended in it (agent 0's: SMAX's reward is common) and the share of
them won (JaxMARL's ``SMAXLogWrapper``: the last reward >= 1, its won-battle bonus; ours: ``info["won"]``, the same
step). A seed's score is the mean over the last ``--window`` updates; each side reports the mean and 95% Student-t
interval over seeds. Timing: JaxMARL's training function logs through a host callback, so its seeds run one after
another from one compiled program; ours run one after another in one program too (``lax.map``, the one-seed path
``train.py`` takes). Order: JaxMARL's compile and a warm-up run of its first seed, our compile, warm-up and timed run,
then JaxMARL's timed seeds; compile times apart from run times.

CPU budget (the default, for a 2-core machine shared with other work): ``--updates 5`` of 128 x 128 steps (81,920
environment steps per seed), 2 seeds a side, about 10 minutes in all. At that budget neither side has begun to win.

Full budgets (``FULL_BUDGETS``, printed by ``--gpu-commands``): JaxMARL's MAPPO budget (1e7 steps, 610 updates) for
the side by side, and HARL's tuned runs of happo / hatrpo / mappo on SMAX 3m, 2s3z, 3s5z (20M steps) and MABrax
Ant 4x2 and Walker 2x3 (10M steps) through ``train.py --set preset=harl_smac`` / ``harl_mamujoco``.
"""
from __future__ import annotations

import argparse
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
from benchmarks.common import finish, machine_info, train_many  # noqa: E402
from benchmarks.peer_scripts import import_script, read_yaml_configs  # noqa: E402
from jaxmarl_core.config import parse_overrides  # noqa: E402
from jaxmarl_core.outputs import mean_ci95  # noqa: E402

PEER_SCRIPT = os.path.join("baselines", "MAPPO", "mappo_rnn_smax.py")
PEER_CONFIG = os.path.join("baselines", "MAPPO", "config", "mappo_homogenous_rnn_smax.yaml")
MAP = "3m"
UPDATES = 5
SEEDS = 2
WINDOW = 2
WANDB_LOG: list[dict] = []  # what JaxMARL's training function hands to wandb.log (peer_scripts.import_script's stub)

FULL_BUDGETS = [
    "python benchmarks/harl_suites.py --jaxmarl-repo PATH --updates 610 --seeds 4 --window 30 "
    "--out benchmarks/results/gpu/harl_suites.json",
    *(f"python train.py --algo {algo} --env jaxmarl:smax --env-arg map_name={m} --set preset=harl_smac --seeds 5"
      for m in ("3m", "2s3z", "3s5z") for algo in ("happo", "hatrpo", "mappo")),
    *(f"python train.py --algo {algo} --env jaxmarl:{task} --set preset=harl_mamujoco --seeds 5"
      for task in ("ant_4x2", "walker2d_2x3") for algo in ("happo", "hatrpo", "mappo")),
    *(f"python train.py --algo {algo} --env jaxmarl:halfcheetah_6x1 --set preset=harl_mamujoco_halfcheetah_2x3 "
      "--seeds 5" for algo in ("happo", "hatrpo", "mappo")),
]


def peer_config(repo: str, map_name: str, updates: int, shape: tuple[int, int] | None = None) -> dict:
    """JaxMARL's MAPPO config on SMAX (``PEER_CONFIG``) on ``map_name`` for ``updates`` updates, logging to the
    stub; ``shape``: (NUM_ENVS, NUM_STEPS) in place of its own (smoke runs)."""
    cfg = read_yaml_configs([os.path.join(repo, PEER_CONFIG)])
    if shape is not None:
        cfg.update(NUM_ENVS=shape[0], NUM_STEPS=shape[1])
    steps = updates * int(cfg["NUM_ENVS"]) * int(cfg["NUM_STEPS"])
    cfg.update(MAP_NAME=map_name, TOTAL_TIMESTEPS=steps, WANDB_MODE="stub")
    return cfg


def matched_overrides(cfg: dict) -> dict:
    """Our ``mappo`` fields set to JaxMARL's MAPPO settings (see the module)."""
    per_update = int(cfg["NUM_ENVS"]) * int(cfg["NUM_STEPS"])
    updates = int(cfg["TOTAL_TIMESTEPS"]) // per_update
    return dict(num_envs=int(cfg["NUM_ENVS"]), rollout_len=int(cfg["NUM_STEPS"]), total_steps=updates * per_update,
                lr=float(cfg["LR"]), critic_lr=float(cfg["LR"]), lr_decay=bool(cfg["ANNEAL_LR"]),
                ppo_epochs=int(cfg["UPDATE_EPOCHS"]), critic_epochs=int(cfg["UPDATE_EPOCHS"]),
                num_minibatches=int(cfg["NUM_MINIBATCHES"]), gamma=float(cfg["GAMMA"]),
                gae_lambda=float(cfg["GAE_LAMBDA"]), clip_eps=float(cfg["CLIP_EPS"]),
                entropy_coef=float(cfg["ENT_COEF"]), value_coef=float(cfg["VF_COEF"]),
                max_grad_norm=float(cfg["MAX_GRAD_NORM"]), recurrent=True, hidden_size=int(cfg["GRU_HIDDEN_DIM"]),
                hidden_layers=1, head_layers=1, agent_id=False, share_params=True, use_value_norm=False,
                huber_delta=0.0, feature_norm=False, layer_norm=False, agent_state=True)


def run_peer(module, cfg: dict, seed: int, compiled=None) -> dict:
    """JaxMARL's ``make_train(cfg)`` compiled ahead of time (unless given) and run on ``PRNGKey(seed)`` -> timings
    and per update its logged ``returns`` and ``win_rate`` (NaN where no episode ended)."""
    key = jax.random.PRNGKey(seed)
    compile_s = 0.0
    if compiled is None:
        start = time.perf_counter()
        compiled = jax.jit(module.make_train(dict(cfg))).lower(key).compile()
        compile_s = time.perf_counter() - start
    WANDB_LOG.clear()
    start = time.perf_counter()
    jax.block_until_ready(compiled(key))
    run_s = time.perf_counter() - start
    records = sorted(WANDB_LOG, key=lambda r: float(r["env_step"]))
    return {"compiled": compiled, "compile_s": compile_s, "run_s": run_s,
            "returns": np.array([float(r["returns"]) for r in records]),
            "win_rate": np.array([float(r["win_rate"]) for r in records])}


def side_by_side(repo: str, map_name: str, updates: int, seeds: int, window: int,
                 shape: tuple[int, int] | None = None, extra: dict | None = None) -> dict:
    """``extra``: our config's fields set over ``matched_overrides``."""
    cfg = peer_config(repo, map_name, updates, shape)
    module = import_script(os.path.join(repo, PEER_SCRIPT), "jaxmarl_baseline_mappo_smax", WANDB_LOG)
    env = envs.make("jaxmarl:smax", map_name=map_name, **cfg["ENV_KWARGS"])
    overrides = {**matched_overrides(cfg), **(extra or {})}
    first = run_peer(module, cfg, 0)  # compiles; its run is the warm-up (a first call costs more)
    ours = train_many("mappo", env, overrides, seeds)
    peer = [run_peer(module, cfg, s, first["compiled"]) for s in range(seeds)]
    steps = updates * int(cfg["NUM_ENVS"]) * int(cfg["NUM_STEPS"])
    theirs = {"returns": np.stack([p["returns"] for p in peer]), "win_rate": np.stack([p["win_rate"] for p in peer])}
    mine = {"returns": ours["metrics"]["episode_return"][:, :, 0], "win_rate": ours["metrics"]["win_rate"]}
    peer_run_s = sum(p["run_s"] for p in peer)
    sides = {
        "ours": {"compile_s": ours["compile_s"], "run_s": ours["median_s"],
                 "env_steps_per_s": seeds * steps / ours["median_s"], **_scores(mine, window)},
        "jaxmarl": {"compile_s": first["compile_s"], "first_run_s": first["run_s"], "run_s": peer_run_s,
                    "run_s_per_seed": [p["run_s"] for p in peer],
                    "env_steps_per_s": seeds * steps / peer_run_s, **_scores(theirs, window)},
    }
    ours_score, peer_score = sides["ours"]["final_return"]["mean"], sides["jaxmarl"]["final_return"]["mean"]
    return {"map": map_name, "env": env.name, "env_kwargs": cfg["ENV_KWARGS"], "seeds": seeds, "updates": updates,
            "env_steps_per_seed": steps, "window": window, "jaxmarl_script": PEER_SCRIPT.replace(os.sep, "/"),
            "jaxmarl_config": {k: v for k, v in cfg.items() if k.isupper() and not k.startswith("WANDB")},
            "our_overrides": overrides, **sides,
            "ours_return_at_least_jaxmarl": bool(ours_score >= peer_score),
            "speedup_run": peer_run_s / ours["median_s"]}


def _scores(side: dict, window: int) -> dict:
    """Per-update curves [S, U] -> seeds' final scores (mean of the last ``window`` updates) and the mean curve."""
    out = {}
    for name, values in side.items():
        values = np.asarray(values, np.float64)
        out[f"final_{'return' if name == 'returns' else name}"] = mean_ci95(np.nanmean(values[:, -window:], axis=1))
        out[f"curve_{'return' if name == 'returns' else name}"] = np.round(np.nanmean(values, axis=0), 4).tolist()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jaxmarl-repo", metavar="PATH", help="a checkout of JaxMARL's repository (its baselines/MAPPO)")
    p.add_argument("--map", default=MAP, help=f"the SMAX map (default {MAP})")
    p.add_argument("--updates", type=int, default=UPDATES, help=f"updates per seed on both sides (default {UPDATES})")
    p.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per side (default {SEEDS})")
    p.add_argument("--window", type=int, default=WINDOW, help=f"final updates a seed's score averages ({WINDOW})")
    p.add_argument("--shape", type=int, nargs=2, metavar=("ENVS", "STEPS"),
                   help="environments and steps per update in place of JaxMARL's (smoke runs)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="our mappo's config field over JaxMARL's settings (e.g. head_layers=1)")
    p.add_argument("--gpu-commands", action="store_true", help="print the full budgets' commands and exit")
    p.add_argument("--out", help="write the JSON document here")
    p.add_argument("--json", action="store_true", help="print the JSON document")
    args = p.parse_args(argv)
    if args.gpu_commands:
        print("\n".join(FULL_BUDGETS))
        return 0
    if not args.jaxmarl_repo:
        p.error("--jaxmarl-repo PATH is required (a checkout of JaxMARL's repository)")
    for name in ("updates", "seeds", "window"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    try:
        extra = parse_overrides(type(algos.get("mappo").default_config(envs.make("matrix_climbing"))), args.set)
    except ValueError as e:
        p.error(str(e))
    start = time.time()
    doc = {"machine": machine_info(), "full_budgets": FULL_BUDGETS, "load_avg_start": os.getloadavg()}
    doc["smax"] = side_by_side(args.jaxmarl_repo, args.map, args.updates, args.seeds, min(args.window, args.updates),
                               tuple(args.shape) if args.shape else None, extra)
    doc["load_avg_end"] = os.getloadavg()
    s = doc["smax"]
    print(f"SMAX {args.map}, {s['env_steps_per_seed']:,} steps x {args.seeds} seeds: return ours "
          f"{s['ours']['final_return']['mean']:.3f}, JaxMARL {s['jaxmarl']['final_return']['mean']:.3f}; win rate "
          f"ours {s['ours']['final_win_rate']['mean']:.3f}, JaxMARL {s['jaxmarl']['final_win_rate']['mean']:.3f}; run "
          f"{s['ours']['run_s']:.1f} s vs {s['jaxmarl']['run_s']:.1f} s ({s['speedup_run']:.2f}x)", file=sys.stderr)
    return finish(doc, start, args.out, args.json)


if __name__ == "__main__":
    sys.exit(main())
