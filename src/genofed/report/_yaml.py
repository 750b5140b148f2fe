"""A small YAML emitter for flat metadata files: no dependency, every string quoted.

Strings are written as double-quoted scalars with escapes, so no value can be
read back as a number, a boolean, a date or a null, or break the document,
whatever characters it holds. Mapping keys are written plain when they are
simple identifiers and quoted otherwise.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

YamlValue: TypeAlias = (
    "str | bool | int | float | datetime.date "
    "| Sequence[YamlValue] | Mapping[str, YamlValue] | None"
)

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
}
_INDENT = "  "


def _printable(code: int) -> bool:
    """YAML's printable characters, less those it reads as line breaks or a byte order mark."""
    if 0x20 <= code <= 0x7E:
        return True
    if 0xA0 <= code <= 0xD7FF:
        return code not in (0x2028, 0x2029)
    if 0xE000 <= code <= 0xFFFD:
        return code != 0xFEFF
    return 0x10000 <= code <= 0x10FFFF


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if _printable(code):
        return char
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(text: str) -> str:
    """Return ``text`` as a YAML double-quoted scalar."""
    return '"' + "".join(map(_escape, text)) + '"'


def scalar(value: YamlValue) -> str:
    """Return a scalar value as YAML; strings are always quoted."""
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a YAML scalar")


def _key(name: str) -> str:
    return name if _PLAIN_KEY.fullmatch(name) and name not in _RESERVED else quote(name)


# Plain keys that YAML 1.1 readers would take for booleans or nulls.
_RESERVED = frozenset(
    word
    for base in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
    for word in (base, base.capitalize(), base.upper())
)


def _is_scalar(value: YamlValue) -> bool:
    return isinstance(value, str) or not isinstance(value, Sequence | Mapping)


def _mapping(mapping: Mapping[str, YamlValue], indent: str) -> list[str]:
    lines: list[str] = []
    for name, value in mapping.items():
        head = f"{indent}{_key(name)}:"
        if _is_scalar(value):
            lines.append(f"{head} {scalar(value)}")
        elif isinstance(value, Mapping):
            if value:
                lines.append(head)
                lines.extend(_mapping(value, indent + _INDENT))
            else:
                lines.append(f"{head} {{}}")
        elif isinstance(value, Sequence) and value:
            lines.append(head)
            lines.extend(_sequence(value, indent + _INDENT))
        else:
            lines.append(f"{head} []")
    return lines


def _sequence(items: Sequence[YamlValue], indent: str) -> list[str]:
    lines: list[str] = []
    for item in items:
        if _is_scalar(item):
            lines.append(f"{indent}- {scalar(item)}")
        elif isinstance(item, Mapping) and item:
            nested = _mapping(item, indent + _INDENT)
            lines.append(f"{indent}- {nested[0].lstrip()}")
            lines.extend(nested[1:])
        else:
            raise TypeError("sequences may hold scalars and non-empty mappings only")
    return lines


def dump_sections(sections: Sequence[tuple[str, Mapping[str, YamlValue]]]) -> str:
    """Return a YAML document of top-level mappings, each under a ``# title`` comment.

    Parameters
    ----------
    sections
        ``(title, mapping)`` pairs; keys must be unique across all sections.
    """
    lines = ["---"]
    for number, (title, mapping) in enumerate(sections):
        if number:
            lines.append("")
        lines.append(f"# {title}")
        lines.extend(_mapping(mapping, ""))
    return "\n".join(lines) + "\n"
