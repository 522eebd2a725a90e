"""DGN's jungle (envs/jungle.py): eating, attacking a neighbour (reward and penalty), deaths in the random attack
order, no food respawn, moves one at a time, observations and neighbourhoods, bad input, and step-for-step equality
with magent2's C++ engine playing the released code's ``eat`` config where magent2 is installed (pip ``magent2``).

The expected rewards of the hand-made scenes are magent2's, printed by ``Magent2Jungle`` on the same scenes."""
import jax
import jax.numpy as jnp
import magent2  # the reference, a test extra: a broken install fails here instead of skipping
import numpy as np
import pytest

import envs
from envs.jungle import ATTACK_OFFSETS, MOVE_OFFSETS, NUM_ACTIONS, NUM_MOVES, OBS_DIM, STAY, Jungle


def move(dx, dy):
    return MOVE_OFFSETS.tolist().index([dx, dy])


def attack(dx, dy):
    return NUM_MOVES + ATTACK_OFFSETS.tolist().index([dx, dy])


@pytest.fixture(scope="module")
def small():
    """A 12 x 12 map, 4 agents and 2 foods."""
    return Jungle(map_size=12, n_agents=4, n_foods=2, max_cycles=7)


@pytest.fixture(scope="module")
def step(small):
    return jax.jit(small.step_env)


@pytest.fixture(scope="module")
def observe(small):
    return jax.jit(small.observe)


# agents 0 .. 3, then foods 4, 5; agent 0 has food 4 to its left, agents 1 and 2 to its right and below
SCENE = [[5, 5], [6, 5], [5, 6], [8, 8], [4, 5], [2, 2]]
EAT_AND_BE_ATTACKED = [attack(-1, 0), attack(-1, 0), attack(0, -1), attack(0, -1)]


def test_action_layout_is_magents():
    assert NUM_ACTIONS == 9 and MOVE_OFFSETS.tolist() == [[0, -1], [-1, 0], [0, 0], [1, 0], [0, 1]]
    assert ATTACK_OFFSETS.tolist() == [[0, -1], [-1, 0], [1, 0], [0, 1]] and STAY == 2


def test_eating_attacking_a_neighbour_and_attacking_nothing(small, step):
    """Agent 0 eats food 4 (+1 - 0.01) and is attacked by agents 1 and 2 (-4 each, +2 - 0.01 to each attacker);
    agent 3 attacks an empty cell (-0.01). magent2 gives [-7.01, 1.99, 1.99, -0.01]."""
    state = small.initial_state(np.array(SCENE))
    ts = step(jax.random.PRNGKey(0), state, jnp.array(EAT_AND_BE_ATTACKED), small.default_params)
    np.testing.assert_allclose(ts.reward, [-7.01, 1.99, 1.99, -0.01], rtol=1e-6)
    np.testing.assert_array_equal(ts.state.hp, [398, 400, 400, 400, 499, 500])
    assert float(ts.info["eats"]) == 1.0 and float(ts.info["attacks"]) == 2.0
    assert np.asarray(ts.state.alive).all() and not bool(ts.terminated)
    np.testing.assert_array_equal(ts.state.pos, state.pos)  # attacking is not moving


def test_a_death_depends_on_the_attack_order_as_in_magent2(small, step):
    """Agent 0 with hp 1 (dies on the 2nd hit) eats and is attacked by agents 1 and 2, in a random order. The first
    attacker hits (+2 - 0.01, the victim -4), the second kills (-0.01 only, no hit reward); the victim gets the
    death penalty (0) in place of its own attack's penalty, then +1 if it ate before dying. magent2's outcomes over
    seeds are exactly these four."""
    params = small.default_params.replace(agent_hp=jnp.float32(1.0))
    state = small.initial_state(np.array(SCENE), params)
    seen = set()
    for seed in range(40):
        ts = step(jax.random.PRNGKey(seed), state, jnp.array(EAT_AND_BE_ATTACKED), params)
        seen.add(tuple(np.round(np.asarray(ts.reward, np.float64), 4).tolist()))
        assert np.asarray(ts.state.alive).tolist() == [False, True, True, True, True, True]
        assert float(ts.state.hp[4]) in (499.0, 500.0)  # the food lost a hp iff the victim attacked before dying
        assert float(ts.info["attacks"]) == 2.0
        assert not np.asarray(ts.obs[0]).any() and np.asarray(small.avail_actions(ts.state)[0]).tolist() == [
            a == STAY for a in range(NUM_ACTIONS)]
    assert seen == {(-3.0, 1.99, -0.01, -0.01), (-3.0, -0.01, 1.99, -0.01), (-4.0, 1.99, -0.01, -0.01),
                    (-4.0, -0.01, 1.99, -0.01)}


