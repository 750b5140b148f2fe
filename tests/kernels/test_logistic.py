from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from genofed import InputError
from genofed.io import read_phenotype_table
from genofed.io.genotypes import MISSING_CALL, read_variant_blocks
from genofed.io.phenotypes import write_phenotype_table
from genofed.io.plink import BedWriter, VariantInfo, read_bim
from genofed.kernels.logistic import (
    FirthMode,
    LogisticBlock,
    LogisticDesign,
    LogisticFit,
    LogisticResult,
    NullLogisticFitter,
    NullLogisticSums,
    RoundRequest,
    RoundSums,
    covariates_separate,
    fit_logistic,
    fit_null_logistic,
    local_covariate_ranges,
    local_firth_sums,
    local_logistic_sums,
    local_missing_score_sums,
    local_null_logistic_sums,
    local_round,
    local_score_sums,
    logistic_block,
    logistic_design,
    score_test,
    variants_to_refine,
)
from genofed.sim import SimulationResult
from tests.conftest import PlinkRunner
from tests.plink import pooled_glm_logistic

AGE_SEX = ("age", "sex")
Evaluate = Callable[[RoundRequest], RoundSums]
Record = TypeVar("Record", LogisticResult, "Plink")


@dataclass(frozen=True)
class Samples:
    """Covariates (intercept first), a 0/1 trait and (samples x variants) dosages in .fam order."""

    covariates: np.ndarray
    phenotype: np.ndarray  # NaN where missing
    included: np.ndarray
    dosages: np.ndarray

    @property
    def k(self) -> int:
        return self.covariates.shape[1]

    @property
    def n_variants(self) -> int:
        return self.dosages.shape[1]

    def node(self, rows: np.ndarray | slice = slice(None)) -> tuple[LogisticDesign, LogisticBlock]:
        y = np.nan_to_num(self.phenotype[rows])
        design = logistic_design(self.covariates[rows], y, self.included[rows])
        return design, logistic_block(design, self.dosages[rows])

    def evaluate(self, cuts: list[int] | None = None) -> Evaluate:
        """One round trip: pooled, or summed over nodes holding consecutive rows."""
        parts = np.split(np.arange(len(self.phenotype)), cuts) if cuts else [slice(None)]
        nodes = [self.node(rows) for rows in parts]
        return lambda request: reduce(add, (local_round(d, b, request) for d, b in nodes))

    def fit(self, cuts: list[int] | None = None, firth: FirthMode = "fallback") -> LogisticResult:
        return fit_logistic(self.evaluate(cuts), self.n_variants, self.k, firth=firth)


def read_samples(table: Path, bed: Path, trait: str, covariates: tuple[str, ...]) -> Samples:
    columns = read_phenotype_table(table).columns
    values = [columns[c] for c in covariates]
    included = ~np.isnan(columns[trait])
    for value in values:
        included &= ~np.isnan(value)
    dosages = np.concatenate(list(read_variant_blocks(bed, block_size=4096)), axis=1)
    c = np.column_stack([np.ones(len(included)), *values])
    return Samples(c, columns[trait], included, dosages)


@dataclass(frozen=True)
class Plink:
    """The columns of a ``.glm.logistic.hybrid`` file."""

    beta: np.ndarray
    se: np.ndarray
    z: np.ndarray
    p: np.ndarray
    n: np.ndarray
    firth: np.ndarray
    error: np.ndarray
    ids: list[str]

    @classmethod
    def parse(cls, rows: list[dict[str, str]]) -> Plink:
        def column(name: str) -> np.ndarray:
            return np.array([np.nan if r[name] == "NA" else float(r[name]) for r in rows])

        return cls(
            beta=np.log(column("OR")),
            se=column("LOG(OR)_SE"),
            z=column("Z_STAT"),
            p=column("P"),
            n=np.array([int(r["OBS_CT"]) for r in rows]),
            firth=np.array([r["FIRTH?"] == "Y" for r in rows]),
            error=np.array([r["ERRCODE"] for r in rows]),
            ids=[r["ID"] for r in rows],
        )


def assert_within(actual: np.ndarray, expected: np.ndarray, bound: np.ndarray, what: str) -> None:
    if not len(actual):  # no row of this kind to compare
        return
    error = np.abs(actual - expected)
    worst = int(np.argmax(error / bound))
    assert (error <= bound).all(), f"{what}: {actual[worst]} vs PLINK {expected[worst]}"


