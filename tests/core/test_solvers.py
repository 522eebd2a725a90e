"""Exact matrix-game solvers against scipy's LP solver and nashpy, on 1,000 random games of sizes 2x2 to 5x5 solved
in one vmapped call (smaller games padded with strictly dominated actions)."""
import jax
import nashpy
import numpy as np
import pytest
from scipy.optimize import linprog

from jaxmarl_core import solvers

N_GAMES, SIZE = 1000, 5
SOLVE = jax.jit(solvers.zero_sum_value)


def lp_value(A: np.ndarray) -> float:
    """max_x min_j (x^T A)_j by scipy's LP: variables (x, v), maximise v s.t. A^T x >= v, sum x = 1, x >= 0."""
    n, m = A.shape
    res = linprog(c=np.r_[np.zeros(n), -1.0], A_ub=np.c_[-A.T, np.ones(m)], b_ub=np.zeros(m),
                  A_eq=np.r_[np.ones(n), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)],
                  method="highs")
    assert res.status == 0
    return -res.fun


@pytest.fixture(scope="module")
def games():
    rng = np.random.default_rng(0)
    shapes = rng.integers(2, SIZE + 1, size=(N_GAMES, 2))
    As = [rng.normal(size=s) for s in shapes]
    Bs = [rng.normal(size=s) for s in shapes]
    return As, Bs


def test_zero_sum_value_matches_linprog_on_random_games(games):
    As, _ = games
    # Padding: rows the maximiser never wants (below every entry), columns the minimiser never wants (above all).
    padded = np.stack([_pad_zero_sum(A) for A in As])
    value, x, y = jax.jit(jax.vmap(solvers.zero_sum_value))(padded)
    value, x, y = map(np.asarray, (value, x, y))
    for i, A in enumerate(As):
        n, m = A.shape
        assert abs(value[i] - lp_value(A)) < 1e-5, i
        assert np.all(x[i, n:] == 0) and np.all(y[i, m:] == 0)
        xi, yi = x[i, :n].astype(np.float64), y[i, :m].astype(np.float64)
        assert min(xi @ A) > lp_value(A) - 1e-5 and max(A @ yi) < lp_value(A) + 1e-5  # both strategies are optimal


def _pad_zero_sum(A: np.ndarray) -> np.ndarray:
    out = np.full((SIZE, SIZE), A.min() - 1.0)  # padded rows: worse than anything for the row player
    out[:, A.shape[1]:] = A.max() + 1.0  # padded columns: worse than anything for the (minimising) column player
    out[: A.shape[0], : A.shape[1]] = A
    return out


def _pad_bimatrix(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo_a, lo_b = min(A.min(), 0.0) - 1.0, min(B.min(), 0.0) - 1.0
    pa, pb = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
    pa[A.shape[0]:] = lo_a  # padded rows: strictly dominated for the row player
    pb[:, B.shape[1]:] = lo_b  # padded columns: strictly dominated for the column player
    pa[: A.shape[0], : A.shape[1]] = A
    pb[: B.shape[0], : B.shape[1]] = B
    return pa, pb


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_bimatrix_nash_profiles_are_equilibria_and_nashpy_finds_them(games):
    As, Bs = games
    pa, pb = map(np.stack, zip(*(_pad_bimatrix(A, B) for A, B in zip(As, Bs))))
    x, y = map(np.asarray, jax.jit(jax.vmap(solvers.bimatrix_nash))(pa, pb))
    for i, (A, B) in enumerate(zip(As, Bs)):
        n, m = A.shape
        assert np.all(x[i, n:] == 0) and np.all(y[i, m:] == 0)
        xi, yi = x[i, :n].astype(np.float64), y[i, :m].astype(np.float64)
        assert abs(xi.sum() - 1) < 1e-6 and abs(yi.sum() - 1) < 1e-6 and xi.min() >= 0 and yi.min() >= 0
        gains = np.array(solvers.deviation_gains(A, B, xi, yi))
        assert gains.max() < 1e-5, (i, gains)
        if i < 100:  # nashpy (pure Python) on the first 100: ours is one of the equilibria it enumerates
            # Vertex enumeration: its support enumeration drops equilibria that fail its own float tolerance.
            found = list(nashpy.Game(A, B).vertex_enumeration())
            assert any(np.allclose(xi, ex, atol=1e-4) and np.allclose(yi, ey, atol=1e-4) for ex, ey in found), i


def test_rock_paper_scissors_has_value_zero_and_the_uniform_strategy():
    rps = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    value, x, y = SOLVE(rps)
    assert abs(float(value)) < 1e-6
    np.testing.assert_allclose(x, np.full(3, 1 / 3), atol=1e-6)
    np.testing.assert_allclose(y, np.full(3, 1 / 3), atol=1e-6)


def test_degenerate_zero_sum_games():
    """Ties and duplicated actions (where many square supports are singular) still give the LP value."""
    rng = np.random.default_rng(1)
    special = [np.zeros((3, 4)), np.ones((2, 2)), np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0]]),
               np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])]
    ties = rng.integers(-1, 2, size=(50, 4, 4)).astype(float)  # payoffs in {-1, 0, 1}: many ties
    solved = [(A, *map(np.asarray, SOLVE(A))) for A in special]
    solved += list(zip(ties, *map(np.asarray, jax.jit(jax.vmap(solvers.zero_sum_value))(ties))))
    for A, value, x, _ in solved:
        assert abs(float(value) - lp_value(A)) < 1e-5, A
        assert min(x.astype(np.float64) @ A) > lp_value(A) - 1e-5


