"""Bad study parameters and failing nodes: a clear error, and no results file."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from genofed._progress import Progress
from genofed.aai import Issuer, write_passport
from genofed.cli import main
from genofed.coordinator import Federation, create_federation, read_federation, run_linear_gwas
from genofed.errors import InputError, NodeError
from genofed.io import read_phenotype_table, write_phenotype_table
from genofed.node.local import LocalNodes, free_port
from genofed.node.setup import init_node, trust_peers
from genofed.protocol.cards import read_card
from tests.conftest import passport_for
from tests.e2e.conftest import SplitFederation
from tests.e2e.test_gwas import run_gwas


@dataclass(frozen=True)
class Faulty:
    federation: Path
    local: LocalNodes
    nodes: dict[str, Path]
    issuer: Issuer
    passport: str
    passport_file: Path


@pytest.fixture(scope="module")
def faulty(
    split_federation: SplitFederation, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Faulty]:
    """Three nodes of their own, whose tables add a constant and a collinear column."""
    root = tmp_path_factory.mktemp("faulty")
    cards, configs, nodes = [], [], {}
    for name in ("alpha", "beta", "gamma"):
        data = root / name
        data.mkdir()
        for suffix in (".bed", ".bim", ".fam"):
            shutil.copy(split_federation.nodes[name] / f"genotypes{suffix}", data)
        table = read_phenotype_table(split_federation.nodes[name] / "phenotypes.tsv")
        columns = dict(table.columns)
        columns["batch"] = np.ones(len(table.iids))
        columns["age_months"] = 12 * columns["age"] + 3
        write_phenotype_table(data / "phenotypes.tsv", table.iids, columns)
        init = init_node(
            name,
            bfile=data / "genotypes",
            phenotypes=data / "phenotypes.tsv",
            out=data / "node",
            port=free_port(),
            trusted_issuers=[issuer.jwks],
        )
        cards.append(init.card)
        configs.append(init.config)
        nodes[name] = data
    for config in configs:
        trust_peers(config, cards)
    federation = root / "federation.toml"
    create_federation(cards, federation)
    grants = [f"genofed:{name}" for name in ("alpha", "beta", "gamma", "other", "solo")]
    passport = passport_for(issuer, *grants)
    passport_file = write_passport(passport, root / "passport.jwt")
    with LocalNodes(configs) as local:
        yield Faulty(federation, local, nodes, issuer, passport, passport_file)


def study(faulty: Faulty, out: Path, *, nodes: Federation | None = None, **kwargs: object) -> None:
    federation = nodes or read_federation(faulty.federation)
    run_linear_gwas(
        federation,
        phenotype="ldl",
        out=out,
        passport=faulty.passport,
        **kwargs,  # type: ignore[arg-type]
    )


def test_gwas__unknown_phenotype_lists_the_columns(
    faulty: Faulty, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_gwas(
        faulty.federation,
        tmp_path / "x",
        "--phenotype",
        "hdl",
        "--passport",
        str(faulty.passport_file),
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "node alpha has no column 'hdl'" in error
    assert "ldl, t2d, age, sex, batch, age_months" in error
    assert not list(tmp_path.iterdir())


def test_gwas__unknown_covariate_is_named(faulty: Faulty, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no column 'bmi'; its phenotype table has: ldl, t2d"):
        study(faulty, tmp_path / "x", covariates=["age", "bmi"])


def test_gwas__repeated_covariate_is_refused_by_the_node(faulty: Faulty, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"node alpha refused .*'age' is named more than once"):
        study(faulty, tmp_path / "x", covariates=["age", "age"])


def test_gwas__constant_covariate_is_refused(faulty: Faulty, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"covariate 'batch' is constant over .* samples"):
        study(faulty, tmp_path / "x", covariates=["age", "batch"])
    assert not list(tmp_path.iterdir())


def test_gwas__collinear_covariates_are_refused_like_plink2(faulty: Faulty, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"'age' and 'age_months' are collinear.*--max-corr"):
        study(faulty, tmp_path / "x", covariates=["age", "sex", "age_months"])


def test_gwas__unreachable_node_is_named(faulty: Faulty, tmp_path: Path) -> None:
    cards = read_federation(faulty.federation).nodes
    dead = cards[0].model_copy(update={"name": "gone", "url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(NodeError, match=r"node gone \(http://127.0.0.1:\d+\) is unreachable"):
        study(faulty, tmp_path / "x", nodes=Federation((*cards, dead)), covariates=["age"])
    assert not list(tmp_path.iterdir())


def kill_at_block(faulty: Faulty, name: str, block: int) -> Callable[[Progress], None]:
    victim = faulty.local.processes[name]

    def kill(progress: Progress) -> None:
        if progress.done == block and victim.poll() is None:
            victim.kill()
            victim.wait()

    return kill


def test_gwas__node_dropping_out_mid_study_is_rerun_without_it(
    faulty: Faulty, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    federation = read_federation(faulty.federation)
    with caplog.at_level(logging.WARNING, logger="genofed"):
        rerun = run_linear_gwas(
            federation,
            phenotype="ldl",
            covariates=["age"],
            out=tmp_path / "rerun",
            passport=faulty.passport,
            block_size=50,
            progress=kill_at_block(faulty, "gamma", 3),
        )
    assert rerun.dropped == ("gamma",)
    assert list(rerun.samples_per_node) == ["alpha", "beta"]
    assert "node gamma" in caplog.text
    assert "rerunning the study with fresh masks over the 2 remaining nodes (alpha, beta)" in (
        caplog.text
    )
    assert "gamma failed during the study" in rerun.metadata.read_text()
    remaining = Federation(tuple(c for c in federation.nodes if c.name != "gamma"))
    direct = run_linear_gwas(
        remaining, phenotype="ldl", covariates=["age"], out=tmp_path / "direct",
        passport=faulty.passport,
    )  # fmt: skip
    for column in ("beta", "standard_error", "p_value", "n", "effect_allele_frequency"):
        np.testing.assert_array_equal(getattr(rerun.table, column), getattr(direct.table, column))


def test_gwas__node_killed_leaving_one_node_is_named_and_nothing_is_written(
    faulty: Faulty, tmp_path: Path
) -> None:
    out = tmp_path / "ldl"
    out.with_suffix(".tsv").write_text("an older result\n")
    remaining = Federation(
        tuple(c for c in read_federation(faulty.federation).nodes if c.name != "gamma")
    )
    with pytest.raises(
        NodeError, match=r"node beta \(https://127\.0\.0\.1:\d+\).*only 1 node remains"
    ):
        study(
            faulty, out, nodes=remaining, covariates=["age"], block_size=50,
            progress=kill_at_block(faulty, "beta", 3),
        )  # fmt: skip
    assert out.with_suffix(".tsv").read_text() == "an older result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ldl.tsv"]


def test_node__stops_cleanly_on_sigterm(faulty: Faulty, tmp_path: Path) -> None:
    data = faulty.nodes["alpha"]
    init = init_node(
        "solo",
        bfile=data / "genotypes",
        phenotypes=data / "phenotypes.tsv",
        out=tmp_path,
        port=free_port(),
        trusted_issuers=[faulty.issuer.jwks],
    )
    with LocalNodes([init.config]) as local:
        pass
    assert local.exit_codes == {"solo": 0}
    assert "node solo stopping: cancelling jobs" in (tmp_path / "node.log").read_text()


def test_node_init__bad_phenotype_value_names_file_row_and_column(
    faulty: Faulty, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = faulty.nodes["alpha"]
    table = (source / "phenotypes.tsv").read_text().splitlines()
    fields = table[5].split("\t")
    fields[1] = "n/a"
    table[5] = "\t".join(fields)
    (tmp_path / "pheno.tsv").write_text("\n".join(table) + "\n")
    code = main(
        ["node", "init", "--name", "x", "--bfile", str(source / "genotypes"),
         "--pheno", str(tmp_path / "pheno.tsv"), "--out", str(tmp_path / "node"),
         "--trusted-issuer", str(faulty.issuer.jwks)]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "phenotype 'ldl' has 1 non-numeric values" in error
    assert f"{tmp_path / 'pheno.tsv'} (first at row 6: 'n/a')" in error
    assert not (tmp_path / "node").exists()


def test_gwas__nodes_with_different_variants_are_refused_with_counts(
    faulty: Faulty, tmp_path: Path
) -> None:
    source = faulty.nodes["alpha"]
    for suffix in (".bed", ".fam"):
        shutil.copy(source / f"genotypes{suffix}", tmp_path)
    bim = (source / "genotypes.bim").read_text().splitlines()
    fields = bim[7].split("\t")
    fields[1] = "renamed"
    bim[7] = "\t".join(fields)
    (tmp_path / "genotypes.bim").write_text("\n".join(bim) + "\n")
    shutil.copy(source / "phenotypes.tsv", tmp_path)
    init = init_node(
        "other",
        bfile=tmp_path / "genotypes",
        phenotypes=tmp_path / "phenotypes.tsv",
        out=tmp_path / "node",
        port=free_port(),
        trusted_issuers=[faulty.issuer.jwks],
    )
    alpha = read_federation(faulty.federation).nodes[0]  # beta was stopped by an earlier test
    with (
        LocalNodes([init.config]),
        pytest.raises(
            InputError,
            match=r"different variant lists: alpha 8,000 variants \(\w+\), other 8,000 variants",
        ),
    ):
        study(
            faulty,
            tmp_path / "x",
            nodes=Federation((alpha, read_card(init.card))),
            covariates=["age"],
        )
    assert not (tmp_path / "x.tsv").exists()
