"""Sequential social dilemmas: Cleanup and Harvest (Commons Harvest: Open) with the rules and constants of Melting
Pot 2.0 (Harvest's regrowth constants as SocialJax (Guo et al., 2025) has them), on Melting Pot's maps; Cleanup
also on ``SMALL_CLEANUP_MAP`` (our design, a size a CPU can train: its river starts below the depletion threshold,
where Melting Pot's starts above it and random play never grows an apple).

Both games: ``num_agents`` (7) agents on a grid whose outside is wall, ``num_steps`` (1000) steps an episode, ended by
``truncated``. An agent eats an apple by stepping on it (+1 to it alone; rewards are per agent). Orientations are
0 north (row - 1), 1 east (col + 1), 2 south, 3 west. Actions (Melting Pot's order): 0 no-op, 1 forward,
2 backward, 3 step left, 4 step right, 5 turn left, 6 turn right, 7 fire the tagging beam, and in Cleanup
8 fire the cleaning beam; moves are relative to the agent's orientation.

One step, in this order:

1. Moves. A move of an agent in play succeeds if its target is not a wall, was not occupied by an agent in play at
   the start of the step, and no other agent of higher random priority (a permutation drawn from the key) moves
   there. So swaps and following into a cell being vacated fail; no two agents ever share a cell. Turns always
   succeed.
2. Eating: an agent on an apple eats it.
3. Beams, from the positions after the moves (Melting Pot's ``Zapper`` and ``Cleaner``). A beam covers three lanes
   (the agent's own column and the ones to its left and right) from 1 to ``BEAM_LENGTH`` (3) cells ahead (beam
   length 3, radius 1); a lane stops before its first wall and after the first thing it hits. A beam fires only when
   ready: after a shot it cannot fire for the next ``tag_cooldown`` (10) or ``clean_cooldown`` (2) steps in play.
   The tagging beam hits the first agent in play in each lane: that agent is off the map and its actions are
   ignored for the next ``tag_timeout`` (50) steps, and it reappears at the end of the last of them on a free spawn
   cell, facing a random way (``framesTillRespawn``). Firing costs ``tag_cost`` and being tagged
   ``tagged_penalty`` (both 0 as in Melting Pot; the SSD code of Vinitsky et al. used 1 and 50). The cleaning beam
   cleans the first dirty cell in each lane.
4. Regrowth, on apple cells that hold neither an apple nor an agent, each independently:
   - Harvest: with probability ``regrowth[min(n, 3)]`` = (0, 0.001, 0.005, 0.025), n the number of apples among
     the 12 cells within Euclidean distance 2 (SocialJax's constants).
   - Cleanup: with probability ``apple_growth * clip((f - depletion) / (restoration - depletion), 0, 1)``
     = 0.05 * clip(1 - f / 0.4, 0, 1), f the dirty fraction of the cells that can get dirty (Melting Pot's
     ``RiverMonitor``; with ``river_in_fraction`` of all water cells, as SocialJax counts), after this step's
     cleaning: no apple grows while f >= 0.4.
5. Cleanup's pollution: once ``dirt_delay`` (50) steps have been taken, each step with probability
   ``dirt_spawn`` (0.5) one clean cell of those that can get dirty, drawn uniformly, turns dirty (``DirtSpawner``).
   The river's other cells stay clean.

Observations ``[N, 11, 11, C]`` float32 in {0, 1}, egocentric and rotated to the agent's orientation (Melting
Pot's 11 x 11 window: 9 cells ahead, 1 behind, 5 to each side; view row 9, column 5 is the agent): channels
wall, apple, self, then the other agents in play one-hot by their orientation relative to the observer's
(0 the same, 1 turned right of it, 2 opposite, 3 turned left), then in Cleanup water and dirt. An agent out
of play observes zeros. Off the map reads as wall. ``info``: ``apples_eaten`` [N] (this step), ``tagged`` [N]
(this step), ``in_play`` [N], ``returns`` [N] (the episode's rewards so far, for equality measures),
``num_apples`` and ``dirt_fraction`` (scalars), and of the cleaning beam ``clean_fired`` [N] (fired this step),
``cleaned`` [N] (the dirty cells it cleaned; a cell two beams reach counts for both) and ``clean_hits`` [N]
(``cleaned`` > 0). ``step_metrics`` names those learners log as means over their steps (the ``StepMetrics``
capability).

Choices where the references are silent or differ (each tested in tests/envs/test_social_dilemmas.py): moves
resolve against the start-of-step occupancy (no following); beams are computed after all moves, simultaneously;
the beams' readiness is not observed (Melting Pot's ``READY_TO_SHOOT``); agents start on distinct spawn cells drawn
uniformly, facing random ways; Cleanup's apples start absent and Harvest's present; the maps are Melting Pot's
layouts as SocialJax has them, without the decorative cells; episodes last exactly ``num_steps`` (Melting Pot ends
them at random after 1000). SocialJax differs in more: its beams cover 4 cells with no cooldown, a tagged agent
respawns at once, and moves follow (trains allowed).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.config import require_positive_int
from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete

# Map legend: '#' wall, ' ' ground, 'P' spawn cell, 'A' apple cell with an apple, 'a' apple cell without,
# '~' river water (never dirty), 'd' clean water that can get dirty, 'D' dirty water.
CLEANUP_MAP = (
    "dDDDdDDdDdDdDdDdDdDddDdDDDdD",
    "dDdDdDDdDdDdDdDdDdDddDdDDDdD",
    "dDDdDDddDdDdDdDdDdDddDdDDDdD",
    "dDdDdDDdDdDdDdDdDdDddDdDDDdD",
    "dDDDDDDdDdDdDdDdDdDddDdDDDdD",
    "               ~Ddddddd     ",
    "   P    P          ~~~      ",
    "     P     P   P   ~~   P   ",
    "             P   P ~~       ",
    "   P    P          ~~    P  ",
    "               P   ~~ P     ",
    "     P           P ~~       ",
    "           P       ~~  P    ",
    "  P             P  ~~       ",
    " a a a a a a a a a ~~  a a a",
    "aaaaaaaaaaaaaaaaaaa  aaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
)
# Cleanup at a size a CPU can train (our design, not Melting Pot's): the same rules on 8 x 12 cells, a river of 24
# cells a quarter dirty at the start (growth at 0.375 of its largest rate until someone cleans), 7 spawn cells and 24
# apple cells four rows below the river.
SMALL_CLEANUP_MAP = (
    "dDdddDdddDdd",
    "ddDdddDdddDd",
    "            ",
    "  P  P  P  P",
    "   P  P  P  ",
    "            ",
    "aaaaaaaaaaaa",
    "aaaaaaaaaaaa",
)
CLEANUP_MAPS = {"melting_pot": CLEANUP_MAP, "small": SMALL_CLEANUP_MAP}
HARVEST_MAP = (
    "AAA    A      A    AAA",
    "AA    AAA    AAA    AA",
    "A    AAAAA  AAAAA    A",
    "      AAA    AAA      ",
    "       A      A       ",
    "  A                A  ",
    " AAA  P        P  AAA ",
    "AAAAA            AAAAA",
    " AAA              AAA ",
    "  A                A  ",
    "                      ",
    "                      ",
    "                      ",
    "  PPPPPPPPPPPPPPPPPP  ",
    " PPPPPPPPPPPPPPPPPPPP ",
    "PPPPPPPPPPPPPPPPPPPPPP",
)

NOOP, FORWARD, BACKWARD, STEP_LEFT, STEP_RIGHT, TURN_LEFT, TURN_RIGHT, FIRE_TAG, FIRE_CLEAN = range(9)
DIRECTIONS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)  # (row, col) step of orientation 0..3
# per action: the move's direction relative to the orientation (0 ahead, 1 right, 2 back, 3 left), -1 no move
MOVE_TURN = np.array([-1, 0, 2, 3, 1, -1, -1, -1, -1], np.int32)
TURN = np.array([0, 0, 0, 0, 0, -1, 1, 0, 0], np.int32)
VIEW, AHEAD, BEHIND, SIDE = 11, 9, 1, 5
PAD = AHEAD  # wall cells added around the map: enough for the farthest view cell
BEAM_LENGTH = 3
NEIGHBOURS = np.array([(dr, dc) for dr in range(-2, 3) for dc in range(-2, 3)
                       if 0 < dr * dr + dc * dc <= 4], np.int32)  # the 12 cells within distance 2
AGENT_COLOURS = np.array([[66, 133, 244], [219, 68, 55], [244, 180, 0], [15, 157, 88], [171, 71, 188],
                          [0, 172, 193], [255, 112, 67], [158, 157, 36], [92, 107, 192], [240, 98, 146]], np.uint8)
GROUND, GRASS, WALL, APPLE, WATER, DIRT = ([200, 190, 160], [170, 200, 140], [90, 90, 90], [40, 160, 40],
                                          [60, 120, 200], [110, 80, 40])


@struct.dataclass
class SocialDilemmaParams(EnvParams):
    tag_timeout: jax.Array  # int32 >= 1: steps a tagged agent stays out of play (50)
    tag_cost: jax.Array  # float32: reward for firing the tagging beam (0)
    tagged_penalty: jax.Array  # float32: reward for being tagged (0)
    tag_cooldown: jax.Array  # int32: steps after a tagging shot during which the beam cannot fire (10)
    clean_cooldown: jax.Array  # int32: the same for the cleaning beam (2)
    regrowth: jax.Array  # float32 [4]: Harvest's regrowth probability by neighbouring apples 0, 1, 2, 3+
    apple_growth: jax.Array  # float32: Cleanup's largest apple growth probability (0.05)
    depletion: jax.Array  # float32: dirt fraction at and above which no apple grows (0.4)
    restoration: jax.Array  # float32: dirt fraction at and below which apples grow at the largest rate (0)
    dirt_spawn: jax.Array  # float32: probability that one cell gets dirty in a step (0.5)
    dirt_delay: jax.Array  # int32: steps before pollution starts (50)


@struct.dataclass
class SocialDilemmaState:
    pos: jax.Array  # int32 [N, 2] (row, col) on the map (meaningless while out of play)
    orient: jax.Array  # int32 [N]
    out: jax.Array  # int32 [N]: steps left out of play (0: in play)
    cooldown: jax.Array  # int32 [N, 2]: steps before the tagging and the cleaning beam can fire (0: ready)
    apples: jax.Array  # bool [H, W]
    dirt: jax.Array  # bool [H, W] (all False in Harvest)
    returns: jax.Array  # float32 [N]: rewards so far this episode
    t: jax.Array  # int32 scalar


def parse_layout(layout: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Map rows -> bool [H, W] masks: wall, apple_cell, apple (at the start), water, dirt_cell, dirt (at the start),
    and int32 [S, 2] spawn cells."""
    grid = np.array([list(row) for row in layout])
    if grid.ndim != 2:
        raise ValueError("layout rows must have equal lengths")
    legend = set("# PAa~dD")
    unknown = set(grid.ravel()) - legend
    if unknown:
        raise ValueError(f"layout: unknown cell(s) {sorted(unknown)}; legend: {''.join(sorted(legend))}")
    return {"wall": grid == "#", "apple_cell": np.isin(grid, ["A", "a"]), "apple": grid == "A",
            "water": np.isin(grid, ["~", "d", "D"]), "dirt_cell": np.isin(grid, ["d", "D"]), "dirt": grid == "D",
            "spawn": np.argwhere(grid == "P").astype(np.int32)}


