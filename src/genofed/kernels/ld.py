"""LD pruning with the meaning of PLINK 2 ``--indep-pairwise``, from additive pair sums.

The split
---------
PLINK 2 compares two variants ``a`` and ``b`` by the squared correlation of
their ALT counts over the samples called at both. That needs, per pair, the
number of such samples ``n``, the sums of ``g_a``, ``g_a**2``, ``g_b``,
``g_b**2`` over them and the sum of ``g_a g_b``: six integers that add over
disjoint sets of samples. Each node runs :func:`local_ld_sums` on its own
samples and sends an :class:`LdSums` (every pair within ``window - 1``
variants of each other, as ``(variants, window - 1)`` int64 arrays); the
coordinator adds them field by field and calls :func:`prune`, which replays
PLINK 2's greedy scan on the totals. Nothing but integer sums leaves a node,
and since the sums are exact the keep mask is exactly PLINK 2's on the pooled
samples.

Blocks of variants: for the variants ``[start, stop)`` of a file with ``V``
variants, a node passes the rows ``[start, min(stop + window - 1, V))`` with
``n_first = stop - start``. The sums then cover every pair whose first variant
is in the block, including pairs that reach into the next block, and
:func:`concatenate_ld_sums` of the blocks in order equals the sums of the
whole file in one block. The sums take ``48 (window - 1)`` bytes per variant
(48 MB per 1,000 variants for a window of 1,000); windows never cross
chromosomes, so the coordinator can prune one chromosome at a time.

PLINK 2 rules matched (plink2 v2.00a3.5, 9 Aug 2022)
----------------------------------------------------
Source references are to ``2.0/plink2_ld.cc`` of ``chrchang/plink-ng``;
each rule was also checked on simulated data against the 2.00a3.5 binary.

* r²: hard calls only, over the samples called at both variants (pairwise
  complete), founders only (every sample here is a founder).
  ``ComputeIndepPairwiseR2Components()`` forms, in int64, ``cov = n Σab -
  Σa Σb`` and ``var_x = n Σx² - (Σx)²``, and a pair is in LD when, in
  float64, ``cov * cov > (r2 * (1 + 2**-44)) * var_a * var_b``. PLINK
  codes genotypes as -1/0/+1 around the major allele; these integers equal
  ALT-count ones up to sign, so the comparison is the same to the last bit.
* A variant whose calls are all equal (all 0, all 1 or all 2) or that has no
  call is removed before any comparison (``FillVaggs()`` and the check after
  it), unless it is alone in its subcontig (below).
* Windows never cross chromosomes. ``LdPruneSubcontigSplitAll()`` makes one
  subcontig per chromosome, or with a kb window splits chromosomes where two
  neighbours are more than the window apart; subcontigs of one variant are
  never loaded, so such a variant is kept even when monomorphic.
* Windows in variant counts: the first window is the first ``window``
  variants of the subcontig; each next one starts ``step`` variants later and
  ends ``window`` variants after its start (or at the subcontig's end), until
  a window has reached the end (``LdPruneNextWindow()``). PLINK requires
  ``1 <= step <= window`` and ``0 <= r2 < 1``.
* Windows in kb: ``window_kb * 1000`` is truncated to whole base pairs
  (``1.001kb`` is 1001 bp although ``1.001 * 1000`` is 1000.9999999999999
  in float64, and ``1.000999999999kb`` is 1000 bp; checked on the binary, so
  this module takes ``int(window_kb * 1000 * (1 + 2**-44))``), must be at
  least 2 bp, and the step must be 1. A window holds the variants within
  ``window_bp`` of its first one; the next window's start moves on by at
  least one variant until it is within ``window_bp`` of the first variant the
  last window left out, and its end then takes in every variant within
  ``window_bp`` of the new start (``LdPruneNextSubcontig()``,
  ``LdPruneNextWindow()``).
* The greedy scan is the forward one in ``IndepPairwiseThread()`` of the
  2020-2022 source. (Sources from 2023 scan each window in reverse by
  default and keep this order behind a ``plink1-order`` modifier; on the test
  data the reverse scan keeps other variants, the forward one matches
  2.00a3.5 exactly.) When a window is full: for each kept variant ``f`` in
  window order, walk the kept variants after it, starting from the first one
  ``f`` has not been compared with. At the first pair in LD, remove ``f`` if
  its major-allele frequency is above the other's times ``1 + 2**-44``
  (``f`` has the lower minor allele frequency), else remove the other (so a
  tie removes the later variant) and note where ``f`` stopped; then go on
  with the next ``f``. Passes repeat until one removes nothing; then the
  window moves. Removed variants never come back and no pair is compared
  twice.
* Major-allele frequencies are those of each variant's own calls. Frequencies
  are compared with a relative tolerance of ``2**-44``, so PLINK's rounding
  and this module's agree whenever distinct frequencies differ by more than
  that, which holds below about two million called samples.

Only autosomes are handled: PLINK weighs chrX by sex, sets haploid
heterozygous calls missing and skips chromosome 0, none of which is done here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from numba import njit
from numpy.lib.stride_tricks import as_strided

from genofed.errors import InputError
from genofed.kernels._sums import Summable

__all__ = [
    "LdSums",
    "concatenate_ld_sums",
    "kb_window_size",
    "local_ld_sums",
    "prune",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EPSILON = 2.0**-44  # PLINK 2's kSmallEpsilon
ROW_TILE = 256  # first variants per matrix product
SLAB_TILES = 8  # tiles of rows converted to float32 at once
SAMPLE_CHUNK = 1 << 22  # float32 sums of products (at most 4 per sample) stay exact below 2**24
LINK_CHUNK = 4096  # first variants per r² comparison pass, bounding temporaries


@dataclass(frozen=True)
class LdSums(Summable):
    """Sums over one node's samples for every pair of variants less than ``window`` apart.

    Row ``a`` is a variant of the block; column ``k - 1`` of a pair array is
    the pair ``(a, a + k)`` for ``k = 1 .. window - 1``, restricted to the
    samples called at both. Pairs past the end of the data are all zero.
    """

    called: IntArray  # (variants,) samples with a call
    alt_sum: IntArray  # (variants,) sum of ALT counts g
    alt_sq_sum: IntArray  # (variants,) sum of g**2
    pair_called: IntArray  # (variants, window - 1) samples called at both
    pair_dot: IntArray  # sum of g_a g_b
    pair_first_sum: IntArray  # sum of g_a
    pair_first_sq_sum: IntArray  # sum of g_a**2
    pair_second_sum: IntArray  # sum of g_b
    pair_second_sq_sum: IntArray  # sum of g_b**2

    @property
    def window(self) -> int:
        """The largest window (in variants) these sums can prune with."""
        return int(self.pair_dot.shape[1]) + 1

    def __len__(self) -> int:
        return len(self.called)


def local_ld_sums(
    dosages: npt.NDArray[np.int8], *, window: int, n_first: int | None = None
) -> LdSums:
    """Sum over this node's samples for every pair less than ``window`` variants apart.

    Parameters
    ----------
    dosages
        ``(rows, samples)`` int8 ALT counts, variant-major, ``MISSING_CALL``
        (any negative code) where missing.
    window
        Pairs ``(a, a + k)`` with ``1 <= k < window`` are summed.
    n_first
        The first ``n_first`` rows are the block's variants (default: all
        rows); later rows only serve as second variants of pairs. For the
        block ``[start, stop)`` of a file, pass the rows ``[start, stop +
        window - 1)`` (fewer at the end of the file); rows beyond that are
        ignored.

    Returns
    -------
    LdSums
        With ``n_first`` rows, exact int64 sums.

    Raises
    ------
    InputError
        If ``dosages`` is not a 2-D int8 array, ``window < 1`` or ``n_first``
        is not a row count of the block.

    Notes
    -----
    The products ``Σ g_a g_b`` are float32 matrix products (OpenBLAS) of
    tiles of up to 256 first variants against the ``255 + window - 1`` rows they
    pair with; they are exact, as every partial sum is an integer below
    ``2**24``. For ``window = 1000`` that is 1.25 multiply-adds per sample and
    pair, measured at 0.028 ns per sample and pair on one AVX-512 core (0.017
    ns wall on two). Without missing calls the rest costs ``O(variants x
    window)``: 0.032 ns per sample and pair in all on one core, i.e. 3.2 s
    for 5,000 samples x 20,000 variants. Each missing call adds a compiled
    loop over the ``2 (window - 1)`` pairs it is part of, reading that
    sample's calls at the other variants (about 0.25 ns per missing call and
    pair); with 1% of calls missing the total was 0.047 ns per sample and
    pair.
    """
    if dosages.ndim != 2 or dosages.dtype != np.int8:
        raise InputError(
            f"dosages must be a 2-D int8 (variants x samples) array, got {dosages.ndim}-D "
            f"{dosages.dtype}; no LD sums were computed"
        )
    if window < 1:
        raise InputError(f"LD window must be at least 1 variant, got {window}")
    n_first = len(dosages) if n_first is None else n_first
    if not 0 <= n_first <= len(dosages):
        raise InputError(
            f"n_first = {n_first} is outside the {len(dosages)} rows of the block; "
            "no LD sums were computed"
        )
    lags = window - 1
    rows = dosages[: min(len(dosages), n_first + lags)]
    called, alt_sum, alt_sq_sum = _variant_sums(rows)
    dot = _pair_dot(rows, n_first, lags)
    pairs = {
        "pair_called": _broadcast(called[:n_first, None], lags),
        "pair_first_sum": _broadcast(alt_sum[:n_first, None], lags),
        "pair_first_sq_sum": _broadcast(alt_sq_sum[:n_first, None], lags),
        "pair_second_sum": _second(alt_sum, n_first, lags),
        "pair_second_sq_sum": _second(alt_sq_sum, n_first, lags),
    }
    _zero_past_end(pairs, len(rows), n_first, lags)
    if (rows < 0).any():
        _subtract_missing(pairs, rows, n_first, lags)
    return LdSums(
        called=called[:n_first],
        alt_sum=alt_sum[:n_first],
        alt_sq_sum=alt_sq_sum[:n_first],
        pair_dot=dot,
        **pairs,
    )


def concatenate_ld_sums(parts: Sequence[LdSums]) -> LdSums:
    """Join the sums of consecutive blocks of variants into the sums of the whole."""
    if not parts:
        raise InputError("no LD sums to concatenate")
    windows = sorted({part.window for part in parts})
    if len(windows) > 1:
        raise InputError(f"LD sums of different windows {windows} cannot be concatenated")
    joined = [
        np.concatenate([getattr(part, field.name) for part in parts]) for field in fields(LdSums)
    ]
    return LdSums(*joined)


def kb_window_size(
    chromosome: npt.NDArray[np.str_],
    bp_position: npt.NDArray[np.integer],
    *,
    window_kb: float,
) -> int:
    """Count the variants of the fullest ``window_kb`` window: the ``window`` nodes sum over."""
    starts, ends, _ = _kb_windows(chromosome, bp_position, _window_bp(window_kb))
    return int((ends - starts).max(initial=1))


def prune(
    sums: LdSums,
    chromosome: npt.NDArray[np.str_],
    *,
    r2_threshold: float,
    window: int | None = None,
    step: int = 1,
    window_kb: float | None = None,
    bp_position: npt.NDArray[np.integer] | None = None,
) -> BoolArray:
    """Which variants PLINK 2 ``--indep-pairwise`` keeps (its ``.prune.in``), in variant order.

    Parameters
    ----------
    sums
        The study-wide sums (every node's, added) of all variants, in file
        order, or of whole chromosomes.
    chromosome
        Each variant's chromosome; a chromosome's variants must be contiguous.
    r2_threshold
        Pairs with r² above it are pruned; ``0 <= r2_threshold < 1``.
    window, step
        Window and step in variants: ``--indep-pairwise <window> <step> <r2>``.
    window_kb, bp_position
        Instead of ``window``: ``--indep-pairwise <window_kb>kb 1 <r2>``, with
        each variant's position (sorted within chromosomes). ``sums`` must
        have been computed with ``window >= kb_window_size(...)``.

    Returns
    -------
    numpy.ndarray
        Boolean keep mask, one entry per variant.

    Raises
    ------
    InputError
        For parameters PLINK 2 rejects, sums with too small a window, or
        chromosomes that are not contiguous.
    """
    if not 0 <= r2_threshold < 1:
        raise InputError(f"r² threshold must be in [0, 1), got {r2_threshold}; nothing was pruned")
    if len(chromosome) != len(sums):
        raise InputError(
            f"{len(chromosome)} chromosome labels for {len(sums)} variants of LD sums; "
            "nothing was pruned"
        )
    starts, ends, new_run = _windows(chromosome, window, step, window_kb, bp_position)
    needed = int((ends - starts).max(initial=1))
    if needed > sums.window:
        raise InputError(
            f"windows hold up to {needed} variants but the LD sums cover a window of "
            f"{sums.window}; ask the nodes for window={needed}"
        )
    linked = _linked(sums, needed - 1, r2_threshold)
    informative = sums.called * sums.alt_sq_sum - sums.alt_sum * sums.alt_sum > 0
    major_freq = _major_freq(sums)
    return _greedy(linked, major_freq, informative, starts, ends, new_run)


# --------------------------------------------------------------------------- node side


def _variant_sums(rows: npt.NDArray[np.int8]) -> tuple[IntArray, IntArray, IntArray]:
    """Per row: called samples, sum of g and sum of g**2."""
    g = np.maximum(rows, 0)
    return (
        (rows >= 0).sum(axis=1, dtype=np.int64),
        g.sum(axis=1, dtype=np.int64),
        (g * g).sum(axis=1, dtype=np.int64),
    )


def _pair_dot(rows: npt.NDArray[np.int8], n_first: int, lags: int) -> IntArray:
    """``out[a, k - 1] = Σ g_a g_{a+k}`` (missing as 0) by float32 products of row tiles."""
    out = np.zeros((n_first, lags), dtype=np.int64)
    if lags == 0:
        return out
    n_rows, n_samples = rows.shape
    tile = max(64, min(ROW_TILE, lags))
    slab = SLAB_TILES * tile
    for s0 in range(0, n_samples, SAMPLE_CHUNK):
        s1 = min(n_samples, s0 + SAMPLE_CHUNK)
        for b0 in range(0, n_first, slab):
            g = np.maximum(rows[b0 : min(n_rows, b0 + slab + lags), s0:s1], 0).astype(np.float32)
            for r0 in range(b0, min(n_first, b0 + slab), tile):
                r1 = min(n_first, r0 + tile)
                pairs = g[r0 - b0 : r1 - b0] @ g[r0 - b0 + 1 : r1 - b0 + lags].T
                out[r0:r1] += _band(pairs, lags).astype(np.int64)
    return out


def _band(products: npt.NDArray[np.float32], lags: int) -> npt.NDArray[np.float32]:
    """From ``products[r, j]`` = pair ``(r, r + 1 + j)``, the ``(rows, lags)`` band by lag."""
    n, width = products.shape
    if width < n + lags - 1:
        products = np.pad(products, ((0, 0), (0, n + lags - 1 - width)))
    row, col = products.strides
    return as_strided(products, shape=(n, lags), strides=(row + col, col), writeable=False)


def _broadcast(column: IntArray, lags: int) -> IntArray:
    return np.repeat(column, lags, axis=1)


def _second(per_row: IntArray, n_first: int, lags: int) -> IntArray:
    """``out[a, k - 1] = per_row[a + k]``, zero past the last row."""
    padded = np.zeros(n_first + lags + 1, dtype=np.int64)
    padded[: len(per_row)] = per_row
    step = padded.strides[0]
    return as_strided(padded[1:], shape=(n_first, lags), strides=(step, step)).copy()


def _zero_past_end(pairs: dict[str, IntArray], n_rows: int, n_first: int, lags: int) -> None:
    """Zero the pairs whose second variant ``a + k`` is not among the rows."""
    if n_rows >= n_first + lags:
        return
    beyond = np.arange(n_first)[:, None] + np.arange(1, lags + 1)[None, :] >= n_rows
    if beyond.any():
        for values in pairs.values():
            values[beyond] = 0


def _subtract_missing(
    pairs: dict[str, IntArray], rows: npt.NDArray[np.int8], n_first: int, lags: int
) -> None:
    """Take the samples missing at the other variant of each pair out of its sums."""
    if lags == 0:
        return
    variants, samples = np.nonzero(rows < 0)
    used, sample_index = np.unique(samples, return_inverse=True)
    by_sample = np.ascontiguousarray(rows[:, used].T)
    by_second = [np.zeros((n_first + lags, lags), dtype=np.int32) for _ in range(3)]
    by_first = [np.zeros((n_first, lags), dtype=np.int32) for _ in range(2)]
    _missing_sums(by_sample, variants, sample_index, n_first, lags, *by_second, *by_first)
    names = ("pair_called", "pair_first_sum", "pair_first_sq_sum")
    for name, sums in zip(names, by_second, strict=True):
        row, col = sums.strides
        # pair (a, a + k) is sums[a + k, lags - k]
        start = sums[1:, lags - 1 :]
        pairs[name] -= as_strided(start, (n_first, lags), (row, row - col), writeable=False)
    pairs["pair_second_sum"] -= by_first[0]
    pairs["pair_second_sq_sum"] -= by_first[1]


@njit(cache=True, nogil=True)
def _missing_sums(
    by_sample: np.ndarray,
    variants: np.ndarray,
    samples: np.ndarray,
    n_first: int,
    lags: int,
    called_second: np.ndarray,
    sum_second: np.ndarray,
    sq_second: np.ndarray,
    sum_first: np.ndarray,
    sq_first: np.ndarray,
) -> None:
    """Sum, over the missing calls ``(variants[e], samples[e])``, the other variant's calls.

    A call missing at ``b`` takes its sample out of each pair ``(a, b)``,
    ``b - lags <= a < b``: ``*_second[b, a - b + lags]`` gather that sample's
    called flag, ``g`` and ``g**2`` at ``a``. Missing at ``a``, it takes the
    sample out of ``(a, a + k)``: ``*_first[a, k - 1]`` gather ``g`` and
    ``g**2`` at ``a + k``. ``by_sample`` is sample-major, so every loop runs
    over consecutive bytes and vectorises; int32 holds any count below 2**29
    samples.
    """
    n_rows = by_sample.shape[1]
    for e in range(len(variants)):
        b = variants[e]
        calls = by_sample[samples[e]]
        low, high = max(0, b - lags), min(b, n_first)
        if high > low:
            before = calls[low:high]
            called_row = called_second[b, low - b + lags : high - b + lags]
            sum_row = sum_second[b, low - b + lags : high - b + lags]
            sq_row = sq_second[b, low - b + lags : high - b + lags]
            for j in range(len(before)):
                code = np.int32(before[j])
                called = np.int32(code >= 0)
                g = code * called
                called_row[j] += called
                sum_row[j] += g
                sq_row[j] += g * g
        if b < n_first:
            after = calls[b + 1 : min(n_rows, b + lags + 1)]
            sum_row = sum_first[b]
            sq_row = sq_first[b]
            for j in range(len(after)):
                code = np.int32(after[j])
                g = code * np.int32(code >= 0)
                sum_row[j] += g
                sq_row[j] += g * g


# --------------------------------------------------------------------------- coordinator side


def _linked(sums: LdSums, lags: int, r2_threshold: float) -> BoolArray:
    """PLINK 2's LD test for every pair ``(a, a + k)``, ``k <= lags``, to the last bit."""
    threshold = r2_threshold * (1.0 + EPSILON)
    linked = np.zeros((len(sums), lags), dtype=np.bool_)
    for r0 in range(0, len(sums), LINK_CHUNK):
        part = slice(r0, r0 + LINK_CHUNK)
        n = sums.pair_called[part, :lags]
        first = sums.pair_first_sum[part, :lags]
        second = sums.pair_second_sum[part, :lags]
        cov = (sums.pair_dot[part, :lags] * n - first * second).astype(np.float64)
        var_first = (sums.pair_first_sq_sum[part, :lags] * n - first * first).astype(np.float64)
        var_second = (sums.pair_second_sq_sum[part, :lags] * n - second * second).astype(np.float64)
        linked[part] = cov * cov > threshold * var_first * var_second
    return linked


def _major_freq(sums: LdSums) -> npt.NDArray[np.float64]:
    """Frequency of each variant's more common allele among its calls (0 without calls)."""
    alleles = 2 * sums.called
    major = np.maximum(sums.alt_sum, alleles - sums.alt_sum).astype(np.float64)
    freq = np.zeros(len(sums))
    np.divide(major, alleles, out=freq, where=alleles > 0)
    return freq


def _windows(
    chromosome: npt.NDArray[np.str_],
    window: int | None,
    step: int,
    window_kb: float | None,
    bp_position: npt.NDArray[np.integer] | None,
) -> tuple[IntArray, IntArray, BoolArray]:
    """Start, end and first-of-its-subcontig flag of every window, in scan order."""
    if (window is None) == (window_kb is None):
        raise InputError("give exactly one of window (variants) and window_kb; nothing was pruned")
    if window_kb is not None:
        if bp_position is None:
            raise InputError("a kb window needs bp_position; nothing was pruned")
        if step != 1:
            raise InputError(f"with a kb window the step must be 1 (as in PLINK 2), got {step}")
        return _kb_windows(chromosome, bp_position, _window_bp(window_kb))
    assert window is not None
    if window < 1 or not 1 <= step <= window:
        raise InputError(
            f"window {window} and step {step} must satisfy 1 <= step <= window; nothing was pruned"
        )
    return _count_windows(chromosome, window, step)


def _runs(chromosome: npt.NDArray[np.str_]) -> list[tuple[int, int]]:
    """``[start, end)`` of each chromosome's contiguous variants."""
    labels = np.asarray(chromosome)
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = [0, *cuts.tolist(), len(labels)] if len(labels) else [0]
    runs = list(itertools.pairwise(bounds))
    names = [str(labels[start]) for start, _ in runs]
    if len(set(names)) < len(names):
        split = next(name for name in names if names.count(name) > 1)
        raise InputError(
            f"chromosome {split!r} is split into {names.count(split)} runs of variants; "
            "sort the variants by chromosome before pruning"
        )
    return runs


def _count_windows(
    chromosome: npt.NDArray[np.str_], window: int, step: int
) -> tuple[IntArray, IntArray, BoolArray]:
    starts: list[int] = []
    ends: list[int] = []
    new_run: list[bool] = []
    for run_start, run_end in _runs(chromosome):
        if run_end - run_start < 2:
            continue
        start, end = run_start, min(run_start + window, run_end)
        while True:
            starts.append(start)
            ends.append(end)
            new_run.append(start == run_start)
            if end == run_end:
                break
            start += step
            end = min(start + window, run_end)
    return _as_windows(starts, ends, new_run)


def _window_bp(window_kb: float) -> int:
    window_bp = int(window_kb * 1000 * (1 + EPSILON))
    if window_bp < 2:
        raise InputError(f"a kb window must be at least 2 bp, got {window_kb} kb")
    return window_bp


def _kb_windows(
    chromosome: npt.NDArray[np.str_], bp_position: npt.NDArray[np.integer], window_bp: int
) -> tuple[IntArray, IntArray, BoolArray]:
    position = np.asarray(bp_position, dtype=np.int64)
    if len(position) != len(chromosome):
        raise InputError(
            f"{len(position)} positions for {len(chromosome)} variants; nothing was pruned"
        )
    starts: list[int] = []
    ends: list[int] = []
    new_run: list[bool] = []
    for run_start, run_end in _runs(chromosome):
        gaps = np.diff(position[run_start:run_end])
        if (gaps < 0).any():
            raise InputError(
                f"positions on chromosome {chromosome[run_start]!r} are not sorted; "
                "a kb window needs sorted positions"
            )
        cuts = (run_start + 1 + np.flatnonzero(gaps > window_bp)).tolist()
        for start, end in zip([run_start, *cuts], [*cuts, run_end], strict=True):
            if end - start > 1:
                _subcontig_kb_windows(position, start, end, window_bp, starts, ends, new_run)
    return _as_windows(starts, ends, new_run)


def _subcontig_kb_windows(
    position: IntArray,
    first: int,
    last: int,
    window_bp: int,
    starts: list[int],
    ends: list[int],
    new_run: list[bool],
) -> None:
    """Append the kb windows of the subcontig ``[first, last)`` (``LdPruneNextWindow()``)."""
    start = first
    end = first + 1
    while end < last and position[end] <= position[start] + window_bp:
        end += 1
    while True:
        starts.append(start)
        ends.append(end)
        new_run.append(start == first)
        if end == last:
            return
        start += 1
        while position[start] < position[end] - window_bp:
            start += 1
        end += 1
        while end < last and position[end] <= position[start] + window_bp:
            end += 1


def _as_windows(
    starts: list[int], ends: list[int], new_run: list[bool]
) -> tuple[IntArray, IntArray, BoolArray]:
    return (
        np.array(starts, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        np.array(new_run, dtype=np.bool_),
    )


@njit(cache=True, nogil=True)
def _greedy(
    linked: np.ndarray,
    major_freq: np.ndarray,
    informative: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    new_run: np.ndarray,
) -> np.ndarray:
    """Slide the windows over the variants; return the keep mask.

    Variants that are in no window (alone in their subcontig) are kept.
    ``unchecked[f]`` is the first variant ``f`` has not been compared with.
    """
    n = len(informative)
    removed = np.zeros(n, dtype=np.bool_)
    unchecked = np.zeros(n, dtype=np.int64)
    window = np.empty(n, dtype=np.int64)
    size = 0
    loaded = 0
    for w in range(len(starts)):
        start = starts[w]
        end = ends[w]
        if new_run[w]:
            size = 0
            loaded = start
        else:
            kept = 0
            for j in range(size):
                if not removed[window[j]] and window[j] >= start:
                    window[kept] = window[j]
                    kept += 1
            size = kept
        while loaded < end:
            if informative[loaded]:
                unchecked[loaded] = loaded + 1
                window[size] = loaded
                size += 1
            else:
                removed[loaded] = True
            loaded += 1
        _prune_window(linked, major_freq, removed, unchecked, window[:size], end)
    return ~removed


@njit(cache=True, nogil=True)
def _prune_window(
    linked: np.ndarray,
    major_freq: np.ndarray,
    removed: np.ndarray,
    unchecked: np.ndarray,
    window: np.ndarray,
    end: int,
) -> None:
    """PLINK 2.00a3.5's passes over one window, until a pass removes nothing."""
    size = len(window)
    changed = True
    while changed:
        changed = False
        for i in range(size):
            first = window[i]
            if removed[first]:
                continue
            j = i + 1 + np.searchsorted(window[i + 1 :], unchecked[first])
            while j < size and removed[window[j]]:
                j += 1
            hit = False
            while j < size:
                second = window[j]
                if linked[first, second - first - 1]:
                    hit = True
                    changed = True
                    if major_freq[first] > major_freq[second] * (1.0 + EPSILON):
                        removed[first] = True
                    else:
                        removed[second] = True
                        j += 1
                        while j < size and removed[window[j]]:
                            j += 1
                        unchecked[first] = window[j] if j < size else end
                    break
                j += 1
                while j < size and removed[window[j]]:
                    j += 1
            if not hit:
                unchecked[first] = end
