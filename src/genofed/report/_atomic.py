"""Output files that appear complete or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_files(*targets: Path) -> Iterator[tuple[Path, ...]]:
    """Yield temporary siblings of ``targets``; rename them onto the targets on success.

    The caller writes each file in full to its temporary name. Only when the
    block exits without an exception are the files renamed, in the order
    given, each with an atomic ``os.replace``. On any exception the temporary
    files are removed and the targets, old versions included, are left as
    they were.
    """
    token = secrets.token_hex(4)
    staging = tuple(target.parent / f".{target.name}.partial-{token}" for target in targets)
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield staging
        for temporary in staging:
            _sync(temporary)
        for temporary, target in zip(staging, targets, strict=True):
            os.replace(temporary, target)
    except BaseException:
        for temporary in staging:
            temporary.unlink(missing_ok=True)
        raise


def _sync(path: Path) -> None:
    """Flush ``path`` to disk so a rename never publishes a file the disk has not got."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
