"""Jobs: submit, poll, fetch result blocks, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from genofed.errors import ProtocolError
from genofed.node.deps import Caller, Jobs
from genofed.node.jobs import request_digest as _digest
from genofed.protocol.codec import ARRAY_MEDIA_TYPE, decode_arrays
from genofed.protocol.computations import JobRequest
from genofed.protocol.messages import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_WAIT_SECONDS = 30.0
MAX_REQUEST_BYTES = 64 << 20  # arrays a coordinator may send with one request


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
    payload = jobs.result(job_id, part, wait=wait, user=caller.user)
    blocks_done = jobs.status(job_id, user=caller.user).blocks_done
    return Response(
        payload, media_type=ARRAY_MEDIA_TYPE, headers={"Genofed-Blocks-Done": str(blocks_done)}
    )


@router.post(
    "/{job_id}/results/{part:path}",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ARRAY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def ask(job_id: str, part: str, jobs: Jobs, caller: Caller, http: Request) -> Response:
    """Ask for a part with arrays, e.g. ``block/<i>/missing`` with the variants wanted.

    The body is named arrays in the node's array codec, as the computation's
    contract declares them (``GET /catalogue``); each part is answered once.
    """
    body = await http.body()
    if len(body) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"the request has {len(body):,} bytes, more than {MAX_REQUEST_BYTES:,}")
    arrays = decode_arrays(body)
    http.state.parameters = {"part": part, "arrays": _digest(arrays)}
    payload = await run_in_threadpool(jobs.answer, job_id, part, arrays, user=caller.user)
    return Response(payload, media_type=ARRAY_MEDIA_TYPE)


@router.post("/{job_id}/cancel")
def cancel(job_id: str, jobs: Jobs, caller: Caller) -> JobStatus:
    """Stop one of the caller's jobs and drop its results."""
    return jobs.cancel(job_id, user=caller.user)
