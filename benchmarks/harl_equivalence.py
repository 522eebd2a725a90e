"""Our HAPPO and MAPPO updates against HARL's own code (PKU-MARL/HARL, PyTorch) on the same rollouts.

Our ``happo`` (and ``mappo``, one actor shared by all agents) trains a few updates on an MPE task in HARL's MPE
setting (every agent on the summed reward, HARL's truncation rule, HAPPO's agents moved in the order 0..N-1), with
discrete and with continuous actions. HARL's actors and its critic start from our initial weights; every rollout
our trainer collects is copied into HARL's buffers, and HARL's runner (``OnPolicyHARunner`` or
``OnPolicyMARunner``: ``compute`` and ``train``, i.e. GAE with ``use_proper_time_limits``, ValueNorm, advantage
normalisation, the actors' PPO epochs, for HAPPO weighted by the factor of the agents moved before, the critic's
epochs) updates them. HARL keeps its own parameters from update to update, so differences would accumulate. The
script reports, per update, the largest absolute difference of every network's parameters and the size of that
difference relative to the update itself (``|theta_ours - theta_harl| / |theta_harl - theta_before|``, Euclidean
norms over all of a network's parameters). Float32 on both sides: expect relative differences of 1e-5 to 1e-3, not 0
(a ratio that lands on the other side of PPO's clip after a rounding difference moves one sample's gradient). As a
control, the same comparison with our factor switched off (``use_factor=False``: MAPPO with separate actors) must
differ clearly.

HARL imports torch, absl-py and setproctitle; run the script in an environment that has them beside this project:

    git clone https://github.com/PKU-MARL/HARL /tmp/HARL
    python benchmarks/harl_equivalence.py --harl-dir /tmp/HARL --json \
        --out benchmarks/results/cpu/harl_equivalence.json
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import algos  # noqa: E402
import envs  # noqa: E402
from algos.onpolicy import learner as onpolicy_learner  # noqa: E402
from benchmarks.common import dump, machine_info  # noqa: E402
from jaxmarl_core import networks  # noqa: E402
from jaxmarl_core.learner_view import LearnerView  # noqa: E402

# flax path (below the network's "params") -> the name of the same tensor in HARL's torch modules (two hidden layers)
TORSO = {("LayerNorm_0", "scale"): "base.feature_norm.weight", ("LayerNorm_0", "bias"): "base.feature_norm.bias"}
for _i in range(2):
    TORSO[(f"Dense_{_i}", "kernel")] = f"base.mlp.fc.{3 * _i}.weight"
    TORSO[(f"Dense_{_i}", "bias")] = f"base.mlp.fc.{3 * _i}.bias"
    TORSO[(f"LayerNorm_{_i + 1}", "scale")] = f"base.mlp.fc.{3 * _i + 2}.weight"
    TORSO[(f"LayerNorm_{_i + 1}", "bias")] = f"base.mlp.fc.{3 * _i + 2}.bias"


def name_map(head: str, continuous: bool) -> dict[tuple[str, ...], str]:
    """Our parameter paths -> HARL's names, for an actor (head "actor") or the critic (head "critic")."""
    out = {("_Body_0", "MLPTorso_0", *k): v for k, v in TORSO.items()}
    if head == "critic":
        out.update({("Dense_0", "kernel"): "v_out.weight", ("Dense_0", "bias"): "v_out.bias"})
    elif continuous:
        out.update({("Dense_0", "kernel"): "act.action_out.fc_mean.weight",
                    ("Dense_0", "bias"): "act.action_out.fc_mean.bias", ("std_param",): "act.action_out.log_std"})
    else:
        out.update({("Dense_0", "kernel"): "act.action_out.linear.weight",
                    ("Dense_0", "bias"): "act.action_out.linear.bias"})
    return out


def to_harl(params: dict, names: dict) -> dict[str, np.ndarray]:
    """One network's flax parameters -> HARL's state dict (kernels transposed to torch's [out, in])."""
    out = {}
    for path, name in names.items():
        value = params["params"]
        for key in path:
            value = value[key]
        value = np.asarray(value, np.float32)
        out[name] = value.T if path[-1] == "kernel" else value
    return out


def flat(state_dict: dict) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.float64).ravel() for _, v in sorted(state_dict.items())])


