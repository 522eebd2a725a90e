"""Configuration of the off-policy actor-critics: the variants, the typed config, the environments they accept and
each variant's defaults (MADDPG's paper settings for ``maddpg`` and ``ddpg``, HARL's for ``matd3``, ``haddpg`` and
``hatd3``)."""
from __future__ import annotations

import dataclasses

from jaxmarl_core.capabilities import SimplexActions, has
from jaxmarl_core.config import (
    BatchedRollouts,
    Config,
    require_nonnegative,
    require_positive,
    require_positive_int,
    require_replay_fits,
    require_unit_interval,
)
from jaxmarl_core.spaces import Box, Discrete

VARIANTS = {  # name -> (critic, twin, sequential)
    "ddpg": ("local", False, False),
    "maddpg": ("joint", False, False),
    "matd3": ("joint", True, False),
    "haddpg": ("joint", False, True),
    "hatd3": ("joint", True, True),
}
CRITICS = ("joint", "local")
RELAXATIONS = ("gumbel", "tanh")
DRAWS = ("agent", "group")
PAPER = ("ddpg", "maddpg")  # MADDPG's paper settings; the others take HARL's


def discrete_actions(env) -> bool:
    return all(isinstance(space, Discrete) for space in env.action_spaces)


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(BatchedRollouts, Config):
    """One update takes ``rollout_len`` steps in each of ``num_envs`` environments, stores the transitions in a
    replay buffer of ``buffer_size`` and, once it holds ``learning_starts``, takes ``num_sgd`` gradient steps on
    batches of ``batch_size``. The defaults are MADDPG's (``experiments/train.py`` and ``trainer/maddpg.py`` of
    openai/maddpg: one update of each agent every 100 environment steps once the buffer holds 1024 * 25 transitions);
    HARL's variants take ``harl_defaults``."""

    critic: str = "joint"  # "joint": Q_i(o_1..o_N, a_1..a_N) (MADDPG); "local": Q_i(o_i, a_i) (DDPG)
    critic_kinds: str = ""  # one kind per agent group (env.groups order), e.g. "local,joint"; empty: ``critic``
    twin: bool = False  # TD3: two critics, the target takes their minimum
    sequential: bool = False  # HA*: actors updated one after another on the already-updated actions before them
    fixed_order: bool = False  # sequential update in the order 0..N-1 instead of a fresh random permutation
    relaxation: str = "gumbel"  # "gumbel": Gumbel-softmax over soft one-hot actions; "tanh": deterministic Box actions
    team_reward: bool = False  # one critic on the sum of the agents' rewards (HARL's MPE) instead of one per agent
    agent_batches: bool = False  # each agent's critic, actor and fits on a batch of its own (openai/maddpg)
    total_steps: int = 1_500_000  # environment steps per seed (60000 episodes of 25 steps)
    num_envs: int = 1
    rollout_len: int = 100  # environment steps per environment between updates
    num_sgd: int = 1  # gradient steps per update
    buffer_size: int = 1_000_000
    batch_size: int = 1024
    learning_starts: int = 25_600  # transitions stored before the first gradient step
    warmup_steps: int = 0  # environment steps of uniformly random actions at the start (HARL's warmup)
    actor_lr: float = 1e-2
    critic_lr: float = 1e-2
    max_grad_norm: float = 0.5  # 0: no clipping
    gamma: float = 0.95
    tau: float = 0.01  # Polyak rate of the target networks
    hidden_size: int = 64
    hidden_layers: int = 2
    logit_reg: float = 1e-3  # MADDPG's penalty on the actor's squared logits (gumbel)
    temperature: float = 1.0  # Gumbel-softmax temperature
    expl_noise: float = 0.1  # tanh: Gaussian exploration noise, a fraction of the half-range of each action
    target_noise: float = 0.0  # TD3's target smoothing noise (a fraction of the half-range), 0: none
    noise_clip: float = 0.5  # TD3's clip of the smoothing noise (a fraction of the half-range)
    policy_delay: int = 1  # actor and target updates every this many critic updates (TD3: 2)
    eval_envs: int = 0  # >0: each update, environments acting deterministically for eval_steps: eval_return
    eval_steps: int = 25
    ensemble: int = 1  # K sub-policies per agent, one drawn per episode, each trained on its own episodes (MADDPG)
    sub_buffers: bool = False  # ensemble: a buffer of buffer_size // K per sub-policy of each agent (the paper's;
    # ensemble_draw=group: one per agent group, whose agents store the same transitions)
    ensemble_draw: str = "agent"  # "agent": a sub-policy drawn per agent; "group": one per agent group (the paper's)
    infer_policies: bool = False  # each agent's critic target uses its own maximum-likelihood fits of the others'
    infer_entropy: float = 1e-3  # the entropy bonus of those fits
    infer_hard: bool = False  # fit each soft-one-hot block's argmax (an exact draw of the acting categorical)
    infer_recent: bool = False  # fit the update's own transitions (the current policies) instead of the replayed batch

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * self.hidden_layers

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("num_sgd", "buffer_size", "batch_size", "learning_starts", "hidden_size", "hidden_layers",
                     "policy_delay", "eval_steps", "ensemble"):
            require_positive_int(self, name)
        for name in ("actor_lr", "critic_lr", "temperature"):
            require_positive(self, name)
        for name in ("max_grad_norm", "logit_reg", "expl_noise", "target_noise", "noise_clip", "warmup_steps",
                     "eval_envs", "infer_entropy"):
            require_nonnegative(self, name)
        for name in ("gamma", "tau"):
            require_unit_interval(self, name)
        for name, valid in (("critic", CRITICS), ("relaxation", RELAXATIONS), ("ensemble_draw", DRAWS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        require_replay_fits(self)
        if self.critic_kinds:
            kinds, groups = self.critic_kinds.split(","), env.groups
            if len(kinds) != len(groups) or any(k not in CRITICS for k in kinds):
                sizes = ", ".join(f"{g.name} ({g.size} agents)" for g in groups)
                raise ValueError(f"critic_kinds must give one of {CRITICS} per agent group of {env.name}: {sizes}; "
                                 f"got {self.critic_kinds!r}")
            if self.team_reward or self.infer_policies:
                raise ValueError("critic_kinds (a critic kind per agent group) needs one critic per agent on its own "
                                 "reward: set team_reward=false and infer_policies=false")
        if self.ensemble > 1 and self.sequential:
            raise ValueError("ensemble > 1 (MADDPG's policy ensembles) needs the simultaneous update: set "
                             "sequential=false")
        if self.sub_buffers:
            share = self.buffer_size // self.ensemble
            if self.ensemble == 1 or share < max(self.batch_size, self.num_envs * self.rollout_len):
                raise ValueError(f"sub_buffers=true needs ensemble > 1 and buffer_size // ensemble ({share}) at least "
                                 f"batch_size ({self.batch_size}) and num_envs * rollout_len "
                                 f"({self.num_envs * self.rollout_len})")
        if self.infer_policies and (self.relaxation != "gumbel" or self.critic != "joint" or self.team_reward
                                    or self.sequential or self.ensemble > 1):
            raise ValueError("infer_policies=true (MADDPG's inferred policies) needs relaxation=gumbel, critic=joint, "
                             "team_reward=false, sequential=false and ensemble=1")
        for name in ("infer_hard", "infer_recent"):
            if getattr(self, name) and not self.infer_policies:
                raise ValueError(f"{name}=true (how the others' policies are fitted) needs infer_policies=true")
        if self.critic == "local" and self.team_reward:
            raise ValueError("critic=local (each agent's critic on its own observation and action) needs each "
                             "agent's own reward: set team_reward=false")
        if self.agent_batches and (self.team_reward or self.sequential):
            raise ValueError("agent_batches=true (a batch per agent, as openai/maddpg) needs one critic per agent and "
                             "the simultaneous update: set team_reward=false and sequential=false")
        discrete = discrete_actions(env)
        if discrete and self.relaxation != "gumbel":
            raise ValueError(f"relaxation=tanh needs continuous (Box) actions; {env.name}'s are discrete: use "
                             "relaxation=gumbel")
        if not discrete and self.relaxation == "gumbel" and not has(env, SimplexActions):
            raise ValueError(f"relaxation=gumbel on Box actions needs the SimplexActions capability (which blocks of "
                             f"the action are soft one-hots), which {env.name} lacks: use relaxation=tanh")
        if self.sequential and discrete:
            raise ValueError(f"the sequential (HA) update needs continuous (Box) actions; {env.name}'s are discrete")


def agent_critic_kinds(cfg: OffPolicyConfig, env) -> tuple[str, ...]:
    """Each agent's critic kind [N]: its group's entry of ``critic_kinds``, or ``critic`` for all."""
    if not cfg.critic_kinds:
        return (cfg.critic,) * env.num_agents
    return tuple(kind for kind, group in zip(cfg.critic_kinds.split(","), env.groups) for _ in range(group.size))


def check_env(env, variant: str = "maddpg") -> str | None:
    spaces = env.action_spaces
    discrete = discrete_actions(env)
    if not discrete and not all(isinstance(s, Box) and len(s.shape) == 1 for s in spaces):
        return f"needs all-Discrete or all-Box (vector) action spaces; {env.name} has {spaces}"
    if not all(isinstance(s, Box) for s in env.observation_spaces):
        return f"needs Box observation spaces; {env.name} has {env.observation_spaces}"
    if VARIANTS[variant][2] and discrete:
        return (f"{variant} needs continuous (Box) actions; {env.name}'s are discrete (MPE: --env-arg "
                "continuous=true)")
    return None


def harl_defaults() -> dict:
    """HARL's off-policy settings (``hatd3.yaml``, ``haddpg.yaml`` and the tuned continuous MPE configs): 20
    environments, 50 gradient steps every 50 steps of each (one per 20 environment steps), 10000 warm-up steps of
    random actions, one critic on the team reward."""
    return dict(relaxation="tanh", team_reward=True, agent_batches=False, total_steps=5_000_000, num_envs=20,
                rollout_len=50, num_sgd=50, batch_size=1000, learning_starts=10_000, warmup_steps=10_000,
                actor_lr=5e-4, critic_lr=1e-3, max_grad_norm=0.0, gamma=0.99, tau=0.005, hidden_size=128,
                logit_reg=0.0)


def default_config(env, variant: str = "maddpg") -> OffPolicyConfig:
    critic, twin, sequential = VARIANTS[variant]
    fields = dict(critic=critic, twin=twin, sequential=sequential, agent_batches=variant in PAPER)
    if variant not in PAPER:
        fields.update(harl_defaults())
        if twin:
            fields.update(target_noise=0.2, policy_delay=2)
    discrete = discrete_actions(env)
    if discrete:
        fields["relaxation"] = "gumbel"
    elif fields.get("relaxation", "gumbel") == "gumbel" and not has(env, SimplexActions):
        fields["relaxation"] = "tanh"
    return OffPolicyConfig(**fields)
