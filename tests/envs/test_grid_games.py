"""Hu & Wellman's Grid Games 1 and 2: hand-computed rules, the exact tabular model against sampled steps and against
closed-form values of known paths, and the state index."""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.grid_games import START, GridGameState
from jaxmarl_core import solvers, tabular
from tests.conftest import optimised_jit

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
GG1, GG2 = envs.make("grid_game_1"), envs.make("grid_game_2")
GG2_RESTATED = envs.make("grid_game_2", rules="restated")
PARAMS = GG1.default_params


def board(p0, p1, t=0):
    return GridGameState(pos=jnp.array([p0, p1], jnp.int32), t=jnp.int32(t))


@functools.partial(jax.jit, static_argnums=0)
def _resolve(env, state, actions, passes):
    return env.resolve(state, actions, passes, PARAMS)


def resolve(env, p0, p1, a0, a1, passes=(True, True)):
    new, reward, reached, collision = _resolve(env, board(p0, p1), jnp.array([a0, a1]), jnp.array(passes))
    return np.asarray(new.pos).tolist(), np.asarray(reward).tolist(), np.asarray(reached).tolist(), bool(collision)


# -- rules ----------------------------------------------------------------------------------------------------------
def test_start_and_goals():
    for env in (GG1, GG2):
        obs, state = env.reset(jax.random.PRNGKey(0))
        np.testing.assert_array_equal(state.pos, [[2, 0], [2, 2]])
        assert obs.shape == (2, 18) and env.num_agents == 2 and env.num_actions == 4
    np.testing.assert_array_equal(GG1.goals, [[0, 2], [0, 0]])  # opposite top corners
    np.testing.assert_array_equal(GG2.goals, [[0, 1], [0, 1]])  # the shared top centre
    assert GG1.discount == GG2.discount == 0.99


@pytest.mark.parametrize("env", [GG1, GG2], ids=["gg1", "gg2"])
def test_moves_off_the_grid_fail(env):
    assert resolve(env, [2, 0], [2, 2], LEFT, RIGHT) == ([[2, 0], [2, 2]], [0, 0], [False, False], False)
    assert resolve(env, [2, 0], [2, 2], DOWN, DOWN) == ([[2, 0], [2, 2]], [0, 0], [False, False], False)
    assert resolve(env, [0, 0], [1, 2], UP, RIGHT) == ([[0, 0], [1, 2]], [0, 0], [False, False], False)


@pytest.mark.parametrize("env", [GG1, GG2], ids=["gg1", "gg2"])
def test_collisions_bounce_both_back_with_minus_one(env):
    # both step into the centre
    assert resolve(env, [1, 0], [1, 2], RIGHT, LEFT) == ([[1, 0], [1, 2]], [-1, -1], [False, False], True)
    # agent 0 steps onto agent 1, whose own move fails against the wall: the same cell, a collision
    assert resolve(env, [1, 1], [1, 2], RIGHT, RIGHT) == ([[1, 1], [1, 2]], [-1, -1], [False, False], True)
    # swapping cells is no collision; neither is following the other
    assert resolve(env, [1, 0], [1, 1], RIGHT, LEFT) == ([[1, 1], [1, 0]], [0, 0], [False, False], False)
    assert resolve(env, [1, 0], [1, 1], RIGHT, RIGHT) == ([[1, 1], [1, 2]], [0, 0], [False, False], False)


def test_gg1_goals_end_the_game_and_both_can_score_together():
    assert resolve(GG1, [1, 2], [2, 0], UP, UP) == ([[0, 2], [1, 0]], [100, 0], [True, False], False)
    assert resolve(GG1, [1, 1], [1, 0], DOWN, UP) == ([[2, 1], [0, 0]], [0, 100], [False, True], False)
    assert resolve(GG1, [1, 2], [1, 0], UP, UP) == ([[0, 2], [0, 0]], [100, 100], [True, True], False)
    # the other agent's goal is an ordinary cell
    assert resolve(GG1, [1, 0], [1, 2], UP, UP) == ([[0, 0], [0, 2]], [0, 0], [False, False], False)
    # walking into an agent's goal as it enters is no collision: it scores, the game ends
    assert resolve(GG1, [1, 2], [0, 1], UP, RIGHT) == ([[0, 2], [0, 2]], [100, 0], [True, False], False)
    ts = GG1.step_env(jax.random.PRNGKey(0), board([1, 2], [2, 0]), jnp.array([UP, UP]), PARAMS)
    assert bool(ts.terminated) and not bool(ts.truncated)
    np.testing.assert_array_equal(ts.info["reached_goal"], [True, False])


