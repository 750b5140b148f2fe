"""What every computation of the catalogue provides to the job manager."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from genofed.errors import GenofedError
from genofed.node.dataset import NodeDataset
from genofed.protocol.contract import Arrays, Contract, Part, Totals, Treatment

__all__ = [
    "Arrays",
    "NotReady",
    "Task",
    "UnknownPart",
    "close_across_cohorts",
    "small_groups",
    "treatments",
    "unique_if",
]


class UnknownPart(GenofedError):
    """No job, or no such result of a job, exists on this node."""


class NotReady(GenofedError):
    """The result exists but is not computed yet."""


class Task:
    """One job's work at this node: it answers exactly the parts of its contract.

    Parameters
    ----------
    dataset
        The node's data.
    parameters
        The job's parameters, of the contract's parameters model.
    included
        The samples the job computes over, in .fam order: the cohort the
        disclosure rules judge.
    blocks_total
        How many ``block/<i>`` parts the job streams.
    """

    contract: ClassVar[Contract]
    window: int | None = None  # most blocks computed ahead (None: the node's buffered_blocks)

    def __init__(
        self,
        dataset: NodeDataset,
        parameters: Any,
        included: npt.NDArray[np.bool_],
        blocks_total: int,
    ) -> None:
        self.dataset = dataset
        self.parameters = parameters
        self.included = included
        self.blocks_total = blocks_total
        self.groups: dict[str, int] = {}  # e.g. cases and controls, for the min_count rule
        self.participants = 0  # nodes in the job's round, set when the job is admitted
        self.min_count = 1  # this node's [disclosure] min_count, set when the job is admitted
        self.replaying = True  # whether, as the verifier, it replays the computation
        # samples this job's cohort and each other cohort on record at the node do not share
        self.cohort_differences: list[npt.NDArray[np.bool_]] = []

    @property
    def samples(self) -> int:
        """Samples in the cohort."""
        return int(self.included.sum())

    def dims(
        self, part: Part, request: Mapping[str, npt.NDArray[np.generic]] | None = None
    ) -> dict[str, int]:
        """Return the sizes of a part's named dimensions here, before its arrays are read."""
        return self.contract.dims(
            self.parameters, part, request, variants=len(self.dataset.variants), **self.state()
        )

    def state(self) -> dict[str, int]:
        """Sizes the job fixed in earlier parts (e.g. the variants a PCA kept)."""
        return {}

    def head(self) -> Arrays:
        """Compute the ``null`` part, first of all, if the contract streams one."""
        raise NotImplementedError

    def block(self, index: int) -> Arrays:
        """Compute the ``block/<index>`` part; called in order, on the job's worker thread."""
        raise NotImplementedError

    def answer(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Compute a part asked for with arrays, which the contract has checked.

        Raises
        ------
        UnknownPart
            If the computation has no such part.
        genofed.errors.ProtocolError
            If the request's arrays do not fit what the part needs.
        """
        raise UnknownPart(f"{self.contract.name} has no part {part} to ask for")

    def check_request(self, part: Part, request: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """As the round's verifier, check what a request derives from earlier totals.

        A node that verifies the round replays the computation on the totals
        it released, and refuses a request whose parameters (coefficients,
        variant selections, bases ...) differ from those it recomputes. By
        default a request holds nothing derived.

        Raises
        ------
        genofed.errors.ProtocolError
            Naming the check that failed.
        """

    def release_totals(
        self, part: Part, totals: Totals, *, min_count: int, uniform: bool
    ) -> Arrays:
        """As the round's verifier, release the federation's totals of a part under its rules.

        ``min_count`` is the strictest of the participants' ``[disclosure]
        min_count``, and ``uniform`` whether they all have that one (each
        node judges its missing-call groups by its own). By default the
        totals are released as they are.
        """
        return dict(totals)

    def forget(self, index: int) -> None:
        """Forget what is kept for blocks before ``index``: the coordinator has them."""


def small_groups(counts: npt.NDArray[np.int64], min_count: int) -> npt.NDArray[np.bool_]:
    """Rows of ``(variants, groups)`` counts with a group of 1 to ``min_count - 1`` samples."""
    small = (counts > 0) & (counts < min_count)
    return np.asarray(small.any(axis=1), dtype=np.bool_)


def treatments(
    groups: npt.NDArray[np.int64],
    missing: npt.NDArray[np.int64],
    unique: npt.NDArray[np.int64],
    close: npt.NDArray[np.int64],
    min_count: int,
    *,
    impute: bool,
) -> npt.NDArray[np.int64]:
    """Decide, per variant, what of its row the verifier releases.

    ``groups`` are the federation's genotype groups ``(variants, g)`` (e.g.
    the samples with ALT dosage 0, 1 and 2); a group of 1 to ``min_count -
    1`` samples withholds the row. ``missing`` are the variant's missing
    calls; ``unique`` counts the nodes holding a missing-call group of it of
    at least ``min_count`` samples that differs by at least ``min_count``
    from every one they filed before it in the job
    (:class:`~genofed.node.missing_groups.MissingGroups`); ``close`` counts
    the nodes where its sums would come within ``min_count - 1`` people of
    its sums over another cohort on record (:func:`apart_across_cohorts`).
    Sums over the called samples are released only without missing calls,
    or with a unique group somewhere and no node close: then any two released
    missing-call groups, in this job or against another cohort's, differ by
    0 or at least ``min_count`` people. Otherwise the row is imputed if
    ``impute``, and withheld if not.
    """
    fits = (unique > 0) & (missing >= min_count) & (close == 0)
    missing_fits = (missing == 0) | fits
    missing_treatment = Treatment.IMPUTED if impute else Treatment.WITHHELD
    treatment = np.where(missing_fits, Treatment.EXACT, missing_treatment)
    return np.where(small_groups(groups, min_count), Treatment.WITHHELD, treatment).astype(np.int64)


def unique_if(totals: Totals, uniform: bool) -> npt.NDArray[np.int64]:
    """Return the nodes' ``unique`` flags; they hold only if all judged by one ``min_count``.

    A node judges its missing-call groups by its own ``min_count``; when the
    participants' differ, a flag from a node with a smaller one guarantees
    too little, so none counts (the rows are then imputed or withheld).
    """
    unique: npt.NDArray[np.int64] = totals["unique"] if uniform else np.zeros_like(totals["unique"])
    return unique


def close_across_cohorts(
    missing: npt.NDArray[np.bool_], differences: list[npt.NDArray[np.bool_]], min_count: int
) -> npt.NDArray[np.bool_]:
    """Return, per variant, whether its sums here come close to other jobs' sums over it.

    ``missing`` is ``(variants, samples)`` over every sample of the node,
    ``differences`` the samples this job's cohort and each other cohort on
    record do not share. Between two jobs, a variant's missing-call groups
    differ by the difference's samples missing at it, and its called samples
    by the difference's others; the variant is close if either is 1 to
    ``min_count - 1``. Any node finding a variant close keeps it from being
    released exactly: the federation's difference is the sum of the nodes'.
    """
    close = np.zeros(len(missing), dtype=np.bool_)
    for difference in differences:
        absent = np.count_nonzero(missing[:, difference], axis=1)
        present = int(difference.sum()) - absent
        for count in (absent, present):
            close |= (count > 0) & (count < min_count)
    return close
