"""Real-like synthetic cohorts for national nodes (msprime coalescent simulations).

Names are imported on first use: the country table is cheap, msprime is not.
"""

import typing

from genofed import _lazy

if typing.TYPE_CHECKING:
    from genofed._progress import Progress, ProgressCallback
    from genofed.sim._cohorts import CountrySummary, SimulationResult, simulate_cohorts
    from genofed.sim._countries import COUNTRIES, DEFAULT_COUNTRIES, Country
    from genofed.sim._genome import Demography
    from genofed.sim._traits import TraitModel
else:
    __getattr__, __dir__ = _lazy.exports(
        __name__,
        {
            "genofed._progress": ["Progress", "ProgressCallback"],
            "genofed.sim._cohorts": ["CountrySummary", "SimulationResult", "simulate_cohorts"],
            "genofed.sim._countries": ["COUNTRIES", "DEFAULT_COUNTRIES", "Country"],
            "genofed.sim._genome": ["Demography"],
            "genofed.sim._traits": ["TraitModel"],
        },
    )

__all__ = [
    "COUNTRIES",
    "DEFAULT_COUNTRIES",
    "Country",
    "CountrySummary",
    "Demography",
    "Progress",
    "ProgressCallback",
    "SimulationResult",
    "TraitModel",
    "simulate_cohorts",
]
