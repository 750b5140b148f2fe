"""Covariates from computed sets: ``pcs:1-10`` names columns a node keeps, not a table's.

A researcher writes ``SET:A-B`` (or ``SET:A``) among the covariates for
principal components ``A`` to ``B`` of the covariate set ``SET`` that a
federated PCA left at every node (``genofed pca --name SET``). The
coordinator expands it to ``SET:PC<A>`` ... ``SET:PC<B>``, the names a job
carries; each node reads those columns from its own stored set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from genofed.errors import InputError

__all__ = ["covariate_reference", "expand_covariates"]

_RANGE = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,31}):(\d+)(?:-(\d+))?$")
_COLUMN = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,31}):([A-Za-z0-9_]+)$")


def expand_covariates(names: Sequence[str]) -> list[str]:
    """Expand every ``SET:A-B`` into ``SET:PC<A>`` ... ``SET:PC<B>``; keep other names.

    Raises
    ------
    InputError
        If a range is empty or starts below 1.
    """
    expanded: list[str] = []
    for name in names:
        match = _RANGE.match(name)
        if match is None:
            expanded.append(name)
            continue
        first = int(match[2])
        last = int(match[3]) if match[3] is not None else first
        if first < 1 or last < first:
            raise InputError(f"covariate {name!r}: write SET:A-B with 1 <= A <= B, e.g. pcs:1-10")
        expanded.extend(f"{match[1]}:PC{i}" for i in range(first, last + 1))
    return expanded


def covariate_reference(name: str) -> tuple[str, str] | None:
    """Split ``SET:COLUMN`` into the set and the column; None for a table column."""
    match = _COLUMN.match(name)
    return (match[1], match[2]) if match else None
