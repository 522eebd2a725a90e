"""Classical multi-agent learners: throughput of thousands of vmapped learners, the policy trajectories of PHC
against WoLF-PHC (Bowling & Veloso, 2002), Littman's (1994) soccer experiment, and Hu & Wellman's (2003) offline
comparison of Nash-Q with single-agent Q-learning in their grid games.

    python benchmarks/classical.py --throughput --json          # 10,000 wolf_phc (RPS), 1,024 minimax_q (soccer)
    python benchmarks/classical.py --trajectories --out-dir runs/classical   # phase plots + JSON
    python benchmarks/classical.py --soccer --out-dir runs/classical         # minimax_q vs iql_tabular on soccer
    python benchmarks/classical.py --grid-games --out-dir runs/classical     # Hu & Wellman's Tables 10-12

Every run is one jit of ``vmap(train)`` over seeds; compile time is reported apart from run time (median of
``--repeats`` runs). ``--json`` prints the JSON document on stdout.
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
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from jaxmarl_core import outputs, tabular  # noqa: E402
from jaxmarl_core.solvers import LH_LABEL_ORDERS  # noqa: E402

THROUGHPUT = [  # (algorithm, environment, seeds, config overrides)
    ("wolf_phc", "matrix_rps", 10_000, {"total_steps": 20_000, "steps_per_update": 1_000}),
    ("minimax_q", "soccer", 1_024, {"total_steps": 2_000, "steps_per_update": 1_000}),
]


def throughput(rows_spec, repeats: int) -> dict:
    rows = []
    for algo_name, env_name, seeds, overrides in rows_spec:
        res = train_many(algo_name, envs.make(env_name), overrides, seeds, repeats)
        steps = seeds * res["num_updates"] * res["env_steps_per_update"]
        rows.append({"algo": algo_name, "env": env_name, "seeds": seeds, "num_updates": res["num_updates"],
                     "env_steps_per_update": res["env_steps_per_update"], "compile_s": res["compile_s"],
                     "runs_s": res["runs_s"], "median_s": res["median_s"],
                     "seed_updates_per_s": seeds * res["num_updates"] / res["median_s"],
                     "learner_steps_per_s": steps / res["median_s"]})
        print(f"{algo_name} on {env_name} x{seeds}: {rows[-1]['learner_steps_per_s']:.3g} learner steps/s "
              f"({rows[-1]['seed_updates_per_s']:.3g} seed-updates/s), compile {res['compile_s']:.1f}s, "
              f"run {res['median_s']:.2f}s", file=sys.stderr)
    return {"benchmark": "classical_throughput", **machine_info(), "results": rows}


def trajectories(seeds: int, out_dir: str | None) -> dict:
    """PHC and WoLF-PHC (and IGA / WoLF-IGA) in matching pennies and rock-paper-scissors: final distance of the
    current policy from the uniform equilibrium, and phase plots of one seed."""
    rows, paths = [], {}
    for game in ("matrix_mp", "matrix_rps"):
        env = envs.make(game)
        for algo_name, overrides in (("phc", {}), ("wolf_phc", {}), ("wolf_iga", {"wolf": False}), ("wolf_iga", {})):
            if algo_name == "wolf_iga" and game != "matrix_mp":
                continue
            res = train_many(algo_name, env, overrides, seeds)
            policy = np.asarray(res["out"].metrics["policy"])  # [S, U, 2, A]
            deviation = np.abs(policy - 1.0 / env.num_actions).max(axis=(-1, -2))  # [S, U]
            label = "iga" if overrides.get("wolf") is False else algo_name
            quarter = deviation.shape[1] * 3 // 4
            rows.append({"game": game, "method": label, "seeds": seeds, "num_updates": res["num_updates"],
                         "final_max_deviation": outputs.mean_ci95(deviation[:, -1]),
                         "final_max_deviation_worst": float(deviation[:, -1].max()),
                         "last_quarter_max_deviation": outputs.mean_ci95(deviation[:, quarter:].max(axis=1)),
                         "compile_s": res["compile_s"], "run_s": res["median_s"]})
            paths[(game, label)] = policy[0]
            print(f"{game:10s} {label:9s} final max |pi - uniform|: mean {rows[-1]['final_max_deviation']['mean']:.3f}"
                  f" worst {rows[-1]['final_max_deviation_worst']:.3f}", file=sys.stderr)
    doc = {"benchmark": "classical_trajectories", **machine_info(), "results": rows}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        dump(doc, os.path.join(out_dir, "trajectories.json"))
        plot_trajectories(paths, os.path.join(out_dir, "trajectories.png"))
    return doc


def plot_trajectories(paths: dict, path: str) -> None:
    plt = outputs.pyplot()
    games = sorted({g for g, _ in paths})
    fig, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 5))
    for ax, game in zip(np.atleast_1d(axes), games):
        for (g, label), policy in paths.items():
            if g != game:
                continue
            if game == "matrix_mp":  # P(heads) of player 0 against player 1
                ax.plot(policy[:, 0, 0], policy[:, 1, 0], lw=1, label=label)
                ax.set_xlabel("player 0: P(heads)")
                ax.set_ylabel("player 1: P(heads)")
            else:  # player 0's P(rock) against P(paper)
                ax.plot(policy[:, 0, 0], policy[:, 0, 1], lw=1, label=label)
                ax.set_xlabel("player 0: P(rock)")
                ax.set_ylabel("player 0: P(paper)")
        equilibrium = 0.5 if game == "matrix_mp" else 1 / 3
        ax.plot([equilibrium], [equilibrium], "k*", ms=12, label="equilibrium")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{game}: current policy of one seed")
        ax.legend(fontsize=8)
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=110)


def soccer(seeds: int, total_steps: int, episodes: int, out_dir: str | None) -> dict:
    """Littman's (1994) experiment: minimax_q and iql_tabular learn soccer in self-play for ``total_steps`` steps
    (discount 0.9, no draws, exploration 0.2; Littman's Q-learners learned against each other too), then play the
    test game (a draw with probability 0.1 per step) against a uniformly random opponent and against a challenger:
    the exact best response to the learned, frozen policy. The win rate is Littman's: the share of the decided
    (not drawn) games that player A wins. Also the error of minimax_q's learned start-state values against the
    exact minimax values (Shapley's value iteration)."""
    env = envs.make("soccer")
    train_params = env.default_params.replace(draw_prob=jnp.float32(0.0))
    test_params = env.default_params.replace(draw_prob=jnp.float32(0.1))
    gamma = env.discount
    model = env.tabular_model(train_params)
    exact_v, _, _ = jax.jit(tabular.minimax_values, static_argnums=1)(model, gamma)
    starts = np.flatnonzero(np.asarray(model.initial) > 0)
    uniform = jnp.full((env.num_states, env.num_actions), 1.0 / env.num_actions)

    @jax.jit
    def evaluate(pi0, key):  # A's learned policy [S, A] against a challenger and a random player
        challenger = tabular.best_response(model, pi0, 1, gamma)[1]
        vs_challenger = tabular.play(env, test_params, pi0, challenger, key, episodes)
        vs_random = tabular.play(env, test_params, pi0, uniform, jax.random.fold_in(key, 1), episodes)
        return vs_challenger, vs_random

    rows = []
    for algo_name in ("minimax_q", "iql_tabular"):
        overrides = {"total_steps": total_steps, "steps_per_update": total_steps // 100, "epsilon": 0.2,
                     "q_init": 1.0}  # Littman's exploration and initialisation
        res = train_many(algo_name, env, overrides, seeds, params=train_params)
        state = res["out"].state
        pi0 = state.pi[:, 0]  # [seeds, S, A]: player A's learned policy (greedy on Q for Q-learning)
        results = np.array([jax.tree.leaves(evaluate(pi0[i], jax.random.PRNGKey(i))) for i in range(seeds)])
        row = {"algo": algo_name, "seeds": seeds, "total_steps": total_steps, "episodes_per_evaluation": episodes,
               "compile_s": res["compile_s"], "run_s": res["median_s"]}
        for name, cols in (("challenger", slice(0, 3)), ("random", slice(3, 6))):
            won, lost, drawn = results[:, cols].T  # [seeds] fractions of the test games
            row[f"win_rate_vs_{name}"] = outputs.mean_ci95(won / np.maximum(won + lost, 1e-9))  # of decided games
            row[f"games_won_lost_drawn_vs_{name}"] = [float(won.mean()), float(lost.mean()), float(drawn.mean())]
        if algo_name == "minimax_q":
            learned = np.asarray(state.value[:, 0, 0][:, starts])  # [seeds, 2 start states]
            row["exact_start_values"] = np.asarray(exact_v)[starts].tolist()
            row["learned_start_values"] = learned.mean(0).tolist()
            row["max_abs_start_value_error"] = float(np.abs(learned - np.asarray(exact_v)[starts]).max())
        rows.append(row)
        print(f"{algo_name:12s} wins vs challenger {row['win_rate_vs_challenger']['mean']:.3f}, "
              f"vs random {row['win_rate_vs_random']['mean']:.3f}"
              + (f", start-value error {row['max_abs_start_value_error']:.3f}" if "exact_start_values" in row else "")
              + f" (compile {res['compile_s']:.1f}s, run {res['median_s']:.1f}s)", file=sys.stderr)
    doc = {"benchmark": "littman_soccer", **machine_info(), "paper": {
        "source": "Littman (1994), Table 1 (% of test games won)",
        "note": "the challenger there is trained by Q-learning against the frozen policy; here it is the exact "
                "best response"}, "results": rows}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        dump(doc, os.path.join(out_dir, "soccer.json"))
    return doc


SELECTION_RULES = ("first", "second", "best")
GRID_AGENTS = ("single", *SELECTION_RULES)  # Hu & Wellman's four learners, in the order of their Tables 11 and 12
PAIRINGS = (("single", "single"), ("single", "first"), ("single", "second"), ("single", "best"),
            ("first", "second"), ("first", "best"), ("second", "best"), ("best", "best"), ("first", "first"),
            ("second", "second"))  # (agent 1, agent 2), the rows of Tables 11 and 12
PAPER_TABLE10 = {("grid_game_1", "first"): 1.00, ("grid_game_1", "second"): 1.00, ("grid_game_2", "first"): 0.68,
                 ("grid_game_2", "second"): 0.90}
PAPER_TABLES_11_12 = {  # fraction of 50 trials reaching an equilibrium joint path: (Grid Game 1, Grid Game 2)
    ("single", "single"): (0.20, 0.50), ("single", "first"): (0.60, 0.54), ("single", "second"): (0.50, 0.62),
    ("single", "best"): (0.76, 0.38), ("first", "second"): (0.60, 0.64), ("first", "best"): (0.76, 0.78),
    ("second", "best"): (0.84, 0.36), ("best", "best"): (1.00, 0.42), ("first", "first"): (1.00, 0.68),
    ("second", "second"): (1.00, 0.90)}
EPISODES = 5000  # Hu & Wellman's training episodes
PAPER_ACTIONS = "2,3,1,0"  # Hu & Wellman's A_i = {Left, Right, Down, Up} (section 5.1.1) as action indices here
EQUILIBRIUM_TOL = 0.1  # NashConv below which a joint policy counts as an equilibrium (goals pay 100)


def mean_episode_length(env) -> float:
    """Expected steps of an episode of ``env`` (random starts) when both agents pick legal actions uniformly: the
    training episodes' length, exactly (a linear solve on the tabular model)."""
    model = env.tabular_model(env.default_params)
    avail = np.asarray(tabular.legal(model), np.float64)
    uniform = avail / avail.sum(-1, keepdims=True)  # [S, 2, A]
    chain = np.einsum("sabt,sa,sb->st", np.asarray(model.transition, np.float64), uniform[:, 0], uniform[:, 1])
    steps = np.linalg.solve(np.eye(len(chain)) - chain, np.ones(len(chain)))
    return float(np.asarray(model.initial, np.float64) @ steps)


def grid_games(runs: int, episodes: int, out_dir: str | None, games=("grid_game_1", "grid_game_2"),
               order: str = "support", lh_order: str = "agent1_first", table10_only: bool = False) -> dict:
    """Hu & Wellman's (2003) section 5 protocol in Grid Game 1 and 2. Every run trains, on one trajectory, the four
    learners of their Tables 11 and 12: ``nash_q`` with each selection rule (first, second, best-expected Nash;
    alpha = 1 / n(s, a_1, a_2), Q from 0) and single-agent Q-learning (``iql_tabular``, greedy on its own Q), while
    both agents act uniformly at random over their legal moves from random starts (``random_start``) for about
    ``episodes`` episodes (the expected episode length times ``episodes`` steps; the episodes counted are reported).
    Seeds are shared, so all learners of a run see the same trajectory.

    Then, from the lower corners: Table 10 asks whether the joint policy of one learner (both agents' parts of its
    stage equilibria) is a Nash equilibrium of the game; Tables 11 and 12 pair agent 1's policy from one learner
    with agent 2's from another (a "best" agent's own learner maximises its own payoff). A joint policy counts when
    its NashConv from the start (exact: policy evaluation and value iteration on the model) is below
    ``EQUILIBRIUM_TOL``; the start values and the NashConv over every state are reported beside it.

    ``order``: how ``nash_q`` lists a stage game's equilibria before the rule picks one, "support" (pure profiles
    first) or "lemke_howson" (from each dropped label in turn, the actions in the paper's order Left, Right, Down,
    Up, agent 1's labels before agent 2's, or the labels in another ``lh_order``, see ``nash_q``'s ``lh_order``).
    ``table10_only``: train the first- and second-Nash learners only and skip Tables 11 and 12."""
    table10, pairings = [], []
    for game in games:
        train_env = envs.make(game, random_start=True)
        model = envs.make(game).tabular_model()  # the corners as the start
        gamma = train_env.discount
        live = np.asarray(model.transition).sum(axis=(1, 2, 3)) > 0
        total_steps = int(round(episodes * mean_episode_length(train_env) / 100.0)) * 100

        @jax.jit
        @jax.vmap
        def judge(x, y):  # agent 1's and agent 2's policies [S, A] -> (NashConv from the start, at every state, values)
            values = tabular.policy_values(model, x, y, gamma)
            gains = jnp.stack([tabular.best_response(model, y, 0, gamma, 2000)[0] - values[:, 0],
                               tabular.best_response(model, x, 1, gamma, 2000)[0] - values[:, 1]], -1)
            return model.initial @ gains.sum(-1), jnp.max(jnp.where(live, gains.sum(-1), 0.0)), model.initial @ values

        policies, timing, episodes_seen = {}, {}, []
        for agent in SELECTION_RULES[:2] if table10_only else GRID_AGENTS:
            overrides = {"total_steps": total_steps, "steps_per_update": total_steps // 10, "epsilon": 1.0}
            if agent == "single":
                res = train_many("iql_tabular", train_env, overrides, runs)
            else:
                lh = ({"order": order, "lh_actions": PAPER_ACTIONS, "lh_order": lh_order} if order == "lemke_howson"
                      else {})
                res = train_many("nash_q", train_env, {**overrides, "selection": agent, **lh}, runs)
            policies[agent] = res["out"].state.pi  # [runs, 2, S, A]
            timing[agent] = {"compile_s": res["compile_s"], "run_s": res["median_s"]}
            episodes_seen.append(res["metrics"]["episodes"].sum(axis=1))
        if any(not np.array_equal(episodes_seen[0], e) for e in episodes_seen):
            raise RuntimeError("the learners of a run saw different trajectories")
        for agent in SELECTION_RULES[:2]:
            conv, conv_all, values = map(np.asarray, judge(policies[agent][:, 0], policies[agent][:, 1]))
            table10.append({"env": game, "selection": agent, "runs": runs, "total_steps": total_steps,
                            "episodes_mean": float(episodes_seen[0].mean()),
                            "equilibrium_rate": float(np.mean(conv < EQUILIBRIUM_TOL)),
                            "equilibrium_rate_every_state": float(np.mean(conv_all < EQUILIBRIUM_TOL)),
                            "paper": PAPER_TABLE10[(game, agent)],
                            "nash_conv_per_run": np.round(conv, 4).tolist(),
                            "start_values_per_run": np.round(values, 2).tolist(), **timing[agent]})
            print(f"{game} Table 10 {agent:6s}: equilibrium in {table10[-1]['equilibrium_rate']:.0%} of {runs} runs "
                  f"(every state {table10[-1]['equilibrium_rate_every_state']:.0%}; paper "
                  f"{table10[-1]['paper']:.0%})", file=sys.stderr)
        for one, two in () if table10_only else PAIRINGS:
            conv, conv_all, values = map(np.asarray, judge(policies[one][:, 0], policies[two][:, 1]))
            rounded = np.round(values, 1)
            outcomes = {str(tuple(v)): int(c) for v, c in zip(*np.unique(rounded, axis=0, return_counts=True))}
            pairings.append({"env": game, "agent_1": one, "agent_2": two, "runs": runs,
                             "equilibrium_rate": float(np.mean(conv < EQUILIBRIUM_TOL)),
                             "paper": PAPER_TABLES_11_12[(one, two)][int(game[-1]) - 1],
                             "start_values_count": outcomes, "nash_conv_per_run": np.round(conv, 4).tolist()})
            print(f"{game} {one:6s} / {two:6s}: {pairings[-1]['equilibrium_rate']:.0%} (paper "
                  f"{pairings[-1]['paper']:.0%}) start values {outcomes}", file=sys.stderr)
    doc = {"benchmark": "hu_wellman_grid_games", **machine_info(), "protocol": {
        "runs": runs, "episodes": episodes, "equilibrium_tol": EQUILIBRIUM_TOL, "order": order,
        "lh_actions": PAPER_ACTIONS if order == "lemke_howson" else None,
        "lh_order": lh_order if order == "lemke_howson" else None,
        "behaviour": "both agents uniform over their legal moves, random live start each episode",
        "nash_q": "alpha = 1/n(s, a1, a2), Q from 0, one equilibrium for both players' values",
        "single": "iql_tabular: alpha = 0.1 / (1 + t / 1e5), Q from 0, greedy over legal moves"}, "paper": {
        "source": "Hu & Wellman (2003), JMLR 4, section 5: Table 10 (convergence in 50 runs), Tables 11 and 12 "
                  "(offline learning performance, 50 trials per pairing, fraction reaching an equilibrium path)"},
        "table10": table10, "tables11_12": pairings}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        suffix = ("_lh" if order == "lemke_howson" else "") + (
            f"_{lh_order}" if order == "lemke_howson" and lh_order != "agent1_first" else "") + (
            "_table10" if table10_only else "") + ("" if len(games) == 2 else f"_{games[0][-1]}")
        dump(doc, os.path.join(out_dir, f"grid_games{suffix}.json"))
    return doc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--throughput", action="store_true", help="learner steps per second of many vmapped learners")
    p.add_argument("--trajectories", action="store_true", help="PHC vs WoLF-PHC policy trajectories")
    p.add_argument("--soccer", action="store_true", help="Littman's soccer: minimax_q against iql_tabular")
    p.add_argument("--grid-games", action="store_true", help="Hu & Wellman's grid games: Tables 10, 11 and 12")
    p.add_argument("--grid-episodes", type=int, default=EPISODES, help="training episodes of --grid-games")
    p.add_argument("--grid-runs", type=int, default=50, help="runs of --grid-games (the paper's 50)")
    p.add_argument("--grid-game", choices=("1", "2", "both"), default="both", help="which grid game(s) to run")
    p.add_argument("--grid-order", choices=("support", "lemke_howson"), default="support",
                   help="nash_q's order of a stage game's equilibria in --grid-games")
    p.add_argument("--grid-lh-order", choices=LH_LABEL_ORDERS, default="agent1_first",
                   help="with --grid-order lemke_howson: whose dropped labels come first")
    p.add_argument("--grid-table10", action="store_true", help="--grid-games: Table 10 only (first, second Nash)")
    p.add_argument("--soccer-steps", type=int, default=1_000_000, help="training steps per seed of --soccer")
    p.add_argument("--episodes", type=int, default=10_000, help="test games per evaluation of --soccer")
    p.add_argument("--seeds", type=int, default=16, help="seeds of --trajectories, --soccer, --grid-games")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per throughput row (median)")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--out-dir", default=None, help="where JSON documents and plots go")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    args = p.parse_args(argv)
    if args.seeds <= 0 or args.repeats <= 0:
        p.error("--seeds and --repeats must be positive")
    if not (args.throughput or args.trajectories or args.soccer or args.grid_games):
        p.error("choose --throughput, --trajectories, --soccer or --grid-games")
    if args.soccer_steps < 100 or args.soccer_steps % 100 or args.episodes <= 0:
        p.error("--soccer-steps must be a positive multiple of 100 and --episodes positive")
    if args.grid_episodes < 100 or args.grid_runs <= 0:
        p.error("--grid-episodes must be at least 100 and --grid-runs positive")
    docs = {}
    if args.throughput:
        spec = THROUGHPUT
        if args.quick:
            spec = [(a, e, 8, {"total_steps": 200, "steps_per_update": 100}) for a, e, _, _ in THROUGHPUT]
        docs["throughput"] = throughput(spec, 1 if args.quick else args.repeats)
        if args.out_dir:
            os.makedirs(args.out_dir, exist_ok=True)
            dump(docs["throughput"], os.path.join(args.out_dir, "throughput.json"))
    if args.trajectories:
        docs["trajectories"] = trajectories(4 if args.quick else args.seeds, args.out_dir)
    if args.soccer:
        docs["soccer"] = soccer(4 if args.quick else args.seeds, 2_000 if args.quick else args.soccer_steps,
                                200 if args.quick else args.episodes, args.out_dir)
    if args.grid_games:
        if args.quick:
            docs["grid_games"] = grid_games(4, 100, args.out_dir, ("grid_game_2",), args.grid_order,
                                            args.grid_lh_order, args.grid_table10)
        else:
            games = ("grid_game_1", "grid_game_2") if args.grid_game == "both" else (f"grid_game_{args.grid_game}",)
            docs["grid_games"] = grid_games(args.grid_runs, args.grid_episodes, args.out_dir, games, args.grid_order,
                                            args.grid_lh_order, args.grid_table10)
    if args.json:
        print(dump(docs if len(docs) > 1 else next(iter(docs.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
