"""The node's audit log, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genofed.cli.audit import add_audit_command, audit_database
from genofed.errors import InputError, NodeError
from genofed.node.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    PostgresAuditLog,
    SqliteAuditLog,
    open_audit_log,
    parameters_hash,
)
from tests.postgres import PostgresServer

BACKENDS = ("sqlite", "postgresql")


@dataclass
class Backend:
    """One database behind the audit log, and raw SQL on it as its administrator has."""

    name: str
    database: str | Path

    def open(self, clock: Callable[[], datetime] | None = None) -> AuditLog:
        if self.name == "sqlite":
            return SqliteAuditLog(self.database, clock=clock)
        return PostgresAuditLog(str(self.database), clock=clock)

    @property
    def error(self) -> type[Exception]:
        return sqlite3.DatabaseError if self.name == "sqlite" else psycopg.DatabaseError

    def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements in autocommit mode; return the last one's rows."""
        rows: list[tuple[Any, ...]] = []
        if self.name == "sqlite":
            db = sqlite3.connect(self.database, isolation_level=None)
            try:
                for statement in statements:
                    rows = db.execute(statement).fetchall()
            finally:
                db.close()
            return rows
        with psycopg.connect(str(self.database), autocommit=True) as conn:
            for statement in statements:
                cursor = conn.execute(statement)  # type: ignore[arg-type]
                rows = cursor.fetchall() if cursor.description else []
        return rows

    def drop_trigger(self, name: str) -> None:
        """What an attacker with the database's password does first."""
        on = "" if self.name == "sqlite" else " ON audit_records"
        self.sql(f"DROP TRIGGER {name}{on}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "audit.sqlite3")
    return Backend("postgresql", request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def log(backend: Backend) -> Iterator[AuditLog]:
    with backend.open() as opened:
        yield opened


def event(n: int = 0, **fields: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "user": f"user{n % 3}@example.org",
        "dataset": "genofed:EE",
        "computation": "linear-gwas/2",
        "parameters": {"phenotype": "ldl", "covariates": ["age", "sex"], "n": n},
        "decision": "allowed",
        "reason": f"event {n}",
        "bytes_returned": 1000 + n,
        "request_id": f"req-{n}",
        "job_id": f"job-{n}",
    }
    return AuditEvent(**{**values, **fields})


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(event(i))


def test_audit_log__appends_and_reads_back_records(log: AuditLog) -> None:
    before = datetime.now(UTC)
    first = log.append(event(1))
    second = log.append(event(2, user=None, decision="refused", reason="rule min_cohort"))
    info = log.append(event(3, computation="GET /info", parameters={}, job_id=None))
    assert log.records() == [first, second, info]
    assert [r.id for r in (first, second, info)] == [1, 2, 3]
    assert first.previous_hash == GENESIS_HASH
    assert second.previous_hash == first.hash
    assert info.previous_hash == second.hash
    assert first.time >= before
    assert first.time.tzinfo is UTC
    assert second.user == "anonymous"
    assert (second.decision, second.reason) == ("refused", "rule min_cohort")
    assert (first.dataset, first.computation, first.bytes_returned) == (
        "genofed:EE",
        "linear-gwas/2",
        1001,
    )
    assert (first.request_id, first.job_id, info.job_id) == ("req-1", "job-1", None)
    assert info.parameters_sha256 == hashlib.sha256(b"{}").hexdigest()


def test_audit_log__reopened_log_continues_the_chain(backend: Backend) -> None:
    with backend.open() as first:
        fill(first, 3)
    with backend.open() as again:
        record = again.append(event(3))
        assert record.id == 4
        assert again.verify().ok


def test_audit_log__intact_chain_verifies(log: AuditLog) -> None:
    empty = log.verify()
    assert (empty.ok, empty.records_checked, empty.last_hash) == (True, 0, GENESIS_HASH)
    fill(log, 25)
    result = log.verify()
    assert result.ok
    assert result.records_checked == 25
    assert (result.first_broken_id, result.reason) == (None, None)
    assert result.last_hash == log.records()[-1].hash


def test_audit_log__edited_record_is_detected(backend: Backend, log: AuditLog) -> None:
    fill(log, 10)
    backend.drop_trigger("audit_records_no_update")
    backend.sql("UPDATE audit_records SET decision = 'refused', reason = 'x' WHERE id = 4")
    result = log.verify()
    assert not result.ok
    assert result.first_broken_id == 4
    assert result.records_checked == 3
    assert result.reason is not None
    assert result.reason.startswith("edited: record 4's content no longer matches its hash")
    assert result.last_hash == log.records()[2].hash


def test_audit_log__edited_time_is_detected(backend: Backend, log: AuditLog) -> None:
    fill(log, 5)
    backend.drop_trigger("audit_records_no_update")
    later = "'2031-01-01T00:00:00.000000Z'" if backend.name == "sqlite" else "now()"
    backend.sql(f"UPDATE audit_records SET recorded_at = {later} WHERE id = 2")
    result = log.verify()
    assert (result.ok, result.first_broken_id) == (False, 2)
    assert result.reason is not None
    assert result.reason.startswith("edited")


def test_audit_log__deleted_middle_record_is_detected(backend: Backend, log: AuditLog) -> None:
    fill(log, 10)
    backend.drop_trigger("audit_records_no_delete")
    backend.sql("DELETE FROM audit_records WHERE id = 5")
    result = log.verify()
    assert (result.ok, result.first_broken_id, result.records_checked) == (False, 5, 4)
    assert result.reason == "deleted: record 5 is missing (record 6 follows record 4)"


def test_audit_log__deleted_last_records_are_detected(backend: Backend, log: AuditLog) -> None:
    fill(log, 10)
    backend.drop_trigger("audit_records_no_delete")
    backend.sql("DELETE FROM audit_records WHERE id >= 9")
    result = log.verify()
    assert (result.ok, result.first_broken_id, result.records_checked) == (False, 9, 8)
    assert result.reason is not None
    assert result.reason.startswith("deleted: records 9-10 are missing at the end")


def test_audit_log__record_inserted_before_the_chain_is_detected(
    backend: Backend, log: AuditLog
) -> None:
    fill(log, 3)
    first = log.records()[0]
    forged = replace(first, id=0, reason="forged", previous_hash="f" * 64)
    backend.drop_trigger("audit_records_extend_head")
    if backend.name == "sqlite":  # where moving the head is a trigger of its own
        backend.drop_trigger("audit_records_advance_head")
    backend.sql(
        "INSERT INTO audit_records SELECT 0, recorded_at, username, dataset, computation, "
        "parameters_sha256, decision, 'forged', bytes_returned, request_id, job_id, "
        f"'{forged.previous_hash}', '{forged.computed_hash()}' FROM audit_records WHERE id = 1"
    )
    assert [r.id for r in log.records()] == [0, 1, 2, 3]
    result = log.verify()
    assert (result.ok, result.first_broken_id, result.records_checked) == (False, 0, 0)
    assert result.reason == "inserted: record 0 stands before record 1, outside the chain"


def test_sqlite_audit_log__unreadable_value_is_reported_as_an_edit(tmp_path: Path) -> None:
    backend = Backend("sqlite", tmp_path / "audit.sqlite3")
    with backend.open() as log:
        fill(log, 3)
        backend.drop_trigger("audit_records_no_update")
        backend.sql("UPDATE audit_records SET bytes_returned = 'many' WHERE id = 2")
        result = log.verify()
        assert (result.ok, result.first_broken_id) == (False, 2)
        assert result.reason == "edited: record 2: its bytes_returned is 'many', not a whole number"
        with pytest.raises(NodeError, match=r"record 2 is unreadable .*; run verify"):
            log.records()


def test_audit_log__reordered_records_are_detected(backend: Backend, log: AuditLog) -> None:
    fill(log, 10)
    backend.drop_trigger("audit_records_no_update")
    backend.sql(
        "UPDATE audit_records SET id = -6 WHERE id = 6",
        "UPDATE audit_records SET id = 6 WHERE id = 7",
        "UPDATE audit_records SET id = 7 WHERE id = -6",
    )
    result = log.verify()
    assert (result.ok, result.first_broken_id) == (False, 6)
    assert result.reason == "reordered: record 6 was written as record 7"


def test_audit_log__rewritten_record_with_recomputed_hash_is_detected(
    backend: Backend, log: AuditLog
) -> None:
    fill(log, 6)
    target = log.records()[2]
    forged_hash = replace(target, decision="refused", reason="hidden").computed_hash()
    backend.drop_trigger("audit_records_no_update")
    backend.sql(
        "UPDATE audit_records SET decision = 'refused', reason = 'hidden', "
        f"hash = '{forged_hash}' WHERE id = 3"
    )
    result = log.verify()
    assert (result.ok, result.first_broken_id) == (False, 3)
    assert result.reason is not None
    assert result.reason.startswith("rewritten: record 3 is not the record that record 4")


def test_audit_log__update_and_delete_through_sql_are_refused(
    backend: Backend, log: AuditLog
) -> None:
    fill(log, 3)
    refused = [
        "UPDATE audit_records SET reason = 'nothing happened' WHERE id = 2",
        "DELETE FROM audit_records WHERE id = 3",
        "DELETE FROM audit_records",
        "UPDATE audit_head SET last_id = 2",
        "DELETE FROM audit_head",
        "INSERT INTO audit_records SELECT id + 10, recorded_at, username, dataset, computation, "
        "parameters_sha256, decision, reason, bytes_returned, request_id, job_id, "
        "hash || 'x', hash || 'y' FROM audit_records WHERE id = 3",
    ]
    if backend.name == "postgresql":
        refused += ["TRUNCATE audit_records", "TRUNCATE audit_head"]
    for statement in refused:
        with pytest.raises(backend.error, match=r"append-only|head"):
            backend.sql(statement)
    result = log.verify()
    assert (result.ok, result.records_checked) == (True, 3)


@pytest.mark.parametrize("connections", ["shared", "one-per-thread"])
def test_audit_log__concurrent_appends_keep_one_chain(
    backend: Backend, log: AuditLog, connections: str
) -> None:
    threads, per_thread = 8, 50
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(t: int) -> None:
        own = backend.open() if connections == "one-per-thread" else log
        try:
            start.wait()
            for i in range(per_thread):
                own.append(event(i, reason=f"thread {t} record {i}"))
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            if own is not log:
                own.close()

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    result = log.verify()
    assert (result.ok, result.records_checked) == (True, threads * per_thread)
    records = log.records()
    assert [r.id for r in records] == list(range(1, threads * per_thread + 1))
    assert {r.reason for r in records} == {
        f"thread {t} record {i}" for t in range(threads) for i in range(per_thread)
    }
    for t in range(threads):  # each thread's own records stay in its order
        mine = [r.reason for r in records if r.reason.startswith(f"thread {t} ")]
        assert mine == [f"thread {t} record {i}" for i in range(per_thread)]


def test_audit_log__since_and_limit_select_records(backend: Backend) -> None:
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    ticks = iter(start + timedelta(hours=h) for h in range(10))
    with backend.open(clock=lambda: next(ticks)) as log:
        fill(log, 10)
        assert [r.id for r in log.records(since=start + timedelta(hours=7))] == [8, 9, 10]
        naive = datetime(2026, 11, 1, 19, 0)  # taken as UTC
        assert [r.id for r in log.records(since=naive)] == [8, 9, 10]
        elsewhere = datetime(2026, 11, 1, 22, 0, tzinfo=timezone(timedelta(hours=2)))
        assert [r.id for r in log.records(since=elsewhere)] == [9, 10]
        assert [r.id for r in log.records(limit=3)] == [8, 9, 10]
        assert [r.id for r in log.records(since=start + timedelta(hours=2), limit=2)] == [9, 10]
        assert log.records(since=start + timedelta(days=1)) == []
        assert log.records(limit=0) == []
        assert log.records()[3].time == start + timedelta(hours=3)
        with pytest.raises(InputError, match="limit must be a count >= 0, got -1"):
            log.records(limit=-1)


def test_audit_log__parameters_are_stored_only_as_a_hash(backend: Backend, log: AuditLog) -> None:
    secret = "covariate-marker-7f3a91"
    parameters = {"phenotype": "ldl", "covariates": [secret], "min_maf": 0.01}
    record = log.append(event(1, parameters=parameters))
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":")).encode()
    assert record.parameters_sha256 == hashlib.sha256(canonical).hexdigest()
    rows = backend.sql("SELECT * FROM audit_records")
    assert len(rows) == 1
    assert secret not in repr(rows)
    assert record.parameters_sha256 in repr(rows)
    if backend.name == "sqlite":
        log.close()
        path = Path(backend.database)
        for file in [path, *path.parent.glob(f"{path.name}-*")]:
            assert secret.encode() not in file.read_bytes()


