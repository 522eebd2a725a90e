"""Mean-field multi-agent reinforcement learning (Yang et al., 2018, "Mean Field Multi-Agent Reinforcement Learning";
released code mlii/mfrl), read in this order:

- ``config``: the variants (mfq, il, mfac, ac), ``MeanFieldConfig`` and the environments accepted;
- ``model``: each group's shared networks, Q(o, a, abar) and the actor;
- ``learner``: one update (act on the neighbours' mean action, store, learn, log) and the ``Trainer``;
- ``tabular``: the tabular MF-Q of the Ising experiment (``mfq_tabular``).

MF-Q and MF-AC condition each agent's Q on abar, the mean one-hot action of its neighbours (the environment's
``NeighbourMeanAction`` capability); IL and AC are the same learners without abar. They are not ``iql``
(``algos.value_decomposition``): that learner stores joint transitions of all N agents and gives each agent a one-hot
id, while these treat the agents of a group as interchangeable samples of one network (agent transitions in replay,
no id), act by Boltzmann policies and bootstrap from the mean-field value, which is what lets them run with
thousands of agents.
"""
from algos.mean_field import tabular
from algos.mean_field.config import VARIANTS, MeanFieldConfig, check_env, default_config
from algos.mean_field.learner import AgentSample, MeanFieldState, make_train

__all__ = ["VARIANTS", "AgentSample", "MeanFieldConfig", "MeanFieldState", "check_env", "default_config",
           "make_train", "tabular"]
