"""Attacks on a node in-process: each one is refused, and the refusal is in the audit log.

Passports that are forged, unsigned, expired, for another dataset or from an
untrusted issuer; study keys substituted in secure aggregation; and the
disclosure rules a user with a valid passport runs into when differencing
cohorts, querying a tiny cohort or spending more than the query budget. Every
refusal must be the last record of the node's audit log, with the decision
``refused``, a reason naming the cause and, where the node identified the
user, that user; the log's hash chain must still verify.
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
from fastapi.testclient import TestClient

from genofed.aai import Issuer, init_issuer, issue_passport
from genofed.io import read_phenotype_table
from genofed.node.app import create_app
from genofed.node.audit import AuditRecord, open_audit_log
from genofed.node.settings import load_settings
from genofed.node.setup import init_node, trust_peers
from genofed.protocol.messages import API_PREFIX
from genofed.protocol.secagg import IdentityKey, StudyKey, sign_study_key
from genofed.sim import SimulationResult
from tests.conftest import passport_for
from tests.node.peer import JOB, Peer, make_peer, masked_job
from tests.node.tokens import b64url, private_key, segments

ALICE = "alice@example.org"
DATASET = "genofed:EE"
SHRUNK = 2  # samples a covariate with extra missing values drops from the cohort

NodeFactory = Callable[..., TestClient]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Peer:
    return make_peer(tmp_path_factory.mktemp("peer"))


@pytest.fixture(scope="module")
def phenotypes(cohorts: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EE's phenotypes plus ``bmi``: ``age`` again, but missing for SHRUNK more samples."""
    source = cohorts.out / "EE" / "phenotypes.tsv"
    lines = source.read_text().splitlines()
    table = read_phenotype_table(source)
    values = np.column_stack([table.columns[c] for c in ("ldl", "age", "sex")])
    complete = set(np.flatnonzero(~np.isnan(values).any(axis=1))[:SHRUNK])
    header, *rows = lines
    age = header.split("\t").index("age")
    written = [f"{header}\tbmi"]
    for index, row in enumerate(rows):
        bmi = "NA" if index in complete else row.split("\t")[age]
        written.append(f"{row}\t{bmi}")
    out = tmp_path_factory.mktemp("phenotypes") / "phenotypes.tsv"
    out.write_text("\n".join(written) + "\n")
    copy = read_phenotype_table(out)
    with_bmi = np.column_stack([copy.columns[c] for c in ("ldl", "age", "sex", "bmi")])
    assert (~np.isnan(values).any(axis=1)).sum() - (~np.isnan(with_bmi).any(axis=1)).sum() == SHRUNK
    return out


@pytest.fixture(scope="module")
def make_node(
    cohorts: SimulationResult,
    issuer: Issuer,
    peer: Peer,
    phenotypes: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NodeFactory]:
    """Start EE nodes, each with its own state directory (ledger and audit log)."""
    stack = ExitStack()

    def start(**disclosure: int) -> TestClient:
        init = init_node(
            "EE",
            bfile=cohorts.out / "EE" / "genotypes",
            phenotypes=phenotypes,
            out=tmp_path_factory.mktemp("node"),
            trusted_issuers=[issuer.jwks],
            insecure=True,
        )
        trust_peers(init.config, [peer.card])
        settings = load_settings(init.config)
        settings = settings.model_copy(
            update={"disclosure": settings.disclosure.model_copy(update=disclosure)}
        )
        client = TestClient(
            create_app(settings),
            base_url=f"http://node{API_PREFIX}",
            headers=bearer(passport_for(issuer, DATASET, user=ALICE)),
        )
        return stack.enter_context(client)  # runs the app's lifespan until the module ends

    with stack:
        yield start


@pytest.fixture(scope="module")
def client(make_node: NodeFactory) -> TestClient:
    """A node with the default disclosure rules."""
    return make_node()


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    """A second issuer the nodes do not list."""
    return init_issuer(tmp_path_factory.mktemp("aai") / "other", issuer_url="https://other.test")


def audit_records(client: TestClient) -> list[AuditRecord]:
    """The node's audit log, after checking that its hash chain verifies."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    with open_audit_log(settings.node.state_dir / "audit.sqlite3") as log:
        verification = log.verify()
        assert verification.ok, verification
        return log.records()


def refusal(
    client: TestClient, response: httpx.Response, status: int, family: str, *causes: str
) -> AuditRecord:
    """Check that ``response`` refuses with ``causes``, and the audit log's record of it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "family"}
    assert body["family"] == family
    for cause in causes:
        assert cause in body["detail"]
    record = audit_records(client)[-1]  # the request just answered
    assert record.decision == "refused"
    assert record.reason == body["detail"]
    assert record.dataset == DATASET
    assert record.bytes_returned == len(response.content)
    return record


def job_body(client: TestClient, peer: Peer) -> dict[str, Any]:
    """A job that the node would run for alice: her study key and a trusted peer's."""
    study = secrets.token_hex(16)
    node_key = client.post("/studies", json={"study_id": study})
    assert node_key.status_code == 200
    peer_key = sign_study_key(peer.identity, StudyKey.generate(), study_id=study, node=peer.name)
    keys = [node_key.json(), peer_key.to_dict()]
    return {**JOB, "aggregation": {"study_id": study, "round": "round-1", "keys": keys}}