@given(st.dictionaries(st.text(), st.integers() | st.text() | st.booleans(), max_size=8))
def test_parameters_hash__ignores_key_order(parameters: dict[str, Any]) -> None:
    backwards = dict(reversed(parameters.items()))
    assert parameters_hash(backwards) == parameters_hash(parameters)


def test_parameters_hash__refuses_values_that_are_not_json() -> None:
    with pytest.raises(InputError, match=r"audit parameters must be JSON.*not recorded"):
        parameters_hash({"path": Path("x")})
    with pytest.raises(InputError, match="audit parameters must be JSON"):
        parameters_hash({"maf": float("nan")})


def test_audit_event__invalid_fields_are_refused() -> None:
    with pytest.raises(InputError, match="decision must be 'allowed' or 'refused', got 'maybe'"):
        event(decision="maybe")
    with pytest.raises(InputError, match="a refusal needs a reason"):
        event(decision="refused", reason=" ")
    with pytest.raises(InputError, match="bytes_returned must be a count >= 0, got -1"):
        event(bytes_returned=-1)
    with pytest.raises(InputError, match="dataset must not be empty"):
        event(dataset="")
    with pytest.raises(InputError, match="user contains a NUL character"):
        event(user="a\x00b")


def test_audit_log__newer_schema_is_left_untouched(backend: Backend) -> None:
    with backend.open() as log:
        fill(log, 1)
    backend.sql("UPDATE audit_meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(InputError, match="has schema version 2; this genofed reads version 1"):
        backend.open()


def test_open_audit_log__chooses_the_backend_by_the_database(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    with open_audit_log(tmp_path / "a.sqlite3") as by_path:
        assert isinstance(by_path, SqliteAuditLog)
    with open_audit_log(str(tmp_path / "b.sqlite3")) as by_text:
        assert isinstance(by_text, SqliteAuditLog)
    with open_audit_log(fresh_postgres_url) as by_url:
        assert isinstance(by_url, PostgresAuditLog)
        assert "***" in by_url.database
    short = fresh_postgres_url.replace("postgresql://", "postgres://")
    with open_audit_log(short) as by_short_url:
        assert isinstance(by_short_url, PostgresAuditLog)


def test_open_audit_log__bad_databases_are_named_without_their_password(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"mysql:// is not supported") as unsupported:
        open_audit_log("mysql://node:hunter2@db.example.org/audit")
    assert "hunter2" not in str(unsupported.value)
    assert "node:***@db.example.org" in str(unsupported.value)
    with pytest.raises(InputError, match="not a valid PostgreSQL URL") as malformed:
        open_audit_log("postgresql://node:hunter2@db.example.org/audit?nonsense=1")
    assert "hunter2" not in str(malformed.value)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://node:hunter2@127.0.0.1:{port}/audit?password=hunter2"
    with pytest.raises(NodeError, match="cannot connect to audit database") as unreachable:
        open_audit_log(url)
    assert "hunter2" not in str(unreachable.value)
    with pytest.raises(InputError, match=r"directory .*missing.* does not exist"):
        open_audit_log(tmp_path / "missing" / "audit.sqlite3")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match=r"cannot open audit database .*garbage.sqlite3"):
        open_audit_log(garbage)
    with pytest.raises(InputError, match="the audit database is empty"):
        open_audit_log(" ")


def test_postgres_audit_log__reconnects_after_losing_its_connection(
    postgres_server: PostgresServer, fresh_postgres_url: str
) -> None:
    with open_audit_log(fresh_postgres_url) as log:
        fill(log, 2)
        with postgres_server.admin() as admin:
            (killed,) = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'genofed-audit'"
            ).fetchone() or (0,)
        assert killed == 1
        assert log.append(event(2)).id == 3
        assert log.verify().ok


