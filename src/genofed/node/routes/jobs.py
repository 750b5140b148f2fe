"""Jobs: submit, poll, fetch and ask for parts, hand the verifier the signed parts, cancel."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from genofed.errors import ProtocolError
from genofed.node.deps import Caller, Jobs
from genofed.node.jobs import Answer
from genofed.node.jobs import request_digest as _digest
from genofed.protocol.codec import ARRAY_MEDIA_TYPE, decode_arrays
from genofed.protocol.computations import JobRequest
from genofed.protocol.messages import SIGNATURE_HEADER, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_WAIT_SECONDS = 30.0
MAX_REQUEST_BYTES = 64 << 20  # arrays a coordinator may send with one request
MAX_TOTAL_BYTES = 1 << 30  # every participant's signed part, handed to the verifier

_ARRAY_BODY = {
    "requestBody": {
        "required": True,
        "content": {ARRAY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("", status_code=status.HTTP_201_CREATED)
def submit(request: JobRequest, jobs: Jobs, caller: Caller, http: Request) -> JobStatus:
    """Queue a catalogue computation for the passport's user."""
    http.state.computation = f"{request.computation}/{request.version}"
    http.state.parameters = request.model_dump(mode="json", include={"parameters", "aggregation"})
    return jobs.submit(request, user=caller.user)


@router.get("/{job_id}")
def job_status(job_id: str, jobs: Jobs, caller: Caller) -> JobStatus:
    """State and progress of one of the caller's jobs."""
    return jobs.status(job_id, user=caller.user)


@router.get("/{job_id}/results/{part:path}", response_class=Response)
def result(
    job_id: str,
    part: str,
    jobs: Jobs,
    caller: Caller,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0.0,
) -> Response:
    """Fetch a part the node computes ahead (``null``, ``block/<i>``), waiting up to ``wait`` s."""
    answer = jobs.result(job_id, part, wait=wait, user=caller.user)
    blocks_done = jobs.status(job_id, user=caller.user).blocks_done
    return _response(answer, {"Genofed-Blocks-Done": str(blocks_done)})


@router.post("/{job_id}/results/{part:path}", response_class=Response, openapi_extra=_ARRAY_BODY)
async def ask(job_id: str, part: str, jobs: Jobs, caller: Caller, http: Request) -> Response:
    """Ask for a part with arrays, e.g. ``block/<i>/missing`` with the variants wanted.

    The body is named arrays in the node's array codec, as the computation's
    contract declares them (``GET /catalogue``); each part is answered once.
    """
    arrays = decode_arrays(await _body(http, MAX_REQUEST_BYTES))
    http.state.parameters = {"part": part, "arrays": _digest(arrays)}
    answer = await run_in_threadpool(jobs.answer, job_id, part, arrays, user=caller.user)
    return _response(answer)


@router.post("/{job_id}/totals/{part:path}", response_class=Response, openapi_extra=_ARRAY_BODY)
async def total(job_id: str, part: str, jobs: Jobs, caller: Caller, http: Request) -> Response:
    """Hand the round's verifier every participant's signed part; get the released total.

    The body holds, for each participant ``P``, the arrays ``payload:P`` (its
    masked part, as bytes) and ``signature:P``. Only the round's verifier
    answers: it checks every signature, sums the parts and releases the total
    under the part's rules.
    """
    arrays = decode_arrays(await _body(http, MAX_TOTAL_BYTES))
    contributions: dict[str, tuple[bytes, bytes]] = {}
    for name, value in arrays.items():
        kind, _, node = name.partition(":")
        if kind not in ("payload", "signature") or not node or value.dtype.kind != "u":
            raise ProtocolError(
                f"a total is handed over as uint8 arrays payload:<node> and signature:<node>, "
                f"not {name!r}"
            )
        payload, signature = contributions.get(node, (b"", b""))
        if kind == "payload":
            payload = value.tobytes()
        else:
            signature = value.tobytes()
        contributions[node] = (payload, signature)
    http.state.parameters = {"part": part, "contributors": sorted(contributions)}
    released = await run_in_threadpool(jobs.total, job_id, part, contributions, user=caller.user)
    return Response(released, media_type=ARRAY_MEDIA_TYPE)


@router.post("/{job_id}/cancel")
def cancel(job_id: str, jobs: Jobs, caller: Caller) -> JobStatus:
    """Stop one of the caller's jobs and drop its results."""
    return jobs.cancel(job_id, user=caller.user)


async def _body(http: Request, limit: int) -> bytes:
    body = await http.body()
    if len(body) > limit:
        raise ProtocolError(f"the request has {len(body):,} bytes, more than {limit:,}")
    return body


def _response(answer: Answer, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if answer.signature:
        headers[SIGNATURE_HEADER] = base64.b64encode(answer.signature).decode()
    return Response(answer.payload, media_type=ARRAY_MEDIA_TYPE, headers=headers)
