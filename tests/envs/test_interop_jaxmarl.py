"""JaxMARL environments under our contract (``envs.from_jaxmarl``), stepped beside the originals: with the same keys
and actions, the wrapped environment gives JaxMARL's observations and rewards exactly for 1,000 random steps, resets
included. Needs the optional extra (``pip install -e .[jaxmarl]``; MABrax also needs brax): skipped without it."""
import dataclasses
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jaxmarl = pytest.importorskip("jaxmarl")

import envs  # noqa: E402
import train  # noqa: E402
from jaxmarl_core import capabilities as caps  # noqa: E402

STEPS = 1000


def side_by_side(env, steps, key):
    """Step JaxMARL's ``env.jaxmarl_env`` with random legal actions, then ours with the same keys and actions, each
    in its own jitted scan (one program each, as a user would run them); -> per step JaxMARL's observations, rewards,
    dones and pre-reset observations beside ours' observations, rewards, terminated, truncated and final_obs."""
    orig = env.jaxmarl_env
    agents = orig.agents
    discrete = all(type(orig.action_space(a)).__name__ == "Discrete" for a in agents)
    masked = discrete and envs.interop._defines_avail_actions(orig)

    def actions_of(key, state):
        keys = jax.random.split(key, len(agents))
        if discrete:  # uniform over JaxMARL's own legal actions where it has masks
            avail = orig.get_avail_actions(state) if masked else None
            out = {a: jax.random.categorical(k, jnp.where(avail[a], 0.0, -jnp.inf) if masked
                                             else jnp.zeros(orig.action_space(a).n)).astype(jnp.int32)
                   for k, a in zip(keys, agents)}
            return out, jnp.stack([out[a] for a in agents])
        out = {a: orig.action_space(a).sample(k) for k, a in zip(keys, agents)}
        return out, jnp.stack([jnp.pad(out[a], (0, env.num_actions - out[a].shape[0])) for a in agents])

    def orig_body(state, key):
        k_act, k_step = jax.random.split(key)
        act_dict, joint = actions_of(k_act, state)
        obs, state_next, rew, dones, _ = orig.step(k_step, state, act_dict)
        before_reset = orig.step_env(jax.random.split(k_step)[0], state, act_dict)[0]
        return state_next, dict(state=state, joint=joint, obs=[obs[a] for a in agents],
                                rew=jnp.stack([rew[a] for a in agents]), done=dones["__all__"],
                                final=[before_reset[a] for a in agents])

    def ours_body(state, inputs):
        key, joint = inputs
        ts = env.step(jax.random.split(key)[1], state, joint)
        return ts.state, dict(obs=ts.obs, rew=ts.reward, terminated=ts.terminated, truncated=ts.truncated,
                              final_obs=ts.info["final_obs"], won=ts.info.get("won", False))

    k_reset, k_run = jax.random.split(key)
    keys = jax.random.split(k_run, steps)
    obs_orig, s_orig = jax.jit(orig.reset)(k_reset)
    obs, s_ours = jax.jit(env.reset)(k_reset)
    for i, a in enumerate(agents):
        np.testing.assert_array_equal(obs[i, : obs_orig[a].shape[0]], obs_orig[a])
    _, theirs = jax.jit(lambda s, k: jax.lax.scan(orig_body, s, k))(s_orig, keys)
    _, ours = jax.jit(lambda s, k, a: jax.lax.scan(ours_body, s, (k, a)))(s_ours, keys, theirs["joint"])
    return jax.device_get(theirs), jax.device_get(ours)


def assert_identical(env, theirs, ours):
    for i in range(env.num_agents):
        width = theirs["obs"][i].shape[-1]
        np.testing.assert_array_equal(ours["obs"][:, i, :width], theirs["obs"][i])
        np.testing.assert_array_equal(ours["obs"][:, i, width:], 0)  # the padding
        np.testing.assert_array_equal(ours["final_obs"][:, i, :width], theirs["final"][i])
    np.testing.assert_array_equal(ours["rew"], theirs["rew"])
    np.testing.assert_array_equal(ours["terminated"] | ours["truncated"], theirs["done"])
    assert not np.any(ours["terminated"] & ours["truncated"])


@pytest.fixture(scope="module")
def spread():
    return envs.make("jaxmarl:MPE_simple_spread_v3")


@pytest.fixture(scope="module")
def smax():
    return envs.make("jaxmarl:smax")  # HeuristicEnemySMAX on 3m


