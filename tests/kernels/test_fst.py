from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genofed.kernels.fst import hudson_fst_sums


def test_hudson_fst__identical_populations_give_about_zero() -> None:
    counts = np.array([[10, 10], [50, 50], [3, 3]])
    numbers = np.full((3, 2), 100)
    assert abs(hudson_fst_sums(counts, numbers).fst) < 0.02


def test_hudson_fst__fixed_differences_give_one() -> None:
    counts = np.array([[0, 100], [100, 0]])
    numbers = np.full((2, 2), 100)
    assert hudson_fst_sums(counts, numbers).fst == pytest.approx(1.0, abs=0.02)


def test_hudson_fst__matches_the_formula_for_one_variant() -> None:
    p1, p2, n1, n2 = 0.3, 0.5, 200, 100
    numerator = (p1 - p2) ** 2 - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    denominator = p1 * (1 - p2) + p2 * (1 - p1)
    sums = hudson_fst_sums(np.array([[60, 50]]), np.array([[n1, n2]]))
    assert sums.fst == pytest.approx(numerator / denominator, rel=1e-12)


def test_hudson_fst__skips_uncalled_and_monomorphic_variants() -> None:
    sums = hudson_fst_sums(
        np.array([[0, 0], [1, 0], [5, 9]]), np.array([[10, 10], [1, 10], [10, 10]])
    )
    assert sums.n_variants == 1


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32 - 1))
def test_hudson_fst__sums_over_blocks_equal_the_whole(n_variants: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    numbers = rng.integers(2, 50, size=(n_variants, 2))
    counts = rng.integers(0, numbers + 1)
    split = n_variants // 2
    whole = hudson_fst_sums(counts, numbers)
    parts = hudson_fst_sums(counts[:split], numbers[:split]) + hudson_fst_sums(
        counts[split:], numbers[split:]
    )
    assert parts.n_variants == whole.n_variants
    assert parts.numerator == pytest.approx(whole.numerator, abs=1e-9)
    assert parts.denominator == pytest.approx(whole.denominator, abs=1e-9)
