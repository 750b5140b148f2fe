from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed import InputError
from genofed.io import BedWriter, VariantInfo
from genofed.io.plink import MISSING_CALL
from genofed.kernels.ld import (
    LdSums,
    concatenate_ld_sums,
    kb_window_size,
    local_ld_sums,
    prune,
)
from tests.conftest import PlinkRunner

# --------------------------------------------------------------------------- data


def haplotype_blocks(
    rng: np.random.Generator, n_samples: int, n_variants: int, *, missing_rate: float
) -> np.ndarray:
    """(variants, samples) ALT counts in blocks of a few shared haplotypes: strong LD within."""
    blocks = []
    while sum(len(b) for b in blocks) < n_variants:
        length, n_haplotypes = int(rng.integers(3, 30)), int(rng.integers(2, 6))
        haplotypes = rng.random((n_haplotypes, length)) < rng.uniform(0.05, 0.95, length)
        drawn = haplotypes[rng.choice(n_haplotypes, size=(2, n_samples))]  # 2, samples, length
        drawn ^= rng.random(drawn.shape) < 0.02  # mutations, so that r² < 1
        blocks.append(drawn.sum(axis=0).T)
    dosages = np.concatenate(blocks)[:n_variants].astype(np.int8)
    dosages[rng.random(dosages.shape) < missing_rate] = MISSING_CALL
    return dosages


def brute_force_sums(dosages: np.ndarray, window: int, n_first: int) -> dict[str, np.ndarray]:
    """Every pair sum over the samples called at both variants, one pair at a time."""
    called = (dosages >= 0).astype(np.int64)
    g = np.maximum(dosages, 0).astype(np.int64)
    sums = {f.name: np.zeros((n_first, window - 1), np.int64) for f in fields(LdSums)[3:]}
    for a in range(n_first):
        for b in range(a + 1, min(a + window, len(dosages))):
            both = called[a] * called[b]
            for name, values in (
                ("pair_called", both),
                ("pair_dot", g[a] * g[b]),
                ("pair_first_sum", g[a] * both),
                ("pair_first_sq_sum", g[a] ** 2 * both),
                ("pair_second_sum", g[b] * both),
                ("pair_second_sq_sum", g[b] ** 2 * both),
            ):
                sums[name][a, b - a - 1] = values.sum()
    sums["called"] = called[:n_first].sum(axis=1)
    sums["alt_sum"] = g[:n_first].sum(axis=1)
    sums["alt_sq_sum"] = (g[:n_first] ** 2).sum(axis=1)
    return sums


def assert_same_sums(actual: LdSums, expected: LdSums) -> None:
    for field in fields(LdSums):
        value = getattr(actual, field.name)
        assert value.dtype == np.int64, field.name
        np.testing.assert_array_equal(value, getattr(expected, field.name), err_msg=field.name)


@dataclass(frozen=True)
class Pooled:
    """A pooled file set on three chromosomes and the arrays it was written from."""

    prefix: Path
    dosages: np.ndarray
    chromosome: np.ndarray
    bp_position: np.ndarray

    @property
    def variant_ids(self) -> np.ndarray:
        return np.array([f"rs{j}" for j in range(len(self.dosages))])


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Pooled:
    """400 variants of 150 samples: chr1 (250), chr2 (149) and a monomorphic chr3 variant."""
    rng = np.random.default_rng(11)
    dosages = haplotype_blocks(rng, 150, 400, missing_rate=0.03)
    dosages[:, 7][rng.random(400) < 0.4] = MISSING_CALL  # one sample with many missing calls
    dosages[20] = 0  # monomorphic
    dosages[21] = 1  # all heterozygous: no variance either
    dosages[22] = MISSING_CALL  # no call
    dosages[23] = np.where(rng.random(150) < 0.5, 2, MISSING_CALL)  # monomorphic among calls
    dosages[30] = dosages[31]  # a perfect pair
    dosages[399] = 2  # alone on chr3: PLINK 2 never looks at it
    chromosome = np.array(["1"] * 250 + ["2"] * 149 + ["3"])
    gaps = rng.choice([0, 1, 50, 300, 700, 1000, 1001, 2500, 8000], size=400)
    bp_position = np.cumsum(gaps) + 1
    prefix = tmp_path_factory.mktemp("ld") / "pooled"
    data = Pooled(prefix, dosages, chromosome, bp_position)
    variants = VariantInfo(
        chromosome=chromosome,
        variant_id=data.variant_ids,
        cm_position=np.zeros(400),
        bp_position=bp_position,
        allele_1=np.full(400, "A"),
        allele_2=np.full(400, "G"),
    )
    iids = [f"s{i}" for i in range(150)]
    with BedWriter(prefix, iids=iids, sexes=np.ones(150, np.int8), variants=variants) as writer:
        writer.write_block(dosages)
    return data


