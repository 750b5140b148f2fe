"""Manhattan, QQ and principal-component plots as PNG files.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas, so
no global pyplot state is touched and no display is needed. Points are
rasterized markers, which keeps a million variants to a few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from scipy import stats

from genofed.errors import InputError
from genofed.report._atomic import staged_files
from genofed.report._chromosomes import genome_order
from genofed.report.gwas_ssf import GwasTable
from genofed.report.summary import lambda_gc

__all__ = ["manhattan_plot", "pc_plot", "qq_plot"]

DPI = 150
COLOURS = ("#1b4f72", "#7fb3d5")  # alternate chromosomes
SIGNIFICANCE_COLOUR = "#c0392b"
BAND_POINTS = 2000  # order statistics at which the QQ confidence band is computed
_SMALLEST_P = float(np.nextafter(0.0, 1.0))  # p = 0 is drawn as the smallest double


def _neg_log10(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = -np.log10(np.maximum(p, _SMALLEST_P))
    return result


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    FigureCanvasAgg(figure)
    with staged_files(path) as (staging,), staging.open("xb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)
    return path


def _points(
    axes: Axes, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], colour: str
) -> None:
    axes.plot(
        x,
        y,
        linestyle="none",
        marker="o",
        markersize=2.2,
        markeredgewidth=0,
        color=colour,
        rasterized=True,
    )


def _genome_axis(
    rank: npt.NDArray[np.int64], position: npt.NDArray[np.float64], count: int
) -> tuple[npt.NDArray[np.float64], list[float], float]:
    """Lay chromosomes end to end, each from its first to its last variant.

    Chromosomes are separated by a gap of 1% of the total span, and none is
    drawn narrower than that gap.

    Returns each variant's x, the centre of each chromosome, and the x where
    the last chromosome ends.
    """
    if count == 0:
        return np.zeros(0), [], 0.0
    first = np.full(count, np.inf)
    last = np.full(count, -np.inf)
    np.minimum.at(first, rank, position)
    np.maximum.at(last, rank, position)
    gap = 0.01 * max(float((last - first).sum()), 1.0)
    span = np.maximum(last - first, gap)  # room for the label of a short contig
    start = np.concatenate([[0.0], np.cumsum(span + gap)[:-1]])
    centring = (span - (last - first)) / 2  # non-zero for short contigs only
    x = (start + centring)[rank] + (position - first[rank])
    return x, (start + span / 2).tolist(), float(start[-1] + span[-1])


def manhattan_plot(table: GwasTable, path: Path, *, title: str, significance: float = 5e-8) -> Path:
    """Draw -log10(p) along the genome and write it as a PNG.

    Chromosomes run in natural order (1-22, X, Y, XY, MT, then other names)
    in alternating colours; each spans its first to its last variant.
    Variants without a p-value are skipped; p = 0 is drawn at the smallest
    positive double.

    Parameters
    ----------
    table
        The GWAS results.
    path
        The PNG file to write, atomically (an older file survives a failure).
    title
        The figure title.
    significance
        The genome-wide significance threshold drawn as a dashed line.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If ``significance`` is not in (0, 1).
    """
    if not 0 < significance < 1:
        raise InputError(f"the significance threshold must lie in (0, 1), not {significance!r}")
    tested = ~np.isnan(table.p_value)
    chromosome = table.chromosome[tested]
    position = table.base_pair_location[tested].astype(np.float64)
    y = _neg_log10(table.p_value[tested])
    names, rank = genome_order(chromosome)
    x, ticks, end = _genome_axis(rank, position, len(names))

    figure = Figure(figsize=(12, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for parity, colour in enumerate(COLOURS):
        on = rank % 2 == parity
        if on.any():
            _points(axes, x[on], y[on], colour)
    threshold = -math.log10(significance)
    axes.axhline(threshold, color=SIGNIFICANCE_COLOUR, linestyle="--", linewidth=1)
    top = max(float(y.max()) if y.size else 0.0, threshold)
    axes.set_ylim(0, top * 1.06 + 0.5)
    if names:
        axes.set_xlim(-0.01 * end, end * 1.01)
        long_names = max(map(len, names)) > 3
        axes.set_xticks(
            ticks,
            names,
            fontsize=8 if len(names) <= 26 else 6,
            rotation=90 if long_names else 0,
        )
    else:
        axes.set_xticks([])
        axes.text(0.5, 0.5, "no tested variants", transform=axes.transAxes, ha="center")
    axes.set_xlabel("chromosome")
    axes.set_ylabel(r"$-\log_{10}(p)$")
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)


def qq_plot(p_values: npt.ArrayLike, path: Path, *, title: str) -> Path:
    """Draw observed against expected -log10(p) and write it as a PNG.

    The grey band is the pointwise 95% interval of each order statistic under
    the null (the k-th smallest of n uniform p-values is Beta(k, n - k + 1));
    the expected value of the k-th is k / (n + 1). Lambda GC is printed in the
    upper left corner. NaN p-values are skipped.

    Parameters
    ----------
    p_values
        The p-values of the tested variants.
    path
        The PNG file to write, atomically (an older file survives a failure).
    title
        The figure title.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If a p-value lies outside [0, 1].
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    p = np.sort(p[~np.isnan(p)])
    inflation = lambda_gc(p)
    n = p.size

    figure = Figure(figsize=(5.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    if n:
        expected = _neg_log10(np.arange(1, n + 1, dtype=np.float64) / (n + 1))
        observed = _neg_log10(p)
        order = np.unique(np.geomspace(1, n, min(n, BAND_POINTS)).round().astype(np.int64))
        band_x = _neg_log10(order / (n + 1))
        lower = _neg_log10(stats.beta.ppf(0.975, order, n - order + 1))
        upper = _neg_log10(stats.beta.ppf(0.025, order, n - order + 1))
        axes.fill_between(band_x, lower, upper, color="#d5d8dc", linewidth=0, label="95% CI")
        limit = float(expected[0])
        axes.plot([0, limit], [0, limit], color=SIGNIFICANCE_COLOUR, linewidth=1)
        _points(axes, expected, observed, COLOURS[0])
        axes.set_xlim(0, limit * 1.03)
        axes.set_ylim(0, max(float(observed[0]), float(upper[0])) * 1.05)
    else:
        axes.text(0.5, 0.5, "no p-values", transform=axes.transAxes, ha="center")
    label = "NA" if math.isnan(inflation) else f"{inflation:.3f}"
    axes.text(
        0.04,
        0.96,
        f"$\\lambda_{{GC}}$ = {label}\nn = {n:,}",
        transform=axes.transAxes,
        va="top",
        ha="left",
    )
    axes.set_xlabel(r"expected $-\log_{10}(p)$")
    axes.set_ylabel(r"observed $-\log_{10}(p)$")
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)


def pc_plot(
    summaries: Mapping[str, tuple[int, npt.ArrayLike, npt.ArrayLike]],
    path: Path,
    *,
    title: str,
    labels: tuple[str, str] = ("PC1", "PC2"),
) -> Path:
    """Draw each node's mean of two PCs and its 95% covariance ellipse, as a PNG.

    Drawn from per-node aggregates only (the count, the 2-vector mean and
    the 2 x 2 covariance each node released): no sample's score is needed.

    Parameters
    ----------
    summaries
        Node name -> ``(samples, mean, covariance)``.
    path
        The PNG file to write, atomically.
    title
        The figure title.
    labels
        The axes' names.
    """
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    radius = math.sqrt(stats.chi2.ppf(0.95, 2))  # a bivariate normal's 95% contour
    colours = _colours(len(summaries))
    for (node, (n, mean, covariance)), colour in zip(summaries.items(), colours, strict=True):
        x, y = (float(v) for v in np.asarray(mean, dtype=np.float64))
        values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
        angle = math.degrees(math.atan2(vectors[1, -1], vectors[0, -1]))
        width, height = 2 * radius * np.sqrt(np.maximum(values[::-1], 0))
        axes.add_patch(
            Ellipse(
                (x, y), width, height, angle=angle, facecolor=colour, alpha=0.25, edgecolor=colour
            )
        )
        axes.plot(x, y, marker="o", color=colour, linestyle="none", label=f"{node} ({n:,})")
    axes.autoscale_view()
    axes.set_xlabel(labels[0])
    axes.set_ylabel(labels[1])
    axes.set_title(title)
    axes.legend(title="node (samples)", fontsize="small", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)


def _colours(n: int) -> list[str]:
    """``n`` distinct colours from matplotlib's default cycle (repeating after ten)."""
    cycle = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
             "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
    return [cycle[i % len(cycle)] for i in range(n)]
