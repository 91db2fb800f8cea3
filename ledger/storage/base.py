"""The storage interface: what a backend implements so the engine can keep a ledger in it.

One ``Storage`` is one connection to one ledger, used under the engine's lock
and always inside a transaction the engine frames (``begin``, then ``commit``
or ``rollback``). It owns every statement that touches the ledger's own
tables (``events``, ``snapshots``, ``ledger_meta``, ``projector_positions``)
and turns every driver error into a ``LedgerError``. The projectors and the
read-side queries work on :attr:`Storage.connection` in the same transaction,
so a projection is written and committed together with the events it folds.

The shape follows eventsourcing's recorders (an aggregate recorder with
optimistic concurrency, an application recorder with a gapless global
position), in one layer: the chain and the snapshots live here too, so a
backend is one class and the contract suite runs unchanged against each.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple

from ..chain import GENESIS, Row
from ..errors import LedgerError, StorageError
from ..events import Event, RecordedEvent
from ..session import Session
from ..snapshots import SnapshotCandidate
from ..validation import Progress

# One stored snapshot row: session_id, version, position, schema, event_hash, state, created_at.
SnapshotRow = tuple[str, int, int, int, bytes, bytes, str]


class Head(NamedTuple):
    """The last row of the log: where the next append goes and what it links to."""

    position: int
    hash: bytes
    recorded_at: str


EMPTY_HEAD = Head(0, GENESIS, "")
# How many events after its last look a connection reads through to learn which sessions others changed.
CHANGES_WINDOW = 1024


class Storage(ABC):
    """One connection to one ledger's tables; the engine frames every call in a transaction."""

    #: The SQL dialect the projectors and queries must speak on :attr:`connection`.
    dialect: str
    #: Where the ledger lives (a file path or a URL without its password).
    path: str
    #: ``"normal"`` or ``"full"`` (see the backend for what each promises).
    durability: str
    #: Seconds a writer waits for another writer's lock before ``LedgerBusy``.
    busy_timeout: float
    #: Opened without write access (a read-only file or directory): reads work, ``begin(write=True)`` raises
    #: ``ReadOnlyLedger``.
    read_only: bool = False

    #: The connection projectors and read-side queries use, inside the engine's transaction: SQLite's own,
    #: or one that speaks its ``execute``/``executemany`` with ``?`` placeholders.
    connection: Any

    @property
    def plain_connection(self) -> Any:
        """The connection as a projector of your own gets it: every statement runs when it is issued (its
        cursor's ``rowcount`` and rows are there at once). By default, ``connection`` itself."""
        return self.connection

    # -- connection and transactions ------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""

    @abstractmethod
    def begin(self, *, write: bool) -> bool:
        """Start a transaction (a write one takes the writer's lock) and refresh the head; returns True
        when another connection committed since this one last looked."""

    @abstractmethod
    def commit(self) -> None:
        """Commit the open transaction."""

    @abstractmethod
    def rollback(self) -> None:
        """Roll back the open transaction, if any, and forget its appends."""

    @property
    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""

    @property
    def round_trips(self) -> int | None:
        """Round trips to the database server so far on this connection (None: no server, as with SQLite)."""
        return None

    @property
    @abstractmethod
    def head(self) -> Head:
        """The last row as of the last ``begin`` or append."""

    @abstractmethod
    def errors(self, doing: str) -> AbstractContextManager[None]:
        """A scope that turns any driver error raised inside into the matching ``LedgerError``."""

    @abstractmethod
    def translate(self, exc: BaseException, doing: str) -> LedgerError | None:
        """The ``LedgerError`` for a driver error, or None when ``exc`` is not one."""

    @abstractmethod
    def busy(self, doing: str) -> LedgerError:
        """The error for a writer that waited past the busy timeout (says that nothing was written)."""

    def settle(self) -> None:
        """Inside a batch, at the end of a command: make sure everything it wrote reached the database, so a
        failure is the command's own. A backend that writes at once has nothing to do."""

    def pooled_read(self, doing: str) -> AbstractContextManager[Any] | None:
        """A read of the read tables on a connection of a pool, beside this one's transactions and other
        threads' reads (it sees what was committed when it began); None when the backend has no pool and
        such reads share this connection. A backend with a pool returns a context manager giving the
        connection, inside a read-only transaction."""
        return None

    def wait_for_appends(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds, or less when another connection may have appended: a hint to
        look again (callers always re-read by position). By default, simply the timeout."""
        time.sleep(timeout)

    # -- the log ------------------------------------------------------------------------

    @abstractmethod
    def append(
        self, session_id: str, version: int, event: Event, event_id: str, now: datetime, salt: bytes
    ) -> RecordedEvent:
        """Insert one event after the head, hash-chained, its payload ``salt``-ed (``events.salted``);
        ``recorded_at`` is clamped so it never goes back."""

    @abstractmethod
    def insert_rows(self, rows: Sequence[Row]) -> None:
        """Insert rows exactly as another ledger stored them (an import or a replay; the caller checks the chain)."""

    @abstractmethod
    def session_version(self, session_id: str) -> int | None:
        """The session's latest version, or None when it has no events."""

    @abstractmethod
    def latest(self, session_id: str) -> tuple[int, str] | None:
        """(version, type) of the session's latest event, or None."""

    @abstractmethod
    def find_event(self, event_id: str) -> tuple[str, int, str] | None:
        """(session_id, version, type) of the event stored under ``event_id``, if any."""

    @abstractmethod
    def iter_session(
        self, session_id: str, *, after_version: int = 0, until_version: int | None = None
    ) -> Iterator[RecordedEvent]:
        """A session's events after ``after_version`` (up to ``until_version``), decoded one at a time."""

    @abstractmethod
    def read(self, *, after: int, limit: int, session_id: str | None = None) -> list[RecordedEvent]:
        """Up to ``limit`` events with position > ``after``, optionally of one session, in log order."""

    @abstractmethod
    def raw_rows(self, *, after: int, limit: int) -> list[Row]:
        """Stored rows exactly as they are (text columns as bytes, so damaged text is reported, not raised)."""

    @abstractmethod
    def rows(self, *, after: int, until: int, limit: int) -> list[Row]:
        """Stored rows with ``after < position <= until``, as stored, for copying elsewhere."""

    @abstractmethod
    def session_rows(self, session_id: str) -> list[Row]:
        """A session's stored rows, in version order, as stored (a proof bundle carries them)."""

    @abstractmethod
    def row_hash(self, position: int) -> bytes | None:
        """The stored hash at a position, or None when there is no such row."""

    @abstractmethod
    def event_hash(self, session_id: str, version: int) -> bytes | None:
        """The stored hash of a session's event at a version, or None."""

    @abstractmethod
    def version_at(self, session_id: str, current: int, *, position: int | None = None, at: str | None = None) -> int:
        """The session's last version at or before a global position or a stored time (0: none yet)."""

    @abstractmethod
    def position_at(self, at: str) -> int:
        """The last global position recorded at or before a stored time (0: none)."""

    @abstractmethod
    def sessions_after(self, position: int) -> list[str] | None:
        """The sessions with an event after ``position`` up to the head, or None when more than
        ``CHANGES_WINDOW`` events came after it (too many to look through: the caller forgets everything)."""

    @abstractmethod
    def session_ids(self, *, until: int) -> list[str]:
        """Every session with an event at or before position ``until``, sorted."""

    # -- redaction ------------------------------------------------------------------------

    @abstractmethod
    def redact_session(self, session_id: str, purged_at: int) -> None:
        """Replace each of the session's payloads before ``purged_at`` (the position of its ``purged`` event)
        with its redaction marker: the digest stays, the text is gone."""

    @abstractmethod
    def remap_redactions(self, moved: dict[int, int], far: int) -> None:
        """After an import moved rows: point redaction markers at the purges' new positions (``far``: gone)."""

    # -- snapshots ----------------------------------------------------------------------

    @abstractmethod
    def save_snapshot(self, state: Session, event_hash: bytes, created_at: str) -> None:
        """Store a state at its version (replacing one of the same version)."""

    @abstractmethod
    def snapshot_candidates(self, session_id: str, max_version: int) -> Iterable[SnapshotCandidate]:
        """The session's newest few snapshots at or before ``max_version``, newest first, read lazily:
        (version, format, state bytes, whether its event hash is still the chain's)."""

    @abstractmethod
    def snapshot_index(self) -> list[tuple[str, int, str]]:
        """(session_id, version, created_at) of every snapshot."""

    @abstractmethod
    def drop_snapshots(self, keys: Sequence[tuple[str, int]]) -> None:
        """Delete the snapshots at these (session_id, version) keys."""

    @abstractmethod
    def drop_session_snapshots(self, session_id: str) -> None:
        """Delete every snapshot of a session."""

    @abstractmethod
    def snapshots_of(self, session_id: str) -> dict[int, tuple[bytes, bytes]]:
        """Every snapshot of a session: version -> (encoded state, the hash of the event it was taken at)."""

    @abstractmethod
    def sessions_with_snapshots(self) -> list[str]:
        """The ids of sessions with at least one snapshot, sorted."""

    @abstractmethod
    def snapshot_rows(self, *, until: int) -> list[SnapshotRow]:
        """Snapshot rows taken at or before position ``until``, as stored (for a replay)."""

    @abstractmethod
    def insert_snapshot_rows(self, rows: Sequence[SnapshotRow]) -> None:
        """Insert snapshot rows copied from another ledger."""

    # -- projector positions ------------------------------------------------------------

    @abstractmethod
    def projector_positions(self) -> dict[str, tuple[int, int]] | None:
        """name -> (version, position) of every projector, or None before the projections exist."""

    @abstractmethod
    def create_projector_positions(self) -> None:
        """Create the positions table when missing."""

    @abstractmethod
    def reset_projector(self, name: str, version: int) -> None:
        """Record a projector at ``version`` and position 0 (its tables were just created)."""

    @abstractmethod
    def set_projector_positions(self, names: Sequence[str], position: int) -> None:
        """Record these projectors as level with ``position``."""

    @abstractmethod
    def pin_projectors(self, head: int, marker: int) -> None:
        """Replace the position ``marker`` (kept level by every append) with ``head``."""

    # -- maintenance ----------------------------------------------------------------------

    @abstractmethod
    def truncate_wal(self) -> bool:
        """Move every committed page into the main file and empty the write-ahead log, without waiting;
        False when a reader's open snapshot kept it from emptying (``pending_scrub`` then says so)."""

    def pending_scrub(self) -> bool:
        """Whether a purge committed but could not yet empty the write-ahead log of its text (a reader held
        an old snapshot), as recorded in the ledger (so every process sees it). Backends without such a log
        have nothing pending."""
        return False

    def set_pending_scrub(self, pending: bool) -> None:
        """Inside a write transaction: record that a scrub is pending (or done)."""

    @abstractmethod
    def latest_checkpoint(self) -> str | None:
        """The signed checkpoint made last (a C2SP note), as recorded in the ledger, or None."""

    @abstractmethod
    def set_latest_checkpoint(self, note: str) -> None:
        """Inside a write transaction: record a signed checkpoint as the latest."""

    def twin_path(self) -> str:
        """Where a scratch twin of this ledger can be built, on the same backend (verify's deep mode
        rebuilds the projections there): a path or URL ``open_engine`` takes. In memory by default."""
        return ":memory:"

    def destroy_twin(self, path: str) -> None:
        """Remove a twin made at ``twin_path`` (closed already); one in memory needs nothing."""

    def backup(self, out: str, progress: Progress | None) -> None:
        """Copy the whole ledger, as of one moment, into a new file at ``out`` (outside any transaction).

        Only a file-based backend can; ``Transfer.backup`` copies the others through a replay.
        """
        raise StorageError(f"backup of {self.path}: this backend has no file to copy")
