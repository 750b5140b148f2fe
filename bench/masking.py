"""Throughput of secure-aggregation masking on one node's contribution.

Usage: python bench/masking.py [--megabytes 20] [--peers 1,2,5] [--repeats 3]

Times, on ``--megabytes`` of float64 sums (values of either sign with
magnitudes spread from 1e-6 to 1e12):

* ``encode_fixed`` and ``decode_fixed`` (float64 to the 128-bit ring and back);
* ``mask`` of the encoded array for each number of peers (one X25519 key
  agreement, HKDF and two ChaCha20 keystreams per peer, 128-bit limb
  arithmetic);
* ``unmask_sum`` over all participants of the largest round.

Throughput is reported in MB of float64 input per second (best of
``--repeats``). Then, over the participants of the largest round, the script
prints the largest error of decoded sums against ``math.fsum`` for terms of
one sign near 1e-6, 1e-3, 1, 1e6 and 1e12, and for terms of either sign
spread over 1e-6 to 1e12. Nothing here is timed in the test suite.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from genofed.protocol.secagg import (
    RingArray,
    StudyKey,
    decode_fixed,
    encode_fixed,
    mask,
    mask_arrays,
    unmask_sum,
)


def best_time(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--peers", default="1,2,5")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    n = int(args.megabytes * 1e6 / 8)
    megabytes = n * 8 / 1e6
    rng = np.random.default_rng(1)

    def values() -> np.ndarray:
        magnitude = 10.0 ** rng.uniform(-6, 12, size=n)
        return np.where(rng.random(n) < 0.5, -magnitude, magnitude)

    x = values()
    encode = best_time(lambda: encode_fixed(x), args.repeats)
    ring = encode_fixed(x)
    decode = best_time(lambda: decode_fixed(ring), args.repeats)
    print(f"{megabytes:.1f} MB of float64 ({n:,} values)")
    print(f"encode_fixed           {megabytes / encode:8.0f} MB/s")
    print(f"decode_fixed           {megabytes / decode:8.0f} MB/s")
    print(f"encode + decode        {megabytes / (encode + decode):8.0f} MB/s")

    peer_counts = [int(p) for p in args.peers.split(",")]
    for peers in peer_counts:
        names = [f"node{i}" for i in range(peers + 1)]
        keys = {name: StudyKey.generate() for name in names}
        public = {name: key.public_bytes() for name, key in keys.items()}
        seconds = best_time(
            lambda names=names, keys=keys, public=public: mask(
                ring,
                me=names[0],
                study_key=keys[names[0]],
                peers=public,
                study_id="bench",
                round_label="r1",
                array_name="x",
            ),
            args.repeats,
        )
        print(
            f"mask, {peers} peer{'s' if peers > 1 else ' '}         {megabytes / seconds:8.0f} MB/s"
            f"   ({megabytes * peers / seconds:6.0f} MB/s per peer keystream)"
        )

    nodes = [f"node{i}" for i in range(max(peer_counts) + 1)]
    keys = {name: StudyKey.generate() for name in nodes}
    public = {name: key.public_bytes() for name, key in keys.items()}

    def masked_round(contributions: dict[str, np.ndarray]) -> dict[str, dict[str, RingArray]]:
        label = f"r{rng.integers(2**62)}"  # a fresh round: never reuse masks for other values
        return {
            name: mask_arrays(
                {"x": contributions[name]},
                me=name,
                study_key=keys[name],
                peers=public,
                study_id="bench",
                round_label=label,
            )
            for name in nodes
        }

    contributions = {name: values() for name in nodes}
    masked = masked_round(contributions)
    seconds = best_time(lambda: unmask_sum(masked), args.repeats)
    print(
        f"unmask_sum of {len(nodes)} nodes  {megabytes * len(nodes) / seconds:8.0f} MB/s of input"
    )

    print(f"\nlargest error of decoded sums over {len(nodes)} nodes, 100,000 sums each:")
    count = 100_000
    for magnitude in (1e-6, 1e-3, 1.0, 1e6, 1e12):
        terms = {name: magnitude * rng.uniform(0.5, 2, size=count) for name in nodes}
        relative = precision(terms, masked_round)
        print(f"  positive terms near {magnitude:5.0e}: {relative:.2e} relative to the sum")
    signed = {name: values()[:count] for name in nodes}
    print(
        f"  either sign, 1e-6 to 1e12:  {precision(signed, masked_round):.2e} "
        "relative to the sum of magnitudes"
    )


def precision(
    terms: dict[str, np.ndarray],
    masked_round: Callable[[dict[str, np.ndarray]], dict[str, dict[str, RingArray]]],
) -> float:
    """Largest error of the decoded sums against ``math.fsum``, over the sum of magnitudes."""
    total = unmask_sum(masked_round(terms))["x"]
    stacked = np.stack(list(terms.values()), axis=1)
    exact = np.array([math.fsum(row) for row in stacked])
    return float(np.max(np.abs(total - exact) / np.abs(stacked).sum(axis=1)))


if __name__ == "__main__":
    main()
