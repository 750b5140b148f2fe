"""``genofed qc`` over three node processes against PLINK 2 on the pooled files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed

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


def pooled_small_groups(split: SplitFederation) -> np.ndarray:
    """Variants with 1 to 4 pooled samples of ALT dosage 0, 1, 2 or a missing call."""
    with open_bed(split.pooled.with_suffix(".bed")) as bed:
        g = bed.read(dtype="int8")
    groups = np.stack([(g == d).sum(axis=0) for d in (0, 1, 2)] + [(g < 0).sum(axis=0)], axis=1)
    return ((groups > 0) & (groups < 5)).any(axis=1)


def test_qc__equals_plink2_freq_missing_and_hardy_where_no_group_is_small(
    qc: Path, plink_qc: Path, split_federation: SplitFederation
) -> None:
    ours = read_tsv(qc)
    freq = read_tsv(plink_qc.with_suffix(".afreq"))
    vmiss = read_tsv(plink_qc.with_suffix(".vmiss"))
    hardy = read_tsv(plink_qc.with_suffix(".hardy"))
    assert len(ours) == len(freq) == len(vmiss) == len(hardy) == 8000
    assert [r["variant_id"] for r in ours] == [r["ID"] for r in freq]
    assert [r["effect_allele"] for r in ours] == [r["ALT"] for r in freq]
    released = np.array([r["disclosure"] == "." for r in ours])
    np.testing.assert_array_equal(~released, pooled_small_groups(split_federation))
    assert released.sum() > 1000
    np.testing.assert_allclose(
        column(ours, "effect_allele_frequency")[released],
        column(freq, "ALT_FREQS")[released],
        rtol=6e-6,
        atol=0,
    )
    for name, plink in (
        ("missing_count", column(vmiss, "MISSING_CT")),
        ("n", column(freq, "OBS_CT") / 2),
    ):
        np.testing.assert_array_equal(column(ours, name)[released], plink[released])
    np.testing.assert_allclose(
        column(ours, "missing_rate")[released], column(vmiss, "F_MISS")[released], rtol=6e-6
    )
    np.testing.assert_allclose(
        column(ours, "hwe_p")[released], column(hardy, "P")[released], rtol=1e-4, atol=0
    )


def test_qc__withholds_every_count_of_a_variant_with_a_small_group(qc: Path) -> None:
    withheld = [r for r in read_tsv(qc) if r["disclosure"] == "WITHHELD"]
    assert withheld
    for name in ("effect_allele_frequency", "missing_count", "missing_rate", "hwe_p", "n"):
        assert {r[name] for r in withheld} == {"NA"}


def test_qc__the_planted_edge_cases_are_counted_across_nodes(qc: Path) -> None:
    ours = read_tsv(qc)
    # every call missing at node beta (650 of 2,400 samples), called elsewhere
    if ours[MISSING_AT_BETA]["disclosure"] == ".":
        assert int(ours[MISSING_AT_BETA]["missing_count"]) >= 650
    # monomorphic at alpha only: still polymorphic over the federation
    if ours[MONOMORPHIC_AT_ALPHA]["disclosure"] == ".":
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
    # every variant PLINK keeps is kept, unless its counts in the cohort were withheld
    kept = {r["variant_id"] for r in ours}
    assert kept <= {r["ID"] for r in plink}
    assert len(plink) - len(ours) <= record["filtered"]["withheld"]
    exact = [r for r in ours if r["disclosure"] == "."]
    by_id = {r["ID"]: r for r in plink}
    np.testing.assert_allclose(
        column(exact, "beta"), column([by_id[r["variant_id"]] for r in exact], "BETA"), rtol=6e-6
    )
    assert len(exact) > 100
    assert sum(record["filtered"].values()) == 8000 - len(ours)
    assert record["filtered"]["maf"] > 0
