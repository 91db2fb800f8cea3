"""Retention: purging sessions for privacy and by age, and abandoning idle ones.

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

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from projections import queries

from . import events as ev
from .commands import Commands
from .engine import Engine
from .session import Session
from .times import before
from .validation import Limits, Progress, check_id, check_progress, check_text, duration_arg

log = logging.getLogger("ledger.retention")


class Retention:
    """Purge, retention and idle cleanup over one engine."""

    def __init__(self, engine: Engine, commands: Commands, limits: Limits) -> None:
        self._engine = engine
        self._commands = commands
        self._limits = limits

    # -- purge -------------------------------------------------------------------------

    def purge_session(self, session_id: str, *, reason: str, by: str | None = None) -> int:
        """Remove the session's payloads (and its forks') from the log, projections and snapshots.

        Records a ``purged`` event saying why (``reason``) and who (``by``);
        the session then reads as ``purged``. Purging a purged session does
        nothing. Returns the session's version after the purge.
        """
        engine = self._engine
        engine.outside_batch("purge")  # the WAL can only be emptied of the text once the purge is committed
        sid = check_id(session_id, "session_id")
        why = check_text(reason, "reason", self._limits.max_text_bytes, sid, optional=False, allow_empty=False)
        who = check_text(by, "by", self._limits.max_name_bytes, sid)
        assert why is not None
        with engine.write("purge_session"):
            self._scrub(self._purge(sid, why, who))
            version = engine.existing(sid).version
        self._truncate_wal()
        return version

    def _purge(self, session_id: str, reason: str, by: str | None) -> list[str]:
        """Inside a write transaction: purge the session and its forks from the log and the read tables;
        returns the sessions purged (the caller then lets the projectors scrub them: see ``_scrub``)."""
        engine = self._engine
        state = engine.existing(session_id)
        if state.status == ev.PURGED:
            return []
        victims = [session_id, *queries.descendants(engine.projected(), session_id)]
        for victim in victims:
            self._purge_one(victim, reason, by)
        return victims

    def _scrub(self, victims: list[str]) -> None:
        """Inside the purge's transaction, once for all the sessions it purged: every projector removes what
        it still holds of their text (the search index is scrubbed once, not once per session)."""
        engine = self._engine
        engine.project_pending()  # the purged events first: they delete the rows the projectors then scrub
        if victims:
            engine.runner.purged(engine.storage, victims, engine.storage.head.position)
            engine.storage.set_pending_scrub(True)  # cleared once the WAL is empty of the text (``_truncate_wal``)

    def _purge_one(self, session_id: str, reason: str, by: str | None) -> None:
        engine = self._engine
        storage = engine.storage
        redacted = storage.session_version(session_id) or 0

        def decide(state: Session | None) -> ev.Event | None:
            if state is None or state.status == ev.PURGED:
                return None
            return ev.Purged(reason=reason, by=by, redacted=redacted)

        engine.run(session_id, ev.PURGED, decide, expected_version=None, event_id=None)
        storage.redact_session(session_id, storage.head.position)
        storage.drop_session_snapshots(session_id)
        engine.forget(session_id)

    def _truncate_wal(self) -> None:
        """After a purge committed: empty the WAL, where old copies of the purged pages would otherwise
        linger. It does not wait: while another connection's read transaction holds an older snapshot the
        WAL cannot be emptied, so the scrub stays pending (``verify`` reports it) and is finished at the
        first moment it can: this ledger's next write, its close, the next open, gc or verify."""
        engine = self._engine
        engine.scrub_pending = True
        if not engine.finish_scrub():
            log.warning(
                "a reader holds an older snapshot, so the purged text stays in the WAL for now; the scrub finishes"
                " at the next write, close, open, gc or verify once it lets go"
            )

    def purge_completed(
        self, older_than: timedelta | float, *, by: str | None = None, progress: Progress | None = None
    ) -> list[str]:
        """Purge every session that ended (completed, failed or abandoned) more than ``older_than``
        ago (a timedelta or a number of days); returns their ids."""
        engine = self._engine
        engine.outside_batch("purge")
        check_progress(progress)
        span = duration_arg(older_than, "older_than", 86_400)
        who = check_text(by, "by", self._limits.max_name_bytes, None)
        cutoff = before(engine.clock(), span, "older_than")
        with engine.write("purge_completed"):
            ids = queries.ended_before(engine.projected(), cutoff)
            reason = f"retention: ended more than {span.days} days ago" if span.days else f"retention: ended more than {span} ago"
            victims: list[str] = []
            for done, sid in enumerate(ids, 1):
                victims += self._purge(sid, reason, who)
                if progress is not None:
                    progress(done, len(ids))
            self._scrub(victims)
        if ids:
            self._truncate_wal()
        return ids

    # -- idle sessions -----------------------------------------------------------------

    def cleanup(self, max_idle: timedelta | float, *, progress: Progress | None = None) -> list[str]:
        """Complete, as ``abandoned``, every active session idle longer than ``max_idle`` (a timedelta
        or seconds); returns their ids. The seeds' expiry task, as events."""
        engine = self._engine
        check_progress(progress)
        span = duration_arg(max_idle, "max_idle", 1)
        cutoff = before(engine.clock(), span, "max_idle")
        with engine.write("cleanup"):
            ids = queries.idle_since(engine.projected(), cutoff)
            for done, sid in enumerate(ids, 1):
                self._commands.complete_session(sid, "abandoned", reason=f"idle for more than {span}")
                if progress is not None:
                    progress(done, len(ids))
        engine.finish_scrub(look=True)  # gc is a moment to finish a purge's pending scrub
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
