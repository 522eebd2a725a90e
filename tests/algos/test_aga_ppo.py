"""AgA-PPO and the social-dilemma baselines on the on-policy learner: the AgA update against an explicit computation
with full Hessians (``jax.hessian``) of an independently written joint surrogate, the SVO reward against its closed
form (McKee et al., 2020), Simul-Co's collective reward, the Gini-based equality against the sorted-rank formula,
and bad input."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import envs
import train
from algos import onpolicy
from algos.onpolicy import actor, learner
from algos.onpolicy.model import build_model, init_params
from jaxmarl_core import social
from jaxmarl_core.learner_view import LearnerView

M = 6  # samples in the tiny batch


@pytest.fixture(scope="module")
def game():
    """A tiny AgA-PPO actor pair on the iterated prisoner's dilemma's observations and a batch of M samples."""
    env = envs.make("ipd")
    cfg = dataclasses.replace(onpolicy.default_config(env, "aga_ppo"), hidden_size=3, hidden_layers=1,
                              feature_norm=False, ppo_epochs=1, num_minibatches=1, max_grad_norm=0.0,
                              entropy_coef=0.05, clip_eps=0.2, aga_lambda=2.0, lr=0.01)
    cfg.validate(env)
    model = build_model(LearnerView(env, with_state=False), cfg)
    k_p, k_o, k_a, k_adv = jax.random.split(jax.random.PRNGKey(3), 4)
    params = init_params(model, model.actor, k_p, jnp.zeros((1, 1, 5)), stacked=True)
    batch = {"obs": jax.random.uniform(k_o, (1, M, 2, 5)), "first": jnp.zeros((1, M, 2), bool),
             "action": jax.random.randint(k_a, (1, M, 2), 0, 2), "mask": jnp.ones((1, M, 2, 2), bool),
             "adv": jax.random.normal(k_adv, (1, M, 2)), "log_factor": jnp.zeros((1, M, 2))}
    return env, cfg, model, params, batch


def explicit_logits(model, params_i, obs_i):
    """One agent's logits [M, 2] from its own parameters (the actor network applied directly)."""
    return model.actor.apply(params_i, None, obs_i[None], jnp.zeros((1, M), bool))[1][0]


