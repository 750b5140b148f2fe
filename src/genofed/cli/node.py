"""``genofed node init`` and ``genofed node serve``: run a data holder's node."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from genofed.cli._console import print_json
from genofed.cli.audit import add_audit_command


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``node`` subcommand group."""
    parser = commands.add_parser(
        "node", help="set up and run a node over a data holder's own files"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init",
        parents=[common],
        help="check a node's files and write node.toml and public.toml",
        description="Validate a PLINK file set and phenotype table, then write DIR/node.toml "
        "(private configuration) and DIR/public.toml (the card researchers add to a federation).",
    )
    init.add_argument("--name", required=True, help="node name, e.g. a country code")
    init.add_argument("--bfile", required=True, type=Path, help="PLINK 1 prefix (.bed/.bim/.fam)")
    init.add_argument("--pheno", required=True, type=Path, help="phenotype table (IID first)")
    init.add_argument("--out", required=True, type=Path, help="directory for the two files")
    init.add_argument("--port", type=int, default=8701, help="port (default: %(default)s)")
    init.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    init.add_argument("--dataset-id", help="dataset id (default: genofed:NAME)")
    init.add_argument(
        "--trusted-issuer",
        action="append",
        type=Path,
        default=[],
        help="JWKS of a passport broker or visa issuer whose passports the node accepts "
        "(repeatable)",
    )
    init.add_argument(
        "--insecure", action="store_true", help="no TLS key: plain HTTP, on loopback only"
    )
    init.set_defaults(run=run_init)
    serve_parser = actions.add_parser(
        "serve",
        parents=[common],
        help="serve a node until SIGTERM or Ctrl-C",
        description="Serve the node's aggregate computations over HTTP.",
    )
    serve_parser.add_argument("config", type=Path, help="the node's node.toml")
    serve_parser.add_argument(
        "--insecure", action="store_true", help="allow plain HTTP when node.toml has no [tls]"
    )
    serve_parser.set_defaults(run=run_serve)
    trust = actions.add_parser(
        "trust",
        parents=[common],
        help="add other nodes' public cards as peers for secure aggregation",
        description="Copy the public cards of the nodes this node may mask its sums with "
        "into its [aggregation] peers directory. The node accepts study keys signed by "
        "these cards' identity keys only; restart it to load them.",
    )
    trust.add_argument("config", type=Path, help="this node's node.toml")
    trust.add_argument("cards", nargs="+", type=Path, help="peers' public.toml files")
    trust.set_defaults(run=run_trust)
    add_audit_command(actions, common)


def run_trust(args: argparse.Namespace) -> int:
    """Add peers and list them."""
    from genofed.node.setup import trust_peers

    names = trust_peers(args.config, args.cards)
    if args.format == "json":
        print_json({"config": str(args.config), "peers": names})
    else:
        print(f"{args.config}: trusts {', '.join(names) or 'no new peers'} for secure aggregation")
    return 0


def run_init(args: argparse.Namespace) -> int:
    """Write the node's configuration and report what its files hold."""
    from genofed.node.setup import init_node

    report = init_node(
        args.name,
        bfile=args.bfile,
        phenotypes=args.pheno,
        out=args.out,
        port=args.port,
        host=args.host,
        dataset_id=args.dataset_id,
        trusted_issuers=args.trusted_issuer,
        insecure=args.insecure,
    )
    record = {
        "config": str(report.config),
        "card": str(report.card),
        "url": report.settings.url,
        "dataset_id": report.settings.node.dataset_id,
        "genotyped_samples": report.genotyped_samples,
        "phenotype_rows": report.phenotype_rows,
        "matched_samples": report.matched_samples,
        "variants": report.variants,
        "phenotypes": list(report.phenotypes),
    }
    if args.format == "json":
        print_json(record)
        return 0
    print(
        f"node {args.name}: {report.variants:,} variants; {report.genotyped_samples:,} genotyped "
        f"samples, {report.phenotype_rows:,} phenotype rows, {report.matched_samples:,} in both\n"
        f"  genotyped without a phenotype row: "
        f"{report.genotyped_samples - report.matched_samples:,}\n"
        f"  phenotype rows without genotypes:  {report.phenotype_rows - report.matched_samples:,}\n"
        f"  phenotype columns: {', '.join(report.phenotypes)}\n"
        f"wrote {report.config} (private) and {report.card} (public card, {record['url']})\n"
        f"serve it with: genofed node serve {report.config}"
    )
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Serve until stopped; a node logs at INFO by default, -v for DEBUG."""
    from genofed.node.serve import serve

    logging.getLogger("genofed").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    serve(
        args.config,
        insecure=args.insecure,
        log_level=("warning", "info", "debug")[min(args.verbose + 1, 2)],
    )
    return 0
