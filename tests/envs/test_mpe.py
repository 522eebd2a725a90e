"""The MPE port against PettingZoo's mpe2 1.1 (the reference), a trajectory computed by hand, episode length and
argument checks.

Equivalence: for every scenario at its default arguments and at non-default ones (agent, obstacle, food and forest
counts, local_ratio; predator_prey against simple_tag with 5 adversaries and 2 good agents), discrete and continuous
(predator_prey: discrete only), mpe2's parallel env is reset with a seed, its world is sometimes packed together
(positions scaled by 0.25, so that entities collide) or spread out (scaled by 1.6 or 4, so that agents leave the area
and the bound penalty reaches its cap), copied into our state, and both are stepped with the same random actions for
whole episodes (6 episodes of 25 steps per case and action mode: 4,350 steps). Our own state is carried forward
(never re-synchronised), and observations, rewards, termination, truncation, positions, velocities, messages and the
global state must agree with mpe2 to 1e-4 at every step. Each case counts the reward and observation branches its
episodes went through, and the test asserts each one fired.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mpe2 import (
    simple_adversary_v3,
    simple_crypto_v3,
    simple_push_v3,
    simple_reference_v3,
    simple_speaker_listener_v4,
    simple_spread_v3,
    simple_tag_v3,
    simple_v3,
    simple_world_comm_v3,
)

import envs
from envs.mpe import MPEState

ATOL = 1e-4
BOUND_CAP = 1.0 + np.log(10.0) / 2  # |x| beyond which the bound penalty min(exp(2x - 2), 10) is capped at 10
SCALES = (1.0, 0.25, 1.6, 1.0, 0.25, 4.0)  # one episode per entry: as reset, packed, spread out, far out


def _landmark_index(world, landmark):
    return next(i for i, lm in enumerate(world.landmarks) if lm is landmark)


def _no_goal(world):
    return []


def _goal_a(world):
    return [_landmark_index(world, world.agents[0].goal_a)]


def _goal_b_each(world):
    return [_landmark_index(world, a.goal_b) for a in world.agents]


def _goal_b_speaker(world):
    return [_landmark_index(world, world.agents[0].goal_b)]


def _crypto_goal(world):
    return [_landmark_index(world, world.agents[0].goal_a), int(np.argmax(world.agents[2].key))]


def _touch(scenario, a, b):
    return bool(scenario.is_collision(a, b))


def _out(agent, limit):
    return bool(np.any(np.abs(agent.state.p_pos) > limit))


def _fast(agent):
    return agent.max_speed is not None and np.linalg.norm(agent.state.p_vel) > agent.max_speed - 1e-6


def _branches_spread(scenario, world, rewards):
    ags = world.agents
    return {"collision": any(_touch(scenario, a, b) for i, a in enumerate(ags) for b in ags[i + 1:])}


def _branches_chase(scenario, world, rewards):
    adv = [a for a in world.agents if a.adversary]
    good = [a for a in world.agents if not a.adversary]
    hits = {"caught": any(_touch(scenario, g, a) for g in good for a in adv),
            "bound_linear": any(_out(g, 0.9) and not _out(g, 1.0) for g in good),
            "bound_exp": any(_out(g, 1.0) and not _out(g, BOUND_CAP) for g in good),
            "bound_cap": any(_out(g, BOUND_CAP) for g in good),
            "speed_clip": any(_fast(a) for a in world.agents),
            "contact_obstacle": any(_touch(scenario, a, lm) for a in world.agents for lm in world.landmarks
                                    if lm.collide)}
    if hasattr(world, "forests"):
        inside = [any(_touch(scenario, a, f) for f in world.forests) for a in world.agents]
        hits["food"] = any(_touch(scenario, g, f) for g in good for f in world.food)
        hits["forest"] = any(inside)
        hits["hidden"] = any(inside[j] != inside[i] for i in range(1, len(inside)) for j in range(len(inside)))
    return hits


def _branches_push(scenario, world, rewards):
    a, b = world.agents
    return {"contact": np.linalg.norm(a.state.p_pos - b.state.p_pos) < a.size + b.size}


def _branches_crypto(scenario, world, rewards):
    return {"silent_eve": not np.any(world.agents[0].state.c), "silent_bob": not np.any(world.agents[1].state.c),
            "speaking": bool(np.any(world.agents[0].state.c)) and bool(np.any(world.agents[1].state.c))}


def _branches_none(scenario, world, rewards):
    return {}


# case: (our kwargs, mpe2 module, mpe2 kwargs, goal reader, branch counter, branches that need continuous actions).
# A case is a registered name, optionally followed by "-" and a label of its non-default arguments.
CASES = {
    "mpe_simple": ({}, simple_v3, {}, _no_goal, _branches_none, ()),
    "mpe_spread": ({"N": 3}, simple_spread_v3, {"N": 3}, _no_goal, _branches_spread, ()),
    "mpe_adversary": ({}, simple_adversary_v3, {}, _goal_a, _branches_none, ()),
    "mpe_tag": ({}, simple_tag_v3, {}, _no_goal, _branches_chase, ()),
    "mpe_push": ({}, simple_push_v3, {}, _goal_a, _branches_push, ()),
    "mpe_reference": ({}, simple_reference_v3, {}, _goal_b_each, _branches_none, ()),
    "mpe_speaker_listener": ({}, simple_speaker_listener_v4, {}, _goal_b_speaker, _branches_none, ()),
    "mpe_crypto": ({}, simple_crypto_v3, {}, _crypto_goal, _branches_crypto, ("silent_eve", "silent_bob")),
    "mpe_world_comm": ({}, simple_world_comm_v3, {}, _no_goal, _branches_chase, ()),
    # Non-default arguments: several good agents (their velocity block and per-prey reward sums), other counts of
    # agents, obstacles, food and forests, and other local/global reward mixes.
    "predator_prey": ({}, simple_tag_v3, {"num_good": 2, "num_adversaries": 5, "num_obstacles": 2}, _no_goal,
                      _branches_chase, ()),  # the registry's defaults; discrete only
    "mpe_tag-good3-adv2-obst3": ({"num_good": 3, "num_adversaries": 2, "num_obstacles": 3}, simple_tag_v3,
                                 {"num_good": 3, "num_adversaries": 2, "num_obstacles": 3}, _no_goal,
                                 _branches_chase, ()),
    "mpe_spread-N4-ratio0.2": ({"N": 4, "local_ratio": 0.2}, simple_spread_v3, {"N": 4, "local_ratio": 0.2},
                               _no_goal, _branches_spread, ()),
    "mpe_adversary-N3": ({"N": 3}, simple_adversary_v3, {"N": 3}, _goal_a, _branches_none, ()),
    "mpe_reference-ratio0.9": ({"local_ratio": 0.9}, simple_reference_v3, {"local_ratio": 0.9}, _goal_b_each,
                               _branches_none, ()),
    "mpe_world_comm-good3-adv2-obst2-food3-forest3": (
        {"num_good": 3, "num_adversaries": 2, "num_obstacles": 2, "num_food": 3, "num_forests": 3},
        simple_world_comm_v3,
        {"num_good": 3, "num_adversaries": 2, "num_obstacles": 2, "num_food": 3, "num_forests": 3},
        _no_goal, _branches_chase, ()),
}


def _registered(case: str) -> str:
    return case.split("-")[0]


def _modes(case: str) -> tuple:
    """Both action modes where the registered constructor takes ``continuous`` (predator_prey is discrete only)."""
    return (False, True) if "continuous" in envs.env_args(_registered(case)) else (False,)


@functools.cache
def compiled(name: str, continuous: bool):
    """(env, step) of one case and action mode, compiled once per session: ``step(state, actions)`` returns the
    observation of ``state``, ``step_env``'s TimeStep and the global state reached."""
    env = envs.make(_registered(name), **({"continuous": True} if continuous else {}), **CASES[name][0])
    params = env.default_params

    @jax.jit
    def step(state, actions):
        ts = env.step_env(jax.random.PRNGKey(0), state, actions, params)
        return env.observations(state, params), ts, env.global_state(ts.state, params)

    return env, step


