"""Arrays on the wire: an uncompressed ``.npz`` archive of ``.npy`` members, never pickle."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from genofed.errors import ProtocolError

__all__ = ["ARRAY_MEDIA_TYPE", "decode_arrays", "encode_arrays"]

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
