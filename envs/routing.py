"""DGN's routing (Jiang et al., 2020, "Graph Convolutional Reinforcement Learning", section 5; released code
PKU-RL/DGN, ``Routing/``): data packets (the agents) travel over a fixed network of routers joined by cables of
limited bandwidth; at a router a packet picks the next hop, and it must reach its destination fast without
congesting the cables.

The network (built once per environment instance, from ``graph_seed``, in numpy; ``build_graph``): ``num_routers``
routers (20) at uniformly random points of the unit square; in router order, each router is joined to the routers
nearest to it (squared Euclidean distance, ties to the lower index) that have fewer than ``degree`` (3) cables, until
it has ``degree`` cables itself (the code's rule; a router may end with fewer). A cable between routers at distance
d takes ``floor(floor(10 d) / 2) + 1`` steps to cross (the code's ``Edge.len``) and carries at most ``bandwidth``
(1) of packet size at once.

Packets: ``num_packets`` (20) always in the system; each has a source and a destination router and a size drawn
uniformly from [0, 1). Actions ``0 .. degree``: 0 stays at the router, ``k`` takes the router's k-th cable (in the
order the cables were made). One step treats the packets one after another in index order (the code's
``set_action``; a scan over the packet axis), each seeing the cable loads its predecessors left:

1. a packet on a cable counts one step down; when it reaches 0 the packet is at the far router and the cable's load
   drops by its size; that step is spent (it cannot act);
2. otherwise, a packet taking cable k: if the cable's load plus its size exceeds ``bandwidth``, it stays and gets
   ``congestion_penalty`` (-0.2, "a congested link"); else it enters the cable (``time`` = its length, the load
   grows by its size); it is then counted at the far router;
3. a packet that reaches its destination gets ``delivery_reward`` (10) and leaves; a fresh packet (new source,
   destination and size) takes its index before the step's observation (``info["agent_done"]``: the end of that
   packet's own episode, ``AgentEpisodes``).

So a hop over a cable of length L costs L + 1 steps (L on the cable, then the arrival step), and a packet that meets
no congestion on a path of cables L_1 .. L_m has a delay of sum_k (L_k + 1) steps (its age when delivered, the step
it entered counted as 1). The shortest-path baselines of the paper (``shortest_path_actions``): Floyd's next hop on
the shortest paths with those costs, run with the bandwidth limit ("Floyd with BL": a packet refused by a full cable
waits and tries again) and without it (``bandwidth`` = inf: "Floyd").

Choices where the code is not followed, documented and tested:

- **Delivery on arrival.** The code counts a packet delivered the moment it enters its last cable; here it is
  delivered when it arrives (the paper: a packet takes some time to go through a cable), so the last hop counts.
- **Cables.** The code may join two routers twice (a router joins a nearer one that already chose it); here a pair
  is joined at most once. A graph that is not connected is refused (choose another ``graph_seed``).
- **Packets.** A new packet's destination is drawn among the routers other than its source (the code allows the
  source, and such a packet is delivered on its next step). An action naming a cable the router does not have stays
  (the code fails); ``avail_actions`` offers only 0 and the router's cables at a router, and only 0 on a cable.
- **Episodes.** The code never resets; here an episode lasts ``max_steps`` (300) steps (``FixedHorizon``) and then
  every packet starts afresh.
- **Observation** (the code's content, one-hot codes instead of raw router ids), float32, per packet: its router,
  destination (one-hot, R each), size, on-cable flag, steps left on the cable / 10; then for each of the router's
  ``degree`` cable slots: exists, the far router (one-hot), length / 10, load; then for each of the
  ``num_neighbours - 1`` neighbour slots: present, the neighbour's router and destination (one-hot), size, on-cable
  flag (zeros where empty). With ``path_costs`` (not in the paper or the code; off by default) each cable slot also
  holds the far router's shortest path cost to the packet's destination / 10 (``tables["cost"]``), so a learner
  need not learn the network's distances before it can learn to route around congestion.

Neighbourhoods (``Neighbourhood``, the code's ``neigh``): packet i itself, then the first ``num_neighbours - 1``
(3) other packets in index order whose router (the far end while on a cable) is packet i's router or one joined to
it by a cable; slots left over are masked. ``NeighbourMeanAction``: the mean one-hot action of those neighbours.

``info``: ``delivered`` (packets delivered in the step), ``delay_total`` (the sum of their delays: the mean delay is
``delay_total / delivered`` summed over steps), ``congested`` (refused attempts), float32 scalars; ``agent_done``.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_core.config import require_positive_int
from jaxmarl_core.env import EnvParams, GroupedEnvironment, TimeStep
from jaxmarl_core.spaces import AgentGroup, Box, Discrete


@struct.dataclass
class RoutingParams(EnvParams):
    bandwidth: jax.Array  # largest total packet size on a cable (1; inf: no limit)
    delivery_reward: jax.Array  # 10
    congestion_penalty: jax.Array  # -0.2


@struct.dataclass
class RoutingState:
    """now (router, or the far router while on a cable), target, edge (cable, -1 at a router), time (steps left on
    the cable), age (steps in the system): int32 [P]; size: float32 [P]; t: int32 []."""

    now: jax.Array
    target: jax.Array
    size: jax.Array
    edge: jax.Array
    time: jax.Array
    age: jax.Array
    t: jax.Array


def cable_length(distance: float) -> int:
    """Steps to cross a cable of Euclidean length ``distance`` (the code's ``int(int(10 d) / 2 + 1)``)."""
    return int(10 * distance) // 2 + 1


def build_graph(positions: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """positions [R, 2] -> (router_edge int32 [R, degree]: each router's cables in order, -1 padded;
    ends int32 [E, 2]: a cable's routers, lower first; length int32 [E]) by the module docstring's rule."""
    r = len(positions)
    diff = positions[:, None, :] - positions[None, :, :]
    sq = np.sum(diff * diff, axis=-1)
    mates: list[list[int]] = [[] for _ in range(r)]
    cables: list[list[int]] = [[] for _ in range(r)]
    ends, length = [], []
    for i in range(r):
        for j in sorted(range(r), key=lambda j: (sq[i, j], j)):
            if len(mates[i]) == degree:
                break
            if j == i or j in mates[i] or len(mates[j]) >= degree:
                continue
            mates[i].append(j)
            mates[j].append(i)
            cables[i].append(len(ends))
            cables[j].append(len(ends))
            ends.append((min(i, j), max(i, j)))
            length.append(cable_length(float(np.sqrt(sq[i, j]))))
    router_edge = np.full((r, degree), -1, np.int32)
    for i, c in enumerate(cables):
        router_edge[i, :len(c)] = c
    return router_edge, np.asarray(ends, np.int32).reshape(-1, 2), np.asarray(length, np.int32)


def floyd_warshall(cost: np.ndarray) -> np.ndarray:
    """cost [R, R] (inf where no cable, 0 on the diagonal) -> shortest path costs [R, R]."""
    d = cost.astype(np.float64).copy()
    for k in range(len(d)):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    return d


@dataclasses.dataclass(frozen=True)
class Routing(GroupedEnvironment):
    """``num_packets`` packets on a network of ``num_routers`` routers, ``max_steps`` steps an episode (module
    docstring). ``positions`` (a tuple of (x, y) pairs) places the routers instead of ``graph_seed``."""

    num_routers: int = 20
    num_packets: int = 20
    degree: int = 3
    graph_seed: int = 0
    max_steps: int = 300
    num_neighbours: int = 4
    positions: tuple | None = None
    path_costs: bool = False

    def __post_init__(self):
        for name in ("num_packets", "degree", "max_steps", "num_neighbours"):
            require_positive_int(self, name)
        if self.positions is None:
            require_positive_int(self, "num_routers")
        if self.routers < 2:
            raise ValueError(f"routing: needs at least 2 routers, got {self.routers}")
        if self.num_neighbours > self.num_packets:
            raise ValueError(f"routing: num_neighbours ({self.num_neighbours}) must be at most num_packets "
                             f"({self.num_packets})")
        if not np.all(np.isfinite(self.tables["cost"])):
            where = f"graph_seed={self.graph_seed}" if self.positions is None else "these positions"
            raise ValueError(f"routing: the network of {where} is not connected; choose another graph_seed or degree")

    @property
    def name(self) -> str:
        return "routing"

    @property
    def routers(self) -> int:
        return self.num_routers if self.positions is None else len(self.positions)

    @functools.cached_property
    def tables(self) -> dict[str, np.ndarray]:
        """The network: ``positions`` [R, 2], ``router_edge`` [R, degree], ``ends`` [E, 2], ``length`` [E],
        ``adjacent`` bool [R, R] (joined by a cable, or the same router), ``cost`` [R, R] (Floyd's shortest path
        costs, a hop costing its length + 1) and ``next_action`` int32 [R, R] (the action at router r of a packet
        bound for g on a shortest path: the first cable slot attaining it; 0 for g = r)."""
        if self.positions is None:
            pos = np.random.default_rng(self.graph_seed).random((self.num_routers, 2))
        else:
            pos = np.asarray(self.positions, np.float64).reshape(-1, 2)
        router_edge, ends, length = build_graph(pos, self.degree)
        r = len(pos)
        hop = np.full((r, r), np.inf)
        np.fill_diagonal(hop, 0.0)
        hop[ends[:, 0], ends[:, 1]] = hop[ends[:, 1], ends[:, 0]] = length + 1.0
        cost = floyd_warshall(hop)
        far = np.where(router_edge >= 0, ends[np.maximum(router_edge, 0)].sum(-1) - np.arange(r)[:, None], 0)
        via = np.where((router_edge >= 0)[:, :, None],
                       (length[np.maximum(router_edge, 0)] + 1.0)[:, :, None] + cost[far], np.inf)  # [R, D, R]
        next_action = np.where(np.eye(r, dtype=bool), 0, np.argmin(via, axis=1) + 1).astype(np.int32)
        return {"positions": pos, "router_edge": router_edge, "ends": ends, "length": length, "far": far,
                "adjacent": np.isfinite(hop), "cost": cost, "next_action": next_action}

    @property
    def num_agents(self) -> int:
        return self.num_packets

    @property
    def num_actions(self) -> int:
        return self.degree + 1

    @property
    def num_steps(self) -> int:
        """Every episode lasts ``max_steps`` steps (``FixedHorizon``)."""
        return self.max_steps

    @property
    def agent_episodes(self) -> bool:
        """A packet's own episode ends when it is delivered (``info["agent_done"]``)."""
        return True

    @property
    def obs_dim(self) -> int:
        r = self.routers
        return (2 * r + 3) + self.degree * (r + 3 + self.path_costs) + (self.num_neighbours - 1) * (2 * r + 3)

    @property
    def groups(self) -> tuple[AgentGroup, ...]:
        box = Box(0.0, float(self.num_packets), (self.obs_dim,))
        return (AgentGroup("packets", self.num_packets, box, Discrete(self.num_actions)),)

    @property
    def default_params(self) -> RoutingParams:
        f = jnp.float32
        return RoutingParams(bandwidth=f(1.0), delivery_reward=f(10.0), congestion_penalty=f(-0.2))

    # -- dynamics ----------------------------------------------------------------------------------------------
    def new_packets(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(now, target int32 [P], size float32 [P]): sources uniform, destinations uniform among the others."""
        p, r = self.num_packets, self.routers
        u = jax.random.uniform(key, (3 * p,)).reshape(3, p)  # one flat draw: its kernel compiles fastest
        now = jnp.minimum((u[0] * r).astype(jnp.int32), r - 1)
        target = (now + 1 + jnp.minimum((u[1] * (r - 1)).astype(jnp.int32), r - 2)) % r
        return now, target, u[2]

    def reset_env(self, key, params):
        now, target, size = self.new_packets(key)
        zeros = jnp.zeros((self.num_packets,), jnp.int32)
        state = RoutingState(now=now, target=target, size=size, edge=zeros - 1, time=zeros, age=zeros,
                             t=jnp.zeros((), jnp.int32))
        return self.observe(state), state

    def loads(self, state: RoutingState) -> jax.Array:
        """float32 [E]: the total size of the packets on each cable."""
        on = state.edge >= 0
        return jnp.zeros((len(self.tables["length"]),), jnp.float32).at[jnp.maximum(state.edge, 0)].add(
            jnp.where(on, state.size, 0.0))

    def move(self, state: RoutingState, actions: jax.Array, params: RoutingParams):
        """Steps 1-2 for every packet in index order -> (state, delivered bool [P], congested bool [P])."""
        t = self.tables
        router_edge, far = jnp.asarray(t["router_edge"]), jnp.asarray(t["far"])
        length = jnp.asarray(t["length"])
        slot = jnp.clip(jnp.asarray(actions, jnp.int32) - 1, 0, self.degree - 1)

        def one(load, packet):
            now, target, size, edge, time, action, k = packet
            on = edge >= 0
            arrive = on & (time == 1)
            load = load.at[jnp.maximum(edge, 0)].add(jnp.where(arrive, -size, 0.0))
            cable = router_edge[now, k]
            want = ~on & (action > 0) & (cable >= 0)
            fits = load[jnp.maximum(cable, 0)] + size <= params.bandwidth
            go = want & fits
            load = load.at[jnp.maximum(cable, 0)].add(jnp.where(go, size, 0.0))
            new = (jnp.where(go, far[now, k], now), jnp.where(go, cable, jnp.where(arrive, -1, edge)),
                   jnp.where(go, length[jnp.maximum(cable, 0)], jnp.where(on, time - 1, 0)))
            return load, (*new, arrive & (now == target), want & ~fits)

        packets = (state.now, state.target, state.size, state.edge, state.time, jnp.asarray(actions, jnp.int32), slot)
        _, (now, edge, time, delivered, congested) = jax.lax.scan(one, self.loads(state), packets)
        return state.replace(now=now, edge=edge, time=time, age=state.age + 1), delivered, congested

    def step_env(self, key, state, actions, params):
        """actions int32 [P] -> TimeStep (module docstring); ``info`` as the module docstring says."""
        moved, delivered, congested = self.move(state, actions, params)
        reward = (jnp.where(delivered, params.delivery_reward, 0.0)
                  + jnp.where(congested, params.congestion_penalty, 0.0)).astype(jnp.float32)
        now, target, size = self.new_packets(key)
        new = moved.replace(now=jnp.where(delivered, now, moved.now), target=jnp.where(delivered, target, moved.target),
                            size=jnp.where(delivered, size, moved.size), edge=jnp.where(delivered, -1, moved.edge),
                            time=jnp.where(delivered, 0, moved.time), age=jnp.where(delivered, 0, moved.age),
                            t=state.t + 1)
        info = {"delivered": jnp.sum(delivered).astype(jnp.float32),
                "delay_total": jnp.sum(jnp.where(delivered, moved.age, 0)).astype(jnp.float32),
                "congested": jnp.sum(congested).astype(jnp.float32), "agent_done": delivered}
        return TimeStep(obs=self.observe(new), state=new, reward=reward, terminated=jnp.zeros((), bool),
                        truncated=new.t >= self.max_steps, info=info)

    def observe(self, state: RoutingState) -> jax.Array:
        """float32 [P, obs_dim] (module docstring)."""
        t, r = self.tables, self.routers
        router_edge = jnp.asarray(t["router_edge"])[state.now]  # [P, D]
        exists = router_edge >= 0
        cable = jnp.maximum(router_edge, 0)
        on = (state.edge >= 0).astype(jnp.float32)[:, None]

        def packet(i):
            return [jax.nn.one_hot(state.now[i], r), jax.nn.one_hot(state.target[i], r), state.size[i][..., None],
                    on[i]]

        far = jnp.asarray(t["far"])[state.now]  # [P, D]
        costs = [jnp.asarray(t["cost"], jnp.float32)[far, state.target[:, None]][..., None] / 10.0] * self.path_costs
        cables = jnp.concatenate([exists[..., None].astype(jnp.float32), jax.nn.one_hot(far, r),
                                  jnp.asarray(t["length"])[cable][..., None] / 10.0,
                                  self.loads(state)[cable][..., None], *costs], axis=-1) * exists[..., None]
        idx, mask = self.neighbours(state)
        others = jnp.concatenate([jnp.ones_like(idx[:, 1:, None], jnp.float32), *packet(idx[:, 1:])], axis=-1)
        others = others * mask[:, 1:, None]
        own = jnp.concatenate([*packet(jnp.arange(self.num_packets)), state.time[:, None] / 10.0], axis=-1)
        return jnp.concatenate([own, cables.reshape(self.num_packets, -1), others.reshape(self.num_packets, -1)],
                               axis=-1).astype(jnp.float32)

    # -- capabilities and baselines ----------------------------------------------------------------------------
    def avail_actions(self, state: RoutingState, params=None) -> jax.Array:
        """bool [P, degree + 1]: staying always; at a router, each cable it has."""
        at_router = (state.edge < 0)[:, None]
        cables = (jnp.asarray(self.tables["router_edge"])[state.now] >= 0) & at_router
        return jnp.concatenate([jnp.ones((self.num_packets, 1), bool), cables], axis=-1)

    def neighbours(self, state: RoutingState, params=None) -> tuple[jax.Array, jax.Array]:
        """(idx int32 [P, K], mask bool [P, K]): each packet, then the first K - 1 others (index order) at its
        router or one joined to it; left-over slots hold the packet itself, masked."""
        p, k = self.num_packets, self.num_neighbours
        near = jnp.asarray(self.tables["adjacent"])[state.now[:, None], state.now[None, :]] & ~jnp.eye(p, dtype=bool)
        order = jnp.argsort(~near, axis=1, stable=True)[:, :k - 1].astype(jnp.int32)
        found = jnp.take_along_axis(near, order, axis=1)
        own = jnp.arange(p, dtype=jnp.int32)[:, None]
        idx = jnp.concatenate([own, jnp.where(found, order, own)], axis=1)
        return idx, jnp.concatenate([jnp.ones((p, 1), bool), found], axis=1)

    def neighbour_mean_action(self, state: RoutingState, actions: jax.Array, params=None) -> jax.Array:
        """float32 [P, degree + 1]: the mean one-hot action of each packet's neighbours (itself excluded), zeros
        where it has none."""
        idx, mask = self.neighbours(state)
        hot = jax.nn.one_hot(jnp.asarray(actions, jnp.int32)[idx[:, 1:]], self.num_actions) * mask[:, 1:, None]
        return jnp.sum(hot, axis=1) / jnp.maximum(jnp.sum(mask[:, 1:], axis=1), 1)[:, None]

    def global_state(self, state: RoutingState, params=None) -> jax.Array:
        """float32 [P * obs_dim]: every packet's observation."""
        return self.observe(state).reshape(-1)

    def shortest_path_actions(self, state: RoutingState) -> jax.Array:
        """int32 [P]: Floyd's next hop towards each packet's destination (0 on a cable)."""
        action = jnp.asarray(self.tables["next_action"])[state.now, state.target]
        return jnp.where(state.edge >= 0, 0, action)


__all__ = ["Routing", "RoutingParams", "RoutingState", "build_graph", "cable_length", "floyd_warshall"]
