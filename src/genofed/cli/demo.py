"""``genofed demo``: the whole pipeline on synthetic data, end to end.

Simulate six national cohorts, start one node server per country as its
own process (HTTPS with pinned certificates, GA4GH Passports from a local
issuer), run a federated PCA (each node keeps its samples' scores), then the
quantitative-trait GWAS with and without the PCs and the disease GWAS with
them; write the summary statistics and plots, print the summary (with lambda
GC with and without PCs) and stop the nodes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genofed.cli._console import (
    TerminalProgress,
    gwas_record,
    gwas_report,
    print_json,
    simulation_record,
    simulation_report,
)
from genofed.cli.pca import pca_record
from genofed.cli.simulate import add_simulation_options, simulate_from_args

if TYPE_CHECKING:
    from genofed.coordinator.gwas import LinearGwas

PCS = 10  # principal components the demo computes and adjusts for
PCA_MAF = 0.01  # variants rarer than this say little about ancestry


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run genofed end to end on six synthetic national cohorts",
        description="Simulate six national cohorts, serve each from its own node process, "
        "run a federated PCA, and federated GWAS of ldl (with and without the PCs) and of "
        "t2d.",
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
    from genofed import create_federation, run_gwas, run_pca
    from genofed.aai import init_issuer, issue_passport, write_passport
    from genofed.node.local import LocalNodes, free_port
    from genofed.node.setup import init_node, trust_peers
    from genofed.report import manhattan_plot, pc_plot, qq_plot

    started = time.monotonic()
    _say(f"1/5 simulating {args.countries} in {args.out}/ ...")
    simulation = simulate_from_args(args)
    out = simulation.out
    _say(
        "2/5 configuring one node per country (TLS, passport issuer, secure-aggregation peers) ..."
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
    _say(f"3/5 starting {len(configs)} node servers on loopback ...")
    results = out / "results"
    results.mkdir(exist_ok=True)
    gwas_runs = (  # trait, model, covariates
        ("ldl", "linear", ["age", "sex"]),
        ("ldl", "linear", ["age", "sex", f"pcs:1-{PCS}"]),
        ("t2d", "logistic", ["age", "sex", f"pcs:1-{PCS}"]),
    )
    studies = []
    with LocalNodes(configs):
        _say(f"4/5 federated PCA ({PCS} components; scores stay at the nodes) ...")
        pca = run_pca(
            federation, out=results / "pcs", components=PCS, passport=passport, maf=PCA_MAF,
            progress=TerminalProgress(),
        )  # fmt: skip
        for step, (trait, model, covariates) in enumerate(gwas_runs, 1):
            formula = " + ".join(covariates)
            _say(f"5/5 ({step}/{len(gwas_runs)}) federated {model} GWAS of {trait} ~ {formula} ...")
            name = trait if step == 1 else f"{trait}.pcs"
            studies.append(
                run_gwas(
                    federation,
                    model=model,
                    phenotype=trait,
                    covariates=covariates,
                    out=results / name,
                    passport=passport,
                    progress=TerminalProgress(),
                )
            )
    summaries = {node: (s.n, s.mean, s.covariance) for node, s in pca.summaries.items()}
    plots = [
        pc_plot(
            summaries, results / "pcs.png",
            title="PC1 and PC2 by country (node aggregates only)",
        )
    ]  # fmt: skip
    for study, (trait, _, covariates) in zip(studies, gwas_runs, strict=True):
        name = study.tsv.name.removesuffix(".tsv")
        title = f"{trait} ~ {' + '.join(covariates)}, six nodes"
        plots.append(manhattan_plot(study.table, results / f"{name}.manhattan.png", title=title))
        plots.append(qq_plot(study.table.p_value, results / f"{name}.qq.png", title=title))
    found = {
        label: causal_found(study, simulation.causal_ids("ldl"))
        for label, study in (("without PCs", studies[0]), ("with PCs", studies[1]))
    }
    seconds = time.monotonic() - started
    if args.format == "json":
        print_json(
            {
                "simulation": simulation_record(simulation),
                "pca": pca_record(pca),
                "gwas": gwas_record(studies[0]),
                "gwas_with_pcs": gwas_record(studies[1]),
                "disease_gwas": gwas_record(studies[2]),
                "lambda_gc": {
                    "without_pcs": studies[0].lambda_gc,
                    "with_pcs": studies[1].lambda_gc,
                },
                "causal_found": found,
                "plots": [str(plot) for plot in plots],
                "seconds": seconds,
            }
        )
        return 0
    print(simulation_report(simulation))
    print()
    eigenvalues = ", ".join(f"{v:.2f}" for v in pca.result.eigenvalues)
    print(
        f"PCA: {pca.variants_used:,} variants (MAF >= {PCA_MAF}, pruned for LD), "
        f"{pca.result.iterations} rounds; "
        f"eigenvalues {eigenvalues}\n"
        f"every node keeps its samples' scores as covariate set {pca.name!r}; "
        f"the picture {plots[0]} shows per-country means and ellipses only"
    )
    print()
    for study in studies:
        print(gwas_report(study))
        print()
    total = len(simulation.causal_ids("ldl"))
    print(
        f"lambda GC of ldl: {studies[0].lambda_gc:.3f} with age + sex, "
        f"{studies[1].lambda_gc:.3f} with age + sex + pcs:1-{PCS}\n"
        f"planted ldl causal variants found at p < 5e-8: {found['without PCs']} of {total} "
        f"without PCs, {found['with PCs']} of {total} with PCs"
    )
    print("plots: " + ", ".join(map(str, plots)))
    print(f"\nthe six nodes were stopped; the demo took {seconds:.1f} s in all")
    return 0


def causal_found(study: LinearGwas, causal: set[str]) -> int:
    """Planted causal variants with a genome-wide significant p."""
    significant = study.table.p_value < 5e-8
    return len(causal & set(study.table.variant_id[significant].tolist()))
