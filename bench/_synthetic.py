"""Synthetic PLINK genotypes for benchmarks: fast to write, any size, controlled missingness."""

from __future__ import annotations

import numpy as np

# .bed code of each state: 0, 1, 2 ALT (allele 1) copies and a missing call.
CODE_OF = np.array([0b11, 0b10, 0b00, 0b01], dtype=np.uint8)


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """(variants x samples) 2-bit codes to .bed rows, four samples per byte, low bits first."""
    n_variants, n_samples = codes.shape
    padded = np.zeros((n_variants, -(-n_samples // 4) * 4), dtype=np.uint8)
    padded[:, :n_samples] = codes
    quads = padded.reshape(n_variants, -1, 4)
    return quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6


def random_codes(
    rng: np.random.Generator, n_variants: int, n_samples: int, missing: float
) -> np.ndarray:
    """Hardy-Weinberg genotypes at Beta(0.5, 2) ALT frequencies, calls missing at random."""
    p = rng.beta(0.5, 2.0, n_variants).clip(0.01, 0.99)[:, None].astype(np.float32)
    u = rng.random((n_variants, n_samples), dtype=np.float32)
    called = 1.0 - missing
    state = (u < called * p * p).view(np.uint8) + (u < called * p * (2 - p)).view(np.uint8)
    state[u >= called] = 3
    return CODE_OF[state]
