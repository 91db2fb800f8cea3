"""Time travel: state as of a version, position or instant; checkpoints; restore, fork and whole-ledger replay.

Every as-of read costs the nearest snapshot at or before the target plus the
events after it, so it is as fast as a current read. Restore and fork are
events (``restored``, ``forked``) carrying the state they start from, so the
audit trail shows them and the fold stays pure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import msgspec

from projections.base import Progress, ProjectionRunner, check_progress

from . import events as ev
from .chain import ChainChecker, Digest
from .errors import IntegrityError, InvalidInput, SessionNotFound, SessionPurged
from .log import EventLog
from .lifecycle import check_not_purged
from .session import Session, fold, image
from .snapshots import SnapshotStore, retention_victims
from .transactions import Transaction
from .validation import check_id

_COPY_BATCH = 5000


def _normalised(value: Any) -> Any:
    # Tuples become lists, as they will once stored, so the folded payload equals the decoded one.
    return msgspec.json.decode(msgspec.json.encode(value))


class TimeTravel:
    """As-of reads, checkpoints, snapshot retention, restore, fork and replay; mixed into ``Ledger``."""

    _log: EventLog
    _snapshots: SnapshotStore
    _runner: ProjectionRunner
    _cache: Any
    _new_id: Callable[[], str]
    _read: Callable[[str], AbstractContextManager[None]]
    _write: Callable[[str], AbstractContextManager[Transaction]]
    _state: Callable[[str], Session | None]
    _existing: Callable[[str], Session]
    _command: Callable[..., tuple[Session | None, int]]
    _outside_batch: Callable[[str], None]
    durability: str

    # -- resolving a target ------------------------------------------------------------

    def _target(self, session_id: str, version: object, position: object, at: object) -> int | None:
        """Inside a transaction: the version meant by at most one of version/position/at (None: current).

        Costs index lookups only: the current state is not loaded to answer it.
        """
        given = [name for name, value in (("version", version), ("position", position), ("at", at)) if value is not None]
        if len(given) > 1:
            raise InvalidInput(
                f"session {session_id!r}: give at most one of version, position and at (got {', '.join(given)})",
                session_id=session_id,
                field=given[1],
            )
        latest = self._log.latest(session_id)
        if latest is None:
            raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
        current, latest_type = latest
        if not given:
            return None
        if latest_type == "purged" and not (version == current or position is not None and position >= self._log.head.position):
            raise SessionPurged(
                f"session {session_id!r} was purged at version {current}: its earlier states are gone",
                session_id=session_id,
            )
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current:
                raise InvalidInput(
                    f"session {session_id!r} has versions 1 to {current}; got version {version!r}",
                    session_id=session_id,
                    field="version",
                    limit=current,
                )
            return version
        if position is not None:
            if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < 2**63:
                raise InvalidInput(
                    f"session {session_id!r}: position must be an integer >= 0; got {position!r}",
                    session_id=session_id,
                    field="position",
                )
            found = self._log.version_at(session_id, current, position=position)
            where = f"at position {position}"
        else:
            found = self._log.version_at(session_id, current, at=time_arg(at, "at", session_id))
            where = f"at {at}"
        if found == 0:
            raise SessionNotFound(f"session {session_id!r} did not exist yet {where}", session_id=session_id)
        return found

    def _state_at(self, session_id: str, version: int) -> Session:
        """Inside a transaction: the state right after ``version``, from the nearest snapshot and the events after it."""
        current = self._state(session_id)
        if current is not None and current.version == version:
            return current
        base = self._snapshots.load(self._log.conn, session_id, version)
        tail = self._log.iter_session(session_id, after_version=base.version if base else 0, until_version=version)
        state = fold(tail, base)
        if state is None or state.version != version:
            raise IntegrityError(f"session {session_id!r} does not fold to version {version}", session_id=session_id)
        return state

    def _view(self, session_id: str, version: object = None, position: object = None, at: object = None) -> Session:
        """Inside a transaction: the state now, or as of the one target given."""
        target = self._target(session_id, version, position, at)
        return self._existing(session_id) if target is None else self._state_at(session_id, target)

    # -- snapshots ---------------------------------------------------------------------

    def checkpoint(self, session_id: str) -> int:
        """Snapshot the session's current state now; returns the version snapshotted."""
        sid = check_id(session_id, "session_id")
        with self._write("checkpoint"):
            state = self._existing(sid)
            (row_hash,) = self._log.conn.execute(
                "SELECT hash FROM events WHERE session_id = ? AND version = ?", (sid, state.version)
            ).fetchone()
            self._snapshots.save(self._log.conn, state, row_hash.hex(), self._log.head.recorded_at)
        return state.version

    def drop_snapshots(self, keep: int = 3, *, bucket: timedelta | None = timedelta(days=1)) -> int:
        """Apply the retention policy: per session keep the last ``keep`` snapshots plus the newest in each
        ``bucket`` of time (None: no buckets); returns how many were dropped. Only a cache is lost."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise InvalidInput(f"keep must be an integer >= 0; got {keep!r}", field="keep")
        if bucket is not None and (not isinstance(bucket, timedelta) or bucket <= timedelta(0)):
            raise InvalidInput(f"bucket must be a positive timedelta or None; got {bucket!r}", field="bucket")
        with self._write("drop_snapshots"):
            rows = self._log.conn.execute("SELECT session_id, version, created_at FROM snapshots").fetchall()
            victims = retention_victims(rows, keep, bucket)
            self._log.conn.executemany("DELETE FROM snapshots WHERE session_id = ? AND version = ?", victims)
        return len(victims)

    # -- restore and fork --------------------------------------------------------------

    def restore(
        self,
        session_id: str,
        *,
        version: int | None = None,
        at: datetime | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Rewind the session to what it was at a version or instant, by appending a ``restored`` event.

        Its state, metadata, data and conversation become the target's; new
        events continue from there. The events in between stay in the log.
        Returns the new version.
        """
        sid = check_id(session_id, "session_id")
        if version is None and at is None:
            raise InvalidInput(f"session {sid!r}: restore needs a version or an at", session_id=sid, field="version")

        def decide(state: Session | None) -> ev.Event:
            assert state is not None
            check_not_purged(state, "restore it")
            target = self._target(sid, version, None, at)
            assert target is not None
            return ev.Restored(target_version=target, state=_normalised(image(self._state_at(sid, target))))

        return self._command(sid, "restored", decide, expected_version=expected_version, event_id=event_id)[1]

    def fork(
        self,
        session_id: str,
        *,
        version: int | None = None,
        at: datetime | None = None,
        new_session_id: str | None = None,
        event_id: str | None = None,
    ) -> Session:
        """Start a new session from this one's state at a version or instant (now when neither is given).

        The source is untouched; the new session's first event is ``forked``,
        naming the parent and its version. Returns the new session.
        """
        parent = check_id(session_id, "session_id")
        generated = new_session_id is None
        child = check_id(self._new_id() if generated else new_session_id, "new_session_id")

        def decide(state: Session | None) -> ev.Event:
            check_not_purged(self._existing(parent), "fork it")
            target = self._target(parent, version, None, at)
            source = self._existing(parent) if target is None else self._state_at(parent, target)
            return ev.Forked(parent_id=parent, parent_version=source.version, state=_normalised(image(source)))

        state, _ = self._command(
            child, "forked", decide, expected_version=None, event_id=event_id, create=True, generated_id=generated
        )
        assert state is not None
        return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=Session)

    # -- whole-ledger replay -----------------------------------------------------------

    def replay(
        self,
        *,
        into: str | os.PathLike[str],
        until_position: int | None = None,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> Digest:
        """Write a new ledger file holding exactly the events up to the cut, with every projection as it stood then.

        The copy's chain is checked row by row as it is written, so the file
        verifies and its head equals this chain's hash at the cut. Returns that head.
        """
        from .ledger import Ledger

        self._outside_batch("replay")  # the cut must not include rows a batch may still roll back
        check_progress(progress)
        if until_position is not None and until is not None:
            raise InvalidInput("give until_position or until, not both", field="until")
        target_path = new_file_path(into, "into")
        with self._read("replay"):
            head = self._log.head.position
            if until_position is not None:
                if isinstance(until_position, bool) or not isinstance(until_position, int) or until_position < 0:
                    raise InvalidInput(f"until_position must be an integer >= 0; got {until_position!r}", field="until_position")
                cut = min(until_position, head)
            elif until is not None:
                cut = self._log.position_at(time_arg(until, "until", None))
            else:
                cut = head
        projectors = [p for p in self._runner.projectors if not p.builtin]
        # Built under a temporary name and renamed when complete: a failed replay leaves nothing behind.
        scratch = f"{target_path}.partial-{os.getpid()}"
        try:
            with Ledger(scratch, durability=self.durability, snapshot_every=self._snapshots.every,
                        projectors=projectors) as target:
                with target._write("replay"):
                    target._runner.pin(target._log.conn, 0)
                    checker = ChainChecker()
                    for rows in self._copy_batches(cut):
                        if not checker.check(rows):
                            report = checker.report()
                            raise IntegrityError(
                                f"the log is damaged at position {report.first_bad_position}: {report.reason}; run verify"
                            )
                        target._log.insert_rows([_as_stored(row) for row in rows])
                        if progress is not None:
                            progress(checker.position, cut)
                    columns = "session_id, version, position, schema, event_hash, state, created_at"
                    with self._read("replay"):
                        snaps = self._log.conn.execute(
                            f"SELECT {columns} FROM snapshots WHERE position <= ?", (cut,)
                        ).fetchall()
                    if snaps:
                        target._log.conn.executemany(f"INSERT INTO snapshots ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", snaps)
                    target._catch_up()
                digest = target.digest()
            os.replace(scratch, target_path)
            return digest
        finally:
            for leftover in (scratch, f"{scratch}-wal", f"{scratch}-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)

    def _copy_batches(self, cut: int) -> Iterator[list[Any]]:
        """Stored rows up to the cut, as bytes (so damaged text is reported by the chain check, not raised)."""
        after = 0
        while after < cut:
            with self._read("replay"):
                rows = [row for row in self._log.raw_rows(after=after, limit=_COPY_BATCH) if row[0] <= cut]
            if not rows:
                return
            yield rows
            after = rows[-1][0]


def time_arg(value: object, field: str, session_id: str | None) -> str:
    """An aware datetime argument as stored-time text (``InvalidInput`` naming ``field`` otherwise)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be a timezone-aware datetime; got {value!r}", session_id=session_id, field=field
        )
    try:
        return ev.format_time(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc}", session_id=session_id, field=field) from exc


def _as_stored(row: Any) -> tuple[Any, ...]:
    # Text columns come back as bytes from raw_rows; a checked row decodes cleanly.
    return tuple(v.decode() if isinstance(v, bytes) and i not in (8,) else v for i, v in enumerate(row))


def new_file_path(path: object, field: str) -> str:
    """A path for a file this call creates: a real file name, not in use yet."""
    text = path_arg(path, field)
    if text == ":memory:" or text.startswith("file:"):
        raise InvalidInput(f"{field} must be a file path; got {text!r}", field=field)
    if os.path.exists(text) and (os.path.isdir(text) or os.path.getsize(text) > 0):
        raise InvalidInput(f"{field} {text!r} already exists; this writes a new file", field=field)
    return text


def path_arg(path: object, field: str) -> str:
    """A file system path given as text or ``os.PathLike``: non-empty, no NUL, valid Unicode."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"{field} must be a file path; got {path!r}", field=field)
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidInput(f"{field} must be a file path; got {text!r}", field=field)
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not a usable file name (lone surrogate)", field=field) from exc
    return text
