"""MADDPG's cooperative communication experiment at a small CPU budget (Lowe et al., 2017, Section 6 and Table 1):
the speaker sees the goal landmark's colour and speaks one of 3 messages, the listener hears it and must move to that
landmark; both are rewarded by minus the listener's squared distance to it (``mpe_speaker_listener``, 25-step
episodes). The paper's listener reaches its target in 84% of episodes with MADDPG and far less often with DDPG (its
Table 1); its Section 5.2 fits the other agents' policies instead of reading them (``infer_policies``), which it
reports reaching about the success of the true policies.

Arms (each ``--seeds`` seeds, vmapped in one jit): ``maddpg``, ``ddpg`` (each agent's critic on its own observation
and action) and ``maddpg_inferred`` (``infer_policies=true``), all on the paper's settings (``default_config``:
Adam 1e-2, gamma 0.95, batch 1024 drawn per agent, 2x64 MLPs, tau 0.01, gradient-norm clip 0.5, one gradient step
every 100 environment steps once 25,600 transitions are stored, Gumbel-softmax actions fed to the environment as the
soft vector, as openai/maddpg feeds MPE), with the 100 steps between updates spread over ``--num-envs``
environments (the same number of gradient steps per environment step; fewer sequential steps on a CPU).

After training, each seed's final policies act as they were trained (Gumbel-softmax samples) in ``--eval-episodes``
fresh episodes. The listener has reached its target when, at the episode's last step, its distance to the goal
landmark is below the sum of their radii (0.075 + 0.04: touching); the paper does not state its threshold, so the
mean final distance is reported too. Success rates are means over seeds with 95% Student-t intervals over seeds.

    python benchmarks/maddpg_paper.py --seeds 5 --total-steps 1000000 \\
        --out benchmarks/results/cpu/maddpg_paper_speaker_listener.json
    python benchmarks/maddpg_paper.py --quick      # a short smoke run
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
from algos.offpolicy import OffPolicyConfig  # noqa: E402
from algos.offpolicy.learner import make_policy  # noqa: E402
from algos.offpolicy.model import build_model  # noqa: E402
from benchmarks.common import dump, machine_info, train_many  # noqa: E402
from jaxmarl_core import outputs  # noqa: E402
from jaxmarl_core.config import parse_overrides  # noqa: E402
from jaxmarl_core.learner_view import LearnerView  # noqa: E402
from jaxmarl_core.rollout import reset_carry, rollout  # noqa: E402

ARMS = {  # name -> (algorithm, config overrides)
    "maddpg": ("maddpg", {}),
    "ddpg": ("ddpg", {}),
    "maddpg_inferred": ("maddpg", {"infer_policies": True}),
}
PAPER_TARGET_REACH = {"maddpg": 84.0}  # percent of episodes, Lowe et al. (2017), Table 1; DDPG: "far less"
LISTENER, REACH = 1, 0.075 + 0.04  # the listener's index; listener radius + landmark radius
STEPS_PER_GRADIENT_STEP = 100  # openai/maddpg: one update of every agent each 100 environment steps


def final_distances(env, config: OffPolicyConfig, actors, key, episodes: int) -> jax.Array:
    """The listener's distance [episodes] to its goal landmark at the last step of ``episodes`` fresh episodes
    played by the actors of one seed as trained (Gumbel-softmax samples); both agents are paid minus its square."""
    view = LearnerView(env)
    model = build_model(view, config)
    k_reset, k_run = jax.random.split(key)
    carry = reset_carry(k_reset, view, env.default_params, jnp.zeros((episodes, 2), jnp.int32), batch_size=episodes)
    traj = rollout(k_run, view, env.default_params, make_policy(model, config, actors), carry, env.max_cycles,
                   batched=True)[1]
    return jnp.sqrt(-traj.reward[-1, :, LISTENER])


def run_arm(arm: str, seeds: int, total_steps: int, num_envs: int, episodes: int, overrides: dict) -> dict:
    algo, extra = ARMS[arm]
    env = envs.make("mpe_speaker_listener", continuous=True)
    rollout_len = max(1, STEPS_PER_GRADIENT_STEP // num_envs)
    res = train_many(algo, env, {"total_steps": total_steps, "num_envs": num_envs, "rollout_len": rollout_len,
                                 **extra, **overrides}, seeds, warmup=False)
    config = OffPolicyConfig(**res["config"])
    keys = jax.random.split(jax.random.PRNGKey(10_000), seeds)
    dist = np.asarray(jax.jit(jax.vmap(lambda a, k: final_distances(env, config, a, k, episodes)))(
        res["out"].state.nets.actor, keys))  # [S, E]
    reach = (dist < REACH).mean(axis=1) * 100  # [S]
    team = res["metrics"]["episode_return"][..., LISTENER]  # [S, U]: both agents are paid alike
    steps = res["num_updates"] * res["env_steps_per_update"]
    row = {"arm": arm, "algo": algo, "overrides": {**extra, **overrides}, "seeds": seeds, "env_steps": steps,
           "eval_episodes_per_seed": episodes, "target_reach_percent": outputs.mean_ci95(reach),
           "target_reach_percent_per_seed": reach.tolist(),
           "final_distance": outputs.mean_ci95(dist.mean(axis=1)), "final_distance_per_seed": dist.mean(1).tolist(),
           "paper_target_reach_percent": PAPER_TARGET_REACH.get(arm), "compile_s": res["compile_s"],
           "run_s": res["median_s"], "env_steps_per_s": seeds * steps / res["median_s"],
           "curve_steps": ((np.arange(team.shape[1]) + 1) * res["env_steps_per_update"]).tolist(),
           "curve": team.mean(axis=0).tolist(), "config": res["config"]}
    r = row["target_reach_percent"]
    print(f"{arm}: target reached in {r['mean']:.1f}% ({r['ci95_low']:.1f}, {r['ci95_high']:.1f}) of episodes, "
          f"final distance {row['final_distance']['mean']:.3f}, after {steps:,} steps x {seeds} seeds "
          f"({row['env_steps_per_s']:,.0f} env steps/s)", file=sys.stderr)
    return row


def plot(rows: list[dict], path: str) -> None:
    plt = outputs.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in rows:
        left.plot(r["curve_steps"], r["curve"], label=r["arm"])
    left.set(title="cooperative communication (training)", xlabel="environment steps",
             ylabel="episode return (mean over seeds)")
    left.legend(fontsize=7)
    names = [r["arm"] for r in rows]
    means = [r["target_reach_percent"]["mean"] for r in rows]
    errs = np.array([[m - r["target_reach_percent"]["ci95_low"], r["target_reach_percent"]["ci95_high"] - m]
                     for m, r in zip(means, rows)]).T
    right.bar(names, means, yerr=errs, capsize=4, label="ours (95% interval over seeds)")
    paper = [r["paper_target_reach_percent"] for r in rows]
    right.scatter([n for n, v in zip(names, paper) if v is not None], [v for v in paper if v is not None],
                  color="k", marker="x", zorder=3, label="Lowe et al. (2017)")
    right.set(title="listener reaches its target", ylabel="% of episodes", ylim=(0, 100))
    right.legend(fontsize=7)
    outputs.save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--total-steps", type=float, default=1_000_000)
    p.add_argument("--num-envs", type=int, default=10, help="environments sharing the 100 steps between updates")
    p.add_argument("--eval-episodes", type=int, default=1000, help="evaluation episodes per seed")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--quick", action="store_true", help="two seeds, 20,000 steps, small networks and batches")
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="write the JSON document here (atomically) and its plot beside it")
    args = p.parse_args(argv)
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"--arms: {unknown[0]!r} is not one of {', '.join(ARMS)}")
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
    rows = [run_arm(arm, args.seeds, int(args.total_steps), args.num_envs, args.eval_episodes, overrides)
            for arm in arms]
    doc = {"benchmark": "maddpg_paper", "task": "cooperative communication (mpe_speaker_listener, continuous=True)",
           **machine_info(), "paper": "Lowe et al. (2017), Table 1: target reach 84% (MADDPG), far less (DDPG)",
           "reach_threshold": REACH, "config_overrides": overrides, "results": rows}
    text = dump(doc, args.out)
    if args.out:
        plot(rows, os.path.splitext(args.out)[0] + ".png")
    if args.json:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