def test_gg2_shared_goal_entered_together_scores_for_both():
    assert resolve(GG2, [0, 0], [0, 2], RIGHT, LEFT) == ([[0, 1], [0, 1]], [100, 100], [True, True], False)
    assert resolve(GG2, [1, 1], [1, 2], UP, LEFT) == ([[0, 1], [1, 1]], [100, 0], [True, False], False)


@pytest.mark.parametrize("passes", [(True, True), (False, True), (True, False), (False, False)])
def test_gg2_barriers_between_the_bottom_corners_and_the_cells_above(passes):
    up0 = [1, 0] if passes[0] else [2, 0]
    up1 = [1, 2] if passes[1] else [2, 2]
    assert resolve(GG2, [2, 0], [2, 2], UP, UP, passes) == ([up0, up1], [0, 0], [False, False], False)
    assert resolve(GG2, [1, 0], [1, 1], DOWN, UP, passes)[0] == [[2, 0], [0, 1]]  # the paper: only Up is chancy
    down0 = [2, 0] if passes[0] else [1, 0]  # the restated rules: down across a barrier too
    assert resolve(GG2_RESTATED, [1, 0], [1, 1], DOWN, UP, passes)[0] == [down0, [0, 1]]
    # other moves never meet a barrier, and Grid Game 1 has none
    assert resolve(GG2, [2, 0], [1, 2], RIGHT, LEFT, passes)[0] == [[2, 1], [1, 1]]
    assert resolve(GG2, [2, 1], [1, 1], UP, LEFT, passes)[0] == [[1, 1], [1, 0]]
    assert resolve(GG1, [2, 0], [2, 2], UP, UP, passes)[0] == [[1, 0], [1, 2]]


def test_gg2_a_failed_crossing_can_collide():
    # agent 0 stays below the barrier while agent 1 steps into its cell
    assert resolve(GG2, [2, 0], [2, 1], UP, LEFT, (False, True)) == ([[2, 0], [2, 1]], [-1, -1], [False, False], True)
    assert resolve(GG2, [2, 0], [2, 1], UP, LEFT, (True, True)) == ([[1, 0], [2, 0]], [0, 0], [False, False], False)


def test_gg2_barrier_passes_with_probability_one_half():
    num = 8000
    keys = jax.random.split(jax.random.PRNGKey(0), num)
    ts = jax.jit(jax.vmap(GG2.step_env, in_axes=(0, None, None, None)))(keys, GG2.reset(keys[0])[1],
                                                                         jnp.array([UP, UP]), PARAMS)
    rates = np.asarray(jnp.mean(ts.state.pos[:, :, 0] == 1, axis=0))
    assert np.all(np.abs(rates - 0.5) < 5 * 0.5 / np.sqrt(num))  # 5 sigma
    both = float(jnp.mean(jnp.all(ts.state.pos[:, :, 0] == 1, axis=1)))
    assert abs(both - 0.25) < 5 * np.sqrt(0.25 * 0.75 / num)  # independent crossings


def test_time_limit_truncates_and_resets():
    env = envs.make("grid_game_1", max_steps=4)
    _, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for t in range(1, 5):
        ts = step(jax.random.PRNGKey(t), state, jnp.array([LEFT, RIGHT]))  # both press against the side walls
        assert not bool(ts.terminated) and bool(ts.truncated) == (t == 4)
        state = ts.state
    assert int(ts.state.t) == 0


def test_observations_in_each_agents_perspective():
    obs = GG2._obs(board([1, 0], [0, 2]))
    assert float(obs.sum()) == 4
    assert obs[0, 3] == 1 and obs[0, 9 + 2] == 1 and obs[1, 2] == 1 and obs[1, 9 + 3] == 1
    np.testing.assert_array_equal(GG2.global_state(board([1, 0], [0, 2])), obs[0])


