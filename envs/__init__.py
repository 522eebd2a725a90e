"""Environment registry: ``make(name, **kwargs)`` builds an environment; ``list_envs()`` names them all.

Names ``jaxmarl:NAME`` build JaxMARL's environment ``NAME`` under our contract (``envs.interop.from_jaxmarl``; the
optional extra ``[jaxmarl]``); they are not listed, as JaxMARL may be absent."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from envs.battle import Battle
from envs.coin_game import CoinGame
from envs.dgn_battle import DGNBattle
from envs.differentiable import DifferentiableGame
from envs.grid_games import GridGame
from envs.interop import PREFIX as JAXMARL_PREFIX
from envs.interop import from_jaxmarl, jaxmarl_env_args, to_jaxmarl, to_pettingzoo
from envs.iterated import IteratedMatrixGame
from envs.jungle import Jungle
from envs.matrix import MATRIX_GAMES, MatrixGame, make_matrix_game
from envs.mean_field import GaussianSqueeze, Ising
from envs.mpe import SCENARIOS as MPE_SCENARIOS
from envs.mpe import PredatorPrey
from envs.routing import Routing
from envs.soccer import Soccer
from envs.social_dilemmas import CLEANUP_MAPS, Cleanup, Harvest
from envs.traffic_junction import TrafficJunction
from envs.two_step import TwoStepGame
from envs.wrappers import Flicker, flicker
from jaxmarl_core.config import parse_value, split_assignment
from jaxmarl_core.env import Environment

_REGISTRY: dict[str, Callable[..., Environment]] = {}


def register(name: str, constructor: Callable[..., Environment]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"environment {name!r} is registered already")
    _REGISTRY[name] = constructor


def list_envs() -> list[str]:
    return sorted(_REGISTRY)


def check_name(name: str) -> None:
    """``ValueError`` for a name ``make`` cannot build: unknown (listing the valid names), or ``jaxmarl:NAME``
    without JaxMARL installed (naming the install command)."""
    if name.startswith(JAXMARL_PREFIX):
        jaxmarl_env_args(name)
    elif name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; valid names: {', '.join(list_envs())}, "
                         f"{JAXMARL_PREFIX}NAME (JaxMARL's)")


def make(name: str, **kwargs) -> Environment:
    """Build a registered environment; bad names or arguments raise ``ValueError`` saying what is valid."""
    check_name(name)
    if name.startswith(JAXMARL_PREFIX):
        constructor = functools.partial(from_jaxmarl, name)
    else:
        constructor = _REGISTRY[name]
    allowed = env_args(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "none"
        raise ValueError(f"{name}: unknown argument(s) {', '.join(unknown)}; valid arguments: {valid}")
    try:
        return constructor(**kwargs)
    except TypeError as e:
        raise ValueError(f"{name}: {e}") from None


def env_args(name: str) -> dict:
    """The constructor arguments of a registered environment with their defaults."""
    if name.startswith(JAXMARL_PREFIX):
        return jaxmarl_env_args(name)
    sig = inspect.signature(_REGISTRY[name])
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def parse_env_args(name: str, texts: list[str]) -> dict:
    """``KEY=VALUE`` texts -> constructor arguments of ``name``, typed as their defaults (str where None);
    ``ValueError`` names an unknown key (listing the valid ones) or a value of the wrong type."""
    defaults = env_args(name)
    out = {}
    for text in texts:
        key, value = split_assignment(text, "--env-arg")
        if key not in defaults:
            valid = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
            raise ValueError(f"{name} has no argument {key!r}; valid arguments: {valid}")
        typ = type(defaults[key]) if defaults[key] is not None else str
        out[key] = parse_value(value, typ, key)
    return out


def _matrix(game: str):
    if game == "penalty":
        def build(k: float = -10.0):
            return make_matrix_game("penalty", k=k)
    elif game == "trap":
        def build(n_agents: int = 4):
            return make_matrix_game("trap", n_agents=n_agents)
    else:
        def build():
            return make_matrix_game(game)
    return build


for _game in MATRIX_GAMES:
    register(f"matrix_{_game}", _matrix(_game))


def _iterated(game: str):
    def build(num_steps: int = 150, discount: float = 0.96):
        return IteratedMatrixGame(game=game, num_steps=num_steps, discount=discount)
    return build


register("ipd", _iterated("ipd"))
register("imp", _iterated("imp"))


def _differentiable(game: str):
    if game == "public_goods":
        def build(multiplier: float = 1.5):
            return DifferentiableGame(game=game, multiplier=multiplier)
    else:
        def build():
            return DifferentiableGame(game=game)
    return build


for _game in ("bilinear", "tandem", "aga_toy"):
    register(f"game_{_game}", _differentiable(_game))
register("public_goods", _differentiable("public_goods"))


def _coin_game(num_steps: int = 150, grid_size: int = 3):
    return CoinGame(num_steps=num_steps, grid_size=grid_size)


register("coin_game", _coin_game)


def _soccer(max_steps: int = 1000, draw_prob: float = 0.0):
    return Soccer(max_steps=max_steps, draw_prob=draw_prob)


register("soccer", _soccer)


def _grid_game(game: int):
    def build(max_steps: int = 100, rules: str = "paper", random_start: bool = False):
        return GridGame(game=game, max_steps=max_steps, rules=rules, random_start=random_start)
    return build


register("grid_game_1", _grid_game(1))
register("grid_game_2", _grid_game(2))

def _gaussian_squeeze(n_agents: int = 100, mu: float = 400.0, sigma: float = 200.0, num_choices: int = 10,
                      unit: float = 1.0):
    return GaussianSqueeze(n_agents=n_agents, mu=mu, sigma=sigma, num_choices=num_choices, unit=unit)


register("gaussian_squeeze", _gaussian_squeeze)


def _battle(map_size: int = 40, n_per_side: int = 64, max_cycles: int = 1000):
    return Battle(map_size=map_size, n_per_side=n_per_side, max_cycles=max_cycles)


register("battle", _battle)


def _dgn_battle(map_size: int = 30, n_learners: int = 20, n_enemies: int = 12, max_cycles: int = 300,
                num_neighbours: int = 4, enemy_epsilon: float = 0.0):
    return DGNBattle(map_size=map_size, n_learners=n_learners, n_enemies=n_enemies, max_cycles=max_cycles,
                     num_neighbours=num_neighbours, enemy_epsilon=enemy_epsilon)


register("dgn_battle", _dgn_battle)


def _jungle(map_size: int = 30, n_agents: int = 20, n_foods: int = 12, max_cycles: int = 120, num_neighbours: int = 4):
    return Jungle(map_size=map_size, n_agents=n_agents, n_foods=n_foods, max_cycles=max_cycles,
                  num_neighbours=num_neighbours)


register("jungle", _jungle)


def _traffic_junction(difficulty: str = "easy", num_cars: int = 0, max_steps: int = 0, p_arrive: float = -1.0,
                      vision: int = 1):
    """0 (or a negative ``p_arrive``) takes the difficulty's value (``envs.traffic_junction.PRESETS``)."""
    return TrafficJunction(difficulty=difficulty, num_cars=num_cars, max_steps=max_steps, p_arrive=p_arrive,
                           vision=vision)


