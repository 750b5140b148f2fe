"""The logistic-regression rounds of a GWAS: PLINK 2's algorithm on the nodes' masked sums.

For each block the coordinator runs :func:`genofed.kernels.logistic.fit_logistic`,
whose every evaluation is one round trip: the same request (variants and
coefficients) to every node, whose masked sums add up to the federation's.
Round trips grow with Newton and Firth iterations, not with variants.

The score-test mode (``test="score"``) fits the covariates-only model once
(a few round trips), then tests every variant with one round trip per block
(REGENIE's first step); variants with a score p below ``refine_below`` are
refitted exactly as above, so their rows are PLINK's Wald (or Firth) results.
The other rows report the score test: a different test from PLINK's, with
the one-step estimate U/V as the log odds ratio and 1/sqrt(V) as its SE.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed.coordinator.study import Round
from genofed.errors import InputError
from genofed.kernels.logistic import (
    LogisticResult,
    MissingScoreSums,
    NullLogisticFit,
    NullLogisticSums,
    RoundRequest,
    RoundSums,
    ScoreSums,
    concatenate_results,
    fit_logistic,
    fit_null_logistic,
    score_test,
)
from genofed.protocol.computations.logistic_gwas import (
    Block,
    BlockRound,
    BlockScore,
    BlockScoreMissing,
    NullRound,
    fits_of,
    missing_score_from_totals,
    null_from_totals,
    refits,
    request_arrays,
    score_from_totals,
    sums_from_totals,
)
from genofed.protocol.contract import Treatment, treatment_labels
from genofed.report import GwasTable

__all__ = ["solve_logistic_blocks"]

logger = logging.getLogger(__name__)


class _BlockRounds:
    """Evaluate the requests of one block's fits: one verified round trip each.

    Thread-safe, so that the block's fits run at once, each counting its own
    rounds. Every answer also carries each requested variant's counts among
    its called samples, which do not depend on the coefficients; they are
    kept for the output.
    """

    def __init__(self, round: Round, index: int, width: int) -> None:
        self.round = round
        self.index = index
        self.count = 0  # round trips so far, over all fits
        self._lock = threading.Lock()
        self.cases = np.zeros(width, dtype=np.int64)
        self.alt = np.zeros(width, dtype=np.int64)

    def fit(self, number: int) -> Callable[[RoundRequest], RoundSums]:
        """Return the round trip of fit ``number`` of the block."""
        rounds = itertools.count()

        def evaluate(request: RoundRequest) -> RoundSums:
            part = BlockRound(self.index, number, next(rounds))
            totals = self.round.ask(part, request_arrays(request))
            sums = sums_from_totals(totals, participants=len(self.round.clients))
            with self._lock:
                self.count += 1
                self.cases[request.variants] = sums.logistic.cases
                self.alt[request.variants] = sums.logistic.alt
            return sums

        return evaluate


def _fit_pipelined(
    rounds: _BlockRounds, width: int, k: int, chosen: npt.NDArray[np.int64]
) -> LogisticResult:
    """Fit the block's chosen variants in the fits of :func:`fits_of`, at once, and join them.

    While the nodes compute one fit's round, the coordinator adds up and
    solves the other's, so neither side waits for the other.
    """
    fits = fits_of(chosen)
    with ThreadPoolExecutor(len(fits)) as pool:
        results = list(
            pool.map(
                lambda number: fit_logistic(rounds.fit(number), width, k, variants=fits[number]),
                range(len(fits)),
            )
        )
    return concatenate_results(results)


def solve_logistic_blocks(
    round: Round,
    variants: dict[str, npt.NDArray[np.generic]],
    block_size: int,
    k: int,
    progress: ProgressCallback | None,
    *,
    test: str = "wald",
    refine_below: float = 1e-3,
) -> GwasTable:
    """Fit every variant, block by block; return the table with odds ratios.

    Extra columns: ``n_cases`` and ``n_controls`` (among the samples called
    at the variant), ``firth`` (PLINK's ``FIRTH?``), ``errcode`` (PLINK's
    ``ERRCODE``: ``.`` for a result, otherwise why the values are NA or
    ``UNFINISHED``), ``disclosure`` (``.``, or ``WITHHELD`` for a variant
    with a group of 1 to ``min_count - 1`` samples, or a missing-call group
    the nodes may not release) and, in the score-test mode, ``test``
    (``score`` or ``wald``, which test the row reports).
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
        "disclosure": np.full(n_variants, ".", dtype=object),
    }
    tests = np.full(n_variants, "wald", dtype=object)
    null = _fit_null(round, k) if test == "score" else None
    n_blocks = -(-n_variants // block_size)
    done = dict.fromkeys(round.names, 0)
    rounds = 0
    for index in range(n_blocks):
        start = index * block_size
        width = min(block_size, n_variants - start)
        treatment = round.fetch(Block(index), done=done)["treatment"]  # decoded at the nodes
        block = slice(start, start + width)
        columns["disclosure"][block] = treatment_labels(treatment)
        evaluate = _BlockRounds(round, index, width)
        chosen = np.flatnonzero(treatment == Treatment.EXACT).astype(np.int64)
        if null is not None:
            totals = round.ask(BlockScore(index), {"coefficients": null.coefficients})
            sums = score_from_totals(totals)
            missing = _missing_score(round, index, null, sums, chosen)
            score = score_test(null, sums, missing)
            rows = start + chosen
            columns["n_cases"][rows] = sums.cases[chosen]
            with np.errstate(divide="ignore", invalid="ignore"):
                columns["effect_allele_frequency"][rows] = sums.alt[chosen] / (2 * sums.n[chosen])
                columns["beta"][rows] = score.score[chosen] / score.variance[chosen]
                columns["standard_error"][rows] = 1 / np.sqrt(score.variance[chosen])
            columns["p_value"][rows] = score.p_value[chosen]
            columns["n"][rows] = score.n[chosen]
            tests[block] = "score"
            chosen = refits(score, refine_below, chosen)
        if len(chosen):
            result = _fit_pipelined(evaluate, width, k, chosen)
            rows = start + chosen
            columns["beta"][rows] = result.beta
            columns["standard_error"][rows] = result.standard_error
            columns["p_value"][rows] = result.p_value
            columns["n"][rows] = result.n
            columns["firth"][rows] = result.firth
            columns["errcode"][rows] = result.error
            tests[rows] = "wald"
            columns["n_cases"][rows] = evaluate.cases[chosen]
            with np.errstate(divide="ignore", invalid="ignore"):
                columns["effect_allele_frequency"][rows] = evaluate.alt[chosen] / (2 * result.n)
        rounds += evaluate.count
        if progress is not None:
            progress(Progress("blocks", index + 1, n_blocks, tuple(done.items())))
    logger.info("logistic fits of %d variants took %d round trips", n_variants, rounds)
    n_controls = columns["n"] - columns["n_cases"]
    extra: dict[str, npt.NDArray[np.generic]] = {
        "n_cases": columns["n_cases"],
        "n_controls": n_controls,
        "firth": columns["firth"],
        "errcode": columns["errcode"].astype(str),
        "disclosure": columns["disclosure"].astype(str),
    }
    if null is not None:
        extra["test"] = tests.astype(str)
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
        extra=extra,
    )


