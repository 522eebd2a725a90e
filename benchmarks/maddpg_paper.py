"""MADDPG's cooperative communication, physical deception and predator-prey experiments at a small CPU budget (Lowe et
al., 2017, Section 6 and Table 1). Cooperative communication: the speaker sees the goal landmark's colour and speaks
one of 3 messages, the listener hears it and must move to that landmark; both are rewarded by minus the listener's
squared distance to it (``mpe_speaker_listener``, 25-step episodes). The paper's listener reaches its target in 84%
of episodes with MADDPG and far less often with DDPG (its Table 1); its Section 5.2 fits the other agents' policies
instead of reading them (``infer_policies``), which it reports reaching about the success of the true policies.

Arms (each ``--seeds`` seeds, vmapped in one jit): ``maddpg``, ``ddpg`` (each agent's critic on its own observation
and action), ``maddpg_inferred`` (``infer_policies=true``) and, with ``--arms``, two other ways to fit:
``maddpg_inferred_hard`` (the argmax of the stored actions, ``infer_hard=true``) and ``maddpg_inferred_recent`` (each
update's own transitions, ``infer_recent=true``), all on the paper's settings (``default_config``:
Adam 1e-2, gamma 0.95, batch 1024 drawn per agent, 2x64 MLPs, tau 0.01, gradient-norm clip 0.5, one gradient step
every 100 environment steps once 25,600 transitions are stored, Gumbel-softmax actions fed to the environment as the
soft vector, as openai/maddpg feeds MPE), with the 100 steps between updates spread over ``--num-envs``
environments (the same number of gradient steps per environment step; fewer sequential steps on a CPU).

After training, each seed's final policies act as they were trained (Gumbel-softmax samples) in ``--eval-episodes``
fresh episodes, and again without the noise (``deterministic``: the softmax of the logits, or the tanh action). The
listener has reached its target when, at the episode's last step, its distance to the goal landmark is below the sum
of their radii (0.075 + 0.04: touching); the paper does not state its threshold, so the mean final distance is
reported too, and how often the listener ends nearer its goal than the other two landmarks (the message followed).
Success rates are means over seeds with 95% Student-t intervals over seeds. The inferred arms also report how far
each agent's final fits are from the others' final policies on the evaluation episodes' observations
(``fit_total_variation``, [N (who fits)][N (whose)] per seed, and the listener's fit of the speaker), beside how far
the mean of the policies' own soft samples is from them (``soft_sample_total_variation``: where a fit to the soft
stored actions tends).

The competitive tasks (``--task deception``, ``--task predator_prey``, the paper's Section 6) train MADDPG agents
against DDPG opponents in one run: each agent group's critic kind is set by ``critic_kinds`` (joint: MADDPG, local:
DDPG; everything else is the paper's settings above), one arm per pairing and its reverse (``--arms`` adds the pure
``maddpg_all`` and ``ddpg_all``).

- Physical deception (``mpe_adversary``, N = 2: one adversary, two good agents, two landmarks, the goal known to the
  good agents only). Arms ``maddpg_agents_ddpg_adversary`` and ``ddpg_agents_maddpg_adversary``. The paper counts a
  success when an agent is "within a small distance" of the goal landmark; here at the episode's last step, within
  ``NEAR_GOAL`` = 0.16 (twice the landmark size, the scenario's own binary "near the goal" rule in
  openai/multiagent-particle-envs): the good agents succeed when the nearer of them is, the adversary when it is.
- Predator-prey (``mpe_tag``: 3 slower predators, 1 faster prey, 2 obstacles). Arms ``maddpg_predators_ddpg_prey``
  and ``ddpg_predators_maddpg_prey``. Touches per episode: the (prey, predator) pairs in contact, summed over the
  episode's 25 steps (each predator's reward is 10 per pair; openai's ``benchmark_data`` counts the same contacts).

Policy ensembles (``--ensembles``, the paper's Section 5.4 and Figure 3, right): ``--task keep_away`` (``mpe_push``:
one adversary keeps one agent from the target landmark), ``deception`` or ``predator_prey`` (the predators are the
paper's agents, the prey its adversary). Two populations train on the paper's settings above: ``maddpg`` with
``ensemble`` K (the paper's K: 3 in keep-away, 2 in predator-prey; 3 in deception, the paper's "cooperative navigation"
K taken for it), ``sub_buffers`` (a buffer D_i^(k) per sub-policy) and ``ensemble_draw=group`` (one sub-policy index per
episode for all the agents, one for the adversaries, as the paper enforces), and plain ``maddpg``. Seed s of each is
then cross-played against seed s of the other (``algos.offpolicy.crossplay``) in the four pairings E v E, E v S,
S v E, S v S (agents v adversaries; an ensemble draws a sub-policy per episode, sampling as trained), for
``--eval-episodes`` episodes each. Reported per pairing: the agents' and the adversaries' episode reward (summed over
the 25 steps, averaged over a side's agents) with 95% Student-t intervals over seeds; the 0-1 normalised score of each
side (its mean reward min-max scaled over the four pairings: the paper plots 0-1 normalised scores without stating the
formula); and the ensemble's paired gains (e.g. the agents' reward in E v S minus S v S, seed by seed). A study too
long for one sitting grows across calls with ``--actors-dir DIR``: each population's trained seeds are kept there
(their final actors and timings), a call trains only the seeds not stored yet (``--max-new-seeds N`` of each
population at most), and the cross-play runs once all ``--seeds`` are there.

    python benchmarks/maddpg_paper.py --seeds 5 --total-steps 1000000 \\
        --out benchmarks/results/cpu/maddpg_paper_speaker_listener.json
    python benchmarks/maddpg_paper.py --task deception --seeds 8 --total-steps 1500000 --out deception.json
    python benchmarks/maddpg_paper.py --ensembles --task keep_away --seeds 8 --total-steps 1500000 --out ka.json
    python benchmarks/maddpg_paper.py --ensembles --task predator_prey --seeds 8 --total-steps 1500000 \\
        --actors-dir pp_actors --max-new-seeds 2 --out pp.json       # again until all 8 seeds are stored
    python benchmarks/maddpg_paper.py --quick      # a short smoke run
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import sys
from collections.abc import Callable

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from algos.offpolicy import OffPolicyConfig  # noqa: E402
from algos.offpolicy.crossplay import cross_play, play  # noqa: E402
from algos.offpolicy.learner import fit_total_variation  # noqa: E402
from algos.offpolicy.model import build_model  # noqa: E402
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from jaxmarl_core import outputs  # noqa: E402
from jaxmarl_core.config import from_defaults, parse_overrides  # noqa: E402
from jaxmarl_core.learner_view import LearnerView  # noqa: E402

ARMS = {  # cooperative communication: name -> (algorithm, config overrides)
    "maddpg": ("maddpg", {}),
    "ddpg": ("ddpg", {}),
    "maddpg_inferred": ("maddpg", {"infer_policies": True}),
    "maddpg_inferred_hard": ("maddpg", {"infer_policies": True, "infer_hard": True}),
    "maddpg_inferred_recent": ("maddpg", {"infer_policies": True, "infer_recent": True}),
}
# The competitive tasks pit MADDPG's joint critics against DDPG's local ones inside one run (``critic_kinds``, one
# kind per agent group: deception's groups are the adversary then the good agents, predator-prey's the predators then
# the prey), with the pure pairings beside them (--arms).
DECEPTION_ARMS = {
    "maddpg_agents_ddpg_adversary": ("maddpg", {"critic_kinds": "local,joint"}),
    "ddpg_agents_maddpg_adversary": ("maddpg", {"critic_kinds": "joint,local"}),
    "maddpg_all": ("maddpg", {}),
    "ddpg_all": ("ddpg", {}),
}
PREDATOR_PREY_ARMS = {
    "maddpg_predators_ddpg_prey": ("maddpg", {"critic_kinds": "joint,local"}),
    "ddpg_predators_maddpg_prey": ("maddpg", {"critic_kinds": "local,joint"}),
    "maddpg_all": ("maddpg", {}),
    "ddpg_all": ("ddpg", {}),
}
PAPER_TARGET_REACH = {"maddpg": 84.0}  # percent of episodes, Lowe et al. (2017), Table 1; DDPG: "far less"
SPEAKER, LISTENER, REACH = 0, 1, 0.075 + 0.04  # the agents' indices; listener radius + landmark radius
NEAR_GOAL = 2 * 0.08  # deception: openai's simple_adversary binary reward's "near the goal", twice the landmark size
HIT = 10.0  # predator-prey: each predator's reward per touching (prey, predator) pair
STEPS_PER_GRADIENT_STEP = 100  # openai/maddpg: one update of every agent each 100 environment steps


def communication_outcomes(reward: np.ndarray, final_obs: np.ndarray) -> dict:
    """rewards [S, T, E, N], the observations after each episode's last step [S, E, N, D] -> per seed [S]: the
    listener's target reached (% of episodes), its final distance and squared distance (minus the last reward), and
    how often it ends nearer its goal than the other two landmarks (% of episodes: the message followed, however far
    from the landmark it stopped)."""
    dist = np.sqrt(-reward[:, -1, :, LISTENER])
    goal = final_obs[:, :, SPEAKER, :3].argmax(axis=-1)  # the speaker sees the goal landmark's colour
    landmarks = final_obs[:, :, LISTENER, 2:8].reshape(*goal.shape, 3, 2)  # after its velocity: the relative positions
    nearest = np.linalg.norm(landmarks, axis=-1).argmin(axis=-1)
    return {"target_reach_percent": (dist < REACH).mean(axis=1) * 100, "final_distance": dist.mean(axis=1),
            "final_squared_distance": (dist ** 2).mean(axis=1),
            "nearest_goal_percent": (nearest == goal).mean(axis=1) * 100}


def deception_outcomes(reward: np.ndarray, final_obs: np.ndarray) -> dict:
    """Physical deception (``mpe_adversary``: the adversary, agent 0, is paid -d_adv; the good agents
    d_adv - min_good d) -> per seed [S], at each episode's last step: the good agents' success (the nearest good
    agent within ``NEAR_GOAL`` of the goal, % of episodes), the adversary's, and both distances."""
    d_adv = -reward[:, -1, :, 0]
    d_good = d_adv - reward[:, -1, :, 1]
    return {"agents_success_percent": (d_good < NEAR_GOAL).mean(axis=1) * 100,
            "adversary_success_percent": (d_adv < NEAR_GOAL).mean(axis=1) * 100,
            "agents_distance": d_good.mean(axis=1), "adversary_distance": d_adv.mean(axis=1)}


