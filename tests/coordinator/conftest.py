"""Three in-process nodes over an uneven split of the simulated cohorts, and their pooled data.

Every node is a real ``create_app(settings)`` behind Starlette's TestClient;
the coordinator reaches it through a :class:`Relay`, an httpx transport that
hands each request to the node's TestClient and can be told to fail, so a
test can make a node drop out mid-study. The nodes are set up once (files,
identities, peers), but every test serves them with a fresh state directory:
a node's disclosure ledger remembers each cohort and set of participating
nodes ever queried, so one test's studies would refuse another's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from bed_reader import open_bed
from fastapi.testclient import TestClient

from genofed._progress import Progress
from genofed.aai import Issuer
from genofed.coordinator import Federation
from genofed.io import BedWriter, read_phenotype_table, write_phenotype_table
from genofed.io.plink import MISSING_CALL, VariantInfo, read_bim, read_fam
from genofed.node.app import create_app
from genofed.node.settings import NodeSettings, load_settings
from genofed.node.setup import init_node, trust_peers
from genofed.protocol.cards import read_card
from genofed.protocol.messages import API_PREFIX
from genofed.sim import SimulationResult
from tests.conftest import passport_for
from tests.coordinator.pooled import MIN_COUNT, Pooled

# Three nodes of different sizes, cut through the pooled samples of the six countries.
NODE_SIZES = {"alpha": 300, "beta": 500, "gamma": 700}
VARIANT_STRIDE = 8  # every 8th of the 8,000 simulated variants: 1,000 variants
BLOCK_SIZE = 250  # variants per block: four blocks per study
# Variants (indices among the 1,000) with planted edge cases:
MONOMORPHIC_AT_ALPHA = 9  # ALT count 0 at every sample of node alpha
MISSING_AT_BETA = 6  # every call missing at node beta
ALL_HETEROZYGOUS = 1  # every called sample heterozygous: far from Hardy-Weinberg
NO_MISSING_CALL = 2  # every sample called (REF homozygous where the call was missing)
ONLY_AT_ALPHA_AND_BETA = "hdl"  # a phenotype column node gamma lacks

Failure = Literal["unreachable", "server error"]


@dataclass(frozen=True)
class Nodes:
    """In-process nodes: their federation, settings and TestClients (without a passport)."""

    federation: Federation
    settings: dict[str, NodeSettings]
    clients: dict[str, TestClient]


def _write_node(
    prefix: Path,
    dosages: npt.NDArray[np.int8],
    iids: list[str],
    variants: VariantInfo,
    columns: dict[str, npt.NDArray[np.float64]],
    rng: np.random.Generator,
) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with BedWriter(
        prefix, iids=iids, sexes=np.ones(len(iids), dtype=np.int8), variants=variants
    ) as writer:
        writer.write_block(dosages.T)
    order = rng.permutation(len(iids))  # the node matches table rows to the .fam by IID
    write_phenotype_table(
        prefix.parent / "phenotypes.tsv",
        [iids[i] for i in order],
        {name: values[order] for name, values in columns.items()},
    )


@pytest.fixture(scope="package")
def split(
    cohorts: SimulationResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Pooled, dict[str, Path]]:
    """Write the three nodes' files; return the pooled data and each node's data directory."""
    source = cohorts.out / "pooled" / "genotypes"
    chosen = np.arange(0, cohorts.n_variants, VARIANT_STRIDE)
    with open_bed(source.with_suffix(".bed")) as bed:
        all_dosages = bed.read(index=np.s_[:, chosen], dtype="int8")
    bim = read_bim(source.with_suffix(".bim"))
    variants = VariantInfo(*(getattr(bim, f)[chosen] for f in VariantInfo.__dataclass_fields__))
    all_iids = list(read_fam(source.with_suffix(".fam")))
    table = read_phenotype_table(cohorts.out / "pooled" / "phenotypes.tsv")
    assert table.iids == tuple(all_iids)
    rng = np.random.default_rng(5)
    order = rng.permutation(len(all_iids))[: sum(NODE_SIZES.values())]
    dosages = all_dosages[order]
    iids = [all_iids[i] for i in order]
    columns = {name: values[order] for name, values in table.columns.items()}
    columns["batch"] = np.ones(len(order))  # constant
    columns["age_months"] = 12 * columns["age"] + 3  # collinear with age
    columns["age_and_sex"] = columns["age"] + 10 * columns["sex"]  # collinear with both
    bounds = np.cumsum([0, *NODE_SIZES.values()])
    rows = {name: slice(a, b) for name, a, b in zip(NODE_SIZES, bounds, bounds[1:], strict=False)}
    dosages[rows["alpha"], MONOMORPHIC_AT_ALPHA] = 0
    dosages[rows["beta"], MISSING_AT_BETA] = MISSING_CALL
    called = dosages[:, ALL_HETEROZYGOUS] != MISSING_CALL
    dosages[called, ALL_HETEROZYGOUS] = 1
    dosages[dosages[:, NO_MISSING_CALL] == MISSING_CALL, NO_MISSING_CALL] = 0
    hdl = np.round(rng.normal(1.4, 0.3, len(order)), 3)

    out = tmp_path_factory.mktemp("split")
    directories = {}
    for name, part in rows.items():
        node_columns = {column: values[part] for column, values in columns.items()}
        if name != "gamma":
            node_columns[ONLY_AT_ALPHA_AND_BETA] = hdl[part]
        prefix = out / name / "genotypes"
        _write_node(prefix, dosages[part], iids[part], variants, node_columns, rng)
        directories[name] = prefix.parent
    # the values as the nodes read them back from their tables
    read_back = {
        name: read_phenotype_table(directory / "phenotypes.tsv")
        for name, directory in directories.items()
    }
    pooled_columns = {}
    for column in columns:
        values = []
        for name, part in rows.items():
            position = {iid: i for i, iid in enumerate(read_back[name].iids)}
            values.append(read_back[name].columns[column][[position[i] for i in iids[part]]])
        pooled_columns[column] = np.concatenate(values)
    pooled = Pooled(dosages, pooled_columns, variants.variant_id, rows)
    return pooled, directories


@pytest.fixture(scope="package")
def pooled(split: tuple[Pooled, dict[str, Path]]) -> Pooled:
    return split[0]


def serve(settings: NodeSettings, passport: str | None = None) -> TestClient:
    """A node in-process: its TestClient, with the API root as base URL and the passport if any."""
    headers = {"Authorization": f"Bearer {passport}"} if passport else None
    return TestClient(
        create_app(settings), base_url=f"http://{settings.node.name}{API_PREFIX}", headers=headers
    )


@pytest.fixture(scope="package")
def configured(split: tuple[Pooled, dict[str, Path]], issuer: Issuer) -> Nodes:
    """The three nodes' settings and cards, each node trusting the other two; not served."""
    _, directories = split
    inits = [
        init_node(
            name,
            bfile=directory / "genotypes",
            phenotypes=directory / "phenotypes.tsv",
            out=directory / "node",
            port=8701 + number,
            trusted_issuers=[issuer.jwks],
        )
        for number, (name, directory) in enumerate(directories.items())
    ]
    cards = [init.card for init in inits]
    for init in inits:
        trust_peers(init.config, cards)
    settings = {}
    for init in inits:
        loaded = load_settings(init.config)
        settings[loaded.node.name] = loaded
    assert all(node.disclosure.min_count == MIN_COUNT for node in settings.values())
    return Nodes(Federation(tuple(read_card(card) for card in cards)), settings, {})


