"""``genofed --help`` builds its parsers without the heavy modules the commands use."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numba", "scipy", "matplotlib", "msprime", "fastapi", "uvicorn")

# Import the CLI, print a command's help as `genofed <command> --help` does, and
# print the heavy modules (and their submodules) imported along the way.
HELP = """
import contextlib, io, sys
import genofed.cli
heavy, command = sys.argv[1].split(","), sys.argv[2:]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    genofed.cli.main([*command, "--help"])
print(" ".join(sorted(m for m in sys.modules if m.partition(".")[0] in heavy)))
"""


def heavy_modules_after(script: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", script, ",".join(HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["simulate"],
        ["node", "init"],
        ["node", "serve"],
        ["node", "trust"],
        ["node", "audit"],
        ["federation", "create"],
        ["qc"],
        ["pca"],
        ["gwas"],
        ["demo"],
        ["aai", "init"],
        ["aai", "passport"],
    ],
)
def test_cli_startup__help_imports_no_heavy_module(command: list[str]) -> None:
    assert heavy_modules_after(HELP, *command) == ""


def test_cli_startup__import_genofed_imports_no_heavy_module() -> None:
    script = (
        "import sys, genofed\n"
        "heavy = sys.argv[1].split(',')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.partition('.')[0] in heavy)))"
    )
    assert heavy_modules_after(script) == ""