def explicit_game(model, cfg, params, batch, old_logp):
    """The joint surrogates' losses written directly: (losses: theta [N * P] -> [N], theta, P), theta the agents'
    flattened parameters one after the other."""
    unravel = ravel_pytree(jax.tree.map(lambda x: x[0], params))[1]
    theta = jnp.concatenate([ravel_pytree(jax.tree.map(lambda x, i=i: x[i], params))[0] for i in range(2)])
    p = theta.size // 2

    def losses(th):  # l_i = -(clipped surrogate of A_i under the joint ratio + entropy bonus of agent i)
        logps, ents = [], []
        for i in range(2):
            logits = explicit_logits(model, unravel(th[i * p:(i + 1) * p]), batch["obs"][0, :, i])
            log_pi = jax.nn.log_softmax(logits)
            logps.append(jnp.take_along_axis(log_pi, batch["action"][0, :, i, None], 1)[:, 0])
            ents.append(-jnp.sum(jnp.exp(log_pi) * log_pi, -1).mean())
        rho = jnp.exp(logps[0] + logps[1] - old_logp[0, :, 0] - old_logp[0, :, 1])
        values = []
        for i in range(2):
            adv = batch["adv"][0, :, i]
            surr = jnp.minimum(rho * adv, jnp.clip(rho, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv).mean()
            values.append(surr + cfg.entropy_coef * ents[i])
        return -jnp.stack(values)

    return losses, theta, p


def explicit_aga(model, cfg, params, batch, old_logp):
    """AgA's descent direction [N * P] from full matrices: xi (each agent's own loss gradient), xi_c, H_c =
    jax.hessian of the collective loss, lam = |lam| sign(<xi_c, H_c^T xi_c> (<xi, H_c^T xi_c> + |H_c^T xi_c|^2))."""
    losses, theta, p = explicit_game(model, cfg, params, batch, old_logp)
    jac = jax.jacobian(losses)(theta)  # [2, 2P]
    xi = jnp.concatenate([jac[0, :p], jac[1, p:]])
    xi_c = jac.sum(0)
    h_c = jax.hessian(lambda th: losses(th).sum())(theta)
    grad_ham = h_c.T @ xi_c
    lam = abs(cfg.aga_lambda) * jnp.sign(jnp.dot(xi_c, grad_ham) * (jnp.dot(xi, grad_ham) + jnp.dot(grad_ham,
                                                                                                     grad_ham)))
    return xi_c + lam * (xi + grad_ham), lam


def explicit_cga(model, cfg, params, batch, old_logp):
    """CGA's descent direction [N * P] from full matrices: xi + gamma H^T xi, H = jax.jacobian of the simultaneous
    gradient xi = (grad_1 l_1, grad_2 l_2), itself from jax.jacobian of the losses -> (direction, xi)."""
    losses, theta, p = explicit_game(model, cfg, params, batch, old_logp)

    def xi_fn(th):
        jac = jax.jacobian(losses)(th)
        return jnp.concatenate([jac[0, :p], jac[1, p:]])

    xi = xi_fn(theta)
    return xi + cfg.cga_gamma * jax.jacobian(xi_fn)(theta).T @ xi, xi


def old_log_probs(model, params, batch):
    """log pi_old(a) [1, M, 2] of the batch's actions under ``params``."""
    return jnp.stack([jnp.take_along_axis(jax.nn.log_softmax(explicit_logits(
        model, jax.tree.map(lambda x, i=i: x[i], params), batch["obs"][0, :, i])), batch["action"][0, :, i, None],
        1)[:, 0] for i in range(2)], -1)[None]


def flat_stacked(tree):
    return jnp.concatenate([ravel_pytree(jax.tree.map(lambda x, i=i: x[i], tree))[0] for i in range(2)])


def test_aga_update_equals_a_step_along_the_full_hessian_computation(game):
    """One epoch, one minibatch, plain SGD of step 1: every agent moves by -d, d the explicit AgA direction; away
    from the old policy (ratios != 1, some clipped), over old policies giving both signs of lam."""
    _, cfg, model, params, batch = game
    sgd = optax.sgd(1.0)
    update = jax.jit(lambda b: actor.update_actors(model, cfg, sgd, params, jax.vmap(sgd.init)(params), b,
                                                   jax.random.PRNGKey(0)))
    explicit = jax.jit(lambda old: explicit_aga(model, cfg, params, batch, old))

    @jax.jit
    def old_policy(draw, scale):  # log-probabilities of an old policy drawn around the current one
        keys = iter(jax.random.split(jax.random.PRNGKey(draw), len(jax.tree.leaves(params))))
        shift = jax.tree.map(lambda x: scale * jax.random.normal(next(keys), x.shape), params)
        return old_log_probs(model, jax.tree.map(jnp.add, params, shift), batch)

    signs = set()
    for draw, scale in ((0, 0.5), (1, 0.1), (6, 0.5), (2, 0.5)):
        old = old_policy(draw, scale)
        new, _, metrics = update({**batch, "old_logp": old})
        d, lam = explicit(old)
        np.testing.assert_allclose(flat_stacked(params) - flat_stacked(new), d, rtol=1e-4,
                                   atol=1e-5 * float(jnp.abs(d).max()))
        assert float(metrics["aga_sign"]) == float(jnp.sign(lam))
        signs.add(float(jnp.sign(lam)))
    assert signs == {-1.0, 1.0}, signs


def test_cga_update_equals_a_step_along_the_full_jacobian_computation(game):
    """``cga_ppo``'s actor step (``actor_update="cga"``, gamma 0.7): one epoch, one minibatch, SGD of step 1 moves
    every agent by -d, d the explicit CGA direction, away from the old policy (ratios != 1)."""
    _, aga_cfg, model, params, batch = game
    cfg = dataclasses.replace(aga_cfg, actor_update="cga", cga_gamma=0.7)
    sgd = optax.sgd(1.0)
    keys = iter(jax.random.split(jax.random.PRNGKey(0), len(jax.tree.leaves(params))))
    old = old_log_probs(model, jax.tree.map(lambda x: x + 0.5 * jax.random.normal(next(keys), x.shape), params),
                        batch)
    new = jax.jit(lambda b: actor.update_actors(model, cfg, sgd, params, jax.vmap(sgd.init)(params), b,
                                                jax.random.PRNGKey(0))[0])(
        {**batch, "old_logp": old})
    d, xi = jax.jit(lambda o: explicit_cga(model, cfg, params, batch, o))(old)
    assert float(jnp.abs(d - xi).max()) > 1e-2 * float(jnp.abs(d).max())  # the consensus term H^T xi matters
    np.testing.assert_allclose(flat_stacked(params) - flat_stacked(new), d, rtol=1e-4,
                               atol=1e-5 * float(jnp.abs(d).max()))


def svo_closed_form(r, angle_deg, w):
    """r_i - w |theta - atan(mean_{j != i} r_j / r_i)| for r_i > 0, written per agent with math."""
    out = []
    for ri in r:
        others = (sum(r) - ri) / (len(r) - 1)
        out.append(ri - w * abs(math.radians(angle_deg) - math.atan(others / ri)))
    return out


def test_svo_collective_and_own_rewards_the_learner_trains_on():
    env = envs.make("ipd")
    base = onpolicy.default_config(env, "ippo")
    rng = np.random.default_rng(0)
    r = rng.uniform(0.1, 3.0, (5, 4)).astype(np.float32)  # positive own rewards: atan's closed form applies
    svo = learner.shaped_reward(dataclasses.replace(base, svo_weight=0.7, svo_angle=30.0), jnp.asarray(r))
    np.testing.assert_allclose(svo, [svo_closed_form(list(map(float, row)), 30.0, 0.7) for row in r], rtol=1e-5)
    co = learner.shaped_reward(dataclasses.replace(base, team_reward=True), jnp.asarray(r))
    np.testing.assert_allclose(co, np.repeat(r.sum(-1, keepdims=True), 4, -1), rtol=1e-6)
    np.testing.assert_array_equal(learner.shaped_reward(base, jnp.asarray(r)), r)
    # the quadrants atan2 covers: the others' mean ahead of a zero own reward is 90 degrees; all zero: no penalty
    edge = social.svo_reward(jnp.array([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]), math.radians(45), 1.0)
    np.testing.assert_allclose(edge, [[-math.pi / 4, 1 - abs(math.pi / 4 - math.atan2(0.5, 1.0)),
                                       1 - abs(math.pi / 4 - math.atan2(0.5, 1.0))], [0.0, 0.0, 0.0],
                                      [-1 - 3 * math.pi / 4, -abs(math.pi / 4 - math.atan2(-0.5, 0.0)),
                                       -abs(math.pi / 4 - math.atan2(-0.5, 0.0))]], rtol=1e-6)


def test_equality_is_one_minus_the_gini_of_sorted_ranks():
    x = np.random.default_rng(1).uniform(0, 5, (20, 7))
    s = np.sort(x, -1)
    ranks = np.arange(1, 8)
    gini = 2 * (s * ranks).sum(-1) / (7 * s.sum(-1)) - 8 / 7  # the sorted-rank formula
    np.testing.assert_allclose(social.equality(jnp.asarray(x)), 1 - gini, rtol=1e-5)
    assert float(social.equality(jnp.array([1.0, 1.0]))) == 1.0 and float(social.equality(jnp.zeros(3))) == 1.0
    assert abs(float(social.equality(jnp.array([0.0, 0.0, 0.0, 1.0]))) - 0.25) < 1e-6


@pytest.mark.parametrize("sets,fragment", [
    (["share_params=true"], "actor_update=aga needs share_params=False"),
    (["aga_lambda=-1"], "aga_lambda"),
    (["actor_update=cga", "share_params=true"], "actor_update=cga needs share_params=False"),
    (["actor_update=cga", "cga_gamma=-1"], "cga_gamma"),
    (["svo_weight=1", "team_reward=true"], "svo_weight needs team_reward=False"),
])
def test_bad_input_is_one_line(sets, fragment, capsys):
    argv = ["--algo", "aga_ppo", "--env", "ipd", "--out", "/nonexistent-never-written"]
    for s in sets:
        argv += ["--set", s]
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
