"""``node init``: validate a data holder's files and write its configuration and card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genofed._toml import write_toml
from genofed.errors import InputError
from genofed.node.dataset import NodeDataset
from genofed.node.settings import NodeSettings

__all__ = ["NodeInit", "init_node"]


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
) -> NodeInit:
    """Check a node's files, then write ``out/node.toml`` and ``out/public.toml``.

    Raises
    ------
    InputError
        If a file is unreadable or malformed, or no phenotype row matches a
        genotyped sample; nothing is written then.
    """
    bfile, phenotypes = Path(bfile).resolve(), Path(phenotypes).resolve()
    settings = NodeSettings.model_validate(
        {
            "node": {"name": name, "dataset_id": dataset_id or f"genofed:{name}"},
            "server": {"host": host, "port": port},
            "data": {"bfile": bfile, "phenotypes": phenotypes},
        }
    )
    dataset = NodeDataset(bfile, phenotypes)
    try:
        if dataset.phenotyped_samples == 0:
            raise InputError(
                f"none of the {len(dataset.table.iids):,} IIDs in {phenotypes} is in "
                f"{bfile.with_suffix('.fam')}; nothing was written"
            )
        report = NodeInit(
            config=Path(out) / "node.toml",
            card=Path(out) / "public.toml",
            settings=settings,
            genotyped_samples=len(dataset.iids),
            phenotype_rows=len(dataset.table.iids),
            matched_samples=dataset.phenotyped_samples,
            variants=len(dataset.variants),
            phenotypes=tuple(dataset.table.columns),
        )
    finally:
        dataset.close()
    Path(out).mkdir(parents=True, exist_ok=True)
    write_toml(
        report.config,
        settings.model_dump(mode="json", exclude_none=True),
        comment=f"genofed node {name}: private configuration. Serve with:\n"
        f"  genofed node serve {report.config}",
    )
    write_toml(
        report.card,
        {"name": name, "url": settings.server.url, "dataset_id": settings.node.dataset_id},
        comment=f"genofed node {name}: public card, for researchers' federation files",
    )
    return report
