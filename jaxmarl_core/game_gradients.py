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

The game-gradient adjusters below follow their papers, which write games as losses l_i = -V_i to minimise: on
losses xi is the simultaneous gradient (grad_i l_i), H = d xi / d theta, A = (H - H^T) / 2 its antisymmetric part,
grad Ham = H^T xi the gradient of the Hamiltonian Ham = |xi|^2 / 2, l_c = sum_i l_i the collective loss with
gradient xi_c and (symmetric) Hessian H_c. Each computes its paper's descent direction on the losses and returns it
negated (an ascent direction on the values):

    collective:   xi_c                                                                 (Simul-Co)
    consensus:    xi + gamma H^T xi                                 (CGA: Mescheder et al., 2017)
    sga:          xi + lam A^T xi, lam = sign(<xi, grad Ham> <A^T xi, grad Ham> / d + eps)
                                                                    (SGA with alignment: Balduzzi et al., 2018)
    lola_lookahead: (I - alpha H_o) xi - alpha chi, chi_i = sum_{j != i} (grad_j l_i)^T grad_i grad_j l_j
                                                                    (LOLA as the SOS paper writes it, Letcher et
                                                                    al., 2019: the look-ahead term kept)
    sos:          xi_0 - p alpha chi with xi_0 = (I - alpha H_o) xi, p = min(p_1, p_2),
                  p_1 = 1 if <-alpha chi, xi_0> >= 0 else min(1, -a |xi_0|^2 / <-alpha chi, xi_0>),
                  p_2 = |xi|^2 if |xi| < b else 1                   (Letcher et al., 2019)
    aga:          xi_c + lam (xi + H_c^T xi_c),
                  lam = |lam| sign(<xi_c, grad Ham_c> (<xi, grad Ham_c> + |grad Ham_c|^2)), grad Ham_c = H_c^T xi_c
                                                                    (Li et al., 2024, AgA)

(H_o xi)_i = sum_{j != i} (grad_i grad_j l_i) grad_j l_j is the look-ahead correction of the losses, which equals the
values' one; so do chi and every H^T xi, H xi, H_c^T xi_c (two sign flips). They are built from ``hessian_vector``
(H v, H the Jacobian of the simultaneous gradient), ``hessian_t_vector`` (H^T v), ``collective_hvp`` (H_c v) and
``mixed_hvp`` (one block of one player's Hessian). Every second-order term is a Hessian-vector product (forward-mode
``jax.jvp`` or reverse-mode ``jax.vjp`` of a reverse-mode gradient), never a full Hessian; where a product is taken
along gradients (the LOLA and look-ahead corrections), those are held constant (stopped).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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


def _own(jac: jax.Array) -> jax.Array:
    """[N, P]: the diagonal grad_i V_i of a Jacobian jac [N, N, P]."""
    diag = jnp.arange(jac.shape[0])
    return jac[diag, diag]


def naive(value_fn: ValueFn) -> Direction:
    """Each agent's own gradient, grad_i V_i (the simultaneous gradient)."""
    return lambda theta: _own(jacobian(value_fn, theta))


def hessian_vector(value_fn: ValueFn, theta: jax.Array, v: jax.Array) -> jax.Array:
    """[N, P]: H v, with H = d xi / d theta the game Hessian (Balduzzi et al., 2018) of the simultaneous gradient
    xi = ``naive(value_fn)``, v [N, P] (forward mode over the reverse-mode xi)."""
    return jax.jvp(naive(value_fn), (theta,), (v,))[1]


def hessian_t_vector(value_fn: ValueFn, theta: jax.Array, v: jax.Array) -> jax.Array:
    """[N, P]: H^T v (reverse mode over xi), for the antisymmetric part (H - H^T) v / 2 and consensus terms."""
    return jax.vjp(naive(value_fn), theta)[1](v)[0]


def _cross_terms(value_fn: ValueFn, theta: jax.Array, jac: jax.Array, shaping: bool) -> jax.Array:
    """[N, P]: sum_{j != i} of the mixed HVPs of the LOLA shaping term (shaping) or of the look-ahead term, along
    the rows of jac [N, N, P] = ``jacobian(value_fn, theta)`` (held constant)."""
    n = theta.shape[0]
    jac = jax.lax.stop_gradient(jac)

    def term(i, j):
        if shaping:  # grad_i (sg(grad_j V_i) . grad_j V_j)
            return mixed_hvp(value_fn, theta, i, j, j, jac[i, j])
        return mixed_hvp(value_fn, theta, i, j, i, jac[j, j])  # grad_i (grad_j V_i . sg(grad_j V_j))

    return jnp.stack([sum(term(i, j) for j in range(n) if j != i) for i in range(n)])


