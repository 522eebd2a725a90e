"""magent2's C++ battle engine behind the interface of ``envs.battle`` (fixed agent slots), for the equivalence tests
and the throughput comparison. magent2 (pip ``magent2``) is imported on first use.

magent2 keeps a list of living agents per team and drops the dead ones (``clear_dead``); this driver maps them back
to fixed slots (red ``0 .. n_red - 1``, blue ``n_red .. n_red + n_blue - 1``, in the order they were added) so that
observations, rewards and deaths line up with ``envs.battle.Battle`` and ``envs.dgn_battle.TwoTeams``.

Configurations (``config``):

- ``"battle"``: the mean-field code's battle config (``magent2.builtin.config.battle``: minimap on, embedding size
  10; the same rules and rewards as ``magent2.environments.battle``).
- ``"dgn"``: the reward constants of DGN's released battle config (PKU-RL/DGN ``Battle/config/battle.py``) on
  ``envs.battle``'s unit (hp 10, speed 2, view radius 6, attack range 1.5, damage 2, recovery 0.1 for both teams:
  ``envs.dgn_battle`` does not reproduce the code's two unit types). Red are the code's learners ("small": step 0,
  kill_reward 0, dead_penalty -2, attack_penalty -0.01, +5 for an attack on an enemy (its reward rule)), blue its
  enemies ("big": step 0, kill_reward 5, dead_penalty 0, attack_penalty -0.02, no reward rule). magent2 pays an
  agent type's ``kill_reward`` to whoever kills an agent of that type (``Map::do_attack`` returns the victim's), so a
  learner that kills an enemy earns 5 - 0.01.
- ``"dgn_symmetric"``: the learners' constants and reward rule for both teams, kill_reward 5 for both: the single
  ``BattleParams`` that ``envs.dgn_battle`` gives both teams of its engine, so every slot's reward is comparable.

The library is built without OpenMP, so its ``#pragma omp parallel for`` loops (attacks, the large-map move bands)
run one iteration at a time, in order: the attack order is its seeded shuffle, the moves are sequential.
"""
from __future__ import annotations

import numpy as np

CONFIGS = ("battle", "dgn", "dgn_symmetric")


def magent2_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("magent2") is not None


def dgn_config(map_size: int, symmetric: bool = False):
    """magent2 config: DGN's battle rewards on ``envs.battle``'s unit (module docstring)."""
    import magent2

    gw = magent2.gridworld
    cfg = gw.Config()
    cfg.set({"map_width": map_size, "map_height": map_size, "minimap_mode": True, "embedding_size": 10})
    unit = {"width": 1, "length": 1, "hp": 10, "speed": 2, "view_range": gw.CircleRange(6),
            "attack_range": gw.CircleRange(1.5), "damage": 2, "step_recover": 0.1}
    learner = {"step_reward": 0, "kill_reward": 5 if symmetric else 0, "dead_penalty": -2, "attack_penalty": -0.01}
    enemy = learner if symmetric else {"step_reward": 0, "kill_reward": 5, "dead_penalty": 0, "attack_penalty": -0.02}
    small = cfg.register_agent_type("small", {**unit, **learner})
    big = cfg.register_agent_type("big", {**unit, **enemy})
    g0, g1 = cfg.add_group(small), cfg.add_group(big)
    a, b = gw.AgentSymbol(g0, index="any"), gw.AgentSymbol(g1, index="any")
    cfg.add_reward_rule(gw.Event(a, "attack", b), receiver=a, value=5)
    if symmetric:
        cfg.add_reward_rule(gw.Event(b, "attack", a), receiver=b, value=5)
    return cfg


class Magent2Battle:
    """One magent2 battle with agents at ``positions`` [n_red + n_blue, 2] ((x, y); the first ``n_red`` red, by
    default half of them); ``config`` one of ``CONFIGS`` (module docstring)."""

    def __init__(self, map_size: int, positions: np.ndarray, seed: int = 0, n_red: int | None = None,
                 config: str = "battle"):
        import magent2
        from magent2.builtin.config.battle import get_config

        if config not in CONFIGS:
            raise ValueError(f"Magent2Battle: config must be one of {CONFIGS}, got {config!r}")
        cfg = get_config(map_size) if config == "battle" else dgn_config(map_size, config == "dgn_symmetric")
        cfg.set({"seed": seed})
        self.env = magent2.GridWorld(cfg)
        self.handles = self.env.get_handles()
        positions = np.asarray(positions, np.int32)
        self.num_agents = len(positions)
        self.n_red = self.num_agents // 2 if n_red is None else int(n_red)
        self.starts = (0, self.n_red, self.num_agents)
        self.env.reset()
        for g, handle in enumerate(self.handles):
            block = positions[self.starts[g]:self.starts[g + 1]]
            self.env.add_agents(handle, method="custom", pos=[[int(x), int(y), 0] for x, y in block])
        self.alive = np.ones(self.num_agents, bool)

    def slots(self, g: int) -> np.ndarray:
        """The fixed slots of team g's living agents, in magent2's order."""
        lo, hi = self.starts[g], self.starts[g + 1]
        return lo + np.flatnonzero(self.alive[lo:hi])

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(view [N, 13, 13, 7], features [N, 34]); zeros in dead agents' slots."""
        views, features = [], []
        for g, handle in enumerate(self.handles):
            view, feature = self.env.get_observation(handle)
            views.append((self.slots(g), view))
            features.append((self.slots(g), feature))
        view = np.zeros((self.num_agents,) + views[0][1].shape[1:], np.float32)
        feature = np.zeros((self.num_agents,) + features[0][1].shape[1:], np.float32)
        for (slots, v), (_, f) in zip(views, features):
            view[slots], feature[slots] = v, f
        return view, feature

    def positions(self) -> np.ndarray:
        """int32 [N, 2]; -1 in dead agents' slots."""
        pos = np.full((self.num_agents, 2), -1, np.int32)
        for g, handle in enumerate(self.handles):
            pos[self.slots(g)] = self.env.get_pos(handle)
        return pos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """actions [N] (dead slots ignored) -> (reward [N] (0 for the dead), alive after [N], done)."""
        actions = np.asarray(actions, np.int32)
        for g, handle in enumerate(self.handles):
            self.env.set_action(handle, np.ascontiguousarray(actions[self.slots(g)]))
        done = self.env.step()
        reward = np.zeros(self.num_agents, np.float32)
        alive = np.zeros(self.num_agents, bool)
        for g, handle in enumerate(self.handles):
            reward[self.slots(g)] = self.env.get_reward(handle)
            alive[self.slots(g)] = self.env.get_alive(handle)
        self.env.clear_dead()
        self.alive = alive
        return reward, alive, done
