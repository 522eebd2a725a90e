"""Cleanup and Harvest throughput: environment steps per second of ``envs.social_dilemmas`` at a batch of vmapped
games, beside SocialJax's implementation of the same games (``Clean_up``, ``Harvest_open``) in the same run where
``socialjax`` is importable.

Both sides: reset ``batch`` games (7 agents), then ``--steps`` steps under ``lax.scan`` with uniform random actions
(9 in Cleanup, 8 in Harvest), the observations ([7, 11, 11, C]) computed every step and carried through the scan,
episodes restarting at their horizon (1000 steps); compiled ahead of time, compile time reported apart. Ours is the
environment benchmark's rollout (``benchmarks.envs.make_rollout``); SocialJax's calls its ``step_env`` (which
resets inside at the horizon) with individual rewards. The two sides' timed runs alternate after a warm-up of each,
so a load shared with other processes falls on both.

    env-steps/s = batch * steps / median wall time (one env-step moves all 7 agents of one game)

``--frames DIR`` also writes one rendered frame of each game measured (after ``--frame-step`` random steps) as a PNG.

``--methods`` runs the AgA paper's method table instead (Li et al., 2024): Simul-Ind (``ippo`` on own rewards),
Simul-Co (``ippo``, ``team_reward``), SVO (``ippo``, ``svo_weight``), CGA (``cga_ppo``, gamma 1) and AgA
(``aga_ppo``) at each ``--lambdas`` value, ``--seeds`` seeds each, on ``--table-game`` with ``--table-agents`` agents
and ``--table-horizon``-step episodes (Cleanup on ``--table-layout``'s map), each update one whole episode in each
of ``--table-envs`` games; ``--baselines`` picks the baselines trained. Per seed, the final returns are each agent's
episode return averaged over the last ``--tail`` updates; then

    social welfare = sum_i return_i,    equality = 1 - Gini(returns)  (``jaxmarl_core.social.equality``)

with mean, sample standard deviation (``std``: the paper's table gives E's mean and std over 3 runs) and 95%
Student-t interval over seeds, a JSON document (with the 1-minute load average at the start and after each program)
and a plot of welfare and equality per update. Beside them, averaged over the same updates, how the game was played
(the environment's ``StepMetrics``, per episode summed over agents: apples eaten, and in Cleanup cleaning beams
fired, beams that hit dirt and dirty cells cleaned; Cleanup's mean dirt fraction) and, for AgA, the share of actor
steps in which its sign rule chose lam < 0 and in which each factor of the rule was negative. The baselines' seeds
run vmapped in one program per method, AgA's lambda values and seeds all in one (compile and run times per program).

``--trained-episode PATH`` trains one baseline (``--episode-method``, default Simul-Co) on the method table's game and
budget for one seed and renders an episode of its sampled policy: an animated GIF, or the first frame as a PNG.

    python benchmarks/social_dilemmas.py --json --out benchmarks/results/cpu/social_dilemmas.json \
        --frames benchmarks/results/cpu
    python benchmarks/social_dilemmas.py --quick --batch-sizes 2
    python benchmarks/social_dilemmas.py --methods --out benchmarks/results/cpu/social_dilemmas_methods.json
    python benchmarks/social_dilemmas.py --methods --table-game cleanup --table-layout small \
        --baselines Simul-Ind,Simul-Co,SVO --out benchmarks/results/cpu/social_dilemmas_methods_cleanup.json
    python benchmarks/social_dilemmas.py --trained-episode benchmarks/results/cpu/cleanup_simul_co_episode.gif \
        --table-game cleanup --table-layout small --table-updates 600
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from algos.onpolicy.model import build_model, make_policy  # noqa: E402
from benchmarks.common import RolloutSizes, emit, finish, machine_info, time_compiled, train_many  # noqa: E402
from benchmarks.envs import make_rollout  # noqa: E402
from envs.social_dilemmas import CLEANUP_MAPS, record_episode, save_frames  # noqa: E402
from jaxmarl_core import outputs, social, sweep  # noqa: E402
from jaxmarl_core.config import from_defaults  # noqa: E402
from jaxmarl_core.learner_view import LearnerView  # noqa: E402

GAMES = ("cleanup", "harvest")
SIZES = RolloutSizes(steps=100, repeats=5, quick_steps=5, quick_repeats=2, batch_sizes=(1024,))
LAMBDAS = (0.1, 1.0, 100.0, 1000.0)  # AgA's |lambda| values of the paper's table
SVO_WEIGHT, SVO_ANGLE = 0.5, 45.0  # our choice: the paper's SVO weight could not be read here
TABLE = dict(hidden_size=32, hidden_layers=1, lr=1e-3, critic_lr=1e-3)  # the small CPU budget's networks


BASELINES = (("Simul-Ind", "ippo", {}), ("Simul-Co", "ippo", {"team_reward": True}),
             ("SVO", "ippo", {"svo_weight": SVO_WEIGHT, "svo_angle": SVO_ANGLE}), ("CGA", "cga_ppo", {}))


# the environment's step metrics summed over agents and scaled to one episode (mean per step x horizon)
PER_EPISODE = ("apples_eaten", "clean_fired", "clean_hits", "cleaned")
AGA_SIGNS = ("aga_sign", "aga_stability_sign", "aga_alignment_sign")  # means over an update's actor steps


def table_row(label: str, algo: str, changes: dict, metrics: dict, compile_s: float, run_s: float, tail: int,
              horizon: int) -> dict:
    """One method's metrics (leaves [S, U, ...]: episode returns [S, U, N], the game's step metrics, AgA's signs) ->
    final returns per agent, welfare and equality with intervals, the game's behaviour (per episode: apples eaten,
    cleaning beams fired, beams that hit dirt, dirty cells cleaned; the dirt fraction), AgA's share of actor steps
    with lam < 0 and of each factor of its sign rule negative, and curves per update."""
    returns = metrics["episode_return"]
    final = returns[:, -tail:].mean(1)  # [S, N]
    welfare, equality = final.sum(-1), np.asarray(social.equality(final))
    row = {"method": label, "algo": algo, "changes": changes, "compile_s": compile_s, "run_s": run_s,
           "per_seed": {"returns": final.tolist(), "social_welfare": welfare.tolist(), "equality": equality.tolist()},
           "return_per_agent": outputs.mean_ci95(final.mean(-1)), "social_welfare": outputs.mean_ci95(welfare),
           "equality": outputs.mean_ci95(equality),
           "curves": {"social_welfare": returns.sum(-1).mean(0).tolist(),
                      "equality": np.asarray(social.equality(returns)).mean(0).tolist()}}
    behaviour = {name: horizon * metrics[name].reshape(*metrics[name].shape[:2], -1).sum(-1)
                 for name in PER_EPISODE if name in metrics}  # [S, U]
    if "dirt_fraction" in metrics:
        behaviour["dirt_fraction"] = metrics["dirt_fraction"]
    for name, per_update in behaviour.items():
        tail_mean = per_update[:, -tail:].mean(1)
        row[name] = outputs.mean_ci95(tail_mean)
        row["per_seed"][name] = tail_mean.tolist()
        row["curves"][name] = per_update.mean(0).tolist()
    for name in AGA_SIGNS:
        if name in metrics:  # a sign's mean m over steps of +-1 -> share negative (1 - m) / 2
            negative = (1.0 - metrics[name]) / 2.0  # [S, U]
            key = name.replace("_sign", "_negative_share")
            row[key] = outputs.mean_ci95(negative.mean(1))
            row["per_seed"][key] = negative.mean(1).tolist()
            row["curves"][key] = negative.mean(0).tolist()
    extra = "".join(f", {name} {row[name]['mean']:.3g}" for name in ("dirt_fraction", "clean_hits", "apples_eaten",
                                                                      "aga_negative_share") if name in row)
    print(f"[bench] {label}: welfare {row['social_welfare']['mean']:.2f}, equality {row['equality']['mean']:.3f} +- "
          f"{row['equality']['std']:.3f}{extra} "
          f"(compile {compile_s:.0f} s, run {run_s:.0f} s)", file=sys.stderr, flush=True)
    return row


def logged(metrics: dict) -> dict:
    """The metrics ``table_row`` reads."""
    names = ("episode_return", "dirt_fraction", *PER_EPISODE, *AGA_SIGNS)
    return {name: metrics[name] for name in names if name in metrics}


def train_aga_lambdas(env, changes: dict, lambdas: list[float], seeds: int) -> tuple[float, float, list[dict]]:
    """Every (lambda, seed) run of ``aga_ppo`` in one program, vmapped: ``aga_lambda`` enters the update only as a
    number, so it is batched like the seeds -> (compile s, run s, per lambda the metrics, leaves [S, U, ...])."""
    algo = algos.get("aga_ppo")
    config = from_defaults(algo.default_config, env, changes)
    config.validate(env)
    keys = jnp.tile(sweep.seed_keys(0, seeds), (len(lambdas), 1))
    lams = jnp.repeat(jnp.asarray(lambdas, jnp.float32), seeds)

    def one(key, lam):
        return logged(algo.make_train(env, dataclasses.replace(config, aga_lambda=lam))(key).metrics)

    compile_s, runs, metrics = time_compiled(jax.vmap(one), (keys, lams), 1, warmup=False)
    metrics = {name: np.asarray(v).reshape(len(lambdas), seeds, *v.shape[1:]) for name, v in metrics.items()}
    return compile_s, runs[0], [{name: v[i] for name, v in metrics.items()} for i in range(len(lambdas))]


PANELS = (("social_welfare", "social welfare (sum of episode returns)"), ("equality", "equality (1 - Gini)"),
          ("dirt_fraction", "dirt fraction (mean over the update's steps)"),
          ("clean_hits", "cleaning beams that hit dirt, per episode"))


def plot_table(doc: dict, path: str) -> None:
    """Social welfare and equality per update (means over seeds), one line per method; in Cleanup also the dirt
    fraction and the cleaning beams that hit dirt."""
    plt = outputs.pyplot()
    panels = [(key, title) for key, title in PANELS if key in doc["rows"][0]["curves"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    for row in doc["rows"]:
        for ax, (key, _) in zip(axes, panels):
            ax.plot(row["curves"][key], lw=1.2, label=row["method"])
    for ax, (_, title) in zip(axes, panels):
        ax.set_xlabel("update (one episode per game)")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    layout = f" ({doc['settings']['layout']} map)" if doc["settings"].get("layout") else ""
    fig.suptitle(f"{doc['settings']['game']}{layout}, {doc['settings']['agents']} agents, {doc['settings']['seeds']} "
                 "seeds")
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=110)


def table_setting(args) -> tuple:
    """The method table's game (``--table-*``) and the training budget every method shares -> (env, overrides)."""
    layout = {"layout": args.table_layout} if args.table_layout else {}
    env = envs.make(args.table_game, num_agents=args.table_agents, num_steps=args.table_horizon, **layout)
    budget = {**TABLE, "num_envs": args.table_envs, "rollout_len": args.table_horizon,
              "total_steps": args.table_envs * args.table_horizon * args.table_updates}
    return env, budget


