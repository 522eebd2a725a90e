"""HARL's tuned settings (``tuned_configs/smac/MAP/ALGO/config.json`` and ``tuned_configs/mamujoco/TASK/ALGO/
config.json`` of PKU-MARL/HARL) as named presets of ``happo``, ``hatrpo`` and ``mappo``: ``--set preset=NAME``.

Names: ``harl_smac_3m``, ``harl_smac_2s3z``, ``harl_smac_3s5z``, ``harl_mamujoco_ant_4x2``,
``harl_mamujoco_halfcheetah_2x3``, ``harl_mamujoco_walker2d_2x3`` (one task's settings, on any environment), and
``harl_smac`` / ``harl_mamujoco``, which pick the task from the environment's name (JaxMARL's, ``envs.from_jaxmarl``:
``jaxmarl:ID(MAP)`` for a SMAX map, ``jaxmarl:ID`` for a MABrax task).

HARL's field -> ours: n_rollout_threads -> num_envs, episode_length -> rollout_len, num_env_steps -> total_steps,
hidden_sizes -> hidden_size x hidden_layers, lr, critic_lr, opti_eps -> adam_eps, use_recurrent_policy -> recurrent,
use_feature_normalization -> feature_norm, clip_param -> clip_eps, ppo_epoch -> ppo_epochs, critic_epoch ->
critic_epochs, actor_num_mini_batch = critic_num_mini_batch -> num_minibatches (equal in every config taken here),
entropy_coef, value_loss_coef -> value_coef, max_grad_norm, huber_delta, use_clipped_value_loss -> clip_value_loss,
use_valuenorm -> use_value_norm, use_proper_time_limits -> truncation "harl", use_linear_lr_decay -> lr_decay,
share_param -> share_params, fixed_order, gamma, gae_lambda; HATRPO's kl_threshold, backtrack_coeff, accept_ratio,
ls_step -> ``trpo.*``.

Where HARL has no tuned config, the nearest one stands in (the choice is ours):
- SMAC 3m and 2s3z: HARL tunes neither; both take 3s5z's settings (the one tuned map of the three).
- MAPPO on SMAC: HARL publishes no tuned MAPPO on SMAC; it takes the map's HAPPO settings with ``mappo.yaml``'s
  ``share_param: True`` (as HARL's tuned MAPPO on multi-agent MuJoCo differs from its HAPPO there only by it).
- MAPPO shares one actor only where the agents' spaces are identical (HARL pads observations to one width instead).
- MMM2 (tuned by HARL) is not a JaxMARL SMAX map, and JaxMARL 0.2.0 splits HalfCheetah only 6x1, so
  ``harl_mamujoco`` has no task for ``jaxmarl:halfcheetah_6x1`` (``harl_mamujoco_halfcheetah_2x3`` applies the 2x3
  settings to any environment).

Not carried over: HARL's periodic greedy evaluation (``use_eval``: ``eval_envs`` stays 0), its recurrent chunks of
``data_chunk_length`` steps (our GRUs re-run over the whole rollout), the SMAC state type (FP/EP: the global state is
JaxMARL's world state) and MuJoCo's ``agent_obsk`` (JaxMARL fixes each agent's observed joints).
"""
from __future__ import annotations

PRESET_VARIANTS = ("happo", "hatrpo", "mappo")

# every tuned config taken here
_COMMON = dict(num_envs=20, gae_lambda=0.95, huber_delta=10.0, max_grad_norm=10.0, clip_value_loss=True,
               value_coef=1.0, adam_eps=1e-5, feature_norm=True, use_value_norm=True, truncation="harl",
               hidden_layers=3, lr=5e-4, critic_lr=5e-4, lr_decay=False, critic_epochs=5, num_minibatches=1)
_SMAC = dict(rollout_len=160, total_steps=20_000_000, hidden_size=64)
_MAMUJOCO = dict(rollout_len=200, total_steps=10_000_000, hidden_size=128, recurrent=False)

