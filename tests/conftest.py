"""Shared fixtures: a ledger in memory, in a real file and in PostgreSQL, a controllable clock, a table dump."""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

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


def new_schema_url() -> str:
    """A URL (with the test password) for a fresh, empty PostgreSQL ledger on the session's server: its own schema."""
    return f"{os.environ['LEDGER_TEST_PG_URL']}?schema=t{uuid.uuid4().hex[:16]}"


def drop_schemas(urls: Sequence[str]) -> None:
    """Drop the schemas of these PostgreSQL ledger URLs, so thousands of tests do not leave a catalogue of
    tens of thousands of tables that slows every later one (a schema still locked by a leaked ledger stays)."""
    import psycopg

    schemas = sorted({url.rpartition("schema=")[2] for url in urls})
    if not schemas:
        return
    try:
        with psycopg.connect(os.environ["LEDGER_TEST_PG_URL"], autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            for start in range(0, len(schemas), 20):
                names = ", ".join(f'"{name}"' for name in schemas[start:start + 20])
                try:
                    conn.execute(f"DROP SCHEMA IF EXISTS {names} CASCADE")
                except psycopg.errors.LockNotAvailable:
                    pass
    except psycopg.OperationalError:
        pass


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL ledger: its own schema in the test database (dropped after the test)."""
    url = new_schema_url()
    yield url
    drop_schemas([url])


@pytest.fixture(params=["memory", "file", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    """The contract suite runs against an in-memory, a file and a PostgreSQL ledger."""
    if request.param == "postgres":
        path = request.getfixturevalue("pg_url")
    else:
        path = ":memory:" if request.param == "memory" else str(tmp_path / "contract.db")
    with Ledger(path, clock=clock) as led:
        yield led


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend a test of the public API runs against: ``"sqlite"`` (a file) or ``"postgres"``."""
    return str(request.param)


@pytest.fixture
def new_ledger_path(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Callable[[], str]:
    """Makes where a new, empty ledger goes, on the test's backend, as often as called: a fresh file in
    ``tmp_path``, or a fresh schema on the session's PostgreSQL server. For a test that needs several
    ledgers (export from one, import into another), and for hypothesis tests (one ledger per example)."""
    if backend == "postgres":
        request.getfixturevalue("postgres")
    count = itertools.count(1)
    made: list[str] = []

    def make() -> str:
        if backend == "postgres":
            made.append(new_schema_url())
            return made[-1]
        return str(tmp_path / f"ledger-{next(count)}.db")

    request.addfinalizer(lambda: drop_schemas(made))
    return make


@pytest.fixture
def ledger_path(new_ledger_path: Callable[[], str]) -> str:
    """Where a new ledger goes, once per backend: a file, and a fresh PostgreSQL schema."""
    return new_ledger_path()


def is_postgres(led: Ledger) -> bool:
    """Whether the ledger is stored in PostgreSQL."""
    return led.path.startswith(("postgresql://", "postgres://"))


def _pg_target(led: Ledger) -> tuple[str, str]:
    """(a URL to connect to the ledger's database with, with the test password; the ledger's schema)."""
    from tests.pg_server import PASSWORD

    base, _, query = led.path.partition("?")
    schema = query.rpartition("schema=")[2]
    return base.replace("ledger@", f"ledger:{PASSWORD}@", 1), schema


def _pg_dump(led: Ledger) -> dict[str, list[tuple[object, ...]]]:
    import psycopg

    base, schema = _pg_target(led)
    with psycopg.connect(base) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'"
            " ORDER BY table_name", (schema,))]
        return {t: sorted(conn.execute(f'SELECT * FROM "{schema}"."{t}"').fetchall(), key=repr) for t in tables}


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
    if is_postgres(led):
        return _pg_dump(led)
    with committed(led) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables if not t.startswith("sqlite_")
        }


def check_search_index(led: Ledger) -> None:
    """Run FTS5's own ``integrity-check`` of the search index against the messages it indexes (raises if they differ).

    PostgreSQL has no such check: there the index (``messages_fts``, a ``tsvector`` per message) must hold
    exactly one row per message, each the ``tsvector`` of that message's text, as indexing it now would give.

    SQLite treats the check as a write statement, so it runs on a writable second connection (in autocommit; it
    changes nothing) to the ledger's file, or to a ``Ledger.backup`` copy of an in-memory ledger.
    """
    if is_postgres(led):
        _pg_check_search_index(led)
        return
    with contextlib.ExitStack() as stack:
        if _in_memory(led.path):
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "check.db"
            led.backup(path)
        else:
            path = Path(led.path)
        uri = path.absolute().as_uri() + "?mode=rw"  # never creates a missing file
        conn = stack.enter_context(contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None)))
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


class RawSQL:
    """A second connection to a ledger's database, the same to use on both backends: ``execute(sql, params)``
    with ``?`` placeholders, returning a cursor (``fetchone``, ``fetchall``); each statement commits at once.
    On PostgreSQL the ledger's schema is on the ``search_path``, so tables are named as on SQLite."""

    def __init__(self, conn: Any, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        if not self.postgres:
            return self.conn.execute(sql, params)
        if not params:
            return self.conn.execute(sql)
        return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), params)


@contextlib.contextmanager
def raw_sql(led: Ledger, *, write: bool = False) -> Iterator[RawSQL]:
    """A :class:`RawSQL` connection to what ``led`` has committed: read-only (``committed``) unless ``write``,
    which opens the SQLite file read-write in autocommit (for tampering tests; not for an in-memory ledger)."""
    if is_postgres(led):
        import psycopg

        base, schema = _pg_target(led)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            yield RawSQL(conn, True)
    elif write:
        assert not _in_memory(led.path), "an in-memory ledger has no file to write to"
        with contextlib.closing(sqlite3.connect(led.path, isolation_level=None)) as conn:
            yield RawSQL(conn, False)
    else:
        with committed(led) as conn:
            yield RawSQL(conn, False)


def _pg_check_search_index(led: Ledger) -> None:
    import json

    from projections.postgres import TEXT_CONFIG
    from projections.search import document

    with raw_sql(led) as raw:
        messages = raw.execute("SELECT position, content, content_exact FROM messages ORDER BY position").fetchall()
        index = dict(raw.execute("SELECT position, document::text FROM messages_fts").fetchall())
        assert sorted(index) == [position for position, _, _ in messages], "the index and the messages differ"
        texts = [document(json.loads(exact) if exact is not None else content) for _, content, exact in messages]
        expected = raw.execute(
            f"SELECT t.n, to_tsvector('{TEXT_CONFIG}', t.text)::text FROM unnest(?::text[]) WITH ORDINALITY AS t(text, n)",
            (texts,),
        ).fetchall() if texts else []
        by_n = dict(expected)
        for n, (position, _, _) in enumerate(messages, 1):
            assert index[position] == by_n[n], f"the index of the message at position {position} is stale"


@contextlib.contextmanager
def writer_lock_held(path: str) -> Iterator[None]:
    """Another connection holds the write lock of the ledger at ``path`` (a file or a URL) until the block ends.

    SQLite: ``BEGIN IMMEDIATE`` on the file. PostgreSQL: the schema's transaction-scoped advisory lock that
    every writer of the PostgreSQL backend takes first (see ``ledger.storage.postgres``).
    """
    if path.startswith(("postgresql://", "postgres://")):
        import psycopg

        base, _, query = path.partition("?")
        schema = query.rpartition("schema=")[2]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"session-ledger:{schema}",))
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
        return
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