def test_nash_conv_is_zero_at_equilibrium_and_positive_elsewhere():
    pd_a = np.array([[-1.0, -3.0], [0.0, -2.0]])  # prisoner's dilemma: (defect, defect) is the unique equilibrium
    x, y = jax.jit(solvers.bimatrix_nash)(pd_a, pd_a.T)
    np.testing.assert_allclose(x, [0, 1], atol=1e-6)
    np.testing.assert_allclose(y, [0, 1], atol=1e-6)
    assert float(solvers.nash_conv(pd_a, pd_a.T, x, y)) < 1e-6
    assert abs(float(solvers.nash_conv(pd_a, pd_a.T, np.array([1.0, 0]), np.array([1.0, 0]))) - 2.0) < 1e-6


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_bimatrix_equilibria_are_nashpys_and_the_selection_rules_pick_among_them(games):
    """The distinct equilibria ``bimatrix_equilibria`` marks are exactly those nashpy's vertex enumeration finds (30
    random games, padded to 5 x 5, solved in one vmapped call); "first" is the first of them in enumeration order,
    "second" the next distinct one (the first if there is only one), "best" the best for the chosen player."""
    As, Bs = games[0][:30], games[1][:30]
    pa, pb = map(np.stack, zip(*(_pad_bimatrix(A, B) for A, B in zip(As, Bs))))
    rules = (("first", 0), ("second", 0), ("best", 0), ("best", 1))

    def solve(a, b):  # one program: the equilibria and every rule's pick
        return solvers.bimatrix_equilibria(a, b), [solvers.select_nash(a, b, r, p) for r, p in rules]

    (xs, ys, is_eq), picked = jax.tree.map(np.asarray, jax.jit(jax.vmap(solve))(pa, pb))
    picks = dict(zip(rules, picked))
    multiple = 0
    for i, (A, B) in enumerate(zip(As, Bs)):
        n, m = A.shape
        ours = []
        for x, y in zip(xs[i][is_eq[i]], ys[i][is_eq[i]]):
            if not any(np.allclose(x, u, atol=1e-4) and np.allclose(y, v, atol=1e-4) for u, v in ours):
                ours.append((x, y))
        found = list(nashpy.Game(A, B).vertex_enumeration())
        assert len(ours) == len(found), i
        for ex, ey in found:
            assert any(np.allclose(x[:n], ex, atol=1e-4) and np.allclose(y[:m], ey, atol=1e-4) for x, y in ours), i
        multiple += len(ours) > 1
        for (rule, player), (px, py) in picks.items():
            if rule == "first":
                want = ours[0]
            elif rule == "second":
                want = ours[min(1, len(ours) - 1)]
            else:
                worth = [x[:n] @ (A, B)[player] @ y[:m] for x, y in ours]
                want = ours[int(np.argmax(worth))]
            assert np.allclose(px[i], want[0], atol=1e-5) and np.allclose(py[i], want[1], atol=1e-5), (i, rule)
    assert multiple >= 3  # the rules were told apart somewhere


