"""What the CLI shows people: progress on a terminal and readable summaries."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from genofed.sim import Progress, SimulationResult


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
