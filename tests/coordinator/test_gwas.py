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
    NO_MISSING_CALL,
    NODE_SIZES,
    Nodes,
    Researcher,
    connect,
    serving,
)
from tests.coordinator.pooled import (
    EXACT,
    IMPUTED,
    MIN_COUNT,
    WITHHELD,
    Pooled,
    assert_table_equals,
    categories,
    disclosure,
    imputed_dosages,
    released_gwas,
    small_group,
)

COVARIATES = ("age", "sex")
EVERY_NODE = tuple(NODE_SIZES)


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
    expected = released_gwas(pooled, "ldl", COVARIATES, nodes=EVERY_NODE)
    assert_table_equals(ldl.table, expected)
    assert all(count > 0 for count in categories(expected.disclosure).values())
    assert list(ldl.table.variant_id) == list(pooled.variant_ids)
    analysed = pooled.analysed("ldl", COVARIATES)
    assert ldl.samples_per_node == {
        name: int(analysed[rows].sum()) for name, rows in pooled.rows.items()
    }
    assert ldl.dropped == ()
    assert ldl.filtered == {}
    assert 0 < ldl.verify_seconds < ldl.seconds  # the verifiers reported their time
    assert ldl.tsv.exists()
    assert ldl.metadata.exists()
    assert "failed during the study" not in ldl.metadata.read_text()
    header, *rows = ldl.tsv.read_text().splitlines()
    disclosures = [row.split("\t")[header.split("\t").index("disclosure")] for row in rows]
    assert disclosures == list(expected.disclosure)


