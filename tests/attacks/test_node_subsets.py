"""Subsets of nodes: one cohort's totals over node pairs solve for each node's own sums.

The attacker runs the same linear GWAS (``ldl ~ age + sex``) over the node
pairs {EE, PT}, {EE, DE} and {PT, DE}. Each pair's released ``null`` totals
(C'C, C'y, y'y, n) are the sum of its two nodes' own, so

    T(EE, PT) + T(EE, DE) - T(PT, DE) = 2 x(EE)

and the same for each node: secure aggregation hid nothing.

A node computes a cohort over one set of participating nodes and at most
``reruns`` (default 1) subsets of it, so the second pair, which is not a
subset of the first, is refused by the node they share.

Residual risk of the allowed rerun: a study rerun after a node dropped out
releases the totals over the remaining nodes, and the coordinator can
subtract them from the first round's totals of the parts both released:
that gives the dropped node's own sums (here its C'C, C'y, y'y and n; for a
GWAS block, its own per-variant sums). Those are aggregates over that
node's whole cohort, not one person's values, but secure aggregation no
longer hides them; a second rerun is refused, since with it every node's
own sums would follow. ``reruns = 0`` refuses every rerun, for a node that
will not accept even this.
"""

from __future__ import annotations

import numpy as np
import pytest

from genofed.errors import DisclosureError
from genofed.protocol.computations.linear_gwas import Null
from tests.attacks.adversary import Adversary, refusals
from tests.attacks.conftest import NODES, Launch, Node

PARAMETERS = {"phenotype": "ldl", "covariates": ["age", "sex"], "block_size": 8000}
PAIRS = (("EE", "PT"), ("EE", "DE"), ("PT", "DE"))
NULL = ("ctc", "cty", "yty", "n")


def null_totals(adversary: Adversary, nodes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The released ``null`` totals of the study's GWAS over ``nodes``."""
    job = adversary.submit("linear-gwas", PARAMETERS, nodes)
    return adversary.released(job, Null())


def own_sums(node: Node) -> dict[str, np.ndarray]:
    """C'C, C'y, y'y and n of the node's complete samples, from its own files."""
    table = node.table()
    c = np.column_stack([np.ones(len(table["ldl"])), table["age"], table["sex"]])
    y = table["ldl"]
    rows = np.isfinite(y) & np.isfinite(c).all(axis=1)
    c, y = c[rows], y[rows]
    return {"ctc": c.T @ c, "cty": c.T @ y, "yty": np.asarray(y @ y), "n": np.asarray(len(y))}


def assert_same_sums(found: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> None:
    for name in NULL:
        np.testing.assert_allclose(found[name], truth[name], rtol=1e-9, atol=1e-6, err_msg=name)


def test_attack__node_pairs_give_one_nodes_own_sums_without_participant_sets(
    launch: Launch,
) -> None:
    federation = launch(disabled=["participant-sets"])
    adversary = federation.adversary()
    try:
        totals = [null_totals(adversary, pair) for pair in PAIRS]
    finally:
        adversary.close()
    ee = {name: (totals[0][name] + totals[1][name] - totals[2][name]) / 2 for name in NULL}
    truth = own_sums(federation.nodes["EE"])
    assert truth["n"] >= 300
    assert_same_sums(ee, truth)  # EE's own sums, exactly


def test_attack__node_pairs_are_refused_by_the_node_they_share(launch: Launch) -> None:
    federation = launch()
    mallory, trudy = federation.adversary(), federation.adversary("trudy@example.org")
    try:
        null_totals(mallory, PAIRS[0])
        # the record is the cohort's, whoever asks: a second passport starts none afresh
        for pair, shared in ((PAIRS[1], "EE"), (PAIRS[2], "PT")):
            with pytest.raises(DisclosureError, match=rf"node {shared} refused: rule reruns: "):
                null_totals(trudy, pair)
    finally:
        mallory.close()
        trudy.close()
    for shared in ("EE", "PT"):
        (refusal,) = refusals(federation.local, shared)
        assert "rule reruns" in refusal.reason
        assert "not a subset of the first" in refusal.reason


def test_attack__one_rerun_after_a_dropout_is_allowed_and_gives_only_the_dropped_nodes_sums(
    launch: Launch,
) -> None:
    federation = launch()
    adversary = federation.adversary()
    try:
        everyone = null_totals(adversary, NODES)
        rerun = null_totals(adversary, ("EE", "PT"))  # DE dropped out
        with pytest.raises(DisclosureError, match=r"node EE refused: rule reruns: .*limit"):
            null_totals(adversary, ("EE", "DE"))  # a second rerun would give every node's
    finally:
        adversary.close()
    # the residual risk: the first round less the rerun is DE's own sums
    dropped = {name: everyone[name] - rerun[name] for name in NULL}
    assert_same_sums(dropped, own_sums(federation.nodes["DE"]))
    (refusal,) = refusals(federation.local, "EE")
    assert "rule reruns" in refusal.reason


def test_attack__no_rerun_with_reruns_0(launch: Launch) -> None:
    federation = launch(reruns=0)
    adversary = federation.adversary()
    try:
        null_totals(adversary, NODES)
        with pytest.raises(DisclosureError, match=r"node EE refused: rule reruns: "):
            null_totals(adversary, ("EE", "PT"))
    finally:
        adversary.close()
    (refusal,) = refusals(federation.local, "EE")
    assert "rule reruns" in refusal.reason
