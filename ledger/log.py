"""The event log: one SQLite file in WAL mode, append-only, hash-chained.

This module owns the SQL of the ``events`` and ``ledger_meta`` tables and
translates every ``sqlite3`` error into a ``LedgerError``. It is not
thread-safe on its own: ``Ledger`` serialises access with a lock and frames
each command in one ``BEGIN IMMEDIATE`` transaction.

Durability (``durability=``):

* ``"normal"`` (default): WAL with ``synchronous=NORMAL``. A committed command
  survives a crash or kill of the process. After a power loss or OS crash the
  file is intact, but the last commits before it may be rolled back.
* ``"full"``: WAL with ``synchronous=FULL``: every commit is fsynced before it
  returns, so it also survives power loss, at the cost of one fsync per commit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import NamedTuple

from .chain import GENESIS, Row, link, payload_digest
from .errors import (
    ConcurrencyError,
    IntegrityError,
    InvalidInput,
    LedgerBusy,
    LedgerError,
    StorageError,
    UnsupportedFormat,
)
from .events import Event, RecordedEvent, decode_payload, encode_payload

FORMAT_VERSION = 1
APPLICATION_ID = 0x534C4447  # "SLDG" in the SQLite header marks a ledger file
DURABILITY = ("normal", "full")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        schema INTEGER NOT NULL,
        recorded_at TEXT NOT NULL,
        data TEXT NOT NULL,
        hash BLOB NOT NULL,
        UNIQUE (session_id, version)
    )""",
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

_COLUMNS = "position, event_id, session_id, version, type, schema, recorded_at, data, hash"


class Head(NamedTuple):
    """The last row of the log: where the next append goes and what it links to."""

    position: int
    hash: bytes
    recorded_at: str


_EMPTY = Head(0, GENESIS, "")


def format_time(moment: datetime) -> str:
    """An aware datetime as the stored UTC text: fixed width, so text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("the clock must return timezone-aware datetimes", field="clock")
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Stored UTC text back to an aware datetime."""
    return datetime.fromisoformat(text)


def translate(exc: sqlite3.Error, doing: str) -> LedgerError:
    """The ``LedgerError`` that says what a ``sqlite3`` error means to a user."""
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return LedgerBusy(f"{doing}: the ledger file stayed locked by another writer past the busy timeout")
    if isinstance(exc, sqlite3.IntegrityError) and "events.session_id, events.version" in message:
        return ConcurrencyError(f"{doing}: another writer appended to the session at the same time")
    if "malformed" in message or "not a database" in message:
        return IntegrityError(f"{doing}: the ledger file is damaged ({message})")
    return StorageError(f"{doing}: {message}")


