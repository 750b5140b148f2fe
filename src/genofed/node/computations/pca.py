"""``pca``: principal components over the federation; the scores stay at this node.

See :mod:`genofed.protocol.computations.pca` for the parts. The node decodes
the PCA's variants for all its samples once (``variants``), sums LD-pruning
pairs over them (``ld/<i>``), keeps those that pruning kept (``keep``),
multiplies by the coordinator's blocks (``product/<j>``), then stores its
samples' scores as a covariate set (``scores``), and releases only its own
mean and covariance of two components (``summary``).
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
from genofed.protocol.computations import pca
from genofed.protocol.computations.pca import (
    MAX_LD_WINDOW,
    Keep,
    Ld,
    PcaParameters,
    Product,
    Scores,
    Summary,
    Variants,
)
from genofed.protocol.contract import Part

__all__ = ["PcaTask"]

FloatArray = npt.NDArray[np.float64]


class PcaTask(Task):
    """A federated PCA of all this node's genotyped samples."""

    contract = pca.CONTRACT

    def __init__(self, dataset: NodeDataset, parameters: PcaParameters) -> None:
        super().__init__(dataset, parameters, np.ones(len(dataset.iids), dtype=np.bool_), 0)
        self.parameters: PcaParameters = parameters
        self._lock = threading.Lock()
        self._genotypes: npt.NDArray[np.int8] | None = None  # (M, n) int8, until the scores
        self._mean = self._scale = np.empty(0)
        self._variants = np.empty(0, dtype=np.intp)
        self._selected: int | None = None  # variants asked for, before pruning
        self._scores: FloatArray | None = None

    def state(self) -> dict[str, int]:
        """Return how many variants are selected (``m``) and kept (``q``) so far."""
        state = {}
        if self._selected is not None:
            state["m"] = self._selected
        if self._genotypes is not None:
            state["q"] = len(self._genotypes)
        return state

    def answer(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Answer ``variants``, ``ld/<i>``, ``keep``, ``product/<j>``, ``scores`` or ``summary``."""
        with self._lock:
            if isinstance(part, Variants):
                return self._select(request)
            if isinstance(part, Summary):
                return self._summary(part, request)
            if self._genotypes is None:
                raise ProtocolError(f"{part} needs the variants first (and is asked once)")
            if isinstance(part, Ld):
                return self._ld_sums(part, request)
            if isinstance(part, Keep):
                return self._keep(request)
            if isinstance(part, Product):
                basis = request["basis"].astype(np.float64)
                return {
                    "product": local_gram_product(self._genotypes, self._mean, self._scale, basis)
                }
            if isinstance(part, Scores):
                return self._store_scores(part, request)
        raise UnknownPart(f"pca has no part {part} to ask for")

    def _select(self, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        if self._selected is not None:
            raise ProtocolError("the variants of a pca job are asked for once")
        scale = request["scale"].astype(np.float64)
        if (scale <= 0).any():
            raise ProtocolError("variants: every 'scale' must be positive")
        variants = request["variants"].astype(np.intp)
        self._variants, self._mean, self._scale = (
            variants,
            request["mean"].astype(np.float64),
            scale,
        )
        self._genotypes = self.dataset.decoded_variants(variants)
        self._selected = len(variants)
        return {}

    def _ld_sums(self, part: Ld, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        assert self._genotypes is not None
        m = len(self._genotypes)
        start, stop = (int(x) for x in request["rows"])
        window = int(request["window"][0])
        if not 0 <= start < stop <= m or not 1 <= window <= MAX_LD_WINDOW:
            raise ProtocolError(
                f"{part} is asked for with 'rows' [start, stop) within {m} variants and a "
                f"'window' of 1 to {MAX_LD_WINDOW} variants"
            )
        block = self._genotypes[start : min(m, stop + window - 1)]
        sums = local_ld_sums(block, window=window, n_first=stop - start)
        return {f.name: getattr(sums, f.name) for f in fields(sums)}

    def _keep(self, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        assert self._genotypes is not None
        kept = request["variants"].astype(np.intp)
        self._genotypes = np.ascontiguousarray(self._genotypes[kept])
        self._variants, self._mean, self._scale = (
            self._variants[kept],
            self._mean[kept],
            self._scale[kept],
        )
        return {}

    def _store_scores(self, part: Scores, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        assert self._genotypes is not None
        loadings = request["loadings"].astype(np.float64)
        theta = request["theta"].astype(np.float64)
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
        return {"n": np.array(len(scores)), "sum": scores.sum(axis=0), "cross": scores.T @ scores}

    def _summary(self, part: Summary, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        if self._scores is None:
            raise ProtocolError(f"{part} needs the scores first")
        chosen = self._scores[:, request["components"].astype(np.intp)]
        return {
            "n": np.array(len(chosen)),
            "mean": chosen.mean(axis=0),
            "covariance": np.cov(chosen, rowvar=False),
        }
