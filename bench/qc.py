"""Federated variant QC against ``plink2 --freq --missing --hardy`` on the pooled files.

Usage: python bench/qc.py [--samples 20000] [--variants 100000] [--nodes 3]
                          [--missing 0.01] [--workdir DIR] [--keep]

Writes synthetic genotypes split over ``--nodes`` node file sets plus the
pooled set (as ``gwas.py`` does), starts the nodes as real ``genofed node
serve`` processes on loopback (HTTPS, passports, audit log and secure
aggregation on), times ``run_qc`` end to end (node start-up excluded) and
``plink2 --freq --missing variant-only --hardy`` on the pooled files, and
prints the wall-time ratio and the bytes each node sent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _federation import local_federation, verification  # bench/ is the script's directory
from genofed.coordinator import run_qc
from genofed.node.local import LocalNodes
from gwas import node_sizes, write_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--node-sizes", help="samples per node, e.g. 60000,1000")
    parser.add_argument("--missing", type=float, default=0.01, help="missing-call rate")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the data files")
    args = parser.parse_args()
    out = args.workdir or Path(tempfile.mkdtemp(prefix="genofed-bench-qc-"))
    sizes = node_sizes(args)
    print(
        f"cores: {len(os.sched_getaffinity(0))}; nodes of {sizes} samples x "
        f"{args.variants:,} variants, {args.missing:.0%} missing calls",
        flush=True,
    )
    pooled, node_dirs = write_data(
        out, sizes=sizes, variants=args.variants, covariates=1, missing=args.missing
    )
    setup = local_federation(node_dirs, out)
    configs, federation, passport = setup.configs, setup.federation, setup.passport
    with LocalNodes(configs):
        started = time.perf_counter()
        study = run_qc(federation, out=out / "qc", passport=passport)
        genofed_s = time.perf_counter() - started
    command = [
        "plink2", "--bfile", str(pooled), "--freq", "--missing", "variant-only", "--hardy",
        "--threads", str(len(os.sched_getaffinity(0))), "--out", str(out / "plink"),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    plink_s = time.perf_counter() - started
    sent = setup.megabytes_sent()
    print(
        f"  genofed qc {genofed_s:.2f} s, plink2 {plink_s:.2f} s, ratio {genofed_s / plink_s:.2f}\n"
        f"  {verification(study.verify_seconds, genofed_s)}; "
        f"{study.withheld.mean():.1%} of variants withheld\n"
        "  sent by each node (audit log): "
        + ", ".join(f"{n} {mb:.1f} MB" for n, mb in sent.items()),
        flush=True,
    )
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
