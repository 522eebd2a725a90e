"""Minimax-Q, Friend-or-Foe-Q and Nash-Q on matrix games (the stochastic-game results are in test_soccer_learners)."""
import dataclasses
import functools

import jax
import numpy as np
import pytest
from scipy.optimize import linprog

import algos
import envs
from jaxmarl_core import tabular

SEEDS = 8
CLIMBING = np.array([[11, -30, 0], [-30, 7, 6], [0, 0, 5]], np.float64)  # common payoff, not symmetric: 6 at (1, 2)


def maximin(payoffs):
    """The value and the maximin strategy of the player choosing rows of ``payoffs`` [n, m] against a minimising
    column player, by scipy's LP: max v s.t. x^T payoffs >= v, x on the simplex. Checks that the strategy is
    unique (each x_i's least and greatest value over the maximin strategies agree), so a learner must find it."""
    n, m = payoffs.shape
    res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.c_[-payoffs.T, np.ones(m)], b_ub=np.zeros(m),
                  A_eq=np.r_[np.ones(n), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)])
    assert res.success, res.message
    value = res.x[-1]
    for i in range(n):  # the range of x_i over {x on the simplex: x^T payoffs >= value}
        ends = [linprog(sign * np.eye(n)[i], A_ub=-payoffs.T, b_ub=-np.full(m, value - 1e-9), A_eq=np.ones((1, n)),
                        b_eq=[1.0]).x[i] for sign in (1.0, -1.0)]
        assert abs(ends[0] - ends[1]) < 1e-6, f"the maximin strategy of {payoffs} is not unique"
    return value, res.x[:n]


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


def test_minimax_q_and_foe_q_find_the_maximin_of_random_zero_sum_games():
    """Four random 3 x 3 zero-sum games, neither player's maximin strategy uniform (where both learners start) and the
    row and column players' different (a transposed Q would be caught): each player's learned value and policy are
    its maximin value and strategy from scipy's LP (the column player's over -A^T), and foe-Q learns what Minimax-Q
    learns, step by step."""
    rows = np.round(np.random.default_rng(0).uniform(-1, 1, (4, 3, 3)), 2).astype(np.float32)
    payoffs = np.stack([rows, -rows], axis=1)  # [games, 2, 3, 3]
    env = envs.make("matrix_rps")
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)

    def train(payoffs, algo, backup):  # one jit over the four games: payoffs live in EnvParams
        config = dataclasses.replace(algos.get(algo).default_config(env), total_steps=2000, steps_per_update=500,
                                     backup=backup)
        trainer = algos.get(algo).make_train(env, config, env.default_params.replace(payoffs=payoffs))
        return jax.vmap(trainer)(keys).metrics

    minimax, foe = (jax.tree.map(np.asarray, jax.jit(jax.vmap(functools.partial(train, algo=algo, backup=backup)))(
        payoffs)) for algo, backup in (("minimax_q", "minimax"), ("ffq", "foe")))
    for game, row in enumerate(rows.astype(np.float64)):
        (v_row, x), (v_col, y) = maximin(row), maximin(-row.T)
        assert min(np.abs(x - 1 / 3).max(), np.abs(y - 1 / 3).max()) > 0.04, (x, y)  # far from uniform for the
        # policy tolerance below; measured >= 0.05 (game 1's column player); game 3 has a pure saddle point
        np.testing.assert_allclose(minimax["value"][game, :, -1], np.broadcast_to([v_row, v_col], (SEEDS, 2)),
                                   atol=1e-4, err_msg=f"game {game}")
        np.testing.assert_allclose(minimax["policy"][game, :, -1], np.broadcast_to([x, y], (SEEDS, 2, 3)),
                                   atol=1e-4, err_msg=f"game {game}")
    np.testing.assert_array_equal(foe["policy"], minimax["policy"])
    np.testing.assert_array_equal(foe["value"], minimax["value"])


def test_ffq_friend_finds_the_best_joint_action_and_foe_the_maximin():
    np.testing.assert_array_equal(envs.make("matrix_climbing").payoff_array, np.stack([CLIMBING, CLIMBING]))
    friend = run("ffq", "matrix_climbing")  # common payoff: the best joint action (0, 0) pays 11
    assert np.all(friend["policy"][:, -1, :, 0] == 1.0)
    np.testing.assert_allclose(friend["value"][:, -1], 11.0)
    # foe-Q guards against the -30 miscoordination instead: each agent plays its maximin strategy of its own payoffs
    # (own action first), the row player's over the rows (value 0: the last row), the column player's over the
    # columns (mixing its first and last actions for about 1.40)
    foe = run("ffq", "matrix_climbing", backup="foe")
    for agent, own_first in enumerate((CLIMBING, CLIMBING.T)):
        value, strategy = maximin(own_first)
        np.testing.assert_allclose(foe["value"][:, -1, agent], value, atol=1e-4, err_msg=f"agent {agent}")
        np.testing.assert_allclose(foe["policy"][:, -1, agent], np.broadcast_to(strategy, (SEEDS, 3)), atol=1e-4,
                                   err_msg=f"agent {agent}")
    np.testing.assert_allclose(maximin(CLIMBING)[1], [0, 0, 1], atol=1e-9)  # the reviewer's row-2 reading


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