def test_foods_are_eaten_away_and_never_respawn(small, step, observe):
    """A food at hp 0 dies on its first hit: the eater gets the kill (no eating reward) and the food stays gone;
    both steps also equal magent2's (``step_like_magent2``)."""
    params = small.default_params.replace(food_hp=jnp.float32(0.0))
    state = small.initial_state(np.array(SCENE), params)
    ref = Magent2Jungle(12, SCENE, 4, food_hp=0.0)
    actions = np.array([attack(-1, 0), STAY, STAY, STAY])
    ts = step_like_magent2(small, step, observe, ref, state, actions, jax.random.PRNGKey(0), params, "step 0")
    np.testing.assert_allclose(ts.reward, [-0.01, 0, 0, 0], rtol=1e-6)
    assert np.asarray(ts.state.alive).tolist() == [True] * 4 + [False, True] and float(ts.info["eats"]) == 1.0
    assert ts.obs[0, 5 * 11 + 4] == 0  # no longer seen
    ts = step_like_magent2(small, step, observe, ref, ts.state, actions, jax.random.PRNGKey(1), params, "step 1")
    assert float(ts.info["eats"]) == 0.0 and not bool(ts.state.alive[4])
    np.testing.assert_allclose(ts.reward, [-0.01, 0, 0, 0], rtol=1e-6)  # an attack on the empty cell


def test_moves_one_at_a_time_in_agent_order_with_foods_and_walls_blocking(small, step):
    """0 walks into food 4 and 3 into the wall (both stay); 1 into the cell 2 leaves, but 2 moves after 1 (1 stays);
    2 into a free cell."""
    pos = [[5, 5], [6, 5], [6, 6], [10, 5], [4, 5], [2, 2]]
    state = small.initial_state(np.array(pos))
    actions = jnp.array([move(-1, 0), move(0, 1), move(-1, 0), move(1, 0)])
    ts = step(jax.random.PRNGKey(0), state, actions, small.default_params)
    assert np.asarray(ts.state.pos).tolist() == [[5, 5], [6, 5], [5, 6], [10, 5], [4, 5], [2, 2]]
    # a chain in agent order: 0 leaves (5, 5), 1 takes it, 2 takes 1's cell; 3 into 2's old cell after 2 left
    pos = [[5, 5], [6, 5], [7, 5], [7, 6], [1, 1], [2, 2]]
    actions = jnp.array([move(0, 1), move(-1, 0), move(-1, 0), move(0, -1)])
    ts = step(jax.random.PRNGKey(0), small.initial_state(np.array(pos)), actions, small.default_params)
    assert np.asarray(ts.state.pos).tolist() == [[5, 6], [5, 5], [6, 5], [7, 5], [1, 1], [2, 2]]
    # the reverse order: 0 wants 1's cell before 1 leaves it, so only 1 moves
    pos = [[5, 5], [6, 5], [1, 1], [1, 3], [9, 9], [2, 2]]
    actions = jnp.array([move(1, 0), move(1, 0), STAY, STAY])
    ts = step(jax.random.PRNGKey(0), small.initial_state(np.array(pos)), actions, small.default_params)
    assert np.asarray(ts.state.pos)[:2].tolist() == [[5, 5], [7, 5]]


def test_observation_is_agents_minus_foods_over_the_view_circle_then_y_x(small, observe):
    pos = [[5, 5], [6, 5], [5, 9], [10, 10], [5, 3], [9, 8]]
    obs = np.asarray(observe(small.initial_state(np.array(pos))))
    grid = obs[0, :121].reshape(11, 11)  # [row, col], agent 0 at the centre (5, 5)
    assert grid[5, 5] == 1 and grid[5, 6] == 1 and grid[9, 5] == 1  # itself, agent 1 right, agent 2 four below
    assert grid[3, 5] == -1  # food 4 two rows up
    assert grid[8, 9] == -1  # food 5 at offset (4, 3): distance 5, inside the circle
    assert grid[10, 10] == 0 and np.count_nonzero(grid) == 5  # agent 3 at offset (5, 5) is outside it
    np.testing.assert_allclose(obs[0, -2:], [5 / 12, 5 / 12])
    np.testing.assert_allclose(obs[2, -2:], [9 / 12, 5 / 12])  # y first


