"""Outputs (atomic files, CSV, intervals, plots), orbax checkpoints and seed sweeps over devices."""
import io
import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import pytest
from scipy import stats

from jaxmarl_core import outputs, sweep
from jaxmarl_core.checkpoint import Checkpoints


def test_atomic_write_replaces_whole_files_or_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / "summary.json")
    outputs.atomic_write_json(path, {"a": 1})
    outputs.atomic_write_json(path, {"a": np.float32(2.5)})
    assert json.load(open(path)) == {"a": 2.5}
    assert os.listdir(tmp_path) == ["summary.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask  # as a plain open() would create it, not owner-only

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        outputs.atomic_write(path, "half")
    assert json.load(open(path)) == {"a": 2.5} and os.listdir(tmp_path) == ["summary.json"]


def test_metrics_csv_intervals_and_plot(tmp_path):
    rng = np.random.default_rng(0)
    metrics = {"reward": rng.normal(size=(3, 4, 2)), "loss": rng.normal(size=(3, 4)).astype(np.float32),
               "steps": rng.integers(0, 10**6, size=(3, 4))}
    updates, seeds = np.array([10, 20, 30, 40]), np.array([5, 0, 9])
    text = outputs.metrics_csv(metrics, updates, seeds)
    rows = text.strip().splitlines()
    assert rows[0] == "seed,update,reward/0,reward/1,loss,steps" and len(rows) == 1 + 3 * 4
    back = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, dtype=np.float64)  # float(): exact for repr text
    # one row per (seed, update), seed-major: row s * 4 + u holds seed s at update u
    np.testing.assert_array_equal(back[:, 0], np.repeat(seeds, 4))
    np.testing.assert_array_equal(back[:, 1], np.tile(updates, 3))
    np.testing.assert_array_equal(back[:, 2], metrics["reward"][..., 0].reshape(-1))  # float64 round trip, exact
    np.testing.assert_array_equal(back[:, 3], metrics["reward"][..., 1].reshape(-1))
    np.testing.assert_array_equal(back[:, 4], metrics["loss"].reshape(-1).astype(np.float64))  # float32, exact
    np.testing.assert_array_equal(back[:, 5], metrics["steps"].reshape(-1))
    cells = [row.split(",") for row in rows[1:]]
    assert all(c[0].isdigit() and c[1].isdigit() and c[-1].isdigit() for c in cells)  # integers written as integers
    x = np.random.default_rng(1).normal(size=7)
    ci = outputs.mean_ci95(x)
    low, high = stats.t.interval(0.95, 6, loc=x.mean(), scale=stats.sem(x))
    assert ci["ci95_low"] == pytest.approx(low) and ci["ci95_high"] == pytest.approx(high)
    path = str(tmp_path / "curves.png")
    outputs.plot_curves(metrics, updates, path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_round_trip(tmp_path):
    tree = {"theta": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.int32(7),
            "nested": {"m": np.ones((2, 2, 2), np.float64)}}
    ck = Checkpoints(str(tmp_path / "ck"))
    ck.save(3, tree)
    ck.save(9, jax.tree.map(lambda x: x * 2, tree))
    assert ck.steps() == [3, 9] and ck.latest_step() == 9
    back = ck.restore(3, tree)
    ck.close()
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(tree)):
        np.testing.assert_array_equal(a, b)
        assert np.asarray(a).dtype == np.asarray(b).dtype


def test_seed_keys_are_prefix_stable_and_run_seeds_is_vmap():
    np.testing.assert_array_equal(sweep.seed_keys(3, 5)[:3], sweep.seed_keys(3, 3))
    for seed, n, first in [(0, 1, 0), (7, 3, 5), (2**31 + 5, 2, 0), (2**40, 3, 1), (-3, 2, 0)]:  # the definition, eager
        want = [jax.random.fold_in(jax.random.PRNGKey(seed), i) for i in range(first, first + n)]
        np.testing.assert_array_equal(sweep.seed_keys(seed, n, first), np.stack(want))
    keys = sweep.seed_keys(0, 5)
    fn = lambda k: jax.random.normal(k, (3,)).sum()  # noqa: E731
    np.testing.assert_allclose(sweep.run_seeds(fn, keys), jax.vmap(fn)(keys), rtol=1e-6)
    padded = sweep.pad_seeds({"x": jnp.arange(3)}, 5)["x"]
    np.testing.assert_array_equal(padded, [0, 1, 2, 0, 0])


@pytest.mark.parametrize("seed_batch", [0, 1, 2, 5])
def test_map_seeds_runs_groups_in_sequence_like_vmap(seed_batch):
    keys = sweep.seed_keys(0, 5)
    fn = lambda seeded, scale: {"y": jax.random.normal(seeded[0], (3,)) * scale + seeded[1]}  # noqa: E731
    seeded = (keys, jnp.arange(5.0))
    got = jax.jit(sweep.map_seeds(fn, seed_batch))(seeded, 2.0)
    np.testing.assert_allclose(got["y"], jax.vmap(fn, in_axes=(0, None))(seeded, 2.0)["y"], rtol=1e-6)


