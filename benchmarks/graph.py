"""DGN (Jiang et al., 2020) on its battle (``dgn_battle``: 20 learners against 12 scripted enemies, respawns, 300
steps an episode) against independent Q-learning (``il``) and mean-field Q-learning (``mfq``), DGN-R's relation
regularisation beside plain DGN, and DGN's training throughput at the paper's size, as JSON (a PNG with --plot).

Comparison (a small CPU budget): every method trains ``--steps`` environment steps per seed in updates of
``--num-envs`` x ``--rollout-len`` steps and one gradient step, Adam at lr 1e-4, gamma 0.96, Polyak targets with
tau 0.01; DGN (the paper's network) on batches of ``--batch`` joint transitions, IL and MF-Q (shared MLP Q-networks,
2 x 128 units) on batches of ``--batch`` x 20 agent transitions, so every gradient step sees as many agent samples.
Exploration is each paper's: DGN epsilon-greedy (0.6, times ``--epsilon-decay`` every 300 steps), IL and MF-Q
Boltzmann (temperature 1 to 0.1 over the first half of the steps); DGN's epsilon reaches its floor 0.01 after
ln(60) / ln(1 / d) periods, so ``--epsilon-decay`` (1/60) ** (2 period / steps) gives every method the same
exploration horizon (the default 0.9 is short for long budgets). A method's score is its mean over the last
``--tail`` of the updates of the reward per agent and step and of the kills and deaths per episode (per step times
the episode length), mean over seeds with a 95% Student-t interval.

Throughput (``--throughput-steps``): DGN at the released code's settings (batch 128, a gradient step every 3
environment steps, one environment, one seed), agent-steps (environment steps x 20) of training per second, compile
time apart.

    python benchmarks/graph.py --json --out benchmarks/results/cpu/graph.json --plot

``--game traffic_junction``: G2ANet's GA-Comm (``ga_comm``) against CommNet's mean communication (``commnet``:
``ga_comm`` with ``comm=mean``) and no communication (``no_comm``: ``comm=none``, independent policies sharing
parameters), all with the same advantage actor-critic (IC3Net's RMSprop settings), on the easy traffic junction
(5 cars, 7 x 7, p_arrive 0.3, 20 steps), ``--steps`` environment steps per seed in updates of ``--num-envs``
episodes of 20 steps, smaller networks than the paper's (``--hidden``). A method's score is the success rate
(episodes without a collision) over the last ``--tail`` of the updates, and over the first update as the start.

    python benchmarks/graph.py --game traffic_junction --json --out benchmarks/results/cpu/graph_junction.json

``--entropy`` and ``--normalize-advantages`` set the learner's entropy bonus and advantage standardisation.

``--game jungle``: DGN, DGN-R, IL and MF-Q as on the battle (the same settings; DGN's epsilon decays once per
120-step episode, as the released jungle code's per episode) on DGN's jungle (``jungle``: 20 agents, 12 foods,
30 x 30, 120 steps). A method's score over the last ``--tail`` of the updates: the reward per agent and step, the
eats and the attacks on other agents per episode (all agents together), and the attacks' share of the hits
(attacks / (attacks + eats)), mean over seeds with a 95% Student-t interval.

    python benchmarks/graph.py --game jungle --steps 4800 --json --out benchmarks/results/cpu/graph_jungle.json

``--game routing``: DGN's packet routing (``routing``: 20 packets on 20 routers, bandwidth 1, 300 steps an
episode): DGN against DQN (``il``: independent Q-learning, shared MLP) and, with ``--methods``, MF-Q (``mfq``), all
trained as in the battle comparison but with the released routing code's gamma 0.98, and the paper's shortest-path
baselines: Floyd's next hops with the bandwidth limit (``floyd_bl``: a refused packet waits) and without it
(``floyd``: bandwidth inf, the uncongested lower bound). The paper's metrics: throughput (packets delivered per
step) and mean delay (steps from entering to delivery, over the packets delivered), over the last ``--tail`` of the
learners' updates (their exploration then: DGN's epsilon at ``--epsilon-decay`` per 300 steps, IL's Boltzmann
temperature 0.1), and for the baselines over as many steps of as many environments per seed.

``--lr`` sets Adam's learning rate (battle and routing; 1e-4 by default). ``--path-costs`` gives the packets each
cable's far router's shortest path cost to their destination (the environment's ``path_costs``, not in the paper).

    python benchmarks/graph.py --game routing --json --out benchmarks/results/cpu/graph_routing.json

``--game predator_prey``: G2ANet's GA-AC (``ga_ac``) against MAAC's soft-attention critic (``maac``: ``ga_ac`` with
``critic=soft``), a critic without communication (``no_comm``: ``critic=none``) and MADDPG (``maddpg``, Gumbel-softmax
actors) on ``predator_prey`` (5 predators, 2 prey, 2 obstacles, 25 steps; every agent learns), ``--steps``
environment steps per seed in updates of ``--num-envs`` x 12 steps, batches of ``--batch``, Polyak tau 0.01, smaller
networks than the papers' (``--hidden``). A method's score is the predators' and the prey's reward per agent and
step and the touches per episode (predator-prey pairs in contact summed over the 25 steps) over the last ``--tail``
of the updates.

    python benchmarks/graph.py --game predator_prey --json --out benchmarks/results/cpu/graph_predator_prey.json
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
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from benchmarks.common import emit, finish, machine_info, train_many  # noqa: E402
from jaxmarl_core.outputs import mean_ci95, pyplot, save_figure  # noqa: E402

METHODS = ("dgn", "dgn_r", "il", "mfq")
SHARED = {"lr": 1e-4, "gamma": 0.96, "target_tau": 0.01}


def overrides(method: str, args, agents: int) -> tuple[str, dict]:
    """(registered algorithm, its config overrides) of a method."""
    shared = {**SHARED, "lr": args.lr, "total_steps": args.steps, "num_envs": args.num_envs,
              "rollout_len": args.rollout_len}
    if method in ("dgn", "dgn_r"):
        return "dgn", {**shared, "buffer_size": args.buffer, "batch_size": args.batch,
                       "learning_starts": args.learning_starts, "epsilon_decay": args.epsilon_decay,
                       "relation_reg": args.relation_reg if method == "dgn_r" else 0.0}
    return method, {**shared, "buffer_size": args.buffer * agents, "batch_size": args.batch * agents,
                    "learning_starts": args.learning_starts * agents, "hidden_size": 128, "hidden_layers": 2,
                    "temperature_decay_steps": max(1, args.steps // 2)}


def throughput(env, steps: int, quick: bool) -> dict:
    """DGN at the released code's settings for ``steps`` environment steps, one seed -> timings."""
    sets = {"total_steps": steps, "buffer_size": 2_000, "learning_starts": 128}
    if quick:
        sets.update({"buffer_size": 64, "batch_size": 4, "learning_starts": 4, "encoder_size": 16})
    res = train_many("dgn", env, sets, 1, warmup=False)
    agent_steps = res["num_updates"] * res["env_steps_per_update"] * env.num_agents
    return {"env_steps": res["num_updates"] * res["env_steps_per_update"], "compile_s": res["compile_s"],
            "run_s": res["median_s"], "agent_steps_per_s": agent_steps / res["median_s"], "config": res["config"]}


