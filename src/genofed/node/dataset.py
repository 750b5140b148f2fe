"""A node's data: its PLINK file set and phenotype table, opened once and read in place."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed.errors import InputError
from genofed.io.bed import PackedBed, decode_rows
from genofed.io.phenotypes import PhenotypeTable, read_phenotype_table
from genofed.io.plink import VariantInfo, read_bim, read_fam
from genofed.kernels.linreg import (
    LinearDesign,
    VariantSums,
    linear_design,
    local_variant_sums_packed,
)
from genofed.kernels.qc import genotype_counts_packed
from genofed.node.covariate_sets import CovariateSets
from genofed.protocol.covariates import covariate_reference

__all__ = ["LinearInputs", "NodeDataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearInputs:
    """The design of one study at this node, rows in .fam order.

    ``covariates`` has the intercept first; rows of samples left out of the
    analysis (no phenotype row, or a missing phenotype or covariate) are zero.
    """

    covariates: npt.NDArray[np.float64]
    phenotype: npt.NDArray[np.float64]
    included: npt.NDArray[np.bool_]

    @property
    def samples(self) -> int:
        """Samples in the analysis."""
        return int(self.included.sum())

    def design(self) -> LinearDesign:
        """Prepare the packed kernel's tables for these inputs."""
        return linear_design(self.covariates, self.phenotype, self.included)


