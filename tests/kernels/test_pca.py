"""The PCA kernels: block Krylov against numpy's eigendecomposition, and any split of samples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genofed import InputError
from genofed.io.plink import MISSING_CALL
from genofed.kernels.pca import (
    PcaIteration,
    PcaResult,
    fit_pca,
    local_gram_product,
    local_scores,
    standardization,
)


def structured_genotypes(seed: int, n: int = 300, m: int = 800) -> np.ndarray:
    """(m variants, n samples) int8 from three populations, with 2% missing calls."""
    rng = np.random.default_rng(seed)
    population = rng.integers(0, 3, size=n)
    base = rng.beta(1, 3, size=m).clip(0.05, 0.95)
    p = (base + rng.normal(0, 0.1, size=(3, m))[population]).clip(0.01, 0.99)
    g = rng.binomial(2, p).astype(np.int8).T
    g[rng.random(g.shape) < 0.02] = MISSING_CALL
    return np.ascontiguousarray(g)


def reference(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean-imputed, variance-standardised X (n x m) and the eigenpairs of X X' / m."""
    called = g >= 0
    p = np.where(called, g, 0).sum(axis=1) / (2 * called.sum(axis=1))
    x = np.where(called, (g - 2 * p[:, None]) / np.sqrt(2 * p * (1 - p))[:, None], 0.0).T
    values, vectors = np.linalg.eigh(x @ x.T / g.shape[0])
    return x, p, values[::-1], vectors[:, ::-1]


def split_fit(g: np.ndarray, cuts: list[int], k: int):
    called = g >= 0
    mean, scale = standardization(np.where(called, g, 0).sum(axis=1), called.sum(axis=1))
    parts = [
        np.ascontiguousarray(g[:, a:b])
        for a, b in zip([0, *cuts], [*cuts, g.shape[1]], strict=True)
    ]
    result = fit_pca(
        lambda q: sum(local_gram_product(part, mean, scale, q) for part in parts),
        g.shape[0], k, tolerance=1e-10, max_iterations=200,
    )  # fmt: skip
    scores = np.vstack([local_scores(p, mean, scale, result.loadings, result.theta) for p in parts])
    return result, scores


def largest_angle(a: np.ndarray, b: np.ndarray) -> float:
    cosines = np.linalg.svd(a.T @ b, compute_uv=False)
    return float(np.arccos(np.clip(cosines.min(), -1.0, 1.0)))


def test_fit_pca__equals_numpys_eigendecomposition_of_the_relationship_matrix() -> None:
    g = structured_genotypes(1)
    _, _, values, vectors = reference(g)
    result, scores = split_fit(g, [100, 220], k=5)
    assert result.converged
    np.testing.assert_allclose(result.eigenvalues, values[:5], rtol=1e-10)
    np.testing.assert_allclose(scores.T @ scores, np.eye(5), atol=1e-10)
    assert largest_angle(scores, vectors[:, :5]) < 1e-6


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 299), max_size=4, unique=True))
def test_fit_pca__any_split_of_the_samples_gives_the_same_components(
    seed: int, cuts: list[int]
) -> None:
    g = structured_genotypes(seed % 7, n=300, m=400)
    pooled, pooled_scores = split_fit(g, [], k=3)
    split, split_scores = split_fit(g, sorted(cuts), k=3)
    np.testing.assert_allclose(split.eigenvalues, pooled.eigenvalues, rtol=1e-9)
    assert largest_angle(split.loadings, pooled.loadings) < 1e-6
    assert largest_angle(split_scores, pooled_scores) < 1e-6


def test_fit_pca__restarts_keep_converging_with_a_small_block() -> None:
    g = structured_genotypes(3, n=300, m=1500)
    _, _, values, _ = reference(g)
    called = g >= 0
    mean, scale = standardization(np.where(called, g, 0).sum(axis=1), called.sum(axis=1))
    result = fit_pca(
        lambda q: local_gram_product(g, mean, scale, q), g.shape[0], 4,
        block=4, tolerance=1e-8, max_iterations=400,
    )  # fmt: skip
    assert result.converged  # the basis is restarted many times on the way
    np.testing.assert_allclose(result.eigenvalues, values[:4], rtol=1e-8)


def gram(g: np.ndarray):
    """One round trip over the pooled samples: ``Q -> X'X Q``."""
    called = g >= 0
    mean, scale = standardization(np.where(called, g, 0).sum(axis=1), called.sum(axis=1))
    return lambda q: local_gram_product(g, mean, scale, q)


def assert_identical(ours: PcaResult, theirs: PcaResult) -> None:
    for name in ("eigenvalues", "theta", "loadings", "residuals", "iterations", "converged"):
        a, b = np.asarray(getattr(ours, name)), np.asarray(getattr(theirs, name))
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert np.array_equal(a, b), name
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize(
    ("seed", "m", "k", "block", "tolerance", "max_iterations", "converges"),
    [
        (1, 800, 5, None, 1e-10, 200, True),
        (3, 1500, 4, 4, 1e-8, 400, True),  # many thick restarts
        (2, 400, 3, None, 1e-14, 6, False),  # stops at the iteration limit
    ],
)
def test_pca_iteration__replayed_product_by_product_gives_fit_pca_bit_for_bit(
    seed: int,
    m: int,
    k: int,
    block: int | None,
    tolerance: float,
    max_iterations: int,
    converges: bool,
) -> None:
    g = structured_genotypes(seed, n=300, m=m)
    multiply = gram(g)
    rounds: list[tuple[np.ndarray, np.ndarray]] = []

    def record(q: np.ndarray) -> np.ndarray:
        rounds.append((q.copy(), multiply(q)))
        return rounds[-1][1]

    options = {"block": block, "tolerance": tolerance, "max_iterations": max_iterations, "seed": 5}
    theirs: list[tuple[int, float]] = []
    expected = fit_pca(record, m, k, progress=lambda *a: theirs.append(a), **options)
    ours: list[tuple[int, float]] = []
    iteration = PcaIteration(m, k, progress=lambda *a: ours.append(a), **options)
    with pytest.raises(InputError, match="needs more products after 0"):
        iteration.result()
    for t, (q, image) in enumerate(rounds):
        assert iteration.rounds == t
        basis = iteration.request()
        assert basis is not None
        assert basis.tobytes() == q.tobytes(), f"block {t}"
        iteration.advance(image)
    assert iteration.request() is None
    assert_identical(iteration.result(), expected)
    assert ours == theirs
    assert expected.converged == converges
    assert expected.iterations == len(rounds) == iteration.rounds
    with pytest.raises(InputError, match="no request to answer"):
        iteration.advance(rounds[-1][1])


def test_pca_iteration__refuses_a_product_of_the_wrong_shape() -> None:
    g = structured_genotypes(4, n=100, m=200)
    iteration = PcaIteration(200, 2, seed=1)
    q = iteration.request()
    assert q is not None
    with pytest.raises(InputError, match="Q's shape \\(200, 12\\), got \\(200, 11\\)"):
        iteration.advance(gram(g)(q)[:, :11])
    assert iteration.rounds == 0
    assert iteration.request() is q
    with pytest.raises(InputError, match="cannot find 3 components of 2 variants"):
        PcaIteration(2, 3)


def test_standardization__refuses_a_monomorphic_variant_by_number() -> None:
    with pytest.raises(InputError, match="number 2"):
        standardization([10, 0, 5], [10, 10, 10])
