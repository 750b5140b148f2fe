"""The wire form of the linear-regression sums (``linear-gwas`` version 1)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError
from genofed.kernels.linreg import NullSums, VariantSums
from genofed.protocol.codec import decode_arrays, encode_arrays

__all__ = ["decode_null_sums", "decode_variant_sums", "encode_null_sums", "encode_variant_sums"]

_MISSING_FIELDS = ("missing_ctc", "missing_cty", "missing_yty")


def encode_null_sums(sums: NullSums) -> bytes:
    """Pack C'C, C'y, y'y and n."""
    return encode_arrays({"ctc": sums.ctc, "cty": sums.cty, "yty": sums.yty, "n": sums.n})


def decode_null_sums(payload: bytes, *, k: int) -> NullSums:
    """Unpack and check the shapes of :func:`encode_null_sums` output for ``k`` columns."""
    arrays = _expect(decode_arrays(payload), {"ctc": (k, k), "cty": (k,), "yty": (), "n": ()})
    return NullSums(
        arrays["ctc"].astype(np.float64),
        arrays["cty"].astype(np.float64),
        float(arrays["yty"]),
        int(arrays["n"]),
    )


def encode_variant_sums(sums: VariantSums) -> bytes:
    """Pack one block's sums; the missing-call sums are left out when no call is missing."""
    arrays: dict[str, npt.NDArray[np.generic]] = {
        "ctg": sums.ctg,
        "gtg": sums.gtg,
        "gty": sums.gty,
        "n_missing": sums.n_missing,
    }
    if sums.n_missing.any():
        arrays.update({name: getattr(sums, name) for name in _MISSING_FIELDS})
    return encode_arrays(arrays)


def decode_variant_sums(payload: bytes, *, variants: int, k: int) -> VariantSums:
    """Unpack :func:`encode_variant_sums` output for a block of ``variants`` variants."""
    shapes = {"ctg": (variants, k), "gtg": (variants,), "gty": (variants,)}
    shapes["n_missing"] = (variants,)
    arrays = decode_arrays(payload)
    if "missing_ctc" in arrays:
        shapes.update(
            missing_ctc=(variants, k, k), missing_cty=(variants, k), missing_yty=(variants,)
        )
    arrays = _expect(arrays, shapes)
    if "missing_ctc" not in arrays:
        arrays.update(
            missing_ctc=np.zeros((variants, k, k)),
            missing_cty=np.zeros((variants, k)),
            missing_yty=np.zeros(variants),
        )
    return VariantSums(
        **{name: arrays[name].astype(np.float64) for name in ("ctg", "gtg", "gty")},
        **{name: arrays[name].astype(np.float64) for name in _MISSING_FIELDS},
        n_missing=arrays["n_missing"].astype(np.int64),
    )


def _expect(
    arrays: dict[str, npt.NDArray[np.generic]], shapes: dict[str, tuple[int, ...]]
) -> dict[str, npt.NDArray[np.generic]]:
    if set(arrays) != set(shapes):
        raise ProtocolError(f"expected arrays {sorted(shapes)}, received {sorted(arrays)}")
    for name, shape in shapes.items():
        if arrays[name].shape != shape or arrays[name].dtype.kind not in "iuf":
            raise ProtocolError(
                f"array {name!r} is {arrays[name].dtype}{arrays[name].shape}, expected "
                f"numbers of shape {shape}"
            )
    return arrays