def trained_episode(args) -> int:
    """Train ``--episode-method`` (one seed, the method table's game and budget), then render one episode of its
    sampled policy to ``--trained-episode`` (a GIF, or a PNG of the first frame) and report the episode's returns."""
    env, budget = table_setting(args)
    algo, changes = next((a, c) for label, a, c in BASELINES if label == args.episode_method)
    overrides = {**budget, **changes}
    res = train_many(algo, env, overrides, 1, warmup=False, first_seed=args.seed)
    config = from_defaults(algos.get(algo).default_config, env, overrides)
    model = build_model(LearnerView(env, with_state=config.centralised_critic), config)
    policy = make_policy(model, jax.tree.map(lambda x: x[0], res["out"].state.actor_params))
    view = LearnerView(env)  # the actors read observations only: no global state to record

    def act(key, obs):
        rec = jax.tree.map(lambda x: x[None], view.record(obs, None, env.default_params, False))
        return policy(key, rec, None)[0][0]

    frames, returns = jax.jit(lambda key: record_episode(env, key, act))(jax.random.PRNGKey(args.seed))
    save_frames(frames, args.trained_episode)
    print(f"[bench] {args.episode_method} after {args.table_updates} updates: episode returns "
          f"{np.round(np.asarray(returns), 2).tolist()} -> {args.trained_episode}", file=sys.stderr, flush=True)
    return 0


