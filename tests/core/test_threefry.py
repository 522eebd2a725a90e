"""Threefry-2x32 lowered without loops (``jaxmarl_core.threefry``): the hash against a plain-integer reference and
Random123's known answers, and whole programs' draws against JAX's own CPU lowering."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from jaxmarl_core import threefry

MASK = 0xFFFFFFFF
# Random123's known answers for Threefry-2x32, 20 rounds: (key, counter) -> output
KNOWN = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
         ((MASK, MASK), (MASK, MASK), (0x1CB996FC, 0xBB002BE7)),
         ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]


def reference(key, counter):
    """Threefry-2x32-20 on Python integers, round by round as Random123 writes it."""
    rotations = [13, 15, 26, 6, 17, 29, 16, 24]
    ks = [key[0], key[1], key[0] ^ key[1] ^ 0x1BD11BDA]
    x = [(counter[0] + ks[0]) & MASK, (counter[1] + ks[1]) & MASK]
    for r in range(20):
        x[0] = (x[0] + x[1]) & MASK
        d = rotations[r % 8]
        x[1] = (((x[1] << d) | (x[1] >> (32 - d))) & MASK) ^ x[0]
        if r % 4 == 3:
            s = r // 4 + 1
            x[0] = (x[0] + ks[s % 3]) & MASK
            x[1] = (x[1] + ks[(s + 1) % 3] + s) & MASK
    return tuple(x)


def test_reference_and_unrolled_hash_give_random123s_known_answers():
    for key, counter, expected in KNOWN:
        assert reference(key, counter) == expected
        out = jax.jit(threefry.hash_2x32)(*(np.uint32(v) for v in (*key, *counter)))
        assert tuple(int(v) for v in out) == expected


def test_unrolled_hash_equals_the_reference_on_random_words():
    words = np.random.default_rng(0).integers(0, 2 ** 32, size=(4, 64), dtype=np.uint64).astype(np.uint32)
    out = np.stack(jax.jit(threefry.hash_2x32)(*words))
    expected = np.array([reference(w[:2].tolist(), w[2:].tolist()) for w in words.T.astype(np.int64)]).T
    np.testing.assert_array_equal(out, expected)


def test_programs_draw_the_same_bits_as_jaxs_cpu_lowering_without_loops():
    script = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from jaxmarl_core import threefry

        def draws(key):
            k1, k2 = jax.random.split(key)
            return (jax.random.bits(k1, (7, 5)), jax.random.uniform(k2, (301,)),
                    jax.random.categorical(k2, jnp.zeros((4, 6))), jax.random.fold_in(k1, 9),
                    jax.random.permutation(k1, 10))

        key = jax.random.PRNGKey(3)
        rolled = jax.jit(lambda k: draws(k)).lower(key).compile()  # JAX's own lowering: a loop of 4 rounds
        threefry.use_unrolled()
        unrolled = jax.jit(lambda k: draws(k)).lower(key).compile()
        same = all(np.array_equal(a, b) for a, b in zip(jax.device_get(rolled(key)), jax.device_get(unrolled(key))))
        print(same, " while(" in rolled.as_text(), " while(" in unrolled.as_text())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.stdout.split() == ["True", "True", "False"], out.stdout + out.stderr


def test_unrolled_lowering_is_used_after_the_training_jits_compiler_options():
    from jaxmarl_core import sweep

    sweep.compiler_options()
    text = jax.jit(lambda k: jax.random.uniform(k, (3,))).lower(jax.random.PRNGKey(0)).compile().as_text()
    assert " while(" not in text
