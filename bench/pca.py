"""Federated PCA with LD pruning against ``plink2 --indep-pairwise`` + ``--pca approx``, pooled.

Usage: python bench/pca.py [--samples-per-node 5000] [--nodes 6] [--node-sizes 5000,2000]
                           [--variants 100000] [--components 10]
                           [--window 50] [--step 5] [--r2 0.2] [--workdir DIR] [--keep]

Writes synthetic genotypes with population structure and LD, split over node
file sets (one population per node) plus the pooled set. Each population's
allele frequencies are drawn around a shared base frequency (Balding-Nichols,
Fst 0.006-0.016), and each node's samples fall into two subpopulations that
drift a little further apart (Fst 0.003-0.008), so that the top components
are structure rather than noise. Variants on 22 chromosomes come in runs
(each variant continues the run with chance 0.8): the first variant of a run
is drawn afresh, and each later one copies every sample's genotype from it
with a chance between 0.4 and 0.95, which gives pairs on both sides of the
pruning threshold. No calls are missing.

Starts the nodes as real ``genofed node serve`` processes on loopback (HTTPS,
passports, audit log and secure aggregation on) and times ``run_pca`` end to
end (variant QC round, LD pruning, block Krylov rounds, the nodes keeping
their scores; node start-up excluded). Then times ``plink2 --indep-pairwise``
and ``plink2 --extract <prune.in> --pca approx`` on the pooled files, and
prints the wall-time ratio, the bytes each node sent, the variants each kept
after pruning and the eigenvalues of both.
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

from _federation import local_federation, verification  # bench/ is the script's directory
from _synthetic import pack_codes
from genofed.coordinator.pca import LdPruning, run_pca
from genofed.io import write_phenotype_table
from genofed.node.local import LocalNodes

CHROMOSOMES = 22
BLOCK = 1000  # variants generated and written at a time
LINKED = 0.8  # chance that a variant continues the run of the variants before it
COPY = (0.4, 0.95)  # range of the chance that a call in a run copies the run's first variant


def subpopulations(sizes: list[int]) -> list[tuple[int, int]]:
    """Sample ranges of the two halves of every node, in pooled order."""
    ranges, a = [], 0
    for size in sizes:
        ranges += [(a, a + size // 2), (a + size // 2, a + size)]
        a += size
    return ranges


def drift(rng: np.random.Generator, p: np.ndarray, fst: np.ndarray) -> np.ndarray:
    """Balding-Nichols frequencies around ``p`` (variants x 1) at each ``fst`` (columns)."""
    shape = (1 - fst) / fst
    return rng.beta(p * shape, (1 - p) * shape).clip(1e-3, 1 - 1e-3)


def uint16_scale(probability: np.ndarray) -> np.ndarray:
    """Thresholds for 16-bit uniforms: ``u < t`` with chance ``probability``."""
    return np.minimum(np.rint(probability * 65536), 65535).astype(np.uint16)


def write_data(out: Path, *, sizes: list[int], variants: int) -> tuple[Path, list[Path]]:
    """Write structured, linked genotypes per node and pooled; return the pooled prefix and dirs."""
    rng = np.random.default_rng(1)
    samples, nodes = sum(sizes), len(sizes)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    prefixes = [out / f"node{i + 1}" / "genotypes" for i in range(nodes)] + [out / "pooled" / "g"]
    ranges = [(bounds[i], bounds[i + 1]) for i in range(nodes)] + [(0, samples)]
    chromosome = 1 + np.arange(variants) * CHROMOSOMES // variants
    first = np.flatnonzero(np.diff(chromosome, prepend=0))  # each chromosome's first variant
    position = np.arange(variants) - np.repeat(first, np.diff(np.append(first, variants))) + 1
    bim = "".join(
        f"{c}\t{c}:{p * 100}:G:A\t0\t{p * 100}\tA\tG\n"
        for c, p in zip(chromosome.tolist(), position.tolist(), strict=True)
    )
    handles = []
    for prefix, (a, b) in zip(prefixes, ranges, strict=True):
        prefix.parent.mkdir(parents=True)
        prefix.with_suffix(".fam").write_text(
            "".join(f"s{i}\ts{i}\t0\t0\t0\t-9\n" for i in range(a, b))
        )
        prefix.with_suffix(".bim").write_text(bim)
        handle = prefix.with_suffix(".bed").open("wb")
        handle.write(bytes([0x6C, 0x1B, 0x01]))
        handles.append(handle)
    halves = subpopulations(sizes)
    node_fst = rng.permutation(np.linspace(0.006, 0.016, nodes))
    half_fst = rng.permutation(np.linspace(0.003, 0.008, 2 * nodes))
    founder = rng.random(variants) >= LINKED
    founder[first] = True  # no LD across chromosomes
    founder[::BLOCK] = True  # nor across blocks
    copy = np.where(founder, 0.0, rng.uniform(*COPY, variants))
    for start in range(0, variants, BLOCK):
        m = min(start + BLOCK, variants) - start
        c = copy[start : start + m, None]
        p_node = drift(rng, rng.uniform(0.05, 0.95, (m, 1)), node_fst)
        # One 16-bit uniform u per call: below c the sample copies its genotype from
        # the first variant of the run; above it, (u - c) / (1 - c) is a fresh uniform
        # for a Hardy-Weinberg genotype, whose code comes out as 0 where u < c.
        raw = rng.bit_generator.random_raw(-(-m * samples // 4))
        u = raw.view(np.uint16)[: m * samples].reshape(m, samples)
        codes = np.empty((m, samples), dtype=np.uint8)
        for h, (a, b) in enumerate(halves):
            p = drift(rng, p_node[:, h // 2, None], half_fst[h : h + 1]).clip(0.01, 0.99)
            two, one = uint16_scale(c + (1 - c) * p * p), uint16_scale(c + (1 - c) * p * (2 - p))
            block = codes[:, a:b]  # bits: 1 unless two ALT copies, 1 unless one or two
            np.greater_equal(u[:, a:b], two, out=block.view(bool))
            block += block
            block += (u[:, a:b] >= one).view(np.uint8)
        run = np.maximum.accumulate(np.where(founder[start : start + m], np.arange(m), 0))
        copied = np.less(u, uint16_scale(c)).view(np.uint8)
        np.negative(copied, out=copied)  # 0xFF where the call is copied
        codes |= codes[run] & copied
        for handle, (a, b) in zip(handles, ranges, strict=True):
            handle.write(pack_codes(codes[:, a:b]).tobytes())
    for handle in handles:
        handle.close()
    y = rng.normal(size=samples)
    for i in range(nodes):
        a, b = bounds[i], bounds[i + 1]
        iids = [f"s{k}" for k in range(a, b)]
        write_phenotype_table(prefixes[i].parent / "phenotypes.tsv", iids, {"y": y[a:b]})
    return prefixes[-1], [p.parent for p in prefixes[:-1]]


def plink2(*arguments: str) -> float:
    """Run plink2 on every core; return its wall time."""
    threads = str(len(os.sched_getaffinity(0)))
    started = time.perf_counter()
    subprocess.run(["plink2", *arguments, "--threads", threads], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples-per-node", type=int, default=5_000)
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--node-sizes", help="samples per node, e.g. 5000,2000 (overrides both)")
    parser.add_argument("--variants", type=int, default=100_000, help="before pruning")
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--window", type=int, default=50, help="--indep-pairwise window")
    parser.add_argument("--step", type=int, default=5, help="--indep-pairwise step")
    parser.add_argument("--r2", type=float, default=0.2, help="--indep-pairwise r² threshold")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the data files")
    args = parser.parse_args()
    out = args.workdir or Path(tempfile.mkdtemp(prefix="genofed-bench-pca-"))
    if args.node_sizes:
        sizes = [int(size) for size in args.node_sizes.split(",")]
    else:
        sizes = [args.samples_per_node] * args.nodes
    ld = LdPruning(window=args.window, step=args.step, r2=args.r2)
    print(
        f"cores: {len(os.sched_getaffinity(0))}; nodes of {sizes} samples x "
        f"{args.variants:,} variants, {args.components} components, "
        f"--indep-pairwise {ld.window} {ld.step} {ld.r2:g}",
        flush=True,
    )
    started = time.perf_counter()
    pooled, node_dirs = write_data(out, sizes=sizes, variants=args.variants)
    print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
    setup = local_federation(node_dirs, out)
    with LocalNodes(setup.configs):
        started = time.perf_counter()
        pca = run_pca(
            setup.federation, out=out / "genofed", components=args.components,
            passport=setup.passport, maf=None, ld=ld,
        )  # fmt: skip
        genofed_s = time.perf_counter() - started
    prune_s = plink2(
        "--bfile", str(pooled), "--indep-pairwise", str(ld.window), str(ld.step), f"{ld.r2:g}",
        "--out", str(out / "plink"),
    )  # fmt: skip
    pca_s = plink2(
        "--bfile", str(pooled), "--extract", str(out / "plink.prune.in"),
        "--pca", str(args.components), "approx", "--out", str(out / "plink"),
    )  # fmt: skip
    plink_s = prune_s + pca_s
    ours = pca.files["prune.in"].read_text().split()
    theirs = (out / "plink.prune.in").read_text().split()
    ours_ev = pca.result.eigenvalues
    theirs_ev = np.loadtxt(out / "plink.eigenval", ndmin=1)
    relative = np.abs(ours_ev - theirs_ev) / np.abs(theirs_ev)
    sent = setup.megabytes_sent()
    converged = "converged" if pca.result.converged else "NOT converged"
    print(
        f"  genofed pca {genofed_s:.2f} s; plink2 {plink_s:.2f} s "
        f"(--indep-pairwise {prune_s:.2f} s, --pca approx {pca_s:.2f} s); "
        f"ratio {genofed_s / plink_s:.2f}\n"
        f"  {verification(pca.verify_seconds, genofed_s)}\n"
        f"  variants kept by pruning: genofed {len(ours):,}, plink2 {len(theirs):,} "
        f"of {args.variants:,}; prune.in identical: {'yes' if ours == theirs else 'NO'}\n"
        f"  PCA rounds: {pca.result.iterations} ({converged}, largest residual "
        f"{pca.result.residuals.max():.1e})\n"
        "  sent by each node (audit log): "
        + ", ".join(f"{n} {mb:.1f} MB" for n, mb in sent.items())
        + "\n  PC   genofed (exact)   plink2 approx   relative difference",
        flush=True,
    )
    for k, (a, b, r) in enumerate(zip(ours_ev, theirs_ev, relative, strict=True)):
        print(f"  {k + 1:>2}   {a:>15.6g}   {b:>13.6g}   {r:.2e}")
    print(f"  largest relative eigenvalue difference: {relative.max():.2e}", flush=True)
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
