"""Shared fixtures: a ledger in memory, in a real file and in PostgreSQL, a controllable clock, a table dump."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ledger import Ledger
from tests.pg_server import PostgresServer


class Clock:
    """A clock that moves only when told to (one millisecond per reading by default)."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc), step_ms: int = 1) -> None:
        self.now = start
        self.step = timedelta(milliseconds=step_ms)

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's own PostgreSQL server (initdb + pg_ctl in a temporary directory), stopped at the end."""
    server = PostgresServer()
    os.environ["LEDGER_TEST_PG_URL"] = server.create("ledger_tests")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL ledger: its own schema in the test database."""
    return f"{os.environ['LEDGER_TEST_PG_URL']}?schema=t{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=["memory", "file"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    """The contract suite runs against both an in-memory and a file ledger."""
    path = ":memory:" if request.param == "memory" else str(tmp_path / "contract.db")
    with Ledger(path, clock=clock) as led:
        yield led


def _in_memory(path: str) -> bool:
    """Whether no second connection can see the ledger's database (":memory:", a private temporary one)."""
    return path in ("", ":memory:") or path.startswith("file::memory:") or "mode=memory" in path


def _read_only(path: str | os.PathLike[str]) -> sqlite3.Connection:
    # mode=ro: a missing file is an error, never silently created empty (an empty dump would compare equal).
    return sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)


@contextlib.contextmanager
def committed(led: Ledger) -> Iterator[sqlite3.Connection]:
    """A read-only ``sqlite3`` connection to what ``led`` has committed, reached through public API only.

    A file ledger's file is opened a second time (WAL lets it be read while the ledger is open). An
    in-memory one, which no other connection can see, is first copied with the public online
    ``Ledger.backup`` (every table, as committed; refused inside a batch).
    """
    if not _in_memory(led.path):
        with contextlib.closing(_read_only(led.path)) as conn:
            yield conn
        return
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "dump.db"
        led.backup(copy)
        with contextlib.closing(_read_only(copy)) as conn:
            yield conn


def dump(led: Ledger) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, as committed, for asserting that nothing was written."""
    with committed(led) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables if not t.startswith("sqlite_")
        }


def check_search_index(led: Ledger) -> None:
    """Run FTS5's own ``integrity-check`` of the search index against the messages it indexes (raises if they differ).

    SQLite treats the check as a write statement, so it runs on a writable second connection (in autocommit; it
    changes nothing) to the ledger's file, or to a ``Ledger.backup`` copy of an in-memory ledger.
    """
    with contextlib.ExitStack() as stack:
        if _in_memory(led.path):
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "check.db"
            led.backup(path)
        else:
            path = Path(led.path)
        uri = path.absolute().as_uri() + "?mode=rw"  # never creates a missing file
        conn = stack.enter_context(contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None)))
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
