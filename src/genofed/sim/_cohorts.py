"""``simulate_cohorts``: real-like genotype and phenotype files for national nodes."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import logging
import os
import platform
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed._files import atomic_directory, check_output_directory
from genofed.errors import InputError
from genofed.io.phenotypes import write_phenotype_table
from genofed.io.plink import MISSING_CALL, BedWriter, VariantInfo
from genofed.kernels.fst import hudson_fst_sums
from genofed.sim._countries import DEFAULT_COUNTRIES, Country, resolve_countries
from genofed.sim._genome import (
    MAX_GENOME_BP,
    MIN_MINOR_ALLELE_COUNT,
    MUTATION_RATE,
    RECOMBINATION_RATE,
    ChromosomeTask,
    Demography,
    SimulatedChromosome,
    chromosome_lengths,
    default_variant_spacing,
    simulate_chromosome,
)
from genofed.sim._traits import (
    MALE,
    Covariates,
    TraitModel,
    draw_covariates,
    genetic_value,
    liability_threshold_cases,
    per_allele_effects,
    residual_noise,
    set_missing,
)

log = logging.getLogger(__name__)

BLOCK_SIZE = 512  # variants decoded, masked and written together


@dataclass(frozen=True)
class Progress:
    """How far a long-running step has come."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class CountrySummary:
    """What one simulated national cohort holds."""

    code: str
    name: str
    samples: int
    polymorphic_variants: int
    missing_call_rate: float
    t2d_cases: int
    t2d_controls: int
    ldl_mean: float


@dataclass(frozen=True)
class SimulationResult:
    """Where the cohorts were written and what they hold.

    ``fst`` maps each pair of country codes to Hudson's Fst measured on the
    written genotypes.
    """

    out: Path
    seed: int
    n_variants: int
    n_chromosomes: int
    countries: tuple[CountrySummary, ...]
    fst: dict[tuple[str, str], float]


@dataclass(frozen=True)
class _Plan:
    countries: tuple[Country, ...]
    samples_per_country: int
    n_variants: int
    seed: int
    variant_spacing_bp: int
    demography: Demography
    traits: TraitModel

    @property
    def genome_bp(self) -> int:
        return self.n_variants * self.variant_spacing_bp

    @property
    def n_samples(self) -> int:
        return len(self.countries) * self.samples_per_country

    def iids(self, country: Country) -> list[str]:
        return [f"{country.code}{i:06d}" for i in range(1, self.samples_per_country + 1)]


