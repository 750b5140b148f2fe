"""The researcher's side: federation files, node clients and studies.

The coordinator holds no individual data: it sends study parameters, adds
the sums the nodes return, and solves.
"""

from genofed.coordinator.federation import Federation, create_federation, read_federation
from genofed.coordinator.gwas import LinearGwas, run_gwas, run_linear_gwas
from genofed.coordinator.qc import VariantQc, run_qc

__all__ = [
    "Federation",
    "LinearGwas",
    "VariantQc",
    "create_federation",
    "read_federation",
    "run_gwas",
    "run_linear_gwas",
    "run_qc",
]
