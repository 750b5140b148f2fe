"""The exceptions genofed raises.

Every error genofed raises on purpose derives from :class:`GenofedError`::

    GenofedError
    ├── InputError      bad arguments, input files or study parameters; nothing was written
    ├── NodeError       a node is unreachable, refused a request or failed a job
    └── ProtocolError   a message between coordinator and node is malformed

The CLI maps each family to its own exit code (see ``genofed.cli``); a node
maps them to HTTP status codes (see ``genofed.node``).
"""

from __future__ import annotations

__all__ = ["GenofedError", "InputError", "NodeError", "ProtocolError"]


class GenofedError(Exception):
    """Base class of every error genofed raises on purpose."""


class InputError(GenofedError):
    """An argument or an input file is invalid; the operation wrote nothing."""


class NodeError(GenofedError):
    """A node could not be reached, refused a request, or its job failed."""


class ProtocolError(GenofedError):
    """A message between coordinator and node does not follow the protocol."""
