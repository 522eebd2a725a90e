"""The environment contract (docs/design.md, "Environments") for every registered environment, under jit and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs

BATCH = 1024
SHORT = {"ipd": {"num_steps": 7}, "imp": {"num_steps": 7}, "coin_game": {"num_steps": 7}, "soccer": {"max_steps": 7},
         "grid_game_1": {"max_steps": 7}, "grid_game_2": {"max_steps": 7}}  # short horizons keep the episode loop cheap
SHORT.update({name: {"max_cycles": 7} for name in envs.list_envs() if name.startswith("mpe_")})
SHORT["gaussian_squeeze"] = {"n_agents": 8}  # the per-agent loops below cost a dispatch per agent
SHORT["ising"] = {"size": 3, "num_steps": 7}
SHORT["flicker"] = {"env": "two_step"}
SHORT["battle"] = {"map_size": 12, "n_per_side": 1, "max_cycles": 7}
SHORT["traffic_junction"] = {"num_cars": 3, "max_steps": 7}
SHORT["predator_prey"] = {"num_predators": 2, "num_prey": 1, "max_cycles": 7}
SHORT["dgn_battle"] = {"map_size": 10, "n_learners": 4, "n_enemies": 2, "max_cycles": 7}
SHORT["jungle"] = {"map_size": 8, "n_agents": 4, "n_foods": 2, "max_cycles": 7}
SHORT["routing"] = {"num_routers": 6, "num_packets": 4, "max_steps": 7}
SHORT.update({name: {"num_agents": 2, "num_steps": 7} for name in ("cleanup", "harvest")})
# episodes can also end (terminated) before the time limit, or end terminated at it (two_step)
ENDS_EARLY = {"soccer", "grid_game_1", "grid_game_2", "two_step", "flicker", "battle"}


def build(name):
    return envs.make(name, **SHORT.get(name, {}))


def horizon(env):
    return getattr(env, "num_steps", getattr(env, "max_steps", getattr(env, "max_cycles", 1)))


def padded_shape(spaces):
    """Heterogeneous agents' observations are zero-padded to the largest size (docs/design.md, "Environments")."""
    return tuple(max(dims) for dims in zip(*(s.shape for s in spaces)))


def unpadded(x, space):
    """x [B, *padded] -> [B, *space.shape]: one agent's true observation."""
    return x[(slice(None),) + tuple(slice(0, d) for d in space.shape)]


