"""Cleanup and Harvest (envs/social_dilemmas.py): one test per rule, the regrowth laws checked statistically over
vmapped games with binomial tolerances, rendering, training through train.py, and (where SocialJax is importable)
the regrowth statistics beside SocialJax's."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import envs
import train
from envs import social_dilemmas as sd
from envs.social_dilemmas import Cleanup, Harvest, beam_cells, parse_layout, record_episode, save_frames

GAMES = 4000  # vmapped games per statistical test
Z = 4.5  # binomial tolerance in standard deviations (a false alarm about once in 150,000 runs)
WALL, APPLE, SELF = 0, 1, 2
FACING = slice(3, 7)
WATER, DIRT = 7, 8


def within_binomial(successes, trials, p):
    """The count of successes is within Z standard deviations of trials * p (exactly 0 when p is 0)."""
    if p == 0:
        return successes == 0
    return abs(successes - trials * p) <= Z * np.sqrt(trials * p * (1 - p))


def neighbours_by_hand(apples):
    """Apples among the cells within Euclidean distance 2 of each cell, by loops."""
    h, w = apples.shape
    out = np.zeros((h, w), int)
    for r in range(h):
        for c in range(w):
            for dr in range(-2, 3):
                for dc in range(-2, 3):
                    if 0 < dr * dr + dc * dc <= 4 and 0 <= r + dr < h and 0 <= c + dc < w:
                        out[r, c] += apples[r + dr, c + dc]
    return out


@pytest.fixture(scope="module")
def harvest():
    env = Harvest(n_agents=2, num_steps=100)
    return env, jax.jit(env.step_env)


def regrow_batch(env):
    """Steps 4-5 of the rules (``SocialDilemma.regrow``) vmapped over keys, apples, dirt and step counts."""
    def one(key, apples, dirt, t):
        k_grow, k_dirt = jax.random.split(key)
        occupied = jnp.zeros(env.shape, bool)
        return env.regrow(k_grow, k_dirt, apples, dirt, occupied, t, env.default_params)
    return jax.jit(jax.vmap(one))


@pytest.fixture(scope="module")
def cleanup_regrow():
    env = Cleanup(n_agents=2)
    return env, regrow_batch(env)


def keys(n, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


def tile(x, n):
    return jnp.repeat(jnp.asarray(x)[None], n, 0)


def test_harvest_regrowth_follows_the_number_of_neighbouring_apples():
    env = Harvest(n_agents=2)
    m = parse_layout(sd.HARVEST_MAP)
    rng = np.random.default_rng(0)
    apples = m["apple_cell"] & (rng.random(m["apple_cell"].shape) < 0.25)
    new, _ = regrow_batch(env)(keys(GAMES), tile(apples, GAMES), tile(m["dirt"], GAMES), tile(0, GAMES))
    grown = np.asarray(new & ~apples).sum(0)  # [H, W]: games in which each cell grew an apple
    assert not np.any(grown[~m["apple_cell"] | apples])  # only on empty apple cells
    count = np.minimum(neighbours_by_hand(apples), 3)
    free = m["apple_cell"] & ~apples
    for n, p in enumerate([0.0, 0.001, 0.005, 0.025]):
        cells = free & (count == n)
        assert cells.sum() > 0
        assert within_binomial(grown[cells].sum(), cells.sum() * GAMES, p), (n, grown[cells].sum(), cells.sum())


def test_cleanup_apples_grow_by_the_dirt_fraction_and_never_above_the_threshold(cleanup_regrow):
    env, batch = cleanup_regrow
    m = parse_layout(sd.CLEANUP_MAP)
    cells = m["dirt_cell"].sum()
    order = np.argwhere(m["dirt_cell"])
    counts = (0, 30, 50, 58, 59, 90, 110, 147)  # dirt fractions 0, .2, .34, .395, .401, .61, .75, 1
    per = GAMES // len(counts)
    dirt = np.zeros((len(counts), *m["dirt"].shape), bool)
    for i, k in enumerate(counts):
        dirt[(i, *order[:k].T)] = True
    dirt = np.repeat(dirt, per, 0)
    apples, _ = batch(keys(len(counts) * per), tile(m["apple"], len(dirt)), jnp.asarray(dirt), tile(0, len(dirt)))
    grown = np.asarray(apples).reshape(len(counts), per, -1).sum((1, 2))
    for k, g in zip(counts, grown):
        p = 0.05 * min(max(1 - k / cells / 0.4, 0.0), 1.0)
        assert within_binomial(g, m["apple_cell"].sum() * per, p), (k, g, p)
    assert grown[4:].sum() == 0  # above the depletion threshold
    np.testing.assert_allclose(env.dirt_fraction(jnp.asarray(dirt[0])), 0.0)


def test_cleanup_pollution_starts_after_the_delay_one_cell_at_a_time(cleanup_regrow):
    env, batch = cleanup_regrow
    m = parse_layout(sd.CLEANUP_MAP)
    t = np.repeat([49, 50], GAMES // 2)  # steps taken before this one
    _, dirt = batch(keys(GAMES, 1), tile(m["apple"], GAMES), tile(m["dirt"], GAMES), jnp.asarray(t))
    new = np.asarray(dirt & ~m["dirt"]).reshape(2, GAMES // 2, -1)
    assert new[0].sum() == 0  # 49 steps taken: no pollution yet
    per_game = new[1].sum(1)
    assert set(per_game) <= {0, 1} and within_binomial(per_game.sum(), GAMES // 2, 0.5)
    clean = (m["dirt_cell"] & ~m["dirt"]).ravel()
    hits = new[1].sum(0)
    assert not np.any(hits[~clean])  # only clean dirt-capable cells turn dirty, and the river never does
    assert stats.chisquare(hits[clean]).pvalue > 1e-4  # uniformly over them


def small_cleanup():
    """A hand-made map: water above, dirty but for a few cells, an inner wall at (3, 3), two spawn cells."""
    layout = ("#########",
              "#DDDDDDD#",
              "#DDDDDDD#",
              "#DD#DdDD#",
              "#DDdddDD#",
              "#P     P#",
              "#   a   #")
    return Cleanup(n_agents=2, num_steps=10, layout=layout)


@pytest.fixture(scope="module")
def small():
    env = small_cleanup()
    return env, jax.jit(env.step_env)


def test_cleaning_beam_removes_dirt_in_three_lanes_and_stops_at_walls(small):
    env, step = small
    state = env.initial_state([[5, 4], [5, 7]], [0, 0])  # agent 0 faces north below the water
    ts = step(jax.random.PRNGKey(0), state, jnp.array([sd.FIRE_CLEAN, sd.NOOP]), env.default_params)
    cleaned = {tuple(c) for c in np.argwhere(np.asarray(state.dirt & ~ts.state.dirt))}
    # lanes at columns 3, 4, 5 reach up to rows 4, 3, 2, each cleaning its first dirty cell: the wall at (3, 3) ends
    # lane 3 before any dirt, lane 4 cleans (3, 4) and stops, lane 5 passes two clean cells and cleans (2, 5)
    assert cleaned == {(3, 4), (2, 5)}
    # the info entries the learners log: agent 0 fired and cleaned 2 cells, agent 1 did neither
    assert ts.info["clean_fired"].tolist() == [True, False] and ts.info["cleaned"].tolist() == [2, 0]
    assert ts.info["clean_hits"].tolist() == [True, False]
    # cooldown 2: the next two shots do nothing, the third cleans the next cells of lanes 4 and 5
    assert int(ts.state.cooldown[0, 1]) == 2
    after = ts.state.dirt
    for t in range(3):
        ts = step(jax.random.PRNGKey(1 + t), ts.state, jnp.array([sd.FIRE_CLEAN, sd.NOOP]), env.default_params)
        newly = {tuple(c) for c in np.argwhere(np.asarray(after & ~ts.state.dirt))}
        assert newly == (set() if t < 2 else {(2, 4)}), t
        assert ts.info["clean_fired"].tolist() == [t == 2, False] and ts.info["cleaned"].tolist() == [len(newly), 0]
    assert int(ts.state.cooldown[0, 1]) == 2
    walls = np.pad(parse_layout(env.layout)["wall"], 9, constant_values=True)
    mask = np.asarray(beam_cells(jnp.array([[4, 1]]), jnp.array([3]), jnp.asarray(walls)))[0]
    assert not mask.any()  # facing west into the outer wall: nothing


def test_a_step_regrows_on_free_cells_and_pollutes_after_the_delay(harvest, small):
    env, step = harvest
    sure = env.default_params.replace(regrowth=jnp.ones(4, jnp.float32))
    m = parse_layout(sd.HARVEST_MAP)
    apples = m["apple_cell"].copy()
    apples[7, 0] = apples[7, 1] = False  # one empty cell to grow, one under an agent
    state = env.initial_state([[7, 1], [15, 0]], [0, 0], apples=apples)
    ts = step(jax.random.PRNGKey(0), state, jnp.array([sd.NOOP, sd.NOOP]), sure)
    np.testing.assert_array_equal(ts.state.apples, m["apple_cell"] & ~np.eye(1, 22 * 16, 7 * 22 + 1, dtype=bool)
                                  .reshape(16, 22))
    env, step = small
    m = parse_layout(env.layout)
    clean = env.initial_state([[5, 1], [5, 7]], [0, 0], dirt=np.zeros_like(m["dirt"]))
    params = env.default_params.replace(apple_growth=jnp.float32(1.0), dirt_spawn=jnp.float32(1.0))
    ts = step(jax.random.PRNGKey(0), clean, jnp.array([sd.NOOP, sd.NOOP]), params)
    np.testing.assert_array_equal(ts.state.apples, m["apple_cell"])
    assert not ts.state.dirt.any()  # no step taken before: pollution waits
    ts = step(jax.random.PRNGKey(0), clean.replace(t=jnp.int32(50)), jnp.array([sd.NOOP, sd.NOOP]), params)
    assert int(ts.state.dirt.sum()) == 1
    dirty = env.initial_state([[5, 1], [5, 7]], [0, 0])  # all water dirty: no growth even at rate 1
    assert not step(jax.random.PRNGKey(0), dirty, jnp.array([sd.NOOP, sd.NOOP]), params).state.apples.any()


def test_tagging_removes_an_agent_for_the_timeout_and_respawns_it():
    layout = ("P   P #P",
              "        ")
    env = Harvest(n_agents=3, num_steps=200, layout=layout)
    params = env.default_params.replace(tag_cost=jnp.float32(-1.0), tagged_penalty=jnp.float32(-50.0))
    step = jax.jit(env.step_env)
    # agent 0 faces east with agent 1 two cells ahead; agent 2 is behind the wall at column 6 in the same row
    state = env.initial_state([[0, 2], [0, 4], [0, 7]], [1, 1, 3])
    ts = step(jax.random.PRNGKey(0), state, jnp.array([sd.FIRE_TAG, sd.NOOP, sd.NOOP]), params)
    np.testing.assert_array_equal(ts.info["tagged"], [False, True, False])
    np.testing.assert_array_equal(ts.reward, [-1.0, -50.0, 0.0])
    assert not np.any(ts.obs[1]) and int(ts.state.out[1]) == 50
    ts_blocked = step(jax.random.PRNGKey(0), state, jnp.array([sd.NOOP, sd.FIRE_TAG, sd.NOOP]), params)
    assert not np.any(ts_blocked.info["tagged"])  # agent 1's beam toward agent 2 stops at the wall
    row = env.initial_state([[0, 2], [0, 3], [0, 4]], [1, 1, 1])
    ts_row = step(jax.random.PRNGKey(0), row, jnp.array([sd.FIRE_TAG, sd.NOOP, sd.NOOP]), params)
    np.testing.assert_array_equal(ts_row.info["tagged"], [False, True, False])  # agent 1 shields agent 2
    assert int(ts_row.state.cooldown[0, 0]) == 10
    cooling = state.replace(cooldown=jnp.array([[1, 0], [0, 0], [0, 0]], jnp.int32))
    ts_cool = step(jax.random.PRNGKey(0), cooling, jnp.array([sd.FIRE_TAG, sd.NOOP, sd.NOOP]), params)
    assert not np.any(ts_cool.info["tagged"]) and float(ts_cool.reward[0]) == 0.0  # not ready: no shot
    assert int(ts_cool.state.cooldown[0, 0]) == 0
    state = ts.state
    for t in range(1, 51):  # out of play, its actions ignored, for 50 steps; back at the end of the 50th
        ts = step(jax.random.PRNGKey(t), state, jnp.array([sd.NOOP, sd.FIRE_TAG, sd.NOOP]), params)
        assert bool(ts.info["in_play"][1]) == (t == 50), t
        assert float(ts.reward[1]) == 0.0 and not ts.info["tagged"][0]
        state = ts.state
    spawn = {tuple(p) for p in parse_layout(layout)["spawn"]}
    assert tuple(np.asarray(state.pos[1])) in spawn - {(0, 2), (0, 7)}
    assert ts.obs[1, 9, 5, SELF] == 1


def test_beam_covers_the_lateral_lanes_up_to_three_cells():
    walls = jnp.asarray(np.pad(np.zeros((9, 9), bool), 9, constant_values=True))
    mask = np.asarray(beam_cells(jnp.array([[4, 4]]), jnp.array([1]), walls))[0]  # facing east
    assert {tuple(c) for c in np.argwhere(mask)} == {(r, c) for r in (3, 4, 5) for c in (5, 6, 7)}


def test_moves_are_relative_to_the_orientation_and_blocked_by_walls_and_agents(harvest):
    env, step = harvest
    params = env.default_params
    state = env.initial_state([[12, 5], [12, 10]], [1, 2])  # east, south
    ts = step(jax.random.PRNGKey(0), state, jnp.array([sd.FORWARD, sd.STEP_LEFT]), params)
    np.testing.assert_array_equal(ts.state.pos, [[12, 6], [12, 11]])  # south-facing agent's left is east
    ts = step(jax.random.PRNGKey(0), state, jnp.array([sd.BACKWARD, sd.TURN_RIGHT]), params)
    np.testing.assert_array_equal(ts.state.pos, [[12, 4], [12, 10]])
    np.testing.assert_array_equal(ts.state.orient, [1, 3])
    edge = env.initial_state([[0, 0], [12, 10]], [0, 0])  # facing the outside
    ts = step(jax.random.PRNGKey(0), edge, jnp.array([sd.FORWARD, sd.TURN_LEFT]), params)
    np.testing.assert_array_equal(ts.state.pos, [[0, 0], [12, 10]])
    np.testing.assert_array_equal(ts.state.orient, [0, 3])
    # a swap fails, and a move into a cell held at the start of the step fails even if its holder leaves
    facing = env.initial_state([[12, 5], [12, 6]], [1, 3])
    ts = step(jax.random.PRNGKey(0), facing, jnp.array([sd.FORWARD, sd.FORWARD]), params)
    np.testing.assert_array_equal(ts.state.pos, [[12, 5], [12, 6]])
    ts = step(jax.random.PRNGKey(0), facing, jnp.array([sd.BACKWARD, sd.FORWARD]), params)  # 0 leaves west, 1 follows
    np.testing.assert_array_equal(ts.state.pos, [[12, 4], [12, 6]])
    # two agents stepping into the same cell: exactly one succeeds, each about half the time
    resolve = jax.jit(jax.vmap(env.resolve_moves, in_axes=(0, None, None, None, None)))
    pos, _ = resolve(keys(GAMES, 2), jnp.array([[12, 5], [12, 7]]), jnp.array([1, 3]), jnp.array([True, True]),
                     jnp.array([sd.FORWARD, sd.FORWARD]))
    moved = np.all(np.asarray(pos) == [12, 6], axis=-1)
    assert np.all(moved.sum(1) == 1) and within_binomial(moved[:, 0].sum(), GAMES, 0.5)


def test_eating_gives_the_eater_one_and_the_view_is_rotated(harvest):
    env, step = harvest
    params = env.default_params
    apples = np.zeros(env.shape, bool)
    apples[12, 8] = True
    for orient, (dr, dc) in enumerate([(-3, 0), (0, 3), (3, 0), (0, -3)]):  # the apple 3 ahead in every case
        state = env.initial_state([[12 - dr, 8 - dc], [15, 0]], [orient, 0], apples=apples)
        obs = np.asarray(env.observe(state))
        assert obs[0, 6, 5, APPLE] == 1 and obs[0, ..., APPLE].sum() == 1 and obs[0, 9, 5, SELF] == 1
    # the apple 2 to the right of an east-facing agent (that is, south of it) shows 2 columns right of centre
    state = env.initial_state([[10, 8], [15, 0]], [1, 0], apples=apples)
    assert np.asarray(env.observe(state))[0, 9, 7, APPLE] == 1
    # the other agent, facing the observer, shows in the "opposite orientation" channel; off the map reads as wall
    state = env.initial_state([[12, 4], [12, 6]], [1, 3], apples=apples)
    obs = np.asarray(env.observe(state))
    np.testing.assert_array_equal(obs[0, 7, 5, FACING], [0, 0, 1, 0])
    edge = np.asarray(env.observe(env.initial_state([[15, 0], [12, 6]], [2, 3])))
    assert edge[0, 0, :, WALL].all() and edge[0, 9, 5, WALL] == 0  # facing south on the bottom row
    state = env.initial_state([[12, 7], [15, 0]], [1, 0], apples=apples)
    ts = step(jax.random.PRNGKey(0), state, jnp.array([sd.FORWARD, sd.NOOP]), params)
    np.testing.assert_array_equal(ts.reward, [1.0, 0.0])
    assert not ts.state.apples[12, 8] and int(ts.info["num_apples"]) == 0
    np.testing.assert_array_equal(ts.info["returns"], [1.0, 0.0])


def test_crowded_random_play_never_stacks_agents_and_ends_at_the_horizon():
    env = Harvest(n_agents=5, num_steps=30, layout=("PP A", "PP  ", "P  A"))
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, 0, 0, None)))
    start = env.initial_state(parse_layout(env.layout)["spawn"], [0, 1, 2, 3, 0])  # every spawn cell taken
    state = jax.tree.map(lambda x: tile(x, 32), start)
    for t in range(30):
        actions = jax.random.randint(jax.random.PRNGKey(100 + t), (32, 5), 0, env.num_actions)
        ts = step(keys(32, 200 + t), state, actions, env.default_params)
        assert bool(jnp.all(ts.truncated == (t == 29)))
        pos, out = np.asarray(ts.state.pos), np.asarray(ts.state.out)
        for g in range(32):
            cells = [tuple(p) for p, o in zip(pos[g], out[g]) if o == 0]
            assert len(cells) == len(set(cells))
        state = ts.state


def test_render_and_saved_frames(small, tmp_path):
    env, _ = small
    state = env.initial_state([[5, 1], [5, 7]], [0, 2], apples=np.asarray(parse_layout(env.layout)["apple_cell"]))
    img = np.asarray(jax.jit(env.render, static_argnums=1)(state, 8))
    assert img.shape == (7 * 8, 9 * 8, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[6 * 8 + 4, 4 * 8 + 4], [40, 160, 40])  # the apple
    np.testing.assert_array_equal(img[5 * 8 + 6, 1 * 8 + 4], [66, 133, 244])  # agent 0's body
    assert (img[5 * 8 + 0, 1 * 8 + 4] < 100).all()  # its dark strip on the north side, which it faces
    frames, returns = jax.jit(lambda key: record_episode(
        env, key, lambda k, obs: jax.random.randint(k, (2,), 0, 9), num_steps=3))(jax.random.PRNGKey(0))
    frames = np.asarray(frames)
    assert frames.shape == (4, 56, 72, 3) and returns.shape == (2,)
    from PIL import Image
    save_frames(frames, tmp_path / "ep.gif")
    save_frames(frames[0], str(tmp_path / "frame.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "frame.png").convert("RGB")), frames[0])
    assert Image.open(tmp_path / "ep.gif").n_frames >= 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_agents=30 exceeds"):
        envs.make("cleanup", num_agents=30)
    with pytest.raises(ValueError, match="num_steps"):
        envs.make("harvest", num_steps=0)
    with pytest.raises(ValueError, match="unknown cell"):
        Harvest(layout=("P?",), n_agents=1)
    with pytest.raises(ValueError, match="layout must be one of melting_pot, small"):
        envs.make("cleanup", layout="tiny")
    assert envs.make("cleanup", layout="small", num_agents=7).map["dirt"].sum() == 6  # a quarter of 24


@pytest.mark.slow  # about 10 s each on an idle 2-core machine, nearly all compiling
@pytest.mark.parametrize("algo,env", [("ippo", "cleanup"), ("mappo", "harvest")])
def test_on_policy_learners_train_through_the_command_line(algo, env, tmp_path):
    out = str(tmp_path / algo)
    layout = ["--env-arg", "layout=small"] if env == "cleanup" else []
    argv = ["--algo", algo, "--env", env, "--seeds", "2", "--out", out, "--quiet", "--env-arg", "num_agents=2",
            "--env-arg", "num_steps=6", "--set", "total_steps=20", "--set", "num_envs=2", "--set", "rollout_len=5",
            "--set", "hidden_size=8", *layout]
    assert train.main(argv) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["num_updates"] == 2 and "reward_per_step/1" in summary["final"]
    final = {name: v["mean"] for name, v in summary["final"].items()}
    assert 0.0 <= final["apples_eaten/0"] <= 1.0 and "tagged/1" in final
    if env == "cleanup":  # the step metrics: before pollution starts the small map's dirt (a quarter) only shrinks
        for i in range(2):
            assert final[f"clean_hits/{i}"] <= final[f"clean_fired/{i}"] and final[f"cleaned/{i}"] >= final[
                f"clean_hits/{i}"]
        cleaned = final["cleaned/0"] + final["cleaned/1"]
        assert final["dirt_fraction"] <= 0.25 and (cleaned > 0 or final["dirt_fraction"] == 0.25)
    else:
        assert "dirt_fraction" not in final


def test_regrowth_statistics_match_socialjax():
    """Harvest's regrowth from one apple configuration and Cleanup's apple growth at one dirt fraction, counted
    over vmapped steps here and in SocialJax's implementation (two-proportion tests per neighbour class)."""
    pytest.importorskip("socialjax")
    from socialjax.environments.cleanup.clean_up import Clean_up
    from socialjax.environments.common_harvest.harvest_open import Harvest_open

    games = 2000
    ours = Harvest(n_agents=2)
    theirs = Harvest_open(num_agents=2, shared_rewards=False, jit=False)
    m = parse_layout(sd.HARVEST_MAP)
    rng = np.random.default_rng(0)
    apples = m["apple_cell"] & (rng.random(m["apple_cell"].shape) < 0.25)
    _, their_state = theirs.reset(jax.random.PRNGKey(0))
    grid = np.asarray(their_state.grid)
    grid = np.where(m["apple_cell"], np.where(apples, 3, 0), grid)
    their_state = their_state.replace(grid=jnp.asarray(grid, their_state.grid.dtype))
    stay = jnp.array([6, 6])
    their_step = jax.jit(jax.vmap(lambda k, s: theirs.step_env(k, s, stay)[1].grid, in_axes=(0, None)))
    their_grid = their_step(keys(games, 5), their_state)
    their_grown = (np.asarray(their_grid) == 3) & m["apple_cell"] & ~apples
    our_state = ours.initial_state(np.asarray(their_state.agent_locs)[:, :2], [0, 0], apples=apples)
    our_step = jax.jit(jax.vmap(lambda k, s: ours.step_env(k, s, jnp.array([sd.NOOP, sd.NOOP]),
                                                           ours.default_params).state.apples, in_axes=(0, None)))
    our_grown = np.asarray(our_step(keys(games, 6), our_state)) & ~apples
    count = np.minimum(neighbours_by_hand(apples), 3)
    occupied = np.zeros_like(apples)
    occupied[tuple(np.asarray(their_state.agent_locs)[:, :2].T)] = True
    for n in range(4):
        cells = m["apple_cell"] & ~apples & (count == n) & ~occupied
        assert cells.sum() > 0
        a, b = their_grown[:, cells].sum(), our_grown[:, cells].sum()
        trials = cells.sum() * games
        pooled = (a + b) / (2 * trials)
        assert abs(a - b) <= Z * np.sqrt(2 * trials * pooled * (1 - pooled)) + (pooled == 0), (n, a, b)

    cl_ours = Cleanup(n_agents=2, river_in_fraction=True)
    cl_theirs = Clean_up(num_agents=2, shared_rewards=False, jit=False)
    _, s = cl_theirs.reset(jax.random.PRNGKey(0))
    # 20 of SocialJax's initially dirty cells made clean: dirt fraction (79 - 20) / 167
    labels = np.asarray(s.potential_dirt_and_dirt_label).copy()
    labels[np.flatnonzero(labels == 8)[:20]] = 7
    s = s.replace(potential_dirt_and_dirt_label=jnp.asarray(labels, s.potential_dirt_and_dirt_label.dtype))
    their = jax.jit(jax.vmap(lambda k, s: cl_theirs.step_env(k, s, stay)[1].grid, in_axes=(0, None)))(
        keys(games, 7), s)
    their_n = ((np.asarray(their) == 3) & m_cleanup_apples()).sum()
    dirt = np.zeros(cl_ours.shape, bool)
    locs = np.asarray(s.potential_dirt_and_dirt_locs)[labels == 8]
    dirt[tuple(locs.T)] = True
    state = cl_ours.initial_state(np.asarray(s.agent_locs)[:, :2], [0, 0], dirt=dirt)
    our_n = np.asarray(jax.jit(jax.vmap(lambda k, s: cl_ours.step_env(k, s, jnp.array([sd.NOOP, sd.NOOP]),
                                                                       cl_ours.default_params).state.apples,
                                        in_axes=(0, None)))(keys(games, 8), state)).sum()
    trials = m_cleanup_apples().sum() * games
    pooled = (their_n + our_n) / (2 * trials)
    assert abs(their_n - our_n) <= Z * np.sqrt(2 * trials * pooled * (1 - pooled)), (their_n, our_n)


def m_cleanup_apples():
    return parse_layout(sd.CLEANUP_MAP)["apple_cell"]
