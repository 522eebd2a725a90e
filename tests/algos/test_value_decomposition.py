"""Value-based learners (IQL, VDN, QMIX): the QMIX paper's two-step game in its full-exploration regime (every action
uniform, epsilon = 1 throughout: the greedy policy read from the learned values), what independent learners learn
there, available-action masking in acting and in the TD target, termination versus truncation in the target, bad
input, and the command line.

Each (environment, config) is trained by one compiled ``jit(vmap(trainer))`` over seeds, shared between tests.
"""
import contextlib
import dataclasses
import functools
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
import train
from algos import value_decomposition as vd
from algos.value_decomposition.learner import Sample
from algos.value_decomposition.model import build_model
from envs.matrix import MatrixGame
from jaxmarl_core.env import Environment, TimeStep
from jaxmarl_core.learner_view import LearnerObs, LearnerView
from jaxmarl_core.spaces import Box, Discrete

UNIFORM = dict(epsilon_start=1.0, epsilon_end=1.0)  # the paper's full exploration: every joint action uniform
SEEDS = 8


def make_config(env, variant, **kw):
    cfg = dataclasses.replace(vd.default_config(env, variant), **kw)
    cfg.validate(env)
    return cfg


@functools.cache
def trained(env, cfg, seeds=SEEDS):
    """The final state and metrics {name: [S, U, ...]} of ``seeds`` seeds (keys split from PRNGKey(0))."""
    out = jax.jit(jax.vmap(vd.make_train(env, cfg)))(
        jax.random.split(jax.random.PRNGKey(0), seeds))
    return out.state, jax.tree.map(np.asarray, out.metrics)


TWO_STEP = envs.make("two_step")
ONE_HOT = jnp.eye(3)  # the observations of the first state, 2A and 2B


def agent_q(cfg, params):
    """Each seed's agents' Q-values [S, 3 states, N, A] at the two-step game's three states."""
    model = build_model(LearnerView(TWO_STEP, with_state=cfg.mixer == "qmix"), cfg)
    obs = jnp.broadcast_to(ONE_HOT[:, None, :], (3, 2, 3))
    return np.asarray(jax.vmap(lambda p: model.q_values(p, obs))(params))


# -- the two-step game -------------------------------------------------------------------------------------------------
def test_two_step_qmix_finds_the_optimum_vdn_cannot():
    """QMIX's greedy joint policy goes to 2B and plays (1, 1) for 8; VDN's additive fit of 2B's payoffs under uniform
    play values (1, 1) at 2.5 + 2 + 2 = 6.5 < 7, so it takes 2A for 7."""
    qmix = trained(TWO_STEP, make_config(TWO_STEP, "qmix", **UNIFORM))[1]
    vdn = trained(TWO_STEP, make_config(TWO_STEP, "vdn", **UNIFORM))[1]
    assert np.sum(qmix["greedy_return"][:, -1, 0] == 8.0) >= SEEDS - 1, qmix["greedy_return"][:, -1, 0]
    assert np.sum(vdn["greedy_return"][:, -1, 0] == 7.0) >= SEEDS - 1, vdn["greedy_return"][:, -1, 0]
    np.testing.assert_array_equal(qmix["epsilon"][:, -1], 1.0)
    assert np.all(qmix["learning"][:, -1] == 1) and np.all(np.isfinite(qmix["td_loss"]))
    # the team return under uniform play: 0.5 * 7 + 0.5 * (0 + 1 + 1 + 8) / 4
    np.testing.assert_allclose(np.mean(qmix["episode_return"][:, -50:, 0]), 4.75, atol=0.35)


