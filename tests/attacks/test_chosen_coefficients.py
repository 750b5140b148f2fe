"""Chosen coefficients: a logistic round's sums at coefficients that weigh one person only.

The attacker runs a logistic GWAS of ``t2d`` with ``ldl`` (measured to three
decimals, nearly unique) as a covariate, and asks for round 0 of block 0 at
coefficients of its own: ``eta = beta * (ldl - ldl_p)`` with a steep ``beta``.
Every weight ``mu (1 - mu)`` then vanishes but the target's, so the summed
information ``X'WX`` is the target's own: ``sum w g / sum w`` is their
genotype, at every variant asked for.
"""

from __future__ import annotations

import numpy as np
import pytest

from genofed.errors import ProtocolError
from genofed.protocol.codec import decode_arrays, encode_arrays
from genofed.protocol.computations.logistic_gwas import Block, BlockRound
from genofed.protocol.secagg import sum_masked
from tests.attacks.adversary import Adversary
from tests.attacks.conftest import NODES, AttackFederation, Launch

WIDTH = 1000  # variants of block 0
STEEP = 2e4  # per unit of ldl: neighbours 0.001 apart get a weight below 1e-8


def target(federation: AttackFederation) -> tuple[float, np.ndarray]:
    """A person of node EE with an ldl value no one else in the federation has."""
    values = {name: node.table() for name, node in federation.nodes.items()}
    complete = {name: ~np.isnan(t["t2d"]) & ~np.isnan(t["ldl"]) for name, t in values.items()}
    everyone = np.concatenate([values[n]["ldl"][complete[n]] for n in NODES])
    ee = values["EE"]["ldl"]
    for row in np.flatnonzero(complete["EE"]):
        if (np.abs(everyone - ee[row]) < 0.0005).sum() == 1:
            return float(ee[row]), federation.nodes["EE"].genotypes()[row, :WIDTH]
    raise AssertionError("no person with a unique ldl value")


def chosen_request(ldl: float, variants: np.ndarray) -> dict[str, np.ndarray]:
    """Round 0 of a fit at ``eta = STEEP (ldl - ldl_p)`` for every variant given."""
    coefficients = np.zeros((len(variants), 3))
    coefficients[:, 0], coefficients[:, 1] = -STEEP * ldl, STEEP
    return {
        "variants": variants,
        "coefficients": coefficients,
        "with_loglik": np.zeros(len(variants), dtype=bool),
        "firth_variants": np.zeros(0, dtype=np.int64),
        "firth_coefficients": np.zeros((0, 3)),
        "inverse_information": np.zeros((0, 3, 3)),
    }


def chosen_round(adversary: Adversary, ldl: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the attack's round over the variants the block lets be fitted.

    Returns those variants and what the verifier released: the attacker
    follows the honest study up to the coefficients, so that nothing else
    tells it apart.
    """
    parameters = {"phenotype": "t2d", "covariates": ["ldl"], "block_size": WIDTH}
    job = adversary.submit("logistic-gwas", parameters, NODES)
    block = adversary.released(job, Block(0))  # the block is decoded and its treatment released
    variants = np.flatnonzero(block["treatment"] == 0)
    part = BlockRound(0, 0, 0)
    return variants, adversary.released(job, part, chosen_request(ldl, variants))


def read_genotypes(released: dict[str, np.ndarray]) -> np.ndarray:
    """``sum w g / sum w`` from the packed X'WX of [1, ldl, g]: the weighted person's dosage."""
    information = released["information"]  # columns: (0,0) (0,1) (0,2) (1,1) (1,2) (2,2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.rint(information[:, 2] / information[:, 0])


def test_attack__chosen_coefficients_read_a_persons_genotypes_without_verification(
    launch: Launch,
) -> None:
    federation = launch(disabled=["request-checks"])
    ldl, truth = target(federation)
    adversary = federation.adversary()
    try:
        variants, released = chosen_round(adversary, ldl)
    finally:
        adversary.close()
    recovered, truth = read_genotypes(released), truth[variants]
    called = truth >= 0
    assert called.sum() >= 30
    np.testing.assert_array_equal(recovered[called], truth[called])  # every genotype, exactly


def test_attack__chosen_coefficients_are_refused_by_the_verifier(launch: Launch) -> None:
    federation = launch()
    ldl, _ = target(federation)
    adversary = federation.adversary()
    try:
        with pytest.raises(
            ProtocolError, match=r"refused: rule verified parameters: .*coefficients"
        ):
            chosen_round(adversary, ldl)
    finally:
        adversary.close()


def test_attack__parts_without_the_verifier_sum_to_noise(launch: Launch) -> None:
    federation = launch()
    ldl, truth = target(federation)
    adversary = federation.adversary()
    try:
        parameters = {"phenotype": "t2d", "covariates": ["ldl"], "block_size": WIDTH}
        job = adversary.submit("logistic-gwas", parameters, NODES)
        variants = np.flatnonzero(adversary.released(job, Block(0))["treatment"] == 0)
        # Every node but the verifier answers the chosen round (only the verifier replays
        # the fit); the attacker sums their parts, and the verifier's own at other
        # coefficients would not help: the gates the others added for the verifier
        # leave the sum uniformly random.
        part = BlockRound(0, 0, 0)
        request = chosen_request(ldl, variants)
        payloads = {
            node: adversary.ask(job, part, request, only=node)[node][0]
            for node in NODES
            if node != job.verifier
        }
    finally:
        adversary.close()
    summed = sum_masked({node: strip_rules(p) for node, p in payloads.items()})
    recovered, truth = read_genotypes(summed), truth[variants]
    called = truth >= 0
    assert np.mean(recovered[called] == truth[called]) < 0.5  # noise, not genotypes


def strip_rules(payload: bytes) -> bytes:
    """A node's masked part without the rules it sends in the clear."""
    arrays = decode_arrays(payload)
    return encode_arrays({k: v for k, v in arrays.items() if not k.startswith("rule:")})
