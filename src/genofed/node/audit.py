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
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from genofed.errors import InputError, NodeError

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

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64  # what record 1 names as the hash before it
ANONYMOUS = "anonymous"

Decision = Literal["allowed", "refused"]
DECISIONS: tuple[str, ...] = ("allowed", "refused")
Clock = Callable[[], datetime]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_PAGE = 5_000  # records per query while verifying
_REORDER_WINDOW = 1_000  # how far from its place verify looks for a moved record
_COLUMNS = (
    "id, recorded_at, username, dataset, computation, parameters_sha256, decision, reason, "
    "bytes_returned, request_id, job_id, previous_hash, hash"
)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _time_text(moment: datetime) -> str:
    return _utc(moment).strftime(_TIME_FORMAT)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def parameters_hash(parameters: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of a request's parameters as canonical JSON.

    Keys are sorted and no whitespace is written, so the same parameters give
    the same hash whatever their order; an auditor who knows a request's
    parameters can find its record by this hash.

    Raises
    ------
    InputError
        If the parameters are not JSON: values other than strings, numbers,
        booleans, ``None``, lists and string-keyed mappings, or NaN/infinity.
    """
    try:
        return hashlib.sha256(_canonical_json(dict(parameters))).hexdigest()
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"audit parameters must be JSON (strings, finite numbers, booleans, null, lists and "
            f"objects): {exc}; the request was not recorded"
        ) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEvent:
    """What a node records about one request; :meth:`AuditLog.append` stamps and chains it.

    ``user`` is the passport's user (``None`` when there is no passport: it is
    recorded as ``"anonymous"``). ``computation`` names the catalogue entry and
    its version (``"linear-gwas/1"``) or the endpoint of an information call.
    ``parameters`` are hashed, never stored. A refusal needs a ``reason``,
    such as the rule that refused it.
    """

    dataset: str
    computation: str
    decision: Decision
    user: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    bytes_returned: int = 0
    request_id: str | None = None
    job_id: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.decision not in DECISIONS:
            problems.append(f"decision must be 'allowed' or 'refused', got {self.decision!r}")
        if self.decision == "refused" and not self.reason.strip():
            problems.append("a refusal needs a reason")
        if (
            isinstance(self.bytes_returned, bool)
            or not isinstance(self.bytes_returned, int)
            or self.bytes_returned < 0
        ):
            problems.append(f"bytes_returned must be a count >= 0, got {self.bytes_returned!r}")
        for name in ("dataset", "computation"):
            if not getattr(self, name):
                problems.append(f"{name} must not be empty")
        for name in ("dataset", "computation", "user", "reason", "request_id", "job_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                problems.append(f"{name} must be text, got {type(value).__name__}")
            elif value is not None and "\x00" in value:
                problems.append(f"{name} contains a NUL character")
        if problems:
            raise InputError(f"invalid audit event: {'; '.join(problems)}")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the audit log, as stored.

    ``id`` numbers records from 1 without gaps; ``time`` is when the node
    recorded it (UTC); ``previous_hash`` is the ``hash`` of record ``id - 1``
    (:data:`GENESIS_HASH` for record 1), and ``hash`` is the SHA-256 of
    :meth:`content` as canonical JSON.
    """

    id: int
    time: datetime
    user: str
    dataset: str
    computation: str
    parameters_sha256: str
    decision: str
    reason: str
    bytes_returned: int
    request_id: str | None
    job_id: str | None
    previous_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """Every field but ``hash``, JSON-ready: what ``hash`` is computed over."""
        return {
            "id": self.id,
            "time": _time_text(self.time),
            "user": self.user,
            "dataset": self.dataset,
            "computation": self.computation,
            "parameters_sha256": self.parameters_sha256,
            "decision": self.decision,
            "reason": self.reason,
            "bytes_returned": self.bytes_returned,
            "request_id": self.request_id,
            "job_id": self.job_id,
            "previous_hash": self.previous_hash,
        }

    def computed_hash(self) -> str:
        """Return the SHA-256 (hex) of :meth:`content`: ``hash``, unless the record was altered."""
        return hashlib.sha256(_canonical_json(self.content())).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """Every field, JSON-ready (the time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``)."""
        return {**self.content(), "hash": self.hash}


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """What :meth:`AuditLog.verify` found.

    ``records_checked`` counts the records found intact before the first
    broken one (all of them when ``ok``). ``first_broken_id`` and ``reason``
    name the first broken record and what is wrong with it. ``last_hash`` is
    the hash of the last intact record: when ``ok``, the head of the chain,
    worth keeping elsewhere to detect a rewrite of the whole log later.
    """

    database: str
    ok: bool
    records_checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    last_hash: str = GENESIS_HASH

    def to_json(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return {
            "database": self.database,
            "ok": self.ok,
            "records_checked": self.records_checked,
            "first_broken_id": self.first_broken_id,
            "reason": self.reason,
            "last_hash": self.last_hash,
        }


class _Unreadable(Exception):
    """A stored row whose values are not what genofed writes."""

    def __init__(self, record_id: Any, problem: str) -> None:
        super().__init__(problem)
        self.record_id = record_id


def _text(row: Sequence[Any], index: int, name: str, *, optional: bool = False) -> Any:
    value = row[index]
    if isinstance(value, str) or (optional and value is None):
        return value
    raise _Unreadable(row[0], f"its {name} is {value!r}, not text")


def _count(row: Sequence[Any], index: int, name: str) -> int:
    value = row[index]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Unreadable(row[0], f"its {name} is {value!r}, not a whole number")


class _Reader(Protocol):
    """A consistent snapshot of one log, read by :meth:`AuditLog.verify`."""

    def page(self, after: int | None, size: int) -> list[tuple[Any, ...]]:
        """Return up to ``size`` rows with ``id > after`` (any if ``None``), by ``id``."""

    def head(self) -> tuple[Any, Any] | None:
        """Return the head row's ``(last_id, last_hash)``, or ``None`` if it is gone."""


class AuditLog(abc.ABC):
    """An append-only, hash-chained log of a node's requests.

    Use :func:`open_audit_log` to open one. It is safe to share between
    threads, and several processes may append to the same database.
    ``database`` names it in messages (a URL without its password).
    """

    database: str

    def __init__(self, database: str, *, clock: Clock | None = None) -> None:
        self.database = database
        self._clock = clock or _utc_now

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def append(self, event: AuditEvent) -> AuditRecord:
        """Record ``event`` as the next record of the chain and return the record.

        Raises
        ------
        InputError
            If the event's parameters are not JSON.
        NodeError
            If the database cannot be written; the request was then not recorded.
        """
        digest = parameters_hash(event.parameters)

        def build(last_id: int, last_hash: str) -> AuditRecord:
            record = AuditRecord(
                id=last_id + 1,
                time=_utc(self._clock()),
                user=ANONYMOUS if event.user is None else event.user,
                dataset=event.dataset,
                computation=event.computation,
                parameters_sha256=digest,
                decision=event.decision,
                reason=event.reason,
                bytes_returned=event.bytes_returned,
                request_id=event.request_id,
                job_id=event.job_id,
                previous_hash=last_hash,
                hash="",
            )
            return replace(record, hash=record.computed_hash())

        record = self._append(build)
        logger.debug(
            "audit record %d: %s %s %s on %s",
            record.id, record.user, record.decision, record.computation, record.dataset,
        )  # fmt: skip
        return record

    def records(self, since: datetime | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Return records in the order they were appended.

        Parameters
        ----------
        since
            Only records at or after this time (a naive datetime is UTC).
        limit
            At most this many: the most recent ones.

        Raises
        ------
        InputError
            If ``limit`` is negative.
        NodeError
            If the database cannot be read, or holds a row genofed did not write.
        """
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise InputError(f"limit must be a count >= 0, got {limit!r}")
        if limit == 0:
            return []
        rows = self._select(None if since is None else _utc(since), limit)
        try:
            return [self._record(row) for row in rows]
        except _Unreadable as exc:
            raise NodeError(
                f"audit log {self.database}: record {exc.record_id} is unreadable ({exc}); "
                "run verify to find what was altered"
            ) from None

    def verify(self) -> AuditVerification:
        """Walk the whole chain from record 1 and report the first broken record.

        Raises
        ------
        NodeError
            If the database cannot be read. A broken chain is not an error:
            the result says ``ok=False`` and names the record.
        """
        checked, last_id, last_hash = 0, 0, GENESIS_HASH

        def broken(record_id: int, reason: str) -> AuditVerification:
            return AuditVerification(self.database, False, checked, record_id, reason, last_hash)

        with self._reader() as reader:
            after: int | None = None  # from the very first row, whatever its id
            while page := reader.page(after, _PAGE):
                for row in page:
                    try:
                        record = self._record(row)
                    except _Unreadable as exc:
                        return broken(exc.record_id, f"edited: record {exc.record_id}: {exc}")
                    problem = _chain_problem(record, last_id, last_hash)
                    if problem:
                        return broken(*problem)
                    checked, last_id, last_hash = checked + 1, record.id, record.hash
                after = page[-1][0]
            head = reader.head()
        if head is None:
            return broken(
                last_id + 1, "deleted: the head row, which names the last record, is gone"
            )
        head_id, head_hash = head
        if head_id != last_id or head_hash != last_hash:
            if isinstance(head_id, int) and head_id > last_id:
                missing = _numbers(last_id + 1, head_id)
                return broken(
                    last_id + 1,
                    f"deleted: {missing} missing at the end (the head names record {head_id}, "
                    f"the last record is {last_id})",
                )
            return broken(
                last_id,
                f"edited: the head row names record {head_id} with hash {head_hash}, "
                f"but the last record is {last_id} with hash {last_hash}",
            )
        return AuditVerification(self.database, True, checked, last_hash=last_hash)

    def _record(self, row: Sequence[Any]) -> AuditRecord:
        """Make an :class:`AuditRecord` of a stored row, checking each value's type."""
        return AuditRecord(
            id=_count(row, 0, "id"),
            time=self._time_from_db(row),
            user=_text(row, 2, "user"),
            dataset=_text(row, 3, "dataset"),
            computation=_text(row, 4, "computation"),
            parameters_sha256=_text(row, 5, "parameters_sha256"),
            decision=_text(row, 6, "decision"),
            reason=_text(row, 7, "reason"),
            bytes_returned=_count(row, 8, "bytes_returned"),
            request_id=_text(row, 9, "request_id", optional=True),
            job_id=_text(row, 10, "job_id", optional=True),
            previous_hash=_text(row, 11, "previous_hash"),
            hash=_text(row, 12, "hash"),
        )

    @abc.abstractmethod
    def close(self) -> None:
        """Close the database connection; closing twice is harmless."""

    @abc.abstractmethod
    def _append(self, build: Callable[[int, str], AuditRecord]) -> AuditRecord:
        """Under the write lock: read the head, ``build`` the next record, insert it."""

    @abc.abstractmethod
    def _select(self, since: datetime | None, limit: int | None) -> list[tuple[Any, ...]]:
        """Rows at or after ``since``, the last ``limit`` of them, in order of ``id``."""

    @abc.abstractmethod
    def _reader(self) -> AbstractContextManager[_Reader]:
        """Open a consistent snapshot to verify, on its own connection so appends go on."""

    @abc.abstractmethod
    def _time_from_db(self, row: Sequence[Any]) -> datetime:
        """Return the stored time of ``row``; raise :class:`_Unreadable` if it is not a time."""


def _numbers(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}-{last} are"


def _chain_problem(record: AuditRecord, last_id: int, last_hash: str) -> tuple[int, str] | None:
    """``(broken id, reason)`` if ``record`` does not follow record ``last_id`` intact."""
    if record.computed_hash() != record.hash:
        lo, hi = max(1, record.id - _REORDER_WINDOW), record.id + _REORDER_WINDOW
        for written_as in range(lo, hi + 1):
            if (
                written_as != record.id
                and replace(record, id=written_as).computed_hash() == record.hash
            ):
                return record.id, (
                    f"reordered: record {record.id} was written as record {written_as}"
                )
        return record.id, f"edited: record {record.id}'s content no longer matches its hash"
    if record.id <= last_id:
        return record.id, (
            f"inserted: record {record.id} stands before record {last_id + 1}, outside the chain"
        )
    if record.id != last_id + 1:
        return last_id + 1, (
            f"deleted: {_numbers(last_id + 1, record.id - 1)} missing "
            f"(record {record.id} follows record {last_id})"
        )
    if record.previous_hash != last_hash:
        if last_id == 0:
            return record.id, "edited: record 1 does not start from the genesis hash"
        return last_id, (
            f"rewritten: record {last_id} is not the record that record {record.id} was "
            "chained to (it was replaced and its hash recomputed)"
        )
    return None


def _stored_fields(record: AuditRecord) -> tuple[Any, ...]:
    """Return the stored columns after ``id`` and ``recorded_at``, in order."""
    return (
        record.user,
        record.dataset,
        record.computation,
        record.parameters_sha256,
        record.decision,
        record.reason,
        record.bytes_returned,
        record.request_id,
        record.job_id,
        record.previous_hash,
        record.hash,
    )


# --------------------------------------------------------------------------- SQLite

_SQLITE_SCHEMA = (
    "CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE audit_records (
        id INTEGER PRIMARY KEY,
        recorded_at TEXT NOT NULL,
        username TEXT NOT NULL,
        dataset TEXT NOT NULL,
        computation TEXT NOT NULL,
        parameters_sha256 TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('allowed', 'refused')),
        reason TEXT NOT NULL,
        bytes_returned INTEGER NOT NULL CHECK (bytes_returned >= 0),
        request_id TEXT,
        job_id TEXT,
        previous_hash TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL UNIQUE)""",
    "CREATE INDEX audit_records_by_time ON audit_records (recorded_at)",
    """CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_id INTEGER NOT NULL,
        last_hash TEXT NOT NULL)""",
    f"INSERT INTO audit_head VALUES (1, 0, '{GENESIS_HASH}')",
    """CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE is refused'); END""",
    """CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE is refused'); END""",
    """CREATE TRIGGER audit_records_extend_head BEFORE INSERT ON audit_records
        WHEN NOT EXISTS (SELECT 1 FROM audit_head
                         WHERE id = 1 AND last_id + 1 = NEW.id AND last_hash = NEW.previous_hash)
        BEGIN SELECT RAISE(ABORT, 'an audit record must extend the chain at its head'); END""",
    """CREATE TRIGGER audit_records_advance_head AFTER INSERT ON audit_records
        BEGIN UPDATE audit_head SET last_id = NEW.id, last_hash = NEW.hash WHERE id = 1; END""",
    """CREATE TRIGGER audit_head_advance_only BEFORE UPDATE ON audit_head
        WHEN NEW.id != OLD.id OR NEW.last_id != OLD.last_id + 1
          OR NOT EXISTS (SELECT 1 FROM audit_records
                         WHERE id = NEW.last_id AND hash = NEW.last_hash)
        BEGIN SELECT RAISE(ABORT, 'the audit head only advances to the record just appended');
        END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
        BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END""",
    f"INSERT INTO audit_meta VALUES ('schema_version', '{SCHEMA_VERSION}')",
)


