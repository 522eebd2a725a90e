"""Grid Game 1 and Grid Game 2 of Hu & Wellman (2003), "Nash Q-learning for general-sum stochastic games" (JMLR 4,
section 5), general-sum two-player stochastic games on a 3 x 3 grid.

Rules, with their sources (Hu & Wellman 2003, and Greenwald & Hall 2003, "Correlated-Q learning", ICML, which
restate the same two games: "In GG1, there are two agents and two goals. The agents' action sets include one step
in any of the four compass directions. Actions are executed simultaneously. If both agents attempt to move into the
same cell, they cannot; instead, they both lose 1 point. If ever an agent reaches its goal, it scores 100 points,
and the game ends. Note that it is possible for both agents to score 100 points since actions are simultaneous."):

- Cells are (row, col) with row 0 at the top; actions 0 up, 1 down, 2 left, 3 right. Agent 0 starts in the
  bottom-left corner (2, 0), agent 1 in the bottom-right corner (2, 2) (Hu & Wellman's cells 0 and 2, numbered from
  the bottom-left corner).
- Grid Game 1: agent 0's goal is the top-right corner (0, 2), agent 1's the top-left corner (0, 0). Grid Game 2: both
  share the goal at the top centre (0, 1).
- A move off the grid fails: the agent stays.
- Grid Game 2 has two barriers, between each bottom corner and the cell above it: "if an agent attempts to move
  through one of the barriers, then with probability 1/2 this move fails" (Greenwald & Hall; Hu & Wellman describe
  the move up from the start cells). Here a move across a barrier, up from (2, 0) or (2, 2) or down into them,
  succeeds with probability ``params.barrier_prob`` (0.5) and otherwise leaves the agent in place, independently for
  the two agents.
- Collision: when the two destinations (after walls and barriers) are the same cell, and that cell is no goal,
  neither agent moves and each gets ``params.collision_reward`` (-1; "excluding a goal cell": both may enter the
  shared goal of Grid Game 2 together, and in Grid Game 1 an agent may enter its goal while the other walks into
  it too). Agents that swap cells do not collide.
- An agent entering its goal gets ``params.goal_reward`` (100); the episode ends as soon as at least one agent has
  reached its goal (``terminated``), and both score when both arrive together. In Grid Game 2 this is why the agent
  that tries the barrier while the other walks up the centre scores 50 on average (Greenwald & Hall).
- Hu & Wellman discount with 0.99 (``discount``, which learners default to); ``max_steps`` (100) bounds an episode
  (``truncated``; not in the papers).
- Under these rules Grid Game 1 has equilibria beside the one where both agents arrive in four steps (97.03 each
  from the start): one agent can win the race, e.g. agent 1 moving left, up, up, left collides with every shortest
  path of agent 0, which then scores 0 (exact NashConv 0). Hu & Wellman call Grid Game 1's equilibrium Q-function
  unique, so a rule of their section 5 (not readable here) may differ from this restatement.

Observations ``[2, 18]`` in each agent's perspective: its own cell one-hot (9), then the other's (9). The tabular
view indexes the pair of cells, ``state_index = 9 * cell_0 + cell_1`` (``num_states`` = 81); pairs with an agent
on its goal or both agents on one cell only occur when the episode has ended, and their rows in the model are 0.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete
from jaxmarl_core.tabular import TabularModel

SIZE = 3
CELLS = SIZE * SIZE
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
MOVES = jnp.array([[-1, 0], [1, 0], [0, -1], [0, 1]], jnp.int32)  # (row, col) offsets of up, down, left, right
START = jnp.array([[2, 0], [2, 2]], jnp.int32)
GOALS = {1: ((0, 2), (0, 0)), 2: ((0, 1), (0, 1))}
GAMMA = 0.99


@struct.dataclass
class GridGameParams(EnvParams):
    goal_reward: jax.Array  # float32: reward for entering one's goal (100)
    collision_reward: jax.Array  # float32: reward to each agent when both try to enter the same cell (-1)
    barrier_prob: jax.Array  # float32: probability that a move across a barrier succeeds (0.5; Grid Game 2 only)


@struct.dataclass
class GridGameState:
    pos: jax.Array  # [2, 2] int32 (row, col) of agents 0 and 1
    t: jax.Array  # int32 scalar: steps taken in the episode


@dataclasses.dataclass(frozen=True)
class GridGame(Environment):
    game: int = 1  # 1 or 2
    max_steps: int = 100

    discount: ClassVar[float] = GAMMA  # the paper's discount; learners default to it

    def __post_init__(self):
        if self.game not in GOALS:
            raise ValueError(f"grid_game: game must be 1 or 2, got {self.game!r}")
        if not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"grid_game_{self.game}: max_steps must be a positive integer, got {self.max_steps!r}")

    @property
    def name(self) -> str:
        return f"grid_game_{self.game}"

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def goals(self) -> jax.Array:
        """[2, 2] int32: each agent's goal cell (row, col)."""
        return jnp.array(GOALS[self.game], jnp.int32)

    @property
    def default_params(self) -> GridGameParams:
        return GridGameParams(goal_reward=jnp.float32(100.0), collision_reward=jnp.float32(-1.0),
                              barrier_prob=jnp.float32(0.5))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (2 * CELLS,)),) * 2

    @property
    def action_spaces(self):
        return (Discrete(4),) * 2

    # -- the rules ------------------------------------------------------------------------------------------------
    def _crosses_barrier(self, pos: jax.Array, target: jax.Array) -> jax.Array:
        """bool[2]: whether each agent's move goes between a bottom corner and the cell above it."""
        if self.game != 2:
            return jnp.zeros(2, bool)
        corner_col = (pos[:, 1] == 0) | (pos[:, 1] == SIZE - 1)
        rows = jnp.sort(jnp.stack([pos[:, 0], target[:, 0]], -1), axis=-1)
        return corner_col & (pos[:, 1] == target[:, 1]) & (rows[:, 0] == SIZE - 2) & (rows[:, 1] == SIZE - 1)

    def resolve(self, state: GridGameState, actions: jax.Array, passes: jax.Array, params: GridGameParams):
        """Both moves given the chance outcome ``passes`` bool[2] (whether each agent's barrier crossing, if it tries
        one, succeeds): -> (next state, reward [2], reached bool[2], collision bool)."""
        target = state.pos + MOVES[actions]
        inside = jnp.all((target >= 0) & (target < SIZE), axis=-1)
        blocked = ~inside | (self._crosses_barrier(state.pos, target) & ~passes)
        dest = jnp.where(blocked[:, None], state.pos, target)
        goals = self.goals
        same = jnp.all(dest[0] == dest[1])
        on_goal = jnp.any(jnp.all(dest[0][None, :] == goals, axis=-1))
        collision = same & ~on_goal
        pos = jnp.where(collision, state.pos, dest)
        reached = jnp.all(pos == goals, axis=-1)
        reward = params.goal_reward * reached + params.collision_reward * collision
        return GridGameState(pos=pos, t=state.t + 1), reward.astype(jnp.float32), reached, collision

    def _obs(self, state: GridGameState) -> jax.Array:
        """[2, 18] own-perspective observations."""
        cells = jax.nn.one_hot(state.pos[:, 0] * SIZE + state.pos[:, 1], CELLS, dtype=jnp.float32)
        return jnp.stack([jnp.concatenate([cells[0], cells[1]]), jnp.concatenate([cells[1], cells[0]])])

    def reset_env(self, key, params):
        state = GridGameState(pos=START, t=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    def step_env(self, key, state, actions, params):
        passes = jax.random.uniform(key, (2,)) < params.barrier_prob
        new, reward, reached, collision = self.resolve(state, actions, passes, params)
        terminated = jnp.any(reached)
        return TimeStep(obs=self._obs(new), state=new, reward=reward, terminated=terminated,
                        truncated=~terminated & (new.t >= self.max_steps),
                        info={"reached_goal": reached, "collision": collision})

    def global_state(self, state, params=None):
        """[18]: agent 0's observation (it holds the whole state)."""
        return self._obs(state)[0]

    # -- the tabular view -----------------------------------------------------------------------------------------
    @property
    def num_states(self) -> int:
        return CELLS * CELLS

    def state_index(self, state: GridGameState) -> jax.Array:
        """int32: 9 * cell_0 + cell_1, with cell = 3 * row + col."""
        cells = state.pos[:, 0] * SIZE + state.pos[:, 1]
        return (cells[0] * CELLS + cells[1]).astype(jnp.int32)

    def state_from_index(self, index: jax.Array) -> GridGameState:
        """The inverse of ``state_index`` (with t = 0)."""
        cells = jnp.stack([index // CELLS, index % CELLS]).astype(jnp.int32)
        return GridGameState(pos=jnp.stack([cells // SIZE, cells % SIZE], -1), t=jnp.zeros((), jnp.int32))

    def tabular_model(self, params: GridGameParams | None = None) -> TabularModel:
        """The exact model, by running ``resolve`` on every state, joint action and barrier outcome: transition
        [81, 4, 4, 81] (reaching a goal is the missing mass), reward [81, 4, 4, 2], initial [81]."""
        params = self.default_params if params is None else params
        num = self.num_states
        states = jax.vmap(self.state_from_index)(jnp.arange(num))
        joint = jnp.stack(jnp.meshgrid(jnp.arange(4), jnp.arange(4), indexing="ij"), -1).reshape(-1, 2)  # [16, 2]
        outcomes = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], bool)  # barrier crossings that pass

        def outcome(state, actions, passes):
            new, reward, reached, _ = self.resolve(state, actions, passes, params)
            prob = jnp.prod(jnp.where(passes, params.barrier_prob, 1.0 - params.barrier_prob))
            live = ~jnp.any(jnp.all(state.pos == self.goals, axis=-1)) & ~jnp.all(state.pos[0] == state.pos[1])
            return self.state_index(new), prob * live * (1.0 - jnp.any(reached)), prob * live * reward

        per_outcome = jax.vmap(outcome, in_axes=(None, None, 0))
        per_joint = jax.vmap(per_outcome, in_axes=(None, 0, None))
        nxt, go_on, reward = jax.vmap(per_joint, in_axes=(0, None, None))(states, joint, outcomes)  # [S, 16, 4]
        rows = jnp.broadcast_to(jnp.arange(num)[:, None, None], nxt.shape)
        acts = jnp.broadcast_to(jnp.arange(16)[None, :, None], nxt.shape)
        transition = jnp.zeros((num, 16, num), jnp.float32).at[rows, acts, nxt].add(go_on)
        start = self.state_index(GridGameState(pos=START, t=jnp.zeros((), jnp.int32)))
        return TabularModel(transition=transition.reshape(num, 4, 4, num),
                            reward=jnp.sum(reward, axis=2).reshape(num, 4, 4, 2),
                            initial=jnp.zeros(num, jnp.float32).at[start].set(1.0))
