"""The numbers a reader of a GWAS looks at first: genomic inflation and top hits."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from genofed.errors import InputError
from genofed.report.gwas_ssf import GwasTable

__all__ = ["format_top_hits", "lambda_gc", "top_hits"]

# Median of the chi-square distribution with one degree of freedom (0.4549364...).
CHI2_1DF_MEDIAN = float(stats.chi2.ppf(0.5, 1))


def lambda_gc(p_values: npt.ArrayLike) -> float:
    """Genomic inflation factor: the median 1-df chi-square over its expected median.

    Each p-value is turned into the chi-square statistic (1 df) it stands for
    (``scipy.stats.chi2.isf(p, 1)``); the median of those is divided by
    ``chi2.ppf(0.5, 1)``. About 1 when the test statistics follow the null.

    Parameters
    ----------
    p_values
        Two-sided p-values; NaN entries (untested variants) are skipped.

    Returns
    -------
    float
        Lambda GC, or NaN if there is no p-value.

    Raises
    ------
    InputError
        If a p-value lies outside [0, 1].
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    p = p[~np.isnan(p)]
    if p.size == 0:
        return math.nan
    outside = (p < 0) | (p > 1)
    if outside.any():
        raise InputError(
            f"{int(outside.sum())} p-values lie outside [0, 1] "
            f"(first: {float(p[np.argmax(outside)])!r}); lambda GC was not computed"
        )
    # chi2.isf is decreasing, so the median statistic is that of the middle p-value(s):
    # transform those two order statistics only (one twice if the count is odd), which
    # gives np.median(chi2.isf(p, 1)) without a slow isf over every variant.
    middle = [(p.size - 1) // 2, p.size // 2]
    chi2 = stats.chi2.isf(np.partition(p, middle)[middle], 1)
    return float(np.median(chi2) / CHI2_1DF_MEDIAN)


def top_hits(table: GwasTable, n: int = 10, *, window_bp: int | None = None) -> GwasTable:
    """Return the ``n`` variants with the smallest p-values, most significant first.

    Variants without a p-value are never hits. Ties keep the table's order.

    Parameters
    ----------
    table
        The GWAS results.
    n
        How many hits to return at most.
    window_bp
        If given, return one variant per locus: a variant is skipped when a
        more significant hit lies on the same chromosome within
        ``window_bp`` base pairs of it.

    Returns
    -------
    GwasTable
        At most ``n`` rows, in ascending p-value.

    Raises
    ------
    InputError
        If ``n`` or ``window_bp`` is negative.
    """
    if n < 0:
        raise InputError(f"the number of top hits must be at least 0, not {n}")
    if window_bp is not None and window_bp < 0:
        raise InputError(f"the top-hit window must be at least 0 bp, not {window_bp}")
    tested = np.flatnonzero(~np.isnan(table.p_value))
    ranked = tested[np.argsort(table.p_value[tested], kind="stable")]
    if window_bp is None:
        return table.take(ranked[:n])
    chosen: list[int] = []
    positions_by_chromosome: dict[str, list[int]] = {}
    chromosomes = table.chromosome.tolist()
    locations = table.base_pair_location.tolist()
    for row in ranked.tolist():
        if len(chosen) == n:
            break
        position = locations[row]
        taken = positions_by_chromosome.setdefault(chromosomes[row], [])
        if all(abs(position - other) > window_bp for other in taken):
            taken.append(position)
            chosen.append(row)
    return table.take(np.array(chosen, dtype=np.int64))


def _number(value: float, spec: str) -> str:
    return "NA" if math.isnan(value) else format(value, spec)


def format_top_hits(table: GwasTable) -> str:
    """Return the rows of ``table`` as a fixed-width text table for a terminal.

    Parameters
    ----------
    table
        Typically the result of :func:`top_hits`.

    Returns
    -------
    str
        A header line and one line per variant, without a trailing newline;
        ``(no variants)`` under the header if the table is empty.
    """
    header = ("chr", "position", "variant", "EA", "OA", "EAF", "beta", "SE", "p", "n")
    right_aligned = {"position", "EAF", "beta", "SE", "p", "n"}
    rows = [
        (
            chromosome,
            str(position),
            variant,
            effect,
            other,
            _number(frequency, ".4f"),
            _number(beta, ".4g"),
            _number(se, ".4g"),
            _number(p, ".3e"),
            str(count),
        )
        for chromosome, position, variant, effect, other, frequency, beta, se, p, count in zip(
            table.chromosome.tolist(),
            table.base_pair_location.tolist(),
            table.variant_id.tolist(),
            table.effect_allele.tolist(),
            table.other_allele.tolist(),
            table.effect_allele_frequency.tolist(),
            table.beta.tolist(),
            table.standard_error.tolist(),
            table.p_value.tolist(),
            table.n.tolist(),
            strict=True,
        )
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if name in right_aligned else cell.ljust(width)
            for name, cell, width in zip(header, cells, widths, strict=True)
        ).rstrip()

    lines = [line(header), *map(line, rows)]
    if not rows:
        lines.append("(no variants)")
    return "\n".join(lines)
