"""Readers and writers of the files genofed exchanges with its users.

Nothing outside this package knows a file format.
"""

from genofed.io.phenotypes import PhenotypeTable, read_phenotype_table, write_phenotype_table
from genofed.io.plink import BedWriter, VariantInfo

__all__ = [
    "BedWriter",
    "PhenotypeTable",
    "VariantInfo",
    "read_phenotype_table",
    "write_phenotype_table",
]
