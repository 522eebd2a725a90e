"""DGN's battle (envs/dgn_battle.py): respawns, the enemies' scripted policy, the fixed episode length, the k nearest
neighbourhoods against a brute-force numpy search, bad input, and its engine (unequal teams, DGN's rewards) step for
step against magent2 playing the released code's reward config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.battle import ATTACK_OFFSETS, MOVE_OFFSETS, NUM_ACTIONS, Battle
from envs.dgn_battle import DGNBattle, TwoTeams, k_nearest

NUM_MOVES = len(MOVE_OFFSETS)


@pytest.fixture(scope="module")
def small():
    """A 12 x 12 map, 4 learners against 2 enemies, 7-step episodes."""
    return DGNBattle(map_size=12, n_learners=4, n_enemies=2, max_cycles=7)


@pytest.fixture(scope="module")
def small_step(small):
    return jax.jit(small.step)


def state_at(env, pos, alive=None):
    return env.engine.initial_state(np.asarray(pos, np.int32), env.default_params, alive=alive)


@pytest.mark.slow  # two compiles of battle's step
def test_two_teams_of_equal_size_are_battles_rules():
    """The unequal-team engine with n_blue = n_per_side steps exactly as ``Battle``."""
    battle, engine = Battle(map_size=16, n_per_side=2, max_cycles=9), TwoTeams(map_size=16, n_per_side=2, n_blue=2,
                                                                                max_cycles=9)
    pos = np.array([[3, 3], [4, 4], [4, 3], [6, 6]], np.int32)
    s1, s2 = battle.initial_state(pos), engine.initial_state(pos)
    step1, step2 = jax.jit(battle.step), jax.jit(engine.step)
    for t in range(3):
        a = jax.random.randint(jax.random.PRNGKey(t), (4,), 0, NUM_ACTIONS)
        t1, t2 = step1(jax.random.PRNGKey(100 + t), s1, a), step2(jax.random.PRNGKey(100 + t), s2, a)
        for x, y in zip(jax.tree.leaves((t1.obs, t1.state, t1.reward)), jax.tree.leaves((t2.obs, t2.state, t2.reward))):
            np.testing.assert_array_equal(x, y)
        s1, s2 = t1.state, t2.state


def test_respawn_fills_dead_slots_at_free_cells(small):
    pos = np.array([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6]])
    alive = np.array([True, False, True, False, True, False])
    state = state_at(small, pos, alive).replace(hp=jnp.full((6,), 3.0), last_action=jnp.full((6,), 5))
    respawn = jax.jit(small.respawn)
    for seed in range(20):
        new = respawn(jax.random.PRNGKey(seed), state, small.default_params)
        p = np.asarray(new.pos)
        assert np.asarray(new.alive).all()
        np.testing.assert_array_equal(p[alive], pos[alive])  # the living stay where they are, as they are
        np.testing.assert_array_equal(np.asarray(new.hp)[alive], 3.0)
        np.testing.assert_array_equal(np.asarray(new.hp)[~alive], 10.0)
        np.testing.assert_array_equal(np.asarray(new.last_action)[~alive], NUM_ACTIONS)
        assert len({tuple(c) for c in p}) == 6  # distinct cells
        assert p.min() >= 1 and p.max() <= 10  # inside the walls


_ENEMY_POLICIES = {}


def enemy_actions(env, state, seeds):
    """int [seeds, n_enemies]: the enemies' actions under keys 0 .. seeds - 1 (one compiled function per env)."""
    if env not in _ENEMY_POLICIES:
        _ENEMY_POLICIES[env] = jax.jit(jax.vmap(env.enemy_actions, in_axes=(0, None)))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(200))
    return np.asarray(_ENEMY_POLICIES[env](keys, state))[:seeds]


def test_enemies_attack_an_adjacent_learner_else_chase_the_nearest_visible_else_wander(small):
    # enemy 4 at (5, 5) has learner 0 at (6, 5) beside it: attack offset (1, 0)
    # enemy 5 at (2, 9) sees learner 1 at (2, 5) (distance 4): the move that brings it nearest is (0, -2)
    # learners 2 and 3 are far from both
    pos = [[6, 5], [2, 5], [10, 1], [10, 2], [5, 5], [2, 9]]
    state = state_at(small, pos)
    attack_right = NUM_MOVES + int(np.flatnonzero((ATTACK_OFFSETS == (1, 0)).all(1))[0])
    up_two = int(np.flatnonzero((MOVE_OFFSETS == (0, -2)).all(1))[0])
    assert (enemy_actions(small, state, 5) == [attack_right, up_two]).all()
    # with nobody within view (radius 6) the enemy moves at random, never attacks
    far = state_at(small, [[1, 1], [1, 2], [2, 1], [2, 2], [9, 10], [10, 10]])
    moves = enemy_actions(small, far, 40)
    assert (moves < NUM_MOVES).all() and len(np.unique(moves)) > 3
    # the random choice among several adjacent learners covers them all
    crowd = state_at(small, [[4, 5], [6, 5], [5, 4], [10, 10], [5, 5], [1, 10]])
    picks = set(enemy_actions(small, crowd, 60)[:, 0].tolist())
    want = {NUM_MOVES + int(np.flatnonzero((ATTACK_OFFSETS == d).all(1))[0]) for d in [(-1, 0), (1, 0), (0, -1)]}
    assert picks == want
    # enemy_epsilon = 1: uniformly random actions
    noisy = DGNBattle(map_size=12, n_learners=4, n_enemies=2, max_cycles=7, enemy_epsilon=1.0)
    acts = enemy_actions(noisy, state, 200).ravel()
    assert len(np.unique(acts)) == NUM_ACTIONS


