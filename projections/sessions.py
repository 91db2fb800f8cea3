"""The built-in read tables: plain SQL, folded from the log, for the ledger's queries and any SQL tool.

``sessions`` (one row per session, with its counters), ``session_tags``,
``session_metadata`` and ``session_data`` (values as canonical JSON text:
objects with sorted keys), ``messages`` (with the FTS5 index
``messages_fts`` on ``content``), ``invocations``, and ``session_segments``
(which version ranges of which sessions make up a session's effective
conversation after restores and forks; ``last`` NULL means "still open"). Times are UTC ISO-8601
text, so they sort and compare as text. One projector owns them all, so an
append costs one projector call.

The projector speaks both dialects: the statements below are SQLite's, and
where PostgreSQL needs other words (upserts, JSON, the order of tags and
metadata, NUL in message content) a ``_PG_`` twin stands beside them; the
PostgreSQL tables are in ``projections.postgres``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ledger import events as ev
from ledger.blocks import message_text
from ledger.events import RecordedEvent
from ledger.lineage import merge_segments
from ledger.times import format_time, parse_time

from . import analytics
from . import views as tool_views
from .base import Connection, Projector, dialect_of
from .postgres import ORDER_STEP, SESSIONS_SCHEMA

_canonical = msgspec.json.Encoder(order="sorted")
_plain_json = msgspec.json.Encoder()

# STRICT tables need SQLite 3.37 (2021); with an older library the tables are made as before.
_STRICT = sqlite3.sqlite_version_info >= (3, 37, 0)


def json_text(value: Any) -> str:
    """A JSON value as the canonical text stored in the read tables (objects with sorted keys)."""
    return _canonical.encode(value).decode()


# A run of a session's messages and touches, added up (``_Fold``).
# The token counters every message and invocation adds to: the totals and their cache and reasoning parts.
_TOKENS = ("tokens_in", "tokens_out", "tokens_cache_read", "tokens_cache_creation", "tokens_reasoning")
_ADD_TOKENS = ", ".join(f"{column} = {column} + ?" for column in _TOKENS)
_ADVANCE = (
    f"UPDATE sessions SET version = ?, position = ?, updated_at = ?, message_count = message_count + ?, {_ADD_TOKENS}"
    " WHERE session_id = ?"
)
_INVOCATION = (
    "UPDATE sessions SET version = ?, position = ?, updated_at = ?,"
    " invocation_count = invocation_count + 1, total_duration_ms = total_duration_ms + ?,"
    f" {_ADD_TOKENS}, estimated_cost = estimated_cost + ?,"
    " tools_used = CASE WHEN EXISTS (SELECT 1 FROM json_each(tools_used) WHERE value = ?)"
    " THEN tools_used ELSE json_insert(tools_used, '$[#]', ?) END"
    " WHERE session_id = ?"
)
_COMPLETED = (
    "UPDATE sessions SET version = ?, position = ?, updated_at = ?, status = ?, completed_at = ?,"
    " completion_reason = ? WHERE session_id = ?"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (position, session_id, version, role, content, tool_name, invocation_id, model,"
    " tokens_in, tokens_out, recorded_at, blocks, tokens_cache_read, tokens_cache_creation, tokens_reasoning)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_INVOCATION = (
    "INSERT INTO invocations (position, session_id, version, invocation_id, tool_name, duration_ms, tokens_in,"
    " tokens_out, cost, status, artifact, recorded_at, tokens_cache_read, tokens_cache_creation, tokens_reasoning)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# PostgreSQL's twins. ``tools_used`` gains the tool as the JSON text msgspec writes for it, which is the text
# SQLite's json_insert writes (same escapes), so the column holds the same text on both backends.
_PG_INVOCATION = (
    "UPDATE sessions SET version = ?, position = ?, updated_at = ?,"
    " invocation_count = invocation_count + 1, total_duration_ms = total_duration_ms + ?,"
    f" {_ADD_TOKENS}, estimated_cost = estimated_cost + ?,"
    " tools_used = CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements_text(tools_used::jsonb) AS t (value)"
    " WHERE t.value = ?::text) THEN tools_used WHEN tools_used = '[]' THEN '[' || ?::text || ']'"
    " ELSE left(tools_used, -1) || ',' || ?::text || ']' END"
    " WHERE session_id = ?"
)
_PG_INSERT_MESSAGE = (
    "INSERT INTO messages (position, session_id, version, role, content, tool_name, invocation_id, model,"
    " tokens_in, tokens_out, recorded_at, blocks, tokens_cache_read, tokens_cache_creation, tokens_reasoning,"
    " content_exact) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PG_INSERT_TAG = "INSERT INTO session_tags (session_id, tag, rowid) VALUES (?, ?, ?)"
_PG_INSERT_METADATA = "INSERT INTO session_metadata (session_id, key, value, rowid) VALUES (?, ?, ?, ?)"
_PG_REPLACE_METADATA = _PG_INSERT_METADATA + (
    " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value, rowid = excluded.rowid"
)
_PG_REPLACE_DATA = (
    "INSERT INTO session_data (session_id, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value"
)


def stored_content(content: str) -> tuple[str, str | None]:
    """A message's content as PostgreSQL stores it: (text with each NUL as U+FFFD, the exact content as a JSON
    string when it held a NUL, else None)."""
    if "\x00" not in content:
        return content, None
    return content.replace("\x00", "\ufffd"), json_text(content)


# (SQLite, PostgreSQL) statements for a tag or metadata row, plain or as INSERT OR IGNORE / OR REPLACE. SQLite
# keeps insertion order in its rowid; PostgreSQL in an explicit one (see ``projections.postgres``).
_TAG = {
    False: ("INSERT INTO session_tags (session_id, tag) VALUES (?, ?)", _PG_INSERT_TAG),
    True: (
        "INSERT OR IGNORE INTO session_tags (session_id, tag) VALUES (?, ?)",
        _PG_INSERT_TAG + " ON CONFLICT (session_id, tag) DO NOTHING",
    ),
}
_METADATA = {
    False: ("INSERT INTO session_metadata (session_id, key, value) VALUES (?, ?, ?)", _PG_INSERT_METADATA),
    True: ("INSERT OR REPLACE INTO session_metadata (session_id, key, value) VALUES (?, ?, ?)", _PG_REPLACE_METADATA),
}


def _tags(c: Connection, pg: bool, session_id: str, tags: Sequence[str], position: int, *, ignore: bool = False) -> None:
    if pg:
        c.executemany(_TAG[ignore][1], [(session_id, t, position * ORDER_STEP + i) for i, t in enumerate(tags)])
    else:
        c.executemany(_TAG[ignore][0], [(session_id, t) for t in tags])


def _metadata(c: Connection, pg: bool, session_id: str, values: dict[str, Any], position: int, *, replace: bool = False) -> None:
    if pg:
        c.executemany(
            _METADATA[replace][1],
            [(session_id, k, json_text(v), position * ORDER_STEP + i) for i, (k, v) in enumerate(values.items())],
        )
    else:
        c.executemany(_METADATA[replace][0], [(session_id, k, json_text(v)) for k, v in values.items()])


def _text_time(e: RecordedEvent) -> str:
    return format_time(e.recorded_at)


def _set_segments(
    c: Connection, session_id: str, lineage: list[Any], run_start: int, hidden: list[Any] | None = None
) -> None:
    # Which version ranges of which sessions make up this session's effective conversation (hidden = 0),
    # and which message versions were taken out of it again (hidden = 1).
    c.execute("DELETE FROM session_segments WHERE session_id = ?", (session_id,))
    rows = merge_segments([(str(a), int(b), int(z)) for a, b, z in lineage] + [(session_id, run_start, None)])
    marked = [(seg, first, last, 0) for seg, first, last in rows]
    marked += [(str(a), int(b), int(z), 1) for a, b, z in hidden or []]
    c.executemany(
        "INSERT INTO session_segments (session_id, seq, seg_session, first, last, hidden) VALUES (?, ?, ?, ?, ?, ?)",
        [(session_id, seq, *row) for seq, row in enumerate(marked)],
    )


def _hide(c: Connection, session_id: str, ranges: list[tuple[str, int, int]]) -> None:
    c.executemany(
        "INSERT INTO session_segments (session_id, seq, seg_session, first, last, hidden) VALUES"
        " (?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM session_segments WHERE session_id = ?), ?, ?, ?, 1)",
        [(session_id, session_id, seg, first, last) for seg, first, last in ranges],
    )


def _message_retracted(c: Connection, e: RecordedEvent, p: ev.MessageRetracted, at: str, pg: bool) -> None:
    c.execute(
        "UPDATE sessions SET version = ?, position = ?, updated_at = ?, message_count = message_count - 1"
        " WHERE session_id = ?",
        (e.version, e.position, at, e.session_id),
    )
    run = c.execute(  # where the session's current run starts (its open segment)
        "SELECT first FROM session_segments WHERE session_id = ? AND seg_session = ? AND last IS NULL AND hidden = 0",
        (e.session_id, e.session_id),
    ).fetchone()
    if p.message_session == e.session_id and run is not None and p.message_version >= run[0]:
        # A message of its current run: the row says from which of its session's versions on it is out
        # of the conversation (a view of an earlier version, a restore to one, or a fork taken before, keeps it).
        c.execute(
            "UPDATE messages SET retracted_at = ?"
            " WHERE position = (SELECT position FROM events WHERE session_id = ? AND version = ?)",
            (e.version, e.session_id, p.message_version),
        )
    else:  # inherited from a fork's parent, or from before a restore: hidden for this session's view only
        _hide(c, e.session_id, [(p.message_session, p.message_version, p.message_version)])


def _conversation_cleared(c: Connection, e: RecordedEvent, p: Any, at: str, pg: bool) -> None:
    visible = c.execute(
        "SELECT seg_session, first, COALESCE(last, ?) FROM session_segments WHERE session_id = ? AND hidden = 0"
        " ORDER BY seq",
        (e.version - 1, e.session_id),
    ).fetchall()
    c.execute("DELETE FROM session_segments WHERE session_id = ? AND hidden = 1", (e.session_id,))
    _hide(c, e.session_id, [(str(a), int(b), int(z)) for a, b, z in visible])
    c.execute(
        "UPDATE sessions SET version = ?, position = ?, updated_at = ?, message_count = 0 WHERE session_id = ?",
        (e.version, e.position, at, e.session_id),
    )


def _created(c: Connection, e: RecordedEvent, p: ev.Created, at: str, pg: bool) -> None:
    _set_segments(c, e.session_id, [], 1)
    c.execute(
        "INSERT INTO sessions (session_id, user_id, purpose, status, created_at, updated_at, version, position)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (e.session_id, p.user_id, p.purpose, ev.ACTIVE, at, at, e.version, e.position),
    )
    _tags(c, pg, e.session_id, p.tags, e.position)
    _metadata(c, pg, e.session_id, p.metadata, e.position)


def _message_row(e: RecordedEvent, p: ev.MessageAdded, at: str, pg: bool) -> tuple[Any, ...]:
    # A block message's content column holds the text of its text parts (what search indexes); the blocks
    # themselves are kept as JSON text beside it.
    text = message_text(p.content, p.blocks)
    blocks = None if p.blocks is None else _plain_json.encode(p.blocks).decode()  # as given: keys in their order
    row = (e.position, e.session_id, e.version, p.role, text, p.tool_name, p.invocation_id, p.model, p.tokens_in,
           p.tokens_out, at, blocks, p.tokens_cache_read, p.tokens_cache_creation, p.tokens_reasoning)
    if pg:
        content, exact = stored_content(text)
        return (*row[:4], content, *row[5:], exact)
    return row


def _token_values(p: ev.MessageAdded | ev.InvocationLinked) -> tuple[int, ...]:
    return (p.tokens_in or 0, p.tokens_out or 0, p.tokens_cache_read or 0, p.tokens_cache_creation or 0,
            p.tokens_reasoning or 0)


def _invocation_linked(c: Connection, e: RecordedEvent, p: ev.InvocationLinked, at: str, pg: bool) -> None:
    c.execute(
        _INSERT_INVOCATION,
        (e.position, e.session_id, e.version, p.invocation_id, p.tool_name, p.duration_ms, p.tokens_in,
         p.tokens_out, p.cost, p.status, p.artifact, at, p.tokens_cache_read, p.tokens_cache_creation,
         p.tokens_reasoning),
    )
    tool = json_text(p.tool_name) if pg else p.tool_name
    c.execute(
        _PG_INVOCATION if pg else _INVOCATION,
        (e.version, e.position, at, p.duration_ms or 0.0, *_token_values(p), p.cost or 0.0,
         p.tool_name, *((tool, tool) if pg else (tool,)), e.session_id),
    )


def _metadata_set(c: Connection, e: RecordedEvent, p: ev.MetadataSet, at: str, pg: bool) -> None:
    _metadata(c, pg, e.session_id, p.values, e.position, replace=True)


def _metadata_removed(c: Connection, e: RecordedEvent, p: ev.MetadataRemoved, at: str, pg: bool) -> None:
    c.execute("DELETE FROM session_metadata WHERE session_id = ? AND key = ?", (e.session_id, p.key))


def _data_set(c: Connection, e: RecordedEvent, p: ev.DataSet, at: str, pg: bool) -> None:
    c.execute(
        _PG_REPLACE_DATA if pg else "INSERT OR REPLACE INTO session_data (session_id, key, value) VALUES (?, ?, ?)",
        (e.session_id, p.key, json_text(p.value)),
    )


def _data_deleted(c: Connection, e: RecordedEvent, p: ev.DataDeleted, at: str, pg: bool) -> None:
    c.execute("DELETE FROM session_data WHERE session_id = ? AND key = ?", (e.session_id, p.key))


def _data_cleared(c: Connection, e: RecordedEvent, p: Any, at: str, pg: bool) -> None:
    c.execute("DELETE FROM session_data WHERE session_id = ?", (e.session_id,))


def _tags_added(c: Connection, e: RecordedEvent, p: ev.TagsAdded, at: str, pg: bool) -> None:
    _tags(c, pg, e.session_id, p.tags, e.position, ignore=True)


def _tags_removed(c: Connection, e: RecordedEvent, p: ev.TagsRemoved, at: str, pg: bool) -> None:
    c.executemany(
        "DELETE FROM session_tags WHERE session_id = ? AND tag = ?", [(e.session_id, t) for t in p.tags]
    )


def _completed(c: Connection, e: RecordedEvent, p: ev.Completed, at: str, pg: bool) -> None:
    c.execute(_COMPLETED, (e.version, e.position, at, p.status, at, p.reason, e.session_id))


def _stored_time(value: str | None) -> str | None:
    # Times inside a carried state are RFC 3339 from msgspec; the tables hold the ledger's fixed-width form.
    return None if value is None else format_time(parse_time(value))


_STATE_COLUMNS = (
    "user_id", "purpose", "status", "completed_at", "completion_reason", "message_count", "invocation_count",
    "total_duration_ms", *_TOKENS, "estimated_cost", "tools_used",
)


def _state_values(state: dict[str, Any]) -> list[Any]:
    # A state carried by an older event has no cache or reasoning counters: they were 0 then.
    values = {"tokens_cache_read": 0, "tokens_cache_creation": 0, "tokens_reasoning": 0, **state,
              "completed_at": _stored_time(state.get("completed_at")), "tools_used": json_text(state.get("tools_used", []))}
    return [values.get(column) for column in _STATE_COLUMNS]


def _replace_children(c: Connection, pg: bool, session_id: str, state: dict[str, Any], position: int) -> None:
    for table in ("session_tags", "session_metadata", "session_data"):
        c.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
    _tags(c, pg, session_id, state["tags"], position)
    _metadata(c, pg, session_id, state["metadata"], position)
    c.executemany(
        "INSERT INTO session_data (session_id, key, value) VALUES (?, ?, ?)",
        [(session_id, k, json_text(v)) for k, v in state["data"].items()],
    )


def _restored(c: Connection, e: RecordedEvent, p: ev.Restored, at: str, pg: bool) -> None:
    sets = ", ".join(f"{column} = ?" for column in _STATE_COLUMNS)
    c.execute(
        f"UPDATE sessions SET version = ?, position = ?, updated_at = ?, {sets} WHERE session_id = ?",
        (e.version, e.position, at, *_state_values(p.state), e.session_id),
    )
    _replace_children(c, pg, e.session_id, p.state, e.position)
    _set_segments(c, e.session_id, p.state.get("lineage", []), e.version + 1, p.state.get("hidden"))


def _forked(c: Connection, e: RecordedEvent, p: ev.Forked, at: str, pg: bool) -> None:
    state = {**p.state, "status": ev.ACTIVE, "completed_at": None, "completion_reason": None}
    columns = ", ".join(_STATE_COLUMNS)
    c.execute(
        f"INSERT INTO sessions (session_id, parent_id, created_at, updated_at, version, position, {columns})"
        f" VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * len(_STATE_COLUMNS))})",
        (e.session_id, p.parent_id, at, at, e.version, e.position, *_state_values(state)),
    )
    _replace_children(c, pg, e.session_id, state, e.position)
    _set_segments(c, e.session_id, p.state.get("lineage", []), 2, p.state.get("hidden"))


def _purged(c: Connection, e: RecordedEvent, p: ev.Purged, at: str, pg: bool) -> None:
    c.execute(
        "UPDATE sessions SET version = ?, position = ?, updated_at = ?, status = ?, completed_at = ?,"
        " completion_reason = ?, parent_id = NULL, user_id = NULL, purpose = NULL, message_count = 0,"
        f" invocation_count = 0, total_duration_ms = 0.0, {', '.join(f'{t} = 0' for t in _TOKENS)},"
        " estimated_cost = 0.0, tools_used = '[]' WHERE session_id = ?",
        (e.version, e.position, at, ev.PURGED, at, p.reason, e.session_id),
    )
    for table in ("session_tags", "session_metadata", "session_data", "session_segments"):
        c.execute(f"DELETE FROM {table} WHERE session_id = ?", (e.session_id,))
    for table in ("messages", "invocations"):  # found through the events index: these have none by session
        c.execute(
            f"DELETE FROM {table} WHERE position IN (SELECT position FROM events WHERE session_id = ?)", (e.session_id,)
        )


def _redacted(c: Connection, e: RecordedEvent, p: Any, at: str, pg: bool) -> None:
    # A purged creation replayed: only its place remains, until the session's `purged` event clears the rest.
    # (Any other purged row only advances the session's row: see ``_Fold``.)
    c.execute(
        "INSERT INTO sessions (session_id, status, created_at, updated_at, version, position)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (e.session_id, ev.PURGED, at, at, e.version, e.position),
    )
    _set_segments(c, e.session_id, [], 1)


def _record(c: Connection, e: RecordedEvent, p: Any, at: str, pg: bool) -> None:
    # An integration's record: its rows are the records projector's; the session's row only advances.
    pass


# Events that change other rows of their own and only advance the session's row (version, position, time):
# their handler writes the other rows, and the session's row is advanced with the next flush (``_Fold``).
_TOUCHING: dict[str, Callable[[Connection, RecordedEvent, Any, str, bool], None]] = {
    "metadata_set": _metadata_set,
    "metadata_removed": _metadata_removed,
    "data_set": _data_set,
    "data_deleted": _data_deleted,
    "data_cleared": _data_cleared,
    "tags_added": _tags_added,
    "tags_removed": _tags_removed,
    "record_set": _record,
    "records_removed": _record,
}
# Every other event: its handler writes the session's row itself, after the fold's pending rows are flushed.
# Each handler takes the event's payload as its own type (dispatch by the stored tag).
_HANDLERS: dict[str, Callable[[Connection, RecordedEvent, Any, str, bool], None]] = {
    "created": _created,
    "invocation_linked": _invocation_linked,
    "completed": _completed,
    "restored": _restored,
    "forked": _forked,
    "purged": _purged,
    "message_retracted": _message_retracted,
    "conversation_cleared": _conversation_cleared,
}


_NO_TOKENS = (0,) * len(_TOKENS)


class _Fold:
    """Folds a run of events into the tables with as few statements as the fold allows: the messages are
    written many rows at a time, and a session's row is updated once for a run of its messages and
    touches (their counters are integers, so adding them up first gives the same row). Any other event
    flushes what is pending and runs its own handler, so every statement still lands in log order
    where order matters."""

    __slots__ = ("conn", "pg", "messages", "rows")

    def __init__(self, conn: Connection, pg: bool) -> None:
        self.conn = conn
        self.pg = pg
        self.messages: list[tuple[Any, ...]] = []
        # session_id -> [version, position, updated_at, messages, then the five token counters of _TOKENS]
        self.rows: dict[str, list[Any]] = {}

    def add(self, event: RecordedEvent) -> None:
        payload, at = event.payload, _text_time(event)
        redacted = isinstance(payload, ev.Redacted)
        if redacted and event.type not in ("created", "forked"):
            self._advance(event, at, 0, _NO_TOKENS)
        elif isinstance(payload, ev.MessageAdded):
            self.messages.append(_message_row(event, payload, at, self.pg))
            self._advance(event, at, 1, _token_values(payload))
        elif event.type in _TOUCHING:
            _TOUCHING[event.type](self.conn, event, payload, at, self.pg)
            self._advance(event, at, 0, _NO_TOKENS)
        else:
            self.flush()
            (_redacted if redacted else _HANDLERS[event.type])(self.conn, event, payload, at, self.pg)

    def _advance(self, event: RecordedEvent, at: str, messages: int, tokens: tuple[int, ...]) -> None:
        row = self.rows.get(event.session_id)
        if row is None:
            self.rows[event.session_id] = [event.version, event.position, at, messages, *tokens]
        else:
            row[0], row[1], row[2] = event.version, event.position, at
            row[3] += messages
            for i, count in enumerate(tokens, 4):
                row[i] += count

    def flush(self) -> None:
        """Write the pending message rows, then each pending session row."""
        conn = self.conn
        if self.messages:
            insert = _PG_INSERT_MESSAGE if self.pg else _INSERT_MESSAGE
            if len(self.messages) == 1:
                conn.execute(insert, self.messages[0])
            else:
                conn.executemany(insert, self.messages)
            self.messages.clear()
        if self.rows:
            updates = [(*row, session_id) for session_id, row in self.rows.items()]
            self.rows.clear()
            if len(updates) == 1:
                conn.execute(_ADVANCE, updates[0])
            else:
                conn.executemany(_ADVANCE, updates)


class SessionsProjector(Projector):
    """The built-in read model: sessions with their counters, tags, metadata, data, messages and invocations."""

    name = "sessions"
    # 2: messages.retracted_at, the invocation_id index; 3: STRICT tables, the views of ``projections.views``;
    # 4: content blocks, cache and reasoning tokens, the OpenTelemetry GenAI view
    version = 4
    dialects = frozenset({"sqlite", "postgres"})
    builtin = True
    tables = ("session_segments", "invocations", "messages", "session_data", "session_metadata", "session_tags", "sessions")
    views = (*tool_views.VIEWS, *analytics.VIEWS)

    def create(self, db: Any) -> None:
        """Create the tables, the indexes the queries use, the analytics views and the views for SQL tools.

        On SQLite the tables are STRICT (where the library has SQLite 3.37 or later): a value of another
        type than its column's is refused when written, so every column holds its declared type and tools
        that trust the declared types (DuckDB's sqlite scanner) read every row.
        """
        if dialect_of(db) == "postgres":
            for statement in (*SESSIONS_SCHEMA, *analytics.view_statements("postgres"),
                              *tool_views.view_statements("postgres")):
                db.execute(statement)
            return
        db.table("sessions").create(
            {
                "session_id": str, "parent_id": str, "user_id": str, "purpose": str, "status": str,
                "created_at": str, "updated_at": str, "completed_at": str, "completion_reason": str,
                "version": int, "position": int, "message_count": int, "invocation_count": int,
                "total_duration_ms": float, **dict.fromkeys(_TOKENS, int), "estimated_cost": float,
                "tools_used": str,
            },
            pk="session_id",
            not_null={"status", "created_at", "updated_at", "version", "position"},
            defaults={"message_count": 0, "invocation_count": 0, "total_duration_ms": 0.0, **dict.fromkeys(_TOKENS, 0),
                      "estimated_cost": 0.0, "tools_used": "[]"},
            strict=_STRICT,
        )
        db.table("session_tags").create(
            {"session_id": str, "tag": str}, pk=("session_id", "tag"), not_null={"tag"}, strict=_STRICT
        )
        for name in ("session_metadata", "session_data"):
            db.table(name).create(
                {"session_id": str, "key": str, "value": str}, pk=("session_id", "key"), not_null={"value"}, strict=_STRICT
            )
        db.table("session_segments").create(
            {"session_id": str, "seq": int, "seg_session": str, "first": int, "last": int, "hidden": int},
            pk=("session_id", "seq"),
            not_null={"seg_session", "first", "hidden"},
            defaults={"hidden": 0},
            strict=_STRICT,
        )
        db.table("messages").create(
            {"position": int, "session_id": str, "version": int, "role": str, "content": str, "tool_name": str,
             "invocation_id": str, "model": str, "tokens_in": int, "tokens_out": int, "recorded_at": str,
             "retracted_at": int, "blocks": str, "tokens_cache_read": int, "tokens_cache_creation": int,
             "tokens_reasoning": int},
            pk="position",
            not_null={"session_id", "version", "role", "content", "recorded_at"},
            strict=_STRICT,
        )
        db.table("invocations").create(
            {"position": int, "session_id": str, "version": int, "invocation_id": str, "tool_name": str,
             "duration_ms": float, "tokens_in": int, "tokens_out": int, "cost": float, "status": str,
             "artifact": str, "recorded_at": str, "tokens_cache_read": int, "tokens_cache_creation": int,
             "tokens_reasoning": int},
            pk="position",
            not_null={"session_id", "version", "invocation_id", "tool_name", "status", "recorded_at"},
            strict=_STRICT,
        )
        # Only indexes a query needs: each one is written on every append that touches its table.
        # Messages and invocations are found by session through the events table's index.
        for table, columns in (
            ("sessions", ["created_at"]),
            ("sessions", ["updated_at"]),
            ("sessions", ["status", "created_at"]),
            ("sessions", ["user_id", "created_at"]),
            ("sessions", ["parent_id"]),
            ("session_tags", ["tag", "session_id"]),
            ("session_metadata", ["key", "value", "session_id"]),
            ("session_segments", ["seg_session", "first"]),
            ("invocations", ["invocation_id"]),  # a repeated link_invocation is found by it
        ):
            db.table(table).create_index(columns, if_not_exists=True)
        for statement in (*analytics.view_statements(), *tool_views.view_statements()):
            db.execute(statement)

    def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
        """Fold the events into the tables, in log order."""
        fold = _Fold(conn, dialect_of(conn) == "postgres")
        for event in events:
            fold.add(event)
        fold.flush()
