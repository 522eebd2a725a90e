"""Test-session set-up: one persistent XLA compilation cache for the whole run (a fresh directory per session, shared
by pytest-xdist workers, removed at the end, never the user's own cache), so tests that build the same training
function again (the command line, resumed runs, repeated seeds) skip the compile, subprocesses included. ``-n auto``
(pyproject) runs at most four workers: the suite is mostly XLA compiles, one CPU core each.

The tests' fast-compile settings are defined here once: ``FAST_COMPILE`` (XLA's lowest optimisation level, about
half the compile time of tiny smoke runs whose run time is negligible), applied by the ``fast_compile`` fixture to
the training jits of a test, by ``fast_jit`` (``jax.jit`` with them) to a test's own small programs, and by
``fast_compile_env`` to a subprocess's environment. Everything else compiles at XLA's backend level 1 (``XLA_FLAGS``,
inherited by workers and subprocesses; a level the caller's ``XLA_FLAGS`` sets wins): the level the network learners
declare (``XlaOptions.quick_backend``), here for every test, whose runs are short, so the suite's compiles shrink and
numbers move by float rounding only."""
import functools
import os
import shutil
import tempfile

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # before JAX starts its backend
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=1".strip()

import jax
import pytest

from jaxmarl_core import compile_cache

_OWNER = "JAXMARL_TEST_CACHE" not in os.environ  # the controlling process (or a run without xdist)
if _OWNER:  # workers inherit it, so each directory made here is removed at the end
    os.environ["JAXMARL_TEST_CACHE"] = tempfile.mkdtemp(prefix="jaxmarl-xla-cache-")
_CACHE = os.environ["JAXMARL_TEST_CACHE"]
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE  # inherited by the train.py subprocesses
os.environ["JAXMARL_COMPILE_CACHE"] = _CACHE  # what train.py and the benchmarks use, in process and in subprocesses
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
# every process writes the cache with the same size limit (JAX then locks it and keeps each entry's access time)
os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(compile_cache.MAX_BYTES)
compile_cache.enable(_CACHE)

FAST_COMPILE = {"xla_backend_optimization_level": 0}  # XLA compiler options
fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)  # for tiny programs: compile time dominates


@pytest.fixture
def fast_compile(monkeypatch):
    """Training jits of this test (``sweep.jit``: ``train.py`` in process, the benchmarks) compile with
    ``FAST_COMPILE``."""
    from jaxmarl_core import sweep

    options = sweep.compiler_options
    monkeypatch.setattr(sweep, "compiler_options",
                        lambda xla=None: {**(options(xla) or {}), **FAST_COMPILE})


def fast_compile_environ() -> dict:
    """An environment for subprocesses (``train.py``, benchmark scripts) whose jits compile with ``FAST_COMPILE``."""
    flags = " ".join(f"--{k}={v}" for k, v in FAST_COMPILE.items())
    return dict(os.environ, XLA_FLAGS=" ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), flags])))


@pytest.fixture
def fast_compile_env():
    return fast_compile_environ()


def pytest_xdist_auto_num_workers(config):
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_sessionfinish(session, exitstatus):
    if _OWNER:
        shutil.rmtree(_CACHE, ignore_errors=True)
