"""Game-gradient directions against explicit Hessians and finite differences on a small random differentiable
game (3 agents, 2 parameters each), where every value depends on every agent's parameters non-linearly."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_core import game_gradients as gg

N, P, ETA = 3, 2, 0.3
_KW, _KC, _KT = jax.random.split(jax.random.PRNGKey(7), 3)
W = jax.random.normal(_KW, (N, N, P, P))
C = jax.random.normal(_KC, (N, N * P))
THETA = 0.7 * jax.random.normal(_KT, (N, P))
V = jax.random.normal(jax.random.PRNGKey(8), (N, P))


def value_fn(theta):
    """[N, P] -> [N]: V_i = sum_j tanh(theta_i . W_ij theta_j) + sin(C_i . theta)."""
    pairs = jnp.tanh(jnp.einsum("ip,ijpq,jq->ij", theta, W, theta)).sum(axis=1)
    return pairs + jnp.sin(C @ theta.reshape(-1))


@functools.cache
def directions():
    @jax.jit
    def all_of_them(theta):
        return {"naive": gg.naive(value_fn)(theta),
                "shaping": gg.shaping_correction(value_fn)(theta),
                "lookahead_correction": gg.lookahead_correction(value_fn)(theta),
                "lola": gg.lola(value_fn, ETA)(theta),
                "lola_rows": jnp.stack([gg.lola_row(value_fn, ETA, i)(theta) for i in range(N)]),
                "lookahead": gg.lookahead(value_fn, ETA)(theta),
                "hv": gg.hessian_vector(value_fn, theta, V),
                "htv": gg.hessian_t_vector(value_fn, theta, V),
                "zero": gg.add(gg.naive(value_fn), gg.scale(-1.0, gg.naive(value_fn)))(theta)}

    return jax.tree.map(np.asarray, all_of_them(THETA))


@functools.cache
def explicit():
    """Per-agent gradients and full Hessians of each V_k over the flattened parameters (fine at this size)."""

    def v(x):  # [N * P] -> [N]
        return value_fn(x.reshape(N, P))

    jac, hess = jax.jit(lambda x: (jax.jacrev(v)(x), jax.hessian(v)(x)))(THETA.reshape(-1))
    grads, hess = np.asarray(jac).reshape(N, N, P), np.asarray(hess).reshape(N, N, P, N, P)
    return grads, hess  # grads[k, j] = grad_j V_k; hess[k, i, :, j, :] = grad_i grad_j V_k


def test_naive_is_each_agents_own_gradient():
    grads, _ = explicit()
    np.testing.assert_allclose(directions()["naive"], grads[np.arange(N), np.arange(N)], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(directions()["zero"], 0.0, atol=1e-7)


def test_corrections_match_explicit_hessians():
    grads, hess = explicit()
    shaping = np.zeros((N, P))
    look = np.zeros((N, P))
    for i in range(N):
        for j in range(N):
            if j != i:
                shaping[i] += hess[j, i, :, j, :] @ grads[i, j]  # (grad_i grad_j V_j) grad_j V_i
                look[i] += hess[i, i, :, j, :] @ grads[j, j]  # (grad_i grad_j V_i) grad_j V_j
    d = directions()
    assert np.abs(shaping).max() > 0.1 and np.abs(look).max() > 0.1  # the game couples every pair of agents
    np.testing.assert_allclose(d["shaping"], shaping, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d["lookahead_correction"], look, rtol=1e-4, atol=1e-5)
    naive = grads[np.arange(N), np.arange(N)]
    np.testing.assert_allclose(d["lola"], naive + ETA * shaping, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d["lola_rows"], naive + ETA * shaping, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d["lookahead"], naive + ETA * look, rtol=1e-4, atol=1e-5)


def central_differences(f, theta, h=1e-2):
    """[N, P]: d f(theta)[i] / d theta[i, p] by central differences, all perturbations in one vmapped call.
    f: [N, P] -> [N]."""
    steps = h * jnp.eye(N * P).reshape(N * P, N, P)
    diff = jax.jit(lambda t: (jax.vmap(f)(t + steps) - jax.vmap(f)(t - steps)) / (2 * h))(theta)  # [N * P, N]
    return np.asarray(diff).reshape(N, P, N)[np.arange(N), :, np.arange(N)]


def test_game_hessian_products_match_the_explicit_hessian():
    _, hess = explicit()
    game_h = hess[np.arange(N), np.arange(N)].reshape(N * P, N * P)  # rows: grad_i V_i, columns: theta_j
    v = np.asarray(V).reshape(-1)
    np.testing.assert_allclose(directions()["hv"].reshape(-1), game_h @ v, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(directions()["htv"].reshape(-1), game_h.T @ v, rtol=1e-4, atol=1e-5)
    assert np.abs(game_h - game_h.T).max() > 0.1  # a general game: H is not symmetric


def test_lola_direction_is_the_derivative_of_the_shaped_objective():
    """Finite differences: LOLA's correction for agent i is d/dtheta_i of sum_{j != i} w_ij . grad_j V_j(theta),
    the weights w_ij = grad_j V_i held at the current theta."""
    grads, _ = explicit()
    off = jnp.asarray(grads * (1.0 - np.eye(N))[:, :, None])  # [i, j, P]: w_ij, zero for j = i

    def shaped(theta):  # [N]
        return jnp.einsum("ijp,jp->i", off, gg.naive(value_fn)(theta))

    fd = central_differences(shaped, THETA)
    np.testing.assert_allclose(directions()["shaping"], fd, rtol=2e-3, atol=2e-3)


def test_exact_lookahead_gradient_and_its_taylor_expansion():
    """``lola(taylor=False)`` is the gradient of V_i(theta_i, theta_-i + eta grad_-i V_-i) (finite differences) and
    equals naive + eta * (shaping + lookahead corrections) up to O(eta^2)."""

    def lookahead_values(theta):  # [N]: each agent's value after the others' naive steps
        g = gg.naive(value_fn)(theta)
        others = 1.0 - jnp.eye(N)
        return jax.vmap(lambda i: value_fn(theta + ETA * others[i][:, None] * g)[i])(jnp.arange(N))

    fd = central_differences(lookahead_values, THETA)
    exact = jax.jit(jax.vmap(lambda eta: gg.lola(value_fn, eta, taylor=False)(THETA)))(jnp.array([ETA, 0.04, 0.02]))
    np.testing.assert_allclose(exact[0], fd, rtol=2e-3, atol=2e-3)

    d = directions()
    first_order = d["shaping"] + d["lookahead_correction"]
    errors = [np.abs(np.asarray(exact[k]) - d["naive"] - eta * first_order).max() for k, eta in ((1, 0.04), (2, 0.02))]
    assert 3.0 < errors[0] / errors[1] < 5.0, errors  # the remainder is quadratic in eta


# -- games through each agent's outputs: the separable forms against the generic ones -------------------------------
_KM, _KB = jax.random.split(jax.random.PRNGKey(9))
M = jax.random.normal(_KM, (N, 4, P))
B_MIX = jax.random.normal(_KB, (N, 5, 4 * N))


def agent_fns():
    """Agent a's outputs: a pytree (tanh(M_a theta_a) [4], its square sum []), non-linear in theta_a."""
    def f(theta_a, a):
        h = jnp.tanh(M[a] @ theta_a)
        return {"h": h, "energy": jnp.sum(h**2)}
    return [functools.partial(f, a=a) for a in range(N)]


