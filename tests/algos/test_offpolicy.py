"""Off-policy actor-critics (DDPG, MADDPG, MATD3, HADDPG, HATD3): the Gumbel-softmax relaxation against its sampling
distribution and closed-form Jacobian, the sequential-update identities (one agent: HATD3 is TD3, checked against a
TD3 step written here from Fujimoto et al.'s Algorithm 1; fixed order with frozen actions: HADDPG's actor step is
MADDPG's), learning a one-step continuous game with a known optimum, the command line and bad input.

Training runs ``jax.jit(vmap(trainer.update))`` in a Python loop over updates with the keys ``Trainer`` uses.
"""
import dataclasses
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import algos
import envs
import train
from algos import offpolicy
from algos.offpolicy import crossplay, learner
from jaxmarl_core.distributions import block_softmax, gumbel_softmax
from jaxmarl_core.env import Environment, TimeStep
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.spaces import Box

TINY = dict(hidden_size=16, hidden_layers=2, buffer_size=256, batch_size=32, learning_starts=64, warmup_steps=0,
            num_envs=2, rollout_len=5, num_sgd=1)


def make(env, variant, **kw):
    cfg = dataclasses.replace(offpolicy.default_config(env, variant), **{**TINY, **kw})
    cfg.validate(env)
    return cfg


def parts(env, cfg, seed=0):
    """(model, actor tx, critic tx, nets, a random batch of 32 transitions) for one config."""
    view = LearnerView(env)
    model = learner.build_model(view, cfg)
    atx, ctx = learner.optimiser(cfg.actor_lr, cfg.max_grad_norm), learner.optimiser(cfg.critic_lr, cfg.max_grad_norm)
    state = jax.jit(functools.partial(learner.init, view, model, cfg, env.default_params, atx, ctx))(
        jax.random.PRNGKey(seed))
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), 5)
    b, n = 32, model.num_agents
    low, high = np.asarray(model.low), np.asarray(model.high)
    rec = jax.tree.map(lambda x: jnp.broadcast_to(x[0], (b,) + x.shape[1:]), state.carry.obs)
    obs = rec.replace(obs=jax.random.normal(keys[0], rec.obs.shape))
    next_obs = rec.replace(obs=jax.random.normal(keys[1], rec.obs.shape))
    action = low + jax.random.uniform(keys[2], (b, n, model.num_actions)) * (high - low)
    batch = learner.Sample(obs=obs, action=action, reward=jax.random.normal(keys[3], (b, n)),
                           terminated=jax.random.bernoulli(keys[4], 0.2, (b,)), next_obs=next_obs)
    return model, atx, ctx, state.nets, batch


def allclose(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **{"rtol": 1e-5, "atol": 1e-6, **kw})


# -- the Gumbel-softmax relaxation ------------------------------------------------------------------------------------
BLOCKS = jnp.array([0, 0, 0, 0, 0, 1, 1, 1, -1])  # MPE's 5 movement values, a 3-way message, one padded entry
LOGITS = jnp.array([0.3, -1.0, 1.2, 0.0, 0.5, 2.0, -0.5, 0.1, 7.0])


def test_hard_gumbel_samples_follow_the_blocks_categoricals():
    n = 40_000
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    hard = jax.jit(jax.vmap(lambda k: gumbel_softmax(k, LOGITS, BLOCKS, 2, hard=True)))(keys)
    soft = jax.jit(jax.vmap(lambda k: gumbel_softmax(k, LOGITS, BLOCKS, 2)))(keys)
    for block in (0, 1):
        inside = np.asarray(BLOCKS == block)
        probs = np.asarray(jax.nn.softmax(LOGITS[inside]))
        freq = np.asarray(hard[:, inside]).mean(0)
        assert np.all(np.abs(freq - probs) <= 4 * np.sqrt(probs * (1 - probs) / n)), (freq, probs)  # 4 std errors
        np.testing.assert_allclose(np.asarray(hard[:, inside]).sum(1), 1.0)
        np.testing.assert_allclose(np.asarray(soft[:, inside]).sum(1), 1.0, rtol=1e-5)
        # the soft sample's argmax is the hard sample (same noise)
        np.testing.assert_array_equal(np.argmax(np.asarray(soft[:, inside]), 1),
                                      np.argmax(np.asarray(hard[:, inside]), 1))
    assert float(jnp.max(jnp.abs(hard[:, -1]))) == 0.0 and float(jnp.max(jnp.abs(soft[:, -1]))) == 0.0


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_gumbel_softmax_gradient_is_the_softmax_jacobian(temperature):
    """d y / d logits = (diag(y) - y y^T) / temperature within each block, 0 across blocks; the straight-through
    sample has the soft sample's gradient; both agree with central finite differences."""
    key, w = jax.random.PRNGKey(3), jnp.linspace(-1.0, 2.0, 9)

    def f(logits, hard):
        return jnp.dot(w, gumbel_softmax(key, logits, BLOCKS, 2, temperature, hard))

    y = np.asarray(gumbel_softmax(key, LOGITS, BLOCKS, 2, temperature), np.float64)
    jac = np.zeros((9, 9))
    for block in (0, 1):
        idx = np.flatnonzero(np.asarray(BLOCKS) == block)
        yb = y[idx]
        jac[np.ix_(idx, idx)] = (np.diag(yb) - np.outer(yb, yb)) / temperature
    want = np.asarray(w, np.float64) @ jac
    np.testing.assert_allclose(np.asarray(jax.grad(f)(LOGITS, False)), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.grad(f)(LOGITS, True)), want, rtol=1e-4, atol=1e-6)
    eps = 1e-2
    fd = [(f(LOGITS.at[i].add(eps), False) - f(LOGITS.at[i].add(-eps), False)) / (2 * eps) for i in range(9)]
    np.testing.assert_allclose(np.asarray(fd), want, rtol=2e-2, atol=2e-4)