def predator_prey_outcomes(reward: np.ndarray, final_obs: np.ndarray) -> dict:
    """Predator-prey (``mpe_tag``: every predator, agents 0..2, is paid ``HIT`` per touching pair) -> per seed [S]:
    touches per episode, the (prey, predator) pairs in contact summed over the episode's steps."""
    return {"touches_per_episode": (reward[:, :, :, 0] / HIT).sum(axis=1).mean(axis=1)}


def ending(traj) -> tuple:
    """An evaluation trajectory -> its rewards [T, E, N] and the observations after its last step [E, N, D]."""
    return traj.reward, traj.next_obs.obs[-1]


@dataclasses.dataclass(frozen=True)
class Task:
    title: str
    env_name: str
    arms: dict
    outcomes: Callable  # rewards [S, T, E, N], observations after the last step [S, E, N, D] -> {name: [S]}
    curve_agent: int  # whose training return the curve shows
    headline: str  # the outcome printed and plotted
    paper: str


TASKS = {
    "communication": Task("cooperative communication (mpe_speaker_listener, continuous=True)", "mpe_speaker_listener",
                          ARMS, communication_outcomes, LISTENER, "target_reach_percent",
                          "Lowe et al. (2017), Table 1: target reach 84% (MADDPG), far less (DDPG)"),
    "deception": Task("physical deception (mpe_adversary, N=2, continuous=True)", "mpe_adversary", DECEPTION_ARMS,
                      deception_outcomes, 1, "agents_success_percent",
                      "Lowe et al. (2017), Section 6 (physical deception): MADDPG good agents beat a DDPG adversary "
                      "(higher agent, lower adversary success) and a MADDPG adversary gains against DDPG agents"),
    "predator_prey": Task("predator-prey (mpe_tag: 3 predators, 1 prey, 2 obstacles, continuous=True)", "mpe_tag",
                          PREDATOR_PREY_ARMS, predator_prey_outcomes, 0, "touches_per_episode",
                          "Lowe et al. (2017), Section 6 (predator-prey): MADDPG predators touch DDPG prey more "
                          "often than DDPG predators touch MADDPG prey"),
}


