"""GWAS-SSF v1.0: the GWAS Catalog's summary statistics format.

A result is two files: ``PREFIX.tsv``, a tab-separated table of one row per
variant, and ``PREFIX.tsv-meta.yaml``, which describes the study and holds
the table's md5 checksum. The first eight columns are the mandatory GWAS-SSF
fields in the order the specification fixes; ``variant_id`` and ``n`` follow.
Missing values are written ``NA``. Floats are written with the fewest digits
that read back to the same float64 (Python's ``repr``), so a written table
reads back bit for bit.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from genofed.errors import InputError
from genofed.report import _yaml
from genofed.report._atomic import staged_files
from genofed.report._chromosomes import genome_order, to_gwas_ssf_codes

__all__ = ["GwasMetadata", "GwasTable", "read_gwas_ssf", "write_gwas_ssf"]

FILE_TYPE = "GWAS-SSF v1.0"
MISSING = "NA"
COLUMNS = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "p_value",
    "variant_id",
    "n",
)
MANDATORY_COLUMNS = COLUMNS[:8]
EFFECTS = ("beta", "odds_ratio")  # the fifth column: a linear or a logistic model's effect
_STRING_COLUMNS = ("chromosome", "effect_allele", "other_allele", "variant_id")
_INT_COLUMNS = ("base_pair_location", "n")
_FLOAT_COLUMNS = ("beta", "standard_error", "effect_allele_frequency", "p_value")
_DTYPES: dict[str, type[np.str_] | type[np.int64] | type[np.float64]] = {
    name: np.str_ if name in _STRING_COLUMNS else np.int64 if name in _INT_COLUMNS else np.float64
    for name in COLUMNS
}
_MISSING_ON_READ = frozenset({"NA", "#NA"})
_BLOCK_ROWS = 1 << 16

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]


@dataclass(frozen=True, eq=False, init=False)
class GwasTable:
    """One row per variant of a GWAS, as equal-length 1-D arrays.

    The effect is that of one copy of ``effect_allele``; NaN in a float
    column means the value could not be estimated. Any array-like is
    accepted on construction and converted to the dtypes below.

    Attributes
    ----------
    chromosome, effect_allele, other_allele, variant_id
        Strings.
    base_pair_location, n
        int64; ``n`` is the number of samples the variant was tested on.
    beta, standard_error, effect_allele_frequency, p_value
        float64, NaN where not estimable.
    """

    chromosome: StrArray
    base_pair_location: IntArray
    effect_allele: StrArray
    other_allele: StrArray
    beta: FloatArray
    standard_error: FloatArray
    effect_allele_frequency: FloatArray
    p_value: FloatArray
    variant_id: StrArray
    n: IntArray
    effect: str  # "beta", or "odds_ratio" for a logistic model (``beta`` is then log OR)
    extra: dict[str, npt.NDArray[np.generic]]  # columns written after ``n``

    def __init__(
        self,
        chromosome: npt.ArrayLike,
        base_pair_location: npt.ArrayLike,
        effect_allele: npt.ArrayLike,
        other_allele: npt.ArrayLike,
        beta: npt.ArrayLike,
        standard_error: npt.ArrayLike,
        effect_allele_frequency: npt.ArrayLike,
        p_value: npt.ArrayLike,
        variant_id: npt.ArrayLike,
        n: npt.ArrayLike,
        *,
        effect: str = "beta",
        extra: Mapping[str, npt.ArrayLike] | None = None,
    ) -> None:
        if effect not in EFFECTS:
            raise InputError(f"a GWAS table's effect is one of {EFFECTS}, not {effect!r}")
        object.__setattr__(self, "effect", effect)
        given = {
            "chromosome": chromosome,
            "base_pair_location": base_pair_location,
            "effect_allele": effect_allele,
            "other_allele": other_allele,
            "beta": beta,
            "standard_error": standard_error,
            "effect_allele_frequency": effect_allele_frequency,
            "p_value": p_value,
            "variant_id": variant_id,
            "n": n,
        }
        lengths = {}
        for name, raw in given.items():
            dtype = _DTYPES[name]
            try:
                values = np.asarray(raw, dtype=dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InputError(
                    f"GWAS table column {name!r} is not {dtype.__name__}: {exc}"
                ) from exc
            if values.ndim != 1:
                raise InputError(
                    f"GWAS table column {name!r} has shape {values.shape}; it must be 1-D"
                )
            object.__setattr__(self, name, values)
            lengths[name] = len(values)
        more = {name: np.asarray(values) for name, values in (extra or {}).items()}
        for name, values in more.items():
            if name in COLUMNS or name in EFFECTS or values.ndim != 1:
                raise InputError(f"extra GWAS table column {name!r} is a standard name or not 1-D")
            lengths[name] = len(values)
        object.__setattr__(self, "extra", more)
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{name}={length}" for name, length in lengths.items())
            raise InputError(f"GWAS table columns differ in length ({described})")

    def __len__(self) -> int:
        return len(self.variant_id)

    def take(self, index: npt.ArrayLike) -> GwasTable:
        """Return the rows at ``index`` (integer positions or a boolean mask), in that order."""
        rows = np.asarray(index)
        return GwasTable(
            **{name: getattr(self, name)[rows] for name in COLUMNS},
            effect=self.effect,
            extra={name: values[rows] for name, values in self.extra.items()},
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The header this table is written with."""
        effect = ("odds_ratio",) if self.effect == "odds_ratio" else ("beta",)
        return (*COLUMNS[:4], *effect, *COLUMNS[5:], *self.extra)

    def column(self, name: str) -> npt.NDArray[np.generic]:
        """Return the values written under ``name``; ``odds_ratio`` is exp(beta)."""
        if name == "odds_ratio":
            return np.asarray(np.exp(self.beta))
        return self.extra[name] if name in self.extra else np.asarray(getattr(self, name))


