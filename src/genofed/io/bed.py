"""The packed 2-bit rows of a PLINK 1 .bed file, memory-mapped and handed out in blocks.

A SNP-major .bed file is three magic bytes (``6c 1b 01``) followed by one row
per variant of ``ceil(n_samples / 4)`` bytes. Each byte holds four samples,
two bits each, lowest bits first: ``00`` homozygous for allele_1 (the counted
ALT allele, two copies), ``10`` heterozygous, ``11`` homozygous for allele_2,
``01`` missing. The unused bits of a row's last byte are padding.
:func:`genofed.kernels.linreg.local_variant_sums_packed` reads these rows
without decoding them.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from numba import njit

from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL

__all__ = ["BED_MAGIC", "PackedBed", "count_lines", "decode_rows"]

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])  # PLINK 1 .bed, SNP-major


def _decoding_table() -> npt.NDArray[np.int8]:
    """Byte value -> the ALT counts of its four samples (lowest bits first)."""
    codes = {0b00: 2, 0b01: int(MISSING_CALL), 0b10: 1, 0b11: 0}
    table = np.empty((256, 4), dtype=np.int8)
    for byte in range(256):
        table[byte] = [codes[(byte >> (2 * j)) & 0b11] for j in range(4)]
    return table


_DECODING = _decoding_table()


def decode_rows(
    block: npt.NDArray[np.uint8], n_samples: int, samples: npt.NDArray[np.intp] | None = None
) -> npt.NDArray[np.int8]:
    """Decode packed rows into ``(variants, samples)`` int8 ALT counts, -127 where missing.

    ``samples`` selects and orders the samples (.fam rows); all of them by default.
    """
    if samples is None:
        return _DECODING[block].reshape(len(block), -1)[:, :n_samples]
    out = np.empty((len(block), len(samples)), dtype=np.int8)
    _decode_samples(np.ascontiguousarray(block), np.asarray(samples, dtype=np.intp), out)
    return out


@njit(cache=True, nogil=True)
def _decode_samples(block: np.ndarray, samples: np.ndarray, out: np.ndarray) -> None:
    """Decode the 2-bit codes of ``samples`` in every row of ``block`` into ``out``."""
    values = np.array([2, MISSING_CALL, 1, 0], dtype=np.int8)  # by 2-bit code
    for v in range(block.shape[0]):
        for t in range(samples.shape[0]):
            s = samples[t]
            out[v, t] = values[(block[v, s >> 2] >> (2 * (s & 3))) & 3]


def count_lines(path: Path) -> int:
    """Count the lines of a text file (a last line without a newline counts), in chunks."""
    lines, last = 0, b"\n"
    try:
        with Path(path).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    return lines + (last != b"\n")


class PackedBed:
    """A read-only memory map of a SNP-major .bed file, one row of bytes per variant.

    Parameters
    ----------
    bed
        The .bed file.
    n_samples, n_variants
        The file's shape; when omitted, the line counts of the .fam and .bim
        files next to it.

    Raises
    ------
    InputError
        If a file cannot be read, the magic bytes are not those of a SNP-major
        .bed file, or the size is not ``3 + n_variants * ceil(n_samples / 4)``.

    Notes
    -----
    Nothing is read up front: pages are read from disk when a block is used.
    Pages stay resident (and count towards the process's memory) until
    :meth:`release` or :meth:`close`; :meth:`blocks` releases each block when
    the next one is requested, so a pass over the file keeps about one block
    resident. A block stays valid after :meth:`release` and :meth:`close`.
    """

    def __init__(
        self, bed: Path, *, n_samples: int | None = None, n_variants: int | None = None
    ) -> None:
        self.path = Path(bed)
        if n_samples is None:
            n_samples = count_lines(self.path.with_suffix(".fam"))
        if n_variants is None:
            n_variants = count_lines(self.path.with_suffix(".bim"))
        if n_samples < 0 or n_variants < 0:
            raise InputError(f"{self.path}: negative shape {n_samples} x {n_variants}")
        self.n_samples = n_samples
        self.n_variants = n_variants
        self.bytes_per_variant = -(-n_samples // 4)
        expected = len(BED_MAGIC) + n_variants * self.bytes_per_variant
        try:
            with self.path.open("rb") as handle:
                magic = handle.read(len(BED_MAGIC))
                size = os.fstat(handle.fileno()).st_size
                self._check(magic, size, expected)
                self._map: mmap.mmap | None = None
                rows = np.zeros((n_variants, self.bytes_per_variant), dtype=np.uint8)
                if expected > len(BED_MAGIC):
                    self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                    rows = np.frombuffer(self._map, dtype=np.uint8, offset=len(BED_MAGIC))
        except OSError as exc:
            raise InputError(f"cannot read .bed file {self.path}: {exc}") from exc
        self._rows = rows.reshape(n_variants, self.bytes_per_variant)

    def _check(self, magic: bytes, size: int, expected: int) -> None:
        if magic[:2] != BED_MAGIC[:2]:
            found = magic.hex(" ") or "nothing"
            raise InputError(
                f"{self.path} is not a PLINK .bed file: it starts with {found}, "
                f"not {BED_MAGIC[:2].hex(' ')}"
            )
        if magic[2:] != BED_MAGIC[2:]:
            raise InputError(
                f"{self.path} is an individual-major .bed file (mode byte {magic[2:].hex()}); "
                "genofed reads SNP-major files: rewrite it with plink --make-bed"
            )
        if size != expected:
            state = "truncated" if size < expected else "longer than expected"
            raise InputError(
                f"{self.path} is {state}: {size:,} bytes, but {self.n_variants:,} variants x "
                f"{self.n_samples:,} samples need {expected:,} (3 + {self.n_variants:,} x "
                f"{self.bytes_per_variant:,}); check the file and its .bim/.fam"
            )

    def block(self, start: int, stop: int) -> npt.NDArray[np.uint8]:
        """Rows ``start .. stop-1``: a read-only ``(stop - start, bytes_per_variant)`` view.

        Raises
        ------
        InputError
            If the range is not within ``0 .. n_variants``.
        """
        if not 0 <= start <= stop <= self.n_variants:
            raise InputError(
                f"variants {start}..{stop} are outside {self.path} ({self.n_variants} variants)"
            )
        return self._rows[start:stop]

    def blocks(self, block_size: int) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
        """Yield ``(start, block)`` over all variants, releasing each block after use."""
        if block_size < 1:
            raise InputError(f"block size must be at least 1, got {block_size}")
        for start in range(0, self.n_variants, block_size):
            stop = min(start + block_size, self.n_variants)
            yield start, self.block(start, stop)
            self.release(start, stop)

    def release(self, start: int, stop: int) -> None:
        """Let the operating system drop the resident pages of rows ``start .. stop-1``.

        The rows stay readable: they are read from disk again if used.
        """
        if self._map is None or stop <= start or not hasattr(mmap, "MADV_DONTNEED"):
            return
        first = len(BED_MAGIC) + start * self.bytes_per_variant
        last = len(BED_MAGIC) + stop * self.bytes_per_variant
        first -= first % mmap.PAGESIZE
        self._map.madvise(mmap.MADV_DONTNEED, first, min(last, len(self._map)) - first)

    def close(self) -> None:
        """Unmap the file once no block refers to it any more."""
        self._rows = np.zeros((0, self.bytes_per_variant), dtype=np.uint8)
        if self._map is not None:
            with contextlib.suppress(BufferError):  # blocks in use keep the mapping alive
                self._map.close()
            self._map = None

    def __enter__(self) -> PackedBed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        shape = f"{self.n_samples} samples, {self.n_variants} variants"
        return f"PackedBed({str(self.path)!r}, {shape})"
