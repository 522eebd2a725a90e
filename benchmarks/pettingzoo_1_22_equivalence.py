"""Our MPE with ``integration="pettingzoo_1_22"`` against PettingZoo 1.22's own MPE, step by step.

HARL's published MPE curves ran PettingZoo 1.22.2, whose MPE differs from mpe2 (the reference of our default
suite, ``tests/envs/test_mpe.py``) in three ways: it moved entities by their updated velocity (our
``integration="pettingzoo_1_22"``), its continuous actions push along +x with ``a[1] - a[2]`` (mpe2: ``a[2] - a[1]``,
a mirror image; this script swaps the two entries for PettingZoo) and, in spread, every agent "collides" with itself,
a constant -1 in its local reward (-0.5 per agent and step with local_ratio 0.5). This script checks that nothing else
differs on HARL's tasks (spread, reference, speaker-listener; discrete and continuous). As in the mpe2 test, the
reference env is reset with a seed, its world sometimes packed (positions x 0.25, so agents collide) or spread out,
copied into our state, and both are stepped with the same random actions for whole episodes; our state is carried
forward. Observations, rewards (after the constant), positions, velocities and messages must agree to 1e-4.

PettingZoo 1.22 cannot be installed beside mpe2's PettingZoo; unpack its wheel and point ``--pettingzoo-src`` at it
(the folder that holds ``pettingzoo/``; 1.22.3's MPE is 1.22.2's):

    pip download pettingzoo==1.22.3 --no-deps -d /tmp/pz && unzip -q /tmp/pz/*.whl -d /tmp/pz/src
    python benchmarks/pettingzoo_1_22_equivalence.py --pettingzoo-src /tmp/pz/src --json \\
        --out benchmarks/results/cpu/pettingzoo_1_22_equivalence.json
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from benchmarks.common import dump, machine_info  # noqa: E402
from envs.mpe import MPEState  # noqa: E402

ATOL = 1e-4
SCALES = (1.0, 0.25, 1.6, 1.0, 0.25, 3.0)  # one episode per entry: as reset, packed, spread out, far out


def _goal_b_each(world):
    return [world.landmarks.index(a.goal_b) for a in world.agents]


def _goal_b_speaker(world):
    return [world.landmarks.index(world.agents[0].goal_b)]


# our task -> (PettingZoo 1.22 module, its kwargs, goal reader, constant reward difference theirs - ours per agent)
TASKS = {
    "mpe_spread": ("pettingzoo.mpe.simple_spread_v2", {"N": 3}, None, -0.5),
    "mpe_reference": ("pettingzoo.mpe.simple_reference_v2", {}, _goal_b_each, 0.0),
    "mpe_speaker_listener": ("pettingzoo.mpe.simple_speaker_listener_v3", {}, _goal_b_speaker, 0.0),
}


def check(task: str, continuous: bool, episodes: int, seed: int) -> dict:
    """Episodes of one task and action mode -> the largest differences seen."""
    module_name, kwargs, goal_reader, offset = TASKS[task]
    env = envs.make(task, continuous=continuous, integration="pettingzoo_1_22")
    params = env.default_params
    step = jax.jit(lambda s, a: env.step_env(jax.random.PRNGKey(0), s, a, params))
    ref = importlib.import_module(module_name).parallel_env(continuous_actions=continuous,
                                                             max_cycles=env.max_cycles, **kwargs)
    world = ref.unwrapped.world
    agents = ref.possible_agents
    rng = np.random.default_rng(seed)
    worst = {"obs": 0.0, "reward": 0.0, "position": 0.0, "velocity": 0.0, "message": 0.0}
    collisions = 0
    for episode in range(episodes):
        ref.reset(seed=1000 * episode + seed)
        for entity in world.agents + world.landmarks:
            entity.state.p_pos = entity.state.p_pos * SCALES[episode % len(SCALES)]
        entities = world.agents + world.landmarks
        state = MPEState(p_pos=np.stack([e.state.p_pos for e in entities]).astype(np.float32),
                         p_vel=np.stack([e.state.p_vel for e in entities]).astype(np.float32),
                         c=np.stack([np.asarray(a.state.c, np.float32) for a in world.agents])
                         if env.layout.dim_c else None,
                         goal=np.asarray(goal_reader(world), np.int32) if goal_reader else None, t=np.int32(0))
        for _ in range(env.max_cycles):
            if continuous:
                ours = rng.uniform(0.0, 1.0, (env.num_agents, env.num_actions)).astype(np.float32)
                theirs = [ours[i, :d].copy() for i, d in enumerate(env.action_dims)]
                for i, a in enumerate(theirs):
                    if len(a) > 2 and world.agents[i].movable:  # PettingZoo 1.22 pushes +x with a[1], +y with a[3]
                        a[[1, 2, 3, 4]] = a[[2, 1, 4, 3]]
            else:
                ours = np.array([rng.integers(n) for n in env.action_dims], np.int32)
                theirs = [int(x) for x in ours]
            obs, rew, _, _, _ = ref.step(dict(zip(agents, theirs)))
            ts = step(state, ours)
            ours_obs = np.asarray(ts.obs)
            worst["obs"] = max(worst["obs"], max(float(np.abs(ours_obs[i, :len(obs[a])] - obs[a]).max())
                                                 for i, a in enumerate(agents)))
            worst["reward"] = max(worst["reward"], float(np.abs(np.asarray(ts.reward) + offset
                                                                - [rew[a] for a in agents]).max()))
            worst["position"] = max(worst["position"], float(np.abs(np.asarray(ts.state.p_pos) - np.stack(
                [e.state.p_pos for e in entities])).max()))
            worst["velocity"] = max(worst["velocity"], float(np.abs(np.asarray(ts.state.p_vel) - np.stack(
                [e.state.p_vel for e in entities])).max()))
            if env.layout.dim_c:
                worst["message"] = max(worst["message"], float(np.abs(np.asarray(ts.state.c) - np.stack(
                    [a.state.c for a in world.agents])).max()))
            collisions += sum(bool(ref.unwrapped.scenario.is_collision(a, b)) for i, a in enumerate(world.agents)
                              for b in world.agents[i + 1:]) if task == "mpe_spread" else 0
            state = ts.state
    return {"task": task, "continuous": continuous, "episodes": episodes, "steps": episodes * env.max_cycles,
            "reward_offset": offset, "max_abs_diff": worst, "agent_collisions": collisions,
            "match": all(v <= ATOL for v in worst.values())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pettingzoo-src", required=True, help="a folder holding PettingZoo 1.22's pettingzoo/ package")
    p.add_argument("--episodes", type=int, default=6, help="episodes per task and action mode (default 6)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the JSON document on stdout")
    p.add_argument("--out", default=None, help="write the JSON document here")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be positive")
    if not os.path.isdir(os.path.join(args.pettingzoo_src, "pettingzoo")):
        p.error(f"--pettingzoo-src {args.pettingzoo_src}: no pettingzoo/ package there")
    sys.path.insert(0, os.path.abspath(args.pettingzoo_src))
    import pettingzoo
    if not pettingzoo.__version__.startswith("1.22."):
        p.error(f"--pettingzoo-src: PettingZoo 1.22 is needed, found {pettingzoo.__version__}")
    rows = [check(task, continuous, args.episodes, args.seed) for task in TASKS for continuous in (False, True)]
    for r in rows:
        print(f"{r['task']} {'continuous' if r['continuous'] else 'discrete'}: "
              f"{'match' if r['match'] else 'DIFFER'} {r['max_abs_diff']}", file=sys.stderr)
    doc = {"benchmark": "pettingzoo_1_22_equivalence", "pettingzoo_version": pettingzoo.__version__,
           **machine_info(), "atol": ATOL, "results": rows}
    if args.out:
        dump(doc, args.out)
    if args.json:
        print(json.dumps(doc, indent=1))
    return 0 if all(r["match"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
