"""The packed linear-regression kernel on every node, against ``plink2 --glm`` on the pooled files.

Usage: python bench/linreg_kernel.py [--samples 20000] [--variants 100000] [--nodes 3]
                                     [--covariates 10] [--missing 0,0.01]
                                     [--block-size 4096] [--large-samples 0]
                                     [--workdir DIR] [--skip-plink] [--keep]

For each missing-call rate the script writes synthetic genotypes (the pooled
file set plus one file set per node, samples split in order) and a
``#FID IID y c0 ..`` phenotype file, then

* runs each node's pass of ``local_variant_sums_packed`` over all variants in
  a child process of its own, one node after the other, and reports its CPU
  time, wall time and peak resident memory (kernel compilation excluded);
* runs the nodes again all at once, as they would share the machine's cores;
* runs ``plink2 --glm hide-covar omit-ref`` with the same covariates on the
  pooled files, and prints the ratios.

``--large-samples N`` adds one node of N samples (its peak memory is the figure
to watch). Nothing here is timed in the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _synthetic import pack_codes, random_codes  # bench/ is the script's directory
from genofed.io.bed import BED_MAGIC, PackedBed
from genofed.kernels.linreg import linear_design, local_variant_sums_packed

CHUNK_VARIANTS = 1000


def write_file_sets(
    out: Path, *, samples: int, variants: int, ranges: list[tuple[int, int]], missing: float
) -> None:
    """``pooled.*`` and ``node<i>.*`` for each range of samples, and ``pooled.pheno``."""
    names = ["pooled", *(f"node{i + 1}" for i in range(len(ranges)))]
    spans = [(0, samples), *ranges]
    bim = "".join(f"1\tv{j}\t0\t{j + 1}\tA\tG\n" for j in range(variants))
    handles = []
    for name, (a, b) in zip(names, spans, strict=True):
        (out / f"{name}.bim").write_text(bim)
        (out / f"{name}.fam").write_text("".join(f"s{i}\ts{i}\t0\t0\t0\t-9\n" for i in range(a, b)))
        handles.append((out / f"{name}.bed").open("wb"))
        handles[-1].write(BED_MAGIC)
    rng = np.random.default_rng(1)
    for start in range(0, variants, CHUNK_VARIANTS):
        codes = random_codes(rng, min(CHUNK_VARIANTS, variants - start), samples, missing)
        for handle, (a, b) in zip(handles, spans, strict=True):
            handle.write(pack_codes(codes[:, a:b]).tobytes())
    for handle in handles:
        handle.close()


def write_phenotypes(path: Path, samples: int, covariates: int) -> None:
    rng = np.random.default_rng(2)
    c = rng.normal(size=(samples, covariates))
    y = c @ rng.normal(size=covariates) + rng.normal(size=samples)
    header = "\t".join(["#FID", "IID", "y", *(f"c{i}" for i in range(covariates))])
    table = np.column_stack([y, c])
    lines = [header] + [
        f"s{i}\ts{i}\t" + "\t".join(f"{v:.10g}" for v in row) for i, row in enumerate(table)
    ]
    path.write_text("\n".join(lines) + "\n")


def node_pass(bed: Path, pheno: Path, first: int, block_size: int) -> dict[str, float]:
    """In a child: one node's kernel over all its variants (compilation excluded)."""
    with PackedBed(bed) as packed:
        with pheno.open() as handle:
            columns = len(handle.readline().split())
        values = np.loadtxt(
            pheno, skiprows=1 + first, max_rows=packed.n_samples, usecols=range(2, columns), ndmin=2
        )
        covariates = np.column_stack([np.ones(len(values)), values[:, 1:]])
        design = linear_design(covariates, values[:, 0], np.ones(len(values), dtype=bool))
        started = time.perf_counter()
        local_variant_sums_packed(design, packed.block(0, min(8, packed.n_variants)))
        warm_up = time.perf_counter() - started
        print("ready", flush=True)
        sys.stdin.readline()  # wait until every node is ready
        cpu, wall, start = time.process_time(), time.perf_counter(), time.time()
        n_missing = 0
        for _, block in packed.blocks(block_size):
            n_missing += int(local_variant_sums_packed(design, block).n_missing.sum())
        return {
            "cpu": time.process_time() - cpu,
            "wall": time.perf_counter() - wall,
            "start": start,
            "stop": time.time(),
            "warm_up": warm_up,
            "missing_calls": n_missing,
            "peak_gb": peak_resident_gb(),
        }


