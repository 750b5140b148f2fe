"""genofed: federated analysis of genomic data held by national nodes."""

from importlib.metadata import version

from genofed.errors import GenofedError, InputError
from genofed.sim import Demography, SimulationResult, TraitModel, simulate_cohorts

__version__ = version("genofed")

__all__ = [
    "Demography",
    "GenofedError",
    "InputError",
    "SimulationResult",
    "TraitModel",
    "__version__",
    "simulate_cohorts",
]
