"""Littman's (1994) grid soccer, "Markov games as a framework for multi-agent reinforcement learning", section 6.1.

Rules, with their sources (quotes from the paper unless said otherwise):

- "The game is played on a 4x5 grid ... The two players, A and B, occupy distinct squares of the grid and can choose
  one of 5 actions on each turn: N, S, E, W, and stand." Agent 0 is A, agent 1 is B; actions 0 N, 1 S, 2 E, 3 W,
  4 stand; cells are (row, col) with row 0 at the top (north) and col 0 at the left (west).
- "Once both players have selected their actions, the two moves are executed in random order" (each order with
  probability 1/2; the second move starts from the board the first one left).
- A move off the grid fails: the player stays (the paper implies it; OpenSpiel's ``markov_soccer`` does so).
- "When a player executes an action that would take it to the square occupied by the other player, possession of the
  ball goes to the stationary player and the move does not take place."
- "When the player with the ball steps into the appropriate goal (left for A, right for B), that player scores a
  point". The goals lie beside the middle two rows (Figure 2; OpenSpiel: rows 1 and 2): A scores by moving W off
  column 0 from row 1 or 2 with the ball, B by moving E off column 4. Carrying the ball out through one's own goal
  is not a goal (the paper gives no own goals; OpenSpiel treats it as a move off the grid): the player stays.
  "Goals are worth one point": the scorer gets +``goal_reward``, the other player -``goal_reward``, and the episode
  ends (``terminated``). At most one goal per step: after a goal the second move is not made.
- Start (Figure 2, left; as in the public reimplementations and, with the labels of A and B swapped, OpenSpiel's
  default grid): A at (1, 3), B at (2, 1) (row 2 column 4 and row 3 column 2 counting from 1). "Possession of the
  ball goes to one or the other player at random" (probability 1/2 each) at every reset. The two start boards are
  mirror images under the half-turn (r, c) -> (3 - r, 4 - c), which swaps A and B, the goals, N/S and E/W.
- "the discount factor is set to 0.9" (``discount``, which learners default to). The draw: in the paper it belongs
  to the evaluation, "To emulate the discount factor, every step had a 0.1 probability of being declared a draw."
  Here each step that ends without a goal is declared a draw with probability ``params.draw_prob``: the episode ends
  (``terminated``, reward 0). Because a draw gives 0, values with ``draw_prob = p`` and discount ``g`` equal those
  with no draw and discount ``g (1 - p)``: learn with ``draw_prob = 0`` (the default) and ``discount`` as the paper
  trained, and play its test games with ``draw_prob = 0.1`` (``--env-arg draw_prob=0.1``) and no discount.
- ``max_steps`` bounds an episode (``truncated``; not in the paper).

OpenSpiel's ``markov_soccer`` (open_spiel/games/markov_soccer) has the same move, possession and goal rules; its
player 0 ('A') starts at (2, 1) and attacks the right goal, i.e. it is this module's B, and its episodes start with
the ball loose on (1, 2) or (2, 2) instead of with a player. It has no draw; its horizon ends an episode with 0.

Observations ``[2, 42]`` in each agent's perspective: its own cell one-hot (20), the other's cell one-hot (20), and
[own ball, other's ball] (2). The tabular view (``state_index``, ``num_states`` = 20 * 19 * 2 = 760) indexes the
positions and the ball holder; the step counter is not part of it.
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

ROWS, COLS = 4, 5
CELLS = ROWS * COLS
N, S, E, W, STAND = 0, 1, 2, 3, 4
MOVES = np.array([[-1, 0], [1, 0], [0, 1], [0, -1], [0, 0]], np.int32)  # (row, col) offsets of N, S, E, W, stand
GOAL_ROWS = (1, 2)
GOAL_COL = np.array([-1, COLS], np.int32)  # the column each agent steps into to score: A left, B right
START = np.array([[1, 3], [2, 1]], np.int32)  # A, B
GAMMA = 0.9


@struct.dataclass
class SoccerParams(EnvParams):
    goal_reward: jax.Array  # float32: the scorer's reward; the other player gets its negative (1)
    draw_prob: jax.Array  # float32: probability that a step without a goal ends the episode in a draw


@struct.dataclass
class SoccerState:
    pos: jax.Array  # [2, 2] int32 (row, col) of A and B
    ball: jax.Array  # int32 scalar: the agent holding the ball
    t: jax.Array  # int32 scalar: steps taken in the episode


@dataclasses.dataclass(frozen=True)
class Soccer(Environment):
    max_steps: int = 1000
    draw_prob: float = 0.0  # the default of params.draw_prob: 0 trains as the paper did; its test games use 0.1

    discount: ClassVar[float] = GAMMA  # the paper's discount; learners default to it

    def __post_init__(self):
        if not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"soccer: max_steps must be a positive integer, got {self.max_steps!r}")
        if not 0.0 <= float(self.draw_prob) <= 1.0:
            raise ValueError(f"soccer: draw_prob must lie in [0, 1], got {self.draw_prob!r}")

    @property
    def name(self) -> str:
        return "soccer"

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def default_params(self) -> SoccerParams:
        return SoccerParams(goal_reward=jnp.float32(1.0), draw_prob=jnp.float32(self.draw_prob))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (2 * CELLS + 2,)),) * 2

    @property
    def action_spaces(self):
        return (Discrete(5),) * 2

    # -- the rules ------------------------------------------------------------------------------------------------
    @staticmethod
    def _move(pos: jax.Array, ball: jax.Array, i: int | jax.Array, action: jax.Array):
        """Agent i's move alone: -> (pos [2, 2], ball, scored bool)."""
        other = 1 - i
        target = pos[i] + jnp.asarray(MOVES)[action]
        inside = (target[0] >= 0) & (target[0] < ROWS) & (target[1] >= 0) & (target[1] < COLS)
        in_goal_row = (pos[i, 0] == GOAL_ROWS[0]) | (pos[i, 0] == GOAL_ROWS[1])
        scored = (ball == i) & in_goal_row & (target[1] == jnp.asarray(GOAL_COL)[i])
        bumped = inside & jnp.all(target == pos[other])  # into the other player: no move, the other gets the ball
        new = jnp.where(inside & ~bumped, target, pos[i])
        return pos.at[i].set(new), jnp.where(bumped, other, ball).astype(jnp.int32), scored

    def resolve(self, state: SoccerState, actions: jax.Array, first: jax.Array, params: SoccerParams):
        """Both moves, agent ``first`` first (the chance outcome), without the draw:
        -> (next state, reward [2], scored bool[2])."""
        pos, ball, scored_1 = self._move(state.pos, state.ball, first, actions[first])
        second = 1 - first
        pos_2, ball_2, scored_2 = self._move(pos, ball, second, actions[second])
        pos = jnp.where(scored_1, pos, pos_2)
        ball = jnp.where(scored_1, ball, ball_2)
        agents = jnp.arange(2)
        scored = (scored_1 & (agents == first)) | (~scored_1 & scored_2 & (agents == second))
        reward = params.goal_reward * (scored.astype(jnp.float32) - scored[::-1].astype(jnp.float32))
        return SoccerState(pos=pos, ball=ball, t=state.t + 1), reward, scored

    def _obs(self, state: SoccerState) -> jax.Array:
        """[2, 42] own-perspective observations."""
        cells = jax.nn.one_hot(state.pos[:, 0] * COLS + state.pos[:, 1], CELLS, dtype=jnp.float32)  # [2, 20]
        ball = jax.nn.one_hot(state.ball, 2, dtype=jnp.float32)
        own = jnp.concatenate([cells[0], cells[1], ball])
        other = jnp.concatenate([cells[1], cells[0], ball[::-1]])
        return jnp.stack([own, other])

    def reset_env(self, key, params):
        state = SoccerState(pos=jnp.asarray(START), ball=jax.random.bernoulli(key).astype(jnp.int32),
                            t=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    def step_env(self, key, state, actions, params):
        k_order, k_draw = jax.random.split(key)
        first = jax.random.bernoulli(k_order).astype(jnp.int32)
        new, reward, scored = self.resolve(state, actions, first, params)
        goal = jnp.any(scored)
        draw = ~goal & (jax.random.uniform(k_draw) < params.draw_prob)
        terminated = goal | draw
        return TimeStep(obs=self._obs(new), state=new, reward=reward, terminated=terminated,
                        truncated=~terminated & (new.t >= self.max_steps), info={"scored": scored, "draw": draw})

    def global_state(self, state, params=None):
        """[42]: agent 0's observation (it holds the whole state)."""
        return self._obs(state)[0]

    # -- the tabular view -----------------------------------------------------------------------------------------
    @property
    def num_states(self) -> int:
        return CELLS * (CELLS - 1) * 2

    def state_index(self, state: SoccerState) -> jax.Array:
        """int32: ball * 380 + cell(A) * 19 + cell(B), B's cell counted among the 19 cells other than A's."""
        a = state.pos[0, 0] * COLS + state.pos[0, 1]
        b = state.pos[1, 0] * COLS + state.pos[1, 1]
        return (state.ball * CELLS * (CELLS - 1) + a * (CELLS - 1) + b - (b > a)).astype(jnp.int32)

    def state_from_index(self, index: jax.Array) -> SoccerState:
        """The inverse of ``state_index`` (with t = 0)."""
        index = jnp.asarray(index, jnp.int32)
        ball, rest = index // (CELLS * (CELLS - 1)), index % (CELLS * (CELLS - 1))
        a, b = rest // (CELLS - 1), rest % (CELLS - 1)
        b = b + (b >= a)
        pos = jnp.stack([jnp.stack([a // COLS, a % COLS]), jnp.stack([b // COLS, b % COLS])]).astype(jnp.int32)
        return SoccerState(pos=pos, ball=ball, t=jnp.zeros((), jnp.int32))

    @compiled_model
    def tabular_model(self, params: SoccerParams) -> TabularModel:
        """The exact model, by running ``resolve`` on every state, joint action and move order: transition
        [760, 5, 5, 760] (a goal or a draw is the missing mass), reward [760, 5, 5, 2], initial [760]."""
        num = self.num_states
        states = jax.vmap(self.state_from_index)(jnp.arange(num))
        joint = jnp.stack(jnp.meshgrid(jnp.arange(5), jnp.arange(5), indexing="ij"), -1).reshape(-1, 2)  # [25, 2]

        def outcome(state, actions, first):
            new, reward, scored = self.resolve(state, actions, first, params)
            go_on = 0.5 * (1.0 - jnp.any(scored)) * (1.0 - params.draw_prob)
            return self.state_index(new), go_on, 0.5 * reward

        per_order = jax.vmap(outcome, in_axes=(None, None, 0))
        per_joint = jax.vmap(per_order, in_axes=(None, 0, None))
        nxt, go_on, reward = jax.vmap(per_joint, in_axes=(0, None, None))(states, joint, jnp.arange(2))  # [S, 25, 2]
        rows = jnp.broadcast_to(jnp.arange(num)[:, None, None], nxt.shape)
        acts = jnp.broadcast_to(jnp.arange(25)[None, :, None], nxt.shape)
        transition = jnp.zeros((num, 25, num), jnp.float32).at[rows, acts, nxt].add(go_on)
        starts = jax.vmap(self.state_index)(SoccerState(pos=jnp.stack([START, START]), ball=jnp.arange(2),
                                                        t=jnp.zeros(2, jnp.int32)))
        return TabularModel(transition=transition.reshape(num, 5, 5, num),
                            reward=jnp.sum(reward, axis=2).reshape(num, 5, 5, 2),
                            initial=jnp.zeros(num, jnp.float32).at[starts].add(0.5))
