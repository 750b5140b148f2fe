"""The audit log in one SQLite file, the node's default.

The file is in WAL mode with ``synchronous = FULL``, and triggers refuse
changes to records. An append holds the database's write lock with
``BEGIN IMMEDIATE``. Times are stored as the canonical text
``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genofed.errors import InputError, NodeError
from genofed.node.audit.base import (
    COLUMNS,
    SCHEMA_VERSION,
    AuditLog,
    Clock,
    Reader,
    Unreadable,
    schema_problem,
    stored_fields,
)
from genofed.node.audit.records import GENESIS_HASH, TIME_FORMAT, AuditRecord, time_text

logger = logging.getLogger(__name__)

_SCHEMA = (
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
                    for statement in _SCHEMA:
                        db.execute(statement)
                    found = SCHEMA_VERSION
                    logger.info("created audit log %s (schema version %d)", self.path, found)
                db.execute("COMMIT")
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
        problem = schema_problem(str(self.path), found)
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
                        f"INSERT INTO audit_records ({COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.id,
                            time_text(record.time),
                            *stored_fields(record),
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
        params: list[Any] = [] if since is None else [time_text(since)]
        where = "" if since is None else "WHERE recorded_at >= ?"
        order = "ORDER BY id" if limit is None else "ORDER BY id DESC LIMIT ?"
        if limit is not None:
            params.append(limit)
        query = f"SELECT {COLUMNS} FROM audit_records {where} {order}"
        with self._lock:
            try:
                rows = self._connection().execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise NodeError(f"audit log {self.database}: cannot read records ({exc})") from None
        return rows if limit is None else rows[::-1]

    @contextmanager
    def _reader(self) -> Iterator[Reader]:
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
            return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise Unreadable(row[0], f"its time is {value!r}, not {TIME_FORMAT}") from None


class _SqliteReader:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def page(self, after: int | None, size: int) -> list[tuple[Any, ...]]:
        where = "" if after is None else "WHERE id > ?"
        params = (size,) if after is None else (after, size)
        query = f"SELECT {COLUMNS} FROM audit_records {where} ORDER BY id LIMIT ?"
        return self._db.execute(query, params).fetchall()

    def head(self) -> tuple[Any, Any] | None:
        row = self._db.execute("SELECT last_id, last_hash FROM audit_head WHERE id = 1").fetchone()
        return None if row is None else (row[0], row[1])