def submitted_with(client: TestClient, peer: Peer, token: str) -> httpx.Response:
    """Submit an otherwise valid job for alice with ``token`` as the passport."""
    response: httpx.Response = client.post(
        "/jobs", json=job_body(client, peer), headers=bearer(token)
    )
    return response


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, read without checking anything."""
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


# --- passports: 401 and 403 -------------------------------------------------------------------


def resigned_by_stranger(issuer: Issuer, stranger: Issuer) -> str:
    """Alice's passport, as the trusted broker's iss and kid, signed with another key."""
    header, claims = unverified(passport_for(issuer, DATASET, user=ALICE))
    assert (claims["iss"], header["kid"]) == (issuer.issuer_url, issuer.broker_kid)
    return jwt.encode(claims, private_key(stranger.broker_key), algorithm="ES256", headers=header)


def tampered(issuer: Issuer, stranger: Issuer) -> str:
    """Mallory's genuine passport for another dataset, edited to grant EE and be alice's."""
    token = issue_passport(issuer.directory, user="mallory", grants=["genofed:CZ"])
    header_segment, _, signature = token.split(".")
    _, claims = unverified(token)
    alices = unverified(passport_for(issuer, DATASET, user=ALICE))[1]["ga4gh_passport_v1"]
    claims.update(sub=ALICE, ga4gh_passport_v1=alices)
    payload = b64url(json.dumps(claims).encode())
    return f"{header_segment}.{payload}.{signature}"


@pytest.mark.parametrize("forge", [resigned_by_stranger, tampered])
def test_attack__forged_signature_is_refused_and_audited(
    client: TestClient,
    peer: Peer,
    issuer: Issuer,
    stranger: Issuer,
    forge: Callable[[Issuer, Issuer], str],
) -> None:
    response = submitted_with(client, peer, forge(issuer, stranger))
    record = refusal(
        client, response, 401, "AuthError", "passport has an invalid signature for key"
    )
    assert response.headers["www-authenticate"] == "Bearer"
    assert record.computation.startswith("POST ")
    assert record.computation.endswith("/jobs")
    assert record.user == "anonymous"  # a forged passport identifies nobody


def test_attack__algorithm_none_is_refused_and_audited(
    client: TestClient, peer: Peer, issuer: Issuer
) -> None:
    header, claims = unverified(passport_for(issuer, DATASET, user=ALICE))
    unsigned = segments({**header, "alg": "none"}, claims) + "."
    response = submitted_with(client, peer, unsigned)
    record = refusal(client, response, 401, "AuthError", "passport algorithm 'none' is not allowed")
    assert record.computation.startswith("POST ")
    assert record.computation.endswith("/jobs")
    assert record.user == "anonymous"


def test_attack__expired_passport_is_refused_and_audited(
    client: TestClient, peer: Peer, issuer: Issuer
) -> None:
    expired = issue_passport(
        issuer.directory, user=ALICE, grants=[DATASET], ttl=60,
        now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2),
    )  # fmt: skip
    response = submitted_with(client, peer, expired)
    record = refusal(client, response, 401, "AuthError", "passport expired at")
    assert record.computation.startswith("POST ")
    assert record.computation.endswith("/jobs")


def test_attack__passport_for_another_dataset_is_refused_and_audited(
    client: TestClient, peer: Peer, issuer: Issuer
) -> None:
    other = passport_for(issuer, "genofed:CZ", "genofed:FI", user=ALICE)
    response = submitted_with(client, peer, other)
    record = refusal(
        client, response, 403, "AuthError",
        "no ControlledAccessGrants visa for dataset 'genofed:EE'", "'genofed:CZ'",
    )  # fmt: skip
    assert record.computation.startswith("POST ")
    assert record.computation.endswith("/jobs")
    assert record.user == ALICE  # the passport itself verified, so the refusal names its user
    described = client.get("/dataset", headers=bearer(other))
    assert refusal(client, described, 403, "AuthError", "genofed:EE").computation.endswith(
        "/dataset"
    )


def test_attack__untrusted_issuer_is_refused_and_audited(
    client: TestClient, peer: Peer, stranger: Issuer
) -> None:
    token = issue_passport(stranger.directory, user=ALICE, grants=[DATASET])
    response = submitted_with(client, peer, token)
    record = refusal(
        client, response, 401, "AuthError",
        "passport is signed by untrusted issuer https://other.test",
    )  # fmt: skip
    assert record.computation.startswith("POST ")
    assert record.computation.endswith("/jobs")
    assert record.user == "anonymous"


def test_attack__control_the_same_job_with_a_valid_passport_is_allowed(
    client: TestClient, peer: Peer, issuer: Issuer
) -> None:
    response = submitted_with(client, peer, passport_for(issuer, DATASET, user=ALICE))
    assert response.status_code == 201, response.text
    record = audit_records(client)[-1]
    assert (record.decision, record.computation, record.user) == (
        "allowed", "linear-gwas/2", ALICE,
    )  # fmt: skip
    client.post(f"/jobs/{response.json()['id']}/cancel")


# --- secure aggregation: 400 ------------------------------------------------------------------


def test_attack__substituted_peer_key_is_refused_and_audited(
    client: TestClient, peer: Peer
) -> None:
    response, _ = masked_job(client, peer, signer=IdentityKey.generate())
    record = refusal(
        client, response, 400, "ProtocolError",
        f"study key of node '{peer.name}' is not signed by the identity key trusted for "
        f"'{peer.name}'",
    )  # fmt: skip
    assert record.computation == "linear-gwas/2"
    assert record.user == ALICE


def with_node_key(job: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
    """``job`` with ``key`` in place of the node's own study key (listed first)."""
    aggregation = job["aggregation"]
    return {**job, "aggregation": {**aggregation, "keys": [key, *aggregation["keys"][1:]]}}


