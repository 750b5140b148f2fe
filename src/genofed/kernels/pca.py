"""Principal components of the genotypes, split for a federation.

PLINK 2's ``--pca`` takes the top eigenvectors of the variance-standardised
relationship matrix ``K = X X' / M`` over ``M`` variants, where sample ``i``'s
entry for variant ``v`` is ``x_iv = (g_iv - 2 p_v) / sqrt(2 p_v (1 - p_v))``
with ``p_v`` the ALT frequency among the called genotypes, and a missing call
is ``x_iv = 0`` (mean imputation). This is ``plink2 --pca meanimpute`` (and
the matrix of ``plink2 --pca approx``, whose randomized algorithm always
imputes the mean). Without ``meanimpute``, PLINK 2 divides each entry by the
variants called in both samples instead of ``M``: the same matrix when no
call is missing, but one that cannot be split over nodes, since every entry
then depends on a pair of samples' missing calls.

The samples are split over nodes and the variants are shared, so the
federation works in variant space: ``X'X = sum over nodes of X_k'X_k``
(``M x M``, never formed). Block Krylov iteration (:func:`fit_pca`) asks the
nodes for ``X_k'(X_k Q)`` for an orthonormal ``M x L`` block ``Q``
(:func:`local_gram_product`), adds them up, and extracts Ritz pairs until
their residuals are small: eigenvalues ``lambda = theta / M`` of ``K`` for the
eigenvalues ``theta`` of ``X'X``, and unit variant loadings ``v``. A node
then computes its own samples' scores ``u = X_k v / sqrt(theta)``
(:func:`local_scores`): the unit eigenvectors of ``K`` that ``plink2 --pca``
writes to ``.eigenvec``, split by rows. No score leaves the node.

:class:`PcaIteration` is the same iteration driven one product at a time.
Each block ``Q`` follows from the seed and the earlier products alone, so a
node holding those products can replay the iteration and recompute every
block it is sent (to the last bit with the same numpy, BLAS and LAPACK
builds on the same kind of processor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from genofed.errors import InputError

__all__ = [
    "PcaIteration",
    "PcaResult",
    "fit_pca",
    "local_gram_product",
    "local_scores",
    "standardization",
]

FloatArray = npt.NDArray[np.float64]

_CHUNK_ELEMENTS = 1 << 20  # variants x samples standardised at a time


def standardization(alt: npt.ArrayLike, called: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return each variant's mean ``2p`` and scale ``1 / sqrt(2p(1 - p))``.

    Parameters
    ----------
    alt
        ALT alleles counted over the called genotypes, summed over the federation.
    called
        Called genotypes, summed over the federation.

    Raises
    ------
    InputError
        If a variant is monomorphic or has no called genotype: its
        standardised values are undefined (filter it out first, e.g. by MAF).
    """
    alt = np.asarray(alt, dtype=np.float64)
    called = np.asarray(called, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = alt / (2.0 * called)
        variance = 2.0 * p * (1.0 - p)
    bad = ~(variance > 0)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} variant(s) are monomorphic or have no called genotype "
            f"(the first is number {int(np.argmax(bad)) + 1}); PCA needs variable variants"
        )
    return 2.0 * p, 1.0 / np.sqrt(variance)


