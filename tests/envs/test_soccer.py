"""Littman's grid soccer: hand-computed rules, step-for-step equivalence with OpenSpiel's markov_soccer, the exact
tabular model against sampled steps, the state index, and the minimax values' symmetry."""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pyspiel  # the reference: a test extra, so a broken install fails here instead of skipping
import pytest

import envs
from envs.soccer import CELLS, COLS, ROWS, START, SoccerState
from jaxmarl_core import tabular

N, S, E, W, STAND = 0, 1, 2, 3, 4
A, B = 0, 1
ENV = envs.make("soccer")
PARAMS = ENV.default_params.replace(draw_prob=jnp.float32(0.1))  # the paper's test games
NO_DRAW = PARAMS.replace(draw_prob=jnp.float32(0.0))
RESOLVE = jax.jit(ENV.resolve)
STEP = jax.jit(ENV.step_env)
MODEL_OF = jax.jit(ENV.tabular_model)
MODEL = MODEL_OF(PARAMS)


def board(a, b, ball, t=0):
    return SoccerState(pos=jnp.array([a, b], jnp.int32), ball=jnp.int32(ball), t=jnp.int32(t))


def resolve(state, a_action, b_action, first):
    new, reward, scored = RESOLVE(state, jnp.array([a_action, b_action]), jnp.int32(first), NO_DRAW)
    return np.asarray(new.pos).tolist(), int(new.ball), np.asarray(reward).tolist(), np.asarray(scored).tolist()


# -- rules ----------------------------------------------------------------------------------------------------------
def test_start_board_and_random_possession():
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    obs, state = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))(keys, PARAMS)
    np.testing.assert_array_equal(state.pos, np.broadcast_to([[1, 3], [2, 1]], (4000, 2, 2)))
    assert abs(float(jnp.mean(state.ball)) - 0.5) < 5 * 0.5 / np.sqrt(4000)  # 5 sigma of a fair coin
    assert obs.shape == (4000, 2, 2 * CELLS + 2)


@pytest.mark.parametrize("first", [A, B])
def test_moves_off_the_grid_fail(first):
    assert resolve(board([0, 0], [3, 4], A), N, S, first) == ([[0, 0], [3, 4]], A, [0, 0], [False, False])
    assert resolve(board([0, 0], [3, 4], A), W, E, first) == ([[0, 0], [3, 4]], A, [0, 0], [False, False])  # corners
    assert resolve(board([1, 1], [2, 3], B), E, N, first) == ([[1, 2], [1, 3]], B, [0, 0], [False, False])


@pytest.mark.parametrize("first", [A, B])
def test_moving_into_the_other_player_hands_the_ball_to_the_stationary_one(first):
    # the ball carrier runs into a standing opponent: it stays and loses the ball
    assert resolve(board([1, 1], [1, 2], A), E, STAND, first) == ([[1, 1], [1, 2]], B, [0, 0], [False, False])
    # a player without the ball runs into the standing carrier: nothing changes
    assert resolve(board([1, 1], [1, 2], A), STAND, W, first) == ([[1, 1], [1, 2]], A, [0, 0], [False, False])


def test_order_decides_who_reaches_a_contested_square():
    # A (ball) at (1, 1) and B at (1, 3) both step to (1, 2): the first mover gets there, the second bumps into it
    assert resolve(board([1, 1], [1, 3], A), E, W, A) == ([[1, 2], [1, 3]], A, [0, 0], [False, False])
    assert resolve(board([1, 1], [1, 3], A), E, W, B) == ([[1, 1], [1, 2]], B, [0, 0], [False, False])


@pytest.mark.parametrize("first", [A, B])
def test_head_on_swap_leaves_the_ball_with_the_first_mover(first):
    # both bump: the first loses the ball to the second, then wins it back when the second bumps into it
    for ball in (A, B):
        assert resolve(board([1, 1], [1, 2], ball), E, W, first) == ([[1, 1], [1, 2]], first, [0, 0],
                                                                      [False, False])


@pytest.mark.parametrize("first", [A, B])
@pytest.mark.parametrize("row", [1, 2])
def test_goals_left_for_a_right_for_b(first, row):
    new = resolve(board([row, 0], [3, 4], A), W, STAND, first)
    assert new[2:] == ([1, -1], [True, False])
    new = resolve(board([0, 0], [row, 4], B), STAND, E, first)
    assert new[2:] == ([-1, 1], [False, True])