def test_mpe_action_blocks_and_softmax_mode():
    env = envs.make("mpe_speaker_listener", continuous=True)
    assert env.action_simplices == ((3,), (5,))
    assert envs.make("mpe_reference", continuous=True).action_simplices == ((5, 10), (5, 10))
    model = learner.build_model(LearnerView(env), make(env, "maddpg"))
    np.testing.assert_array_equal(np.asarray(model.blocks), [[0, 0, 0, -1, -1], [0, 0, 0, 0, 0]])
    raw = jnp.arange(10.0).reshape(1, 2, 5)
    mode = model.action(raw, slice(None), None, None)
    np.testing.assert_allclose(np.asarray(mode[0, 0, :3]), np.asarray(jax.nn.softmax(raw[0, 0, :3])), rtol=1e-6)
    assert float(jnp.abs(mode[0, 0, 3:]).max()) == 0.0
    np.testing.assert_allclose(np.asarray(block_softmax(raw[0, 1], jnp.zeros(5, int), 1)),
                               np.asarray(jax.nn.softmax(raw[0, 1])), rtol=1e-6)


# -- the sequential-update identities ---------------------------------------------------------------------------------
def test_one_agent_hatd3_is_td3():
    env = envs.make("mpe_simple", continuous=True)
    cfg = make(env, "hatd3")
    model, atx, ctx, nets, batch = parts(env, cfg)
    step = jax.jit(lambda n, k: learner.learn_step(model, cfg, atx, ctx, n, batch, k))
    low, high = jnp.asarray(model.low[0]), jnp.asarray(model.high[0])
    half = (high - low) / 2

    def mu(p, o):
        return low + (model.actor.apply(p, o) + 1.0) * 0.5 * (high - low)

    def q(p, o, a):
        return model.critic.apply(p, jnp.concatenate([o, a], -1))[:, 0]

    first = functools.partial(jax.tree.map, lambda leaf: leaf[0])
    # the reference TD3's own state: actor, critics (Q_1, Q_2 as a pair), targets, one Adam each
    actor, critics = first(nets.actor), first(nets.critic)
    actor_t, critics_t = actor, critics
    adam_a, adam_c = optax.adam(cfg.actor_lr), optax.adam(cfg.critic_lr)
    opt_a, opt_c = adam_a.init(actor), adam_c.init(critics)
    o, a, o2 = batch.obs.obs[:, 0], batch.action[:, 0], batch.next_obs.obs[:, 0]

    def pair(ps, k):
        return jax.tree.map(lambda leaf: leaf[k], ps)

    @jax.jit
    def critic_update(critics, critics_t, actor_t, opt_c, key):
        # Algorithm 1: target smoothing (learn_step draws the noise from its critic key's second half)
        k_noise = jax.random.split(jax.random.split(key)[0])[1]
        eps = jax.random.normal(k_noise, (o.shape[0], 1, model.num_actions))[:, 0] * cfg.target_noise * half
        a2 = jnp.clip(mu(actor_t, o2) + jnp.clip(eps, -cfg.noise_clip * half, cfg.noise_clip * half), low, high)
        y = batch.reward[:, 0] + cfg.gamma * (1.0 - batch.terminated) * jnp.minimum(
            q(pair(critics_t, 0), o2, a2), q(pair(critics_t, 1), o2, a2))
        grads = jax.grad(lambda cs: sum(jnp.mean((q(pair(cs, k), o, a) - y) ** 2) for k in (0, 1)))(critics)
        upd, opt_c = adam_c.update(grads, opt_c, critics)
        return optax.apply_updates(critics, upd), opt_c

    @jax.jit
    def actor_update(actor, critics, opt_a):  # the delayed actor step on Q_1
        grads = jax.grad(lambda p: -jnp.mean(q(pair(critics, 0), o, mu(p, o))))(actor)
        upd, opt_a = adam_a.update(grads, opt_a, actor)
        return optax.apply_updates(actor, upd), opt_a

    for it in (1, 2, 3, 4):
        key = jax.random.PRNGKey(10 + it)
        nets, _ = step(nets, key)
        critics, opt_c = critic_update(critics, critics_t, actor_t, opt_c, key)
        if it % cfg.policy_delay == 0:  # the actor and the targets
            actor, opt_a = actor_update(actor, critics, opt_a)
            actor_t = optax.incremental_update(actor, actor_t, cfg.tau)
            critics_t = optax.incremental_update(critics, critics_t, cfg.tau)
        allclose(first(nets.critic), critics, rtol=2e-4, atol=2e-6)
        allclose(first(nets.actor), actor, rtol=2e-4, atol=2e-6)
        allclose(first(nets.critic_target), critics_t, rtol=2e-4, atol=2e-6)
        allclose(first(nets.actor_target), actor_t, rtol=2e-4, atol=2e-6)
    assert int(nets.it) == 4


@pytest.fixture(scope="module")
def spread_actor_updates():
    """HADDPG on continuous spread in the fixed order 0, 1, 2, and the same actor update all at once against the
    batch's actions (MADDPG's), on a batch whose actions are the current policies' (no noise)."""
    env = envs.make("mpe_spread", continuous=True)
    ha = make(env, "haddpg", fixed_order=True, actor_lr=0.05)
    ma = dataclasses.replace(ha, sequential=False)
    model, atx, _, nets, batch = parts(env, ha)
    batch = batch.replace(action=learner.policy_actions(model, nets.actor, batch.obs, None))
    key = jax.random.PRNGKey(7)

    @functools.partial(jax.jit, static_argnums=(0, 2))
    def run(cfg, batch, refresh):
        return learner.update_actors(model, cfg, atx, nets, nets.critic, batch, key, refresh=refresh)

    return model, nets, batch, lambda cfg, b=batch, refresh=True: run(cfg, b, refresh), ha, ma


def test_fixed_order_frozen_actions_haddpg_actor_step_is_maddpgs(spread_actor_updates):
    _, nets, batch, run, ha, ma = spread_actor_updates
    frozen, parallel = run(ha, refresh=False), run(ma)
    allclose(frozen[0], parallel[0])
    allclose(frozen[1], parallel[1])
    for agent in range(3):  # every actor moved
        diff = jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x[agent] - y[agent]))), frozen[0], nets.actor)
        assert max(jax.tree.leaves(diff)) > 1e-3


