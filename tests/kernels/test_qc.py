from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln, logsumexp

from genofed import InputError
from genofed.io.bed import PackedBed
from genofed.io.plink import MISSING_CALL, read_bim
from genofed.kernels.qc import (
    QcResult,
    genotype_counts,
    genotype_counts_packed,
    hwe_exact_ln_p,
    hwe_exact_p,
    qc_filters,
    variant_qc,
)
from genofed.sim import SimulationResult
from tests.conftest import PlinkRunner
from tests.io.test_bed import write_bed
from tests.kernels.test_linreg_packed import pack
from tests.plink import read_tsv
from tests.sim.test_cohorts import CODES

# --------------------------------------------------------------------------- references


def random_dosages(rng: np.random.Generator, n: int, m: int, missing_rate: float) -> np.ndarray:
    """(samples, variants) ALT counts with missing calls."""
    dosages = rng.binomial(2, rng.uniform(0, 1, m), size=(n, m)).astype(np.int8)
    dosages[rng.random((n, m)) < missing_rate] = MISSING_CALL
    return dosages


def enumerated_p(het: int, hom1: int, hom2: int, *, midp: bool = False) -> float:
    """The exact test by enumerating every table with exact rational probabilities."""
    n = het + hom1 + hom2
    if n == 0:
        return 0.5 if midp else 1.0
    rare = 2 * min(hom1, hom2) + het
    probabilities = {}
    for h in range(rare % 2, rare + 1, 2):
        r = (rare - h) // 2
        if n - h - r >= 0:
            denominator = math.factorial(h) * math.factorial(r) * math.factorial(n - h - r)
            probabilities[h] = Fraction(2**h, denominator)
    observed = probabilities[het]
    below = sum(p for p in probabilities.values() if p < observed)
    tied = sum(p for p in probabilities.values() if p == observed)
    return float((below + (tied / 2 if midp else tied)) / sum(probabilities.values()))


def lgamma_ln_p(het: int, hom1: int, hom2: int) -> float:
    """The exact test in log space with log-gamma (ties within 1e-9 count as ties)."""
    n = het + hom1 + hom2
    rare = 2 * min(hom1, hom2) + het
    hets = np.arange(rare % 2, rare + 1, 2)
    r = (rare - hets) // 2
    c = n - hets - r
    hets, r, c = hets[c >= 0], r[c >= 0], c[c >= 0]
    ln_p = hets * math.log(2) - gammaln(hets + 1) - gammaln(r + 1) - gammaln(c + 1)
    observed = ln_p[hets == het][0]
    return float(logsumexp(ln_p[ln_p <= observed + 1e-9]) - logsumexp(ln_p))


# --------------------------------------------------------------------------- node side


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 150),
    m=st.integers(0, 40),
    missing_rate=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    padding=st.integers(0, 3),
    subset=st.booleans(),
)
def test_genotype_counts_packed__equals_numpy_reference(
    seed: int, n: int, m: int, missing_rate: float, padding: int, subset: bool
) -> None:
    rng = np.random.default_rng(seed)
    dosages = random_dosages(rng, n, m, missing_rate)
    included = rng.random(n) < 0.6 if subset else None
    got = genotype_counts_packed(pack(dosages.T, padding), n, included)
    expected = genotype_counts(dosages if included is None else dosages[included])
    assert got.dtype == np.int64
    assert got.shape == (m, 4)
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 120),
    n_nodes=st.integers(1, 6),
    missing_rate=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_genotype_counts_packed__sum_over_any_split_equals_pooled(
    seed: int, n: int, n_nodes: int, missing_rate: float
) -> None:
    rng = np.random.default_rng(seed)
    dosages = random_dosages(rng, n, 25, missing_rate)
    pooled = genotype_counts_packed(pack(dosages.T), n)
    node = rng.integers(0, n_nodes, n)
    # each node packs its own samples (its own padding) ...
    own_files = sum(
        genotype_counts_packed(pack(dosages[node == i].T, 3), int((node == i).sum()))
        for i in range(n_nodes)
    )
    # ... or counts its samples of a shared file
    masks = sum(genotype_counts_packed(pack(dosages.T), n, node == i) for i in range(n_nodes))
    np.testing.assert_array_equal(own_files, pooled)
    np.testing.assert_array_equal(masks, pooled)
    assert (pooled.sum(axis=1) == n).all()


