"""Value-based multi-agent learners: independent deep Q-learning (IQL; DRQN, its recurrent form, Hausknecht & Stone,
2015), value decomposition networks (VDN, Sunehag et al., 2018) and QMIX (Rashid et al., 2018, reference code
oxwhirl/pymarl) on one code path, read in this order:

- ``config``: the variants, ``ValueDecompositionConfig``, the environments accepted (a cooperative game for VDN and
  QMIX: ``reward_structure``) and each kind of environment's default budget;
- ``model``: the agents' Q-networks and the mixers (sum, QMIX's monotonic hypernetwork mixer on the global state);
- ``learner``: one update (act epsilon-greedily, store, learn from replay, copy the targets, log) and the ``Trainer``.

How the variants differ (``mixer``): IQL fits each agent's Q_i(o_i, a_i) to its own TD target; VDN and QMIX fit
Q_tot = mix(Q_1, ..., Q_N) to the team's TD target, the team reward being the reward all agents share
(``team_reward="common"``) or the sum or mean of the agents' rewards; a cooperative game is one that declares the
``TeamReward`` capability or has a common payoff table (``config.reward_structure``).
Each agent acts on its own Q-values, so the joint greedy action of a monotonic mixer is each agent's greedy action.

Replay holds transitions (feed-forward agents) or whole episodes (``recurrent``: GRU agents, the default of
``drqn``; any variant may set it), and the TD targets come from target networks copied every
``target_update`` updates, with double Q by default; available actions mask both action selection and the target's
max; a truncated step bootstraps from the observation it reached, a terminated one never does.
"""
from algos.value_decomposition.config import (
                                              VARIANTS,
                                              ValueDecompositionConfig,
                                              check_env,
                                              default_config,
                                              reward_structure,
)
from algos.value_decomposition.learner import Sample, ValueState, make_train, td_loss, team_reward

__all__ = ["VARIANTS", "Sample", "ValueDecompositionConfig", "ValueState", "check_env", "default_config",
           "make_train", "reward_structure", "td_loss", "team_reward"]