def harl_args(cfg, num_envs: int, rollout_len: int) -> dict:
    """HARL's model, algorithm and training arguments for our config."""
    return dict(hidden_sizes=list(cfg.hidden_sizes), activation_func="relu", initialization_method="orthogonal_",
                gain=0.01, use_feature_normalization=cfg.feature_norm, use_naive_recurrent_policy=False,
                use_recurrent_policy=False, recurrent_n=1, std_x_coef=1, std_y_coef=0.5, lr=cfg.lr,
                critic_lr=cfg.critic_lr, opti_eps=cfg.adam_eps, weight_decay=0, data_chunk_length=10,
                use_policy_active_masks=True, action_aggregation="prod", clip_param=cfg.clip_eps,
                ppo_epoch=cfg.ppo_epochs, actor_num_mini_batch=cfg.num_minibatches, entropy_coef=cfg.entropy_coef,
                use_max_grad_norm=True, max_grad_norm=cfg.max_grad_norm, critic_epoch=cfg.critic_epochs,
                critic_num_mini_batch=cfg.num_minibatches, value_loss_coef=cfg.value_coef,
                huber_delta=cfg.huber_delta, use_clipped_value_loss=cfg.clip_value_loss, use_huber_loss=True,
                episode_length=rollout_len, n_rollout_threads=num_envs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
                use_gae=True, use_proper_time_limits=True)


