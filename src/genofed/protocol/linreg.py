"""The arrays of a ``linear-gwas`` (version 1) job, before masking and after summing.

Each result part is a dict of named arrays that a node masks as a whole
(:class:`genofed.protocol.aggregation.MaskedRound`):

``null``
    C'C, C'y, y'y and n of the study's samples.
``block/<i>``
    C'g, g'g, g'y and the count of missing calls of each variant in block i.
``block/<i>/missing``
    For the variants the coordinator selects (those with a missing call
    anywhere in the federation), the missing-call samples' own c c' (upper
    triangle), c y and y^2. Every node answers for the same selection, so the
    masked arrays have the same shape everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.linreg import NullSums, VariantSums

__all__ = [
    "block_arrays",
    "missing_arrays",
    "null_arrays",
    "null_from_totals",
    "variant_sums_from_totals",
]

FloatArray = npt.NDArray[np.float64]
Arrays = dict[str, npt.NDArray[np.generic]]


def null_arrays(sums: NullSums) -> Arrays:
    """C'C, C'y, y'y and n of one node."""
    return {
        "ctc": sums.ctc,
        "cty": sums.cty,
        "yty": np.asarray(sums.yty),
        "n": np.asarray(sums.n, dtype=np.int64),
    }


def block_arrays(sums: VariantSums) -> Arrays:
    """Return the per-variant sums of one block that every variant needs."""
    return {"ctg": sums.ctg, "gtg": sums.gtg, "gty": sums.gty, "n_missing": sums.n_missing}


def missing_arrays(sums: VariantSums | None, rows: npt.NDArray[np.intp], *, k: int) -> Arrays:
    """Return the missing-call sums of the block's variants ``rows``; c c' as its upper triangle.

    ``sums`` is None for a block in which this node has no missing call: zeros.
    """
    upper = np.triu_indices(k)
    if sums is None:
        return {
            "missing_ctc": np.zeros((len(rows), len(upper[0]))),
            "missing_cty": np.zeros((len(rows), k)),
            "missing_yty": np.zeros(len(rows)),
        }
    return {
        "missing_ctc": sums.missing_ctc[rows][:, upper[0], upper[1]],
        "missing_cty": sums.missing_cty[rows],
        "missing_yty": sums.missing_yty[rows],
    }


def null_from_totals(totals: Mapping[str, FloatArray], *, k: int) -> NullSums:
    """Return the federation's null sums from the unmasked totals of ``null``."""
    arrays = _expect(totals, {"ctc": (k, k), "cty": (k,), "yty": (), "n": ()})
    return NullSums(arrays["ctc"], arrays["cty"], float(arrays["yty"]), int(arrays["n"]))


def variant_sums_from_totals(
    block: Mapping[str, FloatArray],
    missing: Mapping[str, FloatArray] | None,
    rows: npt.NDArray[np.intp],
    *,
    variants: int,
    k: int,
) -> VariantSums:
    """Return the federation's sums of one block from the totals of its parts.

    ``missing`` holds the totals of ``block/<i>/missing`` for the variants
    ``rows``, or None when no variant of the block has a missing call.
    """
    arrays = _expect(
        block,
        {"ctg": (variants, k), "gtg": (variants,), "gty": (variants,), "n_missing": (variants,)},
    )
    missing_ctc = np.zeros((variants, k, k))
    missing_cty = np.zeros((variants, k))
    missing_yty = np.zeros(variants)
    if missing is not None:
        width = k * (k + 1) // 2
        selected = _expect(
            missing,
            {
                "missing_ctc": (len(rows), width),
                "missing_cty": (len(rows), k),
                "missing_yty": (len(rows),),
            },
        )
        upper = np.triu_indices(k)
        triangle = selected["missing_ctc"]
        missing_ctc[rows[:, None], upper[0], upper[1]] = triangle
        missing_ctc[rows[:, None], upper[1], upper[0]] = triangle
        missing_cty[rows] = selected["missing_cty"]
        missing_yty[rows] = selected["missing_yty"]
    return VariantSums(
        ctg=arrays["ctg"],
        gtg=arrays["gtg"],
        gty=arrays["gty"],
        missing_ctc=missing_ctc,
        missing_cty=missing_cty,
        missing_yty=missing_yty,
        n_missing=np.rint(arrays["n_missing"]).astype(np.int64),
    )


def _expect(
    arrays: Mapping[str, FloatArray], shapes: dict[str, tuple[int, ...]]
) -> dict[str, FloatArray]:
    if set(arrays) != set(shapes):
        raise ProtocolError(f"expected arrays {sorted(shapes)}, received {sorted(arrays)}")
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise ProtocolError(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
    return dict(arrays)
