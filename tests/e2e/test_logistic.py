"""``genofed gwas --model logistic`` over three node processes against PLINK 2, pooled."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed
from scipy import sparse

from genofed.aai import Issuer, write_passport
from genofed.cli import main
from genofed.coordinator import create_federation
from genofed.io import read_phenotype_table, write_phenotype_table
from genofed.io.plink import MISSING_CALL
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
from tests.e2e.conftest import NODE_SIZES, SplitFederation
from tests.kernels.test_logistic import (
    AGE_SEX,
    Plink,
    assert_equals_plink,
    read_samples,
)
from tests.plink import pooled_glm_logistic, read_tsv

MIN_COUNT = 5  # every node's [disclosure] min_count (the default)


def unique_at_node(missing: np.ndarray) -> np.ndarray:
    """A node's missing-call rule read literally, on its ``(samples, variants)`` missing calls.

    A variant's group is unique if it has at least ``MIN_COUNT`` samples and
    differs by ``MIN_COUNT`` or more from the non-empty group of every earlier
    variant. Two groups that share no sample differ by the sum of their sizes,
    so only an earlier group sharing a sample can be too close to a group of
    ``MIN_COUNT`` or more.
    """
    calls = sparse.csc_array(missing.astype(np.int64))
    size = missing.sum(axis=0)
    shared = sparse.triu(calls.T @ calls, k=1).tocoo()  # earlier variant (row), later (col)
    earlier, later = shared.row, shared.col
    near = size[earlier] + size[later] - 2 * shared.data < MIN_COUNT
    unique = size >= MIN_COUNT
    unique[later[near]] = False
    return unique


@dataclass(frozen=True)
class CohortCalls:
    """The t2d cohort's pooled ALT dosages, whether each sample is a case, and its node."""

    dosages: np.ndarray  # cohort samples x variants, in the pooled files' order
    case: np.ndarray
    node: np.ndarray  # position in NODE_SIZES

    @classmethod
    def read(cls, split: SplitFederation) -> CohortCalls:
        columns = read_phenotype_table(split.phenotypes).columns
        t2d = columns["t2d"]
        cohort = ~np.isnan(t2d) & ~np.isnan(columns["age"]) & ~np.isnan(columns["sex"])
        with open_bed(split.pooled.with_suffix(".bed")) as bed:
            dosages = bed.read(dtype="int8")
        node = np.repeat(np.arange(len(NODE_SIZES)), list(NODE_SIZES.values()))
        return cls(dosages[cohort], t2d[cohort] == 1, node[cohort])

    def groups(self) -> np.ndarray:
        """Per variant, the groups the small-group rule judges.

        ALT dosage 0, 1 and 2 overall; carriers of the ALT and of the REF
        allele among cases, then among controls; cases and controls with a
        missing call.
        """

        def count(rows: np.ndarray, *dosages: int) -> np.ndarray:
            return np.isin(self.dosages[rows], dosages).sum(axis=0)

        everyone, case, control = np.ones_like(self.case), self.case, ~self.case
        return np.column_stack(
            [count(everyone, 0), count(everyone, 1), count(everyone, 2),
             count(case, 1, 2), count(case, 0, 1), count(control, 1, 2), count(control, 0, 1),
             count(case, MISSING_CALL), count(control, MISSING_CALL)]
        )  # fmt: skip

    def unique_missing_groups(self) -> np.ndarray:
        """Per variant, whether some node reports its cases', and its controls', group unique."""
        unique = np.zeros((self.dosages.shape[1], 2), dtype=np.bool_)
        for node in range(len(NODE_SIZES)):
            for column, status in enumerate((self.case, ~self.case)):
                missing = self.dosages[(self.node == node) & status] == MISSING_CALL
                unique[:, column] |= unique_at_node(missing)
        return unique


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