def test_haddpg_agents_see_the_already_updated_actions_before_them(spread_actor_updates):
    """Agent 1 (second in the order) steps against agent 0's updated action and agent 2's current one: MADDPG's
    step on a batch holding those actions, and not the step on the old actions."""
    model, nets, batch, run, ha, ma = spread_actor_updates
    seq = run(ha)
    actor0 = jax.tree.map(lambda leaf: leaf[0], seq[0])
    new0 = model.action(model.actor.apply(actor0, batch.obs.obs[:, 0]), 0, None, None)
    moved = run(ma, batch.replace(action=batch.action.at[:, 0].set(new0)))
    second = functools.partial(jax.tree.map, lambda leaf: leaf[1])
    allclose(second(seq[0]), second(moved[0]))
    stale = second(run(ma)[0])
    gap = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(second(seq[0])), jax.tree.leaves(stale)))
    assert gap > 1e-4


@pytest.mark.slow  # about 15 s of compiling on 2 cores
def test_agent_batches_step_each_agent_as_the_shared_step_on_its_own_batch():
    """openai/maddpg draws a batch per agent: agent i's critic, actor and targets after the step on three batches
    are agent i's after the one-batch step on batch i."""
    env = envs.make("mpe_spread", continuous=True)
    cfg = make(env, "maddpg")
    assert cfg.agent_batches
    shared = dataclasses.replace(cfg, agent_batches=False)
    model, atx, ctx, nets, batch = parts(env, cfg)
    batches = [batch.replace(obs=batch.obs.replace(obs=batch.obs.obs * (1.0 + 0.5 * i)), reward=batch.reward + i)
               for i in range(3)]
    step = jax.jit(lambda c, b: learner.learn_step(model, c, atx, ctx, nets, b, jax.random.PRNGKey(3))[0],
               static_argnums=0)
    per_agent = step(cfg, jax.tree.map(lambda *x: jnp.stack(x), *batches))
    for i in range(3):
        ref = step(shared, batches[i])
        for name in ("critic", "actor", "critic_target", "actor_target"):
            allclose(*(jax.tree.map(lambda leaf: leaf[i], getattr(n, name)) for n in (per_agent, ref)))
    assert not np.allclose(*(np.asarray(jax.tree.leaves(n.actor)[0][1]) for n in (per_agent, step(shared, batch))))


# -- mixed critic kinds (MADDPG's competitive experiments: MADDPG agents against DDPG opponents) -----------------------
@functools.cache
def mixed_parts(kinds, base):
    """On physical deception (agent 0 the adversary, group 0; agents 1, 2 the good agents, group 1): the config,
    model, optimisers and fresh nets of ``base``'s config with ``critic_kinds=kinds``."""
    env = envs.make("mpe_adversary", continuous=True)
    cfg = make(env, base, critic_kinds=kinds, hidden_size=8)
    model = learner.build_model(LearnerView(env), cfg)
    atx, ctx = learner.optimiser(cfg.actor_lr, cfg.max_grad_norm), learner.optimiser(cfg.critic_lr, cfg.max_grad_norm)

    @jax.jit
    def nets():
        actor, critic = model.init_actors(jax.random.PRNGKey(0)), model.init_critics(jax.random.PRNGKey(1))
        return learner.Nets(actor=actor, critic=critic, actor_target=actor, critic_target=critic,
                            actor_opt=jax.vmap(atx.init)(actor), critic_opt=jax.vmap(ctx.init)(critic),
                            it=jnp.zeros((), jnp.int32))

    return cfg, model, atx, ctx, nets()


def deception_batch(model):
    """A random batch of 16 transitions per agent (``agent_batches``): leaves [N, 16, ...]."""
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    n, d, a = model.num_agents, model.obs_dim, model.num_actions

    def rec(k):
        return learner.LearnerObs(obs=jax.random.normal(k, (n, 16, n, d)), avail=None, global_state=None,
                                  first=jnp.zeros((n, 16), bool))

    return learner.Sample(obs=rec(keys[0]), action=jax.random.uniform(keys[1], (n, 16, n, a)),
                          reward=jax.random.normal(keys[2], (n, 16, n)), terminated=jnp.zeros((n, 16), bool),
                          next_obs=rec(keys[3]), policy=jnp.zeros((n, 16, n), jnp.int32))


def test_mixed_critics_see_their_kinds_inputs_and_start_as_those_kinds():
    """critic_kinds="local,joint": the adversary's critic sees [o_0, a_0] (zero-padded), the good agents' see every
    observation and action; at initialisation each is the network its kind's learner (DDPG's, MADDPG's) builds from
    the same key, and the adversary's Q does not move when the others' observations or actions do."""
    env = envs.make("mpe_adversary", continuous=True)
    mixed, ddpg, maddpg = (learner.build_model(LearnerView(env), make(env, base, critic_kinds=kinds, hidden_size=8))
                           for kinds, base in (("local,joint", "maddpg"), ("", "ddpg"), ("", "maddpg")))
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    obs, act = jax.random.normal(keys[0], (4, 3, mixed.obs_dim)), jax.random.uniform(keys[1], (4, 3, 5))
    x = mixed.critic_inputs(obs, act)
    width = mixed.obs_dim + 5
    assert x.shape == (3, 4, 3 * width)
    np.testing.assert_array_equal(x[0, :, :width], jnp.concatenate([obs[:, 0], act[:, 0]], -1))
    np.testing.assert_array_equal(x[0, :, width:], 0.0)
    joint = jnp.concatenate([obs.reshape(4, -1), act.reshape(4, -1)], -1)
    np.testing.assert_array_equal(x[1], joint)
    np.testing.assert_array_equal(x[2], joint)

    @jax.jit
    def qs(key):  # [C, K, B] each
        critics = mixed.init_critics(key)
        return (mixed.q_values(critics, obs, act), ddpg.q_values(ddpg.init_critics(key), obs, act),
                maddpg.q_values(maddpg.init_critics(key), obs, act),
                mixed.q_values(critics, obs.at[:, 1:].add(1.0), act.at[:, 1:].set(0.0)))

    q_mixed, q_ddpg, q_maddpg, others = qs(jax.random.PRNGKey(1))
    allclose(q_mixed[0], q_ddpg[0])
    np.testing.assert_array_equal(q_mixed[1:], q_maddpg[1:])
    np.testing.assert_array_equal(others[0], q_mixed[0])
    assert np.all(np.abs(others[1:] - q_mixed[1:]) > 1e-4)


