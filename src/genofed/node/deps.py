"""Request dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genofed.errors import AuthError
from genofed.node.auth import PassportVerifier, Principal, bearer_token
from genofed.node.dataset import NodeDataset
from genofed.node.jobs import JobManager
from genofed.node.settings import NodeSettings
from genofed.node.studies import StudyKeys

__all__ = ["Caller", "Dataset", "Jobs", "Settings", "Studies"]


def _settings(request: Request) -> NodeSettings:
    settings: NodeSettings = request.app.state.settings
    return settings


def _dataset(request: Request) -> NodeDataset:
    dataset: NodeDataset = request.app.state.dataset
    return dataset


def _jobs(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


def _studies(request: Request) -> StudyKeys:
    studies: StudyKeys = request.app.state.jobs.studies
    return studies


def _caller(request: Request) -> Principal:
    """Verify the request's passport for this node's dataset; 401 or 403 otherwise."""
    settings: NodeSettings = request.app.state.settings
    verifier: PassportVerifier = request.app.state.verifier
    token = bearer_token(request.headers.get("authorization"))
    try:
        principal = verifier.verify(token, settings.node.dataset_id)
    except AuthError as exc:
        request.state.user = exc.user  # audited under the passport's user when it verified
        raise
    request.state.user = principal.user
    return principal


Settings = Annotated[NodeSettings, Depends(_settings)]
Caller = Annotated[Principal, Depends(_caller)]
Dataset = Annotated[NodeDataset, Depends(_dataset)]
Jobs = Annotated[JobManager, Depends(_jobs)]
Studies = Annotated[StudyKeys, Depends(_studies)]