def outputs_objective(outputs):
    """[N]: V_k = sum(sin(B_k [h_0, h_1, h_2])) + energy_k * sum_a energy_a: every pair of agents coupled."""
    h = jnp.concatenate([o["h"] for o in outputs])
    energies = jnp.stack([o["energy"] for o in outputs])
    return jnp.sin(B_MIX @ h).sum(axis=1) + energies * energies.sum()


def separable_value_fn(theta):
    return outputs_objective(tuple(f(theta[a]) for a, f in enumerate(agent_fns())))


def test_separable_forms_equal_the_generic_directions():
    """J_a^T d_a V and J_i^T (d_i d_j V_j) J_j v equal the Jacobian, naive gradient and LOLA's shaping term of the
    composed game by automatic differentiation of the whole (agents' second derivatives included there)."""

    @jax.jit
    def both(theta):
        fns, rows = agent_fns(), (2, 0)
        jac = gg.separable_jacobian(fns, outputs_objective, theta, rows)
        full = gg.jacobian(separable_value_fn, theta)
        return {"naive": (gg.separable_naive(fns, outputs_objective, theta), gg.naive(separable_value_fn)(theta)),
                "jacobian": (jac, full[jnp.array(rows)]),
                "shaping": (gg.separable_shaping(fns, outputs_objective, theta, jac, rows),
                            gg.shaping_correction(separable_value_fn)(theta)[jnp.array(rows)])}

    for name, (separable, generic) in both(THETA).items():
        assert np.abs(np.asarray(generic)).max() > 0.1, name
        np.testing.assert_allclose(separable, generic, rtol=1e-4, atol=1e-5, err_msg=name)


