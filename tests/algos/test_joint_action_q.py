"""Minimax-Q, Friend-or-Foe-Q and Nash-Q on matrix games (the stochastic-game results are in test_soccer_learners)."""
import dataclasses
import functools

import jax
import numpy as np
import pytest

import algos
import envs
from jaxmarl_core import tabular

SEEDS = 8


@functools.cache
def run(algo: str, env_name: str, **overrides):
    env = envs.make(env_name)
    config = dataclasses.replace(algos.get(algo).default_config(env), total_steps=5000, steps_per_update=500,
                                 **overrides)
    config.validate(env)
    out = jax.jit(jax.vmap(algos.get(algo).make_train(env, config)))(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    return {k: np.asarray(v) for k, v in out.metrics.items()}


@pytest.mark.parametrize("game", ["matrix_mp", "matrix_rps"])
def test_minimax_q_finds_the_value_and_the_maximin_strategy(game):
    m = run("minimax_q", game)
    np.testing.assert_allclose(m["value"][:, -1], 0.0, atol=1e-5)  # both games have value 0
    assert m["nash_conv"][:, -1].max() < 1e-4  # both play the uniform equilibrium


def test_ffq_foe_is_minimax_q_and_friend_finds_the_best_joint_action():
    foe, minimax = run("ffq", "matrix_rps", backup="foe"), run("minimax_q", "matrix_rps")
    np.testing.assert_array_equal(foe["policy"], minimax["policy"])
    friend = run("ffq", "matrix_climbing")  # common payoff: the best joint action (0, 0) pays 11
    assert np.all(friend["policy"][:, -1, :, 0] == 1.0)
    np.testing.assert_allclose(friend["value"][:, -1], 11.0)
    foe = run("ffq", "matrix_climbing", backup="foe")  # foe-Q guards against the -30 miscoordination instead
    assert np.all(foe["value"][:, -1] < 11.0)


def test_nash_q_learns_a_stage_game_equilibrium():
    games = ("matrix_bos", "matrix_chicken", "matrix_sh", "matrix_pd")
    env = envs.make(games[0])
    config = dataclasses.replace(algos.get("nash_q").default_config(env), total_steps=5000, steps_per_update=500)
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)

    def train(payoffs):  # one jit over the four games: payoffs live in EnvParams
        trainer = algos.get("nash_q").make_train(env, config, env.default_params.replace(payoffs=payoffs))
        return jax.vmap(trainer)(keys).metrics["nash_conv"]

    payoffs = jax.numpy.stack([envs.make(g).default_params.payoffs for g in games])
    nash_conv = np.asarray(jax.jit(jax.vmap(train))(payoffs))  # [games, seeds, updates]
    assert nash_conv[:, :, -1].max() < 1e-4, nash_conv[:, :, -1]


def test_bad_backup_is_rejected():
    env = envs.make("matrix_mp")
    with pytest.raises(ValueError, match="backup must be one of"):
        dataclasses.replace(algos.get("ffq").default_config(env), backup="neutral").validate(env)
    assert "two-player" in algos.compatible("minimax_q", envs.make("matrix_trap"))


def test_nash_q_selection_rules_in_the_battle_of_the_sexes():
    """Two pure equilibria, (0, 0) best for player 0 and (1, 1) best for player 1: "first" and "second" learners
    agree on one of them; under "best" each agent is its own learner and picks its favourite: they miscoordinate."""
    picks = {rule: run("nash_q", "matrix_bos", selection=rule)["policy"][:, -1] for rule in ("first", "second",
                                                                                               "best")}
    np.testing.assert_array_equal(picks["first"], np.broadcast_to([[1, 0], [1, 0]], (SEEDS, 2, 2)))
    np.testing.assert_array_equal(picks["second"], np.broadcast_to([[0, 1], [0, 1]], (SEEDS, 2, 2)))
    np.testing.assert_array_equal(picks["best"], np.broadcast_to([[1, 0], [0, 1]], (SEEDS, 2, 2)))
    with pytest.raises(ValueError, match="selection must be one of"):
        dataclasses.replace(algos.get("nash_q").default_config(envs.make("matrix_bos")), selection="last").validate(
            envs.make("matrix_bos"))


@pytest.mark.slow  # the default suite's time budget
def test_nash_q_in_lemke_howsons_order():
    """With ``order="lemke_howson"`` the first equilibrium is the one Lemke-Howson reaches from the first label:
    action 1's with ``lh_actions="1,0"``, so (1, 1), where the support order's first is (0, 0)."""
    picks = run("nash_q", "matrix_bos", order="lemke_howson", lh_actions="1,0")["policy"][:, -1]
    np.testing.assert_array_equal(picks, np.broadcast_to([[0, 1], [0, 1]], (SEEDS, 2, 2)))


def test_nash_q_order_options_are_checked():
    env = envs.make("matrix_bos")
    config = algos.get("nash_q").default_config(env)
    assert config.order == "support" and dataclasses.replace(config, lh_actions="1,0").lh_labels(2) == (1, 0, 3, 2)
    assert dataclasses.replace(config, lh_actions="1,0", lh_order="agent2_first").lh_labels(2) == (3, 2, 1, 0)
    for bad, match in (({"order": "gambit"}, "order must be one of"), ({"lh_actions": "0,0"}, "lh_actions must"),
                       ({"lh_actions": "1,x"}, "lh_actions must"), ({"lh_order": "last"}, "lh_order must")):
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(config, **bad).validate(env)


@pytest.mark.slow
def test_nash_q_at_hu_wellmans_protocol_reaches_an_equilibrium_in_grid_game_1():
    """Section 5.1.3's protocol (random starts, uniform legal moves, alpha = 1/n, 5000 episodes of about 7.9 steps):
    the learned joint policy is a Nash equilibrium from the corners under both rules (their Table 10: 100%)."""
    env, model = envs.make("grid_game_1", random_start=True), envs.make("grid_game_1").tabular_model()
    for rule in ("first", "second"):
        config = dataclasses.replace(algos.get("nash_q").default_config(env), total_steps=39_500,
                                     steps_per_update=3_950, selection=rule)
        pi = jax.jit(jax.vmap(algos.get("nash_q").make_train(env, config)))(
            jax.random.split(jax.random.PRNGKey(1), 4)).state.pi
        conv = jax.vmap(lambda p: jax.numpy.sum(model.initial @ jax.numpy.stack([
            tabular.best_response(model, p[1], 0, 0.99, 2000)[0],
            tabular.best_response(model, p[0], 1, 0.99, 2000)[0]], -1)
            - model.initial @ tabular.policy_values(model, p[0], p[1], 0.99)))(pi)
        assert np.asarray(conv).max() < 0.1, (rule, conv)
