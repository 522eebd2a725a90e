"""Traced programs kept on disk (``jaxmarl_core.programs``): a second lowering reads the program and computes the same
numbers, anything that changes the trace is a new entry, and a broken entry or directory is traced again."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxmarl_core import compile_cache, programs


@struct.dataclass
class Carry:
    x: jax.Array
    n: jax.Array


def step(carry: Carry, inputs: dict):
    """-> (Carry, {"y": ...}): a pytree in and out, a custom node included."""
    y = jnp.tanh(carry.x @ inputs["w"]) + inputs["b"]
    return Carry(x=y, n=carry.n + 1), {"y": y, "total": jnp.sum(y)}


def args(rows=3):
    key = jax.random.PRNGKey(0)
    return (Carry(x=jax.random.normal(key, (rows, 4)), n=jnp.int32(0)),
            {"w": jax.random.normal(jax.random.fold_in(key, 1), (4, 4)), "b": jnp.float32(0.5)})


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(compile_cache, "_warned", set())


def test_a_second_lowering_reads_the_program_and_computes_the_same(tmp_path, fresh):
    first = programs.lower(step, args(), "step", str(tmp_path))
    again = programs.lower(step, args(), "step", str(tmp_path))
    assert (first.source, again.source) == ("traced", "cached")
    assert len(os.listdir(tmp_path / programs.SUBDIR)) == 1
    want = jax.jit(step)(*args())
    for program in (first, again):
        got = program.compile()(*args())
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        assert jax.tree.map(lambda s: (s.shape, s.dtype), program.out_info) == jax.tree.map(
            lambda a: (a.shape, a.dtype), want)
    # what the caller describes and the arguments' shapes are part of the key; None keeps nothing
    assert programs.lower(step, args(), "another step", str(tmp_path)).source == "traced"
    assert programs.lower(step, args(rows=5), "step", str(tmp_path)).source == "traced"
    assert len(os.listdir(tmp_path / programs.SUBDIR)) == 3
    assert programs.lower(step, args(), "step", None).source == "traced"
    with pytest.raises(TypeError, match="structure"):
        first.compile()(args()[0], {"w": args()[1]["w"]})


def test_broken_entries_and_directories_are_traced_again_with_one_warning(tmp_path, capfd, fresh):
    programs.lower(step, args(), "step", str(tmp_path))
    (entry,) = (tmp_path / programs.SUBDIR).iterdir()
    entry.write_bytes(b"not a program")
    blocker = tmp_path / "file"  # a path under a regular file cannot be written, even by root
    blocker.write_text("")
    for directory in (str(tmp_path), str(tmp_path), str(blocker)):
        program = programs.lower(step, args(), "step", directory)
        np.testing.assert_allclose(program.compile()(*args())[1]["total"], jax.jit(step)(*args())[1]["total"],
                                   rtol=1e-6)
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: traced-program cache"), err
    assert programs.lower(step, args(), "step", str(tmp_path)).source == "cached"  # rewritten by the first retrace


def test_at_most_max_programs_are_kept_the_latest_written(tmp_path, monkeypatch, fresh):
    monkeypatch.setattr(programs, "MAX_PROGRAMS", 2)
    keys = []
    for rows in (1, 2, 3):
        programs.lower(step, args(rows), "step", str(tmp_path))
        keys.append(programs.key("step", args(rows)))
        os.utime(tmp_path / programs.SUBDIR / keys[-1], (rows, rows))  # distinct write times, oldest first
    assert sorted(os.listdir(tmp_path / programs.SUBDIR)) == sorted(keys[1:])


def test_any_change_to_a_package_source_is_a_new_key(tmp_path, monkeypatch):
    for package in ("jaxmarl_core", "algos", "envs"):
        (tmp_path / package / "sub").mkdir(parents=True)
        (tmp_path / package / "sub" / "mod.py").write_text("X = 1\n")
    (tmp_path / "algos" / "notes.txt").write_text("not Python")
    monkeypatch.setattr(programs, "_ROOT", str(tmp_path))
    digests = []
    for change in (None, ("algos", "notes.txt", "still not Python"), ("envs", "sub/mod.py", "X = 2\n"),
                   ("jaxmarl_core", "new.py", ""), (".", "train.py", "")):
        if change is not None:
            (tmp_path / change[0] / change[1]).write_text(change[2])
        programs._sources_digest.cache_clear()
        digests.append(programs._sources_digest())
    programs._sources_digest.cache_clear()
    assert digests[0] == digests[1]  # only Python sources count
    assert len(set(digests[1:])) == 4