@pytest.mark.parametrize("name", ["grid_game_1", "grid_game_2"])
def test_jit_vmap_episodes_auto_reset_and_final_obs(name):
    env = envs.make(name, max_steps=5)
    batch = 256
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), batch), PARAMS)

    def step(key, state):
        k_act, k_env = jax.random.split(key)
        return env.step(k_env, state, jax.random.randint(k_act, (2,), 0, 4), PARAMS)

    step = jax.jit(jax.vmap(step))
    elapsed = np.zeros(batch, int)
    for t in range(10):
        ts = step(jax.random.split(jax.random.PRNGKey(t + 1), batch), state)
        done = np.asarray(ts.done)
        assert ts.reward.dtype == jnp.float32 and ts.obs.shape == (batch, 2, 18)
        assert all(bool(jnp.all(jax.vmap(sp.contains)(ts.obs[:, i]))) for i, sp in enumerate(env.observation_spaces))
        elapsed += 1
        np.testing.assert_array_equal(ts.truncated, (elapsed == 5) & ~np.asarray(ts.terminated))
        np.testing.assert_array_equal(np.asarray(ts.obs)[~done], np.asarray(ts.info["final_obs"])[~done])
        np.testing.assert_array_equal(np.asarray(ts.state.pos)[done], np.broadcast_to(START, (done.sum(), 2, 2)))
        np.testing.assert_array_equal(np.asarray(ts.state.t)[done], 0)
        elapsed[done] = 0
        state = ts.state


def test_registry_arguments():
    assert envs.env_args("grid_game_2") == {"max_steps": 100, "rules": "paper", "random_start": False}
    with pytest.raises(ValueError, match="max_steps"):
        envs.make("grid_game_1", max_steps=0)
    with pytest.raises(ValueError, match="rules must be one of"):
        envs.make("grid_game_1", rules="greenwald")
    assert GG1.name == "grid_game_1" and GG2.name == "grid_game_2"


# -- the tabular model ------------------------------------------------------------------------------------------------
MODELS = {1: jax.jit(GG1.tabular_model)(PARAMS), 2: jax.jit(GG2.tabular_model)(PARAMS)}


@pytest.mark.parametrize("game", [1, 2])
def test_state_index_is_a_bijection_onto_the_reachable_states(game):
    env, model = (GG1, GG2)[game - 1], MODELS[game]
    index = jnp.arange(env.num_states)
    np.testing.assert_array_equal(jax.vmap(env.state_index)(jax.vmap(env.state_from_index)(index)), index)
    cells = [(r, c) for r in range(3) for c in range(3)]
    pos = jnp.array([[a, b] for a in cells for b in cells], jnp.int32)  # every pair of cells, once
    got = jax.vmap(env.state_index)(GridGameState(pos=pos, t=jnp.zeros(len(pos), jnp.int32)))
    np.testing.assert_array_equal(np.sort(np.asarray(got)), np.arange(81))
    # the states a step can start from: two distinct cells, neither agent on its goal (Grid Game 1: 8 * 8 - 7;
    # Grid Game 2: 8 * 7), all reachable from the start (breadth-first search on the model's graph)
    edges = np.asarray(model.transition).sum(axis=(1, 2)) > 0
    reach = np.asarray(model.initial) > 0
    while not np.array_equal(reach, reach | edges[reach].any(0)):
        reach = reach | edges[reach].any(0)
    live = np.asarray(model.transition).sum(axis=(1, 2, 3)) > 0
    np.testing.assert_array_equal(reach, live)
    assert reach.sum() == (57 if game == 1 else 56)
    assert int(np.argmax(model.initial)) == int(env.state_index(board(START[0], START[1])))


@functools.partial(jax.jit, static_argnums=0)
def sample_steps(env, keys, state, actions):
    """One step from ``state`` per key -> (index of the state reached, terminated, reward [2])."""
    def sample(key):
        ts, final = env.step_with_final_state(key, state, actions, PARAMS)
        return env.state_index(final), ts.terminated, ts.reward
    return jax.vmap(sample)(keys)


