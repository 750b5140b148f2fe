from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from genofed.errors import InputError
from genofed.report import GwasTable, format_top_hits, lambda_gc, top_hits
from genofed.report.summary import CHI2_1DF_MEDIAN
from tests.report.tables import make_table


def direct_lambda_gc(p: np.ndarray) -> float:
    p = p[~np.isnan(p)]
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1))


def test_lambda_gc__median_constant_is_scipys() -> None:
    median = CHI2_1DF_MEDIAN
    assert median == stats.chi2.ppf(0.5, 1)
    assert median == pytest.approx(0.4549364, abs=1e-7)


@pytest.mark.parametrize("size", [1, 2, 999, 1000, 10_001])
def test_lambda_gc__equals_the_direct_computation(size: int) -> None:
    rng = np.random.default_rng(size)
    p = rng.uniform(size=size) ** 1.3
    p[rng.uniform(size=size) < 0.1] = np.nan
    if np.isnan(p).all():
        p[0] = 0.5
    assert lambda_gc(p) == direct_lambda_gc(p)


def test_lambda_gc__is_about_one_under_the_null() -> None:
    p = np.random.default_rng(3).uniform(size=100_000)
    assert lambda_gc(p) == pytest.approx(1.0, abs=0.02)


def test_lambda_gc__measures_inflated_statistics() -> None:
    z = np.random.default_rng(4).standard_normal(200_000) * math.sqrt(1.2)
    p = 2 * stats.norm.sf(np.abs(z))
    assert lambda_gc(p) == pytest.approx(1.2, abs=0.03)


def test_lambda_gc__is_nan_without_p_values() -> None:
    assert math.isnan(lambda_gc([]))
    assert math.isnan(lambda_gc([np.nan, np.nan]))


def test_lambda_gc__refuses_p_values_outside_zero_one() -> None:
    with pytest.raises(InputError, match=r"1 p-values lie outside \[0, 1\] \(first: 1\.5\)"):
        lambda_gc([0.2, 1.5])


def hits_table(chromosome: list[str], position: list[int], p: list[float]) -> GwasTable:
    size = len(p)
    return GwasTable(
        chromosome=chromosome,
        base_pair_location=position,
        effect_allele=["A"] * size,
        other_allele=["G"] * size,
        beta=np.linspace(-0.5, 0.5, size),
        standard_error=np.full(size, 0.1),
        effect_allele_frequency=np.full(size, 0.25),
        p_value=p,
        variant_id=[f"v{i}" for i in range(size)],
        n=np.full(size, 1000),
    )


def test_top_hits__returns_the_smallest_p_values_in_order() -> None:
    table = make_table(2000, seed=5)
    hits = top_hits(table, 10)
    tested = np.sort(table.p_value[~np.isnan(table.p_value)])
    np.testing.assert_array_equal(hits.p_value, tested[:10])
    assert len(set(hits.variant_id.tolist())) == 10


def test_top_hits__skips_untested_variants_and_keeps_ties_in_table_order() -> None:
    table = hits_table(["1"] * 5, [1, 2, 3, 4, 5], [np.nan, 0.01, 1e-9, 0.01, np.nan])
    hits = top_hits(table, 10)
    assert hits.variant_id.tolist() == ["v2", "v1", "v3"]


def test_top_hits__window_keeps_one_variant_per_locus() -> None:
    table = hits_table(
        ["1", "1", "1", "2", "1"],
        [1_000_000, 1_200_000, 1_600_000, 1_100_000, 5_000_000],
        [1e-12, 1e-10, 1e-9, 1e-8, 1e-3],
    )
    hits = top_hits(table, 10, window_bp=500_000)
    assert hits.variant_id.tolist() == ["v0", "v2", "v3", "v4"]
    assert top_hits(table, 2, window_bp=500_000).variant_id.tolist() == ["v0", "v2"]


def test_top_hits__refuses_negative_arguments() -> None:
    table = make_table(10)
    with pytest.raises(InputError, match="at least 0, not -1"):
        top_hits(table, -1)
    with pytest.raises(InputError, match="at least 0 bp, not -5"):
        top_hits(table, 3, window_bp=-5)


def test_format_top_hits__aligns_one_line_per_variant() -> None:
    table = hits_table(["1", "22"], [1234, 45_678_901], [3.2e-9, np.nan])
    lines = format_top_hits(table).split("\n")
    assert lines[0].split() == [
        "chr",
        "position",
        "variant",
        "EA",
        "OA",
        "EAF",
        "beta",
        "SE",
        "p",
        "n",
    ]
    assert lines[1].split() == [
        "1",
        "1234",
        "v0",
        "A",
        "G",
        "0.2500",
        "-0.5",
        "0.1",
        "3.200e-09",
        "1000",
    ]
    assert lines[2].split()[-2:] == ["NA", "1000"]
    assert lines[1].rfind("1234") + 4 == lines[2].rfind("45678901") + 8


def test_format_top_hits__says_when_there_are_no_variants() -> None:
    empty = make_table(10).take(np.zeros(0, dtype=np.int64))
    assert format_top_hits(empty).split("\n")[1] == "(no variants)"