def test_attack__substituted_node_key_is_refused_and_audited(
    client: TestClient, peer: Peer
) -> None:
    old = job_body(client, peer)["aggregation"]["keys"][0]  # the node's key for another study
    job = job_body(client, peer)
    study = job["aggregation"]["study_id"]
    assert old["public_key"] != job["aggregation"]["keys"][0]["public_key"]

    replayed = client.post("/jobs", json=with_node_key(job, old))
    record = refusal(
        client, replayed, 400, "ProtocolError", "study key of node 'EE' is for study", study
    )
    assert (record.computation, record.user) == ("linear-gwas/2", ALICE)

    relabelled = client.post("/jobs", json=with_node_key(job, {**old, "study_id": study}))
    refusal(
        client, relabelled, 400, "ProtocolError",
        "study key of node 'EE' is not signed by the identity key trusted for 'EE'",
    )  # fmt: skip

    # Even a key signed with the node's identity (say, a stolen one) is not the one it made.
    identity = IdentityKey.load(client.app.state.settings.node.identity_key)  # type: ignore[attr-defined]
    forged = sign_study_key(identity, StudyKey.generate(), study_id=study, node="EE")
    substituted = client.post("/jobs", json=with_node_key(job, forged.to_dict()))
    record = refusal(
        client, substituted, 400, "ProtocolError", "does not list node EE's own study key"
    )
    assert record.user == ALICE

    accepted = client.post("/jobs", json=job)  # the job as the node signed it runs
    assert accepted.status_code == 201, accepted.text
    client.post(f"/jobs/{accepted.json()['id']}/cancel")


# --- disclosure control: 403 ------------------------------------------------------------------


def test_attack__differencing_cohorts_is_refused_and_audited(
    client: TestClient, peer: Peer, issuer: Issuer
) -> None:
    eve = bearer(passport_for(issuer, DATASET, user="eve@example.org"))
    first, _ = masked_job(client, peer, headers=eve)
    assert first.status_code == 201, first.text
    parameters = {**JOB["parameters"], "covariates": ["age", "sex", "bmi"]}
    second, _ = masked_job(client, peer, {**JOB, "parameters": parameters}, headers=eve)
    record = refusal(
        client, second, 403, "DisclosureError",
        "node EE refused: rule min_difference", "fewer than 10 samples",
    )  # fmt: skip
    assert (record.computation, record.user) == ("linear-gwas/2", "eve@example.org")
    client.post(f"/jobs/{first.json()['id']}/cancel", headers=eve)


def test_attack__cohort_below_min_cohort_is_refused_and_audited(
    make_node: NodeFactory, peer: Peer
) -> None:
    small = make_node(min_cohort=10_000)
    response, _ = masked_job(small, peer)
    record = refusal(
        small, response, 403, "DisclosureError",
        "node EE refused: rule min_cohort", "fewer than 10000 samples",
    )  # fmt: skip
    assert (record.computation, record.user) == ("linear-gwas/2", ALICE)


def test_attack__query_budget_overrun_is_refused_and_audited(
    make_node: NodeFactory, peer: Peer
) -> None:
    budget = make_node(query_budget=2)
    admitted = [masked_job(budget, peer)[0] for _ in range(2)]
    assert [r.status_code for r in admitted] == [201, 201]
    response, _ = masked_job(budget, peer)
    record = refusal(
        budget, response, 403, "DisclosureError",
        "node EE refused: rule query_budget", f"{ALICE} has used the 2 jobs allowed",
    )  # fmt: skip
    assert (record.computation, record.user) == ("linear-gwas/2", ALICE)
    for job in admitted:
        budget.post(f"/jobs/{job.json()['id']}/cancel")


# --- the log --------------------------------------------------------------------------------


def test_attack__audit_chain_verifies_after_the_attacks(client: TestClient) -> None:
    anonymous = client.get("/dataset", headers={"Authorization": ""})
    refusal(client, anonymous, 401, "AuthError", "no passport")
    records = audit_records(client)  # verifies the chain
    assert [r.id for r in records] == list(range(1, len(records) + 1))
    assert all(r.reason for r in records if r.decision == "refused")
