from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genofed import InputError
from genofed.io import read_phenotype_table, write_phenotype_table


def test_phenotype_table__round_trips_values_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "phenotypes.tsv"
    columns = {"ldl": np.array([3.25, np.nan, 2.0]), "t2d": np.array([1.0, 0.0, np.nan])}
    write_phenotype_table(path, ["A1", "A2", "A3"], columns)
    assert path.read_text() == "IID\tldl\tt2d\nA1\t3.25\t1\nA2\tNA\t0\nA3\t2\tNA\n"
    table = read_phenotype_table(path)
    assert table.iids == ("A1", "A2", "A3")
    for name, values in columns.items():
        np.testing.assert_array_equal(table.columns[name], values)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=1))
def test_phenotype_table__round_trip_is_exact_to_ten_digits(values: list[float]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "p.tsv"
        expected = np.array(values)
        write_phenotype_table(path, [f"S{i}" for i in range(len(values))], {"x": expected})
        got = read_phenotype_table(path).columns["x"]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0, equal_nan=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"is empty"),
        ("FID\tldl\nA\t1\n", r"the first column must be 'IID', not 'FID'"),
        ("IID\tldl\tldl\nA\t1\t2\n", r"column 'ldl' appears more than once"),
        ("IID\tldl\nA\t1\nB\n", r"row 3: 1 fields, but the header has 2"),
        ("IID\tldl\nA\t1\nA\t2\n", r"row 3: IID 'A' repeated"),
        (
            "IID\tldl\nA\tn/a\nB\t1\nC\tx\n",
            r"phenotype 'ldl' has 2 non-numeric values in .*p.tsv \(first at row 2: 'n/a'\)",
        ),
        ("IID\tldl\nA\tinf\n", r"phenotype 'ldl' has 1 non-numeric values"),
    ],
)
def test_phenotype_table__bad_input_names_file_row_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "p.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_phenotype_table(path)


def test_phenotype_table__missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read phenotype table .*absent.tsv"):
        read_phenotype_table(tmp_path / "absent.tsv")
