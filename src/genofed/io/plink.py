"""PLINK 1 binary file sets: .bim/.fam readers, and a writer one block of variants at a time."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from bed_reader import create_bed

from genofed.errors import InputError

MISSING_CALL = np.int8(-127)  # bed-reader's code for a missing int8 genotype


@dataclass(frozen=True)
class VariantInfo:
    """The .bim columns of a set of variants; ``allele_1`` is the counted (ALT) allele."""

    chromosome: npt.NDArray[np.str_]
    variant_id: npt.NDArray[np.str_]
    cm_position: npt.NDArray[np.float64]
    bp_position: npt.NDArray[np.int64]
    allele_1: npt.NDArray[np.str_]
    allele_2: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.variant_id)


class BedWriter:
    """Stream variants into a PLINK .bed/.bim/.fam file set.

    Dosages are int8 counts of ``allele_1`` (0, 1, 2) with ``MISSING_CALL``
    for a missing call. The .bed file appears only when every variant has
    been written and :meth:`close` succeeds.
    """

    def __init__(
        self,
        prefix: Path,
        *,
        iids: list[str],
        sexes: npt.NDArray[np.int8],
        variants: VariantInfo,
    ) -> None:
        prefix = Path(prefix)
        self._writer = create_bed(
            prefix.with_suffix(".bed"),
            iid_count=len(iids),
            sid_count=len(variants),
            properties={
                "fid": iids,
                "iid": iids,
                "sex": sexes,
                "pheno": ["-9"] * len(iids),
                "chromosome": variants.chromosome,
                "sid": variants.variant_id,
                "cm_position": variants.cm_position,
                "bp_position": variants.bp_position,
                "allele_1": variants.allele_1,
                "allele_2": variants.allele_2,
            },
            count_A1=True,
        )

    def write_block(self, dosages: npt.NDArray[np.int8]) -> None:
        """Write a (variants x samples) block of dosages."""
        for row in dosages:
            self._writer.write(row)

    def close(self) -> None:
        """Finish the .bed file; raises if fewer variants were written than declared."""
        self._writer.close()

    def abort(self) -> None:
        """Discard the partly written .bed file."""
        with contextlib.suppress(Exception):
            self._writer.close()

    def __enter__(self) -> BedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_fam(path: Path) -> tuple[str, ...]:
    """Return the IIDs of a .fam file, in file order.

    Raises
    ------
    InputError
        Naming the file and row, if a row has fewer than 6 fields or an IID repeats.
    """
    iids: list[str] = []
    seen: set[str] = set()
    for number, fields in _rows(path, minimum=6):
        iid = fields[1]
        if iid in seen:
            raise InputError(f"{path}, row {number}: IID {iid!r} appears more than once")
        seen.add(iid)
        iids.append(iid)
    return tuple(iids)


def read_bim(path: Path) -> VariantInfo:
    """Return the variants of a .bim file, in file order.

    Raises
    ------
    InputError
        Naming the file and row, if a row has fewer than 6 fields or a bad position.
    """
    rows = _rows(path, minimum=6)
    columns = list(zip(*(fields[:6] for _, fields in rows), strict=True)) or [()] * 6
    try:
        cm = np.array(columns[2], dtype=np.float64)
        bp = np.array(columns[3], dtype=np.int64)
    except ValueError:
        for number, fields in rows:
            try:
                float(fields[2]), int(fields[3])
            except ValueError:
                raise InputError(
                    f"{path}, row {number}: position {fields[3]!r} is not a whole number"
                ) from None
        raise
    return VariantInfo(
        chromosome=np.array(columns[0], dtype=str),
        variant_id=np.array(columns[1], dtype=str),
        cm_position=cm,
        bp_position=bp,
        allele_1=np.array(columns[4], dtype=str),
        allele_2=np.array(columns[5], dtype=str),
    )


def _rows(path: Path, *, minimum: int) -> list[tuple[int, list[str]]]:
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    rows = [(number, line.split()) for number, line in enumerate(lines, 1) if line.strip()]
    for number, fields in rows:
        if len(fields) < minimum:
            raise InputError(
                f"{path}, row {number}: {len(fields)} fields, expected at least {minimum}"
            )
    return rows
