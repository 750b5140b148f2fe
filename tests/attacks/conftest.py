"""Real node processes for attacks: with every defence on, or with the named ones off.

Each attack first runs against nodes that have the defence it targets
switched off (``[disclosure] disabled``), and recovers what it is after;
then against nodes with every defence on, where it is refused or recovers
nothing. Nodes of three simulated countries (400 samples and 8,000 variants
each) serve their own files; the attacker holds valid passports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bed_reader import open_bed

from genofed._toml import read_toml, write_toml
from genofed.aai import Issuer
from genofed.coordinator.federation import Federation
from genofed.io import read_phenotype_table
from genofed.node.local import LocalNodes, free_port
from genofed.node.setup import init_node, trust_peers
from genofed.protocol.cards import read_card
from genofed.sim import SimulationResult
from tests.attacks.adversary import Adversary
from tests.conftest import passport_for

NODES = ("EE", "PT", "DE")


@dataclass(frozen=True)
class Node:
    """One node's own files, for the truth an attack is checked against."""

    name: str
    bfile: Path
    phenotypes: Path

    def genotypes(self) -> np.ndarray:
        """The node's ALT dosages, (samples, variants) int8, negative where missing."""
        with open_bed(self.bfile.with_suffix(".bed")) as bed:
            return np.asarray(bed.read(dtype="int8"))

    def table(self) -> dict[str, np.ndarray]:
        """The node's phenotype table, in .fam order."""
        table = read_phenotype_table(self.phenotypes)
        fam = [line.split()[1] for line in self.bfile.with_suffix(".fam").read_text().splitlines()]
        rows = [table.iids.index(iid) for iid in fam]
        return {name: values[rows] for name, values in table.columns.items()}


@dataclass(frozen=True)
class AttackFederation:
    """Three running nodes, their cards, and passports of two users from one issuer."""

    federation: Federation
    nodes: dict[str, Node]
    passports: dict[str, str]
    local: LocalNodes

    def adversary(self, user: str = "mallory@example.org") -> Adversary:
        """An attacker's coordinator holding ``user``'s passport."""
        return Adversary(self.federation, self.passports[user])


Launch = Callable[..., AttackFederation]


@pytest.fixture
def launch(cohorts: SimulationResult, issuer: Issuer, tmp_path: Path) -> Iterator[Launch]:
    """Start three nodes with ``disabled`` defences and other ``[disclosure]`` settings."""
    with ExitStack() as stack:

        def start(disabled: Sequence[str] = (), **disclosure: Any) -> AttackFederation:
            label = "off-" + "-".join(disabled) if disabled else "on"
            return stack.enter_context(
                _federation(cohorts, issuer, tmp_path / label, disabled, disclosure)
            )

        yield start


@contextmanager
def _federation(
    cohorts: SimulationResult,
    issuer: Issuer,
    out: Path,
    disabled: Sequence[str],
    disclosure: dict[str, Any],
) -> Iterator[AttackFederation]:
    cards, configs, nodes = [], [], {}
    for name in NODES:
        node = Node(name, cohorts.out / name / "genotypes", cohorts.out / name / "phenotypes.tsv")
        init = init_node(
            name,
            bfile=node.bfile,
            phenotypes=node.phenotypes,
            out=out / name,
            port=free_port(),
            trusted_issuers=[issuer.jwks],
        )
        document = read_toml(init.config)
        document["disclosure"] = {**disclosure, "disabled": list(disabled)}
        write_toml(init.config, document)
        cards.append(init.card)
        configs.append(init.config)
        nodes[name] = node
    for config in configs:
        trust_peers(config, cards)
    datasets = [f"genofed:{name}" for name in NODES]
    passports = {
        user: passport_for(issuer, *datasets, user=user)
        for user in ("mallory@example.org", "trudy@example.org")
    }
    federation = Federation(tuple(read_card(card) for card in cards))
    with LocalNodes(configs) as local:
        yield AttackFederation(federation, nodes, passports, local)
