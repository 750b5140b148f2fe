"""Federated logistic GWAS against ``plink2 --glm`` (firth-fallback) on the pooled files.

Usage: python bench/logistic.py [--samples 10000] [--variants 50000] [--nodes 3]
                                [--covariates 10] [--cases 0.1] [--workdir DIR] [--keep]

Writes synthetic genotypes (Beta(0.5, 2) allele frequencies, no missing calls)
split over ``--nodes`` node file sets plus the pooled set, with 10 covariates
and a 0/1 trait with ``--cases`` cases; starts the nodes as real ``genofed node
serve`` processes (HTTPS, passports, audit log and secure aggregation on);
times ``run_gwas(model="logistic")`` end to end (node start-up excluded), in
the default Wald mode and in the score-test mode, and
``plink2 --glm hide-covar omit-ref --1`` on the pooled files, and prints the
wall-time ratio, the Firth count, the verifiers' share of the time, the share
of rows released and withheld, and the bytes each node sent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _federation import disclosure_shares, local_federation, verification  # bench/: script dir
from genofed.coordinator import run_gwas
from genofed.node.local import LocalNodes
from gwas import node_sizes, write_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=50_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--node-sizes", help="samples per node, e.g. 6000,4000")
    parser.add_argument("--covariates", type=int, default=10)
    parser.add_argument("--cases", type=float, default=0.1, help="fraction of cases")
    parser.add_argument("--refine-below", type=float, default=1e-3, help="for the score mode")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the data files")
    args = parser.parse_args()
    out = args.workdir or Path(tempfile.mkdtemp(prefix="genofed-bench-logistic-"))
    sizes = node_sizes(args)
    print(
        f"cores: {len(os.sched_getaffinity(0))}; nodes of {sizes} samples x "
        f"{args.variants:,} variants, {args.covariates} covariates, {args.cases:.0%} cases",
        flush=True,
    )
    pooled, node_dirs = write_data(
        out, sizes=sizes, variants=args.variants, covariates=args.covariates, missing=0.0,
        cases=args.cases,
    )  # fmt: skip
    covariates = [f"c{i + 1}" for i in range(args.covariates)]
    setup = local_federation(node_dirs, out)
    configs, federation, passport = setup.configs, setup.federation, setup.passport
    seconds, firth, checks = {}, 0, {}
    with LocalNodes(configs):
        for test in ("wald", "score"):
            started = time.perf_counter()
            study = run_gwas(
                federation, model="logistic", test=test, refine_below=args.refine_below,
                phenotype="case", covariates=covariates, out=out / f"gwas-{test}",
                passport=passport,
            )  # fmt: skip
            seconds[test] = time.perf_counter() - started
            checks[test] = (
                f"  {test}: {verification(study.verify_seconds, seconds[test])}; rows "
                f"{disclosure_shares(study.table.extra['disclosure'])}\n"
            )
            if test == "wald":
                firth = int(study.table.extra["firth"].sum())
    command = [
        "plink2", "--bfile", str(pooled), "--pheno", str(pooled.parent / "pheno.tsv"),
        "--pheno-name", "case", "--1", "--covar", str(pooled.parent / "pheno.tsv"),
        "--covar-name", ",".join(covariates), "--glm", "hide-covar", "omit-ref",
        "--threads", str(len(os.sched_getaffinity(0))), "--out", str(out / "plink"),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    plink_s = time.perf_counter() - started
    sent = setup.megabytes_sent()
    print(
        f"  logistic (firth-fallback): genofed {seconds['wald']:.2f} s, plink2 {plink_s:.2f} s, "
        f"ratio {seconds['wald'] / plink_s:.2f}; {firth:,} variants fitted with Firth\n"
        f"  score-test mode (refit below p {args.refine_below:g}): {seconds['score']:.2f} s, "
        f"ratio {seconds['score'] / plink_s:.3f}\n{checks['wald']}{checks['score']}"
        "  sent by each node (audit log): "
        + ", ".join(f"{n} {mb:.1f} MB" for n, mb in sent.items()),
        flush=True,
    )
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
