"""The ``genofed`` command: one module per subcommand, each thin.

A subcommand module builds its parser from light imports only, and imports
the machinery it runs (numba kernels, scipy, msprime, the web stack) inside
its ``run`` function, so that ``genofed --help`` starts at once.

Exit codes: 0 success, 1 any other genofed error, 2 bad arguments or input
(nothing was written), 3 a node was unreachable or failed, 4 a node refused
access or a disclosure rule refused the computation, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from genofed._version import __version__
from genofed.cli import aai, demo, federation, gwas, node, pca, qc, simulate
from genofed.errors import AuthError, DisclosureError, GenofedError, InputError, NodeError

__all__ = ["main"]

EXIT_ERROR, EXIT_INPUT, EXIT_NODE, EXIT_REFUSED, EXIT_INTERRUPTED = 1, 2, 3, 4, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``genofed`` command line and return its exit code."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="log progress (-v) or details (-vv)"
    )
    common.add_argument(
        "--format", choices=("text", "json"), default="text", help="output for people or machines"
    )
    parser = argparse.ArgumentParser(
        prog="genofed", description="Federated analysis of genomic data held by national nodes."
    )
    parser.add_argument("--version", action="version", version=f"genofed {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (simulate, node, federation, qc, pca, gwas, demo, aai):
        module.register(commands, common)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.run(args)
    except InputError as exc:
        print(f"genofed {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (AuthError, DisclosureError) as exc:
        print(f"genofed {args.command}: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except NodeError as exc:
        print(f"genofed {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_NODE
    except GenofedError as exc:
        print(f"genofed {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"genofed {args.command}: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
