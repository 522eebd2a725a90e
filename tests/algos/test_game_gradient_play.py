"""Game-gradient play against closed forms: the bilinear game's spiral rates, the tandem game's fixed points, the
toy and public goods games' outcomes, and the config's bad input."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
from algos.game_gradient_play import initial_state


def trainer(env_name, method, num_updates, **changes):
    env = envs.make(env_name)
    algo = algos.get("simul_ind")
    config = dataclasses.replace(algo.default_config(env), method=method, num_updates=num_updates, **changes)
    config.validate(env)
    return algo.make_train(env, config), config


@functools.cache
def trajectory(env_name, method, start, num_updates, **changes):
    """Actions [U, 2] of ``method`` from the parameters ``start`` (one run, one jit)."""
    tr, config = trainer(env_name, method, num_updates, **changes)
    key = jax.random.PRNGKey(0)
    state = initial_state(envs.make(env_name), config, jnp.asarray(start))
    _, metrics = jax.jit(lambda s: tr.run(s, key, 0, num_updates))(state)
    return np.asarray(metrics["action"], np.float64)


@pytest.mark.parametrize("method,rate", [("simul_ind", np.sqrt(1.01)), ("sga", np.sqrt(0.81 + 0.01))])
def test_bilinear_game_spirals_out_under_gradient_descent_and_in_under_sga(method, rate):
    """l_1 = x y = -l_2, step 0.1: GD multiplies the distance to (0, 0) by sqrt(1.01) each step; SGA (lam = 1, its
    alignment sign is + on this game) by sqrt(0.81 + 0.01) = 0.90554."""
    actions = trajectory("game_bilinear", method, (1.0, 0.5), 20)
    dist = np.linalg.norm(np.concatenate([[[1.0, 0.5]], actions]), axis=1)
    np.testing.assert_allclose(dist[1:] / dist[:-1], rate, rtol=1e-5)


@pytest.mark.parametrize("method,total", [("simul_ind", 1.0), ("lookahead", 1.0), ("sos", 1.0), ("lola", 4 / 3)])
def test_tandem_game_fixed_points(method, total):
    """From (0, 0), step and look-ahead 0.1: GD, LookAhead and SOS end on x + y = 1; LOLA's shaping moves its fixed
    point to (1 - 2 alpha)(2 s - 2) = 4 alpha s, s = 4/3 (Letcher et al., 2019)."""
    actions = trajectory("game_tandem", method, (0.0, 0.0), 100)
    assert actions[-1].sum() == pytest.approx(total, abs=1e-4)
    assert actions[-1][0] == pytest.approx(actions[-1][1], abs=1e-6)  # the players stay symmetric


def test_public_goods_collective_methods_contribute_and_selfish_ones_free_ride():
    """The public goods game's Nash equilibrium is (0, 0) and its optimum (1, 1): from equal shares of 1/2 the
    simultaneous gradient lowers both contributions, Simul-Co and AgA raise them, AgA the most. Measured (this CPU):
    after 10 updates AgA 0.818 against Simul-Co 0.757, after 100 0.9852 against 0.9773 (AgA's first step is
    Simul-Co's: lam = sign(0) at the symmetric start)."""
    runs = {m: trajectory("public_goods", m, (0.0, 0.0), 100) for m in ("simul_ind", "simul_co", "aga")}
    final = {m: a[-1] for m, a in runs.items()}
    assert np.all(final["simul_ind"] < 0.2)
    assert np.all(final["simul_co"] > 0.8)
    assert np.all(final["aga"] >= final["simul_co"])
    assert np.all(runs["aga"][9] > runs["simul_co"][9] + 0.03), (runs["aga"][9], runs["simul_co"][9])
    assert np.all(final["aga"] > final["simul_co"] + 0.004), (final["aga"], final["simul_co"])


def test_aga_step_is_xi_c_plus_lam_xi_plus_collective_hessian_term_on_public_goods():
    """One AgA step of 1 from logits (0.4, -0.7), written out with jax.hessian on the losses l_i = -V_i of the
    closed-form public goods values: theta - (xi_c + lam (xi + H_c^T xi_c)), lam = sign(<xi_c, H_c^T xi_c>
    (<xi, H_c^T xi_c> + |H_c^T xi_c|^2)) (Li et al.'s sign rule). Here lam = -1, so the step is not Simul-Co's."""
    start = (0.4, -0.7)

    def losses(theta):
        a = jax.nn.sigmoid(theta)
        return -(1 - a + 1.5 * a.sum() / 2)

    @jax.jit  # one compile rather than op-by-op dispatch
    def by_hand(theta):
        jac = jax.jacobian(losses)(theta)  # jac[i, j] = d l_i / d theta_j
        xi, xi_c = jnp.diag(jac), jac.sum(axis=0)
        grad_ham_c = jax.hessian(lambda th: losses(th).sum())(theta).T @ xi_c
        lam = jnp.sign(jnp.dot(xi_c, grad_ham_c) * (jnp.dot(xi, grad_ham_c) + jnp.dot(grad_ham_c, grad_ham_c)))
        return jax.nn.sigmoid(theta - (xi_c + lam * (xi + grad_ham_c))), lam, jax.nn.sigmoid(theta - xi_c)

    want, lam, simul_co = by_hand(jnp.asarray(start))
    assert lam == -1.0
    np.testing.assert_allclose(trajectory("public_goods", "aga", start, 1)[0], want, rtol=1e-5)
    assert np.abs(np.asarray(simul_co - want)).max() > 0.01  # the lam term moved the step (0.014 here)


@pytest.mark.slow
def test_toy_game_collective_methods_reach_welfare_two_more_often_than_selfish_play():
    env = envs.make("game_aga_toy")
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    rates = {}
    for method in ("simul_ind", "simul_co", "aga"):
        out = jax.jit(jax.vmap(trainer("game_aga_toy", method, 1000)[0]))(keys)
        rates[method] = float(np.mean(np.asarray(out.metrics["social_welfare"][:, -1]) > 1.99))
    assert rates["simul_co"] > 0.8 and rates["aga"] > 0.6 and rates["simul_ind"] < 0.5, (rates, env.name)


@pytest.mark.parametrize("field,value,fragment", [("method", "lolaa", "method"), ("optimiser", "rmsprop", "optimiser"),
                                                  ("lr", 0.0, "lr"), ("sos_a", -1.0, "sos_a"),
                                                  ("init_low", 2.0, "init_low")])
def test_config_validation_names_the_field(field, value, fragment):
    env = envs.make("game_tandem")
    config = dataclasses.replace(algos.get("sos").default_config(env), **{field: value})
    with pytest.raises(ValueError, match=fragment):
        config.validate(env)


def test_registered_methods_and_environments():
    for name in ("simul_ind", "simul_co", "lookahead", "sos", "sga", "cga", "aga", "svo"):
        assert algos.get(name).default_config(envs.make("game_tandem")).method == name
        assert algos.compatible(name, envs.make("public_goods")) is None
    assert "ExactValue" in algos.compatible("aga", envs.make("coin_game"))
    with pytest.raises(ValueError, match="multiplier"):
        envs.make("public_goods", multiplier=2.5)
    env = envs.make("public_goods")
    shares = jnp.array([[0.3], [0.9]])
    np.testing.assert_allclose(env.step(jax.random.PRNGKey(0), env.reset(jax.random.PRNGKey(0))[1], shares).reward,
                               [1 - 0.3 + 1.5 * 0.6, 1 - 0.9 + 1.5 * 0.6], rtol=1e-6)


def test_svo_step_is_the_finite_difference_gradient_of_the_shaped_public_goods_values():
    """One SGD step of 1 from logits (0.4, -0.7): theta_i + d/dtheta_i of V_i - w |45 deg - atan(V_j / V_i)|, the
    closed-form public goods values differentiated by central differences in float64."""
    w, start = 0.8, np.array([0.4, -0.7])

    def shaped(theta):
        a = 1 / (1 + np.exp(-theta))
        v = 1 - a + 1.5 * a.sum() / 2
        return v - w * np.abs(np.pi / 4 - np.arctan(v[::-1] / v))

    eps = 1e-6
    grad = [(shaped(start + eps * np.eye(2)[i])[i] - shaped(start - eps * np.eye(2)[i])[i]) / (2 * eps)
            for i in range(2)]
    actions = trajectory("public_goods", "svo", tuple(start), 1, svo_weight=w)
    np.testing.assert_allclose(actions[0], 1 / (1 + np.exp(-(start + grad))), rtol=1e-5)
