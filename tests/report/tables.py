"""Synthetic GWAS tables for the report tests."""

from __future__ import annotations

import numpy as np

from genofed.report import GwasTable


def make_table(n_variants: int, *, seed: int = 0, chromosomes: int = 3) -> GwasTable:
    """A table in genome order with uniform p-values and some untested variants."""
    rng = np.random.default_rng(seed)
    chromosome = np.sort(rng.integers(1, chromosomes + 1, n_variants))
    position = np.zeros(n_variants, dtype=np.int64)
    for code in np.unique(chromosome):
        on = chromosome == code
        position[on] = np.sort(rng.choice(np.arange(1, 10 * n_variants + 1), on.sum(), False))
    beta = rng.standard_normal(n_variants) / 10
    standard_error = rng.uniform(0.01, 0.2, n_variants)
    p_value = rng.uniform(size=n_variants)
    untested = rng.uniform(size=n_variants) < 0.05
    for column in (beta, standard_error, p_value):
        column[untested] = np.nan
    return GwasTable(
        chromosome=chromosome.astype(str),
        base_pair_location=position,
        effect_allele=rng.choice(["A", "C", "G", "T", "TGA"], n_variants),
        other_allele=rng.choice(["A", "C", "G", "T"], n_variants),
        beta=beta,
        standard_error=standard_error,
        effect_allele_frequency=rng.uniform(size=n_variants),
        p_value=p_value,
        variant_id=np.array([f"var{i}" for i in range(n_variants)]),
        n=rng.integers(2000, 2400, n_variants),
    )
