"""A federated PCA: QC, LD pruning and principal components over every node.

One ``pca`` job runs the contract's plan (:mod:`genofed.protocol.computations.pca`):
the released genotype counts give the federation's allele frequencies and
the variants to use; the released LD sums are pruned as ``plink2
--indep-pairwise`` would; then block Krylov iteration
(:func:`genofed.kernels.pca.fit_pca`) sends a ``q x L`` block per round and
gets back the verified total of every node's ``X_k'(X_k Q)``. It ends up
with eigenvalues and variant loadings; every node computes and keeps its
own samples' scores as a covariate set, which later studies use by name
(``--covariates pcs:1-10``). The round's verifier replays every step, so
the coordinator can ask for nothing else.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed.coordinator.federation import Federation
from genofed.coordinator.study import Round, Study, check_same_variants
from genofed.errors import InputError, ProtocolError
from genofed.kernels.ld import concatenate_ld_sums, prune
from genofed.kernels.pca import PcaResult, fit_pca
from genofed.kernels.qc import variant_qc
from genofed.protocol.computations import pca
from genofed.protocol.computations.pca import (
    MAX_LD_WINDOW,
    Block,
    Keep,
    Ld,
    PcaParameters,
    Product,
    Scores,
    Summary,
    Variants,
    basis_seed,
    ld_ranges,
    ld_sums_from_totals,
    select_variants,
)
from genofed.protocol.contract import Totals
from genofed.report._atomic import staged_files

__all__ = ["LdPruning", "NodeSummary", "PcaRun", "run_pca"]

logger = logging.getLogger(__name__)

QC_BLOCK = 32_768  # variants per block of genotype counts
MAX_COMPONENTS = 100  # as the pca job's parameters allow


@dataclass(frozen=True)
class LdPruning:
    """``plink2 --indep-pairwise <window> <step> <r2>``, the window and step in variants.

    ``window`` 0 turns pruning off. PLINK's common choice of 50 variants, step 5 and r²
    0.2 is the default: each node sends 96 bytes per pair of variants in a window
    (six masked sums), about 4.7 KB per variant at a window of 50.
    """

    window: int = 50
    step: int = 5
    r2: float = 0.2

    def __post_init__(self) -> None:
        if self.window == 0:
            return
        if not 2 <= self.window <= MAX_LD_WINDOW:
            raise InputError(
                f"--ld-window {self.window}: give 2 to {MAX_LD_WINDOW} variants, "
                "or 0 for no pruning"
            )
        if not 1 <= self.step <= self.window:
            raise InputError(f"--ld-step {self.step}: give 1 to the window ({self.window})")
        if not 0 <= self.r2 < 1:
            raise InputError(f"--ld-r2 {self.r2}: give a threshold from 0 up to (not including) 1")


@dataclass(frozen=True)
class NodeSummary:
    """One node's mean and covariance of PC1 and PC2 over its samples (released by it)."""

    n: int
    mean: npt.NDArray[np.float64]  # (2,)
    covariance: npt.NDArray[np.float64]  # (2, 2)


@dataclass(frozen=True)
class PcaRun:
    """What ``genofed pca`` found and wrote."""

    run: str  # the study id, recorded with every node's covariate set
    name: str  # the covariate set the nodes stored
    result: PcaResult
    variants_used: int
    filtered: dict[str, int]  # variants removed by each step (monomorphic, maf, ld)
    samples: dict[str, int]
    summaries: dict[str, NodeSummary]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    verify_seconds: float = 0.0  # the rounds' verifiers replaying requests and releasing totals