def test_neighbourhoods_are_living_agents_only_and_mean_action_over_the_view(small):
    pos = [[1, 1], [1, 2], [8, 5], [9, 9], [1, 3], [2, 1]]  # foods next to agent 0
    alive = np.array([True, True, True, False, True, True])
    state = small.initial_state(np.array(pos), alive=alive)
    idx, mask, mean = map(np.asarray, jax.jit(lambda s, a: (*small.neighbours(s), small.neighbour_mean_action(s, a)))(
        state, jnp.array([0, 5, 8, 3])))
    assert idx[0].tolist()[:3] == [0, 1, 2] and mask[0].tolist() == [True, True, True, False]
    assert not mask[3].any()
    np.testing.assert_allclose(mean[0], np.eye(NUM_ACTIONS)[5])  # agent 2 at distance 8 is out of view
    np.testing.assert_allclose(mean[2:], 0.0)  # nobody in view; dead


def test_bad_sizes_are_one_line_errors():
    with pytest.raises(ValueError, match="free cells"):
        envs.make("jungle", map_size=5, n_agents=8, n_foods=2)
    with pytest.raises(ValueError, match="num_neighbours"):
        envs.make("jungle", n_agents=3)
    with pytest.raises(ValueError, match="n_foods"):
        envs.make("jungle", n_foods=0)


# -- step for step against magent2 --------------------------------------------------------------------------------
class Magent2Jungle:
    """magent2's C++ engine playing the released code's ``eat`` config (PKU-RL/DGN ``Jungle/config/eat.py``) with
    agents and foods at ``positions`` [N + F, 2] (magent2 ids 0 .. N + F - 1); the foods act never."""

    def __init__(self, map_size, positions, n_agents, agent_hp=400.0, food_hp=500.0, seed=0):
        gw = magent2.gridworld
        cfg = gw.Config()
        cfg.set({"map_width": map_size, "map_height": map_size, "minimap_mode": True, "embedding_size": 10,
                 "seed": seed})
        small = cfg.register_agent_type("small", {
            "width": 1, "length": 1, "hp": agent_hp, "speed": 1, "view_range": gw.CircleRange(5),
            "attack_range": gw.CircleRange(1), "damage": 1, "step_recover": 0, "step_reward": 0, "kill_reward": 0,
            "dead_penalty": 0, "attack_penalty": -0.01, "attack_in_group": 1})
        big = cfg.register_agent_type("big", {
            "width": 1, "length": 1, "hp": food_hp, "speed": 0, "view_range": gw.CircleRange(6),
            "attack_range": gw.CircleRange(0), "damage": 0, "step_recover": 0, "step_reward": 0, "kill_reward": 0,
            "dead_penalty": 0, "attack_penalty": 0})
        agents, foods = cfg.add_group(small), cfg.add_group(big)
        a, b, c = gw.AgentSymbol(agents, index="any"), gw.AgentSymbol(foods, index="any"), gw.AgentSymbol(agents,
                                                                                                          index="any")
        cfg.add_reward_rule(gw.Event(a, "attack", b), receiver=a, value=1)
        cfg.add_reward_rule(gw.Event(a, "attack", c), receiver=a, value=2)
        cfg.add_reward_rule(gw.Event(a, "attack", c), receiver=c, value=-4)
        self.env = magent2.GridWorld(cfg)
        self.handles = self.env.get_handles()
        self.env.reset()
        pos = np.asarray(positions)
        for handle, block in zip(self.handles, (pos[:n_agents], pos[n_agents:])):
            self.env.add_agents(handle, method="custom", pos=[[int(x), int(y), 0] for x, y in block])
        self.n, self.alive = n_agents, np.ones(len(pos), bool)
        assert np.concatenate([self.env.get_agent_id(h) for h in self.handles]).tolist() == list(range(len(pos)))

    def ids(self, group):
        return self.env.get_agent_id(self.handles[group])

    def observe(self):
        """(the code's observation [N, 123], zeros for the dead; hp / max hp [N + F] of every unit, each read from
        the hp channel at the centre of its own view (the foods' group observes too), nan for the dead)."""
        obs, hp = np.zeros((self.n, OBS_DIM), np.float32), np.full(len(self.alive), np.nan, np.float32)
        if self.env.get_num(self.handles[0]):  # magent2 may crash observing an empty group
            view, features = self.env.get_observation(self.handles[0])
            obs[self.ids(0)] = np.concatenate([(view[..., 1] - view[..., 4]).reshape(len(view), -1),
                                               features[:, -1:-3:-1]], axis=1)
            hp[self.ids(0)] = view[:, 5, 5, 2]
        if self.env.get_num(self.handles[1]):
            hp[self.ids(1)] = self.env.get_observation(self.handles[1])[0][:, 6, 6, 2]
        return obs, hp

    def step(self, actions):
        """actions [N] (the living agents' are played) -> (reward [N], zeros for agents dead before the step;
        alive [N + F] after it, ``get_alive`` before ``clear_dead``; positions [N + F, 2], -1 for the dead)."""
        ids = self.ids(0)
        if len(ids):
            self.env.set_action(self.handles[0], np.ascontiguousarray(np.asarray(actions)[ids], np.int32))
        self.env.step()
        reward = np.zeros(self.n, np.float32)
        reward[ids] = self.env.get_reward(self.handles[0])
        for group, handle in enumerate(self.handles):
            self.alive[self.ids(group)] = self.env.get_alive(handle)
        self.env.clear_dead()
        pos = np.full((len(self.alive), 2), -1, np.int32)
        for group, handle in enumerate(self.handles):
            pos[self.ids(group)] = self.env.get_pos(handle)
        assert (pos[:, 0] >= 0).tolist() == self.alive.tolist()  # clear_dead removed exactly the dead
        return reward, self.alive.copy(), pos