def test_periodic_greedy_rollout_changes_only_what_is_evaluated():
    """eval_every=7: the same learning (TD losses equal) and greedy returns equal to the every-update ones after
    every 7th update and the last, the latest repeated in between."""
    every = trained(TWO_STEP, make_config(TWO_STEP, "qmix", **UNIFORM))[1]
    periodic = trained(TWO_STEP, make_config(TWO_STEP, "qmix", eval_every=7, **UNIFORM))[1]
    np.testing.assert_array_equal(periodic["td_loss"], every["td_loss"])
    updates = every["greedy_return"].shape[1]
    evaluated = [u for u in range(updates) if (u + 1) % 7 == 0 or u + 1 == updates]
    np.testing.assert_array_equal(periodic["greedy_return"][:, evaluated], every["greedy_return"][:, evaluated])
    latest = np.maximum.accumulate(np.where(np.isin(np.arange(updates), evaluated), np.arange(updates), -1))
    np.testing.assert_array_equal(periodic["greedy_return"][:, 6:], every["greedy_return"][:, latest[6:]])


def test_two_step_independent_learners_fit_their_expected_values():
    """Under uniform play each independent learner's Q is its expected return over the other's uniform action: in 2B
    Q(0) = 0.5 and Q(1) = 4.5, in 2A 7; in the first state agent 0's Q(A) = 0.99 * 7 and Q(B) = 0.99 * 4.5 (it
    bootstraps from its own max), while agent 1's action does not matter: 0.99 * (7 + 4.5) / 2. Greedy: 2A, 7."""
    cfg = make_config(TWO_STEP, "iql", **UNIFORM)
    state, metrics = trained(TWO_STEP, cfg)
    q = agent_q(cfg, state.params)  # [S, 3, 2, 2]
    want = np.array([[[0.99 * 7, 0.99 * 4.5], [0.99 * 5.75, 0.99 * 5.75]],
                     [[7, 7], [7, 7]],
                     [[0.5, 4.5], [0.5, 4.5]]])
    np.testing.assert_allclose(np.median(q, axis=0), want, atol=0.6)
    np.testing.assert_array_equal(metrics["greedy_return"][:, -1], 7.0)


# -- available actions -------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NoFirstAction(MatrixGame):
    """A common-payoff game whose optimum (0, 0) pays 11, with action 0 unavailable to both agents: (1, 1), paying
    7, is the best joint action left."""

    def avail_actions(self, state, params=None):
        return jnp.array([[False, True, True]] * 2)


def test_masked_actions_are_never_taken_nor_valued():
    payoff = np.array([[11, -5, -5], [-5, 7, 0], [-5, 0, 3]], np.float32)
    env = NoFirstAction.from_array("masked", np.stack([payoff, payoff]))
    for variant, kw in (("iql", UNIFORM), ("qmix", {})):
        state, metrics = trained(env, make_config(env, variant, **kw), seeds=2)
        actions = state.buffer.items.action[:, :int(state.buffer.size[0])]
        assert not np.any(np.asarray(actions) == 0) and np.any(np.asarray(actions) == 2), variant
        greedy = metrics["greedy_return"][:, :, 0]
        assert np.all(greedy <= 7.0), variant  # 11 needs the masked action
        np.testing.assert_array_equal(greedy[:, -1], 7.0, err_msg=variant)


def _batch(q_next_avail, terminated, reward=1.0):
    """A one-transition batch of the two-step game's 2B state with next available actions [2, 2]."""
    obs = LearnerObs(obs=jnp.broadcast_to(ONE_HOT[2], (1, 2, 3)), avail=jnp.ones((1, 2, 2), bool),
                     global_state=ONE_HOT[2][None], first=jnp.zeros((1,), bool))
    nxt = obs.replace(avail=jnp.asarray(q_next_avail)[None])
    return Sample(obs=obs, action=jnp.zeros((1, 2), jnp.int32), reward=jnp.full((1, 2), reward),
                  terminated=jnp.asarray([terminated]), next_obs=nxt)


