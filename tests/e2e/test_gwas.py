"""`genofed gwas` against real node processes, compared with PLINK 2 on the pooled files."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from bed_reader import open_bed

from genofed.cli import main
from genofed.io import read_phenotype_table
from genofed.io.plink import MISSING_CALL
from genofed.report import read_gwas_ssf
from tests.conftest import PlinkRunner
from tests.e2e.conftest import MISSING_AT_BETA, MONOMORPHIC_AT_ALPHA, NODE_SIZES, SplitFederation
from tests.plink import pooled_glm_linear

SSF_COLUMNS = [
    "chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
    "standard_error", "effect_allele_frequency", "p_value", "variant_id", "n",
]  # fmt: skip


def run_gwas(federation: Path, out: Path, *args: str) -> int:
    return main(["gwas", "--federation", str(federation), "--out", str(out), *args])


def within_printed_precision(ours: np.ndarray, plink: np.ndarray) -> None:
    """PLINK prints 6 significant digits: agree to half a unit in the 6th, with slack."""
    np.testing.assert_allclose(ours, plink, rtol=6e-6, atol=0)


@pytest.fixture(scope="module")
def ldl(split_federation: SplitFederation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gwas") / "ldl"
    code = run_gwas(
        split_federation.federation,
        out,
        "--phenotype", "ldl", "--covariates", "age,sex",
        "--passport", str(split_federation.passport_file),
    )  # fmt: skip
    assert code == 0
    return out


def test_gwas__writes_gwas_ssf_with_the_required_columns(
    ldl: Path, split_federation: SplitFederation
) -> None:
    header = (ldl.parent / "ldl.tsv").read_text().splitlines()[0].split("\t")
    assert header[: len(SSF_COLUMNS)] == SSF_COLUMNS
    meta = (ldl.parent / "ldl.tsv-meta.yaml").read_text()
    assert "ldl" in meta
    for name in NODE_SIZES:
        table = read_phenotype_table(split_federation.nodes[name] / "phenotypes.tsv")
        columns = np.column_stack([table.columns[c] for c in ("ldl", "age", "sex")])
        complete = int((~np.isnan(columns).any(axis=1)).sum())
        assert f"{name}: {complete}" in meta


def pooled_cohort(split_federation: SplitFederation) -> tuple[np.ndarray, ...]:
    """The pooled phenotype, covariates and complete-case mask, in the pooled file's order."""
    pheno = read_phenotype_table(split_federation.phenotypes)
    y, age, sex = (pheno.columns[c] for c in ("ldl", "age", "sex"))
    return y, age, sex, ~np.isnan(y) & ~np.isnan(age) & ~np.isnan(sex)


def test_gwas__equals_plink2_on_the_pooled_files_where_no_group_is_small(
    ldl: Path, split_federation: SplitFederation, plink2: PlinkRunner, tmp_path: Path
) -> None:
    table = read_gwas_ssf(ldl.parent / "ldl.tsv")
    rows = pooled_glm_linear(
        plink2, split_federation.pooled.parent.parent, "ldl", "age,sex", tmp_path
    )
    assert len(rows) == len(table) == 8000
    assert [r["ID"] for r in rows] == table.variant_id.tolist()
    exact = table.extra["disclosure"] == "."
    print(
        f"PLINK-exact rows: {exact.mean():.1%}",
        {f: int((table.extra["disclosure"] == f).sum()) for f in ("IMPUTED", "WITHHELD")},
    )
    assert exact.mean() > 0.3
    fitted = np.array([r["BETA"] != "NA" for r in rows])
    np.testing.assert_array_equal(~np.isnan(table.beta[exact]), fitted[exact])
    np.testing.assert_array_equal(table.n[exact], np.array([int(r["OBS_CT"]) for r in rows])[exact])
    for ours, column in ((table.beta, "BETA"), (table.standard_error, "SE"), (table.p_value, "P")):
        plink = np.array([float(r[column]) if r[column] != "NA" else np.nan for r in rows])
        compared = exact & fitted
        within_printed_precision(ours[compared], plink[compared])
    frequency = np.array([float(r["A1_FREQ"]) for r in rows])
    within_printed_precision(table.effect_allele_frequency[exact], frequency[exact])
    assert (table.effect_allele == np.array([r["A1"] for r in rows])).all()


