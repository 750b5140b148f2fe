"""genofed: federated analysis of genomic data held by national nodes."""

from importlib import metadata as _metadata

from genofed.errors import GenofedError, InputError
from genofed.sim import Demography, SimulationResult, TraitModel, simulate_cohorts

__version__ = _metadata.version("genofed")

__all__ = [
    "Demography",
    "GenofedError",
    "InputError",
    "SimulationResult",
    "TraitModel",
    "__version__",
    "simulate_cohorts",
]
