"""``genofed qc``: allele frequencies, missing-call rates and HWE tests across the federation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genofed.cli._console import TerminalProgress, print_json
from genofed.cli.gwas import read_passport

if TYPE_CHECKING:
    from genofed.coordinator.qc import VariantQc


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``qc`` subcommand."""
    parser = commands.add_parser(
        "qc",
        parents=[common],
        help="compute variant QC statistics across the federation's nodes",
        description="Count genotypes at every node, sum them under secure aggregation and "
        "write per-variant allele frequency, missing-call rate and Hardy-Weinberg exact p "
        "(as plink2 --freq, --missing variant-only and --hardy on the pooled data).",
    )
    parser.add_argument("--federation", required=True, type=Path, help="federation.toml")
    parser.add_argument("--out", required=True, type=Path, help="output prefix: PREFIX.tsv")
    parser.add_argument(
        "--passport", type=Path, help="file holding your GA4GH Passport (a JWT) for the nodes"
    )
    parser.add_argument("--block-size", type=int, help="variants per round trip")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per HTTP call (default: %(default)s)"
    )
    parser.set_defaults(run=run)


def qc_record(study: VariantQc) -> dict[str, Any]:
    """Return a QC summary as JSON-ready data."""
    import numpy as np

    result = study.result
    return {
        "tsv": str(study.tsv),
        "variants": len(result.hwe_p),
        "samples_per_node": study.samples_per_node,
        "dropped_nodes": list(study.dropped),
        "monomorphic": int((result.minor_allele_frequency == 0).sum()),
        "mean_missing_rate": float(np.nanmean(result.missing_rate)),
        "hwe_p_below_1e-6": int((result.hwe_p < 1e-6).sum()),
        "seconds": study.seconds,
    }


def run(args: argparse.Namespace) -> int:
    """Run the QC study and summarise it."""
    from genofed import read_federation, run_qc

    study = run_qc(
        read_federation(args.federation),
        out=args.out,
        passport=read_passport(args.passport) if args.passport else None,
        block_size=args.block_size,
        timeout=args.timeout,
        progress=TerminalProgress(),
    )
    record = qc_record(study)
    if args.format == "json":
        print_json(record)
        return 0
    counts = ", ".join(f"{name} {n:,}" for name, n in study.samples_per_node.items())
    print(
        f"QC of {record['variants']:,} variants over "
        f"{sum(study.samples_per_node.values()):,} samples at "
        f"{len(study.samples_per_node)} nodes in {study.seconds:.1f} s\n"
        f"samples per node: {counts}\n"
        f"monomorphic: {record['monomorphic']:,}; mean missing-call rate "
        f"{record['mean_missing_rate']:.4f}; HWE p < 1e-6: {record['hwe_p_below_1e-6']:,}\n"
        f"wrote {study.tsv}"
    )
    return 0