def _state_from(env, world, goal_reader):
    entities = world.agents + world.landmarks
    c = np.stack([np.zeros(env.layout.dim_c) if a.silent else np.asarray(a.state.c, float) for a in world.agents])
    goal = goal_reader(world)
    return MPEState(p_pos=np.stack([e.state.p_pos for e in entities]).astype(np.float32),
                    p_vel=np.stack([e.state.p_vel for e in entities]).astype(np.float32),
                    c=c.astype(np.float32) if env.layout.dim_c else None,
                    goal=np.asarray(goal, np.int32) if goal else None, t=np.int32(0))


def _random_actions(env, rng):
    """Our action array and mpe2's per-agent actions (continuous: some agents send all zeros)."""
    if not env.continuous:
        a = np.array([rng.integers(n) for n in env.action_dims], np.int32)
        return a, [int(x) for x in a]
    a = rng.uniform(0.0, 1.0, (env.num_agents, env.num_actions)).astype(np.float32)
    a[rng.uniform(size=env.num_agents) < 0.15] = 0.0
    return a, [a[i, :d].copy() for i, d in enumerate(env.action_dims)]


def _check_obs(env, ours, theirs, where):
    ours = np.asarray(ours)
    for i, d in enumerate(env.obs_dims):
        np.testing.assert_allclose(ours[i, :d], theirs[i], atol=ATOL, err_msg=f"{where}: obs of agent {i}")
        assert not np.any(ours[i, d:]), f"{where}: padding of agent {i} is not zero"


