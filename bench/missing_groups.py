"""The node's missing-call group check (``genofed.node.missing_groups``) on random missing calls.

Usage: python bench/missing_groups.py [--samples 7000] [--variants 100000]
                                      [--rates 0.001,0.01,0.05] [--block 4096]
                                      [--min-count 5] [--seed 1]
                                      [--plate 0] [--plate-share 1.0]

For each missing-call rate, feeds ``MissingGroups.check`` blocks of
``--block`` variants x ``--samples`` samples whose calls are missing at
random and prints: the time spent in ``check`` (drawing the blocks is not
timed, and every loop is compiled before), the distinct groups filed, the
share of variants reported unique, how many checks read the prefix index
rather than the part index, the index entries read, and the memory held. ``--plate N`` adds N
samples missing together at a ``--plate-share`` of the variants (a failed
genotyping plate), the structure that makes the check work hardest. There is
no PLINK 2 counterpart, so the figures are absolute.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from genofed.node.missing_groups import MissingGroups


def random_block(
    rng: np.random.Generator, n_variants: int, n_samples: int, rate: float
) -> np.ndarray:
    """``(variants, samples)`` missing calls at ``rate``, drawn as positions (a few repeat)."""
    block = np.zeros(n_variants * n_samples, dtype=np.bool_)
    block[rng.integers(0, block.size, rng.binomial(block.size, rate))] = True
    return block.reshape(n_variants, n_samples)


def warm_up(min_count: int) -> None:
    """Compile every loop (building, reviewing and dropping the prefix index) before timing."""
    rng = np.random.default_rng(0)
    groups = MissingGroups(200, min_count=min_count)
    for rate in (0.03, 0.3, 0.3, 0.3):
        groups.check(random_block(rng, 1000, 200, rate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=7_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--rates", default="0.001,0.01,0.05", help="missing-call rates")
    parser.add_argument("--block", type=int, default=4_096, help="variants per block")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plate", type=int, default=0, help="samples failing together")
    parser.add_argument("--plate-share", type=float, default=1.0, help="of the variants")
    args = parser.parse_args()

    warm_up(args.min_count)
    plate = f", a plate of {args.plate} at {args.plate_share:.0%} of them" if args.plate else ""
    print(
        f"{args.variants:,} variants x {args.samples:,} samples in blocks of {args.block:,}"
        f"{plate}, min_count {args.min_count}"
    )
    print(
        f"{'missing':>8} {'check':>8} {'filed':>9} {'unique':>8} "
        f"{'prefix':>8} {'entries read':>13} {'memory':>8}"
    )
    for rate in (float(r) for r in args.rates.split(",")):
        rng = np.random.default_rng(args.seed)
        groups = MissingGroups(args.samples, min_count=args.min_count, seed=args.seed)
        seconds, unique = 0.0, 0
        for start in range(0, args.variants, args.block):
            n_variants = min(args.block, args.variants - start)
            block = random_block(rng, n_variants, args.samples, rate)
            if args.plate:
                failing = rng.random(n_variants) < args.plate_share
                block[np.ix_(failing, np.arange(args.plate))] = True
            started = time.perf_counter()
            reported = groups.check(block)
            seconds += time.perf_counter() - started
            unique += int(reported.sum())
        print(
            f"{rate:>8.1%} {seconds:>7.2f}s {groups.filed:>9,} "
            f"{unique / args.variants:>8.2%} {groups.prefix_reads:>8,} "
            f"{groups.candidates:>13,} {groups.nbytes / 1e6:>6.0f}MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
