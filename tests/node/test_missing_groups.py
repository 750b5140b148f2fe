"""The missing-call group check, against a brute-force reading of the rule."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed.errors import InputError
from genofed.node import missing_groups
from genofed.node.missing_groups import MissingGroups

# --------------------------------------------------------------------------- reference


class BruteForce:
    """The rule read literally: each group against every filed group, as bit sets."""

    def __init__(self, n_samples: int, *, min_count: int) -> None:
        self.words = -(-n_samples // 64)
        self.d = min_count - 1
        self.groups = np.zeros((0, self.words), dtype=np.uint64)

    @property
    def filed(self) -> int:
        return len(self.groups)

    def pack(self, missing: np.ndarray) -> np.ndarray:
        padded = np.zeros((len(missing), self.words * 64), dtype=np.bool_)
        padded[:, : missing.shape[1]] = missing
        return np.packbits(padded, axis=1).view(np.uint64)

    def check(self, missing: np.ndarray) -> np.ndarray:
        unique = np.zeros(len(missing), dtype=np.bool_)
        for v, (row, size) in enumerate(zip(self.pack(missing), missing.sum(axis=1), strict=True)):
            if size == 0:
                continue
            distances = np.bitwise_count(self.groups ^ row).sum(axis=1)
            unique[v] = size > self.d and bool(np.all(distances > self.d))
            if not np.any(distances == 0):
                self.groups = np.vstack([self.groups, row])
        return unique


def check_both(
    blocks: list[np.ndarray], n_samples: int, min_count: int, seed: int = 0
) -> tuple[np.ndarray, MissingGroups]:
    """Check the blocks with MissingGroups and BruteForce; assert equal results and counts."""
    groups = MissingGroups(n_samples, min_count=min_count, seed=seed)
    reference = BruteForce(n_samples, min_count=min_count)
    unique = []
    for block in blocks:
        got, expected = groups.check(block), reference.check(block)
        assert np.array_equal(got, expected), np.flatnonzero(got != expected)
        unique.append(got)
    assert groups.filed == reference.filed
    return np.concatenate(unique), groups


def in_blocks(missing: np.ndarray, size: int) -> list[np.ndarray]:
    return [missing[start : start + size] for start in range(0, len(missing), size)]


# --------------------------------------------------------------------------- data


def random_calls(
    rng: np.random.Generator, n_variants: int, n_samples: int, rate: float
) -> np.ndarray:
    return rng.random((n_variants, n_samples)) < rate


def poor_samples(rng: np.random.Generator, n_variants: int, n_samples: int) -> np.ndarray:
    """A few samples missing at many variants, over sparse missing calls elsewhere."""
    missing = random_calls(rng, n_variants, n_samples, 0.03)
    missing[:, :4] |= rng.random((n_variants, 4)) < 0.5
    return missing


def failed_plate(rng: np.random.Generator, n_variants: int, n_samples: int) -> np.ndarray:
    """24 samples missing together at a third of the variants, like a failed plate."""
    missing = random_calls(rng, n_variants, n_samples, 0.02)
    plate = rng.choice(n_samples, 24, replace=False)
    missing[np.ix_(rng.random(n_variants) < 0.3, plate)] = True
    return missing


def near_copies(rng: np.random.Generator, n_variants: int, n_samples: int) -> np.ndarray:
    """Groups that are copies of a few groups with 0 to 6 samples added or removed."""
    bases = random_calls(rng, 12, n_samples, 0.06)
    missing = bases[rng.integers(0, len(bases), n_variants)]
    for v in range(n_variants):
        missing[v, rng.choice(n_samples, rng.integers(0, 7), replace=False)] ^= True
    return missing


def nested_chains(rng: np.random.Generator, n_variants: int, n_samples: int) -> np.ndarray:
    """Chains of groups each one sample larger than the last, among unrelated groups."""
    missing = random_calls(rng, n_variants, n_samples, 0.05)
    v = 0
    while v < n_variants:
        order = rng.permutation(n_samples)
        length = min(int(rng.integers(3, 30)), n_variants - v)
        first = int(rng.integers(1, 12))
        for k in range(length):
            missing[v + k] = False
            missing[v + k, order[: first + k]] = True
        v += length + int(rng.integers(0, 20))
    return missing


def small_then_large(rng: np.random.Generator, n_variants: int, n_samples: int) -> np.ndarray:
    """Small groups (a tenth), then large ones (two thirds), then small ones again.

    The part index serves small groups badly, so the prefix index is built; it
    saves nothing on large groups and is dropped; then it is built again.
    """
    small, large = n_variants // 10, 2 * n_variants // 3
    return np.vstack(
        [
            random_calls(rng, small, n_samples, 0.04),
            random_calls(rng, large, n_samples, 0.3),
            random_calls(rng, n_variants - small - large, n_samples, 0.04),
        ]
    )


# --------------------------------------------------------------------------- against brute force


@pytest.mark.parametrize(
    ("n_samples", "rate", "min_count"),
    [
        (200, 0.01, 5),  # groups of 2: nearly all too small, but filed
        (200, 0.04, 5),  # groups of 8: many within 4 of another, some of them small
        (200, 0.1, 5),
        (200, 0.3, 5),
        (300, 0.02, 3),
        (150, 0.08, 8),
        (64, 0.2, 2),
    ],
)
def test_check__matches_brute_force_on_random_calls(
    n_samples: int, rate: float, min_count: int
) -> None:
    rng = np.random.default_rng(int(rate * 1000) + min_count)
    missing = random_calls(rng, 2500, n_samples, rate)
    check_both(in_blocks(missing, 700), n_samples, min_count)


@pytest.mark.parametrize(
    "make", [poor_samples, failed_plate, near_copies, nested_chains, small_then_large]
)
@pytest.mark.parametrize("min_count", [3, 5])
def test_check__matches_brute_force_on_structured_calls(
    make: Callable[[np.random.Generator, int, int], np.ndarray], min_count: int
) -> None:
    rng = np.random.default_rng(min_count)
    missing = make(rng, 3000, 160)
    unique, _ = check_both(in_blocks(missing, 1024), 160, min_count)
    assert unique.any()
    assert not unique.all()


def test_check__matches_brute_force_when_the_index_is_rebuilt_and_dropped() -> None:
    rng = np.random.default_rng(11)
    missing = small_then_large(rng, 6000, 180)
    _, groups = check_both(in_blocks(missing, 512), 180, 5)
    assert groups.prefix_builds >= 2  # built, dropped while groups were large, built again


def test_check__matches_brute_force_when_frequent_samples_reorder_the_prefixes() -> None:
    rng = np.random.default_rng(12)
    missing = random_calls(rng, 5000, 400, 0.02)
    missing[2000:, :6] |= rng.random((3000, 6)) < 0.6  # six samples start failing halfway
    _, groups = check_both(in_blocks(missing, 1000), 400, 5)
    assert groups.prefix_builds >= 2


@pytest.mark.parametrize("min_count", [12, 14])
def test_check__matches_brute_force_with_single_member_prefixes(min_count: int) -> None:
    # above MAX_PAIR_D + 1 the prefix index files single members instead of pairs
    rng = np.random.default_rng(min_count)
    missing = near_copies(rng, 1500, 120) | random_calls(rng, 1500, 120, 0.05)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(missing_groups, "PREFIXES_AFTER", 0)  # the prefix index from the start
        _, groups = check_both(in_blocks(missing, 400), 120, min_count)
    assert groups.prefix_builds >= 1


@pytest.mark.parametrize("prefixes_after", [0, missing_groups.PREFIXES_AFTER])
def test_check__matches_brute_force_when_keys_collide(prefixes_after: int) -> None:
    # Salts without high bits give every key of a part (and every prefix key)
    # the same 32-bit tag, so the lists of unrelated keys merge: only the
    # number of comparisons may change.
    rng = np.random.default_rng(9)
    missing = near_copies(rng, 1500, 90) | random_calls(rng, 1500, 90, 0.03)
    groups = MissingGroups(90, min_count=4)
    for salts in (groups._sample_salt, groups._part_salt, groups._salt_low, groups._salt_high):
        salts &= np.uint64(0xFFFFFFFF)
    reference = BruteForce(90, min_count=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(missing_groups, "PREFIXES_AFTER", prefixes_after)
        for block in in_blocks(missing, 500):
            assert np.array_equal(groups.check(block), reference.check(block))
    assert groups.filed == reference.filed
    assert groups.candidates > 10 * groups.filed


def test_check__matches_brute_force_beyond_65536_samples() -> None:
    # members are stored as int32 beyond 65,536 samples
    n_samples = 70_000
    rng = np.random.default_rng(3)
    pool = np.concatenate([rng.choice(65_536, 30, replace=False), 65_536 + np.arange(30)])
    missing = np.zeros((400, n_samples), dtype=np.bool_)
    for v in range(400):
        missing[v, rng.choice(pool, rng.integers(0, 14), replace=False)] = True
    check_both(in_blocks(missing, 150), n_samples, 4)


def test_check__is_the_same_for_any_seed_and_block_size() -> None:
    rng = np.random.default_rng(5)
    missing = near_copies(rng, 2000, 100)
    expected = BruteForce(100, min_count=5).check(missing)
    for seed, block in [(0, 2000), (1, 1), (2, 333), (3, 64)]:
        groups = MissingGroups(100, min_count=5, seed=seed)
        unique = np.concatenate([groups.check(b) for b in in_blocks(missing, block)])
        assert np.array_equal(unique, expected)


def test_check__reads_unaligned_and_strided_blocks() -> None:
    rng = np.random.default_rng(6)
    missing = near_copies(rng, 300, 77)
    expected = MissingGroups(77, min_count=5).check(missing)
    storage = np.zeros(missing.size + 3, dtype=np.bool_)
    unaligned = storage[3:].reshape(missing.shape)
    unaligned[:] = missing
    strided = np.zeros((300, 2 * 77), dtype=np.bool_)
    strided[:, ::2] = missing
    assert np.array_equal(MissingGroups(77, min_count=5).check(unaligned), expected)
    assert np.array_equal(MissingGroups(77, min_count=5).check(strided[:, ::2]), expected)


# --------------------------------------------------------------------------- property tests


def blocks_of(rows: list[np.ndarray], cuts: list[int]) -> Iterator[np.ndarray]:
    edges = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    for start, stop in itertools.pairwise(edges):
        yield np.array(rows[start:stop], dtype=np.bool_).reshape(stop - start, -1)


@st.composite
def instances(draw: st.DrawFn) -> tuple[int, int, list[np.ndarray], list[int]]:
    """Small instances whose groups are often copies of earlier ones with a few changes."""
    n_samples = draw(st.integers(1, 24))
    min_count = draw(st.integers(1, 6))
    rows: list[np.ndarray] = []
    for _ in range(draw(st.integers(0, 60))):
        if len(rows) > 0 and draw(st.booleans()):
            row = rows[draw(st.integers(0, len(rows) - 1))].copy()
            for i in draw(st.lists(st.integers(0, n_samples - 1), max_size=min_count + 1)):
                row[i] ^= True
        else:
            bits = draw(st.lists(st.booleans(), min_size=n_samples, max_size=n_samples))
            row = np.array(bits, dtype=np.bool_)
        rows.append(row)
    cuts = draw(st.lists(st.integers(0, 60), max_size=4))
    return n_samples, min_count, rows, cuts


@settings(max_examples=300, deadline=None)
@given(instances(), st.integers(0, 3))
def test_check__equals_brute_force_on_small_instances(
    instance: tuple[int, int, list[np.ndarray], list[int]], seed: int
) -> None:
    n_samples, min_count, rows, cuts = instance
    blocks = list(blocks_of(rows, cuts)) or [np.zeros((0, n_samples), dtype=np.bool_)]
    check_both(blocks, n_samples, min_count, seed=seed)


@settings(max_examples=200, deadline=None)
@given(instances())
def test_check__equals_brute_force_with_the_prefix_index_from_the_start(
    instance: tuple[int, int, list[np.ndarray], list[int]],
) -> None:
    n_samples, min_count, rows, cuts = instance
    blocks = list(blocks_of(rows, cuts)) or [np.zeros((0, n_samples), dtype=np.bool_)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(missing_groups, "PREFIXES_AFTER", 0)
        check_both(blocks, n_samples, min_count)


@settings(max_examples=100, deadline=None)
@given(instances())
def test_check__reports_variants_in_the_order_given(
    instance: tuple[int, int, list[np.ndarray], list[int]],
) -> None:
    n_samples, min_count, rows, cuts = instance
    one_block = np.array(rows, dtype=np.bool_).reshape(len(rows), n_samples)
    whole = MissingGroups(n_samples, min_count=min_count).check(one_block)
    groups = MissingGroups(n_samples, min_count=min_count)
    split = [groups.check(block) for block in blocks_of(rows, cuts)]
    assert np.array_equal(np.concatenate([*split, whole[:0]]), whole)
    reversed_unique = MissingGroups(n_samples, min_count=min_count).check(one_block[::-1])
    assert np.array_equal(
        reversed_unique, BruteForce(n_samples, min_count=min_count).check(one_block[::-1])
    )


@settings(max_examples=200, deadline=None)
@given(instances(), st.lists(st.integers(0, 2), min_size=24, max_size=24))
def test_check__split_over_nodes_releases_groups_far_apart(
    instance: tuple[int, int, list[np.ndarray], list[int]], node_of: list[int]
) -> None:
    # Released exactly: a federation group that is empty or unique at some
    # node. Any two released groups are both empty or more than d apart, and
    # each has 0 or at least min_count samples.
    n_samples, min_count, rows, _ = instance
    missing = np.array(rows, dtype=np.bool_).reshape(len(rows), n_samples)
    node = np.array(node_of[:n_samples])
    unique = np.zeros(len(rows), dtype=np.bool_)
    for n in range(3):
        columns = missing[:, node == n]
        unique |= MissingGroups(columns.shape[1], min_count=min_count).check(columns)
    released = missing[~missing.any(axis=1) | unique]
    sizes = released.sum(axis=1)
    assert np.all((sizes == 0) | (sizes >= min_count))
    for a, b in itertools.combinations(released, 2):
        distance = int(np.sum(a ^ b))
        assert distance > min_count - 1 or not (a.any() or b.any())


# --------------------------------------------------------------------------- the rule, case by case


def groups_of(n_samples: int, *members: list[int]) -> np.ndarray:
    missing = np.zeros((len(members), n_samples), dtype=np.bool_)
    for v, samples in enumerate(members):
        missing[v, samples] = True
    return missing


def test_check__reports_groups_unlike_all_earlier_ones_with_min_count_1() -> None:
    rng = np.random.default_rng(7)
    missing = random_calls(rng, 500, 20, 0.1)
    missing[100:200] = missing[:100]
    groups = MissingGroups(20, min_count=1)
    unique = groups.check(missing)
    seen: set[bytes] = set()
    for v, row in enumerate(missing):
        assert unique[v] == (row.any() and row.tobytes() not in seen)
        seen.add(row.tobytes())
    assert not unique[100:200].any()
    assert groups.filed == len({row.tobytes() for row in missing if row.any()})


def test_check__files_small_groups_without_reporting_them() -> None:
    groups = MissingGroups(10, min_count=4)
    unique = groups.check(groups_of(10, [], [0], [0, 1], [0, 1, 2], [5, 6, 7, 8], []))
    assert unique.tolist() == [False, False, False, False, True, False]
    assert groups.filed == 4
    assert groups.filed_members == 10


def test_check__files_identical_groups_once_and_reports_only_the_first() -> None:
    groups = MissingGroups(10, min_count=3)
    unique = groups.check(groups_of(10, [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [5, 6]))
    assert unique.tolist() == [True, False, False, False]
    assert groups.check(groups_of(10, [1, 2, 3, 4], [5, 6])).tolist() == [False, False]
    assert groups.filed == 2


def test_check__reports_groups_more_than_min_count_minus_1_apart() -> None:
    groups = MissingGroups(14, min_count=3)
    unique = groups.check(
        groups_of(
            14,
            [0, 1, 2, 3, 4],
            [0, 1, 2, 3],  # one removed
            [0, 1, 2, 3, 4, 5],  # one added
            [0, 1, 2, 3, 5],  # one swapped: 2 apart
            [0, 1, 2, 5, 6],  # 2 from the last, though 4 from the first
            [8, 9, 10],  # 3 from every group
            [8, 9, 10, 11, 12, 13],  # 3 added
        )
    )
    assert unique.tolist() == [True, False, False, False, False, True, True]
    assert groups.filed == 7


def test_check__compares_with_groups_that_were_not_unique() -> None:
    groups = MissingGroups(10, min_count=3)
    # the second group is 1 from the first, so not unique, but filed; the
    # third is 3 from the first and 2 from the second
    unique = groups.check(
        groups_of(10, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7])
    )
    assert unique.tolist() == [True, False, False]
    assert groups.filed == 3


@pytest.mark.parametrize("min_count", [2, 3, 5])
def test_check__compares_groups_of_min_count_to_twice_d_with_small_ones(min_count: int) -> None:
    d = min_count - 1
    small = list(range(d))  # d samples: too small to be unique, but filed
    groups = MissingGroups(40, min_count=min_count)
    assert groups.check(groups_of(40, small)).tolist() == [False]
    near = [
        small + list(range(20, 20 + k)) for k in range(1, d + 1)
    ]  # d + 1 to 2 d samples, 1 to d from the small group
    far = [
        small + list(range(20, 20 + d + 1)),  # 2 d + 1 samples, d + 1 from it
        list(range(d, 2 * d + 1)),  # d + 1 samples, none shared: 2 d + 1 from it
    ]
    for group in near:
        assert MissingGroups(40, min_count=min_count).check(
            groups_of(40, small, group)
        ).tolist() == [
            False,
            False,
        ]
    for group in far:
        assert MissingGroups(40, min_count=min_count).check(
            groups_of(40, small, group)
        ).tolist() == [
            False,
            True,
        ]


def test_check__finds_small_groups_past_a_sample_in_many_of_them() -> None:
    # Sample 0 is in many small groups; a group of 2 d samples reads the lists
    # of its d + 1 least frequent members, and still finds {0, 1} 2 from it.
    groups = MissingGroups(60, min_count=3)
    many = groups_of(60, *([0, k] for k in range(10, 50)))
    assert not groups.check(many).any()
    assert groups.check(groups_of(60, [0, 1, 2, 3], [0, 1], [0, 1, 4, 5])).tolist() == [
        True,  # no small group within 2: those with 0 have a member outside it
        False,
        False,  # 2 from {0, 1}, 4 from {0, 1, 2, 3}
    ]


def test_check__compares_with_earlier_blocks() -> None:
    groups = MissingGroups(10, min_count=5)
    assert groups.check(groups_of(10, [0, 1, 2, 3, 4, 5])).tolist() == [True]
    assert groups.check(groups_of(10, [0, 1, 2, 3, 4, 5, 9], [0, 1, 2, 3, 4, 5])).tolist() == [
        False,
        False,
    ]
    assert groups.check(groups_of(10, [0, 1])).tolist() == [False]
    assert groups.check(groups_of(10, [0, 1, 7, 8, 9])).tolist() == [False]  # 3 from {0, 1}


def test_check__accepts_empty_blocks_and_cohorts() -> None:
    assert MissingGroups(5, min_count=5).check(np.zeros((0, 5), dtype=np.bool_)).shape == (0,)
    empty = MissingGroups(0, min_count=5)
    assert empty.check(np.zeros((3, 0), dtype=np.bool_)).tolist() == [False] * 3
    assert empty.filed == 0
    assert empty.nbytes > 0


def test_check__refuses_other_arrays() -> None:
    groups = MissingGroups(6, min_count=5)
    with pytest.raises(InputError, match=r"2-D boolean .* not 2-D uint8; no group was checked"):
        groups.check(np.zeros((2, 6), dtype=np.uint8))
    with pytest.raises(InputError, match="not 1-D bool"):
        groups.check(np.zeros(6, dtype=np.bool_))
    with pytest.raises(InputError, match="have 5 samples but the cohort has 6"):
        groups.check(np.zeros((2, 5), dtype=np.bool_))


def test_missing_groups__refuses_bad_settings() -> None:
    with pytest.raises(InputError, match="min_count must be at least 1, not 0"):
        MissingGroups(10, min_count=0)
    with pytest.raises(InputError, match="a cohort cannot have -1 samples"):
        MissingGroups(-1, min_count=5)
