"""Opponent shaping from samples: NL-PG, LOLA-PG, LOLA-OM (Foerster et al., 2018) and LOLA-DiCE (Foerster et al.,
2018, "DiCE"), on the iterated games and the Coin Game.

Episodes last a fixed number of steps (the ``FixedHorizon`` capability). Where the environment has tabular states
(``TabularStates``: the iterated games) each agent has a memory-one policy, one logit of its first action per
one-hot observed state (5 logits of cooperating, as in ``env.exact_value``); otherwise (the Coin Game) a recurrent
policy network (GRU, or the LOLA paper's conv + LSTM). Parameters are flat vectors stacked to ``[2, P]``. Each
agent's baseline is linear in its observation (tabular state values in the iterated games), refitted by least
squares to the returns of every fresh batch, or (``critic="trunk"``, policy networks) a linear value head on the
policy's encoder, trained with the encoder by a gradient step on each batch as the LOLA reference code's critic.
Every update samples ``batch_size`` whole episodes; every estimate is a derivative of the DiCE surrogate
(``jaxmarl_core.dice``) of those samples, whose first derivative is REINFORCE with a baseline and whose cross second
derivative is the LOLA paper's estimator sum_t gamma^t r_t (sum_l grad log pi_1)(sum_l grad log pi_2)^T.

- ``nl_pg``:    theta_i += delta * grad_i L_i
- ``lola_pg``:  theta_i += delta * (grad_i L_i + eta * (grad_j L_i)^T grad_i grad_j L_j)
- ``lola_om``:  ``lola_pg`` where agent i replaces theta_j by a model fitted to j's observed actions (per-state
  maximum likelihood for memory-one policies, gradient ascent on the log-likelihood for policy networks)
- ``lola_dice``: agent i unrolls K naive DiCE steps of j on fresh samples, theta_j' <- theta_j' + eta grad_j' L_j,
  and ascends its own DiCE objective on samples under (theta_i, theta_j'), differentiating through the unroll.

The first three directions are ``jaxmarl_core.game_gradients.naive`` and ``.lola`` of the sampled objectives, taken
through each agent's log-probabilities (``game_gradients.separable_*``: first-order passes of the policy networks,
second derivatives of the DiCE objective in the log-probabilities only); the optimiser (``optimizer``: SGD or Adam
with step delta) is applied to each variant's direction.

Presets (``default_config(env, variant, preset)``, ``--set preset=NAME`` on the command line): ``default`` (the
settings below) and ``lola_paper``, the LOLA paper's settings for ``nl_pg``, ``lola_pg`` and ``lola_om`` as its
reference code runs them (``lola_paper_config``).

With ``exact=True`` the closed-form values of ``env.exact_value`` replace the sampled surrogates (for studies and
tests: then ``lola_dice`` with K = 1 is exactly ``lola_exact`` with ``taylor=False``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmarl_core import game_gradients, linalg
from jaxmarl_core.capabilities import Discounted, ExactValue, FixedHorizon, TabularStates, has, missing
from jaxmarl_core.config import Config, require_nonnegative, require_positive, require_positive_int
from jaxmarl_core.dice import dice_objective
from jaxmarl_core.policies import FlatPolicy, MemoryOnePolicy, RecurrentPolicy, categorical_from_uniform
from jaxmarl_core.returns import discounted_returns
from jaxmarl_core.rollout import reset_carry, rollout
from jaxmarl_core.spaces import Discrete
from jaxmarl_core.training import Trainer

VARIANTS = ("nl_pg", "lola_pg", "lola_om", "lola_dice")
PRESETS = ("default", "lola_paper")
NETWORKS = ("gru", "conv_lstm")
CRITICS = ("linear", "trunk")
PAPER_IMP_DISCOUNT = 0.9  # the LOLA paper discounts IMP by 0.9 (the IPD and the Coin Game by 0.96)


@dataclasses.dataclass(frozen=True)
class ShapingConfig(Config):
    variant: str = "lola_dice"
    num_updates: int = 200
    batch_size: int = 128  # episodes sampled per estimate
    episode_chunks: int = 1  # estimates over the batch in this many equal chunks of episodes, each recomputed in the
    # backward pass (jax.checkpoint): the estimators' memory falls about as 1 / chunks
    lr: float = 0.2  # delta: the outer (own) step size
    lookahead_lr: float = 0.3  # eta: the opponent's step size in the look-ahead
    lookahead: int = 1  # K, look-ahead steps of lola_dice (1 to 5)
    baseline: str = "any_order"  # "none", "dice" (the DiCE paper's first-order baseline) or "any_order" (Mao et al.)
    critic: str = "linear"  # the baselines' values: "linear" (least squares on the observation, refitted to every
    # batch) or "trunk" (policy networks: the LOLA reference code's value head on the policy's encoder, trained with
    # the encoder by one SGD step of ``critic_lr`` per update)
    critic_lr: float = 1.0
    om_prior: float = 0.5  # lola_om: pseudo-count of each action in the opponent model's per-state estimate
    init_std: float = 0.0  # memory-one policies: theta ~ N(0, init_std^2); 0 starts from p = 0.5 everywhere
    hidden: int = 32  # recurrent policies (Coin Game): GRU or LSTM width
    network: str = "gru"  # recurrent policies: "gru" (Dense + GRU) or "conv_lstm" (the LOLA paper's conv + LSTM)
    batch_norm: bool = False  # conv_lstm: the LOLA reference code's batch normalisation of the convolutions, over
    # the games of each step when acting and over the steps of each chunk of episodes (``episode_chunks``) in the
    # estimates
    om_lr: float = 0.025  # lola_om with policy networks: step of the model's ascent on the opponent's log-likelihood
    om_first_steps: int = 50  # ... ascent steps on the first batch (one per update after it)
    preset: str = "default"  # the defaults these settings started from: "default" or "lola_paper"
    gamma: float = 0.96  # discount where the environment defines none (the iterated games carry their own)
    optimizer: str = "sgd"  # "sgd" or "adam": the outer step (LOLA-DiCE uses Adam)
    exact: bool = False  # use env.exact_value instead of samples

    def validate(self, env) -> None:
        super().validate(env)
        if self.baseline not in ("none", "dice", "any_order"):
            raise ValueError(f"baseline must be 'none', 'dice' or 'any_order', got {self.baseline!r}")
        if self.critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}, got {self.critic!r}")
        if self.critic == "trunk" and has(env, TabularStates):
            raise ValueError(f"critic='trunk' needs a policy network with an encoder (the Coin Game); {env.name} has "
                             f"memory-one policies")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        require_positive_int(self, "batch_size")
        require_positive_int(self, "episode_chunks")
        if self.batch_size % self.episode_chunks:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of episode_chunks "
                             f"({self.episode_chunks})")
        require_positive_int(self, "hidden")
        require_positive_int(self, "om_first_steps")
        require_positive(self, "om_lr")
        require_positive(self, "critic_lr")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {self.network!r}")
        if self.batch_norm and (self.network != "conv_lstm" or has(env, TabularStates)):
            raise ValueError(f"batch_norm needs network='conv_lstm' on a game without tabular states (the Coin "
                             f"Game); got network={self.network!r} on {env.name}")
        check_preset(self.preset)
        if self.preset == "lola_paper" and env.name == "imp":
            discount = float(env.default_params.discount)
            if abs(discount - PAPER_IMP_DISCOUNT) > 1e-6:
                raise ValueError(f"preset lola_paper on imp: the LOLA paper discounts IMP by {PAPER_IMP_DISCOUNT}, "
                                 f"this environment by {discount:g} (add --env-arg discount={PAPER_IMP_DISCOUNT})")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma!r}")
        reason = missing(env, ExactValue)
        if self.exact and reason:
            raise ValueError(f"exact=True {reason}")
        require_positive(self, "lr")
        require_positive(self, "om_prior")
        for name in ("lookahead_lr", "init_std"):
            require_nonnegative(self, name)
        if isinstance(self.lookahead, bool) or not isinstance(self.lookahead, int) or not 1 <= self.lookahead <= 5:
            raise ValueError(f"lookahead must be an integer from 1 to 5, got {self.lookahead!r}")


@struct.dataclass
class ShapingState:
    theta: jax.Array  # [2, P] flat policy parameters
    values: jax.Array  # [2, F] the baselines' weights on their features (``baseline_features``)
    model: jax.Array  # [2, P] model[i]: agent i's estimate of the other's parameters (lola_om)
    opt_state: Any  # optax state of theta's ascent


def check_env(env, variant: str = "lola_dice") -> str | None:
    reason = missing(env, FixedHorizon)
    if reason:
        return f"{reason} (batches of whole episodes of one length, as in the iterated games and the Coin Game)"
    if env.num_agents != 2 or not all(isinstance(s, Discrete) for s in env.action_spaces):
        return f"needs two agents with discrete actions; {env.name} has others"
    if has(env, TabularStates):
        one_hot = (env.num_states,)
        if env.num_actions != 2 or any(tuple(s.shape) != one_hot for s in env.observation_spaces):
            return (f"memory-one policies need two actions and one-hot observed states of size {env.num_states}; "
                    f"{env.name} has others")
    return None


def make_policy(env, config: ShapingConfig) -> FlatPolicy:
    """Memory-one policies where the environment has tabular states (the iterated games), a recurrent policy network
    otherwise (the Coin Game; ``config.network``)."""
    if has(env, TabularStates):
        return MemoryOnePolicy(num_states=env.num_states, init_std=config.init_std)
    return RecurrentPolicy(obs_shape=tuple(env.observation_spaces[0].shape), num_actions=env.num_actions,
                           hidden=config.hidden, cell=config.network, batch_norm=config.batch_norm)


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")


def lola_paper_config(env, variant: str) -> ShapingConfig:
    """The LOLA paper's settings (Foerster et al., 2018, and its reference code) for ``nl_pg``, ``lola_pg`` and
    ``lola_om``, as plain gradient steps on unscaled estimates.

    The reference code multiplies each log-probability by 1/A (a mean over the A actions) and each surrogate by 2,
    so its first-order estimates are 2/A times the gradients and its second-order one 2/A^2 times the cross
    derivative: its step theta_i += lr * (grad_i V_i + (grad_j V_i)^T grad_i grad_j V_j), estimated so, is this
    module's LOLA step with delta = lr * 2/A and eta = 2/A^2.

    - IPD, IMP (memory-one policies, theta ~ N(0, 1)): 150 updates of 4,000 episodes of 150 steps (600,000
      episodes), lr 1 (delta = 1, eta = 1/2); discount 0.96 (IPD) or 0.9 (IMP, the environment's ``discount``).
    - Coin Game: two 3x3 convolutions of 20 filters, batch-normalised (``batch_norm``), an LSTM of 32 and a linear
      layer; 4,000 updates of 4,000 episodes of 150 steps, lr 0.005 (delta = 0.0025, eta = 1/8), discount 0.96.
      LOLA-OM fits each opponent model by gradient ascent on the mean summed log-likelihood of the opponent's
      actions, step 0.1/A, 50 steps on the first batch and one per update after it. The estimates run over 10 chunks
      of 400 episodes (``episode_chunks``: a fraction of the memory; the normalisation's statistics are then each
      chunk's); on a GPU with the memory for the whole batch, ``episode_chunks=1`` takes the whole batch's statistics
      and avoids running the chunks one after another. The reference's baselines come from a value head on the
      convolutions trained with them by an SGD step of 1 on each batch (``critic="trunk"``, ``critic_lr``); on the
      normalised convolutions that step diverges (the head's Hessian has eigenvalues near 36), so the preset keeps
      the least-squares baselines. Not available: the reference's second-order term's rewards centred on their batch
      mean.
    """
    if variant not in ("nl_pg", "lola_pg", "lola_om"):
        raise ValueError(f"preset lola_paper covers nl_pg, lola_pg and lola_om (the LOLA paper's sampled learners), "
                         f"not {variant}")
    a = env.num_actions
    common = dict(variant=variant, preset="lola_paper", batch_size=4000, optimizer="sgd", lookahead_lr=2.0 / a**2)
    if has(env, TabularStates):
        return ShapingConfig(**common, num_updates=150, lr=2.0 / a, init_std=1.0)
    return ShapingConfig(**common, num_updates=4000, lr=0.005 * 2.0 / a, network="conv_lstm", batch_norm=True,
                         hidden=32, gamma=0.96, om_lr=0.1 / a, om_first_steps=50, episode_chunks=10)


def default_config(env, variant: str, preset: str = "default") -> ShapingConfig:
    """``preset="default"``: memory-one policies (the iterated games): LOLA-DiCE's published settings (Adam with
    delta 0.2, eta 0.3, 128 episodes of 150 steps); the PG learners use the LOLA paper's plain gradient steps of
    size 1. Policy networks (the Coin Game): Adam with the LOLA paper's step size 0.005 and a small look-ahead step
    for the network. ``preset="lola_paper"``: ``lola_paper_config``."""
    check_preset(preset)
    if preset == "lola_paper":
        return lola_paper_config(env, variant)
    if not has(env, TabularStates):
        return ShapingConfig(variant=variant, optimizer="adam", lr=0.005, lookahead_lr=0.05, num_updates=500)
    if variant == "lola_dice":
        return ShapingConfig(variant=variant, optimizer="adam")
    return ShapingConfig(variant=variant, lr=1.0, lookahead_lr=1.0)


@struct.dataclass
class Batch:
    inputs: jax.Array  # [T, B, 2, ...] the observations as the policy encodes them (``FlatPolicy.encode``)
    actions: jax.Array  # [T, B, 2]
    rewards: jax.Array  # [T, B, 2]
    baselines: jax.Array  # [T, B, 2] each agent's baseline (state value) of each step
    info: dict  # the environment's per-step info, [T, B, ...]


@dataclasses.dataclass(frozen=True)
class DiceGame:
    """The sampled game: both agents' DiCE objectives of a batch of episodes as functions of their parameters
    theta [2, P], and the sampled learners' directions on it, taken through each agent's log-probabilities
    (``game_gradients``' separable forms) and averaged over ``config.episode_chunks`` chunks of episodes."""

    policy_net: FlatPolicy
    config: ShapingConfig
    gamma: float

    def log_prob_fns(self, batch: Batch) -> list:
        """Agent a's log-probabilities [T, B] of its actions in ``batch`` as a function of its parameters [P]."""
        return [lambda theta_a, a=a: self.policy_net.log_probs(theta_a, batch.inputs[:, :, a], batch.actions[:, :, a])
                for a in range(2)]

    def values(self, logps: tuple, batch: Batch) -> jax.Array:
        """[2]: both agents' DiCE objectives of ``batch`` from each agent's log-probabilities logps[a] [T, B]."""
        cfg = self.config
        return jnp.stack([dice_objective(logps[0] + logps[1], batch.rewards[:, :, i], self.gamma,
                                         None if cfg.baseline == "none" else batch.baselines[:, :, i],
                                         cfg.baseline == "any_order") for i in range(2)])

    def chunk_objectives(self, theta: jax.Array, batch: Batch) -> jax.Array:
        """[2]: the objectives of one chunk of episodes under theta [2, P]."""
        return self.values(tuple(f(theta[a]) for a, f in enumerate(self.log_prob_fns(batch))), batch)

    def direction(self, theta: jax.Array, model: jax.Array, batch: Batch) -> jax.Array:
        """[2, P]: NL-PG's own gradients, LOLA-PG's rows of naive + eta shaping, or LOLA-OM's row i at agent i's view
        of the game (theta_i and its model of the other, model [2, P])."""
        cfg = self.config

        def over_chunks(estimate):
            return episode_mean(lambda chunk: estimate(self.log_prob_fns(chunk),
                                                       functools.partial(self.values, batch=chunk)),
                                batch, cfg.episode_chunks)

        if cfg.variant == "nl_pg":
            return over_chunks(lambda fns, objective: game_gradients.separable_naive(fns, objective, theta))

        def lola_rows(th, rows):  # the full batch's Jacobian rows first: they are the shaping terms' tangents
            jac = over_chunks(lambda fns, objective: game_gradients.separable_jacobian(fns, objective, th, rows))
            shaping = over_chunks(lambda fns, objective: game_gradients.separable_shaping(fns, objective, th, jac,
                                                                                          rows))
            return jac[jnp.arange(len(rows)), jnp.asarray(rows)] + cfg.lookahead_lr * shaping

        if cfg.variant == "lola_pg":
            return lola_rows(theta, (0, 1))
        views = [jnp.stack([theta[0], model[0]]), jnp.stack([model[1], theta[1]])]
        return jnp.concatenate([lola_rows(views[i], (i,)) for i in range(2)])


def make_train(env, config: ShapingConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    gamma = params.discount if isinstance(params, Discounted) else config.gamma
    horizon = env.num_steps
    policy_net = make_policy(env, config)
    exact_values = has(env, ExactValue)
    game = DiceGame(policy_net, config, gamma)
    value_features = functools.partial(baseline_features, policy_net, config.critic)

    def sample(key, theta, values) -> Batch:
        """``batch_size`` episodes under the (stopped-gradient) policies theta [2, P], stepped as one batch, with
        the policies' uniforms drawn up front; values [2, F]: the baselines' weights (``baseline_features``)."""
        theta = jax.lax.stop_gradient(theta)

        def policy(u, obs, policy_state):
            logits, policy_state = policy_net.batch_step(theta, policy_state, obs)
            return categorical_from_uniform(u, logits), policy_net.encode(obs), policy_state

        initial = jax.tree.map(lambda x: jnp.broadcast_to(x, (config.batch_size, 2) + x.shape),
                               policy_net.initial_state())
        k_reset, k_run, k_noise = jax.random.split(key, 3)
        carry = reset_carry(k_reset, env, params, initial, batch_size=config.batch_size)
        noise = jax.random.uniform(k_noise, (horizon, config.batch_size, 2, 1))
        tr = rollout(k_run, env, params, policy, carry, horizon, batched=True, policy_noise=noise)[1]
        features = episode_map(lambda x: value_features(theta, x, 3), tr.extras, config.episode_chunks)
        baselines = jnp.einsum("tbnf,nf->tbn", features, values)  # all steps at once, in the critic's chunks
        return Batch(inputs=tr.extras, actions=tr.action, rewards=tr.reward, baselines=baselines, info=tr.info)

    def objectives(batch, theta):
        """[2]: both agents' objectives under the joint parameters theta [2, P], sampled (DiCE) or exact."""
        if config.exact:
            return env.exact_value(theta, params)
        return episode_mean(lambda chunk: game.chunk_objectives(theta, chunk), batch, config.episode_chunks)

    def lookahead_objective(theta_i, theta_j, i, values, first_batch, key):
        """Agent i's objective after K naive steps of the opponent j, as a function of both (differentiable).
        The first step uses ``first_batch`` (sampled under the current joint policy, shared by both agents), the
        later steps and the final objective fresh samples under the looked-ahead policies."""

        def joint(ti, tj):
            return jnp.stack([ti, tj]) if i == 0 else jnp.stack([tj, ti])

        def opponent_step(tj, batch):
            grad_j = jax.grad(lambda t: objectives(batch, joint(theta_i, t))[1 - i])(tj)
            return tj + config.lookahead_lr * grad_j

        def inner(tj, k):
            return opponent_step(tj, None if config.exact else sample(k, joint(theta_i, tj), values)), None

        keys = jax.random.split(key, config.lookahead)
        theta_j = opponent_step(theta_j, first_batch)
        theta_j, _ = jax.lax.scan(inner, theta_j, keys[:-1])
        batch = None if config.exact else sample(keys[-1], joint(theta_i, theta_j), values)
        return objectives(batch, joint(theta_i, theta_j))[i]

    def fit_model(model, batch, steps=1):
        """model [2, P]: model[i] is agent i's estimate of the other's parameters, refitted to the batch.
        Memory-one policies: per memory state, the logit of the smoothed frequency of cooperating (the maximum-
        likelihood estimate; states the batch never visited keep the old one). Policy networks: ``steps`` steps of
        gradient ascent, size ``om_lr``, on the mean over episodes of the summed log-probabilities of the other's
        actions given its observations (both are seen in these fully observed games)."""
        if not has(env, TabularStates):
            def log_likelihood(m, j):
                return episode_mean(lambda b: policy_net.log_probs(m, b.inputs[:, :, j], b.actions[:, :, j])
                                    .sum(0).mean(), batch, config.episode_chunks)

            def ascent(m, _):
                return m + config.om_lr * jax.vmap(jax.grad(log_likelihood))(m, jnp.array([1, 0])), None

            return jax.lax.scan(ascent, model, None, length=steps)[0]
        other_obs = policy_net.features(batch.inputs, 3)[:, :, ::-1, :-1]  # [T, B, 2, 5]: agent i looks at agent 1 - i
        visits = other_obs.sum(axis=(0, 1))  # [2, 5]
        coop = jnp.einsum("tbis,tbi->is", other_obs, (batch.actions[:, :, ::-1] == 0).astype(jnp.float32))
        fitted = jnp.log(coop + config.om_prior) - jnp.log(visits - coop + config.om_prior)
        return jnp.where(visits > 0, fitted, model)

    policy_opt = (optax.adam if config.optimizer == "adam" else optax.sgd)(config.lr)
    no_end = jnp.zeros(horizon, bool)

    def fit_baselines(batch: Batch) -> jax.Array:
        """[2, F]: each agent's linear baseline, fitted to the batch's discounted returns-to-go."""
        returns = discounted_returns(batch.rewards, no_end, no_end, gamma)
        return _fit_linear(policy_net.features(batch.inputs, 3), returns)

    def init(key):
        k_theta, k_batch = jax.random.split(key)
        theta = jax.vmap(policy_net.init)(jax.random.split(k_theta, 2))
        obs = policy_net.encode(jnp.zeros((1, 2) + tuple(env.observation_spaces[0].shape)))
        values = jnp.zeros((2, value_features(theta, obs, 2).shape[-1]))
        model = jnp.zeros_like(theta)
        if not config.exact:
            batch = sample(k_batch, theta, values)
            values = values if config.critic == "trunk" else fit_baselines(batch)
            if config.variant == "lola_om" and not has(env, TabularStates):  # fresh models, fitted to a first batch
                model = jax.vmap(policy_net.init)(jax.random.split(jax.random.fold_in(k_theta, 1), 2))
                model = fit_model(model, batch, config.om_first_steps)
        return ShapingState(theta=theta, values=values, model=model, opt_state=policy_opt.init(theta))

    def update(state, key):
        """One step of both learners. Its metrics are those of the policies it starts from, measured on the
        episodes it samples first (which also give its first estimates and the next update's baselines)."""
        k_batch, k_look = jax.random.split(key)
        theta, values, model = state.theta, state.values, state.model
        batch = sample(k_batch, theta, values)
        estimate_batch = None if config.exact else batch
        if config.variant == "lola_dice":
            direction = jnp.stack([jax.grad(lookahead_objective)(theta[i], theta[1 - i], i, values, estimate_batch,
                                                                 jax.random.fold_in(k_look, i)) for i in range(2)])
        elif config.exact:  # closed-form values, differentiated as they are (LOLA-OM without a model to fit)
            def value_fn(th):
                return objectives(None, th)

            if config.variant == "nl_pg":
                direction = game_gradients.naive(value_fn)(theta)
            else:
                direction = game_gradients.lola(value_fn, config.lookahead_lr)(theta)
        else:
            if config.variant == "lola_om":
                model = fit_model(model, batch)
            direction = game.direction(theta, model, batch)
        updates, opt_state = policy_opt.update(-direction, state.opt_state, theta)  # optax minimises
        new_theta = optax.apply_updates(theta, updates)
        metrics = {"reward_per_step": batch.rewards.mean(axis=(0, 1))}
        if config.critic == "trunk":  # the critic's step from the same theta, as the reference takes both at once
            returns = discounted_returns(batch.rewards, no_end, no_end, gamma)
            metrics["value_error"], (d_theta, d_values) = trunk_critic_gradients(
                policy_net, theta, values, (batch.inputs, returns), config.episode_chunks)
            new_theta, new_values = new_theta - config.critic_lr * d_theta, values - config.critic_lr * d_values
        else:
            new_values = values if config.baseline == "none" else fit_baselines(batch)
        if exact_values:  # the iterated games
            both = (batch.actions[:, :, 0] == 0) & (batch.actions[:, :, 1] == 0)
            metrics.update(exact_reward_per_step=env.exact_value(theta, params, per_step=True),
                           mutual_cooperation=both.mean(), **env.exact_policy_metrics(theta))
        elif "own_coin" in batch.info:  # the Coin Game
            own, other = batch.info["own_coin"].sum(axis=(0, 1)), batch.info["other_coin"].sum(axis=(0, 1))
            metrics.update(own_coin_fraction=own / jnp.maximum(own + other, 1),
                           coins_per_step=(own + other).sum() / (horizon * config.batch_size))
        return ShapingState(theta=new_theta, values=new_values, model=model, opt_state=opt_state), metrics

    samples_per_update = {"nl_pg": 1, "lola_pg": 1, "lola_om": 1, "lola_dice": 2 * config.lookahead + 1}
    steps = 0 if config.exact else samples_per_update[config.variant] * config.batch_size * horizon
    return Trainer(init=init, update=update, num_updates=config.num_updates, env_steps_per_update=steps,
                   seed_batch=0 if config.exact else 1)


def baseline_features(policy_net: FlatPolicy, critic: str, theta: jax.Array, inputs: jax.Array,
                      batch_dims: int) -> jax.Array:
    """inputs [..., 2, *obs] (``batch_dims`` leading axes, the agents' the last) -> [..., 2, F]: what the baselines
    are linear in: the observation and a constant (``critic="linear"``), or agent a's encoder output under
    theta[a] [2, P] and a constant (``"trunk"``)."""
    if critic == "linear":
        return policy_net.features(inputs, batch_dims)
    agents = batch_dims - 1
    return jax.vmap(policy_net.trunk_features, in_axes=(0, agents), out_axes=agents)(theta, inputs)


def trunk_value_error(policy_net: FlatPolicy, theta: jax.Array, values: jax.Array, inputs: jax.Array,
                      returns: jax.Array) -> jax.Array:
    """The trunk critic's loss [2]: each agent's halved mean squared error of its values, values[a] [F] on its
    ``baseline_features``, against returns [T, B, 2]; theta [2, P], inputs [T, B, 2, *obs]."""
    v = jnp.einsum("tbnf,nf->tbn", baseline_features(policy_net, "trunk", theta, inputs, 3), values)
    return 0.5 * jnp.square(returns - v).mean(axis=(0, 1))


def trunk_critic_gradients(policy_net: FlatPolicy, theta: jax.Array, values: jax.Array, batch: tuple,
                           chunks: int) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """critic="trunk": ``trunk_value_error`` [2] of batch = (inputs [T, B, 2, *obs], discounted returns-to-go
    [T, B, 2]) over ``chunks`` chunks of episodes (the LOLA reference code's critic loss, with the returns of the
    episodes as sampled in place of its bootstrapped targets), and the gradients of its sum (theta [2, P]: the
    encoders' parts only; values [2, F])."""

    def loss(th, w):
        per_agent = episode_mean(lambda part: trunk_value_error(policy_net, th, w, *part), batch, chunks)
        return per_agent.sum(), per_agent

    (_, per_agent), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(theta, values)
    return per_agent, grads


def episode_mean(fn, batch, chunks: int):
    """fn(batch), a mean over the episodes of ``batch`` (a pytree of time-major arrays [T, B, ...]), as the mean of
    fn over ``chunks`` equal chunks of episodes, each rematerialised when differentiated (``jax.checkpoint``): the
    same value and derivatives of every order, in about 1 / chunks of the memory."""
    if chunks == 1:
        return fn(batch)
    return jax.lax.map(jax.checkpoint(fn), _split_episodes(batch, chunks)).mean(0)


def episode_map(fn, batch, chunks: int):
    """fn(batch) [T, B, ...], computed chunk by chunk over the same ``chunks`` chunks of episodes as ``episode_mean``
    and put back in the episodes' order: the same as fn(batch) where fn treats episodes apart, and the estimates'
    grouping of episodes where it does not (batch normalisation's statistics)."""
    if chunks == 1:
        return fn(batch)
    parts = jax.lax.map(fn, _split_episodes(batch, chunks))  # [chunks, T, B / chunks, ...]
    return jax.tree.map(lambda x: x.swapaxes(0, 1).reshape(x.shape[1], -1, *x.shape[3:]), parts)


def _split_episodes(batch, chunks: int):
    """[T, B, ...] leaves -> [chunks, T, B / chunks, ...]: equal chunks of consecutive episodes."""
    return jax.tree.map(lambda x: x.reshape(x.shape[0], chunks, -1, *x.shape[2:]).swapaxes(0, 1), batch)


def _fit_linear(features: jax.Array, targets: jax.Array, ridge: float = 1e-3, mean: bool = False) -> jax.Array:
    """Per-agent ridge least-squares weights of a linear baseline. features: [T, B, N, F]; targets: [T, B, N] ->
    [N, F] (with one-hot memory states: each state's mean return). The normal equations are averaged over the T B
    samples, so the ridge keeps its weight at any batch size (features may be collinear: one-hot states and a
    constant)."""
    x = features.reshape(-1, *features.shape[2:]).swapaxes(0, 1)  # [N, TB, S]
    y = targets.reshape(-1, targets.shape[2]).T  # [N, TB]
    gram = jnp.einsum("nks,nkr->nsr", x, x) / x.shape[1] + ridge * jnp.eye(x.shape[-1])
    return linalg.solve(gram, jnp.einsum("nks,nk->ns", x, y) / x.shape[1])
