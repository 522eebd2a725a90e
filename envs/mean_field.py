"""Games of many identical agents (Yang et al., 2018, "Mean Field Multi-Agent Reinforcement Learning").

Gaussian squeeze: N agents each choose an amount a_i in ``0 .. num_actions - 1``; with x = sum_i a_i every agent
receives the shared reward

    r(x) = x * exp(-(x - mu)^2 / sigma^2),

largest at x* = (mu + sqrt(mu^2 + 2 sigma^2)) / 2 (where 1 = 2 x (x - mu) / sigma^2): the agents must together squeeze
the total towards x*, which no agent sees. The game is one-shot and repeated: every step ends an episode
(``terminated``), observations are a constant ``[N, 1]`` of ones and the game has one tabular state. All agents form
one group (``groups``), so nothing here is built per agent: spaces and available actions come from the group.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.config import require_positive, require_positive_int
from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete, per_agent_spaces


@struct.dataclass
class SqueezeParams(EnvParams):
    mu: jax.Array  # float32 scalar: centre of the Gaussian
    sigma: jax.Array  # float32 scalar: its width


@struct.dataclass
class SqueezeState:
    t: jax.Array  # int32 scalar: steps taken in the current episode (always 0 between one-shot episodes)


@dataclasses.dataclass(frozen=True)
class GaussianSqueeze(Environment):
    """N identical agents in one group ``agents``; ``mu`` and ``sigma`` are static defaults of ``SqueezeParams``."""

    deterministic: ClassVar[bool] = True
    team_reward: ClassVar[str] = "common"  # every agent receives the shared reward
    n_agents: int = 100
    mu: float = 400.0
    sigma: float = 200.0
    num_choices: int = 10

    def __post_init__(self):
        require_positive_int(self, "n_agents")
        require_positive_int(self, "num_choices")
        require_positive(self, "sigma")

    @property
    def name(self) -> str:
        return "gaussian_squeeze"

    @property
    def num_agents(self) -> int:
        return self.n_agents

    @property
    def num_actions(self) -> int:
        return self.num_choices

    @property
    def default_params(self) -> SqueezeParams:
        return SqueezeParams(mu=jnp.float32(self.mu), sigma=jnp.float32(self.sigma))

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        return (AgentGroup("agents", self.n_agents, Box(0.0, 1.0, (1,)), Discrete(self.num_choices)),)

    @property
    def observation_spaces(self):
        return per_agent_spaces(self.groups)[0]

    @property
    def action_spaces(self):
        return per_agent_spaces(self.groups)[1]

    @property
    def num_states(self) -> int:
        """One tabular state: the repeated one-shot game."""
        return 1

    def state_index(self, state: SqueezeState) -> jax.Array:
        return jnp.zeros((), jnp.int32)

    def reset_env(self, key, params):
        return jnp.ones((self.n_agents, 1), jnp.float32), SqueezeState(t=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, actions, params):
        """actions [N] int -> every agent's reward r(x) [N], x = sum of actions (``info["total"]``)."""
        total = jnp.sum(jnp.asarray(actions, jnp.int32)).astype(jnp.float32)
        reward = squeeze_reward(total, params.mu, params.sigma)
        obs = jnp.ones((self.n_agents, 1), jnp.float32)
        return TimeStep(obs=obs, state=SqueezeState(t=state.t + 1),
                        reward=jnp.full((self.n_agents,), reward, jnp.float32), terminated=jnp.asarray(True),
                        truncated=jnp.asarray(False), info={"total": total})

    def avail_actions(self, state, params=None):
        """bool[N, A]: every choice is always available."""
        return jnp.ones((self.n_agents, self.num_choices), bool)

    def global_state(self, state, params=None):
        """[1]: a constant (a one-shot game has no state)."""
        return jnp.ones((1,), jnp.float32)

    def optimum(self, params: SqueezeParams | None = None) -> tuple[jax.Array, jax.Array]:
        """(x*, r(x*)): the best total the population can reach (the integer total nearest the real maximiser within
        ``0 .. N * (num_choices - 1)``) and its reward."""
        params = self.default_params if params is None else params
        peak = (params.mu + jnp.sqrt(params.mu ** 2 + 2.0 * params.sigma ** 2)) / 2.0
        reachable = jnp.float32(self.n_agents * (self.num_choices - 1))
        candidates = jnp.clip(jnp.stack([jnp.floor(peak), jnp.ceil(peak)]), 0.0, reachable)
        rewards = squeeze_reward(candidates, params.mu, params.sigma)
        best = jnp.argmax(rewards)
        return candidates[best], rewards[best]


def squeeze_reward(total: jax.Array, mu: jax.Array, sigma: jax.Array) -> jax.Array:
    """r(x) = x * exp(-(x - mu)^2 / sigma^2), elementwise."""
    return total * jnp.exp(-((total - mu) ** 2) / sigma ** 2)


__all__ = ["GaussianSqueeze", "SqueezeParams", "SqueezeState", "squeeze_reward"]
