"""``pca``: principal components over the federation; the scores stay at this node.

See :mod:`genofed.protocol.computations.pca` for the parts. The node counts
genotypes (``block/<i>``), decodes the PCA's variants for all its samples
once (``variants``), sums LD-pruning pairs over them (``ld/<i>``), keeps
those that pruning kept (``keep``), multiplies by each round's basis
(``product/<j>``), then stores its samples' scores as a covariate set
(``scores``), and releases only its own mean and covariance of two
components (``summary``).

As the round's verifier, the node replays the contract's plan on the totals
it released, and refuses a request whose variants, standardisation, LD
ranges, kept variants, basis or loadings differ from its replay's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import fields

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.ld import LdSums, concatenate_ld_sums, local_ld_sums, prune
from genofed.kernels.pca import PcaIteration, local_gram_product, local_scores
from genofed.node.computations.base import Arrays, Task, UnknownPart, small_groups
from genofed.node.covariate_sets import pca_info
from genofed.node.dataset import NodeDataset
from genofed.protocol.computations import pca
from genofed.protocol.computations.pca import (
    MAX_LD_WINDOW,
    Block,
    Keep,
    Ld,
    PcaParameters,
    Product,
    Scores,
    Selection,
    Summary,
    Variants,
    basis_seed,
    ld_ranges,
    ld_sums_from_totals,
    select_variants,
)
from genofed.protocol.contract import Part, Totals, check_derived

__all__ = ["PcaTask"]

FloatArray = npt.NDArray[np.float64]


class PcaTask(Task):
    """A federated PCA of all this node's genotyped samples."""

    contract = pca.CONTRACT

    def __init__(self, dataset: NodeDataset, parameters: PcaParameters) -> None:
        everyone = np.ones(len(dataset.iids), dtype=np.bool_)
        blocks = -(-len(dataset.variants) // parameters.block_size)
        super().__init__(dataset, parameters, everyone, blocks)
        self.parameters: PcaParameters = parameters
        self._lock = threading.Lock()
        self._replay = _Replay(len(dataset.variants), parameters)  # as the verifier
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

    def block(self, index: int) -> Arrays:
        """Count genotypes of the block's variants over every sample."""
        size = self.parameters.block_size
        start, stop = index * size, min((index + 1) * size, len(self.dataset.variants))
        return {"counts": self.dataset.genotype_counts(start, stop, self.included)}

    def check_request(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """As the verifier, check the request against the replay of the plan."""
        with self._lock:
            check_derived(part, self._replay.expected(part, self.dataset), request)

    def release_totals(
        self, part: Part, totals: Totals, *, min_count: int, uniform: bool
    ) -> Arrays:
        """As the verifier, release the totals, withholding small groups' counts; replay them."""
        released = dict(totals)
        if isinstance(part, Block):
            withheld = small_groups(totals["counts"], min_count)
            counts = np.where(withheld[:, None], 0, totals["counts"])
            released = {"counts": counts, "withheld": withheld}
        if self.replaying:
            with self._lock:
                self._replay.advance(part, released)
        return released

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
        block = imputed_at_mean(self._genotypes[start : min(m, stop + window - 1)])
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


class _Replay:
    """The verifier's replay of a PCA job: each step's expected request, from released totals."""

    def __init__(self, n_variants: int, parameters: PcaParameters) -> None:
        self.parameters = parameters
        self.counts = np.zeros((n_variants, 4), dtype=np.int64)
        self.withheld = np.zeros(n_variants, dtype=np.bool_)
        self.blocks: set[int] = set()
        self.n_blocks = -(-n_variants // parameters.block_size)
        self.selection: Selection | None = None
        self.ld: dict[int, LdSums] = {}
        self.kept: npt.NDArray[np.int64] | None = None
        self.iteration: PcaIteration | None = None

    def expected(self, part: Part, dataset: NodeDataset) -> dict[str, npt.ArrayLike]:
        """Return the arrays the plan asks for with ``part`` now; refuse a step out of turn."""
        parameters = self.parameters
        if isinstance(part, Variants):
            if len(self.blocks) < self.n_blocks:
                raise ProtocolError(f"{part}: the genotype counts of every block come first")
            selection = select_variants(self.counts, self.withheld, parameters.maf)
            self.selection = selection
            return {
                "variants": selection.variants,
                "mean": selection.mean,
                "scale": selection.scale,
            }
        selection = self._selected(part)
        m = len(selection.variants)
        if isinstance(part, Ld):
            ranges = ld_ranges(m, parameters.ld_window) if parameters.ld_window else []
            if part.index >= len(ranges):
                raise ProtocolError(f"{part}: the plan has {len(ranges)} ranges of LD sums")
            return {
                "rows": np.array(ranges[part.index]),
                "window": np.array([parameters.ld_window]),
            }
        if isinstance(part, Keep):
            if self.kept is None:
                ranges = ld_ranges(m, parameters.ld_window) if parameters.ld_window else []
                if not ranges or len(self.ld) < len(ranges):
                    raise ProtocolError(f"{part}: every range of LD sums comes first")
                chromosomes = dataset.variants.chromosome[selection.variants].astype(str)
                sums = concatenate_ld_sums([self.ld[i] for i in range(len(ranges))])
                self.ld.clear()  # pruned once; the pair sums are no longer needed
                keep = prune(
                    sums, chromosomes, r2_threshold=parameters.ld_r2,
                    window=parameters.ld_window, step=parameters.ld_step,
                )  # fmt: skip
                self.kept = np.flatnonzero(keep).astype(np.int64)
            return {"variants": self.kept}
        if isinstance(part, Product | Scores):
            iteration = self._iteration(part, m)
            if isinstance(part, Product):
                if part.number != iteration.rounds:
                    raise ProtocolError(f"{part}: the iteration's next round is {iteration.rounds}")
                basis = iteration.request()
                if basis is None:
                    raise ProtocolError(f"{part}: the iteration has ended")
                return {"basis": basis}
            if iteration.request() is not None:
                raise ProtocolError(f"{part}: the iteration has not ended")
            result = iteration.result()
            return {"loadings": result.loadings, "theta": result.theta}
        return {}  # the summary names two components, nothing derived

    def advance(self, part: Part, totals: Totals) -> None:
        """Take the released totals of ``part``."""
        if isinstance(part, Block):
            rows = slice(part.index * self.parameters.block_size, None)
            self.counts[rows][: len(totals["counts"])] = totals["counts"]
            self.withheld[rows][: len(totals["withheld"])] = totals["withheld"]
            self.blocks.add(part.index)
        elif isinstance(part, Ld):
            self.ld[part.index] = ld_sums_from_totals(totals)
        elif isinstance(part, Product):
            assert self.iteration is not None
            self.iteration.advance(np.asarray(totals["product"], dtype=np.float64))

    def _selected(self, part: Part) -> Selection:
        if self.selection is None:
            raise ProtocolError(f"{part}: the variants come first")
        return self.selection

    def _iteration(self, part: Part, m: int) -> PcaIteration:
        if self.iteration is None:
            if self.parameters.ld_window and self.kept is None:
                raise ProtocolError(f"{part}: the variants LD pruning keeps come first")
            q = m if self.kept is None else len(self.kept)
            self.iteration = PcaIteration(
                q,
                self.parameters.components,
                tolerance=self.parameters.tolerance,
                max_iterations=self.parameters.max_iterations,
                seed=basis_seed(self.parameters.run),
            )
        return self.iteration


def imputed_at_mean(dosages: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """Set each variant's missing calls to the dosage nearest its mean over the called samples.

    LD sums over every sample then release no sums over the samples missing
    at one variant of a pair; a variant without a missing call is unchanged.
    """
    missing = dosages < 0
    if not missing.any():
        return dosages
    called = (~missing).sum(axis=1)
    total = np.where(missing, 0, dosages).sum(axis=1, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        nearest = np.where(called > 0, np.rint(total / called), 0).astype(np.int8)
    return np.where(missing, nearest[:, None], dosages).astype(np.int8)
