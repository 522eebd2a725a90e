"""Multi-Particle Environments (a JAX port of PettingZoo's mpe2 1.1): the shared core and nine scenarios."""
from envs.mpe.core import MPEEnv, MPEParams, MPEState, world_step
from envs.mpe.scenarios import (
                                SCENARIOS,
                                Adversary,
                                Crypto,
                                PredatorPrey,
                                Push,
                                Reference,
                                Simple,
                                SpeakerListener,
                                Spread,
                                Tag,
                                WorldComm,
)

__all__ = ["MPEEnv", "MPEParams", "MPEState", "world_step", "SCENARIOS", "Simple", "Spread", "Adversary", "Tag",
           "PredatorPrey",
           "Push", "Reference", "SpeakerListener", "Crypto", "WorldComm"]