def _check_state(env, state, world, where):
    entities = world.agents + world.landmarks
    np.testing.assert_allclose(state.p_pos, np.stack([e.state.p_pos for e in entities]), atol=ATOL,
                               err_msg=f"{where}: positions")
    np.testing.assert_allclose(state.p_vel, np.stack([e.state.p_vel for e in entities]), atol=ATOL,
                               err_msg=f"{where}: velocities")
    if env.layout.dim_c:
        np.testing.assert_allclose(state.c, np.stack([a.state.c for a in world.agents]), atol=ATOL,
                                   err_msg=f"{where}: messages")


@pytest.mark.parametrize("name, continuous", [
    pytest.param(name, c, id=f"{name}-{'continuous' if c else 'discrete'}",
                 marks=[pytest.mark.slow] if c and name not in envs.list_envs() else [])  # non-default: continuous slow
    for name in sorted(CASES) for c in _modes(name)])
def test_matches_mpe2_step_by_step(name, continuous):
    env, step = compiled(name, continuous)
    _, module, mpe_kwargs, goal_reader, branches, continuous_only = CASES[name]
    ref = module.parallel_env(continuous_actions=continuous, max_cycles=env.max_cycles, **mpe_kwargs)
    world, scenario = ref.unwrapped.world, ref.unwrapped.scenario
    agents = ref.possible_agents
    assert [ref.observation_space(a).shape[0] for a in agents] == list(env.obs_dims)
    space = "shape" if continuous else "n"
    assert [getattr(ref.action_space(a), space) for a in agents] == \
        [(d,) if continuous else d for d in env.action_dims]
    rng = np.random.default_rng(17)
    hits, steps = {}, 0
    for episode, scale in enumerate(SCALES):
        ref.reset(seed=1000 * episode + 7)
        for entity in world.agents + world.landmarks:
            entity.state.p_pos = entity.state.p_pos * scale
        state = _state_from(env, world, goal_reader)
        first = [ref.unwrapped.observe(a) for a in agents]
        for t in range(1, env.max_cycles + 1):
            ours, theirs = _random_actions(env, rng)
            obs, rew, term, trunc, _ = ref.step(dict(zip(agents, theirs)))
            before, ts, global_state = step(state, ours)
            where = f"{name} ep {episode} t {t}"
            if t == 1:
                _check_obs(env, before, first, f"{name} ep {episode} t 0")
            _check_obs(env, ts.obs, [obs[a] for a in agents], where)
            np.testing.assert_allclose(ts.reward, [rew[a] for a in agents], atol=ATOL, err_msg=f"{where}: rewards")
            assert bool(ts.terminated) == any(term.values()) is False, where
            assert bool(ts.truncated) == all(trunc.values()) == (t == env.max_cycles), where
            _check_state(env, ts.state, world, where)
            np.testing.assert_allclose(global_state, ref.state(), atol=ATOL, err_msg=where)
            for branch, hit in branches(scenario, world, rew).items():
                hits[branch] = hits.get(branch, 0) + int(hit)
            state = ts.state
            steps += 1
        assert not ref.agents  # mpe2's episode is over as well
    expected = [b for b in hits if continuous or b not in continuous_only]
    assert all(hits[b] > 0 for b in expected), f"{name}: branches never reached: {hits}"
    assert steps == len(SCALES) * env.max_cycles


