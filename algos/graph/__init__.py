"""Graph-based multi-agent reinforcement learning: DGN (Jiang et al., 2020, "Graph Convolutional Reinforcement
Learning"; released code PKU-RL/DGN), read in this order:

- ``config``: ``DGNConfig`` (the released battle code's settings) and the environments accepted (the
  ``Neighbourhood`` capability);
- ``model``: the shared network, an encoder, relation kernels (masked multi-head attention over each agent's
  neighbourhood, ``jaxmarl_core.networks.MaskedMultiHeadAttention``) and a Q head on their concatenation;
- ``learner``: one update (act, store joint transitions with the neighbourhoods of s and s', learn with DGN-R's
  optional relation regularisation, Polyak targets, log) and the ``Trainer``.

Every array keeps a fixed shape: a neighbourhood is K indices and a mask, so graphs that change every step cost no
recompilation and the whole training runs in one ``jax.jit``, vmapped over seeds.
"""
from algos.graph.config import DGNConfig, check_env, default_config
from algos.graph.learner import GraphSample, GraphState, attention_kl, dgn_loss, make_train
from algos.graph.model import DGN

__all__ = ["DGN", "DGNConfig", "GraphSample", "GraphState", "attention_kl", "check_env", "default_config",
           "dgn_loss", "make_train"]
