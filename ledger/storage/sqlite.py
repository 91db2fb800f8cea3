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

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ..chain import Row
from ..errors import (
    ConcurrencyError,
    IntegrityError,
    LedgerBusy,
    LedgerError,
    LedgerNotFound,
    ReadOnlyLedger,
    StorageError,
    UnsupportedFormat,
)
from ..validation import Progress
from .base import EMPTY_HEAD, Head
from .sql import FORMAT_VERSION, SCHEMA, SNAPSHOTS_SCHEMA, UPGRADE_FORMAT, SQLStorage

APPLICATION_ID = 0x534C4447  # "SLDG" in the SQLite header marks a ledger file

T = TypeVar("T")



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
    if _is_read_only(exc, opening=False):
        return ReadOnlyLedger(f"{doing}: the ledger file or its directory is read-only; nothing was written")
    return StorageError(f"{doing}: {message}")


def _is_read_only(exc: sqlite3.Error, *, opening: bool) -> bool:
    # "attempt to write a readonly database"; while opening an existing file, also "unable to open database
    # file": the -wal or -shm beside a WAL file cannot be created in a read-only directory.
    message = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and (
        "readonly" in message or "read-only" in message or opening and "unable to open database file" in message
    )


def _uri(path: str, mode: str) -> str:
    """A ``file:`` URI opening ``path`` with ``mode`` (``mode=ro`` or ``immutable=1``)."""
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{mode}"


