"""``genofed simulate`` as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genofed.cli import main

SMALL = ["--samples-per-country", "30", "--variants", "1200", "--seed", "5"]


def test_cli_simulate__prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path / "out"), *SMALL]) == 0
    text = capsys.readouterr().out
    assert "Simulated 6 national cohorts" in text
    assert "Pairwise Fst" in text
    assert (tmp_path / "out" / "EE" / "genotypes.bed").is_file()


def test_cli_simulate__json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--format", "json", "--out", str(tmp_path / "o"), "--countries", "PT,ES"]
    assert main([*argv, *SMALL]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [c["code"] for c in record["countries"]] == ["PT", "ES"]
    assert set(record["fst"]) == {"PT-ES"}
    assert record["seed"] == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--countries", "CZ,XX"], r"unknown country code XX; choose from CZ,EE,DE,PT,SI,ES"),
        (["--countries", "CZ,CZ"], r"country code CZ given more than once"),
        (["--samples-per-country", "0"], r"samples per country must be .* at least 1, not 0"),
        (["--variants", "-5"], r"number of variants must be .* at least 1, not -5"),
    ],
)
def test_cli_simulate__bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code = main(["simulate", "--out", str(tmp_path / "out"), *arguments])
    error = capsys.readouterr().err
    assert code == 2
    assert len(error.strip().splitlines()) == 1
    assert error.startswith("genofed simulate: error: ")
    assert re.search(message, error)
    assert list(tmp_path.iterdir()) == []


def test_cli_simulate__refuses_non_empty_directory_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["simulate", "--out", str(out), *SMALL]) == 2
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["simulate", "--out", str(out), *SMALL, "--force"]) == 0
    assert not (out / "keep.txt").exists()
    assert (out / "truth.tsv").is_file()
