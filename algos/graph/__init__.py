"""Graph-based multi-agent reinforcement learning: DGN (Jiang et al., 2020, "Graph Convolutional Reinforcement
Learning"; released code PKU-RL/DGN) and G2ANet's GA-Comm (Liu et al., 2020, "Multi-Agent Game Abstraction via
Graph Attention Neural Network": ``g2anet_model``, its hard and soft attention and the GA-Comm policy; ``g2anet``, its
config and advantage actor-critic learner; ``ga_ac``, GA-AC: MAAC's attention critic behind the hard
attention, per-agent actors, off-policy). DGN reads in this order:

- ``config``: ``DGNConfig`` (the released battle code's settings) and the environments accepted (the
  ``Neighbourhood`` capability);
- ``model``: the shared network, an encoder, relation kernels (masked multi-head attention over each agent's
  neighbourhood, ``jaxmarl_core.networks.MaskedMultiHeadAttention``) and a Q head on their concatenation;
- ``learner``: one update (act, store joint transitions with the neighbourhoods of s and s', learn with DGN-R's
  optional relation regularisation, Polyak targets, log) and the ``Trainer``.

Every array keeps a fixed shape: a neighbourhood is K indices and a mask, so graphs that change every step cost no
recompilation and the whole training runs in one ``jax.jit``, vmapped over seeds.
"""
from algos.graph import g2anet, ga_ac
from algos.graph.config import DGNConfig, check_env, default_config
from algos.graph.g2anet import GACommConfig
from algos.graph.g2anet_model import GAComm, HardAttention
from algos.graph.learner import GraphSample, GraphState, attention_kl, dgn_loss, make_train
from algos.graph.model import DGN

__all__ = ["DGN", "DGNConfig", "GAComm", "GACommConfig", "GraphSample", "GraphState", "HardAttention", "attention_kl",
           "check_env", "default_config", "dgn_loss", "g2anet", "ga_ac", "make_train"]
