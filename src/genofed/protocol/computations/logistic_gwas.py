"""``logistic-gwas`` version 1: the sums of PLINK 2's logistic regression, round by round.

Parts:

``block/<i>``
    Streamed: the node has decoded block i's genotypes for its cohort and
    keeps them while the coordinator iterates on the block. It sends, for
    the verifier only, each variant's groups (samples with ALT dosage 0, 1,
    2 and none, among cases and among controls) and how its missing-call
    groups among cases and among controls stand to those filed before; the
    verifier releases one ``treatment`` per variant: fitted exactly, or
    withheld if a group the sums cover (a genotype group; the carriers of
    an allele among cases or among controls; the cases or the controls with
    a missing call) has 1 to ``min_count - 1`` samples, or a missing-call
    group may not be released (:class:`~genofed.protocol.contract.Treatment`).
``block/<i>/fit/<f>/round/<j>``
    Round j of fit f of block i (a block's variants are fitted in one or
    two fits, :func:`fits_of`): for the variants asked for, the summed
    score ``X'(y - mu)``, information ``X'WX``, log-likelihood and counts at
    the coefficients asked for, and, for the variants in a Firth iteration,
    the Firth score correction given their inverse information
    (:class:`~genofed.kernels.logistic.RoundRequest` ->
    :class:`~genofed.kernels.logistic.RoundSums`).
``null/round/<j>``
    For the score-test mode, round j of the covariates-only model.
``block/<i>/score`` and ``block/<i>/score/missing``
    For the score-test mode, each variant's score-test sums at the null
    model's coefficients, and the missing-call samples' sums of the variants
    asked for (those with a missing call somewhere in the federation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.kernels.logistic import (
    FirthSums,
    LogisticSums,
    MissingScoreSums,
    NullLogisticSums,
    RoundRequest,
    RoundSums,
    ScoreResult,
    ScoreSums,
    variants_to_refine,
)
from genofed.protocol.computations._parts import Block
from genofed.protocol.contract import (
    Array,
    Arrays,
    Contract,
    Kind,
    Part,
    PartSpec,
    Rule,
    block_width,
    triangle,
)
from genofed.protocol.messages import ColumnName

__all__ = [
    "CONTRACT",
    "PIPELINED",
    "Block",
    "BlockRound",
    "BlockScore",
    "BlockScoreMissing",
    "LogisticGwasParameters",
    "NullRound",
    "fits_of",
    "missing_score_arrays",
    "missing_score_from_totals",
    "null_arrays",
    "null_from_totals",
    "refits",
    "request_arrays",
    "request_from_arrays",
    "score_arrays",
    "score_from_totals",
    "sums_arrays",
    "sums_from_totals",
]

FloatArray = npt.NDArray[np.float64]


class LogisticGwasParameters(BaseModel):
    """Parameters of ``logistic-gwas``: a 0/1 phenotype, covariates, and the test.

    ``test`` is ``"wald"`` (PLINK 2's test for every variant) or ``"score"``
    (a score test of every variant against the covariates-only model, with
    the variants whose score p is below ``refine_below`` refitted as with
    ``"wald"``). The verifying node replays the same choices.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    phenotype: ColumnName
    covariates: list[ColumnName] = Field(default_factory=list, max_length=64)
    block_size: int = Field(ge=1, le=65_536)
    test: Literal["wald", "score"] = "wald"
    refine_below: float = Field(default=1e-3, gt=0, le=1)


@dataclass(frozen=True)
class BlockRound(Part):
    """Round ``number`` of fit ``fit`` of block ``index`` (see :func:`fits_of`)."""

    index: int
    fit: int
    number: int
    template: ClassVar[str] = "block/{index}/fit/{fit}/round/{number}"


@dataclass(frozen=True)
class NullRound(Part):
    """Round ``number`` of the covariates-only model."""

    number: int
    template: ClassVar[str] = "null/round/{number}"


@dataclass(frozen=True)
class BlockScore(Part):
    """The score-test sums of every variant of block ``index``."""

    index: int
    template: ClassVar[str] = "block/{index}/score"


@dataclass(frozen=True)
class BlockScoreMissing(Part):
    """The missing-call samples' score-test sums of some variants of block ``index``."""

    index: int
    template: ClassVar[str] = "block/{index}/score/missing"


def _dimensions(
    parameters: LogisticGwasParameters,
    part: Part,
    request: Mapping[str, npt.NDArray[np.generic]] | None,
    variants: int,
) -> dict[str, int]:
    k = len(parameters.covariates) + 1
    dims = {"k": k, "t": triangle(k), "p": k + 1, "tp": triangle(k + 1)}
    index = getattr(part, "index", None)
    if index is not None:
        dims["v"] = block_width(index, parameters.block_size, variants)
    return dims


_COEFFICIENTS = Array("coefficients", Kind.FLOAT, ("k",), doc="the covariates-only model's")

CONTRACT = Contract(
    name="logistic-gwas",
    version=2,
    summary=(
        "Sums of an exact logistic-regression GWAS with PLINK 2's Firth fallback, masked "
        "for secure aggregation: per round, X'(y - mu), X'WX, the log-likelihood and the "
        "Firth score correction of the variants asked for, at the coefficients asked for."
    ),
    parameters=LogisticGwasParameters,
    dimensions=_dimensions,
    rules=(Rule.MIN_COHORT, Rule.MIN_COUNT, Rule.MIN_DIFFERENCE, Rule.QUERY_BUDGET),
    parts=(
        PartSpec(
            Block,
            "the block is decoded and kept for its rounds; which of its variants are fitted",
            answer=(
                Array(
                    "groups", Kind.COUNT, ("v", 8), doc="ALT dosage 0, 1, 2, none: cases, controls"
                ),
                Array("unique", Kind.FLAG, ("v", 2), doc="missing-call groups of cases, controls"),
                Array("close", Kind.FLAG, ("v",), doc="sums near another cohort's here"),
            ),
            released=(Array("treatment", Kind.COUNT, ("v",), doc="0 fitted, 2 withheld"),),
            rules=(Rule.MIN_PARTICIPANTS, Rule.MIN_COUNT),
        ),
        PartSpec(
            BlockRound,
            "score, information, log-likelihood and counts of the variants asked for, at "
            "their coefficients, and the Firth correction of those in a Firth iteration",
            request=(
                Array("variants", Kind.INDEX, ("m",), of="v"),
                Array("coefficients", Kind.FLOAT, ("m", "p")),
                Array("with_loglik", Kind.FLAG, ("m",)),
                Array("firth_variants", Kind.INDEX, ("f",), of="v"),
                Array("firth_coefficients", Kind.FLOAT, ("f", "p")),
                Array("inverse_information", Kind.FLOAT, ("f", "p", "p")),
            ),
            answer=(
                Array("score", Kind.FLOAT, ("m", "p")),
                Array("information", Kind.FLOAT, ("m", "tp")),
                Array("loglik", Kind.FLOAT, ("m",)),
                Array("loglik_wanted", Kind.FLAG, ("m",)),
                Array("n", Kind.COUNT, ("m",)),
                Array("cases", Kind.COUNT, ("m",)),
                Array("alt", Kind.COUNT, ("m",)),
                Array("alt_cases", Kind.COUNT, ("m",)),
                Array("firth_correction", Kind.FLOAT, ("f", "p")),
            ),
            of_block=True,
        ),
        PartSpec(
            NullRound,
            "score, information and log-likelihood of the covariates-only model",
            request=(_COEFFICIENTS,),
            answer=(
                Array("score", Kind.FLOAT, ("k",)),
                Array("information", Kind.FLOAT, ("t",)),
                Array("loglik", Kind.FLOAT),
                Array("n", Kind.COUNT),
                Array("cases", Kind.COUNT),
            ),
        ),
        PartSpec(
            BlockScore,
            "each variant's score-test sums at the covariates-only model's coefficients",
            request=(_COEFFICIENTS,),
            answer=(
                Array("u", Kind.FLOAT, ("v",)),
                Array("gwg", Kind.FLOAT, ("v",)),
                Array("cwg", Kind.FLOAT, ("v", "k")),
                Array("n", Kind.COUNT, ("v",)),
                Array("cases", Kind.COUNT, ("v",)),
                Array("alt", Kind.COUNT, ("v",)),
            ),
            of_block=True,
        ),
        PartSpec(
            BlockScoreMissing,
            "the missing-call samples' w c c' (upper triangle) and c (y - mu) of the "
            "variants asked for",
            request=(_COEFFICIENTS, Array("variants", Kind.INDEX, ("m",), of="v", increasing=True)),
            answer=(
                Array("cwc", Kind.FLOAT, ("m", "t")),
                Array("cr", Kind.FLOAT, ("m", "k")),
            ),
            of_block=True,
        ),
    ),
)

PIPELINED = 2048  # fewest variants worth fitting in two halves at once


def refits(
    score: ScoreResult, refine_below: float, admitted: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Return the variants the score-test mode refits: below ``refine_below``, if admitted."""
    return np.intersect1d(variants_to_refine(score, refine_below), admitted).astype(np.int64)


def fits_of(chosen: npt.NDArray[np.int64]) -> list[npt.NDArray[np.int64]]:
    """Split the variants a block fits into the fits that run at once: two from 2,048.

    While the nodes compute one fit's round, the coordinator solves the
    other's. The verifying node splits the same way.
    """
    return list(np.array_split(chosen, 2 if len(chosen) >= PIPELINED else 1))


_REQUEST = (
    "variants",
    "coefficients",
    "with_loglik",
    "firth_variants",
    "firth_coefficients",
    "inverse_information",
)
_NULL = ("score", "information", "loglik", "n", "cases")
_SCORE = ("u", "gwg", "cwg", "n", "cases", "alt")
_MISSING_SCORE = ("cwc", "cr")


def request_arrays(request: RoundRequest) -> Arrays:
    """Lay out a round request as named arrays."""
    return {name: np.asarray(getattr(request, name)) for name in _REQUEST}


def request_from_arrays(arrays: Mapping[str, npt.NDArray[np.generic]]) -> RoundRequest:
    """Read a round request whose arrays the contract has checked."""
    return RoundRequest(
        variants=arrays["variants"].astype(np.int64),
        coefficients=arrays["coefficients"].astype(np.float64),
        with_loglik=arrays["with_loglik"].astype(np.bool_),
        firth_variants=arrays["firth_variants"].astype(np.int64),
        firth_coefficients=arrays["firth_coefficients"].astype(np.float64),
        inverse_information=arrays["inverse_information"].astype(np.float64),
    )


def sums_arrays(sums: RoundSums) -> Arrays:
    """Lay out one node's round sums as named arrays; NaN log-likelihoods travel as 0."""
    logistic = sums.logistic
    wanted = ~np.isnan(logistic.loglik)
    return {
        "score": logistic.score,
        "information": logistic.information,
        "loglik": np.where(wanted, logistic.loglik, 0.0),
        "loglik_wanted": wanted,
        "n": logistic.n,
        "cases": logistic.cases,
        "alt": logistic.alt,
        "alt_cases": logistic.alt_cases,
        "firth_correction": sums.firth.correction,
    }


def sums_from_totals(
    totals: Mapping[str, npt.NDArray[np.generic]], *, participants: int
) -> RoundSums:
    """Read the federation's round sums from the checked totals of every node's arrays."""
    wanted = totals["loglik_wanted"] == participants  # every node computed it
    return RoundSums(
        LogisticSums(
            score=_floats(totals["score"]),
            information=_floats(totals["information"]),
            loglik=np.where(wanted, _floats(totals["loglik"]), np.nan),
            n=_counts(totals["n"]),
            cases=_counts(totals["cases"]),
            alt=_counts(totals["alt"]),
            alt_cases=_counts(totals["alt_cases"]),
        ),
        FirthSums(_floats(totals["firth_correction"])),
    )


def null_arrays(sums: NullLogisticSums) -> Arrays:
    """Lay out one node's null-model sums as named arrays."""
    return {name: np.asarray(getattr(sums, name)) for name in _NULL}


def null_from_totals(totals: Mapping[str, npt.NDArray[np.generic]]) -> NullLogisticSums:
    """Read the federation's null-model sums from the checked totals."""
    return NullLogisticSums(
        score=_floats(totals["score"]),
        information=_floats(totals["information"]),
        loglik=float(totals["loglik"]),
        n=int(totals["n"]),
        cases=int(totals["cases"]),
    )


def score_arrays(sums: ScoreSums) -> Arrays:
    """Lay out one node's score-test sums of a block as named arrays."""
    return {name: np.asarray(getattr(sums, name)) for name in _SCORE}


def score_from_totals(totals: Mapping[str, npt.NDArray[np.generic]]) -> ScoreSums:
    """Read the federation's score-test sums of a block from the checked totals."""
    return ScoreSums(
        u=_floats(totals["u"]),
        gwg=_floats(totals["gwg"]),
        cwg=_floats(totals["cwg"]),
        n=_counts(totals["n"]),
        cases=_counts(totals["cases"]),
        alt=_counts(totals["alt"]),
    )


def missing_score_arrays(sums: MissingScoreSums) -> Arrays:
    """Lay out one node's missing-call sums of the score test as named arrays."""
    return {name: np.asarray(getattr(sums, name)) for name in _MISSING_SCORE}


def missing_score_from_totals(
    totals: Mapping[str, npt.NDArray[np.generic]],
    variants: npt.NDArray[np.intp],
    width: int,
    k: int,
) -> MissingScoreSums:
    """Spread the federation's missing-call sums of ``variants`` over a block of ``width``.

    The other variants have no missing call anywhere, so their sums are zero.
    """
    cwc, cr = np.zeros((width, triangle(k))), np.zeros((width, k))
    cwc[variants], cr[variants] = totals["cwc"], totals["cr"]
    return MissingScoreSums(cwc=cwc, cr=cr)


def _floats(values: npt.NDArray[np.generic]) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _counts(values: npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64)
