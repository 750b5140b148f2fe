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

import datetime
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed._version import __version__
from genofed.coordinator.federation import Federation
from genofed.coordinator.logistic import solve_logistic_blocks
from genofed.coordinator.qc import federated_qc
from genofed.coordinator.study import Round, Study, check_same_variants
from genofed.errors import InputError
from genofed.kernels.linreg import NullSums, solve_linear
from genofed.kernels.qc import qc_filters
from genofed.protocol.computations import linear_gwas, logistic_gwas
from genofed.protocol.computations.linear_gwas import (
    Block,
    BlockMissing,
    LinearGwasParameters,
    Null,
    null_from_totals,
    variant_sums_from_totals,
)
from genofed.protocol.computations.logistic_gwas import LogisticGwasParameters
from genofed.protocol.computations.variant_qc import VariantQcParameters
from genofed.protocol.contract import Treatment, treatment_labels
from genofed.protocol.covariates import covariate_reference, expand_covariates
from genofed.protocol.messages import DatasetDescription
from genofed.report import GwasMetadata, GwasTable, lambda_gc, write_gwas_ssf

__all__ = ["LinearGwas", "run_gwas", "run_linear_gwas"]

logger = logging.getLogger(__name__)

# PLINK 2's --glm defaults for covariates: --max-corr 0.999 and --vif 50.
MAX_CORRELATION = 0.999
MAX_VIF = 50.0


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
    filtered: dict[str, int] = field(default_factory=dict)  # variants removed per filter
    model: str = "linear"  # or "logistic": ``table.beta`` is then the log odds ratio
    trait: str = ""
    cases_per_node: dict[str, int | None] = field(default_factory=dict)  # logistic only
    verify_seconds: float = 0.0  # the rounds' verifiers replaying requests and releasing totals


def run_linear_gwas(federation: Federation, **options: Any) -> LinearGwas:
    """Run a linear-regression GWAS: :func:`run_gwas` with ``model="linear"``."""
    return run_gwas(federation, model="linear", **options)