@pytest.mark.parametrize("game,p0,p1,actions", [
    (2, [2, 0], [2, 2], [UP, UP]),        # both barriers: four outcomes
    (2, [2, 0], [2, 1], [UP, LEFT]),      # a failed crossing collides
    (2, [1, 1], [2, 2], [UP, UP]),        # agent 0 scores while agent 1 tries the barrier
    (1, [1, 2], [1, 1], [UP, UP]),        # a goal for agent 0, a move for agent 1
])
def test_model_matches_sampled_steps(game, p0, p1, actions):
    env, model = (GG1, GG2)[game - 1], MODELS[game]
    num = 20000
    state = board(p0, p1)
    nxt, ended, reward = jax.device_get(sample_steps(env, jax.random.split(jax.random.PRNGKey(5), num), state,
                                                     jnp.array(actions)))
    s = int(env.state_index(state))
    row = np.asarray(model.transition[s, actions[0], actions[1]])
    freq = np.bincount(nxt[~ended], minlength=env.num_states) / num
    assert np.all(np.abs(freq - row) <= 5 * np.sqrt(row * (1 - row) / num) + 1e-6)  # 5 binomial sigmas
    p_end = 1 - row.sum()
    assert abs(ended.mean() - p_end) <= 5 * np.sqrt(p_end * (1 - p_end) / num) + 1e-6
    # each reward takes two values 101 apart at most: 5 standard errors are at most 5 * 50.5 / sqrt(num)
    np.testing.assert_allclose(reward.mean(0), model.reward[s, actions[0], actions[1]], atol=5 * 50.5 / np.sqrt(num))


def path_policy(env, agent, moves):
    """[81, 4] one-hot: in each state, the action ``moves`` (cell -> action) gives ``agent``'s own cell, else UP."""
    pos = np.asarray(jax.vmap(env.state_from_index)(jnp.arange(env.num_states)).pos[:, agent])
    return jax.nn.one_hot(jnp.array([moves.get(tuple(cell), UP) for cell in pos.tolist()]), 4)


def test_gg1_coordinated_four_step_paths_are_worth_100_gamma_cubed_to_both():
    # agent 0 runs along the bottom and up the right side; agent 1 up one and along the middle row, then up
    x = path_policy(GG1, 0, {(2, 0): RIGHT, (2, 1): RIGHT, (2, 2): UP, (1, 2): UP})
    y = path_policy(GG1, 1, {(2, 2): UP, (1, 2): LEFT, (1, 1): LEFT, (1, 0): UP})
    values = tabular.policy_values(MODELS[1], x, y, GG1.discount)
    start = int(GG1.state_index(board(START[0], START[1])))
    np.testing.assert_allclose(values[start], [100 * 0.99 ** 3] * 2, rtol=1e-5)


def test_gg2_the_agent_trying_the_barrier_gets_half():
    # Greenwald & Hall: "the agent that moves up the center scores 100, but the agent that attempts to move through
    # the barrier scores only 50 on average" (undiscounted; both arrive after three steps if the first crossing passes)
    x = path_policy(GG2, 0, {(2, 0): RIGHT, (2, 1): UP, (1, 1): UP})
    y = path_policy(GG2, 1, {(2, 2): UP, (1, 2): UP, (0, 2): LEFT})
    values = tabular.policy_values(MODELS[2], x, y, GG2.discount)
    start = int(GG2.state_index(board(START[0], START[1])))
    np.testing.assert_allclose(values[start], [100 * 0.99 ** 2, 50 * 0.99 ** 2], rtol=1e-5)


