"""Exact linear regression GWAS from additive sums.

The node side (``local_*``) sums over its own samples; the coordinator adds
the sums of every node and solves (``solve_linear``). For each variant the
samples with a missing call are dropped exactly as PLINK 2 drops them: each
node also returns the covariate sums of its missing-call samples, which are
subtracted from the study-wide sums.

Two node-side kernels give the same sums: ``local_variant_sums`` on decoded
int8 dosages (the reference), and ``local_variant_sums_packed`` straight on
the 2-bit rows of a PLINK .bed file, with a ``LinearDesign`` prepared once
per study.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL
from genofed.kernels import _packed
from genofed.kernels._sums import Summable

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class NullSums(Summable):
    """Once per study: C'C, C'y, y'y and n over the samples with complete data."""

    ctc: FloatArray
    cty: FloatArray
    yty: float
    n: int


@dataclass(frozen=True)
class VariantSums(Summable):
    """Per variant of a block: C'g, g'g, g'y over called samples, and missing-call sums."""

    ctg: FloatArray  # (variants, k)
    gtg: FloatArray  # (variants,)
    gty: FloatArray  # (variants,)
    missing_ctc: FloatArray  # (variants, k, k) sum of c c' over missing-call samples
    missing_cty: FloatArray  # (variants, k)
    missing_yty: FloatArray  # (variants,)
    n_missing: npt.NDArray[np.int64]  # (variants,)


@dataclass(frozen=True)
class LinearResult:
    """Per-variant effect of one ALT allele; NaN where the model cannot be fitted."""

    beta: FloatArray
    standard_error: FloatArray
    t_statistic: FloatArray
    p_value: FloatArray
    n: npt.NDArray[np.int64]


def local_null_sums(covariates: FloatArray, phenotype: FloatArray) -> NullSums:
    """Sum over this node's samples; ``covariates`` includes the intercept column."""
    return NullSums(
        covariates.T @ covariates,
        covariates.T @ phenotype,
        float(phenotype @ phenotype),
        len(phenotype),
    )


def local_variant_sums(
    covariates: FloatArray, phenotype: FloatArray, dosages: npt.NDArray[np.int8]
) -> VariantSums:
    """Sum over this node's samples for a (samples x variants) block of ALT counts."""
    missing = dosages == MISSING_CALL
    g = np.where(missing, 0, dosages).astype(np.float64)
    m = missing.astype(np.float64)
    return VariantSums(
        ctg=g.T @ covariates,
        gtg=np.einsum("ij,ij->j", g, g),
        gty=g.T @ phenotype,
        missing_ctc=_missing_ctc(m, covariates),
        missing_cty=m.T @ (covariates * phenotype[:, None]),
        missing_yty=m.T @ (phenotype * phenotype),
        n_missing=missing.sum(axis=0).astype(np.int64),
    )


def _missing_ctc(missing: FloatArray, covariates: FloatArray) -> FloatArray:
    """Per variant, the sum of c c' over its missing-call samples, as one matrix product."""
    k = covariates.shape[1]
    ctc = np.zeros((missing.shape[1], k, k))
    rows = np.flatnonzero(missing.any(axis=1))
    if len(rows) == 0:
        return ctc
    upper = np.triu_indices(k)
    c = covariates[rows]
    triangle = missing[rows].T @ (c[:, upper[0]] * c[:, upper[1]])
    ctc[:, upper[0], upper[1]] = triangle
    ctc[:, upper[1], upper[0]] = triangle
    return ctc


@dataclass(frozen=True, eq=False)
class LinearDesign:
    """One node's samples, prepared once for ``local_variant_sums_packed``.

    Built by :func:`linear_design`. Its arrays grow with the number of
    samples (about ``4 k + k^2 / 2`` doubles per sample), never with the
    number of variants.
    """

    n_samples: int  # rows of the .fam file
    n_included: int  # samples in the analysis
    n_covariates: int  # k, including the intercept column
    bytes_per_variant: int
    genotype_rows: FloatArray  # (4 * bytes_per_variant, 4, width): value(code) * [c, y]
    missing_rows: FloatArray  # (4 * bytes_per_variant, missing_width): c c', c y, y^2
    included_words: npt.NDArray[np.uint64]  # bit 2j of word w: sample 32 w + j is included


