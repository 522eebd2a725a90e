"""JaxMARL environments under our contract (``envs.from_jaxmarl``), stepped beside the originals: with the same keys
and actions, the wrapped environment gives JaxMARL's observations and rewards exactly for 1,000 random steps, resets
included. Needs the optional extra (``pip install -e .[jaxmarl]``; MABrax also needs brax): skipped without it."""
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
    """Step ``env`` (ours) and ``env.jaxmarl_env`` (JaxMARL's) with the same keys and random legal actions;
    -> per-step (ours, JaxMARL's) observations, rewards and dones, ours' terminated/truncated/final_obs, and the
    original's ``step_env`` observation (before its reset)."""
    orig = env.jaxmarl_env
    agents = orig.agents

    def actions_of(key, state):
        keys = jax.random.split(key, len(agents))
        discrete = all(type(orig.action_space(a)).__name__ == "Discrete" for a in agents)
        if discrete:  # uniform over JaxMARL's own legal actions where it has masks
            avail = envs.interop._defines_avail_actions(orig) and orig.get_avail_actions(state)
            out = {}
            for k, a in zip(keys, agents):
                n = orig.action_space(a).n
                logits = jnp.where(avail[a], 0.0, -jnp.inf) if avail else jnp.zeros(n)
                out[a] = jax.random.categorical(k, logits).astype(jnp.int32)
            joint = jnp.stack([out[a] for a in agents])
        else:
            out = {a: orig.action_space(a).sample(k) for k, a in zip(keys, agents)}
            width = env.num_actions
            joint = jnp.stack([jnp.pad(out[a], (0, width - out[a].shape[0])) for a in agents])
        return out, joint

    def body(carry, key):
        s_ours, s_orig = carry
        k_act, k_step = jax.random.split(key)
        act_dict, joint = actions_of(k_act, s_orig)
        ts = env.step(k_step, s_ours, joint)
        obs, s_next, rew, dones, _ = orig.step(k_step, s_orig, act_dict)
        before_reset = orig.step_env(jax.random.split(k_step)[0], s_orig, act_dict)[0]
        stack = lambda d: [d[a] for a in agents]  # noqa: E731
        return (ts.state, s_next), dict(ours_obs=ts.obs, orig_obs=stack(obs), ours_rew=ts.reward,
                                        orig_rew=jnp.stack(stack(rew)), orig_done=dones["__all__"],
                                        terminated=ts.terminated, truncated=ts.truncated,
                                        final_obs=ts.info["final_obs"], orig_final=stack(before_reset))

    k_reset, k_run = jax.random.split(key)
    obs, s_ours = env.reset(k_reset)
    obs_orig, s_orig = orig.reset(k_reset)
    for i, a in enumerate(agents):
        np.testing.assert_array_equal(obs[i, : obs_orig[a].shape[0]], obs_orig[a])
    _, out = jax.jit(lambda s, o, k: jax.lax.scan(body, (s, o), jax.random.split(k, steps)))(s_ours, s_orig, k_run)
    return jax.device_get(out)


def assert_identical(env, out):
    for i in range(env.num_agents):
        width = out["orig_obs"][i].shape[-1]
        np.testing.assert_array_equal(out["ours_obs"][:, i, :width], out["orig_obs"][i])
        np.testing.assert_array_equal(out["ours_obs"][:, i, width:], 0)  # the padding
        np.testing.assert_array_equal(out["final_obs"][:, i, :width], out["orig_final"][i])
    np.testing.assert_array_equal(out["ours_rew"], out["orig_rew"])
    done = out["terminated"] | out["truncated"]
    np.testing.assert_array_equal(done, out["orig_done"])
    assert not np.any(out["terminated"] & out["truncated"])


@pytest.fixture(scope="module")
def spread():
    return envs.make("jaxmarl:MPE_simple_spread_v3")


@pytest.fixture(scope="module")
def smax():
    return envs.make("jaxmarl:smax")  # HeuristicEnemySMAX on 3m


def test_mpe_spread_equals_jaxmarl_for_1000_random_steps(spread):
    out = side_by_side(spread, STEPS, jax.random.PRNGKey(0))
    assert_identical(spread, out)
    # MPE episodes end only at the time limit: truncated every max_steps + 1 steps (JaxMARL's count), never terminated
    assert not out["terminated"].any()
    np.testing.assert_array_equal(np.flatnonzero(out["truncated"]) + 1, np.arange(1, STEPS // 26 + 1) * 26)
    assert {c.__name__ for c in (caps.GlobalState, caps.FixedHorizon, caps.TeamReward) if caps.has(spread, c)} == {
        "GlobalState", "FixedHorizon", "TeamReward"}
    assert spread.num_steps == 26 and spread.team_reward == "sum"


def test_smax_3m_equals_jaxmarl_for_1000_random_steps(smax):
    out = side_by_side(smax, STEPS, jax.random.PRNGKey(1))
    assert_identical(smax, out)
    assert out["terminated"].any()  # random allies lose to the heuristic enemy long before the time limit
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
    assert envs.env_args("jaxmarl:smax")["map_name"] == "3m"
    with pytest.raises(ValueError, match="unknown SMAX map"):
        envs.make("jaxmarl:smax", map_name="99z")
    with pytest.raises(ValueError, match="valid names: .*jaxmarl:smax"):
        envs.make("jaxmarl:nope")


@pytest.mark.slow  # brax: about a minute of compiling on a CPU
def test_mabrax_ant_equals_jaxmarl_for_1000_random_steps():
    pytest.importorskip("brax")
    env = envs.make("jaxmarl:ant_4x2", episode_length=100)
    out = side_by_side(env, STEPS, jax.random.PRNGKey(3))
    assert_identical(env, out)
    assert out["truncated"].sum() + out["terminated"].sum() >= STEPS // 100


@pytest.mark.slow  # compiling MAPPO twice: a minute or more on a CPU
def test_train_py_runs_mappo_on_jaxmarl_envs(tmp_path):
    for name in ("jaxmarl:MPE_simple_spread_v3", "jaxmarl:smax"):
        argv = ["--algo", "mappo", "--env", name, "--seeds", "2", "--quiet", "--out", str(tmp_path / name[8:]),
                "--set", "total_steps=40", "--set", "num_envs=2", "--set", "rollout_len=10", "--set", "hidden_size=8"]
        assert train.main(argv) == 0
