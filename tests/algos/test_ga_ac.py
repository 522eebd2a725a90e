"""GA-AC (algos/graph/ga_ac.py): its critic against a numpy transcription of the module docstring's formulas (hard
attention's bi-GRU and gate, the soft attention over the kept agents, the Q head), relabelling the agents permutes
the critic's outputs exactly, a dropped edge has zero weight and passes no gradient, the critic loss's gradient
against central finite differences, and (slow) learning the prisoner's dilemma's dominant strategy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
from algos.graph.ga_ac import GAACCritic, complete_graph
from jaxmarl_core.networks import MaskedMultiHeadAttention

N, D, A, H, HEADS, DH, G = 5, 6, 3, 8, 2, 4, 5
SHIFT = (np.arange(N) + 2) % N  # a cyclic relabelling: new agent p is old agent SHIFT[p]
PERM = np.array([3, 0, 4, 1, 2])  # a general one


def critic(kind):
    return GAACCritic(num_actions=A, hidden_size=H, critic=kind, num_heads=HEADS, head_dim=DH, gru_size=G)


def inputs(seed):
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.normal(size=(N, D)), jnp.float32)
    action = rng.integers(0, A, N)
    return obs, jnp.asarray(np.eye(A, dtype=np.float32)[action])


@pytest.fixture(scope="module")
def outputs():
    """Each critic kind's params and (q, keep) on the inputs, relabelled by SHIFT and by PERM: one program."""
    obs, act = inputs(0)

    @jax.jit
    def run(obs, act):
        out = {}
        for kind in ("g2a", "soft", "none"):
            model = critic(kind)
            params = model.init(jax.random.PRNGKey(3), obs, act, None)
            out[kind] = {"params": params, "plain": model.apply(params, obs, act),
                         "shift": model.apply(params, obs[SHIFT], act[SHIFT]),
                         "perm": model.apply(params, obs[PERM], act[PERM])}
        return out

    return obs, act, run(obs, act)


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_critic(p, obs, act):
    """The g2a critic without Gumbel noise, written from the module docstring: q [N, A], keep [N, N]."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), p["params"])
    obs, act = np.asarray(obs, np.float64), np.asarray(act, np.float64)
    s = relu(obs @ p["state"]["kernel"] + p["state"]["bias"])
    e = relu(np.concatenate([obs, act], 1) @ p["state_action"]["kernel"] + p["state_action"]["bias"])
    gru, gate = p["HardAttention_0"]["gru"], p["HardAttention_0"]["gate"]
    idx = complete_graph(N)
    keep = np.zeros((N, N))
    for i in range(N):
        pairs = [np.concatenate([s[i], e[j]]) for j in idx[i, 1:]]
        states = {}
        for direction, order in (("forward", range(N - 1)), ("backward", reversed(range(N - 1)))):
            h = np.zeros(G)
            w_in, b_in = gru[f"{direction}_input"], gru[f"{direction}_input_bias"]
            w_h, b_hn = gru[f"{direction}_hidden"], gru[f"{direction}_hidden_bias"]
            for k in order:  # flax's GRUCell: r, z, n
                xr, xz, xn = np.split(pairs[k] @ w_in + b_in, 3)
                hr, hz, hn = np.split(h @ w_h, 3)
                r, z = sigmoid(xr + hr), sigmoid(xz + hz)
                h = (1 - z) * np.tanh(xn + r * (hn + b_hn)) + z * h
                states[direction, k] = h
        for k in range(N - 1):
            logits = np.concatenate([states["forward", k], states["backward", k]]) @ gate["kernel"] + gate["bias"]
            keep[i, k + 1] = float(logits[1] > logits[0])
    soft = p["soft"]
    q_ = relu(s @ soft["query"]["kernel"] + soft["query"]["bias"]).reshape(N, HEADS, DH)
    k_ = relu(e @ soft["key"]["kernel"] + soft["key"]["bias"]).reshape(N, HEADS, DH)
    v_ = relu(e @ soft["value"]["kernel"] + soft["value"]["bias"]).reshape(N, HEADS, DH)
    x = np.zeros((N, H))
    for i in range(N):
        kept = [idx[i, k] for k in range(1, N) if keep[i, k] > 0]
        mixed = np.zeros((HEADS, DH))
        if kept:
            scores = np.einsum("hd,khd->hk", q_[i], k_[kept]) / np.sqrt(DH)
            w = np.exp(scores - scores.max(1, keepdims=True))
            mixed = np.einsum("hk,khd->hd", w / w.sum(1, keepdims=True), v_[kept])
        x[i] = relu(mixed.reshape(-1) @ soft["out"]["kernel"] + soft["out"]["bias"])
    f = relu(np.concatenate([s, x], 1) @ p["features"]["kernel"] + p["features"]["bias"])
    return f @ p["q"]["kernel"] + p["q"]["bias"], keep


def test_critic_matches_a_numpy_transcription(outputs):
    obs, act, out = outputs
    q, keep = numpy_critic(out["g2a"]["params"], obs, act)
    got_q, got_keep = out["g2a"]["plain"]
    np.testing.assert_array_equal(np.asarray(got_keep), keep)
    assert 0 < keep.sum() < N * (N - 1)  # some edges kept, some dropped: both paths exercised
    np.testing.assert_allclose(np.asarray(got_q), q, rtol=1e-5, atol=1e-5)


def test_relabelling_agents_permutes_the_critic_exactly(outputs):
    _, _, out = outputs
    for kind in ("g2a", "soft", "none"):
        q, keep = out[kind]["plain"]
        np.testing.assert_array_equal(np.asarray(out[kind]["shift"][0]), np.asarray(q)[SHIFT])
        np.testing.assert_array_equal(np.asarray(out[kind]["shift"][1]), np.asarray(keep)[SHIFT])
    for kind in ("soft", "none"):  # the bi-GRU reads the others in order; attention alone is order-free
        np.testing.assert_allclose(np.asarray(out[kind]["perm"][0]), np.asarray(out[kind]["plain"][0])[PERM],
                                   rtol=1e-6, atol=1e-6)


def test_dropped_edge_has_zero_weight_and_no_gradient():
    """Attention with a separate query (the critic's use): agent 0's output neither changes with nor has a gradient
    in the encoding of an agent whose edge is dropped (masked and gated 0), but does for a kept one."""
    rng = np.random.default_rng(1)
    e, s = (jnp.asarray(rng.normal(size=(N, H)), jnp.float32) for _ in range(2))
    idx = jnp.asarray(complete_graph(N))
    gate = jnp.ones((N, N)).at[:, 0].set(0.0).at[0, 2].set(0.0)  # agent 0 drops slot 2 (agent 2)
    mask = gate > 0.5
    layer = MaskedMultiHeadAttention(HEADS, DH, H)

    @jax.jit
    def run(e):
        params = layer.init(jax.random.PRNGKey(0), e, idx, mask, gate, query=s)

        def out0(e):
            return jnp.sum(layer.apply(params, e, idx, mask, gate, query=s)[0][0])

        logits = layer.apply(params, e, idx, mask, gate, query=s)[1][0]
        return jax.grad(out0)(e), out0(e), out0(e.at[2].set(50.0)), jax.nn.softmax(logits, axis=-1)

    grad, out, moved, weights = run(e)
    assert np.all(np.asarray(grad[2]) == 0.0) and np.any(np.asarray(grad[1]) != 0.0)
    assert float(moved) == float(out)
    assert np.all(np.asarray(weights[:, 2]) == 0.0)


@pytest.mark.slow  # a float64 compile of the critic's gradient: about 15 s on the loaded 2-core machine
def test_critic_loss_gradient_matches_finite_differences():
    """The TD loss of the soft critic (piecewise smooth: no hard 0/1 gate) in float64 against central differences
    along random directions of every parameter."""
    with jax.enable_x64(True):
        obs, act = (x.astype(jnp.float64) for x in inputs(2))
        model = critic("soft")
        params = jax.tree.map(lambda x: x.astype(jnp.float64), model.init(jax.random.PRNGKey(5), obs, act, None))
        target = jnp.asarray(np.random.default_rng(3).normal(size=N))
        taken = jnp.argmax(act, axis=-1)

        def loss(p):
            q, _ = model.apply(p, obs, act)
            return jnp.mean(jnp.square(q[jnp.arange(N), taken] - target))

        grad, loss = jax.jit(jax.grad(loss))(params), jax.jit(loss)
        rng = np.random.default_rng(4)
        for _ in range(3):
            direction = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
            eps = 1e-6
            plus = loss(jax.tree.map(lambda x, d: x + eps * d, params, direction))
            minus = loss(jax.tree.map(lambda x, d: x - eps * d, params, direction))
            analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction)))
            np.testing.assert_allclose(float(analytic), float((plus - minus) / (2 * eps)), rtol=1e-5)


def test_bad_config_and_env_are_refused():
    env = envs.make("predator_prey", num_predators=2, num_prey=1)
    algo = algos.get("ga_ac")
    cfg = algo.default_config(env)
    for change in ({"critic": "mean"}, {"batch_size": 10**6}, {"tau": 0.0}):
        with pytest.raises(ValueError):
            __import__("dataclasses").replace(cfg, **change).validate(env)
    assert algos.compatible("ga_ac", envs.make("mpe_simple")) is not None  # one agent
    assert algos.compatible("ga_ac", env) is None


@pytest.mark.slow  # compiles the whole learner (bi-GRU critic, three losses): minutes on the loaded machine
def test_learns_the_dominant_strategy_of_the_prisoners_dilemma():
    """Each agent's critic sees the other's action, so its counterfactual advantage favours defection whatever the
    other does: both learn to defect, the reward per step falls from the random policies' -1.5 ((-1 - 3 + 0 - 2) / 4)
    towards mutual defection's -2 (bound: below -1.85 over the last fifth of the updates, both seeds)."""
    env = envs.make("matrix_pd")
    algo = algos.get("ga_ac")
    cfg = __import__("dataclasses").replace(
        algo.default_config(env), total_steps=4000, num_envs=8, rollout_len=1, batch_size=64, buffer_size=2000,
        learning_starts=64, num_sgd=1, hidden_size=16, head_dim=4, gru_size=4, tau=0.05)
    cfg.validate(env)
    trainer = algo.make_train(env, cfg)
    out = jax.jit(jax.vmap(trainer))(jax.random.split(jax.random.PRNGKey(0), 2))
    reward = np.asarray(out.metrics["reward"])
    tail = reward.shape[1] // 5
    assert reward[:, :8].mean() > -1.75  # the 8 updates before learning_starts: the random policies
    assert np.all(reward[:, -tail:].mean(axis=1) < -1.85), reward[:, -tail:].mean(axis=1)
