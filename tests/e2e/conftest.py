"""A federation of real node processes over an uneven split of the simulated cohorts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed

from genofed.aai import Issuer, write_passport
from genofed.coordinator import create_federation
from genofed.io import BedWriter, read_phenotype_table, write_phenotype_table
from genofed.io.plink import MISSING_CALL, read_bim, read_fam
from genofed.node.local import LocalNodes, free_port
from genofed.node.setup import init_node, trust_peers
from genofed.sim import SimulationResult
from tests.conftest import passport_for

# Three nodes of very different sizes, cut through the pooled samples.
NODE_SIZES = {"alpha": 250, "beta": 650, "gamma": 1500}
MONOMORPHIC_AT_ALPHA = 13  # a common variant, set to ALT count 0 at node alpha
MISSING_AT_BETA = 17  # a common variant, every call missing at node beta


@dataclass(frozen=True)
class SplitFederation:
    federation: Path
    pooled: Path  # PLINK prefix of the same samples and variants, pooled
    phenotypes: Path  # pooled phenotype table
    nodes: dict[str, Path]  # name -> node directory
    local: LocalNodes
    passport: str  # grants every node's dataset
    passport_file: Path


def write_split(cohorts: Path, out: Path) -> tuple[Path, Path, dict[str, Path]]:
    """Split the pooled cohorts over three uneven nodes, with the planted edge cases."""
    source = cohorts / "pooled" / "genotypes"
    with open_bed(source.with_suffix(".bed")) as bed:
        dosages = bed.read(dtype="int8")  # samples x variants
    iids = list(read_fam(source.with_suffix(".fam")))
    variants = read_bim(source.with_suffix(".bim"))
    table = read_phenotype_table(cohorts / "pooled" / "phenotypes.tsv")
    rng = np.random.default_rng(11)
    order = rng.permutation(len(iids))[: sum(NODE_SIZES.values())]
    bounds = np.cumsum([0, *NODE_SIZES.values()])
    parts = {name: order[a:b] for name, a, b in zip(NODE_SIZES, bounds, bounds[1:], strict=False)}
    dosages[parts["alpha"], MONOMORPHIC_AT_ALPHA] = 0
    dosages[parts["beta"], MISSING_AT_BETA] = MISSING_CALL
    sexes = np.ones(len(iids), dtype=np.int8)

    def write(prefix: Path, rows: np.ndarray, *, shuffle_table: bool) -> Path:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with BedWriter(
            prefix, iids=[iids[i] for i in rows], sexes=sexes[rows], variants=variants
        ) as writer:
            writer.write_block(dosages[rows].T)
        table_rows = rng.permutation(rows) if shuffle_table else rows
        write_phenotype_table(
            prefix.parent / "phenotypes.tsv",
            [table.iids[i] for i in table_rows],
            {name: values[table_rows] for name, values in table.columns.items()},
        )
        return prefix

    nodes = {
        name: write(out / name / "genotypes", rows, shuffle_table=True).parent
        for name, rows in parts.items()
    }
    pooled = write(out / "pooled" / "genotypes", order, shuffle_table=False)
    return pooled, pooled.parent / "phenotypes.tsv", nodes


@pytest.fixture(scope="session")
def split_federation(
    cohorts: SimulationResult, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SplitFederation]:
    out = tmp_path_factory.mktemp("split")
    pooled, phenotypes, data = write_split(cohorts.out, out)
    cards = []
    for name, directory in data.items():
        init = init_node(
            name,
            bfile=directory / "genotypes",
            phenotypes=directory / "phenotypes.tsv",
            out=directory / "node",
            port=free_port(),
            trusted_issuers=[issuer.jwks],
        )
        cards.append(init.card)
    federation = out / "federation.toml"
    create_federation(cards, federation)
    configs = [directory / "node" / "node.toml" for directory in data.values()]
    for config in configs:
        trust_peers(config, cards)
    passport = passport_for(issuer, *(f"genofed:{name}" for name in data))
    passport_file = write_passport(passport, out / "passport.jwt")
    with LocalNodes(configs) as local:
        yield SplitFederation(federation, pooled, phenotypes, data, local, passport, passport_file)
