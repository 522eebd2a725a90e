"""Shared core of the library: the environment contract, spaces, rollouts, returns, training plumbing."""
from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete, MultiDiscrete, Space

__all__ = ["EnvParams", "Environment", "TimeStep", "Box", "Discrete", "MultiDiscrete", "Space"]