def test_selection_rules_in_battle_of_the_sexes_and_restricted_actions():
    A = np.array([[3.0, 0.0], [0.0, 2.0]])
    B = np.array([[2.0, 0.0], [0.0, 3.0]])
    select = jax.jit(solvers.select_nash, static_argnums=(2, 3))  # one program per rule, not an op-by-op run
    pick = {rule: np.asarray(select(A, B, rule, player)[0]) for rule, player in (("first", 0), ("second", 0),
                                                                                  ("best", 1))}
    np.testing.assert_allclose(pick["first"], [1, 0])  # (0, 0): the first pure profile
    np.testing.assert_allclose(pick["second"], [0, 1])  # (1, 1)
    np.testing.assert_allclose(pick["best"], [0, 1])  # the column player's favourite, (1, 1)
    # without the row player's first action only (1, 1) is left
    x, y = select(*solvers.restrict(A, B, np.array([False, True]), np.array([True, True])), "first", 0)
    np.testing.assert_allclose(np.stack([x, y]), [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match="selection must be one of"):
        solvers.select_nash(A, B, "last")


def _nashpy_lemke_howson(A: np.ndarray, B: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray] | None:
    """nashpy's Lemke-Howson from ``label`` (lexicographic pivoting), None where it returns no strategy pair.
    nashpy 0.0.43 writes a strategy in the iteration order of a Python set of labels, which is not increasing for
    some sizes (a 5 x 4 game's column labels 5-8 come out 8, 5, 6, 7): put the entries back in label order."""
    from nashpy.algorithms.lemke_howson import lemke_howson
    n, m = A.shape
    x, y = lemke_howson(A, B, initial_dropped_label=label)
    if x.shape != (n,) or y.shape != (m,) or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return None
    x = x[np.argsort(list(set(range(n))))]
    return x, y[np.argsort([j - n for j in set(range(n, n + m))])]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_lemke_howson_follows_nashpys_paths_from_every_label(games):
    """From every dropped label, our Lemke-Howson ends where nashpy's does: 20 random games (nondegenerate) and 20
    with payoffs in {-2, ..., 2} (degenerate: ties in the ratio tests, broken lexicographically by both), each padded
    to 5 x 5 with strictly dominated actions, which no path enters, so the labels of the real actions give the paths
    of the unpadded game."""
    rng = np.random.default_rng(2)
    ties = [(rng.integers(-2, 3, size=s).astype(float), rng.integers(-2, 3, size=s).astype(float))
            for s in rng.integers(2, SIZE + 1, size=(20, 2))]
    pairs = list(zip(games[0][:20], games[1][:20])) + ties
    pa, pb = map(np.stack, zip(*(_pad_bimatrix(A, B) for A, B in zip(*zip(*pairs)))))
    solve = jax.vmap(jax.vmap(solvers.lemke_howson, in_axes=(None, None, 0)), in_axes=(0, 0, None))
    xs, ys, done = map(np.asarray, jax.jit(solve)(pa, pb, np.arange(2 * SIZE)))
    compared = 0
    for i, (A, B) in enumerate(pairs):
        n, m = A.shape
        for label in range(n + m):
            padded = label if label < n else SIZE + label - n
            assert done[i, padded] and np.all(xs[i, padded, n:] == 0) and np.all(ys[i, padded, m:] == 0)
            x, y = xs[i, padded, :n].astype(np.float64), ys[i, padded, :m].astype(np.float64)
            assert max(solvers.deviation_gains(A, B, x, y)) < 1e-5, (i, label)
            want = _nashpy_lemke_howson(A, B, label)
            if want is not None:
                np.testing.assert_allclose(x, want[0], atol=1e-5, err_msg=f"{i} {label}")
                np.testing.assert_allclose(y, want[1], atol=1e-5, err_msg=f"{i} {label}")
                compared += 1
    assert compared >= 0.98 * sum(A.shape[0] + A.shape[1] for A, _ in pairs)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_lemke_howson_label_orders_list_nashpys_equilibria_in_that_order(games):
    """Every label order Nash-Q may use (each player's actions in the order 2, 0, 3, 1): the distinct equilibria
    ``lemke_howson_equilibria`` keeps are those nashpy's Lemke-Howson reaches from the labels in that order, first
    reached first, on 6 random 4 x 4 games and 6 with payoffs in {-1, 0, 1} (ties)."""
    rng = np.random.default_rng(3)
    pairs = [(A[:4, :4], B[:4, :4]) for A, B in zip(*games) if min(A.shape) >= 4][:6] + [
        tuple(rng.integers(-1, 2, size=(2, 4, 4)).astype(float)) for _ in range(6)]
    orders = {o: solvers.lemke_howson_labels((2, 0, 3, 1), 4, o) for o in solvers.LH_LABEL_ORDERS}
    assert orders == {"agent1_first": (2, 0, 3, 1, 6, 4, 7, 5), "agent2_first": (6, 4, 7, 5, 2, 0, 3, 1),
                      "alternate": (2, 6, 0, 4, 3, 7, 1, 5), "alternate_agent2_first": (6, 2, 4, 0, 7, 3, 5, 1)}

    listed = jax.vmap(jax.vmap(solvers.lemke_howson_equilibria, in_axes=(None, None, 0)), in_axes=(0, 0, None))
    found = jax.tree.map(np.asarray, jax.jit(listed)(*map(np.stack, zip(*pairs)), np.array(list(orders.values()))))
    compared = 0
    for i, (A, B) in enumerate(pairs):
        paths = {label: _nashpy_lemke_howson(A, B, label) for label in range(8)}
        for k, labels in enumerate(orders.values()):  # found: [games, orders, 8, ...]
            xs, ys, is_eq = (f[:, k] for f in found)
            if any(paths[label] is None for label in labels):
                continue
            want = []
            for label in labels:  # nashpy's endpoints in this order, each distinct one where first reached
                x, y = paths[label]
                if not any(np.allclose(x, wx, atol=1e-4) and np.allclose(y, wy, atol=1e-4) for wx, wy in want):
                    want.append((x, y))
            np.testing.assert_allclose(xs[i][is_eq[i]], [x for x, _ in want], atol=1e-5, err_msg=f"{i} {labels}")
            np.testing.assert_allclose(ys[i][is_eq[i]], [y for _, y in want], atol=1e-5, err_msg=f"{i} {labels}")
            compared += 1
    assert compared >= 40
    with pytest.raises(ValueError, match="label order must be one of"):
        solvers.lemke_howson_labels((0, 1), 2, "gambit")


@pytest.mark.slow  # the default suite's time budget; nash_q's test runs the order in a learner
def test_selection_in_lemke_howsons_order():
    """Battle of the sexes: Lemke-Howson reaches (0, 0) from the labels of row 0 and column 0, (1, 1) from those of
    row 1 and column 1 (never the mixed equilibrium), so the order of the labels decides "first"; labels of actions
    left out are skipped; a game whose first path ends where a later one does lists it once."""
    A = np.array([[3.0, 0.0], [0.0, 2.0]])
    B = np.array([[2.0, 0.0], [0.0, 3.0]])

    @jax.jit
    def picks(active):
        a, b = solvers.restrict(A, B, active[:2], active[2:])
        reached = solvers.lemke_howson_equilibria(a, b, (0, 2, 1, 3), active)
        return reached, solvers.select_nash(a, b, "second", 0, "lemke_howson", (1, 0, 3, 2), active)[0]

    (xs, _, is_eq), second = jax.tree.map(np.asarray, picks(np.ones(4, bool)))
    np.testing.assert_array_equal(is_eq, [True, False, True, False])
    np.testing.assert_allclose(xs[[0, 2]], [[1, 0], [0, 1]])
    np.testing.assert_allclose(second, [1, 0])  # labels 1 and 3 first: (1, 1) is first, (0, 0) second
    (xs, _, is_eq), second = jax.tree.map(np.asarray, picks(np.array([False, True, True, True])))
    np.testing.assert_array_equal(is_eq, [False, True, False, False])  # row 0 left out: column 0 reaches (1, 1)
    np.testing.assert_allclose(second, [0, 1])  # "second" is the first when there is one
    with pytest.raises(ValueError, match="order must be one of"):
        solvers.select_nash(A, B, "first", order="gambit")
