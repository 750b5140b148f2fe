"""Compiled loops of the packed-genotype linear-regression kernel.

The public entry point is :func:`genofed.kernels.linreg.local_variant_sums_packed`;
this module holds only the numba code it calls.

A PLINK .bed row stores four samples per byte, two bits each, lowest bits
first. For a byte position ``p`` the four samples ``4p .. 4p+3`` and their 256
possible bytes give a table ``T_p[b] = sum_j value(b, j) * rows[4p + j]``, so
that a variant's sums ``[C'g, y'g]`` are ``sum_p T_p[packed[v, p]]``: one table
row per byte instead of four decoded genotypes. Tables are built for ``CHUNK``
consecutive byte positions at a time and reused by every variant of a tile.

The genotype counts (hence ``g'g``) and the missing calls are found 32
samples at a time with bit operations on 64-bit words. Missing calls
contribute nothing to the genotype sums; for each missing call of a sample in
the analysis, that sample's precomputed row of missing-call sums
(``c c'`` upper triangle, ``c y``, ``y^2``) is added to the variant.

Rows are added as ``<4 x double>`` vectors through small LLVM intrinsics,
because numba does not vectorise loops over short rows. Every row width is
therefore a multiple of ``LANES``, and the intrinsics trust their offsets:
callers keep them in bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.extending import intrinsic

LANES = 4  # doubles per vector row operation
CHUNK = 8  # byte positions per table set, read as one 64-bit word
VARIANT_TILE = 2048  # variants that share one table set
MISSING_TILE = 256  # variants whose missing-call sums are gathered together
BYTE = np.uint64(0xFF)
ONE = np.uint64(1)

# Weight of each 2-bit code in the genotype sums: 0b00 -> 2 copies of
# allele_1, 0b10 -> 1, 0b11 -> 0, 0b01 (missing) -> 0.
CODE_VALUE = np.array([2.0, 0.0, 1.0, 0.0])


def _row_sum_intrinsic(accumulate: bool) -> Any:
    """Make an intrinsic that writes (or adds) sums of rows of ``src`` into ``dst``.

    ``f(dst, dst_offset, src, offsets, lanes)`` takes 1-D float64 arrays, a
    homogeneous tuple of int64 row offsets into ``src`` and a tuple whose length
    ``n`` fixes the row width ``LANES * n`` at compile time. It sets
    ``dst[dst_offset : dst_offset + LANES * n]`` to the sum of the rows
    ``src[o : o + LANES * n]`` (plus its old value when ``accumulate``).
    """

    def row_sum(
        typingctx: Any, dst: Any, dst_offset: Any, src: Any, offsets: Any, lanes: Any
    ) -> Any:
        arrays_ok = all(
            isinstance(a, types.Array) and a.dtype == types.float64 and a.ndim == 1
            for a in (dst, src)
        )
        tuples_ok = isinstance(offsets, types.UniTuple) and isinstance(lanes, types.UniTuple)
        if not (arrays_ok and tuples_ok):
            return None
        signature = types.void(dst, dst_offset, src, offsets, lanes)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            dst_type, _, src_type, offsets_type, lanes_type = sig.args
            dst_data = context.make_array(dst_type)(context, builder, args[0]).data
            src_data = context.make_array(src_type)(context, builder, args[2]).data
            vector = ir.VectorType(ir.DoubleType(), LANES).as_pointer()
            index = args[1].type
            rows = [builder.extract_value(args[3], i) for i in range(offsets_type.count)]
            for lane in range(lanes_type.count):
                shift = ir.Constant(index, lane * LANES)
                terms = []
                for row in rows:
                    address = builder.gep(src_data, [builder.add(row, shift)], inbounds=True)
                    terms.append(builder.load(builder.bitcast(address, vector), align=8))
                while len(terms) > 1:  # pairwise, so that the adds run in parallel
                    pairs = [
                        builder.fadd(a, b) for a, b in zip(terms[::2], terms[1::2], strict=False)
                    ]
                    terms = pairs + terms[len(pairs) * 2 :]
                target = builder.gep(dst_data, [builder.add(args[1], shift)], inbounds=True)
                target = builder.bitcast(target, vector)
                total = terms[0]
                if accumulate:
                    total = builder.fadd(builder.load(target, align=8), total)
                builder.store(total, target, align=8)
            return context.get_dummy_value()

        return signature, codegen

    row_sum.__name__ = row_sum.__qualname__ = "add_rows" if accumulate else "set_rows"
    return intrinsic(row_sum)


_add_rows: Any = _row_sum_intrinsic(accumulate=True)
_set_rows: Any = _row_sum_intrinsic(accumulate=False)


def _load_word_typing(typingctx: Any, data: Any, offset: Any) -> Any:
    """Type ``_load_word``: eight bytes of a 1-D uint8 array from ``offset`` on, as a uint64."""
    if not (isinstance(data, types.Array) and data.dtype == types.uint8 and data.ndim == 1):
        return None
    signature = types.uint64(data, offset)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        base = context.make_array(sig.args[0])(context, builder, args[0]).data
        address = builder.gep(base, [args[1]], inbounds=True)
        word = builder.bitcast(address, ir.IntType(64).as_pointer())
        return builder.load(word, align=1)

    return signature, codegen


def _popcount_typing(typingctx: Any, word: Any) -> Any:
    """Type ``_popcount``: the number of set bits of a uint64."""
    if word != types.uint64:
        return None
    signature = types.int64(word)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return signature, codegen


def _trailing_zeros_typing(typingctx: Any, word: Any) -> Any:
    """Type ``_trailing_zeros``: the index of the lowest set bit of a non-zero uint64."""
    if word != types.uint64:
        return None
    signature = types.int64(word)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return signature, codegen


_load_word: Any = intrinsic(_load_word_typing)
_popcount: Any = intrinsic(_popcount_typing)
_trailing_zeros: Any = intrinsic(_trailing_zeros_typing)


@njit(cache=True, nogil=True)
def _build_tables(
    genotype_rows: np.ndarray,
    first: int,
    count: int,
    lanes: tuple[int, ...],
    halves: np.ndarray,
    tables: np.ndarray,
) -> None:
    """Tables of byte positions ``first .. first+count-1`` into ``tables``.

    ``genotype_rows`` holds, for each sample ``s`` and code ``c``, the row
    ``value(c) * rows[s]`` at offset ``(4 s + c) * width``. A byte's low nibble
    covers samples 0-1 and its high nibble samples 2-3, so each table is the
    sum of two 16-row half tables.
    """
    width = LANES * len(lanes)
    for position in range(count):
        sample = 4 * (first + position)
        for nibble in range(16):
            slot_0 = (4 * sample + (nibble & 3)) * width
            slot_1 = (4 * sample + 4 + (nibble >> 2)) * width
            _set_rows(halves, nibble * width, genotype_rows, (slot_0, slot_1), lanes)
            _set_rows(
                halves,
                (16 + nibble) * width,
                genotype_rows,
                (slot_0 + 8 * width, slot_1 + 8 * width),
                lanes,
            )
        base = position * 256 * width
        for byte in range(256):
            _set_rows(
                tables,
                base + byte * width,
                halves,
                ((byte & 15) * width, (16 + (byte >> 4)) * width),
                lanes,
            )


@njit(cache=True, nogil=True)
def _genotype_sums(
    packed: np.ndarray,
    n_variants: int,
    bytes_per_variant: int,
    genotype_rows: np.ndarray,
    lanes: tuple[int, ...],
) -> np.ndarray:
    """``sum_p T_p[packed[v, p]]`` for every variant, flattened ``(n_variants, width)``."""
    width = LANES * len(lanes)
    sums = np.zeros(n_variants * width)
    full_chunks = bytes_per_variant // CHUNK
    tail = full_chunks * CHUNK
    tables = np.empty(CHUNK * 256 * width)
    halves = np.empty(32 * width)
    for tile_start in range(0, n_variants, VARIANT_TILE):
        tile_stop = min(n_variants, tile_start + VARIANT_TILE)
        for chunk in range(full_chunks):
            first = chunk * CHUNK
            _build_tables(genotype_rows, first, CHUNK, lanes, halves, tables)
            for variant in range(tile_start, tile_stop):
                word = _load_word(packed, variant * bytes_per_variant + first)
                rows = (
                    np.int64(word & BYTE) * width,
                    (256 + np.int64((word >> np.uint64(8)) & BYTE)) * width,
                    (512 + np.int64((word >> np.uint64(16)) & BYTE)) * width,
                    (768 + np.int64((word >> np.uint64(24)) & BYTE)) * width,
                    (1024 + np.int64((word >> np.uint64(32)) & BYTE)) * width,
                    (1280 + np.int64((word >> np.uint64(40)) & BYTE)) * width,
                    (1536 + np.int64((word >> np.uint64(48)) & BYTE)) * width,
                    (1792 + np.int64(word >> np.uint64(56))) * width,
                )
                _add_rows(sums, variant * width, tables, rows, lanes)
        if tail < bytes_per_variant:
            _build_tables(genotype_rows, tail, bytes_per_variant - tail, lanes, halves, tables)
            for variant in range(tile_start, tile_stop):
                for position in range(tail, bytes_per_variant):
                    byte = np.int64(packed[variant * bytes_per_variant + position])
                    row = ((position - tail) * 256 + byte) * width
                    _add_rows(sums, variant * width, tables, (row,), lanes)
    return sums


@njit(cache=True, nogil=True, inline="always")
def _word_at(
    packed: np.ndarray, variant: int, bytes_per_variant: int, chunk: int, full_chunks: int
) -> np.uint64:
    """Return the 64-bit word ``chunk`` of a variant's row; the last one may be partial."""
    start = variant * bytes_per_variant + chunk * CHUNK
    word: np.uint64 = np.uint64(0)
    if chunk < full_chunks:
        word = _load_word(packed, start)
        return word
    for byte in range(bytes_per_variant - chunk * CHUNK):
        word |= np.uint64(packed[start + byte]) << np.uint64(8 * byte)
    return word