# -- policy ensembles (Section 5.4, Figure 3 right) -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EnsembleTask:
    title: str
    env_name: str
    adversaries: tuple  # the paper's adversaries' agent indices; the others are its "agents"
    sub_policies: int  # the paper's K


ENSEMBLE_TASKS = {
    "keep_away": EnsembleTask("keep-away (mpe_push: 1 adversary, 1 agent, 2 landmarks, continuous=True)", "mpe_push",
                              (0,), 3),
    "deception": EnsembleTask("physical deception (mpe_adversary, N=2, continuous=True)", "mpe_adversary", (0,), 3),
    "predator_prey": EnsembleTask("predator-prey (mpe_tag: the 3 predators are the agents, the prey the adversary, "
                                  "continuous=True)", "mpe_tag", (3,), 2),
}
POPULATIONS = {"ensemble": "E", "single": "S"}
PAIRINGS = [(a, b) for a in POPULATIONS for b in POPULATIONS]  # (agents' population, adversaries')
ENSEMBLE_PAPER = ("Lowe et al. (2017), Section 5.4 and Figure 3 (right): K = 3 sub-policies in keep-away, K = 2 in "
                  "predator-prey, one index per episode for all cooperating agents and one for the adversaries; "
                  "ensemble agents and adversaries beat single-policy ones (0-1 normalised scores), and ensemble "
                  "agents against single adversaries win by a larger margin than the reverse")
