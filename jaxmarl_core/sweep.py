"""Seed sweeps: seeds split over every visible device (``shard_map`` along the seed axis); on each device its seeds
run vectorised (``vmap``) in groups of ``seed_batch``, one group after another (``lax.map``).

Seed ``i`` of base seed ``s`` has key ``fold_in(PRNGKey(s), i)``, so a run's seeds do not depend on how many seeds
run beside them. The seed count is padded to a multiple of the device count (by repeating seed 0) and the padding is
dropped from every result.

Why ``shard_map`` and groups (measured on a 2-core CPU as two host devices): a ``jit(vmap(train))`` whose input is
merely sharded leaves the split to XLA's partitioner, which ran ``minimax_q`` on ``soccer`` 12x slower than
splitting by hand; and where every update already steps a large batch of environments (``lola_dice``: 128 episodes),
vectorising seeds on top only costs: one seed at a time ran 2.2x faster (``Trainer.seed_batch``).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmarl_core import compile_cache


def seed_keys(seed: int, num_seeds: int, first: int = 0) -> jax.Array:
    """[num_seeds, 2] uint32 keys of seeds first, ..., first + num_seeds - 1: seed i is fold_in(PRNGKey(seed), i),
    so a study split into runs of consecutive seeds has the keys of one big run."""
    return _fold_seeds(jax.random.PRNGKey(seed), jnp.int32(first), int(num_seeds))


@functools.partial(jax.jit, static_argnums=2)
def _fold_seeds(base: jax.Array, first: jax.Array, num_seeds: int) -> jax.Array:
    """[num_seeds, 2] fold_in(base, first + i): one program per seed count, where its eager form compiled each of
    its operations (the same bits: ``tests/core/test_outputs_checkpoint_sweep.py``)."""
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(first + jnp.arange(num_seeds))


def padded_size(num_seeds: int, num_devices: int | None = None) -> int:
    d = jax.device_count() if num_devices is None else num_devices
    return -(-num_seeds // d) * d


def pad_seeds(tree: Any, size: int) -> Any:
    """Pad every leaf's leading (seed) axis to ``size`` by repeating entry 0, or trim it to ``size``."""
    def pad(x):
        x = jnp.asarray(x)
        if x.shape[0] >= size:
            return x[:size]
        return jnp.concatenate([x, jnp.repeat(x[:1], size - x.shape[0], axis=0)])
    return jax.tree.map(pad, tree)


def seed_sharding() -> NamedSharding:
    mesh = Mesh(np.asarray(jax.devices()), ("seeds",))
    return NamedSharding(mesh, PartitionSpec("seeds"))


def shard_seeds(tree: Any) -> Any:
    """Place a pytree whose leaves have a leading seed axis (a multiple of the device count) across devices."""
    if jax.device_count() == 1:
        return tree
    return jax.device_put(tree, seed_sharding())


def seed_shapes(tree: Any) -> Any:
    """``jax.ShapeDtypeStruct`` of every leaf of ``tree`` (arrays or shapes with a leading seed axis, a multiple of
    the device count), placed as ``shard_seeds`` places them: what a jitted function of seed-stacked arrays is
    lowered for before the arrays exist."""
    sharding = seed_sharding() if jax.device_count() > 1 else None
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


@dataclasses.dataclass(frozen=True)
class XlaOptions:
    """What a Trainer asks of XLA's CPU compiler for its training programs (``Trainer.xla``).

    library_reductions: XLA's YNNPACK reduction fusions, faster for the backward pass through a GRU over whole
        episodes (value decomposition's recurrent TD loss), slower for most other learners' small reductions;
    quick_backend: the backend (LLVM) at optimisation level 1 instead of its default: shorter compiles for learners
        whose run time is in networks and environments, which ran as fast; the learners of many small vector loops
        (the sampled opponent-shaping ones) ran slower at it.
    Measured in ``benchmarks/RESULTS.md``, "Compiler settings"."""

    library_reductions: bool = False
    quick_backend: bool = False


def compiler_options(xla: XlaOptions | None = None) -> dict | None:
    """XLA options of the training jits. On CPU, XLA's YNNPACK library fusions are turned off where this jaxlib has
    them: they run the small per-agent reductions and dots of these workloads (a few actions, a few states) slower
    than XLA's own loops (``benchmarks/opponent_shaping.py --throughput``); ``xla`` (what a Trainer declares) turns
    the reductions, and only them, back on, and picks the backend's optimisation level (None: the defaults)."""
    if jax.default_backend() != "cpu":
        return None
    return _cpu_options(xla or XlaOptions(), "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", ""))


