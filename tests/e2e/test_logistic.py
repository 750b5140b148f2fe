"""``genofed gwas --model logistic`` over three node processes against PLINK 2, pooled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genofed.aai import Issuer, write_passport
from genofed.cli import main
from genofed.coordinator import create_federation
from genofed.io import read_phenotype_table, write_phenotype_table
from genofed.kernels.logistic import (
    LogisticResult,
    fit_null_logistic,
    local_missing_score_sums,
    local_null_logistic_sums,
    local_score_sums,
    score_test,
)
from genofed.node.local import LocalNodes, free_port
from genofed.node.setup import init_node, trust_peers
from genofed.report import read_gwas_ssf
from tests.conftest import PlinkRunner, passport_for
from tests.e2e.conftest import SplitFederation
from tests.kernels.test_logistic import AGE_SEX, Plink, assert_equals_plink, read_samples
from tests.plink import pooled_glm_logistic, read_tsv


@pytest.fixture(scope="module")
def t2d(
    split_federation: SplitFederation,
    issuer: Issuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    directory = tmp_path_factory.mktemp("logistic")
    grants = (f"genofed:{name}" for name in split_federation.nodes)
    passport = write_passport(passport_for(issuer, *grants, user="dave"), directory / "dave.jwt")
    out = directory / "t2d"
    code = main(
        ["gwas", "--federation", str(split_federation.federation), "--out", str(out),
         "--passport", str(passport), "--phenotype", "t2d", "--covariates", "age,sex",
         "--model", "logistic", "--block-size", "3000"]
    )  # fmt: skip
    assert code == 0
    return out.with_suffix(".tsv")


def test_logistic_gwas__equals_plink2_glm_with_firth_fallback_on_the_pooled_files(
    t2d: Path,
    plink2: PlinkRunner,
    split_federation: SplitFederation,
    tmp_path: Path,
) -> None:
    tsv = t2d
    table = read_gwas_ssf(tsv)
    rows = read_tsv(tsv)
    assert table.effect == "odds_ratio"
    ours = LogisticResult(
        beta=table.beta,
        standard_error=table.standard_error,
        z_statistic=table.beta / table.standard_error,
        p_value=table.p_value,
        n=table.n,
        firth=np.array([r["firth"] == "Y" for r in rows]),
        error=np.array([r["errcode"] for r in rows]),
        rounds=np.zeros(len(table), dtype=np.int64),
    )
    plink = Plink.parse(
        pooled_glm_logistic(
            plink2, split_federation.pooled.parent, "t2d", "age,sex", tmp_path,
            genotypes=split_federation.pooled, phenotypes=split_federation.phenotypes,
        )
    )  # fmt: skip
    assert list(table.variant_id) == plink.ids
    assert plink.firth.sum() > 100  # rare variants fall back to Firth
    assert_equals_plink(ours, plink)
    cases = np.array([int(r["n_cases"]) for r in rows])
    controls = np.array([int(r["n_controls"]) for r in rows])
    np.testing.assert_array_equal(cases + controls, table.n)
    assert (cases > 0).all()


def test_logistic_gwas__a_trait_that_is_not_0_1_names_the_values(
    split_federation: SplitFederation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["gwas", "--federation", str(split_federation.federation), "--out", str(tmp_path / "x"),
         "--passport", str(split_federation.passport_file), "--phenotype", "ldl",
         "--model", "logistic"]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "phenotype 'ldl' is not a case/control trait" in error
    assert "code cases as 1 and controls as 0" in error
    assert not list(tmp_path.iterdir())


def test_logistic_gwas__a_node_without_cases_takes_part_and_is_reported(
    split_federation: SplitFederation,
    issuer: Issuer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cards = []
    for name in ("alpha", "beta"):
        data = tmp_path / name
        data.mkdir()
        for suffix in (".bed", ".bim", ".fam"):
            shutil.copy(split_federation.nodes[name] / f"genotypes{suffix}", data)
        table = read_phenotype_table(split_federation.nodes[name] / "phenotypes.tsv")
        columns = dict(table.columns)
        if name == "alpha":  # controls only
            columns["t2d"] = np.where(np.isnan(columns["t2d"]), np.nan, 0.0)
        write_phenotype_table(data / "phenotypes.tsv", table.iids, columns)
        init = init_node(
            name, bfile=data / "genotypes", phenotypes=data / "phenotypes.tsv",
            out=data / "node", port=free_port(), trusted_issuers=[issuer.jwks],
        )  # fmt: skip
        cards.append(init.card)
    configs = [tmp_path / name / "node" / "node.toml" for name in ("alpha", "beta")]
    for config in configs:
        trust_peers(config, cards)
    create_federation(cards, tmp_path / "federation.toml")
    grants = ("genofed:alpha", "genofed:beta")
    passport = write_passport(passport_for(issuer, *grants), tmp_path / "p.jwt")
    with LocalNodes(configs):
        code = main(
            ["gwas", "--federation", str(tmp_path / "federation.toml"),
             "--out", str(tmp_path / "t2d"), "--passport", str(passport), "--phenotype", "t2d",
             "--covariates", "age,sex", "--model", "logistic", "--format", "json"]
        )  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["cases_per_node"]["alpha"] == 0
    assert record["cases_per_node"]["beta"] > 0
    assert record["samples_per_node"]["alpha"] > 200  # its controls count
    meta = (tmp_path / "t2d.tsv-meta.yaml").read_text()
    assert "alpha have no cases and took part with controls" in meta


def test_logistic_gwas__score_test_mode_refits_its_hits_exactly_as_the_wald_run(
    t2d: Path, split_federation: SplitFederation, issuer: Issuer, tmp_path: Path
) -> None:
    grants = (f"genofed:{name}" for name in split_federation.nodes)
    passport = write_passport(passport_for(issuer, *grants, user="erin"), tmp_path / "erin.jwt")
    code = main(
        ["gwas", "--federation", str(split_federation.federation), "--out", str(tmp_path / "s"),
         "--passport", str(passport), "--phenotype", "t2d", "--covariates", "age,sex",
         "--model", "logistic", "--test", "score", "--refine-below", "0.05",
         "--block-size", "3000"]
    )  # fmt: skip
    assert code == 0
    score, wald = read_tsv(tmp_path / "s.tsv"), read_tsv(t2d)
    refined = np.array([r["test"] == "wald" for r in score])
    p = np.array([float(r["p_value"]) if r["p_value"] != "NA" else np.nan for r in score])
    assert 0 < refined.sum() < len(score) // 2
    assert (p[~refined] >= 0.05).all()  # only variants with score p below 0.05 are refitted

    def values(rows: list[dict[str, str]], name: str) -> list[str]:
        return [r[name] for r, chosen in zip(rows, refined, strict=True) if chosen]

    for name in ("n", "firth", "errcode"):
        assert values(score, name) == values(wald, name), name
    for name in ("odds_ratio", "standard_error", "p_value"):  # batched GEMMs round alike
        ours, full = (
            np.array([np.nan if v == "NA" else float(v) for v in values(rows, name)])
            for rows in (score, wald)
        )
        np.testing.assert_allclose(ours, full, rtol=1e-9, err_msg=name)
    for name in ("n_cases", "n_controls", "effect_allele_frequency"):
        assert [r[name] for r in score] == [r[name] for r in wald], name
    # The score rows equal the score test on the pooled samples, including
    # variants with missing calls, whose missing-call sums are a round of their own.
    pooled = read_samples(
        split_federation.phenotypes, split_federation.pooled.with_suffix(".bed"), "t2d", AGE_SEX
    )
    design, block = pooled.node()
    null = fit_null_logistic(lambda coef: local_null_logistic_sums(design, coef), pooled.k)
    expected = score_test(
        null,
        local_score_sums(design, null.coefficients, block),
        local_missing_score_sums(design, null.coefficients, block),
    )
    n = np.array([int(r["n"]) for r in score])
    assert (n[~refined] < n.max()).sum() > 10  # score rows with missing calls
    np.testing.assert_allclose(p[~refined], expected.p_value[~refined], rtol=1e-8)
