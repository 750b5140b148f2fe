"""Sums that add field by field: what a node returns and the coordinator totals."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self


class Summable:
    """Mixin for a dataclass of sums: ``a + b`` adds every field (arrays, numbers, sums)."""

    def __add__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        parts: list[Any] = [
            getattr(self, field.name) + getattr(other, field.name)
            for field in fields(self)  # type: ignore[arg-type]
        ]
        return type(self)(*parts)
