"""Same seed, same bytes; a failed run leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genofed import InputError, simulate_cohorts
from genofed.sim import Progress

SMALL = {"samples_per_country": 40, "n_variants": 1500}


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_simulate__same_seed_gives_identical_files(tmp_path: Path) -> None:
    drawn = simulate_cohorts(tmp_path / "a", **SMALL, workers=2)
    seed = json.loads((tmp_path / "a" / "provenance.json").read_text())["parameters"]["seed"]
    assert seed == drawn.seed
    simulate_cohorts(tmp_path / "b", **SMALL, seed=seed, workers=1)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert len(first) == 7 * 4 + 2
    assert first == second


def test_simulate__different_seeds_give_different_genotypes(tmp_path: Path) -> None:
    simulate_cohorts(tmp_path / "a", **SMALL, seed=1)
    simulate_cohorts(tmp_path / "b", **SMALL, seed=2)
    bed = "pooled/genotypes.bed"
    assert (tmp_path / "a" / bed).read_bytes() != (tmp_path / "b" / bed).read_bytes()


def test_simulate__interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    class Interrupted(Exception):
        pass

    def interrupt(progress: Progress) -> None:
        if progress.stage == "writing genotypes" and progress.done > 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        simulate_cohorts(tmp_path / "out", **SMALL, seed=3, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_simulate__interrupted_forced_run_keeps_the_old_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    simulate_cohorts(out, **SMALL, seed=3)
    before = file_bytes(out)

    def interrupt(progress: Progress) -> None:
        if progress.stage == "writing genotypes" and progress.done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate_cohorts(out, **SMALL, seed=4, force=True, progress=interrupt)
    assert file_bytes(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_simulate__too_many_variants_for_the_genome_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"provides only \d+ SNPs .* fewer than the 5000"):
        simulate_cohorts(
            tmp_path / "out", samples_per_country=1, n_variants=5000, variant_spacing_bp=1, seed=1
        )
    assert list(tmp_path.iterdir()) == []


def test_simulate__more_variants_than_chromosomes_1_to_10_hold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"need a genome of 2,500 Mb, more than the 1,809 Mb"):
        simulate_cohorts(tmp_path / "out", n_variants=10_000_000, variant_spacing_bp=250)
    assert list(tmp_path.iterdir()) == []
