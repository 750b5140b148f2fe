"""``genofed pca`` over three node processes against ``plink2 --pca``, pooled."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from bed_reader import open_bed

from genofed.aai import Issuer, write_passport
from genofed.cli import main
from genofed.cli.pca import LD_R2, LD_STEP, LD_WINDOW
from genofed.io import BedWriter, read_phenotype_table
from genofed.io.plink import MISSING_CALL, read_bim, read_fam
from genofed.report import read_gwas_ssf
from tests.conftest import PlinkRunner, passport_for
from tests.e2e.conftest import NODE_SIZES, SplitFederation
from tests.plink import read_tsv

COMPONENTS = 10
MIN_COUNT = 5  # every node's [disclosure] min_count (the default)


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


def pooled_dosages(split_federation: SplitFederation) -> np.ndarray:
    """ALT dosages (samples x variants) of the pooled files: the PCA's cohort is every sample."""
    with open_bed(split_federation.pooled.with_suffix(".bed")) as bed:
        dosages: np.ndarray = bed.read(dtype="int8")
    return dosages


def pca_candidates(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The variants whose counts are withheld, and those LD pruning starts from.

    Withheld: a pooled count of ALT dosage 0, 1, 2 or missing of 1 to
    ``MIN_COUNT - 1``; the candidates are the others with two dosages or more.
    """
    counts = np.stack([(dosages == d).sum(axis=0) for d in (0, 1, 2, MISSING_CALL)], axis=1)
    withheld = ((counts > 0) & (counts < MIN_COUNT)).any(axis=1)
    variable = (counts[:, :3] > 0).sum(axis=1) > 1
    return withheld, ~withheld & variable


def imputed_at_each_node(dosages: np.ndarray) -> np.ndarray:
    """Each node's missing calls set to the dosage nearest its mean at the variant (0 if none)."""
    imputed = dosages.copy()
    bounds = np.cumsum([0, *NODE_SIZES.values()])
    for start, stop in itertools.pairwise(bounds):
        node = imputed[start:stop]
        called = node != MISSING_CALL
        total = np.where(called, node, 0).sum(axis=0)
        count = called.sum(axis=0)
        nearest = np.rint(np.divide(total, count, out=np.zeros(len(count)), where=count > 0))
        node[~called] = np.broadcast_to(nearest.astype(np.int8), node.shape)[~called]
    return imputed


def plink_prune_in(
    plink2: PlinkRunner, bfile: Path, candidates: list[str], workdir: Path
) -> list[str]:
    """``plink2 --indep-pairwise`` with genofed pca's defaults on ``candidates``, in file order."""
    extract = workdir / "candidates.txt"
    extract.write_text("\n".join(candidates) + "\n")
    out = plink2(
        "--bfile", bfile, "--extract", extract,
        "--indep-pairwise", LD_WINDOW, LD_STEP, LD_R2,
        out=workdir / "pruned",
    )  # fmt: skip
    return Path(f"{out}.prune.in").read_text().split()


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


def test_gwas_with_pcs__equals_plink2_glm_with_the_same_scores_as_covariates(
    pca: Path,
    split_federation: SplitFederation,
    plink2: PlinkRunner,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    # Another researcher: the PCA's all-sample cohort and this GWAS's would differ by a
    # few samples, which the nodes' min_difference rule refuses to one user.
    grants = (f"genofed:{name}" for name in split_federation.nodes)
    passport = write_passport(passport_for(issuer, *grants, user="frank"), tmp_path / "f.jwt")
    out = tmp_path / "ldl"
    code = main(
        ["gwas", "--federation", str(split_federation.federation), "--out", str(out),
         "--passport", str(passport), "--phenotype", "ldl",
         "--covariates", "age,sex,pcs:1-4"]
    )  # fmt: skip
    assert code == 0
    run = json.loads(Path(f"{pca}.pca.json").read_text())["run"]
    meta = Path(f"{out}.tsv-meta.yaml").read_text()
    assert f'pcs: "{run}"' in meta  # the PCA run the covariates came from
    assert "pcs:PC4" in meta
    # PLINK 2 on the pooled files, with the node-held scores gathered (test only) as covariates
    table = read_phenotype_table(split_federation.phenotypes)
    scores = gathered_scores(split_federation)
    pcs = np.array([scores[iid] for iid in table.iids])
    columns = {**table.columns, **{f"PC{i + 1}": pcs[:, i] for i in range(4)}}
    lines = ["#FID\tIID\t" + "\t".join(columns)]
    for row, iid in enumerate(table.iids):
        lines.append("\t".join([iid, iid, *(repr(float(v[row])) for v in columns.values())]))
    pheno = tmp_path / "pheno.tsv"
    pheno.write_text("\n".join(lines).replace("nan", "NA") + "\n")
    plink = plink2(
        "--bfile", split_federation.pooled, "--pheno", pheno, "--pheno-name", "ldl",
        "--covar", pheno, "--covar-name", "age,sex,PC1-PC4",
        "--glm", "hide-covar", "omit-ref", "--covar-variance-standardize",  # PCs are tiny
        out=tmp_path / "plink",
    )  # fmt: skip
    rows = read_tsv(Path(f"{plink}.ldl.glm.linear"))
    ours = read_gwas_ssf(Path(f"{out}.tsv"))
    assert ours.variant_id.tolist() == [r["ID"] for r in rows]
    exact = ours.extra["disclosure"] == "."
    print(f"PLINK-exact rows: {exact.mean():.1%} ({exact.sum()} of {len(exact)})")
    assert exact.sum() > 1000
    fitted = np.array([r["BETA"] != "NA" for r in rows])
    np.testing.assert_array_equal(~np.isnan(ours.beta[exact]), fitted[exact])
    np.testing.assert_array_equal(ours.n[exact], np.array([int(r["OBS_CT"]) for r in rows])[exact])
    compared = exact & fitted
    for values, column in ((ours.beta, "BETA"), (ours.standard_error, "SE"), (ours.p_value, "P")):
        theirs = np.array([float(r[column]) if r[column] != "NA" else np.nan for r in rows])
        np.testing.assert_allclose(values[compared], theirs[compared], rtol=6e-6)


def test_gwas_with_pcs__a_set_a_node_lacks_is_refused_by_name(
    split_federation: SplitFederation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["gwas", "--federation", str(split_federation.federation), "--out", str(tmp_path / "x"),
         "--passport", str(split_federation.passport_file), "--phenotype", "ldl",
         "--covariates", "age,ancestry:1-2"]
    )  # fmt: skip
    assert code != 0
    assert "no covariate set 'ancestry'" in capsys.readouterr().err
    assert not (tmp_path / "x.tsv").exists()


def test_pca__leaves_out_the_variants_whose_counts_are_withheld(
    pca: Path, split_federation: SplitFederation
) -> None:
    withheld, candidates = pca_candidates(pooled_dosages(split_federation))
    record = json.loads(Path(f"{pca}.pca.json").read_text())
    ours = Path(f"{pca}.prune.in").read_text().split()
    assert record["filtered"] == {
        "withheld": int(withheld.sum()),
        "monomorphic": int((~withheld & ~candidates).sum()),
        "ld": int(candidates.sum()) - len(ours),
    }
    assert record["variants_used"] == len(ours)
    assert 1000 < withheld.sum() < 7000
    ids = read_bim(split_federation.pooled.with_suffix(".bim")).variant_id
    assert set(ours) <= set(np.asarray(ids)[candidates])


def test_pca__prune_in_equals_plink2_indep_pairwise_on_the_calls_imputed_at_each_node(
    pca: Path, split_federation: SplitFederation, plink2: PlinkRunner, tmp_path: Path
) -> None:
    """LD sums set each node's missing calls to the dosage nearest its mean there."""
    dosages = pooled_dosages(split_federation)
    _, candidates = pca_candidates(dosages)
    source = split_federation.pooled
    variants = read_bim(source.with_suffix(".bim"))
    iids = list(read_fam(source.with_suffix(".fam")))
    imputed = tmp_path / "imputed" / "genotypes"
    imputed.parent.mkdir()
    sexes = np.ones(len(iids), dtype=np.int8)
    with BedWriter(imputed, iids=iids, sexes=sexes, variants=variants) as writer:
        writer.write_block(imputed_at_each_node(dosages).T)
    ids = np.asarray(variants.variant_id)[candidates].tolist()
    theirs = plink_prune_in(plink2, imputed, ids, tmp_path)
    ours = Path(f"{pca}.prune.in").read_text().split()
    assert 1000 < len(ours) < 7000
    assert ours == theirs


def test_pca__prune_in_is_close_to_plink2_indep_pairwise_on_the_pooled_files(
    pca: Path, split_federation: SplitFederation, plink2: PlinkRunner, tmp_path: Path
) -> None:
    """PLINK's r2 of a pair is over the samples called at both variants; genofed's differs
    where either variant has a missing call, and one different pruning choice can change
    the choices after it in the window."""
    dosages = pooled_dosages(split_federation)
    _, candidates = pca_candidates(dosages)
    ids = np.asarray(read_bim(split_federation.pooled.with_suffix(".bim")).variant_id)
    theirs = set(
        plink_prune_in(plink2, split_federation.pooled, ids[candidates].tolist(), tmp_path)
    )
    ours = set(Path(f"{pca}.prune.in").read_text().split())
    agreement = len(ours & theirs) / len(ours | theirs)
    missing = (dosages == MISSING_CALL).any(axis=0)
    print(
        f"prune.in agreement with plink2 on the pooled calls: Jaccard {agreement:.4f}",
        f"(genofed {len(ours)}, plink2 {len(theirs)}, {len(ours - theirs)} only in genofed,",
        f"{len(theirs - ours)} only in plink2; {(candidates & missing).sum()} of",
        f"{candidates.sum()} candidates have a missing call)",
    )
    assert agreement >= 0.95
    assert ours ^ theirs <= set(ids[missing])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--ld-r2", "1.5"], "--ld-r2 1.5: give a threshold from 0 up to (not including) 1"),
        (["--ld-window", "50", "--ld-step", "60"], "--ld-step 60: give 1 to the window (50)"),
        (["--components", "0"], "--components 0: give 1 to 100"),
    ],
)
def test_pca__bad_options_are_refused_before_any_node_is_asked(
    split_federation: SplitFederation,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    message: str,
) -> None:
    code = main(
        ["pca", "--federation", str(split_federation.federation), "--out", str(tmp_path / "p"),
         "--passport", str(split_federation.passport_file), *option]
    )  # fmt: skip
    assert code != 0
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
