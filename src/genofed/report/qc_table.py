"""The per-variant QC table that ``genofed qc`` writes, tab-separated.

Columns: ``chromosome base_pair_location variant_id effect_allele
other_allele effect_allele_frequency missing_count missing_rate hwe_p n
disclosure``. The effect allele is the counted ALT allele, as in the GWAS
output; ``n`` is the number of samples with a call. Floats are written as
the shortest text that reads back to the same float64; ``NA`` where a value
is undefined. ``disclosure`` is ``.``, or ``WITHHELD`` for a variant whose
counts the nodes did not release (a group of 1 to ``min_count - 1``
samples); its statistics are then ``NA``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed.report._atomic import staged_files
from genofed.report._chromosomes import to_gwas_ssf_codes

__all__ = ["QC_COLUMNS", "write_qc_table"]

QC_COLUMNS = (
    "chromosome",
    "base_pair_location",
    "variant_id",
    "effect_allele",
    "other_allele",
    "effect_allele_frequency",
    "missing_count",
    "missing_rate",
    "hwe_p",
    "n",
    "disclosure",
)
STATISTICS = ("effect_allele_frequency", "missing_count", "missing_rate", "hwe_p", "n")
_ROWS = 65_536  # rows formatted at a time


def write_qc_table(
    path: Path,
    variants: dict[str, npt.NDArray[np.generic]],
    columns: dict[str, npt.NDArray[np.generic]],
    withheld: npt.NDArray[np.bool_] | None = None,
) -> Path:
    """Write the QC table to ``path`` (under a temporary name, renamed when whole).

    Parameters
    ----------
    variants
        ``chromosome``, ``base_pair_location``, ``variant_id``,
        ``effect_allele`` and ``other_allele`` of every variant.
    columns
        ``effect_allele_frequency``, ``missing_count``, ``missing_rate``,
        ``hwe_p`` and ``n``, one value per variant.
    withheld
        The variants whose counts were withheld: ``NA`` statistics.
    """
    path = Path(path)
    values: dict[str, npt.NDArray[np.generic]] = {**variants, **columns}
    hidden = np.zeros(len(variants["variant_id"]), dtype=np.bool_) if withheld is None else withheld
    for name in STATISTICS:
        values[name] = np.where(hidden, "NA", np.asarray(values[name]).astype(object))
    values["disclosure"] = np.where(hidden, "WITHHELD", ".")
    values["chromosome"] = to_gwas_ssf_codes(np.asarray(variants["chromosome"]).astype(str))
    with staged_files(path) as (staging,), staging.open("w", encoding="utf-8") as handle:
        handle.write("\t".join(QC_COLUMNS) + "\n")
        total = len(values["variant_id"])
        for start in range(0, total, _ROWS):
            block = slice(start, start + _ROWS)
            text = [_strings(np.asarray(values[name])[block]) for name in QC_COLUMNS]
            handle.write("\n".join(map("\t".join, zip(*text, strict=True))) + "\n")
    return path


def _strings(values: npt.NDArray[np.generic]) -> list[str]:
    return [_text(value) for value in values.tolist()]


def _text(value: object) -> str:
    if isinstance(value, float):
        return "NA" if np.isnan(value) else repr(value)
    return str(value)
