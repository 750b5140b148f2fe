"""Progress reports from long-running library calls; the CLI draws them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """How far a long-running step has come, overall and optionally per part (e.g. node)."""

    stage: str
    done: int
    total: int
    parts: tuple[tuple[str, int], ...] = ()


ProgressCallback = Callable[[Progress], None]