def method_table(args) -> int:
    start = time.time()
    env, budget = table_setting(args)
    rows, load = [], [os.getloadavg()[0]]
    for label, algo, changes in BASELINES:
        if label not in args.baselines:
            continue
        res = train_many(algo, env, {**budget, **changes}, args.seeds, warmup=False, seed_batch=args.seeds)
        rows.append(table_row(label, algo, changes, logged(res["metrics"]), res["compile_s"], res["runs_s"][0],
                              args.tail, args.table_horizon))
        load.append(os.getloadavg()[0])
    compile_s, run_s, per_lambda = train_aga_lambdas(env, budget, args.lambdas, args.seeds)
    rows += [table_row(f"AgA (lambda={lam:g})", "aga_ppo", {"aga_lambda": lam}, m, compile_s, run_s, args.tail,
                       args.table_horizon) for lam, m in zip(args.lambdas, per_lambda)]
    doc = {"benchmark": "social_dilemmas_methods", **machine_info(),
           "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "settings": {"game": args.table_game, "layout": args.table_layout, "agents": args.table_agents,
                        "horizon": args.table_horizon,
                        "envs": args.table_envs, "updates": args.table_updates, "seeds": args.seeds,
                        "tail": args.tail, "networks": TABLE, "svo": {"weight": SVO_WEIGHT, "angle": SVO_ANGLE}},
           "load_avg_1min": load + [os.getloadavg()[0]],  # at the start and after each program
           "rows": rows}
    return finish(doc, start, args.out, args.json, plot_table)


