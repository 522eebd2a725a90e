"""Configuration of the neural mean-field learners: the variants, the typed config and the environments they
accept."""
from __future__ import annotations

import dataclasses

from jaxmarl_core.capabilities import NeighbourMeanAction, missing
from jaxmarl_core.config import (
    BatchedRollouts,
    Config,
    require_at_most,
    require_nonnegative,
    require_positive,
    require_positive_int,
    require_unit_interval,
)
from jaxmarl_core.spaces import Box, Discrete

VARIANTS = {"mfq": ("q", True), "il": ("q", False), "mfac": ("ac", True),
            "ac": ("ac", False)}  # name -> (family: Q-learning or actor-critic, mean field)


@dataclasses.dataclass(frozen=True)
class MeanFieldConfig(BatchedRollouts, Config):
    """The paper's and the released code's settings where they carry over (Adam, lr 1e-4 in the code's battles,
    Boltzmann temperature 0.1, Polyak targets with tau 0.005, gamma 0.95, batches of 64 per group).

    One update steps ``num_envs`` environments ``rollout_len`` times (every agent acting on the mean action of its
    neighbours' previous actions), then: Q-learners (mfq, il) add every agent's transition to their group's replay of
    ``buffer_size`` agent transitions and take ``num_sgd`` gradient steps on batches of ``batch_size`` of them once it
    holds ``learning_starts``, each followed by a Polyak step of the target network; actor-critic learners (mfac, ac)
    take ``num_sgd`` gradient steps on the update's own transitions. Rewards are multiplied by ``reward_scale`` before
    learning (Q and the temperature are in those units).

    ``self_play`` (two groups, the battle): the released code's training (its ``train_battle.py``): the first group
    learns, the second plays an opponent copy that only follows it: each time an episode ends with the learner's team
    reward above the opponent's, opponent <- (1 - ``self_play_tau``) * learner + ``self_play_tau`` * opponent.
    """

    family: str = "q"  # "q" (mfq, il) or "ac" (mfac, ac)
    mean_field: bool = True  # the mean action is an input of Q (mfq, mfac); False: il, ac
    total_steps: int = 100_000  # environment steps per seed
    num_envs: int = 8
    rollout_len: int = 1
    hidden_size: int = 64
    hidden_layers: int = 2
    lr: float = 1e-3
    gamma: float = 0.95
    temperature: float = 0.1  # Boltzmann temperature of the Q-learners' policies and of the mean-field value
    temperature_start: float = 1.0  # annealed linearly to ``temperature`` over ``temperature_decay_steps``
    temperature_decay_steps: int = 50_000  # environment steps per seed
    reward_scale: float = 1.0
    buffer_size: int = 65_536  # agent transitions per group (Q-learners)
    batch_size: int = 1_024  # agent transitions per gradient step
    learning_starts: int = 1_024
    num_sgd: int = 1  # gradient steps per update
    target_tau: float = 0.005  # Polyak step of the target network after each gradient step (Q-learners)
    entropy_coef: float = 0.01  # actor-critic: entropy bonus of the actor's loss
    max_grad_norm: float = 10.0  # 0: no clipping
    released_code: bool = False  # mfq: the released code's group mean, double-Q target and greedy acting
    self_play: bool = False  # two groups: the first learns, the second is its soft-updated copy
    self_play_tau: float = 0.01  # the opponent's share of itself at a self-play update (the code's tau)

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("hidden_size", "hidden_layers", "buffer_size", "batch_size", "learning_starts", "num_sgd",
                     "temperature_decay_steps"):
            require_positive_int(self, name)
        for name in ("lr", "temperature", "temperature_start", "reward_scale", "target_tau"):
            require_positive(self, name)
        for name in ("entropy_coef", "max_grad_norm"):
            require_nonnegative(self, name)
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        if self.target_tau > 1:
            raise ValueError(f"target_tau must lie in (0, 1], got {self.target_tau}")
        if self.family not in ("q", "ac"):
            raise ValueError(f"family must be 'q' or 'ac', got {self.family!r}")
        require_at_most(self, "batch_size", "buffer_size")
        if self.released_code and not (self.family == "q" and self.mean_field):
            raise ValueError("released_code=true is the released MF-Q's set of choices; it applies to mfq only")
        require_unit_interval(self, "self_play_tau")
        if self.self_play and len(env.groups) != 2:
            raise ValueError(f"self_play=true needs two agent groups (learner, opponent); {env.name} has "
                             f"{len(env.groups)}")
        if self.mean_field and not self.released_code and missing(env, NeighbourMeanAction):
            raise ValueError(f"the mean action over neighbours {missing(env, NeighbourMeanAction)}")


def check_env(env, variant: str = "mfq") -> str | None:
    if not all(isinstance(s, Discrete) for s in env.action_spaces):
        return f"needs discrete (Discrete) action spaces; {env.name} has other action spaces"
    if not all(isinstance(s, Box) for s in env.observation_spaces):
        return f"needs Box observation spaces; {env.name} has other observation spaces"
    if VARIANTS[variant][1]:
        return missing(env, NeighbourMeanAction)
    return None


def default_config(env, variant: str = "mfq") -> MeanFieldConfig:
    family, mean_field = VARIANTS[variant]
    return MeanFieldConfig(family=family, mean_field=mean_field)
