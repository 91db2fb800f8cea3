"""The SQLite backend: one file in WAL mode, append-only, hash-chained.

All SQLite SQL of the ledger's own tables lives here (``events``,
``snapshots``, ``ledger_meta``, ``projector_positions``), and every
``sqlite3`` error is translated into a ``LedgerError``. It is not
thread-safe on its own: the engine serialises access with a lock and frames
each command in one ``BEGIN IMMEDIATE`` transaction.

Durability (``durability=``):

* ``"normal"`` (default): WAL with ``synchronous=NORMAL``. A committed command
  survives a crash or kill of the process. After a power loss or OS crash the
  file is intact, but the last commits before it may be rolled back.
* ``"full"``: WAL with ``synchronous=FULL``: every commit is fsynced before it
  returns, so it also survives power loss, at the cost of one fsync per commit.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from ..chain import Row, link, payload_digest
from ..errors import (
    ConcurrencyError,
    IntegrityError,
    LedgerBusy,
    LedgerError,
    StorageError,
    UnsupportedFormat,
)
from ..events import Event, RecordedEvent, decode_payload, encode_payload, read_redaction, redaction_marker
from ..session import Session
from ..snapshots import SNAPSHOT_FORMAT, SnapshotCandidate, encode_state
from ..times import format_time, parse_time
from ..validation import Progress
from .base import EMPTY_HEAD, Head, SnapshotRow, Storage

FORMAT_VERSION = 1
APPLICATION_ID = 0x534C4447  # "SLDG" in the SQLite header marks a ledger file

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

# Created on every open (older files may predate it); a cache, like the projections.
SNAPSHOTS_SCHEMA = """CREATE TABLE IF NOT EXISTS snapshots (
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    schema INTEGER NOT NULL,
    event_hash BLOB NOT NULL,
    state BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, version)
)"""

POSITIONS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS projector_positions ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL)"
)
_SNAPSHOT_COLUMNS = "session_id, version, position, schema, event_hash, state, created_at"

T = TypeVar("T")

_COLUMNS = "position, event_id, session_id, version, type, schema, recorded_at, data, hash"


def _is_busy(exc: sqlite3.Error) -> bool:
    message = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def translate(exc: sqlite3.Error, doing: str) -> LedgerError:
    """The ``LedgerError`` that says what a ``sqlite3`` error means to a user."""
    message = str(exc)
    if _is_busy(exc):
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


class SQLiteStorage(Storage):
    """A ledger in one SQLite file (or in memory, for ``":memory:"``), through one connection."""

    dialect = "sqlite"

    def __init__(self, path: str, *, durability: str = "normal", busy_timeout: float = 5.0) -> None:
        # The arguments were checked by ``validation.check_options``; this opens, creates or refuses the file.
        self.path = path
        self.durability = durability
        self.busy_timeout = float(busy_timeout)
        self._head = EMPTY_HEAD
        self._head_at_begin = EMPTY_HEAD
        self._data_version: int | None = None
        self._advance_sql: dict[int, str] = {}
        try:
            self.connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
        except (sqlite3.Error, ValueError, UnicodeError) as exc:
            raise StorageError(f"cannot open ledger file {self.path!r}: {exc}") from exc
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self.connection.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise translate(exc, f"opening {self.path!r}") from exc
            raise UnsupportedFormat(f"{self.path!r} is not a ledger file: {exc}") from exc
        except BaseException:
            self.connection.close()
            raise

    def _open(self) -> None:
        # Look before touching anything: a foreign file must be refused unchanged.
        tables = self._tables()
        if tables and "ledger_meta" not in tables:
            raise UnsupportedFormat(f"{self.path!r} is an SQLite file but not a session-ledger file")
        if self.path != ":memory:" and not self.path.startswith("file::memory:"):
            # journal_mode answers SQLITE_BUSY at once (no busy handler) while another opener switches it.
            if self._retry_busy(lambda: self.connection.execute("PRAGMA journal_mode").fetchone()[0]) != "wal":
                self._retry_busy(lambda: self.connection.execute("PRAGMA journal_mode=WAL").fetchone())
        self.connection.execute(f"PRAGMA synchronous={'FULL' if self.durability == 'full' else 'NORMAL'}")
        # An append writes several pages (the event and its read rows); checkpointing the WAL every
        # 4000 pages (16 MB) instead of SQLite's 1000 keeps the checkpoints off most commits.
        self.connection.execute("PRAGMA wal_autocheckpoint=4000")
        # Deleted content is overwritten with zeros, so a purge leaves no text in free pages.
        self.connection.execute("PRAGMA secure_delete=ON")
        if not tables:
            self._create()
        self._check_format()
        self.connection.execute(SNAPSHOTS_SCHEMA)

    def _create(self) -> None:
        self._retry_busy(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        try:
            if not self._tables():  # another process may have created it while we waited
                for ddl in SCHEMA:
                    self.connection.execute(ddl)
                self.connection.execute("INSERT INTO ledger_meta (key, value) VALUES ('format', ?)", (str(FORMAT_VERSION),))
                self.connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise

    def _retry_busy(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying an immediate SQLITE_BUSY until the busy timeout has passed."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.002)

    def _tables(self) -> set[str]:
        rows = self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return {name for (name,) in rows}

    def _check_format(self) -> None:
        row = self.connection.execute("SELECT value FROM ledger_meta WHERE key = 'format'").fetchone()
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
        self.connection.close()

    # Turns any ``sqlite3`` error raised inside into the matching ``LedgerError`` (no wrapper: it frames every read).
    errors = staticmethod(sqlite_errors)

    def translate(self, exc: BaseException, doing: str) -> LedgerError | None:
        """The ``LedgerError`` for a ``sqlite3`` error, or None for anything else."""
        return translate(exc, doing) if isinstance(exc, sqlite3.Error) else None

    def busy(self, doing: str) -> LedgerError:
        """The error for a writer that waited past the busy timeout."""
        return LedgerBusy(
            f"{doing}: {self.path!r} stayed locked by another writer for more than the busy timeout"
            f" ({self.busy_timeout:g} s); nothing was written",
            limit=self.busy_timeout,
        )

    # -- transactions -----------------------------------------------------

    def begin(self, *, write: bool) -> bool:
        """Start a transaction (``BEGIN IMMEDIATE`` for writes, a deferred read otherwise) and refresh the head.

        Returns True when another connection committed since this one last
        looked, so callers can revalidate what they cached. SQLITE_BUSY
        returned at once, without waiting (a WAL being recovered by another
        connection, for one), is retried until the busy timeout has passed.
        """
        if write:
            self._retry_busy(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        else:
            self.connection.execute("BEGIN")
        changed = self._refresh()
        self._head_at_begin = self._head
        return changed

    def commit(self) -> None:
        """Commit the open transaction."""
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction (if SQLite has not already) and forget its appends."""
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        self._head = self._head_at_begin

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection."""
        return self.connection.in_transaction

    def _refresh(self) -> bool:
        (data_version,) = self.connection.execute("PRAGMA data_version").fetchone()
        if data_version == self._data_version:
            return False
        self._data_version = data_version
        row = self.connection.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        self._head = Head(*row) if row else EMPTY_HEAD
        return True

    @property
    def head(self) -> Head:
        """The last row as of the last ``begin`` or ``append``."""
        return self._head

    # -- appends ------------------------------------------------------------

    def append(self, session_id: str, version: int, event: Event, event_id: str, now: datetime) -> RecordedEvent:
        """Insert one event after the head (inside a write transaction) and return it as recorded.

        ``recorded_at`` never goes backwards: a clock behind the last row is
        clamped to it, so time order and log order agree.
        """
        head = self._head
        data = encode_payload(event)
        now_text = format_time(now)
        recorded_at = now_text if now_text >= head.recorded_at else head.recorded_at
        position = head.position + 1
        row_hash = link(
            head.hash, position, event_id, session_id, version, event.type, event.schema, recorded_at, payload_digest(data)
        )
        self.connection.execute(
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
        (version,) = self.connection.execute("SELECT max(version) FROM events WHERE session_id = ?", (session_id,)).fetchone()
        return None if version is None else int(version)

    def find_event(self, event_id: str) -> tuple[str, int, str] | None:
        """(session_id, version, type) of the event stored under ``event_id``, if any."""
        row = self.connection.execute("SELECT session_id, version, type FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def iter_session(self, session_id: str, *, after_version: int = 0, until_version: int | None = None) -> Iterator[RecordedEvent]:
        """A session's events after ``after_version`` (up to ``until_version``), decoded one at a time,
        so a long history is folded without being held in memory."""
        sql = f"SELECT {_COLUMNS} FROM events WHERE session_id = ? AND version > ?"
        args: list[object] = [session_id, after_version]
        if until_version is not None:
            sql += " AND version <= ?"
            args.append(until_version)
        for row in self.connection.execute(sql + " ORDER BY version", args):
            yield to_recorded(row)

    def latest(self, session_id: str) -> tuple[int, str] | None:
        """(version, type) of the session's latest event, or None: one index lookup."""
        row = self.connection.execute(
            "SELECT version, type FROM events WHERE session_id = ? ORDER BY version DESC LIMIT 1", (session_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def read(self, *, after: int, limit: int, session_id: str | None = None) -> list[RecordedEvent]:
        """Up to ``limit`` events with position > ``after``, optionally of one session, in log order."""
        if session_id is None:
            cursor = self.connection.execute(
                f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
            )
        else:
            cursor = self.connection.execute(
                f"SELECT {_COLUMNS} FROM events WHERE session_id = ? AND position > ? ORDER BY version LIMIT ?",
                (session_id, after, limit),
            )
        return [to_recorded(row) for row in cursor]

    def raw_rows(self, *, after: int, limit: int) -> list[Row]:
        """Stored rows exactly as they are (text columns as bytes, so damaged text is reported, not raised)."""
        return self.connection.execute(
            "SELECT position, CAST(event_id AS BLOB), CAST(session_id AS BLOB), version, CAST(type AS BLOB),"
            " schema, CAST(recorded_at AS BLOB), CAST(data AS BLOB), hash"
            " FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after, limit),
        ).fetchall()

    def version_at(self, session_id: str, current: int, *, position: int | None = None, at: str | None = None) -> int:
        """The session's last version at or before a global position or a stored time (0: none yet).

        A binary search over the session's versions: positions and times only
        grow with versions, so this costs O(log n) index lookups, not a scan.
        """
        column, bound = ("position", position) if at is None else ("recorded_at", at)
        low, high = 0, current  # invariant: version ``low`` qualifies (0 stands for "before creation")
        while low < high:
            middle = (low + high + 1) // 2
            (value,) = self.connection.execute(
                f"SELECT {column} FROM events WHERE session_id = ? AND version = ?", (session_id, middle)
            ).fetchone()
            if value <= bound:
                low = middle
            else:
                high = middle - 1
        return low

    def position_at(self, at: str) -> int:
        """The last global position recorded at or before a stored time (0: none), by binary search."""
        low, high = 0, self._head.position
        while low < high:
            middle = (low + high + 1) // 2
            (value,) = self.connection.execute("SELECT recorded_at FROM events WHERE position = ?", (middle,)).fetchone()
            if value <= at:
                low = middle
            else:
                high = middle - 1
        return low

    def rows(self, *, after: int, until: int, limit: int) -> list[Row]:
        """Stored rows with ``after < position <= until``, as stored, for copying to another file."""
        return self.connection.execute(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (after, until, limit),
        ).fetchall()

    def insert_rows(self, rows: Sequence[Row]) -> None:
        """Insert rows exactly as another ledger stored them (inside a write transaction); the caller checks the chain."""
        if not rows:
            return
        self.connection.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        last = rows[-1]
        self._head = Head(last[0], last[8], last[6])

    def row_hash(self, position: int) -> bytes | None:
        """The stored hash at a position, or None when there is no such row."""
        row = self.connection.execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchone()
        return row[0] if row else None


    def event_hash(self, session_id: str, version: int) -> bytes | None:
        """The stored hash of a session's event at a version, or None."""
        row = self.connection.execute(
            "SELECT hash FROM events WHERE session_id = ? AND version = ?", (session_id, version)
        ).fetchone()
        return row[0] if row else None

    def session_ids(self, *, until: int) -> list[str]:
        """Every session with an event at or before position ``until``, sorted."""
        rows = self.connection.execute(
            "SELECT DISTINCT session_id FROM events WHERE position <= ? ORDER BY session_id", (until,)
        )
        return [sid for (sid,) in rows]

    # -- redaction ------------------------------------------------------------

    def redact_session(self, session_id: str, purged_at: int) -> None:
        """Replace each of the session's payloads before ``purged_at`` with its redaction marker (digest kept, text gone)."""
        rows = self.connection.execute(
            "SELECT position, data FROM events WHERE session_id = ? AND position < ?", (session_id, purged_at)
        ).fetchall()
        self.connection.executemany(
            "UPDATE events SET data = ? WHERE position = ?",
            [
                (redaction_marker(hashlib.sha256(data.encode()).digest(), purged_at), position)
                for position, data in rows
                if read_redaction(data) is None
            ],
        )

    def remap_redactions(self, moved: dict[int, int], far: int) -> None:
        """After an import moved rows: point redaction markers at the purges' new positions (``far``: gone)."""
        start = min(moved.values())
        for position, data in self.connection.execute(
            "SELECT position, data FROM events WHERE position >= ?", (start,)
        ).fetchall():
            redaction = read_redaction(data)
            if redaction is not None:
                self.connection.execute(
                    "UPDATE events SET data = ? WHERE position = ?",
                    (redaction_marker(bytes.fromhex(redaction.digest), moved.get(redaction.purged_at, far)), position),
                )

    # -- snapshots --------------------------------------------------------------

    def save_snapshot(self, state: Session, event_hash: bytes, created_at: str) -> None:
        """Store a state at its version (replacing one of the same version)."""
        self.connection.execute(
            f"INSERT OR REPLACE INTO snapshots ({_SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (state.session_id, state.version, state.position, SNAPSHOT_FORMAT, event_hash, encode_state(state),
             created_at),
        )

    def snapshot_candidates(self, session_id: str, max_version: int) -> Iterable[SnapshotCandidate]:
        """The session's newest few snapshots at or before ``max_version``, newest first, each checked
        against the hash of the event at its version; read lazily (the first usually serves)."""
        cursor: Iterable[SnapshotCandidate] = self.connection.execute(
            "SELECT s.version, s.schema, s.state, s.event_hash = e.hash FROM snapshots AS s"
            " LEFT JOIN events AS e ON e.session_id = s.session_id AND e.version = s.version"
            " WHERE s.session_id = ? AND s.version <= ? ORDER BY s.version DESC LIMIT 4",
            (session_id, max_version),
        )
        return cursor

    def snapshot_index(self) -> list[tuple[str, int, str]]:
        """(session_id, version, created_at) of every snapshot."""
        return self.connection.execute("SELECT session_id, version, created_at FROM snapshots").fetchall()

    def drop_snapshots(self, keys: Sequence[tuple[str, int]]) -> None:
        """Delete the snapshots at these (session_id, version) keys."""
        self.connection.executemany("DELETE FROM snapshots WHERE session_id = ? AND version = ?", keys)

    def drop_session_snapshots(self, session_id: str) -> None:
        """Delete every snapshot of a session."""
        self.connection.execute("DELETE FROM snapshots WHERE session_id = ?", (session_id,))

    def snapshots_of(self, session_id: str) -> dict[int, bytes]:
        """Every snapshot of a session: version -> encoded state."""
        rows = self.connection.execute("SELECT version, state FROM snapshots WHERE session_id = ?", (session_id,))
        return dict(rows.fetchall())

    def sessions_with_snapshots(self) -> list[str]:
        """The ids of sessions with at least one snapshot, sorted."""
        return [sid for (sid,) in self.connection.execute("SELECT DISTINCT session_id FROM snapshots ORDER BY session_id")]

    def snapshot_rows(self, *, until: int) -> list[SnapshotRow]:
        """Snapshot rows taken at or before position ``until``, as stored."""
        return self.connection.execute(f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE position <= ?", (until,)).fetchall()

    def insert_snapshot_rows(self, rows: Sequence[SnapshotRow]) -> None:
        """Insert snapshot rows copied from another ledger."""
        self.connection.executemany(f"INSERT INTO snapshots ({_SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    # -- projector positions ------------------------------------------------------

    def projector_positions(self) -> dict[str, tuple[int, int]] | None:
        """name -> (version, position) of every projector, or None before the projections exist."""
        try:
            rows = self.connection.execute("SELECT name, version, position FROM projector_positions").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return {name: (version, position) for name, version, position in rows}

    def create_projector_positions(self) -> None:
        """Create the positions table when missing."""
        self.connection.execute(POSITIONS_SCHEMA)

    def reset_projector(self, name: str, version: int) -> None:
        """Record a projector at ``version`` and position 0."""
        self.connection.execute(
            "INSERT OR REPLACE INTO projector_positions (name, version, position) VALUES (?, ?, 0)", (name, version)
        )

    def set_projector_positions(self, names: Sequence[str], position: int) -> None:
        """Record these projectors as level with ``position`` (on every append: the statement is cached)."""
        sql = self._advance_sql.get(len(names))
        if sql is None:
            marks = ", ".join("?" * len(names))
            sql = self._advance_sql[len(names)] = f"UPDATE projector_positions SET position = ? WHERE name IN ({marks})"
        self.connection.execute(sql, (position, *names))

    def pin_projectors(self, head: int, marker: int) -> None:
        """Replace the position ``marker`` with ``head``."""
        self.connection.execute("UPDATE projector_positions SET position = ? WHERE position = ?", (head, marker))

    # -- maintenance --------------------------------------------------------------

    def truncate_wal(self) -> bool:
        """Checkpoint and empty the WAL; False when other readers kept it from emptying."""
        if self.path == ":memory:":
            return True
        try:
            busy, _, _ = self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return False
        return not busy

    def backup(self, out: str, progress: Progress | None) -> None:
        """Copy the live file with SQLite's online backup API (outside any transaction: one moment)."""

        def report(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)

        try:
            target = sqlite3.connect(out)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot create {out!r}: {exc}") from exc
        try:
            with sqlite_errors("backup"):
                self.connection.backup(target, pages=1024, progress=report)
        finally:
            target.close()


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
