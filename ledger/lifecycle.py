"""Data lifecycle: purging sessions for privacy and retention, and abandoning idle ones.

A purge removes a session's payloads from the log, every projection and every
snapshot, and records a ``purged`` event. Each removed payload leaves its
SHA-256 digest behind (``ledger.events.Redacted``), and the chain hashes a
payload only through its digest, so ``verify`` still passes, in this file and
in any export or replay, even one cut before the purge. With SQLite's
``secure_delete`` on and the WAL truncated afterwards, none of the text stays
in free pages, the full-text index or the WAL. Forks carry their parent's
content, so purging a session purges its forks too.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from projections.base import Progress, ProjectionRunner, check_progress
from projections.sessions import SearchProjector

from . import events as ev
from .errors import InvalidInput, SessionPurged
from .log import EventLog
from .session import PURGED, Session
from .transactions import Transaction
from .validation import Limits, check_id, check_text

log = logging.getLogger("ledger.lifecycle")


def duration_arg(value: object, field: str, unit: float) -> timedelta:
    """A positive duration given as a timedelta or a number of ``unit`` seconds (``InvalidInput`` otherwise)."""
    if isinstance(value, timedelta):
        span = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e12:
        try:
            span = timedelta(seconds=float(value) * unit)
        except OverflowError as exc:
            raise InvalidInput(f"{field} is far too long; got {value!r}", field=field) from exc
    else:
        raise InvalidInput(f"{field} must be a positive number or timedelta; got {value!r}", field=field)
    if span <= timedelta(0) or span > _LONGEST:
        raise InvalidInput(f"{field} must be positive and at most {_LONGEST.days} days; got {value!r}", field=field)
    return span


_LONGEST = timedelta(days=36_500)  # a century: any retention or idle limit beyond it is a mistake


def _before(now: datetime, span: timedelta, field: str) -> str:
    """The stored time ``span`` before ``now``."""
    try:
        return ev.format_time(now - span)
    except OverflowError as exc:
        raise InvalidInput(f"{field} reaches back before the year 1", field=field) from exc


class Lifecycle:
    """Purge, retention and idle cleanup; mixed into ``Ledger``."""

    _log: EventLog
    _runner: ProjectionRunner
    _limits: Limits
    _clock: Callable[[], datetime]
    _cache: Any
    _lock: threading.RLock
    _write: Callable[[str], AbstractContextManager[Transaction]]
    _existing: Callable[[str], Session]
    _command: Callable[..., tuple[Session | None, int]]
    complete_session: Callable[..., int]
    _outside_batch: Callable[[str], None]

    # -- purge -------------------------------------------------------------------------

    def purge_session(self, session_id: str, *, reason: str, by: str | None = None) -> int:
        """Remove the session's payloads (and its forks') from the log, projections and snapshots.

        Records a ``purged`` event saying why (``reason``) and who (``by``);
        the session then reads as ``purged``. Purging a purged session does
        nothing. Returns the session's version after the purge.
        """
        self._outside_batch("purge")  # the WAL can only be emptied of the text once the purge is committed
        sid = check_id(session_id, "session_id")
        why = check_text(reason, "reason", self._limits.max_text_bytes, sid, optional=False, allow_empty=False)
        who = check_text(by, "by", self._limits.max_name_bytes, sid)
        with self._write("purge_session"):
            version = self._purge(sid, why, who)  # type: ignore[arg-type]
        self._truncate_wal()
        return version

    def _purge(self, session_id: str, reason: str, by: str | None) -> int:
        """Inside a write transaction: purge the session and its forks; returns its version."""
        state = self._existing(session_id)
        if state.status == PURGED:
            return state.version
        for victim in [session_id, *self._descendants(session_id)]:
            self._purge_one(victim, reason, by)
        SearchProjector.reindex(self._log.conn)
        self._log.conn.execute(
            "UPDATE projector_positions SET position = ? WHERE name = ?", (self._log.head.position, SearchProjector.name)
        )
        return self._existing(session_id).version

    def _descendants(self, session_id: str) -> list[str]:
        rows = self._log.conn.execute(
            "WITH RECURSIVE tree(id) AS (SELECT session_id FROM sessions WHERE parent_id = ?"
            " UNION SELECT s.session_id FROM sessions AS s JOIN tree ON s.parent_id = tree.id)"
            " SELECT id FROM tree ORDER BY id",
            (session_id,),
        )
        return [sid for (sid,) in rows]

    def _purge_one(self, session_id: str, reason: str, by: str | None) -> None:
        conn = self._log.conn
        rows = conn.execute("SELECT position, data FROM events WHERE session_id = ?", (session_id,)).fetchall()

        def decide(state: Session | None) -> ev.Event | None:
            if state is None or state.status == PURGED:
                return None
            return ev.Purged(reason=reason, by=by, redacted=len(rows))

        _, version = self._command(session_id, "purged", decide, expected_version=None, event_id=None)
        purged_at = self._log.head.position
        conn.executemany(
            "UPDATE events SET data = ? WHERE position = ?",
            [
                (ev.redaction_marker(hashlib.sha256(data.encode()).digest(), purged_at), position)
                for position, data in rows
                if ev.read_redaction(data) is None
            ],
        )
        conn.execute("DELETE FROM snapshots WHERE session_id = ?", (session_id,))
        self._cache.pop(session_id, None)

    def _truncate_wal(self) -> None:
        """Checkpoint and empty the WAL, where old copies of purged pages would otherwise linger."""
        deadline = time.monotonic() + max(self._log.busy_timeout, 1.0)
        while True:
            with self._lock:
                try:
                    busy, _, _ = self._log.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                except sqlite3.Error:
                    busy = 1
            if not busy or self._log.path == ":memory:":
                return
            if time.monotonic() >= deadline:
                log.warning("could not empty the WAL after a purge (other readers are open); it empties at the next checkpoint")
                return
            time.sleep(0.05)

    def purge_completed(
        self, older_than: timedelta | float, *, by: str | None = None, progress: Progress | None = None
    ) -> list[str]:
        """Purge every session that ended (completed, failed or abandoned) more than ``older_than``
        ago (a timedelta or a number of days); returns their ids."""
        self._outside_batch("purge")
        check_progress(progress)
        span = duration_arg(older_than, "older_than", 86_400)
        who = check_text(by, "by", self._limits.max_name_bytes, None)
        cutoff = _before(self._clock(), span, "older_than")
        with self._write("purge_completed"):
            ids = [
                sid
                for (sid,) in self._log.conn.execute(
                    "SELECT session_id FROM sessions WHERE status IN ('completed', 'failed', 'abandoned')"
                    " AND completed_at < ? ORDER BY completed_at",
                    (cutoff,),
                )
            ]
            reason = f"retention: ended more than {span.days} days ago" if span.days else f"retention: ended more than {span} ago"
            for done, sid in enumerate(ids, 1):
                self._purge(sid, reason, who)
                if progress is not None:
                    progress(done, len(ids))
        if ids:
            self._truncate_wal()
        return ids

    # -- idle sessions -----------------------------------------------------------------

    def cleanup(self, max_idle: timedelta | float, *, progress: Progress | None = None) -> list[str]:
        """Complete, as ``abandoned``, every active session idle longer than ``max_idle`` (a timedelta
        or seconds); returns their ids. The seeds' expiry task, as events."""
        check_progress(progress)
        span = duration_arg(max_idle, "max_idle", 1)
        cutoff = _before(self._clock(), span, "max_idle")
        with self._write("cleanup"):
            ids = [
                sid
                for (sid,) in self._log.conn.execute(
                    "SELECT session_id FROM sessions WHERE status = 'active' AND updated_at < ? ORDER BY updated_at",
                    (cutoff,),
                )
            ]
            for done, sid in enumerate(ids, 1):
                self.complete_session(sid, "abandoned", reason=f"idle for more than {span}")
                if progress is not None:
                    progress(done, len(ids))
        return ids


class CleanupThread(threading.Thread):
    """Runs ``ledger.cleanup(max_idle)`` every ``every`` seconds until stopped (a daemon thread)."""

    def __init__(self, cleanup: Callable[[timedelta], list[str]], every: float, max_idle: timedelta) -> None:
        super().__init__(name="ledger-cleanup", daemon=True)
        self._cleanup = cleanup
        self._every = every
        self._max_idle = max_idle
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self._every):
            try:
                self._cleanup(self._max_idle)
            except Exception:  # keep cleaning on the next round; the error is logged, not lost
                log.exception("background cleanup failed")

    def stop(self) -> None:
        """Ask the thread to finish and wait for it."""
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=30)


def check_not_purged(state: Session, what: str) -> None:
    """Refuse any change to a purged session."""
    if state.status == PURGED:
        raise SessionPurged(f"session {state.session_id!r} was purged: cannot {what}", session_id=state.session_id)