def _schema_problem(database: str, version: Any) -> str | None:
    if str(version) == str(SCHEMA_VERSION):
        return None
    return (
        f"audit database {database} has schema version {version}; this genofed reads version "
        f"{SCHEMA_VERSION}, so it was left untouched"
    )


class SqliteAuditLog(AuditLog):
    """The audit log in one SQLite file (WAL mode), created with its schema on first use.

    Parameters
    ----------
    path
        The database file; its directory must exist.
    clock
        Where record times come from (default: the system clock, in UTC).

    Raises
    ------
    InputError
        If the path's directory is missing, the file is not a SQLite database,
        or it holds a schema version this genofed does not read.
    """

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), clock=clock)
        if self.path.is_dir():
            raise InputError(f"audit database {self.path} is a directory, not a file")
        if not self.path.parent.is_dir():
            raise InputError(
                f"cannot open audit database {self.path}: directory {self.path.parent} "
                "does not exist"
            )
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._connect()
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._ensure_schema(self._db)
        except sqlite3.Error as exc:
            self.close()
            raise InputError(f"cannot open audit database {self.path}: {exc}") from None
        except InputError:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )

    def _ensure_schema(self, db: sqlite3.Connection) -> None:
        def version() -> Any:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'"
            ).fetchone()
            if not exists:
                return None
            row = db.execute("SELECT value FROM audit_meta WHERE key = 'schema_version'").fetchone()
            return row[0] if row else "missing"

        found = version()
        if found is None:
            db.execute("BEGIN IMMEDIATE")
            try:
                found = version()
                if found is None:
                    for statement in _SQLITE_SCHEMA:
                        db.execute(statement)
                    found = SCHEMA_VERSION
                    logger.info("created audit log %s (schema version %d)", self.path, found)
                db.execute("COMMIT")
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
        problem = _schema_problem(str(self.path), found)
        if problem:
            raise InputError(problem)

    def close(self) -> None:
        """Close the database connection; closing twice is harmless."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise NodeError(f"audit log {self.database} is closed")
        return self._db

    def _append(self, build: Callable[[int, str], AuditRecord]) -> AuditRecord:
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    head = db.execute(
                        "SELECT last_id, last_hash FROM audit_head WHERE id = 1"
                    ).fetchone()
                    if head is None:
                        raise NodeError(
                            f"audit log {self.database} has lost its head row; run verify. "
                            "The request was not recorded"
                        )
                    record = build(*head)
                    db.execute(
                        f"INSERT INTO audit_records ({_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.id,
                            _time_text(record.time),
                            *_stored_fields(record),
                        ),
                    )
                    db.execute("COMMIT")
                finally:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise NodeError(
                    f"audit log {self.database}: cannot append a record ({exc}); "
                    "the request was not recorded"
                ) from None
        return record

    def _select(self, since: datetime | None, limit: int | None) -> list[tuple[Any, ...]]:
        params: list[Any] = [] if since is None else [_time_text(since)]
        where = "" if since is None else "WHERE recorded_at >= ?"
        order = "ORDER BY id" if limit is None else "ORDER BY id DESC LIMIT ?"
        if limit is not None:
            params.append(limit)
        query = f"SELECT {_COLUMNS} FROM audit_records {where} {order}"
        with self._lock:
            try:
                rows = self._connection().execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise NodeError(f"audit log {self.database}: cannot read records ({exc})") from None
        return rows if limit is None else rows[::-1]

    @contextmanager
    def _reader(self) -> Iterator[_Reader]:
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            raise NodeError(f"audit log {self.database}: cannot read records ({exc})") from None
        try:
            db.execute("BEGIN")  # one read snapshot for the whole walk
            yield _SqliteReader(db)
        except sqlite3.Error as exc:
            raise NodeError(f"audit log {self.database}: cannot read records ({exc})") from None
        finally:
            db.close()

    def _time_from_db(self, row: Sequence[Any]) -> datetime:
        value = row[1]
        try:
            if not isinstance(value, str):
                raise ValueError
            return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _Unreadable(row[0], f"its time is {value!r}, not {_TIME_FORMAT}") from None


class _SqliteReader:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def page(self, after: int | None, size: int) -> list[tuple[Any, ...]]:
        where = "" if after is None else "WHERE id > ?"
        params = (size,) if after is None else (after, size)
        query = f"SELECT {_COLUMNS} FROM audit_records {where} ORDER BY id LIMIT ?"
        return self._db.execute(query, params).fetchall()

    def head(self) -> tuple[Any, Any] | None:
        row = self._db.execute("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetchone()
        return None if row is None else (row[0], row[1])


# --------------------------------------------------------------------------- PostgreSQL

_POSTGRES_SCHEMA = (
    "CREATE TABLE audit_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE audit_records (
        id bigint PRIMARY KEY,
        recorded_at timestamptz NOT NULL,
        username text NOT NULL,
        dataset text NOT NULL,
        computation text NOT NULL,
        parameters_sha256 text NOT NULL,
        decision text NOT NULL CHECK (decision IN ('allowed', 'refused')),
        reason text NOT NULL,
        bytes_returned bigint NOT NULL CHECK (bytes_returned >= 0),
        request_id text,
        job_id text,
        previous_hash text NOT NULL UNIQUE,
        hash text NOT NULL UNIQUE)""",
    "CREATE INDEX audit_records_by_time ON audit_records (recorded_at)",
    """CREATE TABLE audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        last_id bigint NOT NULL,
        last_hash text NOT NULL)""",
    f"INSERT INTO audit_head VALUES (1, 0, '{GENESIS_HASH}')",
    """CREATE FUNCTION audit_refuse_change() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""",
    """CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
    """CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
    """CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()""",
    """CREATE FUNCTION audit_extend_head() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            UPDATE audit_head SET last_id = NEW.id, last_hash = NEW.hash
             WHERE id = 1 AND last_id + 1 = NEW.id AND last_hash = NEW.previous_hash;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'an audit record must extend the chain at its head'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$""",
    """CREATE TRIGGER audit_records_extend_head AFTER INSERT ON audit_records
        FOR EACH ROW EXECUTE FUNCTION audit_extend_head()""",
    """CREATE FUNCTION audit_guard_head() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.last_id = OLD.last_id + 1
               AND EXISTS (SELECT 1 FROM audit_records
                           WHERE id = NEW.last_id AND hash = NEW.last_hash) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'the audit head only advances to the record just appended'
                USING ERRCODE = 'insufficient_privilege';
        END $$""",
    """CREATE TRIGGER audit_head_guard BEFORE UPDATE OR DELETE ON audit_head
        FOR EACH ROW EXECUTE FUNCTION audit_guard_head()""",
    """CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()""",
    f"INSERT INTO audit_meta VALUES ('schema_version', '{SCHEMA_VERSION}')",
)
_SCHEMA_LOCK = 0x67656E6F66656401  # advisory lock key held while creating the schema