def test_logistic_gwas__equals_plink2_glm_with_firth_fallback_where_released_exactly(
    t2d: Path,
    plink2: PlinkRunner,
    split_federation: SplitFederation,
    tmp_path: Path,
) -> None:
    table = read_gwas_ssf(t2d)
    rows = read_tsv(t2d)
    assert table.effect == "odds_ratio"
    plink_rows = pooled_glm_logistic(
        plink2, split_federation.pooled.parent, "t2d", "age,sex", tmp_path,
        genotypes=split_federation.pooled, phenotypes=split_federation.phenotypes,
    )  # fmt: skip
    assert list(table.variant_id) == [r["ID"] for r in plink_rows]
    disclosure = table.extra["disclosure"]
    assert set(disclosure) <= {".", "WITHHELD"}  # no imputation for the logistic model
    exact = disclosure == "."
    print(f"PLINK-exact rows: {exact.mean():.1%} ({exact.sum()} of {len(exact)})")
    assert exact.sum() > 300
    ours = LogisticResult(
        beta=table.beta[exact],
        standard_error=table.standard_error[exact],
        z_statistic=table.beta[exact] / table.standard_error[exact],
        p_value=table.p_value[exact],
        n=table.n[exact],
        firth=np.array([r["firth"] == "Y" for r in rows])[exact],
        error=np.array([r["errcode"] for r in rows])[exact],
        rounds=np.zeros(exact.sum(), dtype=np.int64),
    )
    plink = Plink.parse([r for r, released in zip(plink_rows, exact, strict=True) if released])
    assert plink.firth.sum() > 50  # rare variants fall back to Firth
    assert_equals_plink(ours, plink)
    cases = np.array([int(r["n_cases"]) for r in rows])
    controls = np.array([int(r["n_controls"]) for r in rows])
    np.testing.assert_array_equal(cases + controls, table.n)
    assert (cases[exact] > 0).all()


def test_logistic_gwas__withholds_exactly_the_variants_with_a_small_or_unreleased_group(
    t2d: Path, split_federation: SplitFederation
) -> None:
    table = read_gwas_ssf(t2d)
    rows = read_tsv(t2d)
    withheld = table.extra["disclosure"] == "WITHHELD"
    print(f"withheld rows: {withheld.mean():.1%} ({withheld.sum()} of {len(withheld)})")
    calls = CohortCalls.read(split_federation)
    groups = calls.groups()
    small = ((groups > 0) & (groups < MIN_COUNT)).any(axis=1)
    missing = groups[:, -2:]  # the cases and the controls with a missing call
    assert withheld[small].all()
    assert (missing[withheld & ~small] > 0).any(axis=1).all()
    assert (withheld & ~small).sum() > 10  # withheld for a missing-call group alone
    # Exactly: a missing-call group is released if it is empty, or if it has at
    # least MIN_COUNT samples and some node reports its own group unique.
    unique = calls.unique_missing_groups()
    released = (missing == 0) | (unique & (missing >= MIN_COUNT))
    np.testing.assert_array_equal(withheld, small | ~released.all(axis=1))
    for values in (table.beta, table.standard_error, table.p_value, table.effect_allele_frequency):
        assert np.isnan(values[withheld]).all()
    assert (table.n[withheld] == 0).all()
    for name in ("n_cases", "n_controls"):
        assert {r[name] for r, hidden in zip(rows, withheld, strict=True) if hidden} == {"0"}


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
    # The same cohort, variants and order: the same rows are released.
    assert [r["disclosure"] for r in score] == [r["disclosure"] for r in wald]
    exact = np.array([r["disclosure"] == "." for r in score])
    refined = np.array([r["test"] == "wald" for r in score])
    p = np.array([float(r["p_value"]) if r["p_value"] != "NA" else np.nan for r in score])
    assert np.isnan(p[~exact]).all()
    assert 0 < refined.sum() < exact.sum() // 2
    assert (p[exact & ~refined] >= 0.05).all()

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
    # refitted: exactly the released rows whose score p is below 0.05
    np.testing.assert_array_equal(refined, exact & (expected.p_value < 0.05))
    tested = exact & ~refined
    n = np.array([int(r["n"]) for r in score])
    assert (n[tested] < n.max()).sum() > 10  # score rows with missing calls
    np.testing.assert_allclose(p[tested], expected.p_value[tested], rtol=1e-8)
