"""The audit log's interface, and what its SQLite and PostgreSQL backends share.

:class:`AuditLog` appends, lists and verifies records whatever the database; a
backend supplies the write lock, the queries and a consistent snapshot to
verify (:class:`Reader`), and stores the columns :data:`COLUMNS` names.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from genofed.errors import InputError, NodeError
from genofed.node.audit.records import (
    ANONYMOUS,
    GENESIS_HASH,
    AuditEvent,
    AuditRecord,
    AuditVerification,
    chain_problem,
    head_problem,
    parameters_hash,
    utc,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COLUMNS = (
    "id, recorded_at, username, dataset, computation, parameters_sha256, decision, reason, "
    "bytes_returned, request_id, job_id, previous_hash, hash"
)
_PAGE = 5_000  # records per query while verifying

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def schema_problem(database: str, version: Any) -> str | None:
    """Return why ``database``, at schema ``version``, cannot be used; ``None`` if it can."""
    if str(version) == str(SCHEMA_VERSION):
        return None
    return (
        f"audit database {database} has schema version {version}; this genofed reads version "
        f"{SCHEMA_VERSION}, so it was left untouched"
    )


def stored_fields(record: AuditRecord) -> tuple[Any, ...]:
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


class Unreadable(Exception):
    """A stored row whose values are not what genofed writes."""

    def __init__(self, record_id: Any, problem: str) -> None:
        super().__init__(problem)
        self.record_id = record_id


def _text(row: Sequence[Any], index: int, name: str, *, optional: bool = False) -> Any:
    value = row[index]
    if isinstance(value, str) or (optional and value is None):
        return value
    raise Unreadable(row[0], f"its {name} is {value!r}, not text")


def _count(row: Sequence[Any], index: int, name: str) -> int:
    value = row[index]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Unreadable(row[0], f"its {name} is {value!r}, not a whole number")


class Reader(Protocol):
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
                time=utc(self._clock()),
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
        rows = self._select(None if since is None else utc(since), limit)
        try:
            return [self._record(row) for row in rows]
        except Unreadable as exc:
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
                    except Unreadable as exc:
                        return broken(exc.record_id, f"edited: record {exc.record_id}: {exc}")
                    problem = chain_problem(record, last_id, last_hash)
                    if problem:
                        return broken(*problem)
                    checked, last_id, last_hash = checked + 1, record.id, record.hash
                after = page[-1][0]
            head = reader.head()
        problem = head_problem(head, last_id, last_hash)
        if problem:
            return broken(*problem)
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
    def _reader(self) -> AbstractContextManager[Reader]:
        """Open a consistent snapshot to verify, on its own connection so appends go on."""

    @abc.abstractmethod
    def _time_from_db(self, row: Sequence[Any]) -> datetime:
        """Return the stored time of ``row``; raise :class:`Unreadable` if it is not a time."""
