"""Target updates (Polyak formula, periodic copies), Q-networks per agent or shared with an id, masked greedy and
epsilon-greedy action selection, and the epsilon schedule."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core.qnetworks import (
    AgentQNetworks,
    QNetwork,
    action_values,
    double_q_max,
    epsilon_greedy,
    epsilon_schedule,
    greedy_action,
    masked_max,
)
from jaxmarl_core.targets import periodic_update, polyak_update


def test_polyak_update_is_the_formula():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    online = {"w": jax.random.normal(k1, (3, 4)), "b": {"c": jnp.arange(3.0)}}
    target = {"w": jax.random.normal(k2, (3, 4)), "b": {"c": -jnp.arange(3.0)}}
    out = jax.jit(polyak_update)(online, target, jnp.float32(0.05))
    np.testing.assert_allclose(out["w"], 0.05 * online["w"] + 0.95 * target["w"], rtol=1e-6)
    np.testing.assert_allclose(out["b"]["c"], 0.05 * online["b"]["c"] + 0.95 * target["b"]["c"], rtol=1e-6)
    np.testing.assert_array_equal(polyak_update(online, target, 1.0)["w"], online["w"])


def test_periodic_update_copies_exactly_at_multiples_of_the_period():
    """Online parameters equal to the step count 1 .. 10, period 3: the target is copied at steps 3, 6, 9."""

    def step(target, t):
        target = periodic_update({"p": jnp.float32(t)}, target, t, 3)
        return target, target["p"]

    _, seen = jax.jit(lambda: jax.lax.scan(step, {"p": jnp.float32(-1.0)}, jnp.arange(1, 11)))()
    np.testing.assert_array_equal(seen, [-1, -1, 3, 3, 3, 6, 6, 6, 9, 9])


N, D, A = 3, 4, 5


@functools.cache
def _networks(recurrent, shared, agent_id):
    """Networks of N agents for observations of size D and their parameters (initialised once per session)."""
    nets = AgentQNetworks(QNetwork(A, hidden_sizes=(16,), recurrent=recurrent), N, shared=shared, agent_id=agent_id)
    return nets, jax.jit(nets.init, static_argnums=1)(jax.random.PRNGKey(1), D)


def test_agent_q_networks_stacked_and_shared_with_id():
    obs = jnp.broadcast_to(jax.random.normal(jax.random.PRNGKey(0), (2, 6, 1, D)), (2, 6, N, D))  # [L, B, N, D]
    resets = jnp.zeros((2, 6, N), bool)
    shared, params = _networks(True, True, True)
    assert params["params"]["MLPTorso_0"]["Dense_0"]["kernel"].shape == (D + N, 16)  # one network; ids widen it
    seq, q = jax.jit(shared.apply)(params, shared.initial_hidden(6), obs, resets)
    assert q.shape == (2, 6, N, A) and seq.shape == (2, 6, N, 16)
    assert not np.allclose(q[:, :, 0], q[:, :, 1])  # equal observations, different ids: different values
    anonymous, params = _networks(False, True, False)
    seq, q = jax.jit(anonymous.apply)(params, anonymous.initial_hidden(6), obs, resets)
    assert seq is None and q.shape == (2, 6, N, A)
    np.testing.assert_allclose(q[:, :, 0], q[:, :, 2], rtol=1e-6)  # without ids the agents look alike

    for recurrent in (False, True):
        stacked, params = _networks(recurrent, False, False)
        assert params["params"]["MLPTorso_0"]["Dense_0"]["kernel"].shape == (N, D, 16)
        h = stacked.initial_hidden(6)
        seq, q = jax.jit(stacked.apply)(params, h, obs, resets)
        assert q.shape == (2, 6, N, A) and (seq is None) == (not recurrent)
        assert not np.allclose(q[:, :, 0], q[:, :, 1])  # separate parameters per agent
        apply_one = jax.jit(stacked.net.apply)
        for i in range(N):  # agent i's slice is its own network applied alone
            seq_i, q_i = apply_one(jax.tree.map(lambda p, i=i: p[i], params), None if h is None else h[:, i],
                                   obs[:, :, i], resets[:, :, i])
            np.testing.assert_allclose(q[:, :, i], q_i, rtol=1e-5, atol=1e-6)
            if recurrent:
                np.testing.assert_allclose(seq[:, :, i], seq_i, rtol=1e-5, atol=1e-6)


def test_gru_q_network_resets_hidden_state_on_episode_start():
    """From a reset step on, the outputs equal a fresh sequence started there from zeros."""
    nets, params = _networks(True, True, True)
    obs = jax.random.normal(jax.random.PRNGKey(0), (6, 3, N, D))
    h0 = jax.random.normal(jax.random.PRNGKey(2), (3, N, 16))
    resets = jnp.zeros((6, 3, N), bool).at[3, 0, :].set(True)
    apply = jax.jit(nets.apply)
    _, q = apply(params, h0, obs, resets)
    _, fresh = apply(params, nets.initial_hidden(3), obs[3:], jnp.zeros((3, 3, N), bool))
    np.testing.assert_allclose(q[3:, 0], fresh[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(q[3:, 1], fresh[:, 1])  # environment 1 carried its state on



def test_q_network_layer_norm_switch():
    """``layer_norm=False`` leaves the LayerNorm after the hidden layers out (JaxMARL's RNN agent: Dense -> ReLU -> GRU
    -> Dense), and nothing else: the other layers keep their shapes."""
    x, h, resets = jnp.ones((1, 2, D)), jnp.zeros((2, 16)), jnp.ones((1, 2), bool)
    shapes = {}
    for norm in (True, False):
        params = QNetwork(5, (16,), recurrent=True, layer_norm=norm).init(jax.random.PRNGKey(0), h, x, resets)
        shapes[norm] = {"/".join(k.key for k in path): leaf.shape
                        for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
    dropped = set(shapes[True]) - set(shapes[False])
    assert dropped and all("LayerNorm" in name for name in dropped)
    assert all(shapes[True][name] == shape for name, shape in shapes[False].items())


def _random_rows(key, rows=2000, a=6):
    kq, ka = jax.random.split(key)
    q = jax.random.normal(kq, (rows, a))
    avail = jax.random.bernoulli(ka, 0.4, (rows, a)).at[:, 0].set(False)
    avail = avail.at[jnp.arange(rows), jnp.argmin(q, -1)].set(True)  # at least one, often the worst action
    return q, avail


def test_masked_greedy_and_max_only_see_available_actions():
    q, avail = _random_rows(jax.random.PRNGKey(0))
    qa, av = np.asarray(q), np.asarray(avail)
    want = np.where(av, qa, -np.inf).argmax(-1)
    a = np.asarray(jax.jit(greedy_action)(q, avail))
    assert av[np.arange(len(a)), a].all()
    np.testing.assert_array_equal(a, want)
    np.testing.assert_allclose(jax.jit(masked_max)(q, avail), qa[np.arange(len(a)), want])
    assert np.mean(a != qa.argmax(-1)) > 0.3  # the mask changed many choices
    explore = np.asarray(jax.jit(epsilon_greedy)(jax.random.PRNGKey(1), q, avail, 1.0))
    assert av[np.arange(len(explore)), explore].all()
    np.testing.assert_allclose(action_values(q, a), qa[np.arange(len(a)), want])
    q_target = q[::-1]  # double Q: the target's value of the online network's masked greedy action
    np.testing.assert_allclose(jax.jit(double_q_max)(q, q_target, avail), np.asarray(q_target)[np.arange(len(a)), want])
    none = jnp.zeros((1, q.shape[1]), bool)  # no available action (a terminal step): finite, so 0 * max is 0
    assert np.isfinite(masked_max(q[:1], none)).all() and float(0.0 * masked_max(q[:1], none)[0]) == 0.0


def test_epsilon_greedy_frequencies():
    """Available actions {0, 1, 3} with greedy 3: each non-greedy one epsilon / 3, the greedy 1 - 2 epsilon / 3."""
    rows, eps = 40_000, 0.3
    q = jnp.broadcast_to(jnp.array([0.5, 0.1, 9.0, 2.0, 7.0]), (rows, 5))
    avail = jnp.broadcast_to(jnp.array([True, True, False, True, False]), (rows, 5))
    a = np.asarray(jax.jit(epsilon_greedy)(jax.random.PRNGKey(0), q, avail, eps))
    freq = np.bincount(a, minlength=5) / rows
    np.testing.assert_allclose(freq, [eps / 3, eps / 3, 0.0, 1 - 2 * eps / 3, 0.0], atol=0.01)
    assert freq[2] == 0 and freq[4] == 0
    greedy = np.asarray(epsilon_greedy(jax.random.PRNGKey(1), q[:100], avail[:100], 0.0))
    np.testing.assert_array_equal(greedy, 3)


def test_epsilon_schedule_values():
    sched = epsilon_schedule(1.0, 0.05, decay_steps=100, begin=10)
    steps = jnp.array([0, 10, 60, 110, 1000])
    np.testing.assert_allclose(jax.vmap(sched)(steps), [1.0, 1.0, 0.525, 0.05, 0.05], rtol=1e-6)
