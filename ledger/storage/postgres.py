"""The PostgreSQL backend: one shared ledger for many processes on many machines (psycopg 3).

``Ledger("postgresql://user@host:5432/dbname")`` (or ``postgres://``) keeps
the ledger in a schema of its own (``ledger``, or ``?schema=NAME`` in the
URL), created on first open; nothing outside that schema is touched. The
password comes from the URL, ``PGPASSWORD`` or ``~/.pgpass``, as libpq finds
it, and never appears in an error, a log line or ``repr``.

Positions in commit order. Every write transaction first takes one
transaction-scoped advisory lock (``pg_advisory_xact_lock``) for the
schema, then reads the head and appends after it. Writers therefore commit
one at a time, in the order of their positions: a reader following the log
by position never skips an event that commits later with a lower position,
and positions stay gapless (a rolled-back writer never held a position
anyone saw). This is eventsourcing's ``LOCK TABLE ... IN EXCLUSIVE MODE``
answer, on a lock that blocks no reader. It also serialises appends, as the
hash chain does anyway: each row's hash needs the one before it.

Reads run in ``REPEATABLE READ`` transactions, so a read sees one moment.
Durability: ``"full"`` is ``synchronous_commit = on`` (a commit is flushed
to the server's WAL before it returns); ``"normal"`` is
``synchronous_commit = off``: a crash of the client loses nothing
acknowledged, a crash of the server may lose the last fraction of a second.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.pq import TransactionStatus
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # the extra is optional: say which one to install
    from ..errors import StorageError

    raise StorageError(
        "a postgresql:// ledger needs psycopg 3: pip install 'session-ledger[postgres]'"
    ) from exc

from ..chain import Row
from ..errors import (
    ConcurrencyError,
    InvalidInput,
    LedgerBusy,
    LedgerError,
    LedgerNotFound,
    StorageError,
    UnsupportedFormat,
)
from .base import CHANGES_WINDOW, EMPTY_HEAD, Head
from .sql import FORMAT_VERSION, SCHEMA, SNAPSHOTS_SCHEMA, UPGRADE_FORMAT, SQLStorage

T = TypeVar("T")

URL_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DEFAULT_POOL_SIZE = 4  # connections for reads of the read tables from many threads at once
MAX_POOL_SIZE = 100
# Errors that mean "try again": another transaction won a race the database resolved by failing this one.
_RETRY = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.LockNotAvailable)


def is_url(path: str) -> bool:
    """Whether ``path`` names a PostgreSQL ledger."""
    return path.startswith(URL_SCHEMES)


class Target(NamedTuple):
    """Where a PostgreSQL ledger is: what libpq connects with, the schema, the URL to show (no password),
    and how many pooled connections serve reads beside the ledger's own (``?pool_size=``)."""

    connect: str
    schema: str
    shown: str
    pool_size: int


def parse_url(url: str) -> Target:
    """The URL's parts; ``schema`` and ``pool_size`` are the ledger's parameters, the rest are libpq's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)
    schema = given.get("schema", "ledger")
    if _SCHEMA_NAME.fullmatch(schema) is None:
        raise InvalidInput(
            f"schema {schema!r} must be 1-63 lower-case letters, digits and _, starting with a letter", field="path"
        )
    pool = given.get("pool_size", str(DEFAULT_POOL_SIZE))
    if not pool.isdigit() or not 0 <= int(pool) <= MAX_POOL_SIZE:
        raise InvalidInput(
            f"pool_size must be a whole number from 0 (no pool) to {MAX_POOL_SIZE}; got {pool!r}",
            field="pool_size",
            limit=MAX_POOL_SIZE,
        )
    kept = urlencode([(key, value) for key, value in query if key not in ("schema", "pool_size")])
    connect = urlunsplit((parts.scheme, parts.netloc, parts.path, kept, parts.fragment))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    shown = urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, urlencode(query), ""))
    return Target(connect, schema, shown, int(pool))


class _Deferred:
    """The cursor of a write statement held back until the transaction's next read or its commit."""

    rowcount = -1  # DB-API: not known (yet)
    description = None

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


_DEFERRED = _Deferred()
# A plain INSERT of one row (no ON CONFLICT, no RETURNING), which COPY can do for many rows at once.
_COPYABLE = re.compile(r"INSERT INTO (\w+ \([\w, ]+\)) VALUES \((?:%s, )*%s\)")
_COPY_ROWS = 32
_WRITES = ("INSERT", "UPDATE", "DELETE")