def train_method(method: str, env, args, **extra) -> tuple[str, dict]:
    """Train a method's ``args.seeds`` seeds with its overrides and ``extra`` (tiny networks with ``--quick``) ->
    (registered algorithm, ``train_many``'s result)."""
    algo, sets = overrides(method, args, env.num_agents)
    sets.update(extra)
    if args.quick:
        sets = {**sets, "batch_size": 4, "learning_starts": 4, "buffer_size": 64}
        sets.update({"encoder_size": 16, "hidden_size": 8, "num_heads": 2, "head_dim": 4} if algo == "dgn"
                    else {"hidden_size": 8})
    return algo, train_many(algo, env, sets, args.seeds, warmup=False)


def run(method: str, env, args) -> dict:
    algo, res = train_method(method, env, args)
    m = res["metrics"]
    tail = max(1, int(round(m["reward"].shape[1] * args.tail)))
    late = {name: m[name][:, -tail:].mean(axis=1) for name in ("reward", "kills", "deaths")}
    per_episode = {name: late[name] * env.max_cycles for name in ("kills", "deaths")}
    agent_steps = args.seeds * res["num_updates"] * res["env_steps_per_update"] * env.num_agents
    return {"method": method, "algo": algo, "reward": mean_ci95(late["reward"]),
            "kills_per_episode": mean_ci95(per_episode["kills"]),
            "deaths_per_episode": mean_ci95(per_episode["deaths"]),
            "kill_death_ratio": mean_ci95(per_episode["kills"] / np.maximum(per_episode["deaths"], 1e-9)),
            "per_seed": {k: v.tolist() for k, v in {**late, **per_episode}.items()},
            "curve_reward": m["reward"].mean(axis=0).tolist(), "curve_kills": m["kills"].mean(axis=0).tolist(),
            "compile_s": res["compile_s"], "run_s": res["median_s"],
            "agent_steps_per_s": agent_steps / res["median_s"], "config": res["config"]}