# -- the papers' adjusters (on the losses l = -V), against the explicit Hessians of the random game above ----------
GAMMA, EPS, A_SOS = 0.7, 0.1, 0.5
# (game scale, b, a): p_2 = 1 (|xi| >= b); p_2 = |xi|^2 < p_1 (|xi| < b); then <-alpha chi, xi_0> < 0 with
# p_1 = -a |xi_0|^2 / <-alpha chi, xi_0> ~ 0.62 < p_2 = 1
SOS_CASES = ((1.0, 1e-3, A_SOS), (0.05, 1e3, A_SOS), (-0.3, 1e-3, 0.01))


@functools.cache
def adjusted():
    @jax.jit
    def all_of_them(theta):
        out = {"collective": gg.collective_gradient(value_fn)(theta), "cga": gg.consensus(value_fn, GAMMA)(theta),
               "sga": gg.sga(value_fn, EPS, 2.0)(theta), "aga": gg.aga(value_fn, 1.5)(theta),
               "aga_lambda": gg.aga_lambda(value_fn, theta, 1.5),
               "aga_factors": gg.aga_with_lambda(value_fn, theta, 1.5)[2],
               "lola_lookahead": gg.lola_lookahead(value_fn, ETA)(theta)}
        for k, (scale, b, a) in enumerate(SOS_CASES):
            out[f"sos_{k}"] = gg.sos(lambda t: scale * value_fn(t), ETA, a, b)(theta)
        return out

    return jax.tree.map(np.asarray, all_of_them(THETA))


def explicit_losses(scale=1.0):
    """The losses' xi [N P], game Hessian H [N P, N P], collective gradient and Hessian, per-agent gradients and
    Hessians, of the game ``scale * value_fn``."""
    grads, hess = explicit()
    grads, hess = scale * grads, scale * hess
    diag = np.arange(N)
    xi = -grads[diag, diag].reshape(-1)
    h = -hess[diag, diag].reshape(N * P, N * P)  # rows: grad_i l_i, columns: theta_j
    xi_c = -grads.sum(axis=0).reshape(-1)
    h_c = -hess.sum(axis=0).reshape(N * P, N * P)
    return xi, h, xi_c, h_c, -grads, -hess


def test_collective_consensus_and_sga_match_their_formulas():
    xi, h, xi_c, _, _, _ = explicit_losses()
    d = adjusted()
    np.testing.assert_allclose(d["collective"].reshape(-1), -xi_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d["cga"].reshape(-1), -(xi + GAMMA * h.T @ xi), rtol=1e-4, atol=1e-5)
    grad_ham, a_t_xi = h.T @ xi, (h.T @ xi - h @ xi) / 2
    lam = 2.0 * np.sign((xi @ grad_ham) * (a_t_xi @ grad_ham) / xi.size + EPS)
    np.testing.assert_allclose(d["sga"].reshape(-1), -(xi + lam * a_t_xi), rtol=1e-4, atol=1e-5)
    assert np.abs(a_t_xi).max() > 0.1


