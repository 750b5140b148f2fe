"""What a GWAS hands to its reader: GWAS-SSF files, plots and summary statistics.

- :func:`write_gwas_ssf` / :func:`read_gwas_ssf`: the GWAS Catalog's
  summary statistics format (a TSV table and its YAML metadata).
- :func:`manhattan_plot`, :func:`qq_plot`, :func:`pc_plot`: PNG figures.
- :func:`lambda_gc`, :func:`top_hits`, :func:`format_top_hits`: the numbers
  a reader looks at first.

Names are imported on first use, so a node writing files with
``genofed.report._atomic`` never loads matplotlib.
"""

import typing

from genofed import _lazy

if typing.TYPE_CHECKING:
    from genofed.report.gwas_ssf import GwasMetadata, GwasTable, read_gwas_ssf, write_gwas_ssf
    from genofed.report.plots import manhattan_plot, pc_plot, qq_plot
    from genofed.report.summary import format_top_hits, lambda_gc, top_hits
else:
    __getattr__, __dir__ = _lazy.exports(
        __name__,
        {
            "genofed.report.gwas_ssf": [
                "GwasMetadata",
                "GwasTable",
                "read_gwas_ssf",
                "write_gwas_ssf",
            ],
            "genofed.report.plots": ["manhattan_plot", "pc_plot", "qq_plot"],
            "genofed.report.summary": ["format_top_hits", "lambda_gc", "top_hits"],
        },
    )

__all__ = [
    "GwasMetadata",
    "GwasTable",
    "format_top_hits",
    "lambda_gc",
    "manhattan_plot",
    "pc_plot",
    "qq_plot",
    "read_gwas_ssf",
    "top_hits",
    "write_gwas_ssf",
]
