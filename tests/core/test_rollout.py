"""The scanned rollout: a batched rollout equals a vmap of single-environment rollouts, recurrent policy states return
to their initial value exactly when an episode ends, and the sampler draws from the policy's distribution."""
import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxmarl_core.policies import sample_categorical
from jaxmarl_core.rollout import reset_carry, rollout

ENV = envs.make("ipd", num_steps=4)  # deterministic rules: the same actions give the same trajectory
PARAMS = ENV.default_params


def counting_policy(key, obs, count):
    """Deterministic and recurrent: plays 1 on odd step counts of the episode; the state counts steps."""
    del key
    actions = jnp.broadcast_to((count % 2)[..., None], obs.shape[:-1]).astype(jnp.int32)
    return actions, None, count + 1


def test_batched_rollout_equals_vmapped_rollouts_and_resets_policy_state():
    batch, steps = 3, 10
    key = jax.random.PRNGKey(0)
    carry = reset_carry(key, ENV, PARAMS, jnp.zeros((batch,), jnp.int32), batch_size=batch)
    final, tr = rollout(key, ENV, PARAMS, counting_policy, carry, steps, batched=True)

    def single(k):
        return rollout(k, ENV, PARAMS, counting_policy, reset_carry(k, ENV, PARAMS, jnp.zeros((), jnp.int32)),
                       steps)

    final_v, tr_v = jax.vmap(single, out_axes=(0, 1))(jax.random.split(key, batch))
    for a, b in zip(jax.tree.leaves(tr), jax.tree.leaves(tr_v)):
        np.testing.assert_array_equal(a, b)
    assert tr.obs.shape == (steps, batch, 2, 5)
    # Episodes of 4 steps: the step counter restarts at every episode end, so actions repeat 0, 1, 0, 1 per episode.
    np.testing.assert_array_equal(tr.action[:, 0, 0], [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(tr.truncated[:, 0], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(final.policy_state, [2, 2, 2])
    np.testing.assert_array_equal(final_v.policy_state, [2, 2, 2])


def test_sample_categorical_matches_the_softmax():
    n = 200_000
    for logits in (jnp.array([0.3, -1.2]), jnp.array([1.0, 0.0, -0.5, 2.0])):
        draws = sample_categorical(jax.random.PRNGKey(1), jnp.broadcast_to(logits, (n, logits.size)))
        freq = np.bincount(np.asarray(draws), minlength=logits.size) / n
        p = np.asarray(jax.nn.softmax(logits))
        assert np.all(np.abs(freq - p) < 4.5 * np.sqrt(p * (1 - p) / n) + 1e-4), (freq, p)


def test_a_continued_rollout_restarts_episodes_from_the_initial_policy_state():
    """A carry continued across rollouts (as on-policy training does) restores the policy's initial state at each
    episode end, not the state the second rollout started from."""
    batch = 3
    key = jax.random.PRNGKey(0)
    carry = reset_carry(key, ENV, PARAMS, jnp.zeros((batch,), jnp.int32), batch_size=batch)
    carry, _ = rollout(key, ENV, PARAMS, counting_policy, carry, 10, batched=True)
    np.testing.assert_array_equal(carry.policy_state, [2, 2, 2])  # two steps into the third 4-step episode
    # steps 10..17: episodes end after steps 11 and 15, then two more steps from a count of 0
    final, tr = rollout(key, ENV, PARAMS, counting_policy, carry, 8, batched=True)
    np.testing.assert_array_equal(final.policy_state, [2, 2, 2])
    np.testing.assert_array_equal(final.initial_policy_state, [0, 0, 0])
    np.testing.assert_array_equal(tr.truncated[:, 0], [0, 1, 0, 0, 0, 1, 0, 0])