def test_genotype_counts_packed__many_samples() -> None:
    n = 70_001  # counts beyond 16 bits, and a partial last byte
    dosages = np.full((n, 3), 2, dtype=np.int8)
    dosages[:, 1] = MISSING_CALL
    dosages[::7, 2] = 1
    got = genotype_counts_packed(pack(dosages.T, padding=0), n)
    np.testing.assert_array_equal(got, genotype_counts(dosages))
    assert got[0, 2] == got[1, 3] == n


def test_genotype_counts_packed__reads_a_memory_mapped_bed(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dosages = random_dosages(rng, 203, 57, 0.1)
    with PackedBed(write_bed(tmp_path / "g", dosages.T)) as bed:
        blocks = [genotype_counts_packed(b, bed.n_samples) for _, b in bed.blocks(20)]
    np.testing.assert_array_equal(np.vstack(blocks), genotype_counts(dosages))


def test_genotype_counts_packed__refuses_mismatched_input() -> None:
    rows = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="rows of 4 bytes"):
        genotype_counts_packed(rows, 13)
    with pytest.raises(InputError, match="uint8"):
        genotype_counts_packed(rows.astype(np.int16), 12)
    with pytest.raises(InputError, match="boolean mask of 12"):
        genotype_counts_packed(rows, 12, np.ones(11, dtype=bool))


# --------------------------------------------------------------------------- HWE exact test


@settings(max_examples=300, deadline=None)
@given(het=st.integers(0, 30), hom1=st.integers(0, 30), hom2=st.integers(0, 30), midp=st.booleans())
def test_hwe_exact_p__equals_exact_enumeration(het: int, hom1: int, hom2: int, midp: bool) -> None:
    expected = enumerated_p(het, hom1, hom2, midp=midp)
    assert hwe_exact_p(het, hom1, hom2, midp=midp) == pytest.approx(expected, rel=1e-10)
    assert hwe_exact_p(het, hom2, hom1, midp=midp) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    ("het", "hom1", "hom2", "expected"),
    [
        (1, 1, 0, 1.0),  # the observed table is the mode, tied with nothing smaller
        (2, 1, 1, 1.0),  # n=4, MAF 0.5: the observed table is the single mode
        (0, 1, 1, 1 / 3),  # the other table (2 hets) is twice as likely
        (0, 0, 0, 1.0),  # no calls
        (0, 7, 0, 1.0),  # monomorphic
        (1, 0, 0, 1.0),  # a single sample
        (0, 1, 0, 1.0),
    ],
)
def test_hwe_exact_p__small_tables(het: int, hom1: int, hom2: int, expected: float) -> None:
    assert hwe_exact_p(het, hom1, hom2) == pytest.approx(expected, rel=1e-12)


def test_hwe_exact_p__midp_subtracts_half_of_the_tied_tables() -> None:
    assert hwe_exact_p(0, 0, 0, midp=True) == 0.5
    assert hwe_exact_p(0, 6, 0, midp=True) == pytest.approx(0.5)
    assert hwe_exact_p(0, 1, 1, midp=True) == pytest.approx((1 / 3) / 2)
    # 2 hets among 6 samples with 4 rare alleles is exactly as likely as 4 hets
    assert enumerated_p(2, 1, 3) == pytest.approx(enumerated_p(4, 0, 2))
    for het, hom1, hom2 in [(2, 1, 3), (4, 0, 2), (3, 1, 5), (5, 0, 4)]:
        for midp in (False, True):
            expected = enumerated_p(het, hom1, hom2, midp=midp)
            assert hwe_exact_p(het, hom1, hom2, midp=midp) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("het", "hom1", "hom2"),
    [
        (0, 2000, 2000),  # p ~ 1e-1204: zero in float64 and in plink2 2.00a3.5
        (0, 500, 500),
        (40000, 0, 0),
        (0, 100_000, 3),
        (120_000, 1, 2),
        (9000, 20000, 1000),
        (49_000, 25_500, 25_500),  # near equilibrium, n = 100,000
    ],
)
def test_hwe_exact_ln_p__extreme_counts_stay_exact_in_log_space(
    het: int, hom1: int, hom2: int
) -> None:
    got = hwe_exact_ln_p(het, hom1, hom2)
    assert np.isfinite(got)
    assert got == pytest.approx(lgamma_ln_p(het, hom1, hom2), rel=1e-9, abs=1e-9)


