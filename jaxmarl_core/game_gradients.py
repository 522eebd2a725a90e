"""Game-gradient directions: transformations of the simultaneous gradient of a differentiable game.

A game is a value function ``value_fn: theta [N, P] -> [N]`` (agent i maximises V_i and controls theta_i). A
``Direction`` maps theta [N, P] to an ascent direction [N, P], one row per agent; an optimiser is applied after it
(``theta + lr * d`` or an optax transformation of ``-d``), so directions compose the way optax composes gradient
transformations: corrections are directions too, combined with ``add`` and ``scale``.

    naive:                 d_i = grad_i V_i                                            (the simultaneous gradient)
    lookahead_correction:  c_i = sum_{j != i} (grad_i grad_j V_i) grad_j V_j           (the opponents' step)
    shaping_correction:    c_i = sum_{j != i} (grad_j V_i)^T grad_i grad_j V_j          (LOLA's shaping term)
    lookahead(eta):        naive + eta * lookahead_correction                            (Zhang & Lesser, 2010)
    lola(eta):             naive + eta * shaping_correction                              (Foerster et al., 2018)
    lola(eta, taylor=False): grad_i V_i(theta_i, theta_-i + eta grad_-i V_-i), the look-ahead value differentiated
                           through the opponents' naive step: naive + eta * (both corrections) + O(eta^2)

Further adjusters (SGA, CGA, SOS, ...) are more directions of the same type, built from ``hessian_vector`` (H v,
H the Jacobian of the simultaneous gradient), ``hessian_t_vector`` (H^T v) and ``mixed_hvp`` (one block of one
player's Hessian). Every second-order term is a Hessian-vector product (forward-mode ``jax.jvp`` or reverse-mode
``jax.vjp`` of a reverse-mode gradient), never a full Hessian; where a product is taken along gradients (the LOLA
and look-ahead corrections), those are held constant (stopped).
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

ValueFn = Callable[[jax.Array], jax.Array]  # theta [N, P] -> values [N]
Direction = Callable[[jax.Array], jax.Array]  # theta [N, P] -> ascent direction [N, P]


def jacobian(value_fn: ValueFn, theta: jax.Array) -> jax.Array:
    """[N, N, P]: jac[i, j] = grad_j V_i (reverse mode, one pass per agent's value)."""
    return jax.jacrev(value_fn)(theta)


def mixed_hvp(value_fn: ValueFn, theta: jax.Array, i: int, j: int, k: int, v: jax.Array) -> jax.Array:
    """[P]: (grad_i grad_j V_k) v, how agent i's gradient of V_k moves when theta_j moves along v [P] (j != i):
    the jvp in theta_j of grad_i V_k, the other agents held fixed."""

    def grad_i(theta_j):
        return jax.grad(lambda theta_i: value_fn(theta.at[i].set(theta_i).at[j].set(theta_j))[k])(theta[i])

    return jax.jvp(grad_i, (theta[j],), (v,))[1]


def naive(value_fn: ValueFn) -> Direction:
    """Each agent's own gradient, grad_i V_i (the simultaneous gradient)."""

    def direction(theta):
        diag = jnp.arange(theta.shape[0])
        return jacobian(value_fn, theta)[diag, diag]

    return direction


def hessian_vector(value_fn: ValueFn, theta: jax.Array, v: jax.Array) -> jax.Array:
    """[N, P]: H v, with H = d xi / d theta the game Hessian (Balduzzi et al., 2018) of the simultaneous gradient
    xi = ``naive(value_fn)``, v [N, P] (forward mode over the reverse-mode xi)."""
    return jax.jvp(naive(value_fn), (theta,), (v,))[1]


def hessian_t_vector(value_fn: ValueFn, theta: jax.Array, v: jax.Array) -> jax.Array:
    """[N, P]: H^T v (reverse mode over xi), for the antisymmetric part (H - H^T) v / 2 and consensus terms."""
    return jax.vjp(naive(value_fn), theta)[1](v)[0]


def _cross_terms(value_fn: ValueFn, theta: jax.Array, shaping: bool) -> jax.Array:
    """[N, P]: sum_{j != i} of the mixed HVPs of the LOLA shaping term (shaping) or of the look-ahead term."""
    n = theta.shape[0]
    jac = jax.lax.stop_gradient(jacobian(value_fn, theta))

    def term(i, j):
        if shaping:  # grad_i (sg(grad_j V_i) . grad_j V_j)
            return mixed_hvp(value_fn, theta, i, j, j, jac[i, j])
        return mixed_hvp(value_fn, theta, i, j, i, jac[j, j])  # grad_i (grad_j V_i . sg(grad_j V_j))

    return jnp.stack([sum(term(i, j) for j in range(n) if j != i) for i in range(n)])


def shaping_correction(value_fn: ValueFn) -> Direction:
    """LOLA's term: sum_{j != i} (grad_j V_i)^T grad_i grad_j V_j, how i's step changes j's naive step to i's gain."""
    return lambda theta: _cross_terms(value_fn, theta, shaping=True)


def lookahead_correction(value_fn: ValueFn) -> Direction:
    """The look-ahead term: sum_{j != i} (grad_i grad_j V_i) grad_j V_j, i's gradient at the opponents' next step."""
    return lambda theta: _cross_terms(value_fn, theta, shaping=False)


def add(*directions: Direction) -> Direction:
    """The sum of directions, in the order given."""

    def direction(theta):
        total = directions[0](theta)
        for d in directions[1:]:
            total = total + d(theta)
        return total

    return direction


def scale(factor: float, direction: Direction) -> Direction:
    """factor times a direction."""
    return lambda theta: factor * direction(theta)


def lookahead(value_fn: ValueFn, lookahead_lr: float) -> Direction:
    """LookAhead: naive + eta * lookahead_correction."""
    return add(naive(value_fn), scale(lookahead_lr, lookahead_correction(value_fn)))


def lola_row(value_fn: ValueFn, lookahead_lr: float, i: int) -> Callable[[jax.Array], jax.Array]:
    """Agent i's row [P] of ``lola(value_fn, lookahead_lr)`` alone: theta [N, P] -> grad_i V_i + eta * sum_{j != i}
    (grad_j V_i)^T grad_i grad_j V_j, from one gradient of V_i and one mixed HVP per opponent (for agents that
    each see their own theta, e.g. with opponent models)."""

    def row(theta):
        grads = jax.lax.stop_gradient(jax.grad(lambda th: value_fn(th)[i])(theta))  # [N, P]: grad_j V_i
        shaping = sum(mixed_hvp(value_fn, theta, i, j, j, grads[j]) for j in range(theta.shape[0]) if j != i)
        return grads[i] + lookahead_lr * shaping

    return row


def lola(value_fn: ValueFn, lookahead_lr: float, taylor: bool = True) -> Direction:
    """LOLA: naive + eta * shaping_correction (``taylor``), or the gradient of the exact look-ahead value."""
    if taylor:
        return add(naive(value_fn), scale(lookahead_lr, shaping_correction(value_fn)))

    own = naive(value_fn)

    def direction(theta):
        diag = jnp.arange(theta.shape[0])

        def lookahead_value(th, i):  # V_i after every other agent takes its naive step
            others = (diag != i).astype(th.dtype)[:, None]
            return value_fn(th + lookahead_lr * others * own(th))[i]

        return jax.vmap(lambda i: jax.grad(lookahead_value)(theta, i)[i])(diag)

    return direction