def with_state(settings: NodeSettings, state: Path) -> NodeSettings:
    """A node's settings with a state directory (ledgers, audit log, covariate sets) of its own."""
    node = settings.node.model_copy(update={"state_dir": state / settings.node.name})
    return settings.model_copy(update={"node": node})


@contextlib.contextmanager
def serving(configured: Nodes, state: Path) -> Iterator[Nodes]:
    """Serve every node in-process, with fresh state directories under ``state``."""
    settings = {name: with_state(node, state) for name, node in configured.settings.items()}
    with contextlib.ExitStack() as stack:
        clients = {name: stack.enter_context(serve(node)) for name, node in settings.items()}
        yield Nodes(configured.federation, settings, clients)


@pytest.fixture
def nodes(configured: Nodes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """The three nodes in-process, with nothing queried yet."""
    with serving(configured, tmp_path_factory.mktemp("state")) as served:
        yield served


class Relay(httpx.BaseTransport):
    """Hand every request to an in-process node's TestClient, until told to fail.

    Once failing, the node is unreachable (``httpx.ConnectError``) or answers
    500, for every request from then on.
    """

    def __init__(self, node: TestClient) -> None:
        self.node = node
        self.requests = 0
        self.failure: Failure = "unreachable"
        self.fail_from: int | None = None  # the number of the first request to fail

    def fail(self, failure: Failure = "unreachable", *, after: int = 0) -> None:
        """Fail every request after the next ``after`` ones."""
        self.failure, self.fail_from = failure, self.requests + after + 1

    def recover(self) -> None:
        """Pass every request on again."""
        self.fail_from = None

    @property
    def failing(self) -> bool:
        return self.fail_from is not None and self.requests >= self.fail_from

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.failing:
            if self.failure == "unreachable":
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(500, text="Internal Server Error", request=request)
        answer = self.node.send(request)
        headers = {
            key: value
            for key, value in answer.headers.items()
            if key not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return httpx.Response(
            answer.status_code, headers=headers, content=answer.content, request=request
        )


@dataclass(frozen=True)
class Researcher:
    """One researcher's HTTP clients of the in-process nodes, and the relays behind them."""

    user: str
    http: dict[str, httpx.Client]
    relays: dict[str, Relay]

    def only(self, *names: str) -> dict[str, httpx.Client]:
        return {name: self.http[name] for name in names}


def connect(nodes: Nodes, issuer: Issuer, user: str) -> Researcher:
    """HTTP clients of every node for ``user``, whose passport grants every node's dataset."""
    passport = passport_for(issuer, *(c.dataset_id for c in nodes.federation.nodes), user=user)
    relays = {name: Relay(client) for name, client in nodes.clients.items()}
    http = {
        name: httpx.Client(
            transport=relay,
            base_url=str(nodes.clients[name].base_url),
            headers={"Authorization": f"Bearer {passport}"},
            timeout=30.0,
        )
        for name, relay in relays.items()
    }
    return Researcher(user, http, relays)


@pytest.fixture
def researcher(
    request: pytest.FixtureRequest, nodes: Nodes, issuer: Issuer
) -> Iterator[Researcher]:
    """A researcher of this test's own, with a passport for all three nodes."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)
    connected = connect(nodes, issuer, f"{name}@example.org")
    yield connected
    for client in connected.http.values():
        client.close()


def federation_of(nodes: Nodes, *names: str) -> Federation:
    """The federation of some of the nodes, in the order given."""
    cards = {card.name: card for card in nodes.federation.nodes}
    return Federation(tuple(cards[name] for name in names))


def fail_at_block(
    relay: Relay, block: int, failure: Failure = "unreachable", *, stage: str = "blocks"
) -> Callable[[Progress], None]:
    """A progress callback that makes the relay's node fail once ``block`` blocks are done."""

    def progress(update: Progress) -> None:
        if update.stage == stage and update.done == block and relay.fail_from is None:
            relay.fail(failure)

    return progress