def assert_close_to_plink(
    result: LogisticResult, plink: Plink, rows: np.ndarray, tol: float
) -> None:
    """beta and SE within ``tol`` SEs, p within ``tol (1 + z^2)`` on the log scale."""
    se, z = plink.se[rows], plink.z[rows]
    assert_within(result.beta[rows], plink.beta[rows], tol * se, "beta")
    assert_within(result.standard_error[rows], se, tol * se, "SE")
    log_p = np.log(result.p_value[rows])
    assert_within(log_p, np.log(plink.p[rows]), tol * (1 + z * z), "log p")


def assert_equals_plink(result: LogisticResult, plink: Plink) -> None:
    """Same OBS_CT, FIRTH?, NA pattern and ERRCODE; values to PLINK's single precision.

    PLINK computes in single precision: its converged logistic fits agree to
    ~5e-5 SE here (tolerance 1e-4). Its Firth fits stop when float rounding
    hides further progress ("converged as much as we can with
    single-precision arithmetic"), ~1e-3 SE from the optimum (tolerance
    3e-3). Whether a Firth fit hits the iteration limit (UNFINISHED) differs
    for about 1% of them: where the Firth step overshoots and oscillates,
    float noise sometimes ends the oscillation early in PLINK (tolerance
    2e-2 where one fit is UNFINISHED; where both are, a diverging coefficient
    is compared by sign).
    """
    np.testing.assert_array_equal(result.n, plink.n)
    np.testing.assert_array_equal(result.firth, plink.firth)
    np.testing.assert_array_equal(np.isnan(result.beta), np.isnan(plink.beta))
    differ = result.error != plink.error
    assert set(zip(result.error[differ], plink.error[differ], strict=True)) <= {
        (".", "UNFINISHED"),
        ("UNFINISHED", "."),
    }
    assert (plink.firth | (plink.error == "UNFINISHED"))[differ].all()
    assert differ.sum() <= 0.02 * plink.firth.sum() + 2
    finished = (plink.error == ".") & (result.error == ".")
    assert_close_to_plink(result, plink, ~plink.firth & finished, 1e-4)
    assert_close_to_plink(result, plink, plink.firth & finished, 3e-3)
    # Where both fits hit the iteration limit, a diverging coefficient is compared by sign.
    both_unfinished = (plink.error == "UNFINISHED") & (result.error == "UNFINISHED")
    one_unfinished = plink.firth & ~finished & ~np.isnan(plink.beta) & ~both_unfinished
    assert_close_to_plink(result, plink, one_unfinished, 2e-2)
    diverging = both_unfinished & ~np.isnan(plink.beta)
    np.testing.assert_array_equal(np.sign(result.beta[diverging]), np.sign(plink.beta[diverging]))


@pytest.fixture(scope="module")
def pooled(cohorts: SimulationResult) -> Samples:
    pooled = cohorts.out / "pooled"
    return read_samples(pooled / "phenotypes.tsv", pooled / "genotypes.bed", "t2d", AGE_SEX)


@pytest.fixture(scope="module")
def pooled_fit(pooled: Samples) -> LogisticResult:
    return pooled.fit()


def test_logistic__pooled_t2d_on_age_and_sex_equals_plink2(
    cohorts: SimulationResult, plink2: PlinkRunner, pooled_fit: LogisticResult, tmp_path: Path
) -> None:
    plink = Plink.parse(pooled_glm_logistic(plink2, cohorts.out, "t2d", "age,sex", tmp_path))
    assert len(plink.n) == len(pooled_fit.n) == 8000
    assert 1000 < plink.firth.sum() < 7000  # rare variants with no ALT among cases or controls
    assert_equals_plink(pooled_fit, plink)
    assert pooled_fit.rounds.max() <= 60


def test_logistic__pooled_t2d_alone_equals_plink2(
    cohorts: SimulationResult, plink2: PlinkRunner, pooled: Samples, tmp_path: Path
) -> None:
    included = ~np.isnan(pooled.phenotype)  # also the samples without age
    alone = Samples(pooled.covariates[:, :1], pooled.phenotype, included, pooled.dosages)
    plink = Plink.parse(pooled_glm_logistic(plink2, cohorts.out, "t2d", "", tmp_path))
    assert_equals_plink(alone.fit(), plink)