def _genofed_version() -> str:
    return importlib_metadata.version("genofed")


@dataclass(frozen=True)
class GwasMetadata:
    """What the metadata file says about a GWAS beyond its table.

    Attributes
    ----------
    trait
        The phenotype analysed, as named in the phenotype tables.
    covariates
        The covariates the model adjusted for (not the intercept).
    sample_size_per_node
        Samples analysed at each node, by node name.
    total_sample_size
        Samples analysed over all nodes.
    model
        The association model, e.g. ``"linear"``.
    software_name, software_version
        The analysis software; genofed and its installed version by default.
    genome_assembly
        The assembly the positions refer to.
    date
        The date the results were produced; today by default.
    analysis_description
        Free text for the reader, written as GWAS-SSF ``author_notes``.
    covariate_sets
        The computed covariate sets used (e.g. ``pcs``) and the run that
        made each (a ``genofed pca`` run id).
    """

    trait: str
    covariates: tuple[str, ...]
    sample_size_per_node: Mapping[str, int]
    total_sample_size: int
    model: str = "linear"
    software_name: str = "genofed"
    software_version: str = field(default_factory=_genofed_version)
    genome_assembly: str = "GRCh38"
    date: datetime.date = field(default_factory=datetime.date.today)
    analysis_description: str | None = None
    covariate_sets: Mapping[str, str] = field(default_factory=dict)


def write_gwas_ssf(prefix: Path, table: GwasTable, metadata: GwasMetadata) -> tuple[Path, Path]:
    """Write ``PREFIX.tsv`` and ``PREFIX.tsv-meta.yaml`` in GWAS-SSF v1.0.

    Rows are written in the order given. Chromosome names are written as
    GWAS-SSF numbers (``chr7`` as ``7``, ``X`` as ``23``, ``Y`` as ``24``,
    ``MT`` as ``25``); a name GWAS-SSF has no number for is written as it is.
    Both files are written under temporary names and renamed into place
    only when both are complete, so a failed run leaves any earlier result
    untouched.

    Parameters
    ----------
    prefix
        Output path without the ``.tsv`` suffix; its directory is created.
    table
        The per-variant results.
    metadata
        The study description for the metadata file.

    Returns
    -------
    tuple of Path
        The data file and the metadata file.

    Raises
    ------
    InputError
        If a text field is empty or holds a tab or line break, or a p-value or
        allele frequency lies outside [0, 1]; nothing is written.
    """
    prefix = Path(prefix)
    data_path = prefix.parent / f"{prefix.name}.tsv"
    meta_path = prefix.parent / f"{prefix.name}.tsv-meta.yaml"
    _check_writable(table)
    chromosome = to_gwas_ssf_codes(table.chromosome)
    with staged_files(data_path, meta_path) as (data_staging, meta_staging):
        with data_staging.open("xb") as handle:
            md5sum = _write_rows(handle, table, chromosome)
        yaml = _metadata_yaml(
            metadata,
            data_file_name=data_path.name,
            md5sum=md5sum,
            is_sorted=_is_sorted(chromosome, table.base_pair_location),
        )
        with meta_staging.open("xb") as handle:
            handle.write(yaml.encode("utf-8"))
    return data_path, meta_path


