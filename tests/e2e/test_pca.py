"""``genofed pca`` over three node processes against ``plink2 --pca``, pooled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genofed.cli import main
from genofed.io.plink import read_fam
from tests.conftest import PlinkRunner
from tests.e2e.conftest import SplitFederation

COMPONENTS = 10


@pytest.fixture(scope="module")
def pca(split_federation: SplitFederation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pca") / "pcs"
    code = main(
        ["pca", "--federation", str(split_federation.federation), "--out", str(out),
         "--passport", str(split_federation.passport_file), "--components", str(COMPONENTS)]
    )  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def plink_pca(
    pca: Path,
    split_federation: SplitFederation,
    plink2: PlinkRunner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """``plink2 --pca meanimpute`` (exact) on the pooled files and the variants genofed used."""
    return plink2(
        "--bfile", split_federation.pooled, "--extract", f"{pca}.prune.in",
        "--pca", str(COMPONENTS), "meanimpute", "biallelic-var-wts",
        out=tmp_path_factory.mktemp("plink-pca") / "pooled",
    )  # fmt: skip


def gathered_scores(split_federation: SplitFederation, name: str = "pcs") -> dict[str, np.ndarray]:
    """Test only: every node's stored scores, by IID (no API sends them anywhere)."""
    scores = {}
    for directory in split_federation.nodes.values():
        iids = read_fam(directory / "genotypes.fam")
        with np.load(directory / "node" / "covariate-sets" / f"{name}.npz") as archive:
            values = archive["scores"]
        scores.update(zip(iids, values, strict=True))
    return scores


def read_eigenvec(path: Path) -> tuple[list[str], np.ndarray]:
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    return [r[1] for r in rows], np.array([[float(v) for v in r[2:]] for r in rows])


def test_pca__eigenvalues_equal_plink2_pca_meanimpute_on_the_pooled_files(
    pca: Path, plink_pca: Path
) -> None:
    ours = np.loadtxt(f"{pca}.eigenval")
    theirs = np.loadtxt(f"{plink_pca}.eigenval")
    print("eigenvalues", ours, theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)


def test_pca__node_scores_span_plink2s_eigenvectors(
    pca: Path, plink_pca: Path, split_federation: SplitFederation
) -> None:
    iids, theirs = read_eigenvec(Path(f"{plink_pca}.eigenvec"))
    scores = gathered_scores(split_federation)
    ours = np.array([scores[iid] for iid in iids])
    np.testing.assert_allclose(ours.T @ ours, np.eye(COMPONENTS), atol=1e-8)  # unit, orthogonal
    theirs /= np.linalg.norm(theirs, axis=0)
    cosines = np.linalg.svd(ours.T @ theirs, compute_uv=False)
    angle = float(np.arccos(np.clip(cosines.min(), -1, 1)))
    print("largest principal angle", angle)
    assert angle < 1e-3
