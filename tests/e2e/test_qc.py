"""``genofed qc`` over three node processes against PLINK 2 on the pooled files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genofed.aai import Issuer, write_passport
from genofed.cli import main
from tests.conftest import PlinkRunner, passport_for
from tests.e2e.conftest import MISSING_AT_BETA, MONOMORPHIC_AT_ALPHA, SplitFederation
from tests.plink import plink_pheno, read_tsv


def user_passport(split: SplitFederation, issuer: Issuer, user: str, directory: Path) -> Path:
    """A passport of its own for each user, since the nodes' disclosure ledgers remember
    every cohort a user queried: after a QC of every genotyped sample, a GWAS cohort that
    lacks a few of them at a node is a differencing query, which min_difference refuses."""
    token = passport_for(issuer, *(f"genofed:{name}" for name in split.nodes), user=user)
    return write_passport(token, directory / f"{user}.jwt")


@pytest.fixture(scope="module")
def carol(
    split_federation: SplitFederation, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return user_passport(split_federation, issuer, "carol", tmp_path_factory.mktemp("carol"))


@pytest.fixture(scope="module")
def qc(
    split_federation: SplitFederation, carol: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("qc") / "qc"
    code = main(
        ["qc", "--federation", str(split_federation.federation), "--out", str(out),
         "--passport", str(carol), "--block-size", "3000"]
    )  # fmt: skip
    assert code == 0
    return out.with_suffix(".tsv")


@pytest.fixture(scope="module")
def plink_qc(
    plink2: PlinkRunner, split_federation: SplitFederation, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return plink2(
        "--bfile", split_federation.pooled, "--freq", "--missing", "variant-only", "--hardy",
        out=tmp_path_factory.mktemp("plink") / "qc",
    )  # fmt: skip


def column(rows: list[dict[str, str]], name: str) -> np.ndarray:
    return np.array([np.nan if r[name] in ("NA", ".") else float(r[name]) for r in rows])


def test_qc__equals_plink2_freq_missing_and_hardy_on_the_pooled_files(
    qc: Path, plink_qc: Path
) -> None:
    ours = read_tsv(qc)
    freq = read_tsv(plink_qc.with_suffix(".afreq"))
    vmiss = read_tsv(plink_qc.with_suffix(".vmiss"))
    hardy = read_tsv(plink_qc.with_suffix(".hardy"))
    assert len(ours) == len(freq) == len(vmiss) == len(hardy) == 8000
    assert [r["variant_id"] for r in ours] == [r["ID"] for r in freq]
    assert [r["effect_allele"] for r in ours] == [r["ALT"] for r in freq]
    np.testing.assert_allclose(
        column(ours, "effect_allele_frequency"), column(freq, "ALT_FREQS"), rtol=6e-6, atol=0
    )
    np.testing.assert_array_equal(column(ours, "missing_count"), column(vmiss, "MISSING_CT"))
    np.testing.assert_allclose(column(ours, "missing_rate"), column(vmiss, "F_MISS"), rtol=6e-6)
    np.testing.assert_array_equal(column(ours, "n"), column(freq, "OBS_CT") / 2)
    np.testing.assert_allclose(column(ours, "hwe_p"), column(hardy, "P"), rtol=1e-4, atol=0)


def test_qc__the_planted_edge_cases_are_counted_across_nodes(qc: Path) -> None:
    ours = read_tsv(qc)
    # every call missing at node beta (650 of 2,400 samples), called elsewhere
    assert int(ours[MISSING_AT_BETA]["missing_count"]) >= 650
    # monomorphic at alpha only: still polymorphic over the federation
    assert 0 < float(ours[MONOMORPHIC_AT_ALPHA]["effect_allele_frequency"]) < 1


def test_qc__json_summary_names_the_nodes(
    split_federation: SplitFederation,
    carol: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["qc", "--federation", str(split_federation.federation), "--out", str(tmp_path / "q"),
         "--passport", str(carol), "--format", "json"]
    )  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record["samples_per_node"]) == {"alpha", "beta", "gamma"}
    assert record["variants"] == 8000
    assert record["dropped_nodes"] == []


def test_gwas__maf_geno_and_hwe_filters_remove_what_plink2_removes_from_the_cohort(
    plink2: PlinkRunner,
    split_federation: SplitFederation,
    issuer: Issuer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    passport = user_passport(split_federation, issuer, "bob", tmp_path)
    filters = ["--maf", "0.05", "--geno", "0.1", "--hwe", "1e-4"]
    code = main(
        ["gwas", "--federation", str(split_federation.federation), "--out", str(tmp_path / "f"),
         "--passport", str(passport), "--phenotype", "ldl",
         "--covariates", "age,sex", "--format", "json", *filters]
    )  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    pheno = plink_pheno(split_federation.phenotypes, tmp_path / "pheno.tsv")
    out = plink2(
        "--bfile", split_federation.pooled, "--pheno", pheno, "--pheno-name", "ldl",
        "--covar", pheno, "--covar-name", "age,sex", "--glm", "hide-covar", "omit-ref",
        "--require-pheno", "ldl", "--require-covar", "age", "sex", *filters,
        out=tmp_path / "plink",
    )  # fmt: skip
    plink = read_tsv(out.with_suffix(".ldl.glm.linear"))
    ours = read_tsv(tmp_path / "f.tsv")
    assert [r["variant_id"] for r in ours] == [r["ID"] for r in plink]
    np.testing.assert_allclose(column(ours, "beta"), column(plink, "BETA"), rtol=6e-6)
    log = out.with_suffix(".log").read_text()
    assert f"--geno: {record['filtered']['geno']} variant" in log
    assert f"--hwe: {record['filtered']['hwe']} variant" in log
    assert f"{record['filtered']['maf']} variant" in log
    assert sum(record["filtered"].values()) == 8000 - len(ours)
    assert sum(record["filtered"].values()) > 0
