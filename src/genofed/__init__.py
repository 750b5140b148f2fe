"""genofed: federated analysis of genomic data held by national nodes.

The coordinator's and the simulator's names are imported on first use, so
``import genofed`` (and the ``genofed`` command) loads neither numba, scipy,
msprime nor the web stack until a study or a simulation needs them.
"""

import typing

from genofed import _lazy
from genofed._version import __version__
from genofed.errors import GenofedError, InputError, NodeError, ProtocolError

if typing.TYPE_CHECKING:
    from genofed.coordinator.federation import Federation, create_federation, read_federation
    from genofed.coordinator.gwas import LinearGwas, run_gwas, run_linear_gwas
    from genofed.coordinator.pca import run_pca
    from genofed.coordinator.qc import VariantQc, run_qc
    from genofed.sim import Demography, SimulationResult, TraitModel, simulate_cohorts
else:
    __getattr__, __dir__ = _lazy.exports(
        __name__,
        {
            "genofed.coordinator.federation": [
                "Federation",
                "create_federation",
                "read_federation",
            ],
            "genofed.coordinator.gwas": ["LinearGwas", "run_gwas", "run_linear_gwas"],
            "genofed.coordinator.pca": ["run_pca"],
            "genofed.coordinator.qc": ["VariantQc", "run_qc"],
            "genofed.sim": ["Demography", "SimulationResult", "TraitModel", "simulate_cohorts"],
        },
    )

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
    "run_gwas",
    "run_linear_gwas",
    "run_pca",
    "run_qc",
    "simulate_cohorts",
]
