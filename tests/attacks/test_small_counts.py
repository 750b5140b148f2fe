"""Small counts: a genotype count of 1 to 4 points at a few people.

``genofed qc`` releases, per variant, the federation's samples with ALT
dosage 0, 1 and 2 and with a missing call. A count of one to four is about
one to four people: the two carriers of a rare homozygote, the one person
whose call failed. Counts add up to the cohort, so one small count cannot
be hidden alone. A linear GWAS releases the same counts in other forms: the
sum of ALT dosages (``ctg[:, 0]``) and of their squares (``gtg``) give the
heterozygotes and the ALT homozygotes, ``n_missing`` the missing calls, and
the ``n`` column of the table the samples called.

Without the small-group rule every count comes back exactly. With it, the
verifier withholds all four counts of a variant with a group of 1 to
``min_count - 1`` samples (``genofed qc`` writes ``NA`` and ``WITHHELD``),
a linear GWAS withholds such a variant's sums altogether, and imputes a
variant with 1 to ``min_count - 1`` missing calls, reporting the whole
cohort as its ``n``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genofed.aai import write_passport
from genofed.cli import main
from genofed.coordinator import create_federation
from genofed.protocol.computations.linear_gwas import Block, Null
from genofed.protocol.contract import Treatment
from genofed.report.gwas_ssf import read_gwas_ssf
from tests.attacks.adversary import Adversary, Arrays
from tests.attacks.conftest import NODES, AttackFederation, Launch
from tests.plink import read_tsv

WIDTH = 8000  # every variant in block 0
MIN_COUNT = 5  # the nodes' default [disclosure] min_count
USER = "mallory@example.org"
STATISTICS = ("effect_allele_frequency", "missing_count", "missing_rate", "hwe_p", "n")


def genotype_counts(federation: AttackFederation, phenotype: str | None = None) -> np.ndarray:
    """Samples with ALT dosage 0, 1, 2 and a missing call, per variant, from the nodes' files.

    Over every genotyped sample, or the cohort of a GWAS of ``phenotype`` on age and sex.
    """
    pooled = []
    for name in NODES:
        node = federation.nodes[name]
        genotypes = node.genotypes()
        if phenotype is not None:
            table = node.table()
            cohort = np.all([np.isfinite(table[c]) for c in ("age", "sex", phenotype)], axis=0)
            genotypes = genotypes[cohort]
        pooled.append(genotypes)
    dosages = np.concatenate(pooled)
    return np.stack(
        [(dosages == d).sum(axis=0) for d in (0, 1, 2)] + [(dosages < 0).sum(axis=0)], 1
    )


def small(counts: np.ndarray) -> np.ndarray:
    """Rows of counts with one of 1 to ``MIN_COUNT - 1``."""
    few: np.ndarray = ((counts > 0) & (counts < MIN_COUNT)).any(axis=1)
    return few


def variant_ids(federation: AttackFederation) -> list[str]:
    """The variants in file order, as every node's .bim lists them."""
    bim = federation.nodes[NODES[0]].bfile.with_suffix(".bim")
    return [line.split()[1] for line in bim.read_text().splitlines()]


def qc_release(adversary: Adversary) -> Arrays:
    """The verifier's release of a variant-qc job over every genotyped sample."""
    job = adversary.submit("variant-qc", {"block_size": WIDTH}, NODES)
    return adversary.released(job, Block(0))


def linear_release(adversary: Adversary) -> tuple[int, Arrays]:
    """The cohort size and block 0's release of a linear GWAS of ldl on age and sex."""
    parameters = {"phenotype": "ldl", "covariates": ["age", "sex"], "block_size": WIDTH}
    job = adversary.submit("linear-gwas", parameters, NODES)
    null = adversary.released(job, Null())
    return int(np.rint(null["n"])), adversary.released(job, Block(0))


def read_counts(n: int, block: Arrays) -> np.ndarray:
    """Genotype counts from a linear block: sum g = n1 + 2 n2 and sum g^2 = n1 + 4 n2."""
    alt, squares, missing = block["ctg"][:, 0], block["gtg"], block["n_missing"]
    homozygous = (squares - alt) / 2
    heterozygous = alt - 2 * homozygous
    counts = np.column_stack([n - missing - heterozygous - homozygous, heterozygous, homozygous])
    return np.column_stack([np.rint(counts), missing]).astype(np.int64)


def run_cli(federation: AttackFederation, directory: Path, *arguments: str) -> Path:
    """Run ``genofed <arguments>`` against the nodes as the attacker; return ``--out``.tsv."""
    cards = [config.parent / "public.toml" for config in federation.local.configs]
    file = directory / "federation.toml"
    if not file.exists():
        create_federation(cards, file)
    passport = write_passport(federation.passports[USER], directory / "passport.jwt")
    out = directory / arguments[0]
    common = ["--federation", str(file), "--passport", str(passport), "--out", str(out)]
    assert main([*arguments, *common]) == 0
    return out.with_suffix(".tsv")


