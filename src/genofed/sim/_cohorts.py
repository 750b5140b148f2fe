"""``simulate_cohorts``: real-like genotype and phenotype files for national nodes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import platform
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from genofed._files import atomic_directory, check_output_directory
from genofed._progress import ProgressCallback
from genofed.errors import InputError
from genofed.io.phenotypes import write_phenotype_table
from genofed.io.plink import BedWriter, VariantInfo
from genofed.kernels.fst import hudson_fst_sums
from genofed.sim._countries import DEFAULT_COUNTRIES, resolve_countries
from genofed.sim._genome import (
    MAX_GENOME_BP,
    MIN_MINOR_ALLELE_COUNT,
    MUTATION_RATE,
    N_CHROMOSOMES,
    RECOMBINATION_RATE,
    Demography,
    chromosome_lengths,
    default_variant_spacing,
)
from genofed.sim._plan import Plan
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
from genofed.sim._variants import (
    Causal,
    GenotypeStream,
    choose_causal,
    simulate_genome,
    thin,
    variant_info,
)

log = logging.getLogger(__name__)

BLOCK_SIZE = 512  # variants decoded, masked and written together


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

    def causal_ids(self, trait: str) -> set[str]:
        """Return the IDs of the variants planted as causal for ``trait`` (``truth.tsv``)."""
        rows = (line.split("\t") for line in (self.out / "truth.tsv").read_text().splitlines()[1:])
        return {row[1] for row in rows if row[0] == trait}


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
    plan = Plan(
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
        n_chromosomes=N_CHROMOSOMES,
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
    staging: Path, plan: Plan, workers: int, report: ProgressCallback
) -> tuple[tuple[CountrySummary, ...], dict[tuple[str, str], float]]:
    genome_seeds, thin_seeds, causal_seeds, missing_seeds, trait_seeds = np.random.SeedSequence(
        plan.seed
    ).spawn(5)
    chromosomes = simulate_genome(plan, genome_seeds, workers, report)
    selected = thin(chromosomes, plan, np.random.default_rng(thin_seeds))
    variants = variant_info(selected)
    frequencies = np.concatenate([c.derived_counts for c in selected]) / (2 * plan.n_samples)
    causal = choose_causal(frequencies, plan.traits, np.random.default_rng(causal_seeds))

    trait_rng = np.random.default_rng(trait_seeds)
    covariates = draw_covariates(trait_rng, plan.n_samples)
    stream = GenotypeStream(plan, causal, np.random.default_rng(missing_seeds))
    iids = np.array([iid for country in plan.countries for iid in plan.iids(country)])
    file_sets = [(c.code, plan.country_slice(i)) for i, c in enumerate(plan.countries)]
    file_sets.append(("pooled", slice(None)))
    writers = []
    for name, part in file_sets:
        (staging / name).mkdir()
        prefix = staging / name / "genotypes"
        sexes = covariates.sex[part]
        writers.append(BedWriter(prefix, iids=list(iids[part]), sexes=sexes, variants=variants))
    try:
        for dosages in stream.blocks(selected, report):
            for (_, part), writer in zip(file_sets, writers, strict=True):
                writer.write_block(dosages[:, part])
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise

    groups = np.repeat(np.arange(len(plan.countries)), plan.samples_per_country)
    phenotypes, effects = _phenotypes(plan, covariates, groups, stream.causal_dosages, trait_rng)
    for name, part in file_sets:
        write_phenotype_table(
            staging / name / "phenotypes.tsv",
            list(iids[part]),
            {column: values[part] for column, values in phenotypes.items()},
        )
    _write_truth(staging / "truth.tsv", variants, frequencies, causal, effects)
    _write_provenance(staging / "provenance.json", plan)
    return _summaries(plan, stream, phenotypes), _pairwise_fst(plan, stream)


def _phenotypes(
    plan: Plan,
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
    draws = rng.random(len(age))  # one per sample: missing values are nested
    # As quantiles within each country, so that every country misses the same share.
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        draws[members] = (np.argsort(np.argsort(draws[members])) + 0.5) / len(members)
    for name, rate in t.missing_rates:
        columns[name] = set_missing(draws, columns[name], rate)
    columns["sex"] = covariates.sex.astype(np.float64)
    return columns, {"ldl": ldl_effects, "t2d": t2d_effects}


def _write_truth(
    path: Path,
    variants: VariantInfo,
    frequencies: npt.NDArray[np.float64],
    causal: Causal,
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


def _write_provenance(path: Path, plan: Plan) -> None:
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
    plan: Plan, stream: GenotypeStream, phenotypes: dict[str, npt.NDArray[np.float64]]
) -> tuple[CountrySummary, ...]:
    summaries = []
    for i, country in enumerate(plan.countries):
        part = plan.country_slice(i)
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


def _pairwise_fst(plan: Plan, stream: GenotypeStream) -> dict[tuple[str, str], float]:
    fst = {}
    for i, j in itertools.combinations(range(len(plan.countries)), 2):
        sums = hudson_fst_sums(stream.allele_counts[:, [i, j]], stream.allele_numbers[:, [i, j]])
        fst[plan.countries[i].code, plan.countries[j].code] = sums.fst
    return fst
