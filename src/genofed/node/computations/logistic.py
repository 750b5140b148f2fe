"""``logistic-gwas`` version 1: the sums of an exact logistic-regression GWAS.

Parts: ``block/<i>`` (nothing but the signal that block i is decoded and
kept) and, asked for with a round request, ``block/<i>/round/<j>``: the
node's :class:`~genofed.kernels.logistic.RoundSums` of the variants and
coefficients requested (:mod:`genofed.protocol.logistic`). The coordinator
runs PLINK 2's Newton iteration and Firth fallback on the sums of all nodes.

For the score-test mode, also ``null/round/<j>`` (the covariates-only model's
sums at the coefficients asked for) and ``block/<i>/score`` (each variant's
score-test sums at the null model's coefficients) and, asked for with the
variants that have a missing call somewhere in the federation,
``block/<i>/score/missing`` (their missing-call samples' sums).
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
from genofed.protocol.logistic import (
    coefficients_from_arrays,
    missing_score_arrays,
    missing_score_request_from_arrays,
    null_arrays,
    request_from_arrays,
    score_arrays,
    sums_arrays,
)
from genofed.protocol.messages import LogisticGwasParameters

__all__ = ["LogisticTask"]


class LogisticTask(Task):
    """A logistic-regression GWAS of one 0/1 phenotype on covariates, at this node."""

    window = 2  # decoded blocks kept: each is (variants x samples) int8

    def __init__(self, dataset: NodeDataset, parameters: LogisticGwasParameters) -> None:
        self.dataset = dataset
        inputs = dataset.binary_inputs(parameters.phenotype, parameters.covariates)
        self.design = logistic_design(inputs.covariates, inputs.phenotype, inputs.included)
        self.block_size = parameters.block_size
        super().__init__(inputs.included, -(-len(dataset.variants) // self.block_size))
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

    def answer(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Answer a round of a block, a round of the null model, or a block's score test."""
        fields = part.split("/")
        k = self.design.n_covariates
        if len(fields) == 3 and fields[:2] == ["null", "round"] and fields[2].isdigit():
            coefficients = coefficients_from_arrays(request, k=k)
            return null_arrays(local_null_logistic_sums(self.design, coefficients))
        if fields[0] != "block" or len(fields) < 3 or not fields[1].isdigit():
            raise UnknownPart(f"logistic-gwas has no result {part!r} to ask for")
        with self._lock:
            block = self._kept.get(int(fields[1]))
        if block is None:
            raise NotReady(f"block {fields[1]} is not decoded")
        if fields[2:] == ["score"]:
            coefficients = coefficients_from_arrays(request, k=k)
            return score_arrays(local_score_sums(self.design, coefficients, block))
        if fields[2:] == ["score", "missing"]:
            coefficients, variants = missing_score_request_from_arrays(
                request, k=k, width=block.n_variants, part=part
            )
            sums = local_missing_score_sums(self.design, coefficients, block, variants)
            return missing_score_arrays(sums)
        if len(fields) != 4 or fields[2] != "round" or not fields[3].isdigit():
            raise UnknownPart(f"logistic-gwas has no result {part!r} to ask for")
        round_request = request_from_arrays(request, width=block.n_variants, p=k + 1)
        return sums_arrays(local_round(self.design, block, round_request))

    def release(self, index: int) -> None:
        """Drop the decoded blocks before ``index``."""
        with self._lock:
            for old in [i for i in self._kept if i < index]:
                del self._kept[old]
