"""A Google ADK session service (``google-adk`` 2.x) stored in the ledger: ``LedgerSessionService``.

    from google.adk.runners import Runner
    from ledger import Ledger
    from ledger.integrations.adk import LedgerSessionService

    service = LedgerSessionService(Ledger("sessions.db"))
    runner = Runner(agent=agent, app_name="support", session_service=service)

It is a ``google.adk.sessions.BaseSessionService``: ``create_session``,
``get_session`` (with ``GetSessionConfig``: ``num_recent_events``,
``after_timestamp``), ``list_sessions``, ``delete_session``, ``append_event``
and ``get_user_state``, keyed by app name, user id and session id, with ADK's
state scopes. Every method is a coroutine that runs the ledger in a worker
thread, so the event loop never waits on SQLite or PostgreSQL.

Where things go
---------------
- An ADK session is one ledger session. Its id is derived from (app name, user
  id, session id): ``adk:<app>:<user>:<session>``, each part kept where it is
  made of ``[A-Za-z0-9_-]`` and escaped as ``.XX`` (its UTF-8 bytes in hex)
  elsewhere, so different triples never meet; a triple too long for the
  ledger's 128 characters becomes ``adk-h:`` and a SHA-256 of it. The originals
  are in the session's metadata (``adk.app``, ``adk.user_id``,
  ``adk.session_id``, with ``integration: google-adk``), and the user id is
  also the ledger session's ``user_id``, so ``list_sessions(app, user)`` is the
  ledger's listing by user id, an index search that reads only that user's
  sessions however many the ledger holds.
- Each event is one message (``ledger.integrations.adk_events``): role, content
  blocks (text, thoughts, function calls and responses, images and files), model
  and token usage from ``usage_metadata``, so the conversation, search, usage and
  export see it; every block keeps the rest of its part, and the first block the
  rest of the event, so ``get_session`` returns events equal to those appended.
- Session state (keys without a prefix) is the ledger session's ``data``, one key
  per state key; ``app:`` state is the data of one ledger session per app
  (``adk-app:<app>``), ``user:`` state of one per app and user
  (``adk-user:<app>:<user>``), made on their first write; ``temp:`` state is never
  stored. ``get_session`` and ``list_sessions`` merge the three as ADK does
  (``app:`` and ``user:`` keys carry their prefix). Values are stored in their
  JSON form (a value JSON cannot hold is stored as its ``str``, as ADK's database
  services do).
- ``last_update_time`` is the ledger session's creation time (the ledger's clock)
  until an event is appended, then the latest event's ``timestamp`` (ADK's own
  rule), kept in the metadata key ``adk.last_update_time``.

Writes
------
``append_event`` is one ledger batch: the message, the session's state keys,
``adk.last_update_time`` and the ``app:``/``user:`` state, all or nothing. A
session object remembers the ledger version and position it was read or written
at (in ADK's storage revision marker); appending through an object that another
writer has overtaken (with an event, or a change of the session's state) raises
ADK's ``StaleSessionError`` and writes nothing. Metadata, tags and invocations
that other code adds to the ledger session annotate it and make no object stale.
(An object without the marker, built by hand, falls back to ADK's database rule:
stale when the stored update time is later and its latest event is not the
object's.) The same event delivered twice (an equal copy) is stored once, as
ADK's in-memory service does; different events sharing an id are both kept.
Partial events are not stored. Events come back in the order they were appended
(the log's order, as ADK's in-memory service keeps them), except that events next
to each other with the same ``timestamp`` come back ordered by id, as ADK's
database services order them: a tie reads the same every time, and
``num_recent_events`` cuts it at the same place.

``delete_session`` purges the ledger session: its payloads leave the log, the
read tables and the snapshots, and a ``purged`` event records that it was
deleted; ``get_session`` then returns None. Creating the same (app, user,
session) again makes a new ledger session, ``<id>:2`` (then ``:3``, ...).

Errors: ADK's ``AlreadyExistsError``, ``SessionNotFoundError`` and
``StaleSessionError`` where ADK's services raise them; a value over the ledger's
limits (``Limits``: a message's content, a state value, a key) raises the
ledger's ``InvalidInput`` or ``LimitExceeded`` and writes nothing. A ledger
session that was completed or abandoned (``cleanup``) can still be read; appending
to it raises ``SessionClosed``. (Do not await these methods inside a
``with ledger.batch():`` block on the event loop's thread: the worker thread
would wait for the batch, and the batch for the worker.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import string
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

try:
    from google.adk.errors import StaleSessionError
    from google.adk.errors.already_exists_error import AlreadyExistsError
    from google.adk.errors.session_not_found_error import SessionNotFoundError
    from google.adk.events.event import Event
    from google.adk.platform import uuid as platform_uuid
    from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig, ListSessionsResponse
    from google.adk.sessions.session import Session
    from google.adk.sessions.state import State
    from pydantic_core import to_jsonable_python
except ImportError as exc:  # the optional extra is missing: one line naming it
    from ..extras import missing_extra

    raise missing_extra("adk", "ledger.integrations.adk", exc) from exc

from .. import Ledger, Message, SessionExists, SessionNotFound, SessionSummary
from .. import Session as LedgerState
from . import run_to_completion
from .adk_events import canonical, delivery_id, event_json, foreign_event_json, message_fields

__all__ = ["INTEGRATION", "LedgerSessionService", "ledger_id_for"]

INTEGRATION = "google-adk"
"""The value of the ``integration`` metadata key on the ledger sessions this service creates."""

META_APP, META_USER, META_SESSION = "adk.app", "adk.user_id", "adk.session_id"
META_UPDATED = "adk.last_update_time"
META_SCOPE, META_SCOPE_APP, META_SCOPE_USER = "adk.scope", "adk.scope_app", "adk.scope_user"
# The ledger events that change what ADK sees of a session (its events or its state); the others
# (metadata, tags, invocations, ...) annotate it and never make a session object stale.
_CHANGES = frozenset({"message_added", "message_retracted", "conversation_cleared", "data_set", "data_deleted",
                      "data_cleared", "restored"})
_STALE = (
    "The session has been modified in storage since it was loaded. Please reload the session before appending"
    " more events."
)
_MARKER = "ledger:"
_PAGE = 1000  # sessions per ledger listing page
_CHUNK = 100  # messages read per step when walking back to after_timestamp
_SAFE = frozenset(string.ascii_letters + string.digits + "_-")
_READABLE = 120  # leaves room for an incarnation suffix (":N") within the ledger's 128 characters
_T = TypeVar("_T")


def _escape(text: str) -> str:
    return "".join(
        ch if ch in _SAFE else "".join(f".{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass")) for ch in text
    )


def _ledger_id(kind: str, *parts: str) -> str:
    readable = kind + ":" + ":".join(_escape(part) for part in parts)
    if len(readable) <= _READABLE:
        return readable
    digest = hashlib.sha256(canonical([kind, *parts]).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}-h:{digest}"


def ledger_id_for(app_name: str, user_id: str, session_id: str, incarnation: int = 1) -> str:
    """The ledger session id of an ADK session (its ``incarnation``-th, after deletes and re-creations).

    ``LedgerSessionService.ledger_session_id`` finds the one that exists now.
    """
    base = _ledger_id("adk", app_name, user_id, session_id.strip())
    return base if incarnation == 1 else f"{base}:{incarnation}"


def _app_scope(app_name: str) -> str:
    return _ledger_id("adk-app", app_name)


def _user_scope(app_name: str, user_id: str) -> str:
    return _ledger_id("adk-user", app_name, user_id)


def _json_safe(state: Mapping[str, Any]) -> dict[str, Any]:
    """State values in their JSON form; a value JSON cannot hold becomes its ``str`` (as ADK's database
    services store it)."""
    try:
        safe = to_jsonable_python(dict(state), inf_nan_mode="null")
    except Exception:  # pydantic-core raises several kinds for an unserialisable value
        safe = to_jsonable_python(dict(state), inf_nan_mode="null", serialize_unknown=True, bytes_mode="base64")
    return dict(safe)


class _Deltas(NamedTuple):
    app: dict[str, Any]
    user: dict[str, Any]
    session: dict[str, Any]


def _split(state: Mapping[str, Any]) -> _Deltas:
    """A state (or state delta) by scope, prefixes removed; ``temp:`` keys dropped."""
    deltas = _Deltas({}, {}, {})
    for key, value in state.items():
        if key.startswith(State.APP_PREFIX):
            deltas.app[key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            deltas.user[key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            deltas.session[key] = value
    return deltas


def _merged(session: Mapping[str, Any], app: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **session,
        **{State.APP_PREFIX + key: value for key, value in app.items()},
        **{State.USER_PREFIX + key: value for key, value in user.items()},
    }



def _ties_by_id(events: list[Event]) -> list[Event]:
    """The events in their order, each run of neighbours sharing a ``timestamp`` ordered by id: ADK's
    database services break ties so, and a tie read twice, or cut by ``num_recent_events``, stays put."""
    run = 0
    keyed: list[tuple[int, str, Event]] = []
    for i, event in enumerate(events):
        if i and event.timestamp != events[i - 1].timestamp:
            run += 1
        keyed.append((run, event.id, event))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in keyed]


def _updated(metadata: Mapping[str, Any], created: float) -> float:
    value = metadata.get(META_UPDATED)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else created


def _mark(session: Session, found: LedgerState) -> None:
    """Remember in the session object the ledger state it reflects (ADK's storage revision marker)."""
    session._storage_update_marker = f"{_MARKER}{found.session_id}@{found.version}@{found.position}"


def _marker(session: Session) -> tuple[str, int, int] | None:
    """(ledger session id, version, position) from a session object this service made, else None."""
    marker = getattr(session, "_storage_update_marker", None)
    if not isinstance(marker, str) or not marker.startswith(_MARKER):
        return None
    ledger_id, _, rest = marker.removeprefix(_MARKER).rpartition("@")
    ledger_id, _, version = ledger_id.rpartition("@")
    return (ledger_id, int(version), int(rest)) if version.isdigit() and rest.isdigit() else None




class LedgerSessionService(BaseSessionService):
    """ADK sessions, their events and their state, kept as ledger sessions.

    ``ledger`` is a ``Ledger`` (shared; the caller closes it) or a path or URL to open one (the service then
    owns it: ``await service.close()``, or ``async with``). ``tags`` and ``metadata`` are added to every
    ledger session this service creates for an ADK session.
    """

    def __init__(
        self,
        ledger: Ledger | str | os.PathLike[str],
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._owns_ledger = not isinstance(ledger, Ledger)
        self.ledger: Ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self._tags = tuple(tags)
        self._metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return f"LedgerSessionService({self.ledger!r})"

    async def close(self) -> None:
        """Close the ledger if this service opened it (a shared ``Ledger`` stays open)."""
        if self._owns_ledger:
            await asyncio.to_thread(self.ledger.close)

    async def __aenter__(self) -> LedgerSessionService:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the session service ---------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (an id is generated when none, or a blank one, is given; a given one is stripped
        of surrounding whitespace) with its initial state, ``app:`` and ``user:`` keys going to their scopes.

        Raises ``AlreadyExistsError`` when the app's user already has a session with that id.
        """
        sid = (session_id or "").strip() or platform_uuid.new_uuid()
        deltas = _split(_json_safe(state or {}))
        return await run_to_completion(lambda: self._create(app_name, user_id, sid, deltas))

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its merged state and its events (all, or as ``config`` limits them); None when
        there is none (or it was deleted)."""
        return await asyncio.to_thread(self._get, app_name, user_id, session_id.strip(), config)

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        """The app's sessions (of one user, or of all users), without their events, with merged state,
        least recently updated first (by ``last_update_time``, then user id, then session id)."""
        return ListSessionsResponse(sessions=await asyncio.to_thread(self._list, app_name, user_id))

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session (purged from the ledger; a ``purged`` event records it); nothing for none."""
        await run_to_completion(lambda: self._delete(app_name, user_id, session_id.strip()))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's ``user:`` state in the app, keys without the prefix; {} when there is none."""
        return await asyncio.to_thread(self._scope, _user_scope(app_name, user_id))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store the event and its state delta in one transaction, then apply it to ``session``.

        A partial event is returned unstored. ``temp:`` state reaches ``session.state`` but is removed from
        the event before it is stored. Raises ``SessionNotFoundError`` for a session that does not exist
        (or was deleted) and ``StaleSessionError`` when ``session`` was overtaken by another writer.
        """
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        recorded = event.model_dump(mode="json", exclude_none=True)
        written = await run_to_completion(lambda: self._append(session, recorded))
        if written is None:  # the same event delivered again: stored once, applied once
            return event
        session.last_update_time = event.timestamp
        _mark(session, written)
        return self._commit_event_to_session(session, event)

    def ledger_session_id(self, app_name: str, user_id: str, session_id: str) -> str | None:
        """The id of the ledger session that holds this ADK session now (None when there is none), to read
        it with the ledger's own methods (``messages``, ``history``, ``statistics``, ...). Blocking."""
        found, _ = self._find(ledger_id_for(app_name, user_id, session_id))
        return None if found is None else found.session_id

    # -- the ledger calls, each in a worker thread ----------------------------------------

    def _state(self, ledger_id: str) -> LedgerState | None:
        try:
            return self.ledger.get_session(ledger_id)
        except SessionNotFound:
            return None

    def _find(self, base: str) -> tuple[LedgerState | None, int]:
        """The live incarnation of an ADK session (None when none) and the number a new one would take.

        Incarnations are made one after another (the next only once the last is purged), so they are
        found by galloping and bisecting over their numbers: O(log n) reads after n deletes.
        """

        def incarnation(number: int) -> LedgerState | None:
            return self._state(base if number == 1 else f"{base}:{number}")

        found = incarnation(1)
        if found is None:
            return None, 1
        low, high = 1, 2  # ``low`` exists and is purged; the live one, if any, is the last that exists
        while found.status == "purged":
            probe = incarnation(high)
            if probe is None:
                break
            found, low, high = probe, high, high * 2
        else:
            return found, 0
        while high - low > 1:
            middle = (low + high) // 2
            probe = incarnation(middle)
            if probe is None:
                high = middle
            elif probe.status != "purged":
                return probe, 0
            else:
                low = middle
        return None, low + 1

    def _scope(self, ledger_id: str) -> dict[str, Any]:
        found = self._state(ledger_id)
        return {} if found is None else dict(found.data)

    def _write_scope(self, ledger_id: str, values: Mapping[str, Any], scope: dict[str, Any]) -> None:
        """Set ``values`` in an app's or a user's state session (made on its first write)."""
        if not values:
            return
        led = self.ledger
        if self._state(ledger_id) is None:
            led.create_session(ledger_id, user_id=scope.get(META_SCOPE_USER),
                               metadata={"integration": INTEGRATION, **scope})
        for key, value in values.items():
            led.set_data(ledger_id, key, value)

    def _write_scopes(self, app_name: str, user_id: str, deltas: _Deltas) -> None:
        self._write_scope(_app_scope(app_name), deltas.app, {META_SCOPE: "app", META_SCOPE_APP: app_name})
        self._write_scope(
            _user_scope(app_name, user_id), deltas.user,
            {META_SCOPE: "user", META_SCOPE_APP: app_name, META_SCOPE_USER: user_id},
        )

    def _create(self, app_name: str, user_id: str, sid: str, deltas: _Deltas) -> Session:
        led = self.ledger
        with led.batch():
            found, number = self._find(ledger_id_for(app_name, user_id, sid))
            if found is not None:
                raise AlreadyExistsError(f"Session with id {sid} already exists.")
            ledger_id = ledger_id_for(app_name, user_id, sid, number)
            metadata = {**self._metadata, "integration": INTEGRATION, META_APP: app_name, META_USER: user_id,
                        META_SESSION: sid}
            try:
                led.create_session(ledger_id, user_id=user_id, tags=self._tags, metadata=metadata)
            except SessionExists as exc:  # another process made it first
                raise AlreadyExistsError(f"Session with id {sid} already exists.") from exc
            for key, value in deltas.session.items():
                led.set_data(ledger_id, key, value)
            self._write_scopes(app_name, user_id, deltas)
            found = led.get_session(ledger_id)
            app, user = self._scope(_app_scope(app_name)), self._scope(_user_scope(app_name, user_id))
        return self._session(found, app_name, user_id, sid, [], app, user)

    def _session(
        self, found: LedgerState, app_name: str, user_id: str, sid: str, events: list[Event],
        app: Mapping[str, Any], user: Mapping[str, Any],
    ) -> Session:
        session = Session(
            id=sid, app_name=app_name, user_id=user_id, state=_merged(found.data, app, user), events=events,
            last_update_time=_updated(found.metadata, found.created_at.timestamp()),
        )
        _mark(session, found)
        return session

    def _get(self, app_name: str, user_id: str, sid: str, config: GetSessionConfig | None) -> Session | None:
        found, _ = self._find(ledger_id_for(app_name, user_id, sid))
        if found is None:
            return None
        events = self._events(found, config)
        app, user = self._scope(_app_scope(app_name)), self._scope(_user_scope(app_name, user_id))
        return self._session(found, app_name, user_id, sid, events, app, user)

    @staticmethod
    def _event(message: Message) -> Event:
        recorded = event_json(message.blocks)
        if recorded is None:  # a message other code wrote to this session
            recorded = foreign_event_json(message.role, message.content, message.recorded_at, message.position)
        return Event.model_validate(recorded)

    def _events(self, found: LedgerState, config: GetSessionConfig | None) -> list[Event]:
        """The events, pinned to the version read, in log order with ties in ``timestamp`` ordered by id:
        all, the latest ``num_recent_events``, and of those the ones after the latest event older than
        ``after_timestamp`` (ADK's in-memory rule)."""
        led, ledger_id, version, count = self.ledger, found.session_id, found.version, found.message_count
        recent = config.num_recent_events if config is not None else None
        after = config.after_timestamp if config is not None else None
        if recent == 0 or count == 0:
            return []
        if after is None and recent is None:
            return _ties_by_id([self._event(message) for message in led.messages(ledger_id, version=version)])
        wanted = count if recent is None else min(recent, count)
        # Walk back from the newest event; past the wanted number, go on through a run of events sharing the
        # oldest one's timestamp, since ordering that run by id decides which of them are the latest.
        newest_first: list[Event] = []
        end = count
        while end > 0:
            start = max(0, end - max(_CHUNK, wanted + 1))
            for message in reversed(led.messages(ledger_id, version=version, offset=start, limit=end - start)):
                event = self._event(message)
                full = len(newest_first) >= wanted and event.timestamp != newest_first[-1].timestamp
                if full or (after is not None and event.timestamp < after):
                    return _ties_by_id(newest_first[::-1])[-wanted:]
                newest_first.append(event)
            end = start
        return _ties_by_id(newest_first[::-1])[-wanted:]

    def _list(self, app_name: str, user_id: str | None) -> list[Session]:
        """One user's sessions: the ledger's listing by user id (its index on ``user_id``; whatever the
        ledger holds besides, and with or without the database's statistics, only that user's sessions are
        read), those of the app kept. All users': the listing by the ``adk.app`` metadata key."""
        led = self.ledger
        filters: dict[str, Any] = {"order_by": "created_at", "descending": False, "limit": _PAGE}
        filters.update({"user_id": user_id} if user_id is not None else {"metadata": {META_APP: app_name}})
        summaries: list[SessionSummary] = []
        cursor = None
        while True:
            page = led.list_sessions(**filters, cursor=cursor)
            summaries.extend(s for s in page.items if s.status != "purged" and s.metadata.get(META_APP) == app_name)
            if page.cursor is None:
                break
            cursor = page.cursor
        app = self._scope(_app_scope(app_name))
        users: dict[str, dict[str, Any]] = {}
        sessions = []
        for summary in summaries:
            owner, sid = summary.metadata.get(META_USER), summary.metadata.get(META_SESSION)
            found = self._state(summary.session_id) if isinstance(owner, str) and isinstance(sid, str) else None
            if found is None or found.status == "purged" or not isinstance(owner, str) or not isinstance(sid, str):
                continue  # not one of ours, or deleted while listed
            if owner not in users:
                users[owner] = self._scope(_user_scope(app_name, owner))
            sessions.append(self._session(found, app_name, owner, sid, [], app, users[owner]))
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return sessions

    def _delete(self, app_name: str, user_id: str, sid: str) -> None:
        found, _ = self._find(ledger_id_for(app_name, user_id, sid))
        if found is not None:
            self.ledger.purge_session(found.session_id, reason="deleted by the ADK session service", by=INTEGRATION)

    def _stale(self, session: Session, found: LedgerState) -> bool:
        """Whether ``session`` misses a change to what ADK sees (an event or state) that another writer made
        to the ledger session since ``session`` was read or written; ``found`` is the state before this write."""
        marker = _marker(session)
        if marker is not None:
            ledger_id, version, position = marker
            if ledger_id != found.session_id:
                return True  # read from a deleted (then re-created) session
            if version == found.version:
                return False
            return any(
                change.type in _CHANGES
                for change in self.ledger.history(ledger_id, after=position)
                if version < change.version <= found.version
            )
        # An object without our marker: ADK's database rule (stale when storage was updated later and its
        # latest event is not the object's latest).
        if _updated(found.metadata, found.created_at.timestamp()) <= session.last_update_time:
            return False
        latest = self.ledger.messages(found.session_id, version=found.version, last=1)
        stored = self._event(latest[0]).id if latest else None
        return stored != (session.events[-1].id if session.events else None)

    def _append(self, session: Session, recorded: dict[str, Any]) -> LedgerState | None:
        """Write one event; returns the ledger session's state after it, None for a re-delivered event."""
        led = self.ledger
        app_name, user_id, sid = session.app_name, session.user_id, session.id
        fields = message_fields(recorded, name_limit=led.limits.max_name_bytes)
        actions = recorded.get("actions")
        delta = actions.get("state_delta") if isinstance(actions, dict) else None
        deltas = _split(delta if isinstance(delta, dict) else {})
        with led.batch():
            found, _ = self._find(ledger_id_for(app_name, user_id, sid))
            if found is None:
                raise SessionNotFoundError(f"Session {sid} not found.")
            ledger_id = found.session_id
            version = led.add_message(
                ledger_id, fields.role, fields.content, tool_name=fields.tool_name,
                invocation_id=fields.invocation_id, model=fields.model, tokens=fields.tokens,
                event_id=delivery_id(ledger_id, recorded),
            )
            if version <= found.version:
                return None  # this very event is stored already
            if self._stale(session, found):
                raise StaleSessionError(_STALE)  # leaving the batch rolls the message back
            for key, value in deltas.session.items():
                led.set_data(ledger_id, key, value)
            led.set_metadata(ledger_id, META_UPDATED, recorded.get("timestamp"))
            self._write_scopes(app_name, user_id, deltas)
            return led.get_session(ledger_id)