@njit(cache=True, nogil=True)
def _genotype_counts(
    packed: np.ndarray, n_variants: int, bytes_per_variant: int, included_words: np.ndarray
) -> np.ndarray:
    """Per variant, the included samples with 2, 1 and a missing ALT count: ``(n_variants, 3)``."""
    full_chunks = bytes_per_variant // CHUNK
    counts = np.zeros((n_variants, 3), dtype=np.int64)
    for variant in range(n_variants):
        homozygous = 0
        heterozygous = 0
        missing = 0
        for chunk in range(len(included_words)):
            word = _word_at(packed, variant, bytes_per_variant, chunk, full_chunks)
            included = included_words[chunk]
            high = word >> ONE
            homozygous += _popcount(~(word | high) & included)  # 0b00
            heterozygous += _popcount(high & ~word & included)  # 0b10
            missing += _popcount(word & ~high & included)  # 0b01
        counts[variant, 0] = homozygous
        counts[variant, 1] = heterozygous
        counts[variant, 2] = missing
    return counts


@njit(cache=True, nogil=True)
def _missing_sums(
    packed: np.ndarray,
    n_variants: int,
    bytes_per_variant: int,
    included_words: np.ndarray,
    n_missing: np.ndarray,
    missing_rows: np.ndarray,
    lanes: tuple[int, ...],
) -> np.ndarray:
    """Per variant, the sum of the missing-call rows of its missing samples."""
    width = LANES * len(lanes)
    full_chunks = bytes_per_variant // CHUNK
    sums = np.zeros(n_variants * width)
    for tile_start in range(0, n_variants, MISSING_TILE):
        tile_stop = min(n_variants, tile_start + MISSING_TILE)
        if not n_missing[tile_start:tile_stop].any():
            continue
        for chunk in range(len(included_words)):
            included = included_words[chunk]
            for variant in range(tile_start, tile_stop):
                if n_missing[variant] == 0:
                    continue
                word = _word_at(packed, variant, bytes_per_variant, chunk, full_chunks)
                calls = word & ~(word >> ONE) & included
                while calls:
                    sample = 32 * chunk + _trailing_zeros(calls) // 2
                    _add_rows(sums, variant * width, missing_rows, (sample * width,), lanes)
                    calls &= calls - ONE
    return sums


