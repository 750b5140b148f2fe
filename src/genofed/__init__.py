"""genofed: federated analysis of genomic data held by national nodes."""

from genofed._version import __version__
from genofed.coordinator import (
    Federation,
    LinearGwas,
    create_federation,
    read_federation,
    run_linear_gwas,
)
from genofed.errors import GenofedError, InputError, NodeError, ProtocolError
from genofed.sim import Demography, SimulationResult, TraitModel, simulate_cohorts

__all__ = [
    "Demography",
    "Federation",
    "GenofedError",
    "InputError",
    "LinearGwas",
    "NodeError",
    "ProtocolError",
    "SimulationResult",
    "TraitModel",
    "__version__",
    "create_federation",
    "read_federation",
    "run_linear_gwas",
    "simulate_cohorts",
]
