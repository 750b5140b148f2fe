"""``linear-gwas`` version 1: the sums of an exact linear-regression GWAS.

Parts, each a dict of named arrays that a node masks as a whole:

``null``
    C'C, C'y, y'y and n of the study's samples (``C`` the covariates with the
    intercept first, ``y`` the phenotype).
``block/<i>``
    C'g, g'g, g'y over the called samples and the count of missing calls of
    each variant of block i; with them, for the verifier only, the genotype
    groups' sizes, the same sums with missing calls replaced by the node's
    mean dosage, and how the node's missing-call group of the variant stands
    to those released before (:mod:`genofed.node.missing_groups`). The verifier
    releases per variant (``treatment``) the exact sums, the imputed ones,
    or nothing (:class:`~genofed.protocol.contract.Treatment`).
``block/<i>/missing``
    For the variants released exactly with a missing call somewhere in the
    federation, the missing-call samples' own c c' (packed upper triangle),
    c y and y^2.

The coordinator solves each variant's regression on its called samples
(:func:`genofed.kernels.linreg.solve_linear`), as PLINK 2 does; an imputed
variant's on every sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.kernels.linreg import NullSums, VariantSums
from genofed.protocol.computations._parts import Block, Null
from genofed.protocol.contract import (
    Array,
    Arrays,
    Contract,
    Kind,
    Part,
    PartSpec,
    Rule,
    Totals,
    block_width,
    triangle,
)
from genofed.protocol.messages import ColumnName

__all__ = [
    "CONTRACT",
    "Block",
    "BlockMissing",
    "LinearGwasParameters",
    "Null",
    "block_arrays",
    "missing_arrays",
    "null_arrays",
    "null_from_totals",
    "variant_sums_from_totals",
]

FloatArray = npt.NDArray[np.float64]


class LinearGwasParameters(BaseModel):
    """Parameters of ``linear-gwas`` version 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phenotype: ColumnName
    covariates: list[ColumnName] = Field(default_factory=list, max_length=64)
    block_size: int = Field(ge=1, le=65_536)


@dataclass(frozen=True)
class BlockMissing(Part):
    """The missing-call samples' sums of some variants of block ``index``."""

    index: int
    template: ClassVar[str] = "block/{index}/missing"


def _dimensions(
    parameters: LinearGwasParameters,
    part: Part,
    request: Mapping[str, npt.NDArray[np.generic]] | None,
    variants: int,
) -> dict[str, int]:
    k = len(parameters.covariates) + 1
    dims = {"k": k, "t": triangle(k)}
    if isinstance(part, Block | BlockMissing):
        dims["v"] = block_width(part.index, parameters.block_size, variants)
    return dims


CONTRACT = Contract(
    name="linear-gwas",
    version=2,
    summary=(
        "Sufficient statistics of a linear-regression GWAS, masked for secure aggregation: "
        "C'C, C'y, y'y and n once, then C'g, g'g, g'y and the missing-call count per "
        "variant, and the missing-call samples' own sums of the variants asked for."
    ),
    parameters=LinearGwasParameters,
    dimensions=_dimensions,
    parts=(
        PartSpec(
            Null,
            "C'C, C'y, y'y and n over the study's samples",
            answer=(
                Array("ctc", Kind.FLOAT, ("k", "k")),
                Array("cty", Kind.FLOAT, ("k",)),
                Array("yty", Kind.FLOAT),
                Array("n", Kind.COUNT),
            ),
        ),
        PartSpec(
            Block,
            "C'g, g'g and g'y over each variant's called samples, and its missing calls",
            answer=(
                Array("ctg", Kind.FLOAT, ("v", "k")),
                Array("gtg", Kind.FLOAT, ("v",)),
                Array("gty", Kind.FLOAT, ("v",)),
                Array("n_missing", Kind.COUNT, ("v",)),
                Array("groups", Kind.COUNT, ("v", 4), doc="samples with ALT dosage 0, 1, 2, none"),
                Array("ctg_imputed", Kind.FLOAT, ("v", "k"), doc="missing calls at the mean"),
                Array("gtg_imputed", Kind.FLOAT, ("v",)),
                Array("gty_imputed", Kind.FLOAT, ("v",)),
                Array("unique", Kind.FLAG, ("v",), doc="missing-call group apart from all before"),
                Array("close", Kind.FLAG, ("v",), doc="sums near another cohort's here"),
            ),
            released=(
                Array("ctg", Kind.FLOAT, ("v", "k"), doc="exact or imputed, per treatment"),
                Array("gtg", Kind.FLOAT, ("v",)),
                Array("gty", Kind.FLOAT, ("v",)),
                Array("n_missing", Kind.COUNT, ("v",), doc="0 unless exact"),
                Array("treatment", Kind.COUNT, ("v",), doc="0 exact, 1 imputed, 2 withheld"),
            ),
            rules=(Rule.MIN_PARTICIPANTS, Rule.MIN_COUNT),
        ),
        PartSpec(
            BlockMissing,
            "the missing-call samples' c c' (upper triangle), c y and y^2 of the variants "
            "asked for",
            request=(Array("variants", Kind.INDEX, ("m",), of="v", increasing=True),),
            answer=(
                Array("missing_ctc", Kind.FLOAT, ("m", "t")),
                Array("missing_cty", Kind.FLOAT, ("m", "k")),
                Array("missing_yty", Kind.FLOAT, ("m",)),
            ),
            of_block=True,
        ),
    ),
)


