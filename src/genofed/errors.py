"""The exceptions genofed raises.

Every error genofed raises on purpose derives from :class:`GenofedError`::

    GenofedError
    ├── InputError      bad arguments, input files or study parameters; nothing was written
    ├── NodeError       a node is unreachable, refused a request or failed a job
    ├── ProtocolError   a message between coordinator and node is malformed or forged
    ├── AuthError       a passport is missing or invalid (401) or grants no access (403)
    └── DisclosureError a node's disclosure rule refused a computation

The CLI maps each family to its own exit code (see ``genofed.cli``); a node
maps them to HTTP status codes (see ``genofed.node``).
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "DisclosureError",
    "GenofedError",
    "InputError",
    "NodeError",
    "ProtocolError",
]


class GenofedError(Exception):
    """Base class of every error genofed raises on purpose."""


class InputError(GenofedError):
    """An argument or an input file is invalid; the operation wrote nothing."""


class NodeError(GenofedError):
    """A node could not be reached, refused a request, or its job failed."""


class ProtocolError(GenofedError):
    """A message between coordinator and node does not follow the protocol."""


class AuthError(GenofedError):
    """A request's passport is missing or invalid, or it grants no access to the dataset.

    ``status`` is the HTTP status a node answers with: 401 for a missing or
    invalid passport, 403 for a valid one without a grant for the dataset.
    ``user`` is the subject of a passport whose signature verified, if any.
    """

    def __init__(self, message: str, *, status: int = 401, user: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.user = user


class DisclosureError(GenofedError):
    """A node's disclosure-control rule refused a computation; the message names the rule."""