@pytest.mark.slow  # about 10 s of compiling each on 2 loaded cores
@pytest.mark.parametrize("kinds,variant", [("joint,joint", "maddpg"), ("local,local", "ddpg")])
def test_one_critic_kind_for_every_group_steps_as_that_learner(kinds, variant):
    """A gradient step (critics, actors, targets; a batch per agent) with one kind for every group equals the
    step of ``maddpg`` or ``ddpg``; the padded rows of the local critics' first layer stay zero."""
    cfg, model, atx, ctx, nets = mixed_parts(kinds, "maddpg")
    ref_cfg, ref_model, _, _, ref_nets = mixed_parts("", variant)
    batch = deception_batch(model)
    assert model.local_critics and not ref_cfg.critic_kinds
    new, ref = jax.jit(lambda a, b: (learner.learn_step(model, cfg, atx, ctx, a, batch, jax.random.PRNGKey(4))[0],
                                 learner.learn_step(ref_model, ref_cfg, atx, ctx, b, batch, jax.random.PRNGKey(4))[0]))(
        nets, ref_nets)
    allclose(new.actor, ref.actor)
    allclose(new.actor_target, ref.actor_target)
    assert max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(new.actor),
                                                              jax.tree.leaves(nets.actor))) > 1e-3
    for name in ("critic", "critic_target"):
        got, want = getattr(new, name), getattr(ref, name)
        kernel = got["params"]["Dense_0"]["kernel"]  # [C, K, X, H]
        rows = want["params"]["Dense_0"]["kernel"].shape[2]
        np.testing.assert_array_equal(kernel[:, :, rows:], 0.0)
        first = {**got["params"]["Dense_0"], "kernel": kernel[:, :, :rows]}
        allclose({**got, "params": {**got["params"], "Dense_0": first}}, want)


# -- policy ensembles -------------------------------------------------------------------------------------------------
@pytest.mark.slow  # about 20 s of compiling on 2 cores
def test_ensemble_draws_a_sub_policy_per_episode_and_learns_each_on_its_own_episodes():
    env = envs.make("mpe_simple", continuous=True, max_cycles=5)
    cfg = make(env, "maddpg", ensemble=3)
    view = LearnerView(env)
    model = learner.build_model(view, cfg)
    assert jax.tree.leaves(model.init_actors(jax.random.PRNGKey(0)))[0].shape[:2] == (3, 1)
    _, _, _, nets, _ = parts(env, cfg)
    carry = learner.reset_carry(jax.random.PRNGKey(1), view, env.default_params, jnp.zeros((6, 1), jnp.int32),
                                batch_size=6)
    policy = learner.make_policy(model, cfg, nets.actor)
    traj = jax.jit(lambda c: learner.rollout(jax.random.PRNGKey(2), view, env.default_params, policy, c, 40,
                                             batched=True)[1])(carry)
    playing = np.asarray(traj.extras[1][..., 0])  # [T, B]: 8 episodes of 5 steps in each of 6 environments
    episodes = playing.reshape(8, 5, 6)
    assert np.all(episodes == episodes[:, :1])  # one sub-policy for a whole episode
    assert set(np.unique(episodes)) == {0, 1, 2}  # 48 draws of 3
    # each sub-policy's batch holds only transitions it played
    samples = learner.Sample(obs=traj.obs, action=traj.extras[0], reward=traj.reward, terminated=traj.terminated,
                             next_obs=traj.next_obs, policy=traj.extras[1])
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), samples)
    buffer = learner.ReplayBuffer.create(jax.tree.map(lambda x: x[0], flat), 512).add(flat)
    subs = jax.jit(lambda b: learner.sub_policy_batches(model, cfg, b, jax.random.PRNGKey(3)))(buffer)
    assert subs.policy.shape == (3, 1, cfg.batch_size, 1)
    for k in range(3):
        assert np.all(np.asarray(subs.policy[k, 0]) == k)
    # sub_buffers: D^(k) holds exactly the transitions of the episodes played by sub-policy k, in order
    own = dataclasses.replace(cfg, sub_buffers=True, buffer_size=768)
    own.validate(env)
    buffers = learner.sub_policy_buffers(model, own, jax.tree.map(lambda x: x[0], flat))
    buffers = jax.jit(lambda b, f: learner.store_sub_policies(model, b, f))(buffers, flat)
    drawn = jax.jit(lambda b: learner.sub_buffer_batches(model, own, b, jax.random.PRNGKey(4)))(buffers)
    played = np.asarray(flat.policy[:, 0])
    for k in range(3):
        mine = np.flatnonzero(played == k)
        assert int(buffers.size[k, 0]) == len(mine) > 0
        np.testing.assert_array_equal(buffers.items.obs.obs[k, 0, :len(mine)], flat.obs.obs[mine])
        assert np.all(np.asarray(drawn.policy[k, 0]) == k)


def test_group_draw_shares_a_sub_buffer_per_group_with_the_draws_of_per_agent_buffers():
    """Under ``ensemble_draw=group`` the 3 predators of ``mpe_tag`` keep one D^(k) between them (K x 2 buffers, not
    K x 4): each holds the transitions its group played with k, in order, and agent i's batch is the one a buffer of
    agent i's own (``ReplayBuffer.add_where`` on i's draws) gives with the same key."""
    env = envs.make("mpe_tag", continuous=True, max_cycles=5)
    cfg = make(env, "maddpg", ensemble=2, sub_buffers=True, ensemble_draw="group", buffer_size=128, batch_size=8)
    model = learner.build_model(LearnerView(env), cfg)
    np.testing.assert_array_equal(learner.buffer_owners(model), [0, 0, 0, 1])
    groups = np.array([[0, 1], [1, 1], [1, 0], [0, 0]] * 8)  # [32, 2]: the predators' draw, the prey's
    obs = LearnerObs(obs=jnp.arange(32 * 4 * 3, dtype=jnp.float32).reshape(32, 4, 3), avail=None,
                     global_state=None, first=jnp.zeros(32, bool))
    flat = learner.Sample(obs=obs, action=jnp.zeros((32, 4, 2)), reward=jnp.zeros((32, 4)),
                          terminated=jnp.zeros(32, bool), next_obs=obs,
                          policy=jnp.asarray(groups[:, [0, 0, 0, 1]], jnp.int32))
    key = jax.random.PRNGKey(5)
    keys = jax.random.split(key, 2 * 4).reshape(2, 4, -1)

    def both(flat):
        example = jax.tree.map(lambda x: x[0], flat)
        buffers = learner.store_sub_policies(model, learner.sub_policy_buffers(model, cfg, example), flat)
        own = learner.ReplayBuffer.create(example, 64)
        ks, agents = jnp.meshgrid(jnp.arange(2), jnp.arange(4), indexing="ij")
        per_agent = jax.vmap(jax.vmap(lambda k, i, key: own.add_where(flat, flat.policy[:, i] == k).sample(
            key, cfg.batch_size)))(ks, agents, keys)
        return buffers, learner.sub_buffer_batches(model, cfg, buffers, key), per_agent

    buffers, drawn, per_agent = jax.tree.map(np.asarray, jax.jit(both)(flat))
    assert buffers.size.shape == (2, 2)
    for k in range(2):
        for g in range(2):
            mine = np.flatnonzero(groups[:, g] == k)
            assert int(buffers.size[k, g]) == len(mine)
            np.testing.assert_array_equal(buffers.items.obs.obs[k, g, :len(mine)], np.asarray(obs.obs)[mine])
    for got, want in zip(jax.tree.leaves(drawn), jax.tree.leaves(per_agent)):  # leaves [K, N, B, ...]
        np.testing.assert_array_equal(got, want)


