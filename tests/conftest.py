"""Test-session set-up: one persistent XLA compilation cache for the whole run (a fresh directory per session,
removed at the end), so tests that build the same training function again (the command line, resumed runs,
repeated seeds) skip the compile, subprocesses included."""
import os
import shutil
import tempfile

import jax

_CACHE = tempfile.mkdtemp(prefix="jaxmarl-xla-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE  # inherited by the train.py subprocesses
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)