def test_hwe_exact_p__broadcasts_and_refuses_negative_counts() -> None:
    p = hwe_exact_p(np.array([[0], [10]]), np.array([5, 6, 7]), 5)
    assert p.shape == (2, 3)
    assert p[0, 0] == pytest.approx(enumerated_p(0, 5, 5))
    assert p[1, 2] == pytest.approx(enumerated_p(10, 7, 5))
    with pytest.raises(InputError, match="negative"):
        hwe_exact_p([1, -1], 2, 3)
    with pytest.raises(InputError, match="broadcast"):
        hwe_exact_p([1, 2], [1, 2, 3], 0)


def test_hwe_exact_p__runs_fast_on_100k_variants_near_equilibrium() -> None:
    rng = np.random.default_rng(1)
    n, f = 5000, rng.uniform(0.01, 0.5, 100_000)
    hom2 = rng.binomial(n, (1 - f) ** 2)
    het = rng.binomial(n - hom2, 2 * f * (1 - f) / (1 - (1 - f) ** 2))
    p = hwe_exact_p(het, n - hom2 - het, hom2)  # a few tens of ms once compiled
    assert ((p > 0) & (p <= 1)).all()
    assert 0.005 < (p < 0.01).mean() < 0.015  # roughly uniform under the null


# --------------------------------------------------------------------------- coordinator side


