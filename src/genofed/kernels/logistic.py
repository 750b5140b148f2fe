"""Exact logistic regression GWAS with PLINK 2's Firth fallback, split for a federation.

The node side (``local_*``) sums over its own samples; the coordinator adds
the sums of every node and runs PLINK 2's algorithm (:func:`fit_logistic`).
Each variant is fitted on the samples with a called genotype at that variant
only, as PLINK drops them. The design is ``X = [C, g]``: the covariates ``C``
with the intercept first, then the ALT allele count ``g``; coefficient vectors
and the packed information triangles follow that order.

PLINK 2's rules (``plink2 --glm`` on a case/control trait, 2.00a3.x)
-------------------------------------------------------------------
Read in ``chrchang/plink-ng``, ``2.0/plink2_glm_logistic.cc`` as of 2022
(copyright 2005-2022: single precision, Firth after an older ``logistf``,
rewritten on 30 Dec 2022 after 2.00a3.5), and ``2.0/plink2_glm.cc`` (stored
commit ``5f69373b``). ``~c.N`` below is a character offset in the 2022
``plink2_glm_logistic.cc``. Default modifiers: ``firth-fallback``, covariates
used as given (``--covar-variance-standardize`` is opt-in, so the thresholds
below act on the covariates' own units), ``--max-corr 0.999``, ``--vif 50``.

Per variant, before fitting (``GlmLogisticThread``, ~c.96,000-142,000):

* samples with a missing call are dropped for this variant only; ``OBS_CT``
  counts the rest. ``SAMPLE_CT<=PREDICTOR_CT`` if at most as many as the
  predictors, then ``CONST_OMITTED_ALLELE`` if the genotype is constant;
* ``CORR_TOO_HIGH``, ``VIF_INFINITE``, ``VIF_TOO_HIGH`` (``CheckMaxCorrAndVif*``,
  ~c.3,000): on those samples, the correlation matrix of all predictors but
  the intercept (``n - 1`` denominators) has an entry above ``--max-corr`` in
  absolute value, is singular, or has an inverse with a diagonal element
  (a VIF) above ``--vif``;
* a variant whose ALT or REF allele count is zero among the cases or among the
  controls goes straight to Firth regression ("faster to skip logistic
  regression than wait for convergence failure", ~c.139,000);
* if some covariate alone (quasi-)separates cases from controls, every variant
  of the trait is fitted with Firth (``GlmDetermineCovars`` and
  ``CheckForSeparatedQtCovar`` in ``plink2_glm.cc``, c.30,212-41,000:
  ``separation_found``); see :func:`covariates_separate`. (With ``no-firth``
  PLINK drops such covariates and samples instead: not implemented.)

Logistic regression (``LogisticRegression``, ~c.42,000): Newton-Raphson from
zero coefficients, ``b += H^-1 X'(y - mu)``, ``H = X'WX`` factored by a
Cholesky decomposition that puts ``1e-6`` where a pivot is negative. After
update ``t`` (from 0), with ``delta`` the sum of the absolute steps: failure
if ``delta`` is NaN, or (``t > 3``) if ``delta > 20`` and ``delta > 2 min(delta
so far)``, or (``t > 6``) if ``|1 - delta| < 1e-3``; at ``t > 13`` failure if
some ``|b| > 8e3``, else stop with the result marked ``UNFINISHED`` (no
Firth: a quasi-separated variant typically ends so, with a diverging beta);
converged when ``delta < 1e-4``, unless some ``|b| > 6e4`` (failure). The
coefficients are those after the last step, the standard errors come from
the inverse of the ``H`` that step used, evaluated one step earlier
(``final_information=True`` re-evaluates it at the coefficients). A failure
falls back to Firth from zero (``FIRTH?`` = ``Y``); with ``no-firth`` it is
``LOGISTIC_CONVERGE_FAIL``, and a zero allele count ``SEPARATION``.

Firth regression (``FirthRegression``, ~c.53,500-62,500): maximise
``l*(b) = l(b) + log det(X'WX) / 2`` from zero coefficients. The penalised
score is ``U* = X'(y - mu) + sum_i h_i (1/2 - mu_i) x_i`` with leverages
``h_i = w_i x_i' (X'WX)^-1 x_i``; the step is ``d = (X'WX)^-1 U*`` (the
unpenalised information), scaled down to ``max |d| <= 5``. Each iteration
re-evaluates ``l*`` after the step and halves it back (``1, 1/2, ...,
1/32``) while ``l*`` is below its previous value, less ``0.999999e-4`` once
``max |d| <= 1e-4`` and ``max |U*| < 1e-4`` ("small"); landing between that
threshold and the previous value, it halves once more and stops. When the
fifth halving fails with ``max |d| < 1e-3``, ``max |U*| < 0.05`` and ``l*``
within ``1e-4`` of the previous value, the step is undone and the fit counts
as stalled ("hs_bail", meant for float rounding, c.61,211) from then on.
Converged when ``|change of l*| <= 1e-4`` and the step was small or the fit
stalled; after 25 iterations it stops as ``UNFINISHED``. A singular
``X'WX`` at any evaluation is ``FIRTH_CONVERGE_FAIL``. Standard errors are
``sqrt(diag((X'WX)^-1))`` at the final coefficients.

Both fits then (~c.142,500): ``INVALID_RESULT`` if a diagonal element of the
inverse information (but the intercept's) is below ``1e-20`` or not finite,
or an off-diagonal element exceeds ``0.99999`` times the geometric mean of
its two diagonal elements (checked on the positive side only). Z = beta / SE
and p is two-sided normal (Wald), for logistic and Firth fits alike.

Double precision
----------------
PLINK computes in single precision; this module follows the same path in
double precision. Logistic fits agree to ~5e-5 standard errors. PLINK's
Firth fits mostly end when float rounding hides progress ("converged as much
as we can with single-precision arithmetic"), ~1e-3 standard errors from the
optimum; here they continue to the tolerances, so they agree to ~2e-3 SE and
whether a fit is ``UNFINISHED`` differs for ~1% of them (where the Firth step
overshoots and oscillates, float noise can end the oscillation in PLINK).
Changes of ``l*`` below ``1e-11 |l*|`` count as no increase: at such ties the
decision would otherwise hang on the rounding of the sums, and so on how the
samples are split over nodes.

Federation
----------
One round trip evaluates, for the variants still being fitted, the summed
:class:`LogisticSums` at their current coefficients and, for variants in a
Firth iteration, the :class:`FirthSums` correction given their inverse
information (:class:`RoundRequest` -> :class:`RoundSums`; node side
:func:`local_round` on a :class:`LogisticBlock` kept for the block).
Finished variants drop out of the requests, so the round trips of a block
are the most evaluations any of its variants needs (6-7 for logistic
regression; two per Firth iteration plus one per halving, up to ~60), never
the number of variants. The first round, at zero coefficients, also gives
``X'X = 4 X'WX`` for the checks.

Node cost per round, for ``n`` samples, ``m`` requested variants and ``k``
covariates: matrix products of ``m x n`` by ``n x k(k+1)/2`` (the weighted
covariate products, one GEMM), by ``n x k`` (the linear predictor) and of
``2m x n`` by ``n x k`` (residuals and weighted genotypes), about
``n m (k(k+1)/2 + 3k)`` multiply-adds, plus two compiled element-wise passes
(:mod:`genofed.kernels._logistic_loops`) around numpy's ``exp``, in chunks of
variants; the log-likelihood (Firth variants only) and the Firth correction
(one more product of the same size) add a few passes. Measured: ~10 ns per
sample and variant for ``k = 11`` on one core (0.13 s for 3,333 samples x
4,096 variants).

A faster mode (:func:`local_score_sums`, :func:`score_test`) fits the null
model once (:func:`fit_null_logistic`) and gives a score test per variant in
one pass, like REGENIE's; it is a different test from PLINK's Wald test, and
:func:`variants_to_refine` picks the variants to refit exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL
from genofed.kernels import _logistic_loops as loops
from genofed.kernels._sums import Summable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FirthMode = Literal["fallback", "never", "always"]
_Label = str | npt.NDArray[np.object_]

OK = "."
UNFINISHED = "UNFINISHED"
SAMPLE_CT_LTE_PREDICTOR_CT = "SAMPLE_CT<=PREDICTOR_CT"
CONST_OMITTED_ALLELE = "CONST_OMITTED_ALLELE"
CORR_TOO_HIGH = "CORR_TOO_HIGH"
VIF_INFINITE = "VIF_INFINITE"
VIF_TOO_HIGH = "VIF_TOO_HIGH"
SEPARATION = "SEPARATION"
LOGISTIC_CONVERGE_FAIL = "LOGISTIC_CONVERGE_FAIL"
FIRTH_CONVERGE_FAIL = "FIRTH_CONVERGE_FAIL"
INVALID_RESULT = "INVALID_RESULT"

_FIRTH_MAX_ITERATIONS = 25
_FIRTH_TOLERANCE = 1e-4
_FIRTH_MAX_STEP = 5.0
_FIRTH_HALVINGS = 5
_FIRTH_TIE = 1e-11  # relative change of l* that counts as a tie


# --------------------------------------------------------------------------
# Packed symmetric matrices
# --------------------------------------------------------------------------


def _square_index(p: int) -> npt.NDArray[np.intp]:
    """For each entry of a p x p symmetric matrix, its column in the packed upper triangle."""
    upper = np.triu_indices(p)
    index = np.empty((p, p), dtype=np.intp)
    index[upper] = np.arange(len(upper[0]))
    index[upper[1], upper[0]] = index[upper]
    return index.reshape(-1)


def unpack_symmetric(triangles: FloatArray, p: int) -> FloatArray:
    """``(m, p(p+1)/2)`` packed upper triangles (row-major) as ``(m, p, p)`` matrices."""
    return triangles[:, _square_index(p)].reshape(len(triangles), p, p)


# --------------------------------------------------------------------------
# Node side
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LogisticDesign:
    """One node's included samples, prepared once per study by :func:`logistic_design`."""

    n_samples: int  # rows of the .fam file
    rows: npt.NDArray[np.intp]  # the included rows, in .fam order
    covariates: FloatArray  # (n, k) included rows, intercept first
    phenotype: FloatArray  # (n,) 0 = control, 1 = case
    products: FloatArray  # (n, k(k+1)/2): c_a c_b for a <= b, row-major

    @property
    def n_covariates(self) -> int:
        """``k``, the number of covariate columns including the intercept."""
        return int(self.covariates.shape[1])


