"""``node init``: validate a data holder's files and write its configuration and card."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genofed._toml import write_toml
from genofed.errors import InputError
from genofed.node.auth import PassportVerifier
from genofed.node.dataset import NodeDataset
from genofed.node.settings import NodeSettings, load_settings
from genofed.node.tls import create_certificate
from genofed.protocol.cards import read_card
from genofed.protocol.secagg import IdentityKey, parse_public_key
from genofed.protocol.tls import is_loopback

__all__ = ["NodeInit", "init_node", "trust_peers"]


@dataclass(frozen=True)
class NodeInit:
    """What ``node init`` wrote and found."""

    config: Path
    card: Path
    settings: NodeSettings
    genotyped_samples: int
    phenotype_rows: int
    matched_samples: int
    variants: int
    phenotypes: tuple[str, ...]


def init_node(
    name: str,
    *,
    bfile: Path,
    phenotypes: Path,
    out: Path,
    port: int = 8701,
    host: str = "127.0.0.1",
    dataset_id: str | None = None,
    trusted_issuers: Sequence[Path] = (),
    insecure: bool = False,
) -> NodeInit:
    """Check a node's files, then write ``out/node.toml`` and ``out/public.toml``.

    Unless ``insecure``, a TLS key and a self-signed certificate are written
    to ``out/tls/``; the certificate goes on the card, where researchers pin it.

    Raises
    ------
    InputError
        If a file is unreadable or malformed, no phenotype row matches a
        genotyped sample, or plain HTTP is asked for beyond loopback; nothing
        is written then.
    """
    if insecure and not is_loopback(host):
        raise InputError(
            f"plain HTTP is allowed only on loopback, not on {host!r}; drop --insecure"
        )
    out = Path(out).resolve()
    bfile, phenotypes = Path(bfile).resolve(), Path(phenotypes).resolve()
    document: dict[str, Any] = {
        "node": {
            "name": name,
            "dataset_id": dataset_id or f"genofed:{name}",
            "identity_key": out / "identity.pem",
        },
        "server": {"host": host, "port": port},
        "data": {"bfile": bfile, "phenotypes": phenotypes},
        "access": {"trusted_issuers": [Path(p).resolve() for p in trusted_issuers]},
        "aggregation": {"peers": out / "peers"},
    }
    if not insecure:
        document["tls"] = {"certificate": out / "tls" / "cert.pem", "key": out / "tls" / "key.pem"}
    settings = NodeSettings.model_validate(document)
    PassportVerifier(settings.access.trusted_issuers)  # a bad JWKS file stops init here
    dataset = NodeDataset(bfile, phenotypes)
    try:
        if dataset.phenotyped_samples == 0:
            raise InputError(
                f"none of the {len(dataset.table.iids):,} IIDs in {phenotypes} is in "
                f"{bfile.with_suffix('.fam')}; nothing was written"
            )
        report = NodeInit(
            config=out / "node.toml",
            card=out / "public.toml",
            settings=settings,
            genotyped_samples=len(dataset.iids),
            phenotype_rows=len(dataset.table.iids),
            matched_samples=dataset.phenotyped_samples,
            variants=len(dataset.variants),
            phenotypes=tuple(dataset.table.columns),
        )
    finally:
        dataset.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers").mkdir(exist_ok=True)
    card: dict[str, str] = {
        "name": name,
        "url": settings.url,
        "dataset_id": settings.node.dataset_id,
    }
    identity = out / "identity.pem"
    if not identity.exists():  # re-running init keeps the node's identity
        IdentityKey.generate().save(identity)
    card["identity_key"] = IdentityKey.load(identity).public_text()
    if settings.tls:
        hosts = [host, "localhost", "127.0.0.1"] if is_loopback(host) else [host]
        certificate, _ = create_certificate(name, hosts, out / "tls")
        card["certificate"] = certificate.read_text()
    write_toml(
        report.config,
        settings.model_dump(mode="json", exclude_none=True),
        comment=f"genofed node {name}: private configuration. Serve with:\n"
        f"  genofed node serve {report.config}",
    )
    write_toml(
        report.card,
        card,
        comment=f"genofed node {name}: public card, for researchers' federation files",
    )
    return report


def trust_peers(config: Path, cards: Sequence[Path]) -> list[str]:
    """Add other nodes' public cards to this node's peers for secure aggregation.

    Each card is copied to the ``[aggregation] peers`` directory as
    ``NAME.toml``; the node accepts study keys signed by the identity keys on
    these cards only. This node's own card is skipped. The node reads its
    peers when it starts.

    Returns
    -------
    list of str
        The names of the peers added or updated.

    Raises
    ------
    InputError
        If ``config`` has no peers directory, or a card is invalid or has no
        identity key; nothing is copied then.
    """
    settings = load_settings(config)
    directory = settings.aggregation.peers
    if directory is None:
        raise InputError(
            f'{config} has no peers directory; add peers = "peers" under [aggregation]'
        )
    checked = []
    for path in cards:
        card = read_card(path)
        if not card.identity_key:
            raise InputError(f"{path}: the card of {card.name} has no identity_key to trust")
        parse_public_key(card.identity_key)
        if card.name != settings.node.name:
            checked.append(card)
    directory.mkdir(parents=True, exist_ok=True)
    for card in checked:
        write_toml(
            directory / f"{card.name}.toml",
            card.model_dump(exclude_none=True),
            comment=f"genofed node {card.name}: a peer this node masks its sums with",
        )
    return [card.name for card in checked]