def test_avail_actions_are_the_in_grid_moves_and_count_the_papers_424_tuples():
    avail = np.asarray(MODELS[1].avail)  # [81, 2, 4]
    corner, edge, centre = 9 * 0 + 1, 9 * 1 + 0, 9 * 4 + 0  # agent 0 in (0, 0), (0, 1), (1, 1)
    np.testing.assert_array_equal(avail[corner, 0], [False, True, False, True])  # down, right
    np.testing.assert_array_equal(avail[edge, 0], [False, True, True, True])
    np.testing.assert_array_equal(avail[centre, 0], [True, True, True, True])
    np.testing.assert_array_equal(avail[corner, 1], [False, True, True, True])  # agent 1 on the top edge (0, 1)
    live = np.asarray(MODELS[1].transition).sum(axis=(1, 2, 3)) > 0
    moves = avail[live].sum(-1)  # [57, 2]: each agent's in-grid moves in the live states
    assert int(np.prod(moves, -1).sum()) == 424  # section 5.1.3: "the total number of state-action tuples ... is 424"
    # the other readings of the rules give other counts: all four moves everywhere, or a "stay" besides the moves
    assert 16 * len(moves) == 912 and int(np.prod(moves + 1, -1).sum()) == 793
    assert np.all(np.asarray(GG2_RESTATED.tabular_model(PARAMS).avail))


def test_random_starts_cover_the_live_pairs_uniformly():
    env = envs.make("grid_game_1", random_start=True)
    num = 5700
    _, state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(3), num))
    index = np.asarray(jax.vmap(env.state_index)(state))
    model = env.tabular_model(PARAMS)
    live = np.asarray(model.transition).sum(axis=(1, 2, 3)) > 0
    counts = np.bincount(index, minlength=81)
    assert np.all(counts[~live] == 0) and live.sum() == 57  # never on a goal, never together (footnote 5)
    assert np.all(np.abs(counts[live] - 100) < 5 * 10)  # 5 binomial sigmas around num / 57
    np.testing.assert_allclose(np.asarray(model.initial)[live], 1 / 57)