def test_gwas__withholds_exactly_the_variants_with_a_small_genotype_group(
    ldl: Path, split_federation: SplitFederation
) -> None:
    table = read_gwas_ssf(ldl.parent / "ldl.tsv")
    *_, complete = pooled_cohort(split_federation)
    with open_bed(split_federation.pooled.with_suffix(".bed")) as bed:
        g = bed.read(dtype="int8")[complete]
    groups = np.stack([(g == d).sum(axis=0) for d in (0, 1, 2)], axis=1)
    small = ((groups > 0) & (groups < 5)).any(axis=1)
    withheld = table.extra["disclosure"] == "WITHHELD"
    np.testing.assert_array_equal(withheld, small)
    assert np.isnan(table.beta[withheld]).all()
    assert np.isnan(table.effect_allele_frequency[withheld]).all()
    assert (table.n[withheld] == 0).all()


def test_gwas__imputes_each_nodes_missing_calls_where_the_missing_group_is_small(
    ldl: Path, split_federation: SplitFederation
) -> None:
    table = read_gwas_ssf(ldl.parent / "ldl.tsv")
    y, age, sex, complete = pooled_cohort(split_federation)
    imputed = np.flatnonzero(table.extra["disclosure"] == "IMPUTED")
    assert len(imputed) > 0
    checked = imputed[:: max(1, len(imputed) // 25)]
    with open_bed(split_federation.pooled.with_suffix(".bed")) as bed:
        g = bed.read(index=np.s_[:, checked], dtype="int8").astype(np.float64)
    bounds = np.cumsum([0, *NODE_SIZES.values()])
    for column, variant in enumerate(checked):
        dosage = g[:, column]
        missing = dosage == MISSING_CALL
        assert missing[complete].any()  # only variants with a missing call are imputed
        for start, stop in itertools.pairwise(bounds):
            node = np.zeros(len(dosage), dtype=bool)
            node[start:stop] = True
            called = node & complete & ~missing
            mean = dosage[called].mean() if called.any() else 0.0
            dosage[node & missing] = mean
        x = np.column_stack(
            [np.ones(complete.sum()), age[complete], sex[complete], dosage[complete]]
        )
        fit = sm.OLS(y[complete], x).fit()
        assert table.n[variant] == complete.sum()
        assert table.beta[variant] == pytest.approx(fit.params[-1], rel=1e-8)
        assert table.standard_error[variant] == pytest.approx(fit.bse[-1], rel=1e-8)


def test_gwas__planted_edge_cases_drop_exactly_the_right_samples(
    ldl: Path, split_federation: SplitFederation
) -> None:
    table = read_gwas_ssf(ldl.parent / "ldl.tsv")
    pheno = read_phenotype_table(split_federation.phenotypes)
    complete = ~np.isnan(np.column_stack([pheno.columns[c] for c in ("ldl", "age", "sex")])).any(1)
    with open_bed(split_federation.pooled.with_suffix(".bed")) as bed:
        g = bed.read(index=np.s_[:, [MONOMORPHIC_AT_ALPHA, MISSING_AT_BETA]], dtype="int8")
    beta_rows = slice(NODE_SIZES["alpha"], NODE_SIZES["alpha"] + NODE_SIZES["beta"])
    assert (g[beta_rows, 1] == MISSING_CALL).all()
    expected = complete & (g[:, 1] != MISSING_CALL)
    assert table.n[MISSING_AT_BETA] == expected.sum()
    assert table.n[MONOMORPHIC_AT_ALPHA] == (complete & (g[:, 0] != MISSING_CALL)).sum()


def test_gwas__equals_statsmodels_ols_to_full_precision(
    ldl: Path, split_federation: SplitFederation
) -> None:
    table = read_gwas_ssf(ldl.parent / "ldl.tsv")
    pheno = read_phenotype_table(split_federation.phenotypes)
    y, age, sex = (pheno.columns[c] for c in ("ldl", "age", "sex"))
    fitted = np.flatnonzero(~np.isnan(table.beta) & (table.extra["disclosure"] == "."))
    checked = np.unique(np.r_[fitted[:: len(fitted) // 40], MISSING_AT_BETA, MONOMORPHIC_AT_ALPHA])
    with open_bed(split_federation.pooled.with_suffix(".bed")) as bed:
        g = bed.read(index=np.s_[:, checked], dtype="int8")
    for column, variant in enumerate(checked):
        keep = ~np.isnan(y) & ~np.isnan(age) & ~np.isnan(sex) & (g[:, column] != MISSING_CALL)
        x = np.column_stack([np.ones(keep.sum()), age[keep], sex[keep], g[keep, column]])
        fit = sm.OLS(y[keep], x).fit()
        assert table.n[variant] == keep.sum()
        assert table.beta[variant] == pytest.approx(fit.params[-1], rel=1e-8)
        assert table.standard_error[variant] == pytest.approx(fit.bse[-1], rel=1e-8)
        assert table.p_value[variant] == pytest.approx(fit.pvalues[-1], rel=1e-8)