def _is_postgres_url(database: str) -> bool:
    return database.lower().startswith(("postgresql://", "postgres://"))


def _redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hostport}"
        query = urlencode(
            [
                (key, "***" if key.lower() == "password" else value)
                for key, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*",
        )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return f"{url.split('://', 1)[0]}://***"


def _secrets(url: str) -> list[str]:
    """Find the password in ``url``, however it is written, to keep it out of messages."""
    found = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
        found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    except ValueError:
        pass
    try:
        password = conninfo_to_dict(url).get("password")
        if isinstance(password, str):
            found.append(password)
    except psycopg.Error:
        pass
    return sorted({s for s in found if s}, key=len, reverse=True)


class PostgresAuditLog(AuditLog):
    """The audit log in a PostgreSQL database, created with its schema on first use.

    Parameters
    ----------
    url
        A ``postgresql://user:password@host:port/database`` URL (libpq's
        parameters, such as ``sslmode`` or ``options``, may follow ``?``). The
        tables go into the first schema on the connection's search path.
    clock
        Where record times come from (default: the system clock, in UTC).

    Raises
    ------
    InputError
        If the URL is malformed, or the database holds a schema version this
        genofed does not read.
    NodeError
        If the server cannot be reached or refuses the connection.
    """

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        super().__init__(_redacted(url), clock=clock)
        self._url = url
        self._hidden = _secrets(url)
        if not _is_postgres_url(url):
            raise InputError(f"audit database {self.database} is not a postgresql:// URL")
        try:
            options = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise InputError(
                f"audit database {self.database} is not a valid PostgreSQL URL: {self._scrub(exc)}"
            ) from None
        self._options: dict[str, Any] = {"application_name": "genofed-audit"}
        if "connect_timeout" not in options:
            self._options["connect_timeout"] = 10
        self._lock = threading.Lock()
        self._closed = False
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = self._connect()
        try:
            self._ensure_schema(self._conn)
        except psycopg.Error as exc:
            self.close()
            raise NodeError(
                f"audit database {self.database}: cannot create the audit schema "
                f"({self._scrub(exc)})"
            ) from None
        except InputError:
            self.close()
            raise

    def _scrub(self, exc: BaseException | str) -> str:
        message = str(exc).strip()
        for secret in self._hidden:
            message = message.replace(secret, "***")
        return message

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self._url, autocommit=True, **self._options)
        except psycopg.Error as exc:
            raise NodeError(
                f"cannot connect to audit database {self.database}: {self._scrub(exc)}"
            ) from None

    def _ensure_schema(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            exists = conn.execute("SELECT to_regclass('audit_meta') IS NOT NULL").fetchone()
            if exists and exists[0]:
                row = conn.execute(
                    "SELECT value FROM audit_meta WHERE key = 'schema_version'"
                ).fetchone()
                found: Any = row[0] if row else "missing"
            else:
                for statement in _POSTGRES_SCHEMA:
                    conn.execute(statement)
                found = SCHEMA_VERSION
                logger.info(
                    "created audit log in %s (schema version %d)", self.database, SCHEMA_VERSION
                )
        problem = _schema_problem(self.database, found)
        if problem:
            raise InputError(problem)

    def close(self) -> None:
        """Close the database connection; closing twice is harmless."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """Return the open connection, reconnecting if it broke (say, on a server restart)."""
        if self._closed:
            raise NodeError(f"audit log {self.database} is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                logger.warning("audit database %s: connection lost, reconnecting", self.database)
                self._conn.close()
            self._conn = None
            self._conn = self._connect()
        return self._conn

    def _append(self, build: Callable[[int, str], AuditRecord]) -> AuditRecord:
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                sent = False  # whether the INSERT may have reached the server
                try:
                    with conn.transaction():
                        head = conn.execute(
                            "SELECT last_id, last_hash FROM audit_head WHERE id = 1 FOR UPDATE"
                        ).fetchone()
                        if head is None:
                            raise NodeError(
                                f"audit log {self.database} has lost its head row; run verify. "
                                "The request was not recorded"
                            )
                        record = build(int(head[0]), str(head[1]))
                        sent = True
                        conn.execute(
                            f"INSERT INTO audit_records ({_COLUMNS}) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            (record.id, record.time, *_stored_fields(record)),
                        )
                    return record
                except psycopg.Error as exc:
                    if attempt == 1 and not sent and conn.broken:
                        continue  # the connection had died since the last append: reconnect
                    outcome = "may not have been" if sent and conn.broken else "was not"
                    raise NodeError(
                        f"audit log {self.database}: cannot append a record "
                        f"({self._scrub(exc)}); the request {outcome} recorded"
                    ) from None
        raise AssertionError("unreachable")

    def _select(self, since: datetime | None, limit: int | None) -> list[tuple[Any, ...]]:
        params: list[Any] = [] if since is None else [since]
        where = "" if since is None else "WHERE recorded_at >= %s"
        order = "ORDER BY id" if limit is None else "ORDER BY id DESC LIMIT %s"
        if limit is not None:
            params.append(limit)
        query = f"SELECT {_COLUMNS} FROM audit_records {where} {order}"
        with self._lock:
            try:
                rows = self._connection().execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise NodeError(
                    f"audit log {self.database}: cannot read records ({self._scrub(exc)})"
                ) from None
        return rows if limit is None else rows[::-1]

    @contextmanager
    def _reader(self) -> Iterator[_Reader]:
        conn = self._connect()
        try:
            conn.autocommit = False
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            yield _PostgresReader(conn)
        except psycopg.Error as exc:
            raise NodeError(
                f"audit log {self.database}: cannot read records ({self._scrub(exc)})"
            ) from None
        finally:
            conn.close()

    def _time_from_db(self, row: Sequence[Any]) -> datetime:
        value = row[1]
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC)
        raise _Unreadable(row[0], f"its time is {value!r}, not a time with a zone")


class _PostgresReader:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def page(self, after: int | None, size: int) -> list[tuple[Any, ...]]:
        where = "" if after is None else "WHERE id > %s"
        params = (size,) if after is None else (after, size)
        query = f"SELECT {_COLUMNS} FROM audit_records {where} ORDER BY id LIMIT %s"
        return self._conn.execute(query, params).fetchall()

    def head(self) -> tuple[Any, Any] | None:
        row = self._conn.execute(
            "SELECT last_id, last_hash FROM audit_head WHERE id = 1"
        ).fetchone()
        return None if row is None else (row[0], row[1])


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
    if _is_postgres_url(database):
        return PostgresAuditLog(database)
    scheme = _SCHEME.match(database)
    if scheme:
        raise InputError(
            f"audit database {_redacted(database)}: {scheme.group(1)}:// is not supported; "
            "give a file path (SQLite) or a postgresql:// URL"
        )
    return SqliteAuditLog(Path(database))
