"""Test-session set-up: one persistent XLA compilation cache for the whole run (a fresh directory per session, shared
by pytest-xdist workers, removed at the end), so tests that build the same training function again (the command
line, resumed runs, repeated seeds) skip the compile, subprocesses included. ``-n auto`` (pyproject) runs at most
four workers: the suite is mostly XLA compiles, one CPU core each."""
import os
import shutil
import tempfile

import jax
import pytest

_OWNER = "JAXMARL_TEST_CACHE" not in os.environ  # the controlling process (or a run without xdist)
_CACHE = os.environ.setdefault("JAXMARL_TEST_CACHE", tempfile.mkdtemp(prefix="jaxmarl-xla-cache-"))
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE  # inherited by the train.py subprocesses
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture
def fast_compile(monkeypatch):
    """Training jits of this test compile at XLA's lowest optimisation level: about half the compile time of the
    tiny smoke runs, whose run time is negligible (``train.py`` in process)."""
    from jaxmarl_core import sweep

    options = sweep.compiler_options
    monkeypatch.setattr(sweep, "compiler_options", lambda: {**(options() or {}), "xla_backend_optimization_level": 0})


def pytest_xdist_auto_num_workers(config):
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_sessionfinish(session, exitstatus):
    if _OWNER:
        shutil.rmtree(_CACHE, ignore_errors=True)
