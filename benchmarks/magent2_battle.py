"""magent2's C++ battle engine behind the interface of ``envs.battle`` (fixed agent slots), for the equivalence test
and the throughput comparison. magent2 (pip ``magent2``) is imported on first use.

magent2 keeps a list of living agents per team and drops the dead ones (``clear_dead``); this driver maps them back
to fixed slots (red ``0 .. n-1``, blue ``n .. 2n-1``, in the order they were added) so that observations, rewards
and deaths line up with ``envs.battle.Battle``. The game is the mean-field code's battle config (``magent2.builtin.
config.battle``: minimap on, embedding size 10; the same rules and rewards as ``magent2.environments.battle``).
"""
from __future__ import annotations

import numpy as np


def magent2_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("magent2") is not None


class Magent2Battle:
    """One magent2 battle with agents at ``positions`` [2n, 2] ((x, y); the first n red)."""

    def __init__(self, map_size: int, positions: np.ndarray, seed: int = 0):
        import magent2
        from magent2.builtin.config.battle import get_config

        config = get_config(map_size)
        config.set({"seed": seed})
        self.env = magent2.GridWorld(config)
        self.handles = self.env.get_handles()
        positions = np.asarray(positions, np.int32)
        self.n = len(positions) // 2
        self.env.reset()
        for g, handle in enumerate(self.handles):
            block = positions[g * self.n:(g + 1) * self.n]
            self.env.add_agents(handle, method="custom", pos=[[int(x), int(y), 0] for x, y in block])
        self.alive = np.ones(2 * self.n, bool)

    def slots(self, g: int) -> np.ndarray:
        """The fixed slots of team g's living agents, in magent2's order."""
        return g * self.n + np.flatnonzero(self.alive[g * self.n:(g + 1) * self.n])

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(view [2n, 13, 13, 7], features [2n, 34]); zeros in dead agents' slots."""
        views, features = [], []
        for g, handle in enumerate(self.handles):
            view, feature = self.env.get_observation(handle)
            views.append((self.slots(g), view))
            features.append((self.slots(g), feature))
        view = np.zeros((2 * self.n,) + views[0][1].shape[1:], np.float32)
        feature = np.zeros((2 * self.n,) + features[0][1].shape[1:], np.float32)
        for (slots, v), (_, f) in zip(views, features):
            view[slots], feature[slots] = v, f
        return view, feature

    def positions(self) -> np.ndarray:
        """int32 [2n, 2]; -1 in dead agents' slots."""
        pos = np.full((2 * self.n, 2), -1, np.int32)
        for g, handle in enumerate(self.handles):
            pos[self.slots(g)] = self.env.get_pos(handle)
        return pos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """actions [2n] (dead slots ignored) -> (reward [2n] (0 for the dead), alive after [2n], done)."""
        actions = np.asarray(actions, np.int32)
        for g, handle in enumerate(self.handles):
            self.env.set_action(handle, np.ascontiguousarray(actions[self.slots(g)]))
        done = self.env.step()
        reward = np.zeros(2 * self.n, np.float32)
        alive = np.zeros(2 * self.n, bool)
        for g, handle in enumerate(self.handles):
            reward[self.slots(g)] = self.env.get_reward(handle)
            alive[self.slots(g)] = self.env.get_alive(handle)
        self.env.clear_dead()
        self.alive = alive
        return reward, alive, done
