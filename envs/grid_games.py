"""Grid Game 1 and Grid Game 2 of Hu & Wellman (2003), "Nash Q-learning for general-sum stochastic games" (JMLR 4,
section 5.1), general-sum two-player stochastic games on a 3 x 3 grid.

The rules of the paper (``rules="paper"``, the default):

- Cells are (row, col) with row 0 at the top; actions 0 up, 1 down, 2 left, 3 right. The paper numbers the cells 0-8
  from the bottom-left corner (0-2 the bottom row, 6-8 the top); its state (l1, l2) is the pair of the agents'
  cells. Agent 0 (the paper's agent 1) starts in the bottom-left corner (2, 0) (cell 0), agent 1 in the bottom-right
  corner (2, 2) (cell 2).
- Grid Game 1: agent 0's goal is the top-right corner (0, 2) (cell 8), agent 1's the top-left corner (0, 0) (cell 6);
  each agent's shortest path has four steps (the paper's strategy for agent 1 in its Table 3: up, right, right, up).
  Grid Game 2: both share the goal at the top centre (0, 1) (cell 7).
- Moves off the grid are not actions: ``avail_actions`` holds only the in-grid moves (2 in a corner, 3 on an edge,
  4 in the centre; the paper's Table 4 stage game at the start is 2 x 2, and Grid Game 1 has 424 state-action
  tuples). An off-grid action sent anyway leaves the agent where it is.
- Grid Game 2: "if an agent chooses Up from position 0 or 2, it moves up with probability 0.5 and remains in its
  previous position with probability 0.5", independently for the two agents (``params.barrier_prob``).
- Collision: the reward is -1 "if L(l1, a1) = L(l2, a2) and L(l2, a2) != Goal_j", L being the cell an action leads
  to, and both agents "are bounced back to their previous positions". Here L is the cell after the chance move of
  Grid Game 2, so an agent whose Up failed collides with the other stepping into its cell. Agents that swap cells do
  not collide. Both may enter a goal cell together: the shared goal of Grid Game 2, or in Grid Game 1 an agent's
  goal entered by the other at the same time.
- An agent entering its goal gets ``params.goal_reward`` (100), other moves 0; "the game ends as soon as an agent
  reaches its goal" (``terminated``), and both are paid when both arrive together.
- Discount 0.99 (``discount``, which learners default to). ``max_steps`` (100) bounds an episode (``truncated``; not
  in the paper).

``random_start=True`` is the paper's learning protocol (section 5.1.3): "in the new episode, each agent is randomly
assigned a new position (except its goal cell)", here every episode, uniformly over the pairs of distinct cells with
neither agent on its goal (57 in Grid Game 1, 56 in Grid Game 2, the paper's footnote 5).

``rules="restated"`` keeps an earlier restatement (after Greenwald & Hall 2003, "Correlated-Q learning", who describe
the same games in a sentence each): all four moves are actions and a move off the grid fails, and Grid Game 2's
barriers also stop a move down into a bottom corner with probability 1/2 (an agent can then wait against a wall).

Under either rules Grid Game 1's Nash Q-values are not unique, though the paper says they are (section 5.1.2, which
derives them from two non-interfering shortest paths): agent 1 walking left, up, up, left meets each of agent 0's six
shortest paths in a collision, and value iteration with the first-Nash rule in support enumeration's order finds a
stationary equilibrium, exact in every state, worth (0, 100 * 0.99^3) from the start beside the coordinated
(97.03, 97.03) of the paper's Table 4 (``tests/envs/test_grid_games.py``). Nothing in section 5.1 rules it out: no
agent may stay, a collision bounces both back, and the game ends when one agent arrives. With Lemke-Howson's order
(labels dropped in the paper's action order Left, Right, Down, Up) the first-Nash value iteration reaches the
coordinated values instead.

Observations ``[2, 18]`` in each agent's perspective: its own cell one-hot (9), then the other's (9). The tabular
view indexes the pair of cells, ``state_index = 9 * cell_0 + cell_1`` (``num_states`` = 81); pairs with an agent
on its goal or both agents on one cell only occur when the episode has ended, and their rows in the model are 0.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete
from jaxmarl_core.tabular import TabularModel, compiled_model

SIZE = 3
CELLS = SIZE * SIZE
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)  # (row, col) offsets of up, down, left, right
START = np.array([[2, 0], [2, 2]], np.int32)
GOALS = {1: ((0, 2), (0, 0)), 2: ((0, 1), (0, 1))}
GAMMA = 0.99
RULES = ("paper", "restated")


def live_pairs(game: int) -> np.ndarray:
    """[P, 2] int32: the pairs of cells (3 * row + col) an episode can be in: distinct, neither agent on its goal."""
    goals = [3 * r + c for r, c in GOALS[game]]
    return np.array([(a, b) for a in range(CELLS) for b in range(CELLS) if a != b and a != goals[0] and b != goals[1]],
                    np.int32)


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
    rules: str = "paper"  # "paper" (Hu & Wellman) or "restated" (see the module docstring)
    random_start: bool = False  # each episode starts in a uniformly drawn live pair of cells (the paper's training)

    discount: ClassVar[float] = GAMMA  # the paper's discount; learners default to it

    def __post_init__(self):
        if self.game not in GOALS:
            raise ValueError(f"grid_game: game must be 1 or 2, got {self.game!r}")
        if not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"grid_game_{self.game}: max_steps must be a positive integer, got {self.max_steps!r}")
        if self.rules not in RULES:
            raise ValueError(f"grid_game_{self.game}: rules must be one of {', '.join(RULES)}, got {self.rules!r}")

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
    def avail_actions(self, state: GridGameState, params: GridGameParams | None = None) -> jax.Array:
        """bool[2, 4]: the in-grid moves of each agent (every move under the restated rules)."""
        if self.rules == "restated":
            return jnp.ones((2, 4), bool)
        target = state.pos[:, None, :] + MOVES[None]  # [2, 4, 2]
        return jnp.all((target >= 0) & (target < SIZE), axis=-1)

    def _crosses_barrier(self, pos: jax.Array, target: jax.Array) -> jax.Array:
        """bool[2]: whether each agent's move is an Up from a bottom corner (the restated rules: or a Down into
        one), the moves of Grid Game 2 that succeed with probability ``barrier_prob``."""
        if self.game != 2:
            return jnp.zeros(2, bool)
        corner_col = (pos[:, 1] == 0) | (pos[:, 1] == SIZE - 1)
        up = (pos[:, 0] == SIZE - 1) & (target[:, 0] == SIZE - 2)
        down = (pos[:, 0] == SIZE - 2) & (target[:, 0] == SIZE - 1)
        crossing = up | down if self.rules == "restated" else up
        return corner_col & (pos[:, 1] == target[:, 1]) & crossing

    def resolve(self, state: GridGameState, actions: jax.Array, passes: jax.Array, params: GridGameParams):
        """Both moves given the chance outcome ``passes`` bool[2] (whether each agent's barrier crossing, if it tries
        one, succeeds): -> (next state, reward [2], reached bool[2], collision bool)."""
        target = state.pos + jnp.asarray(MOVES)[actions]
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
        pos = jnp.asarray(START)
        if self.random_start:
            pairs = jnp.asarray(live_pairs(self.game))
            cells = pairs[jax.random.randint(key, (), 0, len(pairs))]
            pos = jnp.stack([cells // SIZE, cells % SIZE], -1)
        state = GridGameState(pos=pos, t=jnp.zeros((), jnp.int32))
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

    @compiled_model
    def tabular_model(self, params: GridGameParams) -> TabularModel:
        """The exact model, by running ``resolve`` on every state, joint action and barrier outcome: transition
        [81, 4, 4, 81] (reaching a goal is the missing mass), reward [81, 4, 4, 2], initial [81] (the corners, or
        uniform over the live pairs with ``random_start``), avail [81, 2, 4]."""
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
        if self.random_start:
            pairs = live_pairs(self.game)
            initial = jnp.zeros(num, jnp.float32).at[CELLS * pairs[:, 0] + pairs[:, 1]].set(1.0 / len(pairs))
        else:
            start = self.state_index(GridGameState(pos=jnp.asarray(START), t=jnp.zeros((), jnp.int32)))
            initial = jnp.zeros(num, jnp.float32).at[start].set(1.0)
        return TabularModel(transition=transition.reshape(num, 4, 4, num),
                            reward=jnp.sum(reward, axis=2).reshape(num, 4, 4, 2), initial=initial,
                            avail=jax.vmap(self.avail_actions)(states))
