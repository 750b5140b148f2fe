"""``logistic-gwas``: PLINK 2's logistic regression sums, round by round, at this node.

The node decodes each block of variants for its cohort (``block/<i>``) and
keeps it while the coordinator iterates on it; each round's sums are asked
for with the coefficients of the variants still being fitted. See
:mod:`genofed.protocol.computations.logistic_gwas` for the parts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.kernels.logistic import (
    LogisticBlock,
    local_missing_score_sums,
    local_null_logistic_sums,
    local_round,
    local_score_sums,
    logistic_design,
)
from genofed.node.computations.base import Arrays, NotReady, Task, UnknownPart
from genofed.node.dataset import NodeDataset
from genofed.protocol.computations import logistic_gwas
from genofed.protocol.computations.logistic_gwas import (
    BlockRound,
    BlockScore,
    BlockScoreMissing,
    LogisticGwasParameters,
    NullRound,
    missing_score_arrays,
    null_arrays,
    request_from_arrays,
    score_arrays,
    sums_arrays,
)
from genofed.protocol.contract import Part

__all__ = ["LogisticTask"]


class LogisticTask(Task):
    """A logistic-regression GWAS of one 0/1 phenotype on covariates, at this node."""

    contract = logistic_gwas.CONTRACT
    window = 2  # decoded blocks kept: each is (variants x samples) int8

    def __init__(self, dataset: NodeDataset, parameters: LogisticGwasParameters) -> None:
        inputs = dataset.binary_inputs(parameters.phenotype, parameters.covariates)
        self.design = logistic_design(inputs.covariates, inputs.phenotype, inputs.included)
        self.block_size = parameters.block_size
        blocks = -(-len(dataset.variants) // self.block_size)
        super().__init__(dataset, parameters, inputs.included, blocks)
        cases = int(self.design.phenotype.sum())
        self.groups = {"cases": cases, "controls": self.samples - cases}
        self._kept: dict[int, LogisticBlock] = {}
        self._lock = threading.Lock()

    def block(self, index: int) -> Arrays:
        """Decode the block's genotypes of the cohort and keep them for its rounds."""
        start = index * self.block_size
        stop = min(start + self.block_size, len(self.dataset.variants))
        dosages = self.dataset.decoded_block(start, stop, self.design.rows)
        with self._lock:
            self._kept[index] = LogisticBlock(dosages)
        return {}

    def answer(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Answer a round of a block, a round of the null model, or a block's score test."""
        if isinstance(part, NullRound):
            coefficients = request["coefficients"].astype(np.float64)
            return null_arrays(local_null_logistic_sums(self.design, coefficients))
        if not isinstance(part, BlockRound | BlockScore | BlockScoreMissing):
            raise UnknownPart(f"logistic-gwas has no part {part} to ask for")
        with self._lock:
            block = self._kept.get(part.index)
        if block is None:
            raise NotReady(f"block {part.index} is not decoded")
        if isinstance(part, BlockRound):
            return sums_arrays(local_round(self.design, block, request_from_arrays(request)))
        coefficients = request["coefficients"].astype(np.float64)
        if isinstance(part, BlockScore):
            return score_arrays(local_score_sums(self.design, coefficients, block))
        variants = request["variants"].astype(np.intp)
        return missing_score_arrays(
            local_missing_score_sums(self.design, coefficients, block, variants)
        )

    def forget(self, index: int) -> None:
        """Drop the decoded blocks before ``index``."""
        with self._lock:
            for old in [i for i in self._kept if i < index]:
                del self._kept[old]