@pytest.mark.parametrize("first", [A, B])
def test_no_goal_from_the_corner_rows_without_the_ball_or_into_ones_own_goal(first):
    assert resolve(board([0, 0], [3, 4], A), W, STAND, first)[2] == [0, 0]  # row 0 has no goal beside it
    assert resolve(board([3, 0], [0, 4], A), W, STAND, first)[2] == [0, 0]
    assert resolve(board([1, 0], [2, 4], B), W, STAND, first)[2] == [0, 0]  # A without the ball
    # own goals: A carrying the ball east off column 4, B west off column 0, just stay
    assert resolve(board([1, 4], [3, 0], A), E, STAND, first) == ([[1, 4], [3, 0]], A, [0, 0], [False, False])
    assert resolve(board([0, 4], [2, 0], B), STAND, W, first) == ([[0, 4], [2, 0]], B, [0, 0], [False, False])


def test_a_steal_by_the_first_move_lets_the_second_mover_score():
    # A (ball) at (1, 3) runs into B at (1, 4), who steps east off the grid beside its goal
    assert resolve(board([1, 3], [1, 4], A), E, E, A) == ([[1, 3], [1, 4]], B, [-1, 1], [False, True])
    # the other order: B's step east fails without the ball, then A's bump hands B the ball: no goal
    assert resolve(board([1, 3], [1, 4], A), E, E, B) == ([[1, 3], [1, 4]], B, [0, 0], [False, False])


def test_after_a_goal_the_second_move_is_not_made():
    assert resolve(board([1, 0], [3, 3], A), W, E, A) == ([[1, 0], [3, 3]], A, [1, -1], [True, False])
    assert resolve(board([1, 0], [3, 3], A), W, E, B) == ([[1, 0], [3, 4]], A, [1, -1], [True, False])


def test_draws_end_steps_without_a_goal_and_only_those():
    always = PARAMS.replace(draw_prob=jnp.float32(1.0))
    ts = STEP(jax.random.PRNGKey(0), board([1, 1], [2, 2], A), jnp.array([N, N]), always)
    assert bool(ts.terminated) and bool(ts.info["draw"]) and not bool(ts.truncated)
    np.testing.assert_array_equal(ts.reward, [0, 0])
    ts = STEP(jax.random.PRNGKey(0), board([1, 0], [3, 3], A), jnp.array([W, N]), always)
    assert bool(ts.terminated) and not bool(ts.info["draw"])
    np.testing.assert_array_equal(ts.reward, [1, -1])
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    ts = jax.vmap(STEP, in_axes=(0, None, None, None))(keys, board([1, 1], [2, 2], A), jnp.array([N, N]), PARAMS)
    rate = float(jnp.mean(ts.info["draw"]))
    assert abs(rate - 0.1) < 5 * np.sqrt(0.1 * 0.9 / 4000)  # 5 sigma
    assert bool(jnp.all(ts.terminated == ts.info["draw"]))


def test_time_limit_truncates_and_resets():
    env = envs.make("soccer", max_steps=3, draw_prob=0.0)
    obs, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for t in range(1, 4):
        ts = step(jax.random.PRNGKey(t), state, jnp.array([STAND, STAND]))
        assert not bool(ts.terminated) and bool(ts.truncated) == (t == 3)
        state = ts.state
    assert int(ts.state.t) == 0
    np.testing.assert_array_equal(ts.state.pos, START)


def test_observations_in_each_agents_perspective():
    obs = ENV._obs(board([1, 3], [2, 1], B))
    a_cell, b_cell = 1 * COLS + 3, 2 * COLS + 1
    assert obs.shape == (2, 42) and float(obs.sum()) == 6
    assert obs[0, a_cell] == 1 and obs[0, CELLS + b_cell] == 1 and obs[0, 2 * CELLS + 1] == 1
    assert obs[1, b_cell] == 1 and obs[1, CELLS + a_cell] == 1 and obs[1, 2 * CELLS] == 1
    np.testing.assert_array_equal(ENV.global_state(board([1, 3], [2, 1], B)), obs[0])


