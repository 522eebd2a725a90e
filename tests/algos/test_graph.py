"""DGN (algos/graph): the masked multi-head attention against a numpy transcription of the paper's formula,
permutation equivariance (relabelling agents, neighbourhoods relabelled with them, permutes the Q-values exactly),
masked slots that change nothing, DGN-R's KL against scipy, the relation term's effect on the gradient, and DGN
learning to route packets on a small network (far above random routing, near Floyd's shortest paths)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import entropy

import algos
import envs
from algos.graph import DGN, DGNConfig, GraphSample, attention_kl, dgn_loss, make_train
from algos.graph.model import build_model
from envs.dgn_battle import k_nearest
from jaxmarl_core.networks import MaskedMultiHeadAttention, gather_neighbours
from tests.conftest import optimised_jit

N, K, D, A = 7, 4, 11, 5


@pytest.fixture(scope="module")
def net():
    """A small DGN with its parameters and a jitted apply."""
    model = DGN(num_actions=A, encoder_size=16, hidden_size=12, num_heads=3, head_dim=4, conv_layers=2)
    obs, idx, mask = inputs(0)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), obs, idx, mask)
    return model, params, jax.jit(model.apply)


def inputs(seed, n=N, dead=(5,)):
    """Random observations [n, D] and the k nearest neighbourhoods of random cells, agents ``dead`` masked out."""
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.normal(size=(n, D)), jnp.float32)
    alive = np.ones(n, bool)
    alive[list(dead)] = False
    idx, mask = k_nearest(jnp.asarray(rng.integers(0, 6, (n, 2)), jnp.int32), jnp.asarray(alive), K)
    return obs, idx, mask


def test_attention_is_the_papers_formula():
    layer = MaskedMultiHeadAttention(num_heads=2, head_dim=3, out_dim=5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    idx = np.array([[0, 3, 1, 4], [1, 0, 2, 2]] + [[i, 0, 1, 2] for i in range(2, 5)], np.int32)
    mask = np.array([[True, False, True, True], [True, True, True, False]] + [[True] * 4] * 3)
    params = layer.init(jax.random.PRNGKey(1), x, idx, mask)
    out, logits = layer.apply(params, x, idx, mask)
    p = jax.tree.map(np.asarray, params["params"])

    def proj(name, v):
        return np.maximum(v @ p[name]["kernel"] + p[name]["bias"], 0.0).reshape(2, 3)

    for i in range(2):
        q = proj("query", x[i])
        slots = np.flatnonzero(mask[i])
        heads = []
        for h in range(2):
            score = np.array([q[h] @ proj("key", x[idx[i, s]])[h] / np.sqrt(3.0) for s in slots])
            alpha = np.exp(score - score.max()) / np.exp(score - score.max()).sum()
            np.testing.assert_allclose(np.asarray(jax.nn.softmax(logits[i, h]))[slots], alpha, rtol=1e-5)
            heads.append(sum(a * proj("value", x[idx[i, s]])[h] for a, s in zip(alpha, slots)))
        want = np.maximum(np.concatenate(heads) @ p["out"]["kernel"] + p["out"]["bias"], 0.0)
        np.testing.assert_allclose(out[i], want, rtol=1e-5, atol=1e-6)


def test_relabelling_agents_permutes_q_exactly(net):
    model, params, apply = net
    obs, idx, mask = inputs(2)
    perm = np.random.default_rng(3).permutation(N)  # new agent j is old agent perm[j]
    inverse = np.argsort(perm)
    q, logits = apply(params, obs, idx, mask)
    q_p, logits_p = apply(params, obs[perm], jnp.asarray(inverse)[idx[perm]], mask[perm])
    np.testing.assert_array_equal(np.asarray(q_p), np.asarray(q)[perm])
    np.testing.assert_array_equal(np.asarray(logits_p), np.asarray(logits)[:, perm])
    assert not np.allclose(np.asarray(q_p), np.asarray(q))  # the relabelling did move the outputs


def test_masked_slots_change_nothing(net):
    model, params, apply = net
    obs, idx, mask = inputs(4, dead=(1, 5))
    assert not np.asarray(mask).all()
    q, _ = apply(params, obs, idx, mask)
    # a masked slot pointing at any other agent, and the dead agents' observations changed, leave every living
    # agent's Q-values identical
    other = jnp.where(mask, idx, (idx + 3) % N)
    noisy = obs.at[jnp.array([1, 5])].set(100.0)
    q2, _ = apply(params, noisy, other, mask)
    living = np.asarray(mask[:, 0])
    np.testing.assert_array_equal(np.asarray(q2)[living], np.asarray(q)[living])
    # and at the layer: a masked slot pointing at an agent of huge features changes no living agent's output
    layer = MaskedMultiHeadAttention(num_heads=2, head_dim=3, out_dim=4)
    h = jax.random.normal(jax.random.PRNGKey(5), (N, 6))
    lp = layer.init(jax.random.PRNGKey(6), h, idx, mask)
    out, _ = layer.apply(lp, h, idx, mask)
    out2, _ = layer.apply(lp, h.at[5].set(1e6), jnp.where(mask, idx, 5), mask)
    np.testing.assert_array_equal(np.asarray(out)[living], np.asarray(out2)[living])


def test_gather_neighbours_indexes_rows():
    x = jnp.arange(12.0).reshape(2, 3, 2)  # [B, N, F]
    idx = jnp.array([[[0, 2], [1, 1], [2, 0]], [[1, 0], [2, 2], [0, 1]]])
    want = np.stack([np.asarray(x[b])[np.asarray(idx[b])] for b in range(2)])
    np.testing.assert_array_equal(np.asarray(gather_neighbours(x, idx)), want)


def test_relation_kl_is_scipys_kl_over_the_unmasked_slots():
    rng = np.random.default_rng(7)
    mask = np.array([[True, True, False, True], [True, False, False, False]])
    lo = np.finfo(np.float32).min
    lp = np.where(mask[:, None, :], rng.normal(size=(2, 3, 4)), lo).astype(np.float32)
    lq = np.where(mask[:, None, :], rng.normal(size=(2, 3, 4)), lo).astype(np.float32)
    got = np.asarray(attention_kl(jnp.asarray(lp), jnp.asarray(lq), jnp.asarray(mask)))
    for i in range(2):
        for h in range(3):
            m = mask[i]
            p = np.exp(lp[i, h, m] - lp[i, h, m].max())
            q = np.exp(lq[i, h, m] - lq[i, h, m].max())
            assert got[i, h] == pytest.approx(entropy(q / q.sum(), p / p.sum()), rel=1e-5, abs=1e-7)


def test_dgn_loss_adds_lambda_times_the_kl_of_the_upper_layer(net):
    model, params, apply = net
    obs, idx, mask = inputs(8)
    nobs, _, _ = inputs(9)
    batch = jax.tree.map(lambda x: x[None], GraphSample(
        obs=obs, idx=idx, mask=mask, avail=jnp.ones((N, A), bool), action=jnp.arange(N) % A,
        reward=jnp.linspace(-1, 1, N), terminated=jnp.arange(N) == 1, next_obs=nobs, next_idx=idx,
        next_mask=mask, next_avail=jnp.ones((N, A), bool)))
    target = jax.tree.map(lambda p: p * 0.9, params)
    loss1, (td, kl) = jax.jit(functools.partial(dgn_loss, model, DGNConfig(relation_reg=0.5)))(params, target, batch)
    _, logits = apply(params, obs, idx, mask)
    _, logits_next = apply(target, nobs, idx, mask)
    want_kl = float(np.mean(attention_kl(logits[-1], logits_next[-1], mask)))
    q_next, _ = apply(target, nobs, idx, mask)
    q, _ = apply(params, obs, idx, mask)
    y = np.linspace(-1, 1, N) + 0.96 * np.asarray(q_next).max(-1) * (np.arange(N) != 1)  # agent 1's own end
    want_td = np.mean((y - np.asarray(q)[np.arange(N), np.arange(N) % A]) ** 2)
    assert float(td) == pytest.approx(want_td, rel=1e-5) and float(kl) == pytest.approx(want_kl, rel=1e-5)
    assert float(kl) > 0 and float(loss1) == pytest.approx(float(td) + 0.5 * want_kl, rel=1e-5)
    # fixed_relation=False: the target network reads s' over the neighbourhoods of s'
    other_idx, other_mask = inputs(10)[1:]
    moved = batch.replace(next_idx=other_idx[None], next_mask=other_mask[None])
    _, (td2, _) = jax.jit(functools.partial(dgn_loss, model, DGNConfig(fixed_relation=False)))(params, target, moved)
    q_next2, _ = apply(target, nobs, other_idx, other_mask)
    y2 = np.linspace(-1, 1, N) + 0.96 * np.asarray(q_next2).max(-1) * (np.arange(N) != 1)
    assert float(td2) == pytest.approx(np.mean((y2 - np.asarray(q)[np.arange(N), np.arange(N) % A]) ** 2), rel=1e-5)
    # the KL's gradient reaches the online network only
    g = jax.jit(jax.grad(lambda p, t: dgn_loss(model, DGNConfig(), p, t, batch)[1][1], argnums=(0, 1)))(
        params, target)
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g[0])) > 0
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g[1])) == 0


def test_registered_with_its_capability_and_bad_config():
    assert algos.compatible("dgn", envs.make("dgn_battle")) is None
    assert "Neighbourhood" in algos.compatible("dgn", envs.make("battle"))
    env = envs.make("dgn_battle", map_size=10, n_learners=4, n_enemies=2)
    for bad, fragment in [({"num_heads": 0}, "num_heads"), ({"gamma": 1.0}, "gamma"),
                          ({"batch_size": 64, "buffer_size": 32}, "batch_size"),
                          ({"relation_reg": 0.1, "fixed_relation": False}, "needs fixed_relation")]:
        with pytest.raises(ValueError, match=fragment):
            DGNConfig(**bad).validate(env)


# DGN's routing (envs/routing.py) on 6 routers (8 cables) and 4 packets; no congestion to speak of at this load, so
# Floyd's next hops with the bandwidth limit are close to the best routing there is
ROUTING = {"num_routers": 6, "num_packets": 4, "max_steps": 100}
# small networks; lr, gamma and tau faster than the released code's 1e-3, 0.98 and 0.01 (measured, each alone, greedy
# after 4,000 steps: 0.17-0.46, 0.36-0.52, 0.18-0.52 packets per step); 500 updates of 4 x 2 steps, 4 gradient steps
# each, epsilon 0.6 x 0.9 per 100 steps down to 0.01
ROUTING_DGN = DGNConfig(total_steps=4_000, num_envs=4, rollout_len=2, encoder_size=16, hidden_size=16, num_heads=2,
                        head_dim=4, lr=3e-3, gamma=0.9, batch_size=32, buffer_size=2_000, learning_starts=100,
                        num_sgd=4, target_tau=0.05, epsilon_decay=0.9, epsilon_period=100)


def throughput(env, model, params, policy, key, episodes=16):
    """Packets delivered per step, mean over ``episodes`` whole episodes from fresh resets, of ``policy`` 0: greedy
    on the network's Q-values (available actions), 1: uniformly random available actions, 2: Floyd's next hops (one
    program for all three)."""
    def act(obs, state, k):
        avail = env.avail_actions(state)
        q, _ = model.apply(params, obs, *env.neighbours(state))
        choices = jnp.stack([jnp.argmax(jnp.where(avail, q, -jnp.inf), axis=-1),
                             jax.random.categorical(k, jnp.where(avail, 0.0, -jnp.inf)),
                             env.shortest_path_actions(state)])
        return choices[policy]

    def episode(k):
        k_reset, k_steps = jax.random.split(k)

        def step(carry, k_step):
            obs, state = carry
            k_act, k_env = jax.random.split(k_step)
            ts = env.step(k_env, state, act(obs, state, k_act))
            return (ts.obs, ts.state), ts.info["delivered"]

        return jnp.mean(jax.lax.scan(step, env.reset(k_reset), jax.random.split(k_steps, env.max_steps))[1])

    return jnp.mean(jax.vmap(episode)(jax.random.split(key, episodes)))


def test_dgn_learns_to_route_packets_far_above_random_and_near_shortest_paths():
    """Section 5 of the paper: DGN's packets learn to route themselves to their destinations, its throughput near
    (on larger, congested networks above) Floyd's shortest paths with the bandwidth limit. Here 4 seeds of 4,000
    environment steps; every seed's greedy policy, evaluated after training on 16 fresh episodes, must deliver at least
    0.7 of Floyd's packets per step, which uniformly random routing is far below; the untrained network (greedy on
    its initial Q-values) is below random routing, and the training curve rises from about random."""
    env = envs.make("routing", **ROUTING)
    ROUTING_DGN.validate(env)
    trainer = make_train(env, ROUTING_DGN)
    model = build_model(ROUTING_DGN, env.num_actions)

    def seed(key):
        out = trainer(key)
        params = jax.tree.map(lambda a, b: jnp.stack([a, b, b, b]), out.state.params, trainer.init_state(key).params)
        scores = jax.vmap(functools.partial(throughput, env, model), in_axes=(0, 0, None))(
            params, jnp.array([0, 0, 1, 2]), jax.random.PRNGKey(1))
        return out.metrics["delivered"], scores

    # 500 updates: at the suite's backend level 0 the run would cost more than the compile saves
    curve, scores = jax.tree.map(np.asarray, optimised_jit(functools.partial(jax.lax.map, seed))(
        jax.random.split(jax.random.PRNGKey(0), 4)))
    trained, untrained, random, floyd = scores.T  # random and Floyd's are the same for every seed
    assert random[0] < 0.3 * floyd[0], (random, floyd)  # measured: random 0.12, Floyd with BL 0.55 packets per step
    assert np.all(untrained < random), (untrained, random)  # measured: 0.03-0.04
    assert np.all(trained > 0.7 * floyd), (trained, floyd)  # measured: 0.51-0.54, 0.93-0.98 of Floyd's
    tenth = curve.shape[1] // 10  # while training (epsilon-greedy): from about random to about the greedy policy's
    assert np.all(curve[:, -2 * tenth:].mean(axis=1) > 3 * curve[:, :tenth].mean(axis=1)), curve