def test_variant_qc__edge_cases() -> None:
    counts = np.array(
        [
            [0, 0, 0, 9],  # all missing
            [5, 0, 0, 4],  # monomorphic REF
            [0, 0, 9, 0],  # monomorphic ALT
            [0, 1, 0, 8],  # a single called sample
            [1, 2, 3, 3],
        ]
    )
    result = variant_qc(counts)
    np.testing.assert_array_equal(result.alt_frequency, [np.nan, 0, 1, 0.5, 8 / 12])
    np.testing.assert_array_equal(result.minor_allele_frequency, [np.nan, 0, 0, 0.5, 4 / 12])
    np.testing.assert_array_equal(result.missing_rate, [1, 4 / 9, 0, 8 / 9, 3 / 9])
    np.testing.assert_array_equal(result.n_called, [0, 5, 9, 1, 6])
    np.testing.assert_array_equal(result.missing_count, [9, 4, 0, 8, 3])
    np.testing.assert_array_equal(result.hwe_p[:4], 1.0)
    assert result.hwe_p[4] == pytest.approx(enumerated_p(2, 3, 1))
    assert variant_qc(np.zeros((0, 4), dtype=np.int64)).hwe_p.shape == (0,)
    with pytest.raises(InputError, match="integer matrix"):
        variant_qc(np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(InputError, match="negative"):
        variant_qc(-np.ones((1, 4), dtype=np.int64))


def test_qc_filters__thresholds_and_ties() -> None:
    # 400 samples each; MAF 0.01 exactly, 0.0075, 0.5; missing 4/400 = 0.01 exactly, 5/400
    counts = np.array(
        [
            [388, 8, 0, 4],  # MAF 8/792 ~ 0.0101, missing 0.01
            [389, 6, 0, 5],  # MAF 6/790 ~ 0.0076, missing 0.0125
            [0, 0, 0, 400],  # no call: kept by --maf and --hwe, removed by --geno
            [198, 0, 198, 4],  # no hets: HWE p ~ 1e-119
            [392, 4, 0, 4],  # MAF 4/792 < 0.01
            [395, 0, 1, 4],  # MAF exactly 2/792 = 1/396; HWE p 1/791, mid-p half that
        ]
    )
    result = variant_qc(counts)
    removed = qc_filters(result, maf=0.01, geno=0.01, hwe=1e-6)
    np.testing.assert_array_equal(removed["maf"], [False, True, False, False, True, True])
    np.testing.assert_array_equal(removed["geno"], [False, True, True, False, False, False])
    np.testing.assert_array_equal(removed["hwe"], [False, False, False, True, False, False])
    assert not qc_filters(result, maf=1 / 396)["maf"][5]  # equal to the threshold: kept
    assert qc_filters(result) == {}
    assert not qc_filters(result, hwe=0.0)["hwe"].any()
    assert qc_filters(result, hwe=1e-300)["hwe"][3] == (result.hwe_ln_p[3] < math.log(1e-300))
    assert result.hwe_p[5] == pytest.approx(1 / 791)
    assert qc_filters(result, hwe=0.001, hwe_midp=True)["hwe"][5]
    assert not qc_filters(result, hwe=0.001)["hwe"][5]


# --------------------------------------------------------------------------- against plink2


@dataclass(frozen=True)
class PlinkReports:
    afreq: list[dict[str, str]]
    vmiss: list[dict[str, str]]
    hardy: list[dict[str, str]]
    hardy_midp: list[dict[str, str]]
    gcount: list[dict[str, str]]


def plink_reports(plink2: PlinkRunner, prefix: Path, out: Path) -> PlinkReports:
    plink2(
        "--bfile", prefix, "--freq", "--missing", "variant-only", "--hardy", "--geno-counts",
        out=out,
    )  # fmt: skip
    plink2("--bfile", prefix, "--hardy", "midp", out=out.with_name(out.name + "_midp"))
    return PlinkReports(
        afreq=read_tsv(out.with_suffix(".afreq")),
        vmiss=read_tsv(out.with_suffix(".vmiss")),
        hardy=read_tsv(out.with_suffix(".hardy")),
        hardy_midp=read_tsv(out.with_name(out.name + "_midp.hardy")),
        gcount=read_tsv(out.with_suffix(".gcount")),
    )


def column(rows: list[dict[str, str]], name: str, dtype: type = float) -> np.ndarray:
    return np.array([row[name] for row in rows], dtype=dtype)


def assert_printed(got: np.ndarray, printed: np.ndarray) -> None:
    """Equal to what PLINK prints with 6 significant digits (NaN printed as nan)."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(printed))
    ok = ~np.isnan(got)
    digits = np.floor(np.log10(np.abs(got[ok]), where=got[ok] != 0, out=np.zeros(ok.sum())))
    half_unit = 0.5 * 10.0 ** (digits - 5) * (1 + 1e-9)
    assert (np.abs(got[ok] - printed[ok]) <= half_unit).all()


def assert_hwe_like_plink(ln_p: np.ndarray, printed: np.ndarray) -> None:
    """Relative 1e-4; in log10 below 1e-300; below float64's normal range where PLINK prints 0.

    plink2 2.00a3.5 computes p in float64 and flushes subnormal results to 0.
    """
    p = np.exp(ln_p)
    normal = printed >= 1e-300
    np.testing.assert_allclose(p[normal], printed[normal], rtol=1e-4, atol=0)
    tiny = (printed < 1e-300) & (printed > 0)
    np.testing.assert_allclose(ln_p[tiny] / math.log(10), np.log10(printed[tiny]), atol=1e-3)
    assert (ln_p[printed == 0] < math.log(np.finfo(np.float64).tiny)).all()


def assert_matches_plink(result: QcResult, midp: np.ndarray, reports: PlinkReports) -> None:
    names = ("HOM_REF_CT", "HET_REF_ALT_CTS", "TWO_ALT_GENO_CTS", "MISSING_CT")
    gcount = np.column_stack([column(reports.gcount, name, int) for name in names])
    np.testing.assert_array_equal(result.counts, gcount)
    assert_printed(result.alt_frequency, column(reports.afreq, "ALT_FREQS"))
    np.testing.assert_array_equal(2 * result.n_called, column(reports.afreq, "OBS_CT", int))
    np.testing.assert_array_equal(result.missing_count, column(reports.vmiss, "MISSING_CT", int))
    np.testing.assert_array_equal(result.n_samples, column(reports.vmiss, "OBS_CT", int))
    assert_printed(result.missing_rate, column(reports.vmiss, "F_MISS"))
    hardy = reports.hardy
    # A1 of the .hardy report is the REF allele here
    np.testing.assert_array_equal(result.counts[:, 0], column(hardy, "HOM_A1_CT", int))
    np.testing.assert_array_equal(result.counts[:, 1], column(hardy, "HET_A1_CT", int))
    np.testing.assert_array_equal(result.counts[:, 2], column(hardy, "TWO_AX_CT", int))
    assert_hwe_like_plink(result.hwe_ln_p, column(hardy, "P"))
    assert_hwe_like_plink(midp, column(reports.hardy_midp, "MIDP"))


def pooled_counts(prefix: Path, block_size: int = 1000) -> np.ndarray:
    with PackedBed(prefix.with_suffix(".bed")) as bed:
        blocks = [genotype_counts_packed(b, bed.n_samples) for _, b in bed.blocks(block_size)]
    return np.vstack(blocks)


def midp_ln_p(result: QcResult) -> np.ndarray:
    hom_ref, het, hom_alt, _ = result.counts.T
    return hwe_exact_ln_p(het, hom_alt, hom_ref, midp=True)


@pytest.fixture(scope="module")
def pooled_reports(
    cohorts: SimulationResult, plink2: PlinkRunner, tmp_path_factory: pytest.TempPathFactory
) -> PlinkReports:
    out = tmp_path_factory.mktemp("qc_pooled") / "pooled"
    return plink_reports(plink2, cohorts.out / "pooled" / "genotypes", out)


def test_qc__country_node_sums_equal_plink2_on_pooled_cohorts(
    cohorts: SimulationResult, pooled_reports: PlinkReports
) -> None:
    per_node = [pooled_counts(cohorts.out / code / "genotypes", 777) for code in CODES]
    counts = sum(per_node)
    np.testing.assert_array_equal(counts, pooled_counts(cohorts.out / "pooled" / "genotypes"))
    result = variant_qc(counts)
    assert result.missing_count.sum() > 0  # the simulation drops some calls
    assert (result.hwe_p < 0.01).sum() > 10  # pooling countries breaks HWE somewhat
    assert_matches_plink(result, midp_ln_p(result), pooled_reports)


# ALT dosage 0, 1, 2 counts of the planted variants; the rest of the 4001 samples are missing.
EDGE_VARIANTS = [
    (0, 0, 0),  # all missing
    (10, 0, 0),  # monomorphic REF
    (0, 0, 10),  # monomorphic ALT
    (0, 1, 0),  # a single call
    (0, 0, 1),
    (0, 10, 0),  # all heterozygous
    (1, 0, 1),
    (1, 2, 1),  # the mode itself
    (5, 0, 5),
    (500, 0, 500),  # p ~ 1e-301
    (505, 0, 505),  # p ~ 1e-304
    (520, 0, 520),  # p ~ 1e-313, subnormal: printed 0
    (2000, 0, 2000),  # p ~ 1e-1204, printed 0 by plink2 2.00a3.5
    (3, 4, 3),
    (1, 3, 0),
    (1, 1000, 1),  # too many hets
    (1990, 10, 2000),
    (3999, 1, 0),  # MAF 1/8000
    (2000, 1200, 800),
    (392, 8, 0),  # MAF 0.01 exactly; 3601 missing calls
]


def write_edge_cases(prefix: Path, variants: list[tuple[int, int, int]], n: int) -> Path:
    dosages = np.full((len(variants), n), MISSING_CALL, dtype=np.int8)
    rng = np.random.default_rng(0)
    for row, variant in zip(dosages, variants, strict=True):
        values = np.repeat([0, 1, 2], variant).astype(np.int8)
        row[rng.permutation(n)[: len(values)]] = values
    write_bed(prefix, dosages)
    return prefix


@pytest.mark.parametrize(
    ("name", "variants", "n"),
    [
        ("edge", EDGE_VARIANTS, 4001),
        ("single_sample", [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], 1),
    ],
)
def test_qc__planted_edge_cases_equal_plink2(
    plink2: PlinkRunner,
    tmp_path: Path,
    name: str,
    variants: list[tuple[int, int, int]],
    n: int,
) -> None:
    prefix = write_edge_cases(tmp_path / name, variants, n)
    counts = pooled_counts(prefix, 7)
    expected = [[*v, n - sum(v)] for v in variants]
    np.testing.assert_array_equal(counts, expected)
    result = variant_qc(counts)
    assert_matches_plink(result, midp_ln_p(result), plink_reports(plink2, prefix, tmp_path / "r"))
    assert np.isnan(result.alt_frequency[0])
    assert result.hwe_p[0] == 1.0


def plink_kept(plink2: PlinkRunner, prefix: Path, out: Path, *flags: str) -> np.ndarray:
    """Which variants of the file set survive ``plink2`` with these filters."""
    plink2("--bfile", prefix, *flags, "--write-snplist", out=out)
    kept = set(out.with_suffix(".snplist").read_text().split())
    return np.array([v in kept for v in read_bim(prefix.with_suffix(".bim")).variant_id])


FILTERS = [
    {"maf": 0.05},
    {"maf": 0.001},
    {"geno": 0.005},
    {"geno": 0.9},
    {"hwe": 0.01},
    {"hwe": 1e-300},
    {"hwe": 0.01, "hwe_midp": True},
    {"maf": 0.0001, "geno": 0.006, "hwe": 0.005},  # an edge case survives: plink2 needs one
]


def plink_flags(spec: dict[str, float]) -> list[str]:
    flags = []
    for key in ("maf", "geno", "hwe"):
        if key in spec:
            flags += [f"--{key}", repr(spec[key])]
    if spec.get("hwe_midp"):
        flags.append("midp")
    return flags


@pytest.mark.parametrize("spec", FILTERS, ids=lambda s: " ".join(plink_flags(s)))
def test_qc_filters__remove_what_plink2_removes(
    cohorts: SimulationResult, plink2: PlinkRunner, tmp_path: Path, spec: dict[str, float]
) -> None:
    edge = write_edge_cases(tmp_path / "edge", EDGE_VARIANTS, 4001)
    n_removed = 0
    for prefix in (cohorts.out / "pooled" / "genotypes", edge):
        result = variant_qc(pooled_counts(prefix))
        removed = np.logical_or.reduce([*qc_filters(result, **spec).values()])
        kept = plink_kept(plink2, prefix, tmp_path / prefix.name, *plink_flags(spec))
        np.testing.assert_array_equal(~removed, kept)
        assert kept.any()
        n_removed += removed.sum()
    assert n_removed > 0


def test_qc_filters__exact_threshold_ties_on_edge_cases(
    plink2: PlinkRunner, tmp_path: Path
) -> None:
    prefix = write_edge_cases(tmp_path / "edge", EDGE_VARIANTS, 4001)
    result = variant_qc(pooled_counts(prefix))
    maf_tie = EDGE_VARIANTS.index((392, 8, 0))
    assert result.minor_allele_frequency[maf_tie] == 0.01
    geno = float(result.missing_rate[maf_tie])  # 3601 / 4001
    for flags, removed in [
        (["--maf", "0.01"], qc_filters(result, maf=0.01)["maf"]),
        (["--geno", repr(geno)], qc_filters(result, geno=geno)["geno"]),
    ]:
        kept = plink_kept(plink2, prefix, tmp_path / "f", *flags)
        assert kept[maf_tie]
        np.testing.assert_array_equal(~removed, kept)