def run_pca(
    federation: Federation,
    *,
    out: Path,
    components: int = 10,
    name: str = "pcs",
    passport: str | None = None,
    maf: float | None = None,
    ld: LdPruning | None = None,
    tolerance: float = 1e-6,
    max_iterations: int = 100,
    timeout: float = 120.0,
    progress: ProgressCallback | None = None,
    http: Mapping[str, httpx.Client] | None = None,
) -> PcaRun:
    """Run a federated PCA and write ``out.eigenval``, ``out.eigenvec.var`` and ``out.prune.in``.

    Parameters
    ----------
    federation
        The nodes; at least two, for secure aggregation.
    out
        Output prefix. Files appear only when the whole run succeeds.
    components
        Principal components to find (PLINK's ``--pca`` count).
    name
        The covariate set every node stores its samples' scores under.
    passport
        The researcher's GA4GH Passport.
    maf
        Leave out variants with a minor allele frequency below it (PLINK's
        ``--maf``); monomorphic variants are always left out.
    ld
        Prune the remaining variants as ``plink2 --indep-pairwise`` would on
        the pooled samples (None: PLINK's common window of 50 variants, step
        5, r² 0.2); ``LdPruning(window=0)`` uses every variant.
    tolerance, max_iterations
        See :func:`genofed.kernels.pca.fit_pca`; its random start is seeded by
        the study, so the verifying node replays it.
    timeout
        Seconds to wait for any one HTTP call.
    progress
        Called after each step of the QC and after each PCA round.
    http
        As for :func:`genofed.coordinator.run_gwas`.

    Raises
    ------
    InputError
        If too few variants remain for the components asked for.
    NodeError, AuthError, DisclosureError, ProtocolError
        As for :func:`genofed.coordinator.run_gwas`.
    """
    started = time.monotonic()
    out = Path(out)
    ld = LdPruning() if ld is None else ld
    if not 1 <= components <= MAX_COMPONENTS:
        raise InputError(f"--components {components}: give 1 to {MAX_COMPONENTS}")
    if maf is not None and not 0 <= maf <= 0.5:
        raise InputError(f"--maf {maf}: give a minor allele frequency from 0 to 0.5")
    with Study(federation, passport=passport, timeout=timeout, http=http) as study:
        check_same_variants(study.describe())
        variants = study.clients[0].variants()
        n_variants = len(variants["variant_id"])
        parameters = PcaParameters(
            components=components, name=name, run=study.study_id,
            block_size=min(QC_BLOCK, max(n_variants, 1)), maf=maf,
            ld_window=ld.window, ld_step=ld.step, ld_r2=ld.r2,
            tolerance=tolerance, max_iterations=max_iterations,
        )  # fmt: skip

        def body(round: Round) -> _Found:
            round.submit(pca.CONTRACT, parameters, variants=n_variants)
            counts, withheld = _genotype_counts(round, n_variants, parameters.block_size, progress)
            selection = select_variants(counts, withheld, maf)
            chosen = selection.variants
            if len(chosen) < max(components, 2):
                raise InputError(
                    f"only {len(chosen)} variants remain after the filters "
                    f"({selection.filtered}); too few for {components} components"
                )
            request = {"variants": chosen, "mean": selection.mean, "scale": selection.scale}
            round.ask(Variants(), request)
            kept = np.arange(len(chosen))
            if ld.window > 0:
                chromosomes = variants["chromosome"][chosen].astype(str)
                kept = np.flatnonzero(_ld_prune(round, chromosomes, ld, progress))
                if len(kept) < max(components, 2):
                    raise InputError(
                        f"LD pruning kept {len(kept)} of {len(chosen)} variants, too few for "
                        f"{components} components; raise --ld-r2 or use more variants"
                    )
                round.ask(Keep(), {"variants": kept.astype(np.int64)}, m=len(chosen))
            result, summaries = _pca_rounds(round, parameters, len(kept), progress)
            return _Found(counts, withheld, selection.filtered, chosen[kept], result, summaries)

        found = study.run(body)
        verify_seconds = study.verify_seconds
        filtered = dict(found.filtered)
        if ld.window > 0:
            chosen_before = select_variants(found.counts, found.withheld, maf).variants
            filtered["ld"] = len(chosen_before) - len(found.used)
        chosen, result, summaries = found.used, found.result, found.summaries
        samples = {s: summaries[s].n for s in summaries}
        qc = variant_qc(found.counts)
    targets = {
        kind: Path(f"{out}.{kind}") for kind in ("eigenval", "eigenvec.var", "prune.in", "pca.json")
    }
    run = PcaRun(
        run=study.study_id,
        name=name,
        result=result,
        variants_used=len(chosen),
        filtered=filtered,
        samples=samples,
        summaries=summaries,
        files=targets,
        seconds=time.monotonic() - started,
        verify_seconds=verify_seconds,
    )
    _write_outputs(targets, variants, chosen, qc.alt_frequency[chosen], run)
    return run


