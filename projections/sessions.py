"""The built-in read tables: plain SQL, folded from the log, for the ledger's queries and any SQL tool.

``sessions`` (one row per session, with its counters), ``session_tags``,
``session_metadata`` and ``session_data`` (values as canonical JSON text:
objects with sorted keys), ``messages`` (with the FTS5 index
``messages_fts`` on ``content``), ``invocations``, and ``session_segments``
(which version ranges of which sessions make up a session's effective
conversation after restores and forks; ``last`` NULL means "still open"). Times are UTC ISO-8601
text, so they sort and compare as text. One projector owns them all, so an
append costs one projector call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlite_utils

from ledger import events as ev
from ledger.events import RecordedEvent
from ledger.lineage import merge_segments
from ledger.times import format_time, parse_time

from . import analytics
from .base import Projector

_canonical = msgspec.json.Encoder(order="sorted")


def json_text(value: Any) -> str:
    """A JSON value as the canonical text stored in the read tables (objects with sorted keys)."""
    return _canonical.encode(value).decode()


_TOUCH = "UPDATE sessions SET version = ?, position = ?, updated_at = ? WHERE session_id = ?"
_MESSAGE = (
    "UPDATE sessions SET version = ?, position = ?, updated_at = ?,"
    " message_count = message_count + 1, tokens_in = tokens_in + ?, tokens_out = tokens_out + ?"
    " WHERE session_id = ?"
)
_INVOCATION = (
    "UPDATE sessions SET version = ?, position = ?, updated_at = ?,"
    " invocation_count = invocation_count + 1, total_duration_ms = total_duration_ms + ?,"
    " tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, estimated_cost = estimated_cost + ?,"
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
    " tokens_in, tokens_out, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_INVOCATION = (
    "INSERT INTO invocations (position, session_id, version, invocation_id, tool_name, duration_ms, tokens_in,"
    " tokens_out, cost, status, artifact, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _text_time(e: RecordedEvent) -> str:
    return format_time(e.recorded_at)


def _set_segments(
    c: sqlite3.Connection, session_id: str, lineage: list[Any], run_start: int, hidden: list[Any] | None = None
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


def _hide(c: sqlite3.Connection, session_id: str, ranges: list[tuple[str, int, int]]) -> None:
    c.executemany(
        "INSERT INTO session_segments (session_id, seq, seg_session, first, last, hidden) VALUES"
        " (?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM session_segments WHERE session_id = ?), ?, ?, ?, 1)",
        [(session_id, session_id, seg, first, last) for seg, first, last in ranges],
    )


def _message_retracted(c: sqlite3.Connection, e: RecordedEvent, p: ev.MessageRetracted, at: str) -> None:
    c.execute(
        "UPDATE sessions SET version = ?, position = ?, updated_at = ?, message_count = message_count - 1"
        " WHERE session_id = ?",
        (e.version, e.position, at, e.session_id),
    )
    _hide(c, e.session_id, [(p.message_session, p.message_version, p.message_version)])


def _conversation_cleared(c: sqlite3.Connection, e: RecordedEvent, p: Any, at: str) -> None:
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


def _created(c: sqlite3.Connection, e: RecordedEvent, p: ev.Created, at: str) -> None:
    _set_segments(c, e.session_id, [], 1)
    c.execute(
        "INSERT INTO sessions (session_id, user_id, purpose, status, created_at, updated_at, version, position)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (e.session_id, p.user_id, p.purpose, ev.ACTIVE, at, at, e.version, e.position),
    )
    c.executemany("INSERT INTO session_tags (session_id, tag) VALUES (?, ?)", [(e.session_id, t) for t in p.tags])
    c.executemany(
        "INSERT INTO session_metadata (session_id, key, value) VALUES (?, ?, ?)",
        [(e.session_id, k, json_text(v)) for k, v in p.metadata.items()],
    )


def _message_added(c: sqlite3.Connection, e: RecordedEvent, p: ev.MessageAdded, at: str) -> None:
    c.execute(
        _INSERT_MESSAGE,
        (e.position, e.session_id, e.version, p.role, p.content, p.tool_name, p.invocation_id, p.model,
         p.tokens_in, p.tokens_out, at),
    )
    c.execute(_MESSAGE, (e.version, e.position, at, p.tokens_in or 0, p.tokens_out or 0, e.session_id))


def _invocation_linked(c: sqlite3.Connection, e: RecordedEvent, p: ev.InvocationLinked, at: str) -> None:
    c.execute(
        _INSERT_INVOCATION,
        (e.position, e.session_id, e.version, p.invocation_id, p.tool_name, p.duration_ms, p.tokens_in,
         p.tokens_out, p.cost, p.status, p.artifact, at),
    )
    c.execute(
        _INVOCATION,
        (e.version, e.position, at, p.duration_ms or 0.0, p.tokens_in or 0, p.tokens_out or 0, p.cost or 0.0,
         p.tool_name, p.tool_name, e.session_id),
    )


def _metadata_set(c: sqlite3.Connection, e: RecordedEvent, p: ev.MetadataSet, at: str) -> None:
    c.executemany(
        "INSERT OR REPLACE INTO session_metadata (session_id, key, value) VALUES (?, ?, ?)",
        [(e.session_id, k, json_text(v)) for k, v in p.values.items()],
    )
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _metadata_removed(c: sqlite3.Connection, e: RecordedEvent, p: ev.MetadataRemoved, at: str) -> None:
    c.execute("DELETE FROM session_metadata WHERE session_id = ? AND key = ?", (e.session_id, p.key))
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _data_set(c: sqlite3.Connection, e: RecordedEvent, p: ev.DataSet, at: str) -> None:
    c.execute(
        "INSERT OR REPLACE INTO session_data (session_id, key, value) VALUES (?, ?, ?)",
        (e.session_id, p.key, json_text(p.value)),
    )
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _data_deleted(c: sqlite3.Connection, e: RecordedEvent, p: ev.DataDeleted, at: str) -> None:
    c.execute("DELETE FROM session_data WHERE session_id = ? AND key = ?", (e.session_id, p.key))
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _data_cleared(c: sqlite3.Connection, e: RecordedEvent, p: Any, at: str) -> None:
    c.execute("DELETE FROM session_data WHERE session_id = ?", (e.session_id,))
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _tags_added(c: sqlite3.Connection, e: RecordedEvent, p: ev.TagsAdded, at: str) -> None:
    c.executemany(
        "INSERT OR IGNORE INTO session_tags (session_id, tag) VALUES (?, ?)", [(e.session_id, t) for t in p.tags]
    )
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _tags_removed(c: sqlite3.Connection, e: RecordedEvent, p: ev.TagsRemoved, at: str) -> None:
    c.executemany(
        "DELETE FROM session_tags WHERE session_id = ? AND tag = ?", [(e.session_id, t) for t in p.tags]
    )
    c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


def _completed(c: sqlite3.Connection, e: RecordedEvent, p: ev.Completed, at: str) -> None:
    c.execute(_COMPLETED, (e.version, e.position, at, p.status, at, p.reason, e.session_id))


def _stored_time(value: str | None) -> str | None:
    # Times inside a carried state are RFC 3339 from msgspec; the tables hold the ledger's fixed-width form.
    return None if value is None else format_time(parse_time(value))


_STATE_COLUMNS = (
    "user_id", "purpose", "status", "completed_at", "completion_reason", "message_count", "invocation_count",
    "total_duration_ms", "tokens_in", "tokens_out", "estimated_cost", "tools_used",
)


def _state_values(state: dict[str, Any]) -> list[Any]:
    values = {**state, "completed_at": _stored_time(state.get("completed_at")),
              "tools_used": json_text(state.get("tools_used", []))}
    return [values.get(column) for column in _STATE_COLUMNS]


def _replace_children(c: sqlite3.Connection, session_id: str, state: dict[str, Any]) -> None:
    for table in ("session_tags", "session_metadata", "session_data"):
        c.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
    c.executemany("INSERT INTO session_tags (session_id, tag) VALUES (?, ?)", [(session_id, t) for t in state["tags"]])
    for table, key in (("session_metadata", "metadata"), ("session_data", "data")):
        c.executemany(
            f"INSERT INTO {table} (session_id, key, value) VALUES (?, ?, ?)",
            [(session_id, k, json_text(v)) for k, v in state[key].items()],
        )


def _restored(c: sqlite3.Connection, e: RecordedEvent, p: ev.Restored, at: str) -> None:
    sets = ", ".join(f"{column} = ?" for column in _STATE_COLUMNS)
    c.execute(
        f"UPDATE sessions SET version = ?, position = ?, updated_at = ?, {sets} WHERE session_id = ?",
        (e.version, e.position, at, *_state_values(p.state), e.session_id),
    )
    _replace_children(c, e.session_id, p.state)
    _set_segments(c, e.session_id, p.state.get("lineage", []), e.version + 1, p.state.get("hidden"))


def _forked(c: sqlite3.Connection, e: RecordedEvent, p: ev.Forked, at: str) -> None:
    state = {**p.state, "status": ev.ACTIVE, "completed_at": None, "completion_reason": None}
    columns = ", ".join(_STATE_COLUMNS)
    c.execute(
        f"INSERT INTO sessions (session_id, parent_id, created_at, updated_at, version, position, {columns})"
        f" VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * len(_STATE_COLUMNS))})",
        (e.session_id, p.parent_id, at, at, e.version, e.position, *_state_values(state)),
    )
    _replace_children(c, e.session_id, state)
    _set_segments(c, e.session_id, p.state.get("lineage", []), 2, p.state.get("hidden"))


def _purged(c: sqlite3.Connection, e: RecordedEvent, p: ev.Purged, at: str) -> None:
    c.execute(
        "UPDATE sessions SET version = ?, position = ?, updated_at = ?, status = ?, completed_at = ?,"
        " completion_reason = ?, parent_id = NULL, user_id = NULL, purpose = NULL, message_count = 0,"
        " invocation_count = 0, total_duration_ms = 0.0, tokens_in = 0, tokens_out = 0, estimated_cost = 0.0,"
        " tools_used = '[]' WHERE session_id = ?",
        (e.version, e.position, at, ev.PURGED, at, p.reason, e.session_id),
    )
    for table in ("session_tags", "session_metadata", "session_data", "session_segments"):
        c.execute(f"DELETE FROM {table} WHERE session_id = ?", (e.session_id,))
    for table in ("messages", "invocations"):  # found through the events index: these have none by session
        c.execute(
            f"DELETE FROM {table} WHERE position IN (SELECT position FROM events WHERE session_id = ?)", (e.session_id,)
        )


def _redacted(c: sqlite3.Connection, e: RecordedEvent, p: Any, at: str) -> None:
    # A purged row replayed: only its place remains, until the session's `purged` event clears the rest.
    if e.type in ("created", "forked"):
        c.execute(
            "INSERT INTO sessions (session_id, status, created_at, updated_at, version, position)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (e.session_id, ev.PURGED, at, at, e.version, e.position),
        )
        _set_segments(c, e.session_id, [], 1)
    else:
        c.execute(_TOUCH, (e.version, e.position, at, e.session_id))


# Each handler takes the event's payload as its own type (dispatch by the stored tag).
_HANDLERS: dict[str, Callable[[sqlite3.Connection, RecordedEvent, Any, str], None]] = {
    "created": _created,
    "message_added": _message_added,
    "invocation_linked": _invocation_linked,
    "metadata_set": _metadata_set,
    "metadata_removed": _metadata_removed,
    "data_set": _data_set,
    "data_deleted": _data_deleted,
    "data_cleared": _data_cleared,
    "tags_added": _tags_added,
    "tags_removed": _tags_removed,
    "completed": _completed,
    "restored": _restored,
    "forked": _forked,
    "purged": _purged,
    "message_retracted": _message_retracted,
    "conversation_cleared": _conversation_cleared,
}

class SessionsProjector(Projector):
    """The built-in read model: sessions with their counters, tags, metadata, data, messages and invocations."""

    name = "sessions"
    version = 1
    builtin = True
    tables = ("session_segments", "invocations", "messages", "session_data", "session_metadata", "session_tags", "sessions")
    views = analytics.VIEWS

    def create(self, db: sqlite_utils.Database) -> None:
        """Create the tables, the indexes the queries use, and the analytics views."""
        db.table("sessions").create(
            {
                "session_id": str, "parent_id": str, "user_id": str, "purpose": str, "status": str,
                "created_at": str, "updated_at": str, "completed_at": str, "completion_reason": str,
                "version": int, "position": int, "message_count": int, "invocation_count": int,
                "total_duration_ms": float, "tokens_in": int, "tokens_out": int, "estimated_cost": float,
                "tools_used": str,
            },
            pk="session_id",
            not_null={"status", "created_at", "updated_at", "version", "position"},
            defaults={"message_count": 0, "invocation_count": 0, "total_duration_ms": 0.0, "tokens_in": 0,
                      "tokens_out": 0, "estimated_cost": 0.0, "tools_used": "[]"},
        )
        db.table("session_tags").create({"session_id": str, "tag": str}, pk=("session_id", "tag"), not_null={"tag"})
        for name in ("session_metadata", "session_data"):
            db.table(name).create({"session_id": str, "key": str, "value": str}, pk=("session_id", "key"), not_null={"value"})
        db.table("session_segments").create(
            {"session_id": str, "seq": int, "seg_session": str, "first": int, "last": int, "hidden": int},
            pk=("session_id", "seq"),
            not_null={"seg_session", "first", "hidden"},
            defaults={"hidden": 0},
        )
        db.table("messages").create(
            {"position": int, "session_id": str, "version": int, "role": str, "content": str, "tool_name": str,
             "invocation_id": str, "model": str, "tokens_in": int, "tokens_out": int, "recorded_at": str},
            pk="position",
            not_null={"session_id", "version", "role", "content", "recorded_at"},
        )
        db.table("invocations").create(
            {"position": int, "session_id": str, "version": int, "invocation_id": str, "tool_name": str,
             "duration_ms": float, "tokens_in": int, "tokens_out": int, "cost": float, "status": str,
             "artifact": str, "recorded_at": str},
            pk="position",
            not_null={"session_id", "version", "invocation_id", "tool_name", "status", "recorded_at"},
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
        ):
            db.table(table).create_index(columns, if_not_exists=True)
        for statement in analytics.view_statements():
            db.execute(statement)

    def apply(self, conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
        """Fold each event into the tables, in log order."""
        for event in events:
            handler = _redacted if isinstance(event.payload, ev.Redacted) else _HANDLERS[event.type]
            handler(conn, event, event.payload, _text_time(event))
