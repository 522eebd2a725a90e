"""The QMIX paper's two-step game: transitions, the common rewards of both second states, and its exact model."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxmarl_core.tabular import TabularModel

# (agent 0's first action, joint action in the second state) -> reward of the second step, from the paper's figure
SECOND_STEP = {0: {(0, 0): 7, (0, 1): 7, (1, 0): 7, (1, 1): 7}, 1: {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 8}}


def test_first_action_of_agent_0_chooses_the_second_state_and_its_payoffs():
    env = envs.make("two_step")
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(obs, [[1, 0, 0], [1, 0, 0]])
    for first, second in itertools.product((0, 1), repeat=2):
        ts = step(jax.random.PRNGKey(1), state, jnp.array([first, second]))
        np.testing.assert_array_equal(ts.reward, [0, 0])
        assert not bool(ts.terminated) and not bool(ts.truncated)
        want_state = [0, 1, 0] if first == 0 else [0, 0, 1]  # agent 1's first action changes nothing
        np.testing.assert_array_equal(ts.obs, [want_state, want_state])
        np.testing.assert_array_equal(env.global_state(ts.state), want_state)
        for joint, pay in SECOND_STEP[first].items():
            end = step(jax.random.PRNGKey(2), ts.state, jnp.array(joint))
            np.testing.assert_array_equal(end.reward, [pay, pay], err_msg=f"{first} then {joint}")
            assert bool(end.terminated) and not bool(end.truncated)
            np.testing.assert_array_equal(end.info["final_obs"], [want_state, want_state])
            np.testing.assert_array_equal(end.obs, obs)  # a fresh episode


def test_tabular_model_agrees_with_the_steps():
    env = envs.make("two_step")
    model = env.tabular_model()
    assert isinstance(model, TabularModel)
    np.testing.assert_array_equal(model.initial, [1, 0, 0])
    np.testing.assert_array_equal(model.transition[0, 0, :, 1], [1, 1])
    np.testing.assert_array_equal(model.transition[0, 1, :, 2], [1, 1])
    assert float(model.transition[1:].sum()) == 0.0  # the second states end the episode
    for first in (0, 1):
        for joint, pay in SECOND_STEP[first].items():
            np.testing.assert_array_equal(model.reward[1 + first, joint[0], joint[1]], [pay, pay])