def compare(harl_dir: str, algo_name: str, env_name: str, continuous: bool, updates: int, num_envs: int,
            rollout_len: int, seed: int, use_factor: bool = True) -> dict:
    """``updates`` updates of our ``happo`` or ``mappo`` (shared actor) and of HARL's runner on the same rollouts
    -> per-update differences."""
    sys.path.insert(0, harl_dir)
    import gymnasium
    import torch
    from harl.algorithms.actors.happo import HAPPO
    from harl.algorithms.actors.mappo import MAPPO
    from harl.algorithms.critics.v_critic import VCritic
    from harl.common.buffers.on_policy_actor_buffer import OnPolicyActorBuffer
    from harl.common.buffers.on_policy_critic_buffer_ep import OnPolicyCriticBufferEP
    from harl.common.valuenorm import ValueNorm
    from harl.runners.on_policy_ha_runner import OnPolicyHARunner
    from harl.runners.on_policy_ma_runner import OnPolicyMARunner

    torch.manual_seed(seed)
    env = envs.make(env_name, continuous=continuous)
    algo = algos.get(algo_name)
    cfg = dataclasses.replace(algo.default_config(env), team_reward=True, num_envs=num_envs, rollout_len=rollout_len,
                              total_steps=num_envs * rollout_len * updates, fixed_order=True, use_factor=use_factor,
                              truncation="harl")
    cfg.validate(env)
    if len(set(env.observation_spaces)) != 1 or len(set(env.action_spaces)) != 1:
        raise ValueError(f"{env_name}: HARL's EP buffers need agents with one observation and action space")
    view = LearnerView(env, with_state=True)
    n, shared = env.num_agents, cfg.share_params

    def agent_params(params, i):
        return params if shared else jax.tree.map(lambda x: x[i], params)

    captured = []  # the rollouts our update collects: (carry after the rollout, trajectory)
    real_rollout = onpolicy_learner.rollout

    def recording_rollout(*args, **kwargs):
        out = real_rollout(*args, **kwargs)
        captured.append(out)
        return out

    onpolicy_learner.rollout = recording_rollout
    try:
        trainer = algo.make_train(env, cfg)
        key = jax.random.PRNGKey(seed)
        state = trainer.init(key)

        args = harl_args(cfg, num_envs, rollout_len)
        obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (view.obs_dim,), np.float32)
        act_space = (gymnasium.spaces.Box(0.0, 1.0, (view.num_actions,), np.float32) if continuous
                     else gymnasium.spaces.Discrete(view.num_actions))
        share_space = gymnasium.spaces.Box(-np.inf, np.inf, (view.state_dim,), np.float32)
        actor_names, critic_names = name_map("actor", continuous), name_map("critic", continuous)
        actor_net = networks.Actor(view.num_actions, continuous, cfg.hidden_sizes, False, cfg.feature_norm)
        actors = [MAPPO(args, obs_space, act_space)] * n if shared else [HAPPO(args, obs_space, act_space)
                                                                         for _ in range(n)]
        moving = actors[:1] if shared else actors  # the distinct actors
        for i, actor in enumerate(moving):
            actor.actor.load_state_dict({k: torch.from_numpy(v) for k, v in
                                         to_harl(agent_params(state.actor_params, i), actor_names).items()})
        critic = VCritic(args, share_space)
        critic.critic.load_state_dict({k: torch.from_numpy(v)
                                       for k, v in to_harl(state.critic_params, critic_names).items()})
        runner = object.__new__(OnPolicyMARunner if shared else OnPolicyHARunner)
        runner.algo_args = {"train": {"episode_length": rollout_len, "n_rollout_threads": num_envs}}
        runner.num_agents, runner.state_type, runner.fixed_order, runner.share_param = n, "EP", True, shared
        runner.action_aggregation = "prod"
        runner.actor, runner.critic, runner.value_normalizer = actors, critic, ValueNorm(1)
        runner.actor_buffer = [OnPolicyActorBuffer(args, obs_space, act_space) for _ in range(n)]
        runner.critic_buffer = OnPolicyCriticBufferEP(args, share_space)

        rows = []
        for u in range(updates):
            before_actor = [flat(a.actor.state_dict()) for a in moving]
            before_critic = flat(critic.critic.state_dict())
            params_before = state.actor_params
            state, metrics = trainer.update(state, jax.random.fold_in(key, u))
            carry, traj = captured[-1]
            harl_out = fill_buffers(runner, view, carry, traj, continuous)
            obs = traj.obs.obs  # [T, B, N, D]
            ours_out = [np.asarray(actor_net.apply(agent_params(params_before, i), None, obs[:, :, i], None)[1])
                        for i in range(n)]
            if not continuous:
                ours_out = [np.asarray(jax.nn.log_softmax(o)) for o in ours_out]
            runner.compute()
            runner.train()
            gap = max(float(np.abs(h - o.reshape(h.shape)).max()) for h, o in zip(harl_out, ours_out))
            row = {"update": u + 1, "policy_outputs_max_abs_diff": gap,
                   "actors": [difference(flat(to_harl(agent_params(state.actor_params, i), actor_names)),
                                         flat(actor.actor.state_dict()), before_actor[i])
                              for i, actor in enumerate(moving)],
                   "critic": difference(flat(to_harl(state.critic_params, critic_names)),
                                        flat(critic.critic.state_dict()), before_critic)}
            vn_mean, vn_var = (np.asarray(x) for x in state.value_norm.stats())
            h_mean, h_var = (x.numpy() for x in runner.value_normalizer.running_mean_var())
            row["value_norm_max_abs_diff"] = float(max(np.abs(vn_mean - h_mean).max(), np.abs(vn_var - h_var).max()))
            row["episode_return"] = float(np.asarray(metrics["episode_return"]).sum())
            rows.append(row)
            print(f"{algo_name}{'' if use_factor else ' (no factor)'} {'continuous' if continuous else 'discrete'} "
                  f"update {u + 1}: actors' relative difference "
                  f"{max(a['relative_to_update'] for a in row['actors']):.2e}, critic's "
                  f"{row['critic']['relative_to_update']:.2e}", file=sys.stderr)
    finally:
        onpolicy_learner.rollout = real_rollout
    return {"algo": algo_name, "env": env_name, "continuous": continuous, "use_factor": use_factor,
            "updates": updates, "num_envs": num_envs, "rollout_len": rollout_len, "seed": seed, "rows": rows,
            "max_relative_actor": max(a["relative_to_update"] for r in rows for a in r["actors"]),
            "max_relative_critic": max(r["critic"]["relative_to_update"] for r in rows)}


def difference(ours: np.ndarray, harl: np.ndarray, before: np.ndarray) -> dict:
    return {"max_abs_diff": float(np.abs(ours - harl).max()),
            "relative_to_update": float(np.linalg.norm(ours - harl) / np.linalg.norm(harl - before)),
            "update_norm": float(np.linalg.norm(harl - before))}