def socialjax_available() -> bool:
    try:
        import socialjax  # noqa: F401
    except ImportError:
        return False
    return True


def socialjax_env(game: str, num_agents: int):
    """SocialJax's environment of ``game`` with individual rewards."""
    if game == "cleanup":
        from socialjax.environments.cleanup.clean_up import Clean_up
        return Clean_up(num_agents=num_agents, shared_rewards=False)
    from socialjax.environments.common_harvest.harvest_open import Harvest_open
    return Harvest_open(num_agents=num_agents, shared_rewards=False)


def make_socialjax_rollout(env, num_actions: int, batch_size: int, steps: int):
    """``f(key) -> (obs, state, reward_sum)``: the same random rollout through SocialJax's ``reset``/``step_env``."""
    n = env.num_agents

    def one_step(key, state):
        k_act, k_env = jax.random.split(key)
        actions = jax.random.randint(k_act, (n,), 0, num_actions)
        obs, state, reward, _, _ = env.step_env(k_env, state, actions)
        return obs, state, reward

    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, batch_size))
        reward_sum = jnp.zeros((batch_size, n), jnp.float32)

        def body(carry, k):
            _, state, reward_sum = carry
            obs, state, reward = jax.vmap(one_step)(jax.random.split(k, batch_size), state)
            return (obs, state, reward_sum + reward), None

        carry, _ = jax.lax.scan(body, (obs, state, reward_sum), jax.random.split(k_run, steps))
        return carry

    return rollout


