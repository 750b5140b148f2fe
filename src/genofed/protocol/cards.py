"""A node's public card (``public.toml``): what researchers and peers know of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genofed._toml import read_toml
from genofed.errors import InputError

__all__ = ["NodeName", "PublicCard", "read_card", "validated"]

NodeName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class PublicCard(BaseModel):
    """``public.toml``: what a node hands to researchers and to the operators of its peers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: NodeName
    url: str
    dataset_id: str
    certificate: str | None = None  # PEM; the only certificate a coordinator accepts
    identity_key: str | None = None  # base64 Ed25519 public key, for secure aggregation


def validated(model: type[Any], document: dict[str, Any], path: Path) -> Any:
    """Validate a TOML document against ``model``; errors name the file and every key.

    Raises
    ------
    InputError
        Listing each key that is missing, unknown or invalid.
    """
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"{path}: {problems}") from None


def read_card(path: Path) -> PublicCard:
    """Read a node's ``public.toml``."""
    card: PublicCard = validated(PublicCard, read_toml(path), Path(path))
    return card