def simulate_cohorts(
    out: str | os.PathLike[str],
    countries: str | Sequence[str] = DEFAULT_COUNTRIES,
    *,
    samples_per_country: int = 1000,
    n_variants: int = 20_000,
    seed: int | None = None,
    force: bool = False,
    variant_spacing_bp: int | None = None,
    demography: Demography | None = None,
    traits: TraitModel | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    """Simulate genotype and phenotype files for a federation of national nodes.

    A coalescent simulation (msprime) of chromosomes 1-10, whose lengths keep
    the human proportions and add up to ``n_variants * variant_spacing_bp``,
    yields biallelic SNPs seen at least twice; ``n_variants`` of them are
    kept, chosen uniformly. Each country then gets ``DIR/<CC>/genotypes.
    {bed,bim,fam}`` and ``DIR/<CC>/phenotypes.tsv``; ``DIR/pooled/`` holds
    all countries merged (for validation only), ``DIR/truth.tsv`` the planted
    causal variants and ``DIR/provenance.json`` every parameter and version.

    Parameters
    ----------
    out
        Output directory. It is written under a temporary name and renamed
        into place, so a failed run leaves nothing behind.
    countries
        Country codes, as a sequence or a comma-separated string.
    samples_per_country
        Diploid samples per country.
    n_variants
        Number of variants in every file set.
    seed
        Seed of every random draw; ``None`` draws one, recorded in the
        provenance. The same seed gives byte-identical files.
    force
        Replace ``out`` if it exists and is not empty.
    variant_spacing_bp
        Mean distance between kept variants, which sets the genome length;
        by default, wide enough for the sample size (at least 250 bp).
    demography, traits
        Models of the population history and of the phenotypes.
    workers
        Threads simulating chromosomes in parallel; default: CPU count.
    progress
        Called as chromosomes are simulated and variants written.

    Raises
    ------
    InputError
        For invalid arguments, an existing non-empty ``out`` without
        ``force``, or more variants than the simulated genome provides.
    """
    resolved = resolve_countries(countries if isinstance(countries, str) else list(countries))
    demography = demography or Demography()
    n_haplotypes = 2 * _at_least_one("samples per country", samples_per_country) * len(resolved)
    if variant_spacing_bp is None:
        variant_spacing_bp = default_variant_spacing(n_haplotypes, demography.ancestral_size)
    plan = _Plan(
        countries=resolved,
        samples_per_country=samples_per_country,
        n_variants=_at_least_one("number of variants", n_variants),
        seed=secrets.randbits(32) if seed is None else _seed(seed),
        variant_spacing_bp=_at_least_one("variant spacing", variant_spacing_bp),
        demography=demography,
        traits=traits or TraitModel(),
    )
    workers = _at_least_one("workers", workers or os.cpu_count() or 1)
    if plan.genome_bp > MAX_GENOME_BP:
        raise InputError(
            f"{plan.n_variants} variants {plan.variant_spacing_bp} bp apart need a genome of "
            f"{plan.genome_bp / 1e6:,.0f} Mb, more than the {MAX_GENOME_BP / 1e6:,.0f} Mb of "
            "chromosomes 1-10 that genofed simulates; ask for fewer variants"
        )
    out = Path(out)
    check_output_directory(out, force=force)
    report = progress or (lambda _: None)
    log.info(
        "simulating %d countries x %d samples, %d variants over %.1f Mb, seed %d",
        len(plan.countries),
        plan.samples_per_country,
        plan.n_variants,
        plan.genome_bp / 1e6,
        plan.seed,
    )
    with atomic_directory(out, force=force) as staging:
        countries_summary, fst = _simulate_into(staging, plan, workers, report)
    log.info("wrote %s", out)
    return SimulationResult(
        out=out,
        seed=plan.seed,
        n_variants=plan.n_variants,
        n_chromosomes=len(chromosome_lengths(1)),
        countries=countries_summary,
        fst=fst,
    )


def _at_least_one(what: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a whole number of at least 1, not {value!r}")
    return value


def _seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"seed must be a whole number from 0 to 2**63-1, not {seed!r}")
    return seed


def _simulate_into(
    staging: Path, plan: _Plan, workers: int, report: ProgressCallback
) -> tuple[tuple[CountrySummary, ...], dict[tuple[str, str], float]]:
    genome_seeds, thin_seeds, causal_seeds, missing_seeds, trait_seeds = np.random.SeedSequence(
        plan.seed
    ).spawn(5)
    chromosomes = _simulate_genome(plan, genome_seeds, workers, report)
    selected = _thin(chromosomes, plan, np.random.default_rng(thin_seeds))
    variants = _variant_info(selected)
    frequencies = np.concatenate([c.derived_counts for c in selected]) / (2 * plan.n_samples)
    causal = _choose_causal(frequencies, plan.traits, np.random.default_rng(causal_seeds))

    trait_rng = np.random.default_rng(trait_seeds)
    covariates = draw_covariates(trait_rng, plan.n_samples)
    stream = _GenotypeStream(plan, causal, np.random.default_rng(missing_seeds))
    writers = [
        BedWriter(
            staging / country.code / "genotypes",
            iids=plan.iids(country),
            sexes=covariates.sex[_country_slice(plan, i)],
            variants=variants,
        )
        for i, country in enumerate(_mkdirs(staging, plan.countries))
    ]
    pooled = BedWriter(
        _mkdir(staging / "pooled") / "genotypes",
        iids=[iid for c in plan.countries for iid in plan.iids(c)],
        sexes=covariates.sex,
        variants=variants,
    )
    try:
        for dosages in stream.blocks(selected, report):
            pooled.write_block(dosages)
            for i, writer in enumerate(writers):
                writer.write_block(dosages[:, _country_slice(plan, i)])
        for writer in [*writers, pooled]:
            writer.close()
    except BaseException:
        for writer in [*writers, pooled]:
            writer.abort()
        raise

    groups = np.repeat(np.arange(len(plan.countries)), plan.samples_per_country)
    phenotypes, effects = _phenotypes(plan, covariates, groups, stream.causal_dosages, trait_rng)
    for i, country in enumerate(plan.countries):
        part = _country_slice(plan, i)
        write_phenotype_table(
            staging / country.code / "phenotypes.tsv",
            plan.iids(country),
            {name: values[part] for name, values in phenotypes.items()},
        )
    write_phenotype_table(
        staging / "pooled" / "phenotypes.tsv",
        [iid for c in plan.countries for iid in plan.iids(c)],
        phenotypes,
    )
    _write_truth(staging / "truth.tsv", variants, frequencies, causal, effects)
    _write_provenance(staging / "provenance.json", plan)
    return _summaries(plan, stream, phenotypes), _pairwise_fst(plan, stream)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _mkdirs(staging: Path, countries: tuple[Country, ...]) -> tuple[Country, ...]:
    for country in countries:
        _mkdir(staging / country.code)
    return countries


def _country_slice(plan: _Plan, index: int) -> slice:
    return slice(index * plan.samples_per_country, (index + 1) * plan.samples_per_country)


def _simulate_genome(
    plan: _Plan, seeds: np.random.SeedSequence, workers: int, report: ProgressCallback
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


def _thin(
    chromosomes: list[SimulatedChromosome], plan: _Plan, rng: np.random.Generator
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


def _variant_info(chromosomes: list[SimulatedChromosome]) -> VariantInfo:
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
class _Causal:
    ldl: npt.NDArray[np.intp]
    t2d: npt.NDArray[np.intp]

    @property
    def all(self) -> npt.NDArray[np.intp]:
        return np.concatenate([self.ldl, self.t2d])


def _choose_causal(
    frequencies: npt.NDArray[np.float64], traits: TraitModel, rng: np.random.Generator
) -> _Causal:
    candidates = np.flatnonzero(np.minimum(frequencies, 1 - frequencies) >= traits.causal_min_maf)
    needed = traits.ldl_causal + traits.t2d_causal
    if len(candidates) < needed:
        raise InputError(
            f"only {len(candidates)} variants have a minor allele frequency of at least "
            f"{traits.causal_min_maf}, fewer than the {needed} causal variants to plant; "
            "ask for more variants (nothing was written)"
        )
    chosen = rng.choice(candidates, size=needed, replace=False)
    return _Causal(np.sort(chosen[: traits.ldl_causal]), np.sort(chosen[traits.ldl_causal :]))


class _GenotypeStream:
    """Decode blocks of variants, keep causal genotypes, set missing calls, count alleles."""

    def __init__(self, plan: _Plan, causal: _Causal, rng: np.random.Generator) -> None:
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


def _phenotypes(
    plan: _Plan,
    covariates: Covariates,
    groups: npt.NDArray[np.intp],
    causal_dosages: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, npt.NDArray[np.float64]]]:
    t = plan.traits
    n_ldl = t.ldl_causal
    age, male = covariates.age, (covariates.sex == MALE).astype(np.float64)
    ldl_variance = t.ldl_sd**2
    ldl_effects = per_allele_effects(rng, causal_dosages[:n_ldl], t.ldl_heritability * ldl_variance)
    t2d_effects = per_allele_effects(rng, causal_dosages[n_ldl:], t.t2d_heritability)
    means = np.array([c.ldl_mean for c in plan.countries])
    ldl = (
        means[groups]
        + t.ldl_per_year * (age - 50)
        + t.ldl_male * male
        + genetic_value(ldl_effects, causal_dosages[:n_ldl])
        + residual_noise(rng, plan.n_samples, (1 - t.ldl_heritability) * ldl_variance)
    )
    liability = (
        genetic_value(t2d_effects, causal_dosages[n_ldl:])
        + t.t2d_per_year * (age - 50)
        + t.t2d_male * male
        + residual_noise(rng, plan.n_samples, 1 - t.t2d_heritability)
    )
    prevalences = np.array([c.t2d_prevalence for c in plan.countries])
    columns = {
        "ldl": np.round(ldl, 3),
        "t2d": liability_threshold_cases(liability, groups, prevalences),
        "age": age,
    }
    for name, rate in t.missing_rates:
        columns[name] = set_missing(rng, columns[name], rate)
    columns["sex"] = covariates.sex.astype(np.float64)
    return columns, {"ldl": ldl_effects, "t2d": t2d_effects}


def _write_truth(
    path: Path,
    variants: VariantInfo,
    frequencies: npt.NDArray[np.float64],
    causal: _Causal,
    effects: dict[str, npt.NDArray[np.float64]],
) -> None:
    lines = [
        "trait\tvariant_id\teffect_allele\teffect\tchromosome\tbase_pair_location"
        "\tother_allele\teffect_allele_frequency"
    ]
    for trait, indices in (("ldl", causal.ldl), ("t2d", causal.t2d)):
        for index, effect in zip(indices, effects[trait], strict=True):
            lines.append(
                f"{trait}\t{variants.variant_id[index]}\t{variants.allele_1[index]}\t{effect:.6g}"
                f"\t{variants.chromosome[index]}\t{variants.bp_position[index]}"
                f"\t{variants.allele_2[index]}\t{frequencies[index]:.6g}"
            )
    path.write_text("\n".join(lines) + "\n")


def _write_provenance(path: Path, plan: _Plan) -> None:
    versions = {
        name: metadata.version(name)
        for name in ("genofed", "msprime", "tskit", "numpy", "bed-reader")
    }
    record = {
        "software": "genofed",
        "command": "simulate",
        "parameters": {
            "countries": [c.code for c in plan.countries],
            "samples_per_country": plan.samples_per_country,
            "n_variants": plan.n_variants,
            "seed": plan.seed,
            "variant_spacing_bp": plan.variant_spacing_bp,
            "chromosome_lengths_bp": chromosome_lengths(plan.genome_bp),
            "recombination_rate": RECOMBINATION_RATE,
            "mutation_rate": MUTATION_RATE,
            "min_minor_allele_count": MIN_MINOR_ALLELE_COUNT,
            "demography": dataclasses.asdict(plan.demography),
            "traits": dataclasses.asdict(plan.traits),
            "country_parameters": [dataclasses.asdict(c) for c in plan.countries],
        },
        "environment": {"python": platform.python_version(), **versions},
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _summaries(
    plan: _Plan, stream: _GenotypeStream, phenotypes: dict[str, npt.NDArray[np.float64]]
) -> tuple[CountrySummary, ...]:
    summaries = []
    for i, country in enumerate(plan.countries):
        part = _country_slice(plan, i)
        counts, numbers = stream.allele_counts[:, i], stream.allele_numbers[:, i]
        t2d = phenotypes["t2d"][part]
        summaries.append(
            CountrySummary(
                code=country.code,
                name=country.name,
                samples=plan.samples_per_country,
                polymorphic_variants=int(((counts > 0) & (counts < numbers)).sum()),
                missing_call_rate=1
                - numbers.sum() / (2 * plan.samples_per_country * plan.n_variants),
                t2d_cases=int((t2d == 1).sum()),
                t2d_controls=int((t2d == 0).sum()),
                ldl_mean=float(np.nanmean(phenotypes["ldl"][part])),
            )
        )
    return tuple(summaries)


def _pairwise_fst(plan: _Plan, stream: _GenotypeStream) -> dict[tuple[str, str], float]:
    fst = {}
    for i, j in itertools.combinations(range(len(plan.countries)), 2):
        sums = hudson_fst_sums(stream.allele_counts[:, [i, j]], stream.allele_numbers[:, [i, j]])
        fst[plan.countries[i].code, plan.countries[j].code] = sums.fst
    return fst