def compile_timed(fn, args):
    """-> (compile_s, run()): ``run()`` calls the compiled ``fn(*args)`` and blocks until done."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    return compile_s, lambda: jax.block_until_ready(compiled(*args))


def measure(game: str, batch_size: int, steps: int, repeats: int, seed: int, with_ref: bool) -> dict:
    """One game at one batch size: both sides' runs alternating after a warm-up of each -> a result row."""
    env = envs.make(game)
    key = jax.random.PRNGKey(seed)
    compile_s, run_ours = compile_timed(make_rollout(env, batch_size, steps), (key, env.default_params))
    runs = {"ours": run_ours}
    compiles = {"ours": compile_s}
    if with_ref:
        ref = socialjax_env(game, env.num_agents)
        compiles["socialjax"], runs["socialjax"] = compile_timed(
            make_socialjax_rollout(ref, env.num_actions, batch_size, steps), (key,))
    for run in runs.values():
        run()
    times = {side: [] for side in runs}
    for _ in range(repeats):
        for side, run in runs.items():
            start = time.perf_counter()
            run()
            times[side].append(time.perf_counter() - start)
    row = {"game": game, "num_agents": env.num_agents, "batch_size": batch_size, "steps": steps}
    for side in runs:
        median = statistics.median(times[side])
        row[side] = {"compile_s": compiles[side], "runs_s": times[side], "median_s": median,
                     "env_steps_per_s": batch_size * steps / median}
    if with_ref:
        row["ratio"] = row["ours"]["env_steps_per_s"] / row["socialjax"]["env_steps_per_s"]
    print(f"[bench] {game} batch {batch_size}: " + ", ".join(f"{side} {row[side]['env_steps_per_s']:.4g}"
                                                             for side in runs) + " env-steps/s",
          file=sys.stderr, flush=True)
    return row


def write_frames(directory: str, games: list[str], frame_step: int, seed: int) -> list[str]:
    """One PNG per game: the frame after ``frame_step`` uniformly random steps -> the paths."""
    paths = []
    for game in games:
        env = envs.make(game)

        def policy(key, obs, env=env):
            return jax.random.randint(key, (env.num_agents,), 0, env.num_actions)

        frames = jax.jit(lambda k, env=env, policy=policy: record_episode(env, k, policy, frame_step)[0])(
            jax.random.PRNGKey(seed))
        path = os.path.join(directory, f"{game}_frame.png")
        save_frames(frames[-1], path)
        paths.append(path)
    return paths