@contextmanager
def sqlite_errors(doing: str) -> Iterator[None]:
    """Turn any ``sqlite3`` error raised inside into the matching ``LedgerError``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, doing) from exc


class EventLog:
    """The ``events`` table of one ledger file and the connection that reads and appends to it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "normal",
        busy_timeout: float = 5.0,
        extra_schema: Sequence[str] = (),
    ) -> None:
        if durability not in DURABILITY:
            raise InvalidInput(f"durability must be one of {', '.join(DURABILITY)}; got {durability!r}", field="durability")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or busy_timeout < 0:
            raise InvalidInput(f"busy_timeout must be a non-negative number of seconds; got {busy_timeout!r}", field="busy_timeout")
        self.path = os.fspath(path)
        self.durability = durability
        self._head = _EMPTY
        self._data_version: int | None = None
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open ledger file {self.path!r}: {exc}") from exc
        try:
            self._configure()
            self._ensure_schema(extra_schema)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise translate(exc, f"opening {self.path!r}") from exc
            raise UnsupportedFormat(f"{self.path!r} is not a ledger file: {exc}") from exc
        except LedgerError:
            self.conn.close()
            raise

    def _configure(self) -> None:
        if self.path != ":memory:" and not self.path.startswith("file::memory:"):
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={'FULL' if self.durability == 'full' else 'NORMAL'}")

    def _ensure_schema(self, extra_schema: Sequence[str]) -> None:
        tables = self._tables()
        if "ledger_meta" not in tables:
            if tables:
                raise UnsupportedFormat(f"{self.path!r} is an SQLite file but not a session-ledger file")
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables():  # another process may have created it while we waited
                    for ddl in SCHEMA:
                        self.conn.execute(ddl)
                    self.conn.execute("INSERT INTO ledger_meta (key, value) VALUES ('format', ?)", (str(FORMAT_VERSION),))
                    self.conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        self._check_format()
        for ddl in extra_schema:
            self.conn.execute(ddl)

    def _tables(self) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return {name for (name,) in rows}

    def _check_format(self) -> None:
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = 'format'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise UnsupportedFormat(f"{self.path!r} has no readable ledger format version")
        found = int(row[0])
        if found > FORMAT_VERSION:
            raise UnsupportedFormat(
                f"{self.path!r} was written by a newer session-ledger (format {found}; this one reads up to {FORMAT_VERSION})",
                limit=FORMAT_VERSION,
                actual=found,
            )
        if "events" not in self._tables():
            raise UnsupportedFormat(f"{self.path!r} has no events table")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self.conn.close()

    # -- transactions -----------------------------------------------------

    def begin(self, *, write: bool) -> None:
        """Start a transaction: ``BEGIN IMMEDIATE`` for writes, a deferred read snapshot otherwise."""
        self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def commit(self) -> None:
        """Commit the open transaction."""
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction; the cached head is reloaded next time."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._data_version = None

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection."""
        return self.conn.in_transaction

    def refresh(self) -> bool:
        """Inside a transaction: reload the head when another connection committed since we last looked.

        Returns True when it did, so callers can revalidate what they cached.
        """
        (data_version,) = self.conn.execute("PRAGMA data_version").fetchone()
        if data_version == self._data_version:
            return False
        self._data_version = data_version
        row = self.conn.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        self._head = Head(*row) if row else _EMPTY
        return True

    @property
    def head(self) -> Head:
        """The last row as of the last ``refresh`` or ``append``."""
        return self._head

    @head.setter
    def head(self, value: Head) -> None:
        self._head = value

    # -- appends ------------------------------------------------------------

    def append(self, session_id: str, version: int, event: Event, event_id: str, now: datetime) -> RecordedEvent:
        """Insert one event after the head (inside a write transaction) and return it as recorded.

        ``recorded_at`` never goes backwards: a clock behind the last row is
        clamped to it, so time order and log order agree.
        """
        head = self._head
        data = encode_payload(event)
        recorded_at = max(format_time(now), head.recorded_at)
        position = head.position + 1
        row_hash = link(
            head.hash, position, event_id, session_id, version, event.type, event.schema, recorded_at, payload_digest(data)
        )
        self.conn.execute(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (position, event_id, session_id, version, event.type, event.schema, recorded_at, data.decode(), row_hash),
        )
        self._head = Head(position, row_hash, recorded_at)
        return RecordedEvent(
            position=position,
            session_id=session_id,
            version=version,
            type=event.type,
            schema=event.schema,
            recorded_at=parse_time(recorded_at),
            event_id=event_id,
            payload=event,
            hash=row_hash.hex(),
        )

    # -- reads --------------------------------------------------------------

    def session_version(self, session_id: str) -> int | None:
        """The session's latest version, or None when it has no events."""
        (version,) = self.conn.execute("SELECT max(version) FROM events WHERE session_id = ?", (session_id,)).fetchone()
        return version  # type: ignore[no-any-return]

    def find_event(self, event_id: str) -> tuple[str, int, str] | None:
        """(session_id, version, type) of the event stored under ``event_id``, if any."""
        row = self.conn.execute("SELECT session_id, version, type FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    def read_session(
        self, session_id: str, *, after_version: int = 0, until_version: int | None = None, type_: str | None = None
    ) -> list[RecordedEvent]:
        """A session's events with ``after_version < version <= until_version``, in order."""
        sql = f"SELECT {_COLUMNS} FROM events WHERE session_id = ? AND version > ?"
        args: list[object] = [session_id, after_version]
        if until_version is not None:
            sql += " AND version <= ?"
            args.append(until_version)
        if type_ is not None:
            sql += " AND type = ?"
            args.append(type_)
        return [to_recorded(row) for row in self.conn.execute(sql + " ORDER BY version", args)]

    def read(self, *, after: int, limit: int, session_id: str | None = None) -> list[RecordedEvent]:
        """Up to ``limit`` events with position > ``after``, optionally of one session, in log order."""
        if session_id is None:
            cursor = self.conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
            )
        else:
            cursor = self.conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE session_id = ? AND position > ? ORDER BY version LIMIT ?",
                (session_id, after, limit),
            )
        return [to_recorded(row) for row in cursor]

    def raw_rows(self, *, after: int, limit: int) -> list[Row]:
        """Stored rows exactly as they are, for verification."""
        return self.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
        ).fetchall()

    def row_hash(self, position: int) -> bytes | None:
        """The stored hash at a position, or None when there is no such row."""
        row = self.conn.execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchone()
        return row[0] if row else None


def to_recorded(row: Row) -> RecordedEvent:
    """A stored row as a ``RecordedEvent`` with its payload decoded (and upcast)."""
    position, event_id, session_id, version, type_, schema, recorded_at, data, row_hash = row
    return RecordedEvent(
        position=position,
        session_id=session_id,
        version=version,
        type=type_,
        schema=schema,
        recorded_at=parse_time(recorded_at),
        event_id=event_id,
        payload=decode_payload(type_, schema, data),
        hash=row_hash.hex() if isinstance(row_hash, bytes) else str(row_hash),
    )
