"""Trust-region policy steps, all jittable: conjugate gradient on Fisher-vector products and a backtracking line
search (HARL's ``trpo_util``: damping 0.1 added to the Fisher matrix, step scaled to the KL threshold, a step is
accepted when its KL is below the threshold and it improves the surrogate by at least ``accept_ratio`` of the
linear prediction). Parameters are flat vectors (``jax.flatten_util.ravel_pytree``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


def fisher_vector_product(kl_fn: Callable[[jax.Array], jax.Array], theta: jax.Array,
                          damping: float = 0.1) -> Callable[[jax.Array], jax.Array]:
    """v [P] -> (F + damping I) v, F the Hessian at ``theta`` [P] of ``kl_fn`` (the mean KL from the policy held
    fixed at ``theta`` to the one at its argument): forward over reverse, the gradient at ``theta`` linearised once
    (``jax.linearize``), so each product is the tangent pass alone."""
    hvp = jax.linearize(jax.grad(kl_fn), theta)[1]
    return lambda v: hvp(v) + damping * v


def gauss_newton_fisher_product(forward_fn: Callable[[jax.Array], Any], kl_of_outputs_fn: Callable[[Any], jax.Array],
                                theta: jax.Array, damping: float = 0.1) -> Callable[[jax.Array], jax.Array]:
    """The same product as ``fisher_vector_product`` through the policy's outputs: v [P] -> (J^T H J + damping I) v,
    J the Jacobian of ``forward_fn`` (theta -> the distribution's parameters, any pytree) at ``theta`` and H the
    Hessian of ``kl_of_outputs_fn`` (outputs -> the mean KL from the outputs at ``theta`` held fixed) at those outputs.

    With z the outputs, d^2 KL / d theta^2 = J^T H J + sum_z (dKL/dz) d^2 z / d theta^2, and dKL/dz = 0 where the two
    policies coincide, so at ``theta`` the two are the same matrix. Each product is one tangent pass of the network
    (J v), one of the KL in the outputs (H u) and one transposed pass (J^T w): no second derivative of the network."""
    outputs, jvp = jax.linearize(forward_fn, theta)
    vjp = jax.linear_transpose(jvp, theta)
    hessian_outputs = jax.linearize(jax.grad(kl_of_outputs_fn), outputs)[1]
    return lambda v: vjp(hessian_outputs(jvp(v)))[0] + damping * v


def conjugate_gradient(matvec: Callable[[jax.Array], jax.Array], b: jax.Array, iters: int = 10,
                       residual_tol: float = 1e-10) -> jax.Array:
    """Approximate solution x [P] of A x = b for a symmetric positive-definite A given by ``matvec``; stops (keeps
    x) once the squared residual falls below ``residual_tol``."""

    def body(_, carry):
        x, r, p, rr = carry
        active = rr >= residual_tol
        ap = matvec(p)
        alpha = jnp.where(active, rr / jnp.maximum(jnp.dot(p, ap), 1e-30), 0.0)
        x = x + alpha * p
        r_new = r - alpha * ap
        rr_new = jnp.dot(r_new, r_new)
        p_new = r_new + (rr_new / jnp.maximum(rr, 1e-30)) * p
        return (x, jnp.where(active, r_new, r), jnp.where(active, p_new, p), jnp.where(active, rr_new, rr))

    init = (jnp.zeros_like(b), b, b, jnp.dot(b, b))
    return jax.lax.fori_loop(0, iters, body, init)[0]


@struct.dataclass
class LineSearchResult:
    theta: jax.Array  # [P] the accepted parameters (the old ones if no step was accepted)
    accepted: jax.Array  # bool: a step was accepted
    fraction: jax.Array  # the accepted fraction of the full step (0 if none)
    kl: jax.Array  # KL of the accepted step (of the last one tried if none was accepted)
    improve: jax.Array  # surrogate improvement of the accepted step (of the last one tried if none)


def line_search(surrogate_fn: Callable[[jax.Array], jax.Array],
                surrogate_and_kl_fn: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
                theta: jax.Array, full_step: jax.Array, expected_improve: jax.Array, kl_threshold: float,
                accept_ratio: float = 0.5, backtrack_coef: float = 0.8, steps: int = 10) -> LineSearchResult:
    """Try theta + backtrack_coef^k full_step for k = 0 .. steps-1 (all evaluated at once) and take the first with
    KL < kl_threshold, improvement > 0 and improvement / (backtrack_coef^k expected_improve) > accept_ratio.

    surrogate_fn: theta -> the surrogate to maximise (at theta itself); surrogate_and_kl_fn: theta -> (the
    surrogate, mean KL from the old policy), both from one forward (each candidate's).
    """
    fractions = backtrack_coef ** jnp.arange(steps, dtype=theta.dtype)
    candidates = theta[None, :] + fractions[:, None] * full_step[None, :]
    base = surrogate_fn(theta)
    surrogates, kl = jax.vmap(surrogate_and_kl_fn)(candidates)
    improve = surrogates - base
    expected = fractions * expected_improve
    ok = (kl < kl_threshold) & (improve > 0) & (improve / jnp.where(expected == 0, 1.0, expected) > accept_ratio)
    ok = ok & (expected != 0)
    first = jnp.argmax(ok)
    accepted = jnp.any(ok)
    pick = jnp.where(accepted, first, steps - 1)
    return LineSearchResult(theta=jnp.where(accepted, candidates[first], theta), accepted=accepted,
                            fraction=jnp.where(accepted, fractions[first], 0.0), kl=kl[pick], improve=improve[pick])


def natural_step(loss_grad: jax.Array, fvp: Callable[[jax.Array], jax.Array], kl_threshold: float,
                 cg_iters: int = 10) -> tuple[jax.Array, jax.Array]:
    """The full TRPO step x * sqrt(2 kl_threshold / x^T F x) with x = F^-1 g by conjugate gradient, and the
    surrogate improvement it predicts to first order (g . step) -> ([P], [])."""
    x = conjugate_gradient(fvp, loss_grad, cg_iters)
    shs = 0.5 * jnp.dot(x, fvp(x))
    scale = jnp.where(shs > 0, jnp.sqrt(kl_threshold / jnp.maximum(shs, 1e-30)), 0.0)
    step = scale * x
    return step, jnp.dot(loss_grad, step)