def test_gwas__variants_with_a_small_genotype_group_are_withheld(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    cohort = pooled.cohort("ldl", COVARIATES, nodes=EVERY_NODE)
    counts = genotype_counts(pooled.dosages[cohort])
    small = small_group(counts[:, :3])  # 1 to min_count - 1 samples with ALT dosage 0, 1 or 2
    assert 0 < small.sum() < len(small)
    np.testing.assert_array_equal(ldl.table.extra["disclosure"] == WITHHELD, small)
    assert (ldl.table.n[small] == 0).all()
    for column in ("beta", "standard_error", "p_value", "effect_allele_frequency"):
        assert np.isnan(getattr(ldl.table, column)[small]).all(), column
    # a small missing-call group alone withholds nothing: the row is imputed
    few_missing = small_group(counts[:, 3:]) & ~small
    assert few_missing.any()
    assert (ldl.table.extra["disclosure"][few_missing] == IMPUTED).all()
    assert (ldl.table.n[few_missing] == len(cohort)).all()


def test_gwas__rows_are_exact_without_missing_calls_or_with_a_unique_missing_call_group(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    labels = ldl.table.extra["disclosure"]
    np.testing.assert_array_equal(labels, disclosure(pooled, "ldl", COVARIATES, nodes=EVERY_NODE))
    cohort = pooled.cohort("ldl", COVARIATES, nodes=EVERY_NODE)
    missing = (pooled.dosages[cohort] == MISSING_CALL).sum(axis=0)
    exact, imputed = labels == EXACT, labels == IMPUTED
    assert missing[NO_MISSING_CALL] == 0
    assert exact[NO_MISSING_CALL]
    # exact with missing calls: tested on the called samples, as PLINK 2 does
    assert (exact & (missing >= MIN_COUNT)).any()
    assert (ldl.table.n[exact] == len(cohort) - missing[exact]).all()
    # enough missing calls, but no node's own group is unique: imputed over every sample
    assert (imputed & (missing >= MIN_COUNT)).any()
    assert (ldl.table.n[imputed] == len(cohort)).all()


def test_gwas__planted_edge_cases_drop_the_samples_plink2_drops(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    labels = ldl.table.extra["disclosure"]
    cohort = sum(ldl.samples_per_node.values())
    # every call missing at beta: a unique group there, so the variant is tested on the
    # other nodes' called samples
    assert labels[MISSING_AT_BETA] == EXACT
    assert ldl.table.n[MISSING_AT_BETA] <= cohort - ldl.samples_per_node["beta"]
    assert np.isfinite(ldl.table.beta[MISSING_AT_BETA])
    # monomorphic at alpha only: still polymorphic, and tested, over the federation
    assert labels[MONOMORPHIC_AT_ALPHA] == EXACT
    assert 0 < ldl.table.effect_allele_frequency[MONOMORPHIC_AT_ALPHA] < 1
    assert np.isfinite(ldl.table.beta[MONOMORPHIC_AT_ALPHA])
    # a genotype that does not vary over the variant's samples: no estimate (PLINK 2's NA),
    # whether it is tested on the called samples or with missing calls at the nodes' means
    analysed = pooled.dosages[pooled.analysed("ldl", COVARIATES)].astype(np.float64)
    analysed[analysed == MISSING_CALL] = np.nan
    constant = np.nanmin(analysed, axis=0) == np.nanmax(analysed, axis=0)
    assert constant[ALL_HETEROZYGOUS]
    assert labels[ALL_HETEROZYGOUS] == IMPUTED  # four missing calls: too few to release
    assert (constant & (labels == EXACT)).any()
    assert (constant & (labels == IMPUTED)).sum() > 1
    withheld = labels == WITHHELD
    assert not (constant & withheld).any()
    assert np.isnan(ldl.table.beta[constant | withheld]).all()
    assert np.isnan(ldl.table.p_value[constant | withheld]).all()
    assert np.isfinite(ldl.table.beta[~constant & ~withheld]).all()


def test_gwas__equals_statsmodels_ols_on_a_handful_of_variants(
    ldl: LinearGwas, pooled: Pooled
) -> None:
    labels = ldl.table.extra["disclosure"]
    frequency = ldl.table.effect_allele_frequency
    common = np.flatnonzero((frequency > 0.1) & (frequency < 0.9))
    common = common[common != ALL_HETEROZYGOUS]
    exact = [
        NO_MISSING_CALL, MONOMORPHIC_AT_ALPHA, MISSING_AT_BETA,
        *common[labels[common] == EXACT][::3][:5],
    ]  # fmt: skip
    imputed = common[labels[common] == IMPUTED][::17][:5]
    assert len(exact) == 8
    assert len(imputed) == 5
    cohort = pooled.cohort("ldl", COVARIATES, nodes=EVERY_NODE)
    y = pooled.columns["ldl"][cohort]
    covariates = [np.ones(len(cohort)), *(pooled.columns[c][cohort] for c in COVARIATES)]
    filled = imputed_dosages(pooled, "ldl", COVARIATES, nodes=EVERY_NODE)
    for variant in [*exact, *imputed]:
        if labels[variant] == EXACT:  # on the called samples
            g = pooled.dosages[cohort, variant].astype(np.float64)
            rows = g != MISSING_CALL
        else:  # on every sample, each node's missing calls at its mean dosage
            g, rows = filled[:, variant], np.ones(len(cohort), dtype=np.bool_)
            assert not np.all(g == np.rint(g))  # some missing call, at a fractional mean
        design = np.column_stack([*(c[rows] for c in covariates), g[rows]])
        fit = sm.OLS(y[rows], design).fit()
        assert ldl.table.n[variant] == rows.sum()
        np.testing.assert_allclose(ldl.table.beta[variant], fit.params[-1], rtol=1e-8)
        np.testing.assert_allclose(ldl.table.standard_error[variant], fit.bse[-1], rtol=1e-8)
        np.testing.assert_allclose(ldl.table.p_value[variant], fit.pvalues[-1], rtol=1e-8)
        np.testing.assert_allclose(
            ldl.table.effect_allele_frequency[variant], g[rows].mean() / 2, rtol=1e-12
        )


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
    # removals among the variants the filters before it kept. Variants whose counts are
    # withheld (a group of 1 to min_count - 1 samples, missing calls included) go first.
    counts = genotype_counts(pooled.dosages[pooled.analysed("ldl", COVARIATES)])
    removed = {
        "withheld": small_group(counts),
        **qc_filters(variant_qc(counts), maf=maf, geno=geno, hwe=hwe),
    }
    keep = np.ones(len(pooled.variant_ids), dtype=bool)
    expected = {}
    for name in ("withheld", "geno", "hwe", "maf"):
        expected[name] = int((keep & removed[name]).sum())
        keep &= ~removed[name]
    assert filtered.filtered == expected
    assert all(count > 0 for count in expected.values()), expected
    assert not keep[MISSING_AT_BETA]  # a third of its calls are missing
    assert removed["withheld"][ALL_HETEROZYGOUS]  # four missing calls
    assert removed["hwe"][ALL_HETEROZYGOUS]  # and no homozygote: far from Hardy-Weinberg
    assert list(filtered.table.variant_id) == list(pooled.variant_ids[keep])
    unfiltered = released_gwas(pooled, "ldl", COVARIATES, nodes=EVERY_NODE)
    kept = unfiltered.take(np.flatnonzero(keep))
    assert_table_equals(filtered.table, kept)
    assert categories(kept.disclosure)[EXACT] > 0
    assert categories(kept.disclosure)[IMPUTED] > 0
    assert categories(kept.disclosure)[WITHHELD] == 0
    for name, count in expected.items():
        assert f"--{name} removed {count:,} variants" in filtered.metadata.read_text()
