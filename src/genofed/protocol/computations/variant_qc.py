"""``variant-qc`` version 1: genotype counts per variant over a cohort.

The cohort is every genotyped sample, or, given a phenotype, the samples with
that phenotype and every covariate: the cohort of a GWAS of it.

Parts: ``block/<i>``, the counts of ALT dosage 0, 1 and 2 and of missing
calls for each variant of block i. The verifier sums them over the nodes
and withholds every count of a variant with a group of 1 to ``min_count -
1`` samples (e.g. 2 samples with ALT dosage 2): its four counts add up to
the cohort, so one small count could not be hidden alone. The coordinator
derives allele frequencies, missing-call rates and Hardy-Weinberg exact
tests of the other variants (:mod:`genofed.kernels.qc`), as PLINK 2 does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.protocol.computations._parts import Block
from genofed.protocol.contract import Array, Contract, Kind, Part, PartSpec, Rule, block_width
from genofed.protocol.messages import ColumnName

__all__ = ["CONTRACT", "Block", "VariantQcParameters"]


class VariantQcParameters(BaseModel):
    """Parameters of ``variant-qc`` version 1.

    Without a phenotype the counts cover every genotyped sample; with one, the
    samples that have it and every covariate (the cohort of a GWAS of it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    block_size: int = Field(ge=1, le=65_536)
    phenotype: ColumnName | None = None
    covariates: list[ColumnName] = Field(default_factory=list, max_length=64)


def _dimensions(
    parameters: VariantQcParameters,
    part: Part,
    request: Mapping[str, npt.NDArray[np.generic]] | None,
    variants: int,
) -> dict[str, int]:
    assert isinstance(part, Block)
    return {"v": block_width(part.index, parameters.block_size, variants)}


CONTRACT = Contract(
    name="variant-qc",
    version=2,
    summary=(
        "Genotype counts per variant over all genotyped samples (or a GWAS's cohort): ALT "
        "dosage 0, 1, 2 and missing, for allele frequencies, missing-call rates and "
        "Hardy-Weinberg tests."
    ),
    parameters=VariantQcParameters,
    dimensions=_dimensions,
    parts=(
        PartSpec(
            Block,
            "samples with ALT dosage 0, 1 and 2 and with a missing call, per variant",
            answer=(Array("counts", Kind.COUNT, ("v", 4)),),
            released=(
                Array("counts", Kind.COUNT, ("v", 4), doc="zero where withheld"),
                Array("withheld", Kind.FLAG, ("v",), doc="a count of 1 to min_count - 1"),
            ),
            rules=(Rule.MIN_PARTICIPANTS, Rule.MIN_COUNT),
        ),
    ),
)
