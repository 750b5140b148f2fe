"""Covariate sets a node computed itself and keeps: per-sample values that never leave it.

A federated PCA leaves each node with its own samples' principal component
scores. The node stores them under a name (e.g. ``pcs``) in its state
directory, ``covariate-sets/``:

* ``<name>.npz``: the scores (``samples x k``, rows in .fam order, full
  precision) and what reproduces them (the variants used, their
  standardisation and the loadings);
* ``<name>.tsv``: the same scores as a table (``IID``, ``PC1`` ...), for the
  operator;
* ``<name>.json``: the run that made them, when, and the column names.

The JSON file is written last, so a set is complete when it is listed. A
GWAS names a set's columns as ``<name>:<column>``; the researcher's
``pcs:1-10`` is expanded to ``pcs:PC1`` ... ``pcs:PC10`` by
:func:`genofed.protocol.covariates.expand_covariates`.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed.errors import InputError
from genofed.io.phenotypes import write_phenotype_table
from genofed.protocol.messages import CovariateSetInfo
from genofed.report._atomic import staged_files

__all__ = ["CovariateSet", "CovariateSets"]

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True)
class CovariateSet:
    """A stored set: its run, its columns, and one row per .fam sample."""

    name: str
    info: CovariateSetInfo
    values: npt.NDArray[np.float64]  # (samples, columns), .fam order; NaN where none

    def column(self, name: str) -> npt.NDArray[np.float64]:
        """One column's values, in .fam order.

        Raises
        ------
        InputError
            If the set has no such column (the message lists its columns).
        """
        if name not in self.info.columns:
            raise InputError(
                f"covariate set {self.name!r} has no column {name!r}; it has "
                + ", ".join(self.info.columns)
            )
        column: npt.NDArray[np.float64] = self.values[:, self.info.columns.index(name)]
        return column


class CovariateSets:
    """The covariate sets in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, name: str) -> tuple[Path, Path, Path]:
        if not NAME.match(name):
            raise InputError(
                f"covariate set name {name!r} must be a letter then up to 31 letters, "
                "digits or underscores"
            )
        return tuple(self.directory / f"{name}.{suffix}" for suffix in ("npz", "tsv", "json"))  # type: ignore[return-value]

    def describe(self) -> dict[str, CovariateSetInfo]:
        """Every complete set: name -> its run and columns."""
        if not self.directory.is_dir():
            return {}
        sets = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                sets[path.stem] = CovariateSetInfo.model_validate_json(path.read_text())
            except ValueError:
                continue  # not a set this version wrote; left alone
        return sets

    def read(self, name: str, n_samples: int) -> CovariateSet:
        """Load a set for a dataset of ``n_samples`` (.fam rows).

        Raises
        ------
        InputError
            If there is no such set, or it was made for another sample list.
        """
        npz, _, meta = self._paths(name)
        if not meta.is_file():
            available = ", ".join(self.describe()) or "none yet; run genofed pca"
            raise InputError(f"this node has no covariate set {name!r} (it has: {available})")
        info = CovariateSetInfo.model_validate_json(meta.read_text())
        with np.load(npz, allow_pickle=False) as archive:
            values = archive["scores"]
        if values.shape != (n_samples, len(info.columns)):
            raise InputError(
                f"covariate set {name!r} has {values.shape[0]} rows for {n_samples} samples; "
                "the genotype files changed since it was made: run genofed pca again"
            )
        return CovariateSet(name, info, values)

    def write(
        self,
        name: str,
        info: CovariateSetInfo,
        iids: list[str],
        scores: npt.NDArray[np.float64],
        reproduce: dict[str, npt.NDArray[np.generic]],
    ) -> None:
        """Store a set, replacing one of the same name only once every file is written."""
        npz, tsv, meta = self._paths(name)
        with staged_files(npz, tsv, meta) as (npz_tmp, tsv_tmp, meta_tmp):
            with npz_tmp.open("wb") as handle:
                np.savez(handle, allow_pickle=False, scores=scores, **reproduce)
            write_phenotype_table(
                tsv_tmp, iids, {c: scores[:, i] for i, c in enumerate(info.columns)}
            )
            meta_tmp.write_text(json.dumps(info.model_dump(mode="json"), indent=2) + "\n")


def pca_info(run: str, eigenvalues: npt.NDArray[np.float64], n_variants: int) -> CovariateSetInfo:
    """Describe a PCA run's scores: columns ``PC1`` ... ``PCk``."""
    return CovariateSetInfo(
        run=run,
        computation="pca",
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        columns=[f"PC{i + 1}" for i in range(len(eigenvalues))],
        eigenvalues=[float(v) for v in eigenvalues],
        variants=n_variants,
    )
