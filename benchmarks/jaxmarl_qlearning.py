"""JaxMARL's side of ``value_decomposition.py``'s side-by-side, run in its own Python (``--jaxmarl-python``: a separate
environment holding ``jaxmarl`` and ``flashbax``, whose JAX may differ from this project's). It imports none of this
project's packages, only ``benchmarks.peer_scripts``.

    PYTHON benchmarks/jaxmarl_qlearning.py --repo PATH --algo qmix --seeds 4 --steps 150000 --out peer.json
    PYTHON benchmarks/jaxmarl_qlearning.py --random-policy 1024 --out random.json

``--algo``: JaxMARL's ``make_train`` of that script (``PEER_SCRIPTS``) with its MPE config, jitted and vmapped over
the seeds as its ``single_run`` does, compiled ahead of time and run once; writes the timings (wall and process CPU
seconds), the JAX versions and, per seed, its greedy test return (the mean over ``TEST_NUM_ENVS`` episodes of the
agents' returns times the number of agents, i.e. their sum) at each test point (every ``TEST_INTERVAL`` of the
updates). ``--random-policy N``: the team return of uniformly random actions over N episodes of ``PEER_ENV``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

if __name__ == "__main__":  # run as a script: the repository root on sys.path instead of this file's folder
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.peer_scripts import import_script, make_jaxmarl_rollout, read_yaml_configs  # noqa: E402

PEER_ENV = "MPE_simple_spread_v3"  # JaxMARL's name of MPE spread
PEER_SCRIPTS = {"qmix": "qmix_rnn.py", "vdn": "vdn_rnn.py"}  # in JaxMARL's baselines/QLearning
PEER_CONFIG = "ql_rnn_mpe.yaml"  # its MPE config of iql, vdn and qmix (config/alg/)
PEER_HORIZON = 25  # MPE's episode length
WANDB_LOG: list[dict] = []  # what JaxMARL's training function hands to wandb.log (import_script's stub)


def peer_config(repo: str, steps: int) -> dict:
    """JaxMARL's config of its QLearning baselines on MPE spread, merged as its entry point merges them
    (``config.yaml``, then ``alg/PEER_CONFIG``), at ``steps`` environment steps per seed, logging to the stub."""
    folder = os.path.join(repo, "baselines", "QLearning", "config")
    cfg = read_yaml_configs([os.path.join(folder, name) for name in ("config.yaml", os.path.join("alg", PEER_CONFIG))])
    if cfg["ENV_NAME"] != PEER_ENV:
        raise ValueError(f"{PEER_CONFIG} trains on {cfg['ENV_NAME']}, not {PEER_ENV}")
    cfg.update(TOTAL_TIMESTEPS=steps, WANDB_MODE="stub", WANDB_LOG_ALL_SEEDS=True, SAVE_PATH=None)
    return cfg


def versions() -> dict:
    """This process's JAX and jaxmarl versions and device count."""
    import jaxlib
    import jaxmarl

    return {"jax_version": jax.__version__, "jaxlib_version": getattr(jaxlib, "__version__", None),
            "jaxmarl_version": getattr(jaxmarl, "__version__", None), "devices": jax.device_count(),
            "python": sys.version.split()[0]}


def run_peer(repo: str, algo: str, seeds: int, steps: int) -> dict:
    """JaxMARL's ``algo`` on ``seeds`` seeds vmapped, compiled ahead of time and run once -> timings, its test points
    (update counts) and test returns [S, P] (as lists)."""
    cfg = peer_config(repo, steps)
    module = import_script(os.path.join(repo, "baselines", "QLearning", PEER_SCRIPTS[algo]),
                           f"jaxmarl_baseline_{algo}", WANDB_LOG)
    env = module.env_from_config(copy.deepcopy(cfg))[0]
    train = jax.jit(jax.vmap(module.make_train(dict(cfg), env)))
    rngs = jax.random.split(jax.random.PRNGKey(int(cfg["SEED"])), seeds)
    WANDB_LOG.clear()
    start, cpu_start = time.perf_counter(), time.process_time()
    compiled = train.lower(rngs).compile()
    compile_s, compile_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    start, cpu_start = time.perf_counter(), time.process_time()
    jax.block_until_ready(compiled(rngs))
    run_s, run_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    updates = int(cfg["TOTAL_TIMESTEPS"]) // int(cfg["NUM_STEPS"]) // int(cfg["NUM_ENVS"])
    interval = int(updates * cfg["TEST_INTERVAL"])
    by_seed: dict[str, dict[int, float]] = {}
    for record in WANDB_LOG:
        for key, value in record.items():
            seed, _, name = key.partition("/")
            if name == "test_returned_episode_returns":
                n = int(record[f"{seed}/update_steps"])
                if n % interval == 0:
                    by_seed.setdefault(seed, {})[n] = float(value)
    points = sorted(set.intersection(*(set(v) for v in by_seed.values())))
    returns = [[by_seed[seed][n] for n in points] for seed in sorted(by_seed)]
    return {"compile_s": compile_s, "run_s": run_s, "compile_cpu_s": compile_cpu_s, "run_cpu_s": run_cpu_s,
            "updates": points, "test_return": returns, "logged_seeds": len(by_seed), "config": cfg, **versions()}


def random_policy(episodes: int) -> dict:
    """The team returns (the agents' returns summed) of ``episodes`` episodes of uniformly random actions."""
    import jaxmarl

    rollout = make_jaxmarl_rollout(jaxmarl.make(PEER_ENV), episodes, PEER_HORIZON)
    returns = jax.jit(rollout)(jax.random.PRNGKey(0))[2]
    return {"episodes": episodes, "team_returns": np.asarray(sum(returns.values())).tolist(), **versions()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", help="a checkout of JaxMARL's repository (its baselines/QLearning)")
    p.add_argument("--algo", choices=tuple(PEER_SCRIPTS))
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=150_000, help="environment steps per seed")
    p.add_argument("--random-policy", type=int, metavar="EPISODES", help="only the random-policy returns")
    p.add_argument("--out", required=True, help="write the JSON document here")
    args = p.parse_args(argv)
    if args.random_policy is None and (args.algo is None or args.repo is None):
        p.error("give --algo and --repo, or --random-policy EPISODES")
    if args.repo and not os.path.isdir(os.path.join(args.repo, "baselines", "QLearning")):
        p.error(f"--repo: {args.repo} holds no baselines/QLearning")
    if args.seeds <= 0 or args.steps <= 0 or (args.random_policy is not None and args.random_policy <= 0):
        p.error("--seeds, --steps and --random-policy must be positive")
    doc = (random_policy(args.random_policy) if args.random_policy is not None
           else run_peer(args.repo, args.algo, args.seeds, args.steps))
    with open(args.out, "w") as f:
        json.dump(doc, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