def logistic_design(
    covariates: FloatArray, phenotype: FloatArray, included: npt.NDArray[np.bool_]
) -> LogisticDesign:
    """Prepare a node's covariates and 0/1 phenotype for the logistic kernels.

    Parameters
    ----------
    covariates
        ``(n_samples, k)`` covariates in .fam order, the intercept column
        first. Rows of excluded samples are ignored and may hold NaN.
    phenotype
        ``(n_samples,)`` 0 (control) / 1 (case) in .fam order; NaN allowed
        where excluded.
    included
        ``(n_samples,)`` boolean mask of the samples in the analysis.

    Returns
    -------
    LogisticDesign
        What the ``local_*`` kernels need for every block of variants.

    Raises
    ------
    InputError
        If the shapes disagree, or an included sample has a non-finite
        covariate or a phenotype other than 0 or 1.
    """
    covariates = np.asarray(covariates, dtype=np.float64)
    phenotype = np.asarray(phenotype, dtype=np.float64)
    included = np.asarray(included)
    if covariates.ndim != 2 or covariates.shape[1] == 0:
        raise InputError(
            f"covariates must be a (samples x k) matrix with k >= 1, got shape {covariates.shape}"
        )
    n = covariates.shape[0]
    if phenotype.shape != (n,) or included.shape != (n,) or included.dtype != np.bool_:
        raise InputError(
            f"phenotype {phenotype.shape} and boolean mask {included.shape} ({included.dtype}) "
            f"must have one entry per covariate row ({n})"
        )
    rows = np.flatnonzero(included)
    c, y = covariates[rows], phenotype[rows]
    if not np.isfinite(c).all():
        raise InputError("an included sample has a non-finite covariate; exclude or impute it")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputError("the phenotype of included samples must be 0 (control) or 1 (case)")
    upper = np.triu_indices(c.shape[1])
    return LogisticDesign(n, rows, c, y, c[:, upper[0]] * c[:, upper[1]])


@dataclass(frozen=True)
class LogisticSums(Summable):
    """Per variant, summed over called samples at the requested coefficients.

    ``score`` is ``X'(y - mu)``, ``information`` the packed upper triangle of
    ``X'WX`` with ``W = mu (1 - mu)``, ``loglik`` the log-likelihood; the
    counts do not depend on the coefficients.
    """

    score: FloatArray  # (m, p)
    information: FloatArray  # (m, p(p+1)/2)
    loglik: FloatArray  # (m,)
    n: IntArray  # (m,) called samples
    cases: IntArray  # (m,) called cases
    alt: IntArray  # (m,) ALT alleles over called samples
    alt_cases: IntArray  # (m,) ALT alleles over called cases


@dataclass(frozen=True)
class FirthSums(Summable):
    """Per variant: ``sum_i h_i (1/2 - mu_i) x_i`` with ``h_i = w_i x_i' I^-1 x_i``."""

    correction: FloatArray  # (m, p)


_CHUNK_ELEMENTS = 1 << 18  # variants x samples per chunk (at least 16 variants, for the GEMMs)


@dataclass(frozen=True)
class _Fitted:
    """One chunk of variants on one node: fitted values (internal).

    The arrays are views into buffers reused by the next chunk.
    """

    dosages: npt.NDArray[np.int8]  # (b, n) ALT counts, MISSING_CALL where missing
    odds: FloatArray  # (b, n) exp(-eta) = (1 - mu) / mu
    weight: FloatArray  # (b, n) mu (1 - mu), 0 where missing
    stacked: FloatArray  # (2b, n) residuals y - mu, then weight * g; 0 where missing
    sums: FloatArray  # (b, 6) g'r, g'Wg, called, called cases, ALT, ALT among cases

    @property
    def residual(self) -> FloatArray:
        """``(b, n)`` ``y - mu``, 0 where missing."""
        return self.stacked[: len(self.dosages)]


