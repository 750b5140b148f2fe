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
from genofed.coordinator import create_federation, run_gwas
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
    studies = []
    with LocalNodes(configs):
        for step, (trait, model) in enumerate((("ldl", "linear"), ("t2d", "logistic")), 1):
            _say(f"4/4 ({step}/2) federated {model} GWAS of {trait} ~ age + sex ...")
            studies.append(
                run_gwas(
                    federation,
                    model=model,
                    phenotype=trait,
                    covariates=["age", "sex"],
                    out=results / trait,
                    passport=passport,
                    progress=TerminalProgress(),
                )
            )
    plots = []
    for study, trait in zip(studies, ("ldl", "t2d"), strict=True):
        title = f"{trait} ~ age + sex, six nodes"
        plots.append(manhattan_plot(study.table, results / f"{trait}.manhattan.png", title=title))
        plots.append(qq_plot(study.table.p_value, results / f"{trait}.qq.png", title=title))
    seconds = time.monotonic() - started
    if args.format == "json":
        print_json(
            {
                "simulation": simulation_record(simulation),
                "gwas": gwas_record(studies[0]),
                "disease_gwas": gwas_record(studies[1]),
                "plots": [str(plot) for plot in plots],
                "seconds": seconds,
            }
        )
        return 0
    print(simulation_report(simulation))
    print()
    for study in studies:
        print(gwas_report(study))
        print()
    print("plots: " + ", ".join(map(str, plots)))
    print(f"\nthe six nodes were stopped; the demo took {seconds:.1f} s in all")
    return 0