def null_arrays(sums: NullSums) -> Arrays:
    """C'C, C'y, y'y and n of one node."""
    return {
        "ctc": sums.ctc,
        "cty": sums.cty,
        "yty": np.asarray(sums.yty),
        "n": np.asarray(sums.n, dtype=np.int64),
    }


def block_arrays(
    sums: VariantSums,
    groups: npt.NDArray[np.int64],
    unique: npt.NDArray[np.bool_],
    close: npt.NDArray[np.bool_],
) -> Arrays:
    """Return a node's answer for one block: its sums, and what the verifier judges them by.

    The imputed sums replace each missing call by the node's mean dosage at
    the variant (0 where the node has no call): ``C'g`` gains the missing
    samples' covariate sums times the mean, ``g'g`` the mean squared times
    their number, ``g'y`` their phenotype sum times the mean.
    """
    called = groups[:, :3].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(called > 0, sums.ctg[:, 0] / called, 0.0)
    return {
        "ctg": sums.ctg,
        "gtg": sums.gtg,
        "gty": sums.gty,
        "n_missing": sums.n_missing,
        "groups": groups,
        "ctg_imputed": sums.ctg + mean[:, None] * sums.missing_ctc[:, 0, :],
        "gtg_imputed": sums.gtg + mean**2 * sums.n_missing,
        "gty_imputed": sums.gty + mean * sums.missing_cty[:, 0],
        "unique": unique,
        "close": close,
    }


def missing_arrays(sums: VariantSums | None, rows: npt.NDArray[np.intp], *, k: int) -> Arrays:
    """Return the missing-call sums of the block's variants ``rows``; c c' as its upper triangle.

    ``sums`` is None for a block in which this node has no missing call: zeros.
    """
    upper = np.triu_indices(k)
    if sums is None:
        return {
            "missing_ctc": np.zeros((len(rows), len(upper[0]))),
            "missing_cty": np.zeros((len(rows), k)),
            "missing_yty": np.zeros(len(rows)),
        }
    return {
        "missing_ctc": sums.missing_ctc[rows][:, upper[0], upper[1]],
        "missing_cty": sums.missing_cty[rows],
        "missing_yty": sums.missing_yty[rows],
    }


def null_from_totals(totals: Totals) -> NullSums:
    """Return the federation's null sums from the checked totals of ``null``."""
    return NullSums(totals["ctc"], totals["cty"], float(totals["yty"]), int(np.rint(totals["n"])))


def variant_sums_from_totals(
    block: Totals,
    missing: Totals | None,
    rows: npt.NDArray[np.intp],
) -> VariantSums:
    """Return the federation's sums of one block from the checked totals of its parts.

    ``missing`` holds the totals of ``block/<i>/missing`` for the variants
    ``rows``, or None when no variant of the block has a missing call.
    """
    variants, k = block["ctg"].shape
    missing_ctc = np.zeros((variants, k, k))
    missing_cty = np.zeros((variants, k))
    missing_yty = np.zeros(variants)
    if missing is not None:
        upper = np.triu_indices(k)
        triangle_sums = missing["missing_ctc"]
        missing_ctc[rows[:, None], upper[0], upper[1]] = triangle_sums
        missing_ctc[rows[:, None], upper[1], upper[0]] = triangle_sums
        missing_cty[rows] = missing["missing_cty"]
        missing_yty[rows] = missing["missing_yty"]
    return VariantSums(
        ctg=block["ctg"],
        gtg=block["gtg"],
        gty=block["gty"],
        missing_ctc=missing_ctc,
        missing_cty=missing_cty,
        missing_yty=missing_yty,
        n_missing=np.rint(block["n_missing"]).astype(np.int64),
    )
