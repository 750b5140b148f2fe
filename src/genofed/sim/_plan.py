"""One simulation's resolved parameters."""

from __future__ import annotations

from dataclasses import dataclass

from genofed.sim._countries import Country
from genofed.sim._genome import Demography
from genofed.sim._traits import TraitModel


@dataclass(frozen=True)
class Plan:
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

    def country_slice(self, index: int) -> slice:
        return slice(index * self.samples_per_country, (index + 1) * self.samples_per_country)

    def iids(self, country: Country) -> list[str]:
        return [f"{country.code}{i:06d}" for i in range(1, self.samples_per_country + 1)]
