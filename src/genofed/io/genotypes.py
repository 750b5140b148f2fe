"""Blocks of variants from a PLINK 1 file set, read in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from bed_reader import open_bed

from genofed.io.plink import MISSING_CALL

__all__ = ["MISSING_CALL", "read_variant_blocks"]


def read_variant_blocks(
    bed: Path,
    *,
    samples: npt.NDArray[np.intp] | None = None,
    block_size: int = 1024,
) -> Iterator[npt.NDArray[np.int8]]:
    """Yield (samples x variants) int8 ALT counts, ``MISSING_CALL`` where missing.

    Only one block is in memory at a time; ``samples`` picks and orders rows.
    """
    with open_bed(Path(bed)) as reader:
        rows = np.s_[:] if samples is None else samples
        for start in range(0, reader.sid_count, block_size):
            stop = min(start + block_size, reader.sid_count)
            yield reader.read(index=np.s_[rows, start:stop], dtype="int8")
