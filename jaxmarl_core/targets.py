"""Target networks: slow copies of online parameters for temporal-difference targets, as pure functions on
parameter pytrees (built on optax's ``incremental_update`` and ``periodic_update``).

    Polyak averaging (DDPG, MADDPG, TD3; tau = 0.01 or 0.005):   target <- tau * online + (1 - tau) * target
    periodic copy (DQN, QMIX; every K updates):                   target <- online  if step % K == 0  else target

``step`` counts the online network's updates including the current one (1, 2, ...), so the first copy comes after
K updates; the step may be a traced array (inside ``lax.scan``, vmapped over seeds).
"""
from __future__ import annotations

from typing import Any

import jax
import optax


def polyak_update(online: Any, target: Any, tau: float | jax.Array) -> Any:
    """tau * online + (1 - tau) * target, leaf by leaf (tau = 1: a copy; tau = 0: no change)."""
    return optax.incremental_update(online, target, tau)


def periodic_update(online: Any, target: Any, step: int | jax.Array, period: int | jax.Array) -> Any:
    """online where ``step`` is a multiple of ``period``, otherwise target (the whole pytree at once)."""
    return optax.periodic_update(online, target, step, period)
