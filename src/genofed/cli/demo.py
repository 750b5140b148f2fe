"""``genofed demo``: the whole pipeline on synthetic data, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genofed.cli._console import print_json, simulation_record, simulation_report
from genofed.cli.simulate import add_simulation_options, simulate_from_args


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run genofed end to end on six synthetic national cohorts",
        description="Simulate six national cohorts and summarise them.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("genofed-demo"), help="directory (default: %(default)s)"
    )
    add_simulation_options(parser)
    parser.set_defaults(run=run, seed=2026)


def run(args: argparse.Namespace) -> int:
    """Simulate the federation's cohorts and print what each node holds."""
    result = simulate_from_args(args)
    if args.format == "json":
        print_json({"simulation": simulation_record(result)})
    else:
        print(simulation_report(result))
    return 0
