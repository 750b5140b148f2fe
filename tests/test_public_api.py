from __future__ import annotations

import subprocess
import sys

import genofed


def test_public_api__all_is_exactly_the_public_names() -> None:
    public = {name for name in vars(genofed) if not name.startswith("_")}
    modules = {
        "errors",
        "sim",
        "io",
        "kernels",
        "cli",
        "coordinator",
        "node",
        "protocol",
        "report",
        "aai",
    }
    assert set(genofed.__all__) - {"__version__"} == public - modules
    assert genofed.__version__


def test_cli__runs_as_a_console_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "genofed.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == f"genofed {genofed.__version__}"
