"""``genofed demo``: the whole pipeline on synthetic data, end to end.

Simulate six national cohorts, start one node server per country as its
own process (HTTPS with pinned certificates, GA4GH Passports from a local
issuer), run the quantitative-trait GWAS across them, write the summary
statistics and plots, print the summary and stop the nodes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from genofed.aai import init_issuer, issue_passport, write_passport
from genofed.cli._console import (
    TerminalProgress,
    gwas_record,
    gwas_report,
    print_json,
    simulation_record,
    simulation_report,
)
from genofed.cli.simulate import add_simulation_options, simulate_from_args
from genofed.coordinator import create_federation, run_linear_gwas
from genofed.node.local import LocalNodes, free_port
from genofed.node.setup import init_node, trust_peers
from genofed.report import manhattan_plot, qq_plot


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run genofed end to end on six synthetic national cohorts",
        description="Simulate six national cohorts, serve each from its own node process, "
        "and run a federated GWAS of ldl with age and sex as covariates.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("genofed-demo"), help="directory (default: %(default)s)"
    )
    add_simulation_options(parser)
    parser.set_defaults(run=run, seed=2026)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print what happened."""
    started = time.monotonic()
    _say(f"1/4 simulating {args.countries} in {args.out}/ ...")
    simulation = simulate_from_args(args)
    out = simulation.out
    _say(
        "2/4 configuring one node per country (TLS, passport issuer, secure-aggregation peers) ..."
    )
    issuer = init_issuer(out / "aai", force=True)
    configs, cards = [], []
    for country in simulation.countries:
        init = init_node(
            country.code,
            bfile=out / country.code / "genotypes",
            phenotypes=out / country.code / "phenotypes.tsv",
            out=out / "nodes" / country.code,
            port=free_port(),
            trusted_issuers=[issuer.jwks],
        )
        configs.append(init.config)
        cards.append(init.card)
    for config in configs:
        trust_peers(config, cards)
    federation = create_federation(cards, out / "federation.toml")
    grants = [f"genofed:{country.code}" for country in simulation.countries]
    passport = issue_passport(issuer.directory, user="researcher@genofed.demo", grants=grants)
    write_passport(passport, out / "passport.jwt")
    _say(f"3/4 starting {len(configs)} node servers on loopback ...")
    results = out / "results"
    results.mkdir(exist_ok=True)
    with LocalNodes(configs):
        _say("4/4 federated GWAS of ldl ~ age + sex ...")
        study = run_linear_gwas(
            federation,
            phenotype="ldl",
            covariates=["age", "sex"],
            out=results / "ldl",
            passport=passport,
            progress=TerminalProgress(),
        )
    manhattan = manhattan_plot(
        study.table, results / "ldl.manhattan.png", title="ldl ~ age + sex, six nodes"
    )
    qq = qq_plot(study.table.p_value, results / "ldl.qq.png", title="ldl ~ age + sex")
    seconds = time.monotonic() - started
    if args.format == "json":
        print_json(
            {
                "simulation": simulation_record(simulation),
                "gwas": gwas_record(study),
                "plots": [str(manhattan), str(qq)],
                "seconds": seconds,
            }
        )
        return 0
    print(simulation_report(simulation))
    print()
    print(gwas_report(study))
    print(f"plots: {manhattan} and {qq}")
    print(f"\nthe six nodes were stopped; the demo took {seconds:.1f} s in all")
    return 0
