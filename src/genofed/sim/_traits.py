"""Covariates and phenotypes with planted causal variants (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MALE, FEMALE = 1, 2  # PLINK's sex codes


@dataclass(frozen=True)
class TraitModel:
    """How the quantitative trait ``ldl`` and the disease trait ``t2d`` arise.

    ``ldl`` (LDL cholesterol, mmol/L) is the country mean, plus age and sex
    effects, plus a genetic value from ``ldl_causal`` variants, plus noise. The
    genetic value explains ``ldl_heritability`` of the variance left after the
    covariates and country means (the SNP heritability), and that variance is
    ``ldl_sd`` squared.

    ``t2d`` is a liability-threshold trait: liability = genetic value
    (``t2d_heritability`` of the residual variance, from ``t2d_causal``
    variants) + age and sex effects + noise, and a sample is a case when its
    liability exceeds its country's threshold, chosen to give the country's
    prevalence.

    Causal variants are drawn from variants with pooled minor allele
    frequency of at least ``causal_min_maf``.

    Missing values are nested, as when a sample was never phenotyped: each
    sample draws one uniform number, turned into its quantile within its
    country, and misses every column whose rate in ``missing_rates`` exceeds
    it, so that a country of ``n`` misses ``rate * n`` values (rounded).
    With equal rates for ``ldl`` and ``t2d``, a GWAS of either on ``age`` and
    ``sex`` has the same cohort, and a PCA over every genotyped sample
    differs from it by 3% of the samples (30 in a country of 1,000, 12 in one
    of 400): a node's ``min_difference`` rule lets a researcher run all three
    only because those cohorts are equal or differ by more than a few samples.
    """

    ldl_heritability: float = 0.3
    ldl_causal: int = 20
    ldl_sd: float = 0.9
    ldl_per_year: float = 0.02
    ldl_male: float = 0.10
    t2d_heritability: float = 0.4
    t2d_causal: int = 20
    t2d_per_year: float = 0.03
    t2d_male: float = 0.2
    causal_min_maf: float = 0.01
    missing_rates: tuple[tuple[str, float], ...] = (("ldl", 0.03), ("t2d", 0.03), ("age", 0.005))


@dataclass(frozen=True)
class Covariates:
    """Age in whole years and PLINK-coded sex for every sample."""

    age: FloatArray
    sex: npt.NDArray[np.int8]


def draw_covariates(rng: np.random.Generator, n_samples: int) -> Covariates:
    """Draw ages (about 52 +/- 12, within 18-90) and sexes (half male)."""
    age = np.clip(np.round(rng.normal(52.0, 12.0, n_samples)), 18, 90)
    sex = np.where(rng.random(n_samples) < 0.5, MALE, FEMALE).astype(np.int8)
    return Covariates(age, sex)


def per_allele_effects(
    rng: np.random.Generator, dosages: FloatArray, variance: float
) -> FloatArray:
    """Effects per copy of the counted allele whose genetic value has this sample variance.

    Effects on standardised genotypes are standard normal; they are then
    rescaled so that the variance of ``effects @ dosages`` is exactly
    ``variance`` in this sample.

    Parameters
    ----------
    dosages
        (causal variants, samples) complete allele counts.
    """
    standardised = rng.standard_normal(len(dosages))
    effects = standardised / dosages.std(axis=1)
    genetic_value = effects @ dosages
    return np.asarray(effects * np.sqrt(variance / genetic_value.var()))


def genetic_value(effects: FloatArray, dosages: FloatArray) -> FloatArray:
    """Each sample's genetic value, centred so the trait mean stays the country mean."""
    value = effects @ dosages
    return np.asarray(value - value.mean())


def residual_noise(rng: np.random.Generator, n_samples: int, variance: float) -> FloatArray:
    """Independent normal noise with exactly this sample variance and mean zero."""
    noise = rng.standard_normal(n_samples)
    noise -= noise.mean()
    return np.asarray(noise * np.sqrt(variance / noise.var()))


def liability_threshold_cases(
    liability: FloatArray, groups: npt.NDArray[np.intp], prevalences: FloatArray
) -> FloatArray:
    """1.0 for samples whose liability is in their group's top ``prevalence``, else 0.0."""
    cases = np.zeros(len(liability))
    for group, prevalence in enumerate(prevalences):
        members = np.flatnonzero(groups == group)
        n_cases = round(prevalence * len(members))
        if n_cases:
            top = members[np.argsort(liability[members])[-n_cases:]]
            cases[top] = 1.0
    return cases


def set_missing(draws: FloatArray, values: FloatArray, rate: float) -> FloatArray:
    """Copy of ``values`` with NaN where the sample's uniform ``draws`` fall below ``rate``."""
    values = values.copy()
    values[draws < rate] = np.nan
    return values
