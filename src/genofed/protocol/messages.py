"""JSON messages between coordinator and node; the catalogue's entries are generated.

No model here has a field that could carry one person's value: responses
hold counts, names, digests and job states. Aggregate arrays travel
separately, in the codec of :mod:`genofed.protocol.codec`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from genofed.errors import (
    AuthError,
    DisclosureError,
    GenofedError,
    InputError,
    NodeError,
    ProtocolError,
)

__all__ = [
    "API_PREFIX",
    "FAMILIES",
    "SIGNATURE_HEADER",
    "ArraySummary",
    "Base64",
    "ColumnName",
    "Computation",
    "CovariateSetInfo",
    "DatasetDescription",
    "JobBase",
    "JobState",
    "JobStatus",
    "PartSummary",
    "SecureAggregation",
    "ServiceInfo",
    "SetName",
    "SignedKey",
    "StudyId",
    "StudyKeyRequest",
]

API_PREFIX = "/api/v1"
SIGNATURE_HEADER = "Genofed-Signature"  # a node's signature on a masked part, base64

# Error families a node names in its error bodies, so the coordinator raises the same one.
FAMILIES: tuple[type[GenofedError], ...] = (
    AuthError,
    DisclosureError,
    InputError,
    ProtocolError,
    NodeError,
)

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s]+$")]
NodeName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
StudyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]  # 128 random bits, hex
RoundLabel = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
Base64 = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9+/=]+$")
]
SetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceType(_Message):
    """GA4GH service-info ``type``."""

    group: str
    artifact: str
    version: str


class Organization(_Message):
    """GA4GH service-info ``organization``."""

    name: str
    url: str


class ServiceInfo(_Message):
    """GA4GH service-info (v1.0.0) of a node."""

    id: str
    name: str
    type: ServiceType
    description: str
    organization: Organization
    version: str
    environment: str = "production"


class CovariateSetInfo(_Message):
    """A covariate set a node made and keeps (e.g. PCA scores): its run and column names."""

    run: str  # the study that made it, e.g. a PCA run
    computation: str
    created: str  # ISO 8601, UTC
    columns: list[str]
    eigenvalues: list[float] = Field(default_factory=list)
    variants: int | None = None  # variants the PCA used


class DatasetDescription(_Message):
    """What a node holds, as counts and names only."""

    dataset_id: str
    node: str
    genotyped_samples: int | None  # None: below the node's minimum reportable count
    phenotyped_samples: int | None  # in both the genotype files and the phenotype table
    variants: int
    variant_digest: str  # SHA-256 of the variant list (chromosome, position, id, alleles)
    phenotypes: list[str]
    block_size: int  # the node's default number of variants per result block
    covariate_sets: dict[str, CovariateSetInfo] = Field(default_factory=dict)


class StudyKeyRequest(_Message):
    """Ask a node for its per-study key; the coordinator picks the study id."""

    study_id: StudyId


class SignedKey(_Message):
    """A node's X25519 key for one study, signed with its identity key (base64 fields)."""

    node: NodeName
    study_id: StudyId
    public_key: Base64
    signature: Base64


class SecureAggregation(_Message):
    """Who a job's results are masked for: every participant's signed study key.

    Each ``round`` label is used once per study; a rerun after a dropout
    takes a new one, so its masks are fresh.
    """

    study_id: StudyId
    round: RoundLabel
    keys: list[SignedKey] = Field(min_length=1, max_length=64)


class JobBase(_Message):
    """A job request: a computation of the catalogue, its version, parameters and masking.

    Each contract of :mod:`genofed.protocol.computations` makes its own
    subclass, with its name, version and parameters model.
    """

    computation: str
    version: int
    parameters: Any
    aggregation: SecureAggregation


class ArraySummary(_Message):
    """One array of a part in the catalogue: its name, kind and shape (named dimensions)."""

    name: str
    kind: str
    shape: list[str]
    doc: str = ""


class PartSummary(_Message):
    """One part of a computation in the catalogue: how it is obtained and what it releases."""

    path: str
    obtained: Literal["streamed", "asked"]
    of_block: bool  # about the streamed block of the same index
    summary: str
    request: list[ArraySummary]
    answer: list[ArraySummary]  # what each node sends
    released: list[ArraySummary]  # what is released of the federation's total
    release: str
    rules: list[str]


class Computation(_Message):
    """One entry of the node's catalogue, generated from the computation's contract."""

    name: str
    version: int
    description: str
    parameters: dict[str, Any]  # JSON schema of the parameters
    parts: list[PartSummary]
    rules: list[str]  # checked before a job is accepted


class JobState(StrEnum):
    """Task states as in GA4GH TES."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    CANCELED = "CANCELED"


class JobStatus(_Message):
    """State and progress of a job; ``blocks_done`` result blocks are ready to fetch."""

    id: str
    computation: str
    version: int
    state: JobState
    blocks_done: int
    blocks_total: int
    samples: int | None = None  # samples in the analysis, known once the design is built
    groups: dict[str, int | None] = Field(default_factory=dict)  # e.g. cases; None if too few
    error: str | None = None
    verify_seconds: float = 0.0  # as the round's verifier: replaying requests, releasing totals
