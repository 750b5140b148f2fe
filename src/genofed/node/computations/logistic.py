"""``logistic-gwas``: PLINK 2's logistic regression sums, round by round, at this node.

The node decodes each block of variants for its cohort (``block/<i>``) and
keeps it while the coordinator iterates on it; each round's sums are asked
for with the coefficients of the variants still being fitted. See
:mod:`genofed.protocol.computations.logistic_gwas` for the parts.

As the round's verifier, the node replays the fits on the totals it
releases (:class:`~genofed.kernels.logistic.LogisticFit` per fit of a block,
:class:`~genofed.kernels.logistic.NullLogisticFitter` for the
covariates-only model, the score test for the refits) and refuses any
request whose variants or coefficients differ from its replay's, or that
asks for a round its replay does not take.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.logistic import (
    LogisticBlock,
    LogisticFit,
    MissingScoreSums,
    NullLogisticFit,
    NullLogisticFitter,
    ScoreSums,
    local_missing_score_sums,
    local_null_logistic_sums,
    local_round,
    local_score_sums,
    logistic_design,
    score_test,
)
from genofed.node.computations.base import (
    Arrays,
    NotReady,
    Task,
    UnknownPart,
    close_across_cohorts,
    treatments,
    unique_if,
)
from genofed.node.dataset import NodeDataset
from genofed.node.missing_groups import MissingGroups
from genofed.protocol.computations import logistic_gwas
from genofed.protocol.computations.logistic_gwas import (
    Block,
    BlockRound,
    BlockScore,
    BlockScoreMissing,
    LogisticGwasParameters,
    NullRound,
    fits_of,
    missing_score_arrays,
    missing_score_from_totals,
    null_arrays,
    null_from_totals,
    refits,
    request_arrays,
    request_from_arrays,
    score_arrays,
    score_from_totals,
    sums_arrays,
    sums_from_totals,
)
from genofed.protocol.contract import Part, Totals, Treatment, check_derived

__all__ = ["LogisticTask"]


class LogisticTask(Task):
    """A logistic-regression GWAS of one 0/1 phenotype on covariates, at this node."""

    contract = logistic_gwas.CONTRACT
    window = 2  # decoded blocks kept: each is (variants x samples) int8

    def __init__(self, dataset: NodeDataset, parameters: LogisticGwasParameters) -> None:
        inputs = dataset.binary_inputs(parameters.phenotype, parameters.covariates)
        self.design = logistic_design(inputs.covariates, inputs.phenotype, inputs.included)
        self.block_size = parameters.block_size
        blocks = -(-len(dataset.variants) // self.block_size)
        super().__init__(dataset, parameters, inputs.included, blocks)
        cases = int(self.design.phenotype.sum())
        self.groups = {"cases": cases, "controls": self.samples - cases}
        self._kept: dict[int, LogisticBlock] = {}
        self._lock = threading.Lock()
        self._null = NullLogisticFitter(self.design.n_covariates)  # the verifier's replays
        self._replays: dict[int, _BlockReplay] = {}
        self._groups: tuple[MissingGroups, MissingGroups] | None = None  # cases, controls

    def block(self, index: int) -> Arrays:
        """Decode the block's genotypes of the cohort and keep them for its rounds.

        Answer, for the verifier, each variant's groups among cases and
        controls and how its missing-call group stands to those released before.
        """
        start = index * self.block_size
        stop = min(start + self.block_size, len(self.dataset.variants))
        dosages = self.dataset.decoded_block(start, stop, self.design.rows)
        cases = self.design.phenotype == 1.0
        if self._groups is None:
            self._groups = (
                MissingGroups(int(cases.sum()), min_count=self.min_count),
                MissingGroups(int((~cases).sum()), min_count=self.min_count),
            )
        missing = dosages < 0
        close = close_across_cohorts(
            self.dataset.missing_calls(start, stop), self.cohort_differences, self.min_count
        )
        unique = np.column_stack(
            [self._groups[0].check(missing[:, cases]), self._groups[1].check(missing[:, ~cases])]
        )
        groups = np.empty((len(dosages), 8), dtype=np.int64)
        for column, dosage in enumerate((0, 1, 2)):
            equal = dosages == dosage
            groups[:, column] = np.count_nonzero(equal & cases, axis=1)
            groups[:, 4 + column] = np.count_nonzero(equal & ~cases, axis=1)
        groups[:, 3] = int(cases.sum()) - groups[:, :3].sum(axis=1)
        groups[:, 7] = int((~cases).sum()) - groups[:, 4:7].sum(axis=1)
        with self._lock:
            self._kept[index] = LogisticBlock(dosages)
        return {"groups": groups, "unique": unique, "close": close}

    def answer(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Answer a round of a block, a round of the null model, or a block's score test."""
        if isinstance(part, NullRound):
            coefficients = request["coefficients"].astype(np.float64)
            return null_arrays(local_null_logistic_sums(self.design, coefficients))
        if not isinstance(part, BlockRound | BlockScore | BlockScoreMissing):
            raise UnknownPart(f"logistic-gwas has no part {part} to ask for")
        with self._lock:
            block = self._kept.get(part.index)
        if block is None:
            raise NotReady(f"block {part.index} is not decoded")
        if isinstance(part, BlockRound):
            return sums_arrays(local_round(self.design, block, request_from_arrays(request)))
        coefficients = request["coefficients"].astype(np.float64)
        if isinstance(part, BlockScore):
            return score_arrays(local_score_sums(self.design, coefficients, block))
        variants = request["variants"].astype(np.intp)
        return missing_score_arrays(
            local_missing_score_sums(self.design, coefficients, block, variants)
        )

    def check_request(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """As the verifier, check a round's variants and coefficients against the replay."""
        score_mode = self.parameters.test == "score"
        if isinstance(part, NullRound | BlockScore | BlockScoreMissing) and not score_mode:
            raise ProtocolError(f"{part}: this job runs the Wald test, without a null model")
        with self._lock:
            if isinstance(part, NullRound):
                if part.number != self._null.rounds:
                    raise ProtocolError(
                        f"{part}: the covariates-only model's next round is {self._null.rounds}"
                    )
                coefficients = self._null.request()
                if coefficients is None:
                    raise ProtocolError(f"{part}: the covariates-only model is already fitted")
                check_derived(part, {"coefficients": coefficients}, request)
            elif isinstance(part, BlockScore):
                check_derived(part, {"coefficients": self._null_fit(part).coefficients}, request)
            elif isinstance(part, BlockScoreMissing):
                replay = self._replay(part)
                expected = {
                    "coefficients": self._null_fit(part).coefficients,
                    "variants": replay.missing_rows(part),
                }
                check_derived(part, expected, request)
            elif isinstance(part, BlockRound):
                fit = self._replay(part).fit(part, score_mode, self.parameters.refine_below)
                if part.number != fit.rounds:
                    raise ProtocolError(f"{part}: the fit's next round is {fit.rounds}")
                wanted = fit.request()
                if wanted is None:
                    raise ProtocolError(f"{part}: every variant of the fit is done")
                check_derived(part, request_arrays(wanted), request)

    def release_totals(
        self, part: Part, totals: Totals, *, min_count: int, uniform: bool
    ) -> Arrays:
        """As the verifier, advance the replay with the totals and release them.

        A block releases which variants are fitted; a block's score sums are
        released for those variants only.
        """
        with self._lock:
            if isinstance(part, Block):
                cells, unique = totals["groups"], unique_if(totals, uniform)
                released_groups = groups_released(cells)
                close = totals["close"]
                treatment = np.maximum(  # the stricter of the cases' and the controls' treatment
                    treatments(
                        released_groups, cells[:, 3], unique[:, 0], close, min_count, impute=False
                    ),
                    treatments(
                        released_groups, cells[:, 7], unique[:, 1], close, min_count, impute=False
                    ),
                )
                self._replay(part).admitted = np.flatnonzero(treatment == Treatment.EXACT)
                return {"treatment": treatment}
            if isinstance(part, BlockScore):  # released for the fitted variants only
                fitted = np.zeros(self._replay(part).width, dtype=np.bool_)
                fitted[self._replay(part).admitted_variants(part)] = True
                totals = {
                    name: np.where(fitted.reshape((-1,) + (1,) * (value.ndim - 1)), value, 0)
                    for name, value in totals.items()
                }
            if self.replaying:
                self._advance(part, totals)
        return dict(totals)

    def _advance(self, part: Part, totals: Totals) -> None:
        """Take a released total into the replay (lock held)."""
        if isinstance(part, NullRound):
            self._null.advance(null_from_totals(totals))
        elif isinstance(part, BlockScore):
            self._replay(part).score = score_from_totals(totals)
        elif isinstance(part, BlockScoreMissing):
            replay = self._replay(part)
            rows = replay.missing_rows(part)
            k = self.design.n_covariates
            replay.missing = missing_score_from_totals(totals, rows, replay.width, k)
        elif isinstance(part, BlockRound):
            sums = sums_from_totals(totals, participants=self.participants)
            self._replay(part).fits[part.fit].advance(sums)

    def _null_fit(self, part: Part) -> NullLogisticFit:
        if self._null.request() is not None:
            raise ProtocolError(f"{part}: the covariates-only model is not fitted yet")
        return self._null.result()

    def _replay(self, part: Block | BlockRound | BlockScore | BlockScoreMissing) -> _BlockReplay:
        replay = self._replays.get(part.index)
        if replay is None:
            width = min(self.block_size, len(self.dataset.variants) - part.index * self.block_size)
            null = self._null.result() if self._null.request() is None else None
            replay = _BlockReplay(width, self.design.n_covariates, null)
            self._replays[part.index] = replay
        return replay

    def forget(self, index: int) -> None:
        """Drop the decoded blocks, and the replays, before ``index``."""
        with self._lock:
            for old in [i for i in self._kept if i < index]:
                del self._kept[old]
            for old in [i for i in self._replays if i < index]:
                del self._replays[old]


class _BlockReplay:
    """The verifier's replay of one block: its score test and its fits."""

    def __init__(self, width: int, k: int, null: NullLogisticFit | None) -> None:
        self.width = width
        self.k = k
        self.null = null
        self.admitted: npt.NDArray[np.int64] | None = None  # the variants fitted
        self.score: ScoreSums | None = None
        self.missing: MissingScoreSums | None = None
        self.fits: list[LogisticFit] = []

    def admitted_variants(self, part: Part) -> npt.NDArray[np.int64]:
        """Return the variants the block's released total lets be fitted."""
        if self.admitted is None:
            raise ProtocolError(f"{part}: the block's total comes first")
        return self.admitted

    def missing_rows(self, part: Part) -> npt.NDArray[np.int64]:
        """Return the fitted variants with a missing call somewhere, from the score sums."""
        if self.score is None or self.null is None:
            raise ProtocolError(f"{part}: the block's score sums come first")
        missing = np.flatnonzero(self.score.n < self.null.sums.n)
        return np.intersect1d(missing, self.admitted_variants(part)).astype(np.int64)

    def fit(self, part: BlockRound, score_mode: bool, refine_below: float) -> LogisticFit:
        """Return the fit a round belongs to; the fits are made on the block's first round."""
        if not self.fits:
            chosen = self.admitted_variants(part)
            if score_mode:
                if self.score is None or self.null is None:
                    raise ProtocolError(f"{part}: the block's score test comes first")
                if self.missing is None and len(self.missing_rows(part)):
                    raise ProtocolError(f"{part}: the block's missing-call score sums come first")
                score = score_test(self.null, self.score, self.missing)
                chosen = refits(score, refine_below, chosen)
            self.fits = [LogisticFit(self.width, self.k, variants=v) for v in fits_of(chosen)]
        if not 0 <= part.fit < len(self.fits):
            raise ProtocolError(f"{part}: the block has {len(self.fits)} fits")
        return self.fits[part.fit]


def groups_released(cells: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the groups of samples a variant's logistic sums are released over.

    ``cells`` are the samples with ALT dosage 0, 1, 2 and none among cases,
    then among controls. The sums cover each genotype group overall, and
    among cases and among controls the carriers of each allele (the sums of
    the dosages and of 2 minus them), and the called samples.
    """
    overall = cells[:, 0:3] + cells[:, 4:7]
    carriers = np.column_stack(
        [
            cells[:, 1] + cells[:, 2],  # cases with an ALT allele
            cells[:, 0] + cells[:, 1],  # cases with a REF allele
            cells[:, 5] + cells[:, 6],  # controls with an ALT allele
            cells[:, 4] + cells[:, 5],  # controls with a REF allele
        ]
    )
    return np.column_stack([overall, carriers])
