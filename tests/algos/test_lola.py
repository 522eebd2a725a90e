"""Exact-gradient NL and LOLA: the LOLA paper's qualitative results over 64 seeds, the update rule, determinism."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
from algos.lola import ExactConfig, direction

SEEDS = 64


@functools.cache
def trained(algo_name: str, env_name: str):
    """Metrics of 64 seeds trained with the paper's settings: {name: [S, U, ...]} as numpy."""
    env = envs.make(env_name)
    algo = algos.get(algo_name)
    train = algo.make_train(env, algo.default_config(env))
    out = jax.jit(jax.vmap(train))(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    return jax.tree.map(np.asarray, out.metrics)


def test_ipd_naive_learners_defect():
    r = trained("nl_exact", "ipd")["reward_per_step"][:, -1].mean()
    assert r < -1.8, f"NL-Ex in IPD should end near mutual defection (-2); got {r:.3f}"


def test_ipd_lola_cooperates():
    r = trained("lola_exact", "ipd")["reward_per_step"][:, -1].mean()
    assert r > -1.3, f"LOLA-Ex in IPD should mostly cooperate (paper: -1.06); got {r:.3f}"


def test_imp_lola_reaches_mixed_equilibrium():
    p = trained("lola_exact", "imp")["p_coop"]  # [S, U, 2, 5]
    dist = np.abs(p[:, -1] - 0.5).mean(axis=(0, 2))  # per player, averaged over seeds and states
    assert np.all(dist < 0.1), f"LOLA-Ex in IMP should end near p = 0.5 for both players; got {dist}"
    assert p[:, -300:].std(axis=1).mean() < 0.02, "LOLA-Ex should have settled, not be cycling"


def test_imp_naive_learners_keep_cycling():
    p = trained("nl_exact", "imp")["p_coop"]
    assert np.abs(p[:, -1] - 0.5).mean() > 0.3, "NL-Ex in IMP should stay far from the mixed equilibrium"
    moving = p[:, -300:].std(axis=1).mean(axis=(1, 2)) > 0.1  # per seed: policy still moving late in training
    assert moving.mean() >= 0.9, f"NL-Ex should keep cycling in most seeds; moving in {moving.mean():.2f}"


def test_lola_step_matches_explicit_second_order_formula():
    env = envs.make("ipd")
    theta = jax.random.normal(jax.random.PRNGKey(3), (2, 5))
    delta, eta = 0.7, 0.3

    def v(i, t1, t2):
        return env.exact_value(jnp.stack([t1, t2]))[i]

    @jax.jit  # one compile instead of one per primitive
    def explicit(theta):
        t1, t2 = theta
        g1 = jax.grad(v, argnums=1)(0, t1, t2)
        g2 = jax.grad(v, argnums=2)(1, t1, t2)
        # agent 1: delta * grad_1 V1 + delta * eta * (grad_2 V1)^T grad_1 grad_2 V2  (cross Hessian [P1, P2])
        cross_v2 = jax.jacfwd(jax.grad(v, argnums=2), argnums=1)(1, t1, t2)  # [P2, P1]: d/dθ1 of grad_2 V2
        cross_v1 = jax.jacfwd(jax.grad(v, argnums=1), argnums=2)(0, t1, t2)  # [P1, P2]: d/dθ2 of grad_1 V1
        want1 = t1 + delta * g1 + delta * eta * cross_v2.T @ jax.grad(v, argnums=2)(0, t1, t2)
        want2 = t2 + delta * g2 + delta * eta * cross_v1.T @ jax.grad(v, argnums=1)(1, t1, t2)
        return want1, want2, t1 + delta * g1

    @jax.jit
    def updates(theta):  # the learner's step: plain ascent along its configured direction
        def step(**config):
            return theta + delta * direction(env.exact_value, ExactConfig(**config))(theta)

        return step(lookahead_lr=eta, lola=True), step(lookahead_lr=eta, lola=False), step(lookahead_lr=0.0, lola=True)

    want1, want2, naive1 = explicit(theta)
    got, naive, no_lookahead = updates(theta)
    np.testing.assert_allclose(got[0], want1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], want2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(naive[0], naive1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(no_lookahead, naive, atol=1e-6)


def test_same_seed_same_result_and_different_seeds_differ():
    env = envs.make("ipd")
    algo = algos.get("lola_exact")
    train = jax.jit(algo.make_train(env, dataclasses.replace(algo.default_config(env), num_updates=20)))
    a, b = train(jax.random.PRNGKey(5)), train(jax.random.PRNGKey(5))
    c = train(jax.random.PRNGKey(6))
    np.testing.assert_array_equal(a.state.theta, b.state.theta)
    assert not np.allclose(a.state.theta, c.state.theta)
    assert a.metrics["reward_per_step"].shape == (20, 2)
    assert a.metrics["p_coop"].shape == (20, 2, 5)


def test_chunked_scan_equals_one_scan():
    env = envs.make("imp")
    algo = algos.get("lola_exact")
    trainer = algo.make_train(env, dataclasses.replace(algo.default_config(env), num_updates=30))
    key = jax.random.PRNGKey(1)
    whole = jax.jit(trainer)(key)
    state, run = trainer.init_state(key), jax.jit(trainer.run, static_argnums=3)  # one chunk program, as train.py
    chunks = []
    for start in (0, 10, 20):
        state, m = run(state, key, start, 10)
        chunks.append(m["reward_per_step"])
    np.testing.assert_allclose(state.theta, whole.state.theta, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.concatenate(chunks), whole.metrics["reward_per_step"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("field,value", [("lr", 0.0), ("num_updates", 0), ("lookahead_lr", -1.0)])
def test_config_validation_names_the_field(field, value):
    env = envs.make("ipd")
    cfg = dataclasses.replace(algos.get("lola_exact").default_config(env), **{field: value})
    with pytest.raises(ValueError, match=field):
        cfg.validate(env)


def test_exact_learners_reject_envs_without_closed_form_values():
    class NoValues:
        name = "no_values"
        num_agents = 2

    assert "exact_value" in algos.compatible("lola_exact", NoValues())
    assert algos.compatible("lola_exact", envs.make("ipd")) is None
    with pytest.raises(ValueError, match="lola_exact"):
        algos.get("lola_exakt")
