"""Environment wrappers that change what agents observe, usable on any registered environment.

``flicker(env, prob)``: at every step (the first observation of an episode included), with probability ``prob`` all
agents' observations are blanked to zeros at once, as the flickering Pong of DRQN (Hausknecht & Stone, 2015) blanks
the screen; the state, rewards, episode ends and available actions are the wrapped environment's. A memoryless agent
then sees nothing on the blanked steps, while a recurrent one can carry what it saw before.

The wrapper keeps the wrapped environment's capabilities that observations do not change (``jaxmarl_core.
capabilities``: the global state, which stays unblanked as a centralised-training input, the tabular model and
states, matrix payoffs, the fixed horizon, the discount and the team reward), and drops the others (exact values of
observation-indexed policies, deviation gains).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from jaxmarl_core.capabilities import (
    Discounted,
    FixedHorizon,
    GlobalState,
    MatrixPayoffs,
    TabularModel,
    TabularStates,
    TeamReward,
    has,
)
from jaxmarl_core.env import Environment


@dataclasses.dataclass(frozen=True)
class Flicker(Environment):
    """``env`` with every step's observations [N, ...] blanked (all agents at once) with probability ``prob``."""

    env: Environment
    prob: float = 0.5

    def __post_init__(self):
        if isinstance(self.prob, bool) or not isinstance(self.prob, (int, float)) or not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"flicker: prob must be a number in [0, 1], got {self.prob!r}")

    @property
    def name(self) -> str:
        return f"flicker_{self.env.name}"

    # the wrapped environment's structure, unchanged
    num_agents = property(lambda self: self.env.num_agents)
    default_params = property(lambda self: self.env.default_params)
    observation_spaces = property(lambda self: self.env.observation_spaces)
    action_spaces = property(lambda self: self.env.action_spaces)
    groups = property(lambda self: self.env.groups)

    def _blank(self, key, obs):
        return jnp.where(jax.random.bernoulli(key, self.prob), jnp.zeros_like(obs), obs)

    def reset_env(self, key, params):
        k_env, k_blank = jax.random.split(key)
        obs, state = self.env.reset_env(k_env, params)
        return self._blank(k_blank, obs), state

    def step_env(self, key, state, actions, params):
        k_env, k_blank = jax.random.split(key)
        ts = self.env.step_env(k_env, state, actions, params)
        return ts.replace(obs=self._blank(k_blank, ts.obs))

    def avail_actions(self, state, params=None):
        return self.env.avail_actions(state, params)


class _GlobalState:
    def global_state(self, state, params=None):
        return self.env.global_state(state, params)


class _TabularStates:
    num_states = property(lambda self: self.env.num_states)

    def state_index(self, state):
        return self.env.state_index(state)


class _TabularModel:
    def tabular_model(self, params=None):
        return self.env.tabular_model(params)


class _MatrixPayoffs:
    payoff_array = property(lambda self: self.env.payoff_array)

    def expected_payoffs(self, probs, params=None):
        return self.env.expected_payoffs(probs, params)


class _FixedHorizon:
    num_steps = property(lambda self: self.env.num_steps)


class _Discounted:
    discount = property(lambda self: self.env.discount)


class _TeamReward:
    team_reward = property(lambda self: self.env.team_reward)


FORWARDED = ((GlobalState, _GlobalState), (TabularStates, _TabularStates), (TabularModel, _TabularModel),
             (MatrixPayoffs, _MatrixPayoffs), (FixedHorizon, _FixedHorizon), (Discounted, _Discounted),
             (TeamReward, _TeamReward))


@functools.cache
def _flicker_class(mixins: tuple[type, ...]) -> type:
    """One class per set of forwarded capabilities (so equal wrappers compare and hash equal)."""
    if not mixins:
        return Flicker
    return type("Flicker" + "".join(m.__name__ for m in mixins), (*mixins, Flicker), {})


def flicker(env: Environment, prob: float = 0.5) -> Flicker:
    """``Flicker(env, prob)`` with the capabilities of ``env`` that blanking leaves valid (see the module)."""
    return _flicker_class(tuple(mixin for cap, mixin in FORWARDED if has(env, cap)))(env=env, prob=prob)
