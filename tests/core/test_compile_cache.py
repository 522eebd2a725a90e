"""The persistent compilation cache: where it is, that runs share it, and that a broken one never fails a run."""
import glob
import json
import os
import subprocess
import sys

import jax
import pytest

from jaxmarl_core import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = ["train.py", "--algo", "lri", "--env", "matrix_climbing", "--seeds", "2", "--set", "total_steps=20", "--set",
       "steps_per_update=10", "--quiet"]  # about the cheapest compile there is


def test_choose_follows_flag_then_environment_then_jax_then_platform_default():
    env = {"HOME": "/home/u", compile_cache.ENV_VAR: "/env/cache"}
    assert compile_cache.choose("/flag", env, jax_dir="/jax") == "/flag"
    assert compile_cache.choose(None, env, jax_dir="/jax") == "/env/cache"
    assert compile_cache.choose(None, {"HOME": "/home/u"}, jax_dir="/jax") == "/jax"
    assert compile_cache.choose(None, {"HOME": "/home/u"}) == compile_cache.default_dir({"HOME": "/home/u"})
    assert compile_cache.choose("off", env) is None and compile_cache.choose("OFF", env, jax_dir="/jax") is None
    assert compile_cache.choose(None, {compile_cache.ENV_VAR: "off"}, jax_dir="/jax") is None
    assert compile_cache.choose("/flag", {compile_cache.ENV_VAR: "off"}) == "/flag"


@pytest.mark.parametrize("platform,environ,want", [
    ("linux", {"HOME": "/home/u"}, "/home/u/.cache/jaxmarl-core/xla"),
    ("linux", {"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"}, "/xdg/jaxmarl-core/xla"),
    ("darwin", {"HOME": "/Users/u", "XDG_CACHE_HOME": "/xdg"}, "/Users/u/Library/Caches/jaxmarl-core/xla"),
    ("win32", {"HOME": "/h", "LOCALAPPDATA": "/appdata"}, os.path.join("/appdata", "jaxmarl-core", "xla")),
])
def test_default_dir_is_the_platform_cache_location(platform, environ, want):
    assert compile_cache.default_dir(environ, platform) == want


@pytest.fixture
def restore_cache(monkeypatch):
    """Put this process's cache settings (the test session's) back afterwards."""
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setattr(compile_cache, "_warned", set())
    yield
    assert compile_cache.enable(before) == before


def test_enable_uses_a_writable_directory_and_warns_once_for_one_it_cannot_write(tmp_path, capfd, restore_cache):
    assert compile_cache.enable(str(tmp_path / "xla")) == str(tmp_path / "xla")
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla") and jax.config.jax_enable_compilation_cache
    assert os.path.isdir(tmp_path / "xla")
    blocker = tmp_path / "file"  # root may write anywhere: a path under a regular file is unwritable for everyone
    blocker.write_text("")
    for _ in range(2):
        assert compile_cache.enable(str(blocker / "xla")) is None
    assert not jax.config.jax_enable_compilation_cache
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: XLA compilation cache") and str(blocker) in err[0]
    assert jax.jit(lambda x: x + 1)(1) == 2  # compiles without a cache
    assert compile_cache.enable("off") is None and not jax.config.jax_enable_compilation_cache



def test_entries_without_access_times_get_one_so_jax_can_still_add(tmp_path, restore_cache):
    from jax._src.lru_cache import LRUCache

    cache = tmp_path / "xla"
    cache.mkdir()
    (cache / "orphan-cache").write_bytes(b"an entry written without the size limit")
    with pytest.raises(FileNotFoundError):  # JAX's eviction reads every entry's access time
        LRUCache(str(cache), max_size=1 << 20).put("new", b"x")
    assert compile_cache.enable(str(cache)) == str(cache)
    assert len((cache / "orphan-atime").read_bytes()) == 8
    LRUCache(str(cache), max_size=1 << 20).put("new", b"x")
    assert (cache / "new-cache").read_bytes() == b"x"

def run(cache, out):
    env = dict(os.environ, JAXMARL_COMPILE_CACHE=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    return subprocess.Popen([sys.executable, *RUN, "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_runs_share_a_cache_and_corrupt_entries_are_compiled_again(tmp_path):
    cache = tmp_path / "xla"
    procs = [run(cache, tmp_path / f"run{i}") for i in range(2)]  # at once, on an empty cache
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, err
    entries = glob.glob(str(cache / "*-cache"))
    assert entries, "nothing was written to the cache"
    want = (tmp_path / "run0" / "metrics.csv").read_text()
    assert (tmp_path / "run1" / "metrics.csv").read_text() == want
    for path in entries:
        with open(path, "wb") as f:
            f.write(b"not an executable")
    proc = run(cache, tmp_path / "corrupt")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: XLA compilation cache {cache}"), err
    assert (tmp_path / "corrupt" / "metrics.csv").read_text() == want
    # the traced programs (``jaxmarl_core.programs``) were kept beside the executables: the third run traced nothing
    assert set(json.loads((tmp_path / "corrupt" / "summary.json").read_text())["programs"].values()) == {"cached"}
