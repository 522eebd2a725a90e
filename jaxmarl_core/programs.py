"""Traced programs kept on disk beside the compilation cache, so that a second run of the same command skips JAX's
tracing and lowering as well as XLA's compile.

Once the persistent compilation cache (``compile_cache``) holds a run's executables, what is left of a warm start is
JAX's own work: tracing the training step in Python and lowering it to StableHLO. ``lower(fn, args, describe)``
exports ``fn`` (``jax.export``) for the shapes of ``args`` and keeps the serialised program in
``<cache>/programs/<key>``, the key a hash of

1. the sources of ``train.py`` and of this repository's packages (``jaxmarl_core``, ``algos``, ``envs``: any change
   to a ``.py`` file is a new key), the versions of Python and of the packages traced through (jax, jaxlib, flax,
   optax, distrax, chex, numpy, ..., and JaxMARL's for its environments), the backend and every ``jax.config``
   value;
2. ``describe``: what the caller traced (say the algorithm, the environment's and the config's ``repr`` and the
   program's role), which must name everything ``fn`` closes over beyond those sources;
3. the arguments' tree structure, shapes and dtypes.

A later call with the same key deserialises the program and lowers only the call to it. Every call runs the exported
program, the first one included and with no directory (then nothing is kept), so cached and uncached runs compute
the same numbers. An entry that cannot be read or written is traced again, with one warning line on stderr per
process; at most ``MAX_PROGRAMS`` entries are kept (the least recently written go). With several devices, or a
function JAX cannot export, ``lower`` is ``jax.jit(fn).lower``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

import jax

from jaxmarl_core import compile_cache, outputs

SUBDIR = "programs"
MAX_PROGRAMS = 256
_PACKAGES = ("jaxmarl_core", "algos", "envs")
_TRACED_THROUGH = ("jax", "jaxlib", "flax", "optax", "distrax", "chex", "numpy", "ml_dtypes",
                   "tensorflow-probability", "flatbuffers", "jaxmarl", "brax", "gymnax")  # the last: --env jaxmarl:
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Program:
    """A lowered program over pytrees: ``compile()`` -> a callable taking and returning the pytrees of ``fn``;
    ``out_info``: the output's shapes (``jax.ShapeDtypeStruct`` leaves); ``source``: "traced" (exported in this
    process), "cached" (read from the directory) or "jit" (not exported: ``lowered`` takes the pytrees itself and
    the trees are None)."""

    lowered: Any  # jax.stages.Lowered
    in_tree: Any  # the arguments' PyTreeDef
    out_tree: Any  # the output's PyTreeDef
    out_info: Any
    source: str

    def compile(self) -> Callable:
        compiled = self.lowered.compile()
        if self.in_tree is None:
            return compiled
        in_tree, out_tree = self.in_tree, self.out_tree

        def call(*args):
            leaves, tree = jax.tree.flatten(args)
            if tree != in_tree:
                raise TypeError(f"arguments of structure {tree}, compiled for {in_tree}")
            return jax.tree.unflatten(out_tree, compiled(*leaves))

        return call


@functools.cache
def _sources_digest() -> str:
    """sha256 of the repository packages' sources, the versions they trace through and the interpreter."""
    h = hashlib.sha256(sys.version.encode())
    for name in _TRACED_THROUGH:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{name}={version};".encode())
    paths = [os.path.join(_ROOT, "train.py")]  # its programs' closures; installed, it sits beside the packages
    for package in _PACKAGES:
        for folder, _, files in os.walk(os.path.join(_ROOT, package)):
            paths += [os.path.join(folder, name) for name in files if name.endswith(".py")]
    for path in sorted(p for p in paths if os.path.isfile(p)):
        h.update(os.path.relpath(path, _ROOT).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def key(describe: str, args: Any) -> str:
    """The entry's name for ``describe`` and the shapes of ``args`` (leaves with ``shape`` and ``dtype``)."""
    leaves, tree = jax.tree.flatten(args)
    h = hashlib.sha256(_sources_digest().encode())
    h.update(jax.default_backend().encode())
    h.update(repr(sorted(jax.config.values.items())).encode())
    h.update(describe.encode())
    h.update(str(tree).encode())
    h.update(repr([(tuple(x.shape), str(x.dtype)) for x in leaves]).encode())
    return h.hexdigest()


def _warn_once(path: str, reason: str) -> None:
    compile_cache.warn_once("traced-program cache", path, reason, "tracing")


def _spec(x) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _read(path: str):
    """-> (jax.export.Exported, out_tree) from an entry, or None if there is none or it cannot be read."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            blob, out_tree = pickle.load(f)
        return jax.export.deserialize(bytearray(blob)), out_tree
    except Exception as e:  # a corrupt or foreign entry: traced again
        _warn_once(path, f"unreadable entry ({type(e).__name__})")
        return None


def _write(directory: str, path: str, exported, out_tree) -> None:
    """Keep an entry, then drop the least recently written beyond ``MAX_PROGRAMS`` (another run may be doing the
    same: entries already gone are skipped)."""
    try:
        os.makedirs(directory, exist_ok=True)
        outputs.atomic_write(path, pickle.dumps((bytes(exported.serialize()), out_tree)))
    except Exception as e:  # unwritable, no flatbuffers to serialise with, or an output type pickle cannot name
        _warn_once(directory, f"cannot keep an entry ({type(e).__name__}: {e})")
        return
    stamped = []
    for name in os.listdir(directory):
        if not name.startswith("."):  # not another run's entry still being written
            try:
                stamped.append((os.path.getmtime(os.path.join(directory, name)), name))
            except OSError:
                continue
    for _, name in sorted(stamped)[:-MAX_PROGRAMS]:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            continue


def _jit(fn: Callable, args: tuple, compiler_options: dict | None) -> Program:
    """``jax.jit(fn).lower(*args)``, not exported."""
    lowered = jax.jit(fn, compiler_options=compiler_options).lower(*args)
    return Program(lowered, None, None, lowered.out_info, "jit")


def lower(fn: Callable, args: tuple, describe: str, directory: str | None = None,
          compiler_options: dict | None = None) -> Program:
    """``fn(*args)`` lowered for the shapes of ``args`` (arrays or ``jax.ShapeDtypeStruct`` leaves), as an exported
    program read from or written to ``directory/programs`` (None: exported, not kept)."""
    if jax.device_count() != 1:
        return _jit(fn, args, compiler_options)
    specs, in_tree = jax.tree.flatten(jax.tree.map(_spec, args))
    folder = None if directory is None else os.path.join(directory, SUBDIR)
    path = None if folder is None else os.path.join(folder, key(describe, args))
    found = None if path is None else _read(path)
    source = "cached"
    if found is None:
        source = "traced"
        box = {}

        def flat(*leaves):
            out_leaves, box["out_tree"] = jax.tree.flatten(fn(*jax.tree.unflatten(in_tree, leaves)))
            return out_leaves

        try:
            exported = jax.export.export(jax.jit(flat))(*specs)
        except Exception:  # what jax.export does not take (host callbacks, say): plain jit
            return _jit(fn, args, compiler_options)
        found = exported, box["out_tree"]
        if path is not None:
            _write(folder, path, *found)
    exported, out_tree = found
    lowered = jax.jit(exported.call, compiler_options=compiler_options).lower(*specs)
    out_info = jax.tree.unflatten(out_tree, [_spec(a) for a in exported.out_avals])
    return Program(lowered, in_tree, out_tree, out_info, source)
