"""The learner's view: one structured record per step (observations, available actions, the global state once per
environment, episode starts), ``final_obs`` records of the state reached before a reset, Box clipping, and rollouts
over records."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmarl_core.env import Environment, TimeStep
from jaxmarl_core.learner_view import LearnerObs, LearnerView, padded_action_mask
from jaxmarl_core.rollout import reset_carry, rollout
from jaxmarl_core.spaces import Box, Discrete


@dataclasses.dataclass(frozen=True)
class Countdown(Environment):
    """Two agents with 3 and 2 actions; the state counts steps from ``start`` (drawn in [0, 2)) and the episode
    terminates at 3. Observations [2, 1, 2] (flattened by the view); action 0 is unavailable on odd counts."""

    @property
    def num_agents(self):
        return 2

    @property
    def observation_spaces(self):
        return (Box(0.0, 10.0, (1, 2)),) * 2

    @property
    def action_spaces(self):
        return Discrete(3), Discrete(2)

    def _obs(self, t):
        return jnp.stack([jnp.array([[t, 1.0]]), jnp.array([[t, 2.0]])]).astype(jnp.float32)

    def reset_env(self, key, params):
        t = jax.random.randint(key, (), 0, 2)
        return self._obs(t), t

    def step_env(self, key, state, actions, params):
        t = state + 1
        return TimeStep(obs=self._obs(t), state=t, reward=jnp.ones(2) * actions, terminated=t >= 3,
                        truncated=jnp.asarray(False), info={})

    def avail_actions(self, state, params=None):
        return jnp.array([[True, True, True], [True, True, False]]).at[:, 0].set(state % 2 == 0)

    def global_state(self, state, params=None):
        return jnp.array([state, 10 * state], jnp.int32)


@dataclasses.dataclass(frozen=True)
class NoCapabilities(Countdown):
    avail_actions = None
    global_state = None


@dataclasses.dataclass(frozen=True)
class Pushes(Environment):
    """Box actions of 2 and 1 dimensions; the state is the (padded) action last received, flattened."""

    @property
    def num_agents(self):
        return 2

    @property
    def observation_spaces(self):
        return (Box(-1.0, 1.0, (1,)),) * 2

    @property
    def action_spaces(self):
        return Box(-1.0, 1.0, (2,)), Box(0.0, 0.5, (1,))

    def reset_env(self, key, params):
        return jnp.zeros((2, 1)), jnp.zeros(4)

    def step_env(self, key, state, actions, params):
        return TimeStep(obs=jnp.zeros((2, 1)), state=actions.reshape(-1), reward=jnp.zeros(2),
                        terminated=jnp.asarray(False), truncated=jnp.asarray(False), info={})

    def global_state(self, state, params=None):
        return state


def test_reset_records_flat_observations_avail_and_the_global_state_once():
    view = LearnerView(Countdown(), with_state=True)
    assert (view.obs_dim, view.num_actions, view.state_dim, view.discrete) == (2, 3, 2, True)
    rec, state = view.reset(jax.random.PRNGKey(0))
    assert rec.obs.shape == (2, 2) and rec.global_state.shape == (2,) and rec.global_state.dtype == jnp.float32
    np.testing.assert_array_equal(rec.global_state, [state, 10 * state])
    np.testing.assert_array_equal(rec.avail, Countdown().avail_actions(state))
    assert bool(rec.first)
    batch = reset_carry(jax.random.PRNGKey(1), view, view.default_params, batch_size=5).obs
    assert batch.global_state.shape == (5, 2) and batch.obs.shape == (5, 2, 2) and batch.first.shape == (5,)
    assert LearnerView(Countdown()).reset(jax.random.PRNGKey(0))[0].global_state is None


def test_final_obs_records_the_state_reached_before_the_reset():
    view = LearnerView(Countdown(), with_state=True)
    state = jnp.asarray(2)
    ts = view.step(jax.random.PRNGKey(3), state, jnp.array([1, 1]))
    final = ts.info["final_obs"]
    assert bool(ts.done) and bool(ts.obs.first) and not bool(final.first)
    np.testing.assert_array_equal(final.global_state, [3.0, 30.0])  # the terminal state, not the fresh one
    np.testing.assert_array_equal(final.obs, [[3.0, 1.0], [3.0, 2.0]])
    np.testing.assert_array_equal(final.avail[:, 0], [False, False])  # count 3 is odd
    np.testing.assert_array_equal(ts.obs.global_state, [ts.state, 10 * ts.state])
    mid = view.step(jax.random.PRNGKey(3), jnp.asarray(0), jnp.array([1, 1]))
    assert not bool(mid.done) and not bool(mid.obs.first)
    np.testing.assert_array_equal(mid.obs.global_state, mid.info["final_obs"].global_state)


def test_without_available_actions_every_action_of_each_space_is_legal():
    env = NoCapabilities()
    np.testing.assert_array_equal(padded_action_mask(env.action_spaces), [[True, True, True], [True, True, False]])
    rec, _ = LearnerView(env).reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(rec.avail, [[True, True, True], [True, True, False]])
    with pytest.raises(ValueError, match="GlobalState"):
        LearnerView(env, with_state=True)


def test_box_actions_are_clipped_to_the_bounds_and_padded_dimensions_to_zero():
    view = LearnerView(Pushes(), with_state=True)
    assert not view.discrete and view.num_actions == 2
    rec, state = view.reset(jax.random.PRNGKey(0))
    assert rec.avail is None
    ts = view.step(jax.random.PRNGKey(0), state, jnp.array([[3.0, -0.5], [0.7, 9.0]]))
    np.testing.assert_array_equal(ts.obs.global_state, [1.0, -0.5, 0.5, 0.0])


def test_a_batched_rollout_over_records_stacks_every_field_and_resets_the_policy_state():
    view = LearnerView(Countdown(), with_state=True)
    params = view.default_params

    def policy(key, rec, h):  # first legal action; the hidden state counts steps since the episode began
        return jnp.argmax(rec.avail, axis=-1), h, h + 1

    carry = reset_carry(jax.random.PRNGKey(0), view, params, jnp.zeros(3), batch_size=3)
    carry, traj = rollout(jax.random.PRNGKey(1), view, params, policy, carry, 6, batched=True)
    assert isinstance(traj.obs, LearnerObs) and traj.obs.obs.shape == (6, 3, 2, 2)
    assert traj.obs.global_state.shape == (6, 3, 2) and traj.next_obs.first.shape == (6, 3)
    count = np.asarray(traj.obs.global_state[..., 0])
    first, steps = np.asarray(traj.obs.first), np.asarray(traj.extras)
    np.testing.assert_array_equal(steps[1:], np.where(first[1:], 0, steps[:-1] + 1))
    np.testing.assert_array_equal(np.asarray(traj.next_obs.global_state[..., 0]), count + 1)
    done = np.asarray(traj.terminated)
    np.testing.assert_array_equal(np.asarray(traj.obs.first[1:]), done[:-1])
    assert done.any() and not np.asarray(traj.next_obs.first).any()
    np.testing.assert_array_equal(np.asarray(traj.action), np.where(count % 2 == 0, 0, 1)[..., None] * [1, 1])