GAINS = {  # name -> (side, pairing with the ensemble, the same pairing with a single policy there), paired on seeds
    "agents_gain_vs_single_adversaries": ("agents", ("ensemble", "single"), ("single", "single")),
    "agents_gain_vs_ensemble_adversaries": ("agents", ("ensemble", "ensemble"), ("single", "ensemble")),
    "adversaries_gain_vs_single_agents": ("adversaries", ("single", "ensemble"), ("single", "single")),
    "adversaries_gain_vs_ensemble_agents": ("adversaries", ("ensemble", "ensemble"), ("ensemble", "single")),
}


def ensemble_gains(per_pairing: dict) -> dict:
    """Per-seed outcomes [S] of each pairing, ``{(agents, adversaries): {outcome: [S]}}`` -> ``GAINS``' paired
    differences: the side's reward (mean, 95% interval, per seed) and, under ``outcomes``, the same difference of
    every other outcome (the other side's reward, the task's success rates and distances)."""
    gains = {}
    for name, (side, with_ensemble, without) in GAINS.items():
        paired = {m: np.asarray(v) - np.asarray(per_pairing[without][m]) for m, v in per_pairing[with_ensemble].items()}
        diff = paired.pop(side + "_reward")
        gains[name] = {**outputs.mean_ci95(diff), "per_seed": diff.tolist(),
                       "pairings": [f"{POPULATIONS[p[0]]} v {POPULATIONS[p[1]]}" for p in (with_ensemble, without)],
                       "outcomes": {m: {**outputs.mean_ci95(d), "per_seed": d.tolist()} for m, d in paired.items()}}
    return gains


def side_rewards(reward: np.ndarray, adversaries: tuple) -> dict:
    """rewards [S, T, E, N] -> per seed [S]: the agents' and the adversaries' episode reward (summed over the T
    steps, averaged over the side's agents and the E episodes)."""
    ret = reward.sum(axis=1).mean(axis=1)  # [S, N]
    adv = np.isin(np.arange(ret.shape[-1]), adversaries)
    return {"agents_reward": ret[:, ~adv].mean(axis=-1), "adversaries_reward": ret[:, adv].mean(axis=-1)}


def normalised(rows: list[dict], side: str) -> list[float]:
    """The paper's 0-1 normalised score of one side: its mean reward in each pairing, min-max scaled over the four
    pairings (1: the side's best pairing; the paper plots, per task, these scores without stating the formula)."""
    means = np.array([r[side + "_reward"]["mean"] for r in rows])
    span = means.max() - means.min()
    return ((means - means.min()) / span if span > 0 else np.zeros_like(means)).tolist()


