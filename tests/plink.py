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
