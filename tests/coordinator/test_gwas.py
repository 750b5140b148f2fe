"""A linear GWAS over three in-process nodes equals the same GWAS on the pooled samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from genofed._progress import Progress
from genofed.aai import Issuer
from genofed.coordinator import LinearGwas, run_gwas
from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL
from genofed.kernels.qc import genotype_counts, qc_filters, variant_qc
from tests.coordinator.conftest import (
    ALL_HETEROZYGOUS,
    BLOCK_SIZE,
    MISSING_AT_BETA,
    MONOMORPHIC_AT_ALPHA,
    NODE_SIZES,
    Nodes,
    Researcher,
    connect,
    serving,
)
from tests.coordinator.pooled import Pooled, assert_table_equals, linear_gwas

COVARIATES = ("age", "sex")


@pytest.fixture(scope="module")
def ldl(
    configured: Nodes, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LinearGwas]:
    """ldl on age and sex over the three nodes, in four blocks."""
    with serving(configured, tmp_path_factory.mktemp("state")) as nodes:
        researcher = connect(nodes, issuer, "ldl-study@example.org")
        try:
            yield run_gwas(
                nodes.federation,
                phenotype="ldl",
                covariates=COVARIATES,
                out=tmp_path_factory.mktemp("ldl") / "ldl",
                block_size=BLOCK_SIZE,
                http=researcher.http,
            )
        finally:
            for client in researcher.http.values():
                client.close()


def test_gwas__split_over_three_nodes_equals_the_pooled_kernel(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    assert_table_equals(ldl.table, linear_gwas(pooled, "ldl", COVARIATES, nodes=tuple(NODE_SIZES)))
    assert list(ldl.table.variant_id) == list(pooled.variant_ids)
    analysed = pooled.analysed("ldl", COVARIATES)
    assert ldl.samples_per_node == {
        name: int(analysed[rows].sum()) for name, rows in pooled.rows.items()
    }
    assert ldl.dropped == ()
    assert ldl.filtered == {}
    assert ldl.tsv.exists()
    assert ldl.metadata.exists()
    assert "failed during the study" not in ldl.metadata.read_text()


def test_gwas__planted_edge_cases_drop_the_samples_plink2_drops(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    cohort = sum(ldl.samples_per_node.values())
    # every call missing at beta: the variant is tested on the other nodes' called samples
    assert ldl.table.n[MISSING_AT_BETA] <= cohort - ldl.samples_per_node["beta"]
    assert np.isfinite(ldl.table.beta[MISSING_AT_BETA])
    # monomorphic at alpha only: still polymorphic, and tested, over the federation
    assert 0 < ldl.table.effect_allele_frequency[MONOMORPHIC_AT_ALPHA] < 1
    assert np.isfinite(ldl.table.beta[MONOMORPHIC_AT_ALPHA])
    # a genotype that does not vary over the variant's samples: no estimate (PLINK 2's NA)
    analysed = pooled.dosages[pooled.analysed("ldl", COVARIATES)].astype(np.float64)
    analysed[analysed == MISSING_CALL] = np.nan
    constant = np.nanmin(analysed, axis=0) == np.nanmax(analysed, axis=0)
    assert constant[ALL_HETEROZYGOUS]
    assert constant.sum() > 1
    assert np.isnan(ldl.table.beta[constant]).all()
    assert np.isnan(ldl.table.p_value[constant]).all()
    assert np.isfinite(ldl.table.beta[~constant]).all()


def test_gwas__equals_statsmodels_ols_on_a_handful_of_variants(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    analysed = pooled.analysed("ldl", COVARIATES)
    frequency = ldl.table.effect_allele_frequency
    common = np.flatnonzero((frequency > 0.1) & (frequency < 0.9))
    common = common[common != ALL_HETEROZYGOUS]
    chosen = [MONOMORPHIC_AT_ALPHA, MISSING_AT_BETA, *common[::17][:5]]
    for variant in chosen:
        g = pooled.dosages[:, variant]
        rows = analysed & (g != MISSING_CALL)
        design = np.column_stack(
            [np.ones(rows.sum()), *(pooled.columns[c][rows] for c in COVARIATES), g[rows]]
        )
        fit = sm.OLS(pooled.columns["ldl"][rows], design).fit()
        assert ldl.table.n[variant] == rows.sum()
        np.testing.assert_allclose(ldl.table.beta[variant], fit.params[-1], rtol=1e-8)
        np.testing.assert_allclose(ldl.table.standard_error[variant], fit.bse[-1], rtol=1e-8)
        np.testing.assert_allclose(ldl.table.p_value[variant], fit.pvalues[-1], rtol=1e-8)


def test_gwas__covariate_constant_over_the_federation_is_refused_before_any_variant(
    nodes: Nodes, researcher: Researcher, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    with pytest.raises(
        InputError, match=r"covariate 'batch' is constant over the federation's [\d,]+ samples"
    ):
        run_gwas(
            nodes.federation, phenotype="ldl", covariates=["age", "batch"], out=tmp_path / "x",
            block_size=BLOCK_SIZE, progress=seen.append, http=researcher.http,
        )  # fmt: skip
    assert seen == []
    assert not list(tmp_path.iterdir())


def test_gwas__collinear_covariates_are_refused_before_any_variant(
    nodes: Nodes, researcher: Researcher, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    with pytest.raises(
        InputError, match=r"covariates 'age' and 'age_months' are collinear .*--max-corr 0\.999"
    ):
        run_gwas(
            nodes.federation, phenotype="ldl", covariates=["age", "sex", "age_months"],
            out=tmp_path / "x", block_size=BLOCK_SIZE, progress=seen.append, http=researcher.http,
        )  # fmt: skip
    assert seen == []
    assert not list(tmp_path.iterdir())


def test_gwas__covariates_collinear_as_a_group_are_refused_before_any_variant(
    nodes: Nodes, researcher: Researcher, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    with pytest.raises(
        InputError, match=r"covariates 'age', 'sex', 'age_and_sex' are collinear as a group"
    ):
        run_gwas(
            nodes.federation, phenotype="ldl", covariates=["age", "sex", "age_and_sex"],
            out=tmp_path / "x", block_size=BLOCK_SIZE, progress=seen.append, http=researcher.http,
        )  # fmt: skip
    assert seen == []
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("role", ["phenotype", "covariate"])
def test_gwas__column_one_node_lacks_is_refused_naming_the_node(
    nodes: Nodes, researcher: Researcher, tmp_path: Path, role: str
) -> None:
    columns = {"phenotype": "hdl", "covariates": ["age"]}
    if role == "covariate":
        columns = {"phenotype": "ldl", "covariates": ["age", "hdl"]}
    with pytest.raises(
        InputError,
        match=r"^node gamma has no column 'hdl'; its phenotype table has: ldl, t2d, age, sex,",
    ):
        run_gwas(
            nodes.federation, out=tmp_path / "x", block_size=BLOCK_SIZE,
            http=researcher.http, **columns,  # type: ignore[arg-type]
        )  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_gwas__variant_filters_remove_what_plink2_would_from_the_pooled_counts(
    nodes: Nodes, researcher: Researcher, pooled: Pooled, tmp_path: Path
) -> None:
    maf, geno, hwe = 0.05, 0.1, 1e-6
    filtered = run_gwas(
        nodes.federation, phenotype="ldl", covariates=COVARIATES, out=tmp_path / "f",
        block_size=BLOCK_SIZE, maf=maf, geno=geno, hwe=hwe, http=researcher.http,
    )  # fmt: skip
    # PLINK 2 counts the filters over the samples in the analysis (--require-pheno
    # --require-covar), applies --geno, then --hwe, then --maf, and reports each one's
    # removals among the variants the filters before it kept.
    analysed = pooled.analysed("ldl", COVARIATES)
    removed = qc_filters(
        variant_qc(genotype_counts(pooled.dosages[analysed])), maf=maf, geno=geno, hwe=hwe
    )
    keep = np.ones(len(pooled.variant_ids), dtype=bool)
    expected = {}
    for name in ("geno", "hwe", "maf"):
        expected[name] = int((keep & removed[name]).sum())
        keep &= ~removed[name]
    assert filtered.filtered == expected
    assert all(count > 0 for count in expected.values()), expected
    assert not keep[MISSING_AT_BETA]  # a third of its calls are missing
    assert not keep[ALL_HETEROZYGOUS]  # no homozygote: far from Hardy-Weinberg
    assert list(filtered.table.variant_id) == list(pooled.variant_ids[keep])
    unfiltered = linear_gwas(pooled, "ldl", COVARIATES, nodes=tuple(NODE_SIZES))
    assert_table_equals(filtered.table, unfiltered.take(np.flatnonzero(keep)))
    for name, count in expected.items():
        assert f"--{name} removed {count:,} variants" in filtered.metadata.read_text()