class SeedStore:
    """A population's trained seeds on disk, so that a long study grows across calls: ``seed_S.npz`` holds seed S's
    final actors (the leaves of ``like``, in order), ``population.json`` the settings and each seed's timings. A
    directory made with other settings is refused."""

    def __init__(self, directory: str, settings: dict):
        self.directory, self.path = directory, os.path.join(directory, "population.json")
        settings = json.loads(json.dumps(settings))
        os.makedirs(directory, exist_ok=True)
        self.doc = {"settings": settings, "seeds": []}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.doc = json.load(f)
            if self.doc["settings"] != settings:
                raise ValueError(f"{directory} holds a population trained with other settings: choose another "
                                 "--actors-dir")

    @property
    def done(self) -> int:
        """How many seeds (0, 1, ...) are stored."""
        return len(self.doc["seeds"])

    def add(self, actors, timings: dict) -> None:
        """Store the next seeds' actors (leaves [S, ...]) with their call's ``timings``."""
        leaves = [np.asarray(x) for x in jax.tree.leaves(actors)]
        for i in range(leaves[0].shape[0]):
            buf = io.BytesIO()
            np.savez(buf, *(x[i] for x in leaves))
            outputs.atomic_write(os.path.join(self.directory, f"seed_{self.done}.npz"), buf.getvalue())
            self.doc["seeds"].append({"seed": self.done, **timings})
            outputs.atomic_write_json(self.path, self.doc)

    def load(self, like, seeds: int):
        """Seeds 0 .. seeds - 1 stacked in the structure of ``like`` (one seed's actors) -> leaves [seeds, ...]."""
        per_seed = []
        for s in range(seeds):
            with np.load(os.path.join(self.directory, f"seed_{s}.npz")) as f:
                per_seed.append([f[f"arr_{i}"] for i in range(len(f.files))])
        return jax.tree.unflatten(jax.tree.structure(like), [np.stack(x) for x in zip(*per_seed)])


