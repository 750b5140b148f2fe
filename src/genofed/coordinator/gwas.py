"""A linear-regression GWAS across the federation, equal to PLINK 2 on the pooled data.

Every node computes its sums over its own samples and masks them for secure
aggregation; the coordinator adds the masked sums of all nodes block by
block, which cancels the masks, and solves. It never sees one node's sums.

If a node fails once its job is running, the study is rerun over the nodes
that remain, under a new round label and so with fresh masks, and the user
is warned; the results then describe the remaining nodes only. Results are
written only once every block of every participating node has arrived.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed._version import __version__
from genofed.coordinator.client import NodeClient
from genofed.coordinator.federation import Federation
from genofed.errors import InputError, NodeError, ProtocolError
from genofed.kernels.linreg import NullSums, solve_linear
from genofed.protocol.aggregation import signed_study_key, sum_masked
from genofed.protocol.linreg import null_from_totals, variant_sums_from_totals
from genofed.protocol.masking import parse_public_key, verify_study_keys
from genofed.protocol.messages import (
    DatasetDescription,
    JobRequest,
    LinearGwasParameters,
    SecureAggregation,
    SignedKey,
)
from genofed.report import GwasMetadata, GwasTable, lambda_gc, write_gwas_ssf

__all__ = ["LinearGwas", "run_linear_gwas"]

logger = logging.getLogger(__name__)

# PLINK 2's --glm defaults for covariates: --max-corr 0.999 and --vif 50.
MAX_CORRELATION = 0.999
MAX_VIF = 50.0
BLOCK_TIMEOUT_SECONDS = 600.0
MIN_PARTICIPANTS = 2  # a masked sum over one node would be that node's own sums

T = TypeVar("T")


@dataclass(frozen=True)
class LinearGwas:
    """A finished study: its table, where it was written, and a few summaries.

    ``dropped`` names the nodes that failed during the study; the results
    are over the other nodes (``samples_per_node``).
    """

    table: GwasTable
    tsv: Path
    metadata: Path
    samples_per_node: dict[str, int]
    lambda_gc: float
    seconds: float
    dropped: tuple[str, ...] = ()


class _Dropout(Exception):
    """A node failed during a round; the round is rerun without it."""

    def __init__(self, node: str, error: NodeError) -> None:
        super().__init__(str(error))
        self.node = node
        self.error = error


def run_linear_gwas(
    federation: Federation,
    *,
    phenotype: str,
    covariates: Sequence[str] = (),
    out: Path,
    passport: str | None = None,
    block_size: int | None = None,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
) -> LinearGwas:
    """Run a linear-regression GWAS over every node and write ``out.tsv`` (GWAS-SSF).

    Parameters
    ----------
    federation
        The nodes to run on; at least two, for secure aggregation.
    phenotype, covariates
        Column names of the nodes' phenotype tables. An intercept is always added.
    passport
        The researcher's GA4GH Passport (a JWT) with a grant for every node's dataset.
    out
        Output prefix: ``out.tsv`` and ``out.tsv-meta.yaml`` are written,
        under temporary names renamed only when the study succeeds.
    block_size
        Variants per round trip (default: the smallest the nodes suggest).
    timeout
        Seconds to wait for any one HTTP call.
    progress
        Called after each block with the blocks done overall and per node.

    Raises
    ------
    InputError
        If a name is not a column at some node, the covariates are constant or
        collinear across the federation, the nodes hold different variants, or
        the federation has fewer than two nodes.
    NodeError
        If a node is unreachable before the study starts, or so many fail
        during it that fewer than two remain; the error names them.
    AuthError, DisclosureError
        If a node refuses the passport, or a disclosure rule refuses the study.
    ProtocolError
        If a node refuses the secure aggregation (e.g. a study key it does not
        trust), or a node's study key is not signed by the key on its card.
    """
    started = time.monotonic()
    covariates = list(covariates)
    if len(federation.nodes) < MIN_PARTICIPANTS:
        raise InputError(
            f"secure aggregation needs at least {MIN_PARTICIPANTS} nodes; the federation has "
            f"{len(federation.nodes)}"
        )
    with (
        _clients(federation, passport, timeout) as clients,
        ThreadPoolExecutor(len(clients)) as pool,
    ):
        described = list(pool.map(lambda c: c.dataset(), clients))
        _check_datasets(described, phenotype, covariates)
        variants = clients[0].variants()
        parameters = LinearGwasParameters(
            phenotype=phenotype,
            covariates=covariates,
            block_size=block_size or min(d.block_size for d in described),
        )
        study_id = secrets.token_hex(16)
        keys = _study_keys(pool, clients, study_id)
        active, dropped = list(clients), []
        for attempt in itertools.count(1):
            aggregation = SecureAggregation(
                study_id=study_id, round=f"round-{attempt}", keys=[keys[c.name] for c in active]
            )
            try:
                table, samples = _run_round(
                    pool, active, parameters, aggregation, variants, progress
                )
                break
            except _Dropout as dropout:
                dropped.append(dropout.node)
                active = [c for c in active if c.name != dropout.node]
                if len(active) < MIN_PARTICIPANTS:
                    raise NodeError(
                        f"{dropout.error}; only {len(active)} node remains, too few for a "
                        "masked sum; nothing was written"
                    ) from dropout.error
                logger.warning(
                    "%s; rerunning the study with fresh masks over the %d remaining nodes (%s)",
                    dropout.error, len(active), ", ".join(c.name for c in active),
                )  # fmt: skip
    note = (
        f"Node(s) {', '.join(dropped)} failed during the study; the results are over the "
        "remaining nodes."
        if dropped
        else None
    )
    metadata = GwasMetadata(
        trait=phenotype,
        covariates=tuple(covariates),
        model="linear",
        sample_size_per_node=samples,
        total_sample_size=sum(samples.values()),
        software_name="genofed",
        software_version=__version__,
        date=datetime.date.today(),
        analysis_description=note,
    )
    tsv, meta = write_gwas_ssf(Path(out), table, metadata)
    return LinearGwas(
        table,
        tsv,
        meta,
        samples,
        lambda_gc(table.p_value),
        time.monotonic() - started,
        tuple(dropped),
    )


def _each(
    pool: ThreadPoolExecutor, clients: list[NodeClient], call: Callable[[NodeClient], T]
) -> list[T]:
    """Call every node in parallel; a node that fails becomes a :class:`_Dropout`."""
    futures = [pool.submit(call, client) for client in clients]
    results: list[T] = []
    dropout: _Dropout | None = None
    for client, future in zip(clients, futures, strict=True):
        try:
            results.append(future.result())
        except NodeError as exc:
            dropout = dropout or _Dropout(client.name, exc)
    if dropout is not None:
        raise dropout
    return results


def _study_keys(
    pool: ThreadPoolExecutor, clients: list[NodeClient], study_id: str
) -> dict[str, SignedKey]:
    """Collect every node's signed study key and check it against the node's card."""
    keys = dict(
        zip(
            [c.name for c in clients],
            pool.map(lambda c: c.study_key(study_id), clients),
            strict=True,
        )
    )
    for client in clients:
        if not client.card.identity_key:
            raise InputError(
                f"the card of node {client.name} has no identity_key; recreate the federation "
                "from the node's current public.toml"
            )
        key = keys[client.name]
        if key.node != client.name:
            raise ProtocolError(f"node {client.name} sent a study key for {key.node!r}")
        verify_study_keys(
            [signed_study_key(key)],
            {client.name: parse_public_key(client.card.identity_key)},
            study_id=study_id,
        )
    return keys


def _run_round(
    pool: ThreadPoolExecutor,
    clients: list[NodeClient],
    parameters: LinearGwasParameters,
    aggregation: SecureAggregation,
    variants: dict[str, npt.NDArray[np.generic]],
    progress: ProgressCallback | None,
) -> tuple[GwasTable, dict[str, int]]:
    """Run one masked round over ``clients``; cancel its jobs if it fails."""
    request = JobRequest(
        computation="linear-gwas", version=1, parameters=parameters, aggregation=aggregation
    )
    names = [c.name for c in clients]
    jobs: dict[str, str] = {}
    samples: dict[str, int] = {}

    def submit(client: NodeClient) -> None:
        status = client.submit(request)
        jobs[client.name], samples[client.name] = status.id, status.samples or 0

    try:
        _each(pool, clients, submit)
        k = len(parameters.covariates) + 1
        payloads = _each(
            pool,
            clients,
            lambda c: c.result(jobs[c.name], "null", timeout=BLOCK_TIMEOUT_SECONDS)[0],
        )
        null = null_from_totals(sum_masked(dict(zip(names, payloads, strict=True))), k=k)
        check_covariates(null, parameters.covariates)
        logger.info("null model over %d samples at %d nodes", null.n, len(clients))
        table = _solve_blocks(pool, clients, jobs, null, variants, parameters.block_size, progress)
    except BaseException:
        for client in clients:
            if client.name in jobs:
                client.cancel(jobs[client.name])
        raise
    return table, {name: samples[name] for name in names}


def check_covariates(null: NullSums, names: Sequence[str]) -> None:
    """Refuse covariates that are constant or collinear over all samples, as PLINK 2 does.

    Raises
    ------
    InputError
        Naming the constant covariate, or the pair or the covariate that is collinear.
    """
    if null.n <= len(names) + 1:
        raise InputError(
            f"only {null.n} samples have the phenotype and every covariate, too few for "
            f"{len(names)} covariates"
        )
    if not names:
        return
    mean = null.ctc[0, 1:] / null.n
    covariance = null.ctc[1:, 1:] / null.n - np.outer(mean, mean)
    variance = np.diag(covariance)
    for name, v, m in zip(names, variance, mean, strict=True):
        if v <= 1e-12 * max(m * m, 1.0):
            raise InputError(
                f"covariate {name!r} is constant over the federation's {null.n:,} samples; "
                "remove it"
            )
    correlation = covariance / np.sqrt(np.outer(variance, variance))
    upper = np.triu(np.abs(correlation), 1)
    i, j = (int(x) for x in np.unravel_index(np.argmax(upper), upper.shape))
    if upper[i, j] > MAX_CORRELATION:
        raise InputError(
            f"covariates {names[i]!r} and {names[j]!r} are collinear (correlation "
            f"{correlation[i, j]:.4f}, above PLINK 2's --max-corr {MAX_CORRELATION}); remove one"
        )
    vif = np.diag(np.linalg.pinv(correlation))
    worst = int(np.argmax(vif))
    if vif[worst] > MAX_VIF:
        raise InputError(
            f"covariate {names[worst]!r} is collinear with the others (VIF {vif[worst]:.1f}, "
            f"above PLINK 2's --vif {MAX_VIF:g}); remove it or one of those it depends on"
        )


@contextlib.contextmanager
def _clients(
    federation: Federation, passport: str | None, timeout: float
) -> Iterator[list[NodeClient]]:
    clients = [NodeClient(card, passport=passport, timeout=timeout) for card in federation.nodes]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def _check_datasets(
    described: list[DatasetDescription], phenotype: str, covariates: Sequence[str]
) -> None:
    for description in described:
        missing = [n for n in [phenotype, *covariates] if n not in description.phenotypes]
        if missing:
            raise InputError(
                f"node {description.node} has no column {missing[0]!r}; its phenotype table has: "
                + ", ".join(description.phenotypes)
            )
    if len({d.variant_digest for d in described}) > 1:
        listing = ", ".join(
            f"{d.node} {d.variants:,} variants ({d.variant_digest[:12]})" for d in described
        )
        raise InputError(
            f"the nodes hold different variant lists: {listing}; every node must hold the "
            "same variants in the same order (align them, e.g. with plink2 --extract)"
        )


def _solve_blocks(
    pool: ThreadPoolExecutor,
    clients: list[NodeClient],
    jobs: dict[str, str],
    null: NullSums,
    variants: dict[str, npt.NDArray[np.generic]],
    block_size: int,
    progress: ProgressCallback | None,
) -> GwasTable:
    n_variants, k = len(variants["variant_id"]), len(null.cty)
    names = [c.name for c in clients]
    table = GwasTable(
        chromosome=variants["chromosome"].astype(str),
        base_pair_location=variants["base_pair_location"].astype(np.int64),
        effect_allele=variants["effect_allele"].astype(str),
        other_allele=variants["other_allele"].astype(str),
        beta=np.full(n_variants, np.nan),
        standard_error=np.full(n_variants, np.nan),
        effect_allele_frequency=np.full(n_variants, np.nan),
        p_value=np.full(n_variants, np.nan),
        variant_id=variants["variant_id"].astype(str),
        n=np.zeros(n_variants, dtype=np.int64),
    )
    n_blocks = -(-n_variants // block_size)
    node_done = dict.fromkeys(names, 0)
    for index in range(n_blocks):
        start = index * block_size
        stop = min(start + block_size, n_variants)

        def fetch(client: NodeClient, index: int = index) -> bytes:
            payload, done = client.result(
                jobs[client.name], f"block/{index}", timeout=BLOCK_TIMEOUT_SECONDS
            )
            node_done[client.name] = max(done, index + 1)
            return payload

        block = sum_masked(dict(zip(names, _each(pool, clients, fetch), strict=True)))
        rows = np.flatnonzero(np.rint(block["n_missing"]) > 0)
        missing = None
        if len(rows):  # only variants with a missing call somewhere need the missing-call sums
            selected: list[int] = rows.tolist()

            def fetch_missing(client: NodeClient, index: int = index) -> bytes:
                return client.missing(jobs[client.name], index, selected)  # noqa: B023

            payloads = _each(pool, clients, fetch_missing)
            missing = sum_masked(dict(zip(names, payloads, strict=True)))
        sums = variant_sums_from_totals(block, missing, rows, variants=stop - start, k=k)
        result = solve_linear(null, sums)
        part = slice(start, stop)
        table.beta[part] = result.beta
        table.standard_error[part] = result.standard_error
        table.p_value[part] = result.p_value
        table.n[part] = result.n
        with np.errstate(divide="ignore", invalid="ignore"):
            table.effect_allele_frequency[part] = sums.ctg[:, 0] / (2 * result.n)
        if progress is not None:
            progress(Progress("blocks", index + 1, n_blocks, tuple(node_done.items())))
    return table