# -- cross-play of trained populations (MADDPG's ensembles against single policies) ---------------------------------
def test_cross_actors_give_each_agent_its_own_populations_actors():
    """Swap test: the crossed actors hold the first population's parameters exactly where asked and the second's
    elsewhere; a single policy plays as K identical sub-policies; mismatched populations are refused."""
    env = envs.make("mpe_tag", continuous=True)
    ens, single = make(env, "maddpg", ensemble=3), make(env, "maddpg")
    model_e, model_s = (learner.build_model(LearnerView(env), c) for c in (ens, single))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    a, b, c = jax.tree.map(np.asarray, jax.jit(lambda k: (model_e.init_actors(k[0]), model_s.init_actors(k[1]),
                                                      model_s.init_actors(k[2])))(keys))
    predators = np.array([True, True, True, False])
    cross = jax.jit(crossplay.cross_actors, static_argnums=(1, 3))
    for first, k1, second, k2, mask in ((a, 3, b, 1, predators), (b, 1, a, 3, ~predators), (b, 1, c, 1, predators)):
        mixed, k = cross(first, k1, second, k2, mask)
        assert k == max(k1, k2)
        for got, x, y in zip(jax.tree.leaves(mixed), jax.tree.leaves(first), jax.tree.leaves(second)):
            got = np.asarray(got) if k == 3 else np.asarray(got)[None]  # [K, N, ...]
            x, y = (v if v.ndim == got.ndim else np.broadcast_to(v, (got.shape[0],) + v.shape) for v in (x, y))
            for i in range(4):
                np.testing.assert_array_equal(got[:, i], (x if mask[i] else y)[:, i])
    with pytest.raises(ValueError, match="an ensemble of 2 sub-policies cannot play as 3"):
        crossplay.cross_actors(a, 3, b, 2, predators)
    with pytest.raises(ValueError, match="cross-play needs actors of the same hidden_size"):
        crossplay.cross_config(ens, dataclasses.replace(single, hidden_size=8))
    assert crossplay.cross_config(single, dataclasses.replace(ens, ensemble_draw="group")).ensemble_draw == "group"


def test_group_draw_gives_each_agent_group_one_uniform_sub_policy():
    """``ensemble_draw=group`` (the paper's ensembles): at an episode's first step all the predators take one
    sub-policy index and the prey another, uniform over K (chi-square over 600 episodes) and independent."""
    from scipy import stats

    env = envs.make("mpe_tag", continuous=True)
    cfg = make(env, "maddpg", ensemble=3, ensemble_draw="group")
    view = LearnerView(env)
    model = learner.build_model(view, cfg)
    assert model.draws == (0, 0, 0, 1)

    @jax.jit
    def first_draws(key):
        actors = model.init_actors(key)
        carry = learner.reset_carry(key, view, env.default_params, None, batch_size=600)
        return learner.make_policy(model, cfg, actors)(key, carry.obs, jnp.zeros((600, 4), jnp.int32))[2]

    first = np.asarray(first_draws(jax.random.PRNGKey(7)))  # [E, N]
    assert np.all(first[:, :3] == first[:, :1])  # the predators share their draw
    for group in (first[:, 0], first[:, 3]):
        counts = np.bincount(group, minlength=3)
        assert stats.chisquare(counts).pvalue > 1e-3, counts
    assert 0.2 < np.mean(first[:, 0] == first[:, 3]) < 0.47  # independent groups: 1/3 of episodes agree


@pytest.mark.slow  # two rollouts to compile
def test_cross_play_of_a_population_with_itself_is_its_play():
    """Cross-playing an ensemble's actors against themselves reproduces ``play`` (the evaluation of one population)
    exactly, sub-policy draws included; each episode keeps its draws to its end."""
    env = envs.make("mpe_tag", continuous=True, max_cycles=3)
    cfg = make(env, "maddpg", ensemble=3, ensemble_draw="group")
    actors = learner.build_model(LearnerView(env), cfg).init_actors(jax.random.PRNGKey(0))
    key, episodes = jax.random.PRNGKey(7), 64
    own = jax.jit(lambda a: crossplay.play(env, cfg, a, key, episodes))(actors)
    crossed = jax.jit(lambda a: crossplay.cross_play(env, cfg, a, make(env, "maddpg", ensemble=3), a,
                                                 np.array([True, True, True, False]), key, episodes))(actors)
    np.testing.assert_array_equal(own.reward, crossed.reward)
    np.testing.assert_array_equal(own.extras[1], crossed.extras[1])
    playing = np.asarray(own.extras[1])  # [T, E, N]: one fresh episode per environment
    assert np.all(playing == playing[:1]) and len(np.unique(playing)) == 3