def test_jit_vmap_episodes_auto_reset_and_final_obs():
    env = envs.make("soccer", max_steps=6)
    batch = 256
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), batch), PARAMS)
    assert all(bool(jnp.all(jax.vmap(sp.contains)(obs[:, i]))) for i, sp in enumerate(env.observation_spaces))

    def step(key, state):
        k_act, k_env = jax.random.split(key)
        actions = jax.random.randint(k_act, (2,), 0, 5)
        return env.step(k_env, state, actions, PARAMS)

    step = jax.jit(jax.vmap(step))
    elapsed = np.zeros(batch, int)
    ended = 0
    for t in range(12):
        before = state
        ts = step(jax.random.split(jax.random.PRNGKey(t + 1), batch), state)
        done = np.asarray(ts.done)
        assert ts.reward.shape == (batch, 2) and ts.reward.dtype == jnp.float32
        assert not np.any(np.asarray(ts.terminated) & np.asarray(ts.truncated))
        elapsed += 1
        np.testing.assert_array_equal(ts.truncated, (elapsed == 6) & ~np.asarray(ts.terminated))
        np.testing.assert_array_equal(np.asarray(ts.obs)[~done], np.asarray(ts.info["final_obs"])[~done])
        np.testing.assert_array_equal(np.asarray(ts.state.t)[done], 0)
        np.testing.assert_array_equal(np.asarray(ts.state.pos)[done], np.broadcast_to(START, (done.sum(), 2, 2)))
        np.testing.assert_array_equal(np.asarray(ts.state.t)[~done], np.asarray(before.t)[~done] + 1)
        elapsed[done] = 0
        ended += done.sum()
        state = ts.state
    assert ended > batch  # goals, draws and time limits all happened


def test_registry_arguments():
    assert envs.env_args("soccer") == {"max_steps": 1000, "draw_prob": 0.0}
    with pytest.raises(ValueError, match="max_steps"):
        envs.make("soccer", max_steps=0)
    with pytest.raises(ValueError, match="draw_prob"):
        envs.make("soccer", draw_prob=1.5)
    assert ENV.discount == 0.9 and ENV.num_agents == 2 and ENV.num_actions == 5


# -- OpenSpiel --------------------------------------------------------------------------------------------------------
OS_ACTION = np.array([0, 1, 3, 2, 4])  # N, S, E, W, stand -> OpenSpiel's up, down, right, left, stand


def openspiel_state(pyspiel, a, b, ball):
    """An OpenSpiel markov_soccer state with our board: its player 0 ('A', attacking right) is our B and its player 1
    ('B') is our A. The ball carrier starts one square away, beside the ball ('O'), and steps onto it."""
    holder, other = (a, b) if ball == A else (b, a)
    for step in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        start = (holder[0] + step[0], holder[1] + step[1])
        if 0 <= start[0] < ROWS and 0 <= start[1] < COLS and start != tuple(other):
            break
    grid = [["."] * COLS for _ in range(ROWS)]
    grid[holder[0]][holder[1]] = "O"
    grid[start[0]][start[1]] = "B" if ball == A else "A"  # the carrier, in OpenSpiel's letters
    grid[other[0]][other[1]] = "A" if ball == A else "B"
    game = pyspiel.load_game("markov_soccer", {"grid": "\n".join("".join(r) for r in grid), "horizon": 10 ** 6})
    state = game.new_initial_state()
    state.apply_action(state.legal_actions()[0])  # the only ball position
    move = {(0, 1): W, (0, -1): E, (1, 0): N, (-1, 0): S}[step]  # from start back onto the ball
    carrier_action = int(OS_ACTION[move])
    state.apply_actions([4, carrier_action] if ball == A else [carrier_action, 4])
    state.apply_action(0)
    return state


def openspiel_board(state):
    """-> ([A's cell, B's cell], ball holder) in our labels."""
    rows = str(state).split("\n")[:ROWS]
    found = {}
    for r, line in enumerate(rows):
        for c, ch in enumerate(line):
            if ch in "aAbB":
                found[ch.lower()] = ((r, c), ch.isupper())
    (b_cell, b_ball), (a_cell, _) = found["a"], found["b"]
    return [list(a_cell), list(b_cell)], B if b_ball else A


