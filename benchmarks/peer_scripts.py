"""Reference implementations' side of the side-by-side benchmarks, importable without this project's packages (jax,
numpy and yaml only): a peer's training script imported as a module, its YAML configs merged, and a random-policy
rollout of a JaxMARL environment. Run by another Python (for example a separate environment with an older JAX, as
``benchmarks/jaxmarl_qlearning.py`` is), these need none of ``algos``, ``envs`` or ``jaxmarl_core``."""
from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def import_script(path: str, module_name: str, log: list) -> types.ModuleType:
    """A reference implementation's training script (``path``, outside this project) imported as a module. Its
    command-line entry point's packages that the training function does not use are stubbed in this process when
    absent (hydra, omegaconf), and wandb always, by a recorder: ``wandb.log(metrics)`` (JaxMARL's training functions
    return no metrics and log each update's through a host callback) appends ``dict(metrics)`` to ``log``."""
    if "hydra" not in sys.modules and importlib.util.find_spec("hydra") is None:
        hydra = types.ModuleType("hydra")
        hydra.main = lambda **kwargs: (lambda fn: fn)
        sys.modules["hydra"] = hydra
    if "omegaconf" not in sys.modules and importlib.util.find_spec("omegaconf") is None:
        omegaconf = types.ModuleType("omegaconf")
        omegaconf.OmegaConf = None
        sys.modules["omegaconf"] = omegaconf
    wandb = types.ModuleType("wandb")
    wandb.log = lambda metrics, **kwargs: log.append(dict(metrics))
    sys.modules["wandb"] = wandb
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_yaml_configs(paths: list[str]) -> dict:
    """YAML files merged in order (as hydra merges a script's config groups), numbers written as ``1e7`` read as
    numbers (YAML 1.1 reads them as strings; hydra as numbers)."""
    import yaml

    cfg = {}
    for path in paths:
        with open(path) as f:
            cfg.update(yaml.safe_load(f))
    for key, value in cfg.items():
        if isinstance(value, str):
            try:
                cfg[key] = float(value)
            except ValueError:
                pass
    return cfg


def make_jaxmarl_rollout(env: Any, batch_size: int, steps: int) -> Callable:
    """The same rollout for a JaxMARL environment (dict-of-agents API, ``action_space(agent).sample``)."""
    agents = list(env.agents)

    def one_step(key, state):
        k_act, k_env = jax.random.split(key)
        keys = jax.random.split(k_act, len(agents))
        actions = {a: env.action_space(a).sample(k) for a, k in zip(agents, keys)}
        obs, state, reward, _, _ = env.step(k_env, state, actions)
        return obs, state, reward

    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, batch_size))
        reward_sum = {a: jnp.zeros((batch_size,), jnp.float32) for a in agents}

        def body(carry, k):
            obs, state, reward_sum = carry
            new_obs, new_state, reward = jax.vmap(one_step)(jax.random.split(k, batch_size), state)
            reward_sum = {a: reward_sum[a] + reward[a] for a in agents}
            # Some environments return reset and step outputs of different dtypes (weak types): match the carry.
            like = lambda new, old: jax.tree.map(lambda n, o: n.astype(o.dtype), new, old)  # noqa: E731
            return (like(new_obs, obs), like(new_state, state), reward_sum), None

        carry, _ = jax.lax.scan(body, (obs, state, reward_sum), jax.random.split(k_run, steps))
        return carry

    return rollout
