"""Exact linear regression GWAS from additive sums.

The node side (``local_*``) sums over its own samples; the coordinator adds
the sums of every node and solves (``solve_linear``). For each variant the
samples with a missing call are dropped exactly as PLINK 2 drops them: each
node also returns the covariate sums of its missing-call samples, which are
subtracted from the study-wide sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from genofed.io.plink import MISSING_CALL

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class NullSums:
    """Once per study: C'C, C'y, y'y and n over the samples with complete data."""

    ctc: FloatArray
    cty: FloatArray
    yty: float
    n: int

    def __add__(self, other: NullSums) -> NullSums:
        return NullSums(
            self.ctc + other.ctc, self.cty + other.cty, self.yty + other.yty, self.n + other.n
        )


@dataclass(frozen=True)
class VariantSums:
    """Per variant of a block: C'g, g'g, g'y over called samples, and missing-call sums."""

    ctg: FloatArray  # (variants, k)
    gtg: FloatArray  # (variants,)
    gty: FloatArray  # (variants,)
    missing_ctc: FloatArray  # (variants, k, k) sum of c c' over missing-call samples
    missing_cty: FloatArray  # (variants, k)
    missing_yty: FloatArray  # (variants,)
    n_missing: npt.NDArray[np.int64]  # (variants,)

    def __add__(self, other: VariantSums) -> VariantSums:
        return VariantSums(
            self.ctg + other.ctg,
            self.gtg + other.gtg,
            self.gty + other.gty,
            self.missing_ctc + other.missing_ctc,
            self.missing_cty + other.missing_cty,
            self.missing_yty + other.missing_yty,
            self.n_missing + other.n_missing,
        )


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
        missing_ctc=np.einsum("ij,ik,il->jkl", m, covariates, covariates, optimize=True),
        missing_cty=m.T @ (covariates * phenotype[:, None]),
        missing_yty=m.T @ (phenotype * phenotype),
        n_missing=missing.sum(axis=0).astype(np.int64),
    )


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
