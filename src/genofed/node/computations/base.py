"""What every computation of the catalogue provides to the job manager."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import GenofedError

__all__ = ["Arrays", "NotReady", "Task", "UnknownPart"]

Arrays = dict[str, npt.NDArray[np.generic]]


class UnknownPart(GenofedError):
    """No job, or no such result of a job, exists on this node."""


class NotReady(GenofedError):
    """The result exists but is not computed yet."""


class Task:
    """One job's work at this node.

    Parameters
    ----------
    included
        The samples the job computes over, in .fam order: the cohort the
        disclosure rules judge.
    blocks_total
        How many ``block/<i>`` parts the job streams.
    """

    window: int | None = None  # most blocks computed ahead (None: the node's buffered_blocks)
    # Parts answered unmasked: this node's own aggregate, which the computation's
    # description in the catalogue declares (e.g. a PCA's per-node summary for a picture).
    released: frozenset[str] = frozenset()

    def __init__(self, included: npt.NDArray[np.bool_], blocks_total: int) -> None:
        self.included = included
        self.blocks_total = blocks_total
        self.groups: dict[str, int] = {}  # e.g. cases and controls, for the min_count rule

    @property
    def samples(self) -> int:
        """Samples in the cohort."""
        return int(self.included.sum())

    def head(self) -> Arrays | None:
        """Compute the ``null`` part, first of all; None if the computation has none."""
        return None

    def block(self, index: int) -> Arrays:
        """Compute the ``block/<index>`` part; called in order, on the job's worker thread."""
        raise NotImplementedError

    def answer(self, part: str, request: Mapping[str, npt.NDArray[np.generic]]) -> Arrays:
        """Compute a part asked for with arrays (``block/<i>/...``), once the block is streamed.

        Raises
        ------
        UnknownPart
            If the computation has no such part.
        genofed.errors.ProtocolError
            If the request's arrays are not what the part needs.
        """
        raise UnknownPart(f"no result {part!r} can be asked for with arrays")

    def release(self, index: int) -> None:
        """Forget what is kept for blocks before ``index``: the coordinator has them."""
