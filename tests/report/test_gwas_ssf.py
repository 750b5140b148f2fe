from __future__ import annotations

import datetime
import gzip
import hashlib
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from genofed.errors import InputError
from genofed.report import GwasMetadata, GwasTable, read_gwas_ssf, write_gwas_ssf
from genofed.report import gwas_ssf as gwas_ssf_module
from genofed.report.gwas_ssf import COLUMNS
from tests.report.tables import make_table

HEADER = (
    "chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\t"
    "effect_allele_frequency\tp_value\tvariant_id\tn"
)
FLOAT_COLUMNS = ("beta", "standard_error", "effect_allele_frequency", "p_value")


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def assert_tables_identical(got: GwasTable, expected: GwasTable) -> None:
    assert got.effect == expected.effect
    for name in COLUMNS:
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype.kind == b.dtype.kind, name
        if name in FLOAT_COLUMNS:
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
            known = ~np.isnan(b)
            np.testing.assert_array_equal(
                a[known].view(np.int64), b[known].view(np.int64), err_msg=name
            )
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def small_table(**overrides: Any) -> GwasTable:
    columns: dict[str, Any] = {
        "chromosome": ["1", "1"],
        "base_pair_location": [1234, 5678],
        "effect_allele": ["A", "TG"],
        "other_allele": ["G", "T"],
        "beta": [0.1, np.nan],
        "standard_error": [0.025, np.nan],
        "effect_allele_frequency": [0.3, 0.75],
        "p_value": [6.3e-05, np.nan],
        "variant_id": ["1_1234_G_A", "1_5678_T_TG"],
        "n": [1200, 1187],
    }
    columns.update(overrides)
    return GwasTable(**columns)


def test_write_gwas_ssf__writes_the_header_and_columns_in_gwas_ssf_order(
    tmp_path: Path, metadata: GwasMetadata
) -> None:
    tsv, meta = write_gwas_ssf(tmp_path / "ldl", small_table(), metadata)
    assert (tsv.name, meta.name) == ("ldl.tsv", "ldl.tsv-meta.yaml")
    assert tsv.read_text().split("\n") == [
        HEADER,
        "1\t1234\tA\tG\t0.1\t0.025\t0.3\t6.3e-05\t1_1234_G_A\t1200",
        "1\t5678\tTG\tT\tNA\tNA\t0.75\tNA\t1_5678_T_TG\t1187",
        "",
    ]


def test_write_gwas_ssf__round_trip_is_bit_identical_including_nan(
    tmp_path: Path, metadata: GwasMetadata
) -> None:
    table = make_table(3000, seed=1)
    tsv, _ = write_gwas_ssf(tmp_path / "ldl", table, metadata)
    assert_tables_identical(read_gwas_ssf(tsv), table)


finite_or_nan = st.floats(allow_nan=True, allow_infinity=False, width=64)
probability = st.one_of(st.floats(0, 1, width=64), st.just(float("nan")))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite_or_nan, finite_or_nan, probability, probability), min_size=1))
def test_write_gwas_ssf__any_float_reads_back_bit_identically(
    rows: list[tuple[float, float, float, float]],
) -> None:
    beta, se, frequency, p = (
        np.array(column, dtype=np.float64) for column in zip(*rows, strict=True)
    )
    size = len(rows)
    table = GwasTable(
        chromosome=np.full(size, "2"),
        base_pair_location=np.arange(1, size + 1),
        effect_allele=np.full(size, "A"),
        other_allele=np.full(size, "C"),
        beta=beta,
        standard_error=se,
        effect_allele_frequency=frequency,
        p_value=p,
        variant_id=np.array([f"v{i}" for i in range(size)]),
        n=np.full(size, 10),
    )
    metadata = GwasMetadata("y", (), {"A": 10}, 10, software_version="0")
    with tempfile.TemporaryDirectory() as directory:
        tsv, _ = write_gwas_ssf(Path(directory) / "y", table, metadata)
        assert_tables_identical(read_gwas_ssf(tsv), table)


def test_write_gwas_ssf__keeps_the_row_order_given(tmp_path: Path, metadata: GwasMetadata) -> None:
    table = small_table(chromosome=["2", "1"], variant_id=["second", "first"])
    tsv, meta = write_gwas_ssf(tmp_path / "ldl", table, metadata)
    assert read_gwas_ssf(tsv).variant_id.tolist() == ["second", "first"]
    assert load_yaml(meta)["is_sorted"] is False


def test_write_gwas_ssf__numbers_chromosomes_as_gwas_ssf_does(
    tmp_path: Path, metadata: GwasMetadata
) -> None:
    codes = ["chr7", "X", "Y", "MT", "XY", "22", "chrUn_KI270302v1"]
    size = len(codes)
    table = make_table(size).take(np.arange(size))
    table = replace(table, chromosome=np.array(codes))
    tsv, _ = write_gwas_ssf(tmp_path / "ldl", table, metadata)
    expected = ["7", "23", "24", "25", "23", "22", "chrUn_KI270302v1"]
    assert read_gwas_ssf(tsv).chromosome.tolist() == expected