@pytest.mark.parametrize("double_q", [False, True])
def test_td_target_masks_the_max_and_bootstraps_only_without_termination(double_q):
    """target = r + gamma * v', for a transition that did not terminate (a truncated one included: it is stored with
    terminated False and its pre-reset next observation); r alone when it did. v' is the target network's max over
    the available next actions, or under double Q the target network's value of the online network's greedy
    available action; the two networks are initialised apart, so that their greedy actions differ."""
    cfg = make_config(TWO_STEP, "iql", double_q=double_q, gamma=0.5)
    model = build_model(LearnerView(TWO_STEP), cfg)
    params, target_params = model.init(jax.random.PRNGKey(3)), model.init(jax.random.PRNGKey(4))
    obs = jnp.broadcast_to(ONE_HOT[2], (1, 2, 3))  # o' = o in _batch
    q, q_target = (np.asarray(model.q_values(p, obs))[0] for p in (params, target_params))  # [N, A]
    assert np.any(q.argmax(axis=1) != q_target.argmax(axis=1))  # else double Q's value is the target's max
    only_worse = (q < q.max(axis=1, keepdims=True))  # each agent's non-greedy (online) action only
    agents = np.arange(2)
    for avail, terminated in ((np.ones((2, 2), bool), False), (only_worse, False), (only_worse, True)):
        steps = jax.tree.map(lambda x: x[None], _batch(avail, terminated))  # one sequence of one step
        got = float(vd.td_loss(model, cfg, params, target_params, steps, jnp.ones((1, 1), bool)))
        max_q = np.where(avail, q_target, -np.inf).max(axis=1)
        double = q_target[agents, np.where(avail, q, -np.inf).argmax(axis=1)]
        losses = [np.mean((q[:, 0] - 1.0 - (0.0 if terminated else 0.5 * nxt)) ** 2) for nxt in (max_q, double)]
        np.testing.assert_allclose(got, losses[double_q], rtol=1e-5)
        if avail.all() and not terminated:  # the two targets tell the rules apart here
            assert abs(losses[1] - losses[0]) > 1e-3 * losses[0], losses  # measured: 0.012 relative


def test_td_lambda_follows_the_episode_and_stops_at_its_end():
    """Two-step sequences of QMIX's recurrent agents: with the episode cut after its first step, TD(lambda)'s loss is
    the one-step loss; over both steps it is the loss of the targets r_0 + gamma * ((1 - lam) * v_0 + lam * G_1),
    G_1 = r_1 + gamma * v_1, v_t the target mixer's value of the observation step t reached (double Q)."""
    base = make_config(TWO_STEP, "qmix", recurrent=True, gamma=0.9)
    lam = dataclasses.replace(base, td_lambda=0.6)
    model = build_model(LearnerView(TWO_STEP, with_state=True), base)
    params, target = model.init(jax.random.PRNGKey(5)), model.init(jax.random.PRNGKey(6))
    step0, step1 = _batch(np.ones((2, 2), bool), False, reward=1.0), _batch(np.ones((2, 2), bool), False, reward=3.0)
    step0 = step0.replace(obs=step0.obs.replace(first=jnp.ones((1,), bool)))
    steps = jax.tree.map(lambda a, b: jnp.stack([a, b]), step0, step1)  # [L = 2, B = 1, ...]
    cut = jnp.array([[True], [False]])
    np.testing.assert_allclose(float(vd.td_loss(model, lam, params, target, steps, cut)),
                               float(vd.td_loss(model, base, params, target, steps, cut)), rtol=1e-6)
    # over both steps: v_t and Q_tot from the networks, as td_loss forms them (recurrent agents, double Q)
    obs, nxt = steps.obs, steps.next_obs
    h0 = model.initial_hidden(1)
    seq, q = model.apply(params, h0, obs.obs, obs.first)
    target_seq = model.apply(target, h0, obs.obs, obs.first)[0]
    greedy = jnp.argmax(model.next_q_values(params, seq, nxt.obs), axis=-1)
    v_i = jnp.take_along_axis(model.next_q_values(target, target_seq, nxt.obs), greedy[..., None], -1)[..., 0]
    v = np.asarray(model.mix(target, v_i, nxt.global_state))[:, 0]  # [L]
    q_tot = np.asarray(model.mix(params, jnp.take_along_axis(q, steps.action[..., None], -1)[..., 0],
                                 obs.global_state))[:, 0]
    g1 = 3.0 + 0.9 * v[1]
    g0 = 1.0 + 0.9 * (0.4 * v[0] + 0.6 * g1)
    want = np.mean((q_tot - np.array([g0, g1])) ** 2)
    np.testing.assert_allclose(float(vd.td_loss(model, lam, params, target, steps, jnp.ones((2, 1), bool))), want,
                               rtol=1e-5)


