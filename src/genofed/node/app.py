"""The node's FastAPI application, built by :func:`create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from genofed._version import __version__
from genofed.errors import AuthError, DisclosureError, GenofedError, InputError, ProtocolError
from genofed.node.audit import AuditEvent, open_audit_log
from genofed.node.auth import PassportVerifier
from genofed.node.dataset import NodeDataset
from genofed.node.disclosure import DisclosureLedger
from genofed.node.jobs import JobManager, NotReady, UnknownJob
from genofed.node.routes import info, jobs, studies
from genofed.node.settings import NodeSettings
from genofed.node.studies import StudyKeys
from genofed.protocol.messages import API_PREFIX, FAMILIES

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

# Each error family has its HTTP status; the body is {"detail": message, "family": name}.
_STATUS = (
    (UnknownJob, 404),
    (NotReady, 409),
    (InputError, 422),
    (ProtocolError, 400),
    (DisclosureError, 403),
)


class UnprocessableBody(BaseModel):
    """A 422 body: FastAPI's list of validation problems, or an InputError and its family."""

    detail: str | list[dict[str, Any]]
    family: str | None = None


# FastAPI documents 422 as its validation body only; an InputError is a 422 with a message.
_UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {"model": UnprocessableBody, "description": "Validation Error"}
}


def create_app(settings: NodeSettings, dataset: NodeDataset | None = None) -> FastAPI:
    """Build a node's application; the dataset is opened here unless given."""
    state = settings.node.state_dir or settings.data.bfile.parent
    state.mkdir(parents=True, exist_ok=True)
    data = dataset or NodeDataset(
        settings.data.bfile, settings.data.phenotypes, state / "covariate-sets"
    )
    ledger = DisclosureLedger(
        state / "disclosure.sqlite3", settings.disclosure, node=settings.node.name
    )
    manager = JobManager(data, settings.compute, ledger, StudyKeys.from_settings(settings))
    audit = open_audit_log(settings.audit.database or state / "audit.sqlite3")
    verifier = PassportVerifier(
        settings.access.trusted_issuers, clock_skew=settings.access.clock_skew
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for defence in settings.disclosure.disabled:
            logger.warning(
                "node %s: the %s defence is switched off ([disclosure] disabled); this is for "
                "showing attacks in tests, never for a node in a federation",
                settings.node.name, defence,
            )  # fmt: skip
        logger.info(
            "node %s serves dataset %s: %d samples, %d variants",
            settings.node.name, settings.node.dataset_id, len(data.iids), len(data.variants),
        )  # fmt: skip
        yield
        logger.info("node %s stopping: cancelling jobs", settings.node.name)
        manager.shutdown()
        ledger.close()
        audit.close()
        data.close()

    app = FastAPI(
        title=f"genofed node {settings.node.name}",
        version=__version__,
        lifespan=lifespan,
        docs_url=f"{API_PREFIX}/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings, app.state.dataset, app.state.jobs = settings, data, manager
    app.state.verifier = verifier
    app.include_router(info.router, prefix=API_PREFIX)
    app.include_router(studies.router, prefix=API_PREFIX, responses=_UNPROCESSABLE)
    app.include_router(jobs.router, prefix=API_PREFIX, responses=_UNPROCESSABLE)

    @app.middleware("http")
    async def record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith(API_PREFIX):
            return response
        route = request.scope.get("route")
        refused = getattr(request.state, "refused", response.status_code >= 400)
        reason = getattr(request.state, "reason", None)
        event = AuditEvent(
            user=getattr(request.state, "user", None),
            dataset=settings.node.dataset_id,
            computation=getattr(request.state, "computation", None)
            or f"{request.method} {getattr(route, 'path', request.url.path)}",
            parameters=getattr(request.state, "parameters", {}),
            decision="refused" if refused else "allowed",
            reason=reason or (f"HTTP {response.status_code}" if refused else ""),
            bytes_returned=int(response.headers.get("content-length", 0)),
            job_id=request.scope.get("path_params", {}).get("job_id"),
        )
        try:
            await run_in_threadpool(audit.append, event)
        except GenofedError as exc:
            logger.error("request not served, because it could not be recorded: %s", exc)
            body = {"detail": "the node could not record the request", "family": "NodeError"}
            return JSONResponse(body, status_code=503)
        return response

    @app.exception_handler(GenofedError)
    async def genofed_error(request: Request, exc: GenofedError) -> JSONResponse:
        request.state.reason = str(exc)
        request.state.refused = not isinstance(exc, NotReady)  # a long poll that timed out
        code = next((c for family, c in _STATUS if isinstance(exc, family)), 500)
        if isinstance(exc, AuthError):
            code = exc.status
        family = next((f.__name__ for f in FAMILIES if isinstance(exc, f)), "GenofedError")
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(
            {"detail": str(exc), "family": family}, status_code=code, headers=headers
        )

    return app