def test_write_gwas_ssf__metadata_has_the_gwas_ssf_keys_and_the_table_checksum(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata
) -> None:
    tsv, meta = write_gwas_ssf(tmp_path / "ldl", table, metadata)
    document = load_yaml(meta)
    assert document["data_file_md5sum"] == hashlib.md5(tsv.read_bytes()).hexdigest()
    assert document["data_file_name"] == "ldl.tsv"
    assert document["file_type"] == "GWAS-SSF v1.0"
    assert document["is_harmonised"] is False
    assert document["is_sorted"] is True
    assert document["genome_assembly"] == "GRCh38"
    assert document["coordinate_system"] == "1-based"
    assert document["analysis_software"] == "genofed 0.1.0"
    assert document["date_last_modified"] == datetime.date(2025, 3, 14)
    assert document["trait_description"] == ["ldl"]
    assert document["adjusted_covariates"] == ["age", "sex", "PC1"]
    assert document["samples"] == [{"sample_size": 1200}]
    assert document["author_notes"] == "Federated linear regression over three nodes"
    assert document["analysis_model"] == "linear"
    assert document["sample_size_per_node"] == {"DE": 400, "FI": 380, "PT": 420}


def test_write_gwas_ssf__metadata_without_covariates_or_description_is_valid_yaml(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata
) -> None:
    plain = replace(metadata, covariates=(), analysis_description=None, sample_size_per_node={})
    _, meta = write_gwas_ssf(tmp_path / "ldl", table, plain)
    document = load_yaml(meta)
    assert document["adjusted_covariates"] == []
    assert document["sample_size_per_node"] == {}
    assert "author_notes" not in document


@pytest.mark.parametrize(
    "text",
    [
        'LDL "direct", mg/dL: #1',
        "yes",
        "null",
        "1.5e3",
        "2024-01-01",
        "- item",
        "two\nlines\ttab\r",
        "back\\slash",
        "nul\x00 bell\x07 del\x7f",
        "ünïcødé 血脂 🧬",
        "line\u2028separator\u0085next\ufeffbom",
        "   padded   ",
        "",
    ],
)
def test_write_gwas_ssf__metadata_strings_read_back_exactly(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata, text: str
) -> None:
    odd = replace(
        metadata,
        trait=text,
        covariates=(text, "age"),
        sample_size_per_node={text or "empty": 5, "yes": 6},
        analysis_description=text,
    )
    _, meta = write_gwas_ssf(tmp_path / "ldl", table, odd)
    document = load_yaml(meta)
    assert document["trait_description"] == [text]
    assert document["adjusted_covariates"] == [text, "age"]
    assert document["author_notes"] == text
    assert document["sample_size_per_node"] == {text or "empty": 5, "yes": 6}


def test_write_gwas_ssf__prefix_with_dots_keeps_its_name(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata
) -> None:
    tsv, meta = write_gwas_ssf(tmp_path / "out" / "ldl.v1.2", table, metadata)
    assert tsv == tmp_path / "out" / "ldl.v1.2.tsv"
    assert meta == tmp_path / "out" / "ldl.v1.2.tsv-meta.yaml"


def _fail_on_second_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gwas_ssf_module, "_BLOCK_ROWS", 100)
    real = gwas_ssf_module._float_strings
    calls = {"count": 0}

    def failing(values: Any) -> list[str]:
        calls["count"] += 1
        if calls["count"] > 4:  # four float columns per block: fail in block two
            raise OSError("disk full")
        return real(values)

    monkeypatch.setattr(gwas_ssf_module, "_float_strings", failing)


