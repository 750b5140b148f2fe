"""The node's phenotype table: tab-separated, header, ``IID`` first, numeric columns, ``NA``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed.errors import InputError

MISSING = "NA"


@dataclass(frozen=True)
class PhenotypeTable:
    """Sample IDs and one float64 array per column, NaN where missing."""

    iids: tuple[str, ...]
    columns: dict[str, npt.NDArray[np.float64]]


def _format_value(value: float) -> str:
    if math.isnan(value):
        return MISSING
    if value == int(value):
        return str(int(value))
    return f"{value:.10g}"


def write_phenotype_table(
    path: Path, iids: Sequence[str], columns: Mapping[str, npt.NDArray[np.float64]]
) -> None:
    """Write a phenotype table; NaN is written as ``NA``, whole numbers without decimals."""
    for name, values in columns.items():
        if len(values) != len(iids):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(iids)} samples")
    lines = ["\t".join(["IID", *columns])]
    rows = zip(*(values.tolist() for values in columns.values()), strict=True)
    lines.extend(
        "\t".join([iid, *map(_format_value, row)]) for iid, row in zip(iids, rows, strict=True)
    )
    Path(path).write_text("\n".join(lines) + "\n")


def read_phenotype_table(path: Path) -> PhenotypeTable:
    """Read and validate a phenotype table.

    Raises
    ------
    InputError
        Naming the file, and the row and column where possible, if the table
        is empty, has no ``IID`` first column, a repeated column or IID, a row
        with the wrong number of fields, or non-numeric values.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read phenotype table {path}: {exc}") from exc
    if not lines:
        raise InputError(f"phenotype table {path} is empty")
    header = lines[0].split("\t")
    if header[0] != "IID":
        raise InputError(
            f"phenotype table {path}: the first column must be 'IID', not {header[0]!r}"
        )
    names = header[1:]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"phenotype table {path}: column {repeated[0]!r} appears more than once")
    rows = [(number, line.split("\t")) for number, line in enumerate(lines[1:], 2) if line]
    for number, fields in rows:
        if len(fields) != len(header):
            raise InputError(
                f"phenotype table {path}, row {number}: {len(fields)} fields, "
                f"but the header has {len(header)}"
            )
    iids = tuple(fields[0] for _, fields in rows)
    seen: set[str] = set()
    for number, fields in rows:
        if fields[0] in seen:
            raise InputError(f"phenotype table {path}, row {number}: IID {fields[0]!r} repeated")
        seen.add(fields[0])
    columns = {name: _parse_column(path, name, j, rows) for j, name in enumerate(names, 1)}
    return PhenotypeTable(iids, columns)


def _parse_column(
    path: Path, name: str, index: int, rows: list[tuple[int, list[str]]]
) -> npt.NDArray[np.float64]:
    values = np.empty(len(rows))
    bad: list[tuple[int, str]] = []
    for i, (number, fields) in enumerate(rows):
        text = fields[index]
        if text == MISSING:
            values[i] = np.nan
            continue
        try:
            values[i] = float(text)
        except ValueError:
            bad.append((number, text))
        else:
            if not math.isfinite(values[i]):
                bad.append((number, text))
    if bad:
        number, text = bad[0]
        raise InputError(
            f"phenotype {name!r} has {len(bad)} non-numeric values in {path} "
            f"(first at row {number}: {text!r}); missing values must be written {MISSING}"
        )
    return values
