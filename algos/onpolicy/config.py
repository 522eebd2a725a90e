"""Configuration of the on-policy learners: the variants, the typed config (HATRPO's fields nested in
``TRPOConfig``), the environments they accept and each kind of environment's default budget."""
from __future__ import annotations

import dataclasses

from algos.onpolicy.presets import check_preset, harl_settings
from jaxmarl_core.capabilities import FixedHorizon, GlobalState, MatrixPayoffs, TabularStates, has, missing
from jaxmarl_core.config import (
    BatchedRollouts,
    Config,
    require_nonnegative,
    require_positive,
    require_positive_int,
    require_unit_interval,
)
from jaxmarl_core.spaces import Box, Discrete

VARIANTS = {  # name -> (centralised_critic, sequential, actor_update)
    "ippo": (False, False, "ppo"),
    "mappo": (True, False, "ppo"),
    "maa2c": (True, False, "a2c"),
    "happo": (True, True, "ppo"),
    "hatrpo": (True, True, "trpo"),
    "haa2c": (True, True, "a2c"),
    "aga_ppo": (False, False, "aga"),
    "cga_ppo": (False, False, "cga"),
}
ACTOR_UPDATES = ("ppo", "a2c", "trpo", "aga", "cga")
GAME_GRADIENT_UPDATES = ("aga", "cga")  # the stacked actors move jointly along a game-gradient direction
TRUNCATIONS = ("bootstrap", "harl")


@dataclasses.dataclass(frozen=True)
class TRPOConfig(Config):
    """HATRPO's natural-gradient step (HARL's ``hatrpo.yaml``): the KL radius, conjugate gradient and line search.
    Set from the command line as ``--set trpo.kl_threshold=0.02``."""

    kl_threshold: float = 0.01  # the trust region: mean KL(old || new) of an accepted step
    cg_iters: int = 10  # conjugate-gradient iterations solving F x = g
    cg_damping: float = 0.1  # F + damping * I
    backtrack_coef: float = 0.8  # the line search shrinks the step by this factor
    accept_ratio: float = 0.5  # accept when the improvement reaches this fraction of the expected one
    ls_steps: int = 10  # line-search trials

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("cg_iters", "ls_steps"):
            require_positive_int(self, name)
        require_positive(self, "kl_threshold")
        for name in ("cg_damping", "accept_ratio"):
            require_nonnegative(self, name)
        require_unit_interval(self, "backtrack_coef")


