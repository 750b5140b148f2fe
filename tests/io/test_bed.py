from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genofed import InputError
from genofed.io import BedWriter, VariantInfo
from genofed.io.bed import BED_MAGIC, PackedBed, count_lines
from genofed.io.genotypes import MISSING_CALL, read_variant_blocks

# ALT (allele_1) count of each 2-bit code, low bits first; -1 for a missing call.
CODE_TO_COUNT = np.array([2, -1, 1, 0])


def write_bed(prefix: Path, dosages: np.ndarray) -> Path:
    """Write (variants x samples) int8 dosages with genofed's writer; return the .bed path."""
    n_variants, n_samples = dosages.shape
    variants = VariantInfo(
        chromosome=np.full(n_variants, "1"),
        variant_id=np.array([f"v{j}" for j in range(n_variants)]),
        cm_position=np.zeros(n_variants),
        bp_position=np.arange(1, n_variants + 1),
        allele_1=np.full(n_variants, "A"),
        allele_2=np.full(n_variants, "G"),
    )
    iids = [f"s{i}" for i in range(n_samples)]
    with BedWriter(
        prefix, iids=iids, sexes=np.ones(n_samples, np.int8), variants=variants
    ) as writer:
        writer.write_block(dosages)
    return prefix.with_suffix(".bed")


def random_dosages(rng: np.random.Generator, n_variants: int, n_samples: int) -> np.ndarray:
    dosages = rng.integers(0, 3, size=(n_variants, n_samples)).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.1] = MISSING_CALL
    return dosages


def decode(rows: np.ndarray, n_samples: int) -> np.ndarray:
    """(variants x samples) ALT counts of packed rows, -1 where missing."""
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8)
    codes = (rows[:, :, None] >> shifts) & 3
    return CODE_TO_COUNT[codes.reshape(len(rows), -1)[:, :n_samples]]


@pytest.mark.parametrize("n_samples", [1, 4, 13, 70])
def test_packed_bed__rows_decode_to_bed_reader_dosages(tmp_path: Path, n_samples: int) -> None:
    dosages = random_dosages(np.random.default_rng(n_samples), 9, n_samples)
    bed = write_bed(tmp_path / "g", dosages)
    expected = np.concatenate(list(read_variant_blocks(bed, block_size=4)), axis=1).T
    with PackedBed(bed) as packed:
        assert (packed.n_samples, packed.n_variants) == (n_samples, 9)
        assert packed.bytes_per_variant == -(-n_samples // 4)
        rows = packed.block(0, 9)
        assert rows.dtype == np.uint8
        assert rows.shape == (9, packed.bytes_per_variant)
        decoded = decode(rows, n_samples)
    np.testing.assert_array_equal(decoded, np.where(expected == MISSING_CALL, -1, expected))
    np.testing.assert_array_equal(decoded, np.where(dosages == MISSING_CALL, -1, dosages))


def test_packed_bed__blocks_cover_every_variant_once(tmp_path: Path) -> None:
    dosages = random_dosages(np.random.default_rng(1), 23, 10)
    bed = write_bed(tmp_path / "g", dosages)
    with PackedBed(bed, n_samples=10, n_variants=23) as packed:
        starts, blocks = zip(
            *((start, block.copy()) for start, block in packed.blocks(5)), strict=True
        )
        whole = packed.block(0, 23).copy()
    assert starts == (0, 5, 10, 15, 20)
    assert [len(b) for b in blocks] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_packed_bed__block_stays_valid_after_release_and_close(tmp_path: Path) -> None:
    bed = write_bed(tmp_path / "g", random_dosages(np.random.default_rng(2), 40, 2000))
    packed = PackedBed(bed)
    block = packed.block(10, 30)
    before = block.copy()
    packed.release(0, 40)
    np.testing.assert_array_equal(block, before)
    packed.close()
    np.testing.assert_array_equal(block, before)
    assert not block.flags.writeable


def test_packed_bed__block_outside_the_file_is_refused(tmp_path: Path) -> None:
    bed = write_bed(tmp_path / "g", random_dosages(np.random.default_rng(3), 4, 5))
    with PackedBed(bed) as packed, pytest.raises(InputError, match=r"variants 2\.\.5 are outside"):
        packed.block(2, 5)


def test_packed_bed__bad_magic_bytes_are_refused(tmp_path: Path) -> None:
    bed = tmp_path / "g.bed"
    bed.write_bytes(b"#FID\tIID\n" + bytes(10))
    with pytest.raises(
        InputError, match=r"g\.bed is not a PLINK \.bed file: it starts with 23 46 49"
    ):
        PackedBed(bed, n_samples=4, n_variants=2)


def test_packed_bed__individual_major_file_is_refused(tmp_path: Path) -> None:
    bed = tmp_path / "g.bed"
    bed.write_bytes(BED_MAGIC[:2] + b"\x00" + bytes(2))
    with pytest.raises(InputError, match=r"individual-major .bed file \(mode byte 00\)"):
        PackedBed(bed, n_samples=4, n_variants=2)


def test_packed_bed__truncated_file_is_refused(tmp_path: Path) -> None:
    bed = write_bed(tmp_path / "g", random_dosages(np.random.default_rng(4), 6, 9))
    bed.write_bytes(bed.read_bytes()[:-2])
    with pytest.raises(
        InputError, match=r"g\.bed is truncated: 19 bytes, but 6 variants x 9 samples need 21"
    ):
        PackedBed(bed)


def test_packed_bed__file_with_extra_bytes_is_refused(tmp_path: Path) -> None:
    bed = write_bed(tmp_path / "g", random_dosages(np.random.default_rng(5), 6, 9))
    with pytest.raises(InputError, match=r"longer than expected: 21 bytes, but 5 variants"):
        PackedBed(bed, n_samples=9, n_variants=5)


def test_packed_bed__empty_file_is_refused(tmp_path: Path) -> None:
    bed = tmp_path / "g.bed"
    bed.write_bytes(b"")
    with pytest.raises(InputError, match=r"it starts with nothing"):
        PackedBed(bed, n_samples=1, n_variants=1)


def test_packed_bed__missing_fam_file_is_named(tmp_path: Path) -> None:
    bed = tmp_path / "g.bed"
    bed.write_bytes(BED_MAGIC)
    with pytest.raises(InputError, match=r"cannot read .*g\.fam"):
        PackedBed(bed)


def test_packed_bed__file_without_variants_has_no_rows(tmp_path: Path) -> None:
    bed = tmp_path / "g.bed"
    bed.write_bytes(BED_MAGIC)
    with PackedBed(bed, n_samples=7, n_variants=0) as packed:
        assert packed.block(0, 0).shape == (0, 2)
        assert list(packed.blocks(10)) == []


@pytest.mark.parametrize(("text", "lines"), [(b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\n\n", 2)])
def test_count_lines__counts_a_last_line_without_newline(
    tmp_path: Path, text: bytes, lines: int
) -> None:
    path = tmp_path / "x.fam"
    path.write_bytes(text)
    assert count_lines(path) == lines
