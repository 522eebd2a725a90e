"""Orbax checkpoints of training state: numbered steps in one directory, saved from and restored to host arrays."""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class Checkpoints:
    """A directory of checkpoints numbered by update count; ``keep`` bounds how many are kept (None: all)."""

    def __init__(self, directory: str, keep: int | None = None):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, tree: Any) -> None:
        """Save ``tree`` (moved to host first) as checkpoint ``step`` and wait until it is on disk."""
        host = jax.tree.map(np.asarray, jax.device_get(tree))
        self._manager.save(step, args=ocp.args.StandardSave(host), force=True)
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def restore(self, step: int, like: Any) -> Any:
        """Restore checkpoint ``step`` into the structure, shapes and dtypes of ``like``, as numpy arrays."""
        target = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), like)
        return self._manager.restore(step, args=ocp.args.StandardRestore(target))

    def close(self) -> None:
        self._manager.close()
