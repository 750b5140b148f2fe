"""Missing-call sums: a variant that one person lacks gives away that person's values.

A linear GWAS of ``ldl`` on ``age`` and ``sex`` solves each variant on its
called samples, so for a variant released exactly with missing calls it
asks for the missing-call samples' own sums (``block/<i>/missing``): c c'
(c = 1, age, sex), c y and y^2. When one person of the federation's cohort
lacks a call at the variant, those are that person's age, sex and ldl; when
the missing-call groups of two variants differ by one person, the
difference of their sums is. The score test of a logistic GWAS has the
same part, ``block/<i>/score/missing`` (w c c' and c (y - mu) at the
covariates-only model): a single person's gives their age, sex and, by its
sign, their case status.

Without the small-group rule, the verifier releases such a variant's row
exactly, and the honest request for the block's missing-call sums (the
variants released exactly with a missing call) carries the person's values
out. With it, a missing-call group is released only if it has at least
``min_count`` samples and a node holds it at least ``min_count`` samples
apart from every group filed before it: the variant is imputed (linear) or
withheld (logistic), any two groups released differ by ``min_count`` or
more, and the verifier refuses a request for the missing-call sums of any
other variant.

Two cohorts the nodes admit, being ``min_difference`` people apart, could
hold a variant whose missing-call groups differ by one of those people,
each group released exactly in its own job: their sums' difference would
give that person's age and sex. A node therefore compares each variant's
groups with its groups over every other cohort on record, and the last test
shows no such variant is released exactly in both jobs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from genofed.errors import ProtocolError
from genofed.kernels.logistic import (
    NullLogisticFit,
    NullLogisticSums,
    ScoreSums,
    fit_null_logistic,
)
from genofed.node.audit import AuditRecord, open_audit_log
from genofed.node.settings import load_settings
from genofed.protocol.computations.linear_gwas import Block, BlockMissing
from genofed.protocol.computations.logistic_gwas import (
    BlockScore,
    BlockScoreMissing,
    NullRound,
    null_from_totals,
    score_from_totals,
)
from genofed.protocol.contract import Treatment
from tests.attacks.adversary import Adversary, Arrays, Job
from tests.attacks.conftest import NODES, AttackFederation, Launch

WIDTH = 8000  # every variant in block 0
COVARIATES = ("age", "sex")
MIN_COUNT = 5  # the nodes' default [disclosure] min_count
REFUSED = r"refused: rule verified parameters: "


@dataclass(frozen=True)
class Cohort:
    """A GWAS cohort of the three nodes, pooled in node order: the truth from their files.

    ``values`` holds each sample's age, sex and phenotype; ``missing`` is
    ``(samples, variants)``, True where a call is missing; ``groups`` counts
    the samples with ALT dosage 0, 1 and 2 per variant.
    """

    values: np.ndarray
    missing: np.ndarray
    groups: np.ndarray

    @property
    def missing_counts(self) -> np.ndarray:
        """Missing calls per variant."""
        counts: np.ndarray = self.missing.sum(axis=0)
        return counts

    @property
    def small_groups(self) -> np.ndarray:
        """Variants with a genotype group of 1 to ``MIN_COUNT - 1`` samples."""
        small: np.ndarray = ((self.groups > 0) & (self.groups < MIN_COUNT)).any(axis=1)
        return small

    def singles(self) -> tuple[np.ndarray, np.ndarray]:
        """The variants one person of the cohort lacks a call at, and that person (a row)."""
        variants = np.flatnonzero(self.missing_counts == 1)
        return variants, self.missing[:, variants].argmax(axis=0)


def cohort(federation: AttackFederation, phenotype: str) -> Cohort:
    """The samples of each node with ``phenotype``, age and sex: a GWAS's cohort."""
    columns = (*COVARIATES, phenotype)
    values, genotypes = [], []
    for name in NODES:
        node = federation.nodes[name]
        table = node.table()
        complete = np.all([np.isfinite(table[column]) for column in columns], axis=0)
        values.append(np.column_stack([table[column][complete] for column in columns]))
        genotypes.append(node.genotypes()[complete])
    pooled = np.concatenate(genotypes)
    groups = np.stack([(pooled == dosage).sum(axis=0) for dosage in (0, 1, 2)], axis=1)
    return Cohort(np.concatenate(values), pooled < 0, groups)


