from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from genofed.errors import InputError
from genofed.report import GwasTable, manhattan_plot, qq_plot
from genofed.report._chromosomes import genome_order
from tests.report.tables import make_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    with Image.open(path) as image:
        image.verify()
    return width, height


def test_manhattan_plot__writes_a_png(tmp_path: Path, table: GwasTable) -> None:
    path = manhattan_plot(table, tmp_path / "manhattan.png", title="LDL")
    assert path == tmp_path / "manhattan.png"
    assert png_size(path) == (1800, 675)
    assert path.stat().st_size > 10_000


def test_qq_plot__writes_a_png(tmp_path: Path, table: GwasTable) -> None:
    path = qq_plot(table.p_value, tmp_path / "qq.png", title="LDL")
    assert png_size(path) == (825, 825)
    assert path.stat().st_size > 10_000


def test_plots__handle_zero_and_missing_p_values_and_other_chromosomes(tmp_path: Path) -> None:
    table = make_table(300, seed=2)
    p = table.p_value.copy()
    p[:3] = [0.0, 1e-300, np.nan]
    codes = np.where(np.arange(300) % 7 == 0, "X", table.chromosome)
    codes[-5:] = "chrUn_KI270302v1"
    odd = GwasTable(**{**vars(table), "p_value": p, "chromosome": codes})
    assert png_size(manhattan_plot(odd, tmp_path / "m.png", title="odd"))[0] == 1800
    assert png_size(qq_plot(p, tmp_path / "q.png", title="odd"))[0] == 825


def test_plots__draw_empty_input(tmp_path: Path) -> None:
    empty = make_table(10).take(np.zeros(0, dtype=np.int64))
    assert png_size(manhattan_plot(empty, tmp_path / "m.png", title="none"))[0] == 1800
    assert png_size(qq_plot([np.nan], tmp_path / "q.png", title="none"))[0] == 825


def test_manhattan_plot__refuses_a_threshold_outside_zero_one(
    tmp_path: Path, table: GwasTable
) -> None:
    with pytest.raises(InputError, match=r"significance threshold must lie in \(0, 1\), not 5"):
        manhattan_plot(table, tmp_path / "m.png", title="x", significance=5)


def test_plots__failure_keeps_an_older_png(
    tmp_path: Path, table: GwasTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = qq_plot(table.p_value, tmp_path / "qq.png", title="first")
    before = path.read_bytes()

    def failing(self: Figure, handle: Any, **kwargs: Any) -> None:
        handle.write(PNG_SIGNATURE)
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", failing)
    with pytest.raises(OSError, match="disk full"):
        qq_plot(table.p_value, path, title="second")
    with pytest.raises(OSError, match="disk full"):
        manhattan_plot(table, tmp_path / "manhattan.png", title="second")
    assert [p.name for p in tmp_path.iterdir()] == ["qq.png"]
    assert path.read_bytes() == before


def test_plots__leave_pyplot_alone(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from genofed.report import qq_plot\n"
        f"qq_plot([0.1, 0.5, 0.9], Path({str(tmp_path / 'q.png')!r}), title='t')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_genome_order__sorts_chromosomes_naturally() -> None:
    codes = np.array(["10", "2", "X", "1", "chr3", "MT", "2", "Un", "23", "Y"])
    names, rank = genome_order(codes)
    assert names == ["1", "2", "chr3", "10", "23", "X", "Y", "MT", "Un"]
    assert [names[r] for r in rank] == codes.tolist()
