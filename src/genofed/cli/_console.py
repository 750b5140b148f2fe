"""What the CLI shows people: progress on a terminal and readable summaries.

Imports nothing heavy at module level: every subcommand imports this module
while its parser is built.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from genofed._progress import Progress

if TYPE_CHECKING:
    from genofed.coordinator.gwas import LinearGwas
    from genofed.sim import SimulationResult


class TerminalProgress:
    """Draw progress on one updating stderr line, only when stderr is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.stage = ""
        self.started = time.monotonic()

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if progress.stage != self.stage:
            self.stage, self.started = progress.stage, now
        elapsed = now - self.started
        rate = progress.done / elapsed if elapsed > 0 else 0.0
        percent = 100 * progress.done / progress.total if progress.total else 100.0
        line = (
            f"{progress.stage}: {progress.done:,}/{progress.total:,} ({percent:.0f}%)"
            f"  {rate:,.1f}/s  {elapsed:.0f}s"
        )
        if progress.parts:
            line += "  | " + " ".join(f"{name} {done:,}" for name, done in progress.parts)
        end = "\n" if progress.done >= progress.total else ""
        self.stream.write(f"\r\x1b[K{line}{end}")
        self.stream.flush()


def simulation_record(result: SimulationResult) -> dict[str, Any]:
    """Return the simulation summary as JSON-ready data."""
    return {
        "out": str(result.out),
        "seed": result.seed,
        "n_variants": result.n_variants,
        "n_chromosomes": result.n_chromosomes,
        "countries": [vars(c) for c in result.countries],
        "fst": {f"{a}-{b}": value for (a, b), value in result.fst.items()},
    }


def print_json(record: dict[str, Any]) -> None:
    """Print machine-readable output."""
    print(json.dumps(record, indent=2))


def simulation_report(result: SimulationResult) -> str:
    """Format a table per country and the pairwise Fst matrix."""
    lines = [
        f"Simulated {len(result.countries)} national cohorts in {result.out}/ "
        f"(seed {result.seed}): {result.n_variants:,} variants on chromosomes "
        f"1-{result.n_chromosomes}",
        "",
        f"{'node':<5}{'samples':>9}{'polymorphic':>13}{'missing calls':>15}"
        f"{'t2d cases':>11}{'controls':>10}{'mean ldl':>10}",
    ]
    for c in result.countries:
        lines.append(
            f"{c.code:<5}{c.samples:>9,}{c.polymorphic_variants:>13,}"
            f"{c.missing_call_rate:>14.2%} {c.t2d_cases:>11,}{c.t2d_controls:>10,}"
            f"{c.ldl_mean:>10.2f}"
        )
    codes = [c.code for c in result.countries]
    lines += [
        "",
        "Pairwise Fst (Hudson) between countries:",
        "    " + "".join(f"{c:>8}" for c in codes),
    ]
    for a in codes:
        cells = []
        for b in codes:
            value = result.fst.get((a, b), result.fst.get((b, a)))
            cells.append(f"{'-':>8}" if value is None else f"{value:>8.4f}")
        lines.append(f"{a:<4}" + "".join(cells))
    lines += [
        "",
        f"Each node's files: {result.out}/<CC>/genotypes.{{bed,bim,fam}} and phenotypes.tsv "
        "(ldl, t2d, age, sex)",
        f"Planted causal variants: {result.out}/truth.tsv; "
        f"pooled data for validation only: {result.out}/pooled/",
    ]
    return "\n".join(lines)


def gwas_record(study: LinearGwas) -> dict[str, Any]:
    """Return a GWAS summary as JSON-ready data."""
    from genofed.report import top_hits

    best = top_hits(study.table, 10)
    return {
        "model": study.model,
        "trait": study.trait,
        "tsv": str(study.tsv),
        "metadata": str(study.metadata),
        "variants": len(study.table),
        "samples_per_node": study.samples_per_node,
        "dropped_nodes": list(study.dropped),
        "filtered": study.filtered,
        "cases_per_node": study.cases_per_node,
        "lambda_gc": study.lambda_gc,
        "seconds": study.seconds,
        "top_hits": [
            {"variant_id": v, "beta": b, "p_value": p}
            for v, b, p in zip(
                best.variant_id.tolist(), best.beta.tolist(), best.p_value.tolist(), strict=True
            )
        ],
    }


def gwas_report(study: LinearGwas) -> str:
    """Format the per-node sample counts, lambda GC and the top hits."""
    import numpy as np

    from genofed.report import format_top_hits, top_hits

    tested = int((~np.isnan(study.table.p_value)).sum())
    counts = ", ".join(f"{name} {n:,}" for name, n in study.samples_per_node.items())
    dropped = (
        [f"dropped out and left out of the results: {', '.join(study.dropped)}"]
        if study.dropped
        else []
    )
    if study.cases_per_node:
        shown = ", ".join(
            f"{name} {'hidden' if n is None else format(n, ',')}"
            for name, n in study.cases_per_node.items()
        )
        dropped.append(f"cases per node: {shown}")
    if study.filtered:
        removed = ", ".join(f"--{name} {n:,}" for name, n in study.filtered.items())
        dropped.append(f"variants removed by filters: {removed}")
    return "\n".join(
        [
            f"{study.model} GWAS of {study.trait} on {len(study.table):,} variants "
            f"({tested:,} tested) over "
            f"{sum(study.samples_per_node.values()):,} samples at "
            f"{len(study.samples_per_node)} nodes in {study.seconds:.1f} s",
            f"samples per node: {counts}",
            *dropped,
            f"secure aggregation: the coordinator saw only the masked sums of all "
            f"{len(study.samples_per_node)} nodes",
            f"lambda GC: {study.lambda_gc:.3f}",
            "",
            "top hits:" + (" (beta is the log odds ratio)" if study.model == "logistic" else ""),
            format_top_hits(top_hits(study.table, 10)),
            "",
            f"wrote {study.tsv} and {study.metadata}",
        ]
    )
