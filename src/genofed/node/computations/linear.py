"""``linear-gwas`` version 1: the sums of an exact linear-regression GWAS.

Parts: ``null`` (C'C, C'y, y'y, n), ``block/<i>`` (C'g, g'g, g'y and the
missing-call count per variant) and, asked for with the variants that need
them, ``block/<i>/missing`` (the missing-call samples' own sums). See
:mod:`genofed.protocol.linreg`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.linreg import LinearDesign, VariantSums, local_null_sums
from genofed.node.computations.base import Arrays, Task, UnknownPart
from genofed.node.dataset import NodeDataset
from genofed.protocol.codec import block_rows
from genofed.protocol.linreg import block_arrays, missing_arrays, null_arrays
from genofed.protocol.messages import LinearGwasParameters

__all__ = ["LinearTask"]


class LinearTask(Task):
    """A linear-regression GWAS of one phenotype on covariates, at this node."""

    def __init__(self, dataset: NodeDataset, parameters: LinearGwasParameters) -> None:
        self.dataset = dataset
        self.inputs = dataset.linear_inputs(parameters.phenotype, parameters.covariates)
        self.block_size = parameters.block_size
        super().__init__(self.inputs.included, -(-len(dataset.variants) // self.block_size))
        self._design: LinearDesign | None = None
        self._kept: dict[int, VariantSums] = {}  # blocks with a missing call, until released
        self._lock = threading.Lock()

    def head(self) -> Arrays:
        """Sum C'C, C'y, y'y and n over the cohort."""
        rows = self.inputs.included
        return null_arrays(
            local_null_sums(self.inputs.covariates[rows], self.inputs.phenotype[rows])
        )

    def block(self, index: int) -> Arrays:
        """Sum C'g, g'g, g'y and count missing calls; keep the missing-call sums for later."""
        if self._design is None:
            self._design = self.inputs.design()
        start = index * self.block_size
        stop = min(start + self.block_size, len(self.dataset.variants))
        sums = self.dataset.variant_sums(self._design, start, stop)
        if sums.n_missing.any():
            with self._lock:
                self._kept[index] = sums
        return block_arrays(sums)

    def answer(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Return ``block/<i>/missing`` of the ``variants`` asked for (zeros if none is here)."""
        prefix, _, number = part.partition("/")
        index_text, _, name = number.partition("/")
        if prefix != "block" or not index_text.isdigit() or name != "missing":
            raise UnknownPart(f"linear-gwas has no result {part!r} to ask for")
        index = int(index_text)
        width = min(self.block_size, len(self.dataset.variants) - index * self.block_size)
        if set(request) != {"variants"}:
            raise ProtocolError(f"{part} is asked for with one array 'variants'")
        variants = block_rows(request.get("variants"), width=width, what=part)
        with self._lock:
            sums = self._kept.get(index)
        k = self.inputs.covariates.shape[1]
        return missing_arrays(sums, variants, k=k)

    def release(self, index: int) -> None:
        """Drop the missing-call sums kept for blocks before ``index``."""
        with self._lock:
            for old in [i for i in self._kept if i < index]:
                del self._kept[old]