def test_audit_log__closed_log_refuses_appends(backend: Backend) -> None:
    log = backend.open()
    log.close()
    log.close()
    with pytest.raises(NodeError, match="is closed"):
        log.append(event())


# --------------------------------------------------------------------------- CLI


def run_cli(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="genofed node")
    add_audit_command(parser.add_subparsers(dest="action", required=True))
    args = parser.parse_args(["audit", *map(str, argv)])
    code: int = args.run(args)
    return code


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    (tmp_path / "node.toml").write_text('[node]\nname = "EE"\ndataset_id = "genofed:EE"\n')
    return tmp_path


def test_audit_cli__lists_records_as_a_table_and_as_json(
    node_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_audit_log(node_dir / "audit.sqlite3") as log:
        fill(log, 4)
    assert run_cli(node_dir / "node.toml", "--limit", "2") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["id", "time", "(UTC)", "user"]
    assert [row.split()[0] for row in rows] == ["3", "4"]
    assert "linear-gwas/2" in rows[0]
    assert rows[0].endswith("event 2")
    assert run_cli(node_dir / "node.toml", "--format", "json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3, 4]
    assert lines[1]["previous_hash"] == lines[0]["hash"]
    assert run_cli(node_dir / "node.toml", "--since", "2999-01-01T00:00") == 0
    assert capsys.readouterr().out.startswith("no audit records since 2999-01-01T00:00:00+00:00")


def test_audit_cli__verify_exits_1_naming_the_broken_record(
    node_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend("sqlite", node_dir / "audit.sqlite3")
    with backend.open() as log:
        fill(log, 6)
    assert run_cli(node_dir / "node.toml", "--verify") == 0
    assert "6 records, hash chain intact" in capsys.readouterr().out
    backend.drop_trigger("audit_records_no_delete")
    backend.sql("DELETE FROM audit_records WHERE id = 2")
    assert run_cli(node_dir / "node.toml", "--verify") == 1
    assert "hash chain BROKEN at record 2: deleted: record 2 is missing" in capsys.readouterr().out
    assert run_cli(node_dir / "node.toml", "--verify", "--format", "json") == 1
    result = json.loads(capsys.readouterr().out)
    assert (result["ok"], result["first_broken_id"], result["records_checked"]) == (False, 2, 1)


def test_audit_cli__finds_the_database_in_node_toml(
    node_dir: Path, fresh_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = node_dir / "node.toml"
    assert audit_database(config) == node_dir.resolve() / "audit.sqlite3"
    config.write_text('[node]\nname = "EE"\nstate_dir = "state"\n')
    assert audit_database(config) == node_dir.resolve() / "state" / "audit.sqlite3"
    config.write_text('[audit]\ndatabase = "logs/audit.db"\n')
    assert audit_database(config) == node_dir.resolve() / "logs" / "audit.db"
    with pytest.raises(InputError, match=r"no audit log at .*audit.db: the node has recorded no"):
        run_cli(config)
    config.write_text(f'[audit]\ndatabase = "{fresh_postgres_url}"\n')
    assert audit_database(config) == fresh_postgres_url
    with open_audit_log(fresh_postgres_url) as log:
        fill(log, 2)
    assert run_cli(config, "--verify") == 0
    out = capsys.readouterr().out
    assert "2 records, hash chain intact" in out
    assert fresh_postgres_url.split(":")[2].split("@")[0] not in out  # the password
    config.write_text("[audit]\ndatabase = 5\n")
    with pytest.raises(InputError, match=r"audit.database must be a file path or a postgresql"):
        audit_database(config)


def test_audit_cli__verify_does_not_take_since_or_limit(node_dir: Path) -> None:
    with pytest.raises(InputError, match="--verify checks the whole chain"):
        run_cli(node_dir / "node.toml", "--verify", "--limit", "3")
