"""Jobs: submit, poll, fetch result blocks, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from genofed.node.deps import Caller, Jobs
from genofed.protocol.codec import ARRAY_MEDIA_TYPE
from genofed.protocol.messages import JobRequest, JobStatus, MissingSelection

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_WAIT_SECONDS = 30.0


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
    """Fetch ``null`` or ``block/<i>``, waiting up to ``wait`` seconds for it."""
    payload = jobs.result(job_id, part, wait=wait, user=caller.user)
    blocks_done = jobs.status(job_id, user=caller.user).blocks_done
    return Response(
        payload, media_type=ARRAY_MEDIA_TYPE, headers={"Genofed-Blocks-Done": str(blocks_done)}
    )


@router.post("/{job_id}/results/block/{index}/missing", response_class=Response)
def missing(
    job_id: str,
    index: Annotated[int, Path(ge=0)],
    selection: MissingSelection,
    jobs: Jobs,
    caller: Caller,
    http: Request,
) -> Response:
    """Fetch block ``index``'s missing-call sums for the selected variants (once per block)."""
    http.state.parameters = selection.model_dump(mode="json")
    payload = jobs.missing(job_id, index, selection.variants, user=caller.user)
    return Response(payload, media_type=ARRAY_MEDIA_TYPE)


@router.post("/{job_id}/cancel")
def cancel(job_id: str, jobs: Jobs, caller: Caller) -> JobStatus:
    """Stop one of the caller's jobs and drop its results."""
    return jobs.cancel(job_id, user=caller.user)