def test_simple_trajectory_by_hand():
    """One agent from (0.1, -0.2) with velocity (0.5, 0), landmark at (0.3, 0.4); actions +x, +y, no-op.

    Per step: pos += 0.1 vel; vel = 0.75 vel + 0.1 * 5 * direction; reward = -|pos - landmark|^2."""
    env, step = compiled("mpe_simple", False)
    state = env.initial_state(jnp.array([[0.1, -0.2]]), jnp.array([[0.3, 0.4]])).replace(
        p_vel=jnp.array([[0.5, 0.0], [0.0, 0.0]]))
    expected = [  # (pos, vel, reward) after each step
        ((0.15, -0.2), (0.875, 0.0), -(0.15 ** 2 + 0.6 ** 2)),
        ((0.2375, -0.2), (0.65625, 0.5), -(0.0625 ** 2 + 0.6 ** 2)),
        ((0.303125, -0.15), (0.4921875, 0.375), -(0.003125 ** 2 + 0.55 ** 2)),
    ]
    for action, (pos, vel, reward) in zip([2, 4, 0], expected):
        _, ts, _ = step(state, jnp.array([action]))
        state = ts.state
        np.testing.assert_allclose(state.p_pos[0], pos, atol=1e-6)
        np.testing.assert_allclose(state.p_vel[0], vel, atol=1e-6)
        np.testing.assert_allclose(ts.reward, [reward], atol=1e-6)
        np.testing.assert_allclose(ts.obs[0], [*vel, 0.3 - pos[0], 0.4 - pos[1]], atol=1e-6)
    np.testing.assert_array_equal(state.p_pos[1], np.float32([0.3, 0.4]))  # landmarks never move


def test_contact_force_by_hand():
    """Two spread agents (size 0.15) at rest 0.2 apart on the x axis, no-op actions: each is pushed away by
    ``100 * k * log(1 + exp((0.3 - 0.2) / k))`` with k = 1e-3, i.e. ~ 10.0; velocity after one step 0.1 * force."""
    env, step = compiled("mpe_spread", False)
    agents = jnp.array([[0.0, 0.0], [0.2, 0.0], [5.0, 5.0]])
    state = env.initial_state(agents, jnp.array([[-3.0, -3.0], [3.0, -3.0], [-3.0, 3.0]]))
    _, ts, _ = step(state, jnp.zeros(3, jnp.int32))
    force = 100.0 * 1e-3 * np.logaddexp(0.0, 0.1 / 1e-3)
    np.testing.assert_allclose(ts.state.p_vel[:2], [[-0.1 * force, 0.0], [0.1 * force, 0.0]], rtol=1e-5)
    np.testing.assert_allclose(ts.state.p_pos[:3], agents, atol=0)  # positions move with the old velocity (zero)
    assert float(ts.reward[0]) == pytest.approx(0.5 * -1.0 + 0.5 * float(-jnp.sum(jnp.min(
        jnp.linalg.norm(agents[:, None] - state.p_pos[3:][None], axis=-1), axis=0))), abs=1e-5)


def test_pettingzoo_1_22_integration_runs_one_step_ahead_of_mpe2():
    """PettingZoo <= 1.22 moved entities by their updated velocity. Without contact forces velocities do not depend
    on positions, so from the same state under the same actions its positions after step t are mpe2's (checked
    against mpe2 above) after step t + 1, whatever the action of step t + 1; its first step moves an agent at rest
    by (0.1 * 5 * direction) * 0.1."""
    old = envs.make("mpe_speaker_listener")  # nothing collides in speaker-listener
    new = envs.make("mpe_speaker_listener", integration="pettingzoo_1_22")
    params = old.default_params
    state = old.initial_state(jnp.array([[0.0, 0.0], [0.1, -0.2]]), jnp.array([[0.5, 0.5], [-0.5, 0.2], [0.0, 0.9]]),
                              goal=[1])
    actions = jax.random.randint(jax.random.PRNGKey(3), (9, 2), 0, jnp.array([3, 5]))  # speaker says, listener moves
    actions = actions.at[0].set(jnp.array([1, 2]))  # listener: +x

    def run(env, steps):
        def body(s, a):
            ts = env.step_env(jax.random.PRNGKey(0), s, a, params)
            return ts.state, ts.state.p_pos
        return jax.lax.scan(body, state, steps)[1]

    pos_new, pos_old = run(new, actions[:8]), run(old, actions)
    np.testing.assert_allclose(pos_new, pos_old[1:], atol=1e-6)
    np.testing.assert_allclose(pos_new[0, 1], [0.1 + 0.05, -0.2], atol=1e-7)
    np.testing.assert_allclose(pos_old[0, 1], [0.1, -0.2], atol=0)
    with pytest.raises(ValueError, match="integration"):
        envs.make("mpe_spread", integration="verlet")


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
def test_episode_has_exactly_max_cycles_steps_with_auto_reset(continuous):
    """Under jit and vmap, ``step`` truncates on the 25th step of each episode (never terminates) and resets."""
    env = envs.make("mpe_speaker_listener", continuous=continuous)
    params = env.default_params
    batch = 8
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    obs, state = reset(jax.random.split(jax.random.PRNGKey(0), batch), params)
    assert obs.shape == (batch, env.num_agents, max(env.obs_dims))

    def act(key, s):
        legal = env.avail_actions(s, params)
        if continuous:
            return jax.random.uniform(key, legal.shape) * legal
        return jax.random.categorical(key, jnp.where(legal, 0.0, -jnp.inf))

    @jax.jit
    def step(key, s):
        keys = jax.random.split(key, batch)
        return jax.vmap(lambda k, st: env.step(k, st, act(k, st), params))(keys, s)

    truncated = []
    for t in range(1, 2 * env.max_cycles + 1):
        ts = step(jax.random.PRNGKey(t), state)
        assert not bool(jnp.any(ts.terminated))
        assert bool(jnp.all(ts.truncated)) or not bool(jnp.any(ts.truncated))
        truncated.append(bool(ts.truncated[0]))
        np.testing.assert_array_equal(ts.state.t, t % env.max_cycles)
        state = ts.state
    assert [t + 1 for t, done in enumerate(truncated) if done] == [25, 50]


