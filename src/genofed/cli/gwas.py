"""``genofed gwas``: a GWAS across the federation, written as GWAS-SSF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genofed.cli._console import TerminalProgress, gwas_record, gwas_report, print_json
from genofed.errors import InputError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``gwas`` subcommand."""
    parser = commands.add_parser(
        "gwas",
        parents=[common],
        help="run a GWAS across the federation's nodes",
        description="Run a linear or logistic regression GWAS on every node's data in place; "
        "only masked sums leave the nodes. Results equal plink2 --glm on the pooled data.",
    )
    parser.add_argument("--federation", required=True, type=Path, help="federation.toml")
    parser.add_argument("--phenotype", required=True, help="phenotype column to test")
    parser.add_argument(
        "--model",
        choices=("linear", "logistic"),
        default="linear",
        help="linear for a quantitative trait, logistic for a 0/1 case/control trait "
        "(with PLINK 2's Firth fallback; default: %(default)s)",
    )
    parser.add_argument(
        "--covariates",
        default="",
        help="comma-separated covariate columns, e.g. age,sex; pcs:1-10 adds principal "
        "components 1 to 10 that genofed pca left at every node as covariate set pcs",
    )
    parser.add_argument("--out", required=True, type=Path, help="output prefix: PREFIX.tsv")
    parser.add_argument(
        "--passport", type=Path, help="file holding your GA4GH Passport (a JWT) for the nodes"
    )
    parser.add_argument(
        "--test",
        choices=("wald", "score"),
        default="wald",
        help="for --model logistic: wald (PLINK's, default) or score, a faster different test: "
        "a score test of every variant, refitted as wald below --refine-below",
    )
    parser.add_argument(
        "--refine-below",
        type=float,
        default=1e-3,
        help="score p below which --test score refits a variant (default: %(default)s)",
    )
    parser.add_argument(
        "--maf", type=float, help="leave out variants with minor allele frequency below this"
    )
    parser.add_argument(
        "--geno", type=float, help="leave out variants with missing-call rate above this"
    )
    parser.add_argument(
        "--hwe", type=float, help="leave out variants with Hardy-Weinberg exact p below this"
    )
    parser.add_argument("--block-size", type=int, help="variants per round trip")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per HTTP call (default: %(default)s)"
    )
    parser.set_defaults(run=run)


def read_passport(path: Path) -> str:
    """Read a passport file; errors name the file."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise InputError(f"cannot read passport {path}: {exc.strerror or exc}") from exc
    if token.count(".") != 2:
        raise InputError(f"{path} does not hold a passport (a JWT of three dot-separated parts)")
    return token


def run(args: argparse.Namespace) -> int:
    """Run the study and summarise it."""
    from genofed import read_federation, run_gwas

    covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
    study = run_gwas(
        read_federation(args.federation),
        model=args.model,
        phenotype=args.phenotype,
        covariates=covariates,
        out=args.out,
        passport=read_passport(args.passport) if args.passport else None,
        block_size=args.block_size,
        timeout=args.timeout,
        progress=TerminalProgress(),
        test=args.test,
        refine_below=args.refine_below,
        maf=args.maf,
        geno=args.geno,
        hwe=args.hwe,
    )
    if args.format == "json":
        print_json(gwas_record(study))
    else:
        print(gwas_report(study))
    return 0
