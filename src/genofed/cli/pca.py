"""``genofed pca``: principal components across the federation; scores stay at the nodes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genofed.cli._console import TerminalProgress, print_json
from genofed.cli.gwas import read_passport

if TYPE_CHECKING:
    from genofed.coordinator.pca import PcaRun

# plink2 --indep-pairwise 50 5 0.2: the defaults of genofed.coordinator.pca.LdPruning
LD_WINDOW, LD_STEP, LD_R2 = 50, 5, 0.2


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``pca`` subcommand."""
    parser = commands.add_parser(
        "pca",
        parents=[common],
        help="compute principal components across the federation's nodes",
        description="Standardise genotypes with the federation's allele frequencies, prune "
        "variants in LD and find the top principal components by block Krylov iteration on "
        "masked sums (as plink2 --pca on the pooled data). Writes PREFIX.eigenval, "
        "PREFIX.eigenvec.var and PREFIX.prune.in; every node keeps its own samples' scores "
        "as the covariate set --name, for genofed gwas --covariates NAME:1-10.",
    )
    parser.add_argument("--federation", required=True, type=Path, help="federation.toml")
    parser.add_argument("--out", required=True, type=Path, help="output prefix")
    parser.add_argument(
        "--passport", type=Path, help="file holding your GA4GH Passport (a JWT) for the nodes"
    )
    parser.add_argument(
        "--components", type=int, default=10, help="principal components (default: %(default)s)"
    )
    parser.add_argument(
        "--name", default="pcs", help="covariate set the nodes store the scores as "
        "(default: %(default)s)"
    )  # fmt: skip
    parser.add_argument("--maf", type=float, help="leave out variants with a lower MAF")
    parser.add_argument(
        "--ld-window", type=int, default=LD_WINDOW,
        help="LD pruning window in variants, as plink2 --indep-pairwise; 0 turns pruning off "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--ld-step", type=int, default=LD_STEP, help="window step (default: %(default)s)"
    )
    parser.add_argument(
        "--ld-r2", type=float, default=LD_R2,
        help="prune pairs with r2 above it (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=float, default=1e-6,
        help="stop when every component's relative residual is below it (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--max-rounds", type=int, default=100, help="most PCA round trips (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per HTTP call (default: %(default)s)"
    )
    parser.set_defaults(run=run)


def pca_record(run: PcaRun) -> dict[str, Any]:
    """Return a PCA run's summary as JSON-ready data."""
    return {
        "run": run.run,
        "covariate_set": run.name,
        "eigenvalues": run.result.eigenvalues.tolist(),
        "variants_used": run.variants_used,
        "filtered": run.filtered,
        "rounds": run.result.iterations,
        "converged": run.result.converged,
        "samples_per_node": run.samples,
        "files": {kind: str(path) for kind, path in run.files.items()},
        "seconds": run.seconds,
    }


def run(args: argparse.Namespace) -> int:
    """Run the PCA and summarise it."""
    from genofed import read_federation, run_pca
    from genofed.coordinator.pca import LdPruning

    result = run_pca(
        read_federation(args.federation),
        out=args.out,
        components=args.components,
        name=args.name,
        passport=read_passport(args.passport) if args.passport else None,
        maf=args.maf,
        ld=LdPruning(args.ld_window, args.ld_step, args.ld_r2),
        tolerance=args.tolerance,
        max_iterations=args.max_rounds,
        timeout=args.timeout,
        progress=TerminalProgress(),
    )
    record = pca_record(result)
    if args.format == "json":
        print_json(record)
        return 0
    values = ", ".join(f"{v:.3f}" for v in result.result.eigenvalues)
    state = "" if result.result.converged else ", not converged"
    print(
        f"PCA of {result.variants_used:,} variants ({_filters(result.filtered)}) over "
        f"{sum(result.samples.values()):,} samples at {len(result.samples)} nodes "
        f"in {result.seconds:.1f} s "
        f"({result.result.iterations} rounds{state})\n"
        f"eigenvalues: {values}\n"
        f"every node stored its samples' scores as covariate set {result.name!r} (run "
        f"{result.run}); use --covariates {result.name}:1-{len(result.result.eigenvalues)}\n"
        "wrote " + ", ".join(str(p) for p in result.files.values())
    )
    return 0


def _filters(filtered: dict[str, int]) -> str:
    names = {"monomorphic": "monomorphic", "maf": "below --maf", "ld": "pruned for LD"}
    return "; ".join(f"{n:,} {names.get(k, k)}" for k, n in filtered.items()) + " left out"