def test_per_seed_calls_give_map_seeds_numbers_on_per_seed_device_arrays():
    keys = sweep.seed_keys(0, 3)
    fn = lambda seeded, scale: (jnp.cumsum(jax.random.normal(seeded[0], (4,)) * scale) + seeded[1], seeded[1] > 0)  # noqa: E731
    seeded = (keys, jnp.arange(3.0))
    want = jax.jit(sweep.map_seeds(fn, 1))(seeded, 2.0)
    one = jax.jit(fn).lower(jax.tree.map(lambda x: x[0], seeded), 2.0).compile()
    outs = sweep.per_seed_calls(one)(sweep.split_seeds(seeded), 2.0)
    assert len(outs) == 3 and all(isinstance(x, jax.Array) for x in jax.tree.leaves(outs))
    got = sweep.stack_seeds(outs)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray) and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert sweep.one_seed_per_call(1) == (jax.device_count() == 1) and not sweep.one_seed_per_call(2)


def test_seed_shapes_lower_as_the_arrays_they_describe():
    placed = sweep.shard_seeds(sweep.pad_seeds(sweep.seed_keys(0, 3), sweep.padded_size(3)))
    fn = sweep.jit(sweep.map_seeds(lambda k, s: jax.random.normal(k, (3,)) * s, 1))
    shapes = sweep.seed_shapes(placed)
    assert (shapes.shape, shapes.dtype) == (placed.shape, placed.dtype)
    assert fn.lower(shapes, 2.0).as_text() == fn.lower(placed, 2.0).as_text()


# Found by running ``sweep._cpu_options``'s probe and the program of ``test_library_reductions_...`` under each of
# jaxlib 0.8.0, 0.8.1, 0.8.2, 0.9.0, 0.9.1, 0.9.2, 0.10.0, 0.10.1, 0.10.2 (x86-64 Linux wheels, Python 3.11):
# the first jaxlib that accepts xla_cpu_experimental_ynn_fusion_type (0.8.0: "No such compile option")
YNN_OPTION_JAXLIB = (0, 8, 1)
# the first whose YNNPACK fusions take these reductions (0.8.1 to 0.10.1 accept the options but fuse nothing)
YNN_REDUCE_JAXLIB = (0, 10, 2)


def require_cpu_options(first_jaxlib):
    """Skip off XLA's CPU backend or below ``first_jaxlib``; from there on the probe must accept the options."""
    if jax.default_backend() != "cpu":
        pytest.skip("compiler options are set on XLA's CPU backend only")
    installed = tuple(int(p) for p in re.match(r"(\d+)\.(\d+)\.(\d+)", jaxlib.__version__).groups())
    if installed < first_jaxlib:
        pytest.skip(f"jaxlib {jaxlib.__version__} predates {'.'.join(map(str, first_jaxlib))}")
    assert sweep.compiler_options() is not None, f"jaxlib {jaxlib.__version__} has the options; the probe rejected them"


def test_quick_backend_sets_the_backend_level_only_where_declared(monkeypatch):
    require_cpu_options(YNN_OPTION_JAXLIB)
    quick = sweep.XlaOptions(quick_backend=True)
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # no level chosen: the Trainer's declaration counts
    assert "xla_backend_optimization_level" not in sweep.compiler_options()
    assert sweep.compiler_options(quick)["xla_backend_optimization_level"] == 1
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=2")  # the user's level wins
    assert "xla_backend_optimization_level" not in sweep.compiler_options(quick)
    x = jnp.linspace(-2.0, 2.0, 64)
    np.testing.assert_allclose(sweep.jit(jnp.tanh, sweep.XlaOptions(quick_backend=True))(x), jnp.tanh(x), rtol=1e-6)


def test_library_reductions_only_where_a_trainer_declares_them():
    """The training jits keep XLA's YNNPACK fusions off; ``library_reductions`` (``Trainer.xla``)
    sends the reductions, and only them, through YNNPACK, with the same sums."""
    require_cpu_options(YNN_REDUCE_JAXLIB)
    x = jax.random.normal(jax.random.PRNGKey(0), (96, 64))

    def f(x):
        return jnp.sum(jnp.tanh(x) * 2.0, axis=0), x @ x.T

    plain = sweep.jit(f).lower(x).compile()
    library = sweep.jit(f, sweep.XlaOptions(library_reductions=True)).lower(x).compile()
    assert "__ynn_fusion" not in plain.as_text()
    fused = [line for line in library.as_text().splitlines() if "__ynn_fusion" in line]
    assert fused and all("reduce" in line for line in fused)
    for a, b in zip(plain(x), library(x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jaxmarl_core import sweep
assert jax.device_count() == 4, jax.devices()
keys = sweep.seed_keys(0, 6)
fn = lambda k: jax.random.normal(k, (3,)).sum()
placed = sweep.shard_seeds(sweep.pad_seeds(keys, sweep.padded_size(6)))
assert placed.shape[0] == 8 and len(placed.sharding.device_set) == 4
out = sweep.run_seeds(fn, keys)
assert out.shape == (6,)
np.testing.assert_allclose(sweep.run_seeds(fn, keys, seed_batch=1), out, rtol=1e-6)
g = sweep.jit(sweep.map_seeds(lambda k, s: jax.random.normal(k, (3,)) * s, 1))
assert g.lower(sweep.seed_shapes(placed), 2.0).as_text() == g.lower(placed, 2.0).as_text()
np.save("out.npy", np.asarray(out))
"""


def test_run_seeds_shards_over_four_cpu_devices(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    keys = sweep.seed_keys(0, 6)
    expected = jax.vmap(lambda k: jax.random.normal(k, (3,)).sum())(keys)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-6)
