from __future__ import annotations

from functools import reduce
from operator import add
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed.io import read_phenotype_table
from genofed.io.genotypes import MISSING_CALL, read_variant_blocks
from genofed.kernels.linreg import local_null_sums, local_variant_sums, solve_linear
from genofed.sim import SimulationResult
from tests.conftest import PlinkRunner
from tests.plink import pooled_glm_linear
from tests.sim.test_cohorts import CODES


def pooled_ols(covariates: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[float, float, int]:
    called = g != MISSING_CALL
    x = np.column_stack([covariates[called], g[called]])
    coef, *_ = np.linalg.lstsq(x, y[called], rcond=None)
    residual = y[called] - x @ coef
    df = called.sum() - x.shape[1]
    cov = (residual @ residual / df) * np.linalg.inv(x.T @ x)
    return coef[-1], np.sqrt(cov[-1, -1]), int(called.sum())


def federated(covariates: np.ndarray, y: np.ndarray, g: np.ndarray, cuts: list[int]):
    parts = np.split(np.arange(len(y)), cuts)
    null = reduce(add, (local_null_sums(covariates[p], y[p]) for p in parts))
    sums = reduce(add, (local_variant_sums(covariates[p], y[p], g[p]) for p in parts))
    return solve_linear(null, sums)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_linreg__any_split_over_one_to_six_nodes_equals_pooled_ols(seed: int, n_nodes: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 120, 6
    covariates = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(1, 3, n)])
    g = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(np.int8)
    g[rng.random((n, m)) < 0.05] = MISSING_CALL
    cuts = sorted(rng.choice(np.arange(10, n - 10), n_nodes - 1, replace=False).tolist())
    first = cuts[0] if cuts else n // 3
    g[:first, 0] = 0  # monomorphic in the first samples (the first node when split)
    g[:first, 1] = MISSING_CALL  # every call missing there
    y = covariates @ [1.0, 0.5, -0.3] + 0.2 * np.where(g[:, 2] < 0, 0, g[:, 2]) + rng.normal(size=n)
    result = federated(covariates, y, g, cuts)
    for j in range(m):
        beta, se, count = pooled_ols(covariates, y, g[:, j])
        assert result.n[j] == count
        assert result.beta[j] == pytest.approx(beta, rel=1e-9, abs=1e-12)
        assert result.standard_error[j] == pytest.approx(se, rel=1e-9)


def test_linreg__constant_genotype_is_not_fitted() -> None:
    rng = np.random.default_rng(0)
    covariates = np.column_stack([np.ones(50), rng.normal(size=50)])
    g = np.ones((50, 1), dtype=np.int8)
    result = federated(covariates, rng.normal(size=50), g, [20])
    assert np.isnan(result.beta[0])
    assert np.isnan(result.p_value[0])


def test_linreg__six_country_nodes_equal_plink2_on_pooled_files(
    cohorts: SimulationResult, plink2: PlinkRunner, tmp_path: Path
) -> None:
    null, blocks = None, []
    for code in CODES:
        table = read_phenotype_table(cohorts.out / code / "phenotypes.tsv")
        y, age, sex = (table.columns[c] for c in ("ldl", "age", "sex"))
        keep = np.flatnonzero(~np.isnan(y) & ~np.isnan(age) & ~np.isnan(sex))
        covariates = np.column_stack([np.ones(len(keep)), age[keep], sex[keep]])
        node_null = local_null_sums(covariates, y[keep])
        null = node_null if null is None else null + node_null
        bed = cohorts.out / code / "genotypes.bed"
        node_blocks = [
            local_variant_sums(covariates, y[keep], block)
            for block in read_variant_blocks(bed, samples=keep, block_size=1000)
        ]
        blocks = (
            node_blocks if not blocks else [a + b for a, b in zip(blocks, node_blocks, strict=True)]
        )
    assert null is not None
    results = [solve_linear(null, sums) for sums in blocks]
    beta = np.concatenate([r.beta for r in results])
    se = np.concatenate([r.standard_error for r in results])
    p = np.concatenate([r.p_value for r in results])
    n = np.concatenate([r.n for r in results])

    rows = pooled_glm_linear(plink2, cohorts.out, "ldl", "age,sex", tmp_path)
    assert len(rows) == len(beta) == 8000
    fitted = np.array([r["BETA"] != "NA" for r in rows])
    np.testing.assert_array_equal(fitted, ~np.isnan(beta))
    np.testing.assert_array_equal(n, [int(r["OBS_CT"]) for r in rows])
    plink = {
        c: np.array([float(r[c]) for r in rows if r["BETA"] != "NA"]) for c in ("BETA", "SE", "P")
    }
    np.testing.assert_allclose(beta[fitted], plink["BETA"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(se[fitted], plink["SE"], rtol=1e-5)
    np.testing.assert_allclose(p[fitted], plink["P"], rtol=1e-4, atol=1e-300)
