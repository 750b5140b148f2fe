"""Fixtures for the node's tests: a real PostgreSQL server for the audit log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import PostgresMissing, PostgresServer, start_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the test session. PostgreSQL is required."""
    try:
        server = start_server()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of the session's database, as a password-authenticated user over TCP."""
    return postgres_server.url()


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a new, empty database for one test."""
    return postgres_server.create_database()