def run_ensembles(task: str, seeds: int, total_steps: int, num_envs: int, episodes: int, overrides: dict,
                  sub_policies: int | None = None, actors_dir: str | None = None, max_new: int = 0) -> dict | None:
    """Train an ensemble population (``ensemble`` K, ``sub_buffers``, one draw per agent group) and a single-policy
    one (``maddpg``, both on the paper's settings), then cross-play seed s of one against seed s of the other in the
    four pairings -> the JSON document. With ``actors_dir`` each population's seeds are kept there (``SeedStore``),
    a call trains only the seeds not yet stored (at most ``max_new`` of each population; 0: all), and returns None
    while some are missing."""
    spec = ENSEMBLE_TASKS[task]
    k = sub_policies or spec.sub_policies
    env = envs.make(spec.env_name, continuous=True)
    base = {"total_steps": total_steps, "num_envs": num_envs,
            "rollout_len": max(1, STEPS_PER_GRADIENT_STEP // num_envs), **overrides}
    pops = {"ensemble": {"ensemble": k, "sub_buffers": True, "ensemble_draw": "group"}, "single": {}}
    configs = {name: from_defaults(algos.get("maddpg").default_config, env, {**base, **extra})
               for name, extra in pops.items()}
    stores = {name: SeedStore(os.path.join(actors_dir, f"{task}_{name}"), {"task": task, "config": dataclasses.asdict(
        config)}) if actors_dir else None for name, config in configs.items()}  # refused before any training
    trained = {}
    for name, extra in pops.items():
        config, store = configs[name], stores[name]
        first = store.done if store else 0
        new = max(0, seeds - first)
        new = min(new, max_new) if max_new else new
        if new:
            res = train_many("maddpg", env, {**base, **extra}, new, warmup=False, first_seed=first)
            timings = {"compile_s": res["compile_s"], "run_s": res["median_s"], "seeds_in_call": new,
                       "env_steps": res["num_updates"] * res["env_steps_per_update"]}
            print(f"{task} {name}: trained {timings['env_steps']:,} steps x seeds {first}..{first + new - 1} in "
                  f"{res['median_s']:.0f} s (compile {res['compile_s']:.0f} s)", file=sys.stderr)
            if store:
                store.add(res["out"].state.nets.actor, timings)
        if store:
            if store.done < seeds:
                print(f"{task} {name}: {store.done} of {seeds} seeds stored in {store.directory}; run the same "
                      "command again for the rest", file=sys.stderr)
                continue
            like = jax.eval_shape(build_model(LearnerView(env), config).init_actors, jax.random.PRNGKey(0))
            actors = store.load(like, seeds)
            calls = store.doc["seeds"][:seeds]
            compile_s, run_s = (sum(c[f] / c["seeds_in_call"] for c in calls) for f in ("compile_s", "run_s"))
            steps = calls[0]["env_steps"]
        else:
            actors, compile_s, run_s = res["out"].state.nets.actor, timings["compile_s"], timings["run_s"]
            steps = timings["env_steps"]
        trained[name] = {"config": config, "actors": actors,
                         "summary": {"population": name, "overrides": {**base, **extra}, "env_steps": steps,
                                     "compile_s": compile_s, "run_s": run_s,
                                     "env_steps_per_s": seeds * steps / run_s,
                                     "config": dataclasses.asdict(config)}}
    if len(trained) < len(pops):
        return None
    from_agents = ~np.isin(np.arange(env.num_agents), spec.adversaries)
    keys = jax.random.split(jax.random.PRNGKey(10_000), seeds)
    rows, per_pairing = [], {}
    for agents, adversaries in PAIRINGS:
        a, b = trained[agents], trained[adversaries]
        reward, final_obs = map(np.asarray, jax.jit(jax.vmap(lambda x, y, key: ending(cross_play(
            env, a["config"], x, b["config"], y, from_agents, key, episodes))))(a["actors"], b["actors"], keys))
        outcomes = side_rewards(reward, spec.adversaries)
        if task in TASKS:
            outcomes.update(TASKS[task].outcomes(reward, final_obs))
        per_pairing[agents, adversaries] = outcomes
        row = {"pairing": f"{POPULATIONS[agents]} v {POPULATIONS[adversaries]}", "agents": agents,
               "adversaries": adversaries, "seeds": seeds, "eval_episodes_per_seed": episodes}
        for name, per_seed in outcomes.items():
            row[name], row[name + "_per_seed"] = outputs.mean_ci95(per_seed), per_seed.tolist()
        rows.append(row)
        print(f"{task} {row['pairing']}: agents {row['agents_reward']['mean']:.3g}, adversaries "
              f"{row['adversaries_reward']['mean']:.3g}", file=sys.stderr)
    for side in ("agents", "adversaries"):
        for row, score in zip(rows, normalised(rows, side)):
            row[side + "_normalised_score"] = score
    return {"benchmark": "maddpg_paper_ensembles", "task": spec.title, **machine_info(), "paper": ENSEMBLE_PAPER,
            "sub_policies": k, "adversaries": list(spec.adversaries), "seeds": seeds,
            "populations": [t["summary"] for t in trained.values()], "results": rows,
            "ensemble_gains": ensemble_gains(per_pairing)}


def ensembles_table(doc: dict) -> str:
    """The pairings' rewards and scores and the paired gains as a Markdown table."""
    def ci(v):
        return f"{v['mean']:.3g} ({v['ci95_low']:.3g}, {v['ci95_high']:.3g})"

    lines = ["| agents v adversaries | agents' reward | adversaries' reward | normalised score (agents, adversaries) |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r['pairing']} | {ci(r['agents_reward'])} | {ci(r['adversaries_reward'])} | "
              f"{r['agents_normalised_score']:.2f}, {r['adversaries_normalised_score']:.2f} |" for r in doc["results"]]
    lines += ["", "| paired gain of the ensemble (per seed) | mean (95% interval) |", "| --- | --- |"]
    lines += [f"| {name} ({' - '.join(g['pairings'])}) | {ci(g)} |" for name, g in doc["ensemble_gains"].items()]
    return "\n".join(lines)


def plot_ensembles(doc: dict, path: str) -> None:
    """Each side's reward in the four pairings, 95% intervals over seeds (the normalised scores are in the JSON)."""
    plt = outputs.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
    names = [r["pairing"] for r in doc["results"]]
    for ax, side in zip(axes, ("agents", "adversaries")):
        stats = [r[side + "_reward"] for r in doc["results"]]
        means = np.array([v["mean"] for v in stats])
        errs = np.array([[m - v["ci95_low"], v["ci95_high"] - m] for m, v in zip(means, stats)]).T
        ax.bar(names, means, yerr=errs, capsize=4)
        ax.set(title=f"{side}' episode reward", xlabel="agents v adversaries")
    fig.suptitle(f"{doc['task'].split(' (')[0]}: E ensemble, S single policies; {doc['seeds']} seeds, 95% intervals",
                 fontsize=9)
    outputs.save_figure(fig, path)


def run_arm(arm: str, seeds: int, total_steps: int, num_envs: int, episodes: int, overrides: dict,
            task: str = "communication") -> dict:
    spec = TASKS[task]
    algo, extra = spec.arms[arm]
    env = envs.make(spec.env_name, continuous=True)
    rollout_len = max(1, STEPS_PER_GRADIENT_STEP // num_envs)
    res = train_many(algo, env, {"total_steps": total_steps, "num_envs": num_envs, "rollout_len": rollout_len,
                                 **extra, **overrides}, seeds, warmup=False)
    config = OffPolicyConfig(**res["config"])
    keys = jax.random.split(jax.random.PRNGKey(10_000), seeds)

    def outcomes_of(deterministic: bool) -> dict:
        reward, final_obs = map(np.asarray, jax.jit(jax.vmap(
            lambda a, k: ending(play(env, config, a, k, episodes, deterministic))))(res["out"].state.nets.actor, keys))
        return spec.outcomes(reward, final_obs)

    outcomes = outcomes_of(False)
    fits = inferred_fits(env, config, res["out"].state.nets, keys, episodes) if config.infer_policies else None
    ret = res["metrics"]["episode_return"][..., spec.curve_agent]  # [S, U]
    steps = res["num_updates"] * res["env_steps_per_update"]
    row = {"arm": arm, "algo": algo, "overrides": {**extra, **overrides}, "seeds": seeds, "env_steps": steps,
           "eval_episodes_per_seed": episodes}
    for name, per_seed in outcomes.items():
        row[name], row[name + "_per_seed"] = outputs.mean_ci95(per_seed), per_seed.tolist()
    row["deterministic"] = {name: {"mean_ci95": outputs.mean_ci95(per_seed), "per_seed": per_seed.tolist()}
                            for name, per_seed in outcomes_of(True).items()}
    if fits is not None:
        row["fit_total_variation_per_seed"], row["soft_sample_total_variation_per_seed"] = (x.tolist() for x in fits)
        if task == "communication":
            row["listener_fit_of_speaker_total_variation"] = outputs.mean_ci95(fits[0][:, LISTENER, SPEAKER])
            row["speaker_soft_sample_total_variation"] = outputs.mean_ci95(fits[1][:, SPEAKER])
    if task == "communication":
        row["paper_target_reach_percent"] = PAPER_TARGET_REACH.get(arm)
    row.update({"compile_s": res["compile_s"], "run_s": res["median_s"],
                "env_steps_per_s": seeds * steps / res["median_s"], "curve_agent": spec.curve_agent,
                "curve_steps": ((np.arange(ret.shape[1]) + 1) * res["env_steps_per_update"]).tolist(),
                "curve": ret.mean(axis=0).tolist(), "config": res["config"]})
    text = ", ".join(f"{name} {row[name]['mean']:.3g} ({row[name]['ci95_low']:.3g}, {row[name]['ci95_high']:.3g})"
                     for name in outcomes)
    print(f"{task} {arm}: {text}, after {steps:,} steps x {seeds} seeds ({row['env_steps_per_s']:,.0f} env steps/s)",
          file=sys.stderr)
    return row


def inferred_fits(env, config: OffPolicyConfig, nets, keys, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's final fits against its final policies (``learner.fit_total_variation``) on the observations of
    ``episodes`` fresh episodes -> ([S, N, N] fits, [S, N] soft samples' mean)."""
    model = build_model(LearnerView(env), config)

    def one(n, k):
        k_play, k_soft = jax.random.split(k)
        obs = play(env, config, n.actor, k_play, episodes).obs  # leaves [T, E, N, ...]
        flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), obs)
        return fit_total_variation(model, n.actor, n.approx, flat, k_soft, samples=16)

    return tuple(map(np.asarray, jax.jit(jax.vmap(one))(nets, keys)))


def plot(rows: list[dict], task: str, path: str) -> None:
    spec = TASKS[task]
    plt = outputs.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in rows:
        left.plot(r["curve_steps"], r["curve"], label=r["arm"])
    left.set(title=f"{task} (training)", xlabel="environment steps",
             ylabel=f"agent {spec.curve_agent}'s episode return (mean over seeds)")
    left.legend(fontsize=7)
    names = [r["arm"] for r in rows]
    means = [r[spec.headline]["mean"] for r in rows]
    errs = np.array([[m - r[spec.headline]["ci95_low"], r[spec.headline]["ci95_high"] - m]
                     for m, r in zip(means, rows)]).T
    right.bar(names, means, yerr=errs, capsize=4, label="ours (95% interval over seeds)")
    paper = [r.get("paper_target_reach_percent") for r in rows]
    if any(v is not None for v in paper):
        right.scatter([n for n, v in zip(names, paper) if v is not None], [v for v in paper if v is not None],
                      color="k", marker="x", zorder=3, label="Lowe et al. (2017)")
    right.set(title=spec.headline.replace("_", " "))
    right.tick_params(axis="x", labelsize=6)
    right.legend(fontsize=7)
    outputs.save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="communication", choices=list(TASKS) + ["keep_away"])
    p.add_argument("--ensembles", action="store_true", help="the policy-ensemble experiment (keep_away, deception, "
                   "predator_prey): train an ensemble and a single-policy population, cross-play them")
    p.add_argument("--sub-policies", type=int, default=None, help="--ensembles: K (default: the paper's, 3 or 2)")
    p.add_argument("--actors-dir", default=None, help="--ensembles: keep each population's trained seeds here and "
                   "train only those not stored yet, so that a long study grows across calls")
    p.add_argument("--max-new-seeds", type=int, default=0, metavar="N", help="--actors-dir: train at most N new "
                   "seeds of each population in this call (default 0: all that are missing)")
    p.add_argument("--arms", default=None, help="comma-separated; default: communication's three, the competitive "
                   "tasks' two mixed pairings")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--total-steps", type=float, default=1_000_000)
    p.add_argument("--num-envs", type=int, default=10, help="environments sharing the 100 steps between updates")
    p.add_argument("--eval-episodes", type=int, default=1000, help="evaluation episodes per seed")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--quick", action="store_true", help="two seeds, 20,000 steps, small networks and batches")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="write the JSON document here (atomically) and its plot beside it")
    args = p.parse_args(argv)
    if args.ensembles:
        if args.task not in ENSEMBLE_TASKS or args.arms:
            p.error(f"--ensembles takes --task {', '.join(ENSEMBLE_TASKS)} and no --arms")
        if args.sub_policies is not None and args.sub_policies < 2:
            p.error("--sub-policies must be at least 2")
        if args.max_new_seeds < 0 or (args.max_new_seeds and not args.actors_dir):
            p.error("--max-new-seeds takes a count >= 0 and --actors-dir")
    elif args.actors_dir or args.max_new_seeds:
        p.error("--actors-dir and --max-new-seeds need --ensembles")
    elif args.task not in TASKS:
        p.error(f"--task {args.task} needs --ensembles")
    else:
        spec = TASKS[args.task]
        default_arms = list(spec.arms)[:3 if args.task == "communication" else 2]
        arms = args.arms.split(",") if args.arms else default_arms
        unknown = [a for a in arms if a not in spec.arms]
        if unknown:
            p.error(f"--arms: {unknown[0]!r} is not one of {', '.join(spec.arms)}")
    if min(args.seeds, args.num_envs, args.eval_episodes) <= 0 or args.total_steps <= 0:
        p.error("--seeds, --total-steps, --num-envs and --eval-episodes must be positive")
    overrides = {}
    if args.quick:
        args.seeds, args.total_steps, args.eval_episodes = 2, min(args.total_steps, 20_000), 50
        overrides.update(hidden_size=16, batch_size=64, buffer_size=10_000, learning_starts=1_000)
    try:
        overrides.update(parse_overrides(OffPolicyConfig, args.set))
    except ValueError as e:
        p.error(str(e))
    if args.ensembles:
        try:
            doc = run_ensembles(args.task, args.seeds, int(args.total_steps), args.num_envs, args.eval_episodes,
                                overrides, args.sub_policies, args.actors_dir, args.max_new_seeds)
        except ValueError as e:
            p.error(str(e))
        if doc is None:  # seeds still missing in --actors-dir
            return 0
        doc["config_overrides"] = overrides
        text = dump(doc, args.out)
        print(ensembles_table(doc), file=sys.stderr)
        if args.out:
            plot_ensembles(doc, os.path.splitext(args.out)[0] + ".png")
        if args.json:
            print(text, end="")
        return 0
    rows = [run_arm(arm, args.seeds, int(args.total_steps), args.num_envs, args.eval_episodes, overrides, args.task)
            for arm in arms]
    thresholds = {"communication": {"reach_threshold": REACH}, "deception": {"near_goal_threshold": NEAR_GOAL},
                  "predator_prey": {}}[args.task]
    doc = {"benchmark": "maddpg_paper", "task": spec.title, **machine_info(), "paper": spec.paper, **thresholds,
           "config_overrides": overrides, "results": rows}
    text = dump(doc, args.out)
    if args.out:
        plot(rows, args.task, os.path.splitext(args.out)[0] + ".png")
    if args.json:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
