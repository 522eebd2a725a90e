"""Configuration of DGN (Jiang et al., 2020): the typed config and the environments it accepts."""
from __future__ import annotations

import dataclasses

from algos.mean_field.config import check_env as check_spaces
from jaxmarl_core.capabilities import Neighbourhood, missing
from jaxmarl_core.config import BatchedRollouts, Config, require_nonnegative, require_positive, require_positive_int


@dataclasses.dataclass(frozen=True)
class DGNConfig(BatchedRollouts, Config):
    """The released battle code's settings (PKU-RL/DGN, ``Battle/multi_battle.py``) where they carry over.

    Network: an encoder MLP (``encoder_size`` then ``hidden_size`` units, ReLU), ``conv_layers`` relation kernels of
    ``num_heads`` heads of ``head_dim`` (8 x 16) with ``hidden_size`` outputs, and a linear Q head on the
    concatenation of the encoder's and every kernel's features; one set of parameters for all agents.

    One update steps ``num_envs`` environments ``rollout_len`` times with epsilon-greedy actions (the code: one
    gradient step every 3 environment steps), adds the joint transitions (every agent's observation, action, reward
    and neighbourhood at s and s') to a replay of ``buffer_size``, and once it holds ``learning_starts`` takes
    ``num_sgd`` gradient steps on batches of ``batch_size``, each followed by a Polyak step of the target network
    (``target_tau``: the code's TAU = 0.01). Epsilon starts at ``epsilon_start`` (0.6) and is multiplied by
    ``epsilon_decay`` (0.996) every ``epsilon_period`` environment steps (the code: per episode of 300 steps), down to
    ``epsilon_end`` (0.01). ``fixed_relation`` (the paper's choice, and the code's): the Q target at s' uses the
    neighbourhoods of s; otherwise those of s'. ``relation_reg`` > 0 is DGN-R: lambda times the KL divergence
    between the upper kernel's attention at s' under the target network and at s under the online one, over the same
    neighbourhood (so it needs ``fixed_relation``).

    Differences from the code: it adds one transition in three to its replay (200,000 of them; here every step and
    a smaller default buffer: 20 agents' transitions take about 27 KB each), starts learning after 200 episodes,
    and compiles Adam with lr 3e-5 (its LRA constant, and the paper, say 1e-4, the default here).
    """

    total_steps: int = 300_000  # environment steps per seed
    num_envs: int = 1
    rollout_len: int = 3
    encoder_size: int = 512
    hidden_size: int = 128
    num_heads: int = 8
    head_dim: int = 16
    conv_layers: int = 2
    lr: float = 1e-4
    gamma: float = 0.96
    batch_size: int = 128  # joint transitions per gradient step
    buffer_size: int = 20_000  # joint transitions
    learning_starts: int = 1_000
    num_sgd: int = 1
    target_tau: float = 0.01
    epsilon_start: float = 0.6
    epsilon_decay: float = 0.996
    epsilon_period: int = 300  # environment steps per seed between decays
    epsilon_end: float = 0.01
    fixed_relation: bool = True
    relation_reg: float = 0.0  # lambda of DGN-R's KL term (0: plain DGN)
    max_grad_norm: float = 0.0  # 0: no clipping (the code clips nothing)

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("encoder_size", "hidden_size", "num_heads", "head_dim", "conv_layers", "batch_size",
                     "buffer_size", "learning_starts", "num_sgd", "epsilon_period"):
            require_positive_int(self, name)
        for name in ("lr", "target_tau", "epsilon_decay"):
            require_positive(self, name)
        for name in ("relation_reg", "max_grad_norm", "epsilon_end"):
            require_nonnegative(self, name)
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        if self.target_tau > 1 or self.epsilon_decay > 1:
            raise ValueError("target_tau and epsilon_decay must lie in (0, 1]")
        if not self.epsilon_end <= self.epsilon_start <= 1:
            raise ValueError(f"epsilon must fall from epsilon_start ({self.epsilon_start}) <= 1 to epsilon_end "
                             f"({self.epsilon_end})")
        if self.num_updates < 1:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least num_envs * rollout_len "
                             f"({self.steps_per_update})")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must be at most buffer_size ({self.buffer_size})")
        if self.relation_reg > 0 and not self.fixed_relation:
            raise ValueError("relation_reg compares the attention over the same neighbourhood slot by slot at s and "
                             "s', so it needs fixed_relation=true")
        reason = check_env(env)
        if reason:
            raise ValueError(f"dgn {reason}")


def check_env(env, variant: str = "dgn") -> str | None:
    """Discrete actions and Box observations (as the independent Q-learner ``il``), and neighbourhoods."""
    return check_spaces(env, variant="il") or missing(env, Neighbourhood)


def default_config(env, variant: str = "dgn") -> DGNConfig:
    return DGNConfig()