JUNCTION_METHODS = {"ga_comm": "g2a", "commnet": "mean", "no_comm": "none"}


def run_junction(method: str, env, args) -> dict:
    """``ga_comm`` with the method's messages on the traffic junction -> success rates and timings."""
    sets = {"comm": JUNCTION_METHODS[method], "total_steps": args.steps, "num_envs": args.num_envs,
            "rollout_len": env.max_steps, "hidden_size": args.hidden, "head_dim": args.hidden // 2,
            "gru_size": args.hidden // 2, "entropy_coef": args.entropy,
            "normalize_advantages": args.normalize_advantages}
    res = train_many("ga_comm", env, sets, args.seeds, warmup=False)
    m = res["metrics"]
    tail = max(1, int(round(m["episode_success"].shape[1] * args.tail)))
    late, start = m["episode_success"][:, -tail:].mean(axis=1), m["episode_success"][:, 0]
    reward = m["reward"][:, -tail:].mean(axis=1)
    agent_steps = args.seeds * res["num_updates"] * res["env_steps_per_update"] * env.num_agents
    return {"method": method, "algo": "ga_comm", "success": mean_ci95(late), "success_start": mean_ci95(start),
            "reward": mean_ci95(reward), "per_seed": {"success": late.tolist(), "success_start": start.tolist(),
                                                      "reward": reward.tolist()},
            "curve_success": m["episode_success"].mean(axis=0).tolist(), "compile_s": res["compile_s"],
            "run_s": res["median_s"], "agent_steps_per_s": agent_steps / res["median_s"], "config": res["config"]}


def junction(args) -> int:
    methods = args.methods.split(",") if args.methods else list(JUNCTION_METHODS)
    bad = [m for m in methods if m not in JUNCTION_METHODS]
    if bad:
        raise SystemExit(f"unknown --methods: {', '.join(bad)} (valid: {', '.join(JUNCTION_METHODS)})")
    env_args = {"num_cars": 3, "max_steps": 5} if args.quick else {}
    if args.quick:
        args.steps, args.seeds, args.num_envs, args.hidden = 20, 2, 2, 8
    env = envs.make("traffic_junction", **env_args)
    start = time.time()
    doc = {**machine_info(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": vars(args), "env_args": envs.env_args("traffic_junction") | env_args, "rows": []}
    for method in methods:
        doc["rows"].append(run_junction(method, env, args))
        emit({**doc, "partial": True}, args.out, False)
    return finish(doc, start, args.out, args.json)


def run_jungle(method: str, env, args) -> dict:
    """A method on the jungle -> the reward per agent and step, eats and attacks per episode, the attacks' share of
    the hits, curves and timings."""
    algo, res = train_method(method, env, args,
                             **({"epsilon_period": env.max_cycles} if method in ("dgn", "dgn_r") else {}))
    m = res["metrics"]
    tail = max(1, int(round(m["reward"].shape[1] * args.tail)))
    reward = m["reward"][:, -tail:].mean(axis=1)
    eats, attacks = (m[name][:, -tail:].mean(axis=1) * env.max_cycles for name in ("eats", "attacks"))
    share = attacks / np.maximum(attacks + eats, 1e-9)
    agent_steps = args.seeds * res["num_updates"] * res["env_steps_per_update"] * env.num_agents
    return {"method": method, "algo": algo, "reward": mean_ci95(reward), "eats_per_episode": mean_ci95(eats),
            "attacks_per_episode": mean_ci95(attacks), "attack_share": mean_ci95(share),
            "per_seed": {"reward": reward.tolist(), "eats": eats.tolist(), "attacks": attacks.tolist(),
                         "attack_share": share.tolist()},
            "curve_reward": m["reward"].mean(axis=0).tolist(), "curve_attacks": m["attacks"].mean(axis=0).tolist(),
            "curve_eats": m["eats"].mean(axis=0).tolist(), "compile_s": res["compile_s"], "run_s": res["median_s"],
            "agent_steps_per_s": agent_steps / res["median_s"], "config": res["config"]}


def random_jungle(env, episodes: int = 64) -> dict:
    """Uniformly random actions for ``episodes`` episodes (key 0) -> the reward per agent and step, eats and attacks
    per episode, and the attacks' share of the hits, means over the episodes."""
    def episode(key):
        k_reset, k_steps = jax.random.split(key)

        def step(state, k):
            k_act, k_env = jax.random.split(k)
            ts = env.step(k_env, state, jax.random.randint(k_act, (env.num_agents,), 0, env.num_actions))
            return ts.state, (jnp.mean(ts.reward), ts.info["eats"], ts.info["attacks"])

        _, (reward, eats, attacks) = jax.lax.scan(step, env.reset(k_reset)[1], jax.random.split(k_steps,
                                                                                                env.max_cycles))
        return jnp.mean(reward), jnp.sum(eats), jnp.sum(attacks)

    reward, eats, attacks = map(np.asarray, jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(0),
                                                                                          episodes)))
    return {"episodes": episodes, "reward": float(reward.mean()), "eats_per_episode": float(eats.mean()),
            "attacks_per_episode": float(attacks.mean()),
            "attack_share": float(attacks.sum() / max(attacks.sum() + eats.sum(), 1e-9))}


