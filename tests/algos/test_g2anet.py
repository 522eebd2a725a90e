"""G2ANet / GA-Comm (algos/graph/g2anet*.py): the hard attention's keep mask (shape, masking, Gumbel-max
frequencies against the softmax of its logits), dropped edges (no soft-attention weight, no gradient), permutation
equivariance and masked neighbours that change nothing, and (slow) learning on the easy traffic junction."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
from algos.graph import GAComm, HardAttention
from algos.graph.g2anet_model import PairBiGRU
from jaxmarl_core.networks import MaskedMultiHeadAttention

N, D, A = 6, 9, 2


def inputs(seed, absent=(4,)):
    """Random observations [N, D] and the traffic junction's neighbourhoods (everyone, itself first) with the
    agents ``absent`` masked out."""
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.normal(size=(N, D)), jnp.float32)
    i, k = np.arange(N)[:, None], np.arange(N)[None, :]
    idx = np.where(k == 0, i, np.where(k <= i, k - 1, k)).astype(np.int32)
    present = np.ones(N, bool)
    present[list(absent)] = False
    return obs, jnp.asarray(idx), jnp.asarray(present[:, None] & present[idx])


PERM = np.array([3, 0, 5, 1, 4, 2])  # relabelled agent p is agent PERM[p]


@pytest.fixture(scope="module")
def outputs():
    """GA-Comm's outputs (logits, value, keep, attention logits), without Gumbel noise, in one compiled program:
    on the inputs, on them relabelled by PERM, with the absent agent 4's observation and every masked slot changed,
    and with agent 1's observation moved."""
    model = GAComm(num_actions=A, hidden_size=16, head_dim=8, gru_size=8)
    obs, idx, mask = inputs(4)

    @jax.jit
    def run(obs, idx, mask):
        # initial weights under which the hard attention (without noise) keeps some edges and drops others
        params = model.init(jax.random.PRNGKey(2), obs, idx, mask, jax.random.PRNGKey(1))
        inv = jnp.asarray(np.argsort(PERM))
        return {"plain": model.apply(params, obs, idx, mask),
                "relabelled": model.apply(params, obs[PERM], inv[idx[PERM]], mask[PERM]),
                "absent_changed": model.apply(params, obs.at[4].set(100.0), jnp.where(mask, idx, (idx + 1) % N),
                                              mask),
                "moved": model.apply(params, obs.at[1].add(1.0), idx, mask)}

    return run(obs, idx, mask)


def test_hard_attention_keeps_unmasked_others_with_the_gumbel_max_probabilities():
    layer = HardAttention(gru_size=8)
    obs, idx, mask = inputs(1)
    e = jnp.tanh(obs)

    @jax.jit
    def run(keys):
        params = layer.init(jax.random.PRNGKey(0), e, idx, mask, None)
        return jax.vmap(lambda k: layer.apply(params, e, idx, mask, k))(keys), layer.apply(params, e, idx, mask, None)

    (keep, logits), (det, _) = run(jax.random.split(jax.random.PRNGKey(2), 4000))
    assert keep.shape == (4000, N, N) and logits.shape == (4000, N, N - 1, 2)
    assert set(np.unique(np.asarray(keep))) <= {0.0, 1.0}
    assert not np.any(np.asarray(keep)[:, :, 0])  # never itself
    assert not np.any(np.asarray(keep)[:, ~np.asarray(mask)])  # never an absent agent
    # a straight-through Gumbel-max sample keeps an edge with probability softmax(logits)[keep]
    p_keep = np.asarray(jax.nn.softmax(logits[0], -1)[..., 1])
    freq = np.asarray(keep[:, :, 1:]).mean(0)
    valid = np.asarray(mask)[:, 1:]
    np.testing.assert_array_less(np.abs(freq - p_keep)[valid], 5 * np.sqrt(0.25 / 4000))
    # without a key: kept exactly where the keep logit is the larger
    np.testing.assert_array_equal(np.asarray(det)[:, 1:], (p_keep > 0.5) & valid)


