"""The node's audit log: every request on record, append-only and hash-chained.

Each request a node answers or refuses becomes one :class:`AuditRecord`: when
(UTC), who (the passport's user, ``"anonymous"`` without one), which dataset,
which computation, a SHA-256 hash of its canonical JSON parameters (never the
parameters themselves), the decision and its reason, how many bytes went back,
and the request and job ids where known.

Tamper evidence
---------------
Records are numbered 1, 2, 3, ... with no gaps. Each stores the hash of the
record before it (:data:`GENESIS_HASH` for record 1) and its own hash: the
SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of every
field but ``hash``, its number included. :meth:`AuditLog.verify` walks the
chain from record 1 and names the first record that is broken and how:
*edited* (its content no longer matches its hash), *reordered* (it hashes
right under another number), *deleted* (a number is missing, or the head row
names a record past the last one), *inserted* (a row numbered before record 1)
or *rewritten* (a record was replaced with a recomputed hash, so its successor
no longer links to it). A one-row head table holds the number and hash of the
last record, so that removing records at the end is caught too. Someone able
to rewrite the whole database can recompute every hash;
:attr:`AuditVerification.last_hash` is the value to copy somewhere else from
time to time to catch that as well.

The database refuses what it can: triggers reject UPDATE and DELETE of
records (and TRUNCATE on PostgreSQL), reject a record that does not extend the
chain at its head, and let the head row only advance to the record just
appended. An operator who wants more can create the tables with an
administrative role and grant the node's role only SELECT and INSERT.

Concurrency
-----------
A node records requests from several threads, and possibly several processes.
An append reads the head and inserts the next record in one transaction that
holds the database's write lock: ``BEGIN IMMEDIATE`` on SQLite and
``SELECT ... FOR UPDATE`` on the head row on PostgreSQL. Appends are thus
serialised by the database itself, and a ``UNIQUE`` constraint on
``previous_hash`` makes a fork impossible even for a writer that skips the lock.

Retention
---------
Records are kept forever: there is no API that deletes or prunes them, which
meets the node's rule of keeping every record for at least a year. A record
takes about 550 bytes in SQLite, indexes included: some 0.55 GB per million
requests.

Schema (version 1, created on first use)
----------------------------------------
``audit_meta(key, value)``
    ``schema_version`` = ``1``.
``audit_records(id, recorded_at, username, dataset, computation,
parameters_sha256, decision, reason, bytes_returned, request_id, job_id,
previous_hash, hash)``
    One row per record; ``id`` is the primary key, ``previous_hash`` and
    ``hash`` are unique, ``recorded_at`` is indexed. SQLite stores the time as
    the canonical text ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, PostgreSQL as
    ``timestamptz``.
``audit_head(id = 1, last_id, last_hash)``
    The number and hash of the last record (0 and :data:`GENESIS_HASH` when
    empty).

SQLite is the default, in one file (WAL mode, ``synchronous = FULL``);
PostgreSQL is used when the database is a ``postgresql://`` URL.

Modules
-------
* :mod:`~genofed.node.audit.records`: what is stored and hashed
  (:class:`AuditEvent`, :class:`AuditRecord`, :func:`parameters_hash`) and
  how a chain is checked, with no database.
* :mod:`~genofed.node.audit.base`: :class:`AuditLog`, which appends, lists
  and verifies whatever the database, and what its backends share.
* :mod:`~genofed.node.audit.sqlite`: :class:`SqliteAuditLog`.
* :mod:`~genofed.node.audit.postgres`: :class:`PostgresAuditLog`.

The names in ``__all__`` are importable from this package; the rest serve its modules.
"""

from __future__ import annotations

import re
from pathlib import Path

from genofed.errors import InputError
from genofed.node.audit.base import SCHEMA_VERSION, AuditLog
from genofed.node.audit.postgres import PostgresAuditLog, is_postgres_url, redacted_url
from genofed.node.audit.records import (
    GENESIS_HASH,
    AuditEvent,
    AuditRecord,
    AuditVerification,
    parameters_hash,
)
from genofed.node.audit.sqlite import SqliteAuditLog

__all__ = [
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "AuditEvent",
    "AuditLog",
    "AuditRecord",
    "AuditVerification",
    "PostgresAuditLog",
    "SqliteAuditLog",
    "open_audit_log",
    "parameters_hash",
]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_audit_log(database: str | Path) -> AuditLog:
    """Open a node's audit log: PostgreSQL for a ``postgresql://`` URL, else a SQLite file.

    Parameters
    ----------
    database
        A path to a SQLite file (created with its schema if missing), or a
        ``postgresql://`` (or ``postgres://``) URL.

    Raises
    ------
    InputError
        If ``database`` is empty, a URL of another kind, a malformed URL or a
        path that cannot hold the database; messages never show a password.
    NodeError
        If a PostgreSQL server cannot be reached or refuses the connection.
    """
    if isinstance(database, Path):
        return SqliteAuditLog(database)
    if not database.strip():
        raise InputError("the audit database is empty: give a file path or a postgresql:// URL")
    if is_postgres_url(database):
        return PostgresAuditLog(database)
    scheme = _SCHEME.match(database)
    if scheme:
        raise InputError(
            f"audit database {redacted_url(database)}: {scheme.group(1)}:// is not supported; "
            "give a file path (SQLite) or a postgresql:// URL"
        )
    return SqliteAuditLog(Path(database))
