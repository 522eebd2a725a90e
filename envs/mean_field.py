"""Games of many identical agents (Yang et al., 2018, "Mean Field Multi-Agent Reinforcement Learning"): the Gaussian
squeeze and the Ising model.

Gaussian squeeze: N agents each choose an amount a_i in ``0 .. num_actions - 1``; with x = u * sum_i a_i (``unit``
u = 1 by default: the paper's total) every agent receives the shared reward

    r(x) = x * exp(-(x - mu)^2 / sigma^2),

largest at x* = (mu + sqrt(mu^2 + 2 sigma^2)) / 2 (where 1 = 2 x (x - mu) / sigma^2): the agents must together squeeze
the total towards x*, which no agent sees. With u = 1 random play totals about 4.5 N, which for N = 500 or 1000
lies so far above x* = 445 that r(x) underflows (below 1e-30): ``unit = 100 / N`` makes each agent's choice a
share of the paper's 100-agent range 0 .. 900 (same x*, r*, random play near x*), a reading that keeps the larger
populations learnable (``benchmarks/mean_field.py``). The game is one-shot and repeated: every step ends an episode
(``terminated``), observations are a constant ``[N, 1]`` of ones and the game has one tabular state. All agents form
one group (``groups``), so nothing here is built per agent: spaces and available actions come from the group.
Every agent's neighbours are all the others (``neighbour_mean_action``).

Ising: N = L x L spins on a torus, one agent each; action 0 sets the spin to -1 and action 1 to +1. With s the spins
the step's actions set, agent i receives the reward of the released mfrl code (its Ising scenario)

    r_i = 1/2 * s_i * sum_{j in nb(i)} s_j + h * s_i        (nb(i): the 4 torus neighbours; field h, 0 by default)

and observes its neighbours' spins, [N, 4] in {0, 1} (up, down, left, right). The sum of the rewards (h = 0) is the
negative Ising energy, -E = J sum_<ij> s_i s_j with J = 1. Episodes last ``num_steps`` steps (the code's time steps;
``truncated``) from uniformly random spins, and ``info["order_parameter"]`` is |N_up - N_down| / N. A player acting
with a Boltzmann policy at temperature tau on the exact action values Q(a | neighbours) = r_i samples its spin from
the heat bath at beta J = 1 / (2 tau): the critical temperature is tau_c = 1 / ln(1 + sqrt 2) and Onsager's
magnetisation below it M(tau) = (1 - sinh(1 / tau)^-4)^(1/8) (``onsager_magnetisation``).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.config import require_positive, require_positive_int
from jaxmarl_core.env import EnvParams, GroupedEnvironment, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete


@struct.dataclass
class SqueezeParams(EnvParams):
    mu: jax.Array  # float32 scalar: centre of the Gaussian
    sigma: jax.Array  # float32 scalar: its width


@struct.dataclass
class SqueezeState:
    t: jax.Array  # int32 scalar: steps taken in the current episode (always 0 between one-shot episodes)


@dataclasses.dataclass(frozen=True)
class GaussianSqueeze(GroupedEnvironment):
    """N identical agents in one group ``agents``; ``mu`` and ``sigma`` are static defaults of ``SqueezeParams``."""

    deterministic: ClassVar[bool] = True
    team_reward: ClassVar[str] = "common"  # every agent receives the shared reward
    n_agents: int = 100
    mu: float = 400.0
    sigma: float = 200.0
    num_choices: int = 10
    unit: float = 1.0  # u: the amount one step of choice adds to the total

    def __post_init__(self):
        require_positive_int(self, "n_agents")
        require_positive_int(self, "num_choices")
        require_positive(self, "sigma")
        require_positive(self, "unit")

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
    def num_states(self) -> int:
        """One tabular state: the repeated one-shot game."""
        return 1

    def state_index(self, state: SqueezeState) -> jax.Array:
        return jnp.zeros((), jnp.int32)

    def reset_env(self, key, params):
        return jnp.ones((self.n_agents, 1), jnp.float32), SqueezeState(t=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, actions, params):
        """actions [N] int -> every agent's reward r(x) [N], x = unit * sum of actions (``info["total"]``)."""
        total = jnp.sum(jnp.asarray(actions, jnp.int32)).astype(jnp.float32) * jnp.float32(self.unit)
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

    def neighbour_mean_action(self, state, actions, params=None) -> jax.Array:
        """float32[N, A]: the mean one-hot action of all the other agents (zeros for a lone agent)."""
        one_hot = jax.nn.one_hot(actions, self.num_choices, dtype=jnp.float32)
        others = jnp.sum(one_hot, axis=0, keepdims=True) - one_hot
        return others / max(self.n_agents - 1, 1)

    def optimum(self, params: SqueezeParams | None = None) -> tuple[jax.Array, jax.Array]:
        """(x*, r(x*)): the best total the population can reach (the multiple of ``unit`` nearest the real maximiser
        within ``0 .. unit * N * (num_choices - 1)``) and its reward."""
        params = self.default_params if params is None else params
        peak = (params.mu + jnp.sqrt(params.mu ** 2 + 2.0 * params.sigma ** 2)) / 2.0 / self.unit
        reachable = jnp.float32(self.n_agents * (self.num_choices - 1))
        steps = jnp.clip(jnp.stack([jnp.floor(peak), jnp.ceil(peak)]), 0.0, reachable)
        candidates = steps * jnp.float32(self.unit)
        rewards = squeeze_reward(candidates, params.mu, params.sigma)
        best = jnp.argmax(rewards)
        return candidates[best], rewards[best]


