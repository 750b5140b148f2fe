"""The federation's samples in one place, and what a study over them should release.

Every node releases under the small-group rule with ``min_count`` :data:`MIN_COUNT`.
The references here apply the rule to the pooled genotypes, independently of
the nodes' code:

* genotype counts (variant QC, the PCA's selection) are withheld when one of
  the cohort's counts of ALT dosage 0, 1, 2 or missing is 1 to ``MIN_COUNT - 1``;
* a linear GWAS row is ``WITHHELD`` for such a genotype group (0, 1 or 2);
  else ``.`` (PLINK-exact) when the variant has no missing call in the cohort,
  or at least ``MIN_COUNT`` of them and some node whose own missing-call group
  is unique (:func:`unique_groups`); else ``IMPUTED``, over every sample of the
  cohort with each node's missing calls at that node's mean dosage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genofed.io.plink import MISSING_CALL
from genofed.kernels.linreg import VariantSums, local_null_sums, local_variant_sums, solve_linear
from genofed.kernels.qc import genotype_counts
from genofed.report import GwasTable

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MIN_COUNT = 5  # every node's [disclosure] min_count (the default)
EXACT, IMPUTED, WITHHELD = ".", "IMPUTED", "WITHHELD"  # the GWAS table's disclosure column


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

    def analysed(self, phenotype: str, covariates: Sequence[str]) -> BoolArray:
        """The samples with the phenotype and every covariate: those PLINK 2 keeps."""
        values = np.column_stack([self.columns[name] for name in (phenotype, *covariates)])
        complete: BoolArray = np.all(~np.isnan(values), axis=1)
        return complete

    def of(self, nodes: Sequence[str]) -> npt.NDArray[np.intp]:
        """The rows of the named nodes' samples."""
        every = np.arange(len(self.dosages))
        return np.concatenate([every[self.rows[name]] for name in nodes])

    def cohort(
        self, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
    ) -> npt.NDArray[np.intp]:
        """The rows of the named nodes' samples in the analysis: a study's cohort."""
        rows = self.of(nodes)
        return rows[self.analysed(phenotype, covariates)[rows]]


def small_group(counts: npt.NDArray[np.int64]) -> BoolArray:
    """Variants whose ``(variants, groups)`` counts include a group of 1 to MIN_COUNT - 1."""
    small: BoolArray = ((counts > 0) & (counts < MIN_COUNT)).any(axis=1)
    return small


def unique_groups(missing: BoolArray) -> BoolArray:
    """Which variants' missing-call groups one node reports unique, by brute force.

    ``missing`` is ``(samples, variants)``: the node's cohort samples, the variants
    in file order. A group is unique if it has at least MIN_COUNT samples and
    differs by at least MIN_COUNT samples from the non-empty group of every
    earlier variant.
    """
    calls = missing.astype(np.int64)
    size = calls.sum(axis=0)
    distance = size[:, None] + size[None, :] - 2 * (calls.T @ calls)  # |A ^ B|
    earlier = np.tril(np.ones(distance.shape, dtype=np.bool_), -1) & (size[None, :] > 0)
    unique: BoolArray = (size >= MIN_COUNT) & ~((distance < MIN_COUNT) & earlier).any(axis=1)
    return unique


def disclosure(
    pooled: Pooled, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
) -> npt.NDArray[np.str_]:
    """Per variant, the disclosure a linear GWAS over the named nodes reports."""
    dosages = pooled.dosages[pooled.cohort(phenotype, covariates, nodes=nodes)]
    counts = genotype_counts(dosages)
    unique = np.zeros(dosages.shape[1], dtype=np.bool_)
    for name in nodes:
        rows = pooled.cohort(phenotype, covariates, nodes=(name,))
        unique |= unique_groups(pooled.dosages[rows] == MISSING_CALL)
    missing = counts[:, 3]
    exact = (missing == 0) | ((missing >= MIN_COUNT) & unique)
    labels: npt.NDArray[np.str_] = np.where(
        small_group(counts[:, :3]), WITHHELD, np.where(exact, EXACT, IMPUTED)
    )
    return labels


@dataclass(frozen=True)
class Expected:
    """Per variant, what a linear GWAS reports: as ``GwasTable``'s columns of the same name."""

    beta: FloatArray
    standard_error: FloatArray
    p_value: FloatArray
    n: npt.NDArray[np.int64]
    effect_allele_frequency: FloatArray
    disclosure: npt.NDArray[np.str_]

    def take(self, variants: npt.NDArray[np.intp]) -> Expected:
        return Expected(*(getattr(self, name)[variants] for name in Expected.__dataclass_fields__))