class PgConnection:
    """The psycopg connection as projectors and queries use it: ``execute``/``executemany`` with ``?``
    placeholders (turned into ``%s`` once per statement text), rows as tuples.

    Inside a write transaction (``deferring``), an INSERT, UPDATE or DELETE whose result nobody reads is
    held back, with its parameters; the held statements go to the server together with the next read or
    with the COMMIT, in one pipeline: a run of one statement is sent as one prepared statement bound many
    times. A command's event row, its projection rows and the commit then cost one round trip, and a
    batch's rows cost what ``executemany`` costs. Nothing is lost by the wait: the writer lock is held,
    and a failure still surfaces before the commit and rolls the whole transaction back.
    """

    dialect = "postgres"

    def __init__(
        self,
        raw: psycopg.Connection[Any],
        *,
        held: list[tuple[str, list[Sequence[Any]]]] | None = None,
        converted: dict[str, str] | None = None,
        trips: list[int] | None = None,
    ) -> None:
        self.raw = raw
        self._sql: dict[str, str] = {} if converted is None else converted
        self._writes: dict[str, bool] = {}  # statement text -> whether it is a write that may be held back
        # Round trips to the server, shared with ``immediate()`` (one simple query, one pipeline, one COPY each).
        self.trips: list[int] = [0] if trips is None else trips
        # Writes held back, as (statement, its parameter rows) in order; shared with ``immediate()``,
        # which sends them before a statement of its own.
        self._held: list[tuple[str, list[Sequence[Any]]]] = [] if held is None else held
        self.deferring = False

    def immediate(self) -> PgConnection:
        """The same connection whose every statement runs when issued (it never holds writes back)."""
        return PgConnection(self.raw, held=self._held, converted=self._sql, trips=self.trips)

    def over(self, raw: psycopg.Connection[Any]) -> PgConnection:
        """Another psycopg connection (a pooled one), sharing this one's converted statements."""
        return PgConnection(raw, converted=self._sql)

    def _convert(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            # Outside quoted literals, ``?`` is a placeholder; ``%`` must be doubled for the driver.
            pieces = re.split(r"('(?:[^']|'')*')", sql)
            converted = "".join(
                piece.replace("%", "%%") if piece.startswith("'") else piece.replace("%", "%%").replace("?", "%s")
                for piece in pieces
            )
            self._sql[sql] = converted
        return converted

    def _hold(self, sql: str, rows: list[Sequence[Any]]) -> bool:
        """Hold a write back (inside a write transaction, unless it returns rows); False: run it now."""
        if not self.deferring:
            return False
        writes = self._writes.get(sql)
        if writes is None:  # classified once per statement text
            writes = self._writes[sql] = sql.lstrip()[:6].upper() in _WRITES and "RETURNING" not in sql.upper()
        if not writes:
            return False
        converted = self._convert(sql) if rows else sql  # without parameters the text is sent as it is
        held = self._held
        if held and held[-1][0] == converted and rows and held[-1][1]:
            held[-1][1].extend(rows)
        else:
            held.append((converted, rows))
        return True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns its cursor (``fetchone``, ``fetchall``, iteration, ``description``)."""
        if self._hold(sql, [params] if params else []):
            return _DEFERRED
        self.flush()
        self.trips[0] += 1
        if not params:
            return self.raw.execute(sql)  # without parameters the driver sends the text as it is
        return self.raw.execute(self._convert(sql), params)

    def executemany(self, sql: str, rows: Any) -> Any:
        """Run one statement for each parameter row."""
        listed = list(rows)
        if not listed or self._hold(sql, listed):
            return _DEFERRED  # no rows: nothing to send
        self.flush()
        self.trips[0] += 1  # psycopg pipelines the rows
        cursor = self.raw.cursor()
        cursor.executemany(self._convert(sql), listed)
        return cursor

    def flush(self, *then: str) -> None:
        """Send the held statements (and ``then``, e.g. a COMMIT) in order, in one pipeline; a long run of
        one plain INSERT goes by COPY between pipelines. A failure among them raises here."""
        if not self._held and not then:
            return
        held = self._held[:]
        self._held.clear()
        raw = self.raw
        queued: list[tuple[str, list[Sequence[Any]]]] = []
        for sql, rows in held:
            match = _COPYABLE.fullmatch(sql) if len(rows) >= _COPY_ROWS else None
            if match is None:
                queued.append((sql, rows))
                continue
            self._pipeline(queued)
            queued = []
            self.trips[0] += 1
            with raw.cursor().copy(f"COPY {match[1]} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        self._pipeline(queued, then)

    def _pipeline(self, queued: list[tuple[str, list[Sequence[Any]]]], then: Sequence[str] = ()) -> None:
        if not queued and not then:
            return
        raw = self.raw
        self.trips[0] += 1
        with raw.pipeline():
            cursor = raw.cursor()
            for sql, rows in queued:
                if not rows:
                    cursor.execute(sql)
                elif len(rows) == 1:
                    cursor.execute(sql, rows[0])
                else:
                    cursor.executemany(sql, rows)
            for statement in then:
                cursor.execute(statement)

    def drop_held(self) -> None:
        """Forget the held statements (the transaction is being rolled back)."""
        self._held.clear()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


def translate(exc: BaseException, doing: str, where: str) -> LedgerError | None:
    """The ``LedgerError`` for a psycopg error (None for anything else); never shows a password."""
    if not isinstance(exc, psycopg.Error):
        return None
    detail = (getattr(exc, "diag", None) and exc.diag.message_primary) or type(exc).__name__
    if isinstance(exc, _RETRY) or isinstance(exc, pg_errors.QueryCanceled):
        return LedgerBusy(f"{doing}: the ledger at {where} stayed locked by another writer past the busy timeout")
    if isinstance(exc, pg_errors.UniqueViolation) and "session_id" in (exc.diag.constraint_name or ""):
        return ConcurrencyError(f"{doing}: another writer appended to the session at the same time")
    if isinstance(exc, psycopg.OperationalError):
        return StorageError(f"{doing}: the ledger at {where} is not reachable: {_first_line(str(exc))}")
    return StorageError(f"{doing}: {detail}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "connection failed"


class PostgresStorage(SQLStorage):
    """A ledger in a schema of a PostgreSQL database, through one connection."""

    dialect = "postgres"
    types = {"int": "BIGINT", "blob": "BYTEA"}

    def __init__(self, url: str, *, durability: str = "normal", busy_timeout: float = 5.0, create: bool = True) -> None:
        super().__init__()
        self._may_create = create
        connect, self.schema, self.path, self.pool_size = parse_url(url)
        self.durability = durability
        self.busy_timeout = float(busy_timeout)
        self._lock_key = f"session-ledger:{self.schema}"
        head = "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        self._begin_lock = (
            f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(hashtext('{self._lock_key}'))"
        )
        self._begin_write = f"{self._begin_lock}; {head}"
        self._begin_read = f"BEGIN ISOLATION LEVEL REPEATABLE READ; {head}"
        self._channel = f"ledger_{self.schema}"
        self._connect = connect
        self._listener: psycopg.Connection[Any] | None = None
        self._listening = threading.Lock()
        self._pool: ConnectionPool[Any] | None = None
        self._pooling = threading.Lock()
        self._positions_exist = False
        self._changed: tuple[int, list[str]] = (-1, [])  # (since, the sessions appended to after it)
        self._twins = 0
        try:
            raw = psycopg.connect(connect, autocommit=True, connect_timeout=max(1, int(self.busy_timeout) or 1))
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the ledger at {self.path}: {_first_line(str(exc))}") from None
        self.connection = PgConnection(raw)
        self._plain: PgConnection = self.connection.immediate()
        try:
            with self.errors(f"opening {self.path}"):
                self._open()
        except BaseException:
            raw.close()
            raise

    def _open(self) -> None:
        execute = self.connection.execute
        execute(f"SET synchronous_commit = {'on' if self.durability == 'full' else 'off'}")
        execute(f"SET lock_timeout = {int(self.busy_timeout * 1000)}")
        tables = self._tables()
        if not self._may_create and "ledger_meta" not in tables:
            raise LedgerNotFound(f"no ledger at {self.path} (schema {self.schema!r} holds none)", actual=self.path)
        if not {"events", "ledger_meta", "snapshots"} <= tables:  # opening an existing ledger takes no lock
            self._locked(self._create)
        execute(f'SET search_path TO "{self.schema}"')
        self._check_format()

    def _create(self) -> None:
        execute = self.connection.execute
        tables = self._tables()
        if tables and "ledger_meta" not in tables:
            raise UnsupportedFormat(f"schema {self.schema!r} at {self.path} holds tables but is not a session-ledger")
        execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        execute(f'SET LOCAL search_path TO "{self.schema}"')
        if not tables:
            for ddl in SCHEMA:
                execute(ddl.format(**self.types))
            execute("INSERT INTO ledger_meta (key, value) VALUES (?, ?)", ("format", str(FORMAT_VERSION)))
        execute(SNAPSHOTS_SCHEMA.format(**self.types))

    def _locked(self, action: Callable[[], T]) -> T:
        """Run ``action`` in a transaction holding the schema's writer lock (creation races included)."""
        self._retry(lambda: self._begin(self._begin_lock))
        try:
            result = action()
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        return result

    def _begin(self, sql: str) -> list[list[Any]]:
        """Run a text that begins a transaction; returns the rows of each of its statements that has rows."""
        results: list[list[Any]] = []
        try:
            self.connection.trips[0] += 1
            cursor = self.connection.raw.execute(sql)
            while True:
                if cursor.description is not None:
                    results.append(cursor.fetchall())
                if not cursor.nextset():
                    break
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise
        return results

    def _retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying a serialization failure or deadlock until the busy timeout has passed."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return action()
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def _tables(self) -> set[str]:
        rows = self.connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (self.schema,)
        )
        return {name for (name,) in rows}

    def _check_format(self) -> None:
        row = self.connection.execute("SELECT value FROM ledger_meta WHERE key = 'format'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise UnsupportedFormat(f"schema {self.schema!r} at {self.path} has no readable ledger format version")
        found = int(row[0])
        if found > FORMAT_VERSION:
            raise UnsupportedFormat(
                f"the ledger at {self.path} was written by a newer session-ledger (format {found};"
                f" this one reads up to {FORMAT_VERSION})",
                limit=FORMAT_VERSION,
                actual=found,
            )
        if found < FORMAT_VERSION:  # an older ledger is marked with this format; its rows stay as they are
            self._locked(lambda: self.connection.execute(UPGRADE_FORMAT, (str(FORMAT_VERSION),)))

    def close(self) -> None:
        """Close the connections and the pool (idempotent)."""
        self.connection.close()
        with self._pooling:
            if self._pool is not None:
                self._pool.close()
        with self._listening:
            if self._listener is not None:
                self._listener.close()

    def commit(self) -> None:
        """Commit, with the held writes in the same round trip; a transaction that appended also notifies
        followers (delivered when the commit lands)."""
        connection = self.connection
        connection.deferring = False
        try:
            appended = self._head.position != self._head_at_begin.position
            connection.flush(*((f'NOTIFY "{self._channel}"', "COMMIT") if appended else ("COMMIT",)))
        except BaseException:
            connection.drop_held()
            raise

    @property
    def round_trips(self) -> int:
        """Round trips to the server so far on the ledger's connection (the pool's reads not counted)."""
        trips: int = self.connection.trips[0]
        return trips

    @property
    def plain_connection(self) -> PgConnection:
        """For a projector of your own: statements run at once (what the built-ins held back goes first)."""
        return self._plain

    def settle(self) -> None:
        """Send the held writes now (a command inside a batch ended): a failure among them is that command's."""
        self.connection.flush()

    def rollback(self) -> None:
        """Roll back the open transaction, if any, and forget its held writes and appends."""
        self.connection.deferring = False
        self.connection.drop_held()
        super().rollback()

    def pooled_read(self, doing: str) -> AbstractContextManager[PgConnection] | None:
        """A read of the read tables on a pooled connection (``psycopg_pool``, ``pool_size`` connections,
        opened as threads need them), so reads from many threads run at once and beside the ledger's own
        connection; None with ``pool_size=0``."""
        return None if self.pool_size == 0 else self._pooled(doing)

    @contextmanager
    def _pooled(self, doing: str) -> Iterator[PgConnection]:
        pool = self._reader_pool()
        try:
            with pool.connection(timeout=max(self.busy_timeout, 0.1)) as raw, self.errors(doing):
                raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    yield self.connection.over(raw)
                finally:
                    raw.execute("ROLLBACK" if raw.info.transaction_status == TransactionStatus.INERROR else "COMMIT")
        except PoolTimeout:
            raise LedgerBusy(
                f"{doing}: all {self.pool_size} pooled connections to {self.path} stayed busy past the busy timeout"
                f" ({self.busy_timeout:g} s)",
                limit=self.busy_timeout,
            ) from None

    def _reader_pool(self) -> ConnectionPool[Any]:
        with self._pooling:
            if self._pool is None:
                search_path = f'SET search_path TO "{self.schema}"'

                def configure(raw: psycopg.Connection[Any]) -> None:
                    raw.execute(search_path)

                self._pool = ConnectionPool(
                    self._connect,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"autocommit": True, "connect_timeout": max(1, int(self.busy_timeout) or 1)},
                    configure=configure,
                    name=f"session-ledger:{self.schema}",
                    open=True,
                )
            return self._pool

    def twin_path(self) -> str:
        """A new schema of the same database (dropped by ``destroy_twin``), without a pool."""
        self._twins += 1
        schema = f"{self.schema[:30]}_twin_{os.getpid()}_{self._twins}"
        joiner = "&" if "?" in self._connect else "?"
        return f"{self._connect}{joiner}schema={schema}&pool_size=0"

    def destroy_twin(self, path: str) -> None:
        """Drop the twin's schema, on a connection of its own (this one may be inside a transaction)."""
        schema = parse_url(path).schema
        with self.errors("verify"), psycopg.connect(self._connect, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def wait_for_appends(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a notification that another connection appended (LISTEN on a
        connection of its own, opened on first use); a hint: the caller re-reads by position anyway."""
        with self._listening:
            try:
                if self._listener is None:
                    self._listener = psycopg.connect(self._connect, autocommit=True)
                    self._listener.execute(f'LISTEN "{self._channel}"')
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    pass
            except psycopg.Error:  # no listener: fall back to the plain wait, and try again next time
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                time.sleep(timeout)

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn any psycopg error raised inside into the matching ``LedgerError``."""
        try:
            yield
        except psycopg.Error as exc:
            raise (translate(exc, doing, self.path) or StorageError(doing)) from None

    def translate(self, exc: BaseException, doing: str) -> LedgerError | None:
        """The ``LedgerError`` for a psycopg error, or None for anything else."""
        return translate(exc, doing, self.path)

    def busy(self, doing: str) -> LedgerError:
        """The error for a writer that waited past the busy timeout."""
        return LedgerBusy(
            f"{doing}: the ledger at {self.path} stayed locked by another writer for more than the busy timeout"
            f" ({self.busy_timeout:g} s); nothing was written",
            limit=self.busy_timeout,
        )

    # -- transactions -----------------------------------------------------

    def begin(self, *, write: bool) -> bool:
        """Start a transaction (a write one takes the schema's writer lock) and refresh the head;
        returns True when another connection appended since this one last looked.

        One round trip: BEGIN, the lock, the head and which sessions were appended to since this
        connection last looked (``sessions_after``) go as one simple query (the lock key is a literal
        built from the checked schema name, the positions are integers).
        """
        before = self._head.position
        changes = (
            f"; SELECT DISTINCT session_id FROM events WHERE position > {before}"
            f" AND position <= {before + CHANGES_WINDOW}"
        )
        sql = (self._begin_write if write else self._begin_read) + changes
        *_, head, changed = self._retry(lambda: self._begin(sql)) if write else self._begin(sql)
        self._head = Head(head[0][0], bytes(head[0][1]), head[0][2]) if head else EMPTY_HEAD
        self._head_at_begin = self._head
        self._changed = (before, [sid for (sid,) in changed])
        self.connection.deferring = write
        return self._head.position != before

    def sessions_after(self, position: int) -> list[str] | None:
        """The sessions with an event after ``position``: read with the begin when that is where this
        connection last looked (the usual case), else by a query of its own."""
        since, changed = self._changed
        if since == position and self._head.position - position <= CHANGES_WINDOW:
            return changed
        return super().sessions_after(position)

    def raw_rows(self, *, after: int, limit: int) -> list[Row]:
        """Stored rows as they are (PostgreSQL text is always valid UTF-8, so no bytes are needed)."""
        rows: list[Row] = self.connection.execute(
            "SELECT position, event_id, session_id, version, type, schema, recorded_at, data, hash"
            " FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after, limit),
        ).fetchall()
        return rows

    def projector_positions(self) -> dict[str, tuple[int, int]] | None:
        """name -> (version, position) of every projector, or None before the projections exist."""
        if not self._positions_exist:  # once created, the table stays: look it up only until then
            (found,) = self.connection.execute("SELECT to_regclass('projector_positions')").fetchone()
            if found is None:
                return None
            self._positions_exist = True
        rows = self.connection.execute("SELECT name, version, position FROM projector_positions").fetchall()
        return {name: (version, position) for name, version, position in rows}

    # -- maintenance ----------------------------------------------------------

    def truncate_wal(self) -> bool:
        """After a purge: VACUUM the tables that held the purged payloads, so their old row versions are
        marked free (PostgreSQL's own WAL, archives and base backups are beyond the ledger's reach)."""
        try:
            for table in sorted(self._tables()):
                self.connection.execute(f'VACUUM "{self.schema}"."{table}"')
        except psycopg.Error:
            return False
        return True