def jungle(args) -> int:
    methods = (args.methods or ",".join(METHODS)).split(",")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise SystemExit(f"unknown --methods: {', '.join(bad)} (valid: {', '.join(METHODS)})")
    args.steps, args.num_envs = args.steps or 4_800, args.num_envs or 4
    env_args = {"map_size": 8, "n_agents": 4, "n_foods": 2, "max_cycles": 10} if args.quick else {}
    if args.quick:
        args.steps, args.seeds = 24, 2
    env = envs.make("jungle", **env_args)
    start = time.time()
    doc = {**machine_info(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": vars(args), "env_args": envs.env_args("jungle") | env_args, "rows": [],
           "random_policy": random_jungle(env, 4 if args.quick else 64)}
    for method in methods:
        doc["rows"].append(run_jungle(method, env, args))
        emit({**doc, "partial": True}, args.out, False)
    return finish(doc, start, args.out, args.json)


PREDATOR_PREY_METHODS = {"ga_ac": "g2a", "maac": "soft", "no_comm": "none", "maddpg": None}


def run_predator_prey(method: str, env, args) -> dict:
    """One method on predator-prey -> the predators' and prey's rewards, touches per episode and timings."""
    shared = {"total_steps": args.steps, "num_envs": args.num_envs, "rollout_len": 12, "batch_size": args.batch,
              "buffer_size": args.buffer, "learning_starts": args.learning_starts, "tau": 0.01}
    critic = PREDATOR_PREY_METHODS[method]
    if critic is None:
        algo, sets = "maddpg", {**shared, "hidden_size": args.hidden}
    else:
        algo, sets = "ga_ac", {**shared, "critic": critic, "hidden_size": args.hidden,
                               "head_dim": max(1, args.hidden // 4), "gru_size": max(1, args.hidden // 4)}
    res = train_many(algo, env, sets, args.seeds, warmup=False)
    per_step = res["metrics"]["reward_per_step"]  # [seeds, updates, N]
    tail = max(1, int(round(per_step.shape[1] * args.tail)))
    p = env.num_adversaries
    predators, prey = per_step[:, -tail:, :p].mean(axis=(1, 2)), per_step[:, -tail:, p:].mean(axis=(1, 2))
    touches = predators / 10.0 * env.max_cycles  # each predator is paid 10 per touching pair
    agent_steps = args.seeds * res["num_updates"] * res["env_steps_per_update"] * env.num_agents
    return {"method": method, "algo": algo, "predator_reward": mean_ci95(predators), "prey_reward": mean_ci95(prey),
            "touches_per_episode": mean_ci95(touches),
            "per_seed": {"predator_reward": predators.tolist(), "prey_reward": prey.tolist(),
                         "touches_per_episode": touches.tolist()},
            "curve_predator_reward": per_step[:, :, :p].mean(axis=(0, 2)).tolist(),
            "compile_s": res["compile_s"], "run_s": res["median_s"],
            "agent_steps_per_s": agent_steps / res["median_s"], "config": res["config"]}


def predator_prey(args) -> int:
    methods = args.methods.split(",") if args.methods else list(PREDATOR_PREY_METHODS)
    bad = [m for m in methods if m not in PREDATOR_PREY_METHODS]
    if bad:
        raise SystemExit(f"unknown --methods: {', '.join(bad)} (valid: {', '.join(PREDATOR_PREY_METHODS)})")
    env_args = {"num_predators": 2, "num_prey": 1, "max_cycles": 5} if args.quick else {}
    if args.quick:
        args.steps, args.seeds, args.num_envs, args.hidden, args.batch = 48, 2, 2, 8, 4
        args.buffer, args.learning_starts = 64, 4
    env = envs.make("predator_prey", **env_args)
    start = time.time()
    doc = {**machine_info(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": vars(args), "env_args": envs.env_args("predator_prey") | env_args, "rows": []}
    for method in methods:
        doc["rows"].append(run_predator_prey(method, env, args))
        emit({**doc, "partial": True}, args.out, False)
    return finish(doc, start, args.out, args.json)


ROUTING_METHODS = ("dgn", "il", "mfq", "floyd_bl", "floyd")


def routing_scores(delivered: np.ndarray, delay_total: np.ndarray) -> dict:
    """delivered, delay_total [seeds, steps] (per-step means or sums of equal-sized blocks) -> throughput and mean
    delay (total delay / packets delivered) per seed, with their 95% intervals."""
    throughput = delivered.mean(axis=1)
    delay = delay_total.sum(axis=1) / np.maximum(delivered.sum(axis=1), 1e-9)
    return {"throughput": mean_ci95(throughput), "mean_delay": mean_ci95(delay),
            "per_seed": {"throughput": throughput.tolist(), "mean_delay": delay.tolist()}}


def run_floyd(method: str, env, args, steps: int) -> dict:
    """Floyd's next hops (``floyd_bl``: the default bandwidth; ``floyd``: none) in ``args.num_envs`` environments
    per seed for ``steps`` steps each -> the routing scores."""
    params = env.default_params
    if method == "floyd":
        params = params.replace(bandwidth=jnp.float32(jnp.inf))

    def play(key):
        _, state = env.reset(key, params)

        def body(state, k):
            ts = env.step(k, state, env.shortest_path_actions(state), params)
            return ts.state, (ts.info["delivered"], ts.info["delay_total"])

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    keys = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), args.num_envs))(jnp.arange(args.seeds))
    start = time.time()
    delivered, delay = jax.tree.map(np.asarray, jax.jit(jax.vmap(jax.vmap(play)))(keys))  # [seeds, envs, steps]
    return {"method": method, **routing_scores(delivered.reshape(args.seeds, -1), delay.reshape(args.seeds, -1)),
            "steps_per_env": steps, "wall_s": time.time() - start}


def run_routing(method: str, env, args) -> dict:
    algo, res = train_method(method, env, args, gamma=0.98)
    m = res["metrics"]
    tail = max(1, int(round(m["reward"].shape[1] * args.tail)))
    reward = m["reward"][:, -tail:].mean(axis=1)
    agent_steps = args.seeds * res["num_updates"] * res["env_steps_per_update"] * env.num_agents
    return {"method": method, "algo": algo, **routing_scores(m["delivered"][:, -tail:], m["delay_total"][:, -tail:]),
            "reward": mean_ci95(reward), "reward_per_seed": reward.tolist(),
            "tail_steps_per_env": tail * res["env_steps_per_update"] // args.num_envs,
            "curve_delivered": m["delivered"].mean(axis=0).tolist(), "compile_s": res["compile_s"],
            "run_s": res["median_s"], "agent_steps_per_s": agent_steps / res["median_s"], "config": res["config"]}


def routing(args) -> int:
    methods = args.methods.split(",") if args.methods else ["dgn", "il", "floyd_bl", "floyd"]
    bad = [m for m in methods if m not in ROUTING_METHODS]
    if bad:
        raise SystemExit(f"unknown --methods: {', '.join(bad)} (valid: {', '.join(ROUTING_METHODS)})")
    env_args = {"num_routers": 6, "num_packets": 4, "max_steps": 10} if args.quick else {}
    env_args["path_costs"] = args.path_costs
    if args.quick:
        args.steps, args.seeds = 24, 2
    env = envs.make("routing", **env_args)
    start = time.time()
    doc = {**machine_info(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": vars(args), "env_args": envs.env_args("routing") | env_args, "rows": []}
    tail_steps = None
    for method in [m for m in methods if not m.startswith("floyd")]:
        doc["rows"].append(run_routing(method, env, args))
        tail_steps = doc["rows"][-1]["tail_steps_per_env"]
        emit({**doc, "partial": True}, args.out, False)
    for method in [m for m in methods if m.startswith("floyd")]:
        steps = tail_steps or max(1, int(round(args.steps * args.tail)) // args.num_envs)
        steps = -(-steps // env.max_steps) * env.max_steps  # whole episodes
        doc["rows"].append(run_floyd(method, env, args, steps))
    return finish(doc, start, args.out, args.json)


def plot(doc: dict, path: str) -> None:
    plt = pyplot()
    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    for row in doc["rows"]:
        for ax, key in zip(axs, ("curve_reward", "curve_kills")):
            y = np.asarray(row[key])
            width = max(1, len(y) // 50)
            ax.plot(np.convolve(y, np.ones(width) / width, mode="valid"), label=row["method"])
    axs[0].set(xlabel="update", ylabel="reward per agent and step", title="dgn_battle")
    axs[1].set(xlabel="update", ylabel="kills per step", title="dgn_battle")
    axs[0].legend()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", choices=("battle", "traffic_junction", "jungle", "routing", "predator_prey"),
                   default="battle")
    p.add_argument("--methods", help=f"battle: {','.join(METHODS)} (the default: all); traffic_junction: "
                                     f"{','.join(JUNCTION_METHODS)}; routing: {','.join(ROUTING_METHODS)} (the "
                                     f"default: all but mfq); predator_prey: {','.join(PREDATOR_PREY_METHODS)}")
    p.add_argument("--steps", type=int, help="environment steps per seed (battle: 9000, traffic_junction: 16000, "
                                             "jungle: 4800)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--num-envs", type=int, help="environments per update (battle: 4, traffic_junction: 16)")
    p.add_argument("--hidden", type=int, default=64, help="traffic_junction: hidden units (the paper's: 128)")
    p.add_argument("--rollout-len", type=int, default=2)
    p.add_argument("--batch", type=int, default=32, help="joint transitions per gradient step")
    p.add_argument("--buffer", type=int, default=5_000, help="replay capacity in joint transitions")
    p.add_argument("--learning-starts", type=int, default=500, help="joint transitions before learning")
    p.add_argument("--epsilon-decay", type=float, default=0.9, help="DGN's epsilon factor every 300 steps")
    p.add_argument("--throughput-steps", type=int, default=600, help="0: no throughput run")
    p.add_argument("--relation-reg", type=float, default=0.1, help="lambda of DGN-R")
    p.add_argument("--lr", type=float, default=SHARED["lr"], help="battle and routing: Adam's learning rate")
    p.add_argument("--entropy", type=float, default=0.0, help="traffic_junction: entropy coefficient")
    p.add_argument("--normalize-advantages", action="store_true",
                   help="traffic_junction: standardise the advantages in each batch (IC3Net's --normalize_rewards)")
    p.add_argument("--path-costs", action="store_true", help="routing: the environment's path_costs")
    p.add_argument("--tail", type=float, default=0.2, help="fraction of the updates the scores average over")
    p.add_argument("--quick", action="store_true", help="a smoke run: a tiny battle and networks")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out")
    p.add_argument("--plot", action="store_true", help="a PNG beside --out")
    args = p.parse_args(argv)
    if args.game == "jungle":
        return jungle(args)
    junction_game = args.game == "traffic_junction"
    args.steps = args.steps or (16_000 if junction_game else 9_000)
    args.num_envs = args.num_envs or (16 if junction_game else 4)
    if junction_game:
        return junction(args)
    if args.game == "routing":
        return routing(args)
    if args.game == "predator_prey":
        return predator_prey(args)
    methods = (args.methods or ",".join(METHODS)).split(",")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"unknown --methods: {', '.join(bad)} (valid: {', '.join(METHODS)})")
    env_args = {"map_size": 10, "n_learners": 4, "n_enemies": 2, "max_cycles": 10} if args.quick else {}
    if args.quick:
        args.steps, args.seeds, args.throughput_steps = 24, 2, 6 if args.throughput_steps else 0
    env = envs.make("dgn_battle", **env_args)
    start = time.time()
    doc = {**machine_info(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": vars(args), "env_args": envs.env_args("dgn_battle") | env_args, "rows": []}
    if args.throughput_steps:
        doc["throughput"] = throughput(envs.make("dgn_battle", **env_args), args.throughput_steps, args.quick)
    for method in methods:
        doc["rows"].append(run(method, env, args))
        emit({**doc, "partial": True}, args.out, False)
    return finish(doc, start, args.out, args.json, plot if args.plot else None)


if __name__ == "__main__":
    raise SystemExit(main())