def format_table(doc: dict) -> str:
    """The results as a text table, one row per game and batch size."""
    columns = (("game", lambda r: r["game"]), ("batch", lambda r: r["batch_size"]),
               ("compile s", lambda r: f"{r['ours']['compile_s']:.2f}"),
               ("ours env-steps/s", lambda r: f"{r['ours']['env_steps_per_s']:.4g}"),
               ("SocialJax env-steps/s", lambda r: f"{r['socialjax']['env_steps_per_s']:.4g}" if "ratio" in r else "-"),
               ("ratio", lambda r: f"{r['ratio']:.2f}" if "ratio" in r else "-"))
    rows = [[name for name, _ in columns]] + [[str(cell(r)) for _, cell in columns] for r in doc["results"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    text = [" ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    settings = doc["settings"]
    return "\n".join([f"backend {doc['backend']} ({doc['device']}), {doc['cpu_count']} CPUs, {settings['steps']} "
                      f"steps, median of {settings['repeats']} alternating runs; SocialJax: {doc['socialjax']}", "",
                      text[0], "-" * len(text[0]), *text[1:]])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = SIZES.parser(__doc__)
    parser.add_argument("--games", default=",".join(GAMES), help="comma-separated (default: cleanup,harvest)")
    parser.add_argument("--no-socialjax", action="store_true", help="skip SocialJax even when importable")
    parser.add_argument("--frames", help="write one rendered frame of each game as DIR/GAME_frame.png")
    parser.add_argument("--frame-step", type=int, default=200, help="random steps before that frame (200)")
    table = parser.add_argument_group("method table (--methods)")
    table.add_argument("--methods", action="store_true", help="train the method table instead of timing the games")
    table.add_argument("--table-game", default="harvest", choices=GAMES)
    table.add_argument("--table-layout", choices=list(CLEANUP_MAPS),
                       help="Cleanup's map (default: the environment's, Melting Pot's)")
    table.add_argument("--baselines", type=lambda t: [x for x in t.split(",") if x],
                       default=[label for label, _, _ in BASELINES],
                       help="comma-separated baselines to train beside AgA (default: all: Simul-Ind,Simul-Co,SVO,CGA)")
    table.add_argument("--table-agents", type=int, default=3, help="agents (default 3)")
    table.add_argument("--table-horizon", type=int, default=100, help="steps an episode (default 100)")
    table.add_argument("--table-envs", type=int, default=4, help="games per update (default 4)")
    table.add_argument("--table-updates", type=int, default=40, help="updates per seed (default 40)")
    table.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    table.add_argument("--tail", type=int, default=10, help="final updates averaged (default 10)")
    table.add_argument("--trained-episode", metavar="PATH",
                       help="instead of the table: train --episode-method on the table's game and budget (one seed, "
                            "--seed), then render one episode of its policy to PATH (.gif, or .png: the first frame)")
    table.add_argument("--episode-method", default="Simul-Co", help="a baseline's label (default Simul-Co)")
    table.add_argument("--lambdas", type=lambda t: [float(x) for x in t.split(",")], default=list(LAMBDAS),
                       help="AgA's lambda values (default 0.1,1,100,1000)")
    args = SIZES.parse(parser, argv)
    args.games = [g for g in args.games.split(",") if g]
    if args.frame_step <= 0:
        parser.error("--frame-step must be positive")
    if min(args.table_agents - 1, args.table_horizon, args.table_envs, args.table_updates, args.seeds, args.tail) <= 0:
        parser.error("--table-agents must be at least 2; --table-horizon, --table-envs, --table-updates, --seeds "
                     "and --tail must be positive")
    if args.tail > args.table_updates or any(lam < 0 for lam in args.lambdas):
        parser.error("--tail must be at most --table-updates, and --lambdas non-negative")
    if args.table_layout and args.table_game != "cleanup":
        parser.error("--table-layout is Cleanup's (--table-game cleanup)")
    labels = [label for label, _, _ in BASELINES]
    if args.episode_method not in labels:
        parser.error(f"--episode-method: choose from {','.join(labels)}")
    if set(args.baselines) - set(labels):
        parser.error(f"--baselines: choose from {','.join(labels)}")
    unknown = set(args.games) - set(GAMES)
    if unknown or not args.games:
        parser.error(f"--games: choose from {', '.join(GAMES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trained_episode:
        return trained_episode(args)
    if args.methods:
        return method_table(args)
    with_ref = socialjax_available() and not args.no_socialjax
    start = time.perf_counter()
    results = [measure(game, batch, args.steps, args.repeats, args.seed, with_ref)
               for game in args.games for batch in args.batch_sizes]
    ref = "skipped (--no-socialjax)" if args.no_socialjax else "not installed"
    if with_ref:
        import socialjax
        ref = f"socialjax {getattr(socialjax, '__version__', 'unknown')}"
    frames = write_frames(args.frames, args.games, args.frame_step, args.seed) if args.frames else []
    doc = {"benchmark": "social_dilemmas", **machine_info(),
           "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "settings": {"games": args.games, "batch_sizes": args.batch_sizes, "steps": args.steps,
                        "repeats": args.repeats, "quick": args.quick, "seed": args.seed},
           "socialjax": ref, "results": results, "frames": [os.path.basename(p) for p in frames],
           "total_wall_s": time.perf_counter() - start}
    emit(doc, args.out, args.json)
    if not args.json:
        print(format_table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
