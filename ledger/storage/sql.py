"""The SQL both backends share: the log, snapshots, redaction and projector positions.

``SQLStorage`` holds every statement that is the same on SQLite and
PostgreSQL, written with ``?`` placeholders; a backend provides
``connection`` (SQLite's own, or an adapter that speaks the same
``execute``/``executemany`` and turns ``?`` into the driver's placeholder),
opens and creates its tables, frames transactions, translates its driver's
errors, and does what only it can (the raw row read, maintenance, backup).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from ..chain import Row, link, payload_digest
from ..events import Event, RecordedEvent, decode_payload, encode_payload, read_redaction, redaction_marker, salted
from ..session import Session
from ..snapshots import SNAPSHOT_FORMAT, SnapshotCandidate, encode_state
from ..times import parse_time, stamp
from .base import CHANGES_WINDOW, EMPTY_HEAD, Head, SnapshotRow, Storage

# 2: new payloads carry a random ``"$salt"`` (``events.salted``); a format-1 ledger is upgraded when opened.
FORMAT_VERSION = 2

# The ledger's own tables; ``{int}`` is the backend's 64-bit integer (SQLite's INTEGER makes ``position``
# the rowid) and ``{blob}`` its byte string.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        position {int} PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        version {int} NOT NULL,
        type TEXT NOT NULL,
        schema INTEGER NOT NULL,
        recorded_at TEXT NOT NULL,
        data TEXT NOT NULL,
        hash {blob} NOT NULL,
        UNIQUE (session_id, version)
    )""",
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

UPGRADE_FORMAT = "UPDATE ledger_meta SET value = ? WHERE key = 'format'"

# Created on every open (older files may predate it); a cache, like the projections.
SNAPSHOTS_SCHEMA = """CREATE TABLE IF NOT EXISTS snapshots (
    session_id TEXT NOT NULL,
    version {int} NOT NULL,
    position {int} NOT NULL,
    schema INTEGER NOT NULL,
    event_hash {blob} NOT NULL,
    state {blob} NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, version)
)"""

POSITIONS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS projector_positions ("
    " name TEXT PRIMARY KEY, version {int} NOT NULL, position {int} NOT NULL)"
)
_SNAPSHOT_COLUMNS = "session_id, version, position, schema, event_hash, state, created_at"
_COLUMNS = "position, event_id, session_id, version, type, schema, recorded_at, data, hash"


