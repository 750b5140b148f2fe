"""``genofed node audit``: list a node's audit records and verify their hash chain."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genofed._toml import read_toml
from genofed.errors import InputError

if TYPE_CHECKING:
    from genofed.node.audit import AuditRecord, AuditVerification

__all__ = ["add_audit_command", "audit_database", "run_audit"]

DEFAULT_FILE = "audit.sqlite3"


def add_audit_command(actions: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``audit`` to the ``genofed node`` action group.

    Parameters
    ----------
    actions
        The node group's subparsers (from ``add_subparsers``).
    common
        The parser holding ``-v`` and ``--format`` shared by every command; when
        omitted, ``audit`` defines the two itself.
    """
    parser = actions.add_parser(
        "audit",
        parents=[common] if common is not None else [],
        help="list a node's audit records, or verify their hash chain",
        description="List the records of a node's audit log (every request it answered or "
        "refused), or with --verify walk the hash chain and name the first broken record. "
        "The log is [audit] database in node.toml, else audit.sqlite3 in the node's state "
        "directory (beside node.toml unless [node] state_dir says otherwise). "
        "Exit code 0 if the chain is intact, 1 if it is broken.",
    )
    if common is None:
        parser.add_argument(
            "-v", "--verbose", action="count", default=0, help="log progress (-v) or details (-vv)"
        )
        parser.add_argument(
            "--format",
            choices=("text", "json"),
            default="text",
            help="output for people or machines (JSON: one record per line)",
        )
    parser.add_argument("config", type=Path, help="the node's node.toml")
    parser.add_argument(
        "--verify", action="store_true", help="check the hash chain instead of listing records"
    )
    parser.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="records at or after TIME, e.g. 2026-11-01T00:00 (UTC unless it names an offset)",
    )
    parser.add_argument("--limit", type=_count, metavar="N", help="only the last N records")
    parser.set_defaults(run=run_audit)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2026-11-01T00:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count >= 1")
    return value


def audit_database(config: Path) -> str | Path:
    """Find a node's audit database from its ``node.toml``.

    ``[audit] database`` when set (a ``postgresql://`` URL, or a path taken
    from node.toml's directory), else ``audit.sqlite3`` in the node's state
    directory: ``[node] state_dir``, by default node.toml's directory.

    Raises
    ------
    InputError
        If node.toml cannot be read, or ``[audit] database`` is not a string.
    """
    config = Path(config)
    document = read_toml(config)
    here = config.parent
    audit = document.get("audit", {})
    if not isinstance(audit, dict):
        raise InputError(f"{config}: audit must be a table ([audit])")
    database = audit.get("database")
    if database is None:
        node = document.get("node")
        state_dir = node.get("state_dir") if isinstance(node, dict) else None
        state = here / state_dir if isinstance(state_dir, str) else here
        return (state / DEFAULT_FILE).resolve()
    if not isinstance(database, str) or not database.strip():
        raise InputError(
            f"{config}: audit.database must be a file path or a postgresql:// URL, got {database!r}"
        )
    if "://" in database:
        return database  # a URL: open_audit_log checks its kind
    return (here / database).resolve()


def run_audit(args: argparse.Namespace) -> int:
    """List records, or verify the chain; return 1 if it is broken."""
    from genofed.node.audit import open_audit_log

    database = audit_database(args.config)
    if args.verify and (args.since is not None or args.limit is not None):
        raise InputError("--verify checks the whole chain; --since and --limit select records")
    if isinstance(database, Path) and not database.exists():
        raise InputError(
            f"no audit log at {database}: the node has recorded no request yet, or "
            f"[audit] database in {args.config} names another database"
        )
    with open_audit_log(database) as log:
        if args.verify:
            result = log.verify()
            if args.format == "json":
                print(json.dumps(result.to_json(), indent=2))
            else:
                print(format_verification(result))
            return 0 if result.ok else 1
        records = log.records(since=args.since, limit=args.limit)
        if args.format == "json":
            for record in records:
                print(json.dumps(record.to_json()))
        elif records:
            print(format_records(records))
        else:
            since = f" since {args.since.isoformat()}" if args.since else ""
            print(f"no audit records{since} in {log.database}")
    return 0


def format_verification(result: AuditVerification) -> str:
    """Format what verifying an audit log found."""
    if result.ok:
        return (
            f"audit log {result.database}: {result.records_checked:,} records, hash chain "
            f"intact\nlast hash: {result.last_hash}"
        )
    return (
        f"audit log {result.database}: hash chain BROKEN at record {result.first_broken_id}: "
        f"{result.reason}\n{result.records_checked:,} records before it are intact "
        f"(last intact hash: {result.last_hash})"
    )


def format_records(records: list[AuditRecord]) -> str:
    """Format records as a table, one per line, the reason last."""
    header = (
        "id", "time (UTC)", "user", "dataset", "computation", "decision", "bytes",
        "params", "request", "job", "reason",
    )  # fmt: skip
    rows = [
        (
            str(r.id),
            r.time.strftime("%Y-%m-%d %H:%M:%S"),
            r.user,
            r.dataset,
            r.computation,
            r.decision,
            f"{r.bytes_returned:,}",
            r.parameters_sha256[:12],
            r.request_id or "-",
            r.job_id or "-",
            r.reason,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    right = {0, 6}  # numbers

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        return "  ".join([*cells, row[-1]]).rstrip()

    return "\n".join([line(header), *map(line, rows)])