def plink_prune_in(plink2: PlinkRunner, pooled: Pooled, *args: str, out: Path) -> list[str]:
    prefix = plink2("--bfile", pooled.prefix, "--indep-pairwise", *args, out=out)
    return Path(f"{prefix}.prune.in").read_text().split()


# --------------------------------------------------------------------------- PLINK 2


@pytest.mark.parametrize(
    ("window", "step", "r2"),
    [(10, 1, 0.5), (50, 5, 0.2), (25, 25, 0.1), (7, 3, 0.9), (100, 30, 0.0), (1, 1, 0.5)],
)
def test_prune__keeps_what_plink2_keeps(
    plink2: PlinkRunner, pooled: Pooled, tmp_path: Path, window: int, step: int, r2: float
) -> None:
    expected = plink_prune_in(plink2, pooled, str(window), str(step), str(r2), out=tmp_path / "p")
    sums = local_ld_sums(pooled.dosages, window=window + 3)  # a wider window does no harm
    keep = prune(sums, pooled.chromosome, window=window, step=step, r2_threshold=r2)
    assert list(pooled.variant_ids[keep]) == expected
    assert 0 < len(expected) < 400


@pytest.mark.parametrize(("window_kb", "r2"), [(2.0, 0.3), (1.001, 0.5), (10.0, 0.1)])
def test_prune__kb_window_keeps_what_plink2_keeps(
    plink2: PlinkRunner, pooled: Pooled, tmp_path: Path, window_kb: float, r2: float
) -> None:
    expected = plink_prune_in(plink2, pooled, f"{window_kb}kb", "1", str(r2), out=tmp_path / "p")
    window = kb_window_size(pooled.chromosome, pooled.bp_position, window_kb=window_kb)
    keep = prune(
        local_ld_sums(pooled.dosages, window=window),
        pooled.chromosome,
        window_kb=window_kb,
        bp_position=pooled.bp_position,
        r2_threshold=r2,
    )
    assert list(pooled.variant_ids[keep]) == expected


def test_prune__removes_variants_without_variance_and_keeps_a_lone_one(pooled: Pooled) -> None:
    sums = local_ld_sums(pooled.dosages, window=5)
    keep = prune(sums, pooled.chromosome, window=5, step=1, r2_threshold=0.99)
    assert not keep[20:24].any()
    assert not (keep[30] and keep[31])
    assert keep[399]


# --------------------------------------------------------------------------- the split


@pytest.mark.parametrize("missing_rate", [0.0, 0.05, 0.4])
@pytest.mark.parametrize(
    ("window", "n_first", "n_rows"),
    [(1, 40, 40), (6, 40, 40), (9, 25, 33), (9, 25, 40), (60, 40, 40)],
)
def test_local_ld_sums__are_pairwise_complete_sums(
    missing_rate: float, window: int, n_first: int, n_rows: int
) -> None:
    dosages = haplotype_blocks(np.random.default_rng(3), 37, 40, missing_rate=missing_rate)
    sums = local_ld_sums(dosages[:n_rows], window=window, n_first=n_first)
    expected = brute_force_sums(dosages[:n_rows], window, n_first)
    assert len(sums) == n_first
    assert sums.window == window
    for name, values in expected.items():
        np.testing.assert_array_equal(getattr(sums, name), values, err_msg=name)