def _check_writable(table: GwasTable) -> None:
    for name in _STRING_COLUMNS:
        values: StrArray = getattr(table, name)
        bad = np.strings.str_len(values) == 0
        for forbidden in ("\t", "\n", "\r"):
            bad |= np.strings.find(values, forbidden) >= 0
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                f"GWAS table column {name!r} has {int(bad.sum())} values that are empty or "
                f"hold a tab or line break (first at index {row}: {str(values[row])!r}); "
                "nothing was written"
            )
    for name in ("p_value", "effect_allele_frequency"):
        probabilities: FloatArray = getattr(table, name)
        with np.errstate(invalid="ignore"):
            bad = (probabilities < 0) | (probabilities > 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                f"GWAS table column {name!r} has {int(bad.sum())} values outside [0, 1] "
                f"(first at index {row}: {float(probabilities[row])!r}); nothing was written"
            )


def _float_strings(values: FloatArray) -> list[str]:
    """Shortest round-trip text of each float, ``NA`` for NaN."""
    text = list(map(repr, values.tolist()))
    for row in np.flatnonzero(np.isnan(values)).tolist():
        text[row] = MISSING
    return text


def _write_rows(handle: BinaryIO, table: GwasTable, chromosome: StrArray) -> str:
    """Write the header and every row; return the md5 hex digest of what was written."""
    digest = hashlib.md5(usedforsecurity=False)

    def emit(text: str) -> None:
        data = text.encode("utf-8")
        digest.update(data)
        handle.write(data)

    emit("\t".join(table.columns) + "\n")
    for start in range(0, len(table), _BLOCK_ROWS):
        block = slice(start, start + _BLOCK_ROWS)
        columns: list[list[str]] = []
        for name in table.columns:
            values = chromosome[block] if name == "chromosome" else table.column(name)[block]
            if values.dtype.kind == "f":
                columns.append(_float_strings(np.asarray(values, dtype=np.float64)))
            elif values.dtype.kind == "b":
                columns.append(["Y" if v else "N" for v in values.tolist()])
            else:
                columns.append(list(map(str, values.tolist())))
        emit("\n".join(map("\t".join, zip(*columns, strict=True))) + "\n")
    return digest.hexdigest()


def _is_sorted(chromosome: StrArray, position: IntArray) -> bool:
    """Whether rows run in genome order: chromosomes in natural order, positions ascending."""
    _, rank = genome_order(chromosome)
    rank_step = np.diff(rank)
    position_step = np.diff(position)
    return bool(np.all((rank_step > 0) | ((rank_step == 0) & (position_step >= 0))))


def _metadata_yaml(
    metadata: GwasMetadata, *, data_file_name: str, md5sum: str, is_sorted: bool
) -> str:
    study: dict[str, _yaml.YamlValue] = {}
    if metadata.analysis_description is not None:
        study["author_notes"] = metadata.analysis_description
    study["date_last_modified"] = metadata.date
    sections: list[tuple[str, dict[str, _yaml.YamlValue]]] = [
        ("Study meta-data", study),
        ("Trait information", {"trait_description": [metadata.trait]}),
        (
            "Genotyping information",
            {"genome_assembly": metadata.genome_assembly, "coordinate_system": "1-based"},
        ),
        ("Sample information", {"samples": [{"sample_size": int(metadata.total_sample_size)}]}),
        (
            "Summary statistics information",
            {
                "data_file_name": data_file_name,
                "file_type": FILE_TYPE,
                "data_file_md5sum": md5sum,
                "analysis_software": f"{metadata.software_name} {metadata.software_version}",
                "adjusted_covariates": list(metadata.covariates),
            },
        ),
        ("Harmonisation status", {"is_harmonised": False, "is_sorted": is_sorted}),
        (
            "Federated analysis (fields beyond GWAS-SSF)",
            {
                "analysis_model": metadata.model,
                "sample_size_per_node": {
                    str(node): int(size) for node, size in metadata.sample_size_per_node.items()
                },
                **(
                    {"covariate_sets": {k: str(v) for k, v in metadata.covariate_sets.items()}}
                    if metadata.covariate_sets
                    else {}
                ),
            },
        ),
    ]
    return _yaml.dump_sections(sections)