def test_team_rewards():
    r = jnp.array([[1.0, 3.0]])
    np.testing.assert_array_equal(vd.team_reward(r, "none"), r)
    assert float(vd.team_reward(r, "common")[0]) == 1.0 and float(vd.team_reward(r, "sum")[0]) == 4.0
    assert float(vd.team_reward(r, "mean")[0]) == 2.0


# -- recurrent agents --------------------------------------------------------------------------------------------------


def test_recurrent_agents_declare_library_reductions():
    """Only recurrent agents' training runs XLA's YNNPACK reductions (``Trainer.xla``): their TD loss's
    backward through the GRU ran faster with them on the 2-core CPU, the feed-forward learners' did not."""
    assert vd.make_train(TWO_STEP, make_config(TWO_STEP, "qmix", recurrent=True)).xla.library_reductions
    assert not vd.make_train(TWO_STEP, make_config(TWO_STEP, "qmix")).xla.library_reductions


@dataclasses.dataclass(frozen=True)
class Cue(Environment):
    """A memory game: the first observation shows a random cue (one-hot of 2), the second only a blank with a flag;
    each agent matching the cue with its second action adds 0.5 to the shared reward. A feed-forward agent sees the
    same blank whatever the cue (expected return 0.5 at best); a recurrent one can recall it (1)."""

    @property
    def num_agents(self):
        return 2

    @property
    def num_steps(self):
        return 2

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (3,)),) * 2

    @property
    def action_spaces(self):
        return (Discrete(2),) * 2

    def _obs(self, cue, t):
        return jnp.broadcast_to(jnp.where(t == 0, jax.nn.one_hot(cue, 3), jnp.array([0.0, 0.0, 1.0])), (2, 3))

    def reset_env(self, key, params):
        cue = jax.random.bernoulli(key).astype(jnp.int32)
        state = {"cue": cue, "t": jnp.zeros((), jnp.int32)}
        return self._obs(cue, state["t"]), state

    def step_env(self, key, state, actions, params):
        match = 0.5 * jnp.sum(actions == state["cue"])
        reward = jnp.where(state["t"] == 1, match, 0.0).astype(jnp.float32)
        new = {"cue": state["cue"], "t": state["t"] + 1}
        return TimeStep(obs=self._obs(new["cue"], new["t"]), state=new, reward=jnp.full((2,), reward),
                        terminated=new["t"] >= 2, truncated=jnp.asarray(False), info={})


def test_recurrent_agents_recall_what_they_saw():
    env = Cue()
    cfg = make_config(env, "drqn", hidden_size=32)
    assert cfg.recurrent and cfg.mixer == "none"
    state, metrics = trained(env, cfg)
    model = build_model(LearnerView(env), cfg)
    obs = jnp.stack([jnp.stack([env._obs(c, t) for c in (0, 1)]) for t in (0, 1)])  # [T, cues, N, D]
    first = jnp.array([[True, True], [False, False]])

    def second_actions(params):
        q = model.apply(params, model.initial_hidden(2), obs, first)[1]  # [T, cues, N, A]
        return jnp.argmax(q[1], axis=-1)  # [cues, N]

    actions = np.asarray(jax.vmap(second_actions)(state.params))  # [S, cues, N]
    recalled = np.all(actions == np.arange(2)[None, :, None], axis=(1, 2))
    assert np.sum(recalled) >= SEEDS - 1, actions
    assert np.all(metrics["learning"][:, -1] == 1)
    np.testing.assert_allclose(np.mean(metrics["episode_return"][:, -20:]), 0.95 + 0.05 * 0.5, atol=0.1)