@contextmanager
def sqlite_errors(doing: str) -> Iterator[None]:
    """Turn any ``sqlite3`` error raised inside into the matching ``LedgerError``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, doing) from exc


class SQLiteStorage(SQLStorage):
    """A ledger in one SQLite file (or in memory, for ``":memory:"``), through one connection."""

    dialect = "sqlite"
    types = {"int": "INTEGER", "blob": "BLOB"}
    as_bytes = "CAST({} AS BLOB)"

    def __init__(
        self, path: str, *, durability: str = "normal", busy_timeout: float = 5.0, create: bool = True
    ) -> None:
        # The arguments were checked by ``validation.check_options``; this opens, creates or refuses the file.
        super().__init__()
        self.path = path
        self.durability = durability
        self.busy_timeout = float(busy_timeout)
        self._data_version: int | None = None
        self._may_create = create
        in_memory = path == ":memory:" or path.startswith("file:")
        if not create and not in_memory and not os.path.isfile(path):
            what = "a directory" if os.path.isdir(path) else "no such file"
            raise LedgerNotFound(f"no ledger at {path!r}: {what}", actual=path)
        # A file that exists but cannot be written (a read-only file, or a read-only directory where no
        # -wal could be created) is opened read-only at once; SQLite would refuse the first read otherwise.
        writable = in_memory or not os.path.exists(path) or os.access(path, os.W_OK) and (
            os.access(os.path.dirname(os.path.abspath(path)), os.W_OK) or os.path.exists(f"{path}-wal")
        )
        try:
            self._connect(path if writable else _uri(path, "mode=ro"), read_only=not writable)
        except ReadOnlyLedger:
            if in_memory or not os.path.isfile(path):
                raise
            # Not writable after all (root on a read-only mount, say): open it read-only.
            self._connect(_uri(path, "mode=ro"), read_only=True)

    def _connect(self, target: str, *, read_only: bool) -> None:
        """Connect to ``target`` and open the ledger in it; a read-only WAL file whose -shm cannot be
        created (a read-only directory) is read as immutable when no -wal holds changes beside it."""
        self.read_only = read_only
        try:
            self.connection = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout,
                uri=target.startswith("file:") and target != self.path,
            )
        except (sqlite3.Error, ValueError, UnicodeError) as exc:
            raise StorageError(f"cannot open ledger file {self.path!r}: {exc}") from exc
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self.connection.close()
            if isinstance(exc, sqlite3.OperationalError) and _is_read_only(exc, opening=True):
                if not read_only and os.path.isfile(self.path) and os.path.getsize(self.path) > 0:
                    raise ReadOnlyLedger(f"{self.path!r} cannot be written") from exc  # __init__ opens it read-only
                if read_only and "mode=ro" in target and self._wal_is_empty():
                    self._connect(_uri(self.path, "immutable=1"), read_only=True)
                    return
                if read_only:
                    raise StorageError(
                        f"cannot read {self.path!r}: its directory is read-only and {self.path}-wal holds changes"
                        " not yet in the file (open it once where it can be written, or copy the directory)"
                    ) from exc
                raise translate(exc, f"opening {self.path!r}") from exc
            raise UnsupportedFormat(f"{self.path!r} is not a ledger file: {exc}") from exc
        except BaseException:
            self.connection.close()
            raise

    def _wal_is_empty(self) -> bool:
        try:
            return os.path.getsize(f"{self.path}-wal") == 0
        except OSError:
            return True  # no -wal: everything is in the file

    def _open(self) -> None:
        # Look before touching anything: a foreign file must be refused unchanged.
        tables = self._tables()
        if tables and "ledger_meta" not in tables:
            raise UnsupportedFormat(f"{self.path!r} is an SQLite file but not a session-ledger file")
        if not tables and (self.read_only or not self._may_create):
            raise LedgerNotFound(f"no ledger at {self.path!r}: the file is empty", actual=self.path)
        if self.read_only:
            self._check_format()
            return
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
        self.connection.execute(SNAPSHOTS_SCHEMA.format(**self.types))

    def _create(self) -> None:
        self._retry_busy(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        try:
            if not self._tables():  # another process may have created it while we waited
                for ddl in SCHEMA:
                    self.connection.execute(ddl.format(**self.types))
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
        if found < FORMAT_VERSION and not self.read_only:
            self._upgrade()

    def _upgrade(self) -> None:
        """Mark an older ledger with this format (its rows stay as they are: format 1 payloads have no salt,
        and are read and verified as before). A read-only file stays as it is: it cannot be appended to."""
        try:
            self._retry_busy(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                return
            raise
        try:
            self.connection.execute(UPGRADE_FORMAT, (str(FORMAT_VERSION),))
            self.connection.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self.connection.execute("ROLLBACK")
            if "readonly" not in str(exc):
                raise

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
            if self.read_only:
                raise ReadOnlyLedger(
                    f"{self.path!r} is open read-only (the file or its directory is not writable): it cannot be changed"
                )
            self._retry_busy(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        else:
            self.connection.execute("BEGIN")
        changed = self._refresh()
        self._head_at_begin = self._head
        return changed

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

    def raw_rows(self, *, after: int, limit: int) -> list[Row]:
        """Stored rows exactly as they are (text columns as bytes, so damaged text is reported, not raised)."""
        rows: list[Row] = self.connection.execute(
            "SELECT position, CAST(event_id AS BLOB), CAST(session_id AS BLOB), version, CAST(type AS BLOB),"
            " schema, CAST(recorded_at AS BLOB), CAST(data AS BLOB), hash"
            " FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after, limit),
        ).fetchall()
        return rows

    def projector_positions(self) -> dict[str, tuple[int, int]] | None:
        """name -> (version, position) of every projector, or None before the projections exist."""
        try:
            rows = self.connection.execute("SELECT name, version, position FROM projector_positions").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return {name: (version, position) for name, version, position in rows}

    # -- maintenance --------------------------------------------------------------

    def truncate_wal(self) -> bool:
        """Checkpoint and empty the WAL, without waiting for readers; False when a reader's open snapshot
        kept it from emptying."""
        if self.path == ":memory:":
            return True
        if self.read_only:
            return False
        connection = self.connection
        connection.execute("PRAGMA busy_timeout = 0")  # a reader will not let go within any wait we could afford
        try:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return not busy

    def pending_scrub(self) -> bool:
        """Whether a purge's text may still be in the WAL (recorded in ``ledger_meta``)."""
        row = self.connection.execute("SELECT value FROM ledger_meta WHERE key = 'scrub_pending'").fetchone()
        return row is not None

    def set_pending_scrub(self, pending: bool) -> None:
        """Record (or clear) a pending scrub."""
        if pending:
            self.connection.execute("INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('scrub_pending', '1')")
        else:
            self.connection.execute("DELETE FROM ledger_meta WHERE key = 'scrub_pending'")

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