def _missing_score(
    round: Round,
    index: int,
    null: NullLogisticFit,
    sums: ScoreSums,
    fitted: npt.NDArray[np.int64],
) -> MissingScoreSums | None:
    """Ask for the missing-call sums of the fitted variants with a missing call anywhere."""
    variants = np.intersect1d(np.flatnonzero(sums.n < null.sums.n), fitted)
    if len(variants) == 0:
        return None
    request = {"coefficients": null.coefficients, "variants": variants}
    totals = round.ask(BlockScoreMissing(index), request)
    return missing_score_from_totals(totals, variants, len(sums.n), len(null.coefficients))


def _fit_null(round: Round, k: int) -> NullLogisticFit:
    """Fit the covariates-only model over the federation, one round trip per iteration."""
    counter = itertools.count()

    def evaluate(coefficients: npt.NDArray[np.float64]) -> NullLogisticSums:
        totals = round.ask(NullRound(next(counter)), {"coefficients": coefficients})
        return null_from_totals(totals)

    null = fit_null_logistic(evaluate, k)
    if not null.converged:
        raise InputError(
            "the covariates-only logistic model does not converge over the federation "
            "(a covariate may separate cases from controls); use the Wald test"
        )
    logger.info("null logistic model converged in %d iterations", null.iterations)
    return null
