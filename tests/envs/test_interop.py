"""Interoperability (``envs.interop``): ours under JaxMARL's and PettingZoo's APIs, checked against our own steps and
PettingZoo's ``parallel_api_test``; the missing JaxMARL extra as a one-line usage error. The JaxMARL side (wrapped
environments stepped beside the originals) is in ``test_interop_jaxmarl.py``, which needs the extra."""
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
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


class ActorCritic(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(64)(nn.tanh(nn.Dense(64)(x))))
        return nn.Dense(self.num_actions)(h), nn.Dense(1)(h)[..., 0]


def make_ippo(env, num_envs=64, num_steps=26, updates=80, epochs=4, lr=2.5e-3, gamma=0.99, lam=0.95, clip=0.2):
    """A JaxMARL-style IPPO (one network shared by the agents, PPO's clipped surrogate on GAE) written against the
    ``MultiAgentEnv`` API only: ``agents``, ``observation_space``, ``action_space``, dict ``reset`` and ``step``.
    -> train(key) -> each update's mean undiscounted return per agent and rollout."""
    agents = env.agents
    net = ActorCritic(env.action_space(agents[0]).n)
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(lr))

    def batchify(d):
        return jnp.stack([d[a] for a in agents], axis=1)  # [E, N, ...]

    def train(key):
        key, k_init, k_reset = jax.random.split(key, 3)
        params = net.init(k_init, jnp.zeros(env.observation_space(agents[0]).shape))
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, num_envs))

        def rollout_step(carry, _):
            params, obs, state, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            x = batchify(obs)
            logits, value = net.apply(params, x)
            action = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[..., None], -1)[..., 0]
            obs, state, reward, dones, _ = jax.vmap(env.step)(
                jax.random.split(k_step, num_envs), state, {a: action[:, i] for i, a in enumerate(agents)})
            return (params, obs, state, key), (x, action, logp, value, batchify(reward), dones["__all__"])

        def update(carry, _):
            params, opt, obs, state, key = carry
            (_, obs, state, key), (x, action, logp, value, reward, done) = jax.lax.scan(
                rollout_step, (params, obs, state, key), None, num_steps)

            def gae(c, t):
                adv, next_value = c
                r, v, d = t
                delta = r + gamma * next_value * (1 - d[:, None]) - v
                adv = delta + gamma * lam * (1 - d[:, None]) * adv
                return (adv, v), adv

            last_value = net.apply(params, batchify(obs))[1]
            _, adv = jax.lax.scan(gae, (jnp.zeros_like(last_value), last_value), (reward, value, done), reverse=True)
            target, norm_adv = adv + value, (adv - adv.mean()) / (adv.std() + 1e-8)

            def loss(p):
                logits, v = net.apply(p, x)
                log_probs = jax.nn.log_softmax(logits)
                ratio = jnp.exp(jnp.take_along_axis(log_probs, action[..., None], -1)[..., 0] - logp)
                surrogate = jnp.minimum(ratio * norm_adv, jnp.clip(ratio, 1 - clip, 1 + clip) * norm_adv)
                entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, -1)
                return -surrogate.mean() + 0.5 * jnp.mean((v - target) ** 2) - 0.01 * entropy.mean()

            def epoch(c, _):
                p, o = c
                updates, o = tx.update(jax.grad(loss)(p), o)
                return (optax.apply_updates(p, updates), o), None

            (params, opt), _ = jax.lax.scan(epoch, (params, opt), None, epochs)
            return (params, opt, obs, state, key), reward.sum(0).mean()

        return jax.lax.scan(update, (params, tx.init(params), obs, state, key), None, updates)[1]

    return train


def test_jaxmarl_style_ippo_trains_on_mpe_spread_through_to_jaxmarl():
    """One agent, one landmark (``N=1``) keeps the budget small: the return per episode (26 steps, about -11 at
    random) must improve by a third within 80 updates of 64 episodes."""
    env = envs.to_jaxmarl(envs.make("mpe_spread", N=1, max_cycles=26))
    returns = np.asarray(jax.jit(make_ippo(env))(jax.random.PRNGKey(0)))
    first, last = returns[:5].mean(), returns[-10:].mean()
    assert first < -8 and last > first * 2 / 3, (first, last)