def _variant_major(design: LogisticDesign, dosages: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """Return the block's included rows as a contiguous (variants x samples) int8 array."""
    block = np.asarray(dosages)
    if block.dtype != np.int8 or block.ndim != 2 or block.shape[0] != design.n_samples:
        raise InputError(
            f"dosages must be an int8 (samples x variants) block with {design.n_samples} rows, "
            f"got {block.dtype} of shape {block.shape}"
        )
    if len(design.rows) != design.n_samples:
        block = block[design.rows]
    return np.ascontiguousarray(block.T)


def _chunks(m: int, n: int) -> list[slice]:
    size = max(16, _CHUNK_ELEMENTS // max(n, 1))
    return [slice(start, min(start + size, m)) for start in range(0, m, size)]


def _check_coefficients(coef: FloatArray, m: int, k: int) -> None:
    if coef.shape != (m, k + 1):
        raise InputError(
            f"coefficients must be (variants x {k + 1}) = {(m, k + 1)}, got {coef.shape}"
        )


def _row_dot(a: FloatArray, b: FloatArray) -> FloatArray:
    dot: FloatArray = np.einsum("ij,ij->i", a, b)
    return dot


def _fitted_chunks(
    design: LogisticDesign, block: npt.NDArray[np.int8], coef: FloatArray
) -> Iterator[tuple[slice, _Fitted]]:
    """Evaluate the fitted values chunk by chunk; each chunk's arrays live until the next."""
    m, n = block.shape
    k = design.n_covariates
    parts = _chunks(m, n)
    rows = parts[0].stop if parts else 0
    odds, weight = np.empty((rows, n)), np.empty((rows, n))
    stacked, sums = np.empty((2 * rows, n)), np.empty((rows, 6))
    slope = np.ascontiguousarray(coef[:, k])
    for part in parts:
        b = part.stop - part.start
        g8 = np.ascontiguousarray(block[part])
        fit = _Fitted(g8, odds[:b], weight[:b], stacked[: 2 * b], sums[:b])
        np.matmul(coef[part, :k], design.covariates.T, out=fit.odds)
        loops.negate_predictor(g8, fit.odds, slope[part])
        with np.errstate(over="ignore"):
            np.exp(fit.odds, out=fit.odds)  # overflow gives mu = 0, as it should
        loops.fitted_values(
            g8, fit.odds, design.phenotype, fit.weight, fit.residual, fit.stacked[b:], fit.sums
        )
        yield part, fit


def local_logistic_sums(
    design: LogisticDesign,
    dosages: npt.NDArray[np.int8],
    coefficients: FloatArray,
    with_loglik: BoolArray | None = None,
) -> LogisticSums:
    """Sum score, information and log-likelihood over this node's samples.

    Parameters
    ----------
    design
        The node's samples, from :func:`logistic_design`.
    dosages
        ``(n_samples, m)`` int8 ALT counts in .fam order, ``MISSING_CALL``
        where missing; a sample with a missing call is dropped for that
        variant only.
    coefficients
        ``(m, k + 1)`` coefficients per variant: covariates, then genotype.
    with_loglik
        ``(m,)`` which variants need the log-likelihood (default: all); it
        is NaN for the others, saving a logarithm per sample.

    Returns
    -------
    LogisticSums
        The node's sums for these variants.

    Raises
    ------
    InputError
        If the block or the coefficients have the wrong shape or type.
    """
    block = _variant_major(design, dosages)
    wanted = np.ones(len(block), dtype=np.bool_) if with_loglik is None else with_loglik
    return _logistic_sums(design, block, coefficients, np.asarray(wanted, dtype=np.bool_))


def _logistic_sums(
    design: LogisticDesign, block: npt.NDArray[np.int8], coefficients: FloatArray, wanted: BoolArray
) -> LogisticSums:
    coef = np.asarray(coefficients, dtype=np.float64)
    m, k = block.shape[0], design.n_covariates
    _check_coefficients(coef, m, k)
    if wanted.shape != (m,):
        raise InputError(f"with_loglik must have one entry per variant ({m})")
    upper = np.triu_indices(k + 1)
    covariate_block = upper[1] < k
    cross = (upper[1] == k) & (upper[0] < k)
    score = np.empty((m, k + 1))
    information = np.empty((m, len(upper[0])))
    loglik = np.full(m, np.nan)
    counts = np.empty((m, 4))
    for part, fit in _fitted_chunks(design, block, coef):
        b = part.stop - part.start
        products = fit.stacked @ design.covariates  # C'r, then C'Wg
        score[part, :k] = products[:b]
        score[part, k] = fit.sums[:, 0]
        information[part, covariate_block] = fit.weight @ design.products
        information[part, cross] = products[b:]
        information[part, -1] = fit.sums[:, 1]
        rows = np.flatnonzero(wanted[part])
        if len(rows):
            out = np.empty(len(rows))
            loops.log_likelihoods(fit.dosages, fit.odds, design.phenotype, rows, out)
            loglik[part.start + rows] = out
        counts[part] = fit.sums[:, 2:]
    n, cases, alt, alt_cases = np.rint(counts).astype(np.int64).T
    return LogisticSums(score, information, loglik, n, cases, alt, alt_cases)


def local_firth_sums(
    design: LogisticDesign,
    dosages: npt.NDArray[np.int8],
    coefficients: FloatArray,
    inverse_information: FloatArray,
) -> FirthSums:
    """Sum this node's part of Firth's score correction.

    ``h_i = w_i x_i' I^-1 x_i`` is the leverage of sample ``i`` (a diagonal
    element of ``W^1/2 X (X'WX)^-1 X' W^1/2``), with the federation-wide
    ``I^-1`` sent by the coordinator; the penalised score is
    ``X'(y - mu) + sum_i h_i (1/2 - mu_i) x_i``.

    Parameters
    ----------
    design
        The node's samples, from :func:`logistic_design`.
    dosages
        ``(n_samples, m)`` int8 ALT counts in .fam order.
    coefficients
        ``(m, k + 1)`` coefficients per variant.
    inverse_information
        ``(m, k + 1, k + 1)`` inverse of the summed ``X'WX`` at those
        coefficients.

    Returns
    -------
    FirthSums
        The node's correction sums.

    Raises
    ------
    InputError
        If the shapes disagree.
    """
    return _firth_sums(design, _variant_major(design, dosages), coefficients, inverse_information)


def _firth_sums(
    design: LogisticDesign,
    block: npt.NDArray[np.int8],
    coefficients: FloatArray,
    inverse_information: FloatArray,
) -> FirthSums:
    coef = np.asarray(coefficients, dtype=np.float64)
    inverse = np.asarray(inverse_information, dtype=np.float64)
    m, k = block.shape[0], design.n_covariates
    _check_coefficients(coef, m, k)
    if inverse.shape != (m, k + 1, k + 1):
        raise InputError(f"inverse information must be {(m, k + 1, k + 1)}, got {inverse.shape}")
    upper = np.triu_indices(k)
    doubled = np.where(upper[0] == upper[1], 1.0, 2.0)
    packed = inverse[:, upper[0], upper[1]] * doubled  # so that products @ packed = c' A_cc c
    correction = np.empty((m, k + 1))
    for part, fit in _fitted_chunks(design, block, coef):
        g = np.maximum(fit.dosages, 0).astype(np.float64)  # MISSING_CALL is negative
        quadratic = packed[part] @ design.products.T
        quadratic += 2.0 * g * (inverse[part, k, :k] @ design.covariates.T)
        quadratic += g * g * inverse[part, k, k][:, None]
        u = fit.weight * quadratic  # 0 where missing
        u *= 0.5 - design.phenotype + fit.residual  # 1/2 - mu where called
        correction[part, :k] = u @ design.covariates
        correction[part, k] = _row_dot(u, g)
    return FirthSums(correction)


@dataclass(frozen=True)
class RoundRequest:
    """What the coordinator asks every node for in one round trip.

    ``variants`` and ``firth_variants`` are columns of the node's current
    block of dosages.
    """

    variants: IntArray  # (m,)
    coefficients: FloatArray  # (m, p)
    with_loglik: BoolArray  # (m,) variants whose log-likelihood is needed
    firth_variants: IntArray  # (f,)
    firth_coefficients: FloatArray  # (f, p)
    inverse_information: FloatArray  # (f, p, p)


@dataclass(frozen=True)
class RoundSums(Summable):
    """The answer to a :class:`RoundRequest`, summed over samples (and then nodes)."""

    logistic: LogisticSums
    firth: FirthSums


@dataclass(frozen=True, eq=False)
class LogisticBlock:
    """A node's block of variants, kept while the coordinator iterates on it.

    Built by :func:`logistic_block`: the included samples' int8 ALT counts,
    variant-major, so that each round reads only the requested variants.
    """

    dosages: npt.NDArray[np.int8]  # (v, n) included samples, MISSING_CALL where missing

    @property
    def n_variants(self) -> int:
        """Variants in the block."""
        return int(self.dosages.shape[0])


def logistic_block(design: LogisticDesign, dosages: npt.NDArray[np.int8]) -> LogisticBlock:
    """Prepare a ``(n_samples, v)`` int8 block of ALT counts for :func:`local_round`."""
    return LogisticBlock(_variant_major(design, dosages))


def local_round(design: LogisticDesign, block: LogisticBlock, request: RoundRequest) -> RoundSums:
    """Answer one round of :func:`fit_logistic` on this node's block of variants.

    Parameters
    ----------
    design
        The node's samples, from :func:`logistic_design`.
    block
        The block, from :func:`logistic_block`.
    request
        The variants (indices into the block) and coefficients to evaluate.

    Returns
    -------
    RoundSums
        The node's logistic sums for ``request.variants`` and Firth
        corrections for ``request.firth_variants``.
    """
    dosages = block.dosages
    return RoundSums(
        _logistic_sums(
            design,
            dosages[request.variants],
            request.coefficients,
            np.asarray(request.with_loglik, dtype=np.bool_),
        ),
        _firth_sums(
            design,
            dosages[request.firth_variants],
            request.firth_coefficients,
            request.inverse_information,
        ),
    )


@dataclass(frozen=True)
class CovariateRanges:
    """Per covariate column, its range among cases and among controls."""

    case_min: FloatArray
    case_max: FloatArray
    control_min: FloatArray
    control_max: FloatArray

    def __add__(self, other: CovariateRanges) -> CovariateRanges:
        """Combine two nodes' ranges (by minimum and maximum, not a sum)."""
        return CovariateRanges(
            np.minimum(self.case_min, other.case_min),
            np.maximum(self.case_max, other.case_max),
            np.minimum(self.control_min, other.control_min),
            np.maximum(self.control_max, other.control_max),
        )


def local_covariate_ranges(design: LogisticDesign) -> CovariateRanges:
    """Each covariate's minimum and maximum among this node's cases and controls."""
    c = design.covariates
    cases, controls = c[design.phenotype == 1.0], c[design.phenotype == 0.0]

    def extremes(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        if len(x) == 0:
            return np.full(c.shape[1], np.inf), np.full(c.shape[1], -np.inf)
        return x.min(axis=0), x.max(axis=0)

    case_min, case_max = extremes(cases)
    control_min, control_max = extremes(controls)
    return CovariateRanges(case_min, case_max, control_min, control_max)


def covariates_separate(ranges: CovariateRanges) -> bool:
    """Whether some non-constant covariate (quasi-)separates cases from controls.

    PLINK then fits every variant of the phenotype with Firth regression
    (pass ``firth="always"`` to :func:`fit_logistic`).
    """
    constant = np.minimum(ranges.case_min, ranges.control_min) == np.maximum(
        ranges.case_max, ranges.control_max
    )
    separated = (ranges.case_max <= ranges.control_min) | (ranges.control_max <= ranges.case_min)
    return bool((separated & ~constant).any())


# --------------------------------------------------------------------------
# Coordinator side: linear algebra on stacks of small matrices
# --------------------------------------------------------------------------


def _cholesky(h: FloatArray, *, plink_pivot: bool) -> tuple[FloatArray, BoolArray]:
    """Batched lower Cholesky factors, and which matrices were positive definite.

    With ``plink_pivot`` a negative pivot becomes ``1e-6`` as in PLINK's
    ``CholeskyDecomposition`` (used by its logistic regression); otherwise
    the factor of a matrix that is not positive definite is garbage and
    flagged.
    """
    m, p, _ = h.shape
    factor = np.zeros_like(h)
    ok = np.ones(m, dtype=np.bool_)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j in range(p):
            pivot = h[:, j, j] - np.einsum("mi,mi->m", factor[:, j, :j], factor[:, j, :j])
            ok &= pivot > 0
            if plink_pivot:
                diagonal = np.where(pivot >= 0, np.sqrt(np.maximum(pivot, 0.0)), 1e-6)
            else:
                diagonal = np.sqrt(np.where(pivot > 0, pivot, np.nan))
            factor[:, j, j] = diagonal
            below = h[:, j + 1 :, j] - np.einsum(
                "mri,mi->mr", factor[:, j + 1 :, :j], factor[:, j, :j]
            )
            factor[:, j + 1 :, j] = below / diagonal[:, None]
    return factor, ok & np.isfinite(factor).all(axis=(1, 2))


def _inverse_from_cholesky(factor: FloatArray) -> FloatArray:
    """``(L L')^-1`` for a stack of lower triangular ``L``."""
    p = factor.shape[1]
    inverse_factor = np.zeros_like(factor)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j in range(p):
            row = -np.einsum("mi,mik->mk", factor[:, j, :j], inverse_factor[:, :j, :])
            row[:, j] += 1.0
            inverse_factor[:, j, :] = row / factor[:, j, j][:, None]
        inverse: FloatArray = np.einsum("mji,mjk->mik", inverse_factor, inverse_factor)
    return inverse


def _solve(inverse: FloatArray, vectors: FloatArray) -> FloatArray:
    solution: FloatArray = np.einsum("mij,mj->mi", inverse, vectors)
    return solution


def _log_det(factor: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        log_det: FloatArray = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
    return log_det


def _invalid_result(inverse: FloatArray) -> BoolArray:
    """PLINK's ``INVALID_RESULT`` test on the inverse information (intercept first)."""
    diagonal = np.diagonal(inverse, axis1=1, axis2=2)
    bad = ((diagonal[:, 1:] < 1e-20) | ~np.isfinite(diagonal[:, 1:])).any(axis=1)
    with np.errstate(invalid="ignore"):
        root = np.sqrt(diagonal)
        bound = 0.99999 * root[:, :, None] * root[:, None, :]
        lower = np.tril(np.ones(inverse.shape[1:], dtype=np.bool_), -1)
        too_correlated = ((inverse > bound) & lower).any(axis=(1, 2))
    invalid: BoolArray = np.logical_or(bad, too_correlated)
    return invalid


def _collinearity(
    xtx: FloatArray, n: IntArray, max_corr: float, max_vif: float
) -> npt.NDArray[np.str_]:
    """PLINK's per-variant correlation and VIF checks from ``X'X`` (intercept first)."""
    sums = xtx[:, 0, 1:]
    count = n.astype(np.float64)[:, None, None]
    errors = np.full(len(xtx), OK, dtype=object)
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = (xtx[:, 1:, 1:] - sums[:, :, None] * sums[:, None, :] / count) / (count - 1)
        scale = 1.0 / np.sqrt(np.diagonal(covariance, axis1=1, axis2=2))
        corr = covariance * scale[:, :, None] * scale[:, None, :]
    q = corr.shape[1]
    off_diagonal = ~np.eye(q, dtype=np.bool_)
    errors[(np.abs(corr) > max_corr)[:, off_diagonal].any(axis=1)] = CORR_TOO_HIGH
    corr[:, np.arange(q), np.arange(q)] = 1.0
    factor, ok = _cholesky(np.nan_to_num(corr, nan=0.0), plink_pivot=False)
    ok &= np.isfinite(corr).all(axis=(1, 2))
    vif = np.diagonal(_inverse_from_cholesky(factor), axis1=1, axis2=2)
    unset = errors == OK
    errors[unset & ~ok] = VIF_INFINITE
    errors[unset & ok & (vif > max_vif).any(axis=1)] = VIF_TOO_HIGH
    return errors.astype(str)


# --------------------------------------------------------------------------
# Coordinator side: the per-variant state machine
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticResult:
    """Per variant: the ALT allele's effect (log odds ratio), as PLINK 2 reports it.

    ``error`` holds PLINK's ``ERRCODE``: ``"."`` for a result, ``"UNFINISHED"``
    for a result that hit the iteration limit, otherwise the reason for NaN.
    ``firth`` is PLINK's ``FIRTH?`` column. ``rounds`` counts the evaluations
    (round trips) each variant took.
    """

    beta: FloatArray
    standard_error: FloatArray
    z_statistic: FloatArray
    p_value: FloatArray
    n: IntArray
    firth: BoolArray
    error: npt.NDArray[np.str_]
    rounds: IntArray


def concatenate_results(results: list[LogisticResult]) -> LogisticResult:
    """Join the results of fits of consecutive variant subsets, in order."""
    return LogisticResult(
        *(np.concatenate([getattr(r, f.name) for r in results]) for f in fields(LogisticResult))
    )


_START, _LOGISTIC, _INFORMATION, _FIRTH_SCORE, _FIRTH_STEP, _DONE = range(6)


@dataclass(frozen=True)
class _Options:
    firth: FirthMode
    max_corr: float
    max_vif: float
    final_information: bool


@dataclass
class _State:
    """Every variant's progress through PLINK's algorithm (internal)."""

    p: int
    variants: IntArray  # block columns
    options: _Options
    phase: IntArray = field(init=False)
    coef: FloatArray = field(init=False)
    inverse: FloatArray = field(init=False)  # (X'WX)^-1 for the reported SE
    score: FloatArray = field(init=False)  # X'(y - mu) at coef (Firth)
    zero_sums: LogisticSums | None = None  # the first round, reused by Firth
    iteration: IntArray = field(init=False)
    min_delta: FloatArray = field(init=False)
    penalised: FloatArray = field(init=False)  # l* at coef (Firth)
    previous: FloatArray = field(init=False)  # l* before this iteration's step
    threshold: FloatArray = field(init=False)
    step: FloatArray = field(init=False)
    step_max: FloatArray = field(init=False)
    score_max: FloatArray = field(init=False)
    halving: IntArray = field(init=False)
    max_halvings: IntArray = field(init=False)
    small: BoolArray = field(init=False)  # max|d| <= 1e-4 and max|U*| < 1e-4
    bailed: BoolArray = field(init=False)
    n: IntArray = field(init=False)
    firth: BoolArray = field(init=False)
    error: npt.NDArray[np.object_] = field(init=False)
    rounds: IntArray = field(init=False)

    def __post_init__(self) -> None:
        v, p = len(self.variants), self.p
        self.phase = np.full(v, _START, dtype=np.int64)
        self.coef = np.zeros((v, p))
        self.inverse = np.full((v, p, p), np.nan)
        self.score = np.zeros((v, p))
        self.iteration = np.zeros(v, dtype=np.int64)
        self.min_delta = np.full(v, 1e9)
        for name in ("penalised", "previous", "threshold", "step_max", "score_max"):
            setattr(self, name, np.zeros(v))
        self.step = np.zeros((v, p))
        self.halving = np.zeros(v, dtype=np.int64)
        self.max_halvings = np.zeros(v, dtype=np.int64)
        self.small = np.zeros(v, dtype=np.bool_)
        self.bailed = np.zeros(v, dtype=np.bool_)
        self.n = np.zeros(v, dtype=np.int64)
        self.firth = np.zeros(v, dtype=np.bool_)
        self.error = np.full(v, OK, dtype=object)
        self.rounds = np.zeros(v, dtype=np.int64)

    def finish(self, index: IntArray, error: _Label = OK) -> None:
        self.phase[index] = _DONE
        self.error[index] = error


def _request(state: _State) -> tuple[RoundRequest, IntArray, IntArray]:
    wants_sums = np.flatnonzero(
        np.isin(state.phase, (_START, _LOGISTIC, _INFORMATION, _FIRTH_STEP))
    )
    wants_firth = np.flatnonzero(state.phase == _FIRTH_SCORE)
    request = RoundRequest(
        variants=state.variants[wants_sums],
        coefficients=state.coef[wants_sums],
        with_loglik=state.firth[wants_sums],
        firth_variants=state.variants[wants_firth],
        firth_coefficients=state.coef[wants_firth],
        inverse_information=state.inverse[wants_firth],
    )
    return request, wants_sums, wants_firth


def _take(sums: LogisticSums, rows: npt.NDArray[np.intp]) -> LogisticSums:
    return LogisticSums(
        sums.score[rows],
        sums.information[rows],
        sums.loglik[rows],
        sums.n[rows],
        sums.cases[rows],
        sums.alt[rows],
        sums.alt_cases[rows],
    )


def _start(state: _State, index: IntArray, sums: LogisticSums) -> None:
    """Pre-fit checks from the sums at zero coefficients; route to logistic or Firth."""
    p, options = state.p, state.options
    state.n[index] = sums.n
    xtx = 4.0 * unpack_symmetric(sums.information, p)  # W = 1/4 at zero coefficients
    g_squares = xtx[:, -1, -1]
    errors = np.full(len(index), OK, dtype=object)
    errors[sums.n.astype(np.float64) * g_squares == sums.alt.astype(np.float64) ** 2] = (
        CONST_OMITTED_ALLELE
    )
    errors[sums.n <= p] = SAMPLE_CT_LTE_PREDICTOR_CT
    unchecked = errors == OK
    if p > 2 and unchecked.any():
        errors[unchecked] = _collinearity(
            xtx[unchecked], sums.n[unchecked], options.max_corr, options.max_vif
        )
    failed = errors != OK
    state.finish(index[failed], errors[failed])
    index, sums = index[~failed], _take(sums, np.flatnonzero(~failed))
    if options.firth == "always":
        _start_firth(state, index, sums)
        return
    ref, ref_cases = 2 * sums.n - sums.alt, 2 * sums.cases - sums.alt_cases
    zero_count = (
        (sums.alt_cases == 0) | (sums.alt_cases == sums.alt) | (ref_cases == 0) | (ref_cases == ref)
    )
    if options.firth == "never":
        state.finish(index[zero_count], SEPARATION)
    else:
        _start_firth(state, index[zero_count], _take(sums, np.flatnonzero(zero_count)))
    _logistic_step(state, index[~zero_count], _take(sums, np.flatnonzero(~zero_count)))


def _logistic_step(state: _State, index: IntArray, sums: LogisticSums) -> None:
    """One Newton-Raphson update with PLINK's stopping and failure rules."""
    if len(index) == 0:
        return
    h = unpack_symmetric(sums.information, state.p)
    factor, _ = _cholesky(h, plink_pivot=True)
    inverse = _inverse_from_cholesky(factor)
    with np.errstate(invalid="ignore", over="ignore"):
        step = _solve(inverse, sums.score)
        coef = state.coef[index] + step
        delta = np.abs(step).sum(axis=1)
    t = state.iteration[index]
    min_delta = np.minimum(state.min_delta[index], delta)
    largest = np.abs(coef).max(axis=1)
    failed = np.isnan(delta) | (
        (t > 3)
        & (((delta > 20) & (delta > 2 * min_delta)) | ((t > 6) & (np.abs(1 - delta) < 1e-3)))
    )
    unfinished = ~failed & (t > 13)
    failed |= unfinished & (largest > 8e3)
    unfinished &= ~failed
    converged = ~failed & ~unfinished & (delta < 1e-4)
    failed |= converged & (largest > 6e4)
    converged &= ~failed
    state.coef[index], state.inverse[index] = coef, inverse
    state.min_delta[index], state.iteration[index] = min_delta, t + 1
    state.phase[index] = _LOGISTIC
    _end_logistic(state, index[converged], OK)
    _end_logistic(state, index[unfinished], UNFINISHED)
    if state.options.firth == "never":
        state.finish(index[failed], LOGISTIC_CONVERGE_FAIL)
    else:
        assert state.zero_sums is not None
        _start_firth(state, index[failed], _take(state.zero_sums, index[failed]))


def _end_logistic(state: _State, index: IntArray, label: str) -> None:
    """Report, or first evaluate the information at the reported coefficients."""
    if not state.options.final_information:
        _report(state, index, label)
        return
    state.error[index] = label
    state.phase[index] = _INFORMATION


def _final_information(state: _State, index: IntArray, sums: LogisticSums) -> None:
    factor, _ = _cholesky(unpack_symmetric(sums.information, state.p), plink_pivot=True)
    state.inverse[index] = _inverse_from_cholesky(factor)
    _report(state, index, state.error[index])


def _report(state: _State, index: IntArray, error: _Label = OK) -> None:
    """Finish with a result unless the inverse information is ``INVALID_RESULT``."""
    invalid = _invalid_result(state.inverse[index])
    state.finish(index, np.where(invalid, INVALID_RESULT, error).astype(object))


def _evaluate_firth(state: _State, index: IntArray, sums: LogisticSums) -> BoolArray:
    """Store l*, the score and (X'WX)^-1 at the current coefficients; False where singular."""
    factor, ok = _cholesky(unpack_symmetric(sums.information, state.p), plink_pivot=False)
    state.penalised[index] = sums.loglik + 0.5 * _log_det(factor)
    state.score[index] = sums.score
    state.inverse[index] = _inverse_from_cholesky(factor)
    state.finish(index[~ok], FIRTH_CONVERGE_FAIL)
    return ok


def _start_firth(state: _State, index: IntArray, zero_sums: LogisticSums) -> None:
    """Begin Firth regression at zero coefficients, from the sums already known there."""
    if len(index) == 0:
        return
    state.firth[index] = True
    state.coef[index] = 0.0
    state.iteration[index] = 0
    state.bailed[index] = False
    state.phase[index] = _FIRTH_SCORE
    _evaluate_firth(state, index, zero_sums)


def _firth_update(state: _State, index: IntArray, correction: FloatArray) -> None:
    """Take a full Firth step from the penalised score; its l* is evaluated next round."""
    if len(index) == 0:
        return
    penalised_score = state.score[index] + correction
    score_max = np.abs(penalised_score).max(axis=1)
    step = _solve(state.inverse[index], penalised_score)
    step_max = np.abs(step).max(axis=1)
    scale = np.where(step_max > _FIRTH_MAX_STEP, _FIRTH_MAX_STEP / step_max, 1.0)
    step *= scale[:, None]
    step_max = np.minimum(step_max, _FIRTH_MAX_STEP)
    small = (step_max <= _FIRTH_TOLERANCE) & (score_max < _FIRTH_TOLERANCE)
    state.coef[index] += step
    state.step[index], state.step_max[index], state.score_max[index] = step, step_max, score_max
    state.small[index] = small
    state.previous[index] = state.penalised[index]
    state.threshold[index] = state.penalised[index] - np.where(small, 0.999999 * 1e-4, 0.0)
    state.halving[index] = 1
    state.max_halvings[index] = _FIRTH_HALVINGS
    state.phase[index] = _FIRTH_STEP


def _firth_halving(state: _State, index: IntArray, sums: LogisticSums) -> None:
    """Judge l* after a (possibly halved) step; halve again or end the iteration."""
    if len(index) == 0:
        return
    ok = _evaluate_firth(state, index, sums)
    index = index[ok]
    pen, old = state.penalised[index], state.previous[index]
    halving, max_halvings = state.halving[index], state.max_halvings[index]
    tie = _FIRTH_TIE * np.abs(old)  # a change within rounding is no increase
    done = halving > max_halvings
    above = ~done & (pen >= state.threshold[index] + tie)
    done |= above & (pen >= old + tie)
    max_halvings = np.where(above & ~done, halving, max_halvings)
    bail = (
        ~done
        & ~above
        & (halving == max_halvings)
        & (state.step_max[index] < 1e-3)
        & (state.score_max[index] < 0.05)
        & (pen >= old - _FIRTH_TOLERANCE)
    )
    halving = halving - bail.astype(np.int64)
    max_halvings = max_halvings - bail.astype(np.int64)
    state.bailed[index] |= bail
    again = index[~done]
    state.coef[again] -= state.step[again] * np.exp2(-halving[~done].astype(np.float64))[:, None]
    state.halving[index] = halving + (~done).astype(np.int64)
    state.max_halvings[index] = max_halvings
    _end_firth_iteration(state, index[done])


def _end_firth_iteration(state: _State, index: IntArray) -> None:
    change = np.abs(state.penalised[index] - state.previous[index])
    converged = (change <= _FIRTH_TOLERANCE) & (state.small[index] | state.bailed[index])
    unfinished = ~converged & (state.iteration[index] == _FIRTH_MAX_ITERATIONS - 1)
    _report(state, index[converged])
    _report(state, index[unfinished], UNFINISHED)
    going_on = index[~converged & ~unfinished]
    state.iteration[going_on] += 1
    state.phase[going_on] = _FIRTH_SCORE


def fit_logistic(
    evaluate: Callable[[RoundRequest], RoundSums],
    n_variants: int,
    n_covariates: int,
    *,
    variants: npt.ArrayLike | None = None,
    firth: FirthMode = "fallback",
    max_corr: float = 0.999,
    max_vif: float = 50.0,
    final_information: bool = False,
) -> LogisticResult:
    """Fit every variant of a block as ``plink2 --glm`` does for a 0/1 phenotype.

    Parameters
    ----------
    evaluate
        One round trip: the federation's sum over nodes of
        :func:`local_round` for the request.
    n_variants
        Variants in the block (columns of the nodes' dosages).
    n_covariates
        ``k``, covariate columns including the intercept.
    variants
        The block columns to fit (default: all), e.g. from
        :func:`variants_to_refine`; the result follows this order.
    firth
        PLINK's ``firth-fallback`` (``"fallback"``, the default),
        ``no-firth`` (``"never"``) or ``firth`` (``"always"``; also what
        PLINK does when :func:`covariates_separate`).
    max_corr, max_vif
        PLINK's ``--max-corr`` and ``--vif`` thresholds.
    final_information
        PLINK takes a logistic fit's standard errors from the information
        of its last Newton step, evaluated one step before the reported
        coefficients (a relative difference up to ~1e-4). With True, one
        more round evaluates it at the reported coefficients, giving the
        maximum likelihood standard errors. Firth fits are unaffected.

    Returns
    -------
    LogisticResult
        Per variant: beta, SE, Z, p, OBS_CT, FIRTH? and ERRCODE.
    """
    chosen = np.arange(n_variants) if variants is None else np.asarray(variants, dtype=np.int64)
    options = _Options(firth, max_corr, max_vif, final_information)
    state = _State(n_covariates + 1, chosen.astype(np.int64), options)
    while (state.phase != _DONE).any():
        request, wants_sums, wants_firth = _request(state)
        sums = evaluate(request)
        state.rounds[wants_sums] += 1
        state.rounds[wants_firth] += 1
        if state.zero_sums is None:
            state.zero_sums = _at_zero(sums.logistic)
            _start(state, wants_sums, state.zero_sums)
            continue
        _advance(state, wants_sums, sums.logistic)
        _firth_update(state, wants_firth, sums.firth.correction)
    return _result(state)


def _at_zero(sums: LogisticSums) -> LogisticSums:
    """Fill in the log-likelihood at zero coefficients: exactly ``-n log 2``."""
    return LogisticSums(
        sums.score,
        sums.information,
        -np.log(2.0) * sums.n,
        sums.n,
        sums.cases,
        sums.alt,
        sums.alt_cases,
    )


def _advance(state: _State, index: IntArray, sums: LogisticSums) -> None:
    """Process the sums of one round by each variant's phase."""
    phase = state.phase[index]
    for wanted, handler in (
        (_LOGISTIC, _logistic_step),
        (_INFORMATION, _final_information),
        (_FIRTH_STEP, _firth_halving),
    ):
        rows = np.flatnonzero(phase == wanted)
        if len(rows):
            handler(state, index[rows], _take(sums, rows))


def _result(state: _State) -> LogisticResult:
    valid = np.isin(state.error, (OK, UNFINISHED))
    with np.errstate(invalid="ignore"):
        se = np.sqrt(state.inverse[:, -1, -1])
    beta = np.where(valid, state.coef[:, -1], np.nan)
    se = np.where(valid, se, np.nan)
    z = beta / se
    return LogisticResult(
        beta=beta,
        standard_error=se,
        z_statistic=z,
        p_value=np.where(valid, 2.0 * stats.norm.sf(np.abs(z)), np.nan),
        n=state.n,
        firth=state.firth,
        error=state.error.astype(str),
        rounds=state.rounds,
    )


# --------------------------------------------------------------------------
# Null model and score test (a faster, different test)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NullLogisticSums(Summable):
    """Covariates-only model at given coefficients, summed over samples."""

    score: FloatArray  # (k,) C'(y - mu)
    information: FloatArray  # (k(k+1)/2,) packed C'WC
    loglik: float
    n: int
    cases: int


def local_null_logistic_sums(design: LogisticDesign, coefficients: FloatArray) -> NullLogisticSums:
    """Sum the covariates-only model's score, information and log-likelihood on this node."""
    coef = np.asarray(coefficients, dtype=np.float64)
    if coef.shape != (design.n_covariates,):
        raise InputError(f"null coefficients must have {design.n_covariates} entries")
    eta = design.covariates @ coef
    mu = special.expit(eta)
    y = design.phenotype
    return NullLogisticSums(
        score=design.covariates.T @ (y - mu),
        information=design.products.T @ (mu * (1.0 - mu)),
        loglik=float((y * eta - np.logaddexp(0.0, eta)).sum()),
        n=len(y),
        cases=int(y.sum()),
    )


@dataclass(frozen=True)
class NullLogisticFit:
    """The covariates-only fit, with the summed sums at its coefficients."""

    coefficients: FloatArray
    standard_error: FloatArray
    sums: NullLogisticSums
    iterations: int
    converged: bool


def fit_null_logistic(
    evaluate: Callable[[FloatArray], NullLogisticSums],
    n_covariates: int,
    *,
    tolerance: float = 1e-10,
    max_iterations: int = 50,
) -> NullLogisticFit:
    """Fit the covariates-only logistic model by Newton-Raphson from zero.

    Stops when the sum of absolute steps is below ``tolerance`` (much tighter
    than PLINK's ``1e-4``, since the score test builds on it), then evaluates
    the sums once more at the final coefficients.

    Parameters
    ----------
    evaluate
        One round trip: the federation's sum of :func:`local_null_logistic_sums`.
    n_covariates
        ``k``, including the intercept.
    tolerance, max_iterations
        Convergence criterion and iteration limit.

    Returns
    -------
    NullLogisticFit
        Coefficients, standard errors, and the sums at the coefficients.
    """
    coef = np.zeros(n_covariates)
    converged = False
    iterations = 0
    while iterations < max_iterations and not converged:
        sums = evaluate(coef)
        factor, ok = _cholesky(
            unpack_symmetric(sums.information[None], n_covariates), plink_pivot=False
        )
        if not ok[0]:
            break
        step = _solve(_inverse_from_cholesky(factor), sums.score[None])[0]
        coef = coef + step
        iterations += 1
        converged = bool(np.abs(step).sum() < tolerance)
    sums = evaluate(coef)
    factor, _ = _cholesky(unpack_symmetric(sums.information[None], n_covariates), plink_pivot=False)
    inverse = _inverse_from_cholesky(factor)[0]
    return NullLogisticFit(coef, np.sqrt(np.diag(inverse)), sums, iterations, converged)


@dataclass(frozen=True)
class ScoreSums(Summable):
    """Per variant, at the null model's fitted values ``mu0`` and weights ``w0``."""

    u: FloatArray  # (v,) sum over called samples of g (y - mu0)
    gwg: FloatArray  # (v,) sum over called samples of w0 g^2
    cwg: FloatArray  # (v, k) sum over called samples of w0 c g
    n: IntArray  # (v,) called samples
    cases: IntArray  # (v,) called cases
    alt: IntArray  # (v,) ALT alleles over called samples


@dataclass(frozen=True)
class MissingScoreSums(Summable):
    """Per variant, sums over its missing-call samples, to drop them from the null model's."""

    cwc: FloatArray  # (v, k(k+1)/2) sum of w0 c c', packed upper triangle
    cr: FloatArray  # (v, k) sum of c (y - mu0)


def _null_fitted(design: LogisticDesign, null_coefficients: FloatArray) -> tuple[FloatArray, ...]:
    """Return the null model's weights ``w0`` and residuals ``y - mu0`` at this node's samples."""
    coef = np.asarray(null_coefficients, dtype=np.float64)
    if coef.shape != (design.n_covariates,):
        raise InputError(f"null coefficients must have {design.n_covariates} entries")
    mu0 = special.expit(design.covariates @ coef)
    return mu0 * (1.0 - mu0), design.phenotype - mu0


def _block_rows(
    design: LogisticDesign, dosages: npt.NDArray[np.int8] | LogisticBlock
) -> npt.NDArray[np.int8]:
    if isinstance(dosages, LogisticBlock):
        return dosages.dosages
    return _variant_major(design, dosages)


def local_score_sums(
    design: LogisticDesign,
    null_coefficients: FloatArray,
    dosages: npt.NDArray[np.int8] | LogisticBlock,
) -> ScoreSums:
    """Sum the score-test pieces over this node's samples for a block of variants.

    One pass per block, no iterations: ``g'(y - mu0)``, ``g'W0 g`` and
    ``C'W0 g`` over each variant's called samples, and its counts. Variants
    with missing calls also need :func:`local_missing_score_sums`.
    """
    w0, r0 = _null_fitted(design, null_coefficients)
    block = _block_rows(design, dosages)
    m, n = block.shape
    cwg = np.empty((m, design.n_covariates))
    pieces = np.empty((m, 5))  # g'r0, g'W0g, called, called cases, ALT
    parts = _chunks(m, n)
    weighted_g = np.empty((parts[0].stop if parts else 0, n))
    for part in parts:
        wg = weighted_g[: part.stop - part.start]
        loops.score_pieces(block[part], w0, r0, design.phenotype, wg, pieces[part])
        cwg[part] = wg @ design.covariates
    n_called, cases, alt = np.rint(pieces[:, 2:]).astype(np.int64).T
    return ScoreSums(u=pieces[:, 0], gwg=pieces[:, 1], cwg=cwg, n=n_called, cases=cases, alt=alt)


def local_missing_score_sums(
    design: LogisticDesign,
    null_coefficients: FloatArray,
    dosages: npt.NDArray[np.int8] | LogisticBlock,
    variants: npt.ArrayLike | None = None,
) -> MissingScoreSums:
    """Sum ``w0 c c'`` and ``c (y - mu0)`` over the missing-call samples of ``variants``.

    ``variants`` are rows of the block (default: all); the coordinator asks
    only for those with a missing call somewhere in the federation.
    """
    w0, r0 = _null_fitted(design, null_coefficients)
    block = _block_rows(design, dosages)
    rows = np.arange(len(block)) if variants is None else np.asarray(variants, dtype=np.intp)
    missing = (block[rows] == MISSING_CALL).astype(np.float64)
    return MissingScoreSums(
        cwc=(missing * w0) @ design.products, cr=(missing * r0) @ design.covariates
    )


@dataclass(frozen=True)
class ScoreResult:
    """Per variant: efficient score, its variance, chi-square(1) statistic and p."""

    score: FloatArray
    variance: FloatArray
    chi_squared: FloatArray
    p_value: FloatArray
    n: IntArray


def score_test(
    null: NullLogisticFit, sums: ScoreSums, missing: MissingScoreSums | None = None
) -> ScoreResult:
    """Score test of each variant against the null model (not PLINK's Wald test).

    With ``A = C'W0C`` over the variant's called samples, the efficient score
    is ``U = g'(y - mu0) - g'W0C A^-1 C'(y - mu0)`` and its variance
    ``V = g'W0g - g'W0C A^-1 C'W0g``; ``U^2 / V`` is chi-square(1) under the
    null. ``missing`` (:func:`local_missing_score_sums`, summed) takes each
    variant's missing-call samples out of ``A`` and ``C'(y - mu0)``; without
    missing calls the correction term vanishes (``C'(y - mu0) = 0`` at the
    null fit). NaN where ``V`` is not positive or too few samples remain.
    """
    k = len(null.coefficients)
    a = unpack_symmetric(null.sums.information[None] - _or_zero(missing, "cwc"), k)
    cr = null.sums.score[None] - _or_zero(missing, "cr")
    factor, ok = _cholesky(a, plink_pivot=False)
    inverse = _inverse_from_cholesky(factor)
    a_inv_cwg = _solve(inverse, sums.cwg)
    u = sums.u - np.einsum("vk,vk->v", a_inv_cwg, cr)
    variance = sums.gwg - np.einsum("vk,vk->v", a_inv_cwg, sums.cwg)
    fitted = ok & (variance > 1e-8 * np.maximum(sums.gwg, 1e-300)) & (sums.n > k + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(fitted, u * u / variance, np.nan)
    return ScoreResult(u, np.where(fitted, variance, np.nan), chi2, stats.chi2.sf(chi2, 1), sums.n)


def _or_zero(missing: MissingScoreSums | None, name: str) -> FloatArray | float:
    return 0.0 if missing is None else np.asarray(getattr(missing, name))


def variants_to_refine(score: ScoreResult, p_threshold: float) -> IntArray:
    """Block columns whose score-test p is below ``p_threshold`` (or NaN).

    Refit them with :func:`fit_logistic` ``(variants=...)`` to get PLINK's
    Wald results for them.
    """
    p = score.p_value
    return np.flatnonzero(~(p >= p_threshold)).astype(np.int64)