def beam_cells(pos: jax.Array, orient: jax.Array, walls: jax.Array, blockers: jax.Array | None = None,
               length: int = BEAM_LENGTH) -> jax.Array:
    """bool [N, H, W]: the cells each agent's beam covers: lanes at lateral offsets -1, 0, 1, cells 1..length ahead,
    each lane stopping before its first wall and after its first ``blockers`` cell (bool [H, W], what the beam hits
    and is absorbed by). ``walls`` is the padded wall mask [H + 2 PAD, W + 2 PAD]."""
    fwd = jnp.asarray(DIRECTIONS)[orient]  # [N, 2]
    right = jnp.asarray(DIRECTIONS)[(orient + 1) % 4]
    dist = jnp.arange(1, length + 1)
    lane = jnp.arange(-1, 2)
    cells = (pos[:, None, None, :] + dist[None, None, :, None] * fwd[:, None, None, :]
             + lane[None, :, None, None] * right[:, None, None, :])  # [N, 3 lanes, length, 2]
    wall = walls[cells[..., 0] + PAD, cells[..., 1] + PAD]
    open_ = jnp.cumprod(~wall, axis=-1).astype(bool)  # no wall up to and including this cell
    h, w = walls.shape[0] - 2 * PAD, walls.shape[1] - 2 * PAD
    if blockers is not None:
        blocking = jnp.pad(blockers, PAD)[cells[..., 0] + PAD, cells[..., 1] + PAD].astype(jnp.int32)
        nearer = jnp.cumsum(blocking, axis=-1) - blocking  # blockers strictly nearer in the lane
        open_ = open_ & (nearer == 0)
    flat = jnp.where(open_, cells[..., 0] * w + cells[..., 1], h * w).reshape(pos.shape[0], -1)
    covered = jnp.zeros((pos.shape[0], h * w), bool).at[jnp.arange(pos.shape[0])[:, None], flat].set(
        True, mode="drop")
    return covered.reshape(pos.shape[0], h, w)