def test_steps_match_openspiel_markov_soccer():
    rng = np.random.default_rng(0)
    num, length = 300, 40
    starts = rng.integers(0, ENV.num_states, num)
    actions = rng.integers(0, 5, (num, length, 2))
    orders = rng.integers(0, 2, (num, length))

    def rollout(index, acts, firsts):
        def body(state, x):
            new, reward, scored = ENV.resolve(state, x[0], x[1], NO_DRAW)
            return new, (new.pos, new.ball, reward, scored)
        return jax.lax.scan(body, ENV.state_from_index(index), (acts, firsts))[1]

    pos, ball, reward, scored = jax.device_get(jax.jit(jax.vmap(rollout))(jnp.asarray(starts), jnp.asarray(actions),
                                                                         jnp.asarray(orders)))
    seen = {"goal_a": 0, "goal_b": 0, "steal": 0, "own_goal_try": 0}
    for i in range(num):
        start = jax.device_get(ENV.state_from_index(starts[i]))
        state = openspiel_state(pyspiel, start.pos[0].tolist(), start.pos[1].tolist(), int(start.ball))
        assert openspiel_board(state) == (start.pos.tolist(), int(start.ball))
        holder = int(start.ball)
        for t in range(length):
            a_act, b_act = actions[i, t]
            holder_pos = (pos[i, t - 1] if t else start.pos)[holder]
            own_goal_col = COLS - 1 if holder == A else 0
            seen["own_goal_try"] += int(holder_pos[1] == own_goal_col and 1 <= holder_pos[0] <= 2
                                        and (a_act if holder == A else b_act) == (E if holder == A else W))
            state.apply_actions([int(OS_ACTION[b_act]), int(OS_ACTION[a_act])])
            state.apply_action(1 - int(orders[i, t]))  # OpenSpiel's outcome 0: its player 0 (our B) moves first
            if scored[i, t].any():
                assert state.is_terminal()
                np.testing.assert_array_equal(state.returns()[::-1], reward[i, t])
                seen["goal_a" if scored[i, t, A] else "goal_b"] += 1
                break
            assert not state.is_terminal()
            assert openspiel_board(state) == (pos[i, t].tolist(), int(ball[i, t])), (i, t)
            seen["steal"] += int(ball[i, t] != holder)
            holder = int(ball[i, t])
    assert min(seen.values()) >= 10, seen  # every rule was exercised many times


# -- the tabular model ------------------------------------------------------------------------------------------------
def all_boards():
    """Every board (A's cell, B's cell, ball) as numpy arrays, in no particular order."""
    cells = [(r, c) for r in range(ROWS) for c in range(COLS)]
    boards = [(a, b, ball) for a, b in itertools.permutations(cells, 2) for ball in (A, B)]
    pos = np.array([[a, b] for a, b, _ in boards], np.int32)
    return pos, np.array([ball for *_, ball in boards], np.int32)


def test_state_index_is_a_bijection_onto_the_reachable_states():
    pos, ball = all_boards()
    index = np.asarray(jax.vmap(ENV.state_index)(SoccerState(pos=jnp.asarray(pos), ball=jnp.asarray(ball),
                                                             t=jnp.zeros(len(ball), jnp.int32))))
    assert len(index) == ENV.num_states == 760
    np.testing.assert_array_equal(np.sort(index), np.arange(ENV.num_states))  # one index per board
    back = jax.vmap(ENV.state_from_index)(jnp.asarray(index))
    np.testing.assert_array_equal(back.pos, pos)
    np.testing.assert_array_equal(back.ball, ball)
    # every board is reachable from the start boards (breadth-first search on the model's graph)
    edges = np.asarray(MODEL.transition).sum(axis=(1, 2)) > 0
    reach = np.asarray(MODEL.initial) > 0
    while not np.array_equal(reach, reach | edges[reach].any(0)):
        reach = reach | edges[reach].any(0)
    assert reach.all()
    starts = [int(ENV.state_index(board(START[0], START[1], b))) for b in (A, B)]
    np.testing.assert_allclose(np.asarray(MODEL.initial)[starts], [0.5, 0.5])


