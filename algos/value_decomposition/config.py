"""Configuration of the value-based learners: the variants, the typed config, the environments they accept (how a
cooperative game is recognised) and each kind of environment's default budget."""
from __future__ import annotations

import dataclasses

import numpy as np

from jaxmarl_core.capabilities import (
    Discounted,
    FixedHorizon,
    GlobalState,
    MatrixPayoffs,
    TabularModel,
    TeamReward,
    has,
    missing,
)
from jaxmarl_core.config import (
    BatchedRollouts,
    Config,
    require_at_most,
    require_nonnegative,
    require_positive,
    require_positive_int,
    require_replay_fits,
    require_unit_interval,
)
from jaxmarl_core.spaces import Box, Discrete

VARIANTS = {"iql": ("none", False), "drqn": ("none", True), "vdn": ("vdn", False),
            "qmix": ("qmix", False)}  # name -> (mixer, recurrent)
MIXERS = ("none", "vdn", "qmix")
TEAM_REWARDS = ("none", "common", "sum", "mean")
OPTIMISERS = ("rmsprop", "adam", "radam")
SHORT_HORIZON = 10


def reward_structure(env) -> str:
    """How the agents' rewards form a team objective: the environment's ``TeamReward`` declaration ("common": one
    reward shared by all; "sum": a cooperative game whose agents' rewards differ), else, from a matrix game's payoff
    table or a tabular game's expected rewards, "common" if equal across players and "mixed" if not; "unknown" for
    other environments."""
    if has(env, TeamReward):
        return env.team_reward
    if has(env, MatrixPayoffs):
        rewards = np.moveaxis(np.asarray(env.payoff_array), 0, -1)  # [A, ..., A, N]
    elif has(env, TabularModel):
        rewards = np.asarray(env.tabular_model(env.default_params).reward)  # [S, A, A, N]
    else:
        return "unknown"
    return "common" if np.all(rewards == rewards[..., :1]) else "mixed"


