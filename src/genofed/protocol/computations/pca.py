"""``pca``: principal components over the federation; scores stay at the node.

One job runs the whole PCA, each step from the released totals of the
steps before it, by a plan this module defines for the coordinator and
the verifying node alike (:func:`select_variants`, :func:`ld_ranges`,
:func:`genofed.kernels.ld.prune`, :class:`genofed.kernels.pca.PcaIteration`
seeded by :func:`basis_seed`). The verifier replays the plan and refuses
any request that departs from it. Parts:

``block/<i>``
    Streamed: genotype counts (ALT dosage 0, 1, 2 and missing) of block i
    over every genotyped sample, for the federation's allele frequencies.
    The verifier withholds the counts of a variant with a group of 1 to
    ``min_count - 1`` samples, and the PCA leaves it out.
``variants``
    Instruction: the variants the PCA uses (:func:`select_variants`: those
    with a minor allele frequency of at least ``maf``, never monomorphic)
    and their standardisation (``mean`` = ``2p``, ``scale`` = ``1 /
    sqrt(2p(1 - p))``). The node decodes them for all its samples.
``ld/<i>``
    LD-pruning sums (:func:`genofed.kernels.ld.local_ld_sums`) of the range
    ``rows`` of :func:`ld_ranges` with every variant less than ``window``
    after each. PLINK 2 sums a pair over the samples called at both, which
    would release sums over the samples missing at one variant of a pair;
    instead, a node sets its missing calls of a variant to the dosage
    nearest its own mean there. Pairs of variants with no missing call
    anywhere are summed exactly as PLINK 2 does.
``keep``
    Instruction: the variants (positions among those of ``variants``) that
    pruning (``plink2 --indep-pairwise``) kept.
``product/<j>``
    ``X_k'(X_k Q)`` for round j's block ``basis`` ``(q, L)``, ``q`` the
    variants in use: a round of block Krylov iteration.
``scores``
    The ``loadings`` ``(q, c)`` and ``theta`` ``(c,)`` the iteration found.
    The node stores its samples' scores as the covariate set the job names,
    and returns only their sums (count, column sums, ``U'U``), which add up
    over the federation to the identity for unit eigenvectors.
``summary``
    Released unmasked: the mean and covariance of two ``components`` over
    this node's samples, for a picture of the countries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.kernels.ld import LdSums
from genofed.kernels.pca import standardization
from genofed.kernels.qc import variant_qc
from genofed.protocol.computations._parts import Block
from genofed.protocol.contract import (
    Array,
    Contract,
    Kind,
    Part,
    PartSpec,
    Release,
    Rule,
    block_width,
)
from genofed.protocol.messages import SetName, StudyId

__all__ = [
    "CONTRACT",
    "MAX_LD_WINDOW",
    "Block",
    "Keep",
    "Ld",
    "PcaParameters",
    "Product",
    "Scores",
    "Selection",
    "Summary",
    "Variants",
    "basis_seed",
    "ld_ranges",
    "ld_sums_from_totals",
    "select_variants",
]

MAX_LD_WINDOW = 10_000  # variants in an LD-pruning window (96 bytes per pair, masked)


class PcaParameters(BaseModel):
    """Parameters of ``pca``: the components, the variant filter, LD pruning and the iteration.

    ``name`` is the covariate set the node stores its samples' scores under,
    ``run`` the identifier recorded with it (the coordinator's study id),
    which also seeds the iteration's random start. ``ld_window`` 0 turns
    pruning off; otherwise ``plink2 --indep-pairwise <window> <step> <r2>``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    components: int = Field(ge=1, le=100)
    name: SetName = "pcs"
    run: StudyId
    block_size: int = Field(default=32_768, ge=1, le=65_536)
    maf: float | None = Field(default=None, ge=0, le=0.5)
    ld_window: int = Field(default=50, ge=0, le=MAX_LD_WINDOW)
    ld_step: int = Field(default=5, ge=1, le=MAX_LD_WINDOW)
    ld_r2: float = Field(default=0.2, ge=0, lt=1)
    tolerance: float = Field(default=1e-6, gt=0, le=0.1)
    max_iterations: int = Field(default=100, ge=1, le=1000)


@dataclass(frozen=True)
class Variants(Part):
    """The variants of the PCA and their standardisation."""

    template: ClassVar[str] = "variants"


@dataclass(frozen=True)
class Ld(Part):
    """LD-pruning sums of the ``index``-th range of the PCA's variants."""

    index: int
    template: ClassVar[str] = "ld/{index}"


@dataclass(frozen=True)
class Keep(Part):
    """The variants that LD pruning kept."""

    template: ClassVar[str] = "keep"


@dataclass(frozen=True)
class Product(Part):
    """Round ``number`` of the block Krylov iteration: ``X'(X Q)``."""

    number: int
    template: ClassVar[str] = "product/{number}"


@dataclass(frozen=True)
class Scores(Part):
    """The samples' scores, stored at the node; only their sums answer."""

    template: ClassVar[str] = "scores"


@dataclass(frozen=True)
class Summary(Part):
    """Each node's own mean and covariance of two components, for a picture."""

    template: ClassVar[str] = "summary"


def _dimensions(
    parameters: PcaParameters,
    part: Part,
    request: Mapping[str, npt.NDArray[np.generic]] | None,
    variants: int,
) -> dict[str, int]:
    dims = {"V": variants, "c": parameters.components}
    if isinstance(part, Block):
        dims["v"] = block_width(part.index, parameters.block_size, variants)
    if isinstance(part, Ld) and request is not None:
        rows, window = request.get("rows"), request.get("window")
        if rows is not None and window is not None and rows.shape == (2,) and window.size == 1:
            dims["r"] = max(0, int(rows[1]) - int(rows[0]))
            dims["w"] = max(0, int(window.reshape(-1)[0]) - 1)
    return dims


_PAIR = "sum over the samples called at both variants of a pair"

CONTRACT = Contract(
    name="pca",
    version=2,
    summary=(
        "Principal components of the standardised genotypes of the variants asked for: "
        "LD-pruning sums over pairs of them (samples called at both, genotype sums and "
        "products), then per round X'(X Q) for the coordinator's block Q, all masked; "
        "then each node stores its own samples' scores as a covariate set (never sent) "
        "and returns only their sums, and the mean and covariance of two components "
        "over its samples, for a picture."
    ),
    parameters=PcaParameters,
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
        PartSpec(
            Variants,
            "decode the variants asked for and keep their federation-wide standardisation",
            request=(
                Array("variants", Kind.INDEX, ("m",), of="V", increasing=True),
                Array("mean", Kind.FLOAT, ("m",), doc="2p"),
                Array("scale", Kind.FLOAT, ("m",), doc="1 / sqrt(2p(1 - p))"),
            ),
            answer=(),
            release=Release.NOTHING,
            rules=(),
        ),
        PartSpec(
            Ld,
            "LD-pruning pair sums of the variants rows[0] to rows[1] with the next window - 1",
            request=(Array("rows", Kind.COUNT, (2,)), Array("window", Kind.COUNT, (1,))),
            answer=(
                Array("called", Kind.COUNT, ("r",)),
                Array("alt_sum", Kind.COUNT, ("r",)),
                Array("alt_sq_sum", Kind.COUNT, ("r",)),
                Array("pair_called", Kind.COUNT, ("r", "w"), doc="samples called at both"),
                Array("pair_dot", Kind.COUNT, ("r", "w"), doc=_PAIR + " of g_a g_b"),
                Array("pair_first_sum", Kind.COUNT, ("r", "w"), doc=_PAIR + " of g_a"),
                Array("pair_first_sq_sum", Kind.COUNT, ("r", "w"), doc=_PAIR + " of g_a^2"),
                Array("pair_second_sum", Kind.COUNT, ("r", "w"), doc=_PAIR + " of g_b"),
                Array("pair_second_sq_sum", Kind.COUNT, ("r", "w"), doc=_PAIR + " of g_b^2"),
            ),
        ),
        PartSpec(
            Keep,
            "keep only these of the variants",
            request=(Array("variants", Kind.INDEX, ("kept",), of="m", increasing=True),),
            answer=(),
            release=Release.NOTHING,
            rules=(),
        ),
        PartSpec(
            Product,
            "X'(X Q) of the standardised genotypes for the block Q",
            request=(Array("basis", Kind.FLOAT, ("q", "L")),),
            answer=(Array("product", Kind.FLOAT, ("q", "L")),),
        ),
        PartSpec(
            Scores,
            "store the samples' scores X v / sqrt(theta); answer their count, sums and U'U",
            request=(
                Array("loadings", Kind.FLOAT, ("q", "c")),
                Array("theta", Kind.FLOAT, ("c",)),
            ),
            answer=(
                Array("n", Kind.COUNT),
                Array("sum", Kind.FLOAT, ("c",)),
                Array("cross", Kind.FLOAT, ("c", "c")),
            ),
        ),
        PartSpec(
            Summary,
            "this node's count, mean and covariance of two components, for a picture",
            request=(Array("components", Kind.INDEX, (2,), of="c"),),
            answer=(
                Array("n", Kind.COUNT),
                Array("mean", Kind.FLOAT, (2,)),
                Array("covariance", Kind.FLOAT, (2, 2)),
            ),
            release=Release.NODE_AGGREGATE,
            rules=(Rule.MIN_COHORT,),
        ),
    ),
)


