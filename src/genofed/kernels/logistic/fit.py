"""The coordinator's solver: PLINK 2's logistic and Firth regression on summed sums.

The coordinator adds the sums of every node
(:mod:`genofed.kernels.logistic.sums`) and runs PLINK 2's algorithm for each
variant of a block (:class:`LogisticFit`, :func:`fit_logistic`). The design
is ``X = [C, g]``: the covariates ``C`` with the intercept first, then the
ALT allele count ``g``; coefficient vectors and the packed information
triangles follow that order.

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
  ``separation_found``); see
  :func:`~genofed.kernels.logistic.sums.covariates_separate`. (With ``no-firth``
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
Firth iteration, the :class:`~genofed.kernels.logistic.sums.FirthSums`
correction given their inverse information (:class:`RoundRequest` ->
:class:`RoundSums`; node side
:func:`~genofed.kernels.logistic.sums.local_round` on a
:class:`~genofed.kernels.logistic.sums.LogisticBlock` kept for the block).
Finished variants drop out of the requests, so the round trips of a block
are the most evaluations any of its variants needs (6-7 for logistic
regression; two per Firth iteration plus one per halving, up to ~60), never
the number of variants. The first round, at zero coefficients, also gives
``X'X = 4 X'WX`` for the checks.

Step by step
------------
:class:`LogisticFit` is the solver as an object driven one round trip at a
time: :meth:`LogisticFit.request` says what to evaluate next and
:meth:`LogisticFit.advance` takes the federation's answer. The request of
every round is a function of the options and the sums of the earlier rounds
only, so a node holding those sums can replay the fit and recompute every
parameter the coordinator asks it to apply. With the same numpy and BLAS
builds on the same kind of processor the replay matches to the last bit;
across builds, reductions and matrix products may round differently.
:func:`fit_logistic` is the same loop with the round trip as a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from genofed.errors import InputError
from genofed.kernels.logistic._linalg import (
    cholesky,
    inverse_from_cholesky,
    log_det,
    solve,
    unpack_symmetric,
)
from genofed.kernels.logistic.sums import LogisticSums, RoundRequest, RoundSums

__all__ = [
    "CONST_OMITTED_ALLELE",
    "CORR_TOO_HIGH",
    "FIRTH_CONVERGE_FAIL",
    "INVALID_RESULT",
    "LOGISTIC_CONVERGE_FAIL",
    "OK",
    "SAMPLE_CT_LTE_PREDICTOR_CT",
    "SEPARATION",
    "UNFINISHED",
    "VIF_INFINITE",
    "VIF_TOO_HIGH",
    "FirthMode",
    "LogisticFit",
    "LogisticResult",
    "concatenate_results",
    "fit_logistic",
]

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


# --------------------------------------------------------------------------
# PLINK's checks
# --------------------------------------------------------------------------


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
    factor, ok = cholesky(np.nan_to_num(corr, nan=0.0), plink_pivot=False)
    ok &= np.isfinite(corr).all(axis=(1, 2))
    vif = np.diagonal(inverse_from_cholesky(factor), axis1=1, axis2=2)
    unset = errors == OK
    errors[unset & ~ok] = VIF_INFINITE
    errors[unset & ok & (vif > max_vif).any(axis=1)] = VIF_TOO_HIGH
    return errors.astype(str)


# --------------------------------------------------------------------------
# The per-variant state machine
# --------------------------------------------------------------------------


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
    factor, _ = cholesky(h, plink_pivot=True)
    inverse = inverse_from_cholesky(factor)
    with np.errstate(invalid="ignore", over="ignore"):
        step = solve(inverse, sums.score)
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
    factor, _ = cholesky(unpack_symmetric(sums.information, state.p), plink_pivot=True)
    state.inverse[index] = inverse_from_cholesky(factor)
    _report(state, index, state.error[index])


def _report(state: _State, index: IntArray, error: _Label = OK) -> None:
    """Finish with a result unless the inverse information is ``INVALID_RESULT``."""
    invalid = _invalid_result(state.inverse[index])
    state.finish(index, np.where(invalid, INVALID_RESULT, error).astype(object))


def _evaluate_firth(state: _State, index: IntArray, sums: LogisticSums) -> BoolArray:
    """Store l*, the score and (X'WX)^-1 at the current coefficients; False where singular."""
    factor, ok = cholesky(unpack_symmetric(sums.information, state.p), plink_pivot=False)
    state.penalised[index] = sums.loglik + 0.5 * log_det(factor)
    state.score[index] = sums.score
    state.inverse[index] = inverse_from_cholesky(factor)
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
    step = solve(state.inverse[index], penalised_score)
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
# The solver, one round trip at a time
# --------------------------------------------------------------------------


class LogisticFit:
    """PLINK 2's fit of a block of variants, driven one round trip at a time.

    :meth:`request` says what every node is to evaluate next (None once
    every variant is done), :meth:`advance` takes the federation's sum of
    :func:`~genofed.kernels.logistic.sums.local_round` for it, and
    :meth:`result` gives the fit. Each request follows from the options and
    the sums of the earlier rounds alone, so two fits given the same sums
    ask for the same requests (to the last bit with the same numerical
    libraries): a node can replay the coordinator's fit to check every
    coefficient and inverse information it is sent. :func:`fit_logistic`
    runs the loop with a callable round trip.

    Parameters
    ----------
    n_variants
        Variants in the block (columns of the nodes' dosages).
    n_covariates
        ``k``, covariate columns including the intercept.
    variants
        The block columns to fit (default: all), e.g. from
        :func:`~genofed.kernels.logistic.score.variants_to_refine`; the
        result follows this order.
    firth
        PLINK's ``firth-fallback`` (``"fallback"``, the default),
        ``no-firth`` (``"never"``) or ``firth`` (``"always"``; also what
        PLINK does when
        :func:`~genofed.kernels.logistic.sums.covariates_separate`).
    max_corr, max_vif
        PLINK's ``--max-corr`` and ``--vif`` thresholds.
    final_information
        PLINK takes a logistic fit's standard errors from the information
        of its last Newton step, evaluated one step before the reported
        coefficients (a relative difference up to ~1e-4). With True, one
        more round evaluates it at the reported coefficients, giving the
        maximum likelihood standard errors. Firth fits are unaffected.
    """

    def __init__(
        self,
        n_variants: int,
        n_covariates: int,
        *,
        variants: npt.ArrayLike | None = None,
        firth: FirthMode = "fallback",
        max_corr: float = 0.999,
        max_vif: float = 50.0,
        final_information: bool = False,
    ) -> None:
        chosen = np.arange(n_variants) if variants is None else np.asarray(variants, dtype=np.int64)
        options = _Options(firth, max_corr, max_vif, final_information)
        self._state = _State(n_covariates + 1, chosen.astype(np.int64), options)
        self._pending: tuple[RoundRequest, IntArray, IntArray] | None = None
        self._rounds = 0

    @property
    def rounds(self) -> int:
        """Round trips answered so far."""
        return self._rounds

    def request(self) -> RoundRequest | None:
        """Return what every node is to evaluate next; None once every variant is done.

        Asking again before :meth:`advance` gives the same request.
        """
        pending = self._next()
        return None if pending is None else pending[0]

    def advance(self, sums: RoundSums) -> None:
        """Take the federation's sums answering the last request.

        Raises
        ------
        InputError
            If every variant is done, or the sums do not have the shapes
            the request asks for; the fit is then unchanged.
        """
        pending = self._next()
        if pending is None:
            raise InputError(
                f"the fit of {len(self._state.variants)} variants finished after "
                f"{self._rounds} round trips; there is no request to answer"
            )
        _, wants_sums, wants_firth = pending
        _check_answer(sums, len(wants_sums), len(wants_firth), self._state.p, self._rounds)
        self._pending = None
        self._rounds += 1
        state = self._state
        state.rounds[wants_sums] += 1
        state.rounds[wants_firth] += 1
        if state.zero_sums is None:
            state.zero_sums = _at_zero(sums.logistic)
            _start(state, wants_sums, state.zero_sums)
            return
        _advance(state, wants_sums, sums.logistic)
        _firth_update(state, wants_firth, sums.firth.correction)

    def result(self) -> LogisticResult:
        """Return per variant: beta, SE, Z, p, OBS_CT, FIRTH? and ERRCODE.

        Raises
        ------
        InputError
            If some variant still needs a round trip.
        """
        going_on = int((self._state.phase != _DONE).sum())
        if going_on:
            raise InputError(
                f"{going_on} of {len(self._state.variants)} variants are still being fitted "
                f"after {self._rounds} round trips; answer request() until it returns None"
            )
        return _result(self._state)

    def _next(self) -> tuple[RoundRequest, IntArray, IntArray] | None:
        if self._pending is None and (self._state.phase != _DONE).any():
            self._pending = _request(self._state)
        return self._pending


def _check_answer(sums: RoundSums, m: int, f: int, p: int, rounds: int) -> None:
    """Check that round sums answer a request for ``m`` variants and ``f`` Firth corrections."""
    logistic = sums.logistic
    expected = {
        "score": (m, p),
        "information": (m, p * (p + 1) // 2),
        **{name: (m,) for name in ("loglik", "n", "cases", "alt", "alt_cases")},
    }
    shapes = {name: np.shape(getattr(logistic, name)) for name in expected}
    expected["firth correction"] = (f, p)
    shapes["firth correction"] = np.shape(sums.firth.correction)
    for name, shape in expected.items():
        got = shapes[name]
        if got[:1] != shape[:1] or (shape[0] and got[1:] != shape[1:]):
            raise InputError(
                f"the sums of round trip {rounds + 1} do not answer its request for {m} "
                f"variants and {f} Firth corrections: {name} has shape {got}, expected {shape}"
            )


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
        :func:`~genofed.kernels.logistic.sums.local_round` for the request.
    n_variants, n_covariates, variants, firth, max_corr, max_vif, final_information
        As for :class:`LogisticFit`, which this drives until every variant
        is done.

    Returns
    -------
    LogisticResult
        Per variant: beta, SE, Z, p, OBS_CT, FIRTH? and ERRCODE.
    """
    fit = LogisticFit(
        n_variants,
        n_covariates,
        variants=variants,
        firth=firth,
        max_corr=max_corr,
        max_vif=max_vif,
        final_information=final_information,
    )
    while (request := fit.request()) is not None:
        fit.advance(evaluate(request))
    return fit.result()
