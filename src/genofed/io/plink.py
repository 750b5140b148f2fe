"""PLINK 1 binary file sets (.bed/.bim/.fam), written one block of variants at a time."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from bed_reader import create_bed

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
