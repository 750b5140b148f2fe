"""The null model and a score test: a faster, different test than PLINK's.

A faster mode (:func:`local_score_sums`, :func:`score_test`) fits the null
model once (:func:`fit_null_logistic`) and gives a score test per variant in
one pass, like REGENIE's; it is a different test from PLINK's Wald test, and
:func:`variants_to_refine` picks the variants to refit exactly
(:func:`~genofed.kernels.logistic.fit.fit_logistic` with ``variants=...``).

The null model is the covariates-only logistic regression, fitted by
Newton-Raphson on the federation's sums (:func:`local_null_logistic_sums`).
:class:`NullLogisticFitter` drives it one round trip at a time: each request
(the coefficients to evaluate next) follows from the sums of the earlier
rounds alone, so a node can replay the fit to check the coefficients it is
sent. :func:`fit_null_logistic` is the same loop with a callable round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL
from genofed.kernels._sums import Summable
from genofed.kernels.logistic import _loops as loops
from genofed.kernels.logistic._linalg import (
    cholesky,
    inverse_from_cholesky,
    solve,
    unpack_symmetric,
)
from genofed.kernels.logistic.sums import (
    LogisticBlock,
    LogisticDesign,
    _chunks,
    _variant_major,
)

__all__ = [
    "MissingScoreSums",
    "NullLogisticFit",
    "NullLogisticFitter",
    "NullLogisticSums",
    "ScoreResult",
    "ScoreSums",
    "fit_null_logistic",
    "local_missing_score_sums",
    "local_null_logistic_sums",
    "local_score_sums",
    "score_test",
    "variants_to_refine",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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


class NullLogisticFitter:
    """Fit the covariates-only logistic model one round trip at a time.

    Newton-Raphson from zero coefficients; it stops when the sum of absolute
    steps is below ``tolerance`` (much tighter than PLINK's ``1e-4``, since
    the score test builds on it), after ``max_iterations`` steps, or at an
    information matrix that is not positive definite, then evaluates the
    sums once more at the final coefficients. :meth:`request` gives the
    coefficients to evaluate next (None once done), :meth:`advance` takes
    the federation's sum of :func:`local_null_logistic_sums` at them, and
    :meth:`result` gives the fit.

    Parameters
    ----------
    n_covariates
        ``k``, including the intercept.
    tolerance, max_iterations
        Convergence criterion and iteration limit.
    """

    def __init__(
        self, n_covariates: int, *, tolerance: float = 1e-10, max_iterations: int = 50
    ) -> None:
        self._k = n_covariates
        self._tolerance = tolerance
        self._max_iterations = max_iterations
        self._coef = np.zeros(n_covariates)
        self._iterations = 0
        self._converged = False
        self._newton = max_iterations > 0  # False once only the final evaluation is left
        self._fit: NullLogisticFit | None = None
        self._rounds = 0

    @property
    def rounds(self) -> int:
        """Round trips answered so far."""
        return self._rounds

    def request(self) -> FloatArray | None:
        """Return the ``k`` coefficients to evaluate next; None once the fit is done."""
        return None if self._fit is not None else self._coef

    def advance(self, sums: NullLogisticSums) -> None:
        """Take the federation's sums at the last requested coefficients.

        Raises
        ------
        InputError
            If the fit is done, or the sums are not of ``k`` covariates; the
            fit is then unchanged.
        """
        k = self._k
        if self._fit is not None:
            raise InputError(
                f"the null model finished after {self._rounds} round trips; "
                "there is no request to answer"
            )
        shapes = (np.shape(sums.score), np.shape(sums.information))
        if shapes != ((k,), (k * (k + 1) // 2,)):
            raise InputError(
                f"null-model sums of {k} covariates have a score of shape ({k},) and a packed "
                f"information of shape ({k * (k + 1) // 2},), got {shapes[0]} and {shapes[1]}"
            )
        self._rounds += 1
        factor, ok = cholesky(unpack_symmetric(sums.information[None], k), plink_pivot=False)
        if not self._newton:
            inverse = inverse_from_cholesky(factor)[0]
            self._fit = NullLogisticFit(
                self._coef, np.sqrt(np.diag(inverse)), sums, self._iterations, self._converged
            )
            return
        if ok[0]:
            step = solve(inverse_from_cholesky(factor), sums.score[None])[0]
            self._coef = self._coef + step
            self._iterations += 1
            self._converged = bool(np.abs(step).sum() < self._tolerance)
        self._newton = (
            bool(ok[0]) and self._iterations < self._max_iterations and not self._converged
        )

    def result(self) -> NullLogisticFit:
        """Return the coefficients, standard errors, and the sums at the coefficients.

        Raises
        ------
        InputError
            If the fit still needs a round trip.
        """
        if self._fit is None:
            raise InputError(
                f"the null model needs more round trips after {self._rounds}; "
                "answer request() until it returns None"
            )
        return self._fit


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
    fit = NullLogisticFitter(n_covariates, tolerance=tolerance, max_iterations=max_iterations)
    while (coefficients := fit.request()) is not None:
        fit.advance(evaluate(coefficients))
    return fit.result()


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
    factor, ok = cholesky(a, plink_pivot=False)
    inverse = inverse_from_cholesky(factor)
    a_inv_cwg = solve(inverse, sums.cwg)
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

    Refit them with :func:`~genofed.kernels.logistic.fit.fit_logistic`
    ``(variants=...)`` to get PLINK's Wald results for them.
    """
    p = score.p_value
    return np.flatnonzero(~(p >= p_threshold)).astype(np.int64)