# task -> variant -> what its config adds to _COMMON and its suite's settings; "mappo" is derived (module docstring)
_SMAC_3S5Z = {
    "happo": dict(clip_eps=0.2, gamma=0.99, ppo_epochs=5, entropy_coef=0.01, recurrent=True),
    "hatrpo": dict(clip_eps=0.2, gamma=0.95, recurrent=False,
                   trpo=dict(kl_threshold=0.01, backtrack_coef=0.5, accept_ratio=0.5, ls_steps=10)),
}
TASKS = {
    "smac": {"3m": _SMAC_3S5Z, "2s3z": _SMAC_3S5Z, "3s5z": _SMAC_3S5Z},
    "mamujoco": {
        "ant_4x2": {
            "happo": dict(clip_eps=0.1, gamma=0.99, ppo_epochs=5, entropy_coef=0.0),
            "mappo": dict(clip_eps=0.1, gamma=0.99, ppo_epochs=5, entropy_coef=0.0, share_params=True),
            "hatrpo": dict(clip_eps=0.2, gamma=0.99,
                           trpo=dict(kl_threshold=0.005, backtrack_coef=0.8, accept_ratio=0.5, ls_steps=10)),
        },
        "halfcheetah_2x3": {
            "happo": dict(clip_eps=0.05, gamma=0.99, ppo_epochs=15, critic_epochs=15, entropy_coef=0.01),
            "mappo": dict(clip_eps=0.05, gamma=0.99, ppo_epochs=15, critic_epochs=15, entropy_coef=0.01,
                          share_params=True),
            "hatrpo": dict(clip_eps=0.2, gamma=0.99,
                           trpo=dict(kl_threshold=0.01, backtrack_coef=0.8, accept_ratio=0.5, ls_steps=10)),
        },
        "walker2d_2x3": {
            "happo": dict(clip_eps=0.05, gamma=0.99, ppo_epochs=5, entropy_coef=0.0, num_minibatches=2, lr=1e-3,
                          critic_lr=1e-3, lr_decay=True),
            "mappo": dict(clip_eps=0.05, gamma=0.99, ppo_epochs=5, entropy_coef=0.0, num_minibatches=2, lr=1e-3,
                          critic_lr=1e-3, lr_decay=True, share_params=True),
            "hatrpo": dict(clip_eps=0.2, gamma=0.99,
                           trpo=dict(kl_threshold=0.01, backtrack_coef=0.8, accept_ratio=0.5, ls_steps=10)),
        },
    },
}
SUITE_SETTINGS = {"smac": _SMAC, "mamujoco": _MAMUJOCO}
# JaxMARL's MABrax id -> HARL's task (JaxMARL's SMAX maps keep their SMAC names)
JAXMARL_MAMUJOCO = {"ant_4x2": "ant_4x2", "walker2d_2x3": "walker2d_2x3"}
PRESETS = ("default", *(f"harl_{s}" for s in TASKS),
           *(f"harl_{s}_{t}" for s, tasks in TASKS.items() for t in tasks))


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")


def _task_of(env, suite: str) -> str:
    """The HARL task of ``env`` for ``harl_<suite>``, from its JaxMARL name (``jaxmarl:ID(MAP)`` or ``jaxmarl:ID``)."""
    name = env.name
    if suite == "smac":
        task = name[name.find("(") + 1:-1] if name.startswith("jaxmarl:") and name.endswith(")") else None
    else:
        task = JAXMARL_MAMUJOCO.get(name.removeprefix("jaxmarl:")) if name.startswith("jaxmarl:") else None
    if task not in TASKS[suite]:
        tasks = ", ".join(TASKS[suite])
        raise ValueError(f"preset harl_{suite} picks HARL's settings for the tasks {tasks} from a JaxMARL "
                         f"environment's name; {name} is none of them (name a task: preset=harl_{suite}_TASK)")
    return task


def harl_settings(env, variant: str, preset: str) -> dict:
    """{our field: HARL's value} of ``preset`` (a ``harl_*`` name of ``PRESETS``) for ``variant`` on ``env``; the
    nested ``trpo`` settings as a dict."""
    if variant not in PRESET_VARIANTS:
        raise ValueError(f"preset {preset} covers {', '.join(PRESET_VARIANTS)} (HARL's tuned configs), not {variant}")
    suite, _, task = preset.removeprefix("harl_").partition("_")
    task = task or _task_of(env, suite)
    by_variant = TASKS[suite][task]
    own = by_variant.get(variant) or {**by_variant["happo"], "share_params": True}
    homogeneous = len(set(env.observation_spaces)) == 1 and len(set(env.action_spaces)) == 1
    settings = {**_COMMON, **SUITE_SETTINGS[suite], "fixed_order": variant == "mappo", "share_params": False, **own}
    settings["share_params"] = settings["share_params"] and homogeneous
    return settings