def nested_pairs(truth: Cohort) -> list[tuple[int, int, int]]:
    """Pairs of variants whose missing-call groups differ by one person: (A, B, person).

    B's group is A's and one person more; A's is not empty (B's would then be
    the group of one person).
    """
    by_group: dict[frozenset[int], list[int]] = {}
    for variant in np.flatnonzero(truth.missing_counts > 0):
        members = frozenset(np.flatnonzero(truth.missing[:, variant]).tolist())
        by_group.setdefault(members, []).append(int(variant))
    pairs = []
    for group, variants in by_group.items():
        for person in group:
            for a in by_group.get(group - {person}, []):
                pairs.extend((a, b, person) for b in variants)
    return pairs


def linear_job(adversary: Adversary) -> tuple[Job, Arrays]:
    """Submit the linear GWAS of ldl on age and sex; return it and block 0's release."""
    parameters = {"phenotype": "ldl", "covariates": list(COVARIATES), "block_size": WIDTH}
    job = adversary.submit("linear-gwas", parameters, NODES)
    return job, adversary.released(job, Block(0))


def asked_for(block: Arrays) -> npt.NDArray[np.int64]:
    """The variants whose missing-call sums an honest study asks for: exact, with a missing call."""
    exact = block["treatment"] == Treatment.EXACT
    return np.flatnonzero(exact & (block["n_missing"] > 0)).astype(np.int64)


def read_people(missing: Arrays, rows: np.ndarray) -> np.ndarray:
    """Age, sex and ldl from one person's missing-call sums: c c' row 0 is (1, age, sex)."""
    ctc, cty = missing["missing_ctc"][rows], missing["missing_cty"][rows]
    np.testing.assert_allclose(ctc[:, 0], 1.0)  # the sums of one person
    return np.column_stack([ctc[:, 1], ctc[:, 2], cty[:, 0]])


def score_test(adversary: Adversary) -> tuple[Job, NullLogisticFit, Arrays, ScoreSums]:
    """A score-test logistic GWAS of t2d on age and sex, as an honest study runs it.

    Returns the job, the covariates-only model, block 0's release and its score sums.
    """
    parameters = {
        "phenotype": "t2d",
        "covariates": list(COVARIATES),
        "block_size": WIDTH,
        "test": "score",
    }
    job = adversary.submit("logistic-gwas", parameters, NODES)
    rounds = itertools.count()

    def evaluate(coefficients: npt.NDArray[np.float64]) -> NullLogisticSums:
        totals = adversary.released(job, NullRound(next(rounds)), {"coefficients": coefficients})
        return null_from_totals(totals)

    null = fit_null_logistic(evaluate, len(COVARIATES) + 1)
    block = adversary.released(job, Block(0))
    score = adversary.released(job, BlockScore(0), {"coefficients": null.coefficients})
    return job, null, block, score_from_totals(score)


def read_score_people(missing: Arrays, rows: np.ndarray) -> np.ndarray:
    """Age, sex and t2d from one person's w c c' and c (y - mu) at the null model.

    ``w = mu (1 - mu)``, so ``w c`` over ``w`` is c; ``y - mu`` is positive for a case.
    """
    cwc, cr = missing["cwc"][rows], missing["cr"][rows]
    weight, residual = cwc[:, 0], cr[:, 0]
    case = (residual > 0).astype(np.float64)
    mu = case - residual
    np.testing.assert_allclose(weight, mu * (1 - mu), rtol=1e-9)  # the sums of one person
    return np.column_stack([cwc[:, 1] / weight, cwc[:, 2] / weight, case])


def score_missing_request(
    null: NullLogisticFit, block: Arrays, score: ScoreSums
) -> dict[str, np.ndarray]:
    """The honest request: the fitted variants with a missing call somewhere."""
    fitted = np.flatnonzero(block["treatment"] == Treatment.EXACT)
    variants = np.intersect1d(np.flatnonzero(score.n < null.sums.n), fitted).astype(np.int64)
    return {"coefficients": null.coefficients, "variants": variants}


def closest_groups(missing: np.ndarray) -> int:
    """The fewest samples by which two columns' groups of ``(samples, variants)`` differ."""
    groups = missing.astype(np.float32)
    sizes = groups.sum(axis=0)
    closest = np.inf
    for start in range(0, groups.shape[1], 1000):
        chunk = slice(start, start + 1000)
        apart = sizes[chunk, None] + sizes[None, :] - 2 * (groups[:, chunk].T @ groups)
        np.fill_diagonal(apart[:, start:], np.inf)  # a group and itself
        closest = min(closest, float(apart.min()))
    return int(closest)