def test_aga_matches_its_formula():
    xi, _, xi_c, h_c, _, _ = explicit_losses()
    np.testing.assert_allclose(h_c, h_c.T, atol=1e-5)  # the collective loss has a symmetric Hessian
    grad_ham_c = h_c.T @ xi_c
    lam = 1.5 * np.sign((xi_c @ grad_ham_c) * (xi @ grad_ham_c + grad_ham_c @ grad_ham_c))
    d = adjusted()
    assert d["aga_lambda"] == lam
    np.testing.assert_allclose(d["aga_factors"], (xi_c @ grad_ham_c, xi @ grad_ham_c + grad_ham_c @ grad_ham_c),
                               rtol=1e-4)
    np.testing.assert_allclose(d["aga"].reshape(-1), -(xi_c + lam * (xi + grad_ham_c)), rtol=1e-4, atol=1e-5)


def test_lola_with_lookahead_and_sos_match_their_formulas():
    d = adjusted()
    p_used = []
    for k, (scale, b, a) in enumerate(SOS_CASES):
        xi, h, _, _, grads_l, hess_l = explicit_losses(scale)
        off = h * (1 - np.kron(np.eye(N), np.ones((P, P))))  # H_o: the off-diagonal blocks
        xi_0 = xi - ETA * off @ xi
        chi = np.stack([sum(hess_l[j, i, :, j, :] @ grads_l[i, j] for j in range(N) if j != i) for i in range(N)])
        chi = chi.reshape(-1)
        if scale == 1.0:
            np.testing.assert_allclose(d["lola_lookahead"].reshape(-1), -(xi_0 - ETA * chi), rtol=1e-4, atol=1e-5)
        dot = -ETA * chi @ xi_0
        p1 = 1.0 if dot >= 0 else min(1.0, -a * (xi_0 @ xi_0) / dot)
        p2 = xi @ xi if np.sqrt(xi @ xi) < b else 1.0
        p_used.append((dot, p1, p2))
        np.testing.assert_allclose(d[f"sos_{k}"].reshape(-1), -(xi_0 - min(p1, p2) * ETA * chi), rtol=1e-4,
                                   atol=1e-6)
    assert p_used[0][2] == 1.0 and p_used[1][2] < p_used[1][1], p_used  # both branches of p_2
    dot, p1, p2 = p_used[2]
    assert dot < 0 and p1 < 0.8 and p2 == 1.0, p_used  # p_1's negative-product branch decides p
    assert np.abs((1.0 - p1) * ETA * chi).max() > 0.01  # p = 1 would move the direction far beyond the tolerance


def test_aga_sign_rule_on_random_quadratic_games():
    """Quadratic games l_i = theta^T Q_i theta / 2 + c_i . theta (closed-form gradients and Hessians in numpy): the
    sign of AgA's lam is the paper's rule sign(<xi_c, H_c xi_c> (<xi, H_c xi_c> + |H_c xi_c|^2)), both signs met."""
    games, n, p = 256, 2, 2
    rng = np.random.default_rng(0)
    q = rng.normal(size=(games, n, n * p, n * p)).astype(np.float32)
    c = rng.normal(size=(games, n, n * p)).astype(np.float32)
    x = rng.normal(size=(games, n * p)).astype(np.float32)

    def lam(q_g, c_g, x_g):
        def values(theta):  # [N, P] -> [N]: V_i = -l_i
            t = theta.reshape(-1)
            return -(0.5 * jnp.einsum("a,iab,b->i", t, q_g, t) + c_g @ t)

        return gg.aga_lambda(values, x_g.reshape(n, p), 1.0)

    got = np.asarray(jax.jit(jax.vmap(lam))(q, c, x))
    grads = np.einsum("giab,gb->gia", 0.5 * (q + q.transpose(0, 1, 3, 2)), x) + c  # grad of each l_i, [G, N, N P]
    sym = 0.5 * (q + q.transpose(0, 1, 3, 2))
    xi = np.stack([grads[:, i, i * p:(i + 1) * p] for i in range(n)], axis=1).reshape(games, -1)
    xi_c = grads.sum(axis=1)
    grad_ham_c = np.einsum("gab,gb->ga", sym.sum(axis=1), xi_c)
    rule = np.einsum("ga,ga->g", xi_c, grad_ham_c) * (np.einsum("ga,ga->g", xi, grad_ham_c)
                                                       + np.einsum("ga,ga->g", grad_ham_c, grad_ham_c))
    np.testing.assert_array_equal(got, np.sign(rule))
    assert (got > 0).any() and (got < 0).any()


