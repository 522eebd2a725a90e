"""Environment capabilities: which built-in environments declare which, what ``algos.compatible`` says when one is
missing, and the rule that learners find features only through the capability protocols."""
import dataclasses
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import algos
import envs
from jaxmarl_core import capabilities as caps
from jaxmarl_core.env import Environment, EnvParams, TimeStep
from jaxmarl_core.spaces import Box, Discrete

ALL = (caps.AvailableActions, caps.GlobalState, caps.TabularStates, caps.TabularModel, caps.MatrixPayoffs,
       caps.DeviationGains, caps.ExactValue, caps.FixedHorizon, caps.Discounted, caps.TeamReward,
       caps.NeighbourMeanAction, caps.SimplexActions, caps.Neighbourhood, caps.AgentEpisodes, caps.StepMetrics)
BASE = {"AvailableActions", "GlobalState"}  # every built-in environment
TABULAR_GAME = BASE | {"TabularStates", "TabularModel", "Discounted"}
MATRIX = BASE | {"MatrixPayoffs", "DeviationGains", "ExactValue"}
ITERATED = BASE | {"TabularStates", "ExactValue", "FixedHorizon", "Discounted"}
EXPECTED = {
    "coin_game": BASE | {"FixedHorizon"},
    "grid_game_1": TABULAR_GAME, "grid_game_2": TABULAR_GAME, "soccer": TABULAR_GAME,
    "ipd": ITERATED, "imp": ITERATED,
    **{name: BASE | {"ExactValue"} for name in ("game_bilinear", "game_tandem", "game_aga_toy", "public_goods")},
    **{name: MATRIX for name in envs.list_envs() if name.startswith("matrix_")},
    **{name: BASE | {"SimplexActions"} for name in envs.list_envs() if name.startswith("mpe_")},
    **{name: BASE | {"TeamReward", "SimplexActions"}
       for name in ("mpe_simple", "mpe_spread", "mpe_reference", "mpe_speaker_listener")},
    "gaussian_squeeze": BASE | {"TabularStates", "TeamReward", "NeighbourMeanAction"},
    "ising": BASE | {"FixedHorizon", "NeighbourMeanAction"},
    "two_step": TABULAR_GAME | {"FixedHorizon"},
    "flicker": BASE | {"TeamReward"},  # of mpe_spread, its default
    "battle": BASE | {"NeighbourMeanAction"},
    "dgn_battle": BASE | {"NeighbourMeanAction", "Neighbourhood", "FixedHorizon"},
    "jungle": BASE | {"NeighbourMeanAction", "Neighbourhood", "FixedHorizon"},
    "traffic_junction": BASE | {"Neighbourhood", "FixedHorizon", "TeamReward", "AgentEpisodes"},
    "routing": BASE | {"Neighbourhood", "NeighbourMeanAction", "FixedHorizon", "AgentEpisodes"},
    "predator_prey": BASE | {"SimplexActions"},  # mpe_tag with G2ANet's counts
    "cleanup": BASE | {"FixedHorizon", "StepMetrics"}, "harvest": BASE | {"FixedHorizon", "StepMetrics"},
}
ALGOS_DIR = pathlib.Path(__file__).resolve().parents[2] / "algos"


def declared(env) -> set[str]:
    return {cap.__name__ for cap in ALL if isinstance(env, cap)}


def test_every_registered_env_is_in_the_table():
    assert set(EXPECTED) == set(envs.list_envs())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_env_capabilities(name):
    assert declared(envs.make(name)) == EXPECTED[name]