def read_gwas_ssf(path: Path) -> GwasTable:
    """Read a GWAS-SSF data file (optionally gzip-compressed) into a :class:`GwasTable`.

    The first eight columns must be the mandatory GWAS-SSF fields in order;
    ``variant_id`` and ``n`` may come anywhere after them, and other columns
    are read as text into :attr:`GwasTable.extra`. ``NA`` and ``#NA`` read
    as NaN.

    Parameters
    ----------
    path
        The ``.tsv`` (or ``.tsv.gz``) file.

    Returns
    -------
    GwasTable
        The rows in file order.

    Raises
    ------
    InputError
        Naming the file, and the row and column where possible, if the file
        cannot be read, its header is not GWAS-SSF, a row has the wrong number
        of fields, or a value is not a number where one is required.
    """
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as compressed:
                raw = compressed.read()
        else:
            raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"cannot read GWAS-SSF file {path}: {exc}") from exc
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputError(f"GWAS-SSF file {path} is empty")
    header = lines[0].split("\t")
    effect = "odds_ratio" if header[4:5] == ["odds_ratio"] else "beta"
    if effect == "odds_ratio":
        header[4] = "beta"
    positions = _column_positions(path, header)
    body = lines[1:]
    expected_tabs = len(header) - 1
    for row, line in enumerate(body, 2):
        if line.count("\t") != expected_tabs:
            raise InputError(
                f"GWAS-SSF file {path}, row {row}: {line.count(chr(9)) + 1} fields, "
                f"but the header has {len(header)}"
            )
    cells = "\t".join(body).split("\t") if body else []
    columns: dict[str, Any] = {}
    for name, position in positions.items():
        values = cells[position :: len(header)]
        if name in _FLOAT_COLUMNS:
            columns[name] = _parse_floats(path, name, values)
        elif name in _INT_COLUMNS:
            columns[name] = _parse_ints(path, name, values)
        else:
            columns[name] = np.array(values, dtype=np.str_)
    if effect == "odds_ratio":
        with np.errstate(divide="ignore"):
            columns["beta"] = np.log(columns["beta"])
    known = set(positions.values())
    extra = {
        name: np.array(cells[position :: len(header)], dtype=np.str_)
        for position, name in enumerate(header)
        if position not in known
    }
    return GwasTable(**columns, effect=effect, extra=extra)


def _column_positions(path: Path, header: list[str]) -> dict[str, int]:
    for number, (found, wanted) in enumerate(zip(header, MANDATORY_COLUMNS, strict=False), 1):
        if found != wanted:
            raise InputError(
                f"GWAS-SSF file {path}: header column {number} is {found!r}, "
                f"but GWAS-SSF requires {wanted!r} there"
            )
    if len(header) < len(MANDATORY_COLUMNS):
        missing = MANDATORY_COLUMNS[len(header)]
        raise InputError(f"GWAS-SSF file {path}: the header has no column {missing!r}")
    positions = {name: number for number, name in enumerate(MANDATORY_COLUMNS)}
    for name in COLUMNS[len(MANDATORY_COLUMNS) :]:
        if name not in header:
            raise InputError(f"GWAS-SSF file {path}: the header has no column {name!r}")
        positions[name] = header.index(name)
    return positions


def _parse_floats(path: Path, name: str, values: list[str]) -> FloatArray:
    text = np.array(values, dtype=np.str_)
    text = np.where((text == "NA") | (text == "#NA"), "nan", text)  # widens "<U2" arrays
    try:
        return text.astype(np.float64)
    except ValueError:
        pass
    for row, value in enumerate(values, 2):
        if value not in _MISSING_ON_READ and not _converts(value, np.float64):
            raise InputError(
                f"GWAS-SSF file {path}, row {row}, column {name!r}: {value!r} is not a number"
            )
    raise InputError(f"GWAS-SSF file {path}, column {name!r}: values are not numbers")


def _parse_ints(path: Path, name: str, values: list[str]) -> IntArray:
    try:
        return np.array(values, dtype=np.str_).astype(np.int64)
    except (ValueError, OverflowError):
        pass
    for row, value in enumerate(values, 2):
        if not _converts(value, np.int64):
            raise InputError(
                f"GWAS-SSF file {path}, row {row}, column {name!r}: {value!r} is not a whole number"
            )
    raise InputError(f"GWAS-SSF file {path}, column {name!r}: values are not whole numbers")


def _converts(value: str, dtype: type[np.float64] | type[np.int64]) -> bool:
    """Whether numpy reads ``value`` as ``dtype`` (the check behind a row-level message)."""
    try:
        np.array([value], dtype=np.str_).astype(dtype)
    except (ValueError, OverflowError):
        return False
    return True
