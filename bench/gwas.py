"""Federated linear GWAS against ``plink2 --glm`` on the pooled files, same data, same run.

Usage: python bench/gwas.py [--samples 20000] [--variants 100000] [--nodes 3]
                            [--node-sizes 60000,1000] [--covariates 10]
                            [--missing 0,0.001,0.01,0.05] [--workdir DIR] [--keep] [--skip-plink]

For each missing-call rate the script writes synthetic genotypes (split over
``--nodes`` node file sets plus the pooled set), starts the nodes as real
uvicorn processes on loopback, times ``run_linear_gwas`` (HTTP included,
node start-up excluded) and ``plink2 --glm`` on the pooled files, and prints
the wall-time ratio, the share of time the rounds' verifiers spent checking,
the share of rows released PLINK-exact, imputed and withheld, and each node's
peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from _federation import disclosure_shares, local_federation, verification  # bench/: script dir
from _synthetic import pack_codes, random_codes
from genofed.coordinator import run_linear_gwas
from genofed.io import write_phenotype_table
from genofed.node.local import LocalNodes


def write_data(
    out: Path,
    *,
    sizes: list[int],
    variants: int,
    covariates: int,
    missing: float,
    cases: float | None = None,
) -> tuple[Path, list[Path]]:
    """Write node file sets and the pooled set; return the pooled prefix and node dirs."""
    rng = np.random.default_rng(1)
    samples, nodes = sum(sizes), len(sizes)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    prefixes = [out / f"node{i + 1}" / "genotypes" for i in range(nodes)] + [out / "pooled" / "g"]
    ranges = [(bounds[i], bounds[i + 1]) for i in range(nodes)] + [(0, samples)]
    handles = []
    for prefix, (a, b) in zip(prefixes, ranges, strict=True):
        prefix.parent.mkdir(parents=True)
        prefix.with_suffix(".fam").write_text(
            "".join(f"s{i}\ts{i}\t0\t0\t0\t-9\n" for i in range(a, b))
        )
        prefix.with_suffix(".bim").write_text(
            "".join(f"1\t1:{j + 1}:G:A\t0\t{j + 1}\tA\tG\n" for j in range(variants))
        )
        handle = prefix.with_suffix(".bed").open("wb")
        handle.write(bytes([0x6C, 0x1B, 0x01]))
        handles.append(handle)
    for start in range(0, variants, 2000):
        stop = min(start + 2000, variants)
        codes = random_codes(rng, stop - start, samples, missing)
        for handle, (a, b) in zip(handles, ranges, strict=True):
            handle.write(pack_codes(codes[:, a:b]).tobytes())
    for handle in handles:
        handle.close()
    names = [f"c{i + 1}" for i in range(covariates)]
    c = rng.normal(size=(samples, covariates))
    y = c @ rng.normal(size=covariates) + rng.normal(size=samples)
    iids = [f"s{i}" for i in range(samples)]
    columns = {"y": y, **{name: c[:, i] for i, name in enumerate(names)}}
    if cases is not None:  # a 0/1 trait: the top ``cases`` fraction of y are cases
        columns["case"] = (y > np.quantile(y, 1 - cases)).astype(np.float64)
    for i in range(nodes):
        a, b = bounds[i], bounds[i + 1]
        write_phenotype_table(
            prefixes[i].parent / "phenotypes.tsv",
            iids[a:b],
            {name: values[a:b] for name, values in columns.items()},
        )
    pheno = out / "pooled" / "pheno.tsv"
    with pheno.open("w") as stream:
        stream.write("#FID\tIID\t" + "\t".join(columns) + "\n")
        table = np.column_stack(list(columns.values()))
        for iid, row in zip(iids, table, strict=True):
            stream.write(f"{iid}\t{iid}\t" + "\t".join(f"{v:.17g}" for v in row) + "\n")
    return prefixes[-1], [p.parent for p in prefixes[:-1]]


def node_sizes(args: argparse.Namespace) -> list[int]:
    """Samples per node: ``--node-sizes``, or ``--samples`` split evenly over ``--nodes``."""
    if args.node_sizes:
        return [int(size) for size in args.node_sizes.split(",")]
    sizes = [args.samples // args.nodes] * args.nodes
    for i in range(args.samples % args.nodes):
        sizes[i] += 1
    return sizes


def peak_rss_gb(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def run(args: argparse.Namespace, missing: float, workdir: Path) -> None:
    out = workdir / f"missing-{missing:g}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    pooled, node_dirs = write_data(
        out, sizes=node_sizes(args), variants=args.variants, covariates=args.covariates,
        missing=missing,
    )  # fmt: skip
    print(f"  data written in {time.perf_counter() - started:.0f} s", flush=True)
    covariates = [f"c{i + 1}" for i in range(args.covariates)]
    setup = local_federation(node_dirs, out)
    configs, federation, passport = setup.configs, setup.federation, setup.passport
    with LocalNodes(configs) as local:
        started = time.perf_counter()
        study = run_linear_gwas(
            federation, phenotype="y", covariates=covariates, out=out / "gwas", passport=passport
        )
        genofed_s = time.perf_counter() - started
        rss = {name: peak_rss_gb(p.pid) for name, p in local.processes.items()}
    command = [
        "plink2", "--bfile", str(pooled), "--pheno", str(pooled.parent / "pheno.tsv"),
        "--pheno-name", "y", "--covar", str(pooled.parent / "pheno.tsv"),
        "--covar-name", ",".join(covariates), "--glm", "hide-covar", "omit-ref",
        "--threads", str(len(os.sched_getaffinity(0))), "--out", str(out / "plink"),
    ]  # fmt: skip
    plink = "plink2 skipped"
    if not args.skip_plink:
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        plink_s = time.perf_counter() - started
        plink = f"plink2 {plink_s:.2f} s, ratio {genofed_s / plink_s:.2f}"
    tested = int((~np.isnan(study.table.p_value)).sum())
    sent = setup.megabytes_sent()
    print(
        f"  missing calls {missing:.0%}: genofed {genofed_s:.2f} s, {plink} "
        f"({tested:,} variants tested)\n"
        f"  {verification(study.verify_seconds, genofed_s)}; rows "
        f"{disclosure_shares(study.table.extra['disclosure'])}\n"
        f"  node peak RSS: " + ", ".join(f"{n} {gb:.2f} GB" for n, gb in rss.items()) + "\n"
        "  sent by each node (audit log): "
        + ", ".join(f"{n} {mb:.1f} MB" for n, mb in sent.items()),
        flush=True,
    )
    if not args.keep:
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--node-sizes", help="samples per node, e.g. 60000,1000 (overrides both)")
    parser.add_argument("--covariates", type=int, default=10)
    parser.add_argument(
        "--missing", default="0,0.001,0.01,0.05", help="comma-separated missing-call rates"
    )
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the data files")
    parser.add_argument("--skip-plink", action="store_true", help="measure genofed only")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genofed-bench-"))
    print(
        f"cores: {len(os.sched_getaffinity(0))}; nodes of {node_sizes(args)} samples x "
        f"{args.variants:,} variants, {args.covariates} covariates",
        flush=True,
    )
    for rate in args.missing.split(","):
        run(args, float(rate), workdir)


if __name__ == "__main__":
    main()
