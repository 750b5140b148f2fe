"""Disclosure rules on the node: cohort size, differencing and the query budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genofed.errors import DisclosureError
from genofed.node.disclosure import DisclosureLedger, DisclosureSection, reported_count

RULES = DisclosureSection(min_cohort=50, min_count=5, min_difference=10, query_budget=4)


def cohort(n: int, dropped: list[int] | None = None) -> np.ndarray:
    included = np.ones(n, dtype=bool)
    included[dropped or []] = False
    return included


@pytest.fixture
def ledger(tmp_path: Path) -> DisclosureLedger:
    return DisclosureLedger(tmp_path / "ledger.sqlite3", RULES, node="EE")


def test_disclosure__small_cohort_is_refused(ledger: DisclosureLedger) -> None:
    with pytest.raises(DisclosureError, match=r"node EE refused: rule min_cohort: .* than 50"):
        ledger.admit("alice", cohort(49))
    ledger.admit("alice", cohort(50))


def test_disclosure__cohorts_differing_by_a_few_samples_are_refused(
    ledger: DisclosureLedger,
) -> None:
    ledger.admit("alice", cohort(200))
    ledger.admit("alice", cohort(200))  # the same cohort again is fine
    with pytest.raises(DisclosureError, match="node EE refused: rule min_difference"):
        ledger.admit("alice", cohort(200, dropped=[17]))
    with pytest.raises(DisclosureError, match="rule min_difference"):
        ledger.admit("bob", cohort(200, dropped=[17]))  # a second passport: the same ledger
    ledger.admit("bob", cohort(200, dropped=list(range(10))))


def test_disclosure__a_per_user_ledger_lets_a_second_passport_difference(tmp_path: Path) -> None:
    rules = RULES.model_copy(update={"disabled": ["node-ledger"]})
    ledger = DisclosureLedger(tmp_path / "ledger.sqlite3", rules, node="EE")
    ledger.admit("alice", cohort(200))
    ledger.admit("bob", cohort(200, dropped=[17]))


def test_disclosure__a_cohort_is_computed_over_one_set_of_nodes_and_one_rerun(
    ledger: DisclosureLedger,
) -> None:
    ledger.admit("alice", cohort(200), ["EE", "DE", "PT"])
    ledger.admit("bob", cohort(200), ["DE", "EE", "PT"])  # the same set, in any order
    with pytest.raises(DisclosureError, match=r"rule reruns: .* nodes DE, EE, PT; .* EE, ES"):
        ledger.admit("alice", cohort(200), ["EE", "ES"])
    ledger.admit("alice", cohort(200), ["EE", "DE"])  # a rerun after PT dropped out
    ledger.admit("alice", cohort(200), ["EE", "DE"])
    with pytest.raises(DisclosureError, match="computed over 2 participant sets already"):
        ledger.admit("alice", cohort(200), ["EE", "PT"])
    ledger.admit("alice", cohort(200, dropped=list(range(10))), ["EE", "PT"])  # another cohort


def test_disclosure__reruns_can_be_forbidden(tmp_path: Path) -> None:
    rules = RULES.model_copy(update={"reruns": 0, "query_budget": 100})
    ledger = DisclosureLedger(tmp_path / "ledger.sqlite3", rules, node="EE")
    ledger.admit("alice", cohort(200), ["EE", "DE", "PT"])
    with pytest.raises(DisclosureError, match="rule reruns"):
        ledger.admit("alice", cohort(200), ["EE", "DE"])


def test_disclosure__without_the_participant_rule_any_set_is_answered(tmp_path: Path) -> None:
    rules = RULES.model_copy(update={"disabled": ["participant-sets"], "query_budget": 100})
    ledger = DisclosureLedger(tmp_path / "ledger.sqlite3", rules, node="EE")
    for nodes in (["EE", "DE"], ["EE", "PT"], ["EE", "ES"]):
        ledger.admit("alice", cohort(200), nodes)


def test_disclosure__budget_is_per_user_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first = DisclosureLedger(path, RULES, node="EE")
    for _ in range(3):
        first.admit("alice", cohort(100))
    first.close()
    again = DisclosureLedger(path, RULES, node="EE")
    again.admit("alice", cohort(100))
    with pytest.raises(DisclosureError, match="rule query_budget: alice has used the 4 jobs"):
        again.admit("alice", cohort(100))
    again.admit("bob", cohort(100))


def test_disclosure__refusal_records_nothing(ledger: DisclosureLedger) -> None:
    with pytest.raises(DisclosureError):
        ledger.admit("alice", cohort(10))
    for _ in range(4):
        ledger.admit("alice", cohort(100))


def test_disclosure__small_counts_are_not_reported() -> None:
    assert reported_count(4, RULES) is None
    assert reported_count(5, RULES) == 5


def test_disclosure__a_few_cases_are_refused_but_none_is_allowed(ledger: DisclosureLedger) -> None:
    with pytest.raises(DisclosureError, match=r"node EE refused: rule min_count: .* than 5 cases"):
        ledger.check_groups(cases=4, controls=400)
    with pytest.raises(DisclosureError, match=r"fewer than 5 controls"):
        ledger.check_groups(cases=400, controls=1)
    ledger.check_groups(cases=0, controls=400)
    ledger.check_groups(cases=5, controls=400)