def test_pair_bigru_is_flax_grucell_run_both_ways_over_the_pairs():
    """The written-out GRU (per-agent input projections, fused gates, unrolled slots) against flax's ``GRUCell``
    stepped over the concatenated pairs (e_i, e_j) slot by slot, with the same weights."""
    obs, idx, mask = inputs(5)
    e, valid, g = jnp.tanh(obs), mask[:, 1:], 4
    layer = PairBiGRU(g)
    rng = np.random.default_rng(0)
    params = {f"{d}_{name}": jnp.asarray(rng.normal(size=shape) / np.sqrt(shape[0]), jnp.float32)  # nonzero biases
              for d in ("forward", "backward") for name, shape in
              (("input", (2 * D, 3 * g)), ("input_bias", (3 * g,)), ("hidden", (g, 3 * g)), ("hidden_bias", (g,)))}
    pairs = jnp.concatenate([jnp.broadcast_to(e[:, None], (N, N - 1, e.shape[-1])), e[idx[:, 1:]]], -1)
    cell = nn.GRUCell(g)

    def reference(direction, order):
        w_in, w_h = params[f"{direction}_input"], params[f"{direction}_hidden"]
        b_in = params[f"{direction}_input_bias"]
        cols = {c: slice(k * g, (k + 1) * g) for k, c in enumerate("rzn")}
        p = {f"i{c}": {"kernel": w_in[:, s], "bias": b_in[s]} for c, s in cols.items()}
        p |= {f"h{c}": {"kernel": w_h[:, s]} for c, s in cols.items()}
        p["hn"]["bias"] = params[f"{direction}_hidden_bias"]
        h, out = jnp.zeros((N, g)), {}
        for k in order:
            new, _ = cell.apply({"params": p}, h, pairs[:, k])
            h = jnp.where(valid[:, k, None], new, h)
            out[k] = h
        return jnp.stack([out[k] for k in range(N - 1)], 1)

    @jax.jit
    def both():
        return layer.apply({"params": params}, e, idx, valid), jnp.concatenate(
            [reference("forward", range(N - 1)), reference("backward", reversed(range(N - 1)))], -1)

    got, expected = both()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_dropped_edge_has_no_soft_attention_weight_and_no_gradient():
    layer = MaskedMultiHeadAttention(num_heads=2, head_dim=4, out_dim=5)
    obs, idx, mask = inputs(3, absent=())
    gate = jnp.ones((N, N)).at[0, 2].set(0.0).at[:, 0].set(0.0)  # agent 0 drops its edge to agent 2 (slot 2)
    kept = mask & (gate > 0.5)
    @jax.jit
    def probe(x, g):
        """-> (attention weights, d out_0 / d x, d out_0 / d gate)."""
        params = layer.init(jax.random.PRNGKey(0), x, idx, kept, g)

        def out0(x, g):
            return jnp.sum(layer.apply(params, x, idx, kept, g)[0][0])

        return jax.nn.softmax(layer.apply(params, x, idx, kept, g)[1], -1), *jax.grad(out0, argnums=(0, 1))(x, g)

    weights, grad, g_gate = probe(obs, gate)
    assert float(jnp.max(weights[0, :, 2])) == 0.0 and float(jnp.min(weights[0, :, 1])) > 0
    np.testing.assert_allclose(jnp.sum(weights[0], -1), 1.0, rtol=1e-6)  # renormalised over the kept agents
    assert float(jnp.max(jnp.abs(grad[2]))) == 0.0 and float(jnp.max(jnp.abs(grad[3]))) > 0
    # the gate (the hard attention's straight-through sample) gets a gradient through the kept edges only
    assert float(jnp.abs(g_gate[0, 1])) > 0 and float(g_gate[0, 2]) == 0.0


def test_relabelling_agents_permutes_the_outputs_and_absent_agents_change_nothing(outputs):
    logits, value, keep, _ = outputs["plain"]
    p_logits, p_value, p_keep, _ = outputs["relabelled"]
    np.testing.assert_allclose(p_logits, logits[PERM], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_value, value[PERM], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(p_keep, keep[PERM])
    # agent 4 is absent: its observation and what the masked slots point at change no one else's outputs
    o_logits, o_value, _, _ = outputs["absent_changed"]
    present = np.arange(N) != 4
    np.testing.assert_allclose(o_logits[present], logits[present], rtol=1e-6)
    np.testing.assert_allclose(o_value[present], value[present], rtol=1e-6)


@pytest.mark.slow  # about 2 s: three more compiles
def test_messages_carry_other_agents_observations_except_without_communication(outputs):
    others = np.arange(N) != 1  # agent 1's observation moved: it reaches the others only through messages
    kept = np.asarray(outputs["plain"][2])
    assert 0 < kept.sum() < np.asarray(inputs(4)[2])[:, 1:].sum()  # the hard attention keeps some edges, not all
    assert np.any(np.asarray(outputs["moved"][0] != outputs["plain"][0])[others])  # g2a
    model = GAComm(num_actions=A, hidden_size=16, head_dim=8)
    obs, idx, mask = inputs(5)

    @jax.jit
    def changes(obs):
        out = {}
        for comm in ("soft", "mean", "none"):
            m = dataclasses.replace(model, comm=comm)
            p = m.init(jax.random.PRNGKey(0), obs, idx, mask)
            out[comm] = m.apply(p, obs.at[1].add(1.0), idx, mask)[0] - m.apply(p, obs, idx, mask)[0]
        return out

    for comm, change in changes(obs).items():
        assert (comm == "none") == bool(jnp.all(change[others] == 0)), comm


@pytest.mark.slow  # a minute or more: 2 seeds x 40 updates of 320 steps on the easy junction, one compile
def test_ga_comm_raises_the_success_rate_on_the_easy_junction():
    env = envs.make("traffic_junction")
    algo = algos.get("ga_comm")
    cfg = dataclasses.replace(algo.default_config(env), total_steps=16 * 20 * 40, hidden_size=32, head_dim=16,
                              gru_size=16)
    trainer = algo.make_train(env, cfg)
    out = jax.jit(jax.vmap(trainer))(jax.random.split(jax.random.PRNGKey(0), 2))
    success = np.asarray(out.metrics["episode_success"])  # [seeds, updates]
    start, end = success[:, :3].mean(), success[:, -5:].mean()
    assert end > start + 0.15, (start, end)  # random driving collides in most episodes