@dataclasses.dataclass(frozen=True)
class OnPolicyConfig(BatchedRollouts, Config):
    """HARL's defaults (``configs/algos_cfgs/happo.yaml`` and friends). One update takes num_envs * rollout_len
    environment steps; ``total_steps // (num_envs * rollout_len)`` updates are run."""

    actor_update: str = "ppo"  # "ppo" | "a2c" | "trpo" | "aga" | "cga" (game-gradient directions on the joint PPO
    # surrogates: actor.game_gradient_update)
    centralised_critic: bool = True  # V(global_state) (MAPPO, HA*) or V_i(obs_i) (IPPO)
    agent_state: bool = False  # centralised: V(global_state, one-hot id of i) per agent i, one shared critic
    # (MAPPO's agent-specific global state; JaxMARL's world state); False: one value of the state for all
    sequential: bool = False  # the heterogeneous-agent sequential update (HA*)
    total_steps: int = 10_000_000  # environment steps per seed
    num_envs: int = 20
    rollout_len: int = 200
    lr: float = 5e-4  # actor learning rate (Adam, eps adam_eps)
    critic_lr: float = 5e-4
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2  # PPO ratio clip and value clip
    ppo_epochs: int = 5  # actor epochs (PPO and A2C)
    critic_epochs: int = 5
    num_minibatches: int = 1  # for actor and critic
    entropy_coef: float = 0.01
    value_coef: float = 1.0
    max_grad_norm: float = 10.0  # 0: no clipping
    use_value_norm: bool = True
    clip_value_loss: bool = True
    huber_delta: float = 10.0  # 0: squared error
    recurrent: bool = False  # GRU actor and critic
    hidden_size: int = 128  # hidden_sizes = (hidden_size,) * hidden_layers
    hidden_layers: int = 2
    feature_norm: bool = True  # LayerNorm of the network inputs
    layer_norm: bool = True  # LayerNorm after every hidden layer and the GRU (JaxMARL's MAPPO: none)
    head_layers: int = 0  # Dense(hidden_size) -> ReLU layers between the body and the output (JaxMARL's MAPPO: 1)
    share_params: bool = False
    agent_id: bool = False  # append a one-hot agent id to the actor's (and IPPO critic's) input
    trpo: TRPOConfig = TRPOConfig()  # actor_update="trpo" only
    fixed_order: bool = False  # sequential update in the order 0..N-1 instead of a random permutation
    use_factor: bool = True  # weight each agent's surrogate by the factor M of the agents moved before it
    team_reward: bool = False  # train every agent on the sum of all agents' rewards (HARL's MPE convention)
    lr_decay: bool = False  # HARL's use_linear_lr_decay: Adam's rates fall linearly, lr * (1 - u / num_updates)
    eval_envs: int = 0  # HARL's evaluation each update: environments acting on each actor's most likely action
    eval_steps: int = 25  # steps each evaluation environment runs; the episodes it completes give ``eval_return``
    truncation: str = "harl"  # "harl": HARL's use_proper_time_limits, a truncated step gets advantage 0 and the
    # steps before it bootstrap from the value of its observation; "bootstrap": it bootstraps from V(final_obs)
    preset: str = "default"  # the defaults these settings started from: "default" or one of HARL's (``presets``)
    aga_lambda: float = 1.0  # actor_update="aga": |lambda| of AgA's adjustment, its sign by the paper's rule
    cga_gamma: float = 1.0  # actor_update="cga": gamma of consensus optimisation's xi + gamma H^T xi
    svo_weight: float = 0.0  # SVO reward shaping r_i - w |svo_angle - reward angle| (jaxmarl_core.social); 0: off
    svo_angle: float = 45.0  # the target reward angle theta_svo in degrees (45: prosocial, equal own and others')

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * self.hidden_layers

    def validate(self, env) -> None:
        super().validate(env)
        self.trpo.validate(env)
        for name in ("ppo_epochs", "critic_epochs", "num_minibatches", "hidden_size", "hidden_layers", "eval_steps"):
            require_positive_int(self, name)
        if isinstance(self.eval_envs, bool) or not isinstance(self.eval_envs, int) or self.eval_envs < 0:
            raise ValueError(f"eval_envs must be a non-negative integer (0: no evaluation), got {self.eval_envs!r}")
        if isinstance(self.head_layers, bool) or not isinstance(self.head_layers, int) or self.head_layers < 0:
            raise ValueError(f"head_layers must be a non-negative integer, got {self.head_layers!r}")
        for name in ("lr", "critic_lr", "adam_eps"):
            require_positive(self, name)
        for name in ("clip_eps", "entropy_coef", "value_coef", "max_grad_norm", "huber_delta", "aga_lambda",
                     "cga_gamma", "svo_weight"):
            require_nonnegative(self, name)
        for name in ("gamma", "gae_lambda"):
            require_unit_interval(self, name)
        if self.actor_update not in ACTOR_UPDATES:
            raise ValueError(f"actor_update must be one of {ACTOR_UPDATES}, got {self.actor_update!r}")
        check_preset(self.preset)
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {self.truncation!r}")
        if self.recurrent and self.num_envs % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs ({self.num_envs}) "
                             "for recurrent networks (minibatches split environments)")
        if self.steps_per_update % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs * rollout_len "
                             f"({self.steps_per_update})")
        if self.centralised_critic and not has(env, GlobalState):
            raise ValueError(f"centralised_critic needs env.global_state, which {env.name} does not implement")
        if self.agent_state and not self.centralised_critic:
            raise ValueError("agent_state needs centralised_critic=True (it gives the critic the global state "
                             "with each agent's id)")
        if self.sequential and self.share_params:
            raise ValueError("share_params must be False for the sequential (heterogeneous-agent) update: every "
                             "agent has its own actor")
        if self.svo_weight > 0 and (self.team_reward or env.num_agents < 2):
            raise ValueError("svo_weight needs team_reward=False and two or more agents (it shapes each agent's own "
                             "reward by the others')")
        if self.actor_update in GAME_GRADIENT_UPDATES and (self.share_params or self.sequential
                                                           or env.num_agents < 2):
            raise ValueError(f"actor_update={self.actor_update} needs share_params=False, sequential=False and two "
                             "or more agents (it adjusts the stacked per-agent actors' gradients)")
        if self.share_params:
            if len(set(env.observation_spaces)) != 1 or len(set(env.action_spaces)) != 1:
                raise ValueError(f"share_params needs agents with identical observation and action spaces; "
                                 f"{env.name}'s agents differ")


