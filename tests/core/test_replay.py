"""Replay buffers: uniform sampling over the filled slots, circular overwrite, whole episodes, and the buffer inside a
jitted ``lax.scan`` vmapped over seeds."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_core.replay import Episode, ReplayBuffer, episode_buffer

# chi-square quantile 0.999 for 9 and 15 degrees of freedom: a uniform sampler fails this 1 time in 1000
CHI2_999 = {9: 27.877, 15: 37.697}


@jax.jit
def _draw(buf, key):
    return buf.sample(key, 20_000)


def _chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / len(counts)
    return float(np.sum((counts - expected) ** 2 / expected))


def test_sampling_is_uniform_over_filled_slots_only():
    buf = ReplayBuffer.create(jnp.float32(0), capacity=16)
    assert not buf.can_sample()
    for lo, hi in [(1, 5), (5, 9), (9, 11)]:  # items 1 .. 10 in batches of 4, 4, 2; slots 10 .. 15 stay empty
        buf = buf.add(jnp.arange(lo, hi, dtype=jnp.float32))
    assert int(buf.size) == 10 and bool(buf.can_sample(10)) and not bool(buf.can_sample(11))
    draws = np.asarray(_draw(buf, jax.random.PRNGKey(0)))
    assert set(np.unique(draws)) == set(range(1, 11))  # every stored item, never an empty slot (0)
    counts = np.bincount(draws.astype(int), minlength=11)[1:]
    assert _chi_square(counts) < CHI2_999[9]
    buf = buf.add(jnp.arange(11, 17, dtype=jnp.float32))  # now full: uniform over all 16 slots
    counts = np.bincount(np.asarray(_draw(buf, jax.random.PRNGKey(1))).astype(int), minlength=17)[1:]
    assert counts.min() > 0 and _chi_square(counts) < CHI2_999[15]


def test_wrap_around_overwrites_the_oldest_in_order():
    buf = ReplayBuffer.create({"x": jnp.int32(0), "y": jnp.zeros(2)}, capacity=5)
    buf = buf.add({"x": jnp.array([1, 2, 3]), "y": jnp.ones((3, 2))})
    buf = buf.add({"x": jnp.array([4, 5, 6, 7]), "y": 2 * jnp.ones((4, 2))})  # 6 and 7 replace 1 and 2
    np.testing.assert_array_equal(buf.items["x"], [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(buf.items["y"][:, 0], [2, 2, 1, 2, 2])
    assert int(buf.position) == 2 and int(buf.size) == 5 and buf.items["x"].dtype == jnp.int32
    buf = buf.add({"x": jnp.arange(10, 15), "y": jnp.zeros((5, 2))})  # exactly the capacity: one full turn
    np.testing.assert_array_equal(buf.items["x"], [13, 14, 10, 11, 12])
    assert int(buf.position) == 2
    with pytest.raises(ValueError, match="capacity"):
        buf.add({"x": jnp.arange(6), "y": jnp.zeros((6, 2))})
    with pytest.raises(ValueError, match="shape"):
        buf.add({"x": jnp.arange(2), "y": jnp.zeros((2, 3))})


def test_add_where_writes_only_the_kept_items_in_order_and_wraps():
    """Against a Python list of the kept items: the buffer holds the last ``capacity`` of them, oldest overwritten."""
    buf = ReplayBuffer.create(jnp.int32(0), capacity=4)
    kept = []
    for batch, keep in [([1, 2, 3], [True, False, True]), ([4, 5, 6, 7], [False, False, False, False]),
                        ([8, 9, 10, 11], [True, True, False, True])]:
        buf = buf.add_where(jnp.array(batch), jnp.array(keep))
        kept += [x for x, k in zip(batch, keep) if k]
        assert int(buf.size) == min(len(kept), 4) and int(buf.position) == len(kept) % 4
    slots = [(i % 4, x) for i, x in enumerate(kept)]  # item i of the kept goes to slot i mod 4
    expect = dict(slots)
    np.testing.assert_array_equal(buf.items, [expect[i] for i in range(4)])  # [11, 3, 8, 9]
    every = ReplayBuffer.create(jnp.int32(0), capacity=4).add(jnp.arange(3))
    np.testing.assert_array_equal(ReplayBuffer.create(jnp.int32(0), capacity=4).add_where(
        jnp.arange(3), jnp.ones(3, bool)).items, every.items)


def test_episode_buffer_returns_whole_episodes_with_masks():
    """Episodes of lengths 4, 2 and 3 padded to T = 4 come back whole: every sampled episode is one of those added,
    steps and mask alike, and all three are drawn."""
    t_len, lengths = 4, np.array([4, 2, 3])
    example = {"obs": jnp.zeros(2), "action": jnp.int32(0), "avail": jnp.zeros(3, bool)}
    buf = episode_buffer(example, capacity=8, max_length=t_len)
    ep_id = np.arange(3)[:, None] * 10 + np.arange(t_len)[None]  # [B, T]: 10 * episode + step
    mask = np.arange(t_len)[None] < lengths[:, None]
    steps = {"obs": jnp.asarray(np.stack([ep_id, -ep_id], -1), jnp.float32),
             "action": jnp.asarray(ep_id % 3, jnp.int32),
             "avail": jnp.asarray(np.arange(3)[None, None] <= (ep_id % 3)[..., None])}
    buf = buf.add(Episode(steps=steps, mask=jnp.asarray(mask)))
    out = jax.jit(lambda b, k: b.sample(k, 64).time_major())(buf, jax.random.PRNGKey(0))
    assert out.steps["obs"].shape == (t_len, 64, 2) and out.mask.shape == (t_len, 64)
    assert out.steps["avail"].dtype == jnp.bool_ and out.steps["action"].dtype == jnp.int32
    which = np.asarray(out.steps["obs"][0, :, 0]).astype(int) // 10  # the episode each sample is
    assert set(which) == {0, 1, 2}
    for leaf, stored in [(out.steps["obs"], steps["obs"]), (out.steps["action"], steps["action"]),
                         (out.steps["avail"], steps["avail"]), (out.mask, mask)]:
        np.testing.assert_array_equal(np.swapaxes(np.asarray(leaf), 0, 1), np.asarray(stored)[which])


def _transition(offset, step, n=2, a=3, s=4):
    """Two transitions of N agents whose every field encodes (offset, step, item): value = offset + 10 step + i."""
    v = offset + 10.0 * step + jnp.arange(2.0)
    return {"obs": jnp.broadcast_to(v[:, None, None], (2, n, 5)), "action": jnp.zeros((2, n), jnp.int32),
            "avail": jnp.ones((2, n, a), bool), "state": jnp.broadcast_to(v[:, None], (2, s)), "reward": v}


@jax.jit
def _scanned_runs(keys, offsets):
    """Per seed: a buffer of capacity 8, six scan steps of add 2 + sample 4; vmapped over seeds."""

    def run(key, offset):
        buf = ReplayBuffer.create(jax.tree.map(lambda x: x[0], _transition(0.0, 0)), capacity=8)

        def step(buf, t):
            buf = buf.add(_transition(offset, t))
            return buf, buf.sample(jax.random.fold_in(key, t), 4)["reward"]

        return jax.lax.scan(step, buf, jnp.arange(6))

    return jax.vmap(run)(keys, offsets)


def test_vmapped_over_seeds_in_jit_and_scan():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    offsets = jnp.array([1000.0, 2000.0, 3000.0])
    bufs, draws = _scanned_runs(keys, offsets)
    assert draws.shape == (3, 6, 4) and bufs.items["obs"].shape == (3, 8, 2, 5)
    for i in range(3):
        # seed i's buffer holds its own last four adds (steps 2 .. 5; capacity 8 wrapped once), nothing of others
        kept = float(offsets[i]) + np.array([10 * t + j for t in range(2, 6) for j in range(2)])
        np.testing.assert_array_equal(np.sort(np.asarray(bufs.items["reward"][i])), kept)
        np.testing.assert_array_equal(bufs.items["state"][i][:, 0], bufs.items["reward"][i])
        for t in range(6):
            d = np.asarray(draws[i, t]) - float(offsets[i])
            oldest = 10 * max(0, t - 3)  # after the add at step t: steps max(0, t - 3) .. t are stored
            assert np.all((d >= oldest) & (d <= 10 * t + 1) & (np.isin(d % 10, [0, 1])))
    assert not np.array_equal(draws[0] - 1000.0, draws[1] - 2000.0)  # seeds sample independently
