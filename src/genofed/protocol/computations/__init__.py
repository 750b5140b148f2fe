"""The registry of contracts: every computation a node can run, declared once.

A computation is a module here with a :class:`~genofed.protocol.contract.Contract`
named ``CONTRACT``, listed in :data:`CONTRACTS`. The node's catalogue
(:data:`CATALOGUE`) and the job request it accepts (:data:`JobRequest`, told
apart by the computation's name) are generated from this registry.

A contract's version pins the solver both sides replay: version 2 of every
computation is verified by the round's verifier with genofed 0.2's solvers
(PLINK 2's logistic and Firth steps, the Krylov iteration, LD pruning), so
a node refuses a job of another version rather than replay it differently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from genofed.errors import ProtocolError
from genofed.protocol.computations import linear_gwas, logistic_gwas, pca, variant_qc
from genofed.protocol.contract import Contract
from genofed.protocol.messages import Computation, JobBase

__all__ = ["CATALOGUE", "CONTRACTS", "JobRequest", "contract"]

CONTRACTS: dict[str, Contract] = {
    module.CONTRACT.name: module.CONTRACT
    for module in (linear_gwas, logistic_gwas, variant_qc, pca)
}

CATALOGUE: tuple[Computation, ...] = tuple(c.catalogue_entry() for c in CONTRACTS.values())

if TYPE_CHECKING:
    JobRequest = JobBase
else:
    JobRequest = Annotated[
        Union[tuple(c.job_model for c in CONTRACTS.values())],  # noqa: UP007
        Field(discriminator="computation"),
    ]


def contract(name: str) -> Contract:
    """Return the contract of a computation of the catalogue.

    Raises
    ------
    ProtocolError
        If no computation has that name.
    """
    try:
        return CONTRACTS[name]
    except KeyError:
        raise ProtocolError(
            f"no computation {name!r}; the catalogue has {', '.join(CONTRACTS)}"
        ) from None
