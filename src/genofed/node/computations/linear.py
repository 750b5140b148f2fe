"""``linear-gwas``: the sums of an exact linear-regression GWAS at this node.

See :mod:`genofed.protocol.computations.linear_gwas` for its parts. With
each block the node sends, for the verifier, its genotype groups, its
imputed sums and which of its missing-call groups it may not release
(:class:`~genofed.node.missing_groups.MissingGroups`). As the round's
verifier, the node releases each variant's row under the small-group rule
(:func:`~genofed.node.computations.base.treatments`), and asks that
``block/<i>/missing`` name exactly the variants it released exactly with a
missing call somewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.linreg import LinearDesign, VariantSums, local_null_sums
from genofed.node.computations.base import (
    Arrays,
    Task,
    UnknownPart,
    close_across_cohorts,
    treatments,
    unique_if,
)
from genofed.node.dataset import NodeDataset
from genofed.node.missing_groups import MissingGroups
from genofed.protocol.computations import linear_gwas
from genofed.protocol.computations.linear_gwas import (
    Block,
    BlockMissing,
    LinearGwasParameters,
    block_arrays,
    missing_arrays,
    null_arrays,
)
from genofed.protocol.contract import Part, Totals, Treatment, check_derived

__all__ = ["LinearTask"]


class LinearTask(Task):
    """A linear-regression GWAS of one phenotype on covariates, at this node."""

    contract = linear_gwas.CONTRACT

    def __init__(self, dataset: NodeDataset, parameters: LinearGwasParameters) -> None:
        self.inputs = dataset.linear_inputs(parameters.phenotype, parameters.covariates)
        self.block_size = parameters.block_size
        blocks = -(-len(dataset.variants) // self.block_size)
        super().__init__(dataset, parameters, self.inputs.included, blocks)
        self._design: LinearDesign | None = None
        self._kept: dict[int, VariantSums] = {}  # blocks with a missing call, until released
        self._lock = threading.Lock()
        self._missing_rows: dict[int, npt.NDArray[np.int64]] = {}  # as the verifier
        self._groups: MissingGroups | None = None

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
        sums, groups, missing = self.dataset.linear_block(
            self._design, start, stop, self.inputs.included
        )
        if self._groups is None:
            self._groups = MissingGroups(self.samples, min_count=self.min_count)
        unique = self._groups.check(missing[:, self.inputs.included])
        close = close_across_cohorts(missing, self.cohort_differences, self.min_count)
        if sums.n_missing.any():
            with self._lock:
                self._kept[index] = sums
        return block_arrays(sums, groups, unique, close)

    def answer(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Return ``block/<i>/missing`` of the ``variants`` asked for (zeros if none is here)."""
        if not isinstance(part, BlockMissing):
            raise UnknownPart(f"linear-gwas has no part {part} to ask for")
        with self._lock:
            sums = self._kept.get(part.index)
        variants = request["variants"].astype(np.intp)
        return missing_arrays(sums, variants, k=self.inputs.covariates.shape[1])

    def check_request(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """As the verifier, ask for the variants with a missing call in the block's total."""
        if isinstance(part, BlockMissing):
            with self._lock:
                rows = self._missing_rows.get(part.index)
            if rows is None:
                raise ProtocolError(f"{part}: the block's total comes first")
            check_derived(part, {"variants": rows}, request)

    def release_totals(
        self, part: Part, totals: Totals, *, min_count: int, uniform: bool
    ) -> Arrays:
        """As the verifier, release each variant's row exactly, imputed, or not at all."""
        if not isinstance(part, Block):
            return dict(totals)
        n_missing = totals["n_missing"]
        treatment = treatments(
            totals["groups"][:, :3],
            n_missing,
            unique_if(totals, uniform),
            totals["close"],
            min_count,
            impute=True,
        )
        exact, imputed = treatment == Treatment.EXACT, treatment == Treatment.IMPUTED
        with self._lock:
            self._missing_rows[part.index] = np.flatnonzero(exact & (n_missing > 0))
        released: Arrays = {"treatment": treatment, "n_missing": np.where(exact, n_missing, 0)}
        for name in ("ctg", "gtg", "gty"):
            exact_sums, imputed_sums = totals[name], totals[f"{name}_imputed"]
            shape = (-1,) + (1,) * (exact_sums.ndim - 1)
            released[name] = np.where(
                exact.reshape(shape),
                exact_sums,
                np.where(imputed.reshape(shape), imputed_sums, 0.0),
            )
        return released

    def forget(self, index: int) -> None:
        """Drop the missing-call sums kept for blocks before ``index``."""
        with self._lock:
            for old in [i for i in self._kept if i < index]:
                del self._kept[old]
            for old in [i for i in self._missing_rows if i < index]:
                del self._missing_rows[old]
