"""Nodes failing or refusing during a study: a rerun over the others, or an error naming them."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from genofed.aai import Issuer
from genofed.coordinator import LinearGwas, run_gwas, run_qc
from genofed.errors import DisclosureError, NodeError
from genofed.kernels.qc import genotype_counts
from tests.conftest import passport_for
from tests.coordinator.conftest import (
    BLOCK_SIZE,
    NODE_SIZES,
    Failure,
    Nodes,
    Researcher,
    fail_at_block,
    federation_of,
    serve,
    with_state,
)
from tests.coordinator.pooled import (
    Pooled,
    assert_table_equals,
    categories,
    released_gwas,
    small_group,
)

COVARIATES = ("age", "sex")

COLUMNS = ("beta", "standard_error", "p_value", "n", "effect_allele_frequency", "disclosure")


def gwas(
    nodes: Nodes, researcher: Researcher, out: Path, *names: str, **options: object
) -> LinearGwas:
    """ldl on age and sex over the named nodes (all three by default), in four blocks."""
    names = names or tuple(NODE_SIZES)
    return run_gwas(
        federation_of(nodes, *names), phenotype="ldl", covariates=COVARIATES, out=out,
        block_size=BLOCK_SIZE, http=researcher.only(*names),
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def sizes_per_node(metadata: str) -> dict[str, int]:
    """``sample_size_per_node`` of a GWAS-SSF metadata file."""
    lines = metadata.splitlines()
    start = lines.index("sample_size_per_node:") + 1
    entries = itertools.takewhile(lambda line: line.startswith("  "), lines[start:])
    return {name.strip(): int(size) for name, size in (e.split(":") for e in entries)}


@pytest.mark.parametrize(
    ("failure", "victim"), [("unreachable", "gamma"), ("server error", "alpha")]
)
def test_gwas__node_failing_mid_study_is_dropped_and_the_study_rerun_over_the_others(
    nodes: Nodes,
    researcher: Researcher,
    pooled: Pooled,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
    victim: str,
) -> None:
    remaining = tuple(name for name in NODE_SIZES if name != victim)
    with caplog.at_level(logging.WARNING, logger="genofed"):
        rerun = gwas(
            nodes, researcher, tmp_path / "rerun",
            progress=fail_at_block(researcher.relays[victim], 2, failure),
        )  # fmt: skip
    assert researcher.relays[victim].failing
    assert rerun.dropped == (victim,)
    assert tuple(rerun.samples_per_node) == remaining
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("genofed.coordinator")
    ]
    assert len(warnings) == 1
    assert f"node {victim}" in warnings[0].getMessage()
    assert (
        f"rerunning the study with fresh masks over the 2 remaining nodes ({', '.join(remaining)})"
        in warnings[0].getMessage()
    )
    metadata = rerun.metadata.read_text()
    assert f'author_notes: "Node(s) {victim} failed during the study' in metadata
    assert sizes_per_node(metadata) == rerun.samples_per_node

    direct = gwas(nodes, researcher, tmp_path / "direct", *remaining)
    assert direct.dropped == ()
    assert direct.samples_per_node == rerun.samples_per_node
    for column in COLUMNS:
        np.testing.assert_array_equal(rerun.table.column(column), direct.table.column(column))
    expected = released_gwas(pooled, "ldl", COVARIATES, nodes=remaining)
    assert_table_equals(rerun.table, expected)
    assert all(count > 0 for count in categories(expected.disclosure).values())


@pytest.mark.parametrize("failure", ["unreachable", "server error"])
def test_gwas__failure_leaving_one_node_is_named_and_nothing_is_written(
    nodes: Nodes, researcher: Researcher, tmp_path: Path, failure: Failure
) -> None:
    out = tmp_path / "ldl"
    out.with_suffix(".tsv").write_text("an older result\n")
    answer = "is unreachable" if failure == "unreachable" else "answered 500"
    with pytest.raises(NodeError, match=rf"^node beta .*{answer}.*only 1 node remains"):
        gwas(
            nodes, researcher, out, "alpha", "beta",
            progress=fail_at_block(researcher.relays["beta"], 2, failure),
        )  # fmt: skip
    assert out.with_suffix(".tsv").read_text() == "an older result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ldl.tsv"]


def test_gwas__node_failing_after_some_requests_is_dropped_whatever_the_round(
    nodes: Nodes, researcher: Researcher, tmp_path: Path
) -> None:
    """A node that fails from its Nth request on, N counted from before the study starts.

    Its first requests describe its dataset and sign its study key; a study makes at
    least one more request per block (four here), so each N below falls inside it.
    """
    relay = researcher.relays["beta"]
    clean = gwas(nodes, researcher, tmp_path / "clean")
    assert clean.dropped == ()
    assert relay.requests > 8
    without = gwas(nodes, researcher, tmp_path / "without", "alpha", "gamma")
    for after in (3, 5, 7):
        relay.fail(after=after)
        rerun = gwas(nodes, researcher, tmp_path / f"after-{after}")
        assert relay.failing, after
        assert rerun.dropped == ("beta",), after
        for column in COLUMNS:
            np.testing.assert_array_equal(
                rerun.table.column(column), without.table.column(column), err_msg=column
            )
        relay.recover()


def test_gwas__node_unreachable_before_the_study_is_named(
    nodes: Nodes, researcher: Researcher, tmp_path: Path
) -> None:
    researcher.relays["gamma"].fail()
    with pytest.raises(NodeError, match=r"^node gamma \(https://127\.0\.0\.1:\d+\) is unreachable"):
        gwas(nodes, researcher, tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_qc__node_unreachable_before_the_study_is_named(
    nodes: Nodes, researcher: Researcher, tmp_path: Path
) -> None:
    researcher.relays["alpha"].fail("server error")
    with pytest.raises(NodeError, match=r"^node alpha answered 500"):
        run_qc(nodes.federation, out=tmp_path / "x", block_size=100, http=researcher.http)
    assert not list(tmp_path.iterdir())


def test_qc__node_failing_mid_study_is_dropped_and_the_counts_are_over_the_others(
    nodes: Nodes, researcher: Researcher, pooled: Pooled, tmp_path: Path
) -> None:
    relay = researcher.relays["alpha"]
    qc = run_qc(
        nodes.federation, out=tmp_path / "qc", block_size=100, http=researcher.http,
        progress=fail_at_block(relay, 3, stage="qc blocks"),
    )  # fmt: skip
    assert qc.dropped == ("alpha",)
    assert list(qc.samples_per_node) == ["beta", "gamma"]
    counts = genotype_counts(pooled.dosages[pooled.of(("beta", "gamma"))])
    withheld = small_group(counts)  # a count of 1 to min_count - 1, missing calls included
    assert 0 < withheld.sum() < len(withheld)
    np.testing.assert_array_equal(qc.withheld, withheld)
    np.testing.assert_array_equal(qc.result.counts[~withheld], counts[~withheld])
    assert not qc.result.counts[withheld].any()
    header, *rows = (line.split("\t") for line in qc.tsv.read_text().splitlines())
    shown = {name: np.array([row[i] for row in rows]) for i, name in enumerate(header)}
    np.testing.assert_array_equal(shown["disclosure"], np.where(withheld, "WITHHELD", "."))
    for name in ("effect_allele_frequency", "missing_count", "missing_rate", "hwe_p", "n"):
        assert (shown[name][withheld] == "NA").all(), name
    shown_counts = np.column_stack([shown["n"], shown["missing_count"]])[~withheld].astype(int)
    np.testing.assert_array_equal(shown_counts[:, 0], counts[~withheld, :3].sum(axis=1))
    np.testing.assert_array_equal(shown_counts[:, 1], counts[~withheld, 3])


@pytest.fixture
def strict_gamma(
    nodes: Nodes, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """Node gamma, with a min_cohort rule above its 700 samples and a state of its own."""
    settings = with_state(nodes.settings["gamma"], tmp_path_factory.mktemp("strict"))
    rules = settings.disclosure.model_copy(update={"min_cohort": NODE_SIZES["gamma"] + 1})
    strict = settings.model_copy(update={"disclosure": rules})
    passport = passport_for(issuer, *(c.dataset_id for c in nodes.federation.nodes), user="erin")
    with serve(strict, passport) as client:
        yield client


def test_gwas__node_refusing_by_a_disclosure_rule_is_named_with_the_rule(
    nodes: Nodes, researcher: Researcher, strict_gamma: TestClient, tmp_path: Path
) -> None:
    http: dict[str, httpx.Client] = {**researcher.http, "gamma": strict_gamma}
    with pytest.raises(
        DisclosureError,
        match=r"^node gamma refused: rule min_cohort: the cohort has fewer than 701 samples",
    ):
        run_gwas(
            nodes.federation, phenotype="ldl", covariates=COVARIATES, out=tmp_path / "x",
            block_size=BLOCK_SIZE, http=http,
        )  # fmt: skip
    assert not list(tmp_path.iterdir())