def order_free(actions, state, n):
    """``actions`` with every attack that could make magent2's random attack order matter turned into staying
    put: in agent order, an attack is kept iff neither its attacker nor the unit in its cell (if any) was attacked
    by a kept attack, and that unit is no kept attacker. So a unit takes at most one attack and no attacked agent
    attacks: who hits, kills, dies and is rewarded does not depend on the order."""
    pos, alive = np.asarray(state.pos), np.asarray(state.alive)
    occ = {tuple(p): u for u, p in enumerate(pos.tolist()) if alive[u]}
    actions, attackers, attacked = np.array(actions), set(), set()
    for i in np.flatnonzero(alive[:n] & (actions >= NUM_MOVES)):
        unit = occ.get(tuple((pos[i] + ATTACK_OFFSETS[actions[i] - NUM_MOVES]).tolist()))
        if int(i) in attacked or unit is not None and (unit in attacked or unit in attackers):
            actions[i] = STAY
        else:
            attackers.add(int(i))
            attacked.add(unit)
    return actions


def assert_like_magent2(env, observe, ref, state, params, when):
    """``state`` against magent2's: alive masks, observations, and the living units' hp (foods' included)."""
    ref_obs, ref_hp = ref.observe()
    assert np.asarray(state.alive).tolist() == ref.alive.tolist(), f"alive, {when}"
    np.testing.assert_allclose(observe(state), ref_obs, rtol=1e-6, atol=0, err_msg=f"observation, {when}")
    max_hp = np.where(np.arange(len(ref_hp)) < env.n_agents, params.agent_hp, params.food_hp).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):  # at max hp 0 magent2 reads 0 / 0 = nan too
        hp = np.where(ref.alive, np.asarray(state.hp) / max_hp, np.nan)
    np.testing.assert_allclose(hp, ref_hp, rtol=1e-6, atol=1e-7, err_msg=f"hp, {when}")


def step_like_magent2(env, step, observe, ref, state, actions, key, params, when):
    """One step here and in magent2 (``ref``, equal to ``state``): rewards, positions, then the new states are
    equal -> the TimeStep."""
    ts = step(key, state, jnp.asarray(actions), params)
    reward, ref_alive, ref_pos = ref.step(actions)
    np.testing.assert_allclose(ts.reward, reward, rtol=1e-6, atol=1e-7, err_msg=f"reward, {when}")
    np.testing.assert_array_equal(np.where(ref_alive[:, None], np.asarray(ts.state.pos), -1), ref_pos,
                                  err_msg=f"positions, {when}")
    assert_like_magent2(env, observe, ref, ts.state, params, f"after {when}")
    return ts


