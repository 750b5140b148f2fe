"""A local federation for the benchmarks: nodes over written file sets, and what they send."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed.aai import init_issuer, issue_passport
from genofed.coordinator import Federation, create_federation
from genofed.node.audit import open_audit_log
from genofed.node.local import free_port
from genofed.node.setup import init_node, trust_peers


@dataclass(frozen=True)
class LocalFederation:
    """Node configs (to start with ``LocalNodes``), the federation and a passport for all."""

    configs: list[Path]
    federation: Federation
    passport: str
    node_dirs: list[Path]

    def megabytes_sent(self) -> dict[str, float]:
        """Bytes each node returned, from its audit log, in MB."""
        sent = {}
        for directory in self.node_dirs:
            with open_audit_log(directory / "node" / "audit.sqlite3") as log:
                sent[directory.name] = sum(r.bytes_returned for r in log.records()) / 1e6
        return sent


def local_federation(node_dirs: list[Path], out: Path) -> LocalFederation:
    """Set up a TLS node per directory (``genotypes`` + ``phenotypes.tsv``), peers of each other."""
    issuer = init_issuer(out / "aai")
    cards, configs = [], []
    for directory in node_dirs:
        init = init_node(
            directory.name,
            bfile=directory / "genotypes",
            phenotypes=directory / "phenotypes.tsv",
            out=directory / "node",
            port=free_port(),
            trusted_issuers=[issuer.jwks],
        )
        cards.append(init.card)
        configs.append(init.config)
    for config in configs:
        trust_peers(config, cards)
    federation = create_federation(cards, out / "federation.toml")
    grants = [f"genofed:{d.name}" for d in node_dirs]
    passport = issue_passport(issuer.directory, user="bench@genofed.test", grants=grants)
    return LocalFederation(configs, federation, passport, node_dirs)


def verification(verify_seconds: float, seconds: float) -> str:
    """The verifiers' time (replaying requests, checking and releasing totals) and its share."""
    return f"verification {verify_seconds:.2f} s ({verify_seconds / seconds:.1%} of the study)"


def disclosure_shares(labels: npt.NDArray[np.generic]) -> str:
    """Share of rows per disclosure treatment (exact, imputed, withheld)."""
    counts = Counter(np.asarray(labels).tolist())
    names = {".": "exact", "IMPUTED": "imputed", "WITHHELD": "withheld"}
    return ", ".join(f"{name} {counts[label] / len(labels):.1%}" for label, name in names.items())