def test_local_ld_sums__split_over_three_nodes_adds_up_to_pooled(pooled: Pooled) -> None:
    window = 40
    nodes = [pooled.dosages[:, :17], pooled.dosages[:, 17:101], pooled.dosages[:, 101:]]
    parts = [local_ld_sums(node, window=window) for node in nodes]
    total = parts[0] + parts[1] + parts[2]
    pooled_sums = local_ld_sums(pooled.dosages, window=window)
    assert_same_sums(total, pooled_sums)
    options = {"window": window, "step": 4, "r2_threshold": 0.2}
    np.testing.assert_array_equal(
        prune(total, pooled.chromosome, **options),
        prune(pooled_sums, pooled.chromosome, **options),
    )


def test_local_ld_sums__blocks_concatenate_to_one_block(pooled: Pooled) -> None:
    window, n_variants = 30, len(pooled.dosages)
    bounds = [0, 1, 57, 58, 200, 371, n_variants]
    blocks = [
        local_ld_sums(
            pooled.dosages[start : stop + window - 1], window=window, n_first=stop - start
        )
        for start, stop in itertools.pairwise(bounds)
    ]
    whole = local_ld_sums(pooled.dosages, window=window)
    joined = concatenate_ld_sums(blocks)
    assert_same_sums(joined, whole)
    options = {"window": window, "step": 7, "r2_threshold": 0.3}
    np.testing.assert_array_equal(
        prune(joined, pooled.chromosome, **options), prune(whole, pooled.chromosome, **options)
    )
    more_rows_than_needed = local_ld_sums(pooled.dosages, window=window, n_first=200)
    assert_same_sums(more_rows_than_needed, concatenate_ld_sums(blocks[:4]))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(2, 30),
    cut=st.floats(0, 1),
    window=st.integers(1, 12),
    missing_rate=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_local_ld_sums__any_sample_split_adds_up_to_pooled(
    seed: int, n_samples: int, cut: float, window: int, missing_rate: float
) -> None:
    rng = np.random.default_rng(seed)
    dosages = haplotype_blocks(rng, n_samples, 20, missing_rate=missing_rate)
    order = rng.permutation(n_samples)
    split = int(cut * n_samples)
    left, right = dosages[:, order[:split]], dosages[:, order[split:]]
    total = local_ld_sums(left, window=window) + local_ld_sums(right, window=window)
    assert_same_sums(total, local_ld_sums(dosages, window=window))


# --------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def small_sums() -> LdSums:
    return local_ld_sums(
        haplotype_blocks(np.random.default_rng(5), 20, 30, missing_rate=0), window=10
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"window": 10, "step": 11, "r2_threshold": 0.5}, r"1 <= step <= window"),
        ({"window": 10, "step": 0, "r2_threshold": 0.5}, r"1 <= step <= window"),
        ({"window": 10, "r2_threshold": 1.0}, r"r² threshold must be in \[0, 1\), got 1.0"),
        ({"window": 20, "r2_threshold": 0.5}, r"up to 20 variants .* window of 10; ask the nodes"),
        ({"r2_threshold": 0.5}, r"exactly one of window"),
        ({"window_kb": 1.0, "r2_threshold": 0.5}, r"needs bp_position"),
        (
            {"window_kb": 1.0, "step": 2, "bp_position": np.arange(30), "r2_threshold": 0.5},
            r"step must be 1",
        ),
        (
            {"window_kb": 0.0015, "bp_position": np.arange(30), "r2_threshold": 0.5},
            r"at least 2 bp",
        ),
    ],
)
def test_prune__rejects_bad_parameters(
    small_sums: LdSums, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        prune(small_sums, np.full(30, "1"), **arguments)


def test_prune__rejects_a_split_chromosome(small_sums: LdSums) -> None:
    chromosome = np.array(["1"] * 10 + ["2"] * 10 + ["1"] * 10)
    with pytest.raises(InputError, match=r"chromosome '1' is split into 2 runs"):
        prune(small_sums, chromosome, window=10, r2_threshold=0.5)


def test_local_ld_sums__rejects_a_block_shorter_than_n_first() -> None:
    with pytest.raises(InputError, match=r"n_first = 5 is outside the 4 rows"):
        local_ld_sums(np.zeros((4, 3), np.int8), window=2, n_first=5)
