"""Reading along a lineage: the version ranges (of one or several sessions) that make up a session's
effective conversation after restores and forks (``ledger.session.segments``).

The ranges travel as one JSON parameter: SQLite reads it with ``json_each``,
PostgreSQL with ``jsonb_array_elements``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from .base import Connection, dialect_of


def _ranges(ranges: Sequence[tuple[str, int, int]]) -> str:
    return msgspec.json.encode([list(r) for r in ranges]).decode()


# A message row ``t`` that its own session had not retracted by the segment's last version (the parameter).
_KEPT = " AND (t.retracted_at IS NULL OR t.retracted_at > ?)"
_NOT_HIDDEN = (
    " AND NOT EXISTS (SELECT 1 FROM json_each(?) AS h WHERE json_extract(h.value, '$[0]') = t.session_id"
    " AND t.version BETWEEN json_extract(h.value, '$[1]') AND json_extract(h.value, '$[2]'))"
)
_PG_NOT_HIDDEN = (
    " AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(?::jsonb) AS h (value) WHERE h.value ->> 0 = t.session_id"
    " AND t.version BETWEEN (h.value ->> 1)::BIGINT AND (h.value ->> 2)::BIGINT)"
)


def in_segments(conn: Connection, table: str, columns: str, segments: Sequence[tuple[str, int, int]],
                limit: int | None = None, offset: int = 0,
                hidden: Sequence[tuple[str, int, int]] = (), roles: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``messages`` or ``invocations`` within a lineage of (session, first, last) version ranges, in
    order, leaving out ``hidden`` ranges (retracted or cleared messages); with ``roles``, only messages of
    those roles.

    The ranges are JSON parameters, so any number of them is one statement.
    """
    # The events table's (session_id, version) index finds the rows, joined by position: the read
    # tables need no per-session index of their own, which keeps every append a few pages lighter.
    pg = dialect_of(conn) == "postgres"
    unlimited = None if pg else -1  # "no limit": PostgreSQL's LIMIT NULL, SQLite's LIMIT -1
    page = (unlimited if limit is None else limit, offset)
    select = ", ".join("t." + c.strip() for c in columns.split(","))
    skip = (_PG_NOT_HIDDEN if pg else _NOT_HIDDEN) if hidden else ""
    skip_args: tuple[Any, ...] = (_ranges(hidden),) if hidden else ()
    if roles:
        skip += f" AND t.role IN ({', '.join('?' * len(roles))})"
        skip_args += tuple(roles)
    retracted = table == "messages"
    if len(segments) == 1:
        session_id, first, last = segments[0]
        kept = _KEPT if retracted else ""
        rows: list[tuple[Any, ...]] = conn.execute(
            f"SELECT {select} FROM events AS e JOIN {table} AS t ON t.position = e.position"
            f" WHERE e.session_id = ? AND e.version BETWEEN ? AND ?{kept}{skip} ORDER BY e.version LIMIT ? OFFSET ?",
            (session_id, first, last, *((last,) if retracted else ()), *skip_args, *page),
        ).fetchall()
    elif pg:
        kept = " AND (t.retracted_at IS NULL OR t.retracted_at > (seg.value ->> 2)::BIGINT)" if retracted else ""
        rows = conn.execute(
            f"SELECT {select} FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS seg (value, key)"
            " JOIN events AS e ON e.session_id = seg.value ->> 0"
            " AND e.version BETWEEN (seg.value ->> 1)::BIGINT AND (seg.value ->> 2)::BIGINT"
            f" JOIN {table} AS t ON t.position = e.position"
            f" WHERE TRUE{kept}{skip} ORDER BY seg.key, e.version LIMIT ? OFFSET ?",
            (_ranges(segments), *skip_args, *page),
        ).fetchall()
    else:
        kept = " AND (t.retracted_at IS NULL OR t.retracted_at > json_extract(seg.value, '$[2]'))" if retracted else ""
        rows = conn.execute(
            f"SELECT {select} FROM json_each(?) AS seg"
            " JOIN events AS e ON e.session_id = json_extract(seg.value, '$[0]')"
            " AND e.version BETWEEN json_extract(seg.value, '$[1]') AND json_extract(seg.value, '$[2]')"
            f" JOIN {table} AS t ON t.position = e.position"
            f" WHERE 1{kept}{skip} ORDER BY seg.key, e.version LIMIT ? OFFSET ?",
            (_ranges(segments), *skip_args, *page),
        ).fetchall()
    return rows


def last_message(
    conn: Connection, columns: str, segments: Sequence[tuple[str, int, int]], hidden: Sequence[tuple[str, int, int]]
) -> tuple[Any, ...] | None:
    """The last message still in a lineage's conversation: an index lookup per segment, from the newest."""
    pg = dialect_of(conn) == "postgres"
    select = ", ".join("t." + c.strip() for c in columns.split(","))
    skip = (_PG_NOT_HIDDEN if pg else _NOT_HIDDEN) if hidden else ""
    skip_args = (_ranges(hidden),) if hidden else ()
    for session_id, first, last in reversed(segments):
        row: tuple[Any, ...] | None = conn.execute(
            f"SELECT {select} FROM events AS e JOIN messages AS t ON t.position = e.position"
            f" WHERE e.session_id = ? AND e.version BETWEEN ? AND ?{_KEPT}{skip} ORDER BY e.version DESC LIMIT 1",
            (session_id, first, last, last, *skip_args),
        ).fetchone()
        if row is not None:
            return row
    return None


# A message row ``m`` that belongs to the effective conversation of the session named by the outer ``g``.
IN_CONVERSATION = (
    "g.seg_session = m.session_id AND g.hidden = 0 AND m.version >= g.first AND (g.last IS NULL OR m.version <= g.last)"
    " AND (m.retracted_at IS NULL OR (g.last IS NOT NULL AND m.retracted_at > g.last))"
    " AND NOT EXISTS (SELECT 1 FROM session_segments AS x WHERE x.session_id = g.session_id AND x.hidden = 1"
    " AND x.seg_session = m.session_id AND m.version BETWEEN x.first AND x.last)"
)
