"""Algorithm registry: each entry builds ``make_train(env, config, params) -> Trainer`` with paper defaults."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from algos import (
    game_gradient_play,
    gradient_play,
    graph,
    joint_action_q,
    learning_automata,
    lola,
    mean_field,
    offpolicy,
    onpolicy,
    opponent_shaping,
    policy_hill_climbing,
    value_decomposition,
)
from jaxmarl_core.config import Config
from jaxmarl_core.training import Trainer


@dataclasses.dataclass(frozen=True)
class Algorithm:
    name: str
    description: str
    make_train: Callable[..., Trainer]
    default_config: Callable[..., Config]  # env -> the paper's config for that env
    check_env: Callable[..., str | None]  # env -> why the pair is incompatible, or None


_REGISTRY: dict[str, Algorithm] = {}


def register(algo: Algorithm) -> None:
    if algo.name in _REGISTRY:
        raise ValueError(f"algorithm {algo.name!r} is registered already")
    _REGISTRY[algo.name] = algo


def list_algos() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Algorithm:
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; valid names: {', '.join(list_algos())}")
    return _REGISTRY[name]


def compatible(name: str, env) -> str | None:
    """None if ``name`` can train on ``env``, else the reason it cannot."""
    return get(name).check_env(env)


def register_variants(module, variants, check_by_variant: bool = True) -> None:
    """Register a module's (name, description) variants: ``module.make_train``, ``module.default_config(env,
    variant=name)`` and ``module.check_env(env, variant=name)`` (``module.check_env(env)`` if not check_by_variant)."""
    for variant, text in variants:
        check = functools.partial(module.check_env, variant=variant) if check_by_variant else module.check_env
        register(Algorithm(variant, text, module.make_train, functools.partial(module.default_config, variant=variant),
                           check))


register(Algorithm("nl_exact", "naive learners on exact value gradients (LOLA paper's NL-Ex)", lola.make_train,
                   functools.partial(lola.default_config, lola=False), lola.check_env))
register(Algorithm("lola_exact", "LOLA with exact gradients and the second-order correction (LOLA-Ex)",
                   lola.make_train, functools.partial(lola.default_config, lola=True), lola.check_env))
register_variants(game_gradient_play, (
    ("simul_ind", "simultaneous gradient play on exact values: each player its own gradient"),
    ("simul_co", "every player ascends the collective value (the sum of all players' values)"),
    ("lookahead", "LookAhead: each player's gradient at the opponents' next naive step (Letcher et al., 2019)"),
    ("sos", "Stable Opponent Shaping: LookAhead plus LOLA's shaping scaled by p (Letcher et al., 2019)"),
    ("sga", "symplectic gradient adjustment with the alignment sign (Balduzzi et al., 2018)"),
    ("cga", "consensus gradient adjustment: the simultaneous gradient plus gamma H^T xi (Mescheder et al., 2017)"),
    ("aga", "altruistic gradient adjustment of the collective gradient (Li et al., 2024)"),
    ("svo", "each player its own gradient of its value shaped by social value orientation (McKee et al., 2020)")))
register_variants(opponent_shaping, (
    ("nl_pg", "naive policy-gradient learners (REINFORCE with a baseline)"),
    ("lola_pg", "LOLA with policy-gradient estimates of the gradient and the cross second derivative"),
    ("lola_om", "LOLA-PG with maximum-likelihood opponent modelling"),
    ("lola_dice", "LOLA with the DiCE estimator and K look-ahead steps of the opponent")))
register_variants(policy_hill_climbing, (
    ("iql_tabular", "independent tabular Q-learning, epsilon-greedy (the classical baseline)"),
    ("phc", "policy hill-climbing on independent Q-values (Bowling & Veloso, 2002)"),
    ("wolf_phc", "WoLF policy hill-climbing: win or learn fast (Bowling & Veloso, 2002)")), check_by_variant=False)
register_variants(gradient_play, (
    ("wolf_iga", "WoLF infinitesimal gradient ascent on exact payoff gradients (Bowling & Veloso, 2002)"),
    ("lagging_anchor", "projected gradient play with a lagging anchor, zero-sum games (Dahl, 2002)")))
register_variants(learning_automata, (
    ("lri", "linear reward-inaction learning automata"),
    ("lrp", "linear reward-penalty learning automata")), check_by_variant=False)
register_variants(joint_action_q, (
    ("minimax_q", "Minimax-Q: Q over joint actions backed up by the stage game's LP value"),
    ("ffq", "Friend-or-Foe-Q (--set backup=friend or backup=foe)"),
    ("nash_q", "Nash-Q: both players' joint-action Q backed up at a stage-game Nash equilibrium")))
register_variants(onpolicy, (
    ("ippo", "independent PPO: each agent's critic on its own observation (de Witt et al., 2020)"),
    ("mappo", "multi-agent PPO with a centralised critic on the global state (Yu et al., 2022)"),
    ("maa2c", "multi-agent A2C: MAPPO's machinery with the unclipped surrogate, one epoch"),
    ("happo", "heterogeneous-agent PPO: sequential updates weighted by the factor (Kuba et al., 2022)"),
    ("hatrpo", "heterogeneous-agent TRPO: sequential natural-gradient steps with a KL line search"),
    ("haa2c", "heterogeneous-agent A2C: HAPPO's sequential scheme with the A2C surrogate"),
    ("aga_ppo", "AgA on PPO: the agents' joint-ratio surrogates' gradients adjusted by altruistic gradient "
                "adjustment, lambda by the paper's sign rule (Li et al., 2024)"),
    ("cga_ppo", "CGA on PPO: the agents' joint-ratio surrogates' gradients moved by consensus optimisation, "
                "xi + gamma H^T xi (Mescheder et al., 2017; AgA's baseline)")))
register_variants(offpolicy, (
    ("ddpg", "independent DDPG: each agent's critic on its own observation and action (MADDPG paper's baseline)"),
    ("maddpg", "MADDPG: a centralised critic per agent on all observations and actions, Gumbel-softmax or tanh "
               "deterministic actors (Lowe et al., 2017)"),
    ("matd3", "MATD3: MADDPG with twin critics, target smoothing and a delayed actor (HARL's settings)"),
    ("haddpg", "heterogeneous-agent DDPG: actors updated one after another on the updated actions before them"),
    ("hatd3", "heterogeneous-agent TD3: HADDPG with twin critics, target smoothing and a delayed actor")))
register_variants(value_decomposition, (
    ("iql", "independent deep Q-learning: each agent's Q-network on its own observation, replay, target networks"),
    ("drqn", "deep recurrent Q-learning: IQL with GRU agents on whole-episode replay (Hausknecht & Stone, 2015)"),
    ("vdn", "value decomposition networks: the team's Q as the sum of the agents' (Sunehag et al., 2018)"),
    ("qmix", "QMIX: the agents' Q-values mixed monotonically by hypernetworks on the global state (Rashid et al., "
             "2018)")))
register_variants(mean_field, (
    ("mfq", "mean-field Q-learning: Q(o, a, mean neighbour action), Boltzmann mean-field target (Yang et al., 2018)"),
    ("mfac", "mean-field actor-critic: the mean neighbour action in the critic (Yang et al., 2018)"),
    ("il", "independent Q-learning of the mean-field paper: shared per-group Q(o, a), agent-transition replay"),
    ("ac", "independent actor-critic of the mean-field paper: shared per-group actor and critic Q(o, a)")))
register_variants(graph, (
    ("dgn", "graph convolutional RL: relation kernels (multi-head attention) over each agent's nearest neighbours, "
            "DGN-R with --set relation_reg=LAMBDA (Jiang et al., 2020)"),))
register_variants(graph.g2anet, (
    ("ga_comm", "G2ANet's communication policy: hard (bi-GRU, Gumbel) then soft attention over the neighbours, "
                "advantage actor-critic; --set comm=mean|soft|none for CommNet and ablations (Liu et al., 2020)"),))
register_variants(graph.ga_ac, (
    ("ga_ac", "G2ANet's GA-AC: MAAC's attention actor-critic with the hard attention's game abstraction in the "
              "critic; --set critic=soft|none for MAAC's critic and no communication (Liu et al., 2020)"),))
register(Algorithm("mfq_tabular", "tabular mean-field Q-learning of the Ising experiment (Yang et al., 2018)",
                   mean_field.tabular.make_train, mean_field.tabular.default_config, mean_field.tabular.check_env))

__all__ = ["Algorithm", "register", "register_variants", "list_algos", "get", "compatible"]