@pytest.mark.parametrize("name", envs.list_envs())
def test_reset_step_shapes_spaces_and_horizon_under_jit_vmap(name):
    env = build(name)
    params = env.default_params
    n = env.num_agents
    assert len(env.observation_spaces) == n and len(env.action_spaces) == n

    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(0), BATCH)
    obs, state = reset(keys, params)
    obs_shape = padded_shape(env.observation_spaces)
    assert obs.shape == (BATCH, n, *obs_shape)
    for i, space in enumerate(env.observation_spaces):
        assert bool(jnp.all(jax.vmap(space.contains)(unpadded(obs[:, i], space))))
        assert int(jnp.sum(obs[:, i] != 0)) == int(jnp.sum(unpadded(obs[:, i], space) != 0))  # padding is zero

    def sample_actions(key, state):
        ks = jax.random.split(key, n)
        return jnp.stack([space.sample(k) for space, k in zip(env.action_spaces, ks)])

    def step(key, state):
        k_act, k_env = jax.random.split(key)
        actions = sample_actions(k_act, state)
        return actions, env.step(k_env, state, actions, params)

    step_batch = jax.jit(jax.vmap(step))
    avail = jax.jit(jax.vmap(env.avail_actions, in_axes=(0, None)))(state, params)
    assert avail.dtype == jnp.bool_ and avail.shape == (BATCH, n, env.num_actions)
    gs = jax.jit(jax.vmap(env.global_state, in_axes=(0, None)))(state, params)
    assert gs.ndim == 2 and gs.shape[0] == BATCH

    length = horizon(env)
    elapsed = np.zeros(BATCH, int)
    for t in range(1, length + 1):
        keys = jax.random.split(jax.random.PRNGKey(t), BATCH)
        actions, ts = step_batch(keys, state)
        for i, space in enumerate(env.action_spaces):
            assert bool(jnp.all(jax.vmap(space.contains)(actions[:, i])))
        assert ts.obs.shape == (BATCH, n, *obs_shape)
        assert ts.reward.shape == (BATCH, n) and ts.reward.dtype == jnp.float32
        assert ts.terminated.shape == (BATCH,) and ts.terminated.dtype == jnp.bool_
        assert ts.truncated.shape == (BATCH,) and ts.truncated.dtype == jnp.bool_
        assert ts.info["final_obs"].shape == ts.obs.shape
        last = t == length
        if name in ENDS_EARLY:  # the time limit counts each episode's own steps; a done game restarts at once
            elapsed += 1
            done = np.asarray(ts.terminated | ts.truncated)
            np.testing.assert_array_equal(ts.truncated, (elapsed == length) & ~np.asarray(ts.terminated))
            np.testing.assert_array_equal(np.asarray(ts.obs)[~done], np.asarray(ts.info["final_obs"])[~done])
            reset_keys = jax.vmap(lambda k: jax.random.split(jax.random.split(k)[1])[1])(keys)
            np.testing.assert_array_equal(np.asarray(ts.obs)[done], np.asarray(reset(reset_keys, params)[0])[done])
            np.testing.assert_array_equal(np.asarray(ts.state.t)[done], 0)
            elapsed[done] = 0
            state = ts.state
            continue
        if length == 1:  # one-shot games end for real
            assert bool(jnp.all(ts.terminated)) and not bool(jnp.any(ts.truncated))
        else:  # iterated games end only by the time limit, exactly at the horizon
            assert not bool(jnp.any(ts.terminated))
            assert bool(jnp.all(ts.truncated == last))
        if not last:
            np.testing.assert_array_equal(ts.obs, ts.info["final_obs"])  # no reset mid-episode
        state = ts.state
    if name in ENDS_EARLY:
        return
    # after the last step every game has reset automatically, with the reset key the base class derives
    reset_keys = jax.vmap(lambda k: jax.random.split(jax.random.split(k)[1])[1])(keys)
    np.testing.assert_array_equal(ts.obs, reset(reset_keys, params)[0])
    np.testing.assert_array_equal(np.asarray(ts.state.t), 0)


@pytest.mark.parametrize("name", [n for n in envs.list_envs() if envs.make(n).deterministic])
def test_deterministic_envs_ignore_their_keys(name):
    """``deterministic`` lets batched rollouts share one key: reset and step must then not depend on it."""
    env = build(name)
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    (obs1, s1), (obs2, s2) = env.reset(k1), env.reset(k2)
    np.testing.assert_array_equal(obs1, obs2)
    actions = jnp.stack([space.sample(jax.random.PRNGKey(i)) for i, space in enumerate(env.action_spaces)])
    for _ in range(horizon(env)):
        ts1, ts2 = env.step(k1, s1, actions, env.default_params), env.step(k2, s2, actions, env.default_params)
        for a, b in zip(jax.tree.leaves(ts1), jax.tree.leaves(ts2)):
            np.testing.assert_array_equal(a, b)
        s1, s2 = ts1.state, ts2.state


def test_ipd_final_obs_holds_the_last_joint_action_in_each_perspective():
    env = envs.make("ipd", num_steps=2)
    obs, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    ts = step(jax.random.PRNGKey(1), state, jnp.array([0, 0]))
    ts = step(jax.random.PRNGKey(2), ts.state, jnp.array([0, 1]))  # last step: agent 0 C, agent 1 D
    assert bool(ts.truncated) and not bool(ts.terminated)
    np.testing.assert_array_equal(ts.info["final_obs"], [[0, 0, 1, 0, 0], [0, 0, 0, 1, 0]])  # CD / DC
    np.testing.assert_array_equal(ts.obs, obs)  # the reset observation
    assert int(ts.state.t) == 0 and int(ts.state.joint) == 0


def test_registry_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid names: .*ipd"):
        envs.make("ipdd")
    with pytest.raises(ValueError, match="unknown argument.*num_steps"):
        envs.make("ipd", horizon=3)
    with pytest.raises(ValueError, match="num_steps"):
        envs.make("imp", num_steps=0)
    with pytest.raises(ValueError, match="n_agents"):
        envs.make("matrix_trap", n_agents=5)
