"""Schemathesis against the node's own OpenAPI: no generated request makes it fail.

Every operation the node publishes at ``/api/v1/openapi.json`` is fuzzed
in-process through schemathesis's ASGI transport (which runs the app's
lifespan), with schema-valid and schema-violating requests, and a valid
passport on every request so that generation reaches past the passport
check. No response may be a server error, and responses must match the
content types, headers and bodies the schema declares.

Hypothesis drives schemathesis's strategies directly: the
``schemathesis.pytest`` integration (``from_fixture(...).parametrize()``)
reads ``Function._nodeid``, which pytest 9.2 no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)
from schemathesis.core.result import Ok
from schemathesis.python import asgi

from genofed.aai import Issuer
from genofed.node.app import create_app
from genofed.node.settings import load_settings
from genofed.node.setup import init_node, trust_peers
from genofed.protocol.codec import ARRAY_MEDIA_TYPE
from genofed.protocol.messages import API_PREFIX
from genofed.sim import SimulationResult
from tests.conftest import passport_for
from tests.node.peer import JOB, make_peer

# Requests that carry arrays are raw bytes, generated as any binary body.
schemathesis.serializer.alias(ARRAY_MEDIA_TYPE, "application/octet-stream")

EXAMPLES = 50  # per operation and generation mode
# Not status_code_conformance: the schema documents 200/201 and 422, not the node's
# refusals (400, 401, 403, 404, 409), which carry {"detail", "family"}.
CHECKS = [
    not_a_server_error,
    negative_data_rejection,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    f"{method} {API_PREFIX}{path}"
    for method, path in (
        ("GET", "/service-info"),
        ("GET", "/dataset"),
        ("GET", "/dataset/variants"),
        ("GET", "/catalogue"),
        ("POST", "/studies"),
        ("POST", "/jobs"),
        ("GET", "/jobs/{job_id}"),
        ("GET", "/jobs/{job_id}/results/{part}"),
        ("POST", "/jobs/{job_id}/results/{part}"),
        ("POST", "/jobs/{job_id}/totals/{part}"),
        ("POST", "/jobs/{job_id}/cancel"),
    )
]
# Those with something a request can violate: a JSON body or a parameter that is not any
# string (a cancel has neither, and any bytes are a valid body of a request with arrays).
NEGATABLE = [f"POST {API_PREFIX}/studies", f"POST {API_PREFIX}/jobs"]
NEGATABLE.append(f"GET {API_PREFIX}/jobs/{{job_id}}/results/{{part}}")  # ?wait=, 0 to 30
CASES = [
    pytest.param(label, mode, id=f"{label} {mode.value}")
    for mode, labels in (
        (schemathesis.GenerationMode.POSITIVE, OPERATIONS),
        (schemathesis.GenerationMode.NEGATIVE, NEGATABLE),
    )
    for label in labels
]


@pytest.fixture(scope="module")
def node_config(
    cohorts: SimulationResult, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    init = init_node(
        "EE",
        bfile=cohorts.out / "EE" / "genotypes",
        phenotypes=cohorts.out / "EE" / "phenotypes.tsv",
        out=tmp_path_factory.mktemp("node"),
        trusted_issuers=[issuer.jwks],
        insecure=True,
    )
    trust_peers(init.config, [make_peer(tmp_path_factory.mktemp("peer")).card])
    return init.config


@pytest.fixture
def node_schema(node_config: Path) -> Iterator[schemathesis.BaseSchema]:
    """The node's schema, bound to a new app whose lifespan schemathesis starts.

    Schemathesis's pytest plugin ends every ASGI lifespan after each test, and
    a node's shutdown closes its audit log and ledger, so each test gets its
    own app (over the same state directory).
    """
    app = create_app(load_settings(node_config))
    yield schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", app)
    asgi.shutdown_lifespans()  # in case the plugin did not: stop the node as a server would


@pytest.fixture(scope="module")
def passport(issuer: Issuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {passport_for(issuer, 'genofed:EE')}"}


def test_node_api__fuzzes_every_operation(node_schema: schemathesis.BaseSchema) -> None:
    results = list(node_schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results)
    labels = [result.ok().label for result in results if isinstance(result, Ok)]
    assert sorted(labels) == sorted(OPERATIONS)


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_node_api__answers_generated_requests_without_server_errors(
    node_schema: schemathesis.BaseSchema,
    passport: dict[str, str],
    label: str,
    mode: schemathesis.GenerationMode,
) -> None:
    operation = node_schema.find_operation_by_label(label)
    assert operation is not None, label
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(headers=passport, checks=CHECKS)
        statuses.append(response.status_code)

    run()
    assert statuses  # requests were sent
    assert max(statuses) < 500
    assert not {401, 403} & set(statuses)  # every request got past the passport check


def test_node_api__documents_the_422_of_an_input_error(
    node_schema: schemathesis.BaseSchema, passport: dict[str, str]
) -> None:
    operation = node_schema.find_operation_by_label(f"POST {API_PREFIX}/jobs")
    assert operation is not None
    study = "0" * 32
    key = {"node": "EE", "study_id": study, "public_key": "AAAA", "signature": "AAAA"}
    body = {
        **JOB,
        "parameters": {**JOB["parameters"], "phenotype": "hdl"},
        "aggregation": {"study_id": study, "round": "r", "keys": [key]},
    }
    response = operation.Case(body=body).call_and_validate(headers=passport, checks=CHECKS)
    assert response.status_code == 422
    assert response.json()["family"] == "InputError"  # a message, not FastAPI's list
    invalid = operation.Case(body={**body, "version": 1})
    response = invalid.call_and_validate(headers=passport, checks=CHECKS)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)
