"""Helpers to run PLINK 2 on simulated files and read what it writes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import PlinkRunner


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a whitespace-separated table with a header, as dicts."""
    header, *rows = (line.split() for line in path.read_text().splitlines())
    return [dict(zip(header, row, strict=True)) for row in rows]


def plink_pheno(table: Path, out: Path) -> Path:
    """The phenotype table with the '#FID IID' header PLINK 2 expects (FID = IID)."""
    header, *rows = table.read_text().splitlines()
    out.write_text("\n".join([f"#FID\t{header}", *(f"{r.split()[0]}\t{r}" for r in rows)]) + "\n")
    return out


def pooled_glm_linear(
    plink2: PlinkRunner, cohorts: Path, trait: str, covariates: str, workdir: Path
) -> list[dict[str, str]]:
    """``plink2 --glm`` on the pooled files, testing ALT as genofed does (``omit-ref``)."""
    pheno = plink_pheno(cohorts / "pooled" / "phenotypes.tsv", workdir / "pheno.tsv")
    out = plink2(
        "--bfile", cohorts / "pooled" / "genotypes",
        "--pheno", pheno, "--pheno-name", trait,
        "--covar", pheno, "--covar-name", covariates,
        "--glm", "hide-covar", "omit-ref", "cols=+a1freq",
        out=workdir / "gwas",
    )  # fmt: skip
    return read_tsv(out.with_suffix(f".{trait}.glm.linear"))


def pooled_glm_logistic(
    plink2: PlinkRunner,
    cohorts: Path,
    trait: str,
    covariates: str,
    workdir: Path,
    *,
    genotypes: Path | None = None,
    phenotypes: Path | None = None,
) -> list[dict[str, str]]:
    """``plink2 --glm`` with its default logistic regression (``firth-fallback``) on a 0/1 trait.

    Tests ALT as genofed does (``omit-ref``); ``--1`` reads the 0/1 coding
    (without it 0 means missing). ``covariates`` may be empty
    (``allow-no-covars``). ``genotypes`` (a .bed prefix) and ``phenotypes``
    (an IID-first table) default to the pooled files.
    """
    table = phenotypes or cohorts / "pooled" / "phenotypes.tsv"
    pheno = plink_pheno(table, workdir / "pheno.tsv")
    covar = ("--covar", pheno, "--covar-name", covariates) if covariates else ()
    modifiers = ("hide-covar", "omit-ref") if covariates else ("allow-no-covars", "omit-ref")
    out = plink2(
        "--bfile", genotypes or cohorts / "pooled" / "genotypes",
        "--pheno", pheno, "--pheno-name", trait, "--1", *covar,
        "--glm", *modifiers,
        out=workdir / "gwas",
    )  # fmt: skip
    return read_tsv(out.with_suffix(f".{trait}.glm.logistic.hybrid"))