def shaping_correction(value_fn: ValueFn) -> Direction:
    """LOLA's term: sum_{j != i} (grad_j V_i)^T grad_i grad_j V_j, how i's step changes j's naive step to i's gain."""
    return lambda theta: _cross_terms(value_fn, theta, jacobian(value_fn, theta), shaping=True)


def lookahead_correction(value_fn: ValueFn) -> Direction:
    """The look-ahead term: sum_{j != i} (grad_i grad_j V_i) grad_j V_j, i's gradient at the opponents' next step."""
    return lambda theta: _cross_terms(value_fn, theta, jacobian(value_fn, theta), shaping=False)


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


def _corrected(value_fn: ValueFn, lookahead_lr: float, shaping: bool) -> Direction:
    """naive + eta * (shaping or look-ahead) correction, both from one Jacobian of the values."""

    def direction(theta):
        jac = jacobian(value_fn, theta)
        return _own(jac) + lookahead_lr * _cross_terms(value_fn, theta, jac, shaping)

    return direction


def lookahead(value_fn: ValueFn, lookahead_lr: float) -> Direction:
    """LookAhead: naive + eta * lookahead_correction."""
    return _corrected(value_fn, lookahead_lr, shaping=False)


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
        return _corrected(value_fn, lookahead_lr, shaping=True)

    own = naive(value_fn)

    def direction(theta):
        diag = jnp.arange(theta.shape[0])

        def lookahead_value(th, i):  # V_i after every other agent takes its naive step
            others = (diag != i).astype(th.dtype)[:, None]
            return value_fn(th + lookahead_lr * others * own(th))[i]

        return jax.vmap(lambda i: jax.grad(lookahead_value)(theta, i)[i])(diag)

    return direction


# -- games whose values see each agent's parameters only through that agent's outputs -----------------------------
# V(theta) = objective_fn((f_0(theta_0), ..., f_{N-1}(theta_{N-1}))) [N], e.g. DiCE surrogates of every agent's
# log-probabilities of its sampled actions. With J_a the Jacobian of f_a and d_a the derivative in agent a's outputs,
#     grad_a V_k = J_a^T d_a V_k,        (grad_i grad_j V_k) v = J_i^T (d_i d_j V_k) (J_j v)    for i != j,
# exactly (f_i does not depend on theta_j): the same ``naive`` and ``lola`` rows from first-order passes of each
# agent's function (a tangent J_j v, a transposed J_i^T w) and second derivatives of the objective in the outputs
# alone, never a second derivative of an agent's network.

AgentFns = Sequence[Callable[[jax.Array], Any]]  # theta_a [P] -> agent a's outputs (any pytree)
OutputsObjective = Callable[[tuple], jax.Array]  # every agent's outputs -> values [N]


def _pullbacks(agent_fns: AgentFns, objective_fn: OutputsObjective, theta: jax.Array) -> tuple[tuple, tuple]:
    """(vjps, cot): each agent's transposed pass w -> J_a^T w, and cot[a] = d_a V_k for every value k (each output
    leaf with a leading [N] axis)."""
    outputs, vjps = zip(*(jax.vjp(f, theta[a]) for a, f in enumerate(agent_fns)))
    return vjps, jax.jacrev(objective_fn)(outputs)


def separable_naive(agent_fns: AgentFns, objective_fn: OutputsObjective, theta: jax.Array) -> jax.Array:
    """[N, P]: grad_a V_a = J_a^T d_a V_a, one transposed pass of each agent's function."""
    vjps, cot = _pullbacks(agent_fns, objective_fn, theta)
    return jnp.stack([vjps[a](jax.tree.map(lambda c, a=a: c[a], cot[a]))[0] for a in range(len(agent_fns))])


