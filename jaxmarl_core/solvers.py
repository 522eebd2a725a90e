"""Exact equilibria of small matrix games inside ``jit``, ``vmap``-able over thousands of games.

``zero_sum_value`` runs the simplex method on the game's linear program (a few pivots for the games of classical
multi-agent learning, cheap enough to call at every step of Minimax-Q). ``bimatrix_nash`` enumerates square
supports (every k x k submatrix, k = 1 .. min(n, m)), solves each support's indifference equations with one batched
linear solve, and returns the candidate profile whose largest gain from a deviation is smallest (among ties the
first in enumeration order, so pure equilibria come before mixed ones). For a nondegenerate bimatrix game every
equilibrium has square supports (support enumeration, Nisan et al. 2007, ch. 3). Shapes are static: the work grows
as sum_k C(n,k) C(m,k) (251 supports for 5 x 5), which suits small games (up to about 7 x 7). ``lemke_howson``
follows the Lemke-Howson path from one dropped label (complementary pivoting with nashpy's tableaux and lexicographic
tie-breaking); ``lemke_howson_equilibria`` lists what the paths from every label reach, in a fixed order, as Hu &
Wellman's (2003) Nash-Q did.

To solve games of different sizes in one call, pad them to a common shape with strictly dominated actions (a row
with a payoff below every entry of A, a column with a payoff below every entry of B, or above every entry of A for
the minimising column player of a zero-sum game): no equilibrium plays them.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core import linalg


def _supports(n: int, k: int) -> np.ndarray:
    """[C(n, k), k] every k-subset of range(n)."""
    return np.asarray(list(itertools.combinations(range(n), k)), dtype=np.int32).reshape(-1, k)


def _indifferent(M: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Solve M p = u 1, 1^T p = 1 for each [..., k, k] M -> (p [..., k], u [...]); nan where singular."""
    k = M.shape[-1]
    ones = jnp.ones(M.shape[:-1] + (1,), M.dtype)
    top = jnp.concatenate([M, -ones], axis=-1)  # [..., k, k + 1]
    bottom = jnp.concatenate([jnp.ones(M.shape[:-2] + (1, k), M.dtype), jnp.zeros(M.shape[:-2] + (1, 1), M.dtype)],
                             axis=-1)
    system = jnp.concatenate([top, bottom], axis=-2)  # [..., k + 1, k + 1]
    rhs = jnp.zeros(M.shape[:-2] + (k + 1, 1), M.dtype).at[..., k, 0].set(1.0)
    sol = linalg.solve(system, rhs)[..., 0]
    return sol[..., :k], sol[..., k]


