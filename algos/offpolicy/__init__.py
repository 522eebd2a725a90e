"""Off-policy multi-agent actor-critics: DDPG, MADDPG (Lowe et al., 2017, reference code openai/maddpg), MATD3 and
the heterogeneous-agent HADDPG and HATD3 (Zhong et al., 2024, reference code PKU-MARL/HARL) on one code path, read in
this order:

- ``config``: the variants, ``OffPolicyConfig``, the environments accepted and each variant's defaults;
- ``model``: deterministic actors, critics, and actions (Gumbel-softmax relaxed one-hots or scaled tanh);
- ``learner``: one gradient step (critics, actors, targets), one update (act, store, learn, log) and the ``Trainer``;
- ``crossplay``: trained actors played for evaluation, and the agent groups of one population against another's
  (MADDPG's ensembles against single policies).

How the variants differ (fields of ``OffPolicyConfig``): ``critic`` "joint" (every agent's critic sees all
observations and actions; MADDPG and after) or "local" (DDPG), or ``critic_kinds`` one per agent group (MADDPG
agents against DDPG opponents in one run); ``twin`` (TD3: two critics and the minimum of their
targets, with ``target_noise`` smoothing and ``policy_delay``); ``sequential`` (HA*: actors updated one after another
on the already-updated actions of those before them, instead of all at once against the replayed actions);
``agent_batches`` (``maddpg`` and ``ddpg``: each agent's critic, actor and fits on a batch of its own, as
openai/maddpg draws its indices per agent; HARL's variants share one batch).
MADDPG's two extensions: ``ensemble`` K (K sub-policies per agent, one drawn at each episode's start, sub-policy k of
agent i trained on the transitions in which i played k, its D_i^(k), drawn from the one shared buffer: D_i^(k) holds
the transitions of the last ``buffer_size`` steps in which i played k, not a buffer of that size of its own;
``sub_buffers``: a buffer of ``buffer_size // K`` of its own; ``ensemble_draw=group``: one index per agent group, the
paper's, whose agents then share that buffer) and ``infer_policies`` (each agent fits the others' policies by
maximum likelihood with an entropy bonus and its critic's target acts the others by those fits).
"""
from algos.offpolicy.config import VARIANTS, OffPolicyConfig, check_env, default_config, harl_defaults
from algos.offpolicy.learner import Nets, OffPolicyState, Sample, learn_step, make_train, update_actors

__all__ = ["VARIANTS", "Nets", "OffPolicyConfig", "OffPolicyState", "Sample", "check_env", "default_config",
           "harl_defaults", "learn_step", "make_train", "update_actors"]