def test_model_rows_conserve_probability():
    total = np.asarray(MODEL.transition).sum(-1)
    assert total.min() >= 0 and total.max() <= 0.9 + 1e-6  # a draw takes 0.1 of every row without a goal
    np.testing.assert_allclose(np.asarray(MODEL.reward).sum(-1), 0, atol=1e-6)  # zero-sum
    np.testing.assert_allclose(MODEL.initial.sum(), 1.0)


@jax.jit
@functools.partial(jax.vmap, in_axes=(0, None, None))
def sample_steps(key, state, actions):
    """One step from ``state`` per key -> (index of the state reached, terminated, reward [2])."""
    ts, final = ENV.step_with_final_state(key, state, actions, PARAMS)
    return ENV.state_index(final), ts.terminated, ts.reward


@pytest.mark.parametrize("a,b,ball,actions", [
    ([1, 3], [2, 1], A, [W, E]),       # the start
    ([1, 1], [1, 3], A, [E, W]),       # a contested square: the order decides
    ([1, 3], [1, 4], A, [E, E]),       # a steal that lets B score in one order
    ([1, 1], [1, 0], A, [W, N]),       # a steal or a clear run, by the order
    ([1, 0], [2, 0], A, [W, N]),       # A scores in either order
])
def test_model_matches_sampled_steps(a, b, ball, actions):
    num = 20000
    state = board(a, b, ball)
    nxt, ended, reward = jax.device_get(sample_steps(jax.random.split(jax.random.PRNGKey(3), num), state,
                                                     jnp.array(actions)))
    s = int(ENV.state_index(state))
    row = np.asarray(MODEL.transition[s, actions[0], actions[1]])
    freq = np.bincount(nxt[~ended], minlength=ENV.num_states) / num
    tol = 5 * np.sqrt(row * (1 - row) / num) + 1e-6  # 5 binomial sigmas; impossible outcomes must not occur
    assert np.all(np.abs(freq - row) <= tol)
    p_end = 1 - row.sum()
    assert abs(ended.mean() - p_end) <= 5 * np.sqrt(p_end * (1 - p_end) / num) + 1e-6
    # rewards lie in [-1, 1]: their mean is within 5 standard errors (at most 1 / sqrt(num)) of the model's
    np.testing.assert_allclose(reward.mean(0), MODEL.reward[s, actions[0], actions[1]], atol=5 / np.sqrt(num))


@jax.jit
@jax.vmap
def mirror(index):
    """The half-turn of the board with A and B swapped: a board's value for A is minus its mirror's."""
    st = ENV.state_from_index(index)
    turned = jnp.array([ROWS - 1, COLS - 1]) - st.pos[::-1]
    return ENV.state_index(SoccerState(pos=turned, ball=1 - st.ball, t=st.t))


def test_minimax_values_are_antisymmetric_under_the_mirror():
    value, x, y = jax.jit(tabular.minimax_values, static_argnums=(1, 2))(MODEL_OF(NO_DRAW), ENV.discount, 60)
    value = np.asarray(value)
    assert np.all(np.abs(value) <= 1 + 1e-5)
    start_a, start_b = (int(ENV.state_index(board(START[0], START[1], ball))) for ball in (A, B))
    assert int(mirror(jnp.array([start_a]))[0]) == start_b  # the start boards are mirror images
    # with the ball, A's minimax value from the start is positive, and exactly minus its value without it
    assert 0.1 < value[start_a] < 0.5
    np.testing.assert_allclose(value[start_a], -value[start_b], atol=1e-5)
    np.testing.assert_allclose(value, -value[np.asarray(mirror(jnp.arange(ENV.num_states)))], atol=1e-5)
    # the maximin strategies are mixed somewhere (Littman: deterministic offence can always be blocked)
    assert float(jnp.min(jnp.max(x, axis=-1))) < 0.99


def test_a_draw_probability_emulates_discounting():
    uniform = jnp.full((ENV.num_states, 5), 0.2)
    values = jax.jit(tabular.policy_values)
    with_draw = values(MODEL, uniform, uniform, 1.0)
    discounted = values(MODEL_OF(NO_DRAW), uniform, uniform, 0.9)
    np.testing.assert_allclose(with_draw, discounted, atol=1e-4)