def test_spaces_and_padding():
    env = envs.make("mpe_speaker_listener")
    assert env.obs_dims == (3, 11) and env.action_dims == (3, 5)
    np.testing.assert_array_equal(env.avail_actions(None), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    cont = envs.make("mpe_world_comm", continuous=True)
    assert [s.shape for s in cont.action_spaces] == [(9,)] + [(5,)] * 5
    assert cont.num_actions == 9
    assert envs.make("mpe_world_comm").action_dims == (20, 5, 5, 5, 5, 5)
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert obs.shape == (2, 11) and not np.any(obs[0, 3:])
    assert jax.eval_shape(env.global_state, state).shape == (14,)


@pytest.mark.parametrize("name, kwargs, field", [
    ("mpe_spread", {"N": 0}, "N"), ("mpe_spread", {"local_ratio": 1.5}, "local_ratio"),
    ("mpe_adversary", {"N": -1}, "N"), ("mpe_tag", {"num_good": 0}, "num_good"),
    ("mpe_tag", {"num_obstacles": 1.5}, "num_obstacles"), ("mpe_world_comm", {"num_food": 0}, "num_food"),
    ("mpe_world_comm", {"num_forests": -2}, "num_forests"), ("mpe_simple", {"max_cycles": 0}, "max_cycles"),
    ("mpe_crypto", {"continuous": "yes"}, "continuous"), ("mpe_push", {"N": 2}, "unknown argument"),
])
def test_bad_arguments_raise_value_error_naming_them(name, kwargs, field):
    with pytest.raises(ValueError, match=field):
        envs.make(name, **kwargs)


@pytest.mark.parametrize("name, limit", [("mpe_tag", 0.9), ("mpe_reference", 1.0)])
def test_reset_distribution(name, limit):
    """Agents uniform in [-1, 1]^2, landmarks in [-limit, limit]^2, goals uniform over landmarks, at rest."""
    env = envs.make(name)
    _, state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(3), 4096))
    n = env.num_agents
    agents, marks = np.asarray(state.p_pos[:, :n]), np.asarray(state.p_pos[:, n:])
    assert np.abs(agents).max() <= 1.0 and np.abs(agents).max() > 0.99
    assert np.abs(marks).max() <= limit and np.abs(marks).max() > limit - 0.01
    assert abs(agents.mean()) < 0.02 and abs(agents.var() - 1 / 3) < 0.02  # uniform on [-1, 1]
    assert not np.any(state.p_vel) and not np.any(state.c) and not np.any(state.t)
    if not env.num_goals:
        assert state.goal is None
        return
    goals = np.asarray(state.goal).reshape(-1)
    assert goals.shape[0] == 4096 * env.num_goals
    np.testing.assert_allclose(np.bincount(goals) / goals.size, 1 / env.layout.num_landmarks, atol=0.02)


def test_states_hold_no_empty_arrays():
    """Scenarios without messages or goals leave those fields None (orbax cannot checkpoint empty arrays)."""
    for name in CASES:
        env = envs.make(_registered(name), **CASES[name][0])
        state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))[1]
        assert all(np.prod(leaf.shape) > 0 for leaf in jax.tree.leaves(state) if leaf.shape), name
        assert (state.goal is None) == (env.num_goals == 0) and (state.c is None) == (env.layout.dim_c == 0), name
