"""From simulated chromosomes to the variants written: thinning, causal picks, genotypes."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genofed._progress import Progress, ProgressCallback
from genofed.errors import InputError
from genofed.io.plink import MISSING_CALL, VariantInfo
from genofed.sim._genome import (
    MIN_MINOR_ALLELE_COUNT,
    RECOMBINATION_RATE,
    ChromosomeTask,
    SimulatedChromosome,
    chromosome_lengths,
    simulate_chromosome,
)
from genofed.sim._plan import Plan
from genofed.sim._traits import TraitModel

BLOCK_SIZE = 512  # variants decoded, masked and written together


def simulate_genome(
    plan: Plan, seeds: np.random.SeedSequence, workers: int, report: ProgressCallback
) -> list[SimulatedChromosome]:
    lengths = chromosome_lengths(plan.genome_bp)
    tasks = []
    for number, (length, child) in enumerate(
        zip(lengths, seeds.spawn(len(lengths)), strict=True), 1
    ):
        ancestry_seed, mutation_seed = (int(s) % (2**32 - 1) + 1 for s in child.generate_state(2))
        tasks.append(
            ChromosomeTask(
                chromosome=number,
                length=length,
                countries=plan.countries,
                samples_per_country=plan.samples_per_country,
                demography=plan.demography,
                ancestry_seed=ancestry_seed,
                mutation_seed=mutation_seed,
            )
        )
    report(Progress("simulating chromosomes", 0, len(tasks)))
    # msprime releases the GIL while it simulates, so threads run chromosomes in parallel.
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(tasks))) as pool:
        futures = [pool.submit(simulate_chromosome, task) for task in tasks]
        try:
            for done, _ in enumerate(concurrent.futures.as_completed(futures), 1):
                report(Progress("simulating chromosomes", done, len(tasks)))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return [f.result() for f in futures]


def thin(
    chromosomes: list[SimulatedChromosome], plan: Plan, rng: np.random.Generator
) -> list[SimulatedChromosome]:
    """Keep ``plan.n_variants`` eligible sites chosen uniformly over the genome."""
    available = sum(len(c.derived_counts) for c in chromosomes)
    if available < plan.n_variants:
        raise InputError(
            f"the simulated genome provides only {available} SNPs with a minor allele count of "
            f"at least {MIN_MINOR_ALLELE_COUNT} for {plan.samples_per_country} samples per "
            f"country, fewer than the {plan.n_variants} variants asked for; ask for fewer "
            "variants or a wider variant spacing (nothing was written)"
        )
    chosen = np.zeros(available, dtype=bool)
    chosen[rng.choice(available, size=plan.n_variants, replace=False)] = True
    thinned = []
    offsets = np.cumsum([0] + [len(c.derived_counts) for c in chromosomes])
    for chromosome, start, stop in zip(chromosomes, offsets[:-1], offsets[1:], strict=True):
        keep = chosen[start:stop]
        ts = chromosome.tree_sequence.delete_sites(np.flatnonzero(~keep))
        thinned.append(
            SimulatedChromosome(chromosome.chromosome, ts, chromosome.derived_counts[keep])
        )
    return thinned


def variant_info(chromosomes: list[SimulatedChromosome]) -> VariantInfo:
    """.bim columns: ALT (derived) is allele 1, the counted allele; REF is ancestral."""
    chrom, ids, cm, bp, alt, ref = [], [], [], [], [], []
    for c in chromosomes:
        for site in c.tree_sequence.sites():
            position = int(site.position) + 1
            derived = site.mutations[0].derived_state
            chrom.append(str(c.chromosome))
            ids.append(f"{c.chromosome}:{position}:{site.ancestral_state}:{derived}")
            cm.append(position * RECOMBINATION_RATE * 100)
            bp.append(position)
            alt.append(derived)
            ref.append(site.ancestral_state)
    return VariantInfo(
        chromosome=np.array(chrom),
        variant_id=np.array(ids),
        cm_position=np.array(cm),
        bp_position=np.array(bp, dtype=np.int64),
        allele_1=np.array(alt),
        allele_2=np.array(ref),
    )


@dataclass(frozen=True)
class Causal:
    ldl: npt.NDArray[np.intp]
    t2d: npt.NDArray[np.intp]

    @property
    def all(self) -> npt.NDArray[np.intp]:
        return np.concatenate([self.ldl, self.t2d])


def choose_causal(
    frequencies: npt.NDArray[np.float64], traits: TraitModel, rng: np.random.Generator
) -> Causal:
    candidates = np.flatnonzero(np.minimum(frequencies, 1 - frequencies) >= traits.causal_min_maf)
    needed = traits.ldl_causal + traits.t2d_causal
    if len(candidates) < needed:
        raise InputError(
            f"only {len(candidates)} variants have a minor allele frequency of at least "
            f"{traits.causal_min_maf}, fewer than the {needed} causal variants to plant; "
            "ask for more variants (nothing was written)"
        )
    chosen = rng.choice(candidates, size=needed, replace=False)
    return Causal(np.sort(chosen[: traits.ldl_causal]), np.sort(chosen[traits.ldl_causal :]))


class GenotypeStream:
    """Decode blocks of variants, keep causal genotypes, set missing calls, count alleles."""

    def __init__(self, plan: Plan, causal: Causal, rng: np.random.Generator) -> None:
        self.plan = plan
        self.rng = rng
        self.causal_index = {int(v): i for i, v in enumerate(causal.all)}
        self.causal_dosages = np.zeros((len(self.causal_index), plan.n_samples), dtype=np.float64)
        per_sample = np.repeat(
            [c.missing_call_rate for c in plan.countries], plan.samples_per_country
        )
        self.missing_rate = per_sample.astype(np.float32)
        k = len(plan.countries)
        self.allele_counts = np.zeros((plan.n_variants, k), dtype=np.int64)
        self.allele_numbers = np.zeros((plan.n_variants, k), dtype=np.int64)
        self.done = 0

    def blocks(
        self, chromosomes: list[SimulatedChromosome], report: ProgressCallback
    ) -> Iterator[npt.NDArray[np.int8]]:
        report(Progress("writing genotypes", 0, self.plan.n_variants))
        haplotypes = np.empty((BLOCK_SIZE, 2 * self.plan.n_samples), dtype=np.int8)
        for chromosome in chromosomes:
            rows = 0
            for variant in chromosome.tree_sequence.variants(copy=False):
                haplotypes[rows] = variant.genotypes
                rows += 1
                if rows == BLOCK_SIZE:
                    yield self._finish(haplotypes[:rows])
                    report(Progress("writing genotypes", self.done, self.plan.n_variants))
                    rows = 0
            if rows:
                yield self._finish(haplotypes[:rows])
                report(Progress("writing genotypes", self.done, self.plan.n_variants))

    def _finish(self, haplotypes: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        dosages = haplotypes[:, 0::2] + haplotypes[:, 1::2]
        start, stop = self.done, self.done + len(dosages)
        for variant in range(start, stop):
            if variant in self.causal_index:
                self.causal_dosages[self.causal_index[variant]] = dosages[variant - start]
        missing = self.rng.random(dosages.shape, dtype=np.float32) < self.missing_rate
        dosages[missing] = MISSING_CALL
        k, n = len(self.plan.countries), self.plan.samples_per_country
        by_country = dosages.reshape(len(dosages), k, n)
        called = by_country >= 0
        self.allele_counts[start:stop] = np.where(called, by_country, 0).sum(axis=2)
        self.allele_numbers[start:stop] = 2 * called.sum(axis=2)
        self.done = stop
        return dosages
