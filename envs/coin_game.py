"""The Coin Game of the LOLA paper (Foerster et al., 2018), with the rules of its reference implementation.

Two agents (0 = red, 1 = blue) move on a ``grid_size`` x ``grid_size`` torus (3 x 3) with actions 0 right,
1 left, 2 down, 3 up (moves (0, 1), (0, -1), (1, 0), (-1, 0) in (row, col)). One coin lies on a free cell; its
colour alternates each time one is picked. After both agents move: whoever stands on the coin picks it up and gets
+1; if the coin has the *other* agent's colour, that agent gets -2. When both reach the coin at once, red picks it
(the reference implementation checks red first). A new coin then appears on a cell neither agent occupies.
Episodes last ``num_steps`` steps (150) and end with ``truncated=True``.

Each agent observes ``[grid, grid, 4]`` in its own perspective: channel 0 its position, 1 the other's, 2 a coin of
its own colour, 3 a coin of the other's colour. ``info`` reports per agent whether it picked a coin of its own
colour (``own_coin``) or of the other's (``other_coin``) this step.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete

MOVES = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], np.int32)


@struct.dataclass
class CoinGameParams(EnvParams):
    own_reward: jax.Array  # float32, reward for picking up any coin (+1)
    penalty: jax.Array  # float32, reward to the coin's owner when the other agent picks it (-2)


@struct.dataclass
class CoinGameState:
    pos: jax.Array  # [2, 2] int32 (row, col) of red and blue
    coin: jax.Array  # [2] int32 (row, col) of the coin
    coin_owner: jax.Array  # int32 scalar: 0 red coin, 1 blue coin
    t: jax.Array  # int32 scalar


@dataclasses.dataclass(frozen=True)
class CoinGame(Environment):
    num_steps: int = 150
    grid_size: int = 3

    def __post_init__(self):
        if not isinstance(self.num_steps, int) or self.num_steps <= 0:
            raise ValueError(f"coin_game: num_steps must be a positive integer, got {self.num_steps!r}")
        if not isinstance(self.grid_size, int) or self.grid_size < 2:
            raise ValueError(f"coin_game: grid_size must be an integer >= 2, got {self.grid_size!r}")

    @property
    def name(self) -> str:
        return "coin_game"

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def default_params(self) -> CoinGameParams:
        return CoinGameParams(own_reward=jnp.float32(1.0), penalty=jnp.float32(-2.0))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (self.grid_size, self.grid_size, 4)),) * 2

    @property
    def action_spaces(self):
        return (Discrete(4),) * 2

    def _free_cell(self, key: jax.Array, pos: jax.Array) -> jax.Array:
        """A uniformly drawn cell [2] that neither agent occupies."""
        g = self.grid_size
        taken = jnp.zeros(g * g, bool).at[pos[:, 0] * g + pos[:, 1]].set(True)
        flat = jax.random.categorical(key, jnp.where(taken, -jnp.inf, 0.0))
        return jnp.stack([flat // g, flat % g]).astype(jnp.int32)

    def _obs(self, state: CoinGameState) -> jax.Array:
        """[2, grid, grid, 4] own-perspective observations."""
        g = self.grid_size

        def plane(cell):
            return jnp.zeros((g, g), jnp.float32).at[cell[0], cell[1]].set(1.0)

        red, blue, coin = plane(state.pos[0]), plane(state.pos[1]), plane(state.coin)
        red_coin = coin * (state.coin_owner == 0)
        blue_coin = coin * (state.coin_owner == 1)
        return jnp.stack([jnp.stack([red, blue, red_coin, blue_coin], -1),
                          jnp.stack([blue, red, blue_coin, red_coin], -1)])

    def reset_env(self, key, params):
        k_red, k_blue, k_owner, k_coin = jax.random.split(key, 4)
        g = self.grid_size
        red = jax.random.randint(k_red, (2,), 0, g)
        blue_flat = jax.random.randint(k_blue, (), 0, g * g - 1)  # uniform over the cells other than red's
        blue_flat = blue_flat + (blue_flat >= red[0] * g + red[1])
        pos = jnp.stack([red, jnp.stack([blue_flat // g, blue_flat % g])]).astype(jnp.int32)
        state = CoinGameState(pos=pos, coin=self._free_cell(k_coin, pos),
                              coin_owner=jax.random.randint(k_owner, (), 0, 2), t=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    def step_env(self, key, state, actions, params):
        pos = (state.pos + jnp.asarray(MOVES)[actions]) % self.grid_size
        on_coin = jnp.all(pos == state.coin[None, :], axis=-1)  # [2]
        picker = jnp.where(on_coin[0], 0, jnp.where(on_coin[1], 1, -1))  # red first
        picked = picker >= 0
        agents = jnp.arange(2)
        gain = jnp.where(agents == picker, params.own_reward, 0.0)
        loss = jnp.where(picked & (picker != state.coin_owner) & (agents == state.coin_owner), params.penalty, 0.0)
        own_coin = (agents == picker) & (picker == state.coin_owner)
        other_coin = (agents == picker) & (picker != state.coin_owner)
        coin = jnp.where(picked, self._free_cell(key, pos), state.coin)
        owner = jnp.where(picked, 1 - state.coin_owner, state.coin_owner)
        new = CoinGameState(pos=pos, coin=coin, coin_owner=owner, t=state.t + 1)
        return TimeStep(obs=self._obs(new), state=new, reward=(gain + loss).astype(jnp.float32),
                        terminated=jnp.asarray(False), truncated=new.t >= self.num_steps,
                        info={"own_coin": own_coin, "other_coin": other_coin})

    def global_state(self, state, params=None):
        """[grid * grid * 4]: agent 0's observation, flattened (it holds the whole state)."""
        return self._obs(state)[0].reshape(-1)
