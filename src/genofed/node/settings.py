"""A node's configuration (``node.toml``); its public card is :mod:`genofed.protocol.cards`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genofed._toml import read_toml
from genofed.node.disclosure import DisclosureSection
from genofed.protocol.cards import NodeName, validated

__all__ = ["AggregationSection", "NodeSettings", "load_settings"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSection(_Section):
    """``[node]``: who this node is, and where it keeps its state (default: beside node.toml)."""

    name: NodeName
    dataset_id: Annotated[str, Field(min_length=1, max_length=256)]
    state_dir: Path | None = None
    identity_key: Path | None = None  # Ed25519 key that signs this node's per-study keys


class ServerSection(_Section):
    """``[server]``: where it listens, and the URL researchers use."""

    host: str = "127.0.0.1"
    port: int = Field(default=8701, ge=1, le=65_535)
    public_url: str | None = None


class TlsSection(_Section):
    """``[tls]``: the node's key and the certificate pinned on its card."""

    certificate: Path
    key: Path


class DataSection(_Section):
    """``[data]``: the node's own files, read in place."""

    bfile: Path  # PLINK 1 prefix: .bed, .bim and .fam
    phenotypes: Path


class ComputeSection(_Section):
    """``[compute]``: how much work and memory the node allows itself."""

    block_size: int = Field(default=4096, ge=1, le=65_536)
    max_running_jobs: int = Field(default=2, ge=1, le=64)
    buffered_blocks: int = Field(default=16, ge=1, le=1024)
    kept_jobs: int = Field(default=64, ge=1, le=10_000)


class AccessSection(_Section):
    """``[access]``: whose GA4GH Passports this node accepts."""

    trusted_issuers: list[Path] = Field(
        default_factory=list
    )  # JWKS files of brokers and visa issuers
    clock_skew: int = Field(default=60, ge=0, le=600)


class AggregationSection(_Section):
    """``[aggregation]``: the peers this node masks its sums with, and how many it needs.

    ``peers`` is a directory of the public cards (``*.toml``) of the nodes
    this node trusts; their identity keys are the only ones it accepts on
    study keys. ``min_participants`` of 1 would let a coordinator see this
    node's own sums.
    """

    peers: Path | None = None
    min_participants: int = Field(default=2, ge=1, le=64)


class AuditSection(_Section):
    """``[audit]``: where the audit log lives: a SQLite path or a PostgreSQL URL."""

    database: str | None = None  # default: audit.sqlite3 in the state directory


class NodeSettings(_Section):
    """Everything in ``node.toml``."""

    node: NodeSection
    server: ServerSection = ServerSection()
    tls: TlsSection | None = None
    access: AccessSection = AccessSection()
    data: DataSection
    compute: ComputeSection = ComputeSection()
    disclosure: DisclosureSection = DisclosureSection()
    aggregation: AggregationSection = AggregationSection()
    audit: AuditSection = AuditSection()

    @property
    def url(self) -> str:
        """The URL on the public card: HTTPS unless the node has no TLS key."""
        scheme = "https" if self.tls else "http"
        return self.server.public_url or f"{scheme}://{self.server.host}:{self.server.port}"

    @model_validator(mode="after")
    def _absolute_paths(self) -> NodeSettings:
        paths = [self.data.bfile, self.data.phenotypes, *self.access.trusted_issuers]
        if self.node.state_dir:
            paths.append(self.node.state_dir)
        if self.node.identity_key:
            paths.append(self.node.identity_key)
        if self.aggregation.peers:
            paths.append(self.aggregation.peers)
        if self.tls:
            paths += [self.tls.certificate, self.tls.key]
        if self.audit.database and "://" not in self.audit.database:
            paths.append(Path(self.audit.database))
        for path in paths:
            if not path.is_absolute():
                raise ValueError(f"paths must be absolute after loading, got {path}")
        return self


# The paths in node.toml, by section; a relative one is taken from node.toml's directory.
_PATHS = {
    "node": ("state_dir", "identity_key"),
    "data": ("bfile", "phenotypes"),
    "tls": ("certificate", "key"),
    "aggregation": ("peers",),
}


def load_settings(path: Path) -> NodeSettings:
    """Read ``node.toml``; every relative path in it is taken from the file's directory.

    The working directory does not matter: data files, the state directory
    (by default node.toml's directory), the identity key, TLS files, the peers
    directory, trusted issuers and a SQLite audit database all come back as
    absolute paths.

    Raises
    ------
    InputError
        Naming the file and each key that is missing, unknown or invalid.
    """
    path = Path(path)
    here = path.parent.resolve()
    document = read_toml(path)

    def resolved(value: object) -> object:
        return str((here / value).resolve()) if isinstance(value, str) else value

    node = document.get("node")
    if isinstance(node, dict):
        node.setdefault("state_dir", str(here))
    for section, keys in _PATHS.items():
        table = document.get(section)
        if isinstance(table, dict):
            for key in keys:
                if key in table:
                    table[key] = resolved(table[key])
    access = document.get("access")
    if isinstance(access, dict) and isinstance(access.get("trusted_issuers"), list):
        access["trusted_issuers"] = [resolved(p) for p in access["trusted_issuers"]]
    audit = document.get("audit")
    if isinstance(audit, dict):
        database = audit.get("database")
        if isinstance(database, str) and database.strip() and "://" not in database:
            audit["database"] = resolved(database)
    settings: NodeSettings = validated(NodeSettings, document, path)
    return settings
