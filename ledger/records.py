"""Records: what an integration keeps in a session beside its conversation (checkpoints, say), as events.

``set_record`` appends a ``record_set`` event (``kind``, ``key``, a JSON
``value``, opaque ``blob`` bytes, an optional ``group``) and ``remove_records``
a ``records_removed`` one; both are commands like any other (validated, limited,
hash-chained, ``expected_version`` and ``event_id`` honoured, refused on a
closed or purged session). The session's state only counts them in its
version, so they never make a session slower to load. ``record`` and
``records`` read them back through the ``records`` index (``projections.records``):
by key, key range, group or position, now or as of a past version, position or
time. A purge removes their payloads as it removes every other; an export
carries them; a replay, a rebuild and ``verify(projections=True)`` rebuild the
index from the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from projections import records as rq

from . import events as ev
from .commands import check_open
from .engine import Engine
from .errors import InvalidInput, SessionNotFound
from .session import Session
from .times import time_arg
from .validation import (
    Limits,
    check_blob,
    check_id,
    check_int,
    check_key,
    check_keys,
    check_page_size,
    check_record,
    check_removal,
)

MAX_RECORDS = 100_000  # records one read may return


class Records:
    """``set_record``, ``remove_records``, ``record`` and ``records``, over one engine."""

    def __init__(self, engine: Engine, limits: Limits) -> None:
        self._engine = engine
        self._limits = limits

    # -- commands -------------------------------------------------------------------

    def set_record(
        self,
        session_id: str,
        kind: str,
        key: str,
        value: Any = None,
        *,
        blob: bytes | None = None,
        group: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Set the session's record of ``kind`` and ``key`` (replacing the one standing): a JSON ``value``,
        opaque ``blob`` bytes, an optional ``group`` to read it with others. Returns the new version.

        ``kind``, ``key`` and ``group`` follow the key rules (1-256 bytes of UTF-8, no NUL); value and
        blob together are at most ``Limits.max_record_bytes``. Raises ``SessionNotFound``,
        ``SessionClosed`` (a record needs an open session, as data does), ``InvalidInput`` or ``LimitExceeded``.
        """
        sid = check_id(session_id, "session_id")
        data = check_blob(blob, sid)
        clean = check_record(kind, key, value, data, group, self._limits, sid)
        limits = self._limits
        event = ev.RecordSet(kind=check_key(kind, "kind", limits, sid), key=check_key(key, "key", limits, sid),
                             value=clean, blob=data, group=None if group is None else check_key(group, "group", limits, sid))

        def decide(state: Session | None) -> ev.Event:
            check_open(state, "set a record")
            return event

        return self._engine.run(sid, event.type, decide, expected_version=expected_version, event_id=event_id)[1]

    def remove_records(
        self,
        session_id: str,
        kind: str | None = None,
        keys: Iterable[str] | None = None,
        *,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Take records out of the session's view: these ``keys`` of ``kind``, every record of ``kind``
        (no keys), or every record (no kind). The log keeps them: a read as of an earlier moment still
        sees them, and only a purge erases them. Removing nothing writes nothing. Returns the version."""
        sid = check_id(session_id, "session_id")
        name, wanted = check_removal(kind, keys, self._limits, sid)
        engine = self._engine

        def decide(state: Session | None) -> ev.Event | None:
            check_open(state, "remove records")
            standing = set(rq.record_keys(engine.projected(), sid, name))
            if wanted is None:
                return ev.RecordsRemoved(kind=name) if standing else None
            gone = tuple(key for key in wanted if key in standing)
            return ev.RecordsRemoved(kind=name, keys=gone) if gone else None

        noop = ev.RecordsRemoved(kind=name, keys=wanted)
        return engine.run(sid, noop.type, decide, expected_version=expected_version, event_id=event_id, noop=noop)[1]

    # -- reads ------------------------------------------------------------------------

    def record(
        self,
        session_id: str,
        kind: str,
        key: str,
        *,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> rq.Record | None:
        """The session's record of ``kind`` and ``key`` (None when there is none), now or as it stood
        right after a ``version``, a global ``position`` or an instant ``at``. Raises ``SessionNotFound``."""
        sid = check_id(session_id, "session_id")
        check_key(kind, "kind", self._limits, sid)
        check_key(key, "key", self._limits, sid)
        with self._engine.read("record") as storage:
            cut = self._cut(sid, version, position, at)
            return rq.get_record(storage.connection, sid, kind, key, cut)

    def records(
        self,
        session_id: str | None,
        kind: str,
        *,
        keys: Iterable[str] | None = None,
        prefix: str | None = None,
        before: str | None = None,
        after: str | None = None,
        group: str | None = None,
        after_position: int | None = None,
        by_position: bool = False,
        descending: bool = False,
        limit: int | None = None,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> list[rq.Record]:
        """The records of ``kind`` in a session (None: in every session) matching every filter given:
        one of ``keys``, keys starting with ``prefix``, sorting before or after a key, in ``group``, set
        after a global position (``after_position``). In key order, or log order with ``by_position``;
        ``descending`` reverses it; ``limit`` (1-100000) keeps the first ones. Now, or as of a ``version``,
        ``position`` or ``at`` (one of them; ``version`` needs a session). Raises ``SessionNotFound``."""
        sid = None if session_id is None else check_id(session_id, "session_id")
        limits = self._limits
        check_key(kind, "kind", limits, sid)
        wanted = None if keys is None else check_keys(keys, limits, sid)
        for name, text in (("prefix", prefix), ("before", before), ("after", after), ("group", group)):
            if text is not None and (text != "" or name == "group"):
                check_key(text, name, limits, sid)
        if after_position is not None:
            check_int(after_position, "after_position", sid)
        if limit is not None:
            check_page_size(limit, MAX_RECORDS)
        for name, flag in (("by_position", by_position), ("descending", descending)):
            if not isinstance(flag, bool):
                raise InvalidInput(f"{name} must be True or False; got {flag!r}", field=name)
        if sid is None and version is not None:
            raise InvalidInput("version needs a session_id", field="version")
        with self._engine.read("records") as storage:
            cut = self._cut(sid, version, position, at)
            return rq.find_records(
                storage.connection, sid, kind, keys=wanted, prefix=prefix, before=before, after=after, group=group,
                after_position=after_position, cut=cut, by_position=by_position, descending=descending, limit=limit,
            )

    def _cut(self, session_id: str | None, version: int | None, position: int | None, at: datetime | None) -> int | None:
        """Inside a read: the global position a read stands at (None: now), after checking the session exists."""
        engine = self._engine
        storage = engine.storage
        if session_id is not None:
            if version is not None or at is not None:
                target = engine.target(session_id, version, position, at)
                if target is not None:
                    (event,) = storage.iter_session(session_id, after_version=target - 1, until_version=target)
                    return event.position
            elif storage.latest(session_id) is None:
                raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
        given = [name for name, value in (("version", version), ("position", position), ("at", at)) if value is not None]
        if len(given) > 1:
            raise InvalidInput(f"give at most one of version, position and at (got {', '.join(given)})", field=given[1])
        if position is not None:
            return check_int(position, "position", session_id)
        if at is not None:
            return storage.position_at(time_arg(at, "at", session_id))
        return None
