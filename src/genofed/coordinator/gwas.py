"""A linear-regression GWAS across the federation, equal to PLINK 2 on the pooled data.

Every node computes its sums over its own samples; the coordinator adds
them block by block and solves. Results are written only once every block
of every node has arrived.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from operator import add
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed._version import __version__
from genofed.coordinator.client import NodeClient
from genofed.coordinator.federation import Federation
from genofed.errors import InputError
from genofed.kernels.linreg import NullSums, VariantSums, solve_linear
from genofed.protocol.linreg import decode_null_sums, decode_variant_sums
from genofed.protocol.messages import DatasetDescription, JobRequest, LinearGwasParameters
from genofed.report import GwasMetadata, GwasTable, lambda_gc, write_gwas_ssf

__all__ = ["LinearGwas", "run_linear_gwas"]

logger = logging.getLogger(__name__)

# PLINK 2's --glm defaults for covariates: --max-corr 0.999 and --vif 50.
MAX_CORRELATION = 0.999
MAX_VIF = 50.0
BLOCK_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class LinearGwas:
    """A finished study: its table, where it was written, and a few summaries."""

    table: GwasTable
    tsv: Path
    metadata: Path
    samples_per_node: dict[str, int]
    lambda_gc: float
    seconds: float


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
        The nodes to run on.
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
        collinear across the federation, or the nodes hold different variants.
    NodeError
        If a node is unreachable or fails; the error names it.
    AuthError, DisclosureError
        If a node refuses the passport, or a disclosure rule refuses the study.
    """
    started = time.monotonic()
    covariates = list(covariates)
    with (
        _clients(federation, passport, timeout) as clients,
        ThreadPoolExecutor(len(clients)) as pool,
    ):
        described = list(pool.map(lambda c: c.dataset(), clients))
        _check_datasets(described, phenotype, covariates)
        variants = clients[0].variants()
        size = block_size or min(d.block_size for d in described)
        request = JobRequest(
            computation="linear-gwas",
            version=1,
            parameters=LinearGwasParameters(
                phenotype=phenotype, covariates=covariates, block_size=size
            ),
        )
        jobs: dict[str, str] = {}
        try:
            for client, status in zip(
                clients, pool.map(lambda c: c.submit(request), clients), strict=True
            ):
                jobs[client.name] = status.id
            k = len(covariates) + 1
            nulls = list(
                pool.map(
                    lambda c: decode_null_sums(
                        c.result(jobs[c.name], "null", timeout=BLOCK_TIMEOUT_SECONDS)[0], k=k
                    ),
                    clients,
                )
            )
            samples = {c.name: null.n for c, null in zip(clients, nulls, strict=True)}
            null = reduce(add, nulls)
            check_covariates(null, covariates)
            logger.info("null model over %d samples at %d nodes", null.n, len(clients))
            table = _solve_blocks(pool, clients, jobs, null, variants, size, k, progress)
        except BaseException:
            for client in clients:
                if client.name in jobs:
                    client.cancel(jobs[client.name])
            raise
    metadata = GwasMetadata(
        trait=phenotype,
        covariates=tuple(covariates),
        model="linear",
        sample_size_per_node=samples,
        total_sample_size=sum(samples.values()),
        software_name="genofed",
        software_version=__version__,
        date=datetime.date.today(),
    )
    tsv, meta = write_gwas_ssf(Path(out), table, metadata)
    return LinearGwas(
        table, tsv, meta, samples, lambda_gc(table.p_value), time.monotonic() - started
    )


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
    k: int,
    progress: ProgressCallback | None,
) -> GwasTable:
    n_variants = len(variants["variant_id"])
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
    node_done = dict.fromkeys(jobs, 0)
    for index in range(n_blocks):
        start = index * block_size
        stop = min(start + block_size, n_variants)

        def fetch(client: NodeClient, index: int = index, width: int = stop - start) -> VariantSums:
            payload, done = client.result(
                jobs[client.name], f"block/{index}", timeout=BLOCK_TIMEOUT_SECONDS
            )
            node_done[client.name] = max(done, index + 1)
            return decode_variant_sums(payload, variants=width, k=k)

        sums = reduce(add, pool.map(fetch, clients))
        result = solve_linear(null, sums)
        block = slice(start, stop)
        table.beta[block] = result.beta
        table.standard_error[block] = result.standard_error
        table.p_value[block] = result.p_value
        table.n[block] = result.n
        with np.errstate(divide="ignore", invalid="ignore"):
            table.effect_allele_frequency[block] = sums.ctg[:, 0] / (2 * result.n)
        if progress is not None:
            progress(Progress("blocks", index + 1, n_blocks, tuple(node_done.items())))
    return table
