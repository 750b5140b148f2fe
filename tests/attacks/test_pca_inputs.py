"""Chosen PCA inputs: a product at a unit basis over raw genotypes reads one carrier's genome.

The attacker runs a ``pca`` job without LD pruning and totals the genotype
counts as an honest coordinator would. Then, instead of the variants and
standardisation the counts give, it tells the nodes to use every variant
with ``mean`` 0 and ``scale`` 1, so that ``X`` is the raw dosages (0 where
a call is missing), and asks for ``product/0`` at the unit basis ``e_v`` of
a variant whose ALT allele one person of the federation carries: every
other row of ``X e_v`` is zero, so the released ``X'(X e_v)`` is that
person's genotypes at every variant, times their dosage at ``v``.

The round's verifier replays the plan and refuses the chosen ``variants``.
Telling the verifier the honest variants and the others the chosen ones
does not help: each node's signature on a product binds the instructions it
followed, and the verifier refuses parts computed on other instructions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
import pytest

from genofed.errors import ProtocolError
from genofed.kernels.pca import PcaIteration
from genofed.protocol.computations.pca import (
    Block,
    PcaParameters,
    Product,
    Variants,
    basis_seed,
    select_variants,
)
from genofed.protocol.secagg import choose_verifier
from tests.attacks.adversary import Adversary, Job, refusals
from tests.attacks.conftest import NODES, AttackFederation, Launch

N_VARIANTS = 8000  # the simulated cohorts' variants: one block of counts


@dataclass(frozen=True)
class Carrier:
    """The one person of the federation with the ALT allele of ``variant``."""

    node: str
    variant: int
    genotypes: np.ndarray  # every variant, negative where missing


def carrier(federation: AttackFederation) -> Carrier:
    """The first variant whose ALT allele exactly one person of the federation carries."""
    genotypes = {name: federation.nodes[name].genotypes() for name in NODES}
    carriers = sum((g > 0).sum(axis=0) for g in genotypes.values())
    variant = int(np.flatnonzero(carriers == 1)[0])
    for name, g in genotypes.items():
        rows = np.flatnonzero(g[:, variant] > 0)
        if len(rows):
            return Carrier(name, variant, g[rows[0]])
    raise AssertionError("no carrier")


def submit(adversary: Adversary, target: Carrier) -> tuple[Job, PcaParameters]:
    """Submit a PCA without pruning, in a round that the carrier's node does not verify."""
    study = secrets.token_hex(16)
    label = next(
        f"round-{i}"
        for i in range(64)
        if choose_verifier(study, f"round-{i}", NODES) != target.node
    )
    parameters = PcaParameters(components=2, run=study, block_size=N_VARIANTS, ld_window=0)
    return adversary.submit("pca", parameters, NODES, study=study, round=label), parameters


def raw_genotypes(variants: np.ndarray) -> dict[str, np.ndarray]:
    """``variants`` at mean 0 and scale 1: X is the dosages, 0 where missing."""
    return {"variants": variants, "mean": np.zeros(len(variants)), "scale": np.ones(len(variants))}


def unit_basis(size: int, column: int) -> np.ndarray:
    """The basis ``e_column``: one column, picking that variant."""
    basis = np.zeros((size, 1))
    basis[column, 0] = 1.0
    return basis


def test_attack__chosen_pca_inputs_read_a_carriers_genotypes_without_verification(
    launch: Launch,
) -> None:
    federation = launch(disabled=["request-checks"])
    target = carrier(federation)
    adversary = federation.adversary()
    try:
        job, _ = submit(adversary, target)
        adversary.released(job, Block(0))
        everything = np.arange(N_VARIANTS, dtype=np.int64)
        adversary.ask(job, Variants(), raw_genotypes(everything))
        basis = unit_basis(N_VARIANTS, target.variant)
        product = adversary.released(job, Product(0), {"basis": basis})["product"][:, 0]
    finally:
        adversary.close()
    dosage = np.sqrt(product[target.variant])  # X'X e_v at v: the carrier's dosage squared
    recovered = np.rint(product / dosage)
    truth = np.where(target.genotypes >= 0, target.genotypes, 0)
    assert (truth > 0).sum() >= 100
    np.testing.assert_array_equal(recovered, truth)  # the carrier's genotypes, every variant


def test_attack__chosen_pca_inputs_are_refused_by_the_verifier(launch: Launch) -> None:
    federation = launch()
    target = carrier(federation)
    adversary = federation.adversary()
    try:
        job, _ = submit(adversary, target)
        adversary.released(job, Block(0))
        everything = np.arange(N_VARIANTS, dtype=np.int64)
        with pytest.raises(
            ProtocolError, match=r"refused: rule verified parameters: variants: 'variants'"
        ):
            adversary.ask(job, Variants(), raw_genotypes(everything))
    finally:
        adversary.close()
    (refusal,) = refusals(federation.local, job.verifier)
    assert "rule verified parameters: variants" in refusal.reason


def test_attack__instructions_kept_from_the_verifier_void_the_others_signatures(
    launch: Launch,
) -> None:
    federation = launch()
    target = carrier(federation)
    adversary = federation.adversary()
    try:
        job, parameters = submit(adversary, target)
        released = adversary.released(job, Block(0))
        counts = np.asarray(released["counts"], dtype=np.int64)
        honest = select_variants(counts, np.asarray(released["withheld"], dtype=bool), None)
        m = len(honest.variants)
        assert target.variant not in honest.variants  # its counts were withheld
        # The carrier's rare variant in, the first honest one out: as many variants as the
        # verifier expects, so that every node can take the same basis.
        chosen = np.sort(np.append(honest.variants[1:], target.variant))
        request = {"variants": honest.variants, "mean": honest.mean, "scale": honest.scale}
        adversary.ask(job, Variants(), request, only=job.verifier)
        for node in NODES:
            if node != job.verifier:
                adversary.ask(job, Variants(), raw_genotypes(chosen), only=node)
        # The plan's first basis, which the verifier checks, at every node: the parts
        # differ only in the instructions each node followed.
        start = PcaIteration(
            m,
            parameters.components,
            tolerance=parameters.tolerance,
            max_iterations=parameters.max_iterations,
            seed=basis_seed(parameters.run),
        ).request()
        assert start is not None
        answers = adversary.ask(job, Product(0), {"basis": start})
        with pytest.raises(ProtocolError, match=r"not signed .* for this request and these instr"):
            adversary.total(job, Product(0), answers)
    finally:
        adversary.close()
    (refusal,) = refusals(federation.local, job.verifier)
    assert "these instructions" in refusal.reason
