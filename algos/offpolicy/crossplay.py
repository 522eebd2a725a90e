"""Playing trained actors, and cross-play: the agent groups of one trained population against those of another
(MADDPG's policy-ensemble evaluation, Lowe et al. 2017, Section 5.4: ensemble agents against single-policy
adversaries and the reverse).

A population's actors are leaves [N, ...] (one policy per agent) or [K, N, ...] (an ensemble of K sub-policies per
agent). ``cross_actors`` gives every agent the actors of the population it is taken from, as K sub-policies: an
ensemble's own, or a single policy repeated K times (whichever copy is drawn, it plays that policy). The rollout then
draws each agent's sub-policy at every episode's first step as training does (``make_policy``; ``ensemble_draw``
"group": one index per agent group), so an ensemble's agents play a uniformly drawn sub-policy per episode and a
single policy plays itself.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from algos.offpolicy.config import OffPolicyConfig
from algos.offpolicy.learner import make_policy
from algos.offpolicy.model import build_model
from jaxmarl_core.learner_view import LearnerView
from jaxmarl_core.rollout import Transition, reset_carry, rollout

ACTOR_FIELDS = ("hidden_size", "hidden_layers", "relaxation")  # what shapes an actor and turns it into actions


def as_sub_policies(actors, ensemble: int, k: int):
    """A population's actors (leaves [N, ...] when ``ensemble`` is 1, else [K, N, ...]) as ``k`` sub-policies,
    leaves [k, N, ...]: a single policy repeated k times, an ensemble of k unchanged."""
    if ensemble == k:
        return actors
    if ensemble != 1:
        raise ValueError(f"an ensemble of {ensemble} sub-policies cannot play as {k}")
    return jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (k,) + leaf.shape), actors)


def cross_actors(first, first_ensemble: int, second, second_ensemble: int, from_first):
    """Agent i's actors from the first population where ``from_first[i]`` (bool [N]), else from the second ->
    (actors, leaves [K, N, ...], K = the larger ensemble, [N, ...] when both are single; both populations' ensembles
    must be 1 or K)."""
    k = max(first_ensemble, second_ensemble)
    a, b = as_sub_policies(first, first_ensemble, k), as_sub_policies(second, second_ensemble, k)
    lead = 1 if k > 1 else 0  # the agent axis
    mask = jnp.asarray(from_first, bool)
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape((1,) * lead + (-1,) + (1,) * (x.ndim - lead - 1)), x, y),
                        a, b), k


def cross_config(first: OffPolicyConfig, second: OffPolicyConfig) -> OffPolicyConfig:
    """The config that plays both populations' actors together: the first's, with the larger ensemble and the
    ensemble's ``ensemble_draw`` (one-line error when their actors differ in shape or relaxation)."""
    for name in ACTOR_FIELDS:
        if getattr(first, name) != getattr(second, name):
            raise ValueError(f"cross-play needs actors of the same {name}: {getattr(first, name)!r} against "
                             f"{getattr(second, name)!r}")
    draw = first.ensemble_draw if first.ensemble > 1 or second.ensemble == 1 else second.ensemble_draw
    return dataclasses.replace(first, ensemble=max(first.ensemble, second.ensemble), sub_buffers=False,
                               ensemble_draw=draw)


def play(env, config: OffPolicyConfig, actors, key, episodes: int, deterministic: bool = False) -> Transition:
    """``episodes`` fresh episodes (T = ``env.max_cycles`` steps each, batched) played by ``actors`` as trained
    (gumbel samples, tanh actions with exploration noise; ``deterministic``: without noise) -> the time-major
    trajectory [T, episodes, ...]; ``extras[1]`` holds each agent's sub-policy [T, episodes, N]."""
    view = LearnerView(env)
    model = build_model(view, config)
    k_reset, k_run = jax.random.split(key)
    carry = reset_carry(k_reset, view, env.default_params, jnp.zeros((episodes, env.num_agents), jnp.int32),
                        batch_size=episodes)
    policy = make_policy(model, config, actors, deterministic=deterministic)
    return rollout(k_run, view, env.default_params, policy, carry, env.max_cycles, batched=True)[1]


def cross_play(env, first: OffPolicyConfig, first_actors, second: OffPolicyConfig, second_actors, from_first, key,
               episodes: int) -> Transition:
    """``play`` with agent i acting by the first population's actors where ``from_first[i]`` (bool [N]) and by the
    second's elsewhere; an ensemble draws a sub-policy per episode (by its ``ensemble_draw``)."""
    config = cross_config(first, second)
    actors, _ = cross_actors(first_actors, first.ensemble, second_actors, second.ensemble, np.asarray(from_first))
    return play(env, config, actors, key, episodes)
