"""Environment throughput: environment steps per second of registered environments at several batch sizes.

For each (environment, batch size) one jitted function resets a batch of games (``jax.vmap(env.reset)``) and runs
``--steps`` steps under ``jax.lax.scan``; each step draws uniform random *legal* actions (uniform over
``env.avail_actions`` for discrete spaces, ``space.sample`` otherwise) and calls ``env.step``, which resets finished
games automatically. The function is compiled ahead of time (``jax.jit(f).lower(...).compile()``), so compile time
is reported apart; then it runs once to warm up and ``--repeats`` timed times (each ending in
``jax.block_until_ready``), and the median wall time gives

    steps/s       = batch * steps / median     (one env.step of a batch of B games counts B env steps)
    agent-steps/s = steps/s * num_agents

Observations, states and summed rewards are carried through the scan and returned, so XLA cannot drop any of the
work. Peers (docs/design.md, "Benchmarks"): when the ``jaxmarl`` package is importable, the JaxMARL equivalents of the
selected environments (``PEER_ENVS``) are measured the same way in the same run. For the MPE scenarios, PettingZoo's
``mpe2`` (the reference implementation, numpy) is measured too when installed: a Python loop over its parallel API at
batch size 1 (random ``action_space(agent).sample()`` actions, a reset when the episode ends, ``--steps`` steps per
timed run). mpe2 has no batched API (each world is a Python object stepped alone), so a batch of B worlds costs B
times one world's steps and its steps/s cannot grow with the batch: only batch size 1 is measured.

    python benchmarks/envs.py                                   # table on stdout
    python benchmarks/envs.py --json --out bench.json           # one JSON document on stdout, and in a file
    python benchmarks/envs.py --quick --envs ipd,matrix_pd --batch-sizes 1,4
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

# Run as ``python benchmarks/envs.py``, this file's directory would come first on sys.path and ``import envs`` would
# find this script instead of the environment package: put the repository root there instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import envs  # noqa: E402
from benchmarks.common import RolloutSizes, dump, machine_info, time_compiled  # noqa: E402
from benchmarks.peer_scripts import make_jaxmarl_rollout  # noqa: E402
from jaxmarl_core.env import Environment  # noqa: E402
from jaxmarl_core.spaces import Discrete  # noqa: E402

SIZES = RolloutSizes(steps=1000, repeats=5, quick_steps=100, quick_repeats=3, batch_sizes=(1, 1024, 8192))

# Our environment name -> the JaxMARL registry name of the same game. JaxMARL (0.2) has no one-shot matrix games nor
# memory-one iterated games (its ``storm`` "in the matrix" games are grid worlds); the MPE scenarios map one to one
# (JaxMARL's defaults are mpe2's: discrete actions, the same agent and landmark counts).
PEER_ENVS: dict[str, str] = {
    "mpe_simple": "MPE_simple_v3", "mpe_spread": "MPE_simple_spread_v3", "mpe_adversary": "MPE_simple_adversary_v3",
    "mpe_tag": "MPE_simple_tag_v3", "mpe_push": "MPE_simple_push_v3", "mpe_reference": "MPE_simple_reference_v3",
    "mpe_speaker_listener": "MPE_simple_speaker_listener_v4", "mpe_crypto": "MPE_simple_crypto_v3",
    "mpe_world_comm": "MPE_simple_world_comm_v3",
}
# Our environment name -> the mpe2 module of the same scenario (built with its default arguments, discrete actions).
MPE2_ENVS: dict[str, str] = {name: peer[len("MPE_"):] for name, peer in PEER_ENVS.items() if name.startswith("mpe_")}
MPE2_NOTE = "Python loop over mpe2's parallel API, one world (no batched API: B worlds cost B times one world's steps)"


# -- the measured functions -----------------------------------------------------------------------------------------
def sample_actions(env: Environment, key: jax.Array, state: Any, params: Any) -> jax.Array:
    """Uniform random legal actions of one game: ``[N]`` for discrete spaces, ``[N, A]`` (padded) otherwise.

    Discrete: one uniform draw per agent picks the ``floor(u * k)``-th of its ``k`` legal actions
    (``avail_actions``), as cheap as a peer's one ``randint`` per agent (a Gumbel draw per action would cost
    ``A`` random numbers per agent, which dominates cheap steps with many actions, e.g. 50 in MPE reference)."""
    spaces = env.action_spaces
    if all(isinstance(s, Discrete) for s in spaces):
        legal = env.avail_actions(state, params)  # bool [N, A]
        rank = jnp.floor(jax.random.uniform(key, (legal.shape[0], 1)) * jnp.sum(legal, axis=-1, keepdims=True))
        return jnp.argmax(jnp.cumsum(legal, axis=-1) > rank, axis=-1).astype(jnp.int32)
    rows = [jnp.reshape(s.sample(k), (-1,)) for s, k in zip(spaces, jax.random.split(key, len(spaces)))]
    width = max(r.shape[0] for r in rows)
    return jnp.stack([jnp.pad(r, (0, width - r.shape[0])) for r in rows])


def make_rollout(env: Environment, batch_size: int, steps: int) -> Callable:
    """``f(key, params) -> (obs, state, reward_sum)``: reset ``batch_size`` games, then ``steps`` random steps."""

    def one_step(key, state, params):
        k_act, k_env = jax.random.split(key)
        actions = sample_actions(env, k_act, state, params)
        return env.step(k_env, state, actions, params)

    batched_step = jax.vmap(one_step, in_axes=(0, 0, None))

    def rollout(key, params):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, batch_size), params)
        reward_sum = jnp.zeros((batch_size, env.num_agents), jnp.float32)

        def body(carry, k):
            _, state, reward_sum = carry
            ts = batched_step(jax.random.split(k, batch_size), state, params)
            return (ts.obs, ts.state, reward_sum + ts.reward), None

        carry, _ = jax.lax.scan(body, (obs, state, reward_sum), jax.random.split(k_run, steps))
        return carry

    return rollout


# -- timing -----------------------------------------------------------------------------------------------------
def result_row(env_name: str, batch_size: int, num_agents: int, steps: int, compile_s: float,
               runs: list[float]) -> dict:
    """One result record (the JSON schema of ``results`` entries)."""
    median = statistics.median(runs)
    steps_per_s = batch_size * steps / median
    return {"env": env_name, "batch_size": batch_size, "num_agents": num_agents, "steps": steps,
            "compile_s": compile_s, "median_s": median, "runs_s": runs, "steps_per_s": steps_per_s,
            "agent_steps_per_s": steps_per_s * num_agents}


def benchmark_env(name: str, batch_size: int, steps: int, repeats: int, seed: int = 0) -> dict:
    """Measure one of our registered environments at one batch size."""
    env = envs.make(name)
    rollout = make_rollout(env, batch_size, steps)
    compile_s, runs, _ = time_compiled(rollout, (jax.random.PRNGKey(seed), env.default_params), repeats)
    return result_row(name, batch_size, env.num_agents, steps, compile_s, runs)


def peer_benchmarks(env_names: list[str], batch_sizes: list[int], steps: int, repeats: int,
                    seed: int = 0) -> dict:
    """Peers measured in this run: ``{"jaxmarl": "not installed"}`` or ``{"jaxmarl": {version, results, unmapped}}``.

    JaxMARL results use the same rollout, timing and schema as ours; ``env`` is our name and ``peer_env`` theirs.
    A peer that fails to build or run is recorded with its ``error`` instead of numbers.
    """
    if importlib.util.find_spec("jaxmarl") is None:
        return {"jaxmarl": "not installed"}
    if not any(name in PEER_ENVS for name in env_names):
        return {"jaxmarl": {"version": "not imported", "results": [], "unmapped": list(env_names)}}
    try:
        with contextlib.redirect_stdout(sys.stderr):  # jaxmarl prints while importing; stdout may carry the JSON
            import jaxmarl
    except ImportError as e:
        return {"jaxmarl": f"not importable: {e}"}
    results = []
    for name in env_names:
        if name not in PEER_ENVS:
            continue
        for batch_size in batch_sizes:
            row = {"env": name, "peer_env": PEER_ENVS[name], "batch_size": batch_size}
            try:
                env = jaxmarl.make(PEER_ENVS[name])
                rollout = make_jaxmarl_rollout(env, batch_size, steps)
                compile_s, runs, _ = time_compiled(rollout, (jax.random.PRNGKey(seed),), repeats)
                row.update(result_row(name, batch_size, env.num_agents, steps, compile_s, runs))
            except Exception as e:  # a peer's failure must not lose our own numbers
                row["error"] = f"{type(e).__name__}: {e}"
            results.append(row)
    return {"jaxmarl": {"version": getattr(jaxmarl, "__version__", "unknown"), "results": results,
                        "unmapped": [n for n in env_names if n not in PEER_ENVS]}}


def make_mpe2_rollout(module_name: str, steps: int, seed: int = 0) -> Callable[[], float]:
    """``f() -> reward_sum``: ``steps`` steps of one mpe2 world with random actions, resetting when it ends."""
    module = importlib.import_module(f"mpe2.{module_name}")
    env = module.parallel_env()
    env.reset(seed=seed)
    for i, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + i)

    def rollout():
        total = 0.0
        for _ in range(steps):
            if not env.agents:
                env.reset()
            actions = {a: env.action_space(a).sample() for a in env.agents}
            _, rewards, _, _, _ = env.step(actions)
            total += sum(rewards.values())
        return total

    return rollout


def mpe2_benchmarks(env_names: list[str], steps: int, repeats: int, seed: int = 0) -> dict | str:
    """mpe2 rows (batch size 1, same schema as ours, ``compile_s`` 0) or why there are none."""
    names = [n for n in env_names if n in MPE2_ENVS]
    if not names:
        return "no MPE environment selected"
    if importlib.util.find_spec("mpe2") is None:
        return "not installed"
    import mpe2

    results = []
    for name in names:
        row = {"env": name, "peer_env": MPE2_ENVS[name], "batch_size": 1}
        try:
            rollout = make_mpe2_rollout(MPE2_ENVS[name], steps, seed)
            rollout()  # warm-up
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                rollout()
                runs.append(time.perf_counter() - start)
            row.update(result_row(name, 1, envs.make(name).num_agents, steps, 0.0, runs))
        except Exception as e:  # a peer's failure must not lose our own numbers
            row["error"] = f"{type(e).__name__}: {e}"
        results.append(row)
    return {"version": getattr(mpe2, "__version__", "unknown"), "note": MPE2_NOTE, "results": results}


# -- reporting ------------------------------------------------------------------------------------------------------
def format_table(doc: dict) -> str:
    """The human-readable report of a benchmark document."""
    m = doc
    lines = [f"backend {m['backend']} ({m['device']}), jax {m['jax_version']}, {m['cpu_count']} CPUs, "
             f"{doc['settings']['steps']} steps, median of {doc['settings']['repeats']} runs",
             ""]
    header = f"{'env':<34} {'batch':>6} {'agents':>6} {'compile s':>9} {'median s':>9} {'steps/s':>12} " \
             f"{'agent-steps/s':>14}"
    rows = [("", r) for r in doc["results"]]
    for peer, found in doc["peers"].items():
        if isinstance(found, dict):
            rows += [(f"{peer}:", r) for r in found["results"]]
    lines += [header, "-" * len(header)]
    for prefix, r in rows:
        label = f"{prefix}{r.get('peer_env', r['env'])}"
        if "error" in r:
            lines.append(f"{label:<34} {r['batch_size']:>6}  error: {r['error'].splitlines()[0]}")
        else:
            lines.append(f"{label:<34} {r['batch_size']:>6} {r['num_agents']:>6} {r['compile_s']:>9.2f} "
                         f"{r['median_s']:>9.4f} {r['steps_per_s']:>12.4g} {r['agent_steps_per_s']:>14.4g}")
    lines.append("")
    for peer, found in doc["peers"].items():
        lines.append(f"peers: {peer} " + (found if isinstance(found, str) else
                                          f"{found['version']}, {len(found['results'])} rows"))
    lines += ratio_lines(doc)
    return "\n".join(lines)


def ratio_lines(doc: dict) -> list[str]:
    """``ours / peer`` steps-per-second ratios for each (env, batch size) measured by both."""
    ours = {(r["env"], r["batch_size"]): r["steps_per_s"] for r in doc["results"] if "error" not in r}
    lines = []
    for peer, found in doc["peers"].items():
        if not isinstance(found, dict):
            continue
        for r in found["results"]:
            key = (r["env"], r["batch_size"])
            if "error" not in r and key in ours:
                lines.append(f"ours / {peer} {r['peer_env']} batch {r['batch_size']}: "
                             f"{ours[key] / r['steps_per_s']:.2f}x")
    return lines


# -- command line ---------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = SIZES.parser(__doc__)
    parser.add_argument("--envs", help=f"comma-separated names (default: all: {', '.join(envs.list_envs())})")
    parser.add_argument("--no-peers", action="store_true", help="skip peer libraries even when installed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = SIZES.parse(parser, argv)
    names = [n.strip() for n in args.envs.split(",") if n.strip()] if args.envs else envs.list_envs()
    unknown = [n for n in names if n not in envs.list_envs()]
    if unknown or not names:
        parser.error(f"unknown environment(s) {', '.join(unknown) or '(none given)'}; "
                     f"valid: {', '.join(envs.list_envs())}")
    args.envs = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {"envs": args.envs, "batch_sizes": args.batch_sizes, "steps": args.steps, "repeats": args.repeats,
                "quick": args.quick, "seed": args.seed}
    start = time.perf_counter()
    results = []
    for name in args.envs:
        for batch_size in args.batch_sizes:
            try:
                row = benchmark_env(name, batch_size, args.steps, args.repeats, args.seed)
            except Exception as e:  # record and go on: one broken env must not lose the others' numbers
                row = {"env": name, "batch_size": batch_size, "error": f"{type(e).__name__}: {e}"}
            results.append(row)
            if not args.quiet:
                done = (f"{row['steps_per_s']:.4g} steps/s, compile {row['compile_s']:.2f} s"
                        if "error" not in row else row["error"])
                print(f"[bench] {name} batch {batch_size}: {done}", file=sys.stderr, flush=True)
    if args.no_peers:
        peers = {"jaxmarl": "skipped (--no-peers)", "mpe2": "skipped (--no-peers)"}
    else:
        peers = peer_benchmarks(args.envs, args.batch_sizes, args.steps, args.repeats, args.seed)
        peers["mpe2"] = mpe2_benchmarks(args.envs, args.steps, args.repeats, args.seed)
    doc = {"benchmark": "envs", **machine_info(),
           "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "settings": settings, "results": results, "peers": peers,
           "total_wall_s": time.perf_counter() - start}
    text = dump(doc, args.out)
    print(text if args.json else format_table(doc), end="" if args.json else "\n")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
