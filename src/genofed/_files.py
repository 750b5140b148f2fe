"""Write a whole output directory or nothing."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from genofed.errors import InputError


def check_output_directory(path: Path, *, force: bool) -> None:
    """Refuse to overwrite a non-empty directory unless ``force`` is set.

    Raises
    ------
    InputError
        If ``path`` is a file, or a non-empty directory and ``force`` is false.
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"output path {path} exists and is not a directory; nothing was written")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise InputError(
            f"output directory {path} exists and is not empty; "
            "pass --force to replace it (nothing was written)"
        )


@contextlib.contextmanager
def atomic_directory(path: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` that is renamed to ``path`` on success.

    On any exception the temporary directory is removed, so a failed or
    interrupted run leaves ``path`` as it was.
    """
    path = Path(path)
    check_output_directory(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir()  # unlike mkdtemp, keeps the user's umask
    try:
        yield staging
        check_output_directory(path, force=force)
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            path.rename(retired / path.name)
            staging.rename(path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
