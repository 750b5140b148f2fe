"""The arrays of a ``logistic-gwas`` (version 1) round, both ways.

The coordinator's :class:`~genofed.kernels.logistic.RoundRequest` (which
variants of the block, at which coefficients, and the Firth corrections
wanted) travels as named arrays to every node; each node answers with its
:class:`~genofed.kernels.logistic.RoundSums` as named arrays, masked; the
coordinator reads the unmasked totals back into ``RoundSums``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.logistic import (
    FirthSums,
    LogisticSums,
    MissingScoreSums,
    NullLogisticSums,
    RoundRequest,
    RoundSums,
    ScoreSums,
)
from genofed.protocol.codec import block_rows

__all__ = [
    "coefficients_from_arrays",
    "missing_score_arrays",
    "missing_score_from_totals",
    "missing_score_request_from_arrays",
    "null_arrays",
    "null_from_totals",
    "request_arrays",
    "request_from_arrays",
    "score_arrays",
    "score_from_totals",
    "sums_arrays",
    "sums_from_totals",
]

_NULL = ("score", "information", "loglik", "n", "cases")
_SCORE = ("u", "gwg", "cwg", "n", "cases", "alt")
_MISSING_SCORE = ("cwc", "cr")

Arrays = dict[str, npt.NDArray[np.generic]]

_REQUEST = (
    "variants",
    "coefficients",
    "with_loglik",
    "firth_variants",
    "firth_coefficients",
    "inverse_information",
)


def request_arrays(request: RoundRequest) -> Arrays:
    """Lay out a round request as named arrays."""
    return {name: np.asarray(getattr(request, name)) for name in _REQUEST}


def request_from_arrays(
    arrays: Mapping[str, npt.NDArray[np.generic]], *, width: int, p: int
) -> RoundRequest:
    """Read and check a round request for a block of ``width`` variants and ``p`` coefficients.

    Raises
    ------
    ProtocolError
        If an array is missing, extra, of the wrong type or shape, or an index
        is outside the block.
    """
    if set(arrays) != set(_REQUEST):
        raise ProtocolError(f"a round request has arrays {list(_REQUEST)}, got {sorted(arrays)}")
    variants, firth_variants = arrays["variants"], arrays["firth_variants"]
    m, f = len(variants), len(firth_variants)
    shapes = {
        "variants": ((m,), "iu"),
        "coefficients": ((m, p), "f"),
        "with_loglik": ((m,), "b"),
        "firth_variants": ((f,), "iu"),
        "firth_coefficients": ((f, p), "f"),
        "inverse_information": ((f, p, p), "f"),
    }
    for name, (shape, kinds) in shapes.items():
        value = arrays[name]
        if value.shape != shape or value.dtype.kind not in kinds:
            raise ProtocolError(
                f"round request array {name!r} is {value.dtype}{value.shape}, expected {shape}"
            )
    for name in ("variants", "firth_variants"):
        index = arrays[name]
        if len(index) and (index.min() < 0 or index.max() >= width):
            raise ProtocolError(f"round request {name!r} are not all within the block's {width}")
    for name in ("coefficients", "firth_coefficients", "inverse_information"):
        if not np.isfinite(arrays[name]).all():
            raise ProtocolError(f"round request array {name!r} holds non-finite values")
    return RoundRequest(
        variants=variants.astype(np.int64),
        coefficients=arrays["coefficients"].astype(np.float64),
        with_loglik=arrays["with_loglik"].astype(np.bool_),
        firth_variants=firth_variants.astype(np.int64),
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
    totals: Mapping[str, npt.NDArray[np.float64]], *, participants: int
) -> RoundSums:
    """Read the federation's round sums from the unmasked totals of every node's arrays."""
    expected = {
        "score", "information", "loglik", "loglik_wanted", "n", "cases", "alt", "alt_cases",
        "firth_correction",
    }  # fmt: skip
    if set(totals) != expected:
        raise ProtocolError(f"round sums have arrays {sorted(expected)}, got {sorted(totals)}")
    wanted = np.rint(totals["loglik_wanted"]) == participants  # every node computed it

    def counts(name: str) -> npt.NDArray[np.int64]:
        return np.rint(totals[name]).astype(np.int64)

    return RoundSums(
        LogisticSums(
            score=totals["score"],
            information=totals["information"],
            loglik=np.where(wanted, totals["loglik"], np.nan),
            n=counts("n"),
            cases=counts("cases"),
            alt=counts("alt"),
            alt_cases=counts("alt_cases"),
        ),
        FirthSums(totals["firth_correction"]),
    )


def coefficients_from_arrays(
    arrays: Mapping[str, npt.NDArray[np.generic]], *, k: int
) -> npt.NDArray[np.float64]:
    """Read the null model's ``k`` coefficients, the one array of a null or score request.

    Raises
    ------
    ProtocolError
        If the request holds anything but ``k`` finite coefficients.
    """
    coefficients = arrays.get("coefficients")
    if (
        set(arrays) != {"coefficients"}
        or coefficients is None
        or coefficients.shape != (k,)
        or coefficients.dtype.kind != "f"
        or not np.isfinite(coefficients).all()
    ):
        raise ProtocolError(f"the request holds one array 'coefficients' of {k} finite numbers")
    return coefficients.astype(np.float64)


def null_arrays(sums: NullLogisticSums) -> Arrays:
    """Lay out one node's null-model sums as named arrays."""
    return {name: np.asarray(getattr(sums, name)) for name in _NULL}