def peak_resident_gb() -> float:
    """This process's own peak resident memory.

    ``VmHWM`` where Linux reports it: a child's ``ru_maxrss`` can include the
    parent's peak, since a child started with vfork shares the parent's memory
    until it execs.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def start_node(bed: Path, pheno: Path, first: int, block_size: int) -> subprocess.Popen[str]:
    """Start a node's pass; it compiles the kernel, then waits for :func:`go`."""
    command = [
        sys.executable, __file__, "--node", str(bed), "--pheno", str(pheno),
        "--first", str(first), "--block-size", str(block_size),
    ]  # fmt: skip
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit(f"node pass on {bed} failed to start")
    return child


def go(children: list[subprocess.Popen[str]]) -> list[dict[str, float]]:
    """Let the nodes run their passes at once; return their figures and peak memory."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        output, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"node pass failed with exit code {child.returncode}")
        results.append(json.loads(output))
    return results


def run_plink(out: Path, covariates: int) -> float:
    command = [
        "plink2", "--bfile", str(out / "pooled"),
        "--pheno", str(out / "pooled.pheno"), "--pheno-name", "y",
        "--covar", str(out / "pooled.pheno"), "--covar-name", f"c0-c{covariates - 1}",
        "--glm", "hide-covar", "omit-ref", "--threads", str(len(os.sched_getaffinity(0))),
        "--out", str(out / "plink"),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def split(samples: int, nodes: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, samples, nodes + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def bench(args: argparse.Namespace, missing: float, workdir: Path) -> None:
    out = workdir / f"missing-{missing:g}"
    out.mkdir(parents=True, exist_ok=True)
    ranges = split(args.samples, args.nodes)
    started = time.perf_counter()
    write_file_sets(
        out, samples=args.samples, variants=args.variants, ranges=ranges, missing=missing
    )
    write_phenotypes(out / "pooled.pheno", args.samples, args.covariates)
    print(f"\nmissing calls {missing:.0%}: files written in {time.perf_counter() - started:.0f} s")

    def node(i: int) -> subprocess.Popen[str]:
        return start_node(
            out / f"node{i + 1}.bed", out / "pooled.pheno", ranges[i][0], args.block_size
        )

    results = [go([node(i)])[0] for i in range(len(ranges))]
    together = go([node(i) for i in range(len(ranges))])
    concurrent_wall = max(r["stop"] for r in together) - min(r["start"] for r in together)
    plink = None if args.skip_plink else run_plink(out, args.covariates)

    k = args.covariates + 1
    for i, ((a, b), r) in enumerate(zip(ranges, results, strict=True)):
        print(
            f"  node{i + 1}: {b - a:,} samples x {args.variants:,} variants, k = {k}: "
            f"{r['cpu']:.2f} s CPU, {r['wall']:.2f} s wall, peak RSS {r['peak_gb']:.2f} GB, "
            f"{r['missing_calls']:,} missing calls"
        )
    total = sum(r["cpu"] for r in results)
    print(f"  kernel, all nodes: {total:.2f} s CPU (sum over nodes, one after the other)")
    cores = len(os.sched_getaffinity(0))
    print(f"  kernel, nodes at once on {cores} cores: {concurrent_wall:.2f} s wall")
    if plink is not None:
        print(f"  plink2 --glm on the pooled files: {plink:.2f} s wall")
        print(
            f"  ratio kernel / plink2: {total / plink:.3f} (CPU, summed), "
            f"{concurrent_wall / plink:.3f} (wall, nodes at once)"
        )
    if not args.keep:
        shutil.rmtree(out)


def bench_large(args: argparse.Namespace, workdir: Path) -> None:
    out = workdir / "large"
    out.mkdir(parents=True, exist_ok=True)
    samples = args.large_samples
    write_file_sets(out, samples=samples, variants=args.variants, ranges=[], missing=0.01)
    write_phenotypes(out / "pooled.pheno", samples, args.covariates)
    (r,) = go([start_node(out / "pooled.bed", out / "pooled.pheno", 0, args.block_size)])
    print(
        f"\none node of {samples:,} samples x {args.variants:,} variants, 1% missing calls: "
        f"{r['cpu']:.2f} s CPU, {r['wall']:.2f} s wall, peak RSS {r['peak_gb']:.2f} GB"
    )
    if not args.keep:
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--covariates", type=int, default=10)
    parser.add_argument("--missing", default="0,0.01")
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--large-samples", type=int, default=0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--skip-plink", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the files written")
    parser.add_argument("--node", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pheno", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        print(json.dumps(node_pass(args.node, args.pheno, args.first, args.block_size)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genofed-bench-"))
    print(f"cores: {len(os.sched_getaffinity(0))}, workdir: {workdir}", flush=True)
    for missing in (float(m) for m in args.missing.split(",")):
        bench(args, missing, workdir)
    if args.large_samples:
        bench_large(args, workdir)


if __name__ == "__main__":
    main()
