"""Arrays on the wire: an uncompressed ``.npz`` archive of ``.npy`` members, never pickle."""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError

__all__ = ["ARRAY_MEDIA_TYPE", "block_rows", "decode_arrays", "encode_arrays"]

ARRAY_MEDIA_TYPE = "application/vnd.genofed.arrays+npz"


def encode_arrays(arrays: Mapping[str, npt.ArrayLike]) -> bytes:
    """Pack named numeric or string arrays into bytes."""
    buffer = io.BytesIO()
    packed = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in packed.items():
        if value.dtype.hasobject:
            raise TypeError(f"array {name!r} has object dtype, which cannot travel safely")
    np.savez(buffer, allow_pickle=False, **packed)
    return buffer.getvalue()


def decode_arrays(payload: bytes) -> dict[str, npt.NDArray[np.generic]]:
    """Unpack :func:`encode_arrays` output; object arrays and pickles are refused."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ProtocolError(f"malformed array payload ({len(payload)} bytes): {exc}") from exc


def block_rows(
    values: npt.NDArray[np.generic] | None, *, width: int, what: str
) -> npt.NDArray[np.intp]:
    """Check that ``values`` are increasing row indices of a block of ``width`` variants.

    Raises
    ------
    ProtocolError
        If they are missing, empty, not integers, or not increasing below ``width``;
        ``what`` names the request in the message.
    """
    if (
        values is None
        or values.ndim != 1
        or values.dtype.kind not in "iu"
        or len(values) == 0
        or any(b <= a for a, b in itertools.pairwise(values.tolist()))
        or values[0] < 0
        or values[-1] >= width
    ):
        raise ProtocolError(
            f"{what} is asked for with 'variants': increasing indices below {width}, "
            "the block's width"
        )
    return values.astype(np.intp)
