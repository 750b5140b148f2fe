"""What the audit log stores: events, records, their hashes, and how the chain is checked.

Nothing here touches a database. :class:`AuditEvent` is what a node reports,
:class:`AuditRecord` what is stored, and :func:`chain_problem` and
:func:`head_problem` decide whether stored records still form the chain that
:meth:`AuditLog.verify` expects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from genofed.errors import InputError

GENESIS_HASH = "0" * 64  # what record 1 names as the hash before it
ANONYMOUS = "anonymous"

Decision = Literal["allowed", "refused"]
DECISIONS: tuple[str, ...] = ("allowed", "refused")

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_REORDER_WINDOW = 1_000  # how far from its place verify looks for a moved record


def _canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def time_text(moment: datetime) -> str:
    """``moment`` as the canonical text ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC)."""
    return utc(moment).strftime(TIME_FORMAT)


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
    its version (``"linear-gwas/2"``) or the endpoint of an information call.
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
            "time": time_text(self.time),
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


def _numbers(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}-{last} are"


def chain_problem(record: AuditRecord, last_id: int, last_hash: str) -> tuple[int, str] | None:
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


def head_problem(
    head: tuple[Any, Any] | None, last_id: int, last_hash: str
) -> tuple[int, str] | None:
    """``(broken id, reason)`` if the head row does not name record ``last_id`` and its hash.

    ``head`` is the stored ``(last_id, last_hash)``, or ``None`` if the row is
    gone; ``last_id`` and ``last_hash`` are those of the last intact record.
    """
    if head is None:
        return last_id + 1, "deleted: the head row, which names the last record, is gone"
    head_id, head_hash = head
    if head_id != last_id or head_hash != last_hash:
        if isinstance(head_id, int) and head_id > last_id:
            missing = _numbers(last_id + 1, head_id)
            return last_id + 1, (
                f"deleted: {missing} missing at the end (the head names record {head_id}, "
                f"the last record is {last_id})"
            )
        return last_id, (
            f"edited: the head row names record {head_id} with hash {head_hash}, "
            f"but the last record is {last_id} with hash {last_hash}"
        )
    return None
