"""Variant quality control (allele frequency, missingness, Hardy-Weinberg) split across nodes.

The split
---------
Every statistic here is a function of four per-variant genotype counts: the
samples with ALT dosage 0, 1 and 2 and those with a missing call. Counts are
additive over disjoint sets of samples, so each node runs
:func:`genotype_counts_packed` on its own .bed rows (32 samples per 64-bit
word, with the popcount loop of ``genofed.kernels._packed``) and sends the
``(variants, 4)`` counts; the coordinator adds them and calls
:func:`variant_qc` and :func:`qc_filters` on the sum, which gives exactly what
PLINK 2 reports on the pooled samples. Nothing but counts leaves a node.

PLINK 2 definitions matched (plink2 v2.00a3.5, 9 Aug 2022)
----------------------------------------------------------
Help texts are those of ``plink2 --help freq missing hardy hwe maf geno`` of
that binary; the source references are files of ``chrchang/plink-ng``.

* ``--freq`` ``ALT_FREQS``: ALT count / (2 x called samples), ``nan`` when no
  call. Founders only; every simulated sample is a founder.
* ``--missing variant-only`` ``F_MISS``: missing calls / all samples.
* ``--hardy`` ``P``: the exact test of Wigginton, Cutler & Abecasis (2005),
  ``HweP()`` in ``2.0/plink2_stats.cc`` (commit 33606d66a8ac): the p-value is
  the summed probability of the tables (same allele counts) no more likely
  than the observed one, divided by the total. A table counts as "no more
  likely" when its likelihood relative to the observed table is below
  ``1 / (1 - 2**-44)`` (``kSmallEpsilon``), so exact and rounding-level ties
  are in the tail. ``P`` is 1 when no other table is more likely (also for
  monomorphic and all-missing variants). Mid-p only with ``--hardy midp``: half
  the probability of the observed table and of a tied table on the other side
  of the mode is taken off. Tails are summed until the sum stops changing.
  HweP() works in float64 (scaled by 2**-83): 2.00a3.5 prints 0 for every
  p-value below the normal float64 range (about 2.2e-308; subnormals are
  flushed). Its log-p successor ``HweLnP()`` ("Log-p-value return (added Jan
  2024)", in the later ``plink2_hwe.cc``) is not in 2.00a3.5. This module
  follows HweP() step by step but rescales by exact powers of two, so
  ``hwe_ln_p`` stays finite (and exact) where PLINK prints 0.
* ``--maf x``: removes variants whose nonmajor allele frequency ``min(f,
  1 - f)`` is below ``x * (1 - 2**-44)``; ``nan`` frequencies (no calls) never
  compare below, so such variants stay (``EnforceFreqConstraints()`` in
  ``2.0/plink2_filter.cc``, commit 01b0a0ec6a75, checked against the binary).
* ``--geno x``: removes variants with more than ``int(x * (1 + 2**-44) * N)``
  missing calls among the ``N`` samples (``EnforceGenoThresh()``, same file).
* ``--hwe p``: removes variants whose autosomal HWE exact p-value is below
  ``p``; not mid-p unless ``midp`` is given, founders only (here: everyone),
  variants without calls are skipped, and there is no case/control handling
  ("There is currently no special handling of case/control phenotypes",
  ``--help hwe``). ``keep-fewhet`` is not supported. chrX (Graffelman-Weir),
  chrY and chrM are not handled: the tests here are for autosomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL
from genofed.kernels import _packed

__all__ = [
    "QcResult",
    "genotype_counts",
    "genotype_counts_packed",
    "hwe_exact_ln_p",
    "hwe_exact_p",
    "qc_filters",
    "variant_qc",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

EPSILON = 2.0**-44  # PLINK 2's kSmallEpsilon: tie tolerance and filter-threshold slack
SHIFT = 512  # relative likelihoods are rescaled by 2**-SHIFT, an exact operation
BIG = 2.0**SHIFT
SMALL = 2.0**-SHIFT


def _included_words(inside: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """Per 32 samples, a uint64 with the low bit of each included sample's 2-bit code set."""
    bits = np.zeros(-(-len(inside) // 32) * 32, dtype=np.uint64)
    bits[: len(inside)] = inside
    shifts = np.arange(0, 64, 2, dtype=np.uint64)
    words: npt.NDArray[np.uint64] = np.bitwise_or.reduce(bits.reshape(-1, 32) << shifts, axis=1)
    return words


def genotype_counts_packed(
    block: npt.NDArray[np.uint8],
    n_samples: int,
    included: npt.NDArray[np.bool_] | None = None,
) -> IntArray:
    """Count ALT dosages 0, 1, 2 and missing calls in packed .bed rows (node side).

    Parameters
    ----------
    block
        ``(variants, ceil(n_samples / 4))`` uint8 rows of a SNP-major PLINK
        .bed file, as from ``genofed.io.bed.PackedBed.block``. Codes follow
        genofed's convention: allele_1 (column 5 of the .bim) is the ALT.
    n_samples
        Samples in the .fam file; the padding bits after them are ignored.
    included
        ``(n_samples,)`` boolean mask of the samples to count; all if None.

    Returns
    -------
    numpy.ndarray
        ``(variants, 4)`` int64: samples with ALT dosage 0, 1, 2, and missing.

    Raises
    ------
    InputError
        If the block's type or width or the mask do not fit ``n_samples``.
    """
    n_bytes = -(-n_samples // 4)
    if block.dtype != np.uint8 or block.ndim != 2 or block.shape[1] != n_bytes:
        raise InputError(
            f"packed genotypes must be uint8 rows of {n_bytes} bytes ({n_samples} samples), "
            f"got {block.dtype} of shape {block.shape}"
        )
    inside = np.zeros(4 * n_bytes, dtype=np.bool_)
    if included is None:
        inside[:n_samples] = True
    else:
        included = np.asarray(included)
        if included.shape != (n_samples,) or included.dtype != np.bool_:
            raise InputError(
                f"included must be a boolean mask of {n_samples} samples, "
                f"got {included.dtype} of shape {included.shape}"
            )
        inside[:n_samples] = included
    rows = np.ascontiguousarray(block).reshape(-1)
    rows.flags.writeable = False  # one compiled kernel for arrays and read-only maps alike
    n_variants = block.shape[0]
    # ALT homozygotes (0b00), heterozygotes (0b10) and missing calls (0b01)
    hom_alt, het, missing = _packed._genotype_counts(
        rows, n_variants, n_bytes, _included_words(inside)
    ).T
    hom_ref = int(inside.sum()) - hom_alt - het - missing
    return np.column_stack([hom_ref, het, hom_alt, missing]).reshape(n_variants, 4)


def genotype_counts(dosages: npt.NDArray[np.int8]) -> IntArray:
    """Count ALT dosages and missing calls of decoded ``(samples, variants)`` dosages.

    The plain numpy reference of :func:`genotype_counts_packed`.

    Dosages are ALT counts 0, 1, 2 or ``MISSING_CALL``; other values are not counted.
    """
    dosages = np.asarray(dosages)
    values = np.array([0, 1, 2, MISSING_CALL], dtype=dosages.dtype)
    counts: IntArray = (dosages[:, :, None] == values).sum(axis=0, dtype=np.int64)
    return counts


@njit(cache=True, nogil=True, inline="always")
def _add_scaled(total: float, total_shift: int, value: float, shift: int) -> tuple[float, int]:
    """``total * BIG**total_shift + value * BIG**shift`` as a (mantissa, shift) pair."""
    if shift > total_shift:
        total = math.ldexp(total, SHIFT * (total_shift - shift))
        total_shift = shift
    return total + math.ldexp(value, SHIFT * (shift - total_shift)), total_shift


@njit(cache=True, nogil=True)
def _hwe_ln_p(het: int, hom1: int, hom2: int, midp: bool) -> float:
    """Natural log of PLINK 2's HWE exact p-value (HweP), for one variant.

    Relative likelihoods are those of PLINK: the observed table weighs
    ``1 - EPSILON`` and each step multiplies by the same ratio, so ties are
    classified alike. A value ``x * BIG**k`` is kept as ``(x, k)``; ``k > 0``
    implies ``x >= 1``, so a table is less likely than the observed one exactly
    when ``k == 0 and x < 1``, where the arithmetic is PLINK's.
    """
    homr, homc = min(hom1, hom2), max(hom1, hom2)
    rare = 2 * homr + het
    alleles = 2 * (het + homr + homc)
    if alleles == 0:
        return -math.log(2.0) if midp else 0.0
    upper = het * alleles > rare * (alleles - rare)  # more hets than expected
    start = 1.0 - EPSILON
    tail, center, center_shift, ties = start, 0.0, 0, 1
    last, shift = start, 0
    h, r, c = float(het), float(homr), float(homc)
    in_tail = False
    # Walk from the observed table towards (and past) the mode, summing the
    # more likely tables, until one is no more likely than the observed one.
    while (h > 1.5) if upper else (r > 0.5):
        if upper:
            r += 1.0
            c += 1.0
            last *= (h * (h - 1.0)) / (4.0 * r * c)
            h -= 2.0
        else:
            h += 2.0
            last *= (4.0 * r * c) / (h * (h - 1.0))
            r -= 1.0
            c -= 1.0
        if shift == 0 and last < 1.0:
            if last > 1.0 - 2.0 * EPSILON:
                ties += 1
            tail += last
            in_tail = True
            break
        if last > BIG:
            last *= SMALL
            shift += 1
        elif shift > 0 and last < 1.0:
            last *= BIG
            shift -= 1
        center, center_shift = _add_scaled(center, center_shift, last, shift)
    if center == 0.0 and not midp:
        return 0.0
    # The far tail: the rest of the walk, to float64 precision.
    while in_tail and ((h > 1.5) if upper else (r > 0.5)):
        if upper:
            r += 1.0
            c += 1.0
            last *= (h * (h - 1.0)) / (4.0 * r * c)
            h -= 2.0
        else:
            h += 2.0
            last *= (4.0 * r * c) / (h * (h - 1.0))
            r -= 1.0
            c -= 1.0
        before = tail
        tail += last
        if tail <= before:
            break
    # The near tail: away from the mode, starting at the observed table.
    last, h, r, c = start, float(het), float(homr), float(homc)
    while (r > 0.5) if upper else (h > 1.5):
        if upper:
            h += 2.0
            last *= (4.0 * r * c) / (h * (h - 1.0))
            r -= 1.0
            c -= 1.0
        else:
            r += 1.0
            c += 1.0
            last *= (h * (h - 1.0)) / (4.0 * r * c)
            h -= 2.0
        before = tail
        tail += last
        if tail <= before:
            break
    numerator = tail - 0.5 * start * ties if midp else tail
    total, total_shift = _add_scaled(center, center_shift, tail, 0)
    return math.log(numerator) - (math.log(total) + SHIFT * total_shift * math.log(2.0))


@njit(cache=True, nogil=True)
def _hwe_ln_p_many(het: np.ndarray, hom1: np.ndarray, hom2: np.ndarray, midp: bool) -> np.ndarray:
    out = np.empty(len(het))
    for i in range(len(het)):
        out[i] = _hwe_ln_p(het[i], hom1[i], hom2[i], midp)
    return out


def hwe_exact_ln_p(
    het: npt.ArrayLike, hom1: npt.ArrayLike, hom2: npt.ArrayLike, *, midp: bool = False
) -> FloatArray:
    """Natural log of :func:`hwe_exact_p`, finite even where the p-value underflows float64.

    Raises
    ------
    InputError
        If a count is negative or the three do not broadcast together.
    """
    try:
        arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (het, hom1, hom2)))
    except ValueError as exc:
        raise InputError(f"genotype counts do not broadcast together: {exc}") from exc
    if any((a < 0).any() for a in arrays):
        raise InputError("genotype counts must not be negative")
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    return _hwe_ln_p_many(flat[0], flat[1], flat[2], midp).reshape(arrays[0].shape)


def hwe_exact_p(
    het: npt.ArrayLike, hom1: npt.ArrayLike, hom2: npt.ArrayLike, *, midp: bool = False
) -> FloatArray:
    """Hardy-Weinberg exact test p-values, as ``plink2 --hardy`` computes them.

    The test of Wigginton, Cutler & Abecasis (2005) with PLINK 2's tie
    tolerance (see the module docstring); vectorised over variants.

    Parameters
    ----------
    het, hom1, hom2
        Heterozygote and the two homozygote counts (any order of homozygotes),
        integer arrays that broadcast together.
    midp
        The mid-p variant (``--hardy midp``); PLINK's default is off.

    Returns
    -------
    numpy.ndarray
        float64 p-values; 1 (0.5 with ``midp``) for variants without calls.
        Below about 1e-308 they lose precision and below 5e-324 they are 0:
        use :func:`hwe_exact_ln_p` there.
    """
    return np.exp(hwe_exact_ln_p(het, hom1, hom2, midp=midp))


@dataclass(frozen=True, eq=False)
class QcResult:
    """Per-variant QC statistics of the pooled samples (coordinator side)."""

    counts: IntArray  # (variants, 4): ALT dosage 0, 1, 2, missing
    n_called: IntArray  # samples with a call
    missing_count: IntArray  # samples with a missing call
    n_samples: IntArray  # all samples counted
    alt_frequency: FloatArray  # plink2 --freq ALT_FREQS; NaN without calls
    minor_allele_frequency: FloatArray  # min(ALT, REF) frequency, as --maf uses; NaN without calls
    missing_rate: FloatArray  # plink2 --missing F_MISS
    hwe_p: FloatArray  # plink2 --hardy P (autosomes)
    hwe_ln_p: FloatArray  # natural log of hwe_p, finite where hwe_p underflows


def _ratio(numerator: npt.NDArray[np.int64], denominator: npt.NDArray[np.int64]) -> FloatArray:
    """``numerator / denominator``, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def variant_qc(counts: npt.ArrayLike) -> QcResult:
    """QC statistics from genotype counts summed over nodes.

    Parameters
    ----------
    counts
        ``(variants, 4)`` counts of ALT dosage 0, 1, 2 and missing calls, as
        returned (and summed) from :func:`genotype_counts_packed`.

    Returns
    -------
    QcResult
        The statistics PLINK 2 reports for the pooled samples.

    Raises
    ------
    InputError
        If ``counts`` is not a non-negative ``(variants, 4)`` integer matrix.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != 4 or not np.issubdtype(counts.dtype, np.integer):
        raise InputError(f"counts must be a (variants, 4) integer matrix, got {counts.shape}")
    if (counts < 0).any():
        raise InputError("genotype counts must not be negative")
    counts = counts.astype(np.int64)
    hom_ref, het, hom_alt, missing = counts.T
    n_called = hom_ref + het + hom_alt
    alt = het + 2 * hom_alt
    ln_p = hwe_exact_ln_p(het, hom_alt, hom_ref)
    return QcResult(
        counts=counts,
        n_called=n_called,
        missing_count=missing.copy(),
        n_samples=n_called + missing,
        alt_frequency=_ratio(alt, 2 * n_called),
        minor_allele_frequency=_ratio(np.minimum(alt, 2 * n_called - alt), 2 * n_called),
        missing_rate=_ratio(missing, n_called + missing),
        hwe_p=np.exp(ln_p),
        hwe_ln_p=ln_p,
    )


def qc_filters(
    result: QcResult,
    *,
    maf: float | None = None,
    geno: float | None = None,
    hwe: float | None = None,
    hwe_midp: bool = False,
) -> dict[str, npt.NDArray[np.bool_]]:
    """Flag the variants that ``plink2 --maf``, ``--geno`` and ``--hwe`` would remove.

    Parameters
    ----------
    result
        Statistics of the pooled samples, from :func:`variant_qc`.
    maf
        ``--maf``: remove nonmajor allele frequencies below this.
    geno
        ``--geno``: remove missing-call rates above this.
    hwe
        ``--hwe``: remove HWE exact p-values below this.
    hwe_midp
        ``--hwe ... midp``: use mid-p values.

    Returns
    -------
    dict
        For each filter given (``"maf"``, ``"geno"``, ``"hwe"``), a boolean
        mask of the variants it removes. PLINK removes their union.
    """
    removed: dict[str, npt.NDArray[np.bool_]] = {}
    if maf is not None:
        with np.errstate(invalid="ignore"):  # NaN (no call) is never below
            removed["maf"] = result.minor_allele_frequency < maf * (1 - EPSILON)
    if geno is not None:
        ceiling = np.trunc(geno * (1 + EPSILON) * result.n_samples.astype(np.float64))
        removed["geno"] = result.missing_count > ceiling
    if hwe is not None:
        ln_p = result.hwe_ln_p
        if hwe_midp:
            hom_ref, het, hom_alt, _ = result.counts.T
            ln_p = hwe_exact_ln_p(het, hom_alt, hom_ref, midp=True)
        threshold = math.log(hwe) if hwe > 0 else -math.inf
        removed["hwe"] = (ln_p < threshold) & (result.n_called > 0)
    return removed
