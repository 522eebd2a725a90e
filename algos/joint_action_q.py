"""Q-learning over joint actions in two-player stochastic games: Minimax-Q (Littman, 1994), Friend-or-Foe-Q
(Littman, 2001) and Nash-Q (Hu & Wellman, 2003).

Each agent i keeps Q_i[s, a_i, a_-i] over its own and the other's action (its own action first) and learns online:

    Q_i(s, a_i, a_-i) <- Q_i + alpha * (r_i + gamma * V_i(s') - Q_i),   V_i(s) = the stage-game value of Q_i(s)

    minimax_q, ffq foe:  V_i(s) = max_x min_o x^T Q_i(s) e_o (``solvers.zero_sum_value``), pi_i(s) = the maximin x
    ffq friend:          V_i(s) = max_{a, o} Q_i(s, a, o), pi_i(s) = its part of the best joint action
    nash_q:              a learner keeps (Q_0, Q_1) and backs up each player's value at one Nash equilibrium of
                         the bimatrix stage game (Q_0(s), Q_1(s)), the same equilibrium for both players' values
                         (Hu & Wellman 2003, eqs. 6-7); pi = that equilibrium

Nash-Q's equilibrium comes from ``solvers.select_nash`` by Hu & Wellman's rule ``selection``: "first" (the first
equilibrium in the solver's order), "second" (the second distinct one, else the first) or "best" (the one worth most
to the learner's own player). Their Lemke-Howson method lists equilibria "in a fixed order" the paper does not give;
``order="support"`` lists them as support enumeration finds them: pure profiles first, in the order (agent 0's
action, agent 1's action) of the action indices, then mixed ones by support size; ``order="lemke_howson"`` as
Lemke-Howson reaches them from each dropped label in turn (each agent's actions in the order ``lh_actions``; agent
0's labels, then agent 1's, or another ``lh_order``: agent 1's first, or the two agents' labels of each action in turn;
labels of illegal actions skipped, an equilibrium reached again not listed again). Under "best" each
agent is its own learner (agent i's learner picks what is best for player i and agent i plays its part of that
learner's equilibrium); under "first" and "second" the two learners would be the same, and one is kept.

Q and V start at ``q_init`` (Littman: 1, Hu & Wellman: 0) and policies uniform (Littman's initialisation).
V_i(s) and pi_i(s) are recomputed at the updated state after each step (one stage-game solve per learner and step),
over the legal actions (``env.avail_actions``; illegal ones are never chosen or played).
Actions come from (1 - epsilon) pi_i(s) + epsilon uniform over the legal actions (Minimax-Q's explor = 0.2; Nash-Q
explores uniformly: Hu & Wellman's offline learning).
alpha decays as lr * lr_decay^t (Littman: from 1 by 0.9999954 per step, 0.01 after 10^6 steps) or, with
``count_lr``, as 1 / n(s, a_0, a_1)^count_power (Hu & Wellman: power 1; a power in (0.5, 1) forgets the early,
stale targets faster: in Grid Game 1 every seed then learns an equilibrium, see the tests).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_core import solvers, tabular
from jaxmarl_core.capabilities import DeviationGains, Discounted, MatrixPayoffs, TabularStates, has, missing_any
from jaxmarl_core.config import OnlineConfig, require_nonnegative, require_positive
from jaxmarl_core.policies import sample_categorical
from jaxmarl_core.solvers import ORDERS, SELECTIONS, restrict, select_nash, zero_sum_value
from jaxmarl_core.spaces import Discrete
from jaxmarl_core.training import Trainer

BACKUPS = ("minimax", "foe", "friend", "nash")  # "foe" is another name for "minimax"


@dataclasses.dataclass(frozen=True)
class JointQConfig(OnlineConfig):
    backup: str = "minimax"  # minimax or foe (minimax_q, ffq foe), friend (ffq friend) or nash (nash_q)
    total_steps: int = 1_000_000  # environment steps per seed
    steps_per_update: int = 10_000  # environment steps between logged metrics
    gamma: float = 0.9
    lr: float = 1.0  # alpha at t = 0
    lr_decay: float = 0.9999954  # alpha_t = lr * lr_decay^t
    count_lr: bool = False  # alpha = 1 / n(s, a_0, a_1)^count_power instead
    count_power: float = 1.0  # 1: Hu & Wellman's 1 / n; in (0.5, 1) forgets early targets faster
    epsilon: float = 0.2  # exploration: actions from (1 - epsilon) pi + epsilon uniform
    q_init: float = 1.0  # initial Q and V (Littman: 1; Hu & Wellman: 0); policies start uniform
    selection: str = "first"  # nash_q's equilibrium: first, second or best (Hu & Wellman's selection rules)
    order: str = "support"  # the order nash_q lists equilibria in: support (enumeration) or lemke_howson
    lh_actions: str = ""  # lemke_howson: the actions in the order their labels are dropped ("2,3,1,0"); "": 0, 1, ..
    lh_order: str = "agent1_first"  # lemke_howson: whose labels first (solvers.LH_LABEL_ORDERS)

    def lh_labels(self, num_actions: int) -> tuple[int, ...]:
        """Lemke-Howson's dropped labels in order: each agent's actions in the order ``lh_actions``, the agents'
        labels in the order ``lh_order`` (``solvers.lemke_howson_labels``)."""
        actions = [int(a) for a in self.lh_actions.split(",")] if self.lh_actions else list(range(num_actions))
        return solvers.lemke_howson_labels(actions, num_actions, self.lh_order)

    def validate(self, env) -> None:
        super().validate(env)
        if self.backup not in BACKUPS:
            raise ValueError(f"backup must be one of {', '.join(BACKUPS)}, got {self.backup!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.lh_order not in solvers.LH_LABEL_ORDERS:
            raise ValueError(f"lh_order must be one of {', '.join(solvers.LH_LABEL_ORDERS)}, got {self.lh_order!r}")
        if self.lh_actions and _sorted_ints(self.lh_actions) != list(range(env.num_actions)):
            raise ValueError(f"lh_actions must list the actions 0 .. {env.num_actions - 1} once each, separated by "
                             f"commas, got {self.lh_actions!r}")
        require_positive(self, "lr")
        require_positive(self, "count_power")
        require_nonnegative(self, "epsilon")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay}")
        if not 0 <= self.gamma <= 1 or self.epsilon > 1:
            raise ValueError(f"gamma and epsilon must lie in [0, 1], got {self.gamma} and {self.epsilon}")


def _sorted_ints(text: str) -> list[int] | None:
    """"2,3,1,0" -> [0, 1, 2, 3]; None if an item is not an integer."""
    try:
        return sorted(int(a) for a in text.split(","))
    except ValueError:
        return None


@struct.dataclass
class JointQState:
    q: jax.Array  # [L, 2, S, A, A]: learner l's q[l, i, s, own action, other's action] (L = 2 for nash_q "best")
    value: jax.Array  # [L, 2, S]: stage-game values V_i(s)
    pi: jax.Array  # [2, S, A]: each agent's part of its own learner's stage equilibria (learner min(i, L - 1))
    counts: jax.Array  # [S, A, A]: visits of (s, a_0, a_1)
    env_state: object
    t: jax.Array  # int32: environment steps taken


def check_env(env, variant: str) -> str | None:
    if env.num_agents != 2:
        return f"needs a two-player game; {env.name} has {env.num_agents} players"
    reason = missing_any(env, TabularStates, MatrixPayoffs)
    if reason:
        return f"{reason} (a tabular game: a stochastic game's state index or a one-shot matrix game)"
    if not all(isinstance(s, Discrete) for s in env.action_spaces) or len({s.n for s in env.action_spaces}) != 1:
        return f"needs the same discrete actions for both players; {env.name} has others"
    return None


def default_config(env, variant: str) -> JointQConfig:
    gamma = float(env.discount) if has(env, Discounted) else 0.9
    if variant == "nash_q":
        return JointQConfig(backup="nash", gamma=gamma, count_lr=True, epsilon=1.0, q_init=0.0)
    if variant == "ffq":
        return JointQConfig(backup="friend", gamma=gamma)
    return JointQConfig(backup="minimax", gamma=gamma)


def stage_solution(q_s: jax.Array, avail: jax.Array, config: JointQConfig, player: int = 0
                   ) -> tuple[jax.Array, jax.Array]:
    """Both agents' stage games at one state, q_s [2, A, A] (own action first), over the legal actions avail bool
    [2, A] -> (values [2], policies [2, A]); ``player``: whose payoff nash_q's "best" rule maximises."""
    if config.backup == "nash":
        A, B = restrict(q_s[0], q_s[1].T, avail[0], avail[1])  # rows: agent 0's actions, columns: agent 1's
        x, y = select_nash(A, B, config.selection, player, config.order, config.lh_labels(q_s.shape[-1]),
                           jnp.concatenate(avail))
        values = jnp.stack([x @ q_s[0] @ y, y @ q_s[1] @ x])
        return values, jnp.stack([x, y])
    if config.backup == "friend":
        best = jnp.max(jnp.where(avail[::-1, None, :], q_s, -jnp.inf), axis=-1)  # [2, A]: best joint outcome
        greedy = tabular.greedy(best, avail)
        return jnp.sum(greedy * best, axis=-1), greedy
    own, other = jnp.min(q_s, axis=(1, 2)) - 1.0, jnp.max(q_s, axis=(1, 2)) + 1.0  # [2]: dominated payoffs
    q_s = jnp.where(avail[:, :, None], q_s, own[:, None, None])
    q_s = jnp.where(avail[::-1, None, :], q_s, other[:, None, None])
    values, x, _ = jax.vmap(zero_sum_value)(q_s)
    return values, x


