"""The algorithm contract (docs/design.md, "Trainer"): ``make_train(env, config) -> Trainer``.

A Trainer holds ``init(key) -> state`` and ``update(state, key) -> (state, metrics)``; calling it runs the whole
training as one ``lax.scan`` and returns ``TrainOutput(state, metrics)`` with metrics stacked on a leading
``[num_updates]`` axis. Update ``t`` always draws its key as ``fold_in(run_key, t)``, so training in chunks
(for progress and checkpoints) gives exactly the same numbers as one scan.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.sweep import XlaOptions


@struct.dataclass
class TrainOutput:
    state: Any
    metrics: dict  # name -> [num_updates, ...]


@dataclasses.dataclass(frozen=True)
class Trainer:
    init: Callable[[jax.Array], Any]
    update: Callable[[Any, jax.Array], tuple[Any, dict]]
    num_updates: int
    env_steps_per_update: int = 0  # environment steps one update takes per seed (0 for exact-gradient learners)
    seed_batch: int = 0  # seeds vectorised together per CPU device in sweeps (0: all; ``sweep.map_seeds``)
    indexed: bool = False  # update takes (state, key, t): t the update's index, the same for all vmapped seeds
    # on the one-seed path (``sweep.one_seed_per_call``), ``train.py`` compiles ``init_state`` for one seed and calls it
    # per seed too (no loop over seeds in that program either): only where that gives the same state as the program
    # over the seeds (a GRU's orthogonal initial weights, compiled unbatched, moved in float rounding for ``ippo``)
    init_per_seed: bool = False
    xla: XlaOptions = XlaOptions()  # what its training programs ask of XLA's CPU compiler (``sweep.compiler_options``)

    @staticmethod
    def split_seed(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """A seed's key -> (init key, run key)."""
        k_init, k_run = jax.random.split(key)
        return k_init, k_run

    def init_state(self, key: jax.Array) -> Any:
        return self.init(self.split_seed(key)[0])

    def run(self, state: Any, key: jax.Array, start: jax.Array, length: int) -> tuple[Any, dict]:
        """Updates ``start .. start + length - 1`` from ``state``; ``key`` is the seed's key; -> (state, metrics)."""
        k_run = self.split_seed(key)[1]

        def body(s, t):
            k = jax.random.fold_in(k_run, t)
            return self.update(s, k, t) if self.indexed else self.update(s, k)

        return jax.lax.scan(body, state, jnp.asarray(start, jnp.int32) + jnp.arange(length, dtype=jnp.int32))

    def __call__(self, key: jax.Array) -> TrainOutput:
        state, metrics = self.run(self.init_state(key), key, 0, self.num_updates)
        return TrainOutput(state=state, metrics=metrics)