def test_logistic__three_nodes_give_the_pooled_results(
    pooled: Samples, pooled_fit: LogisticResult
) -> None:
    federated = pooled.fit(cuts=[517, 1650])
    for field in ("n", "firth", "error"):
        np.testing.assert_array_equal(getattr(federated, field), getattr(pooled_fit, field))
    # A Firth fit can stall (PLINK's "hs_bail") at a step whose change of l* is
    # within rounding of its thresholds; split sums round differently from pooled
    # ones, so such a fit may take another iteration or two and end a Firth
    # tolerance away. Every other fit follows the same path to the last bit.
    logistic = ~pooled_fit.firth
    for field in ("beta", "standard_error", "z_statistic", "p_value"):
        ours, theirs = getattr(federated, field), getattr(pooled_fit, field)
        np.testing.assert_allclose(ours[logistic], theirs[logistic], rtol=1e-10, err_msg=field)
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, err_msg=field)
    np.testing.assert_array_equal(federated.rounds[logistic], pooled_fit.rounds[logistic])
    firth_paths = federated.rounds[~logistic] != pooled_fit.rounds[~logistic]
    assert firth_paths.sum() <= max(1, 0.02 * (~logistic).sum())


@pytest.mark.parametrize("cuts", [[1200], [300, 900, 2000]])
def test_local_sums__of_nodes_add_up_to_the_pooled_sums(pooled: Samples, cuts: list[int]) -> None:
    rng = np.random.default_rng(len(cuts))
    dosages = pooled.dosages[:, :300]
    coef = rng.normal(0, 0.3, (300, pooled.k + 1)) / [1, 50, 1, 1]
    a = rng.normal(size=(300, 4, 4))
    inverse = a @ a.transpose(0, 2, 1) + np.eye(4)  # any symmetric matrices will do
    whole = pooled.node()[0]
    parts = [pooled.node(rows)[0] for rows in np.split(np.arange(len(pooled.phenotype)), cuts)]
    row_parts = np.split(np.arange(len(pooled.phenotype)), cuts)
    expected = local_logistic_sums(whole, dosages, coef)
    summed = reduce(
        add,
        (local_logistic_sums(d, dosages[r], coef) for d, r in zip(parts, row_parts, strict=True)),
    )
    for field in ("score", "information", "loglik", "n", "cases", "alt", "alt_cases"):
        np.testing.assert_allclose(getattr(summed, field), getattr(expected, field), rtol=1e-11)
    firth = reduce(
        add,
        (
            local_firth_sums(d, dosages[r], coef, inverse)
            for d, r in zip(parts, row_parts, strict=True)
        ),
    )
    np.testing.assert_allclose(
        firth.correction, local_firth_sums(whole, dosages, coef, inverse).correction, rtol=1e-10
    )


def test_logistic__equals_statsmodels_logit_where_no_firth_is_needed(pooled: Samples) -> None:
    variants = np.arange(0, pooled.n_variants, 40)
    result = fit_logistic(
        pooled.evaluate(), pooled.n_variants, pooled.k, variants=variants, final_information=True
    )
    checked = 0
    for j, beta, se, p, firth, error in zip(
        variants,
        result.beta,
        result.standard_error,
        result.p_value,
        result.firth,
        result.error,
        strict=True,
    ):
        if firth or error != ".":
            continue
        g = pooled.dosages[pooled.included, j]
        called = g != MISSING_CALL
        x = np.column_stack([pooled.covariates[pooled.included][called], g[called]])
        fit = sm.Logit(pooled.phenotype[pooled.included][called], x).fit(
            method="newton", tol=1e-12, maxiter=100, disp=0
        )
        np.testing.assert_allclose(
            [beta, se, p], [fit.params[-1], fit.bse[-1], fit.pvalues[-1]], rtol=1e-6
        )
        checked += 1
    assert checked > 80


# --- Synthetic variants that force Firth regression or NA, and a rare trait --------------------


SYNTHETIC = (
    "alt_in_cases_only",  # zero ALT among controls: straight to Firth
    "two_carriers",  # one case, one control carrier
    "two_control_carriers",  # zero ALT among cases: Firth
    "three_carriers",  # monomorphic but for three samples
    "quasi_separated",  # cases have ALT, controls at most one: logistic never converges
    "hom_alt_in_cases",  # no REF among cases: Firth
    "constant",  # CONST_OMITTED_ALLELE
    "sex_copy",  # CORR_TOO_HIGH with the sex covariate
    "few_called",  # SAMPLE_CT<=PREDICTOR_CT
    "missing_in_cases",  # 40% of the cases missing
    "missing_random",  # 20% of everyone missing
    "missing_control_carriers",  # ALT in 4 cases, 3 controls missing: counts on called samples
    "separated_with_age",  # age - 30 g separates 'rare': logistic fails, Firth fallback
)