def test_capability_members_behave_as_declared():
    ipd, soccer, mp = envs.make("ipd"), envs.make("soccer"), envs.make("matrix_mp")
    _, state = soccer.reset(jax.random.PRNGKey(0))
    assert 0 <= int(soccer.state_index(state)) < soccer.num_states
    model = soccer.tabular_model()
    assert model.initial.shape == (soccer.num_states,)
    np.testing.assert_array_equal(mp.payoff_array, np.asarray(mp.default_params.payoffs))
    probs = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(mp.expected_payoffs(probs), mp.payoff_array[:, 0, 0])
    assert ipd.exact_value(jnp.zeros((2, *ipd.policy_param_shape))).shape == (2,)
    # the discount of the iterated games is a params field (vmappable); the tabular games' one a constant
    assert isinstance(ipd.default_params, caps.Discounted) and not isinstance(soccer.default_params, caps.Discounted)
    assert float(ipd.default_params.discount) == pytest.approx(ipd.discount) and soccer.discount == 0.9


@dataclasses.dataclass(frozen=True)
class Bare(Environment):
    """The contract alone: one agent, a coin flip each step, no optional feature."""

    continuous: bool = False

    @property
    def num_agents(self):
        return 1

    @property
    def observation_spaces(self):
        return (Box(0.0, 1.0, (1,)),)

    @property
    def action_spaces(self):
        return (Box(-1.0, 1.0, (2,)),) if self.continuous else (Discrete(3),)

    def reset_env(self, key, params):
        return jnp.zeros((1, 1)), jnp.zeros(())

    def step_env(self, key, state, actions, params):
        return TimeStep(obs=jnp.zeros((1, 1)), state=state, reward=jnp.zeros(1), terminated=jnp.asarray(True),
                        truncated=jnp.asarray(False), info={})


def test_the_base_class_provides_available_actions_but_no_global_state():
    env = Bare()
    assert declared(env) == {"AvailableActions"}
    np.testing.assert_array_equal(env.avail_actions(jnp.zeros(()), EnvParams()), [[True, True, True]])
    with pytest.raises(NotImplementedError, match="discrete"):
        Bare(continuous=True).avail_actions(jnp.zeros(()))
    assert "GlobalState" in caps.missing(env, caps.AvailableActions, caps.GlobalState)
    assert caps.missing(env, caps.AvailableActions) is None


@pytest.mark.parametrize("algo,env,capability", [
    ("lola_exact", "soccer", "ExactValue"),
    ("nl_exact", "mpe_spread", "ExactValue"),
    ("wolf_iga", "ipd", "MatrixPayoffs"),
    ("lagging_anchor", "grid_game_1", "MatrixPayoffs"),
    ("lri", "coin_game", "MatrixPayoffs"),
    ("lola_pg", "soccer", "FixedHorizon"),
    ("lola_dice", "matrix_pd", "FixedHorizon"),
    ("wolf_phc", "coin_game", "TabularStates or MatrixPayoffs"),
    ("minimax_q", "coin_game", "TabularStates or MatrixPayoffs"),
    ("vdn", "mpe_tag", "TeamReward"),
])
def test_compatible_names_the_missing_capability(algo, env, capability):
    reason = algos.compatible(algo, envs.make(env))
    assert reason is not None and f"the {capability} capability" in reason and env in reason


@pytest.mark.parametrize("algo,env", [("lola_exact", "ipd"), ("lola_exact", "matrix_mp"), ("wolf_iga", "matrix_mp"),
                                      ("lola_pg", "coin_game"), ("lola_om", "imp"), ("wolf_phc", "soccer"),
                                      ("nash_q", "grid_game_1"), ("lri", "matrix_climbing")])
def test_compatible_pairs(algo, env):
    assert algos.compatible(algo, envs.make(env)) is None


def test_learners_use_capabilities_not_probes_or_env_classes():
    """No ``hasattr`` in a learner, no import from ``envs``, and no ``isinstance`` on an environment: learners ask
    ``capabilities.has(env, Cap)``."""
    sources = sorted(ALGOS_DIR.rglob("*.py"))
    assert sources
    offences = []
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(ALGOS_DIR.parent)}:{number}: {line.strip()}"
            if ("hasattr(" in line or re.match(r"\s*(from|import)\s+envs\b", line)
                    or re.search(r"isinstance\(\s*[\w.]*env\b", line)):
                offences.append(where)
    assert not offences, "\n".join(offences)