def test_sga_sign_rule_on_random_quadratic_games():
    """Quadratic games l_i = theta^T Q_i theta / 2 + c_i . theta of random scales (closed-form xi and H in numpy): SGA's
    direction is -(xi + lam A^T xi) with lam = 2 sign(<xi, H^T xi> <A^T xi, H^T xi> / d + eps), both signs met, and
    games whose product / d lies in (-eps, 0) (eps decides), some with the product itself below -eps (/ d decides)."""
    games, n, p = 256, 2, 2
    d = n * p
    rng = np.random.default_rng(1)
    scales = 10 ** rng.uniform(-1.0, 0.0, size=(games, 1, 1, 1))
    q = (scales * rng.normal(size=(games, n, d, d))).astype(np.float32)
    c = (scales[:, :, :, 0] * rng.normal(size=(games, n, d))).astype(np.float32)
    x = rng.normal(size=(games, d)).astype(np.float32)

    def direction(q_g, c_g, x_g):
        def values(theta):  # [N, P] -> [N]: V_i = -l_i
            t = theta.reshape(-1)
            return -(0.5 * jnp.einsum("a,iab,b->i", t, q_g, t) + c_g @ t)

        return gg.sga(values, EPS, 2.0)(x_g.reshape(n, p)).reshape(-1)

    got = np.asarray(jax.jit(jax.vmap(direction))(q, c, x), np.float64)
    q, c, x = (np.asarray(a, np.float64) for a in (q, c, x))
    sym = 0.5 * (q + q.transpose(0, 1, 3, 2))
    grads = np.einsum("giab,gb->gia", sym, x) + c  # grad of each l_i, [G, N, d]
    xi = np.stack([grads[:, i, i * p:(i + 1) * p] for i in range(n)], axis=1).reshape(games, d)
    h = np.concatenate([sym[:, i, i * p:(i + 1) * p] for i in range(n)], axis=1)  # [G, d, d]: rows d xi_i
    grad_ham = np.einsum("gba,gb->ga", h, xi)  # H^T xi
    a_t_xi = (grad_ham - np.einsum("gab,gb->ga", h, xi)) / 2
    product = np.einsum("ga,ga->g", xi, grad_ham) * np.einsum("ga,ga->g", a_t_xi, grad_ham) / d  # / d included
    lam = 2.0 * np.sign(product + EPS)
    np.testing.assert_allclose(got, -(xi + lam[:, None] * a_t_xi), rtol=1e-4, atol=1e-5)
    got_lam = -np.einsum("ga,ga->g", got + xi, a_t_xi) / np.einsum("ga,ga->g", a_t_xi, a_t_xi)
    np.testing.assert_allclose(got_lam, lam, atol=0.1)  # each game's lam, however small its A^T xi
    assert np.abs(product + EPS).min() > 0.05 * EPS  # no game near a tie of the sign
    assert (lam < 0).sum() >= 10 and (product > 0).sum() >= 10
    assert ((product < -0.1 * EPS) & (lam > 0)).sum() >= 10  # eps decides
    assert ((product * d < -EPS) & (lam > 0)).sum() >= 10  # the / d decides