@dataclass(frozen=True)
class Synthetic:
    genotypes: Path  # .bed prefix
    phenotypes: Path


def synthetic_dosages(rng: np.random.Generator, columns: dict[str, np.ndarray]) -> np.ndarray:
    t2d, age, sex, rare = (columns[c] for c in ("t2d", "age", "sex", "rare"))
    n = len(t2d)
    case, control = t2d == 1, t2d == 0

    def carriers(mask: np.ndarray, count: int, value: int = 1) -> np.ndarray:
        v = np.zeros(n, np.int8)
        v[rng.choice(np.flatnonzero(mask), count, replace=False)] = value
        return v

    few = np.full(n, MISSING_CALL, np.int8)
    few[rng.choice(n, 3, replace=False)] = [0, 1, 2]
    in_cases = rng.binomial(2, 0.3, n).astype(np.int8)
    in_cases[case & (rng.random(n) < 0.4)] = MISSING_CALL
    random = rng.binomial(2, 0.2, n).astype(np.int8)
    random[rng.random(n) < 0.2] = MISSING_CALL
    missing_controls = carriers(case, 4) + carriers(control, 3, MISSING_CALL)
    separated = np.where(rare == 1, age >= 70, np.where(age > 70, 2, age > 40)).astype(np.int8)
    return np.array(
        [
            carriers(case, 5),
            carriers(case, 1) + carriers(control, 1),
            carriers(control, 2),
            carriers(np.ones(n, bool), 3),
            np.where(case, rng.integers(1, 3, n), rng.random(n) < 0.1).astype(np.int8),
            np.where(case, 2, rng.integers(0, 3, n)).astype(np.int8),
            np.ones(n, np.int8),
            np.nan_to_num(sex - 1).astype(np.int8),
            few,
            in_cases,
            random,
            missing_controls,
            separated,
        ]
    )


