"""``pca`` version 1: principal components over the federation; scores stay at the node.

Parts, all asked for with arrays and answered once each:

``variants``
    The variants to use (increasing positions in the node's variant list)
    and their federation-wide standardisation (``mean`` = ``2p``, ``scale``
    = ``1 / sqrt(2p(1 - p))``). The node decodes them for all its samples and
    keeps them for the job. Answer: nothing.
``ld/<i>``
    LD-pruning sums (:func:`genofed.kernels.ld.local_ld_sums`) of the kept
    variants ``rows`` = ``[start, stop)`` with every variant less than
    ``window`` after each, masked. The coordinator adds them and prunes.
``keep``
    The variants (positions among those of ``variants``) the PCA keeps after
    pruning. Answer: nothing.
``product/<j>``
    ``X_k'(X_k Q)`` for the coordinator's ``(q, L)`` block ``basis``, ``q``
    the variants in use (all of ``variants``, or those ``keep`` kept)
    (:func:`genofed.kernels.pca.local_gram_product`), masked.
``scores``
    The ``loadings`` ``(q, c)`` and ``theta`` ``(c,)`` the coordinator found.
    The node computes its samples' scores, stores them as the covariate set
    the job names, and returns only their masked sums (count, column sums,
    ``U'U``), which add up over the federation to the identity for unit
    eigenvectors.
``summary``
    Released unmasked: the mean and covariance of two ``components`` over
    this node's samples, for a picture of the countries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from genofed.kernels.ld import LdSums
from genofed.protocol.contract import Array, Contract, Kind, Part, PartSpec, Release, Rule
from genofed.protocol.messages import SetName, StudyId

__all__ = [
    "CONTRACT",
    "MAX_LD_WINDOW",
    "Keep",
    "Ld",
    "PcaParameters",
    "Product",
    "Scores",
    "Summary",
    "Variants",
]

MAX_LD_WINDOW = 10_000  # variants in an LD-pruning window (96 bytes per pair, masked)


class PcaParameters(BaseModel):
    """Parameters of ``pca`` version 1; the variants and their standardisation come as arrays.

    ``name`` is the covariate set the node stores its samples' scores under,
    ``run`` the identifier recorded with it (the coordinator's study id).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    components: int = Field(ge=1, le=100)
    name: SetName = "pcs"
    run: StudyId


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
    if isinstance(part, Ld) and request is not None:
        rows, window = request.get("rows"), request.get("window")
        if rows is not None and window is not None and rows.shape == (2,) and window.size == 1:
            dims["r"] = max(0, int(rows[1]) - int(rows[0]))
            dims["w"] = max(0, int(window.reshape(-1)[0]) - 1)
    return dims


_PAIR = "sum over the samples called at both variants of a pair"

CONTRACT = Contract(
    name="pca",
    version=1,
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


def ld_sums_from_totals(totals: Mapping[str, npt.NDArray[np.generic]]) -> LdSums:
    """Read the federation's LD sums of one range from the checked totals."""
    return LdSums(**{name: np.asarray(value, dtype=np.int64) for name, value in totals.items()})
