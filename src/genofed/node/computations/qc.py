"""``variant-qc``: genotype counts per variant over a cohort, at this node.

See :mod:`genofed.protocol.computations.variant_qc` for its parts.
"""

from __future__ import annotations

import numpy as np

from genofed.node.computations.base import Arrays, Task, small_groups
from genofed.node.dataset import NodeDataset
from genofed.protocol.computations import variant_qc
from genofed.protocol.computations.variant_qc import VariantQcParameters
from genofed.protocol.contract import Part, Totals

__all__ = ["QcTask"]


class QcTask(Task):
    """Genotype counts of every variant at this node."""

    contract = variant_qc.CONTRACT

    def __init__(self, dataset: NodeDataset, parameters: VariantQcParameters) -> None:
        self.block_size = parameters.block_size
        if parameters.phenotype is None:
            cohort = np.ones(len(dataset.iids), dtype=np.bool_)
        else:
            inputs = dataset.linear_inputs(parameters.phenotype, parameters.covariates)
            cohort = inputs.included
        super().__init__(dataset, parameters, cohort, -(-len(dataset.variants) // self.block_size))

    def block(self, index: int) -> Arrays:
        """Count genotypes of the block's variants over the cohort."""
        start = index * self.block_size
        stop = min(start + self.block_size, len(self.dataset.variants))
        return {"counts": self.dataset.genotype_counts(start, stop, self.included)}

    def release_totals(
        self, part: Part, totals: Totals, *, min_count: int, uniform: bool
    ) -> Arrays:
        """As the verifier, withhold every count of a variant with a small group."""
        withheld = small_groups(totals["counts"], min_count)
        return {"counts": np.where(withheld[:, None], 0, totals["counts"]), "withheld": withheld}