LD_PART_BYTES = 1 << 24  # masked LD sums per round trip and node (96 bytes per pair)


def ld_sums_from_totals(totals: Mapping[str, npt.NDArray[np.generic]]) -> LdSums:
    """Read the federation's LD sums of one range from the released totals."""
    return LdSums(**{name: np.asarray(value, dtype=np.int64) for name, value in totals.items()})


@dataclass(frozen=True)
class Selection:
    """The variants a PCA uses, their standardisation, and what each filter removed."""

    variants: npt.NDArray[np.int64]  # positions in the node's variant list
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    filtered: dict[str, int]


def select_variants(
    counts: npt.NDArray[np.int64], withheld: npt.NDArray[np.bool_], maf: float | None
) -> Selection:
    """Choose the PCA's variants from the federation's genotype counts ``(V, 4)``.

    Variable variants with a minor allele frequency of at least ``maf``;
    those whose counts were withheld, monomorphic ones and those with no
    call are always left out.
    """
    qc = variant_qc(counts)
    filtered = {"withheld": int(withheld.sum())}
    variable = ~withheld & (qc.minor_allele_frequency > 0)  # NaN (no call): no scale
    filtered["monomorphic"] = int((~variable).sum()) - filtered["withheld"]
    keep = variable
    if maf is not None:
        low = keep & ~(qc.minor_allele_frequency >= maf)
        filtered["maf"] = int(low.sum())
        keep = keep & ~low
    chosen = np.flatnonzero(keep).astype(np.int64)
    alt = counts[chosen, 1] + 2 * counts[chosen, 2]
    mean, scale = standardization(alt, qc.n_called[chosen])
    return Selection(chosen, mean, scale, filtered)


def ld_ranges(m: int, window: int) -> list[tuple[int, int]]:
    """Return the ``[start, stop)`` ranges of the ``m`` variants, one per part of LD sums."""
    rows = max(1, LD_PART_BYTES // (96 * max(window - 1, 1) + 48))
    return [(start, min(start + rows, m)) for start in range(0, m, rows)]


def basis_seed(run: str) -> int:
    """Return the seed of the iteration's random start, fixed by the run (the study)."""
    digest = hashlib.sha256(f"genofed pca basis\0{run}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