def refusals(federation: AttackFederation, job: Job) -> list[AuditRecord]:
    """The verifier's audit-log records of its refusals in ``job``, its hash chain checked."""
    configs = {load_settings(config).node.name: config for config in federation.local.configs}
    settings = load_settings(configs[job.verifier])
    with open_audit_log(settings.node.state_dir / "audit.sqlite3") as log:
        verification = log.verify()
        assert verification.ok, verification
        records = log.records()
    return [
        record
        for record in records
        if record.job_id == job.ids[job.verifier] and record.decision == "refused"
    ]


def test_attack__missing_call_sums_give_away_a_persons_values_without_the_small_group_rule(
    launch: Launch,
) -> None:
    federation = launch(disabled=["small-groups"])
    truth = cohort(federation, "ldl")
    t2d = cohort(federation, "t2d")
    adversary = federation.adversary()
    try:
        job, block = linear_job(adversary)
        asked = asked_for(block)
        missing = adversary.released(job, BlockMissing(0), {"variants": asked})
        logistic, null, score_block, score = score_test(adversary)
        request = score_missing_request(null, score_block, score)
        score_missing = adversary.released(logistic, BlockScoreMissing(0), request)
    finally:
        adversary.close()

    # One missing call: the variant's missing-call sums are its person's own. A node
    # never counts a group it has seen before in the job as new, so some of these
    # variants are imputed; every other one gives its person away.
    singles, people = truth.singles()
    exact = block["treatment"][singles] == Treatment.EXACT
    assert exact.sum() >= 20
    np.testing.assert_array_equal(block["n_missing"][singles[exact]], 1)
    recovered = read_people(missing, np.searchsorted(asked, singles[exact]))
    np.testing.assert_allclose(recovered, truth.values[people[exact]], rtol=0, atol=1e-9)

    # Differencing: B's group is A's and one person more; B - A is that person's sums.
    pairs = [
        (a, b, person)
        for a, b, person in nested_pairs(truth)
        if block["treatment"][a] == block["treatment"][b] == Treatment.EXACT
    ]
    assert pairs
    for a, b, person in pairs:
        rows = np.searchsorted(asked, [a, b])
        difference = {name: value[rows[1:]] - value[rows[:1]] for name, value in missing.items()}
        np.testing.assert_allclose(
            read_people(difference, np.array([0]))[0], truth.values[person], rtol=0, atol=1e-9
        )

    # The score test's missing-call sums: age, sex and case status.
    singles, people = t2d.singles()
    fitted = score_block["treatment"][singles] == Treatment.EXACT
    assert fitted.sum() >= 20
    rows = np.searchsorted(request["variants"], singles[fitted])
    recovered = read_score_people(score_missing, rows)
    np.testing.assert_allclose(recovered, t2d.values[people[fitted]], rtol=1e-9, atol=1e-9)


def test_attack__missing_call_sums_of_small_groups_are_refused_by_the_verifier(
    launch: Launch,
) -> None:
    federation = launch()
    truth = cohort(federation, "ldl")
    singles, _ = truth.singles()
    target = int(singles[~truth.small_groups[singles]][0])  # no small genotype group
    pairs = nested_pairs(truth)
    assert pairs
    a, b, _ = pairs[0]
    adversary = federation.adversary()
    try:
        job, block = linear_job(adversary)
        # The variant is imputed: its row covers every sample, and its missing call is
        # not counted.
        assert block["treatment"][target] == Treatment.IMPUTED
        assert block["n_missing"][target] == 0
        with pytest.raises(ProtocolError, match=REFUSED + r"block/0/missing: 'variants'"):
            adversary.released(job, BlockMissing(0), {"variants": np.array([target])})
        # Nor are the pair's both released exactly, or their sums given when asked for.
        assert not block["treatment"][a] == block["treatment"][b] == Treatment.EXACT
        with pytest.raises(ProtocolError, match=REFUSED + r"block/0/missing: 'variants'"):
            adversary.ask(job, BlockMissing(0), {"variants": np.sort([a, b])}, only=job.verifier)
        # The score test's missing-call sums of a variant one person lacks.
        logistic, null, score_block, score = score_test(adversary)
        t2d = cohort(federation, "t2d")
        score_singles, _ = t2d.singles()
        score_target = {"coefficients": null.coefficients, "variants": score_singles[:1]}
        with pytest.raises(ProtocolError, match=REFUSED + r"block/0/score/missing: 'variants'"):
            adversary.released(logistic, BlockScoreMissing(0), score_target)
    finally:
        adversary.close()
    for attacked, refused in ((job, 2), (logistic, 1)):
        records = refusals(federation, attacked)
        assert len(records) == refused
        assert all("refused: rule verified parameters" in r.reason for r in records)

    # No variant with 1 to 4 missing calls is released exactly, or its count shown.
    few = (truth.missing_counts > 0) & (truth.missing_counts < MIN_COUNT)
    assert few.sum() > 100
    assert not (block["treatment"][few] == Treatment.EXACT).any()
    assert not block["n_missing"][few].any()
    # Any two missing-call groups released exactly differ by at least min_count people,
    # so no difference of two released sums is one person's (or a few people's).
    exact = asked_for(block)
    np.testing.assert_array_equal(block["n_missing"][exact], truth.missing_counts[exact])
    assert closest_groups(truth.missing[:, exact]) >= MIN_COUNT
    assert not any(
        block["treatment"][a] == block["treatment"][b] == Treatment.EXACT
        for a, b, _ in nested_pairs(truth)
    )

    # The score test withholds every variant one person lacks (no score sums, no fit),
    # and its missing-call sums may be asked for only of fitted variants, whose groups
    # among the cases and among the controls are empty or of min_count people or more.
    np.testing.assert_array_equal(score_block["treatment"][score_singles], Treatment.WITHHELD)
    assert not score.n[score_singles].any()
    assert not score.u[score_singles].any()
    variants = score_missing_request(null, score_block, score)["variants"]
    assert len(variants) > 100
    assert (t2d.missing_counts[variants] >= MIN_COUNT).all()


