"""``pca`` version 1: principal components over the federation; scores stay at the node.

Parts, all asked for with arrays and answered once each:

* ``variants``: the variants to use (increasing indices into the node's
  variant list) and their federation-wide standardisation (``mean`` =
  ``2p``, ``scale`` = ``1 / sqrt(2p(1 - p))``). The node decodes them for
  all its samples and keeps them for the job. Answer: nothing.
* ``ld/<i>``: LD-pruning sums (:func:`genofed.kernels.ld.local_ld_sums`)
  of the kept variants ``rows`` = ``[start, stop)`` with every variant less
  than ``window`` after each, masked. The coordinator adds them and prunes.
* ``keep``: the variants (indices into those of ``variants``) the PCA keeps
  after pruning. Answer: nothing.
* ``product/<j>``: ``X_k'(X_k Q)`` for the coordinator's ``(M, L)`` block
  ``basis`` (:func:`genofed.kernels.pca.local_gram_product`), masked.
* ``scores``: the ``loadings`` ``(M, k)`` and ``theta`` ``(k,)`` the
  coordinator found. The node computes its samples' scores, stores them as
  the covariate set the job names (:mod:`genofed.node.covariate_sets`), and
  returns only their masked sums (count, column sums, ``U'U``), which add up
  over the federation to the identity for unit eigenvectors.
* ``summary`` (released unmasked): the mean and covariance of two
  ``components`` over this node's samples, for a picture of the countries.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import fields

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.ld import local_ld_sums
from genofed.kernels.pca import local_gram_product, local_scores
from genofed.node.computations.base import Arrays, Task, UnknownPart
from genofed.node.covariate_sets import pca_info
from genofed.node.dataset import NodeDataset
from genofed.protocol.codec import block_rows
from genofed.protocol.messages import MAX_LD_WINDOW, PcaParameters

__all__ = ["PcaTask"]

FloatArray = npt.NDArray[np.float64]


def _floats(
    request: Mapping[str, npt.NDArray[np.generic]], name: str, shape: tuple[int, ...], part: str
) -> FloatArray:
    values = request.get(name)
    if values is None or values.dtype.kind != "f" or values.shape != shape:
        raise ProtocolError(f"{part} is asked for with {name!r}: {shape} floating-point numbers")
    if not np.isfinite(values).all():
        raise ProtocolError(f"{part}: {name!r} holds a value that is not finite")
    return values.astype(np.float64)


class PcaTask(Task):
    """A federated PCA of all this node's genotyped samples."""

    released = frozenset({"summary"})

    def __init__(self, dataset: NodeDataset, parameters: PcaParameters) -> None:
        self.dataset = dataset
        self.parameters = parameters
        super().__init__(np.ones(len(dataset.iids), dtype=np.bool_), 0)
        self._lock = threading.Lock()
        self._genotypes: npt.NDArray[np.int8] | None = None  # (M, n) int8, until the scores
        self._mean = self._scale = np.empty(0)
        self._variants = np.empty(0, dtype=np.intp)
        self._scores: FloatArray | None = None

    def answer(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Answer ``variants``, ``product/<j>``, ``scores`` or ``summary``."""
        with self._lock:
            if part == "variants":
                return self._select(part, request)
            if part == "summary":
                return self._summary(part, request)
            if self._genotypes is None:
                raise ProtocolError(f"{part} needs the variants first (and is asked once)")
            m = len(self._genotypes)
            if part.startswith("ld/") and part.removeprefix("ld/").isdigit():
                return self._ld_sums(part, request)
            if part == "keep":
                return self._keep(part, request)
            if part.startswith("product/") and part.removeprefix("product/").isdigit():
                if set(request) != {"basis"} or request["basis"].ndim != 2:
                    raise ProtocolError(f"{part} is asked for with one (variants x L) 'basis'")
                basis = _floats(request, "basis", (m, request["basis"].shape[1]), part)
                return {
                    "product": local_gram_product(self._genotypes, self._mean, self._scale, basis)
                }
            if part == "scores":
                return self._store_scores(part, request)
        raise UnknownPart(f"pca has no result {part!r} to ask for")

    def _select(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        if set(request) != {"variants", "mean", "scale"}:
            raise ProtocolError(f"{part} is asked for with 'variants', 'mean' and 'scale'")
        variants = block_rows(request["variants"], width=len(self.dataset.variants), what=part)
        mean = _floats(request, "mean", variants.shape, part)
        scale = _floats(request, "scale", variants.shape, part)
        if (scale <= 0).any():
            raise ProtocolError(f"{part}: every 'scale' must be positive")
        self._variants, self._mean, self._scale = variants, mean, scale
        self._genotypes = self.dataset.decoded_variants(variants)
        return {}

    def _ld_sums(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        assert self._genotypes is not None
        rows, window = request.get("rows"), request.get("window")
        m = len(self._genotypes)
        if (
            set(request) != {"rows", "window"}
            or rows is None
            or window is None
            or rows.shape != (2,)
            or window.shape != (1,)
            or rows.dtype.kind not in "iu"
            or window.dtype.kind not in "iu"
            or not 0 <= int(rows[0]) < int(rows[1]) <= m
            or not 1 <= int(window[0]) <= MAX_LD_WINDOW
        ):
            raise ProtocolError(
                f"{part} is asked for with 'rows' [start, stop) within {m} variants and a "
                f"'window' of 1 to {MAX_LD_WINDOW} variants"
            )
        start, stop, lags = int(rows[0]), int(rows[1]), int(window[0]) - 1
        block = self._genotypes[start : min(m, stop + lags)]
        sums = local_ld_sums(block, window=lags + 1, n_first=stop - start)
        return {f.name: getattr(sums, f.name) for f in fields(sums)}

    def _keep(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        assert self._genotypes is not None
        if set(request) != {"variants"}:
            raise ProtocolError(f"{part} is asked for with one array 'variants'")
        kept = block_rows(request["variants"], width=len(self._genotypes), what=part)
        self._genotypes = np.ascontiguousarray(self._genotypes[kept])
        self._variants, self._mean, self._scale = (
            self._variants[kept],
            self._mean[kept],
            self._scale[kept],
        )
        return {}

    def _store_scores(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        assert self._genotypes is not None
        k = self.parameters.components
        loadings = _floats(request, "loadings", (len(self._genotypes), k), part)
        theta = _floats(request, "theta", (k,), part)
        if (theta <= 0).any():
            raise ProtocolError(f"{part}: every 'theta' must be positive")
        scores = local_scores(self._genotypes, self._mean, self._scale, loadings, theta)
        info = pca_info(self.parameters.run, theta / len(loadings), len(loadings))
        reproduce = {
            "variants": self._variants,
            "variant_ids": self.dataset.variants.variant_id[self._variants].astype(str),
            "mean": self._mean,
            "scale": self._scale,
            "loadings": loadings,
            "theta": theta,
        }
        self.dataset.covariate_sets.write(
            self.parameters.name, info, list(self.dataset.iids), scores, reproduce
        )
        self._scores, self._genotypes = scores, None  # the genotypes are no longer needed
        return {"n": np.array([len(scores)]), "sum": scores.sum(axis=0), "cross": scores.T @ scores}

    def _summary(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        if self._scores is None:
            raise ProtocolError(f"{part} needs the scores first")
        k = self._scores.shape[1]
        given = request.get("components")
        if set(request) != {"components"} or given is None or given.dtype.kind not in "iu":
            raise ProtocolError(f"{part} is asked for with 'components': two indices below {k}")
        components = given.astype(np.intp)
        if components.shape != (2,) or not ((components >= 0) & (components < k)).all():
            raise ProtocolError(f"{part} is asked for with 'components': two indices below {k}")
        chosen = self._scores[:, components]
        return {
            "n": np.array([len(chosen)]),
            "mean": chosen.mean(axis=0),
            "covariance": np.cov(chosen, rowvar=False),
        }
