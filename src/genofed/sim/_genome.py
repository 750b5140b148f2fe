"""Coalescent simulation of one chromosome for all countries at once (msprime)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import msprime
import numpy as np
import numpy.typing as npt
import tskit

from genofed.sim._countries import Country, distance_km

# GRCh38 lengths of chromosomes 1-10 in Mb; the simulated genome keeps their proportions.
_GRCH38_MB = (
    248.956,
    242.193,
    198.295,
    190.214,
    181.538,
    170.806,
    159.346,
    145.138,
    138.395,
    133.797,
)
N_CHROMOSOMES = len(_GRCH38_MB)
RECOMBINATION_RATE = 1e-8  # per bp per generation: about 1 cM/Mb
MUTATION_RATE = 1.25e-8  # per bp per generation
MIN_MINOR_ALLELE_COUNT = 2  # drop singletons, as genotyping pipelines do


@dataclass(frozen=True)
class Demography:
    """A shared European ancestry that splits into countries linked by migration.

    The ancestral population (constant size) splits into the countries
    ``split_generations`` ago. Each country then grows exponentially from
    ``founding_size`` to ``present_size``. Migration between two countries
    falls off with the distance d between them as
    ``migration_rate * exp(-d / migration_distance_km)``, which orders
    pairwise Fst by geography (isolation by distance).
    """

    ancestral_size: float = 10_000
    split_generations: float = 400
    founding_size: float = 2_000
    present_size: float = 50_000
    migration_rate: float = 0.003
    migration_distance_km: float = 900.0

    def to_msprime(self, countries: tuple[Country, ...]) -> msprime.Demography:
        """Build the msprime demography for these countries."""
        demography = msprime.Demography()
        growth = math.log(self.present_size / self.founding_size) / self.split_generations
        for country in countries:
            demography.add_population(
                name=country.code, initial_size=self.present_size, growth_rate=growth
            )
        demography.add_population(name="EUR", initial_size=self.ancestral_size)
        for a, b in itertools.permutations(countries, 2):
            rate = self.migration_rate * math.exp(-distance_km(a, b) / self.migration_distance_km)
            demography.set_migration_rate(a.code, b.code, rate)
        demography.add_population_split(
            time=self.split_generations, derived=[c.code for c in countries], ancestral="EUR"
        )
        return demography


MAX_GENOME_BP = round(sum(_GRCH38_MB) * 1e6)


def default_variant_spacing(n_haplotypes: int, ancestral_size: float) -> int:
    """Mean bp between kept variants: enough room for SNPs at this sample size.

    Under the neutral coalescent a sample of n haplotypes has
    theta * (a_n - 1) non-singleton SNPs per bp, where a_n = sum(1/i, i < n);
    the genome is made 1.5 times longer than that requires, and SNPs are at
    least 250 bp apart on average, a dense imputed panel's spacing.
    """
    theta = 4 * ancestral_size * MUTATION_RATE
    harmonic = sum(1 / i for i in range(1, max(n_haplotypes, 3)))
    return max(250, math.ceil(1.5 / (theta * (harmonic - 1))))


def chromosome_lengths(total_bp: int) -> list[int]:
    """Split ``total_bp`` over chromosomes 1-10 in proportion to their human lengths."""
    total_mb = sum(_GRCH38_MB)
    return [max(1000, round(total_bp * mb / total_mb)) for mb in _GRCH38_MB]


@dataclass(frozen=True)
class ChromosomeTask:
    """Everything one worker needs to simulate one chromosome."""

    chromosome: int
    length: int
    countries: tuple[Country, ...]
    samples_per_country: int
    demography: Demography
    ancestry_seed: int
    mutation_seed: int


@dataclass(frozen=True)
class SimulatedChromosome:
    """A chromosome's tree sequence, cut down to its usable biallelic SNPs.

    ``derived_counts[i]`` is the number of sample haplotypes carrying the
    derived allele of the tree sequence's site ``i``.
    """

    chromosome: int
    tree_sequence: tskit.TreeSequence
    derived_counts: npt.NDArray[np.int64]


def simulate_chromosome(task: ChromosomeTask) -> SimulatedChromosome:
    """Simulate ancestry and mutations, then keep biallelic SNPs with minor count >= 2."""
    ts = msprime.sim_ancestry(
        samples={c.code: task.samples_per_country for c in task.countries},
        demography=task.demography.to_msprime(task.countries),
        sequence_length=task.length,
        recombination_rate=RECOMBINATION_RATE,
        random_seed=task.ancestry_seed,
    )
    ts = msprime.sim_mutations(
        ts, rate=MUTATION_RATE, model=msprime.JC69(), random_seed=task.mutation_seed
    )
    n_haplotypes = ts.num_samples
    keep = np.zeros(ts.num_sites, dtype=bool)
    counts = np.zeros(ts.num_sites, dtype=np.int64)
    for tree in ts.trees():
        for site in tree.sites():
            if len(site.mutations) != 1:
                continue
            count = tree.num_samples(site.mutations[0].node)
            counts[site.id] = count
            keep[site.id] = min(count, n_haplotypes - count) >= MIN_MINOR_ALLELE_COUNT
    ts = ts.delete_sites(np.flatnonzero(~keep))
    return SimulatedChromosome(task.chromosome, ts, counts[keep])