def separable_jacobian(agent_fns: AgentFns, objective_fn: OutputsObjective, theta: jax.Array,
                       rows: Sequence[int]) -> jax.Array:
    """[R, N, P]: rows ``rows`` of ``jacobian``, jac[r, a] = grad_a V_{rows[r]} = J_a^T d_a V_{rows[r]}."""
    vjps, cot = _pullbacks(agent_fns, objective_fn, theta)
    picked = jnp.asarray(rows)
    return jnp.stack([jax.vmap(vjps[a])(jax.tree.map(lambda c: c[picked], cot[a]))[0]
                      for a in range(len(agent_fns))], axis=1)


def separable_shaping(agent_fns: AgentFns, objective_fn: OutputsObjective, theta: jax.Array, jac: jax.Array,
                      rows: Sequence[int]) -> jax.Array:
    """[R, P]: LOLA's shaping term of each agent i = rows[r], sum_{j != i} J_i^T (d_i d_j V_j) (J_j jac[r, j]), with
    jac [R, N, P] the rows of ``separable_jacobian`` (held constant): row i of ``shaping_correction``."""
    outputs, jvps = zip(*(jax.linearize(f, theta[a]) for a, f in enumerate(agent_fns)))
    jac = jax.lax.stop_gradient(jac)
    n = len(agent_fns)

    def cross(i, j, v):  # (d_i d_j V_j) (J_j v): how d_i V_j moves when agent j's outputs move along J_j v
        tangent = tuple(jvps[a](v) if a == j else jax.tree.map(jnp.zeros_like, outputs[a]) for a in range(n))
        return jax.jvp(lambda outs: jax.grad(lambda o: objective_fn(o)[j])(outs)[i], (outputs,), (tangent,))[1]

    def transposed(i, w):  # J_i^T w
        return jax.linear_transpose(jvps[i], theta[i])(w)[0]

    def row(r, i):  # J_i^T applied once to the sum over the opponents
        crosses = [cross(i, j, jac[r, j]) for j in range(n) if j != i]
        return transposed(i, jax.tree.map(lambda *terms: sum(terms), *crosses))

    return jnp.stack([row(r, i) for r, i in enumerate(rows)])


def losses(value_fn: ValueFn) -> ValueFn:
    """The papers' losses l = -V of a game given by its values."""
    return lambda theta: -value_fn(theta)


def collective_gradient(value_fn: ValueFn) -> Direction:
    """[N, P]: the gradient of the collective value sum_i V_i in every agent's parameters (Simul-Co's direction)."""
    return jax.grad(lambda theta: value_fn(theta).sum())


def collective_hvp(value_fn: ValueFn, theta: jax.Array, v: jax.Array) -> jax.Array:
    """[N, P]: H_c v, H_c the Hessian of the collective value sum_i V_i (symmetric, so also H_c^T v)."""
    return jax.jvp(collective_gradient(value_fn), (theta,), (v,))[1]


def consensus(value_fn: ValueFn, gamma: float) -> Direction:
    """CGA (consensus optimisation): the descent direction xi + gamma H^T xi on the losses, negated."""
    loss_fn = losses(value_fn)

    def direction(theta):
        xi, xi_vjp = jax.vjp(naive(loss_fn), theta)  # one trace of xi for both it and H^T xi
        return -(xi + gamma * xi_vjp(xi)[0])

    return direction


def sga(value_fn: ValueFn, epsilon: float, magnitude: float = 1.0) -> Direction:
    """SGA with the alignment sign: xi + lam A^T xi on the losses (A^T xi = (H^T xi - H xi) / 2), negated;
    lam = magnitude * sign(<xi, H^T xi> <A^T xi, H^T xi> / d + epsilon), d the number of parameters."""
    loss_fn = losses(value_fn)

    def direction(theta):
        xi = naive(loss_fn)(theta)
        grad_ham = hessian_t_vector(loss_fn, theta, xi)  # H^T xi
        a_t_xi = (grad_ham - hessian_vector(loss_fn, theta, xi)) / 2
        lam = magnitude * jnp.sign(jnp.vdot(xi, grad_ham) * jnp.vdot(a_t_xi, grad_ham) / theta.size + epsilon)
        return -(xi + lam * a_t_xi)

    return direction


