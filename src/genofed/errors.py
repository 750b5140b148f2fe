"""The exceptions genofed raises.

Every error genofed raises on purpose derives from :class:`GenofedError`::

    GenofedError
    └── InputError      bad arguments or input files; nothing was written

The CLI maps each family to its own exit code (see ``genofed.cli``).
"""

from __future__ import annotations

__all__ = ["GenofedError", "InputError"]


class GenofedError(Exception):
    """Base class of every error genofed raises on purpose."""


class InputError(GenofedError):
    """An argument or an input file is invalid; the operation wrote nothing."""
