"""Views for SQL tools (sqlite3, Datasette, DuckDB, psql): what the API computes, as plain SELECTs.

* ``effective_messages``: one row per message of each session's effective
  conversation, exactly the list ``Ledger.messages(session_id)`` returns:
  a fork's inherited messages and a restore's target conversation included,
  retracted and cleared ones left out. ``session_id`` is the session whose
  conversation it is, ``message_session`` the session the message was
  recorded in (another one for an inherited message), and ``ordinal`` its
  1-based place in the conversation::

      SELECT role, content FROM effective_messages WHERE session_id = ? ORDER BY ordinal

  It reads ``session_segments`` with the same condition the search and the
  session filter use (``lineage.IN_CONVERSATION``), and finds the rows
  through the events table's (session_id, version) index. On PostgreSQL, as
  in the ``messages`` table, a NUL in a message's content reads as U+FFFD.
* ``events_hex`` and ``snapshots_hex``: the log and the snapshots with their
  hashes as lower-case hex text (the form of ``RecordedEvent.hash`` and of a
  ``Digest``) instead of raw bytes; ``snapshots_hex`` leaves out the state
  (binary msgpack).

* ``otel_gen_ai``: one row per message or tool invocation, its columns
  named as the OpenTelemetry GenAI attributes (``OTEL_COLUMNS``:
  ``gen_ai.conversation.id`` is the session, ``gen_ai.request.model`` and
  ``gen_ai.response.model`` the message's model, ``gen_ai.tool.name`` and
  ``gen_ai.tool.call.id`` the tool and its call, ``gen_ai.usage.*`` the
  tokens as ``ledger.tokens`` normalises them), for tools that speak those
  names: ``SELECT "gen_ai.conversation.id", sum("gen_ai.usage.input_tokens")
  FROM otel_gen_ai GROUP BY 1``.

The sessions projector creates them with its tables (so a rebuild makes
them anew); they use only SQL that SQLite, PostgreSQL and DuckDB (which
re-reads an attached SQLite file's views in its own dialect) all accept.
"""

from __future__ import annotations

from .lineage import IN_CONVERSATION

VIEWS: tuple[str, ...] = ("effective_messages", "events_hex", "snapshots_hex", "otel_gen_ai")

#: The columns of ``otel_gen_ai`` that are OpenTelemetry GenAI attributes, and what each one holds.
OTEL_COLUMNS = {
    "gen_ai.operation.name": "chat for a message, execute_tool for a tool invocation",
    "gen_ai.conversation.id": "the session id",
    "gen_ai.request.model": "the message's model (the ledger keeps one model per message: request and response alike)",
    "gen_ai.response.model": "the message's model",
    "gen_ai.tool.name": "the tool: an invocation's, or a tool message's",
    "gen_ai.tool.call.id": "the tool call: an invocation's id, or the call a tool message answers",
    "gen_ai.usage.input_tokens": "input tokens, cached ones included",
    "gen_ai.usage.output_tokens": "output tokens, reasoning included",
    "gen_ai.usage.cache_read.input_tokens": "input tokens read from a cache (part of the input)",
    "gen_ai.usage.cache_creation.input_tokens": "input tokens written to a cache (part of the input)",
    "gen_ai.usage.reasoning.output_tokens": "reasoning tokens (part of the output)",
}

# PostgreSQL: the read tables' text is COLLATE "C" and the events table's is not; compared in the events
# table's collation, a session is found through that table's (session_id, version) index (equal either way).
_EVENTS_COLLATION = {"sqlite": "", "postgres": ' COLLATE "default"'}
_HEX = {"sqlite": "lower(hex({}))", "postgres": "encode({}, 'hex')"}


def _effective_messages(dialect: str) -> str:
    # Each message's columns, in the order of ``Ledger.messages``' fields, after the conversation's owner,
    # the place in it and the session it was recorded in.
    return f"""
SELECT g.session_id AS session_id,
       ROW_NUMBER() OVER (PARTITION BY g.session_id ORDER BY g.seq, m.version) AS ordinal,
       m.session_id AS message_session, m.version AS version, m.position AS position, m.role AS role,
       m.content AS content, m.tool_name AS tool_name, m.invocation_id AS invocation_id, m.model AS model,
       m.tokens_in AS tokens_in, m.tokens_out AS tokens_out, m.recorded_at AS recorded_at, m.blocks AS blocks,
       m.tokens_cache_read AS tokens_cache_read, m.tokens_cache_creation AS tokens_cache_creation,
       m.tokens_reasoning AS tokens_reasoning
FROM session_segments AS g
JOIN events AS e ON e.session_id = g.seg_session{_EVENTS_COLLATION[dialect]}
    AND e.version BETWEEN g.first AND COALESCE(g.last, 9223372036854775807)
JOIN messages AS m ON m.position = e.position
WHERE {IN_CONVERSATION}
"""


def _otel() -> str:
    # A UNION takes its column names from its first SELECT: the messages' carries the attribute names.
    message = ["'chat'", "session_id", "model", "model", "tool_name", "invocation_id", *_USAGE]
    invocation = ["'execute_tool'", "session_id", "NULL", "NULL", "tool_name", "invocation_id", *_USAGE]
    named = ", ".join(f'{value} AS "{name}"' for value, name in zip(message, OTEL_COLUMNS))
    return (
        f"SELECT position, recorded_at, role, {named} FROM messages"
        f" UNION ALL SELECT position, recorded_at, NULL, {', '.join(invocation)} FROM invocations"
    )


_USAGE = ("tokens_in", "tokens_out", "tokens_cache_read", "tokens_cache_creation", "tokens_reasoning")


def view_statements(dialect: str = "sqlite") -> list[str]:
    """CREATE VIEW statements for ``effective_messages``, ``events_hex``, ``snapshots_hex`` and ``otel_gen_ai``."""
    hexed = _HEX[dialect].format
    return [
        f"CREATE VIEW effective_messages AS {_effective_messages(dialect)}",
        (
            "CREATE VIEW events_hex AS SELECT position, event_id, session_id, version, type, schema, recorded_at,"
            f" data, {hexed('hash')} AS hash FROM events"
        ),
        (
            "CREATE VIEW snapshots_hex AS SELECT session_id, version, position, schema,"
            f" {hexed('event_hash')} AS event_hash, created_at FROM snapshots"
        ),
        f"CREATE VIEW otel_gen_ai AS {_otel()}",
    ]
