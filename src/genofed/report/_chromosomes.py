"""Chromosome codes: GWAS-SSF numbering and natural genome order."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# GWAS-SSF numbers the sex chromosomes and mitochondria (X=23, Y=24, MT=25).
# PLINK's XY (pseudo-autosomal regions) uses X coordinates, so it maps to 23.
_GWAS_SSF_CODES = {"X": "23", "Y": "24", "XY": "23", "MT": "25", "M": "25"}
# Natural order of named chromosomes after the autosomes, as PLINK numbers them.
_NAMED_ORDER = {"X": 23, "Y": 24, "XY": 25, "MT": 26, "M": 26}


def _strip(code: str) -> str:
    code = code.strip()
    return code[3:] if code[:3].lower() == "chr" else code


def gwas_ssf_code(code: str) -> str:
    """Return the GWAS-SSF code of a chromosome: ``chr7`` -> ``7``, ``X`` -> ``23``.

    Numeric codes are kept as they are; a code GWAS-SSF has no number for
    (such as an unplaced contig) is returned unchanged.
    """
    bare = _strip(code)
    if bare.isascii() and bare.isdigit():
        return str(int(bare))
    return _GWAS_SSF_CODES.get(bare.upper(), code)


def to_gwas_ssf_codes(chromosomes: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    """Apply :func:`gwas_ssf_code` to every element (once per distinct code)."""
    if chromosomes.size == 0:
        return chromosomes.astype(np.str_)
    unique, inverse = np.unique(chromosomes, return_inverse=True)
    mapped = np.array([gwas_ssf_code(code) for code in unique.tolist()], dtype=np.str_)
    return mapped[inverse]


def sort_key(code: str) -> tuple[int, int, str]:
    """Order chromosomes 1, 2, ..., 22, X/23, Y/24, XY, MT, then other names."""
    bare = _strip(code)
    if bare.isascii() and bare.isdigit():
        return (0, int(bare), code)
    named = _NAMED_ORDER.get(bare.upper())
    if named is not None:
        return (0, named, code)
    return (1, 0, code)


def genome_order(
    chromosomes: npt.NDArray[np.str_],
) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Return the distinct chromosomes in natural order and each element's rank in it."""
    if chromosomes.size == 0:
        return [], np.zeros(0, dtype=np.int64)
    unique, inverse = np.unique(chromosomes, return_inverse=True)
    names = unique.tolist()
    order = sorted(range(len(names)), key=lambda i: sort_key(names[i]))
    rank_of_unique = np.empty(len(names), dtype=np.int64)
    rank_of_unique[order] = np.arange(len(names))
    return [names[i] for i in order], rank_of_unique[inverse]
