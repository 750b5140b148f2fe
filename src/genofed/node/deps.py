"""Request dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genofed.node.dataset import NodeDataset
from genofed.node.jobs import JobManager
from genofed.node.settings import NodeSettings

__all__ = ["Dataset", "Jobs", "Settings"]


def _settings(request: Request) -> NodeSettings:
    settings: NodeSettings = request.app.state.settings
    return settings


def _dataset(request: Request) -> NodeDataset:
    dataset: NodeDataset = request.app.state.dataset
    return dataset


def _jobs(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


Settings = Annotated[NodeSettings, Depends(_settings)]
Dataset = Annotated[NodeDataset, Depends(_dataset)]
Jobs = Annotated[JobManager, Depends(_jobs)]