def squeeze_reward(total: jax.Array, mu: jax.Array, sigma: jax.Array) -> jax.Array:
    """r(x) = x * exp(-(x - mu)^2 / sigma^2), elementwise."""
    return total * jnp.exp(-((total - mu) ** 2) / sigma ** 2)


@struct.dataclass
class IsingParams(EnvParams):
    field: jax.Array  # float32 scalar: the external field h


@struct.dataclass
class IsingState:
    spins: jax.Array  # int32[N]: 1 up, 0 down (row-major over the L x L torus)
    t: jax.Array  # int32 scalar: steps taken in the current episode


@dataclasses.dataclass(frozen=True)
class Ising(GroupedEnvironment):
    """L x L torus of spins, one agent each, in one group ``spins``; ``field`` is the default of ``IsingParams``."""

    size: int = 20
    field: float = 0.0
    num_steps: int = 10_000

    def __post_init__(self):
        require_positive_int(self, "size")
        require_positive_int(self, "num_steps")
        if self.size < 2:
            raise ValueError(f"size (the lattice side L) must be at least 2, got {self.size}")

    @property
    def name(self) -> str:
        return "ising"

    @property
    def num_agents(self) -> int:
        return self.size * self.size

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def default_params(self) -> IsingParams:
        return IsingParams(field=jnp.float32(self.field))

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        return (AgentGroup("spins", self.num_agents, Box(0.0, 1.0, (4,)), Discrete(2)),)

    @property
    def neighbours(self) -> np.ndarray:
        """int [N, 4]: each site's torus neighbours (up, down, left, right), row-major site indices."""
        row, col = np.divmod(np.arange(self.num_agents), self.size)
        moves = ((-1, 0), (1, 0), (0, -1), (0, 1))
        return np.stack([((row + dr) % self.size) * self.size + (col + dc) % self.size for dr, dc in moves], 1)

    def _observe(self, spins: jax.Array) -> jax.Array:
        return spins[jnp.asarray(self.neighbours)].astype(jnp.float32)

    def reset_env(self, key, params):
        spins = jax.random.bernoulli(key, 0.5, (self.num_agents,)).astype(jnp.int32)
        return self._observe(spins), IsingState(spins=spins, t=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, actions, params):
        """actions [N] in {0, 1} -> r_i = s_i * (sum of the neighbours' spins / 2 + h) [N]; info: order_parameter,
        magnetisation (mean spin)."""
        spins = jnp.asarray(actions, jnp.int32)
        s = 2.0 * spins.astype(jnp.float32) - 1.0
        neighbour_sum = jnp.sum(s[jnp.asarray(self.neighbours)], axis=1)
        reward = s * (0.5 * neighbour_sum + params.field)
        magnetisation = jnp.mean(s)
        t = state.t + 1
        return TimeStep(obs=self._observe(spins), state=IsingState(spins=spins, t=t), reward=reward,
                        terminated=jnp.asarray(False), truncated=t >= self.num_steps,
                        info={"order_parameter": jnp.abs(magnetisation), "magnetisation": magnetisation})

    def avail_actions(self, state, params=None):
        """bool[N, 2]: both spins are always available."""
        return jnp.ones((self.num_agents, 2), bool)

    def global_state(self, state, params=None):
        """float32[N]: the spins, 1 up and 0 down."""
        return state.spins.astype(jnp.float32)

    def neighbour_mean_action(self, state, actions, params=None) -> jax.Array:
        """float32[N, 2]: the mean one-hot action of each agent's 4 torus neighbours."""
        one_hot = jax.nn.one_hot(actions, 2, dtype=jnp.float32)
        return jnp.mean(one_hot[jnp.asarray(self.neighbours)], axis=1)


TAU_CRITICAL = 1.0 / float(np.log(1.0 + np.sqrt(2.0)))  # tau_c of the convention above


def onsager_magnetisation(tau):
    """Onsager's spontaneous magnetisation at Boltzmann temperature tau (heat bath at beta J = 1 / (2 tau)):
    (1 - sinh(1 / tau)^-4)^(1/8) below tau_c, 0 above; numpy, elementwise."""
    tau = np.asarray(tau, np.float64)
    inner = 1.0 - np.sinh(1.0 / tau) ** -4.0
    return np.where(inner > 0, np.abs(inner) ** 0.125, 0.0)


__all__ = ["GaussianSqueeze", "SqueezeParams", "SqueezeState", "squeeze_reward", "Ising", "IsingParams", "IsingState",
           "TAU_CRITICAL", "onsager_magnetisation"]