def test_write_gwas_ssf__failure_mid_table_leaves_no_file(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on_second_block(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_gwas_ssf(tmp_path / "ldl", table, metadata)
    assert list(tmp_path.iterdir()) == []


def test_write_gwas_ssf__failure_keeps_an_older_result_intact(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    tsv, meta = write_gwas_ssf(tmp_path / "ldl", small_table(), metadata)
    before = {path.name: path.read_bytes() for path in (tsv, meta)}
    _fail_on_second_block(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_gwas_ssf(tmp_path / "ldl", table, metadata)
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert after == before


def test_write_gwas_ssf__failure_writing_metadata_publishes_neither_file(
    tmp_path: Path, table: GwasTable, metadata: GwasMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(gwas_ssf_module, "_metadata_yaml", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_gwas_ssf(tmp_path / "ldl", table, metadata)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"variant_id": ["ok", "bad\tid"]},
            r"column 'variant_id' has 1 values that are empty or hold a tab or line break "
            r"\(first at index 1: 'bad\\tid'\); nothing was written",
        ),
        ({"effect_allele": ["", "A"]}, r"column 'effect_allele' has 1 values that are empty"),
        ({"p_value": [1.5, np.nan]}, r"column 'p_value' has 1 values outside \[0, 1\]"),
        (
            {"effect_allele_frequency": [0.5, -0.1]},
            r"'effect_allele_frequency' has 1 values outside \[0, 1\] \(first at index 1",
        ),
    ],
)
def test_write_gwas_ssf__refuses_values_that_would_break_the_file(
    tmp_path: Path, metadata: GwasMetadata, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        write_gwas_ssf(tmp_path / "ldl", small_table(**overrides), metadata)
    assert list(tmp_path.iterdir()) == []


def test_gwas_table__refuses_columns_of_different_lengths() -> None:
    with pytest.raises(InputError, match=r"columns differ in length \(chromosome=2, .*n=3\)"):
        small_table(n=[1, 2, 3])


def test_gwas_table__converts_columns_and_counts_rows() -> None:
    table = small_table()
    assert len(table) == 2
    assert table.base_pair_location.dtype == np.int64
    assert table.beta.dtype == np.float64
    assert table.chromosome.dtype.kind == "U"
    assert table.take([1]).variant_id.tolist() == ["1_5678_T_TG"]


def test_read_gwas_ssf__accepts_hash_na_extra_columns_and_gzip(tmp_path: Path) -> None:
    text = (
        "chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\t"
        "effect_allele_frequency\tp_value\trsid\tn\tvariant_id\n"
        "23\t24145170\tA\tG\t0.00387762\t#NA\t0.627178\t2.3E-08\trs5949232\t5000\t23_1_A_G\n"
    )
    path = tmp_path / "other.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    table = read_gwas_ssf(path)
    assert table.chromosome.tolist() == ["23"]
    assert table.p_value.tolist() == [2.3e-08]
    assert np.isnan(table.standard_error[0])
    assert table.variant_id.tolist() == ["23_1_A_G"]
    assert table.n.tolist() == [5000]


BODY = "1\t10\tA\tG\t0.1\t0.2\t0.3\t0.4\tv1\t100\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"GWAS-SSF file .*ldl\.tsv is empty"),
        (
            HEADER.replace("effect_allele\t", "alt\t", 1) + "\n",
            r"ldl\.tsv: header column 3 is 'alt', but GWAS-SSF requires 'effect_allele' there",
        ),
        ("chromosome\tbase_pair_location\n", r"the header has no column 'effect_allele'"),
        (HEADER.replace("\tn", "\tN") + "\n", r"the header has no column 'n'"),
        (HEADER + "\n" + BODY + "1\t11\tA\n", r"ldl\.tsv, row 3: 3 fields, but the header has 10"),
        (HEADER + "\n" + BODY + "\n", r"row 3: 1 fields, but the header has 10"),
        (
            HEADER + "\n" + BODY + BODY.replace("0.1", "big"),
            r"ldl\.tsv, row 3, column 'beta': 'big' is not a number",
        ),
        (
            HEADER + "\n" + BODY.replace("\t10\t", "\t1e3\t"),
            r"row 2, column 'base_pair_location': '1e3' is not a whole number",
        ),
        (HEADER + "\n" + BODY.replace("\t100\n", "\tNA\n"), r"column 'n': 'NA' is not a whole"),
    ],
)
def test_read_gwas_ssf__bad_input_names_file_row_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "ldl.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_gwas_ssf(path)


def test_read_gwas_ssf__missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read GWAS-SSF file .*absent\.tsv"):
        read_gwas_ssf(tmp_path / "absent.tsv")


def test_read_gwas_ssf__header_only_gives_an_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "ldl.tsv"
    path.write_text(HEADER + "\n")
    assert len(read_gwas_ssf(path)) == 0


def test_write_gwas_ssf__a_logistic_table_writes_odds_ratios_and_extra_columns(
    tmp_path: Path,
) -> None:
    base = small_table()
    table = GwasTable(
        **{name: getattr(base, name) for name in COLUMNS},
        effect="odds_ratio",
        extra={"n_cases": np.array([10, 12]), "firth": np.array([True, False])},
    )
    tsv, _ = write_gwas_ssf(tmp_path / "t", table, GwasMetadata("t2d", (), {"a": 2}, 2))
    header, first, _ = tsv.read_text().splitlines()
    assert header.split("\t")[4] == "odds_ratio"
    assert header.split("\t")[-2:] == ["n_cases", "firth"]
    assert first.split("\t")[-2:] == ["10", "Y"]
    assert float(first.split("\t")[4]) == pytest.approx(np.exp(base.beta[0]), rel=1e-15)
    back = read_gwas_ssf(tsv)
    assert back.effect == "odds_ratio"
    np.testing.assert_allclose(back.beta, base.beta, rtol=1e-14)
    assert len(table.take([1]).extra["firth"]) == 1
