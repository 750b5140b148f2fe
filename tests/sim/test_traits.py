from __future__ import annotations

import numpy as np
import pytest

from genofed.sim._traits import (
    draw_covariates,
    genetic_value,
    liability_threshold_cases,
    per_allele_effects,
    residual_noise,
)


def test_per_allele_effects__genetic_value_has_exactly_the_asked_variance() -> None:
    rng = np.random.default_rng(1)
    dosages = rng.binomial(2, rng.uniform(0.05, 0.5, size=(15, 1)), size=(15, 3000)).astype(float)
    effects = per_allele_effects(rng, dosages, 0.27)
    value = genetic_value(effects, dosages)
    assert value.var() == pytest.approx(0.27, rel=1e-12)
    assert value.mean() == pytest.approx(0.0, abs=1e-12)


def test_residual_noise__has_exact_variance_and_zero_mean() -> None:
    noise = residual_noise(np.random.default_rng(2), 500, 0.7)
    assert noise.var() == pytest.approx(0.7, rel=1e-12)
    assert noise.mean() == pytest.approx(0.0, abs=1e-12)


def test_liability_threshold__gives_each_group_its_prevalence() -> None:
    rng = np.random.default_rng(3)
    groups = np.repeat([0, 1, 2], 1000)
    cases = liability_threshold_cases(rng.normal(size=3000), groups, np.array([0.05, 0.1, 0.0]))
    assert [cases[groups == g].sum() for g in range(3)] == [50, 100, 0]


def test_liability_threshold__cases_have_the_highest_liability() -> None:
    liability = np.array([0.1, 3.0, -1.0, 2.0])
    cases = liability_threshold_cases(liability, np.zeros(4, dtype=np.intp), np.array([0.5]))
    np.testing.assert_array_equal(cases, [0, 1, 0, 1])


def test_draw_covariates__ages_are_adult_whole_years_and_sex_is_plink_coded() -> None:
    covariates = draw_covariates(np.random.default_rng(4), 2000)
    assert covariates.age.min() >= 18
    assert covariates.age.max() <= 90
    np.testing.assert_array_equal(covariates.age, np.round(covariates.age))
    assert set(np.unique(covariates.sex)) == {1, 2}