def run_gwas(
    federation: Federation,
    *,
    model: str = "linear",
    phenotype: str,
    covariates: Sequence[str] = (),
    out: Path,
    passport: str | None = None,
    block_size: int | None = None,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
    maf: float | None = None,
    geno: float | None = None,
    hwe: float | None = None,
    test: str = "wald",
    refine_below: float = 1e-3,
    http: Mapping[str, httpx.Client] | None = None,
) -> LinearGwas:
    """Run a GWAS over every node and write ``out.tsv`` (GWAS-SSF).

    Parameters
    ----------
    federation
        The nodes to run on; at least two, for secure aggregation.
    model
        ``"linear"`` (a quantitative phenotype, as ``plink2 --glm``) or
        ``"logistic"`` (a 0/1 phenotype, as ``plink2 --glm`` with its default
        Firth fallback; the table has odds ratios, case and control counts,
        the Firth flag and PLINK's error code).
    phenotype, covariates
        Column names of the nodes' phenotype tables. An intercept is always added.
    test, refine_below
        For the logistic model: ``"wald"`` (PLINK's test for every variant) or
        ``"score"``, a faster and different test: a score test of every
        variant against the covariates-only model, with the variants whose
        score p is below ``refine_below`` refitted as with ``"wald"``.
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
    http
        HTTP clients to use instead of connecting from the nodes' cards, by
        node name (e.g. in-process nodes); see :class:`~genofed.coordinator.study.Study`.
    maf, geno, hwe
        PLINK 2's variant filters, computed before the GWAS (a ``variant-qc``
        round) over the samples in the analysis, as ``plink2 --require-pheno
        --require-covar`` does (over all genotyped samples, a node's
        ``min_difference`` rule would refuse a few samples without the
        phenotype as a differencing query): remove variants
        with a minor allele frequency below ``maf``, a missing-call rate above
        ``geno``, or a Hardy-Weinberg exact p below ``hwe``. Removed variants
        are left out of the results; ``LinearGwas.filtered`` counts them.

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
    covariates = expand_covariates(covariates)
    if model not in ("linear", "logistic"):
        raise InputError(f"the model is 'linear' or 'logistic', not {model!r}")
    if test not in ("wald", "score") or (test == "score" and model != "logistic"):
        raise InputError(f"the test is 'wald', or 'score' for the logistic model, not {test!r}")
    if not 0 < refine_below <= 1:
        raise InputError(f"--refine-below {refine_below}: give a p-value threshold in (0, 1]")
    with Study(federation, passport=passport, timeout=timeout, http=http) as study:
        described = study.describe()
        covariate_sets = _check_datasets(described, phenotype, covariates)
        variants = study.clients[0].variants()
        parameters = LinearGwasParameters(
            phenotype=phenotype,
            covariates=covariates,
            block_size=block_size or _default_block_size(model, described),
        )
        n_variants = len(variants["variant_id"])
        keep: npt.NDArray[np.bool_] | None = None
        filtered: dict[str, int] = {}
        if (maf, geno, hwe) != (None, None, None):
            cohort = VariantQcParameters(
                block_size=parameters.block_size, phenotype=phenotype, covariates=covariates
            )
            qc, _ = study.run(lambda round: federated_qc(round, n_variants, cohort, progress))
            removed = qc_filters(qc.qc, maf=maf, geno=geno, hwe=hwe)
            keep, filtered = removed_by_filters({"withheld": qc.withheld, **removed})
            logger.info("variant filters removed %s", filtered)

        cases: dict[str, int | None] = {}

        def run(round: Round) -> tuple[GwasTable, dict[str, int]]:
            k = len(covariates) + 1
            if model == "logistic":
                logistic = LogisticGwasParameters.model_validate(
                    {**parameters.model_dump(), "test": test, "refine_below": refine_below}
                )
                round.submit(logistic_gwas.CONTRACT, logistic, variants=n_variants)
                cases.update({name: round.groups[name].get("cases") for name in round.names})
                without = [name for name, count in cases.items() if count == 0]
                if without:
                    logger.warning(
                        "node(s) %s have no cases; they take part through their controls",
                        ", ".join(without),
                    )
                table = solve_logistic_blocks(
                    round, variants, parameters.block_size, k, progress,
                    test=test, refine_below=refine_below,
                )  # fmt: skip
            else:
                round.submit(linear_gwas.CONTRACT, parameters, variants=n_variants)
                null = null_from_totals(round.fetch(Null()))
                check_covariates(null, covariates)
                logger.info("null model over %d samples at %d nodes", null.n, len(round.clients))
                table = _solve_blocks(round, null, variants, parameters.block_size, progress)
            return table, {name: round.samples[name] for name in round.names}

        table, samples = study.run(run)
        dropped, verify_seconds = tuple(study.dropped), study.verify_seconds
    if keep is not None:
        table = table.take(np.flatnonzero(keep))
    notes = [
        f"PLINK 2 variant filter --{name} removed {n:,} variants." for name, n in filtered.items()
    ]
    without = [name for name, count in cases.items() if count == 0 and name in samples]
    if without:
        notes.append(f"Node(s) {', '.join(without)} have no cases and took part with controls.")
    if dropped:
        notes.append(
            f"Node(s) {', '.join(dropped)} failed during the study; the results are over the "
            "remaining nodes."
        )
    note = " ".join(notes) or None
    metadata = GwasMetadata(
        trait=phenotype,
        covariates=tuple(covariates),
        model=model,
        sample_size_per_node=samples,
        total_sample_size=sum(samples.values()),
        software_name="genofed",
        software_version=__version__,
        date=datetime.date.today(),
        analysis_description=note,
        covariate_sets=covariate_sets,
    )
    tsv, meta = write_gwas_ssf(Path(out), table, metadata)
    seconds = time.monotonic() - started
    return LinearGwas(
        table,
        tsv,
        meta,
        samples,
        lambda_gc(table.p_value),
        seconds,
        dropped,
        filtered,
        model,
        phenotype,
        {name: cases[name] for name in samples if name in cases},
        verify_seconds,
    )


# PLINK 2 applies its variant filters in this order, and reports each one's removals
# among the variants the filters before it kept. Variants whose counts the nodes withheld
# (small groups) cannot be judged, and are removed first.
FILTER_ORDER = ("withheld", "geno", "hwe", "maf")


def removed_by_filters(
    removed: dict[str, npt.NDArray[np.bool_]],
) -> tuple[npt.NDArray[np.bool_], dict[str, int]]:
    """Return the variants every filter keeps, and how many each filter removed, in order."""
    keep = np.ones(len(next(iter(removed.values()))), dtype=np.bool_)
    counts = {}
    for name in FILTER_ORDER:
        if name in removed:
            counts[name] = int((keep & removed[name]).sum())
            keep &= ~removed[name]
    return keep, counts


# A logistic fit takes as many round trips per block as its slowest variant needs (up to
# ~60 with Firth), so its blocks are as wide as the nodes' decoded int8 genotypes allow.
LOGISTIC_BLOCK_BYTES = 1 << 27  # decoded genotypes of one block at the largest node
MAX_BLOCK_SIZE = 65_536


def _default_block_size(model: str, described: Sequence[DatasetDescription]) -> int:
    """Return the nodes' smallest suggested block size, wider for logistic fits if possible."""
    suggested = min(d.block_size for d in described)
    counts = [d.genotyped_samples for d in described]
    if model != "logistic" or None in counts:
        return suggested
    largest = max(count for count in counts if count is not None)
    return max(suggested, min(MAX_BLOCK_SIZE, LOGISTIC_BLOCK_BYTES // max(largest, 1)))


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
    eigenvalues, eigenvectors = np.linalg.eigh(correlation)
    if eigenvalues[0] <= 1e-10 * eigenvalues[-1]:  # singular: some covariates add up to another
        involved = [n for n, w in zip(names, eigenvectors[:, 0], strict=True) if abs(w) > 1e-6]
        raise InputError(
            f"covariates {', '.join(map(repr, involved))} are collinear as a group (their "
            "correlation matrix is singular, an infinite VIF for PLINK 2); remove one of them"
        )
    vif = np.diag(np.linalg.inv(correlation))
    worst = int(np.argmax(vif))
    if vif[worst] > MAX_VIF:
        raise InputError(
            f"covariate {names[worst]!r} is collinear with the others (VIF {vif[worst]:.1f}, "
            f"above PLINK 2's --vif {MAX_VIF:g}); remove it or one of those it depends on"
        )


def _check_datasets(
    described: list[DatasetDescription], phenotype: str, covariates: Sequence[str]
) -> dict[str, str]:
    """Check every node has the columns; return each covariate set's run, the same at all."""
    runs: dict[str, str] = {}
    for description in described:
        missing = [
            n
            for n in [phenotype, *covariates]
            if n not in description.phenotypes and covariate_reference(n) is None
        ]
        if missing:
            raise InputError(
                f"node {description.node} has no column {missing[0]!r}; its phenotype table has: "
                + ", ".join(description.phenotypes)
            )
        for name in covariates:
            reference = covariate_reference(name)
            if reference is not None:
                runs[reference[0]] = _set_run(description, *reference, runs.get(reference[0]))
    check_same_variants(described)
    return runs


def _set_run(description: DatasetDescription, name: str, column: str, run: str | None) -> str:
    """Return the run of a node's covariate set, refusing a missing one or one from another run."""
    stored = description.covariate_sets.get(name)
    if stored is None:
        raise InputError(
            f"node {description.node} has no covariate set {name!r}; run genofed pca "
            f"--name {name} over the federation first"
        )
    if column not in stored.columns:
        raise InputError(
            f"covariate set {name!r} at node {description.node} has {len(stored.columns)} "
            f"columns ({stored.columns[0]} to {stored.columns[-1]}); there is no {column}"
        )
    if run is not None and stored.run != run:
        raise InputError(
            f"covariate set {name!r} comes from PCA run {stored.run} at node "
            f"{description.node} but from run {run} at another node; run genofed pca again "
            "over the federation"
        )
    return stored.run


def _solve_blocks(
    round: Round,
    null: NullSums,
    variants: dict[str, npt.NDArray[np.generic]],
    block_size: int,
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
        extra={"disclosure": np.full(n_variants, ".", dtype=object)},
    )
    n_blocks = -(-n_variants // block_size)
    done = dict.fromkeys(round.names, 0)
    for index in range(n_blocks):
        start = index * block_size
        stop = min(start + block_size, n_variants)
        block = round.fetch(Block(index), done=done)
        treatment = block["treatment"]
        exact = treatment == Treatment.EXACT
        rows = np.flatnonzero(exact & (block["n_missing"] > 0))
        missing = None
        if len(rows):  # only exact variants with a missing call need the missing-call sums
            missing = round.ask(BlockMissing(index), {"variants": rows})
        sums = variant_sums_from_totals(block, missing, rows)
        result = solve_linear(null, sums)
        part = slice(start, stop)
        withheld = treatment == Treatment.WITHHELD
        table.beta[part] = np.where(withheld, np.nan, result.beta)
        table.standard_error[part] = np.where(withheld, np.nan, result.standard_error)
        table.p_value[part] = np.where(withheld, np.nan, result.p_value)
        table.n[part] = np.where(withheld, 0, result.n)
        table.extra["disclosure"][part] = treatment_labels(treatment)
        with np.errstate(divide="ignore", invalid="ignore"):
            frequency = sums.ctg[:, 0] / (2 * result.n)
        table.effect_allele_frequency[part] = np.where(withheld, np.nan, frequency)
        if progress is not None:
            progress(Progress("blocks", index + 1, n_blocks, tuple(done.items())))
    table.extra["disclosure"] = table.extra["disclosure"].astype(str)
    return table
