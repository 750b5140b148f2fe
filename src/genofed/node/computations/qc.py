"""``variant-qc`` version 1: genotype counts per variant over a cohort.

The cohort is every genotyped sample, or, given a phenotype, the samples with
that phenotype and every covariate: the cohort of a GWAS of it.

Parts: ``block/<i>``, the counts of ALT dosage 0, 1 and 2 and of missing
calls for each variant of block i. The coordinator sums them over the nodes
and derives allele frequencies, missing-call rates and Hardy-Weinberg exact
tests (:mod:`genofed.kernels.qc`), as PLINK 2 does on all samples.
"""

from __future__ import annotations

import numpy as np

from genofed.node.computations.base import Arrays, Task
from genofed.node.dataset import NodeDataset
from genofed.protocol.messages import VariantQcParameters

__all__ = ["QcTask"]


class QcTask(Task):
    """Genotype counts of every variant at this node."""

    def __init__(self, dataset: NodeDataset, parameters: VariantQcParameters) -> None:
        self.dataset = dataset
        self.block_size = parameters.block_size
        if parameters.phenotype is None:
            cohort = np.ones(len(dataset.iids), dtype=np.bool_)
        else:
            inputs = dataset.linear_inputs(parameters.phenotype, parameters.covariates)
            cohort = inputs.included
        super().__init__(cohort, -(-len(dataset.variants) // self.block_size))

    def block(self, index: int) -> Arrays:
        """Count genotypes of the block's variants over the cohort."""
        start = index * self.block_size
        stop = min(start + self.block_size, len(self.dataset.variants))
        return {"counts": self.dataset.genotype_counts(start, stop, self.included)}
