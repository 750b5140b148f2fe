"""Variant quality control across the federation, equal to PLINK 2 on the pooled data.

Each node counts, per variant, the samples with ALT dosage 0, 1 and 2 and
with a missing call, over all its genotyped samples (as PLINK 2 does for
``--freq``, ``--missing`` and ``--hardy``), and masks the counts. The
coordinator sums them, which cancels the masks, and computes allele
frequencies, missing-call rates and Hardy-Weinberg exact tests
(:mod:`genofed.kernels.qc`).
"""

from __future__ import annotations

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
from genofed.kernels.qc import QcResult, variant_qc
from genofed.protocol.computations.variant_qc import CONTRACT, Block, VariantQcParameters
from genofed.report.qc_table import write_qc_table

__all__ = ["QcCounts", "VariantQc", "federated_qc", "run_qc"]

logger = logging.getLogger(__name__)

QC_BLOCK_FACTOR = 8  # QC blocks hold this many times the variants of the nodes' GWAS blocks


@dataclass(frozen=True)
class VariantQc:
    """A finished QC study: the statistics, where they were written, and its nodes.

    ``withheld`` marks the variants whose counts the nodes did not release (a
    group of 1 to ``min_count - 1`` samples); their statistics are not valid.
    """

    result: QcResult
    tsv: Path
    samples_per_node: dict[str, int]
    seconds: float
    dropped: tuple[str, ...] = ()
    withheld: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    verify_seconds: float = 0.0  # the rounds' verifiers releasing totals


def run_qc(
    federation: Federation,
    *,
    out: Path,
    passport: str | None = None,
    block_size: int | None = None,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
    http: Mapping[str, httpx.Client] | None = None,
) -> VariantQc:
    """Compute every variant's QC statistics over the federation and write ``out.tsv``.

    Raises
    ------
    InputError
        If the nodes hold different variants, or the federation has fewer than two nodes.
    NodeError, AuthError, DisclosureError, ProtocolError
        As for :func:`genofed.coordinator.run_gwas`, whose ``http`` it takes too.
    """
    started = time.monotonic()
    with Study(federation, passport=passport, timeout=timeout, http=http) as study:
        described = study.describe()
        check_same_variants(described)
        variants = study.clients[0].variants()
        # four counts per variant: blocks can be far wider than a GWAS's
        size = block_size or min(QC_BLOCK_FACTOR * min(d.block_size for d in described), 65_536)
        parameters = VariantQcParameters(block_size=size)
        result, samples = study.run(
            lambda round: federated_qc(round, len(variants["variant_id"]), parameters, progress)
        )
        dropped, verify_seconds = tuple(study.dropped), study.verify_seconds
    logger.info("QC: %d variants withheld as small groups", int(result.withheld.sum()))
    qc = result.qc
    columns: dict[str, npt.NDArray[np.generic]] = {
        "effect_allele_frequency": qc.alt_frequency,
        "missing_count": qc.missing_count,
        "missing_rate": qc.missing_rate,
        "hwe_p": qc.hwe_p,
        "n": qc.n_called,
    }
    tsv = write_qc_table(Path(f"{out}.tsv"), variants, columns, result.withheld)
    seconds = time.monotonic() - started
    return VariantQc(qc, tsv, samples, seconds, dropped, result.withheld, verify_seconds)


@dataclass(frozen=True)
class QcCounts:
    """The federation's QC statistics, and the variants whose counts were withheld."""

    qc: QcResult
    withheld: npt.NDArray[np.bool_]


def federated_qc(
    round: Round,
    n_variants: int,
    parameters: VariantQcParameters,
    progress: ProgressCallback | None,
) -> tuple[QcCounts, dict[str, int]]:
    """Run a ``variant-qc`` job in ``round``; read the released genotype counts of every block."""
    block_size = parameters.block_size
    round.submit(CONTRACT, parameters, variants=n_variants)
    counts = np.zeros((n_variants, 4), dtype=np.int64)
    withheld = np.zeros(n_variants, dtype=np.bool_)
    n_blocks = -(-n_variants // block_size)
    done = dict.fromkeys(round.names, 0)
    for index in range(n_blocks):
        start = index * block_size
        released = round.fetch(Block(index), done=done)
        counts[start : start + len(released["counts"])] = released["counts"]
        withheld[start : start + len(released["counts"])] = released["withheld"] > 0
        if progress is not None:
            progress(Progress("qc blocks", index + 1, n_blocks, tuple(done.items())))
    logger.info("QC of %d variants over %d nodes", n_variants, len(round.names))
    return QcCounts(variant_qc(counts), withheld), {
        name: round.samples[name] for name in round.names
    }