def cell(paper: int) -> int:
    """The paper's location index (0-2 the bottom row, left to right) -> 3 * row + col here."""
    return 3 * (2 - paper // 3) + paper % 3


def paper_state(l1: int, l2: int) -> int:
    return 9 * cell(l1) + cell(l2)


def test_gg2_transitions_of_section_5_1_1():
    """P((0 1)|(0 2), Up, Left) = P((3 1)|...) = 0.5; P((1 2)|(0 2), Right, Up) = P((1 5)|...) = 0.5; both Up: (0 2),
    (3 2), (0 5), (3 5) with 0.25 each."""
    row = np.asarray(MODELS[2].transition[paper_state(0, 2)])  # [4, 4, 81]
    for (a0, a1), outcomes in {(UP, LEFT): [(0, 1), (3, 1)], (RIGHT, UP): [(1, 2), (1, 5)],
                               (UP, UP): [(0, 2), (3, 2), (0, 5), (3, 5)]}.items():
        want = np.zeros(81)
        for l1, l2 in outcomes:
            want[paper_state(l1, l2)] = 1 / len(outcomes)
        np.testing.assert_allclose(row[a0, a1], want, atol=1e-6)


@pytest.fixture(scope="module")
def nash_q_values():
    """Value iteration of the Nash Q-values under each selection rule: {(game, rule): (V [81, 2], Q [81, 4, 4, 2],
    x [81, 4], y [81, 4])}."""
    solve = optimised_jit(tabular.nash_values, static_argnums=(1, 2, 3, 4))
    out = {}
    for game, rule, player in ((1, "first", 0), (1, "second", 0)):
        v, x, y = solve(MODELS[game], 0.99, rule, player, 300)
        out[(game, rule)] = np.asarray(v), np.asarray(tabular.q_values(MODELS[game], v, 0.99)), x, y
    return out


def test_gg1_nash_q_values_of_table_4_and_the_start_value_97(nash_q_values):
    """Both paths arriving together: Q(s0) is 97.0 for every joint move but the collision Right-Left, 95.1
    (Hu & Wellman's Table 4), worth (97.0, 97.0), and every equilibrium of that stage game is worth as much; not so
    in every state (the next test: the Nash Q-values are not unique)."""
    v, q, _, _ = nash_q_values[(1, "second")]
    s0 = paper_state(0, 2)
    np.testing.assert_allclose(v[s0], [100 * 0.99 ** 3] * 2, rtol=1e-5)
    for a0, a1 in ((UP, UP), (UP, LEFT), (RIGHT, UP)):
        np.testing.assert_allclose(q[s0, a0, a1], [97.03] * 2, atol=0.01)
    np.testing.assert_allclose(q[s0, RIGHT, LEFT], [-1 + 0.99 * 97.03] * 2, atol=0.01)
    avail = np.asarray(MODELS[1].avail)
    live = np.flatnonzero(np.asarray(MODELS[1].transition).sum(axis=(1, 2, 3)) > 0)
    A, B = jax.vmap(solvers.restrict)(q[live, ..., 0], q[live, ..., 1], avail[live, 0], avail[live, 1])
    xs, ys, is_eq = map(np.asarray, jax.jit(jax.vmap(solvers.bimatrix_equilibria))(A, B))
    worth = np.stack([np.einsum("scn,snm,scm->sc", xs, q[live, ..., i], ys) for i in range(2)], -1)  # [S, C, 2]
    spread = np.where(np.asarray(is_eq)[..., None], np.abs(worth - v[live][:, None]), 0.0).max(axis=(1, 2))
    assert spread[list(live).index(s0)] < 0.01  # "each is a global optimal point with the value (97.0, 97.0)"
    assert spread.max() > 1.0  # but elsewhere a stage game of this Q has equilibria of other values


def test_gg1_agent_1s_path_left_up_up_left_blocks_every_shortest_path_of_agent_0():
    """Section 5.1's rules alone, move by move: agent 1 (the paper's agent 2) walks 2 -> 1 -> 4 -> 7 -> 6 (paper
    cells); each of agent 0's six four-step paths to cell 8 tries to enter a cell agent 1 enters at the same step, so
    both are bounced back with -1 (and agent 0 cannot reach cell 8 in four steps any other way: the next test)."""
    path_1 = [LEFT, UP, UP, LEFT]
    collided = []
    for ups in itertools.combinations(range(4), 2):  # agent 0's paths: two Ups and two Rights in some order
        path_0 = [UP if t in ups else RIGHT for t in range(4)]
        p0, p1, hit = [2, 0], [2, 2], False
        for a0, a1 in zip(path_0, path_1):
            (p0, p1), reward, reached, collision = resolve(GG1, p0, p1, a0, a1)
            if collision:
                assert reward == [-1, -1] and not any(reached)
                hit = True
                break
        collided.append(hit)
    assert collided == [True] * 6


def test_gg1_nash_q_values_are_not_unique(nash_q_values):
    """Hu & Wellman call Grid Game 1's Nash Q-values unique, but the first-Nash fixed point differs: agent 1 walks
    left, up, up, left, which meets each of agent 0's six shortest paths in a collision, and agent 0 (which cannot
    wait: every move leaves its cell) scores 0. Its joint policy is an exact equilibrium in every state."""
    v, _, x, y = nash_q_values[(1, "first")]
    np.testing.assert_allclose(v[paper_state(0, 2)], [0.0, 100 * 0.99 ** 3], atol=1e-3)

    @jax.jit
    def gains(x, y):
        values = tabular.policy_values(MODELS[1], x, y, 0.99)
        return jnp.stack([tabular.best_response(MODELS[1], y, 0, 0.99, 1000)[0] - values[:, 0],
                          tabular.best_response(MODELS[1], x, 1, 0.99, 1000)[0] - values[:, 1]])

    gains = np.asarray(gains(x, y))
    live = np.asarray(MODELS[1].transition).sum(axis=(1, 2, 3)) > 0
    assert np.abs(gains[:, live]).max() < 1e-3


@pytest.mark.slow
def test_gg2_nash_q_values_of_figure_8():
    """The first two of Hu & Wellman's three Nash Q-functions at (0 2) (Figure 8; they round to integers): agent 0
    walling up while agent 1 takes the centre (first Nash here), and the mirror image (best for agent 0)."""
    s0 = paper_state(0, 2)
    paper = {"first": {(RIGHT, LEFT): (47, 96), (RIGHT, UP): (98, 49), (UP, LEFT): (49, 98), (UP, UP): (61, 73)},
             "best": {(RIGHT, LEFT): (96, 47), (RIGHT, UP): (98, 49), (UP, LEFT): (49, 98), (UP, UP): (73, 61)}}
    for rule, table in paper.items():
        v = tabular.nash_values(MODELS[2], 0.99, rule, 0, 300)[0]
        q = np.asarray(tabular.q_values(MODELS[2], v, 0.99))
        for (a0, a1), want in table.items():
            np.testing.assert_allclose(q[s0, a0, a1], want, atol=0.6)


@pytest.mark.slow
def test_first_nash_in_lemke_howsons_order_finds_the_papers_table_4():
    """Value iteration with the first equilibrium in Lemke-Howson's order, labels dropped in the paper's action order
    (Left, Right, Down, Up; agent 0's before agent 1's): in Grid Game 1 the coordinated Nash Q-values of Table 4,
    (97.03, 97.03) from the corners, an exact equilibrium in every state, where the support order's first Nash
    finds (0, 97.03). The blocking equilibrium still exists (test_gg1_nash_q_values_are_not_unique): the order only
    decides which one value iteration reaches. In every live state but one, every equilibrium of the stage game is
    worth the same as the one picked; in (3 5) a weak mixed equilibrium of agent 0 is worth 96.07 to agent 1."""
    labels = (LEFT, RIGHT, DOWN, UP, 4 + LEFT, 4 + RIGHT, 4 + DOWN, 4 + UP)
    solve = jax.jit(tabular.nash_values, static_argnums=(1, 2, 3, 4, 6, 7))
    v, x, y = solve(MODELS[1], 0.99, "first", 0, 300, None, "lemke_howson", labels)
    v, q = np.asarray(v), np.asarray(tabular.q_values(MODELS[1], v, 0.99))
    s0 = paper_state(0, 2)
    np.testing.assert_allclose(v[s0], [100 * 0.99 ** 3] * 2, rtol=1e-5)
    np.testing.assert_allclose(q[s0, RIGHT, LEFT], [-1 + 0.99 * 97.03] * 2, atol=0.01)
    live = np.flatnonzero(np.asarray(MODELS[1].transition).sum(axis=(1, 2, 3)) > 0)
    values = tabular.policy_values(MODELS[1], x, y, 0.99)
    gains = np.stack([np.asarray(tabular.best_response(MODELS[1], y, 0, 0.99, 1000)[0] - values[:, 0]),
                      np.asarray(tabular.best_response(MODELS[1], x, 1, 0.99, 1000)[0] - values[:, 1])])
    assert np.abs(gains[:, live]).max() < 1e-3
    avail = np.asarray(MODELS[1].avail)
    A, B = jax.vmap(solvers.restrict)(q[live, ..., 0], q[live, ..., 1], avail[live, 0], avail[live, 1])
    xs, ys, is_eq = map(np.asarray, jax.jit(jax.vmap(solvers.bimatrix_equilibria))(A, B))
    worth = np.stack([np.einsum("scn,snm,scm->sc", xs, q[live, ..., i], ys) for i in range(2)], -1)
    spread = np.where(is_eq[..., None], np.abs(worth - v[live][:, None]), 0.0).max(axis=(1, 2))
    assert list(live[spread > 0.01]) == [paper_state(3, 5)]
    # Grid Game 2: the paper's order reaches the second table of Figure 8 (agent 0 takes the centre) for "first"
    # and the first table (agent 1 takes it, the paper's first-Nash result of Table 9) for "second"; with agent 1's
    # labels dropped first (lh_order="agent2_first") the reverse
    agent2_first = solvers.lemke_howson_labels((LEFT, RIGHT, DOWN, UP), 4, "agent2_first")
    for rule, order, want in (("first", labels, [98.01, 49.0]), ("second", labels, [49.0, 98.01]),
                              ("first", agent2_first, [49.0, 98.01]), ("second", agent2_first, [98.01, 49.0])):
        v2 = np.asarray(solve(MODELS[2], 0.99, rule, 0, 300, None, "lemke_howson", order)[0])
        np.testing.assert_allclose(v2[s0], want, atol=0.05)
