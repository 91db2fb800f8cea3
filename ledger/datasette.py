"""Datasette metadata for a ledger file: what each table, view and column holds, and in which unit.

``datasette_metadata("sessions.db")`` returns the JSON-able dict that
``datasette sessions.db --metadata metadata.json`` reads: a title and a
description, and under ``databases -> <name> -> tables`` a description of
every table and view, a description of every column, ``units`` for the
numeric ones (tokens, USD, milliseconds; ``custom_units`` teaches Datasette's
unit library the first two), default sort orders and facets where they
help, the full-text index of ``messages`` (``fts_table``), and the
internal tables ``hidden``. Datasette names a database after its file's
stem (``sessions.db`` -> ``sessions``), so that is the default name.

The descriptions are written here, beside no SQL (that lives in the
projectors); ``tests/test_sql_tools.py`` checks that they cover every table,
view and column of a new ledger file, so a table added without a
description fails there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from projections.analytics import GROUPS
from projections.views import OTEL_COLUMNS

from .errors import InvalidInput

#: Pint definitions of the units Datasette does not know by itself.
CUSTOM_UNITS = ("token = [token]", "USD = [currency]")
TOKEN, USD, MS = "token", "USD", "ms"

_TIME = "(UTC, ISO 8601 text of fixed width: sorts and compares as text)"


class HasPath(Protocol):
    """Anything with the ``path`` of its ledger (a ``Ledger``)."""

    @property
    def path(self) -> str: ...


class _Table(NamedTuple):
    description: str
    columns: dict[str, str]
    units: dict[str, str] | None = None
    extra: dict[str, Any] | None = None


_SESSION = {"session_id": "The session's id."}
_PARTS = {
    "tokens_cache_read": "Of the input tokens, those read from the provider's prompt cache.",
    "tokens_cache_creation": "Of the input tokens, those written to the provider's prompt cache (Anthropic).",
    "tokens_reasoning": "Of the output tokens, those spent on reasoning.",
}
_TOKENS = {
    "tokens_in": "Input (prompt) tokens, cached ones included, as the caller reported them (OpenTelemetry's"
    " gen_ai.usage.input_tokens).",
    "tokens_out": "Output (completion) tokens, reasoning included, as the caller reported them.",
    **_PARTS,
}
_TOKEN_UNITS = dict.fromkeys(_TOKENS, TOKEN)
_MESSAGE = {
    "version": "The session version that added the message (its event's version).",
    "position": "The position in the log of the event that added the message (see events).",
    "role": "Who spoke: user, assistant, system, tool, ...",
    "content": "The message's text.",
    "tool_name": "The tool whose output the message is (for a tool message), else empty.",
    "invocation_id": "The invocation the message belongs to (see invocations), else empty.",
    "model": "The model that wrote the message, as the caller reported it.",
    **_TOKENS,
    "recorded_at": f"When the message was recorded {_TIME}.",
    "blocks": "A block message's content blocks as JSON (text, images and files by reference, tool calls and"
    " results, reasoning); empty for a plain text message. content holds their text parts.",
}
_EVENT = {
    "position": "Global position in the log: 1, 2, 3, ... in commit order, without gaps.",
    "event_id": "The event's unique id (a retried command with the same id is stored once).",
    "session_id": "The session the event belongs to.",
    "version": "The session's version after this event: 1 for its first event, then 2, 3, ...",
    "type": "The event type: created, message_added, invocation_linked, metadata_set, metadata_removed, data_set,"
    " data_deleted, data_cleared, tags_added, tags_removed, message_retracted, conversation_cleared, completed,"
    " restored, forked or purged.",
    "schema": "The version of the event type's payload schema (older payloads are upcast when read).",
    "recorded_at": f"When the event was recorded {_TIME}; never earlier than the row before.",
    "data": "The event's payload as JSON; for a purged session's events, a redaction marker keeping only the"
    " payload's digest.",
}
_SNAPSHOT = {
    "session_id": "The session the snapshot is of.",
    "version": "The session version the snapshot holds the state at.",
    "position": "The log position of the session's event at that version.",
    "schema": "The snapshot format version.",
    "created_at": f"When the snapshot was taken {_TIME}.",
}
_USAGE = {
    "sessions": "Distinct sessions with activity in the group.",
    "messages": "Messages in the group.",
    "invocations": "Tool invocations in the group.",
    "tokens_in": "Input tokens of the group's messages and invocations.",
    "tokens_out": "Output tokens of the group's messages and invocations.",
    "cost": "Cost of the group's invocations, in USD.",
    "total_duration_ms": "Total duration of the group's invocations, in milliseconds (empty when none had one).",
    "p95_duration_ms": "95th percentile (nearest rank) of the group's invocation durations, in milliseconds.",
    **{k: v.replace("Of the", "Of the group's") for k, v in _PARTS.items()},
}
_USAGE_UNITS = {**_TOKEN_UNITS, "cost": USD, "total_duration_ms": MS, "p95_duration_ms": MS}
_GROUP = {
    "tool": ("tool", "The tool (an invocation's tool, or a tool message's tool_name)."),
    "user": ("user", "The session's user_id."),
    "model": ("model", "The model a message names."),
    "day": ("day", "The UTC day (YYYY-MM-DD) the activity was recorded on."),
    "status": ("session status", "The session's status: active, completed, failed, abandoned or purged."),
}
_FTS_SHADOWS = ("data", "idx", "docsize", "config")


def _usage_views() -> dict[str, _Table]:
    out = {}
    for by in GROUPS:
        noun, column = _GROUP[by]
        out[f"usage_by_{by}"] = _Table(
            f"Usage per {noun}: sessions, messages, invocations, tokens, cost and durations (a view over activity,"
            " the same rows as Ledger.usage()).",
            {by: column, **_USAGE},
            _USAGE_UNITS,
            {"sort": by},
        )
    return out


def _tables() -> dict[str, _Table]:
    return {
        "events": _Table(
            "The log: every change to every session, as an immutable event, hash-chained. Everything else in this"
            " file is derived from it and can be rebuilt from it (`ledger rebuild`).",
            {**_EVENT, "hash": "SHA-256 chaining this row to the one before, as 32 bytes (events_hex shows it as"
             " hex; `ledger verify` checks the chain)."},
            extra={"sort": "position", "facets": ["type"]},
        ),
        "events_hex": _Table(
            "The log (events) with each hash as lower-case hex: the form `ledger digest` and RecordedEvent.hash use.",
            {**_EVENT, "hash": "SHA-256 chaining this row to the one before, as 64 lower-case hex digits."},
            extra={"sort": "position"},
        ),
        "snapshots": _Table(
            "Cached session states, so a long session is not folded from its first event (a cache: rebuildable).",
            {**_SNAPSHOT, "event_hash": "The hash of the session's event at that version, as 32 bytes (a snapshot"
             " whose event no longer has it is not used).", "state": "The folded session state (msgpack)."},
        ),
        "snapshots_hex": _Table(
            "The snapshots with the event hash as lower-case hex (the state, binary, is left out).",
            {**_SNAPSHOT, "event_hash": "The hash of the session's event at that version, as 64 lower-case hex digits."},
        ),
        "ledger_meta": _Table(
            "The file's format version and settings (internal).",
            {"key": "The setting's name (format: the file format version).", "value": "The setting's value."},
            extra={"hidden": True},
        ),
        "projector_positions": _Table(
            "How far each projector has read the log (internal).",
            {"name": "The projector's name.", "version": "The projector's version (a new one rebuilds its tables).",
             "position": "The last log position applied (-1: kept level by every append)."},
            extra={"hidden": True},
        ),
        "sessions": _Table(
            "One row per session: its current status, times and totals (folded from events).",
            {
                **_SESSION,
                "parent_id": "The session this one was forked from, if any.",
                "user_id": "The user the session is for.",
                "purpose": "What the session is for.",
                "status": "active, completed, failed, abandoned or purged.",
                "created_at": f"When the session was created {_TIME}.",
                "updated_at": f"When the session last changed {_TIME}.",
                "completed_at": f"When the session ended {_TIME}; empty while active.",
                "completion_reason": "Why the session ended, as given.",
                "version": "The session's current version (its number of events).",
                "position": "The log position of the session's latest event.",
                "message_count": "Messages in its effective conversation.",
                "invocation_count": "Tool invocations linked to it.",
                "total_duration_ms": "Total duration of its invocations, in milliseconds.",
                "tokens_in": "Input tokens of its messages and invocations.",
                "tokens_out": "Output tokens of its messages and invocations.",
                **{k: v.replace("Of the", "Of its") for k, v in _PARTS.items()},
                "estimated_cost": "Total cost of its invocations, in USD.",
                "tools_used": "The tools it invoked, as a JSON array in first-use order.",
            },
            {**_TOKEN_UNITS, "total_duration_ms": MS, "estimated_cost": USD},
            {"sort_desc": "created_at", "facets": ["status", "user_id"]},
        ),
        "records": _Table(
            "What integrations keep in a session beside its conversation (the LangGraph checkpointer's checkpoints,"
            " pending writes and channel values), one row per record_set event: an index, the value and bytes stay"
            " in the event's payload (events.data).",
            {
                **_SESSION,
                "position": "The log position of the record_set event (join events on it for the payload).",
                "kind": "What the record is, named by its integration (langgraph.checkpoint, ...).",
                "key": "The record's key within its kind.",
                "record_group": "A group the integration reads records of together (a run, the pieces of a value).",
                "removed_at": "The log position of the event that replaced or removed the record; empty while it stands.",
            },
            extra={"facets": ["kind"]},
        ),
        "merkle_tiles": _Table(
            "The Merkle tree over the log (RFC 9162; leaf i: SHA-256(0x00 || the chain hash of position i + 1)) in"
            " tiles of 256 hashes, as in C2SP tlog-tiles: a cache for proofs, rebuilt from the log.",
            {
                "level": "The tile level: its hashes are the tree's nodes at height 8 x level (0: the leaves).",
                "idx": "The tile's index within its level: it holds nodes 256 x idx to 256 x idx + 255.",
                "hashes": "The nodes' 32-byte SHA-256 hashes, concatenated (the right-most tile may hold fewer).",
            },
        ),
        "session_tags": _Table(
            "The tags of each session.", {**_SESSION, "tag": "One tag."}, extra={"facets": ["tag"]}
        ),
        "session_metadata": _Table(
            "The metadata of each session, one key per row.",
            {**_SESSION, "key": "The metadata key.", "value": "Its value as canonical JSON (object keys sorted)."},
            extra={"facets": ["key"]},
        ),
        "session_data": _Table(
            "The workflow data of each session, one key per row.",
            {**_SESSION, "key": "The data key.", "value": "Its value as canonical JSON (object keys sorted)."},
        ),
        "session_segments": _Table(
            "Which version ranges of which sessions make up each session's effective conversation after forks and"
            " restores, and which were taken out again (retracted or cleared). effective_messages reads them.",
            {
                "session_id": "The session whose conversation this describes.",
                "seq": "The range's place in the conversation (0 first).",
                "seg_session": "The session whose events the range covers (a fork's parent, or the session itself).",
                "first": "The range's first version.",
                "last": "The range's last version; empty: still open (the session's current run).",
                "hidden": "1: the range is taken out of the conversation; 0: it is in it.",
            },
        ),
        "messages": _Table(
            "Every message ever added, in the session it was recorded in (retracted and cleared ones included;"
            " effective_messages gives each session's conversation as the API returns it).",
            {
                "session_id": "The session the message was recorded in.",
                **_MESSAGE,
                "retracted_at": "The session version that retracted the message, if any.",
            },
            _TOKEN_UNITS,
            {"sort": "position", "fts_table": "messages_fts", "fts_pk": "position", "facets": ["role"]},
        ),
        "messages_fts": _Table(
            "The full-text index of messages.content (FTS5, porter stemming): search it through messages.",
            {"content": "The indexed message text."},
            extra={"hidden": True},
        ),
        "effective_messages": _Table(
            "Each session's effective conversation, exactly as Ledger.messages() returns it: a fork's inherited"
            " messages and a restore's target conversation included, retracted and cleared messages left out."
            " Filter by session_id and sort by ordinal.",
            {
                "session_id": "The session whose conversation this is.",
                "ordinal": "The message's place in that conversation: 1, 2, 3, ...",
                "message_session": "The session the message was recorded in (a fork's parent, for an inherited one).",
                **_MESSAGE,
            },
            _TOKEN_UNITS,
            {"fts_table": "messages_fts", "fts_pk": "position", "facets": ["role"]},
        ),
        "invocations": _Table(
            "Every tool invocation linked to a session.",
            {
                "position": "The log position of the event that linked the invocation.",
                "session_id": "The session the invocation was linked to.",
                "version": "The session version that linked it.",
                "invocation_id": "The caller's id for the invocation.",
                "tool_name": "The tool invoked.",
                "duration_ms": "How long it ran, in milliseconds.",
                **_TOKENS,
                "cost": "What it cost, in USD.",
                "status": "Its outcome (ok, error, ...).",
                "artifact": "Where the tool's own records are (a URI), if given.",
                "recorded_at": f"When it was linked {_TIME}.",
            },
            {**_TOKEN_UNITS, "duration_ms": MS, "cost": USD},
            {"sort": "position", "facets": ["tool_name", "status"]},
        ),
        "activity": _Table(
            "One row per message or invocation with its session's user and status: the source of the usage views.",
            {
                "session_id": "The session the message or invocation was recorded in.",
                "recorded_at": f"When it was recorded {_TIME}.",
                "day": "The UTC day it was recorded on (YYYY-MM-DD).",
                "is_message": "1 for a message, else 0.",
                "is_invocation": "1 for an invocation, else 0.",
                "tool": "The invocation's tool, or a tool message's tool_name.",
                "model": "The model a message names.",
                **_TOKENS,
                "cost": "An invocation's cost, in USD.",
                "duration_ms": "An invocation's duration, in milliseconds.",
                "user_id": "The session's user.",
                "status": "The session's status.",
            },
            {**_TOKEN_UNITS, "cost": USD, "duration_ms": MS},
        ),
        "otel_gen_ai": _Table(
            "One row per message or tool invocation, its columns named as the OpenTelemetry GenAI attributes"
            " (for tools that speak those names).",
            {"position": "The log position of the message or invocation.",
             "recorded_at": f"When it was recorded {_TIME}.", "role": "A message's role; empty for an invocation.",
             **{name: text[0].upper() + text[1:] + "." for name, text in OTEL_COLUMNS.items()}},
            {name: TOKEN for name in OTEL_COLUMNS if name.startswith("gen_ai.usage.")},
            {"sort": "position"},
        ),
        **_usage_views(),
    }


def _table_metadata(table: _Table) -> dict[str, Any]:
    out: dict[str, Any] = {"description": table.description, "columns": dict(table.columns)}
    if table.units:
        out["units"] = dict(table.units)
    out.update(table.extra or {})
    return out


def _database_name(source: HasPath | str | os.PathLike[str]) -> str:
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else source.path
    if path.startswith(("postgresql://", "postgres://")):
        raise InvalidInput(f"Datasette reads SQLite files; {path} is a PostgreSQL ledger", field="path")
    if path in ("", ":memory:") or path.startswith("file:"):
        raise InvalidInput(f"{path!r} is not a ledger file: name the database (database=...)", field="database")
    return Path(path).stem


def datasette_metadata(source: HasPath | str | os.PathLike[str], *, database: str | None = None) -> dict[str, Any]:
    """Datasette's metadata (a JSON-able dict) for a ledger file: ``source`` is a ``Ledger`` or the file's path.

    ``database`` is the name Datasette serves the file under; by default the file's stem, as Datasette
    names it (``sessions.db`` -> ``sessions``). Raises ``InvalidInput`` for a PostgreSQL or in-memory
    ledger without a ``database`` name (Datasette reads SQLite files only).
    """
    name = database if database is not None else _database_name(source)
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"database must be a non-empty name; got {name!r}", field="database")
    tables = {table: _table_metadata(about) for table, about in _tables().items()}
    for suffix in _FTS_SHADOWS:  # FTS5's own tables (Datasette hides them anyway)
        tables[f"messages_fts_{suffix}"] = {"description": "Internal table of the messages_fts index.", "hidden": True}
    return {
        "title": "Session ledger",
        "description": "An event-sourced, hash-chained ledger of AI-agent sessions. events is the log and the truth;"
        " the other tables and views are derived from it. Start with sessions, effective_messages and usage_by_tool.",
        "custom_units": list(CUSTOM_UNITS),
        "databases": {
            name: {
                "description": "Sessions, their conversations and tool invocations, with usage views. Times are UTC;"
                " costs are in USD, durations in milliseconds.",
                "tables": tables,
            }
        },
    }
