from __future__ import annotations

from functools import reduce
from operator import add
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed import InputError
from genofed.io import read_phenotype_table
from genofed.io.bed import PackedBed
from genofed.io.genotypes import MISSING_CALL, read_variant_blocks
from genofed.kernels import _packed
from genofed.kernels.linreg import (
    VariantSums,
    linear_design,
    local_null_sums,
    local_variant_sums,
    local_variant_sums_packed,
    solve_linear,
)
from genofed.sim import SimulationResult
from tests.io.test_bed import write_bed
from tests.sim.test_cohorts import CODES

FIELDS = ("ctg", "gtg", "gty", "missing_ctc", "missing_cty", "missing_yty", "n_missing")
COUNT_TO_CODE = {2: 0b00, 1: 0b10, 0: 0b11, int(MISSING_CALL): 0b01}


def pack(dosages: np.ndarray, padding: int = 0) -> np.ndarray:
    """(variants x samples) int8 dosages as .bed rows; ``padding`` fills the unused bits."""
    n_variants, n_samples = dosages.shape
    codes = np.full((n_variants, -(-n_samples // 4) * 4), padding & 3, dtype=np.uint8)
    for count, code in COUNT_TO_CODE.items():
        codes[:, :n_samples][dosages == count] = code
    quads = codes.reshape(n_variants, -(-n_samples // 4), 4)
    return (quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6).astype(
        np.uint8
    )


def assert_sums_equal(got: VariantSums, expected: VariantSums, scale: float) -> None:
    """Equal to ~1e-12 of ``scale``, the size of the largest terms summed."""
    for field in FIELDS:
        a, b = getattr(got, field), getattr(expected, field)
        assert a.shape == b.shape, field
        assert a.dtype == b.dtype, field
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * scale, err_msg=field)


def random_study(rng: np.random.Generator, n: int, m: int, k: int, missing_rate: float):
    covariates = np.column_stack([np.ones(n), rng.normal(3, 2, size=(n, k - 1))])
    phenotype = rng.normal(size=n)
    frequency = rng.uniform(0, 1, m)
    dosages = rng.binomial(2, frequency, size=(n, m)).astype(np.int8)
    dosages[rng.random((n, m)) < missing_rate] = MISSING_CALL
    included = rng.random(n) < 0.8
    return covariates, phenotype, dosages, included


def reference(covariates, phenotype, dosages, included) -> VariantSums:
    return local_variant_sums(covariates[included], phenotype[included], dosages[included])


def with_nan_where_excluded(values: np.ndarray, included: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[~included] = np.nan
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 140),
    m=st.integers(0, 300),
    k=st.integers(1, 5),
    missing_rate=st.sampled_from([0.0, 0.01, 0.2, 1.0]),
    padding=st.integers(0, 3),
)
def test_linreg_packed__equals_reference_kernel_on_included_samples(
    seed: int, n: int, m: int, k: int, missing_rate: float, padding: int
) -> None:
    rng = np.random.default_rng(seed)
    covariates, phenotype, dosages, included = random_study(rng, n, m, k, missing_rate)
    if m >= 3:
        dosages[:, 0] = np.where(dosages[:, 0] == MISSING_CALL, MISSING_CALL, 1)  # monomorphic
        dosages[:, 1] = MISSING_CALL  # every call missing
        dosages[included, 2] = 2  # monomorphic among the included samples only
    design = linear_design(
        with_nan_where_excluded(covariates, included),
        with_nan_where_excluded(phenotype, included),
        included,
    )
    got = local_variant_sums_packed(design, pack(dosages.T, padding))
    scale = 4 * n * max(1.0, np.abs(covariates).max(), np.abs(phenotype).max()) ** 2
    assert_sums_equal(got, reference(covariates, phenotype, dosages, included), scale)


@pytest.mark.parametrize("k", [1, 3, 4, 11, 12])
def test_linreg_packed__equals_reference_across_tiles_and_row_widths(k: int) -> None:
    rng = np.random.default_rng(k)
    n, m = 75, _packed.VARIANT_TILE + _packed.MISSING_TILE + 3
    covariates, phenotype, dosages, included = random_study(rng, n, m, k, 0.02)
    design = linear_design(covariates, phenotype, included)
    got = local_variant_sums_packed(design, pack(dosages.T))
    assert_sums_equal(got, reference(covariates, phenotype, dosages, included), 4 * n * 100.0)


def test_linreg_packed__split_over_nodes_solves_like_pooled_reference() -> None:
    rng = np.random.default_rng(11)
    covariates, phenotype, dosages, _ = random_study(rng, 301, 40, 4, 0.03)
    parts = np.split(np.arange(301), [97, 202])
    null = reduce(add, (local_null_sums(covariates[p], phenotype[p]) for p in parts))
    sums = reduce(
        add,
        (
            local_variant_sums_packed(
                linear_design(covariates[p], phenotype[p], np.ones(len(p), bool)),
                pack(dosages[p].T),
            )
            for p in parts
        ),
    )
    pooled = solve_linear(
        local_null_sums(covariates, phenotype), local_variant_sums(covariates, phenotype, dosages)
    )
    result = solve_linear(null, sums)
    np.testing.assert_array_equal(result.n, pooled.n)
    np.testing.assert_allclose(result.beta, pooled.beta, rtol=1e-10)
    np.testing.assert_allclose(result.standard_error, pooled.standard_error, rtol=1e-10)


def test_linreg_packed__reads_bed_written_by_genofed_like_bed_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    covariates, phenotype, dosages, included = random_study(rng, 203, 130, 3, 0.05)
    bed = write_bed(tmp_path / "g", dosages.T)
    design = linear_design(
        with_nan_where_excluded(covariates, included),
        with_nan_where_excluded(phenotype, included),
        included,
    )
    keep = np.flatnonzero(included)
    with PackedBed(bed) as packed:
        got = [local_variant_sums_packed(design, block) for _, block in packed.blocks(50)]
    expected = [
        local_variant_sums(covariates[keep], phenotype[keep], block)
        for block in read_variant_blocks(bed, samples=keep, block_size=50)
    ]
    assert len(got) == len(expected) == 3
    for a, b in zip(got, expected, strict=True):
        assert_sums_equal(a, b, 4 * 203 * 100.0)
        assert b.n_missing.sum() > 0


def test_linreg_packed__six_country_nodes_equal_reference_kernel(
    cohorts: SimulationResult,
) -> None:
    for code in CODES:
        table = read_phenotype_table(cohorts.out / code / "phenotypes.tsv")
        y, age, sex = (table.columns[c] for c in ("ldl", "age", "sex"))
        included = ~np.isnan(y) & ~np.isnan(age) & ~np.isnan(sex)
        keep = np.flatnonzero(included)
        covariates = np.column_stack([np.ones(len(y)), age, sex])
        design = linear_design(covariates, y, included)
        bed = cohorts.out / code / "genotypes.bed"
        expected = read_variant_blocks(bed, samples=keep, block_size=3000)
        with PackedBed(bed) as packed:
            for (_, block), dosages in zip(packed.blocks(3000), expected, strict=True):
                got = local_variant_sums_packed(design, block)
                want = local_variant_sums(covariates[keep], y[keep], dosages)
                assert_sums_equal(got, want, 4 * len(y) * np.nanmax(np.abs(covariates)) ** 2)


def test_linear_design__non_finite_included_value_is_refused() -> None:
    covariates = np.ones((6, 2))
    covariates[4, 1] = np.nan
    included = np.array([True, True, False, True, True, True])
    with pytest.raises(
        InputError,
        match=r"1 included samples have a non-finite covariate value \(first at "
        r"\.fam row 5\)",
    ):
        linear_design(covariates, np.zeros(6), included)
    included[4] = False
    assert linear_design(covariates, np.zeros(6), included).n_included == 4


def test_linear_design__mismatched_shapes_are_refused() -> None:
    with pytest.raises(InputError, match=r"must have one entry per covariate row \(5\)"):
        linear_design(np.ones((5, 2)), np.zeros(4), np.ones(5, bool))
    with pytest.raises(InputError, match=r"\(samples x k\) matrix with k >= 1"):
        linear_design(np.ones(5), np.zeros(5), np.ones(5, bool))


def test_linreg_packed__rows_of_another_width_are_refused() -> None:
    design = linear_design(np.ones((9, 1)), np.zeros(9), np.ones(9, bool))
    with pytest.raises(InputError, match=r"uint8 rows of 3 bytes \(9 samples\), got uint8 of"):
        local_variant_sums_packed(design, np.zeros((4, 2), np.uint8))
