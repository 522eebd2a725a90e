"""Coin Game rules, hand-computed from the LOLA reference implementation's rules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.coin_game import CoinGameState

ENV = envs.make("coin_game")
STEP = jax.jit(ENV.step_env)
RIGHT, LEFT, DOWN, UP = 0, 1, 2, 3


def state(red, blue, coin, owner, t=0):
    return CoinGameState(pos=jnp.array([red, blue], jnp.int32), coin=jnp.array(coin, jnp.int32),
                         coin_owner=jnp.int32(owner), t=jnp.int32(t))


def step(s, a0, a1, seed=0):
    return STEP(jax.random.PRNGKey(seed), s, jnp.array([a0, a1]), ENV.default_params)


def test_moves_wrap_around_the_torus():
    ts = step(state([0, 2], [2, 0], [1, 1], 0), RIGHT, DOWN)
    np.testing.assert_array_equal(ts.state.pos, [[0, 0], [0, 0]])
    ts = step(state([0, 0], [1, 0], [2, 2], 0), UP, LEFT)
    np.testing.assert_array_equal(ts.state.pos, [[2, 0], [1, 2]])
    np.testing.assert_array_equal(ts.reward, [0, 0])
    np.testing.assert_array_equal(ts.state.coin, [2, 2])  # not picked: the coin stays


@pytest.mark.parametrize("owner,picker,reward,own", [
    (0, 0, [1, 0], [True, False]),     # red picks its own coin
    (0, 1, [-2, 1], [False, False]),   # blue takes red's coin: red is punished
    (1, 0, [1, -2], [False, False]),   # red takes blue's coin
    (1, 1, [0, 1], [False, True]),     # blue picks its own coin
])
def test_pick_up_rewards_and_new_coin(owner, picker, reward, own):
    # the picker moves right onto the coin at (1, 1); the other agent moves away from it
    red, blue = ([1, 0], [2, 2]) if picker == 0 else ([2, 2], [1, 0])
    ts = step(state(red, blue, [1, 1], owner), RIGHT, RIGHT)
    np.testing.assert_array_equal(ts.reward, reward)
    np.testing.assert_array_equal(ts.info["own_coin"], own)
    np.testing.assert_array_equal(ts.info["other_coin"], [picker == 0 and owner == 1, picker == 1 and owner == 0])
    assert int(ts.state.coin_owner) == 1 - owner  # colours alternate
    assert not np.any(np.all(np.asarray(ts.state.pos) == np.asarray(ts.state.coin), axis=-1))


def test_both_on_the_coin_red_picks_it():
    ts = step(state([1, 0], [1, 2], [1, 1], 1), RIGHT, LEFT)  # both step onto (1, 1), a blue coin
    np.testing.assert_array_equal(ts.reward, [1, -2])


def test_observations_are_in_each_agents_perspective():
    s = state([0, 0], [2, 1], [1, 2], 0)
    obs = ENV._obs(s)
    assert obs.shape == (2, 3, 3, 4)
    assert obs[0, 0, 0, 0] == 1 and obs[0, 2, 1, 1] == 1 and obs[0, 1, 2, 2] == 1 and obs[0, ..., 3].sum() == 0
    assert obs[1, 2, 1, 0] == 1 and obs[1, 0, 0, 1] == 1 and obs[1, 1, 2, 3] == 1 and obs[1, ..., 2].sum() == 0
    np.testing.assert_array_equal(obs.sum(axis=(1, 2)), [[1, 1, 1, 0], [1, 1, 0, 1]])


def test_resets_and_new_coins_never_overlap_agents():
    keys = jax.random.split(jax.random.PRNGKey(0), 4096)
    _, states = jax.jit(jax.vmap(ENV.reset))(keys)
    pos, coin = np.asarray(states.pos), np.asarray(states.coin)
    assert np.all(np.any(pos[:, 0] != pos[:, 1], axis=-1))
    assert not np.any(np.all(pos == coin[:, None], axis=-1))
    # all 9 cells are used by the coin and both colours start
    assert len({tuple(c) for c in coin}) == 9 and set(np.asarray(states.coin_owner)) == {0, 1}
    s = state([1, 0], [2, 2], [1, 1], 0)
    spawned = jax.jit(jax.vmap(lambda k: STEP(k, s, jnp.array([RIGHT, RIGHT]), ENV.default_params).state.coin))(keys)
    spawned = np.asarray(spawned)
    assert not np.any(np.all(spawned == [1, 1], axis=-1)) and not np.any(np.all(spawned == [2, 0], axis=-1))
    assert len({tuple(c) for c in spawned}) == 7  # every free cell can receive the new coin