register("traffic_junction", _traffic_junction)


def _routing(num_routers: int = 20, num_packets: int = 20, degree: int = 3, graph_seed: int = 0, max_steps: int = 300,
             num_neighbours: int = 4, path_costs: bool = False):
    return Routing(num_routers=num_routers, num_packets=num_packets, degree=degree, graph_seed=graph_seed,
                   max_steps=max_steps, num_neighbours=num_neighbours, path_costs=path_costs)


register("routing", _routing)


def _predator_prey(num_predators: int = 5, num_prey: int = 2, num_obstacles: int = 2, max_cycles: int = 25):
    """G2ANet's predator-prey: MPE's ``simple_tag`` (``envs.mpe.Tag``) with its own counts, discrete actions."""
    return PredatorPrey(num_adversaries=num_predators, num_good=num_prey, num_obstacles=num_obstacles,
                        max_cycles=max_cycles)


register("predator_prey", _predator_prey)


def _ising(size: int = 20, field: float = 0.0, num_steps: int = 10_000):
    return Ising(size=size, field=field, num_steps=num_steps)


register("ising", _ising)
register("two_step", TwoStepGame)


def _flicker(env: str = "mpe_spread", prob: float = 0.5):
    """``env`` (a registered name, default arguments) with observations blanked with probability ``prob``."""
    if env == "flicker":
        raise ValueError("flicker: env must name another environment")
    return flicker(make(env), prob)


register("flicker", _flicker)


def _cleanup(num_agents: int = 7, num_steps: int = 1000, layout: str = "melting_pot"):
    """``layout``: "melting_pot" (Melting Pot's map) or "small" (``envs.social_dilemmas.SMALL_CLEANUP_MAP``)."""
    if layout not in CLEANUP_MAPS:
        raise ValueError(f"cleanup: layout must be one of {', '.join(CLEANUP_MAPS)}, not {layout!r}")
    return Cleanup(n_agents=num_agents, num_steps=num_steps, layout=CLEANUP_MAPS[layout])


def _harvest(num_agents: int = 7, num_steps: int = 1000):
    return Harvest(n_agents=num_agents, num_steps=num_steps)


register("cleanup", _cleanup)
register("harvest", _harvest)

for _scenario in MPE_SCENARIOS:  # mpe_simple, mpe_spread, ...: (continuous=False, max_cycles=25, mpe2's own arguments)
    register(_scenario.env_name, _scenario)

__all__ = ["make", "list_envs", "register", "env_args", "parse_env_args", "Environment", "MatrixGame",
           "IteratedMatrixGame", "CoinGame", "DifferentiableGame", "Soccer", "GridGame", "GaussianSqueeze", "Ising",
           "TwoStepGame", "TrafficJunction", "Flicker", "flicker", "Battle", "DGNBattle", "Routing", "Cleanup",
           "Harvest", "check_name", "from_jaxmarl", "to_jaxmarl", "to_pettingzoo", "Jungle", "PredatorPrey"]