def check_env(env, variant: str = "mappo") -> str | None:
    spaces = env.action_spaces
    discrete = all(isinstance(s, Discrete) for s in spaces)
    if not discrete and not all(isinstance(s, Box) and len(s.shape) == 1 for s in spaces):
        return f"needs all-Discrete or all-Box (vector) action spaces; {env.name} has {spaces}"
    if not all(isinstance(s, Box) for s in env.observation_spaces):
        return f"needs Box observation spaces; {env.name} has {env.observation_spaces}"
    if VARIANTS[variant][0]:
        reason = missing(env, GlobalState)
        if reason:
            return f"a centralised critic (env.global_state) {reason}"
    if VARIANTS[variant][2] in GAME_GRADIENT_UPDATES and env.num_agents < 2:
        return f"{variant} adjusts a game of two or more agents; {env.name} has {env.num_agents}"
    return None


def default_budget(env) -> dict[str, int]:
    """Rollout shape and length of a run for each kind of environment (told apart by its capabilities): HARL's MPE
    setting by default; one-shot matrix games: 64 games of 4 rounds an update, 200 updates; fixed-horizon games
    (iterated matrix games, the coin game): 16 whole episodes an update, 100 updates; other tabular games: 16
    environments of 100 steps, 100 updates."""
    if has(env, MatrixPayoffs):
        return dict(num_envs=64, rollout_len=4, total_steps=64 * 4 * 200)
    if has(env, FixedHorizon):
        return dict(num_envs=16, rollout_len=env.num_steps, total_steps=16 * env.num_steps * 100)
    if has(env, TabularStates):
        return dict(num_envs=16, rollout_len=100, total_steps=16 * 100 * 100)
    return {}


def default_config(env, variant: str = "mappo", preset: str = "default") -> OnPolicyConfig:
    """``preset="default"``: HARL's default YAML settings with the environment's default budget; a ``harl_*``
    preset: HARL's tuned settings of a SMAC map or multi-agent MuJoCo task (``presets``)."""
    centralised, sequential, actor_update = VARIANTS[variant]
    check_preset(preset)
    if preset != "default":
        settings = harl_settings(env, variant, preset)
        trpo = TRPOConfig(**settings.pop("trpo", {}))
        return OnPolicyConfig(actor_update=actor_update, centralised_critic=centralised, sequential=sequential,
                              preset=preset, trpo=trpo, **settings)
    homogeneous = len(set(env.observation_spaces)) == 1 and len(set(env.action_spaces)) == 1
    return OnPolicyConfig(actor_update=actor_update, centralised_critic=centralised, sequential=sequential,
                          share_params=homogeneous and not sequential and variant != "ippo"
                          and actor_update not in GAME_GRADIENT_UPDATES,
                          ppo_epochs=1 if variant == "maa2c" else 5, **default_budget(env))