@dataclass(frozen=True)
class _Found:
    """What the PCA job's rounds found."""

    counts: npt.NDArray[np.int64]  # (V, 4) the federation's genotype counts
    withheld: npt.NDArray[np.bool_]  # variants whose counts were withheld
    filtered: dict[str, int]
    used: npt.NDArray[np.int64]  # the variants in the PCA, positions in the variant list
    result: PcaResult
    summaries: dict[str, NodeSummary]


def _genotype_counts(
    round: Round, n_variants: int, block_size: int, progress: ProgressCallback | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Fetch the released genotype counts of every block, and which were withheld."""
    counts = np.zeros((n_variants, 4), dtype=np.int64)
    withheld = np.zeros(n_variants, dtype=np.bool_)
    n_blocks = -(-n_variants // block_size)
    done = dict.fromkeys(round.names, 0)
    for index in range(n_blocks):
        released = round.fetch(Block(index), done=done)
        rows = slice(index * block_size, index * block_size + len(released["counts"]))
        counts[rows], withheld[rows] = released["counts"], released["withheld"] > 0
        if progress is not None:
            progress(Progress("qc blocks", index + 1, n_blocks, tuple(done.items())))
    return counts, withheld


def _ld_prune(
    round: Round,
    chromosomes: npt.NDArray[np.str_],
    ld: LdPruning,
    progress: ProgressCallback | None,
) -> npt.NDArray[np.bool_]:
    """Sum the nodes' LD sums range by range and prune as ``plink2 --indep-pairwise``."""
    ranges = ld_ranges(len(chromosomes), ld.window)
    parts = []
    for index, rows in enumerate(ranges):
        request = {"rows": np.array(rows), "window": np.array([ld.window])}
        parts.append(ld_sums_from_totals(round.ask(Ld(index), request)))
        if progress is not None:
            progress(Progress("ld blocks", index + 1, len(ranges)))
    keep = prune(
        concatenate_ld_sums(parts), chromosomes, r2_threshold=ld.r2, window=ld.window, step=ld.step
    )
    logger.info("LD pruning kept %d of %d variants", int(keep.sum()), len(chromosomes))
    return keep


def _pca_rounds(
    round: Round, parameters: PcaParameters, n_variants: int, progress: ProgressCallback | None
) -> tuple[PcaResult, dict[str, NodeSummary]]:
    counter = itertools.count()

    def multiply(basis: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return round.ask(Product(next(counter)), {"basis": basis})["product"]

    def report(iteration: int, residual: float) -> None:
        logger.info("PCA round %d: largest relative residual %.2e", iteration, residual)
        if progress is not None:
            progress(Progress("pca rounds", iteration, max_iterations))

    tolerance, max_iterations = parameters.tolerance, parameters.max_iterations
    result = fit_pca(
        multiply, n_variants, parameters.components, tolerance=tolerance,
        max_iterations=max_iterations, seed=basis_seed(parameters.run), progress=report,
    )  # fmt: skip
    if not result.converged:
        slow = np.flatnonzero(result.residuals >= tolerance) + 1
        logger.warning(
            "PCs %s did not converge to %.0e in %d rounds (largest residual %.1e); their "
            "eigenvalues lie close together, so each one alone is not well determined",
            ", ".join(map(str, slow)), tolerance, result.iterations, float(result.residuals.max()),
        )  # fmt: skip
    totals = round.ask(Scores(), {"loadings": result.loadings, "theta": result.theta})
    _check_unit_scores(totals, parameters.components)
    released = round.ask_released(Summary(), {"components": np.array([0, 1])})
    summaries = {
        node: NodeSummary(int(a["n"]), a["mean"].astype(float), a["covariance"].astype(float))
        for node, a in released.items()
    }
    return result, summaries


def _check_unit_scores(totals: Totals, k: int) -> None:
    """Check that the nodes' scores add up to unit, uncorrelated eigenvectors: ``U'U = I``."""
    cross = totals["cross"].reshape(k, k)
    worst = float(np.abs(cross - np.eye(k)).max())
    if worst > 1e-6:
        raise ProtocolError(
            f"the nodes' PC scores are not unit eigenvectors (U'U differs from I by {worst:.1e})"
        )


def _write_outputs(
    targets: dict[str, Path],
    variants: dict[str, npt.NDArray[np.generic]],
    chosen: npt.NDArray[np.intp],
    alt_frequency: npt.NDArray[np.float64],
    run: PcaRun,
) -> None:
    """Write PLINK 2's ``.eigenval`` and ``.eigenvec.var``, ``.prune.in`` and ``.pca.json``.

    The four files appear together or not at all.
    """
    ids = variants["variant_id"][chosen].astype(str)
    with staged_files(*targets.values()) as (eigenval, weights, prune_in, summary):
        eigenval.write_text("".join(f"{v:.6g}\n" for v in run.result.eigenvalues))
        prune_in.write_text("".join(f"{v}\n" for v in ids))
        weights.write_text(_eigenvec_var(variants, chosen, alt_frequency, run.result))
        summary.write_text(json.dumps(_summary(run), indent=2) + "\n")


def _eigenvec_var(
    variants: dict[str, npt.NDArray[np.generic]],
    chosen: npt.NDArray[np.intp],
    alt_frequency: npt.NDArray[np.float64],
    result: PcaResult,
) -> str:
    """``plink2 --pca biallelic-var-wts`` columns: weights of the major allele's count."""
    alt, ref = variants["effect_allele"][chosen].astype(str), variants["other_allele"][chosen]
    major_is_alt = alt_frequency > 0.5
    weights = result.plink_weights * np.where(major_is_alt, 1.0, -1.0)[:, None]
    header = ["#CHROM", "ID", "MAJ", "NONMAJ"] + [f"PC{i + 1}" for i in range(weights.shape[1])]
    lines = ["\t".join(header)]
    for j, index in enumerate(chosen):
        major, minor = (alt[j], ref[j]) if major_is_alt[j] else (ref[j], alt[j])
        names = [str(variants["chromosome"][index]), str(variants["variant_id"][index])]
        values = [f"{w:.6g}" for w in weights[j]]
        lines.append("\t".join([*names, str(major), str(minor), *values]))
    return "\n".join(lines) + "\n"


def _summary(run: PcaRun) -> dict[str, object]:
    """Return what the run did, for the record and for ``genofed gwas`` users."""
    return {
        "run": run.run,
        "covariate_set": run.name,
        "components": len(run.result.eigenvalues),
        "eigenvalues": run.result.eigenvalues.tolist(),
        "variants_used": run.variants_used,
        "filtered": run.filtered,
        "rounds": run.result.iterations,
        "converged": run.result.converged,
        "residuals": run.result.residuals.tolist(),
        "samples_per_node": run.samples,
        "node_summaries": {
            node: {"n": s.n, "mean": s.mean.tolist(), "covariance": s.covariance.tolist()}
            for node, s in run.summaries.items()
        },
    }
