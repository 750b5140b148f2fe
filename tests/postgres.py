"""A throwaway PostgreSQL server for tests: its own cluster in a temporary directory.

The server listens on a free port on 127.0.0.1 and on a unix socket inside the
temporary directory. Its superuser ``postgres`` connects over that socket
without a password; tests connect as a password-authenticated user over TCP,
as a node would. PostgreSQL refuses to run as root, so under root the cluster
belongs to the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg

INSTALL_HINT = "PostgreSQL is not installed: run `make test`, which installs it"


class PostgresMissing(Exception):
    """PostgreSQL's server programs, or the user to run them as, are not there."""


def server_programs() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0],
    )
    if not versions or not (versions[-1] / "initdb").exists():
        raise PostgresMissing(f"{INSTALL_HINT} (no initdb or pg_ctl found)")
    return versions[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """A running cluster; :meth:`stop` shuts it down and removes its files."""

    root: Path
    programs: Path
    port: int
    password: str
    user: str = "genofed"
    _as_owner: list[str] = field(default_factory=list)
    _databases: count[int] = field(default_factory=lambda: count(1))

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str = "genofed") -> str:
        """A URL to ``database`` as the password-authenticated test user."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the unix socket, in autocommit mode."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        )

    def create_database(self) -> str:
        """Create a fresh database owned by the test user and return its URL."""
        name = f"test_{next(self._databases)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        return self.url(name)

    def run(self, *command: str | Path) -> subprocess.CompletedProcess[str]:
        """Run a server program as the cluster's owner; fail with its output."""
        args = [*self._as_owner, *map(str, command)]
        completed = subprocess.run(args, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}"
            )
        return completed

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the cluster's files."""
        try:
            self.run(self.programs / "pg_ctl", "-D", self.root / "data", "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _owner_prefix() -> tuple[list[str], int | None, int | None]:
    """How to run a program as the cluster's owner, and that owner's uid and gid."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(f"{INSTALL_HINT} (no 'postgres' system user)") from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"], owner.pw_uid, owner.pw_gid
    return ["su", "postgres", "-s", "/bin/sh", "-c", '"$0" "$@"'], owner.pw_uid, owner.pw_gid


def start_server() -> PostgresServer:
    """Create a cluster in a new temporary directory and start it.

    Raises
    ------
    PostgresMissing
        If PostgreSQL is not installed.
    """
    programs = server_programs()
    prefix, uid, gid = _owner_prefix()
    root = Path(tempfile.mkdtemp(prefix="genofed-postgres-"))
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    server = PostgresServer(
        root, programs, _free_port(), secrets.token_urlsafe(16), _as_owner=prefix
    )
    try:
        server.run("mkdir", server.socket_dir)
        server.run(
            programs / "initdb",
            "-D", root / "data",
            "--username=postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.socket_dir} "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
        )
        server.run(
            programs / "pg_ctl", "-D", root / "data", "-l", root / "server.log",
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
    except RuntimeError as exc:
        log = root / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"{exc}\n{detail}") from None
    try:
        with server.admin() as conn:
            conn.execute(
                f"CREATE ROLE \"{server.user}\" LOGIN CREATEDB PASSWORD '{server.password}'"
            )
            conn.execute(f'CREATE DATABASE "genofed" OWNER "{server.user}"')
    except BaseException:
        server.stop()
        raise
    return server
