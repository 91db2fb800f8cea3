"""Reading along a lineage: the version ranges (of one or several sessions) that make up a session's
effective conversation after restores and forks (``ledger.session.segments``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec


def in_segments(conn: sqlite3.Connection, table: str, columns: str, segments: Sequence[tuple[str, int, int]],
                limit: int | None = None, offset: int = 0) -> list[tuple[Any, ...]]:
    """Rows of ``messages`` or ``invocations`` within a lineage of (session, first, last) version ranges, in order.

    The ranges are one JSON parameter, so any number of them is one statement.
    """
    page = (-1 if limit is None else limit, offset)
    if len(segments) == 1:
        session_id, first, last = segments[0]
        return conn.execute(
            f"SELECT {columns} FROM {table} WHERE session_id = ? AND version BETWEEN ? AND ?"
            " ORDER BY version LIMIT ? OFFSET ?",
            (session_id, first, last, *page),
        ).fetchall()
    return conn.execute(
        f"SELECT {', '.join('t.' + c.strip() for c in columns.split(','))} FROM json_each(?) AS seg"
        f" JOIN {table} AS t ON t.session_id = json_extract(seg.value, '$[0]')"
        " AND t.version BETWEEN json_extract(seg.value, '$[1]') AND json_extract(seg.value, '$[2]')"
        " ORDER BY seg.key, t.version LIMIT ? OFFSET ?",
        (msgspec.json.encode([list(seg) for seg in segments]).decode(), *page),
    ).fetchall()
