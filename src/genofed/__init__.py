"""genofed: federated analysis of genomic data held by national nodes."""

from genofed._version import __version__
from genofed.coordinator import (
    Federation,
    LinearGwas,
    VariantQc,
    create_federation,
    read_federation,
    run_linear_gwas,
    run_qc,
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
    "VariantQc",
    "__version__",
    "create_federation",
    "read_federation",
    "run_linear_gwas",
    "run_qc",
    "simulate_cohorts",
]