def null_from_totals(totals: Mapping[str, npt.NDArray[np.float64]]) -> NullLogisticSums:
    """Read the federation's null-model sums from the unmasked totals."""
    _expect(totals, _NULL, "null-model sums")
    return NullLogisticSums(
        score=totals["score"],
        information=totals["information"],
        loglik=float(totals["loglik"]),
        n=int(np.rint(totals["n"])),
        cases=int(np.rint(totals["cases"])),
    )


def score_arrays(sums: ScoreSums) -> Arrays:
    """Lay out one node's score-test sums of a block as named arrays."""
    return {name: np.asarray(getattr(sums, name)) for name in _SCORE}


def score_from_totals(totals: Mapping[str, npt.NDArray[np.float64]]) -> ScoreSums:
    """Read the federation's score-test sums of a block from the unmasked totals."""
    _expect(totals, _SCORE, "score-test sums")
    n, cases, alt = (np.rint(totals[name]).astype(np.int64) for name in ("n", "cases", "alt"))
    return ScoreSums(u=totals["u"], gwg=totals["gwg"], cwg=totals["cwg"], n=n, cases=cases, alt=alt)


def missing_score_request_from_arrays(
    arrays: Mapping[str, npt.NDArray[np.generic]], *, k: int, width: int, part: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Read a ``block/<i>/score/missing`` request: the null coefficients and the variants.

    Raises
    ------
    ProtocolError
        If the request holds anything but ``k`` finite coefficients and
        increasing variant indices below ``width``.
    """
    if set(arrays) != {"coefficients", "variants"}:
        raise ProtocolError(f"{part} is asked for with the arrays 'coefficients' and 'variants'")
    variants = block_rows(arrays["variants"], width=width, what=part)
    return coefficients_from_arrays({"coefficients": arrays["coefficients"]}, k=k), variants


def missing_score_arrays(sums: MissingScoreSums) -> Arrays:
    """Lay out one node's missing-call sums of the score test as named arrays."""
    return {name: np.asarray(getattr(sums, name)) for name in _MISSING_SCORE}


def missing_score_from_totals(
    totals: Mapping[str, npt.NDArray[np.float64]],
    variants: npt.NDArray[np.intp],
    width: int,
    k: int,
) -> MissingScoreSums:
    """Spread the federation's missing-call sums of ``variants`` over a block of ``width``.

    The other variants have no missing call anywhere, so their sums are zero.
    """
    _expect(totals, _MISSING_SCORE, "missing-call score sums")
    cwc, cr = np.zeros((width, k * (k + 1) // 2)), np.zeros((width, k))
    cwc[variants], cr[variants] = totals["cwc"], totals["cr"]
    return MissingScoreSums(cwc=cwc, cr=cr)


def _expect(totals: Mapping[str, object], names: tuple[str, ...], what: str) -> None:
    if set(totals) != set(names):
        raise ProtocolError(f"{what} have arrays {sorted(names)}, got {sorted(totals)}")