def test_mpe_spread_equals_jaxmarl_for_1000_random_steps(spread):
    theirs, out = side_by_side(spread, STEPS, jax.random.PRNGKey(0))
    assert_identical(spread, theirs, out)
    # MPE episodes end only at the time limit: truncated every max_steps + 1 steps (JaxMARL's count), never terminated
    assert not out["terminated"].any()
    np.testing.assert_array_equal(np.flatnonzero(out["truncated"]) + 1, np.arange(1, STEPS // 26 + 1) * 26)
    assert {c.__name__ for c in (caps.GlobalState, caps.FixedHorizon, caps.TeamReward) if caps.has(spread, c)} == {
        "GlobalState", "FixedHorizon", "TeamReward"}
    assert spread.num_steps == 26 and spread.team_reward == "sum"


def test_smax_3m_equals_jaxmarl_for_1000_random_steps(smax):
    theirs, out = side_by_side(smax, STEPS, jax.random.PRNGKey(1))
    assert_identical(smax, theirs, out)
    assert out["terminated"].any()  # random allies lose to the heuristic enemy long before the time limit
    # a win: the episode's last step pays JaxMARL's won_battle_bonus (its SMAXLogWrapper's test: reward >= 1)
    np.testing.assert_array_equal(out["won"], theirs["done"] & (theirs["rew"][:, 0] >= 1.0))
    assert smax.num_agents == 3 and smax.num_actions == 8 and smax.team_reward == "common"
    assert caps.has(smax, caps.GlobalState) and not caps.has(smax, caps.FixedHorizon)


def test_smax_capabilities_are_jaxmarl_s_masks_and_world_state(smax):
    obs, state = smax.reset(jax.random.PRNGKey(2))
    orig = smax.jaxmarl_env
    avail = smax.avail_actions(state)
    for i, a in enumerate(orig.agents):
        np.testing.assert_array_equal(avail[i], orig.get_avail_actions(state)[a])
    np.testing.assert_array_equal(smax.global_state(state), orig.get_world_state(state))
    # at the time limit with every unit alive: truncated, not terminated (JaxMARL's SMAX, like its MPE, ends on the
    # step that starts with max_steps steps taken)
    short = envs.make("jaxmarl:smax", max_steps=2)
    step, stop = jax.jit(short.step), jnp.full(3, 4, jnp.int32)  # action 4: stop
    _, state = short.reset(jax.random.PRNGKey(2))
    ends = []
    for t in range(3):
        ts = step(jax.random.PRNGKey(3 + t), state, stop)
        ends.append((bool(ts.terminated), bool(ts.truncated)))
        state = ts.state
    assert ends == [(False, False), (False, False), (False, True)]
    # every enemy killed (health 0 before a step): the step ends the episode, pays JaxMARL's won-battle bonus and is
    # marked won; with the allies dead instead, lost
    for team, won in ((slice(3, 6), True), (slice(0, 3), False)):
        inner = state.state
        dead = inner.replace(unit_health=inner.unit_health.at[team].set(0.0))
        ts = step(jax.random.PRNGKey(9), state.replace(state=dead), stop)
        assert bool(ts.terminated) and bool(ts.info["won"]) == won and (float(ts.reward[0]) >= 1.0) == won
    assert envs.env_args("jaxmarl:smax")["map_name"] == "3m"
    assert smax.name == "jaxmarl:HeuristicEnemySMAX(3m)"
    with pytest.raises(ValueError, match="unknown SMAX map"):
        envs.make("jaxmarl:smax", map_name="99z")
    with pytest.raises(ValueError, match="valid names: .*jaxmarl:smax"):
        envs.make("jaxmarl:nope")


@pytest.mark.slow  # brax: minutes of compiling on a CPU
def test_mabrax_ant_steps_as_jaxmarl_from_each_of_1000_states():
    """Brax's contact dynamics amplify last-bit differences between two compiled programs (XLA fuses each its own
    way), so two 1,000-step trajectories of the same physics drift apart after a dozen steps. The check is
    therefore per step: from each state of JaxMARL's own random trajectory, ours steps to the same observation and
    reward up to that rounding (a few velocity entries in a thousand differ, by 1e-4 at most) and the same ends."""
    pytest.importorskip("brax")
    env = envs.make("jaxmarl:ant_4x2", episode_length=100)
    theirs, _ = side_by_side(env, STEPS, jax.random.PRNGKey(3))
    keys = jax.random.split(jax.random.split(jax.random.PRNGKey(3))[1], STEPS)
    step_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
    ts = jax.jit(lambda *xs: jax.lax.scan(lambda c, x: (c, env.step(*x)), 0, xs)[1])(
        step_keys, theirs["state"], theirs["joint"])
    for i in range(env.num_agents):
        np.testing.assert_allclose(ts.obs[:, i], theirs["obs"][i], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ts.info["final_obs"][:, i], theirs["final"][i], rtol=1e-4, atol=1e-4)
        assert np.mean(np.asarray(ts.obs[:, i]) == theirs["obs"][i]) > 0.99  # almost every entry bit for bit
    np.testing.assert_allclose(ts.reward, theirs["rew"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(ts.terminated | ts.truncated, theirs["done"])
    assert theirs["done"].sum() >= STEPS // 100 and not np.any(ts.terminated & ts.truncated)


@pytest.mark.slow  # compiling a learner on a JaxMARL environment: minutes on a CPU
@pytest.mark.parametrize("algo,name,env_args", [("mappo", "jaxmarl:MPE_simple_spread_v3", []),
                                                ("mappo", "jaxmarl:smax", []), ("happo", "jaxmarl:smax", []),
                                                ("happo", "jaxmarl:smax", ["--env-arg", "map_name=2s3z", "--set",
                                                                           "preset=harl_smac"]),
                                                ("happo", "jaxmarl:ant_4x2", ["--env-arg", "episode_length=20"])])
def test_train_py_runs_on_jaxmarl_envs(algo, name, env_args, tmp_path):
    if "ant" in name:
        pytest.importorskip("brax")
    argv = ["--algo", algo, "--env", name, *env_args, "--seeds", "2", "--quiet", "--out", str(tmp_path / "run"),
            "--set", "total_steps=40", "--set", "num_envs=2", "--set", "rollout_len=10", "--set", "hidden_size=8"]
    assert train.main(argv) == 0
    with open(tmp_path / "run" / "metrics.csv") as f:
        header = f.readline().strip().split(",")
    assert any(c.startswith("win_rate") for c in header) == ("smax" in name)  # SMAX's wins / episodes ended


def test_harl_suite_presets_pick_the_task_from_the_jaxmarl_environment():
    """``preset=harl_smac`` on a SMAX map is that map's preset; ``harl_mamujoco`` on a MABrax task likewise; a
    HalfCheetah split JaxMARL does not have is refused with the reason."""
    from algos import onpolicy

    for map_name in ("3m", "2s3z", "3s5z"):
        env = envs.make("jaxmarl:smax", map_name=map_name)
        for variant in ("happo", "hatrpo", "mappo"):
            suite = onpolicy.default_config(env, variant, preset="harl_smac")
            named = onpolicy.default_config(env, variant, preset=f"harl_smac_{map_name}")
            assert suite == dataclasses.replace(named, preset="harl_smac")
            suite.validate(env)
    assert onpolicy.default_config(envs.make("jaxmarl:smax", map_name="3m"), "mappo", preset="harl_smac").share_params
    with pytest.raises(ValueError, match="jaxmarl:HeuristicEnemySMAX\\(5m_vs_6m\\) is none of them"):
        onpolicy.default_config(envs.make("jaxmarl:smax", map_name="5m_vs_6m"), "happo", preset="harl_smac")
    if importlib.util.find_spec("brax") is not None:
        env = envs.make("jaxmarl:ant_4x2")
        assert onpolicy.default_config(env, "hatrpo", preset="harl_mamujoco").trpo.kl_threshold == 0.005
        with pytest.raises(ValueError, match="halfcheetah_6x1 is none of them"):
            onpolicy.default_config(envs.make("jaxmarl:halfcheetah_6x1"), "happo", preset="harl_mamujoco")


@pytest.mark.parametrize("ours,theirs", [("mpe_spread", "MPE_simple_spread_v3"),
                                         ("mpe_reference", "MPE_simple_reference_v3"),
                                         ("mpe_speaker_listener", "MPE_simple_speaker_listener_v4"),
                                         ("mpe_world_comm", "MPE_simple_world_comm_v3"),
                                         ("mpe_crypto", "MPE_simple_crypto_v3")])
def test_continuous_mpe_declares_the_soft_one_hot_blocks_of_our_mpe(ours, theirs):
    """``SimplexActions`` of JaxMARL's continuous MPE: the same blocks as our own (mpe2's) scenario, covering each
    agent's Box; discrete agents one block of their actions. MADDPG's Gumbel relaxation then accepts it."""
    from algos import offpolicy

    env = envs.make("jaxmarl:" + theirs, action_type="Continuous")
    assert caps.has(env, caps.SimplexActions)
    assert env.action_simplices == envs.make(ours, continuous=True).action_simplices
    assert [sum(b) for b in env.action_simplices] == [s.shape[0] for s in env.action_spaces]
    discrete = envs.make("jaxmarl:" + theirs, action_type="Discrete")
    assert discrete.action_simplices == tuple((s.n,) for s in discrete.action_spaces)
    if ours == "mpe_spread":
        offpolicy.default_config(env, "maddpg").validate(env)
