"""``genofed demo`` as a user runs it, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genofed.cli import main
from genofed.report import read_gwas_ssf

SMALL = ["--samples-per-country", "150", "--variants", "2000", "--countries", "CZ,EE,PT"]


def test_cli_demo__runs_the_federated_gwas_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--format", "json", "--out", str(out), *SMALL]) == 0
    record = json.loads(capsys.readouterr().out)
    gwas = record["gwas"]
    assert set(gwas["samples_per_node"]) == {"CZ", "EE", "PT"}
    assert 400 < sum(gwas["samples_per_node"].values()) <= 450
    assert 0.5 < gwas["lambda_gc"] < 3
    table = read_gwas_ssf(out / "results" / "ldl.tsv")
    assert len(table) == 2000
    assert np.nanmin(table.p_value) == pytest.approx(gwas["top_hits"][0]["p_value"])
    disease = record["disease_gwas"]
    assert (disease["model"], disease["trait"]) == ("logistic", "t2d")
    assert set(disease["samples_per_node"]) == {"CZ", "EE", "PT"}
    t2d = read_gwas_ssf(out / "results" / "t2d.tsv")
    assert t2d.effect == "odds_ratio"
    assert len(t2d) == 2000
    header = (out / "results" / "t2d.tsv").read_text().split("\n", 1)[0].split("\t")
    assert header[-4:] == ["n_cases", "n_controls", "firth", "errcode"]
    assert len(record["plots"]) == 4
    for plot in record["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for code in ("CZ", "EE", "PT"):
        log = (out / "nodes" / code / "node.log").read_text()
        assert f"node {code} stopped (SIGTERM)" in log
        assert "round 'round-1' with CZ, EE, PT" in log  # masked for all three
    assert gwas["dropped_nodes"] == []
