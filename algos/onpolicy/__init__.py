"""On-policy multi-agent actor-critic: IPPO, MAPPO, MAA2C, the heterogeneous-agent HAPPO, HATRPO, HAA2C (Kuba
et al., 2022; Zhong et al., 2024, reference code PKU-MARL/HARL) and AgA-PPO on one code path, read in this order:

- ``config``: the variants, ``OnPolicyConfig`` (HATRPO's fields nested in ``TRPOConfig``), the environments accepted
  and each kind of environment's default budget;
- ``model``: the networks and their inputs from the learner's records (``jaxmarl_core.learner_view``);
- ``actor``: the PPO/A2C surrogate, HATRPO's natural-gradient step, and the sequential heterogeneous-agent update;
- ``critic``: HARL's clipped Huber value loss with value normalisation;
- ``learner``: one update (collect, advantages, actors, critic, metrics) and the ``Trainer``.

How the variants differ (fields of ``OnPolicyConfig``):
- critic: ``centralised_critic`` (MAPPO/HA*: one network on the global state with one value head per agent's reward,
  a single head under ``team_reward`` as HARL's EP critic) or each agent's critic on its own observation (IPPO);
- actor objective ``actor_update``: "ppo" (clipped surrogate, ``ppo_epochs`` x ``num_minibatches``), "a2c" (the
  unclipped importance-weighted surrogate), "trpo" (natural gradient by conjugate gradient on Fisher-vector products,
  taken through the policy's outputs as J^T H J v, and a backtracking line search; one step on the whole batch;
  ``trpo.*`` fields);
- ``sequential`` (HA*): agents move one after another in a fresh random order (``fixed_order`` keeps 0..N-1), each
  agent's surrogate weighted by M = product of new/old probability ratios of the agents moved before it (kept in
  log space under ``stop_gradient``; ``use_factor=False`` drops it);
- ``aga_ppo`` (``actor_update="aga"``, Li et al., 2024): IPPO's critics; the stacked actors move together along AgA's
  adjustment (``aga_lambda``) of the gradients of each agent's PPO surrogate under the joint ratio of all agents;
  ``cga_ppo`` (``actor_update="cga"``, AgA's CGA baseline): the same game moved by consensus optimisation
  (``cga_gamma``);
- the rewards trained on: each agent's own (Simul-Ind: ``ippo``), the sum of all agents' (``team_reward``: Simul-Co),
  or shaped by social value orientation (``svo_weight``, ``svo_angle``; McKee et al., 2020);
- ``share_params``: one actor (and, for IPPO, one critic) for all agents, optionally with a one-hot agent id
  (``agent_id``); otherwise parameters and optimiser states are stacked on a leading agent axis and applied with vmap.

A truncated step is treated as HARL's ``use_proper_time_limits`` does (``truncation="harl"``: advantage 0, its own
value as target, the steps before it bootstrapping from the value of its observation) or bootstraps from the value of
``final_obs`` (``truncation="bootstrap"``); terminations never bootstrap. Discrete actions are masked by the
available actions; continuous (Box) actions are diagonal Gaussians over each agent's true dimensions. Recurrent (GRU)
actors and critics re-run over the whole rollout from the state they had at its start (minibatches split
environments, not time).
"""
from algos.onpolicy.config import VARIANTS, OnPolicyConfig, TRPOConfig, check_env, default_config
from algos.onpolicy.learner import OnPolicyState, linear_decay, make_train

__all__ = ["VARIANTS", "OnPolicyConfig", "OnPolicyState", "TRPOConfig", "check_env", "default_config",
           "linear_decay", "make_train"]
