from __future__ import annotations

import importlib
import subprocess
import sys
from types import ModuleType

import pytest

import genofed


def test_public_api__all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name in dir(genofed)
        if not name.startswith("_") and not isinstance(getattr(genofed, name), ModuleType)
    }
    assert set(genofed.__all__) - {"__version__"} == public
    assert {"run_gwas", "run_pca"} <= public
    assert genofed.__version__


@pytest.mark.parametrize("package", ["genofed", "genofed.sim", "genofed.report", "genofed.aai"])
def test_public_api__every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []
    assert sorted(module.__all__) == sorted(set(module.__all__))


def test_public_api__names_are_the_defining_modules_objects() -> None:
    from genofed.coordinator.gwas import run_gwas
    from genofed.coordinator.pca import run_pca

    assert genofed.run_gwas is run_gwas
    assert genofed.run_pca is run_pca


def test_public_api__unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'genofed' has no attribute 'run_nothing'"):
        genofed.run_nothing  # noqa: B018


def test_cli__runs_as_a_console_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "genofed.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == f"genofed {genofed.__version__}"
