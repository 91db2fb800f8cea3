"""Reads: states now and as of a target, the conversation, the audit timeline, and the queries.

Every read runs in one read transaction of the engine, so it sees one
moment of the ledger; states come back as copies the caller may keep. The
listings, search and usage are the projections' queries (``projections``),
run on the storage's connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import msgspec

from projections import analytics, queries, search, trends

from . import events as ev
from .chain import Digest
from .engine import Engine
from .errors import InvalidInput
from .events import RecordedEvent
from .lineage import segments
from .session import Message, Session, tokens_dict
from .snapshots import decode_state, encode_state
from .times import parse_time
from .validation import Limits, check_choice, check_id, check_int, check_key, check_seconds, check_strings

_READ_CHUNK = 1000
_decode_blocks = msgspec.json.Decoder(list[dict[str, Any]]).decode
_copy_encoder = msgspec.msgpack.Encoder()


def _copy(value: Any) -> Any:
    # A deep copy of a JSON-compatible value, so callers can never mutate cached state.
    return msgspec.msgpack.decode(_copy_encoder.encode(value))


class Reads:
    """The read side of the facade, over one engine."""

    def __init__(self, engine: Engine, limits: Limits) -> None:
        self._engine = engine
        self._limits = limits

    # -- states ---------------------------------------------------------------------

    def get_session(
        self, session_id: str, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Session:
        """The session's state now, or right after a ``version``, a global ``position`` or an instant ``at``.

        Raises ``SessionNotFound`` (also for a time or position before it existed) and ``InvalidInput``.
        """
        sid = check_id(session_id, "session_id")
        with self._engine.read("get_session"):
            state = self._engine.view(sid, version, position, at)
        return decode_state(encode_state(state))

    def get_metadata(
        self,
        session_id: str,
        key: str | None = None,
        *,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> Any:
        """All metadata as a dict, or one key's value (None when the key is absent); now or as of a target."""
        return self._keyed("metadata", session_id, key, version, position, at)

    def get_data(
        self,
        session_id: str,
        key: str | None = None,
        *,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> Any:
        """All workflow data as a dict, or one key's value (None when the key is absent); now or as of a target."""
        return self._keyed("data", session_id, key, version, position, at)

    def _keyed(
        self, what: str, session_id: str, key: str | None, version: int | None, position: int | None, at: datetime | None
    ) -> Any:
        # ``what`` is "metadata" or "data": the whole mapping, or one key's value, as a copy.
        sid = check_id(session_id, "session_id")
        if key is not None:
            check_key(key, f"{what} key", self._limits, sid)
        with self._engine.read(f"get_{what}"):
            values = getattr(self._engine.view(sid, version, position, at), what)
        return _copy(values if key is None else values.get(key))

    def messages(
        self,
        session_id: str,
        *,
        last: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
        roles: Iterable[str] | None = None,
    ) -> list[Message]:
        """The effective conversation in order (after restores and forks, the one they lead to), now or
        as of a target: all of it, the latest ``last`` messages (still in order), or one page of it
        (``limit`` messages after ``offset``); with ``roles``, only the messages of those roles (a page is
        then a page of them; ``last`` counts every message, so it does not go with ``roles``)."""
        sid = check_id(session_id, "session_id")
        wanted: tuple[str, ...] = ()
        if roles is not None:
            wanted = tuple(check_choice(r, "roles", ev.ROLES, sid) for r in check_strings(roles, "roles"))
            if last is not None:
                raise InvalidInput(f"session {sid!r}: give last or roles, not both", session_id=sid, field="roles")
        if limit is not None:
            check_int(limit, "limit", sid)
        check_int(offset, "offset", sid)
        if last is not None:
            check_int(last, "last", sid)
            if limit is not None or offset:
                raise InvalidInput(f"session {sid!r}: give last, or limit and offset, not both", session_id=sid,
                                   field="last")
        with self._engine.read("messages") as storage:
            state = self._engine.view(sid, version, position, at)
            if last is not None:
                limit, offset = last, max(state.message_count - last, 0)
            rows = queries.conversation(
                storage.connection, segments(state), limit=limit, offset=offset, hidden=state.hidden, roles=wanted
            )
        return [
            Message(
                role=role,
                content=content,
                tool_name=tool_name,
                invocation_id=invocation_id,
                model=model,
                tokens=tokens_dict(tokens_in, tokens_out, cache_read, cache_creation, reasoning),
                recorded_at=parse_time(recorded_at),
                version=version,
                position=position,
                blocks=None if blocks is None else _decode_blocks(blocks),
            )
            for (role, content, tool_name, invocation_id, model, tokens_in, tokens_out, recorded_at, version, position,
                 blocks, cache_read, cache_creation, reasoning) in rows
        ]

    def statistics(
        self, session_id: str, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> analytics.Statistics:
        """A session's figures, now or as of a target: counts by role, invocations by status, tools with
        count and duration each, tokens, cost, first and last activity."""
        sid = check_id(session_id, "session_id")
        with self._engine.read("statistics") as storage:
            state = self._engine.view(sid, version, position, at)
            tools, by_status = analytics.invocation_figures(storage.connection, segments(state))
        return analytics.Statistics(
            session_id=sid,
            status=state.status,
            message_count=state.message_count,
            messages_by_role=dict(sorted(state.messages_by_role.items())),
            invocation_count=state.invocation_count,
            invocations_by_status=by_status,
            total_duration_ms=state.total_duration_ms,
            tools_used=state.tools_used,
            tools=tools,
            tokens_in=state.tokens_in,
            tokens_out=state.tokens_out,
            tokens_cache_read=state.tokens_cache_read,
            tokens_cache_creation=state.tokens_cache_creation,
            tokens_reasoning=state.tokens_reasoning,
            estimated_cost=state.estimated_cost,
            first_activity=state.created_at,
            last_activity=state.updated_at,
            duration_s=(state.updated_at - state.created_at).total_seconds(),
        )

    # -- the log ----------------------------------------------------------------------

    def history(self, session_id: str | None = None, *, after: int = 0) -> Iterator[RecordedEvent]:
        """The audit timeline: recorded events with position > ``after``, of one session or all, in order.

        Reads in chunks, so other threads can append while a long history is walked.
        """
        check_int(after, "after")
        sid = None if session_id is None else check_id(session_id, "session_id")
        if sid is not None:
            with self._engine.read("history"):
                self._engine.existing(sid)
        return self._history(sid, after)

    def _history(self, session_id: str | None, after: int) -> Iterator[RecordedEvent]:
        while True:
            with self._engine.read("history") as storage:
                chunk = storage.read(after=after, limit=_READ_CHUNK, session_id=session_id)
            yield from chunk
            if len(chunk) < _READ_CHUNK:
                return
            after = chunk[-1].position

    def follow(
        self, session_id: str | None = None, *, after: int = 0, poll: float = 1.0, timeout: float | None = None
    ) -> Iterator[RecordedEvent]:
        """The audit timeline as it grows: every event after ``after`` (of one session or all), then each
        new one as any process appends it, until ``timeout`` seconds have passed (None: until closed).

        It looks again every ``poll`` seconds; on PostgreSQL a notification from the appending
        connection wakes it at once. It always re-reads by position, so a lost notification delays an
        event and never drops one.
        """
        check_seconds(poll, "poll", low=0.001)
        if timeout is not None:
            check_seconds(timeout, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        last = check_int(after, "after")
        for event in self.history(session_id, after=after):
            last = event.position
            yield event
        while deadline is None or time.monotonic() < deadline:
            wait = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            self._engine.wait_for_appends(wait)
            for event in self._history(session_id, last):
                last = event.position
                yield event

    @property
    def last_position(self) -> int:
        """The position of the newest event (0 for an empty ledger)."""
        with self._engine.read("last_position") as storage:
            return storage.head.position

    def digest(self) -> Digest:
        """The chain head (last position and its hash)."""
        with self._engine.read("digest") as storage:
            head = storage.head
        return Digest(head.position, head.hash.hex())

    # -- queries ------------------------------------------------------------------------

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        status: str | Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        any_tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        text: str | None = None,
        parent_id: str | None = None,
        order_by: str = "created_at",
        descending: bool = True,
        limit: int = 100,
        cursor: str | None = None,
    ) -> queries.Page:
        """Sessions matching every filter given, a page at a time; ``Page.cursor`` fetches the next.

        ``tags``: all of them; ``any_tags``: any of them; ``metadata``: {key: value}
        equality, or ``ANY`` for the key's presence; ``text``: words in the
        conversation; ``limit``: 1-10000. Raises ``InvalidInput`` for a bad filter.
        The keywords are the fields of ``SessionFilter``.
        """
        plan = queries.plan_list(
            queries.SessionFilter(
                user_id=user_id, status=status, tags=tags, any_tags=any_tags, metadata=metadata,
                created_after=created_after, created_before=created_before, updated_after=updated_after, text=text,
                parent_id=parent_id, order_by=order_by, descending=descending, limit=limit, cursor=cursor,
            ),
            self._engine.storage.dialect,
        )
        if plan.needs_search:  # validated first: a rejected listing writes nothing, not even the index
            self._engine.level_lazy("search")
        with self._engine.query("list_sessions") as connection:
            return queries.run_list(connection, plan)

    def find_sessions_by_metadata(self, /, filters: Mapping[str, Any], **options: Any) -> queries.Page:
        """Sessions whose metadata has every given key with the given value (``ANY``: just the key)."""
        return self.list_sessions(metadata=filters, **options)

    def sessions_by_tag(self, /, tag: str, **options: Any) -> queries.Page:
        """Sessions carrying the tag."""
        return self.list_sessions(tags=[tag], **options)

    def starred_sessions(self, /, **options: Any) -> queries.Page:
        """Sessions whose metadata key ``is_starred`` is true."""
        return self.list_sessions(metadata={"is_starred": True}, **options)

    def search_messages(
        self, query: str, *, session_id: str | None = None, role: str | None = None, limit: int = 20
    ) -> list[search.SearchHit]:
        """Full-text search over every conversation: the best ``limit`` messages matching ``query``, best
        first (a hit's ``rank``: higher is better).

        The query syntax (words, "phrases", ``OR``, ``NOT``/``-``, ``prefix*``, parentheses) is
        ``projections.search_syntax.SEARCH_SYNTAX_HELP``; a query that cannot be read is ``InvalidInput``
        naming ``query``. ``session_id`` limits it to that session's effective conversation (inherited
        messages included).
        """
        sid = None if session_id is None else check_id(session_id, "session_id")
        if role is not None:
            check_choice(role, "role", ev.ROLES, sid)
        plan = search.plan_search(query, session_id=sid, role=role, limit=limit, dialect=self._engine.storage.dialect)
        if sid is not None:
            with self._engine.read("search_messages"):
                self._engine.existing(sid)
        self._engine.level_lazy("search")  # validated first: a rejected search writes nothing, not even the index
        with self._engine.query("search_messages") as connection:
            return search.run_search(connection, plan)

    def usage(
        self, *, by: str = "tool", since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Usage grouped by tool, user, model, day or status: sessions, messages, invocations, tokens, cost, durations."""
        with self._engine.query("usage") as connection:
            return analytics.usage(connection, by, since, until)

    def lifecycle(self, *, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        """Per day: sessions created, completed, failed, abandoned and purged (``projections.trends``)."""
        with self._engine.query("lifecycle") as connection:
            return trends.lifecycle_by_day(connection, since, until)

    def tool_health(self, *, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
        """Per tool: invocations, errors (status not ok) and error rate, cost, p50 and p95 duration."""
        with self._engine.query("tool health") as connection:
            return trends.tool_health(connection, since, until)

    def sessions_by_status(self) -> list[dict[str, Any]]:
        """Sessions per status, purged ones included: ``status``, ``sessions``, ``messages``, ``invocations``,
        ``tokens_in``, ``tokens_out`` and ``cost``, so the rows add up to the whole ledger."""
        with self._engine.query("sessions by status") as connection:
            return analytics.sessions_by_status(connection)