@njit(cache=True, nogil=True)
def _standardize(
    dosages: np.ndarray, mean: np.ndarray, scale: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    m, n = dosages.shape
    for j in range(m):
        a, s = mean[j], scale[j]
        for i in range(n):
            code = dosages[j, i]
            out[j, i] = (code - a) * s if code >= 0 else 0.0


def _standardized_chunks(
    dosages: npt.NDArray[np.int8], mean: FloatArray, scale: FloatArray
) -> Iterator[tuple[slice, FloatArray]]:
    """Standardise a variant-major block chunk by chunk, into one reused buffer.

    Standardising again costs one pass per element against the ``2L`` multiply-adds
    of a product, and holding the whole standardised block would take 8 bytes per
    genotype.
    """
    m, n = dosages.shape
    size = max(1, _CHUNK_ELEMENTS // max(n, 1))
    buffer = np.empty((min(size, m), n))
    for start in range(0, m, size):
        part = slice(start, min(start + size, m))
        z = buffer[: part.stop - part.start]
        _standardize(dosages[part], mean[part], scale[part], z)
        yield part, z


def _check(dosages: npt.NDArray[np.int8], mean: FloatArray, scale: FloatArray) -> None:
    if dosages.dtype != np.int8 or dosages.ndim != 2:
        raise InputError(f"dosages must be a (variants x samples) int8 block, got {dosages.dtype}")
    if mean.shape != (len(dosages),) or scale.shape != (len(dosages),):
        raise InputError(f"mean and scale must have one entry per variant ({len(dosages)})")


def local_gram_product(
    dosages: npt.NDArray[np.int8], mean: FloatArray, scale: FloatArray, basis: FloatArray
) -> FloatArray:
    """Return ``X_k'(X_k Q)`` for this node's standardised genotypes ``X_k``.

    Parameters
    ----------
    dosages
        ``(M, n_k)`` variant-major int8 ALT counts of the node's samples,
        ``MISSING_CALL`` (negative) where missing.
    mean, scale
        ``(M,)`` from :func:`standardization`, federation-wide.
    basis
        ``(M, L)`` block ``Q``.

    Returns
    -------
    numpy.ndarray
        ``(M, L)``. Cost: two passes of ``M n_k L`` multiply-adds.
    """
    _check(dosages, mean, scale)
    basis = np.asarray(basis, dtype=np.float64)
    if basis.ndim != 2 or len(basis) != len(dosages):
        raise InputError(f"basis must have one row per variant ({len(dosages)})")
    samples = np.zeros((dosages.shape[1], basis.shape[1]))  # X_k Q, one row per sample
    for part, z in _standardized_chunks(dosages, mean, scale):
        samples += z.T @ basis[part]
    product = np.empty_like(basis)
    for part, z in _standardized_chunks(dosages, mean, scale):
        product[part] = z @ samples
    return product


def local_scores(
    dosages: npt.NDArray[np.int8],
    mean: FloatArray,
    scale: FloatArray,
    loadings: FloatArray,
    theta: FloatArray,
) -> FloatArray:
    """Return this node's samples' scores ``X_k v / sqrt(theta)``: ``(n_k, k)``.

    Over all nodes, the columns are the unit eigenvectors of ``K``.
    """
    _check(dosages, mean, scale)
    loadings = np.asarray(loadings, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    if loadings.ndim != 2 or len(loadings) != len(dosages) or theta.shape != loadings.shape[1:]:
        raise InputError("loadings must be (variants x components), with one eigenvalue each")
    scores = np.zeros((dosages.shape[1], loadings.shape[1]))
    for part, z in _standardized_chunks(dosages, mean, scale):
        scores += z.T @ loadings[part]
    result: FloatArray = scores / np.sqrt(theta)
    return result


@dataclass(frozen=True)
class PcaResult:
    """The top principal components: eigenvalues of ``K`` and unit variant loadings."""

    eigenvalues: FloatArray  # (k,) of K = X X' / M, as plink2 --pca writes them
    theta: FloatArray  # (k,) of X'X (= M * eigenvalues)
    loadings: FloatArray  # (M, k) unit eigenvectors of X'X
    residuals: FloatArray  # (k,) |X'X v - theta v| / theta at the end
    iterations: int  # products asked for (round trips)
    converged: bool

    @property
    def plink_weights(self) -> FloatArray:
        """``plink2 --pca biallelic-var-wts`` weights: ``sqrt(M)`` times the unit loadings."""
        weights: FloatArray = self.loadings * np.sqrt(len(self.loadings))
        return weights


def _orthonormal(
    block: FloatArray, basis: FloatArray | None, rng: np.random.Generator
) -> FloatArray:
    """Orthonormalise ``block`` against ``basis`` and itself; refill lost directions at random."""
    for _ in range(2):  # twice is enough (Kahan-Parlett)
        if basis is not None:
            block = block - basis @ (basis.T @ block)
        q, r = np.linalg.qr(block)
        block = q
    lost = np.abs(np.diag(r)) < 1e-10 * max(1.0, float(np.abs(r).max()))
    if lost.any():
        fresh = rng.standard_normal((len(block), int(lost.sum())))
        block[:, lost] = _orthonormal(
            fresh, block if basis is None else np.hstack([basis, block]), rng
        )
    return block


class PcaIteration:
    """Block Krylov iteration for the top eigenpairs of ``A = X'X``, one product at a time.

    :meth:`request` gives the next ``(M, L)`` block ``Q`` (None once
    done), :meth:`advance` takes the federation's ``A Q`` for it (the sum
    over nodes of :func:`local_gram_product`), and :meth:`result` gives the
    components. Each block follows from the seed and the products of the
    earlier rounds alone, so two iterations given the same products ask for
    the same blocks (to the last bit with the same numerical libraries): a
    node can replay the coordinator's iteration to check every block it is
    sent. :func:`fit_pca` runs the loop with a callable round trip.

    Parameters
    ----------
    n_variants
        ``M``.
    components
        ``k``, how many eigenpairs.
    block
        ``L`` columns per product (default ``max(2k, k + 10)``, at most ``M``).
    tolerance
        Stop when every ``|A v - theta v| / theta`` is below it. The
        eigenvalues are then accurate to about its square (relative), and
        the loadings' directions to about ``tolerance * theta / gap``.
    max_iterations
        Most products; the result says whether it converged.
    seed
        For the random start, so that runs repeat.
    progress
        Called after each product with the iteration and the largest residual.

    Raises
    ------
    InputError
        If ``components`` is not between 1 and ``n_variants``.
    """

    def __init__(
        self,
        n_variants: int,
        components: int,
        *,
        block: int | None = None,
        tolerance: float = 1e-6,
        max_iterations: int = 100,
        seed: int = 0,
        progress: Callable[[int, float], None] | None = None,
    ) -> None:
        if not 1 <= components <= n_variants:
            raise InputError(f"cannot find {components} components of {n_variants} variants")
        self._m, self._k = n_variants, components
        self._tolerance, self._max_iterations = tolerance, max_iterations
        self._progress = progress
        self._width = width = min(n_variants, block or max(2 * components, components + 10))
        self._rng = rng = np.random.default_rng(seed)
        self._restart = max(8 * width, 4 * components)  # columns kept before a thick restart
        self._q: FloatArray | None = _orthonormal(
            rng.standard_normal((n_variants, width)), None, rng
        )
        self._basis, self._images = np.empty((n_variants, 0)), np.empty((n_variants, 0))
        self._iterations = 0
        self._result: PcaResult | None = None

    @property
    def rounds(self) -> int:
        """Products answered so far."""
        return self._iterations

    def request(self) -> FloatArray | None:
        """Return the ``(M, L)`` block ``Q`` to multiply next; None once done."""
        return self._q

    def advance(self, image: FloatArray) -> None:
        """Take the federation's ``A Q`` for the last requested block ``Q``.

        Raises
        ------
        InputError
            If the iteration is done, or ``image`` is not of ``Q``'s shape;
            the iteration is then unchanged.
        """
        q = self._q
        if q is None:
            raise InputError(
                f"the PCA finished after {self._iterations} products; there is no request to answer"
            )
        image = np.asarray(image, dtype=np.float64)
        if image.shape != q.shape:
            raise InputError(f"the product A Q must have Q's shape {q.shape}, got {image.shape}")
        self._iterations += 1
        basis, images = np.hstack([self._basis, q]), np.hstack([self._images, image])
        projected = basis.T @ images
        theta, vectors = np.linalg.eigh((projected + projected.T) / 2)
        order = np.argsort(theta)[::-1]
        theta, vectors = theta[order], vectors[:, order]
        top = vectors[:, : self._k]
        ritz, ritz_images = basis @ top, images @ top
        with np.errstate(divide="ignore", invalid="ignore"):
            residuals = np.linalg.norm(ritz_images - ritz * theta[: self._k], axis=0) / np.abs(
                theta[: self._k]
            )
        worst = float(np.max(residuals))
        converged = bool(worst < self._tolerance)
        if converged or self._iterations >= self._max_iterations or basis.shape[1] >= self._m:
            self._q = None
            self._result = _pca_result(
                theta, ritz, residuals, self._iterations, converged or basis.shape[1] >= self._m
            )
        else:
            # The next block is the new direction of the last image, taken against the whole
            # basis before any restart: after a thick restart that keeps the best Ritz
            # vectors, their residuals still lie in its span (as in Krylov-Schur).
            self._q = _orthonormal(image, basis, self._rng)
            if basis.shape[1] + self._width > self._restart:  # keep the best Ritz vectors
                keep = vectors[:, : min(basis.shape[1], self._restart - self._width)]
                basis, images = _reorthonormalised(basis @ keep, images @ keep)
            self._basis, self._images = basis, images
        if self._progress is not None:
            self._progress(self._iterations, worst)

    def result(self) -> PcaResult:
        """Return the eigenvalues of ``K = A / M`` (largest first) and unit loadings.

        Raises
        ------
        InputError
            If the iteration still needs a product.
        """
        if self._result is None:
            raise InputError(
                f"the PCA needs more products after {self._iterations}; "
                "answer request() until it returns None"
            )
        return self._result


def _pca_result(
    theta: FloatArray, ritz: FloatArray, residuals: FloatArray, iterations: int, converged: bool
) -> PcaResult:
    """Set each loading's sign so that its largest entry is positive."""
    n_variants, components = ritz.shape
    signs = np.where(ritz[np.argmax(np.abs(ritz), axis=0), np.arange(components)] < 0, -1.0, 1.0)
    return PcaResult(
        eigenvalues=theta[:components] / n_variants,
        theta=theta[:components],
        loadings=ritz * signs,
        residuals=residuals,
        iterations=iterations,
        converged=converged,
    )


def fit_pca(
    multiply: Callable[[FloatArray], FloatArray],
    n_variants: int,
    components: int,
    *,
    block: int | None = None,
    tolerance: float = 1e-6,
    max_iterations: int = 100,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> PcaResult:
    """Find the top eigenpairs of ``A = X'X`` by block Krylov iteration.

    Parameters
    ----------
    multiply
        One round trip: ``Q -> A Q`` for an ``(M, L)`` block, summed over nodes.
    n_variants, components, block, tolerance, max_iterations, seed, progress
        As for :class:`PcaIteration`, which this drives until it is done.

    Returns
    -------
    PcaResult
        Eigenvalues of ``K = A / M`` (largest first) and unit loadings,
        each loading's sign set so that its largest entry is positive.
    """
    iteration = PcaIteration(
        n_variants,
        components,
        block=block,
        tolerance=tolerance,
        max_iterations=max_iterations,
        seed=seed,
        progress=progress,
    )
    while (q := iteration.request()) is not None:
        iteration.advance(multiply(q))
    return iteration.result()


def _reorthonormalised(basis: FloatArray, images: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Re-orthonormalise a restarted basis, applying the same change to its images."""
    q, r = np.linalg.qr(basis)
    change = np.linalg.solve(r, np.eye(len(r)))
    return q, images @ change
