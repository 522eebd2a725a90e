"""Cross-play of trained mean-field learners on a two-group battle (Yang et al., 2018, section 5.3; released code
mlii/mfrl, ``battle.py``): side 0's networks play the first group, side 1's the second, in ``num_games`` games at
once. Every agent acts on its observation and, for the mean-field variants, the mean action it would see in
training (its neighbours' previous actions, or its group's with ``released_code``): Q-learners greedily, actor-critics
by sampling their policy (the code's ``act``: argmax of Q, a multinomial draw from pi). A game ends when the
environment says so (a team wiped out, or its step limit); the code's win rule compares the kills, which with equal
teams is comparing the survivors at the end (``wins``)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.mean_field.config import MeanFieldConfig
from algos.mean_field.learner import group_slices, mean_actions
from algos.mean_field.model import build_model
from jaxmarl_core.learner_view import LearnerView
from jaxmarl_core.qnetworks import greedy_action, masked_q


def cross_play(env, sides: tuple[tuple[MeanFieldConfig, dict], tuple[MeanFieldConfig, dict]], num_games: int,
               num_steps: int, key: jax.Array, env_params=None) -> jax.Array:
    """``sides``: (config, one group's parameters) for the first and the second group; ``num_steps`` at least the
    environment's episode length -> int32[num_games, 2]: each group's survivors at its game's end (the
    environment's ``info["num_alive"]``)."""
    env_params = env.default_params if env_params is None else env_params
    view = LearnerView(env)
    slices = group_slices(env)
    models = [build_model(cfg, view.obs_dim, view.num_actions) for cfg, _ in sides]
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(view.reset, in_axes=(0, None))(jax.random.split(k_reset, num_games), env_params)
    avail = obs.avail.astype(jnp.float32)
    mean = avail / jnp.sum(avail, axis=-1, keepdims=True)

    def act(obs, mean, key):
        actions = []
        for (cfg, params), model, (_, sl), k in zip(sides, models, slices, jax.random.split(key, len(sides))):
            o, m, av = obs.obs[:, sl], mean[:, sl], obs.avail[:, sl]
            if cfg.family == "q":
                actions.append(greedy_action(model.q(params, o, m), av))
            else:
                actions.append(jax.random.categorical(k, masked_q(model.logits(params, o), av)).astype(jnp.int32))
        return jnp.concatenate(actions, axis=1)

    def means(env_state, actions):
        parts = [mean_actions(env, cfg, env_params, env_state, actions, view.num_actions)[sl]
                 for (cfg, _), (_, sl) in zip(sides, slices)]
        return jnp.concatenate(parts, axis=0)

    def step(carry, k):
        obs, state, mean, over, final = carry
        k_act, k_env = jax.random.split(k)
        actions = act(obs, mean, k_act)
        ts = jax.vmap(view.step, in_axes=(0, 0, 0, None))(jax.random.split(k_env, num_games), state, actions,
                                                          env_params)
        ends = (ts.terminated | ts.truncated) & ~over
        final = jnp.where(ends[:, None], ts.info["num_alive"], final)
        return (ts.obs, ts.state, jax.vmap(means)(state, actions), over | ends, final), None

    start = (obs, state, mean, jnp.zeros((num_games,), bool), jnp.zeros((num_games, len(slices)), jnp.int32))
    (*_, final), _ = jax.lax.scan(step, start, jax.random.split(k_run, num_steps))
    return final


def wins(survivors: jax.Array) -> dict:
    """survivors [G, 2] -> the games won by each side and drawn (the code scores a draw as a win for both)."""
    first, second = survivors[:, 0], survivors[:, 1]
    return {"first": int(jnp.sum(first > second)), "second": int(jnp.sum(second > first)),
            "draw": int(jnp.sum(first == second))}
