"""``genofed simulate``: write real-like synthetic cohorts for national nodes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genofed.cli._console import (
    TerminalProgress,
    print_json,
    simulation_record,
    simulation_report,
)
from genofed.sim import DEFAULT_COUNTRIES


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` subcommand."""
    parser = commands.add_parser(
        "simulate",
        parents=[common],
        help="simulate genotype and phenotype files for national nodes",
        description=(
            "Simulate real-like cohorts (msprime coalescent, six European countries) and write "
            "one PLINK file set and phenotype table per country."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    add_simulation_options(parser)
    parser.set_defaults(run=run)


def add_simulation_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``simulate`` and ``demo``."""
    parser.add_argument(
        "--countries",
        default=",".join(DEFAULT_COUNTRIES),
        help="comma-separated country codes (default: %(default)s)",
    )
    parser.add_argument(
        "--samples-per-country", type=int, default=1000, help="default: %(default)s"
    )
    parser.add_argument(
        "--variants", type=int, default=20_000, help="variants per file set (default: %(default)s)"
    )
    parser.add_argument(
        "--variant-spacing",
        type=int,
        help="mean bp between variants, which sets the genome length "
        "(default: enough for the sample size, at least 250)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: drawn and recorded)")
    parser.add_argument("--workers", type=int, help="parallel threads (default: CPU count)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty output directory")


def simulate_from_args(args: argparse.Namespace) -> Any:
    """Call :func:`simulate_cohorts` with the parsed options."""
    from genofed import simulate_cohorts

    return simulate_cohorts(
        args.out,
        args.countries,
        samples_per_country=args.samples_per_country,
        n_variants=args.variants,
        seed=args.seed,
        force=args.force,
        variant_spacing_bp=args.variant_spacing,
        workers=args.workers,
        progress=TerminalProgress(),
    )


def run(args: argparse.Namespace) -> int:
    """Simulate and report."""
    result = simulate_from_args(args)
    if args.format == "json":
        print_json(simulation_record(result))
    else:
        print(simulation_report(result))
    return 0