def lacking(federation: AttackFederation, column: str) -> np.ndarray:
    """Which samples of the age-and-sex cohort (pooled in node order) lack ``column``."""
    lacks = []
    for name in NODES:
        table = federation.nodes[name].table()
        everyone = np.isfinite(table["age"]) & np.isfinite(table["sex"])
        lacks.append(~np.isfinite(table[column][everyone]))
    return np.concatenate(lacks)


def test_attack__missing_call_groups_of_two_cohorts_never_differ_by_one_person(
    launch: Launch,
) -> None:
    federation = launch()
    # The cohort of ldl on age and sex, and that of age on sex: everyone of the first
    # and the people who lack ldl, ten a node, as many as min_difference asks for.
    inner, outer = cohort(federation, "ldl"), cohort(federation, "age")
    lacks = lacking(federation, "ldl")
    assert len(outer.values) - len(inner.values) == lacks.sum() == 10 * len(NODES)
    adversary = federation.adversary()
    try:
        releases = []
        for phenotype, covariates in (("ldl", ["age", "sex"]), ("age", ["sex"])):
            parameters = {"phenotype": phenotype, "covariates": covariates, "block_size": WIDTH}
            job = adversary.submit("linear-gwas", parameters, NODES)
            block = adversary.released(job, Block(0))
            asked = asked_for(block)
            sums = adversary.released(job, BlockMissing(0), {"variants": asked})
            releases.append((block, asked, sums))
    finally:
        adversary.close()
    (block_in, asked_in, sums_in), (block_out, asked_out, sums_out) = releases

    # A variant released exactly in both jobs, with one missing call more in the outer
    # cohort: that of one person who lacks ldl. The first job's c is (1, age, sex), the
    # second's (1, sex) with y = age.
    both = np.intersect1d(asked_in, asked_out)
    apart = both[block_out["n_missing"][both] - block_in["n_missing"][both] == 1]
    rows_in, rows_out = np.searchsorted(asked_in, apart), np.searchsorted(asked_out, apart)
    ctc_in, ctc_out = sums_in["missing_ctc"][rows_in], sums_out["missing_ctc"][rows_out]
    count = ctc_out[:, 0] - ctc_in[:, 0]
    age = sums_out["missing_cty"][rows_out, 0] - ctc_in[:, 1]
    sex = ctc_out[:, 1] - ctc_in[:, 2]
    people = [np.flatnonzero(outer.missing[:, v] & lacks) for v in apart]
    assert all(len(person) == 1 for person in people)
    truth = outer.values[[int(person[0]) for person in people]]  # age, sex, age
    found = np.isclose(count, 1) & np.isclose(age, truth[:, 0]) & np.isclose(sex, truth[:, 1])
    exposed = {int(person[0]) for person, hit in zip(people, found, strict=True) if hit}
    assert not found.any(), (
        f"{found.sum()} variants released exactly in both cohorts give away the age and sex "
        f"of {len(exposed)} of the {lacks.sum()} people who lack ldl"
    )