# -- inferred policies ------------------------------------------------------------------------------------------------
def fit_on_actions(env, cfg, actions, steps=300):
    """Every agent's fits of the others after ``steps`` approximation steps on one batch: the zero observation and
    ``actions`` [B, N, A] -> (model, fits, the batch)."""
    model, atx, _, nets, batch = parts(env, cfg)
    rec = jax.tree.map(lambda x: jnp.broadcast_to(x[:1], (actions.shape[0],) + x.shape[1:]), batch.obs)
    fixed = batch.replace(obs=rec.replace(obs=jnp.zeros_like(rec.obs)), action=actions)

    @jax.jit
    def fit(approx, opt):
        def body(carry, _):
            p, o, _ = learner.approximation_step(model, cfg, atx, *carry, fixed)
            return (p, o), None

        return jax.lax.scan(body, (approx, opt), None, length=steps)[0][0]

    return model, nets, fit(nets.approx, nets.approx_opt), fixed


def test_inferred_policies_reach_the_maximum_likelihood_fit():
    """With no entropy bonus the fit of a policy that ignores the observation is the empirical frequency of the
    replayed (one-hot) actions; every agent's fit of every other agent reaches it."""
    env = envs.make("mpe_spread", continuous=True)
    cfg = make(env, "maddpg", infer_policies=True, infer_entropy=0.0, actor_lr=0.05, max_grad_norm=0.0)
    probs = jnp.array([[0.5, 0.2, 0.15, 0.1, 0.05], [0.1, 0.1, 0.6, 0.1, 0.1], [0.3, 0.3, 0.2, 0.1, 0.1]])
    draws = jax.random.categorical(jax.random.PRNGKey(5), jnp.log(probs), shape=(256, 3))
    actions = jax.nn.one_hot(draws, 5)
    model, nets, approx, fixed = fit_on_actions(env, cfg, actions)
    logits = model.approx_raw(approx, fixed.obs.obs)[:, 0]  # [N (who fits), N (whose), A]
    freq = np.asarray(actions.mean(0))  # [N, A]
    for i in range(3):
        for j in range(3):
            if i != j:
                np.testing.assert_allclose(np.asarray(jax.nn.softmax(logits[i, j])), freq[j], atol=0.01)
    # the fit of an agent by itself is never trained
    allclose(jax.tree.map(lambda x: x[1, 1], approx), jax.tree.map(lambda x: x[1, 1], nets.approx))


def test_hard_fits_reach_the_policy_where_soft_fits_reach_the_soft_samples_mean():
    """Fits of replayed soft samples softmax(l + g) reach their mean, flatter than the policy softmax(l), and
    ``fit_total_variation`` reports the gap as the soft samples' own; ``infer_hard`` fits each sample's argmax, an
    exact draw of softmax(l), and reaches the policy itself."""
    env = envs.make("mpe_spread", continuous=True)
    logits = jnp.array([[3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 4.0]])
    b = 2048
    gumbel = -jnp.log(-jnp.log(jax.random.uniform(jax.random.PRNGKey(7), (b, 3, 5))))
    soft = jax.nn.softmax(logits + gumbel, axis=-1)  # what the buffer holds
    policy = np.asarray(jax.nn.softmax(logits, axis=-1))
    soft_mean = np.asarray(soft.mean(0))
    assert np.all(0.5 * np.abs(soft_mean - policy).sum(-1) > 0.03)  # the two targets differ

    result = {}
    for hard in (False, True):
        cfg = make(env, "maddpg", infer_policies=True, infer_hard=hard, infer_entropy=0.0, actor_lr=0.05,
                   max_grad_norm=0.0)
        model, nets, approx, fixed = fit_on_actions(env, cfg, soft)
        # actors whose raw output on the zero observation is ``logits``
        actors = jax.tree.map(jnp.zeros_like, nets.actor)
        actors["params"]["Dense_2"]["bias"] = logits
        obs = jax.tree.map(lambda x: x[:64], fixed.obs)
        fits, soft_tv = jax.jit(learner.fit_total_variation, static_argnums=(0, 5))(
            model, actors, approx, obs, jax.random.PRNGKey(8), 512)
        result[hard] = np.asarray(fits), np.asarray(soft_tv)

    off = ~np.eye(3, dtype=bool)
    want = 0.5 * np.abs(soft_mean - policy).sum(-1)  # [N]: whose
    np.testing.assert_allclose(result[False][1], want, atol=0.01)
    np.testing.assert_allclose(result[False][0][off], np.broadcast_to(want, (3, 3))[off], atol=0.015)
    assert np.all(result[True][0][off] < 0.015) and np.all(np.diag(result[True][0]) == 0)


def test_recent_fits_take_the_updates_own_transitions():
    """``infer_recent``: the fits' step in a gradient step is ``approximation_step`` on the transitions given as
    ``recent``, not on the replayed batch; the critics and actors still learn from the batch."""
    env = envs.make("mpe_spread", continuous=True)
    cfg = make(env, "maddpg", infer_policies=True, infer_recent=True, agent_batches=False)
    model, atx, ctx, nets, batch = parts(env, cfg)
    recent = parts(env, cfg, seed=3)[4]
    key = jax.random.PRNGKey(4)
    new = jax.jit(lambda n, b, r: learner.learn_step(model, cfg, atx, ctx, n, b, key, recent=r)[0])(nets, batch, recent)
    want = jax.jit(lambda n, r: learner.approximation_step(model, cfg, atx, n.approx, n.approx_opt, r)[0])(nets, recent)
    allclose(new.approx, want)
    replayed = jax.jit(lambda n, b: learner.learn_step(model, dataclasses.replace(cfg, infer_recent=False), atx, ctx, n,
                                                   b, key)[0])(nets, batch)
    allclose(new.critic, replayed.critic)
    assert not np.allclose(np.asarray(jax.tree.leaves(new.approx)[0]), np.asarray(jax.tree.leaves(replayed.approx)[0]))


# -- learning ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow  # about 8 minutes on 2 loaded cores
def test_maddpg_listener_ends_nearer_its_target_than_ddpgs():
    """MADDPG's cooperative communication ordering (Lowe et al., 2017, Table 1) at a small budget: after 250,000
    steps the listener of every MADDPG seed ends its episodes nearer its target than that of every DDPG seed."""
    from benchmarks.maddpg_paper import run_arm

    rows = {arm: run_arm(arm, 2, 250_000, 20, 200, {}) for arm in ("maddpg", "ddpg")}
    assert max(rows["maddpg"]["final_distance_per_seed"]) < min(rows["ddpg"]["final_distance_per_seed"])


