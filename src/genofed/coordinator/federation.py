"""``federation.toml``: the nodes a researcher's studies run on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genofed._toml import read_toml, write_toml
from genofed.errors import InputError
from genofed.protocol.cards import PublicCard, read_card

__all__ = ["Federation", "create_federation", "read_federation"]


@dataclass(frozen=True)
class Federation:
    """The nodes of a federation, from their public cards."""

    nodes: tuple[PublicCard, ...]

    def __post_init__(self) -> None:
        if not self.nodes:
            raise InputError("a federation needs at least one node")
        for attribute in ("name", "url"):
            values = [getattr(card, attribute) for card in self.nodes]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise InputError(
                    f"two nodes of the federation share the {attribute} {repeated[0]!r}"
                )


def create_federation(cards: Sequence[Path], out: Path) -> Federation:
    """Collect nodes' ``public.toml`` cards into ``out`` (``federation.toml``).

    Raises
    ------
    InputError
        Naming the card that is unreadable or invalid, or two nodes with the
        same name or URL; nothing is written then.
    """
    federation = Federation(tuple(read_card(path) for path in cards))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_toml(
        Path(out),
        {"nodes": [card.model_dump() for card in federation.nodes]},
        comment="genofed federation: the nodes a study runs on",
    )
    return federation


def read_federation(path: Path) -> Federation:
    """Read ``federation.toml``; errors name the file and the node entry."""
    document = read_toml(path)
    entries = document.get("nodes")
    if not isinstance(entries, list) or not entries:
        raise InputError(
            f"{path}: no [[nodes]] entries; create it with `genofed federation create`"
        )
    cards = []
    for number, entry in enumerate(entries, 1):
        try:
            cards.append(PublicCard.model_validate(entry))
        except ValueError as exc:
            raise InputError(f"{path}: node entry {number} is invalid: {exc}") from None
    try:
        return Federation(tuple(cards))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