@pytest.mark.parametrize("name", ["mpe_simple", "mpe_speaker_listener", "gaussian_squeeze"])
def test_games_declaring_a_common_team_reward_pay_every_agent_alike(name):
    env = envs.make(name, **({"n_agents": 8} if name == "gaussian_squeeze" else {}))
    assert vd.reward_structure(env) == "common"
    obs, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for t in range(3):
        actions = jax.random.randint(jax.random.PRNGKey(t), (env.num_agents,), 0, env.num_actions)
        ts = step(jax.random.PRNGKey(10 + t), state, actions)
        np.testing.assert_array_equal(ts.reward, np.full(env.num_agents, ts.reward[0]))
        state = ts.state


# -- bad input ---------------------------------------------------------------------------------------------------------
def _cli_error(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert train.main(argv) == 2
    return err.getvalue()


def test_bad_environments_are_one_line_errors():
    message = _cli_error(["--algo", "qmix", "--env", "mpe_spread", "--env-arg", "continuous=true"])
    assert "discrete" in message and message.count("\n") == 1
    assert "cooperative" in _cli_error(["--algo", "vdn", "--env", "matrix_pd"])
    assert "cooperative" in algos.compatible("qmix", envs.make("matrix_bos"))
    for name in ("ipd", "coin_game", "mpe_tag", "mpe_adversary"):  # general-sum or competitive
        assert "TeamReward" in algos.compatible("vdn", envs.make(name)), name
    assert algos.compatible("iql", envs.make("matrix_pd")) is None  # independent learners need no shared reward
    assert "team_reward" in _cli_error(["--algo", "vdn", "--env", "mpe_spread", "--set", "team_reward=common"])
    for name in ("two_step", "matrix_climbing", "matrix_nonmonotonic", "matrix_penalty", "mpe_spread"):
        for variant in ("iql", "vdn", "qmix"):
            assert algos.compatible(variant, envs.make(name)) is None, (variant, name)
    assert vd.reward_structure(envs.make("two_step")) == "common"
    assert vd.reward_structure(envs.make("mpe_spread")) == "sum"
    assert vd.reward_structure(envs.make("mpe_tag")) == "unknown"
    assert vd.default_config(envs.make("mpe_spread"), "qmix").team_reward == "sum"


@pytest.mark.parametrize("changes,fragment", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=10_000), "batch_size"),
    (dict(buffer_size=16), "buffer_size"),
    (dict(learning_starts=10), "learning_starts"),
    (dict(target_update=0), "target_update"),
    (dict(num_sgd=-1), "num_sgd"),
    (dict(epsilon_end=1.5), "epsilon_end"),
    (dict(mixer="qtran"), "mixer"),
    (dict(team_reward="none"), "team_reward"),
    (dict(optimiser="sgd"), "optimiser"),
    (dict(total_steps=8), "total_steps"),
    (dict(eval_steps=-1), "eval_steps"),
    (dict(eval_every=0), "eval_every"),
    (dict(eval_episodes=0), "eval_episodes"),
    (dict(recurrent=True, episode_batch_size=5000), "episode_batch_size"),
    (dict(recurrent=True, episode_buffer_size=8), "episode_buffer_size"),
    (dict(td_lambda=0.6), "td_lambda"),
    (dict(mixer_init_scale=-1.0), "mixer_init_scale"),
    (dict(recurrent=True, td_lambda=1.5), "td_lambda"),
])
def test_bad_configs_name_the_field(changes, fragment):
    cfg = dataclasses.replace(vd.default_config(TWO_STEP, "qmix"), **changes)
    with pytest.raises(ValueError, match=fragment):
        cfg.validate(TWO_STEP)


# -- the command line --------------------------------------------------------------------------------------------------
def test_command_line_trains_recurrent_qmix_and_reports_the_greedy_return(tmp_path):
    out = str(tmp_path / "run")
    argv = ["--algo", "qmix", "--env", "two_step", "--seeds", "2", "--quiet", "--out", out,
            "--set", "total_steps=320", "--set", "hidden_size=16", "--set", "target_update=2",
            "--set", "recurrent=true"]
    assert train.main(argv) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["num_updates"] == 10
    final = summary["final"]
    assert any(k.startswith("greedy_return") for k in final) and any(k.startswith("td_loss") for k in final)