@dataclasses.dataclass(frozen=True)
class Meeting(Environment):
    """A one-step cooperative game on [-1, 1]^2: both agents receive r = -(a_1 + a_2 - 1)^2 - (a_1 - a_2)^2 / 2 (each
    the first entry of its action), whose unique maximum is a_1 = a_2 = 0.5; the episode then terminates."""

    @property
    def name(self):
        return "meeting"

    @property
    def num_agents(self):
        return 2

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (1,)),) * 2

    @property
    def action_spaces(self):
        return (Box(-1.0, 1.0, (1,)),) * 2

    def reset_env(self, key, params):
        return jnp.ones((2, 1)), jnp.zeros((), jnp.int32)

    def step_env(self, key, state, actions, params):
        a1, a2 = actions[0, 0], actions[1, 0]
        r = -jnp.square(a1 + a2 - 1.0) - 0.5 * jnp.square(a1 - a2)
        return TimeStep(obs=jnp.ones((2, 1)), state=state, reward=jnp.full((2,), r), terminated=jnp.asarray(True),
                        truncated=jnp.asarray(False), info={})


def train_seeds(env, cfg, seeds):
    """The initial and the final states of ``seeds`` seeds and the last update's metrics."""
    trainer = offpolicy.make_train(env, cfg)
    init = jax.jit(jax.vmap(trainer.init_state))
    update = jax.jit(jax.vmap(trainer.update))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    run_keys = jax.vmap(lambda k: trainer.split_seed(k)[1])(keys)
    first = state = init(keys)
    for t in range(trainer.num_updates):
        state, metrics = update(state, jax.vmap(lambda k: jax.random.fold_in(k, t))(run_keys))
    return first, state, metrics


def meeting_returns(env, cfg, actors):
    """Each seed's ``Meeting`` return [S] and deterministic actions [S, 2] from its actors (stacked over seeds)."""
    model = learner.build_model(LearnerView(env), cfg)
    obs = learner.LearnerObs(obs=jnp.ones((1, 2, 1)), avail=None, global_state=None, first=jnp.ones((1,), bool))
    actions = np.asarray(jax.vmap(lambda a: learner.policy_actions(model, a, obs, None))(actors)[:, 0, :, 0])
    a1, a2 = actions.T
    return -np.square(a1 + a2 - 1.0) - 0.5 * np.square(a1 - a2), actions


@pytest.mark.parametrize("variant,steps", [
    ("hatd3", 3200), ("haddpg", 3200), pytest.param("ddpg", 6400, marks=pytest.mark.slow),
    pytest.param("maddpg", 3200, marks=pytest.mark.slow), pytest.param("matd3", 3200, marks=pytest.mark.slow)])
def test_one_step_game_reaches_its_known_optimum(variant, steps):
    """Every seed's untrained deterministic actors return less than -0.05 (asserted), and after ``steps``
    environment steps they are within 0.05 of the optimal return 0 at (0.5, 0.5): |a_1 + a_2 - 1| < 0.23 and
    |a_1 - a_2| < 0.32. (The return curves half as much along a_1 - a_2 as along a_1 + a_2, and the actions wander
    by about 0.1 along it from seed to seed and with float rounding, so a bound on each action alone would test the
    noise.)

    ddpg's local critic Q_i(o_i, a_i) sees the other agent's action only as part of its environment, averaged over
    the replayed ones. Each agent's best response to the other's mean action a_j is a_i = (2 - a_j) / 3, whose fixed
    point is the optimum, so independent learners reach it too, chasing each other's past actions: they are given
    twice the steps."""
    env = Meeting()
    cfg = make(env, variant, total_steps=steps, num_envs=8, rollout_len=5, num_sgd=16, buffer_size=steps,
               learning_starts=64, actor_lr=3e-3, critic_lr=1e-2, gamma=0.0, tau=0.05, expl_noise=0.2,
               hidden_size=32)
    first, state, _ = train_seeds(env, cfg, 4)
    untrained, initial = meeting_returns(env, cfg, first.nets.actor)
    assert np.all(untrained < -0.05), initial
    returns, actions = meeting_returns(env, cfg, state.nets.actor)
    assert np.all(returns > -0.05), (returns, actions)


@pytest.mark.slow  # about a minute on 2 cores
def test_maddpg_gumbel_learns_simple():
    """MADDPG's Gumbel-softmax actors on continuous ``mpe_simple`` (the soft vector fed to the environment, the
    paper's learning rate 1e-2): the deterministic policy's return rises from below -25 (the untrained actors) to above
    -15 over the last tenth of 40,000 steps, mean over 4 seeds."""
    env = envs.make("mpe_simple", continuous=True)
    cfg = make(env, "maddpg", total_steps=40_000, buffer_size=50_000, batch_size=256, learning_starts=1000,
               num_envs=4, rollout_len=25, hidden_size=64, eval_envs=8)
    assert cfg.relaxation == "gumbel"
    trainer = offpolicy.make_train(env, cfg)
    metrics = jax.jit(jax.vmap(trainer))(jax.random.split(jax.random.PRNGKey(0), 4)).metrics
    curve = np.asarray(metrics["eval_return"][..., 0]).mean(0)  # [U]
    assert curve[:5].mean() < -25 and curve[-40:].mean() > -15, (curve[:5], curve[-40:])


# -- the command line and bad input ---------------------------------------------------------------------------------
CLI_SETS = ["--set", "total_steps=100", "--set", "num_envs=2", "--set", "rollout_len=25", "--set", "hidden_size=8",
            "--set", "buffer_size=200", "--set", "batch_size=16", "--set", "learning_starts=50", "--set",
            "warmup_steps=50", "--set", "num_sgd=2"]


@pytest.mark.parametrize("algo_name,sets", [
    ("hatd3", []), pytest.param("haddpg", [], marks=pytest.mark.slow),
    pytest.param("maddpg", ["--set", "infer_policies=true", "--set", "relaxation=gumbel"], marks=pytest.mark.slow),
    pytest.param("maddpg", ["--set", "ensemble=2", "--set", "relaxation=gumbel"], marks=pytest.mark.slow)])
