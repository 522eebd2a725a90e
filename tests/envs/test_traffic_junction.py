"""Traffic junction (envs/traffic_junction.py): the routes against IC3Net's arrival and finish points
(``ic3net-envs/traffic_helper.py``), and one test per rule: route following, arrivals, the time penalty, collisions
and the success flag, the neighbourhoods."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.traffic_junction import TrafficJunction, TrafficJunctionState, build_routes


def ic3net_points(difficulty, h):
    """IC3Net's ``get_add_mat``: (arrival points, finish points) in its order (rows, columns); w = h."""
    w = h
    if difficulty == "medium":
        return ([(0, w // 2 - 1), (h - 1, w // 2), (h // 2, 0), (h // 2 - 1, w - 1)],
                [(0, w // 2), (h - 1, w // 2 - 1), (h // 2 - 1, 0), (h // 2, w - 1)])
    return ([(0, w // 3 - 2), (0, 2 * w // 3), (h // 3 - 1, 0), (2 * h // 3 + 1, 0), (h - 1, w // 3 - 1),
             (h - 1, 2 * w // 3 + 1), (h // 3 - 2, w - 1), (2 * h // 3, w - 1)],
            [(0, w // 3 - 1), (0, 2 * w // 3 + 1), (h // 3 - 2, 0), (2 * h // 3, 0), (h - 1, w // 3 - 2),
             (h - 1, 2 * w // 3), (h // 3 - 1, w - 1), (2 * h // 3 + 1, w - 1)])


@pytest.mark.parametrize("difficulty,size,per_point", [("medium", 14, 3), ("hard", 18, 7)])
def test_routes_join_ic3nets_arrival_and_finish_points_on_one_way_lanes(difficulty, size, per_point):
    arrivals, finishes = ic3net_points(difficulty, size)
    routes = build_routes(difficulty, size)
    assert [len(r) for r in routes] == [per_point] * len(arrivals)  # IC3Net: nPr(points, 2) paths in all
    heading = {}
    for point, (start, rs) in enumerate(zip(arrivals, routes)):
        ends = set()
        for cells in rs:
            cells = np.array(cells)
            assert tuple(cells[0]) == start
            assert tuple(cells[-1]) in finishes and tuple(cells[-1]) != finishes[point]  # no U-turn
            steps = np.diff(cells, axis=0)
            assert np.all(np.abs(steps).sum(1) == 1)  # one cell at a time
            ends.add(tuple(cells[-1]))
            for cell, step in zip(map(tuple, cells[:-1]), map(tuple, steps)):
                heading.setdefault(cell, set()).add(step)
        assert len(ends) == len(rs) or difficulty == "hard"
    # outside IC3Net's junctions (2 x 2 blocks where the roads cross) every road cell is driven one way only
    h = size
    corners = [(h // 2 - 1, h // 2 - 1)] if difficulty == "medium" else [
        (r, c) for r in (h // 3 - 2, 2 * h // 3) for c in (h // 3 - 2, 2 * h // 3)]
    junction = {(r + i, c + j) for r, c in corners for i in (0, 1) for j in (0, 1)}
    assert {c for c, s in heading.items() if len(s) > 1} <= junction
    assert len(build_routes("medium", 14)[0][0]) == 14  # straight across


def test_easy_grid_has_two_straight_routes():
    top, left = build_routes("easy", 7)
    assert top == [[(r, 3) for r in range(7)]] and left == [[(3, c) for c in range(7)]]


KEYS = 2000


@pytest.fixture(scope="module")
def medium():
    """The medium grid and one compiled step of KEYS copies of a state (one key each): (state, actions,
    p_arrive) -> TimeStep with leaves [KEYS, ...]."""
    env = TrafficJunction(difficulty="medium")
    batch = jax.jit(jax.vmap(lambda k, s, a, p: env.step_env(k, s, a, env.default_params.replace(p_arrive=p)),
                             in_axes=(0, None, None, None)))
    keys = jax.random.split(jax.random.PRNGKey(1), KEYS)

    def step(state, actions, p_arrive=0.0):
        return batch(keys, state, jnp.asarray(actions, jnp.int32), jnp.float32(p_arrive))

    return env, step


@jax.jit
def first(ts):
    return jax.tree.map(lambda x: x[0], ts)


def cars(env, routes, progress, tau=None, active=None):
    n = env.num_cars
    pad = [0] * (n - len(routes))
    tau = [0] * len(routes) if tau is None else tau
    active = [True] * len(routes) if active is None else active
    i32 = lambda x: jnp.asarray(list(x) + pad, jnp.int32)  # noqa: E731
    return TrafficJunctionState(route=i32(routes), progress=i32(progress), tau=i32(tau),
                                last_action=jnp.zeros(n, jnp.int32),
                                active=jnp.asarray(list(active) + [False] * len(pad)),
                                failed=jnp.zeros((), bool), t=jnp.zeros((), jnp.int32))


GAS, BRAKE = np.zeros(10, np.int32), np.ones(10, np.int32)
LEFT_TURN = 2  # from the top: down column 6, left at the junction, out along row 7 (15 cells)
EAST = 6  # from the left: straight along row 7


def test_gas_follows_the_route_brake_stays_and_the_last_gas_leaves(medium):
    env, step = medium
    route = np.asarray(env.tables["cells"][LEFT_TURN])
    assert int(env.tables["length"][LEFT_TURN]) == 15 and tuple(route[8]) == (7, 7)
    state = cars(env, [LEFT_TURN], [0])
    for k in range(1, 15):
        ts = first(step(state, GAS))
        np.testing.assert_array_equal(env.cells(ts.state)[0], route[k])
        assert not np.any(ts.info["agent_done"])
        braked = first(step(ts.state, BRAKE))
        np.testing.assert_array_equal(env.cells(braked.state)[0], route[k])
        assert int(braked.state.last_action[0]) == 1 and int(ts.state.last_action[0]) == 0
        state = ts.state
    ts = first(step(state, GAS))  # GAS on the last cell: destination reached
    assert not bool(ts.state.active[0]) and float(ts.info["completed"]) == 1.0 and float(ts.reward[0]) == 0.0
    np.testing.assert_array_equal(ts.info["agent_done"], np.arange(env.num_cars) == 0)  # that car's own episode ends
    assert not np.any(ts.obs[0])  # out of the system: a zero observation


def test_time_penalty_grows_with_the_steps_since_arrival(medium):
    env, step = medium
    state = cars(env, [0], [0])
    for tau in range(1, 6):
        ts = first(step(state, BRAKE))
        np.testing.assert_allclose(ts.reward, [-0.01 * tau] + [0] * 9, rtol=1e-6)
        state = ts.state
    assert float(ts.info["success"]) == 1.0


def test_collision_penalises_both_cars_and_fails_the_episode_until_reset(medium):
    env, step = medium
    # both cars two cells before (7, 6): gas twice collides there; the second car braking first avoids it
    state = cars(env, [0, EAST], [5, 4], tau=[4, 2])
    ts = first(step(first(step(state, GAS)).state, GAS))
    np.testing.assert_array_equal(env.cells(ts.state)[:2], [[7, 6], [7, 6]])
    np.testing.assert_allclose(ts.reward, [-10 - 0.06, -10 - 0.04] + [0] * 8, rtol=1e-6)
    assert float(ts.info["success"]) == 0.0 and float(ts.info["collisions"]) == 2.0
    later = first(step(ts.state, GAS))  # apart again: no penalty, still a failure
    np.testing.assert_allclose(later.reward[:2], [-0.07, -0.05], rtol=1e-6)
    assert float(later.info["success"]) == 0.0
    avoided = first(step(first(step(state, [0, 1] + [0] * 8)).state, GAS))
    assert float(avoided.info["success"]) == 1.0 and float(jnp.min(avoided.reward)) > -1
    # cars out of the system share the default cell (route 0, progress 0) without colliding
    assert not np.any(jax.jit(env.collisions)(cars(env, [0, 0], [0, 0], active=[True, False])))


def test_arrivals_enter_at_their_points_with_probability_p_arrive(medium):
    env, step = medium
    empty = env.reset(jax.random.PRNGKey(0))[1]
    st = step(empty, GAS, 0.3).state
    start = np.asarray(env.tables["cells"])[np.asarray(st.route), 0]
    arrivals, _ = ic3net_points("medium", 14)
    active = np.asarray(st.active)
    counts = np.array([np.sum(active & np.all(start == p, -1)) for p in arrivals])
    assert counts.sum() == active.sum()  # every car entered at an arrival point
    sd = np.sqrt(KEYS * 0.3 * 0.7)
    np.testing.assert_array_less(np.abs(counts - 0.3 * KEYS), 5 * sd)  # Binomial(KEYS, 0.3) each
    per_route = np.bincount(np.asarray(st.route)[active], minlength=12)
    np.testing.assert_array_less(np.abs(per_route - 0.1 * KEYS), 5 * np.sqrt(KEYS * 0.1 * 0.9))  # uniform, 3 each
    assert np.all(np.asarray(st.tau)[active] == 0) and np.all(np.asarray(st.progress)[active] == 0)
    # p_arrive = 1 fills every arrival point; with 8 of 10 cars in the system, only the first two points get one
    assert np.all(np.asarray(step(empty, GAS, 1.0).state.active).sum(1) == 4)
    eight = cars(env, [EAST] * 8, range(8))
    full = step(eight, BRAKE, 1.0).state
    np.testing.assert_array_equal(np.asarray(full.active), True)
    entered = np.asarray(env.tables["cells"])[np.asarray(full.route[:, 8:]), 0]
    assert all(sorted(map(tuple, cells)) == sorted(arrivals[:2]) for cells in entered.tolist())


def test_neighbourhood_is_every_car_in_the_system_itself_first():
    env = TrafficJunction(difficulty="easy")
    idx, mask = env.neighbours(cars(env, [0, 1, 0], [1, 2, 3], active=[True, False, True]))
    np.testing.assert_array_equal(idx[:, 0], np.arange(5))
    assert all(sorted(row) == list(range(5)) for row in np.asarray(idx).tolist())
    expect = np.zeros((5, 5), bool)
    expect[0, [0, 2]] = expect[2, [0, 1]] = True  # row 2 lists 2, 0, 1, 3, 4
    np.testing.assert_array_equal(mask, expect)


def hand_obs(n, routes, cells, car_id, last, route, cell_id, road, count):
    """One car's observation written out from the module docstring's layout: id one-hot [n], last action [1],
    route one-hot [routes], road-cell one-hot [cells], then the window row by row, each cell (road, other cars)."""
    one = lambda k, size: np.eye(size)[k]  # noqa: E731
    window = np.stack([np.array(road, float), np.array(count, float)], axis=-1).ravel()
    return np.concatenate([one(car_id, n), [last], one(route, routes), one(cell_id, cells), window])


def state_of(n, route, progress, last, active):
    i32 = lambda x: jnp.asarray(x, jnp.int32)  # noqa: E731
    return TrafficJunctionState(route=i32(route), progress=i32(progress), tau=i32([0] * n), last_action=i32(last),
                                active=jnp.asarray(active), failed=jnp.zeros((), bool), t=jnp.zeros((), jnp.int32))


def test_medium_observation_written_out_by_hand():
    """Medium grid (14 x 14, vision 1): road cells are rows 6-7 and columns 6-7, numbered row-major: (r, 6 + j)
    -> 2r + j above the junction rows, (6, c) -> 12 + c, (7, c) -> 26 + c. Routes (IC3Net's ids, point * 3 +
    straight/right/left): 1 top-right (down column 6, west along row 6), 3 bottom-straight (up column 7),
    6 left-straight (east along row 7), 9 right-straight (west along row 6)."""
    env = TrafficJunction(difficulty="medium")
    # car: 0 (7, 0) on the border, 1 (7, 1) beside it, 2 and 3 both on (6, 1) (a collision), 4 (5, 7), 5 (6, 8),
    # 6 out of the system but parked on (5, 6) (seen by 4 and 7: must not count), 7 (4, 7), 8-9 out
    route = [6, 6, 9, 1, 3, 9, 0, 3, 0, 0]
    progress = [0, 1, 12, 11, 8, 5, 5, 9, 0, 0]
    last = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    active = [True] * 6 + [False, True, False, False]
    state = state_of(10, route, progress, last, active)
    where = [(7, 0), (7, 1), (6, 1), (6, 1), (5, 7), (6, 8), (5, 6), (4, 7), (0, 6), (0, 6)]
    np.testing.assert_array_equal(env.cells(state), where)  # the premise: the cars stand where intended
    assert (env.num_routes, env.num_road_cells, env.obs_dim) == (12, 52, 10 + 1 + 12 + 52 + 18)

    def obs(i, cell_id, road, count):
        return hand_obs(10, 12, 52, i, last[i], route[i], cell_id, road, count)

    expect = np.zeros((10, env.obs_dim))
    # (7, 0): window rows 6-8, columns -1..1; column -1 is off the grid (road 0, no car)
    expect[0] = obs(0, 26, [[0, 1, 1], [0, 1, 1], [0, 0, 0]], [[0, 0, 2], [0, 0, 1], [0, 0, 0]])
    expect[1] = obs(1, 27, [[1, 1, 1], [1, 1, 1], [0, 0, 0]], [[0, 2, 0], [1, 0, 0], [0, 0, 0]])
    # 2 and 3 share (6, 1): each counts the other at its centre, not itself
    for i in (2, 3):
        expect[i] = obs(i, 13, [[0, 0, 0], [1, 1, 1], [1, 1, 1]], [[0, 0, 0], [0, 1, 0], [1, 1, 0]])
    expect[4] = obs(4, 11, [[1, 1, 0], [1, 1, 0], [1, 1, 1]], [[0, 1, 0], [0, 0, 0], [0, 0, 1]])
    expect[5] = obs(5, 20, [[1, 0, 0], [1, 1, 1], [1, 1, 1]], [[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    expect[7] = obs(7, 9, [[1, 1, 0], [1, 1, 0], [1, 1, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(env.observe(state), expect)  # rows 6, 8, 9: out of the system, zeros


def test_easy_observation_with_vision_two_reaches_two_cells_off_the_grid():
    """Easy grid (7 x 7, vision 2, 5 x 5 window): road row 3 and column 3, numbered row-major: (r, 3) -> r above
    row 3, (3, c) -> 3 + c. Route 0 goes down column 3, route 1 along row 3."""
    env = TrafficJunction(difficulty="easy", vision=2)
    route, progress, last = [0, 0, 1, 1, 0], [1, 0, 2, 0, 0], [1, 0, 1, 0, 1]
    state = state_of(5, route, progress, last, [True, True, True, False, False])  # 3 parked on (3, 0), out
    np.testing.assert_array_equal(env.cells(state)[:4], [(1, 3), (0, 3), (3, 2), (3, 0)])
    assert env.obs_dim == 5 + 1 + 2 + 13 + 50

    def obs(i, cell_id, road, count):
        return hand_obs(5, 2, 13, i, last[i], route[i], cell_id, road, count)

    col = [0, 0, 1, 0, 0]
    expect = np.zeros((5, env.obs_dim))
    # (1, 3): rows -1..3 (row -1 off the grid), columns 1..5; 1 at (0, 3), 2 at (3, 2)
    expect[0] = obs(0, 1, [[0] * 5, col, col, col, [1] * 5],
                    [[0] * 5, [0, 0, 1, 0, 0], [0] * 5, [0] * 5, [0, 1, 0, 0, 0]])
    # (0, 3): rows -2..2 (two rows off the grid); 0 at (1, 3)
    expect[1] = obs(1, 0, [[0] * 5, [0] * 5, col, col, col], [[0] * 5] * 3 + [[0, 0, 1, 0, 0], [0] * 5])
    # (3, 2): rows 1..5, columns 0..4; 0 at (1, 3); the parked car 3 at (3, 0) does not count
    side = [0, 0, 0, 1, 0]
    expect[2] = obs(2, 5, [side, side, [1] * 5, side, side], [[0, 0, 0, 1, 0]] + [[0] * 5] * 4)
    np.testing.assert_array_equal(env.observe(state), expect)
