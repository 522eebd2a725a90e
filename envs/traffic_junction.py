"""The traffic junction of CommNet (Sukhbaatar et al., 2016) and IC3Net (Singh et al., 2019; their ``ic3net-envs``
package), as G2ANet (Liu et al., 2020, section 5.1) uses it: cars enter a grid of one-lane roads, drive along a
fixed route with two actions (gas, brake) and must not collide.

Difficulties (IC3Net's settings; the arrival probability is the one its curriculum ends at):

| difficulty | grid | junctions | arrival points | routes | cars | ``max_steps`` | ``p_arrive`` |
| --- | --- | --- | --- | --- | --- | --- | --- |
| easy | 7 x 7 | 1 | 2 (top, left) | 2 (straight through) | 5 | 20 | 0.3 |
| medium | 14 x 14 | 1 (2 x 2 cells) | 4 | 12 (straight, right, left) | 10 | 40 | 0.2 |
| hard | 18 x 18 | 4 (2 x 2 cells each) | 8 | 56 (a turn at each of two junctions) | 20 | 80 | 0.05 |

Cells are (row, column). Traffic keeps to the right: in the medium grid cars go down column 6, up column 7, right
along row 7 and left along row 6 (IC3Net's ``traffic_helper.get_add_mat``); the hard grid has two such road pairs
each way (rows 4-5 and 12-13, columns 4-5 and 12-13). A route starts at an arrival point on the border and drives
straight until a junction; there it goes straight, turns right at the first junction cell, or (left) crosses one
junction cell and turns left; after two junctions a route goes straight on to the border (``build_routes``).

One step (IC3Net's ``step``):

1. Every car in the system acts: BRAKE (1) stays, GAS (0) advances one cell along its route; GAS on the route's last
   cell leaves the system (the car reaches its destination, ``info["completed"]``). A car's ``tau`` (steps since it
   arrived) grows by one each step it is in the system.
2. Arrivals: for each arrival point in turn, while fewer than ``num_cars`` cars are in the system, a car arrives with
   probability ``p_arrive`` on a route drawn uniformly among that point's routes. The arriving car is a random one
   of those out of the system; it starts on the route's first cell with ``tau`` 0, even if that cell is taken (then
   it collides at once, as in IC3Net).
3. Rewards, to cars in the system only: ``time_penalty * tau`` (-0.01 tau), plus ``collision_penalty`` (-10) to every
   car that shares its cell with another car. Colliding cars drive on. An episode without any collision is a
   success (``info["success"]``: 1 while no collision has happened in the episode, so its value at the episode's
   last step is the episode's success).

Episodes start empty (no car in the system) and last exactly ``max_steps`` steps (``FixedHorizon``; IC3Net's trainer
stops at ``max_steps``).

Observation of car i (zeros for a car out of the system, which IC3Net also zeroes), flattened: its id one-hot [N],
its last action (1 brake, 0 gas) [1], its route one-hot [R], its location one-hot over the road cells [C] (road
cells numbered in row-major order), then a (2 vision + 1)^2 window centred on it, two channels per cell: road (1 on a
road cell, 0 off the road or off the grid) and the number of other cars in the system there. Where IC3Net's
observation differs: it shows the window's one-hot cell ids (its ``bool`` vocabulary numbers road cells road block
by road block, one id each) and a count of cars that includes the car itself and the cars out of the system (parked
at (0, 0), off the road), gives the route as one number (route id / (routes - 1)) and no id, and keeps a re-entering
car's last action from its previous trip (here an arriving car's last action is gas).

Neighbourhoods (``Neighbourhood``): every car's neighbourhood is all cars, itself first and the others in index
order, masked to the cars in the system (G2ANet's communication graph before hard attention; IC3Net masks absent
cars out of communication the same way).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.config import require_positive_int
from jaxmarl_core.env import EnvParams, GroupedEnvironment, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete

GAS, BRAKE = 0, 1
SOUTH, NORTH, EAST, WEST = (1, 0), (-1, 0), (0, 1), (0, -1)
STRAIGHT, RIGHT, LEFT = "straight", "right", "left"

# difficulty -> (grid size, cars, max_steps, p_arrive)
PRESETS = {"easy": (7, 5, 20, 0.3), "medium": (14, 10, 40, 0.2), "hard": (18, 20, 80, 0.05)}


def lanes(difficulty: str, size: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The one-way lanes as (arrival cell on the border, heading), in IC3Net's order of arrival points."""
    h = w = size
    if difficulty == "easy":
        return [((0, w // 2), SOUTH), ((h // 2, 0), EAST)]
    if difficulty == "medium":
        return [((0, w // 2 - 1), SOUTH), ((h - 1, w // 2), NORTH), ((h // 2, 0), EAST), ((h // 2 - 1, w - 1), WEST)]
    return [((0, w // 3 - 2), SOUTH), ((0, 2 * w // 3), SOUTH), ((h // 3 - 1, 0), EAST), ((2 * h // 3 + 1, 0), EAST),
            ((h - 1, w // 3 - 1), NORTH), ((h - 1, 2 * w // 3 + 1), NORTH), ((h // 3 - 2, w - 1), WEST),
            ((2 * h // 3, w - 1), WEST)]


def junctions(difficulty: str, size: int) -> np.ndarray:
    """bool [size, size]: the junction cells."""
    grid = np.zeros((size, size), bool)
    h = size
    if difficulty == "easy":
        grid[h // 2, h // 2] = True
    elif difficulty == "medium":
        grid[h // 2 - 1:h // 2 + 1, h // 2 - 1:h // 2 + 1] = True
    else:
        for r in (h // 3 - 2, 2 * h // 3):
            for c in (h // 3 - 2, 2 * h // 3):
                grid[r:r + 2, c:c + 2] = True
    return grid


def drive(start, heading, turns, junction: np.ndarray) -> tuple[list[tuple[int, int]], int]:
    """The cells of a route from ``start`` driving ``heading``, taking ``turns[k]`` at the k-th junction (straight
    once they run out) -> (cells, number of junctions met)."""
    size = junction.shape[0]
    pos, (dr, dc), met = start, heading, 0
    cells = [pos]

    def inside(p):
        return 0 <= p[0] < size and 0 <= p[1] < size

    while inside((pos[0] + dr, pos[1] + dc)):
        nxt = (pos[0] + dr, pos[1] + dc)
        entering = junction[nxt] and not junction[pos]
        pos = nxt
        cells.append(pos)
        if not entering:
            continue
        turn = turns[met] if met < len(turns) else STRAIGHT
        met += 1
        if turn == RIGHT:  # turn at the first junction cell
            dr, dc = dc, -dr
        elif turn == LEFT:  # cross one junction cell, then turn
            pos = (pos[0] + dr, pos[1] + dc)
            cells.append(pos)
            dr, dc = -dc, dr
    return cells, met


def build_routes(difficulty: str, size: int) -> list[list[list[tuple[int, int]]]]:
    """Per arrival point, its routes (lists of cells): every first turn, and every second turn for the routes that
    meet a second junction (IC3Net's ``get_routes``); easy's two routes go straight through."""
    junction = junctions(difficulty, size)
    options = (STRAIGHT,) if difficulty == "easy" else (STRAIGHT, RIGHT, LEFT)
    out = []
    for start, heading in lanes(difficulty, size):
        routes = []
        for first in options:
            cells, met = drive(start, heading, [first], junction)
            if met < 2:
                routes.append(cells)
                continue
            routes.extend(drive(start, heading, [first, second], junction)[0] for second in options)
        out.append(routes)
    return out


@struct.dataclass
class TrafficJunctionParams(EnvParams):
    p_arrive: jax.Array  # probability that a car arrives at an arrival point in a step
    collision_penalty: jax.Array  # -10
    time_penalty: jax.Array  # -0.01, times the steps since arrival


@struct.dataclass
class TrafficJunctionState:
    """route, progress (index of the car's cell on its route), tau (steps since arrival), last_action: int32 [N];
    active: bool [N] (in the system); failed: bool [] (a collision happened this episode); t: int32 []."""

    route: jax.Array
    progress: jax.Array
    tau: jax.Array
    last_action: jax.Array
    active: jax.Array
    failed: jax.Array
    t: jax.Array


@dataclasses.dataclass(frozen=True)
class TrafficJunction(GroupedEnvironment):
    """``num_cars`` cars on the ``difficulty`` grid, ``max_steps`` steps an episode (module docstring); 0 for
    ``num_cars``, ``max_steps`` or a negative ``p_arrive`` take the difficulty's value."""

    difficulty: str = "easy"
    num_cars: int = 0
    max_steps: int = 0
    p_arrive: float = -1.0
    vision: int = 1

    def __post_init__(self):
        if self.difficulty not in PRESETS:
            raise ValueError(f"traffic_junction: difficulty must be one of {', '.join(PRESETS)}, got "
                             f"{self.difficulty!r}")
        size, cars, steps, p = PRESETS[self.difficulty]
        object.__setattr__(self, "num_cars", self.num_cars or cars)
        object.__setattr__(self, "max_steps", self.max_steps or steps)
        object.__setattr__(self, "p_arrive", p if self.p_arrive < 0 else self.p_arrive)
        for name in ("num_cars", "max_steps"):
            require_positive_int(self, name)
        if not 0.0 <= self.p_arrive <= 1.0:
            raise ValueError(f"traffic_junction: p_arrive must lie in [0, 1], got {self.p_arrive}")
        if not isinstance(self.vision, int) or self.vision < 0:
            raise ValueError(f"traffic_junction: vision must be a non-negative integer, got {self.vision}")

    # -- static structure --------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "traffic_junction"

    @property
    def size(self) -> int:
        return PRESETS[self.difficulty][0]

    @property
    def num_agents(self) -> int:
        return self.num_cars

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def num_steps(self) -> int:
        return self.max_steps

    @property
    def num_neighbours(self) -> int:
        return self.num_cars

    @property
    def team_reward(self) -> str:
        return "sum"

    @property
    def tables(self) -> dict[str, np.ndarray]:
        """Routes as arrays: ``cells`` int32 [R, L, 2] (padded with the last cell), ``length`` [R], ``arrival``
        int32 [P, M] (each arrival point's route ids, padded), ``count`` [P]; ``road_id`` int32 [size, size] (index
        of each road cell, -1 off the road)."""
        per_point = build_routes(self.difficulty, self.size)
        routes = [r for rs in per_point for r in rs]
        longest, widest = max(map(len, routes)), max(map(len, per_point))
        cells = np.array([r + [r[-1]] * (longest - len(r)) for r in routes], np.int32)
        firsts = np.cumsum([0] + [len(rs) for rs in per_point])[:-1]
        arrival = np.array([[f + min(k, len(rs) - 1) for k in range(widest)] for f, rs in zip(firsts, per_point)],
                           np.int32)
        road = np.zeros((self.size, self.size), bool)
        for r in routes:
            road[tuple(np.array(r).T)] = True
        road_id = np.where(road, np.cumsum(road).reshape(road.shape) - 1, -1).astype(np.int32)
        return {"cells": cells, "length": np.array([len(r) for r in routes], np.int32), "arrival": arrival,
                "count": np.array([len(rs) for rs in per_point], np.int32), "road_id": road_id}

    @property
    def num_routes(self) -> int:
        return len(self.tables["length"])

    @property
    def num_road_cells(self) -> int:
        return int(np.max(self.tables["road_id"])) + 1

    @property
    def obs_dim(self) -> int:
        window = 2 * self.vision + 1
        return self.num_cars + 1 + self.num_routes + self.num_road_cells + 2 * window * window

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        return (AgentGroup("cars", self.num_cars, Box(0.0, float(self.num_cars), (self.obs_dim,)), Discrete(2)),)

    @property
    def default_params(self) -> TrafficJunctionParams:
        f = jnp.float32
        return TrafficJunctionParams(p_arrive=f(self.p_arrive), collision_penalty=f(-10.0), time_penalty=f(-0.01))

    # -- dynamics ----------------------------------------------------------------------------------------------
    def reset_env(self, key, params):
        n = self.num_cars
        zeros = jnp.zeros((n,), jnp.int32)
        state = TrafficJunctionState(route=zeros, progress=zeros, tau=zeros, last_action=zeros,
                                     active=jnp.zeros((n,), bool), failed=jnp.zeros((), bool),
                                     t=jnp.zeros((), jnp.int32))
        return self.observe(state), state

    def cells(self, state: TrafficJunctionState) -> jax.Array:
        """int32 [N, 2]: each car's cell (meaningless for cars out of the system)."""
        return jnp.asarray(self.tables["cells"])[state.route, state.progress]

    def move(self, state: TrafficJunctionState, actions: jax.Array) -> tuple[TrafficJunctionState, jax.Array]:
        """Step 1: -> (state, bool [N] cars that left the system at their destination)."""
        length = jnp.asarray(self.tables["length"])[state.route]
        gas = state.active & (actions == GAS)
        done = gas & (state.progress + 1 >= length)
        advance = gas & ~done
        return state.replace(progress=jnp.where(advance, state.progress + 1, state.progress),
                             tau=jnp.where(done, 0, jnp.where(state.active, state.tau + 1, state.tau)),
                             last_action=jnp.where(state.active, actions, state.last_action),
                             active=state.active & ~done), done

    def arrive(self, key: jax.Array, state: TrafficJunctionState, params) -> TrafficJunctionState:
        """Step 2: the arrival points in turn, each adding a car with probability ``p_arrive`` while there is room."""
        t = self.tables
        arrival, count = jnp.asarray(t["arrival"]), jnp.asarray(t["count"])
        # one flat draw for every point (whether a car comes, which route, which car): a flat draw's random-bit
        # kernel compiles several times faster than a 2-d one
        points = len(t["count"])
        u = jax.random.uniform(key, (points * (self.num_cars + 2),)).reshape(points, -1)
        for point in range(points):
            room = jnp.sum(state.active) < self.num_cars
            comes = room & (u[point, 0] < params.p_arrive)
            car = jnp.argmax(jnp.where(state.active, -1.0, u[point, 2:]))
            route = arrival[point, jnp.minimum((u[point, 1] * count[point]).astype(jnp.int32), count[point] - 1)]
            new = comes & (jnp.arange(self.num_cars) == car)
            state = state.replace(route=jnp.where(new, route, state.route),
                                  progress=jnp.where(new, 0, state.progress), tau=jnp.where(new, 0, state.tau),
                                  last_action=jnp.where(new, GAS, state.last_action), active=state.active | new)
        return state

    def collisions(self, state: TrafficJunctionState) -> jax.Array:
        """bool [N]: cars in the system that share their cell with another car in the system."""
        cell = self.cells(state)
        same = jnp.all(cell[:, None, :] == cell[None, :, :], axis=-1)
        pair = same & state.active[:, None] & state.active[None, :] & ~jnp.eye(self.num_cars, dtype=bool)
        return jnp.any(pair, axis=1)

    @property
    def agent_episodes(self) -> bool:
        """A car's own episode ends when it reaches its destination (``info["agent_done"]``)."""
        return True

    def step_env(self, key, state, actions, params):
        """actions int32 [N] (0 gas, 1 brake) -> TimeStep; ``info``: ``success``, ``collisions`` (cars colliding
        in this step), ``completed`` (cars that reached their destination), float32 scalars, and ``agent_done``
        bool [N]: the cars that reached their destination (the end of that car's own episode: the index may carry
        a new car from the next step on; IC3Net's ``is_completed``)."""
        moved, completed = self.move(state, jnp.asarray(actions, jnp.int32))
        new = self.arrive(key, moved, params)
        crash = self.collisions(new)
        reward = jnp.where(new.active, params.time_penalty * new.tau + params.collision_penalty * crash, 0.0)
        new = new.replace(failed=state.failed | jnp.any(crash), t=state.t + 1)
        info = {"success": 1.0 - new.failed.astype(jnp.float32), "collisions": jnp.sum(crash).astype(jnp.float32),
                "completed": jnp.sum(completed).astype(jnp.float32), "agent_done": completed}
        return TimeStep(obs=self.observe(new), state=new, reward=reward.astype(jnp.float32),
                        terminated=jnp.zeros((), bool), truncated=new.t >= self.max_steps, info=info)

    def observe(self, state: TrafficJunctionState) -> jax.Array:
        """float32 [N, obs_dim] (module docstring)."""
        t, n, v = self.tables, self.num_cars, self.vision
        cell = self.cells(state)
        road_id = jnp.asarray(t["road_id"])
        size = self.size
        flat = cell[:, 0] * size + cell[:, 1]
        cars = jnp.zeros((size * size,), jnp.float32).at[flat].add(state.active.astype(jnp.float32))
        road = jnp.pad((road_id >= 0).astype(jnp.float32), v)
        count = jnp.pad(cars.reshape(size, size), v)
        window = 2 * v + 1

        def look(c):
            return jnp.stack([jax.lax.dynamic_slice(road, (c[0], c[1]), (window, window)),
                              jax.lax.dynamic_slice(count, (c[0], c[1]), (window, window))], axis=-1)

        view = jax.vmap(look)(cell)
        view = view.at[:, v, v, 1].add(-1.0)  # the car itself
        parts = [jnp.eye(n, dtype=jnp.float32), state.last_action[:, None].astype(jnp.float32),
                 jax.nn.one_hot(state.route, self.num_routes, dtype=jnp.float32),
                 jax.nn.one_hot(road_id[cell[:, 0], cell[:, 1]], self.num_road_cells, dtype=jnp.float32),
                 view.reshape(n, -1)]
        return jnp.where(state.active[:, None], jnp.concatenate(parts, axis=-1), 0.0)

    # -- capabilities ------------------------------------------------------------------------------------------
    def neighbours(self, state: TrafficJunctionState, params=None) -> tuple[jax.Array, jax.Array]:
        """(idx int32 [N, N], mask bool [N, N]): row i is i, then the other cars in index order; masked where
        either car is out of the system."""
        n = self.num_cars
        i, k = np.arange(n)[:, None], np.arange(n)[None, :]
        idx = np.where(k == 0, i, np.where(k <= i, k - 1, k)).astype(np.int32)
        idx = jnp.asarray(idx)
        return idx, state.active[:, None] & state.active[idx]

    def global_state(self, state: TrafficJunctionState, params=None) -> jax.Array:
        """float32 [N * obs_dim]: every car's observation."""
        return self.observe(state).reshape(-1)


__all__ = ["TrafficJunction", "TrafficJunctionParams", "TrafficJunctionState", "build_routes", "lanes", "junctions"]
