"""Read and write the small TOML files genofed keeps: node, card and federation.

Reading uses :mod:`tomllib`; the writer covers what those files need: tables,
arrays of tables, and strings, numbers, booleans and lists of them as values.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genofed.errors import InputError

__all__ = ["dumps", "read_toml", "write_toml"]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, list) and bool(value) and all(isinstance(x, Mapping) for x in value)
    )


def _pairs(table: Mapping[str, Any]) -> list[str]:
    return [f"{key} = {_value(v)}" for key, v in table.items() if not _is_table(v)]


def dumps(document: Mapping[str, Any], *, comment: str = "") -> str:
    """Format ``document`` as TOML: top-level values, then tables and arrays of tables."""
    lines = [f"# {line}" if line else "#" for line in comment.splitlines()]
    if lines:
        lines.append("")
    lines += _pairs(document)
    for key, value in document.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{key}]", *_pairs(value)]
        elif _is_table(value):
            for item in value:
                lines += ["", f"[[{key}]]", *_pairs(item)]
    text = "\n".join(lines).strip("\n") + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def write_toml(path: Path, document: Mapping[str, Any], *, comment: str = "") -> None:
    """Write ``document`` to ``path`` under a temporary name, then rename it into place."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial")
    staging.write_text(dumps(document, comment=comment))
    staging.replace(path)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; errors name the file and what is wrong."""
    try:
        with Path(path).open("rb") as stream:
            return tomllib.load(stream)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from exc