def gwas_table(federation: AttackFederation, directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """``genofed gwas`` of ldl on age and sex: its ``n`` and ``disclosure``, in file order."""
    tsv = run_cli(federation, directory, "gwas", "--phenotype", "ldl", "--covariates", "age,sex")
    table = read_gwas_ssf(tsv)
    order = {variant: row for row, variant in enumerate(table.variant_id)}
    rows = [order[variant] for variant in variant_ids(federation)]
    return table.n[rows], np.asarray(table.extra["disclosure"])[rows]


def qc_table(federation: AttackFederation, directory: Path) -> list[dict[str, str]]:
    """``genofed qc``'s table, in file order."""
    rows = {row["variant_id"]: row for row in read_tsv(run_cli(federation, directory, "qc"))}
    return [rows[variant] for variant in variant_ids(federation)]


def test_attack__small_counts_come_back_exactly_without_the_small_group_rule(
    launch: Launch, tmp_path: Path
) -> None:
    federation = launch(disabled=["small-groups"])
    everyone, cohort = genotype_counts(federation), genotype_counts(federation, "ldl")
    assert small(everyone).sum() > 1000
    adversary = federation.adversary(USER)
    try:
        qc = qc_release(adversary)
        n, block = linear_release(adversary)
    finally:
        adversary.close()

    # variant-qc: every count, the small ones included.
    assert not qc["withheld"].any()
    np.testing.assert_array_equal(qc["counts"], everyone)

    # genofed qc: the missing-call counts, 1 to 4 included.
    table = qc_table(federation, tmp_path)
    assert {row["disclosure"] for row in table} == {"."}
    missing = np.array([int(row["missing_count"]) for row in table])
    np.testing.assert_array_equal(missing, everyone[:, 3])
    assert ((missing > 0) & (missing < MIN_COUNT)).sum() > 100

    # linear-gwas: each variant's genotype counts in the cohort, from its exact sums.
    assert n == cohort[0].sum()
    exact = block["treatment"] == Treatment.EXACT
    assert (exact & small(cohort)).sum() > 1000
    np.testing.assert_array_equal(read_counts(n, block)[exact], cohort[exact])

    # genofed gwas: n is the cohort less the missing calls, 1 to 4 included.
    ns, disclosure = gwas_table(federation, tmp_path)
    few = (cohort[:, 3] > 0) & (cohort[:, 3] < MIN_COUNT) & (disclosure == ".")
    assert few.sum() > 100
    np.testing.assert_array_equal(ns[few], n - cohort[few, 3])


def test_attack__small_counts_are_withheld(launch: Launch, tmp_path: Path) -> None:
    federation = launch()
    everyone, cohort = genotype_counts(federation), genotype_counts(federation, "ldl")
    adversary = federation.adversary(USER)
    try:
        qc = qc_release(adversary)
        n, block = linear_release(adversary)
    finally:
        adversary.close()

    # variant-qc: all four counts of a variant with a small one are withheld.
    withheld = small(everyone)
    np.testing.assert_array_equal(qc["withheld"] > 0, withheld)
    assert not qc["counts"][withheld].any()
    np.testing.assert_array_equal(qc["counts"][~withheld], everyone[~withheld])

    # genofed qc: NA and WITHHELD.
    table = qc_table(federation, tmp_path)
    np.testing.assert_array_equal([row["disclosure"] == "WITHHELD" for row in table], withheld)
    hidden = [row for row, out in zip(table, withheld, strict=True) if out]
    assert {row[name] for row in hidden for name in STATISTICS} == {"NA"}
    shown = [int(row["missing_count"]) for row, out in zip(table, withheld, strict=True) if not out]
    np.testing.assert_array_equal(shown, everyone[~withheld, 3])

    # linear-gwas: a small genotype group withholds the variant's sums, the ALT allele
    # count ctg[:, 0] among them; 1 to 4 missing calls impute it, their count not shown.
    few_groups = small(cohort[:, :3])
    few_missing = (cohort[:, 3] > 0) & (cohort[:, 3] < MIN_COUNT)
    np.testing.assert_array_equal(block["treatment"] == Treatment.WITHHELD, few_groups)
    for name in ("ctg", "gtg", "gty", "n_missing"):
        assert not block[name][few_groups].any()
    np.testing.assert_array_equal(block["treatment"][few_missing & ~few_groups], Treatment.IMPUTED)
    assert not block["n_missing"][few_missing].any()

    # genofed gwas: n is the whole cohort where imputed, 0 where withheld, never the
    # cohort less 1 to 4 missing calls.
    ns, disclosure = gwas_table(federation, tmp_path)
    assert (few_missing & ~few_groups).sum() > 100
    np.testing.assert_array_equal(disclosure[few_missing & ~few_groups], "IMPUTED")
    np.testing.assert_array_equal(ns[few_missing & ~few_groups], n)
    np.testing.assert_array_equal(disclosure[few_groups], "WITHHELD")
    np.testing.assert_array_equal(ns[few_groups], 0)
    assert (n - ns[(ns > 0) & (ns < n)] >= MIN_COUNT).all()
