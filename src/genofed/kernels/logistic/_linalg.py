"""Linear algebra on stacks of small symmetric matrices, one per variant.

Information matrices travel as packed upper triangles (row-major, one row
per variant) and are unpacked into ``(m, p, p)`` stacks. The Cholesky
factorisation, the inverse and the products below work on a whole stack at
once with numpy, one column at a time, rather than calling LAPACK per
variant: ``p`` is small (the covariates and the genotype) and ``m`` large.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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


def cholesky(h: FloatArray, *, plink_pivot: bool) -> tuple[FloatArray, BoolArray]:
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


def inverse_from_cholesky(factor: FloatArray) -> FloatArray:
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


def solve(inverse: FloatArray, vectors: FloatArray) -> FloatArray:
    """``A^-1 v`` for a stack of inverses ``A^-1`` and one vector ``v`` per matrix."""
    solution: FloatArray = np.einsum("mij,mj->mi", inverse, vectors)
    return solution


def log_det(factor: FloatArray) -> FloatArray:
    """``log det(L L')`` for a stack of lower Cholesky factors ``L``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value: FloatArray = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
    return value
