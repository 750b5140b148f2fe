"""Parts that several computations share: the variant-free sums and the blocks of variants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genofed.protocol.contract import Part

__all__ = ["Block", "Null"]


@dataclass(frozen=True)
class Null(Part):
    """The sums that no variant enters, computed first (e.g. of the covariates-only model)."""

    template: ClassVar[str] = "null"


@dataclass(frozen=True)
class Block(Part):
    """Block ``index`` of the node's variants, in their order, computed ahead and fetched."""

    index: int
    template: ClassVar[str] = "block/{index}"