def assert_steps_like_magent2(env, step, observe, pos, steps, rng, params=None, safe=False):
    """Uniformly random actions for ``steps`` steps from ``pos`` (``order_free`` ones if ``safe``): alive masks,
    observations, hp of agents and foods, rewards and positions equal magent2's at every step (at hp 400 / 500
    nothing dies, so magent2's random attack order cannot matter) -> (attacks that hit an agent or a food, agents
    dead, foods eaten away)."""
    params = env.default_params if params is None else params
    n = env.n_agents
    ref = Magent2Jungle(env.map_size, pos, n, float(params.agent_hp), float(params.food_hp))
    state = env.initial_state(pos, params)
    assert_like_magent2(env, observe, ref, state, params, "at the start")
    hits = 0
    for t in range(steps):
        actions = rng.integers(0, NUM_ACTIONS, n)
        actions = order_free(actions, state, n) if safe else actions
        ts = step_like_magent2(env, step, observe, ref, state, actions, jax.random.PRNGKey(t), params, f"step {t}")
        hits += int(ts.info["eats"] + ts.info["attacks"])
        state = ts.state
    dead = ~np.asarray(state.alive)
    return hits, int(dead[:n].sum()), int(dead[n:].sum())


def test_equals_magent2_step_for_step(small, step, observe):
    """4 agents and 2 foods in a corner of the 12 x 12 map, a 120-step episode."""
    pos = np.array([[1, 1], [2, 1], [1, 2], [3, 2], [2, 2], [3, 1]])
    assert assert_steps_like_magent2(small, step, observe, pos, 120, np.random.default_rng(0))[0] >= 20


def test_deaths_and_eaten_foods_equal_magent2_step_for_step(small, step, observe):
    """hp 2 for agents and foods (3 hits kill) and ``order_free`` attacks: agents die and foods are eaten away
    (kills, hits on the dying, their alive masks, hp and vanished cells) as in magent2, step for step."""
    pos = np.array([[1, 1], [2, 1], [1, 2], [3, 2], [2, 2], [3, 1]])
    params = small.default_params.replace(agent_hp=jnp.float32(2.0), food_hp=jnp.float32(2.0))
    hits, dead_agents, eaten = assert_steps_like_magent2(small, step, observe, pos, 60, np.random.default_rng(2),
                                                         params, safe=True)
    assert hits >= 10 and dead_agents == 2 and eaten == 2


@pytest.mark.slow  # a compile at the reference's numbers of agents and foods
def test_equals_magent2_step_for_step_with_20_agents_and_12_foods():
    """The reference's 20 agents and 12 foods crowded on a 12 x 12 map, a 120-step episode."""
    env = envs.make("jungle", map_size=12)
    rng = np.random.default_rng(0)
    interior = np.array([(x, y) for y in range(1, 11) for x in range(1, 11)])
    pos = interior[rng.choice(len(interior), 32, replace=False)]
    assert assert_steps_like_magent2(env, jax.jit(env.step_env), jax.jit(env.observe), pos, 120, rng)[0] > 100


def test_death_outcomes_equal_magent2s_over_seeds(small, step):
    """The scene of ``test_a_death_depends_on_the_attack_order_as_in_magent2`` in magent2 under 16 seeds gives
    the outcomes (rewards, alive masks, the food's hp) that the random attack order gives here."""
    params = small.default_params.replace(agent_hp=jnp.float32(1.0))
    ours, theirs = set(), set()
    for seed in range(16):
        ref = Magent2Jungle(12, SCENE, 4, agent_hp=1.0, seed=seed)
        reward, alive, _ = ref.step(np.array(EAT_AND_BE_ATTACKED))
        theirs.add((tuple(np.round(reward.astype(np.float64), 4).tolist()), tuple(alive.tolist()),
                    round(float(ref.observe()[1][4]) * 500, 3)))
    for seed in range(40):
        ts = step(jax.random.PRNGKey(seed), small.initial_state(np.array(SCENE), params),
                  jnp.array(EAT_AND_BE_ATTACKED), params)
        ours.add((tuple(np.round(np.asarray(ts.reward, np.float64), 4).tolist()),
                  tuple(np.asarray(ts.state.alive).tolist()), round(float(ts.state.hp[4]), 3)))
    assert ours == theirs and len(theirs) == 4