def _opponent_shaping_terms(value_fn: ValueFn, theta: jax.Array, alpha: float) -> tuple[jax.Array, ...]:
    """(xi, xi_0, alpha chi) [N, P] each, on the losses: xi_0 = xi - alpha H_o xi (LookAhead's descent direction)."""
    loss_fn = losses(value_fn)
    jac = jacobian(loss_fn, theta)  # one Jacobian for xi and both corrections
    xi = _own(jac)
    xi_0 = xi - alpha * _cross_terms(loss_fn, theta, jac, shaping=False)
    return xi, xi_0, alpha * _cross_terms(loss_fn, theta, jac, shaping=True)


def lola_lookahead(value_fn: ValueFn, alpha: float) -> Direction:
    """LOLA with the look-ahead term (the SOS paper's LOLA): xi_0 - alpha chi on the losses, negated; on the values
    naive + alpha * (lookahead_correction + shaping_correction)."""

    def direction(theta):
        _, xi_0, alpha_chi = _opponent_shaping_terms(value_fn, theta, alpha)
        return -(xi_0 - alpha_chi)

    return direction


def sos(value_fn: ValueFn, alpha: float, a: float = 0.5, b: float = 0.1) -> Direction:
    """Stable Opponent Shaping: xi_0 - p alpha chi on the losses, negated, p = min(p_1, p_2) as in the module's
    docstring (p_1 keeps <xi_p, xi_0> >= (1 - a) |xi_0|^2; p_2 fades the shaping out near fixed points)."""

    def direction(theta):
        xi, xi_0, alpha_chi = _opponent_shaping_terms(value_fn, theta, alpha)
        dot = jnp.vdot(-alpha_chi, xi_0)
        safe_dot = jnp.where(dot < 0, dot, -1.0)
        p1 = jnp.where(dot >= 0, 1.0, jnp.minimum(1.0, -a * jnp.vdot(xi_0, xi_0) / safe_dot))
        xi_sq = jnp.vdot(xi, xi)
        p2 = jnp.where(jnp.sqrt(xi_sq) < b, xi_sq, 1.0)
        return -(xi_0 - jnp.minimum(p1, p2) * alpha_chi)

    return direction


def _aga_terms(value_fn: ValueFn, theta: jax.Array, magnitude: float) -> tuple:
    """(xi, xi_c, grad Ham_c = H_c^T xi_c) [N, P] on the losses, AgA's signed weight lam (scalar) and the two
    factors of its sign rule (scalars)."""
    loss_fn = losses(value_fn)
    jac = jacobian(loss_fn, theta)  # [N, N, P]: both xi and xi_c from one reverse pass per agent
    xi, xi_c = _own(jac), jac.sum(axis=0)
    grad_ham_c = collective_hvp(loss_fn, theta, xi_c)
    factors = (jnp.vdot(xi_c, grad_ham_c), jnp.vdot(xi, grad_ham_c) + jnp.vdot(grad_ham_c, grad_ham_c))
    return xi, xi_c, grad_ham_c, jnp.abs(magnitude) * jnp.sign(factors[0] * factors[1]), factors


def aga_lambda(value_fn: ValueFn, theta: jax.Array, magnitude: float) -> jax.Array:
    """AgA's signed weight: |magnitude| * sign(<xi_c, grad Ham_c> (<xi, grad Ham_c> + |grad Ham_c|^2)), on the
    losses, grad Ham_c = H_c^T xi_c."""
    return _aga_terms(value_fn, theta, magnitude)[3]


def aga_with_lambda(value_fn: ValueFn, theta: jax.Array, magnitude: float) -> tuple[jax.Array, jax.Array, tuple]:
    """(AgA's ascent direction [N, P], its signed weight lam, the sign rule's two factors (<xi_c, H_c^T xi_c>,
    <xi, H_c^T xi_c> + |H_c^T xi_c|^2), scalars): -(xi_c + lam (xi + H_c^T xi_c)) on the losses."""
    xi, xi_c, grad_ham_c, lam, factors = _aga_terms(value_fn, theta, magnitude)
    return -(xi_c + lam * (xi + grad_ham_c)), lam, factors


def aga(value_fn: ValueFn, magnitude: float) -> Direction:
    """AgA: xi_c + lam (xi + H_c^T xi_c) on the losses with lam = ``aga_lambda``, negated."""
    return lambda theta: aga_with_lambda(value_fn, theta, magnitude)[0]
