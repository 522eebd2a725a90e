"""The persistent XLA compilation cache of training runs: compiled executables are kept on disk, so a second run of
the same command (same functions, shapes, compiler options and JAX version) loads them instead of compiling.

Where (first that applies):

1. ``enable(requested)`` with a directory or ``"off"`` (``train.py --compile-cache DIR|off``);
2. the environment variable ``JAXMARL_COMPILE_CACHE=DIR|off``;
3. a directory JAX was already given (``JAX_COMPILATION_CACHE_DIR``, or ``jax_compilation_cache_dir`` set in
   the process, as the test session does);
4. the per-user default, ``default_dir()``: ``$XDG_CACHE_HOME/jaxmarl-core/xla`` or ``~/.cache/jaxmarl-core/xla``
   on Linux, ``~/Library/Caches/jaxmarl-core/xla`` on macOS, ``%LOCALAPPDATA%\\jaxmarl-core\\xla`` on Windows.

Runs may share a directory: each entry is a file named by a hash of what was compiled (program, compiler options,
devices, JAX version), written once and never changed. With a size limit set (``MAX_BYTES``, or JAX's own
``JAX_COMPILATION_CACHE_MAX_SIZE``), JAX takes a file lock (``filelock``) around every read and write of the
directory, so no run reads an entry another is still writing, and it evicts the least recently used entries beyond
the limit. A directory that cannot be written is not used, and an entry that cannot be read (corrupt) is compiled
again; either way one warning line goes to stderr, once per process, and the run goes on. An entry written without
the limit (by plain JAX, or a run killed between the entry and its access time) has no access-time file, and JAX's
eviction, which reads every entry's, would then fail every later write: ``enable`` gives such entries the current
time first. ``train.py`` keeps its traced programs in the subdirectory ``programs/`` (``jaxmarl_core.programs``),
which JAX's eviction leaves alone.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Mapping

ENV_VAR = "JAXMARL_COMPILE_CACHE"
OFF = "off"
# Functions compiling faster than this are not written (JAX's default is 1 s): a training run's initialisation
# compiles in well under a second, and a warm start should skip it too.
MIN_COMPILE_SECS = 0.1
_MIN_COMPILE_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
MAX_BYTES = 4 << 30  # the cache's size limit: least recently used entries beyond it are evicted
_MAX_SIZE_ENV = "JAX_COMPILATION_CACHE_MAX_SIZE"
_CACHE_SUFFIX, _ATIME_SUFFIX = "-cache", "-atime"  # JAX's entry and access-time files
_JAX_ERRORS = ("Error reading persistent compilation cache entry", "Error writing persistent compilation cache entry")

_warned: set[str] = set()  # the caches that have warned in this process


def default_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The platform's per-user cache location, ``.../jaxmarl-core/xla``."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = environ.get("HOME") or os.path.expanduser("~")
    if platform.startswith("win"):
        base = environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif platform == "darwin":
        base = os.path.join(home, "Library", "Caches")
    else:
        base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "jaxmarl-core", "xla")


def choose(requested: str | None, environ: Mapping[str, str] | None = None,
           jax_dir: str | None = None) -> str | None:
    """The directory to use (None: off) by the precedence in the module docstring; ``jax_dir``: the directory
    JAX is configured with, if any."""
    environ = os.environ if environ is None else environ
    for choice in (requested, environ.get(ENV_VAR), jax_dir):
        if choice:
            return None if choice.strip().lower() == OFF else os.path.abspath(os.path.expanduser(choice))
    return default_dir(environ)


def _writable(path: str) -> str | None:
    """None if ``path`` can be created and written, else why not."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"")
        os.unlink(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def warn_once(cache: str, path: str, reason: str, instead: str) -> None:
    """One line on stderr per ``cache`` and process: ``warning: CACHE PATH: REASON; INSTEAD instead``."""
    if cache not in _warned:
        _warned.add(cache)
        sys.stderr.write(f"warning: {cache} {path}: {reason}; {instead} instead\n")
        sys.stderr.flush()


def _warn_once(path: str, reason: str) -> None:
    warn_once("XLA compilation cache", path, reason, "compiling")


def _install_warning_hook() -> None:
    """Route JAX's per-entry cache warnings (two lines each, one per entry) to ``_warn_once``."""
    show = warnings.showwarning
    if getattr(show, "_jaxmarl_compile_cache", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text.startswith(_JAX_ERRORS):
            import jax

            _warn_once(jax.config.jax_compilation_cache_dir or "",
                       f"{text.splitlines()[0]} (delete the directory if this repeats)")
            return
        show(message, category, filename, lineno, file, line)

    showwarning._jaxmarl_compile_cache = True
    warnings.showwarning = showwarning


def _add_missing_access_times(path: str) -> None:
    """Give every entry ``KEY-cache`` in ``path`` without its ``KEY-atime`` file one holding the current time (JAX's
    format: nanoseconds, 8 bytes little-endian), so that the size limit's eviction can read it."""
    stamp = time.time_ns().to_bytes(8, "little")
    for name in os.listdir(path):
        if name.endswith(_CACHE_SUFFIX):
            atime = os.path.join(path, name[:-len(_CACHE_SUFFIX)] + _ATIME_SUFFIX)
            if not os.path.exists(atime):
                with open(atime, "wb") as f:
                    f.write(stamp)


def enable(requested: str | None = None) -> str | None:
    """Point JAX's persistent compilation cache at ``choose(requested)``, before anything is compiled; -> the
    directory in use, or None (off, or not writable: then one warning line on stderr)."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    current = jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None
    path = choose(requested, jax_dir=current or None)
    if path is not None:
        reason = _writable(path)
        if reason is not None:
            _warn_once(path, reason)
            path = None
    if path != (current or None):
        cc.reset_cache()
        jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_enable_compilation_cache", path is not None)
    if path is not None:
        if _MIN_COMPILE_ENV not in os.environ:
            jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECS)
        # JAX reads its variable only when imported: set here, it holds whenever this process imported JAX
        jax.config.update("jax_compilation_cache_max_size", int(os.environ.get(_MAX_SIZE_ENV, MAX_BYTES)))
        if jax.config.jax_compilation_cache_max_size > 0:
            try:
                _add_missing_access_times(path)
            except OSError as e:
                _warn_once(path, e.strerror or str(e))
        _install_warning_hook()
    return path