@njit(cache=True, nogil=True)
def packed_variant_sums(
    packed: np.ndarray,
    n_variants: int,
    bytes_per_variant: int,
    genotype_rows: np.ndarray,
    lanes: tuple[int, ...],
    missing_rows: np.ndarray,
    missing_lanes: tuple[int, ...],
    included_words: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-variant genotype sums, genotype counts and missing-call sums of packed rows.

    Parameters
    ----------
    packed
        The block's .bed rows, flattened: ``n_variants * bytes_per_variant`` bytes.
    n_variants, bytes_per_variant
        The block's shape.
    genotype_rows
        Value-weighted sample rows (see :func:`_build_tables`).
    lanes
        A tuple with one entry per ``LANES`` columns of the genotype sums; its
        length is the compile-time row width.
    missing_rows
        Each sample's row of missing-call sums.
    missing_lanes
        Likewise for the missing-call sums.
    included_words
        Per 8 bytes of a row, the low bit of every 2-bit genotype of a sample
        in the analysis; the genotypes of other samples are ignored.

    Returns
    -------
    sums, counts, missing
        ``(n_variants, width)`` genotype sums, ``(n_variants, 3)`` counts of
        ALT homozygotes, heterozygotes and missing calls, and
        ``(n_variants, missing_width)`` missing-call sums.
    """
    sums = _genotype_sums(packed, n_variants, bytes_per_variant, genotype_rows, lanes)
    counts = _genotype_counts(packed, n_variants, bytes_per_variant, included_words)
    missing = _missing_sums(
        packed,
        n_variants,
        bytes_per_variant,
        included_words,
        counts[:, 2],
        missing_rows,
        missing_lanes,
    )
    return (
        sums.reshape(n_variants, LANES * len(lanes)),
        counts,
        missing.reshape(n_variants, LANES * len(missing_lanes)),
    )