class NodeDataset:
    """The genotype and phenotype files of one node, validated on opening.

    Raises
    ------
    InputError
        Naming the file and what is wrong with it.
    """

    def __init__(self, bfile: Path, phenotypes: Path, covariate_sets: Path | None = None) -> None:
        self.bfile = Path(bfile)
        # where computed covariate sets (PCA scores) are kept; default beside the genotypes
        self.covariate_sets = CovariateSets(covariate_sets or self.bfile.parent / "covariate-sets")
        self.phenotype_path = Path(phenotypes)
        self.iids = read_fam(self.bfile.with_suffix(".fam"))
        self.variants: VariantInfo = read_bim(self.bfile.with_suffix(".bim"))
        self.table: PhenotypeTable = read_phenotype_table(self.phenotype_path)
        rows = {iid: i for i, iid in enumerate(self.table.iids)}
        self._table_row = np.array([rows.get(iid, -1) for iid in self.iids], dtype=np.intp)
        self.variant_digest = variant_digest(self.variants)
        self._bed = PackedBed(
            self.bfile.with_suffix(".bed"), n_samples=len(self.iids), n_variants=len(self.variants)
        )

    def close(self) -> None:
        """Release the genotype file."""
        self._bed.close()

    @property
    def phenotyped_samples(self) -> int:
        """Samples in both the .fam file and the phenotype table."""
        return int((self._table_row >= 0).sum())

    @property
    def unmatched_phenotype_rows(self) -> int:
        """Phenotype table rows whose IID is not in the .fam file."""
        return len(self.table.iids) - self.phenotyped_samples

    def linear_inputs(self, phenotype: str, covariates: Sequence[str]) -> LinearInputs:
        """Line up the phenotype and covariates with the .fam order and drop incomplete rows.

        Raises
        ------
        InputError
            If a name is not a column of the phenotype table (the message lists
            the columns), repeats, or the phenotype is also a covariate.
        """
        names = [phenotype, *covariates]
        available = ", ".join(self.table.columns)
        for name in names:
            if name not in self.table.columns and covariate_reference(name) is None:
                raise InputError(
                    f"column {name!r} is not in the phenotype table; available: {available}"
                )
        if covariate_reference(phenotype) is not None:
            raise InputError(f"the phenotype {phenotype!r} must be a phenotype table column")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"column {repeated[0]!r} is named more than once")
        present = self._table_row >= 0
        rows = np.where(present, self._table_row, 0)
        y = np.where(present, self.table.columns[phenotype][rows], np.nan)
        c = np.column_stack(
            [np.ones(len(rows))] + [self._covariate(n, present, rows) for n in covariates]
        )
        included = present & np.isfinite(y) & np.isfinite(c).all(axis=1)
        return LinearInputs(
            covariates=np.where(included[:, None], c, 0.0),
            phenotype=np.where(included, y, 0.0),
            included=included,
        )

    def _covariate(
        self, name: str, present: npt.NDArray[np.bool_], rows: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Return a phenotype-table column or a stored set's column, in .fam order."""
        reference = covariate_reference(name)
        if reference is None:
            values: npt.NDArray[np.float64] = np.where(
                present, self.table.columns[name][rows], np.nan
            )
            return values
        set_name, column = reference
        return self.covariate_sets.read(set_name, len(self.iids)).column(column)

    def binary_inputs(self, phenotype: str, covariates: Sequence[str]) -> LinearInputs:
        """As :meth:`linear_inputs`, for a case/control phenotype coded 1 (case) and 0.

        Raises
        ------
        InputError
            As :meth:`linear_inputs`, or naming the values other than 0, 1 and
            NA that the phenotype holds.
        """
        inputs = self.linear_inputs(phenotype, covariates)
        values = np.unique(inputs.phenotype[inputs.included])
        other = values[(values != 0) & (values != 1)]
        if len(other):
            shown = ", ".join(f"{v:g}" for v in other[:5]) + (", ..." if len(other) > 5 else "")
            raise InputError(
                f"phenotype {phenotype!r} is not a case/control trait: it holds values other "
                f"than 0, 1 and NA ({shown}); code cases as 1 and controls as 0 (PLINK's "
                "1/2 coding becomes 0/1 by subtracting 1)"
            )
        return inputs

    def variant_sums(self, design: LinearDesign, start: int, stop: int) -> VariantSums:
        """Compute the linear-regression sums of variants ``start:stop`` from packed bytes."""
        sums = local_variant_sums_packed(design, self._bed.block(start, stop))
        self._bed.release(start, stop)
        return sums

    def linear_block(
        self, design: LinearDesign, start: int, stop: int, cohort: npt.NDArray[np.bool_]
    ) -> tuple[VariantSums, npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Return the linear sums, genotype groups and missing calls of variants ``start:stop``.

        The groups count the ``cohort``'s samples with ALT dosage 0, 1, 2 and
        none; the missing calls are ``(variants, samples)`` over every sample.
        """
        block = self._bed.block(start, stop)
        sums = local_variant_sums_packed(design, block)
        groups = genotype_counts_packed(block, len(self.iids), cohort)
        missing = decode_rows(block, len(self.iids)) < 0
        self._bed.release(start, stop)
        return sums, groups, missing

    def missing_calls(self, start: int, stop: int) -> npt.NDArray[np.bool_]:
        """Missing calls of variants ``start:stop`` over every sample: ``(variants, samples)``."""
        missing = decode_rows(self._bed.block(start, stop), len(self.iids)) < 0
        self._bed.release(start, stop)
        return missing

    def decoded_block(
        self, start: int, stop: int, samples: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.int8]:
        """ALT counts of variants ``start:stop`` for ``samples``: ``(variants, samples)`` int8."""
        decoded = decode_rows(self._bed.block(start, stop), len(self.iids), samples)
        self._bed.release(start, stop)
        return decoded

    def decoded_variants(self, variants: npt.NDArray[np.intp]) -> npt.NDArray[np.int8]:
        """ALT counts of the given variants (increasing indices) for every sample: ``(v, n)``."""
        out = np.empty((len(variants), len(self.iids)), dtype=np.int8)
        span = 4096  # variants read from the file at a time
        done = 0
        while done < len(variants):
            start = int(variants[done])
            stop = int(np.searchsorted(variants, start + span))
            rows = variants[done:stop] - start
            block = self._bed.block(start, int(variants[stop - 1]) + 1)
            out[done:stop] = decode_rows(block[rows], len(self.iids))
            self._bed.release(start, int(variants[stop - 1]) + 1)
            done = stop
        return out

    def genotype_counts(
        self, start: int, stop: int, included: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.int64]:
        """Count ALT dosages 0, 1, 2 and missing calls of variants ``start:stop`` in a cohort."""
        counts = genotype_counts_packed(self._bed.block(start, stop), len(self.iids), included)
        self._bed.release(start, stop)
        return counts


def variant_digest(variants: VariantInfo) -> str:
    """SHA-256 of a variant list, to check that nodes hold the same variants."""
    digest = hashlib.sha256()
    columns = (
        variants.chromosome,
        variants.bp_position,
        variants.variant_id,
        variants.allele_1,
        variants.allele_2,
    )
    for fields in zip(*columns, strict=True):
        digest.update(("\t".join(map(str, fields)) + "\n").encode())
    return digest.hexdigest()
