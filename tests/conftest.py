"""Test-session set-up: one persistent XLA compilation cache for the whole run (a fresh directory per session, shared
by pytest-xdist workers, removed at the end, never the user's own cache), so tests that build the same training
function again (the command line, resumed runs, repeated seeds) skip the compile, subprocesses included. ``-n auto``
(pyproject) runs at most four workers: the suite is mostly XLA compiles, one CPU core each.

Most of the suite's programs are small and run for a few updates, so their compile dominates: everything compiles at
XLA's lowest backend optimisation level 0 (``XLA_FLAGS``, inherited by workers and subprocesses; a level the
caller's ``XLA_FLAGS`` sets wins), where the library's training jits would take level 1 (``XlaOptions.quick_backend``)
or the default. The few tests whose programs run longer than they compile (hundreds of updates on small games) take
level 1 back: ``optimised_jit`` (``sweep.jit`` at that level) for their own programs. Levels change numbers by float
rounding only; a test compares runs of the same level, or compares them up to float rounding."""
import os
import shutil
import tempfile

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # before JAX starts its backend
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

import jax

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

OPTIMISED = {"xla_backend_optimization_level": 1}  # XLA compiler options of programs that run longer than they compile


def optimised_jit(fn, xla=None, **kwargs):
    """``sweep.jit(fn, xla)`` compiled at ``OPTIMISED``'s level."""
    from jaxmarl_core import sweep

    return jax.jit(fn, compiler_options={**(sweep.compiler_options(xla) or {}), **OPTIMISED}, **kwargs)


def pytest_xdist_auto_num_workers(config):
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_sessionfinish(session, exitstatus):
    if _OWNER:
        shutil.rmtree(_CACHE, ignore_errors=True)