@dataclasses.dataclass(frozen=True)
class ValueDecompositionConfig(BatchedRollouts, Config):
    """pymarl's defaults (``qmix.yaml``, ``default.yaml``) where they carry over to a replay of transitions.

    One update collects ``rollout_len`` steps in each of ``num_envs`` environments with epsilon-greedy actions, adds
    the ``num_envs * rollout_len`` transitions to a replay buffer of ``buffer_size`` transitions, then takes
    ``num_sgd`` gradient steps on batches of ``batch_size`` transitions once the buffer holds ``learning_starts``.
    Recurrent agents (``recurrent``, DRQN: Hausknecht & Stone, 2015, with pymarl's whole-episode replay) instead
    start ``num_envs`` fresh episodes each update, run them for ``rollout_len`` steps (the steps after an episode's
    end are masked out; one still running at the end counts as truncated), store them whole in a buffer of
    ``episode_buffer_size`` episodes and learn on batches of ``episode_batch_size`` episodes, the GRU run over each
    from its first step, once the buffer holds that many.
    """

    mixer: str = "qmix"  # "none" (IQL: one TD loss per agent), "vdn" (Q_tot = sum of Q_i), "qmix"
    total_steps: int = 2_000_000  # environment steps per seed (pymarl's SMAC t_max)
    num_envs: int = 8
    rollout_len: int = 25
    buffer_size: int = 50_000  # transitions
    batch_size: int = 128  # transitions per gradient step
    learning_starts: int = 1_000  # transitions stored before the first gradient step
    num_sgd: int = 1  # gradient steps per update
    lr: float = 5e-4
    optimiser: str = "rmsprop"  # pymarl's RMSprop (alpha 0.99, eps 1e-5), "adam" (pymarl2) or "radam" (JaxMARL)
    lr_decay: bool = False  # the rate falls linearly from lr to 0 over num_updates * num_sgd gradient steps
    max_grad_norm: float = 10.0  # 0: no clipping
    gamma: float = 0.99
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 50_000  # environment steps (per seed) of the linear anneal
    target_update: int = 200  # updates between copies of the online networks into the targets
    double_q: bool = True  # bootstrap from the target's value of the online greedy action
    td_lambda: float = 0.0  # >0: TD(lambda) targets along replayed episodes (recurrent agents; pymarl2's 0.6)
    recurrent: bool = False  # GRU agents on whole-episode replay (DRQN; pymarl's RNN agent)
    episode_buffer_size: int = 5_000  # episodes (recurrent agents; pymarl's buffer_size)
    episode_batch_size: int = 32  # episodes per gradient step (recurrent agents; pymarl's batch_size)
    hidden_size: int = 64  # pymarl's agent width
    hidden_layers: int = 1
    feature_norm: bool = False
    layer_norm: bool = True  # LayerNorm after the agents' hidden layers (JaxMARL's RNN agents: none)
    share_params: bool = True  # one agent network for all agents (pymarl), with a one-hot agent id if agent_id
    agent_id: bool = True
    mixing_embed: int = 32  # QMIX's mixing network width
    hypernet_embed: int = 64  # QMIX's hypernetworks' hidden width
    mixer_init_scale: float = 0.0  # >0: QMIX's mixer starts from orthogonal weights of this scale (JaxMARL: 0.001)
    team_reward: str = "common"  # "none": each agent's own reward (IQL only); "common": the reward all agents share;
    # "sum" / "mean" over agents (cooperative games whose agents' rewards differ, e.g. mpe_spread)
    eval_steps: int = 0  # >0: a greedy rollout of this many steps from fresh episodes: greedy_return
    eval_every: int = 1  # the greedy rollout after every eval_every-th update and the last (the others repeat it)
    eval_episodes: int = 1  # episodes of each greedy rollout, run side by side (greedy_return: their mean)

    def validate(self, env) -> None:
        super().validate(env)
        for name in ("buffer_size", "batch_size", "learning_starts", "num_sgd", "epsilon_decay_steps",
                     "target_update", "hidden_size", "hidden_layers", "mixing_embed", "hypernet_embed",
                     "episode_buffer_size", "episode_batch_size", "eval_every", "eval_episodes"):
            require_positive_int(self, name)
        require_positive(self, "lr")
        require_nonnegative(self, "max_grad_norm")
        require_nonnegative(self, "mixer_init_scale")
        if isinstance(self.eval_steps, bool) or not isinstance(self.eval_steps, int) or self.eval_steps < 0:
            raise ValueError(f"eval_steps must be a non-negative integer (0: no greedy rollout), got "
                             f"{self.eval_steps!r}")
        for name in ("gamma", "epsilon_start", "epsilon_end", "td_lambda"):
            require_unit_interval(self, name)
        for name, valid in (("mixer", MIXERS), ("team_reward", TEAM_REWARDS), ("optimiser", OPTIMISERS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        if self.td_lambda > 0 and not self.recurrent:
            raise ValueError("td_lambda > 0 needs whole-episode replay (recurrent=true): feed-forward agents replay "
                             "single transitions")
        if self.recurrent:
            require_at_most(self, "num_envs", "episode_buffer_size")
            require_at_most(self, "episode_batch_size", "episode_buffer_size")
        else:
            require_replay_fits(self)
        if self.mixer == "qmix" and not has(env, GlobalState):
            raise ValueError(f"mixer=qmix mixes on the global state; {missing(env, GlobalState)}")
        if self.mixer != "none" and self.team_reward == "none":
            raise ValueError(f"team_reward=none (each agent's own reward) is for mixer=none (IQL); mixer="
                             f"{self.mixer} learns one team value: set team_reward to common, sum or mean")
        if self.team_reward == "common" and reward_structure(env) != "common":
            raise ValueError(f"team_reward=common needs a game whose agents share one reward, which {env.name} does "
                             "not declare (TeamReward \"common\", or a common payoff table): set team_reward=sum or "
                             "mean")
        if len({s.shape for s in env.observation_spaces}) != 1 and not self.share_params:
            raise ValueError(f"share_params=false stacks one network per agent and needs equal observation shapes; "
                             f"{env.name}'s differ")


def check_env(env, variant: str = "qmix") -> str | None:
    if not all(isinstance(s, Discrete) for s in env.action_spaces):
        return f"needs discrete (Discrete) action spaces; {env.name} has {env.action_spaces}"
    if not all(isinstance(s, Box) for s in env.observation_spaces):
        return f"needs Box observation spaces; {env.name} has {env.observation_spaces}"
    mixer = VARIANTS[variant][0]
    if mixer == "qmix":
        reason = missing(env, GlobalState)
        if reason:
            return f"the mixer's global state {reason}"
    structure = reward_structure(env) if mixer != "none" else None
    if structure == "mixed":
        return (f"{variant} needs a cooperative game (one reward shared by all agents); {env.name}'s agents' rewards "
                "differ")
    if structure == "unknown":
        return (f"{variant} needs a cooperative game: a common payoff table, or the TeamReward capability, which "
                f"{env.name} lacks")
    return None


def default_budget(env) -> dict:
    """Rollout shape, replay and exploration of a run for each kind of environment (told apart by its capabilities):
    pymarl-like defaults; one-shot matrix games and fixed-horizon games of at most ``SHORT_HORIZON`` steps (the
    two-step game): 16 environments, whole episodes per update, a replay of the latest 100 updates' transitions (or
    episodes), epsilon annealed over the first half of 200 updates, and a greedy rollout of one episode each
    update."""
    if has(env, MatrixPayoffs) or (has(env, FixedHorizon) and env.num_steps <= SHORT_HORIZON):
        horizon = env.num_steps if has(env, FixedHorizon) else 1
        steps = 16 * horizon
        return dict(num_envs=16, rollout_len=horizon, total_steps=steps * 200, buffer_size=steps * 100,
                    batch_size=64, learning_starts=64 * ((steps + 63) // 64), epsilon_decay_steps=steps * 100,
                    target_update=10, eval_steps=horizon, episode_buffer_size=16 * 100)
    return {}


def default_config(env, variant: str = "qmix") -> ValueDecompositionConfig:
    mixer, recurrent = VARIANTS[variant]
    structure = reward_structure(env)
    team = "none" if mixer == "none" else ("common" if structure == "common" else "sum")
    gamma = float(env.discount) if has(env, Discounted) else 0.99
    return ValueDecompositionConfig(mixer=mixer, recurrent=recurrent, team_reward=team, gamma=gamma,
                                    **default_budget(env))
