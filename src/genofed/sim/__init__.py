"""Real-like synthetic cohorts for national nodes (msprime coalescent simulations)."""

from genofed._progress import Progress, ProgressCallback
from genofed.sim._cohorts import (
    CountrySummary,
    SimulationResult,
    simulate_cohorts,
)
from genofed.sim._countries import COUNTRIES, DEFAULT_COUNTRIES, Country
from genofed.sim._genome import Demography
from genofed.sim._traits import TraitModel

__all__ = [
    "COUNTRIES",
    "DEFAULT_COUNTRIES",
    "Country",
    "CountrySummary",
    "Demography",
    "Progress",
    "ProgressCallback",
    "SimulationResult",
    "TraitModel",
    "simulate_cohorts",
]
