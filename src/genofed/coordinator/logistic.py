"""The logistic-regression rounds of a GWAS: PLINK 2's algorithm on the nodes' masked sums.

For each block the coordinator runs :func:`genofed.kernels.logistic.fit_logistic`,
whose every evaluation is one round trip: the same request (variants and
coefficients) to every node, whose masked sums add up to the federation's.
Round trips grow with Newton and Firth iterations, not with variants.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed.coordinator.study import Round
from genofed.errors import ProtocolError
from genofed.kernels.logistic import LogisticSums, RoundRequest, RoundSums, fit_logistic
from genofed.protocol.logistic import request_arrays, sums_from_totals
from genofed.report import GwasTable

__all__ = ["solve_logistic_blocks"]

logger = logging.getLogger(__name__)


class _BlockRounds:
    """Evaluate fit_logistic's requests for one block: one masked round trip each."""

    def __init__(self, round: Round, index: int) -> None:
        self.round = round
        self.index = index
        self.count = 0
        self._first: LogisticSums | None = None

    def __call__(self, request: RoundRequest) -> RoundSums:
        part = f"block/{self.index}/round/{self.count}"
        self.count += 1
        totals = self.round.ask(part, request_arrays(request))
        sums = sums_from_totals(totals, participants=len(self.round.clients))
        if self._first is None:
            self._first = sums.logistic
        return sums

    @property
    def counts(self) -> LogisticSums:
        """The first round's sums: every variant at zero, with its called samples' counts."""
        if self._first is None:
            raise ProtocolError(f"block {self.index} was fitted without any round")
        return self._first


def solve_logistic_blocks(
    round: Round,
    variants: dict[str, npt.NDArray[np.generic]],
    block_size: int,
    k: int,
    progress: ProgressCallback | None,
) -> GwasTable:
    """Fit every variant, block by block; return the table with odds ratios.

    Extra columns: ``n_cases`` and ``n_controls`` (among the samples called
    at the variant), ``firth`` (PLINK's ``FIRTH?``) and ``errcode`` (PLINK's
    ``ERRCODE``: ``.`` for a result, otherwise why the values are NA or
    ``UNFINISHED``).
    """
    n_variants = len(variants["variant_id"])
    columns = {
        "beta": np.full(n_variants, np.nan),
        "standard_error": np.full(n_variants, np.nan),
        "p_value": np.full(n_variants, np.nan),
        "effect_allele_frequency": np.full(n_variants, np.nan),
        "n": np.zeros(n_variants, dtype=np.int64),
        "n_cases": np.zeros(n_variants, dtype=np.int64),
        "firth": np.zeros(n_variants, dtype=np.bool_),
        "errcode": np.full(n_variants, ".", dtype=object),
    }
    n_blocks = -(-n_variants // block_size)
    done = dict.fromkeys(round.names, 0)
    rounds = 0
    for index in range(n_blocks):
        start = index * block_size
        width = min(block_size, n_variants - start)
        round.fetch(f"block/{index}", done=done)  # the nodes have decoded the block
        evaluate = _BlockRounds(round, index)
        result = fit_logistic(evaluate, width, k)
        rounds += evaluate.count
        block = slice(start, start + width)
        counts = evaluate.counts
        columns["beta"][block] = result.beta
        columns["standard_error"][block] = result.standard_error
        columns["p_value"][block] = result.p_value
        columns["n"][block] = result.n
        columns["n_cases"][block] = counts.cases
        columns["firth"][block] = result.firth
        columns["errcode"][block] = result.error
        with np.errstate(divide="ignore", invalid="ignore"):
            columns["effect_allele_frequency"][block] = counts.alt / (2 * counts.n)
        if progress is not None:
            progress(Progress("blocks", index + 1, n_blocks, tuple(done.items())))
    logger.info("logistic fits of %d variants took %d round trips", n_variants, rounds)
    n_controls = columns["n"] - columns["n_cases"]
    return GwasTable(
        chromosome=variants["chromosome"].astype(str),
        base_pair_location=variants["base_pair_location"].astype(np.int64),
        effect_allele=variants["effect_allele"].astype(str),
        other_allele=variants["other_allele"].astype(str),
        beta=columns["beta"],
        standard_error=columns["standard_error"],
        effect_allele_frequency=columns["effect_allele_frequency"],
        p_value=columns["p_value"],
        variant_id=variants["variant_id"].astype(str),
        n=columns["n"],
        effect="odds_ratio",
        extra={
            "n_cases": columns["n_cases"],
            "n_controls": n_controls,
            "firth": columns["firth"],
            "errcode": columns["errcode"].astype(str),
        },
    )
