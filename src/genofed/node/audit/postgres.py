"""The audit log in a PostgreSQL database, for a ``postgresql://`` URL.

Triggers refuse changes to records (TRUNCATE included), and an append holds
the write lock with ``SELECT ... FOR UPDATE`` on the head row. The URL's
password never reaches a message: :func:`redacted_url` is how the log names
its database, and any error text from the server is scrubbed of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

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
from genofed.node.audit.records import GENESIS_HASH, AuditRecord

logger = logging.getLogger(__name__)

_SCHEMA = (
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


def is_postgres_url(database: str) -> bool:
    """Whether ``database`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return database.lower().startswith(("postgresql://", "postgres://"))


def redacted_url(url: str) -> str:
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
        super().__init__(redacted_url(url), clock=clock)
        self._url = url
        self._hidden = _secrets(url)
        if not is_postgres_url(url):
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
                for statement in _SCHEMA:
                    conn.execute(statement)
                found = SCHEMA_VERSION
                logger.info(
                    "created audit log in %s (schema version %d)", self.database, SCHEMA_VERSION
                )
        problem = schema_problem(self.database, found)
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
                            f"INSERT INTO audit_records ({COLUMNS}) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            (record.id, record.time, *stored_fields(record)),
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
        query = f"SELECT {COLUMNS} FROM audit_records {where} {order}"
        with self._lock:
            try:
                rows = self._connection().execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise NodeError(
                    f"audit log {self.database}: cannot read records ({self._scrub(exc)})"
                ) from None
        return rows if limit is None else rows[::-1]

    @contextmanager
    def _reader(self) -> Iterator[Reader]:
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
        raise Unreadable(row[0], f"its time is {value!r}, not a time with a zone")


class _PostgresReader:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def page(self, after: int | None, size: int) -> list[tuple[Any, ...]]:
        where = "" if after is None else "WHERE id > %s"
        params = (size,) if after is None else (after, size)
        query = f"SELECT {COLUMNS} FROM audit_records {where} ORDER BY id LIMIT %s"
        return self._conn.execute(query, params).fetchall()

    def head(self) -> tuple[Any, Any] | None:
        row = self._conn.execute(
            "SELECT last_id, last_hash FROM audit_head WHERE id = 1"
        ).fetchone()
        return None if row is None else (row[0], row[1])
