"""``genofed demo`` as a user runs it, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genofed.cli import main
from genofed.report import read_gwas_ssf

# 400 per country: a node's min_difference rule needs the PCA's all-sample cohort and the
# GWAS cohort (3% without the phenotype: 12 samples) to differ by at least 10 samples.
SMALL = ["--samples-per-country", "400", "--variants", "2000", "--countries", "CZ,EE,PT"]


def test_cli_demo__runs_the_pca_and_the_federated_gwas_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--format", "json", "--out", str(out), *SMALL]) == 0
    record = json.loads(capsys.readouterr().out)
    gwas = record["gwas"]
    assert set(gwas["samples_per_node"]) == {"CZ", "EE", "PT"}
    assert 1100 < sum(gwas["samples_per_node"].values()) <= 1200
    assert 0.5 < gwas["lambda_gc"] < 3
    table = read_gwas_ssf(out / "results" / "ldl.tsv")
    assert len(table) == 2000
    assert np.nanmin(table.p_value) == pytest.approx(gwas["top_hits"][0]["p_value"])
    assert set(table.extra["disclosure"]) == {".", "IMPUTED", "WITHHELD"}
    assert np.isnan(table.p_value[table.extra["disclosure"] == "WITHHELD"]).all()
    pca = record["pca"]
    assert len(pca["eigenvalues"]) == 10
    assert pca["eigenvalues"] == sorted(pca["eigenvalues"], reverse=True)
    assert 0 < pca["variants_used"] < 2000
    assert pca["filtered"]["ld"] > 0
    assert pca["filtered"]["withheld"] > 0  # counts of a group of 1 to 4 samples
    assert pca["variants_used"] + sum(pca["filtered"].values()) == 2000
    with_pcs = record["gwas_with_pcs"]
    assert record["lambda_gc"] == {
        "without_pcs": gwas["lambda_gc"],
        "with_pcs": with_pcs["lambda_gc"],
    }
    meta = (out / "results" / "ldl.pcs.tsv-meta.yaml").read_text()
    assert f'pcs: "{pca["run"]}"' in meta
    for code in ("CZ", "EE", "PT"):  # every node keeps its own scores, from this run
        stored = json.loads((out / "nodes" / code / "covariate-sets" / "pcs.json").read_text())
        assert stored["run"] == pca["run"]
    disease = record["disease_gwas"]
    assert (disease["model"], disease["trait"]) == ("logistic", "t2d")
    assert set(disease["samples_per_node"]) == {"CZ", "EE", "PT"}
    t2d = read_gwas_ssf(out / "results" / "t2d.pcs.tsv")
    assert t2d.effect == "odds_ratio"
    assert len(t2d) == 2000
    header = (out / "results" / "t2d.pcs.tsv").read_text().split("\n", 1)[0].split("\t")
    assert header[-5:] == ["n_cases", "n_controls", "firth", "errcode", "disclosure"]
    released = t2d.extra["disclosure"] == "."
    assert set(t2d.extra["disclosure"]) == {".", "WITHHELD"}  # no imputation for logistic
    assert released.sum() > 20
    assert np.isnan(t2d.p_value[~released]).all()
    assert np.nanmin(t2d.p_value) == pytest.approx(disease["top_hits"][0]["p_value"])
    assert len(record["plots"]) == 7  # the PC picture, and Manhattan and QQ of three GWAS
    for plot in record["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for code in ("CZ", "EE", "PT"):
        log = (out / "nodes" / code / "node.log").read_text()
        assert f"node {code} stopped (SIGTERM)" in log
        assert "round 'round-1' with CZ, EE, PT" in log  # masked for all three
    assert gwas["dropped_nodes"] == []
