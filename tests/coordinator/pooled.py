"""The federation's samples in one place, and the GWAS computed on them with the kernels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genofed.io.plink import MISSING_CALL
from genofed.kernels.linreg import local_null_sums, local_variant_sums, solve_linear
from genofed.report import GwasTable

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Pooled:
    """Every node's samples, in node order; ``rows`` gives each node's rows of the arrays.

    ``columns`` holds the phenotype columns every node has, as the nodes read them
    from their own tables.
    """

    dosages: npt.NDArray[np.int8]  # (samples, variants) ALT counts, MISSING_CALL if missing
    columns: dict[str, FloatArray]
    variant_ids: npt.NDArray[np.str_]
    rows: dict[str, slice]

    def analysed(self, phenotype: str, covariates: Sequence[str]) -> npt.NDArray[np.bool_]:
        """The samples with the phenotype and every covariate: those PLINK 2 keeps."""
        values = np.column_stack([self.columns[name] for name in (phenotype, *covariates)])
        complete: npt.NDArray[np.bool_] = np.all(~np.isnan(values), axis=1)
        return complete

    def of(self, nodes: Sequence[str]) -> npt.NDArray[np.intp]:
        """The rows of the named nodes' samples."""
        every = np.arange(len(self.dosages))
        return np.concatenate([every[self.rows[name]] for name in nodes])


@dataclass(frozen=True)
class Expected:
    """Per variant, what a linear GWAS reports: as ``GwasTable``'s columns of the same name."""

    beta: FloatArray
    standard_error: FloatArray
    p_value: FloatArray
    n: npt.NDArray[np.int64]
    effect_allele_frequency: FloatArray

    def take(self, variants: npt.NDArray[np.intp]) -> Expected:
        return Expected(*(getattr(self, name)[variants] for name in Expected.__dataclass_fields__))


def linear_gwas(
    pooled: Pooled, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
) -> Expected:
    """The linear GWAS of the named nodes' pooled samples, by the kernel on one array."""
    rows = pooled.of(nodes)
    rows = rows[pooled.analysed(phenotype, covariates)[rows]]
    y = pooled.columns[phenotype][rows]
    c = np.column_stack([np.ones(len(rows)), *(pooled.columns[name][rows] for name in covariates)])
    dosages = pooled.dosages[rows]
    result = solve_linear(local_null_sums(c, y), local_variant_sums(c, y, dosages))
    alt = np.where(dosages == MISSING_CALL, 0, dosages).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frequency = alt / (2 * result.n)
    return Expected(result.beta, result.standard_error, result.p_value, result.n, frequency)


def assert_table_equals(table: GwasTable, expected: Expected) -> None:
    """Equal counts, and estimates equal to well within PLINK 2's printed precision."""
    np.testing.assert_array_equal(table.n, expected.n)
    for column in ("beta", "standard_error", "p_value", "effect_allele_frequency"):
        np.testing.assert_allclose(
            getattr(table, column), getattr(expected, column), rtol=1e-9, atol=0, err_msg=column
        )
