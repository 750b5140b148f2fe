"""Hudson's Fst between two populations (Bhatia et al. 2013, ratio of averages)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class FstSums:
    """Additive per-pair sums; Fst is ``numerator / denominator``."""

    numerator: float
    denominator: float
    n_variants: int

    @property
    def fst(self) -> float:
        """Hudson's Fst, NaN when no variant was informative."""
        return self.numerator / self.denominator if self.denominator > 0 else float("nan")

    def __add__(self, other: FstSums) -> FstSums:
        return FstSums(
            self.numerator + other.numerator,
            self.denominator + other.denominator,
            self.n_variants + other.n_variants,
        )


def hudson_fst_sums(
    allele_counts: npt.NDArray[np.integer],
    allele_numbers: npt.NDArray[np.integer],
) -> FstSums:
    """Sum Hudson's Fst numerator and denominator over variants for two populations.

    Parameters
    ----------
    allele_counts
        (variants, 2) counts of the counted allele in each population.
    allele_numbers
        (variants, 2) number of called alleles in each population.
        Variants with fewer than two called alleles in either population,
        or monomorphic in both, are skipped.
    """
    n = allele_numbers.astype(np.float64)
    usable = (n >= 2).all(axis=1)
    n = n[usable]
    p = allele_counts[usable].astype(np.float64) / n
    p1, p2 = p[:, 0], p[:, 1]
    numerator = (p1 - p2) ** 2 - p1 * (1 - p1) / (n[:, 0] - 1) - p2 * (1 - p2) / (n[:, 1] - 1)
    denominator = p1 * (1 - p2) + p2 * (1 - p1)
    informative = denominator > 0
    return FstSums(
        float(numerator[informative].sum()),
        float(denominator[informative].sum()),
        int(informative.sum()),
    )
