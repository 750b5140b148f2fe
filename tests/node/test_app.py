"""The node service in-process: its routes, job life cycle and refusals."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from genofed.aai import Issuer, issue_passport
from genofed.cli import main
from genofed.io import read_phenotype_table
from genofed.kernels.linreg import local_null_sums
from genofed.node.app import create_app
from genofed.node.audit import open_audit_log, parameters_hash
from genofed.node.settings import load_settings
from genofed.node.setup import init_node, trust_peers
from genofed.protocol.codec import ARRAY_MEDIA_TYPE, decode_arrays, encode_arrays
from genofed.protocol.computations.linear_gwas import null_from_totals
from genofed.protocol.messages import API_PREFIX
from genofed.sim import SimulationResult
from tests.conftest import passport_for
from tests.node.peer import JOB, Peer, make_peer, masked_job, unmask


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Peer:
    return make_peer(tmp_path_factory.mktemp("peer"))


@pytest.fixture(scope="module")
def client(
    cohorts: SimulationResult, issuer: Issuer, peer: Peer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    out = tmp_path_factory.mktemp("node")
    init = init_node(
        "EE",
        bfile=cohorts.out / "EE" / "genotypes",
        phenotypes=cohorts.out / "EE" / "phenotypes.tsv",
        out=out,
        trusted_issuers=[issuer.jwks],
    )
    trust_peers(init.config, [peer.card])
    settings = load_settings(init.config)
    settings = settings.model_copy(
        update={"compute": settings.compute.model_copy(update={"buffered_blocks": 2})}
    )
    headers = {"Authorization": f"Bearer {passport_for(issuer, 'genofed:EE')}"}
    app = create_app(settings)
    with TestClient(app, base_url=f"http://node{API_PREFIX}", headers=headers) as test_client:
        yield test_client


def test_node__serves_ga4gh_service_info(client: TestClient) -> None:
    info = client.get("/service-info").json()
    assert info["id"] == "org.genofed.node.ee"
    assert info["type"] == {"group": "org.genofed", "artifact": "genofed-node", "version": "1.0.0"}
    assert {"name", "description", "organization", "version"} <= set(info)


def test_node__describes_its_dataset_by_counts_and_names_only(client: TestClient) -> None:
    description = client.get("/dataset").json()
    assert description["genotyped_samples"] == description["phenotyped_samples"] == 400
    assert description["variants"] == 8000
    assert description["phenotypes"] == ["ldl", "t2d", "age", "sex"]
    assert description["covariate_sets"] == {}  # none computed yet
    assert all(
        isinstance(v, int | str)
        for k, v in description.items()
        if k not in ("phenotypes", "covariate_sets")
    )


def test_node__offers_only_the_catalogue(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {p.removeprefix(API_PREFIX) for p in paths} == {
        "/service-info", "/dataset", "/dataset/variants", "/catalogue", "/studies",
        "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/results/{part}", "/jobs/{job_id}/totals/{part}",
        "/jobs/{job_id}/cancel",
    }  # fmt: skip
    assert [c["name"] for c in client.get("/catalogue").json()] == [
        "linear-gwas",
        "logistic-gwas",
        "variant-qc",
        "pca",
    ]
    study = "0" * 32
    key = {"node": "EE", "study_id": study, "public_key": "AAAA", "signature": "AAAA"}
    job = {**JOB, "aggregation": {"study_id": study, "round": "r", "keys": [key]}}
    unknown_study = client.post("/jobs", json=job)
    assert unknown_study.status_code == 400  # well-formed, refused by the node
    assert "public_key of 'EE' has 3 bytes, expected 32" in unknown_study.json()["detail"]
    for bad in (
        {**job, "computation": "python"},
        {**job, "version": 1},
        {**job, "code": "import os"},
        {**job, "parameters": {**JOB["parameters"], "block_size": 0}},
        {**job, "aggregation": {**job["aggregation"], "keys": []}},
        JOB,  # no secure aggregation
    ):
        assert client.post("/jobs", json=bad).status_code == 422


def test_node__variant_list_travels_as_arrays(client: TestClient) -> None:
    response = client.get("/dataset/variants")
    assert response.headers["content-type"] == ARRAY_MEDIA_TYPE
    variants = decode_arrays(response.content)
    assert len(variants["variant_id"]) == 8000
    assert variants["variant_id"][0] == f"{variants['chromosome'][0]}:" + ":".join(
        [str(variants["base_pair_location"][0]), variants["other_allele"][0],
         variants["effect_allele"][0]]
    )  # fmt: skip


def test_node__job_runs_from_queued_to_complete_with_masked_blocks(
    client: TestClient, peer: Peer, cohorts: SimulationResult
) -> None:
    submitted, side = masked_job(client, peer)
    assert submitted.status_code == 201
    job = submitted.json()
    assert job["state"] in ("QUEUED", "RUNNING")
    assert job["blocks_total"] == 8
    payload = client.get(f"/jobs/{job['id']}/results/null?wait=10").content
    null = null_from_totals(unmask(payload, "null", side))
    table = read_phenotype_table(cohorts.out / "EE" / "phenotypes.tsv")
    values = np.column_stack([table.columns[c] for c in ("ldl", "age", "sex")])
    values = values[~np.isnan(values).any(axis=1)]
    expected = local_null_sums(np.column_stack([np.ones(len(values)), values[:, 1:]]), values[:, 0])
    assert null.n == expected.n == job["samples"]
    np.testing.assert_allclose(null.ctc, expected.ctc, rtol=1e-15)
    masked = decode_arrays(payload)
    assert set(masked) == {
        f"{a}:{m}" for a in ("ctc", "cty", "yty", "n") for m in ("lo", "hi", "fraction_bits")
    } | {"rule:min_count"}  # the node's setting, for the verifier
    assert int(masked["rule:min_count"]) == 5
    assert masked["n:lo"] != expected.n  # the count itself is masked
    for index in range(8):
        response = client.get(f"/jobs/{job['id']}/results/block/{index}?wait=10")
        assert response.status_code == 200
        assert unmask(response.content, f"block/{index}", side)["ctg"].shape == (1000, 3)
        again = client.get(f"/jobs/{job['id']}/results/block/{index}")
        assert again.content == response.content  # masked once, sent alike
    status = client.get(f"/jobs/{job['id']}").json()
    assert status["state"] == "COMPLETE"
    assert status["blocks_done"] == 8
    released = client.get(f"/jobs/{job['id']}/results/block/3")
    assert released.status_code == 404
    assert "already fetched" in released.json()["detail"]


def ask(client: TestClient, url: str, **arrays: object) -> httpx.Response:
    body = encode_arrays({name: np.asarray(value) for name, value in arrays.items()})
    return client.post(url, content=body, headers={"Content-Type": ARRAY_MEDIA_TYPE})


def test_node__missing_call_sums_are_masked_once_per_block(client: TestClient, peer: Peer) -> None:
    job, side = masked_job(client, peer)
    job_id = job.json()["id"]
    assert client.get(f"/jobs/{job_id}/results/block/0?wait=10").status_code == 200
    url = f"/jobs/{job_id}/results/block/0/missing"
    first = ask(client, url, variants=[0, 5, 999])
    assert first.status_code == 200
    sums = unmask(first.content, "block/0/missing", side)
    assert sums["missing_ctc"].shape == (3, 6)  # the upper triangle of 3 x 3
    assert ask(client, url, variants=[0, 5, 999]).content == first.content
    other = ask(client, url, variants=[0, 5])
    assert other.status_code == 400
    assert "already answered for other arrays; masks are used once" in other.json()["detail"]
    assert client.get(f"/jobs/{job_id}/results/block/1?wait=10").status_code == 200
    for bad in ([5, 0], [1000], [3, 3], [-1]):
        refused = ask(client, f"/jobs/{job_id}/results/block/1/missing", variants=bad)
        assert refused.status_code == 400, bad
        assert "strictly increasing positions below 1000" in refused.json()["detail"]
    unknown = ask(client, f"/jobs/{job_id}/results/block/1/other", variants=[1])
    assert unknown.status_code == 404
    not_arrays = client.post(url, content=b"junk", headers={"Content-Type": ARRAY_MEDIA_TYPE})
    assert not_arrays.status_code == 400
    client.post(f"/jobs/{job_id}/cancel")


def test_node__unfetched_blocks_hold_the_job_back(client: TestClient, peer: Peer) -> None:
    job = masked_job(client, peer)[0].json()
    not_yet = client.get(f"/jobs/{job['id']}/results/block/5?wait=1")
    assert not_yet.status_code == 409
    assert client.get(f"/jobs/{job['id']}").json()["blocks_done"] == 2  # buffered_blocks
    cancelled = client.post(f"/jobs/{job['id']}/cancel").json()
    assert cancelled["state"] == "CANCELED"


def test_node__refusals_name_what_is_wrong(client: TestClient, peer: Peer) -> None:
    unknown = client.get("/jobs/0123456789abcdef")
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no job 0123456789abcdef on this node"
    bad_column = {**JOB, "parameters": {**JOB["parameters"], "phenotype": "hdl"}}  # type: ignore[dict-item]
    response = masked_job(client, peer, bad_column)[0]
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "column 'hdl' is not in the phenotype table; available: ldl, t2d, age, sex"
    )


def test_node__computations_need_a_passport_for_this_dataset(
    client: TestClient, issuer: Issuer
) -> None:
    assert client.get("/service-info", headers={"Authorization": ""}).status_code == 200
    missing = client.get("/dataset", headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    other = {"Authorization": f"Bearer {passport_for(issuer, 'genofed:CZ')}"}
    refused = client.post("/jobs", json=JOB, headers=other)
    assert refused.status_code == 403
    assert "no ControlledAccessGrants visa for dataset 'genofed:EE'" in refused.json()["detail"]
    expired = issue_passport(
        issuer.directory, user="alice@example.org", grants=["genofed:EE"], ttl=60,
        now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2),
    )  # fmt: skip
    response = client.get("/dataset", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_node__jobs_belong_to_their_user(client: TestClient, peer: Peer, issuer: Issuer) -> None:
    job = masked_job(client, peer)[0].json()
    mallory = {"Authorization": f"Bearer {passport_for(issuer, 'genofed:EE', user='mallory')}"}
    assert client.get(f"/jobs/{job['id']}", headers=mallory).status_code == 404
    assert client.get(f"/jobs/{job['id']}/results/null", headers=mallory).status_code == 404
    assert client.post(f"/jobs/{job['id']}/cancel").json()["state"] == "CANCELED"


def test_node__every_request_is_audited_refusals_included(
    client: TestClient, peer: Peer, issuer: Issuer
) -> None:
    other = {"Authorization": f"Bearer {passport_for(issuer, 'genofed:CZ')}"}
    assert client.post("/jobs", json=JOB, headers=other).status_code == 403
    submitted = masked_job(client, peer)[0]
    assert submitted.status_code == 201
    body = json.loads(submitted.request.content)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    config = settings.node.state_dir / "node.toml"
    with open_audit_log(settings.node.state_dir / "audit.sqlite3") as log:
        records = log.records()
        assert log.verify().ok
    refused = [r for r in records if r.decision == "refused"]
    assert any(
        "no ControlledAccessGrants visa" in r.reason and r.computation.endswith("/jobs")
        for r in refused
    )
    allowed = [r for r in records if r.decision == "allowed" and r.computation == "linear-gwas/2"]
    assert allowed[-1].user == "alice@example.org"
    assert allowed[-1].parameters_sha256 == parameters_hash(
        {"parameters": body["parameters"], "aggregation": body["aggregation"]}
    )
    keys = [r for r in records if r.computation == "study-key"]
    assert keys[-1].decision == "allowed"
    assert keys[-1].user == "alice@example.org"
    assert main(["node", "audit", str(config), "--verify"]) == 0
