"""DGN's routing (envs/routing.py): the network rule and cable lengths worked by hand on a four-router ring, Floyd's
costs against scipy's shortest paths, and one test per rule: hop delay, delivery reward and respawn, the bandwidth
limit in index order, available actions, neighbourhoods."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path

import envs
from envs.routing import Routing, RoutingState

# A (0, 0) - B (0.3, 0) - C (0.3, 0.5) - D (0, 0.5) - A, two cables a router: A joins B (0.3) and D (0.5), B then
# C (A is joined already), C then D. Lengths int(10 d) // 2 + 1: 0.3 -> 3 // 2 + 1 = 2, 0.5 -> 5 // 2 + 1 = 3.
RING = ((0.0, 0.0), (0.3, 0.0), (0.3, 0.5), (0.0, 0.5))
A, B, C, D = range(4)


@pytest.fixture(scope="module")
def ring():
    env = Routing(positions=RING, degree=2, num_packets=2, num_neighbours=2, max_steps=50)
    return env, jax.jit(env.step_env)


def state_of(now, target, size, edge=None, time=None):
    n = len(now)
    i = functools.partial(jnp.asarray, dtype=jnp.int32)
    return RoutingState(now=i(now), target=i(target), size=jnp.asarray(size, jnp.float32),
                        edge=i([-1] * n if edge is None else edge), time=i([0] * n if time is None else time),
                        age=i([0] * n), t=i(0))


def test_network_rule_and_cable_lengths_by_hand(ring):
    env, _ = ring
    t = env.tables
    assert t["ends"].tolist() == [[A, B], [A, D], [B, C], [C, D]]
    assert t["length"].tolist() == [2, 3, 3, 2]
    assert t["router_edge"].tolist() == [[0, 1], [0, 2], [2, 3], [1, 3]]
    # a hop costs its length + 1: A -> C is 3 + 4 either way round; ties go to the first cable (A's: to B)
    assert t["cost"][A].tolist() == [0, 3, 7, 4]
    assert t["next_action"][A].tolist() == [0, 1, 1, 2]


def test_floyd_costs_are_scipys_shortest_paths():
    env = envs.make("routing")
    t = env.tables
    weights = np.zeros((env.routers, env.routers))
    weights[t["ends"][:, 0], t["ends"][:, 1]] = t["length"] + 1
    np.testing.assert_allclose(t["cost"], shortest_path(weights, directed=False), rtol=0, atol=0)
    # every router has at most `degree` cables, a pair at most one, and the next hop lies on a shortest path
    assert np.all(np.sum(t["router_edge"] >= 0, axis=1) <= 3) and len({tuple(e) for e in t["ends"]}) == len(t["ends"])
    r, g = np.meshgrid(np.arange(env.routers), np.arange(env.routers), indexing="ij")
    slot = t["next_action"][r, g] - 1
    hop = np.where(r != g, t["length"][t["router_edge"][r, slot]] + 1 + t["cost"][t["far"][r, slot], g], 0)
    np.testing.assert_array_equal(hop, t["cost"])


def test_hop_delay_delivery_reward_and_respawn_by_hand(ring):
    """A lone packet A -> C on Floyd's route: cable A-B (2 steps, then it is at B), then B-C (3): delivered at the
    end of step (2 + 1) + (3 + 1) = 7 with the reward 10, its delay 7; a fresh packet takes its index."""
    env, step = ring
    params = env.default_params
    state = state_of([A, A], [C, A], [0.5, 0.0])
    state = state.replace(edge=jnp.asarray([-1, 0], jnp.int32), time=jnp.asarray([0, 1000], jnp.int32))  # parked
    rewards, nows = [], []
    for k in range(7):
        ts = step(jax.random.PRNGKey(k), state, env.shortest_path_actions(state), params)
        rewards.append(float(ts.reward[0]))
        nows.append(int(ts.state.now[0]))
        if k < 6:
            assert not ts.info["agent_done"][0] and ts.info["delivered"] == 0
        state = ts.state
    assert rewards == [0.0] * 6 + [10.0]
    assert nows[:3] == [B, B, B] and nows[3] == C  # counted at the far router from the step it enters the cable
    assert ts.info["agent_done"].tolist() == [True, False] and ts.info["delay_total"] == 7
    assert ts.info["delivered"] == 1 and ts.state.age[0] == 0 and ts.state.edge[0] == -1
    assert ts.state.now[0] != ts.state.target[0]


def test_bandwidth_limit_in_index_order(ring):
    """Both packets at A take cable A-B (bandwidth 1, sizes 0.6 and 0.5): packet 0 enters, packet 1 is refused
    (-0.2) while 0 is on the cable, and enters in the step packet 0 arrives (0 frees the cable before 1 asks). In
    the other order (the packet on the cable has the higher index) the asker is refused in the arrival step."""
    env, step = ring
    params = env.default_params
    go = jnp.asarray([1, 1], jnp.int32)
    state = state_of([A, A], [B, B], [0.6, 0.5])
    got = []
    for k in range(3):
        ts = step(jax.random.PRNGKey(k), state, go, params)
        got.append(ts.reward.tolist())
        state = ts.state
    assert got == [[0.0, pytest.approx(-0.2)], [0.0, pytest.approx(-0.2)], [10.0, 0.0]]
    assert ts.state.edge[1] == 0 and ts.state.time[1] == 2 and ts.info["congested"] == 0
    # the other order: packet 1 arrives at B over A-B in this step, packet 0 at A asks for A-B first
    state = state_of([A, B], [B, C], [0.5, 0.6], edge=[-1, 0], time=[0, 1])
    ts = step(jax.random.PRNGKey(0), state, jnp.asarray([1, 0], jnp.int32), params)
    assert ts.reward.tolist() == [pytest.approx(-0.2), 0.0] and ts.state.edge.tolist() == [-1, -1]
    assert ts.info["congested"] == 1
    # without the limit both enter
    unlimited = params.replace(bandwidth=jnp.float32(jnp.inf))
    ts = step(jax.random.PRNGKey(0), state_of([A, A], [B, B], [0.6, 0.5]), go, unlimited)
    assert ts.state.edge.tolist() == [0, 0] and ts.reward.tolist() == [0.0, 0.0]


def test_lone_packets_on_floyds_route_take_the_shortest_path_cost():
    """One packet per source and destination pair of the default network, Floyd's actions: its delay is the
    scipy-checked shortest path cost (``tables['cost']``)."""
    env = Routing(num_packets=1, num_neighbours=1)
    r = env.routers
    src, dst = np.nonzero(~np.eye(r, dtype=bool))
    params = env.default_params

    def first_delay(s, g):
        state = state_of([0], [0], [0.9]).replace(now=s[None], target=g[None])

        def body(carry, k):
            state, delay = carry
            ts = env.step_env(k, state, env.shortest_path_actions(state), params)
            return (ts.state, jnp.where(delay > 0, delay, ts.info["delay_total"])), None

        (_, delay), _ = jax.lax.scan(body, (state, jnp.float32(0)), jax.random.split(jax.random.PRNGKey(0), 40))
        return delay

    delays = jax.jit(jax.vmap(first_delay))(jnp.asarray(src, jnp.int32), jnp.asarray(dst, jnp.int32))
    np.testing.assert_array_equal(np.asarray(delays), env.tables["cost"][src, dst])


def test_available_actions_neighbourhoods_and_mean_action(ring):
    env, _ = ring
    wide = Routing(positions=RING, degree=2, num_packets=4, num_neighbours=3, path_costs=True)
    # packets at A, C (not joined to A), D (joined to A and C), and on the cable B-A (counted at A)
    state = state_of([A, C, D, A], [B, A, B, C], [0.1, 0.2, 0.3, 0.4], edge=[-1, -1, -1, 0], time=[0, 0, 0, 1])
    idx, mask, avail, mean, obs = jax.jit(lambda s, a: (*wide.neighbours(s), wide.avail_actions(s),
                                                    wide.neighbour_mean_action(s, a), wide.observe(s)))(
        state, jnp.asarray([0, 1, 2, 2]))
    assert idx.tolist() == [[0, 2, 3], [1, 2, 1], [2, 0, 1], [3, 0, 2]]
    assert mask.tolist() == [[True, True, True], [True, True, False], [True, True, True], [True, True, True]]
    assert avail.tolist() == [[True] * 3] * 3 + [[True, False, False]]
    np.testing.assert_allclose(mean, [[0, 0, 1], [0, 0, 1], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    r = 4
    own = obs[0, :2 * r + 3]
    assert own.tolist() == [1, 0, 0, 0, 0, 1, 0, 0, pytest.approx(0.1), 0, 0]
    # A's cables: to B (length 2, carrying packet 3, B is the destination), to D (length 3, D -> B costs 7)
    cables = obs[0, 2 * r + 3:2 * r + 3 + 2 * (r + 4)].reshape(2, r + 4)
    np.testing.assert_allclose(cables, [[1, 0, 1, 0, 0, 0.2, 0.4, 0.0], [1, 0, 0, 0, 1, 0.3, 0.0, 0.7]], rtol=1e-6)
    assert float(jnp.sum(obs[1, -(2 * r + 3):])) == 0  # packet 1's empty neighbour slot
    # a router with one cable offers staying and that cable only
    default = envs.make("routing")
    lone = int(np.argmin(np.sum(default.tables["router_edge"] >= 0, axis=1)))
    assert default.avail_actions(state_of([lone] * 20, [(lone + 1) % 20] * 20, [0.5] * 20))[0].tolist() == [
        True, True, False, False]


@pytest.mark.parametrize("kwargs,fragment", [
    ({"graph_seed": 1}, "graph_seed=1 is not connected"),
    ({"num_neighbours": 21}, "num_neighbours (21) must be at most num_packets"),
    ({"num_routers": 0}, "num_routers must be a positive integer"),
    ({"num_routers": 1}, "at least 2 routers"),
])
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        envs.make("routing", **kwargs)


@pytest.mark.slow  # a DGN compile; the default suite's time budget
@pytest.mark.parametrize("algo_name", ["dgn", "il"])
def test_learners_train_on_routing_through_the_command_line(algo_name, tmp_path):
    import json

    import train

    sets = ["--set", "total_steps=24", "--set", "buffer_size=64", "--set", "batch_size=4", "--set", "learning_starts=4",
            "--set", "hidden_size=8"] + ["--set", "encoder_size=16", "--set", "num_heads=2", "--set",
                                          "head_dim=4"] * (algo_name == "dgn")
    out = str(tmp_path / algo_name)
    args = ["--algo", algo_name, "--env", "routing", "--seeds", "2", "--out", out, "--quiet", "--env-arg",
            "num_routers=6", "--env-arg", "num_packets=4", "--env-arg", "max_steps=5", *sets]
    assert train.main(args) == 0
    final = json.load(open(f"{out}/summary.json"))["final"]
    assert {"delivered", "delay_total", "congested", "reward"} <= set(final) and final["delivered"]["n"] == 2
