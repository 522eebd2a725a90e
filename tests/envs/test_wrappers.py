"""The flicker wrapper: blanked observations at the rate asked, everything else the wrapped environment's, and the
capabilities that blanking leaves valid."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.wrappers import flicker
from jaxmarl_core import capabilities as caps


def test_flicker_blanks_all_agents_at_the_rate_asked_and_keeps_the_rest():
    inner = envs.make("two_step")
    env = envs.make("flicker", env="two_step", prob=0.3)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    obs, state = jax.vmap(env.reset)(keys)
    blank = np.all(np.asarray(obs) == 0, axis=(1, 2))
    assert abs(blank.mean() - 0.3) < 0.03
    np.testing.assert_array_equal(np.asarray(obs)[~blank], np.asarray(inner.reset(keys[0])[0])[None].repeat(
        (~blank).sum(), 0))
    actions = jnp.ones((4000, 2), jnp.int32)  # agent 0 to 2B, then (1, 1): 8
    ts = jax.vmap(env.step)(keys, state, actions)
    np.testing.assert_array_equal(ts.reward, 0.0)
    ts = jax.vmap(env.step)(jax.random.split(jax.random.PRNGKey(1), 4000), ts.state, actions)
    np.testing.assert_array_equal(ts.reward, 8.0)
    assert bool(jnp.all(ts.terminated))
    np.testing.assert_array_equal(env.global_state(state), inner.global_state(state))  # never blanked


def test_flicker_keeps_the_capabilities_blanking_leaves_valid():
    two_step = envs.make("flicker", env="two_step")
    assert caps.has(two_step, caps.GlobalState, caps.TabularModel, caps.FixedHorizon, caps.Discounted)
    assert two_step.num_steps == 2 and two_step.name == "flicker_two_step"
    ipd = flicker(envs.make("ipd"))
    assert not caps.has(ipd, caps.ExactValue) and caps.has(ipd, caps.FixedHorizon)
    assert flicker(envs.make("mpe_spread")) == envs.make("flicker")
    with pytest.raises(ValueError, match="prob"):
        envs.make("flicker", prob=1.5)
    with pytest.raises(ValueError, match="another"):
        envs.make("flicker", env="flicker")