class SQLStorage(Storage):
    """The statements both backends share, over ``connection`` (``?`` placeholders)."""

    connection: Any
    #: The DDL types: ``int`` (64-bit) and ``blob`` (bytes).
    types: dict[str, str]
    #: How a byte column is read so that it comes back as bytes whatever was stored in it (SQLite lets a
    #: damaged file hold text there, which the driver would fail to decode).
    as_bytes = "{}"
    _head: Head = EMPTY_HEAD
    _head_at_begin: Head = EMPTY_HEAD

    def __init__(self) -> None:
        self._advance_sql: dict[int, str] = {}

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
        return bool(self.connection.in_transaction)

    @property
    def head(self) -> Head:
        """The last row as of the last ``begin`` or ``append``."""
        return self._head

    # -- appends ------------------------------------------------------------

    def append(
        self, session_id: str, version: int, event: Event, event_id: str, now: datetime, salt: bytes
    ) -> RecordedEvent:
        """Insert one event after the head (inside a write transaction) and return it as recorded.

        ``recorded_at`` never goes backwards: a clock behind the last row is
        clamped to it, so time order and log order agree.
        """
        head = self._head
        data = salted(encode_payload(event), salt)
        moment, recorded_at = stamp(now)
        if recorded_at < head.recorded_at:
            moment, recorded_at = parse_time(head.recorded_at), head.recorded_at
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
            recorded_at=moment,
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
        rows: list[Row] = self.connection.execute(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (after, until, limit),
        ).fetchall()
        return rows

    def latest_checkpoint(self) -> str | None:
        """The signed checkpoint made last (a C2SP note), as recorded in ``ledger_meta``, or None."""
        row = self.connection.execute("SELECT value FROM ledger_meta WHERE key = 'checkpoint'").fetchone()
        return None if row is None else str(row[0])

    def set_latest_checkpoint(self, note: str) -> None:
        """Inside a write transaction: record a signed checkpoint as the latest (in ``ledger_meta``)."""
        self.connection.execute("DELETE FROM ledger_meta WHERE key = 'checkpoint'")
        self.connection.execute("INSERT INTO ledger_meta (key, value) VALUES ('checkpoint', ?)", (note,))

    def session_rows(self, session_id: str) -> list[Row]:
        """A session's stored rows, in version order, as stored (a proof bundle carries them)."""
        rows: list[Row] = self.connection.execute(
            f"SELECT {_COLUMNS} FROM events WHERE session_id = ? ORDER BY version", (session_id,)
        ).fetchall()
        return rows

    def insert_rows(self, rows: Sequence[Row]) -> None:
        """Insert rows exactly as another ledger stored them (inside a write transaction); the caller checks the chain."""
        if not rows:
            return
        self.connection.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        last = rows[-1]
        self._head = Head(last[0], last[8], last[6])

    def row_hash(self, position: int) -> bytes | None:
        """The stored hash at a position (as bytes, whatever was stored), or None when there is no such row."""
        row = self.connection.execute(
            f"SELECT {self.as_bytes.format('hash')} FROM events WHERE position = ?", (position,)
        ).fetchone()
        return bytes(row[0]) if row else None


    def event_hash(self, session_id: str, version: int) -> bytes | None:
        """The stored hash of a session's event at a version, or None."""
        row = self.connection.execute(
            "SELECT hash FROM events WHERE session_id = ? AND version = ?", (session_id, version)
        ).fetchone()
        return row[0] if row else None

    def sessions_after(self, position: int) -> list[str] | None:
        """The sessions with an event after ``position`` (None: more than ``CHANGES_WINDOW`` events)."""
        head = self._head.position
        if head - position > CHANGES_WINDOW:
            return None
        rows = self.connection.execute(
            "SELECT DISTINCT session_id FROM events WHERE position > ? AND position <= ?", (position, head)
        ).fetchall()
        return [sid for (sid,) in rows]

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
            f"INSERT INTO snapshots ({_SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id, version) DO UPDATE SET position = excluded.position, schema = excluded.schema,"
            " event_hash = excluded.event_hash, state = excluded.state, created_at = excluded.created_at",
            (state.session_id, state.version, state.position, SNAPSHOT_FORMAT, event_hash, encode_state(state),
             created_at),
        )

    def snapshot_candidates(self, session_id: str, max_version: int) -> Iterable[SnapshotCandidate]:
        """The session's newest few snapshots at or before ``max_version``, newest first, each checked
        against the hash of the event at its version; read lazily (the first usually serves)."""
        # The event's hash by a correlated lookup on (session_id, version), the session bound as a parameter:
        # a prepared, generic plan (PostgreSQL's after a few runs) then still finds that one row by index.
        cursor: Iterable[SnapshotCandidate] = self.connection.execute(
            f"SELECT s.version, s.schema, {self.as_bytes.format('s.state')},"
            " s.event_hash = (SELECT e.hash FROM events AS e WHERE e.session_id = ? AND e.version = s.version)"
            " FROM snapshots AS s WHERE s.session_id = ? AND s.version <= ? ORDER BY s.version DESC LIMIT 4",
            (session_id, session_id, max_version),
        )
        return cursor

    def snapshot_index(self) -> list[tuple[str, int, str]]:
        """(session_id, version, created_at) of every snapshot."""
        rows: list[tuple[str, int, str]] = self.connection.execute(
            "SELECT session_id, version, created_at FROM snapshots"
        ).fetchall()
        return rows

    def drop_snapshots(self, keys: Sequence[tuple[str, int]]) -> None:
        """Delete the snapshots at these (session_id, version) keys."""
        self.connection.executemany("DELETE FROM snapshots WHERE session_id = ? AND version = ?", keys)

    def drop_session_snapshots(self, session_id: str) -> None:
        """Delete every snapshot of a session."""
        self.connection.execute("DELETE FROM snapshots WHERE session_id = ?", (session_id,))

    def snapshots_of(self, session_id: str) -> dict[int, tuple[bytes, bytes]]:
        """Every snapshot of a session in the current format (older ones are ignored on load): version ->
        (encoded state, the hash of the event it was taken at)."""
        rows = self.connection.execute(
            f"SELECT version, {self.as_bytes.format('state')}, {self.as_bytes.format('event_hash')}"
            " FROM snapshots WHERE session_id = ? AND schema = ?",
            (session_id, SNAPSHOT_FORMAT),
        )
        return {version: (bytes(state), bytes(event_hash)) for version, state, event_hash in rows.fetchall()}

    def sessions_with_snapshots(self) -> list[str]:
        """The ids of sessions with at least one snapshot, sorted."""
        return [sid for (sid,) in self.connection.execute("SELECT DISTINCT session_id FROM snapshots ORDER BY session_id")]

    def snapshot_rows(self, *, until: int) -> list[SnapshotRow]:
        """Snapshot rows taken at or before position ``until``, as stored."""
        rows: list[SnapshotRow] = self.connection.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE position <= ?", (until,)
        ).fetchall()
        return rows

    def insert_snapshot_rows(self, rows: Sequence[SnapshotRow]) -> None:
        """Insert snapshot rows copied from another ledger."""
        self.connection.executemany(f"INSERT INTO snapshots ({_SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    # -- projector positions ------------------------------------------------------

    def create_projector_positions(self) -> None:
        """Create the positions table when missing."""
        self.connection.execute(POSITIONS_SCHEMA.format(**self.types))

    def reset_projector(self, name: str, version: int) -> None:
        """Record a projector at ``version`` and position 0."""
        self.connection.execute(
            "INSERT INTO projector_positions (name, version, position) VALUES (?, ?, 0)"
            " ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = 0",
            (name, version),
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
