"""JSON messages between coordinator and node, and the versioned job catalogue.

No model here has a field that could carry one person's value: responses
hold counts, names, digests and job states. Aggregate arrays travel
separately, in the codec of :mod:`genofed.protocol.codec`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

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
    "CATALOGUE",
    "FAMILIES",
    "MAX_LD_WINDOW",
    "Computation",
    "CovariateSetInfo",
    "DatasetDescription",
    "JobRequest",
    "JobState",
    "JobStatus",
    "LinearGwasJob",
    "LinearGwasParameters",
    "LogisticGwasJob",
    "LogisticGwasParameters",
    "PcaJob",
    "PcaParameters",
    "SecureAggregation",
    "ServiceInfo",
    "SignedKey",
    "StudyKeyRequest",
    "VariantQcJob",
    "VariantQcParameters",
]

API_PREFIX = "/api/v1"
MAX_LD_WINDOW = 10_000  # variants in a pca job's LD-pruning window (96 bytes per pair, masked)

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


class LinearGwasParameters(_Message):
    """Parameters of ``linear-gwas`` version 1."""

    phenotype: ColumnName
    covariates: list[ColumnName] = Field(default_factory=list, max_length=64)
    block_size: int = Field(ge=1, le=65_536)


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


class LogisticGwasParameters(_Message):
    """Parameters of ``logistic-gwas`` version 1: a 0/1 phenotype, as for ``linear-gwas``."""

    phenotype: ColumnName
    covariates: list[ColumnName] = Field(default_factory=list, max_length=64)
    block_size: int = Field(ge=1, le=65_536)


class VariantQcParameters(_Message):
    """Parameters of ``variant-qc`` version 1.

    Without a phenotype the counts cover every genotyped sample; with one, the
    samples that have it and every covariate (the cohort of a GWAS of it).
    """

    block_size: int = Field(ge=1, le=65_536)
    phenotype: ColumnName | None = None
    covariates: list[ColumnName] = Field(default_factory=list, max_length=64)


class PcaParameters(_Message):
    """Parameters of ``pca`` version 1; the variants and their standardisation come as arrays.

    ``name`` is the covariate set the node stores its samples' scores under,
    ``run`` the identifier recorded with it (the coordinator's study id).
    """

    components: int = Field(ge=1, le=100)
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")] = "pcs"
    run: StudyId


class LinearGwasJob(_Message):
    """A ``linear-gwas`` job: its version, parameters and masking."""

    computation: Literal["linear-gwas"]
    version: Literal[1]
    parameters: LinearGwasParameters
    aggregation: SecureAggregation


class LogisticGwasJob(_Message):
    """A ``logistic-gwas`` job: its version, parameters and masking."""

    computation: Literal["logistic-gwas"]
    version: Literal[1]
    parameters: LogisticGwasParameters
    aggregation: SecureAggregation


class VariantQcJob(_Message):
    """A ``variant-qc`` job: its version, parameters and masking."""

    computation: Literal["variant-qc"]
    version: Literal[1]
    parameters: VariantQcParameters
    aggregation: SecureAggregation


class PcaJob(_Message):
    """A ``pca`` job: its version, parameters and masking."""

    computation: Literal["pca"]
    version: Literal[1]
    parameters: PcaParameters
    aggregation: SecureAggregation


# A job from the catalogue, told apart by its computation name.
JobRequest = Annotated[
    LinearGwasJob | LogisticGwasJob | VariantQcJob | PcaJob, Field(discriminator="computation")
]


class Computation(_Message):
    """One entry of the node's catalogue."""

    name: str
    version: int
    description: str
    results: list[str]


CATALOGUE = (
    Computation(
        name="linear-gwas",
        version=1,
        description=(
            "Sufficient statistics of a linear-regression GWAS, masked for secure aggregation: "
            "C'C, C'y, y'y and n once, then C'g, g'g, g'y and the missing-call count per "
            "variant, and the missing-call samples' own sums of the variants asked for."
        ),
        results=["null", "block/{index}", "block/{index}/missing"],
    ),
    Computation(
        name="logistic-gwas",
        version=1,
        description=(
            "Sums of an exact logistic-regression GWAS with PLINK 2's Firth fallback, masked "
            "for secure aggregation: per round, X'(y - mu), X'WX, the log-likelihood and the "
            "Firth score correction of the variants asked for, at the coefficients asked for."
        ),
        results=["block/{index}", "block/{index}/round/{number}"],
    ),
    Computation(
        name="variant-qc",
        version=1,
        description=(
            "Genotype counts per variant over all genotyped samples: ALT dosage 0, 1, 2 and "
            "missing, for allele frequencies, missing-call rates and Hardy-Weinberg tests."
        ),
        results=["block/{index}"],
    ),
    Computation(
        name="pca",
        version=1,
        description=(
            "Principal components of the standardised genotypes of the variants asked for: "
            "LD-pruning sums over pairs of them (samples called at both, genotype sums and "
            "products), then per round X'(X Q) for the coordinator's block Q, all masked; "
            "then each node stores its own samples' scores as a covariate set (never sent) "
            "and returns only their sums, and the mean and covariance of two components "
            "over its samples, for a picture."
        ),
        results=["variants", "ld/{index}", "keep", "product/{number}", "scores", "summary"],
    ),
)


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