def test_episode_lasts_max_cycles_with_full_teams(small, small_step):
    step = small_step
    obs, state = small.reset(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    for t in range(1, 2 * small.max_cycles + 1):
        key, k_a, k_s = jax.random.split(key, 3)
        ts = step(k_s, state, jax.random.randint(k_a, (4,), 0, NUM_ACTIONS))
        assert not bool(ts.terminated)
        assert bool(ts.truncated) == (t % small.max_cycles == 0)
        assert np.asarray(ts.state.alive).all() and ts.obs.shape == (4, 13 * 13 + 2)
        assert int(ts.state.t) == t % small.max_cycles
        assert 0 <= float(ts.info["kills"]) <= 2 and 0 <= float(ts.info["deaths"]) <= 4
        state = ts.state


def test_death_costs_the_dead_penalty_and_the_unit_respawns(small, small_step):
    """Learner 0 with 0.5 hp next to enemy 4, which attacks it: it dies (reward -2) and comes back at full hp."""
    pos = [[6, 5], [1, 1], [1, 3], [1, 5], [5, 5], [10, 10]]
    state = state_at(small, pos).replace(hp=jnp.array([0.5, 10, 10, 10, 10, 10], jnp.float32))
    stay = int(np.flatnonzero((MOVE_OFFSETS == 0).all(1))[0])
    ts = small_step(jax.random.PRNGKey(0), state, jnp.full((4,), stay, jnp.int32))
    assert float(ts.reward[0]) == -2.0 and float(ts.info["deaths"]) == 1.0 and float(ts.info["kills"]) == 0.0
    assert float(ts.state.hp[0]) == 10.0 and bool(ts.state.alive[0])


def test_observation_is_presence_minus_enemy_hp_and_position(small):
    pos = [[5, 5], [6, 5], [10, 1], [1, 10], [5, 7], [10, 10]]
    state = state_at(small, pos).replace(hp=jnp.array([10, 10, 10, 10, 4, 10], jnp.float32))
    obs = np.asarray(small.observe(state, small.default_params))
    grid = obs[0, :169].reshape(13, 13)  # [row, col], the learner at the centre (6, 6)
    assert grid[6, 6] == 1.0 and grid[6, 7] == 1.0  # itself, learner 1 to its right
    assert grid[8, 6] == pytest.approx(-0.4)  # enemy 4 two rows down at hp 4 / 10
    assert np.count_nonzero(grid) == 3
    np.testing.assert_allclose(obs[0, -2:], [5 / 12, 5 / 12])


def test_k_nearest_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, k = 9, 4
        pos = rng.integers(0, 5, (n, 2)).astype(np.int32)  # ties in distance are common on a 5 x 5 grid
        alive = rng.random(n) < 0.6
        idx, mask = map(np.asarray, k_nearest(jnp.asarray(pos), jnp.asarray(alive), k))
        for i in range(n):
            others = sorted((int(np.sum((pos[j] - pos[i]) ** 2)), j) for j in range(n) if j != i and alive[j])
            want = ([i] + [j for _, j in others])[:k] if alive[i] else []
            assert idx[i, :len(want)].tolist() == want and mask[i].tolist() == [True] * len(want) + [False] * (
                k - len(want))
            assert (idx[i, len(want):] == i).all()


def test_learners_neighbourhoods_and_mean_action_come_from_the_learners_only(small):
    pos = [[1, 1], [1, 2], [8, 5], [9, 9], [1, 3], [2, 1]]
    state = state_at(small, pos)
    idx, mask = jax.jit(small.neighbours)(state)
    assert np.asarray(idx)[0].tolist() == [0, 1, 2, 3] and np.asarray(mask).all()
    mean = np.asarray(jax.jit(small.neighbour_mean_action)(state, jnp.array([0, 3, 5, 7])))
    assert mean.shape == (4, NUM_ACTIONS)
    np.testing.assert_array_equal(mean[0], np.eye(NUM_ACTIONS)[3])  # learner 1 within view; enemies never count


@pytest.mark.parametrize("kwargs,fragment", [
    ({"map_size": 6, "n_learners": 20}, "free cells"),
    ({"num_neighbours": 21}, "num_neighbours (21) must be at most n_learners"),
    ({"n_enemies": 0}, "n_enemies must be a positive integer"),
    ({"enemy_epsilon": 1.5}, "enemy_epsilon must lie in [0, 1]"),
])
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        envs.make("dgn_battle", **kwargs)


@pytest.mark.parametrize("config", ["dgn", "dgn_symmetric"])
def test_engine_with_unequal_teams_equals_magent2_step_for_step(config):
    """The engine behind ``dgn_battle`` (20 learners against 12 enemies, DGN's rewards) crowded into a 10 x 10 corner
    of the 30 x 30 map, 30 steps of ``test_battle``'s script, against magent2 playing the released code's reward
    config on battle's unit (``benchmarks.magent2_battle``): observations, deaths and positions of every unit; the
    learners' rewards ("dgn": the code's enemies have rewards of their own, which ``dgn_battle`` neither
    reproduces nor reports), every unit's rewards ("dgn_symmetric": the learners' rewards for both teams, as here)."""
    from tests.envs.test_battle import assert_steps_like_magent2

    env = DGNBattle()
    engine = env.engine
    rng = np.random.default_rng(0)
    corner = env.interior()[np.all(env.interior() < 11, axis=1)]
    pos = corner[rng.choice(len(corner), engine.num_agents, replace=False)]
    learners = engine.team == 0
    deaths, shared = assert_steps_like_magent2(engine, pos, 30, rng, params=env.default_params, config=config,
                                               rewarded=learners if config == "dgn" else None)
    assert deaths >= 8 and shared >= 5