def fill_buffers(runner, view, carry, traj, continuous: bool) -> list[np.ndarray]:
    """Copy one rollout of ours (traj leaves [T, B, N, ...], carry after it) into HARL's buffers, as HARL's runner
    inserts its own: step t's data at t, the observation reached (after an automatic reset) at t + 1, masks 0
    after episode ends and bad masks 0 after truncations. Log-probabilities and values are HARL's networks' own.
    -> HARL's actors' log-probabilities of every action (or Gaussian means) on the rollout, [T * B, A] per agent,
    before the update (to check the weight copy against ours)."""
    import torch

    obs, avail, gs = (None if x is None else np.asarray(x) for x in (traj.obs.obs, traj.obs.avail,
                                                                     traj.obs.global_state))
    end_obs, end_avail, end_gs = (None if x is None else np.asarray(x) for x in (carry.obs.obs, carry.obs.avail,
                                                                                 carry.obs.global_state))
    done = np.asarray(jnp.logical_or(traj.terminated, traj.truncated), np.float32)  # [T, B]
    truncated = np.asarray(traj.truncated, np.float32)
    action = np.asarray(traj.action)
    cb = runner.critic_buffer
    cb.masks[0] = cb.masks[-1].copy()
    cb.bad_masks[0] = cb.bad_masks[-1].copy()
    cb.share_obs[:-1], cb.share_obs[-1] = gs, end_gs
    cb.masks[1:] = 1.0 - done[..., None]
    cb.bad_masks[1:] = 1.0 - truncated[..., None]
    cb.rewards[:] = np.asarray(traj.reward).sum(-1, keepdims=True)
    t, b = done.shape
    with torch.no_grad():
        values, _ = runner.critic.get_values(cb.share_obs[:-1].reshape(t * b, -1), np.zeros((t * b, 1, 1)),
                                             np.ones((t * b, 1), np.float32))
    cb.value_preds[:-1] = values.numpy().reshape(t, b, 1)
    outputs = []
    for i, ab in enumerate(runner.actor_buffer):
        ab.obs[:-1], ab.obs[-1] = obs[:, :, i], end_obs[:, i]
        ab.masks[0] = ab.masks[-1].copy()
        ab.masks[1:] = 1.0 - done[..., None]
        ab.actions[:] = action[:, :, i].reshape(t, b, -1)
        if not continuous:
            ab.available_actions[:-1], ab.available_actions[-1] = avail[:, :, i], end_avail[:, i]
        avail_i = None if continuous else ab.available_actions[:-1].reshape(t * b, -1)
        with torch.no_grad():
            logp, _, dist = runner.actor[i].actor.evaluate_actions(
                ab.obs[:-1].reshape(t * b, -1), np.zeros((t * b, 1, 1), np.float32), ab.actions.reshape(t * b, -1),
                ab.masks[:-1].reshape(t * b, 1), avail_i, ab.active_masks[:-1].reshape(t * b, 1))
        ab.action_log_probs[:] = logp.numpy().reshape(t, b, -1)
        outputs.append((dist.mean if continuous else dist.logits).numpy())
    return outputs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--harl-dir", required=True, help="a checkout of PKU-MARL/HARL (its harl/ package is imported)")
    p.add_argument("--env", default="mpe_spread", help="an MPE task with identical agents (default mpe_spread)")
    p.add_argument("--updates", type=int, default=3, help="updates compared (default 3)")
    p.add_argument("--num-envs", type=int, default=4, help="HARL's n_rollout_threads (default 4)")
    p.add_argument("--rollout-len", type=int, default=50, help="HARL's episode_length (default 50: two episodes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="write the JSON document here")
    args = p.parse_args(argv)
    for flag in ("updates", "num_envs", "rollout_len"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be positive")
    if not os.path.isdir(os.path.join(args.harl_dir, "harl")):
        p.error(f"--harl-dir {args.harl_dir}: no harl/ package there (a checkout of PKU-MARL/HARL is needed)")
    try:
        envs.make(args.env)
    except (KeyError, ValueError, TypeError) as e:
        p.error(f"--env: {e}")
    rows = []
    for continuous in (False, True):
        run = functools.partial(compare, args.harl_dir, env_name=args.env, continuous=continuous, updates=args.updates,
                                num_envs=args.num_envs, rollout_len=args.rollout_len, seed=args.seed)
        rows += [run("happo"), run("happo", use_factor=False), run("mappo")]
    doc = {"benchmark": "harl_equivalence", **machine_info(), "results": rows}
    if args.out:
        dump(doc, args.out)
    if args.json:
        print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