@functools.cache
def _cpu_options(xla: XlaOptions, level_in_flags: bool) -> dict | None:
    """``{"xla_cpu_experimental_ynn_fusion_type": ... (none, or the reductions)}``, with
    ``"xla_backend_optimization_level": 1`` under ``quick_backend`` (unless ``XLA_FLAGS`` sets the level,
    ``level_in_flags``: the user's choice wins), if this jaxlib knows the options (older ones have no YNNPACK fusions
    and reject it), else None."""
    options = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE" if xla.library_reductions else ""}
    if xla.quick_backend and not level_in_flags:
        options["xla_backend_optimization_level"] = 1
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(jnp.zeros((), jnp.float32)).compile()
    except jax.errors.JaxRuntimeError:
        return None
    return options


def jit(fn: Callable, xla: XlaOptions | None = None, **kwargs) -> Callable:
    """``jax.jit`` with ``compiler_options(xla)``."""
    return jax.jit(fn, compiler_options=compiler_options(xla), **kwargs)


def resolve_seed_batch(trainer: Any, requested: int | None = None) -> int:
    """Seeds vectorised together per device: ``requested`` if given, else the trainer's choice on CPU
    (``Trainer.seed_batch``; 0: all of them) and all seeds on other backends."""
    if requested is not None:
        return requested
    return trainer.seed_batch if jax.default_backend() == "cpu" else 0


def map_seeds(fn: Callable[..., Any], seed_batch: int = 0) -> Callable[..., Any]:
    """``fn(seeded, *shared)`` of one seed -> a function of ``(seeded, *shared)`` with a leading seed axis (a multiple
    of the device count) on every leaf of ``seeded``: each device runs its slice of the seeds in groups of
    ``seed_batch`` (0: one group), ``shared`` is passed whole to every seed."""
    def local(seeded, *shared):
        def one(x):
            return fn(x, *shared)

        if seed_batch <= 0:
            return jax.vmap(one)(seeded)
        if seed_batch == 1:  # one seed per step: no batch axis of size 1 to trace, batch and compile
            return jax.lax.map(one, seeded)
        return jax.lax.map(one, seeded, batch_size=seed_batch)

    if jax.device_count() == 1:
        return local
    mesh = seed_sharding().mesh

    def sharded(seeded, *shared):
        specs = (PartitionSpec("seeds"),) + (PartitionSpec(),) * len(shared)
        return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("seeds"),
                             check_vma=False)(seeded, *shared)
    return sharded


def one_seed_per_call(seed_batch: int) -> bool:
    """Whether a caller should compile ``fn`` for one seed and call it once per seed (``per_seed_calls``) rather than
    compile ``map_seeds(fn, seed_batch)``: a group of one seed on one device. The program then has no loop over
    seeds, whose per-leaf slicing and stacking of every input and output XLA compiles as kernels of their own; the
    loop's body is the same computation, so the numbers are those of ``map_seeds``."""
    return seed_batch == 1 and jax.device_count() == 1


def per_seed_calls(compiled: Callable[..., Any]) -> Callable[..., Any]:
    """``compiled(seeded, *shared)`` of one seed -> the same of a list of per-seed pytrees (``split_seeds``), calling
    it once per seed -> the list of per-seed outputs, left on the device (a learner's state, its replay buffer
    included, stays there from one call to the next; ``stack_seeds`` brings outputs to the host)."""
    def call(seeded, *shared):
        return [compiled(s, *shared) for s in seeded]
    return call


def split_seeds(tree: Any) -> list[Any]:
    """A pytree with a leading seed axis [S, ...] -> S pytrees, one per seed, placed on the device: one copy to the
    host, split there, and a transfer per seed (no eager slicing on the device, which would compile small programs
    of its own)."""
    host = jax.device_get(tree)
    n = jax.tree.leaves(host)[0].shape[0]
    return [jax.device_put(jax.tree.map(lambda x: np.asarray(x)[i], host)) for i in range(n)]


def stack_seeds(trees: list[Any]) -> Any:
    """Per-seed pytrees -> one pytree of numpy arrays stacked along a leading seed axis [S, ...]."""
    return jax.tree.map(lambda *xs: np.stack(xs), *jax.device_get(trees))


def run_seeds(fn: Callable[[jax.Array], Any], keys: jax.Array, seed_batch: int = 0) -> Any:
    """``jit(map_seeds(fn, seed_batch))(keys)`` over all devices; results keep exactly ``len(keys)`` seeds. The
    persistent compilation cache is on (``compile_cache.enable``: a rerun loads what an earlier one compiled)."""
    compile_cache.enable()
    n = keys.shape[0]
    out = jit(map_seeds(fn, seed_batch))(shard_seeds(pad_seeds(keys, padded_size(n))))
    return jax.tree.map(lambda x: x[:n], out)
