"""``genofed federation create``: collect nodes' public cards into one file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genofed.cli._console import print_json


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``federation`` subcommand group."""
    parser = commands.add_parser("federation", help="manage the federation file")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        parents=[common],
        help="write federation.toml from nodes' public.toml cards",
        description="Collect the public cards of the nodes a researcher may use.",
    )
    create.add_argument("--out", required=True, type=Path, help="federation file to write")
    create.add_argument("cards", nargs="+", type=Path, help="public.toml of each node")
    create.set_defaults(run=run_create)


def run_create(args: argparse.Namespace) -> int:
    """Write the federation file."""
    from genofed import create_federation

    federation = create_federation(args.cards, args.out)
    nodes = [card.model_dump() for card in federation.nodes]
    if args.format == "json":
        print_json({"federation": str(args.out), "nodes": nodes})
    else:
        listing = "\n".join(f"  {n['name']:<8} {n['url']:<28} {n['dataset_id']}" for n in nodes)
        print(f"wrote {args.out} with {len(nodes)} nodes:\n{listing}")
    return 0
