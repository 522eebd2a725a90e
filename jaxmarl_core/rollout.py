"""A scanned rollout: ``num_steps`` environment steps under ``lax.scan``, returning a time-major trajectory.

The policy may be recurrent: it maps ``(key, obs [N, ...], policy_state) -> (actions, extras, policy_state)`` and
its state returns to the policy's initial state (``RolloutCarry.initial_policy_state``, set by ``reset_carry``)
whenever an episode ends, also in rollouts that continue a carry across updates (feed-forward policies pass
``None``). With ``batched=True`` the carry holds a batch of B environments (``reset_carry(..., batch_size=B)``), the
environments step under ``vmap`` inside one scan, and the policy acts on the whole batch at once (one key per step
for all B environments: far fewer random-number calls than a ``vmap`` of unbatched rollouts). Observations may be
arrays or pytrees of arrays (e.g. ``jaxmarl_core.learner_view.LearnerObs``), each leaf with the leading axes above.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core.capabilities import AgentEpisodes, has
from jaxmarl_core.env import Environment, EnvParams
from jaxmarl_core.returns import expand_flags


@struct.dataclass
class Transition:
    """One step of experience; a trajectory stacks these on a leading [T] axis.

    obs: [N, ...] the observation acted on (or a pytree of such leaves); action: [N] or [N, A]; reward: [N];
    terminated, truncated: []; next_obs: [N, ...] the observation the step reached (``info["final_obs"]``, before
    any reset); extras: whatever the policy returned beside its actions (log-probabilities, values, ...); info: the
    step's other ``info`` entries.
    """

    obs: Any
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: Any
    extras: Any
    info: dict


@struct.dataclass
class RolloutCarry:
    """Where a rollout resumes: observations, environment state, the policy's current state and the state it
    restarts from at each new episode."""

    obs: Any
    state: Any
    policy_state: Any = None
    initial_policy_state: Any = None


Policy = Callable[[jax.Array, Any, Any], tuple[jax.Array, Any, Any]]


def rollout(key: jax.Array, env: Environment, params: EnvParams, policy: Policy, carry: RolloutCarry,
            num_steps: int, batched: bool = False, policy_noise: Any = None) -> tuple[RolloutCarry, Transition]:
    """Run ``policy`` for ``num_steps`` steps from ``carry``; returns the final carry and a [T]-stacked Transition
    ([T, B]-stacked when ``batched``). ``policy_noise``: optional pre-drawn randomness ([T, ...] leaves), whose
    step-t slice the policy receives in place of its key (one large draw costs several times less on CPU than T
    small ones)."""
    shared_key = batched and env.deterministic  # the key is unused: don't draw one per environment
    env_step = jax.vmap(env.step, in_axes=(None if shared_key else 0, 0, 0, None)) if batched else env.step

    def step(c: RolloutCarry, xs):
        k_act, k_env = jax.random.split(xs[0])
        action, extras, policy_state = policy(k_act if policy_noise is None else xs[1], c.obs, c.policy_state)
        batch = jax.tree.leaves(c.obs)[0].shape[0]
        env_keys = jax.random.split(k_env, batch) if batched and not shared_key else k_env
        ts = env_step(env_keys, c.state, action, params)
        info = {name: value for name, value in ts.info.items() if name != "final_obs"}
        tr = Transition(obs=c.obs, action=action, reward=ts.reward, terminated=ts.terminated,
                        truncated=ts.truncated, next_obs=ts.info["final_obs"], extras=extras, info=info)
        policy_state = jax.tree.map(lambda init, new: jnp.where(expand_flags(ts.done, new), init, new),
                                    c.initial_policy_state, policy_state)
        return c.replace(obs=ts.obs, state=ts.state, policy_state=policy_state), tr

    return jax.lax.scan(step, carry, (jax.random.split(key, num_steps), policy_noise))


def reset_carry(key: jax.Array, env: Environment, params: EnvParams, policy_state: Any = None,
                batch_size: int | None = None) -> RolloutCarry:
    """A fresh episode (or, with ``batch_size``, B fresh episodes: obs [B, N, ...]) and the policy's initial state
    (batched like the episodes), which the rollout restores at every episode end."""
    if batch_size is None:
        obs, state = env.reset(key, params)
    else:
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, batch_size), params)
    return RolloutCarry(obs=obs, state=state, policy_state=policy_state, initial_policy_state=policy_state)



def episode_outcomes(traj: Transition) -> dict[str, jax.Array]:
    """Metrics of how a trajectory's episodes ended, from the outcome flags its environment puts in ``info``:
    ``win_rate`` (episodes won / episodes ended, NaN where none ended) where ``info["won"]`` (bool, true on the step
    an episode ends in a win: JaxMARL's SMAX) is present; {} otherwise."""
    if "won" not in traj.info:
        return {}
    done = jnp.logical_or(traj.terminated, traj.truncated)
    ended = jnp.sum(done)
    won = jnp.sum(jnp.logical_and(traj.info["won"], done))
    return {"win_rate": jnp.where(ended > 0, won / jnp.maximum(ended, 1), jnp.nan)}


def agents_terminated(env: Environment, ts) -> jax.Array:
    """bool [..., N]: where each agent's own value must not be bootstrapped after this step: the episode terminated
    (``ts.terminated`` [...]), or, for an environment with ``AgentEpisodes``, the agent's own episode ended
    (``info["agent_done"]`` [..., N]: a delivered packet, an arrived car; its index carries a new agent next)."""
    ended = jnp.broadcast_to(ts.terminated[..., None], ts.reward.shape)
    return ended | ts.info["agent_done"] if has(env, AgentEpisodes) else ended


def step_means(traj: Transition, names: tuple[str, ...]) -> dict[str, jax.Array]:
    """The means over steps and environments of the ``info`` entries ``names`` of a batched trajectory (leaves
    [T, B, ...]) -> {name: float32 [] or [N]} (an environment's ``StepMetrics``)."""
    return {name: jnp.mean(traj.info[name].astype(jnp.float32), axis=(0, 1)) for name in names}
