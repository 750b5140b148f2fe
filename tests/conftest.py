"""Suite-wide fixtures: PLINK 2, one shared simulated federation and a passport issuer."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from genofed.aai import Issuer, init_issuer, issue_passport
from genofed.sim import SimulationResult, simulate_cohorts

PlinkRunner = Callable[..., Path]


@pytest.fixture(scope="session")
def plink2() -> PlinkRunner:
    """Run ``plink2`` with arguments; return the --out prefix. PLINK 2 is required."""
    executable = shutil.which("plink2")
    assert executable, "plink2 is not installed: run `make test`, which installs it"

    def run(*args: str | Path, out: Path) -> Path:
        command = [executable, *map(str, args), "--threads", "2", "--out", str(out)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stdout}"
        return out

    return run


@pytest.fixture(scope="session")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """Six countries x 400 samples x 8,000 variants, simulated once per test run."""
    out = tmp_path_factory.mktemp("federation") / "cohorts"
    return simulate_cohorts(out, samples_per_country=400, n_variants=8000, seed=7, workers=2)


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    """A local passport issuer (broker and visa issuer) that test nodes trust."""
    return init_issuer(tmp_path_factory.mktemp("aai") / "issuer")


def passport_for(issuer: Issuer, *datasets: str, user: str = "alice@example.org") -> str:
    """A passport with a ControlledAccessGrants visa for each dataset."""
    return issue_passport(issuer.directory, user=user, grants=list(datasets))
