"""The simulated files, checked on disk with PLINK 2 and numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed

from genofed.io import read_phenotype_table
from genofed.sim import COUNTRIES, SimulationResult
from tests.conftest import PlinkRunner
from tests.plink import pooled_glm_linear, read_tsv

CODES = ("CZ", "EE", "DE", "PT", "SI", "ES")
FILE_SETS = (*CODES, "pooled")


def read_dosages(prefix: Path) -> np.ndarray:
    with open_bed(prefix.with_suffix(".bed")) as bed:
        return bed.read(dtype="int8")


def test_simulate__writes_one_file_set_and_table_per_node(cohorts: SimulationResult) -> None:
    out = cohorts.out
    for name in FILE_SETS:
        for suffix in (".bed", ".bim", ".fam"):
            assert (out / name / f"genotypes{suffix}").is_file()
        table = read_phenotype_table(out / name / "phenotypes.tsv")
        assert list(table.columns) == ["ldl", "t2d", "age", "sex"]
        fam_iids = [
            line.split()[1] for line in (out / name / "genotypes.fam").read_text().splitlines()
        ]
        assert list(table.iids) == fam_iids
    pooled = read_phenotype_table(out / "pooled" / "phenotypes.tsv")
    assert len(set(pooled.iids)) == len(pooled.iids) == 6 * 400
    assert pooled.iids[:2] == ("CZ000001", "CZ000002")
    assert {iid[:2] for iid in pooled.iids} == set(CODES)
    assert not list(out.parent.glob(".*partial*"))


def test_simulate__pooled_is_every_country_side_by_side(cohorts: SimulationResult) -> None:
    pooled = read_dosages(cohorts.out / "pooled" / "genotypes")
    countries = [read_dosages(cohorts.out / code / "genotypes") for code in CODES]
    assert pooled.shape == (6 * 400, 8000)
    np.testing.assert_array_equal(pooled, np.vstack(countries))
    bims = {(cohorts.out / n / "genotypes.bim").read_text() for n in FILE_SETS}
    assert len(bims) == 1


def test_simulate__plink2_reads_every_file_set(
    cohorts: SimulationResult, plink2: PlinkRunner, tmp_path: Path
) -> None:
    for name in FILE_SETS:
        prefix = cohorts.out / name / "genotypes"
        out = plink2("--bfile", prefix, "--missing", "variant-only", out=tmp_path / name)
        rows = read_tsv(out.with_suffix(".vmiss"))
        assert len(rows) == 8000
        dosages = read_dosages(prefix)
        expected_missing = (dosages == -127).sum(axis=0)
        np.testing.assert_array_equal([int(r["MISSING_CT"]) for r in rows], expected_missing)


def test_simulate__missing_call_rate_differs_by_country(cohorts: SimulationResult) -> None:
    for summary in cohorts.countries:
        dosages = read_dosages(cohorts.out / summary.code / "genotypes")
        rate = float((dosages == -127).mean())
        expected = COUNTRIES[summary.code].missing_call_rate
        assert rate == pytest.approx(expected, rel=0.15)
        assert rate == pytest.approx(summary.missing_call_rate)


def test_simulate__fst_is_european_and_ordered_by_distance(
    cohorts: SimulationResult, plink2: PlinkRunner, tmp_path: Path
) -> None:
    pheno = tmp_path / "country.tsv"
    fam = (cohorts.out / "pooled" / "genotypes.fam").read_text().splitlines()
    pheno.write_text(
        "#FID\tIID\tcountry\n" + "".join(f"{r.split()[0]}\t{r.split()[1]}\t{r[:2]}\n" for r in fam)
    )
    out = plink2(
        "--bfile", cohorts.out / "pooled" / "genotypes",
        "--pheno", pheno,
        "--fst", "country", "method=hudson",
        out=tmp_path / "fst",
    )  # fmt: skip
    fst = {
        frozenset((r["#POP1"], r["POP2"])): float(r["HUDSON_FST"])
        for r in read_tsv(out.with_suffix(".fst.summary"))
    }
    assert len(fst) == 15
    for pair, value in fst.items():
        assert 0.001 <= value <= 0.01, f"Fst {sorted(pair)} = {value}"
    assert fst[frozenset(("EE", "PT"))] > 2 * fst[frozenset(("DE", "CZ"))]
    assert fst[frozenset(("EE", "ES"))] > fst[frozenset(("EE", "DE"))]
    # The summary genofed prints is PLINK 2's estimate.
    for (a, b), value in cohorts.fst.items():
        assert value == pytest.approx(fst[frozenset((a, b))], rel=1e-3)


def test_simulate__ld_decays_with_distance(cohorts: SimulationResult) -> None:
    prefix = cohorts.out / "pooled" / "genotypes"
    with open_bed(prefix.with_suffix(".bed")) as bed:
        dosages = bed.read(dtype="float64")
        chromosome, position = bed.chromosome, bed.bp_position
    frequency = np.nanmean(dosages, axis=0) / 2
    common = np.flatnonzero(np.minimum(frequency, 1 - frequency) > 0.05)
    standardised = (dosages[:, common] - 2 * frequency[common]) / np.nanstd(
        dosages[:, common], axis=0
    )
    standardised = np.nan_to_num(standardised)

    def r2(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (np.einsum("si,si->i", standardised[:, i], standardised[:, j]) / len(dosages)) ** 2

    first, second = np.arange(len(common) - 1), np.arange(1, len(common))
    same = chromosome[common[first]] == chromosome[common[second]]
    gap = position[common[second]] - position[common[first]]
    adjacent = r2(first[same & (gap < 2000)], second[same & (gap < 2000)])
    half = len(common) // 2
    distant = r2(np.arange(half), np.arange(half) + half)  # mostly other chromosomes
    assert len(adjacent) > 100
    assert adjacent.mean() > 0.2
    assert distant.mean() < 0.01
    assert adjacent.mean() > 20 * distant.mean()


def test_simulate__glm_finds_largest_planted_effect(
    cohorts: SimulationResult, plink2: PlinkRunner, tmp_path: Path
) -> None:
    truth = [r for r in read_tsv(cohorts.out / "truth.tsv") if r["trait"] == "ldl"]
    assert len(truth) == 20

    def explained(row: dict[str, str]) -> float:
        p = float(row["effect_allele_frequency"])
        return float(row["effect"]) ** 2 * 2 * p * (1 - p)

    largest = max(truth, key=explained)
    gwas = pooled_glm_linear(plink2, cohorts.out, "ldl", "age,sex", tmp_path)
    rows = {r["ID"]: r for r in gwas}
    hit = rows[largest["variant_id"]]
    assert hit["A1"] == largest["effect_allele"]
    assert float(hit["P"]) < 5e-8
    assert np.sign(float(hit["BETA"])) == np.sign(float(largest["effect"]))


def test_simulate__phenotypes_are_real_like(cohorts: SimulationResult) -> None:
    pooled = read_phenotype_table(cohorts.out / "pooled" / "phenotypes.tsv")
    t2d, ldl, sex = pooled.columns["t2d"], pooled.columns["ldl"], pooled.columns["sex"]
    assert set(np.unique(t2d[~np.isnan(t2d)])) == {0.0, 1.0}
    assert set(np.unique(sex)) == {1.0, 2.0}
    country = np.array([iid[:2] for iid in pooled.iids])
    for name, rate in (("ldl", 0.03), ("t2d", 0.03), ("age", 0.005)):
        missing = np.isnan(pooled.columns[name])
        for code in CODES:  # the same share of every country, so nested cohorts differ by it
            in_country = country == code
            assert missing[in_country].sum() == round(rate * in_country.sum())
    assert (np.isnan(pooled.columns["age"]) <= np.isnan(pooled.columns["ldl"])).all()  # nested
    prevalence = {c: np.nanmean(t2d[country == c]) for c in CODES}
    assert prevalence["PT"] > 1.5 * prevalence["EE"]
    means = {c: np.nanmean(ldl[country == c]) for c in CODES}
    assert means["EE"] - means["ES"] > 0.3
    summary = {c.code: c for c in cohorts.countries}
    assert summary["PT"].t2d_cases == np.nansum(t2d[country == "PT"])


def test_simulate__provenance_records_parameters_and_versions(cohorts: SimulationResult) -> None:
    record = json.loads((cohorts.out / "provenance.json").read_text())
    assert record["parameters"]["seed"] == 7
    assert record["parameters"]["samples_per_country"] == 400
    assert record["parameters"]["countries"] == list(CODES)
    assert {"genofed", "msprime", "tskit", "numpy", "bed-reader", "python"} <= set(
        record["environment"]
    )
