"""The national cohorts genofed can simulate, and how they differ."""

from __future__ import annotations

import math
from dataclasses import dataclass

from genofed.errors import InputError


@dataclass(frozen=True)
class Country:
    """One national node's population and the features of its cohort.

    Attributes
    ----------
    code, name
        ISO 3166-1 alpha-2 code and English name.
    latitude, longitude
        A central point of the country, in degrees; it sets migration rates.
    missing_call_rate
        Fraction of genotype calls set missing, as for this node's array platform.
    ldl_mean
        Mean LDL cholesterol (mmol/L) at age 50, so the trait mean shifts by country.
    t2d_prevalence
        Prevalence of the binary disease trait in this country's cohort.
    """

    code: str
    name: str
    latitude: float
    longitude: float
    missing_call_rate: float
    ldl_mean: float
    t2d_prevalence: float


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country("CZ", "Czechia", 49.8, 15.5, 0.002, 3.30, 0.090),
        Country("EE", "Estonia", 58.6, 25.0, 0.005, 3.45, 0.070),
        Country("DE", "Germany", 51.2, 10.4, 0.001, 3.25, 0.085),
        Country("PT", "Portugal", 39.6, -8.0, 0.010, 3.05, 0.130),
        Country("SI", "Slovenia", 46.1, 14.8, 0.003, 3.15, 0.080),
        Country("ES", "Spain", 40.4, -3.7, 0.006, 2.95, 0.110),
    )
}
DEFAULT_COUNTRIES: tuple[str, ...] = ("CZ", "EE", "DE", "PT", "SI", "ES")


def resolve_countries(codes: str | list[str] | tuple[str, ...]) -> tuple[Country, ...]:
    """Look up country codes given as a list or a comma-separated string.

    Raises
    ------
    InputError
        If a code is unknown or repeated, or if no code is given.
    """
    if isinstance(codes, str):
        codes = [c.strip() for c in codes.split(",") if c.strip()]
    codes = [c.upper() for c in codes]
    if not codes:
        raise InputError("no countries given; choose from " + ",".join(COUNTRIES))
    unknown = [c for c in codes if c not in COUNTRIES]
    if unknown:
        raise InputError(
            f"unknown country code {', '.join(unknown)}; choose from {','.join(COUNTRIES)}"
        )
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise InputError(f"country code {', '.join(repeated)} given more than once")
    return tuple(COUNTRIES[c] for c in codes)


def distance_km(a: Country, b: Country) -> float:
    """Great-circle distance between two countries' central points, in km."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))
