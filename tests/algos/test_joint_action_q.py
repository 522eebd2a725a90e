"""Minimax-Q, Friend-or-Foe-Q and Nash-Q on matrix games (the stochastic-game results are in test_soccer_learners)."""
import dataclasses
import functools

import jax
import numpy as np
import pytest

import algos
import envs

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
