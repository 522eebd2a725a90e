"""Rewards and measures of mixed-motive games: the collective reward, social value orientation (SVO) reward shaping,
and the Gini-based equality of the AgA paper (Li et al., 2024).

    collective:  r_i' = sum_j r_j                                               (Simul-Co: every agent the team's sum)
    svo:         r_i' = r_i - w |theta_svo - theta_i|,  theta_i = atan2(mean_{j != i} r_j, r_i)
                                                        (McKee et al., 2020: the reward angle of agent i; atan2
                                                        equals atan(mean_{j != i} r_j / r_i) where r_i > 0, and
                                                        theta_i = theta_svo, no penalty, where every reward is 0)
    gini:        G = sum_i sum_j |x_i - x_j| / (2 N sum_i x_i)                   (0 if sum_i x_i = 0)
    equality:    E = 1 - G

Rewards are arrays [..., N] with the agents on the last axis.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def collective_reward(reward: jax.Array) -> jax.Array:
    """[..., N] -> [..., N]: every agent's reward replaced by the sum of all agents'."""
    return jnp.broadcast_to(reward.sum(-1, keepdims=True), reward.shape)


def others_mean(x: jax.Array) -> jax.Array:
    """[..., N] -> [..., N]: the mean over the other N - 1 agents."""
    n = x.shape[-1]
    return (x.sum(-1, keepdims=True) - x) / (n - 1)


def reward_angle(reward: jax.Array) -> jax.Array:
    """[..., N] -> [..., N] radians: atan2(mean of the others' rewards, own reward); NaN where both are 0."""
    others = others_mean(reward)
    both_zero = (reward == 0) & (others == 0)
    return jnp.where(both_zero, jnp.nan, jnp.arctan2(others, reward))


def svo_reward(reward: jax.Array, angle: float, weight: float) -> jax.Array:
    """[..., N] -> [..., N]: r_i - weight |angle - theta_i| with theta_i the reward angle (radians), the penalty 0
    where every reward is 0 (the angle is undefined)."""
    theta = reward_angle(reward)
    penalty = jnp.where(jnp.isnan(theta), 0.0, jnp.abs(angle - jnp.nan_to_num(theta)))
    return reward - weight * penalty


def gini(x: jax.Array) -> jax.Array:
    """[..., N] non-negative -> [...]: the Gini coefficient, 0 where the total is 0."""
    n = x.shape[-1]
    total = x.sum(-1)
    diffs = jnp.abs(x[..., :, None] - x[..., None, :]).sum((-2, -1))
    return jnp.where(total > 0, diffs / (2 * n * jnp.where(total > 0, total, 1.0)), 0.0)


def equality(x: jax.Array) -> jax.Array:
    """[..., N] -> [...]: 1 - Gini (the AgA paper's equality)."""
    return 1.0 - gini(x)