@dataclasses.dataclass(frozen=True)
class SocialDilemma(Environment):
    """Shared rules of Cleanup and Harvest (module docstring); subclasses fix the map and the regrowth rule."""

    n_agents: int = 7
    num_steps: int = 1000
    layout: tuple[str, ...] = ()
    cleaning: bool = False  # Cleanup's water, dirt and cleaning beam
    river_in_fraction: bool = False  # SocialJax's dirt fraction: the river cells count in its denominator

    def __post_init__(self):
        for name in ("n_agents", "num_steps"):
            require_positive_int(self, name)
        spawn = len(parse_layout(self.layout)["spawn"])
        if self.n_agents > spawn:
            raise ValueError(f"{self.name}: num_agents={self.n_agents} exceeds the map's {spawn} spawn cells")

    @property
    def num_agents(self) -> int:
        return self.n_agents

    @property
    def map(self) -> dict[str, np.ndarray]:
        return parse_layout(self.layout)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.layout), len(self.layout[0])

    @property
    def step_metrics(self) -> tuple[str, ...]:
        names = ("apples_eaten", "num_apples", "tagged")
        return names + ("dirt_fraction", "clean_fired", "clean_hits", "cleaned") if self.cleaning else names

    @property
    def num_channels(self) -> int:
        return 9 if self.cleaning else 7

    @property
    def default_params(self) -> SocialDilemmaParams:
        f = jnp.float32
        return SocialDilemmaParams(
            tag_timeout=jnp.int32(50), tag_cost=f(0.0), tagged_penalty=f(0.0), tag_cooldown=jnp.int32(10),
            clean_cooldown=jnp.int32(2),
            regrowth=jnp.array([0.0, 0.001, 0.005, 0.025], jnp.float32), apple_growth=f(0.05), depletion=f(0.4),
            restoration=f(0.0), dirt_spawn=f(0.5), dirt_delay=jnp.int32(50))

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (VIEW, VIEW, self.num_channels)),) * self.num_agents

    @property
    def action_spaces(self):
        return (Discrete(9 if self.cleaning else 8),) * self.num_agents

    def padded_walls(self) -> np.ndarray:
        """bool [H + 2 PAD, W + 2 PAD]: the map's walls and the wall outside it."""
        return np.pad(self.map["wall"], PAD, constant_values=True)

    # -- episode -----------------------------------------------------------------------------------------------
    def initial_state(self, pos, orient, apples=None, dirt=None, out=None) -> SocialDilemmaState:
        """A first state with agents at ``pos`` [N, 2] facing ``orient`` [N]; apples and dirt [H, W] default to the
        map's; ``out`` [N] (default 0) steps left out of play."""
        m = self.map
        n = self.num_agents
        return SocialDilemmaState(
            pos=jnp.asarray(pos, jnp.int32), orient=jnp.asarray(orient, jnp.int32),
            out=jnp.zeros(n, jnp.int32) if out is None else jnp.asarray(out, jnp.int32),
            cooldown=jnp.zeros((n, 2), jnp.int32),
            apples=jnp.asarray(m["apple"] if apples is None else apples, bool),
            dirt=jnp.asarray(m["dirt"] if dirt is None else dirt, bool),
            returns=jnp.zeros(n, jnp.float32), t=jnp.zeros((), jnp.int32))

    def reset_env(self, key, params):
        k_pos, k_orient = jax.random.split(key)
        spawn = jnp.asarray(self.map["spawn"])
        pos = spawn[jax.random.permutation(k_pos, spawn.shape[0])[:self.num_agents]]
        state = self.initial_state(pos, jax.random.randint(k_orient, (self.num_agents,), 0, 4))
        return self.observe(state), state

    def step_env(self, key, state, actions, params):
        """actions int32 [N] -> TimeStep (module docstring, steps 1-5)."""
        k_move, k_spawn, k_grow, k_dirt = jax.random.split(key, 4)
        actions = jnp.asarray(actions, jnp.int32)
        playing = state.out == 0
        acting = jnp.where(playing, actions, NOOP)
        pos, orient = self.resolve_moves(k_move, state.pos, state.orient, playing, acting)

        h, w = self.shape
        on_map = jnp.zeros((h, w), bool).at[jnp.where(playing, pos[:, 0], h), pos[:, 1]].set(True, mode="drop")
        eaten = playing & state.apples[pos[:, 0], pos[:, 1]]
        apples = state.apples & ~on_map

        walls = jnp.asarray(self.padded_walls())
        ready = state.cooldown == 0
        fires = playing[:, None] & ready & (acting[:, None] == jnp.array([FIRE_TAG, FIRE_CLEAN]))
        limits = jnp.stack([params.tag_cooldown, params.clean_cooldown])
        cooldown = jnp.where(fires, limits, jnp.where(playing[:, None] & ~ready, state.cooldown - 1, state.cooldown))
        firing = fires[:, 0]
        covered = jnp.any(beam_cells(pos, orient, walls, on_map) & firing[:, None, None], axis=0)
        # an agent's own beam never covers its cell, so any coverage comes from another agent
        tagged = playing & covered[pos[:, 0], pos[:, 1]]
        dirt = state.dirt
        cleaned = jnp.zeros(self.num_agents, jnp.int32)
        if self.cleaning:
            hit = beam_cells(pos, orient, walls, dirt) & fires[:, 1, None, None] & dirt  # [N, H, W]
            cleaned = jnp.sum(hit, axis=(1, 2), dtype=jnp.int32)
            dirt = dirt & ~jnp.any(hit, axis=0)

        reward = (eaten.astype(jnp.float32) + jnp.where(firing, params.tag_cost, 0.0)
                  + jnp.where(tagged, params.tagged_penalty, 0.0))

        out = jnp.where(playing, 0, state.out - 1)
        back = ~playing & (out == 0)
        pos, orient = self.respawn(k_spawn, pos, orient, playing & ~tagged, back)
        out = jnp.where(tagged, params.tag_timeout, out)
        in_play = out == 0
        occupied = jnp.zeros((h, w), bool).at[jnp.where(in_play, pos[:, 0], h), pos[:, 1]].set(True, mode="drop")

        apples, dirt = self.regrow(k_grow, k_dirt, apples, dirt, occupied, state.t, params)
        new = SocialDilemmaState(pos=pos, orient=orient, out=out, cooldown=cooldown, apples=apples, dirt=dirt,
                                 returns=state.returns + reward, t=state.t + 1)
        info = {"apples_eaten": eaten, "tagged": tagged, "in_play": in_play, "returns": new.returns,
                "num_apples": jnp.sum(apples), "dirt_fraction": self.dirt_fraction(dirt),
                "clean_fired": fires[:, 1], "clean_hits": cleaned > 0, "cleaned": cleaned}
        return TimeStep(obs=self.observe(new), state=new, reward=reward, terminated=jnp.asarray(False),
                        truncated=new.t >= self.num_steps, info=info)

    # -- rules -------------------------------------------------------------------------------------------------
    def resolve_moves(self, key, pos, orient, playing, actions):
        """Step 1 -> (pos [N, 2], orient [N]): moves against the start-of-step occupancy, ties to a random
        priority."""
        n = self.num_agents
        rel = jnp.asarray(MOVE_TURN)[actions]
        moving = playing & (rel >= 0)
        target = pos + jnp.asarray(DIRECTIONS)[(orient + rel) % 4]
        walls = jnp.asarray(self.padded_walls())
        blocked = walls[target[:, 0] + PAD, target[:, 1] + PAD]
        same = jnp.all(target[:, None, :] == target[None, :, :], axis=-1)  # [N, N]
        occupied = jnp.any(jnp.all(target[:, None, :] == pos[None, :, :], axis=-1) & playing[None, :], axis=1)
        priority = jax.random.permutation(key, n)
        beaten = jnp.any(same & moving[None, :] & (priority[None, :] > priority[:, None]), axis=1)
        ok = moving & ~blocked & ~occupied & ~beaten
        new_pos = jnp.where(ok[:, None], target, pos)
        return new_pos, (orient + jnp.asarray(TURN)[actions] * playing) % 4

    def respawn(self, key, pos, orient, staying, back):
        """Agents ``back`` [N] take distinct spawn cells free of the agents ``staying`` [N], drawn uniformly, and a
        random orientation -> (pos, orient)."""
        k_cell, k_orient = jax.random.split(key)
        spawn = jnp.asarray(self.map["spawn"])
        s = spawn.shape[0]
        taken = jnp.any(jnp.all(spawn[:, None, :] == pos[None, :, :], axis=-1) & staying[None, :], axis=1)
        order = jnp.argsort(taken * s + jax.random.permutation(k_cell, s))  # free cells first, in random order
        rank = jnp.clip(jnp.cumsum(back) - 1, 0, s - 1)
        pos = jnp.where(back[:, None], spawn[order[rank]], pos)
        return pos, jnp.where(back, jax.random.randint(k_orient, orient.shape, 0, 4), orient)

    def dirt_fraction(self, dirt: jax.Array) -> jax.Array:
        """float32: the dirty share of the cells that can get dirty, or with ``river_in_fraction`` of all water
        cells (0 in Harvest)."""
        cells = max(int(self.map["water" if self.river_in_fraction else "dirt_cell"].sum()), 1)
        return jnp.sum(dirt).astype(jnp.float32) / cells

    def regrowth_probability(self, apples: jax.Array, dirt: jax.Array, params) -> jax.Array:
        """float32 [H, W]: each apple cell's chance to grow an apple this step (if empty and free)."""
        raise NotImplementedError

    def regrow(self, k_grow, k_dirt, apples, dirt, occupied, t, params):
        """Steps 4-5 -> (apples, dirt)."""
        cells = jnp.asarray(self.map["apple_cell"])
        p = self.regrowth_probability(apples, dirt, params)
        grow = cells & ~apples & ~occupied & (jax.random.uniform(k_grow, apples.shape) < p)
        apples = apples | grow
        if self.cleaning:
            k_coin, k_cell = jax.random.split(k_dirt)
            clean = jnp.asarray(self.map["dirt_cell"]) & ~dirt
            cell = jax.random.categorical(k_cell, jnp.where(clean, 0.0, -jnp.inf).ravel())
            fire = (t >= params.dirt_delay) & (jax.random.uniform(k_coin) < params.dirt_spawn) & jnp.any(clean)
            dirt = dirt | (fire & (jnp.arange(dirt.size) == cell)).reshape(dirt.shape)
        return apples, dirt

    # -- observations ------------------------------------------------------------------------------------------
    def view_cells(self, pos: jax.Array, orient: jax.Array) -> jax.Array:
        """int32 [N, 11, 11, 2]: the map cell (row, col) each view cell shows (view row 0 is 9 cells ahead)."""
        fwd = jnp.asarray(DIRECTIONS)[orient][:, None, None, :]
        right = jnp.asarray(DIRECTIONS)[(orient + 1) % 4][:, None, None, :]
        ahead = (AHEAD - jnp.arange(VIEW))[None, :, None, None]
        lateral = (jnp.arange(VIEW) - SIDE)[None, None, :, None]
        return pos[:, None, None, :] + ahead * fwd + lateral * right

    def observe(self, state: SocialDilemmaState) -> jax.Array:
        """float32 [N, 11, 11, C] (module docstring)."""
        n = self.num_agents
        h, w = self.shape
        in_play = state.out == 0
        layers = [jnp.asarray(self.map["wall"]), state.apples]
        if self.cleaning:
            layers += [jnp.asarray(self.map["water"]), state.dirt]
        grid = jnp.stack(layers, -1)
        pads = [(PAD, PAD), (PAD, PAD), (0, 0)]
        grid = jnp.pad(grid, pads).at[..., 0].set(jnp.asarray(self.padded_walls()))
        who = jnp.full((h, w), -1, jnp.int32).at[jnp.where(in_play, state.pos[:, 0], h), state.pos[:, 1]].set(
            jnp.arange(n, dtype=jnp.int32), mode="drop")
        who = jnp.pad(who, PAD, constant_values=-1)
        cells = self.view_cells(state.pos, state.orient) + PAD
        seen = grid[cells[..., 0], cells[..., 1]]  # [N, 11, 11, layers]
        agent = who[cells[..., 0], cells[..., 1]]  # [N, 11, 11]
        me = agent == jnp.arange(n)[:, None, None]
        other = (agent >= 0) & ~me
        relative = (state.orient[jnp.maximum(agent, 0)] - state.orient[:, None, None]) % 4
        facing = jax.nn.one_hot(relative, 4, dtype=bool) & other[..., None]
        obs = jnp.concatenate([seen[..., :2], me[..., None], facing, seen[..., 2:]], -1).astype(jnp.float32)
        return obs * in_play[:, None, None, None]

    def global_state(self, state: SocialDilemmaState, params=None) -> jax.Array:
        """float32 [H * W * 6 + N + 1]: apples, dirt and the agents in play one-hot by orientation per cell, each
        agent's steps left out of play over ``tag_timeout`` and the elapsed share of the episode."""
        params = self.default_params if params is None else params
        h, w = self.shape
        in_play = state.out == 0
        agents = jnp.zeros((h, w, 4), jnp.float32).at[jnp.where(in_play, state.pos[:, 0], h), state.pos[:, 1],
                                                      state.orient].set(1.0, mode="drop")
        grid = jnp.concatenate([state.apples[..., None], state.dirt[..., None], agents], -1).astype(jnp.float32)
        return jnp.concatenate([grid.ravel(), state.out.astype(jnp.float32) / params.tag_timeout,
                                (state.t / self.num_steps).astype(jnp.float32)[None]])

    # -- rendering ---------------------------------------------------------------------------------------------
    def render(self, state: SocialDilemmaState, cell: int = 8) -> jax.Array:
        """uint8 [H * cell, W * cell, 3]: ground (apple cells greener), walls, water, dirt, apples, and each agent in
        play in its colour with a dark strip on the side it faces. Jittable."""
        h, w = self.shape
        m = self.map
        colour = jnp.broadcast_to(jnp.asarray(GROUND, jnp.uint8), (h, w, 3))
        for mask, rgb in ((jnp.asarray(m["apple_cell"]), GRASS), (jnp.asarray(m["wall"]), WALL),
                          (jnp.asarray(m["water"]), WATER), (state.dirt, DIRT), (state.apples, APPLE)):
            colour = jnp.where(mask[..., None], jnp.asarray(rgb, jnp.uint8), colour)
        in_play = state.out == 0
        rows = jnp.where(in_play, state.pos[:, 0], h)
        palette = jnp.asarray(AGENT_COLOURS)[jnp.arange(self.num_agents) % len(AGENT_COLOURS)]
        colour = colour.at[rows, state.pos[:, 1]].set(palette, mode="drop")
        facing = jnp.full((h, w), -1, jnp.int32).at[rows, state.pos[:, 1]].set(state.orient, mode="drop")
        img = jnp.repeat(jnp.repeat(colour, cell, 0), cell, 1)
        strip = max(cell // 4, 1)
        r, c = jnp.meshgrid(jnp.arange(cell), jnp.arange(cell), indexing="ij")
        marks = jnp.stack([r < strip, c >= cell - strip, r >= cell - strip, c < strip])  # by orientation
        mark = marks[jnp.maximum(facing, 0)] & (facing >= 0)[..., None, None]  # [H, W, cell, cell]
        mark = mark.transpose(0, 2, 1, 3).reshape(h * cell, w * cell)
        return jnp.where(mark[..., None], img // 3, img)


@dataclasses.dataclass(frozen=True)
class Cleanup(SocialDilemma):
    """Cleanup: apples grow only while the river is clean enough (module docstring)."""

    layout: tuple[str, ...] = CLEANUP_MAP
    cleaning: bool = True

    @property
    def name(self) -> str:
        return "cleanup"

    def regrowth_probability(self, apples, dirt, params):
        share = (self.dirt_fraction(dirt) - params.depletion) / (params.restoration - params.depletion)
        return jnp.full(apples.shape, params.apple_growth * jnp.clip(share, 0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class Harvest(SocialDilemma):
    """Commons Harvest (open): apples regrow by the number of apples near them (module docstring)."""

    layout: tuple[str, ...] = HARVEST_MAP
    cleaning: bool = False

    @property
    def name(self) -> str:
        return "harvest"

    def regrowth_probability(self, apples, dirt, params):
        return params.regrowth[jnp.minimum(neighbour_apples(apples), 3)]


def neighbour_apples(apples: jax.Array) -> jax.Array:
    """int32 [H, W]: apples among each cell's 12 cells within distance 2 (off the map counts none)."""
    h, w = apples.shape
    padded = jnp.pad(apples, 2).astype(jnp.int32)
    return sum(padded[2 + dr:2 + dr + h, 2 + dc:2 + dc + w] for dr, dc in NEIGHBOURS)


def record_episode(env: SocialDilemma, key: jax.Array, policy: Callable, num_steps: int | None = None,
                   params=None, cell: int = 8) -> tuple[jax.Array, jax.Array]:
    """One episode (``num_steps`` steps, default the horizon) with actions ``policy(key, obs [N, 11, 11, C]) -> int32
    [N]`` -> (its rendered frames uint8 [T + 1, H * cell, W * cell, 3], each agent's return [N]). Jittable for a
    static T."""
    params = env.default_params if params is None else params
    k_reset, k_run = jax.random.split(key)
    _, state = env.reset(k_reset, params)
    length = env.num_steps if num_steps is None else num_steps

    def body(carry, k):
        state, obs = carry
        k_act, k_env = jax.random.split(k)
        ts, reached = env.step_with_final_state(k_env, state, policy(k_act, obs), params)
        return (ts.state, ts.obs), (env.render(reached, cell), ts.reward)

    obs = env.observe(state)
    _, (frames, rewards) = jax.lax.scan(body, (state, obs), jax.random.split(k_run, length))
    return jnp.concatenate([env.render(state, cell)[None], frames]), rewards.sum(0)


def save_frames(frames, path: str, fps: int = 8) -> None:
    """Write frames uint8 [T, H, W, 3] (or one frame [H, W, 3]) as a PNG (the first frame) or, for a path ending
    in ``.gif``, an animated GIF."""
    from PIL import Image

    frames = np.asarray(frames, np.uint8)
    frames = frames[None] if frames.ndim == 3 else frames
    images = [Image.fromarray(f) for f in frames]
    if str(path).lower().endswith(".gif"):
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    else:
        images[0].save(path)