def _design(
    pooled: Pooled, rows: npt.NDArray[np.intp], phenotype: str, covariates: Sequence[str]
) -> tuple[FloatArray, FloatArray]:
    """The covariates with the intercept first, and the phenotype, of ``rows``."""
    c = np.column_stack([np.ones(len(rows)), *(pooled.columns[name][rows] for name in covariates)])
    return c, pooled.columns[phenotype][rows]


def linear_gwas(
    pooled: Pooled, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
) -> Expected:
    """The PLINK-exact linear GWAS of the named nodes' pooled samples, by the kernel."""
    rows = pooled.cohort(phenotype, covariates, nodes=nodes)
    c, y = _design(pooled, rows, phenotype, covariates)
    dosages = pooled.dosages[rows]
    result = solve_linear(local_null_sums(c, y), local_variant_sums(c, y, dosages))
    alt = np.where(dosages == MISSING_CALL, 0, dosages).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frequency = alt / (2 * result.n)
    labels = np.full(len(alt), EXACT)
    return Expected(result.beta, result.standard_error, result.p_value, result.n, frequency, labels)


def imputed_dosages(
    pooled: Pooled, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
) -> FloatArray:
    """The cohort's dosages, each node's missing calls at its mean over its called cohort samples.

    A node with no call at a variant puts 0. Rows as ``pooled.cohort(...)``.
    """
    parts = []
    for name in nodes:
        dosages = pooled.dosages[pooled.cohort(phenotype, covariates, nodes=(name,))]
        missing = dosages == MISSING_CALL
        called = (~missing).sum(axis=0)
        total = np.where(missing, 0, dosages).sum(axis=0)
        mean = np.where(called > 0, total / np.maximum(called, 1), 0.0)
        parts.append(np.where(missing, mean, dosages.astype(np.float64)))
    return np.concatenate(parts)


def imputed_gwas(
    pooled: Pooled, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
) -> Expected:
    """OLS of every variant over the whole cohort on :func:`imputed_dosages`, by the kernel."""
    rows = pooled.cohort(phenotype, covariates, nodes=nodes)
    c, y = _design(pooled, rows, phenotype, covariates)
    g = imputed_dosages(pooled, phenotype, covariates, nodes=nodes)
    variants, k = g.shape[1], c.shape[1]
    sums = VariantSums(
        ctg=g.T @ c,
        gtg=np.einsum("ij,ij->j", g, g),
        gty=g.T @ y,
        missing_ctc=np.zeros((variants, k, k)),
        missing_cty=np.zeros((variants, k)),
        missing_yty=np.zeros(variants),
        n_missing=np.zeros(variants, dtype=np.int64),
    )
    result = solve_linear(local_null_sums(c, y), sums)
    frequency = g.sum(axis=0) / (2 * len(rows))
    labels = np.full(variants, IMPUTED)
    return Expected(result.beta, result.standard_error, result.p_value, result.n, frequency, labels)


def released_gwas(
    pooled: Pooled, phenotype: str, covariates: Sequence[str], *, nodes: Sequence[str]
) -> Expected:
    """The linear GWAS over the named nodes as released: each row exact, imputed or withheld."""
    labels = disclosure(pooled, phenotype, covariates, nodes=nodes)
    exact = linear_gwas(pooled, phenotype, covariates, nodes=nodes)
    imputed = imputed_gwas(pooled, phenotype, covariates, nodes=nodes)
    withheld = labels == WITHHELD

    def pick(name: str) -> npt.NDArray[np.generic]:
        chosen = np.where(labels == IMPUTED, getattr(imputed, name), getattr(exact, name))
        return np.where(withheld, 0 if name == "n" else np.nan, chosen)

    return Expected(
        pick("beta"),
        pick("standard_error"),
        pick("p_value"),
        pick("n").astype(np.int64),
        pick("effect_allele_frequency"),
        labels,
    )


def categories(labels: npt.NDArray[np.str_]) -> dict[str, int]:
    """How many rows have each disclosure."""
    return {label: int((labels == label).sum()) for label in (EXACT, IMPUTED, WITHHELD)}


def assert_table_equals(table: GwasTable, expected: Expected) -> None:
    """Equal disclosures and counts, and estimates equal to well within PLINK 2's precision."""
    np.testing.assert_array_equal(table.extra["disclosure"], expected.disclosure)
    for label in (EXACT, IMPUTED, WITHHELD):
        rows = np.flatnonzero(expected.disclosure == label)
        np.testing.assert_array_equal(table.n[rows], expected.n[rows], err_msg=f"n, {label} rows")
        for column in ("beta", "standard_error", "p_value", "effect_allele_frequency"):
            np.testing.assert_allclose(
                getattr(table, column)[rows], getattr(expected, column)[rows], rtol=1e-9, atol=0,
                err_msg=f"{column}, {label} rows",
            )  # fmt: skip