@pytest.fixture(scope="module")
def synthetic(cohorts: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """The pooled samples with the SYNTHETIC variants and 300 real ones; traits t2d,
    'rare' (15 cases aged 45+) and 'agesep' (age >= 70, separated by the age covariate)."""
    out = tmp_path_factory.mktemp("synthetic")
    pooled = cohorts.out / "pooled"
    table = read_phenotype_table(pooled / "phenotypes.tsv")
    columns = dict(table.columns)
    t2d, age = columns["t2d"], columns["age"]
    rng = np.random.default_rng(11)
    rare = np.where(np.isnan(t2d), np.nan, 0.0)
    rare[rng.choice(np.flatnonzero(~np.isnan(t2d) & (age >= 45)), 15, replace=False)] = 1.0
    columns["rare"] = rare
    columns["agesep"] = np.where(np.isnan(age) | np.isnan(t2d), np.nan, 1.0 * (age >= 70))
    real = next(read_variant_blocks(pooled / "genotypes.bed", block_size=300)).T
    dosages = np.vstack([synthetic_dosages(rng, columns), real])
    bim, k = read_bim(pooled / "genotypes.bim"), len(SYNTHETIC)
    variants = VariantInfo(
        chromosome=np.concatenate([np.full(k, "1"), bim.chromosome[:300]]),
        variant_id=np.concatenate([np.array(SYNTHETIC), bim.variant_id[:300]]),
        cm_position=np.concatenate([np.zeros(k), bim.cm_position[:300]]),
        bp_position=np.concatenate([np.arange(1, k + 1), bim.bp_position[:300]]),
        allele_1=np.concatenate([np.full(k, "A"), bim.allele_1[:300]]),
        allele_2=np.concatenate([np.full(k, "G"), bim.allele_2[:300]]),
    )
    sexes = np.nan_to_num(columns["sex"]).astype(np.int8)
    with BedWriter(out / "g", iids=list(table.iids), sexes=sexes, variants=variants) as writer:
        writer.write_block(dosages)
    write_phenotype_table(out / "phenotypes.tsv", table.iids, columns)
    return Synthetic(out / "g", out / "phenotypes.tsv")


def synthetic_run(
    synthetic: Synthetic, trait: str, plink2: PlinkRunner, cohorts: Path, workdir: Path
) -> tuple[Samples, Plink]:
    samples = read_samples(
        synthetic.phenotypes, synthetic.genotypes.with_suffix(".bed"), trait, AGE_SEX
    )
    rows = pooled_glm_logistic(
        plink2, cohorts, trait, "age,sex", workdir,
        genotypes=synthetic.genotypes, phenotypes=synthetic.phenotypes,
    )  # fmt: skip
    return samples, Plink.parse(rows)


def test_logistic__firth_and_na_cases_equal_plink2_for_t2d(
    synthetic: Synthetic, plink2: PlinkRunner, cohorts: SimulationResult, tmp_path: Path
) -> None:
    samples, plink = synthetic_run(synthetic, "t2d", plink2, cohorts.out, tmp_path)
    result = samples.fit()
    by_name = dict(zip(plink.ids, range(len(plink.ids)), strict=True))
    for name in ("alt_in_cases_only", "two_control_carriers", "hom_alt_in_cases"):
        assert plink.firth[by_name[name]], name
        assert result.firth[by_name[name]], name
    expected_na = {
        "constant": "CONST_OMITTED_ALLELE",
        "sex_copy": "CORR_TOO_HIGH",
        "few_called": "SAMPLE_CT<=PREDICTOR_CT",
    }
    for name, error in expected_na.items():
        assert plink.error[by_name[name]] == result.error[by_name[name]] == error
    # Quasi-separated: both hit the iteration limit with a diverging beta, whose
    # value then depends on PLINK's single-precision rounding.
    quasi = by_name["quasi_separated"]
    assert plink.error[quasi] == result.error[quasi] == "UNFINISHED"
    assert not result.firth[quasi]
    assert result.beta[quasi] > 10
    others = np.arange(len(plink.ids)) != quasi
    assert_equals_plink(take(result, others), take(plink, others))


def test_logistic__few_cases_and_firth_fallback_equal_plink2(
    synthetic: Synthetic, plink2: PlinkRunner, cohorts: SimulationResult, tmp_path: Path
) -> None:
    samples, plink = synthetic_run(synthetic, "rare", plink2, cohorts.out, tmp_path)
    result = samples.fit()
    assert np.nansum(samples.phenotype) == 15
    fallback = plink.ids.index("separated_with_age")
    g = samples.dosages[samples.included, fallback].astype(int)
    case = samples.phenotype[samples.included] == 1
    for alt in (g[case], g[~case], 2 - g[case], 2 - g[~case]):  # ALT and REF, cases and controls
        assert alt.sum() > 0  # so PLINK tries logistic regression first, which fails
    assert plink.firth[fallback]
    assert result.firth[fallback]
    # PLINK's single-precision logistic regression stops short (UNFINISHED) on
    # a few variants with so few cases; compare the others.
    converged = ~((plink.error == "UNFINISHED") & ~plink.firth)
    assert converged.sum() >= len(converged) - 3
    assert_equals_plink(take(result, converged), take(plink, converged))


def test_logistic__a_separating_covariate_means_firth_for_every_variant(
    synthetic: Synthetic, plink2: PlinkRunner, cohorts: SimulationResult, tmp_path: Path
) -> None:
    samples, plink = synthetic_run(synthetic, "agesep", plink2, cohorts.out, tmp_path)
    design = samples.node()[0]
    assert covariates_separate(local_covariate_ranges(design))
    t2d = read_samples(
        synthetic.phenotypes, synthetic.genotypes.with_suffix(".bed"), "t2d", AGE_SEX
    )
    assert not covariates_separate(local_covariate_ranges(t2d.node()[0]))
    result = samples.fit(firth="always")
    fitted = ~np.isnan(plink.beta)
    np.testing.assert_array_equal(np.isnan(result.beta), ~fitted)
    np.testing.assert_array_equal(result.n, plink.n)
    assert plink.firth[fitted].all()
    assert result.firth[fitted].all()
    np.testing.assert_array_equal(result.error[~fitted], plink.error[~fitted])


def test_logistic__missing_calls_are_dropped_per_variant_as_plink2_drops_them(
    synthetic: Synthetic, plink2: PlinkRunner, cohorts: SimulationResult, tmp_path: Path
) -> None:
    samples, plink = synthetic_run(synthetic, "t2d", plink2, cohorts.out, tmp_path)
    names = ("missing_in_cases", "missing_random", "missing_control_carriers")
    columns = np.array([SYNTHETIC.index(name) for name in names])
    result = fit_logistic(samples.evaluate(), samples.n_variants, samples.k, variants=columns)
    g = samples.dosages[:, columns]
    called = (g != MISSING_CALL) & samples.included[:, None]
    np.testing.assert_array_equal(result.n, called.sum(axis=0))
    np.testing.assert_array_equal(result.n, plink.n[columns])
    assert (result.n < samples.included.sum()).all()
    for i, j in enumerate(columns):
        # The same as excluding the variant's missing-call samples from the study.
        alone = Samples(samples.covariates, samples.phenotype, called[:, i], g[:, i : i + 1])
        single = alone.fit()
        np.testing.assert_allclose(single.beta, result.beta[i], rtol=1e-12)
        np.testing.assert_allclose(single.standard_error, result.standard_error[i], rtol=1e-12)
        assert result.firth[i] == plink.firth[j]
    assert_close_to_plink(result, take(plink, columns), ~result.firth, 1e-4)
    assert_close_to_plink(result, take(plink, columns), result.firth, 3e-3)


def take(x: Record, rows: np.ndarray) -> Record:
    """The same record restricted to some variants (a mask or indices)."""

    def pick(value: np.ndarray | list[str]) -> np.ndarray | list[str]:
        if isinstance(value, np.ndarray):
            return value[rows]
        return [value[i] for i in np.arange(len(value))[rows]]

    return type(x)(**{name: pick(value) for name, value in vars(x).items()})


# --- Null model and score test --------------------------------------------------------------


def test_null_fit__over_three_nodes_equals_statsmodels(pooled: Samples) -> None:
    parts = np.split(np.arange(len(pooled.phenotype)), [800, 1600])
    designs = [pooled.node(rows)[0] for rows in parts]
    null = fit_null_logistic(
        lambda coef: reduce(add, (local_null_logistic_sums(d, coef) for d in designs)), pooled.k
    )
    assert null.converged
    assert null.iterations < 10
    reference = sm.Logit(pooled.phenotype[pooled.included], pooled.covariates[pooled.included]).fit(
        method="newton", tol=1e-12, disp=0
    )
    np.testing.assert_allclose(null.coefficients, reference.params, rtol=1e-9)
    np.testing.assert_allclose(null.standard_error, reference.bse, rtol=1e-9)
    assert null.sums.n == pooled.included.sum()


def test_score_test__equals_the_score_test_of_each_variant(pooled: Samples) -> None:
    design = pooled.node()[0]
    null = fit_null_logistic(lambda coef: local_null_logistic_sums(design, coef), pooled.k)
    assert null.converged
    dosages = pooled.dosages[:, ::25]
    filled = np.maximum(dosages, 0)  # missing calls as 0: the textbook case
    x0, y0 = pooled.covariates[pooled.included], pooled.phenotype[pooled.included]
    glm = sm.GLM(y0, x0, family=sm.families.Binomial()).fit(tol=1e-12)
    textbook = score_test(null, local_score_sums(design, null.coefficients, filled))
    for chi2, g in zip(textbook.chi_squared, filled[pooled.included].T, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = glm.score_test(exog_extra=g[:, None].astype(float))[0]
        np.testing.assert_allclose(chi2, expected, rtol=1e-6)
    np.testing.assert_allclose(textbook.p_value, stats.chi2.sf(textbook.chi_squared, 1))
    # With missing calls: the efficient score for g at the full-sample null
    # fit, summed over the variant's called samples.
    sums = local_score_sums(design, null.coefficients, dosages)
    missing = local_missing_score_sums(design, null.coefficients, dosages)
    result = score_test(null, sums, missing)
    without = score_test(null, sums)  # the missing-call samples left in the null model's sums
    assert not np.allclose(without.chi_squared, result.chi_squared, rtol=1e-6)
    mu0 = 1 / (1 + np.exp(-x0 @ null.coefficients))
    for chi2, g in zip(result.chi_squared, dosages[pooled.included].T, strict=True):
        called = g != MISSING_CALL
        assert not called.all()
        x = np.column_stack([x0[called], g[called]])
        w = mu0[called] * (1 - mu0[called])
        inverse = np.linalg.inv(x.T @ (w[:, None] * x))
        u = inverse @ (x.T @ (y0[called] - mu0[called]))
        np.testing.assert_allclose(chi2, u[-1] ** 2 / inverse[-1, -1], rtol=1e-9)


def test_variants_to_refine__refit_exactly_as_in_the_full_fit(
    pooled: Samples, pooled_fit: LogisticResult
) -> None:
    design = pooled.node()[0]
    null = fit_null_logistic(lambda coef: local_null_logistic_sums(design, coef), pooled.k)
    score = score_test(
        null,
        local_score_sums(design, null.coefficients, pooled.dosages),
        local_missing_score_sums(design, null.coefficients, pooled.dosages),
    )
    refine = variants_to_refine(score, 1e-3)
    assert 5 < len(refine) < 400
    exact = fit_logistic(pooled.evaluate(), pooled.n_variants, pooled.k, variants=refine)
    np.testing.assert_allclose(exact.beta, pooled_fit.beta[refine], rtol=1e-10)
    np.testing.assert_allclose(exact.p_value, pooled_fit.p_value[refine], rtol=1e-10)
    wald = pooled_fit.p_value < 1e-6
    assert np.isin(np.flatnonzero(wald), refine).all()  # strong Wald signals pass the screen


# --- Step by step: each solver as an object driven one round trip at a time -----------------


def assert_identical(ours: Any, theirs: Any, path: str = "") -> None:
    """Two dataclasses (or values) equal to the last bit, field by field, NaN where NaN."""
    if is_dataclass(ours):
        assert type(ours) is type(theirs), path
        for f in fields(ours):
            assert_identical(getattr(ours, f.name), getattr(theirs, f.name), f"{path}.{f.name}")
        return
    a, b = np.asarray(ours), np.asarray(theirs)
    assert (a.dtype, a.shape) == (b.dtype, b.shape), path
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    assert a.tobytes() == b.tobytes(), path  # also tells -0.0 from 0.0


T = TypeVar("T")
S = TypeVar("S")


def recording(evaluate: Callable[[T], S]) -> tuple[Callable[[T], S], list[tuple[T, S]]]:
    """The same round trip, keeping every request and its answer."""
    rounds: list[tuple[T, S]] = []

    def record(request: T) -> S:
        sums = evaluate(request)
        rounds.append((request, sums))
        return sums

    return record, rounds


@pytest.mark.parametrize(
    ("trait", "firth", "final_information"),
    [("rare", "fallback", False), ("rare", "never", True), ("t2d", "always", False),
     ("t2d", "fallback", True)],
)  # fmt: skip
def test_logistic_fit__replayed_round_by_round_gives_fit_logistic_bit_for_bit(
    synthetic: Synthetic, trait: str, firth: FirthMode, final_information: bool
) -> None:
    samples = read_samples(
        synthetic.phenotypes, synthetic.genotypes.with_suffix(".bed"), trait, AGE_SEX
    )
    m, k = samples.n_variants, samples.k
    evaluate, rounds = recording(samples.evaluate(cuts=[700, 1500]))
    expected = fit_logistic(evaluate, m, k, firth=firth, final_information=final_information)
    fit = LogisticFit(m, k, firth=firth, final_information=final_information)
    for t, (request, sums) in enumerate(rounds):
        assert fit.rounds == t
        ours = fit.request()
        assert ours is fit.request()  # asking again gives the same request
        assert_identical(ours, request, f"round {t}")
        fit.advance(sums)
    assert fit.request() is None
    assert fit.rounds == len(rounds) == expected.rounds.max()
    assert_identical(fit.result(), expected)
    fallback = SYNTHETIC.index("separated_with_age")  # logistic regression fails, then Firth
    straight = SYNTHETIC.index("alt_in_cases_only")  # no ALT among controls: Firth at once
    if firth == "fallback" and trait == "rare":
        assert expected.firth[fallback]
        assert expected.firth[straight]
        assert expected.firth.sum() > 10
    if firth == "never":
        assert not expected.firth.any()
        assert expected.error[straight] == "SEPARATION"
    if firth == "always":
        assert expected.firth[expected.error == "."].all()


def test_logistic_fit__a_chosen_subset_replayed_gives_the_same_bits(pooled: Samples) -> None:
    chosen = np.arange(pooled.n_variants)[::-97][:60]  # descending columns
    evaluate, rounds = recording(pooled.evaluate())
    expected = fit_logistic(evaluate, pooled.n_variants, pooled.k, variants=chosen)
    fit = LogisticFit(pooled.n_variants, pooled.k, variants=chosen)
    while (request := fit.request()) is not None:
        recorded_request, sums = rounds[fit.rounds]
        assert_identical(request, recorded_request)
        fit.advance(sums)
    assert_identical(fit.result(), expected)
    assert expected.firth.any()


def test_logistic_fit__refuses_sums_that_do_not_answer_its_request(pooled: Samples) -> None:
    evaluate = pooled.evaluate()
    fit = LogisticFit(pooled.n_variants, pooled.k, variants=np.arange(40))
    with pytest.raises(InputError, match="still being fitted after 0 round trips"):
        fit.result()
    first = fit.request()
    assert first is not None
    half = RoundRequest(
        first.variants[:20],
        first.coefficients[:20],
        first.with_loglik[:20],
        first.firth_variants,
        first.firth_coefficients,
        first.inverse_information,
    )
    with pytest.raises(InputError, match=r"round trip 1 .* 40 variants .* score has shape"):
        fit.advance(evaluate(half))
    assert fit.rounds == 0
    assert fit.request() is first  # unchanged: the refused sums left no trace
    while (request := fit.request()) is not None:
        fit.advance(evaluate(request))
    assert_identical(fit.result(), fit_logistic(evaluate, pooled.n_variants, pooled.k,
                                                variants=np.arange(40)))  # fmt: skip
    with pytest.raises(InputError, match="no request to answer"):
        fit.advance(evaluate(first))


def test_logistic_fit__of_no_variants_asks_nothing() -> None:
    fit = LogisticFit(10, 3, variants=np.array([], dtype=np.int64))
    assert fit.request() is None
    assert len(fit.result().beta) == 0


@pytest.mark.parametrize(("tolerance", "max_iterations"), [(1e-10, 50), (1e-3, 2), (1e-10, 0)])
def test_null_logistic_fitter__replayed_gives_fit_null_logistic_bit_for_bit(
    pooled: Samples, tolerance: float, max_iterations: int
) -> None:
    designs = [pooled.node(rows)[0] for rows in np.split(np.arange(len(pooled.phenotype)), [900])]
    evaluate, rounds = recording(
        lambda coef: reduce(add, (local_null_logistic_sums(d, coef) for d in designs))
    )
    expected = fit_null_logistic(
        evaluate, pooled.k, tolerance=tolerance, max_iterations=max_iterations
    )
    fitter = NullLogisticFitter(pooled.k, tolerance=tolerance, max_iterations=max_iterations)
    with pytest.raises(InputError, match="needs more round trips after 0"):
        fitter.result()
    for coefficients, sums in rounds:
        assert_identical(fitter.request(), coefficients)
        fitter.advance(sums)
    assert fitter.request() is None
    assert fitter.rounds == len(rounds) == expected.iterations + 1
    assert_identical(fitter.result(), expected)
    assert expected.converged == (max_iterations == 50)
    with pytest.raises(InputError, match="no request to answer"):
        fitter.advance(rounds[-1][1])


def test_null_logistic_fitter__stops_at_a_singular_information_and_refuses_wrong_sums() -> None:
    rng = np.random.default_rng(3)
    c = np.column_stack([np.ones(50), np.zeros(50)])  # a covariate without variation
    design = logistic_design(c, rng.integers(0, 2, 50).astype(float), np.ones(50, bool))
    fitter = NullLogisticFitter(2)
    with pytest.raises(InputError, match="score of shape \\(2,\\)"):
        fitter.advance(NullLogisticSums(np.zeros(3), np.zeros(3), 0.0, 50, 20))
    steps = []
    while (coefficients := fitter.request()) is not None:
        steps.append(coefficients)
        fitter.advance(local_null_logistic_sums(design, coefficients))
    assert len(steps) == 2  # no Newton step, then the final evaluation
    null = fitter.result()
    assert not null.converged
    assert null.iterations == 0
    assert_identical(null, fit_null_logistic(lambda b: local_null_logistic_sums(design, b), 2))


# --- Input checks ---------------------------------------------------------------------------


def test_logistic_design__rejects_non_binary_traits_and_bad_blocks() -> None:
    c = np.ones((4, 1))
    with pytest.raises(InputError, match="0 \\(control\\) or 1"):
        logistic_design(c, np.array([0.0, 1.0, 2.0, 0.0]), np.ones(4, bool))
    design = logistic_design(c, np.array([0.0, 1.0, 1.0, np.nan]), np.array([1, 1, 1, 0], bool))
    with pytest.raises(InputError, match="int8"):
        local_logistic_sums(design, np.zeros((4, 2)), np.zeros((2, 2)))
    with pytest.raises(InputError, match="coefficients"):
        local_logistic_sums(design, np.zeros((4, 2), np.int8), np.zeros((3, 2)))
