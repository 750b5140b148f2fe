"""Several passports: two users' cohorts that differ by one person give that person's ldl.

Two users from the same issuer, mallory and trudy, run a linear GWAS each:
mallory of ``ldl`` with no covariate, trudy of ``ldl ~ age``. At node EE
one person with an ldl value has no recorded age, so trudy's cohort is
mallory's less that person, and the difference of their released ``null``
totals is theirs alone: ``n`` 1, ``C'y`` (the intercept's) their ldl and
``y'y`` its square.

A ledger per user (as nodes once kept) refuses this to mallory alone, but
not to a second passport. A node's ledger covers every user, so trudy's job
is refused by EE, the node where the cohorts differ (``min_difference``).

The simulator misses age only where ldl is missing too, so the attack's
cohorts are the session's with one age left out of EE's table: an age not
recorded, as happens in real tables.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace

import numpy as np
import pytest

from genofed.errors import DisclosureError
from genofed.io import read_phenotype_table, write_phenotype_table
from genofed.protocol.computations.linear_gwas import Null
from genofed.sim import SimulationResult
from tests.attacks.adversary import Adversary, refusals
from tests.attacks.conftest import NODES, AttackFederation, Launch

MALLORY = {"phenotype": "ldl", "covariates": [], "block_size": 8000}
TRUDY = {"phenotype": "ldl", "covariates": ["age"], "block_size": 8000}


@pytest.fixture(scope="module")
def cohorts(
    cohorts: SimulationResult, tmp_path_factory: pytest.TempPathFactory
) -> SimulationResult:
    """The session's cohorts, but EE's table lacks the age of its first person with an ldl."""
    out = tmp_path_factory.mktemp("several-passports")
    for name in NODES:
        shutil.copytree(cohorts.out / name, out / name)
    path = out / "EE" / "phenotypes.tsv"
    table = read_phenotype_table(path)
    columns = {name: values.copy() for name, values in table.columns.items()}
    complete = np.isfinite(columns["ldl"]) & np.isfinite(columns["age"])
    columns["age"][np.flatnonzero(complete)[0]] = np.nan
    write_phenotype_table(path, table.iids, columns)
    return replace(cohorts, out=out)


@dataclass(frozen=True)
class Target:
    """The one person in mallory's cohort and not in trudy's."""

    node: str
    ldl: float


def target(federation: AttackFederation) -> Target:
    """The person, found in the nodes' own files: an ldl value but no age."""
    found = []
    for name in NODES:
        table = federation.nodes[name].table()
        rows = np.flatnonzero(np.isfinite(table["ldl"]) & ~np.isfinite(table["age"]))
        found += [Target(name, float(table["ldl"][row])) for row in rows]
    (person,) = found
    return person


def null_totals(adversary: Adversary, parameters: dict[str, object]) -> dict[str, np.ndarray]:
    """The released ``null`` totals of a GWAS over every node."""
    job = adversary.submit("linear-gwas", parameters, NODES)
    return adversary.released(job, Null())


def test_attack__a_second_passport_differences_out_one_persons_ldl_with_a_ledger_per_user(
    launch: Launch,
) -> None:
    federation = launch(disabled=["node-ledger"])
    person = target(federation)
    mallory, trudy = federation.adversary(), federation.adversary("trudy@example.org")
    try:
        wide = null_totals(mallory, MALLORY)
        with pytest.raises(DisclosureError, match=r"node EE refused: rule min_difference"):
            null_totals(mallory, TRUDY)  # a user's own ledger refuses the second cohort ...
        narrow = null_totals(trudy, TRUDY)  # ... but not another user's
    finally:
        mallory.close()
        trudy.close()
    assert np.rint(wide["n"] - narrow["n"]) == 1
    ldl = float(wide["cty"][0] - narrow["cty"][0])
    assert ldl == pytest.approx(person.ldl, abs=1e-9)  # their ldl, to the last decimal
    assert float(wide["yty"] - narrow["yty"]) == pytest.approx(person.ldl**2, abs=1e-8)


def test_attack__a_second_passport_is_refused_by_the_node_where_the_cohorts_differ(
    launch: Launch,
) -> None:
    federation = launch()
    person = target(federation)
    mallory, trudy = federation.adversary(), federation.adversary("trudy@example.org")
    try:
        null_totals(mallory, MALLORY)
        with pytest.raises(DisclosureError, match=rf"node {person.node} refused: rule min_diff"):
            null_totals(trudy, TRUDY)
    finally:
        mallory.close()
        trudy.close()
    (refusal,) = refusals(federation.local, person.node)
    assert refusal.user == "trudy@example.org"
    assert "rule min_difference" in refusal.reason