def deviation_gains(A: jax.Array, B: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """[2]: how much each player gains by its best pure deviation from (x, y); A, B: [n, m] payoffs of the row and
    column player; x [n], y [m] mixed strategies. Both are >= 0, and 0 exactly at a Nash equilibrium."""
    row = jnp.max(A @ y) - x @ A @ y
    col = jnp.max(x @ B) - x @ B @ y
    return jnp.stack([row, col])


def nash_conv(A: jax.Array, B: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Sum of both players' best-response gains (NashConv) of the profile (x, y)."""
    return jnp.sum(deviation_gains(A, B, x, y))


def _candidates(A: jax.Array, B: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Every square-support candidate: -> (x [C, n], y [C, m]) with nan rows where a support's system is singular."""
    n, m = A.shape
    xs, ys = [], []
    for k in range(1, min(n, m) + 1):
        rows, cols = _supports(n, k), _supports(m, k)
        r = np.repeat(rows, len(cols), axis=0)  # [P, k]: every (row support, column support) pair
        c = np.tile(cols, (len(rows), 1))
        sub_a = A[r[:, :, None], c[:, None, :]]  # [P, k, k]
        sub_b = B[r[:, :, None], c[:, None, :]]
        y_s, _ = _indifferent(sub_a)  # the row player is indifferent over its support
        x_s, _ = _indifferent(jnp.swapaxes(sub_b, -1, -2))  # the column player is indifferent over its support
        pairs = np.arange(len(r))[:, None]
        xs.append(jnp.zeros((len(r), n), A.dtype).at[pairs, r].set(x_s))
        ys.append(jnp.zeros((len(r), m), A.dtype).at[pairs, c].set(y_s))
    return jnp.concatenate(xs), jnp.concatenate(ys)


def bimatrix_nash(A: jax.Array, B: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A Nash equilibrium (x [n], y [m]) of the bimatrix game with payoffs A (row player), B (column player) [n, m]."""
    A = jnp.asarray(A, jnp.float32)
    B = jnp.asarray(B, jnp.float32)
    xs, ys = _candidates(A, B)
    solved = jnp.all(jnp.isfinite(xs), axis=-1) & jnp.all(jnp.isfinite(ys), axis=-1)  # [C]: nonsingular supports
    xs = jnp.where(solved[:, None], xs, 0.0)  # no nan reaches the reductions below
    ys = jnp.where(solved[:, None], ys, 0.0)
    gains = jax.vmap(lambda x, y: jnp.max(deviation_gains(A, B, x, y)))(xs, ys)
    negativity = jnp.maximum(-jnp.min(xs, axis=-1), -jnp.min(ys, axis=-1))
    score = jnp.where(solved, jnp.maximum(gains, negativity), jnp.inf)
    # Among the (numerically) exact equilibria take the first in enumeration order: the smallest support, so a pure
    # equilibrium wins over a mixed one that rounding happens to score a hair lower.
    tol = 1e-6 * (1.0 + jnp.max(jnp.abs(A)) + jnp.max(jnp.abs(B)))
    best = jnp.argmax(score <= jnp.min(score) + tol)
    x = jnp.clip(xs[best], 0.0, None)
    y = jnp.clip(ys[best], 0.0, None)
    return x / jnp.sum(x), y / jnp.sum(y)


SELECTIONS = ("first", "second", "best")  # Hu & Wellman's (2003) rules for choosing among a stage game's equilibria


def bimatrix_equilibria(A: jax.Array, B: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Every square-support candidate of ``bimatrix_nash`` in its enumeration order (supports of size 1, 2, ...;
    within a size, row supports then column supports in lexicographic order, so the pure profiles come first in the
    order (row action, column action)) and which are equilibria: A, B [n, m] -> (xs [C, n], ys [C, m], is_eq [C]).
    A degenerate game may list one equilibrium several times (e.g. a pure one again with a zero weight)."""
    A = jnp.asarray(A, jnp.float32)
    B = jnp.asarray(B, jnp.float32)
    xs, ys = _candidates(A, B)
    solved = jnp.all(jnp.isfinite(xs), axis=-1) & jnp.all(jnp.isfinite(ys), axis=-1)
    xs = jnp.where(solved[:, None], xs, 0.0)
    ys = jnp.where(solved[:, None], ys, 0.0)
    gains = jax.vmap(lambda x, y: jnp.max(deviation_gains(A, B, x, y)))(xs, ys)
    negativity = jnp.maximum(-jnp.min(xs, axis=-1), -jnp.min(ys, axis=-1))
    score = jnp.where(solved, jnp.maximum(gains, negativity), jnp.inf)
    tol = _EQUILIBRIUM_TOL * (1.0 + jnp.max(jnp.abs(A)) + jnp.max(jnp.abs(B)))
    is_eq = score <= jnp.maximum(jnp.min(score), 0.0) + tol  # never empty: the best candidate is always kept
    xs = jnp.clip(xs, 0.0, None)
    ys = jnp.clip(ys, 0.0, None)
    xs = xs / jnp.maximum(jnp.sum(xs, axis=-1, keepdims=True), 1e-30)
    ys = ys / jnp.maximum(jnp.sum(ys, axis=-1, keepdims=True), 1e-30)
    return xs, ys, is_eq


_EQUILIBRIUM_TOL = 1e-5  # relative to the payoffs' scale: float32 rounding of a mixed candidate's linear solve


def restrict(A: jax.Array, B: jax.Array, rows: jax.Array, cols: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The bimatrix game (A, B) [n, m] with only the actions ``rows`` bool[n] and ``cols`` bool[m]: the others get a
    payoff below every entry (A's rows, B's columns), so no equilibrium plays them (the module docstring)."""
    A = jnp.where(rows[:, None], A, jnp.min(A) - 1.0)
    B = jnp.where(cols[None, :], B, jnp.min(B) - 1.0)
    return A, B


ORDERS = ("support", "lemke_howson")  # the order select_nash lists equilibria in
LH_LABEL_ORDERS = ("agent1_first", "agent2_first", "alternate", "alternate_agent2_first")


def lemke_howson_labels(actions, n: int, label_order: str = "agent1_first") -> tuple[int, ...]:
    """The dropped labels of an n x n game in the order ``label_order`` (for ``lemke_howson_equilibria``), each
    player's actions taken in the order ``actions`` (a permutation of 0 .. n - 1; label a is the row player's action
    a, label n + a the column player's): "agent1_first" the row player's labels then the column player's,
    "agent2_first" the column player's then the row player's, "alternate" the row and the column player's label of
    each action in turn, "alternate_agent2_first" the column player's then the row player's of each action."""
    if label_order not in LH_LABEL_ORDERS:
        raise ValueError(f"label order must be one of {', '.join(LH_LABEL_ORDERS)}, got {label_order!r}")
    rows, cols = [int(a) for a in actions], [n + int(a) for a in actions]
    if label_order == "agent1_first":
        return (*rows, *cols)
    if label_order == "agent2_first":
        return (*cols, *rows)
    pairs = zip(rows, cols) if label_order == "alternate" else zip(cols, rows)
    return tuple(label for pair in pairs for label in pair)


def _lh_payoffs(M: jax.Array) -> jax.Array:
    """Payoffs made positive as nashpy's Lemke-Howson makes them (M + |min M| + 1 when min M <= 0), then divided by
    their largest entry (a uniform scaling, which moves no pivot) to keep float32 tableaux well scaled."""
    M = jnp.where(jnp.min(M) <= 0.0, M + jnp.abs(jnp.min(M)) + 1.0, M)
    return M / jnp.max(M)


def _lh_pivot(T: jax.Array, basis: jax.Array, enter: jax.Array, slack: np.ndarray
              ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One pivot of a Lemke-Howson tableau T [r, L + 1] (a column per label's variable, then the right-hand side;
    the basic columns, basis int[r], are unit vectors): variable ``enter`` enters by the minimum-ratio test, among
    tied rows the one whose row of the slack columns ``slack`` (the basis inverse) over the entering column is
    lexicographically largest (nashpy's rule: the right-hand side perturbed by -eps^k, which cannot cycle).
    -> (T, basis, the label that leaves)."""
    col, rhs = T[:, enter], T[:, -1]
    positive = col > _LH_TOL
    ratio = jnp.where(positive, rhs / jnp.where(positive, col, 1.0), jnp.inf)
    low = jnp.min(ratio)
    ties = ratio <= low + _LH_TOL * (1.0 + jnp.abs(low))
    lex = T[:, slack] / jnp.where(positive, col, 1.0)[:, None]  # [r, k]
    for k in range(len(slack)):
        vals = jnp.where(ties, lex[:, k], -jnp.inf)
        top = jnp.max(vals)
        ties = ties & (vals >= top - _LH_TOL * (1.0 + jnp.abs(top)))
    p = jnp.argmax(ties)
    row = T[p] / T[p, enter]
    T = (T - T[:, enter][:, None] * row[None, :]).at[p].set(row)
    return T, basis.at[p].set(enter), basis[p]


_LH_TOL = 1e-6  # ties in the ratio tests of the scaled tableaux (float32)


def lemke_howson(A: jax.Array, B: jax.Array, label: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The equilibrium the Lemke-Howson method reaches from the artificial equilibrium by first dropping ``label``
    (0 .. n - 1: the row player's actions, n .. n + m - 1: the column player's), by complementary pivoting on the
    tableaux of the polytopes P = {x >= 0: B^T x <= 1} and Q = {y >= 0: A y <= 1} (Nisan et al. 2007, algorithm
    3.6; the tableaux, positive payoffs and lexicographic tie-breaking of nashpy's ``lemke_howson``).
    A, B [n, m] -> (x [n], y [m], whether the path ended within its bound of pivots)."""
    A = _lh_payoffs(jnp.asarray(A, jnp.float32))
    B = _lh_payoffs(jnp.asarray(B, jnp.float32))
    n, m = A.shape
    labels = n + m
    # P: B^T x + r = 1 (x: labels 0 .. n - 1, slacks r: n .. n + m - 1); Q: s + A y = 1 (s: 0 .. n - 1, y: n ..)
    t_p = jnp.concatenate([B.T, jnp.eye(m), jnp.ones((m, 1))], axis=1)  # [m, L + 1]
    t_q = jnp.concatenate([jnp.eye(n), A, jnp.ones((n, 1))], axis=1)  # [n, L + 1]
    slack_p, slack_q = np.arange(n, labels), np.arange(n)
    label = jnp.asarray(label, jnp.int32)

    def unfinished(carry):
        *_, done, it = carry
        return ~done & (it < _LH_MAX_PIVOTS * labels)

    def pivot(carry):
        t_p, b_p, t_q, b_q, enter, in_p, _, it = carry
        t_p2, b_p2, left_p = _lh_pivot(t_p, b_p, enter, slack_p)
        t_q2, b_q2, left_q = _lh_pivot(t_q, b_q, enter, slack_q)
        t_p, b_p = jnp.where(in_p, t_p2, t_p), jnp.where(in_p, b_p2, b_p)
        t_q, b_q = jnp.where(in_p, t_q, t_q2), jnp.where(in_p, b_q, b_q2)
        left = jnp.where(in_p, left_p, left_q)  # the label that left enters the other polytope next
        return t_p, b_p, t_q, b_q, left, ~in_p, left == label, it + 1

    start = (t_p, jnp.arange(n, labels), t_q, jnp.arange(n), label, label < n, jnp.zeros((), bool),
             jnp.zeros((), jnp.int32))
    t_p, b_p, t_q, b_q, _, _, done, _ = jax.lax.while_loop(unfinished, pivot, start)
    x = jnp.maximum(jnp.zeros(labels).at[b_p].set(t_p[:, -1])[:n], 0.0)
    y = jnp.maximum(jnp.zeros(labels).at[b_q].set(t_q[:, -1])[n:], 0.0)
    return x / jnp.maximum(jnp.sum(x), 1e-30), y / jnp.maximum(jnp.sum(y), 1e-30), done


_LH_MAX_PIVOTS = 4  # a guard, per label: the lexicographic rule ends long before on small games


def lemke_howson_equilibria(A: jax.Array, B: jax.Array, labels=None, active: jax.Array | None = None
                            ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The equilibria Lemke-Howson reaches from each dropped label in the order ``labels`` (a static sequence of
    labels, see ``lemke_howson``, or an int array, which may be traced; every label in order when None), and which
    to keep: is_eq marks each distinct
    equilibrium where it is first found, among the ``active`` labels (bool[n + m]: labels of actions the game
    allows) whose paths ended at an exact equilibrium. A, B [n, m] -> (xs [K, n], ys [K, m], is_eq [K])."""
    n, m = jnp.shape(A)
    labels = jnp.arange(n + m) if labels is None else jnp.asarray(labels, jnp.int32)
    active = jnp.ones(n + m, bool) if active is None else jnp.asarray(active, bool)
    xs, ys, done = jax.vmap(lemke_howson, in_axes=(None, None, 0))(A, B, labels)
    gains = jax.vmap(lambda x, y: jnp.max(deviation_gains(A, B, x, y)))(xs, ys)
    tol = _EQUILIBRIUM_TOL * (1.0 + jnp.max(jnp.abs(A)) + jnp.max(jnp.abs(B)))
    valid = active[labels] & done & (gains <= tol)
    apart = jnp.maximum(jnp.max(jnp.abs(xs[:, None] - xs[None]), axis=-1),
                        jnp.max(jnp.abs(ys[:, None] - ys[None]), axis=-1))  # [K, K]
    earlier = jnp.tril(jnp.ones((len(labels), len(labels)), bool), -1) & valid[None, :] & (apart <= _SAME)
    return xs, ys, valid & ~jnp.any(earlier, axis=1)


_SAME = 1e-4  # largest difference in a probability between two strategies taken for the same


def select_nash(A: jax.Array, B: jax.Array, selection: str, player: int = 0, order: str = "support",
                labels=None, active: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """One Nash equilibrium (x [n], y [m]) of the bimatrix game (A, B) [n, m] by a selection rule of Hu & Wellman
    (2003, section 5.1.3, where a Lemke-Howson method lists the equilibria "in a fixed order"): "first" the first
    equilibrium, "second" the first that differs from it (the first when there is only one), "best" the one worth
    most to ``player`` (0: the row player, 1: the column player; among ties the first). ``order``: "support" lists
    the equilibria as ``bimatrix_equilibria`` does (pure profiles first); "lemke_howson" as
    ``lemke_howson_equilibria`` finds them from the dropped labels ``labels`` of the ``active`` actions (falling
    back to the support order in the rare game where no path ends at an exact equilibrium)."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    xs, ys, is_eq = bimatrix_equilibria(A, B)
    if order == "lemke_howson":
        lh_xs, lh_ys, lh_eq = lemke_howson_equilibria(A, B, labels, active)
        xs, ys = jnp.concatenate([lh_xs, xs]), jnp.concatenate([lh_ys, ys])
        is_eq = jnp.concatenate([lh_eq, is_eq & ~jnp.any(lh_eq)])
    first = jnp.argmax(is_eq)
    if selection == "first":
        pick = first
    elif selection == "second":
        other = jnp.maximum(jnp.max(jnp.abs(xs - xs[first]), axis=-1), jnp.max(jnp.abs(ys - ys[first]), axis=-1))
        differs = is_eq & (other > _SAME)
        pick = jnp.where(jnp.any(differs), jnp.argmax(differs), first)
    else:
        payoff = jnp.asarray((A, B)[player], jnp.float32)
        worth = jnp.einsum("cn,nm,cm->c", xs, payoff, ys)
        best = jnp.max(jnp.where(is_eq, worth, -jnp.inf))
        tol = _EQUILIBRIUM_TOL * (1.0 + jnp.max(jnp.abs(payoff)))
        pick = jnp.argmax(is_eq & (worth >= best - tol))
    return xs[pick], ys[pick]


def zero_sum_value(A: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The value and maximin strategies of the zero-sum game where the row player receives x^T A y:
    A [n, m] -> (value [], row_strategy [n], col_strategy [m]).

    The simplex method on the column player's LP, shifted so every payoff is >= 1: max 1^T w s.t. (A + c) w <= 1,
    w >= 0; then value + c = 1 / sum(w), y = w / sum(w), and x is the dual (the final objective row under the
    slack columns) over the same sum. Bland's rule (first improving column, lowest-index leaving variable among
    ties) cannot cycle, so degenerate games terminate too; the slack basis is feasible, so no phase one is needed.
    """
    A = jnp.asarray(A, jnp.float32)
    n, m = A.shape
    shift = 1.0 - jnp.min(A)
    tableau = jnp.concatenate([
        jnp.concatenate([A + shift, jnp.eye(n, dtype=A.dtype), jnp.ones((n, 1), A.dtype)], axis=1),
        jnp.concatenate([-jnp.ones((1, m), A.dtype), jnp.zeros((1, n + 1), A.dtype)], axis=1)])  # [n + 1, m + n + 1]
    basis = jnp.arange(m, m + n)  # the slack variables start basic
    tol = 1e-6

    def improvable(carry):
        tableau, _, it = carry
        return jnp.any(tableau[-1, :-1] < -tol) & (it < _SIMPLEX_MAX_PIVOTS * (n + m))

    def pivot(carry):
        tableau, basis, it = carry
        enter = jnp.argmax(tableau[-1, :-1] < -tol)  # Bland: the first column that improves the objective
        column, rhs = tableau[:-1, enter], tableau[:-1, -1]
        ratios = jnp.where(column > tol, rhs / jnp.where(column > tol, column, 1.0), jnp.inf)
        ties = ratios <= jnp.min(ratios) + tol
        leave = jnp.argmin(jnp.where(ties, basis, n + m))  # Bland: the lowest-index basic variable among ties
        row = tableau[leave] / tableau[leave, enter]
        tableau = tableau - tableau[:, enter][:, None] * row[None, :]
        tableau = tableau.at[leave].set(row)
        return tableau, basis.at[leave].set(enter), it + 1

    tableau, basis, _ = jax.lax.while_loop(improvable, pivot, (tableau, basis, jnp.zeros((), jnp.int32)))
    w = jnp.zeros(n + m, A.dtype).at[basis].set(tableau[:-1, -1])[:m]
    total = tableau[-1, -1]  # sum(w) = sum of the duals
    y = jnp.maximum(w, 0.0) / total
    x = jnp.maximum(tableau[-1, m:m + n], 0.0) / total
    return 1.0 / total - shift, x / jnp.sum(x), y / jnp.sum(y)


_SIMPLEX_MAX_PIVOTS = 10  # a guard, per row and column: Bland's rule ends long before on small games


def project_simplex(v: jax.Array) -> jax.Array:
    """Euclidean projection of each row of v [..., n] onto the probability simplex (sort-based, Duchi et al. 2008)."""
    n = v.shape[-1]
    u = -jnp.sort(-v, axis=-1)  # descending
    css = jnp.cumsum(u, axis=-1) - 1.0
    k = jnp.arange(1, n + 1, dtype=v.dtype)
    rho = jnp.sum(u - css / k > 0, axis=-1, keepdims=True)  # number of positive entries of the projection
    tau = jnp.take_along_axis(css, rho - 1, axis=-1) / rho
    return jnp.maximum(v - tau, 0.0)
