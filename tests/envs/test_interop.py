"""Interoperability (``envs.interop``): ours under JaxMARL's and PettingZoo's APIs, checked against our own steps and
PettingZoo's ``parallel_api_test``; the missing JaxMARL extra as a one-line usage error. The JaxMARL side (wrapped
environments stepped beside the originals) is in ``test_interop_jaxmarl.py``, which needs the extra."""
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import train
from envs import interop


def random_joint_actions(env, key):
    """[N] or [N, A_max]: one draw from each agent's space, padded to the widest."""
    keys = jax.random.split(key, env.num_agents)
    rows = [jnp.atleast_1d(space.sample(k)) for space, k in zip(env.action_spaces, keys)]
    width = max(r.shape[0] for r in rows)
    joint = jnp.stack([jnp.pad(r, (0, width - r.shape[0])) for r in rows])
    return joint[:, 0] if all(s.shape == () for s in env.action_spaces) else joint


def test_missing_jaxmarl_extra_is_a_one_line_usage_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # import jaxmarl -> ImportError, installed or not
    interop.jaxmarl_env_args.cache_clear()
    try:
        assert train.main(["--algo", "mappo", "--env", "jaxmarl:smax", "--quiet"]) == 2
        with pytest.raises(ValueError, match=r"pip install -e \.\[jaxmarl\]"):
            envs.make("jaxmarl:MPE_simple_spread_v3")
    finally:
        interop.jaxmarl_env_args.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jaxmarl:smax needs JaxMARL" in err and "pip install -e .[jaxmarl]" in err


def test_to_jaxmarl_gives_the_env_s_steps_as_agent_dicts():
    env = envs.make("mpe_speaker_listener", max_cycles=3)  # unlike agents: observations 3 and 11 wide, 3 and 5 actions
    wrapped = envs.to_jaxmarl(env)
    wrapped_step, env_step = jax.jit(wrapped.step), jax.jit(env.step)
    assert wrapped.agents == [f"agent_{i}" for i in range(env.num_agents)]
    key = jax.random.PRNGKey(0)
    obs_d, state_d = wrapped.reset(key)
    obs, state = env.reset(key)
    for t in range(4):  # through the automatic reset after the third step
        k_act, k_step = jax.random.split(jax.random.PRNGKey(t + 1))
        joint = random_joint_actions(env, k_act)
        ts = env_step(k_step, state, joint)
        actions = {a: (joint[i] if env.action_spaces[i].shape == () else joint[i, : env.action_spaces[i].shape[0]])
                   for i, a in enumerate(wrapped.agents)}
        obs_d, state_d, rew_d, done_d, info_d = wrapped_step(k_step, state_d, actions)
        for i, (a, space) in enumerate(zip(wrapped.agents, env.observation_spaces)):
            assert obs_d[a].shape == space.shape == wrapped.observation_space(a).shape
            np.testing.assert_array_equal(obs_d[a], ts.obs[i, : space.shape[0]])
            np.testing.assert_array_equal(info_d["final_obs"][a], ts.info["final_obs"][i, : space.shape[0]])
            assert float(rew_d[a]) == float(ts.reward[i]) and bool(done_d[a]) == bool(ts.done)
        assert bool(done_d["__all__"]) == (t == 2) and bool(info_d["truncated"]) == (t == 2)
        state = ts.state
    avail = wrapped.get_avail_actions(state_d)
    assert all(avail[a].shape == (env.action_spaces[i].n,) for i, a in enumerate(wrapped.agents)
               if env.action_spaces[i].shape == ())
    np.testing.assert_array_equal(wrapped.get_world_state(state_d), env.global_state(state))


@pytest.mark.parametrize("name,kwargs", [("mpe_spread", {"max_cycles": 10}),
                                         ("mpe_speaker_listener", {"continuous": True, "max_cycles": 10})])
def test_to_pettingzoo_passes_parallel_api_test_and_replays_the_env(name, kwargs):
    from pettingzoo.test import parallel_api_test

    env = envs.make(name, **kwargs)
    par = envs.to_pettingzoo(env)
    parallel_api_test(par, num_cycles=1000)
    # the same episode, stepped here and through the ParallelEnv: equal observations, rewards and ends
    obs_p, infos = par.reset(seed=3)
    key = jax.random.PRNGKey(3)
    key, k_reset = jax.random.split(key)
    obs, state = jax.jit(env.reset)(k_reset)
    step = jax.jit(env.step_env)
    done, t = False, 0
    while not done:
        for i, a in enumerate(par.possible_agents):
            space = par.observation_space(a)
            assert space.contains(obs_p[a])
            np.testing.assert_array_equal(obs_p[a], np.asarray(obs[i])[: space.shape[0]].astype(space.dtype))
        joint = random_joint_actions(env, jax.random.PRNGKey(100 + t))
        actions = {a: np.asarray(joint[i] if env.action_spaces[i].shape == ()
                                 else joint[i, : env.action_spaces[i].shape[0]]) for i, a in enumerate(par.agents)}
        if "action_mask" in infos.get(par.agents[0], {}):
            np.testing.assert_array_equal(infos[par.agents[0]]["action_mask"], env.avail_actions(state)[0])
        obs_p, rew_p, term_p, trunc_p, infos = par.step(actions)
        key, k_step = jax.random.split(key)
        ts = step(k_step, state, joint, env.default_params)
        np.testing.assert_allclose([rew_p[a] for a in par.possible_agents], ts.reward, rtol=0, atol=0)
        assert all(term_p[a] == bool(ts.terminated) and trunc_p[a] == bool(ts.truncated) for a in term_p)
        obs, state, done, t = ts.obs, ts.state, bool(ts.done), t + 1
    assert par.agents == [] and t <= kwargs.get("max_cycles", 25)
