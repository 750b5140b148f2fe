"""Compiled loops of the logistic-regression kernels.

The public entry points are in :mod:`genofed.kernels.logistic.sums` and
:mod:`genofed.kernels.logistic.score`; this module holds only the numba code
they call. For a chunk of variants (rows) and the node's samples (columns),
one round evaluates every variant's fitted values from its ALT counts ``g``
(int8, ``MISSING_CALL`` where missing) and linear predictor ``eta``. The
element-wise work is fused into two passes around numpy's vectorised
``exp``, so that each element is read a few times instead of once per numpy
operation; the covariate products stay matrix products.

A missing call counts as ``g = 0`` in ``eta`` and has weight and residual 0,
so it drops out of every sum.

Every loop is compiled with ``cache=True``: a new process loads the machine
code from ``__pycache__`` instead of compiling it again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Reassociation lets the row sums vectorise; no flag assumes finite values,
# because exp overflows to inf for a diverging fit and 1 / (1 + inf) = 0 is meant.
_FAST = {"nsz", "reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def negate_predictor(dosages: np.ndarray, eta: np.ndarray, slope: np.ndarray) -> None:
    """Set ``eta[j, i] = -(eta[j, i] + g[j, i] slope[j])`` in place, ready for ``exp``."""
    m, n = dosages.shape
    for j in range(m):
        b = slope[j]
        for i in range(n):
            code = dosages[j, i]
            g = code if code >= 0 else 0
            eta[j, i] = -(eta[j, i] + g * b)


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def fitted_values(
    dosages: np.ndarray,
    odds: np.ndarray,
    phenotype: np.ndarray,
    weight: np.ndarray,
    residual: np.ndarray,
    weighted_g: np.ndarray,
    sums: np.ndarray,
) -> None:
    """From ``odds = exp(-eta)``, write the weights, residuals and row sums.

    Per element: ``mu = 1 / (1 + odds)``, ``weight = mu (1 - mu)``,
    ``residual = y - mu`` and ``weighted_g = weight g`` (all 0 where the call
    is missing). Per row ``j``, ``sums[j]`` is ``[g'r, g'Wg, called samples,
    called cases, ALT count, ALT count among cases]``.
    """
    m, n = dosages.shape
    for j in range(m):
        score = 0.0
        information = 0.0
        called_n = 0.0
        called_cases = 0.0
        alt = 0.0
        alt_cases = 0.0
        for i in range(n):
            code = dosages[j, i]
            called = 1.0 if code >= 0 else 0.0
            g = code * called
            y = phenotype[i]
            mu = 1.0 / (1.0 + odds[j, i])
            w = mu * (1.0 - mu) * called
            r = (y - mu) * called
            wg = w * g
            weight[j, i] = w
            residual[j, i] = r
            weighted_g[j, i] = wg
            score += r * g
            information += wg * g
            called_n += called
            called_cases += called * y
            alt += g
            alt_cases += g * y
        sums[j, 0] = score
        sums[j, 1] = information
        sums[j, 2] = called_n
        sums[j, 3] = called_cases
        sums[j, 4] = alt
        sums[j, 5] = alt_cases


@njit(cache=True, nogil=True, error_model="numpy")
def log_likelihoods(
    dosages: np.ndarray, odds: np.ndarray, phenotype: np.ndarray, rows: np.ndarray, out: np.ndarray
) -> None:
    """Set ``out[t]`` to the log-likelihood of row ``rows[t]`` over its called samples.

    A case contributes ``log mu = -log(1 + odds)``, a control
    ``log(1 - mu) = -log(1 + 1 / odds)``.
    """
    n = dosages.shape[1]
    for t in range(rows.shape[0]):
        j = rows[t]
        total = 0.0
        for i in range(n):
            if dosages[j, i] >= 0:
                e = odds[j, i]
                total += math.log1p(e) if phenotype[i] == 1.0 else math.log1p(1.0 / e)
        out[t] = -total


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def score_pieces(
    dosages: np.ndarray,
    weight: np.ndarray,
    residual: np.ndarray,
    phenotype: np.ndarray,
    weighted_g: np.ndarray,
    sums: np.ndarray,
) -> None:
    """Sum the score test's per-variant pieces at the null model's weights and residuals.

    Per element, ``weighted_g = w0 g`` (0 where missing). Per row ``j``,
    ``sums[j]`` is ``[g'r0, g'W0g, called samples, called cases, ALT count]``.
    """
    m, n = dosages.shape
    for j in range(m):
        score = 0.0
        information = 0.0
        called_n = 0.0
        called_cases = 0.0
        alt = 0.0
        for i in range(n):
            code = dosages[j, i]
            called = 1.0 if code >= 0 else 0.0
            g = code * called
            wg = weight[i] * g
            weighted_g[j, i] = wg
            score += residual[i] * g
            information += wg * g
            called_n += called
            called_cases += called * phenotype[i]
            alt += g
        sums[j, 0] = score
        sums[j, 1] = information
        sums[j, 2] = called_n
        sums[j, 3] = called_cases
        sums[j, 4] = alt