def make_train(env, config: JointQConfig, params=None) -> Trainer:
    params = env.default_params if params is None else params
    num_actions, num_s = env.num_actions, tabular.num_states(env)
    agents = jnp.arange(2)
    num_learners = 2 if config.backup == "nash" and config.selection == "best" else 1
    own_learner = jnp.minimum(agents, num_learners - 1)  # [2]: the learner whose equilibrium each agent plays

    def init(key):
        _, env_state = env.reset(key, params)
        return JointQState(q=jnp.full((num_learners, 2, num_s, num_actions, num_actions), config.q_init),
                           value=jnp.full((num_learners, 2, num_s), config.q_init),
                           pi=jnp.full((2, num_s, num_actions), 1.0 / num_actions),
                           counts=jnp.zeros((num_s, num_actions, num_actions)), env_state=env_state,
                           t=jnp.zeros((), jnp.int32))

    def act(ls: JointQState, s, avail, key):
        return sample_categorical(key, jnp.log(tabular.explore(ls.pi[:, s], avail, config.epsilon)))

    def learn(ls: JointQState, s, avail, actions, reward, s_next, avail_next, terminated):
        counts = ls.counts.at[s, actions[0], actions[1]].add(1.0)
        if config.count_lr:
            alpha = counts[s, actions[0], actions[1]] ** -config.count_power
        else:
            alpha = config.lr * config.lr_decay ** ls.t.astype(jnp.float32)
        own, other = actions, actions[::-1]
        q, value, pi = [], [], []
        for learner in range(num_learners):  # learner l's "best" equilibrium is the best for player l
            target = reward + config.gamma * (1.0 - terminated) * ls.value[learner, :, s_next]  # [2]
            old = ls.q[learner, agents, s, own, other]
            q_l = ls.q[learner].at[agents, s, own, other].set(old + alpha * (target - old))
            value_s, pi_s = stage_solution(q_l[:, s], avail, config, player=learner)
            q.append(q_l)
            value.append(ls.value[learner].at[:, s].set(value_s))
            pi.append(pi_s)
        pi_s = jnp.stack([pi[min(i, num_learners - 1)][i] for i in range(2)])
        return ls.replace(q=jnp.stack(q), value=jnp.stack(value), pi=ls.pi.at[:, s].set(pi_s), counts=counts,
                          t=ls.t + 1)

    s0 = tabular.state_index(env, env.reset(jax.random.PRNGKey(0), params)[1])  # a start state, for the metrics

    def update(ls: JointQState, key):
        ls, env_state, metrics = tabular.run_online(env, params, act, learn, ls, ls.env_state, key,
                                                    config.steps_per_update)
        ls = ls.replace(env_state=env_state)
        metrics = {**metrics, "policy": ls.pi[:, s0], "value": ls.value[own_learner, agents, s0]}
        if has(env, DeviationGains):
            metrics["nash_conv"] = jnp.sum(env.deviation_gains(ls.pi[:, s0], params))
        return ls, metrics

    return Trainer(init=init, update=update, num_updates=config.num_updates,
                   env_steps_per_update=config.steps_per_update)