def test_variants_run_through_the_command_line_on_continuous_spread(algo_name, sets, tmp_path):
    out = str(tmp_path / algo_name)
    argv = ["--algo", algo_name, "--env", "mpe_spread", "--env-arg", "continuous=true", "--seeds", "2", "--out", out,
            "--quiet", *CLI_SETS, *sets]
    assert train.main(argv) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["num_updates"] == 2 and summary["final"]["learning"]["mean"] == 1.0
    assert ("approx_loss" in summary["final"]) == ("infer_policies=true" in sets)


@pytest.mark.parametrize("argv,fragment", [
    (["--algo", "hatd3", "--env", "mpe_spread"], "hatd3 needs continuous (Box) actions"),
    (["--algo", "haddpg", "--env", "ipd"], "haddpg needs continuous (Box) actions"),
    (["--algo", "maddpg", "--env", "mpe_spread", "--set", "buffer_size=100", "--set", "batch_size=1024"],
     "batch_size (1024) must be at most buffer_size (100)"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "relaxation=tanh"], "relaxation=tanh needs continuous"),
    (["--algo", "ddpg", "--env", "ipd", "--set", "team_reward=true"], "critic=local"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "tau=2"], "tau must lie in [0, 1]"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "team_reward=true"], "agent_batches=true (a batch per agent"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "ensemble=0"], "ensemble must be a positive integer"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "infer_policies=true", "--set", "team_reward=true"],
     "infer_policies=true (MADDPG's inferred policies) needs"),
    (["--algo", "maddpg", "--env", "mpe_spread", "--set", "infer_hard=true"],
     "infer_hard=true (how the others' policies are fitted) needs infer_policies=true"),
    (["--algo", "maddpg", "--env", "mpe_spread", "--set", "infer_recent=true"],
     "infer_recent=true (how the others' policies are fitted) needs infer_policies=true"),
    (["--algo", "hatd3", "--env", "mpe_simple", "--env-arg", "continuous=true", "--set", "ensemble=2"],
     "needs the simultaneous update"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "sub_buffers=true"], "sub_buffers=true needs ensemble > 1"),
    (["--algo", "maddpg", "--env", "ipd", "--set", "ensemble_draw=team"], "ensemble_draw must be one of"),
    (["--algo", "maddpg", "--env", "mpe_adversary", "--set", "critic_kinds=local"],
     "critic_kinds must give one of ('joint', 'local') per agent group of mpe_adversary"),
    (["--algo", "maddpg", "--env", "mpe_adversary", "--set", "critic_kinds=local,joint", "--set",
      "infer_policies=true"], "critic_kinds (a critic kind per agent group) needs"),
])
def test_bad_input_is_one_line_exit_2(argv, fragment, capsys):
    assert train.main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_defaults_are_the_papers():
    spread = envs.make("mpe_spread", continuous=True)
    m = offpolicy.default_config(envs.make("mpe_speaker_listener"), "maddpg")
    assert (m.actor_lr, m.critic_lr, m.gamma, m.batch_size, m.hidden_sizes, m.tau, m.max_grad_norm, m.rollout_len,
            m.relaxation, m.critic) == (1e-2, 1e-2, 0.95, 1024, (64, 64), 0.01, 0.5, 100, "gumbel", "joint")
    h = offpolicy.default_config(spread, "hatd3")
    assert (h.batch_size, h.tau, h.gamma, h.actor_lr, h.critic_lr, h.hidden_sizes, h.policy_delay, h.relaxation,
            h.num_envs * h.rollout_len / h.num_sgd, h.twin, h.sequential) == (
        1000, 0.005, 0.99, 5e-4, 1e-3, (128, 128), 2, "tanh", 20, True, True)
    assert offpolicy.default_config(spread, "haddpg").policy_delay == 1
    assert offpolicy.default_config(spread, "ddpg").critic == "local"
    assert m.agent_batches and not h.agent_batches
    assert algos.compatible("maddpg", envs.make("mpe_spread")) is None


def test_policy_delay_skips_the_actor_step_and_its_loss():
    """TD3's delay: the first gradient step moves only the critics (actors, their optimiser states and every target
    stay, the actor loss is nan); the second moves the actors exactly as ``update_actors`` on its key does."""
    env = envs.make("mpe_spread", continuous=True)
    cfg = make(env, "hatd3")
    assert cfg.policy_delay == 2
    model, atx, ctx, nets, batch = parts(env, cfg)
    key1, key2 = jax.random.PRNGKey(5), jax.random.PRNGKey(6)
    step = jax.jit(lambda n, k: learner.learn_step(model, cfg, atx, ctx, n, batch, k))
    first, m1 = step(nets, key1)
    for same in ("actor", "actor_opt", "actor_target", "critic_target"):
        for x, y in zip(jax.tree.leaves(getattr(first, same)), jax.tree.leaves(getattr(nets, same))):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.allclose(np.asarray(jax.tree.leaves(first.critic)[0]), np.asarray(jax.tree.leaves(nets.critic)[0]))
    assert np.isnan(m1["actor_loss"]) and np.isfinite(m1["critic_loss"])
    second, m2 = step(first, key2)
    def actor_step(nets, k):  # the critic's step, then update_actors on the key's second half
        critic = learner.critic_step(model, cfg, ctx, nets, batch, jax.random.split(k)[0])[0]
        return learner.update_actors(model, cfg, atx, nets, critic, batch, jax.random.split(k)[1])

    actor, opt, loss = jax.jit(actor_step)(first, key2)
    allclose((second.actor, second.actor_opt), (actor, opt))
    np.testing.assert_allclose(m2["actor_loss"], loss, rtol=1e-6)
    assert not np.allclose(np.asarray(jax.tree.leaves(second.actor)[0]), np.asarray(jax.tree.leaves(nets.actor)[0]))


def test_nothing_moves_before_learning_starts():
    """An update whose buffer holds fewer than ``learning_starts`` transitions leaves every network, optimiser state
    and target as it was and logs nan losses."""
    env = envs.make("mpe_spread", continuous=True)
    cfg = make(env, "hatd3", num_sgd=2)
    trainer = offpolicy.make_train(env, cfg)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    new, metrics = jax.jit(trainer.update)(state, jax.random.PRNGKey(1))
    assert int(metrics["learning"]) == 0
    for x, y in zip(jax.tree.leaves(new.nets), jax.tree.leaves(state.nets)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert all(np.isnan(metrics[k]) for k in ("critic_loss", "actor_loss", "q_mean"))