def _padded(columns: int) -> int:
    return -(-columns // _packed.LANES) * _packed.LANES


def linear_design(
    covariates: FloatArray, phenotype: FloatArray, included: npt.NDArray[np.bool_]
) -> LinearDesign:
    """Prepare a node's covariates and phenotype for the packed kernel.

    Parameters
    ----------
    covariates
        ``(n_samples, k)`` covariates in .fam order, the intercept column
        included. Rows of excluded samples are ignored and may hold NaN.
    phenotype
        ``(n_samples,)`` phenotype in .fam order; NaN allowed where excluded.
    included
        ``(n_samples,)`` boolean mask of the samples in the analysis.

    Returns
    -------
    LinearDesign
        What ``local_variant_sums_packed`` needs for every block of variants.

    Raises
    ------
    InputError
        If the shapes disagree or an included sample has a non-finite value.
    """
    covariates = np.asarray(covariates, dtype=np.float64)
    phenotype = np.asarray(phenotype, dtype=np.float64)
    included = np.asarray(included)
    if covariates.ndim != 2 or covariates.shape[1] == 0:
        raise InputError(
            f"covariates must be a (samples x k) matrix with k >= 1, got shape {covariates.shape}"
        )
    n, k = covariates.shape
    if phenotype.shape != (n,) or included.shape != (n,) or included.dtype != np.bool_:
        raise InputError(
            f"phenotype {phenotype.shape} and boolean mask {included.shape} ({included.dtype}) "
            f"must have one entry per covariate row ({n})"
        )
    for name, values in (("covariate", covariates), ("phenotype", phenotype)):
        bad = ~np.isfinite(values[included])
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
            raise InputError(
                f"{len(rows)} included samples have a non-finite {name} value "
                f"(first at .fam row {np.flatnonzero(included)[rows[0]] + 1}); "
                "exclude them or impute before the analysis"
            )
    bytes_per_variant = -(-n // 4)
    padded_n = 4 * bytes_per_variant
    inside = np.zeros(padded_n, dtype=np.bool_)
    inside[:n] = included
    c = np.zeros((padded_n, k))
    c[inside] = covariates[included]
    y = np.zeros(padded_n)
    y[inside] = phenotype[included]

    genotype_rows = np.zeros((padded_n, 4, _padded(k + 1)))
    for code, value in enumerate(_packed.CODE_VALUE):
        genotype_rows[:, code, :k] = value * c
        genotype_rows[:, code, k] = value * y

    upper = np.triu_indices(k)
    triangle = len(upper[0])
    missing_rows = np.zeros((padded_n, _padded(triangle + k + 1)))
    missing_rows[:, :triangle] = c[:, upper[0]] * c[:, upper[1]]
    missing_rows[:, triangle : triangle + k] = c * y[:, None]
    missing_rows[:, triangle + k] = y * y

    # One bit per sample, at the low bit of its 2-bit genotype, 32 samples a word.
    bits = np.zeros(-(-padded_n // 32) * 32, dtype=np.uint64)
    bits[:padded_n] = inside
    shifts = np.arange(0, 64, 2, dtype=np.uint64)
    included_words = np.bitwise_or.reduce(bits.reshape(-1, 32) << shifts, axis=1)
    return LinearDesign(
        n_samples=n,
        n_included=int(included.sum()),
        n_covariates=k,
        bytes_per_variant=bytes_per_variant,
        genotype_rows=genotype_rows,
        missing_rows=missing_rows,
        included_words=included_words,
    )


def local_variant_sums_packed(design: LinearDesign, packed: npt.NDArray[np.uint8]) -> VariantSums:
    """Sum over this node's included samples for a block of packed .bed rows.

    Equal, up to rounding, to ``local_variant_sums`` on the decoded ALT counts
    of the included samples, without decoding: the 2-bit genotypes are read
    four samples per byte (see ``genofed.kernels._packed``). Blocks of a few
    thousand variants amortise the per-block table building best.

    Parameters
    ----------
    design
        The node's samples, from :func:`linear_design`.
    packed
        ``(variants, bytes_per_variant)`` uint8 rows of a SNP-major PLINK .bed
        file, as returned by ``genofed.io.bed.PackedBed.block``.

    Returns
    -------
    VariantSums
        The node's additive sums for these variants.

    Raises
    ------
    InputError
        If ``packed`` is not a uint8 matrix with the design's bytes per variant.
    """
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != design.bytes_per_variant:
        raise InputError(
            f"packed genotypes must be uint8 rows of {design.bytes_per_variant} bytes "
            f"({design.n_samples} samples), got {packed.dtype} of shape {packed.shape}"
        )
    rows = np.ascontiguousarray(packed).reshape(-1)
    rows.flags.writeable = False  # one compiled kernel for arrays and read-only maps alike
    n_variants = packed.shape[0]
    k = design.n_covariates
    sums, counts, missing = _packed.packed_variant_sums(
        rows,
        n_variants,
        design.bytes_per_variant,
        design.genotype_rows.reshape(-1),
        tuple(range(design.genotype_rows.shape[2] // _packed.LANES)),
        design.missing_rows.reshape(-1),
        tuple(range(design.missing_rows.shape[1] // _packed.LANES)),
        design.included_words,
    )
    triangle = k * (k + 1) // 2
    return VariantSums(
        ctg=sums[:, :k].copy(),
        gtg=(4 * counts[:, 0] + counts[:, 1]).astype(np.float64),
        gty=sums[:, k].copy(),
        missing_ctc=missing[:, _triangle_to_square(k)].reshape(n_variants, k, k),
        missing_cty=missing[:, triangle : triangle + k].copy(),
        missing_yty=missing[:, triangle + k].copy(),
        n_missing=counts[:, 2].copy(),
    )


def _triangle_to_square(k: int) -> npt.NDArray[np.intp]:
    """For each entry of a k x k symmetric matrix, its column in the packed upper triangle."""
    upper = np.triu_indices(k)
    index = np.empty((k, k), dtype=np.intp)
    index[upper] = np.arange(len(upper[0]))
    index[upper[1], upper[0]] = index[upper]
    return index.reshape(-1)


def solve_linear(null: NullSums, sums: VariantSums) -> LinearResult:
    """Fit y = C b + g beta for every variant on its own called samples."""
    ctc = null.ctc[None] - sums.missing_ctc
    cty = null.cty[None] - sums.missing_cty
    yty = null.yty - sums.missing_yty
    n = null.n - sums.n_missing
    k = null.ctc.shape[0]
    both = np.linalg.solve(ctc, np.stack([sums.ctg, cty], axis=2))  # A^-1 [C'g, C'y]
    a_inv_ctg, a_inv_cty = both[..., 0], both[..., 1]
    schur = sums.gtg - np.einsum("jk,jk->j", sums.ctg, a_inv_ctg)  # g'g - g'C A^-1 C'g
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = (sums.gty - np.einsum("jk,jk->j", sums.ctg, a_inv_cty)) / schur
        residual = yty - np.einsum("jk,jk->j", cty, a_inv_cty) - beta**2 * schur
        df = n - k - 1
        variance = residual / df
        se = np.sqrt(variance / schur)
        t = beta / se
    fitted = (schur > 1e-8 * np.maximum(sums.gtg, 1e-300)) & (df > 0)
    beta, se, t = (np.where(fitted, x, np.nan) for x in (beta, se, t))
    p = np.where(fitted, 2 * stats.t.sf(np.abs(t), np.maximum(df, 1)), np.nan)
    return LinearResult(beta, se, t, p, n.astype(np.int64))
