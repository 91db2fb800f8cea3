"""Session queries: filters become SQL with bound parameters only, pages are keyset cursors.

Keys and values are always parameters, so quotes, ``%``, ``_``, SQL keywords
and any Unicode are data, never SQL. Metadata filters compare canonical JSON
(objects with sorted keys), so ``{"a": 1, "b": 2}`` matches in any key order;
``ANY`` asks only for a key's presence.
"""

from __future__ import annotations

import base64
import binascii
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from ledger.errors import InvalidInput
from ledger.events import parse_time
from ledger.validation import Limits, check_json

from .analytics import time_bound
from .search import words
from .lineage import IN_CONVERSATION, in_segments
from .sessions import json_text

STATUSES = ("active", "completed", "failed", "abandoned", "purged")
ORDERS = (
    "created_at",
    "updated_at",
    "session_id",
    "version",
    "message_count",
    "invocation_count",
    "total_duration_ms",
    "tokens_in",
    "tokens_out",
    "estimated_cost",
)
MAX_LIMIT = 10_000
_LIMITS = Limits()


class _Any:
    """The metadata filter value meaning "the key is present, with any value"."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One session as ``list_sessions`` lists it: ids, status, times, counters, tags and metadata."""

    session_id: str
    version: int
    status: str
    user_id: str | None
    purpose: str | None
    parent_id: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    message_count: int
    invocation_count: int
    total_duration_ms: float
    tokens_in: int
    tokens_out: int
    estimated_cost: float
    tools_used: tuple[str, ...]
    tags: tuple[str, ...]
    metadata: dict[str, Any]


class Page(msgspec.Struct, frozen=True):
    """One page of results; pass ``cursor`` back for the next page (None on the last one)."""

    items: list[SessionSummary]
    cursor: str | None = None

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


_COLUMNS = (
    "session_id, version, status, user_id, purpose, parent_id, created_at, updated_at, completed_at,"
    " message_count, invocation_count, total_duration_ms, tokens_in, tokens_out, estimated_cost, tools_used"
)


def _strings(value: object, field: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInput(f"{field} must be a list of strings, not {type(value).__name__}", field=field)
    out = list(value)
    if not out:
        raise InvalidInput(f"{field} must be a non-empty list of strings", field=field)
    return [_text_arg(v, field) for v in out]


def _text_arg(value: object, field: str) -> str:
    """A filter string: text that SQLite can store (no lone surrogates)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string; got {value!r}", field=field)
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text (lone surrogate at {exc.start})", field=field) from exc
    return value


def _encode_cursor(order_by: str, descending: bool, value: Any, session_id: str) -> str:
    raw = msgspec.json.encode([order_by, descending, value, session_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: object, order_by: str, descending: bool) -> tuple[Any, str]:
    if not isinstance(cursor, str):
        raise InvalidInput(f"cursor must be a string from a previous Page; got {cursor!r}", field="cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        order, desc, value, session_id = msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError, TypeError, UnicodeError) as exc:
        raise InvalidInput("cursor is not one this ledger made", field="cursor") from exc
    if order != order_by or desc != descending:
        raise InvalidInput("cursor belongs to a listing with another order; start again without it", field="cursor")
    valid_value = (
        isinstance(value, str)
        or (isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63)
        or (isinstance(value, float) and math.isfinite(value))
    )
    if not isinstance(session_id, str) or not valid_value:
        raise InvalidInput("cursor is not one this ledger made", field="cursor")
    try:
        for text in (session_id, value if isinstance(value, str) else ""):
            text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput("cursor is not one this ledger made", field="cursor") from exc
    return value, session_id


class ListPlan(msgspec.Struct, frozen=True):
    """A validated ``list_sessions`` call: its SQL, parameters and paging, before it touches the database."""

    sql: str
    args: tuple[Any, ...]
    limit: int
    order_by: str
    descending: bool
    needs_search: bool


def list_sessions(conn: sqlite3.Connection, **filters: Any) -> Page:
    """Sessions matching every filter given (see ``plan_list``), newest first by default, one page at a time."""
    return run_list(conn, plan_list(**filters))


def plan_list(
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
) -> ListPlan:
    """Validate the filters and build the query; raises ``InvalidInput`` naming the bad filter."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}; got {limit!r}", field="limit", limit=MAX_LIMIT)
    if order_by not in ORDERS:
        raise InvalidInput(f"order_by must be one of {', '.join(ORDERS)}; got {order_by!r}", field="order_by")
    if not isinstance(descending, bool):
        raise InvalidInput(f"descending must be True or False; got {descending!r}", field="descending")
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("user_id", user_id), ("parent_id", parent_id)):
        if value is not None:
            where.append(f"s.{column} = ?")
            args.append(_text_arg(value, column))
    if status is not None:
        wanted = [status] if isinstance(status, str) else _strings(status, "status")
        for s in wanted:
            if s not in STATUSES:
                raise InvalidInput(f"status must be among {', '.join(STATUSES)}; got {s!r}", field="status")
        where.append(f"s.status IN ({', '.join('?' * len(wanted))})")
        args += wanted
    if tags is not None:
        for tag in _strings(tags, "tags"):
            where.append("EXISTS (SELECT 1 FROM session_tags AS t WHERE t.session_id = s.session_id AND t.tag = ?)")
            args.append(tag)
    if any_tags is not None:
        some = _strings(any_tags, "any_tags")
        where.append(
            "EXISTS (SELECT 1 FROM session_tags AS t WHERE t.session_id = s.session_id"
            f" AND t.tag IN ({', '.join('?' * len(some))}))"
        )
        args += some
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidInput(f"metadata must be a mapping of keys to values; got {metadata!r}", field="metadata")
        for key, value in metadata.items():
            _text_arg(key, "metadata")
            if value is ANY:
                where.append(
                    "EXISTS (SELECT 1 FROM session_metadata AS m WHERE m.session_id = s.session_id AND m.key = ?)"
                )
                args.append(key)
            else:
                # The value a write would have stored, or the refusal a write would have given.
                try:
                    value, _ = check_json(value, f"metadata filter {key!r}", _LIMITS.max_metadata_value_bytes, _LIMITS, None)
                except InvalidInput as exc:
                    raise InvalidInput(exc.message, field="metadata", limit=exc.limit) from exc
                encoded = json_text(value)
                where.append(
                    "EXISTS (SELECT 1 FROM session_metadata AS m"
                    " WHERE m.session_id = s.session_id AND m.key = ? AND m.value = ?)"
                )
                args += [key, encoded]
    for column, bound, op, field in (
        ("created_at", created_after, ">", "created_after"),
        ("created_at", created_before, "<", "created_before"),
        ("updated_at", updated_after, ">", "updated_after"),
    ):
        if bound is not None:
            where.append(f"s.{column} {op} ?")
            args.append(time_bound(bound, field))
    if text is not None:
        for word in words(text, "text"):  # each word anywhere in the effective conversation
            where.append(
                "s.session_id IN (SELECT g.session_id FROM messages_fts JOIN messages AS m"
                f" ON m.position = messages_fts.rowid JOIN session_segments AS g ON {IN_CONVERSATION}"
                " WHERE messages_fts MATCH ?)"
            )
            args.append(f'"{word}"')
    direction, compare = ("DESC", "<") if descending else ("ASC", ">")
    if cursor is not None:
        value, after_id = _decode_cursor(cursor, order_by, descending)
        where.append(f"(s.{order_by}, s.session_id) {compare} (?, ?)")
        args += [value, after_id]
    sql = f"SELECT {_COLUMNS}, s.{order_by} FROM sessions AS s"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY s.{order_by} {direction}, s.session_id {direction} LIMIT ?"
    return ListPlan(sql, tuple(args), limit, order_by, descending, text is not None)


def run_list(conn: sqlite3.Connection, plan: ListPlan) -> Page:
    """Run a planned listing: one page of summaries and the cursor for the next."""
    rows = conn.execute(plan.sql, (*plan.args, plan.limit + 1)).fetchall()
    more = len(rows) > plan.limit
    rows = rows[: plan.limit]
    items = _summaries(conn, rows)
    next_cursor = _encode_cursor(plan.order_by, plan.descending, rows[-1][-1], rows[-1][0]) if more else None
    return Page(items, next_cursor)


def _summaries(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[SessionSummary]:
    ids = [row[0] for row in rows]
    tags: dict[str, list[str]] = {sid: [] for sid in ids}
    metadata: dict[str, dict[str, Any]] = {sid: {} for sid in ids}
    for start in range(0, len(ids), 500):  # stay well under SQLite's bound-parameter limit
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for sid, tag in conn.execute(
            f"SELECT session_id, tag FROM session_tags WHERE session_id IN ({marks}) ORDER BY rowid", chunk
        ):
            tags[sid].append(tag)
        for sid, key, value in conn.execute(
            f"SELECT session_id, key, value FROM session_metadata WHERE session_id IN ({marks}) ORDER BY rowid", chunk
        ):
            metadata[sid][key] = msgspec.json.decode(value)
    return [
        SessionSummary(
            session_id=sid,
            version=version,
            status=status,
            user_id=user,
            purpose=purpose,
            parent_id=parent,
            created_at=parse_time(created),
            updated_at=parse_time(updated),
            completed_at=parse_time(completed) if completed else None,
            message_count=messages,
            invocation_count=invocations,
            total_duration_ms=duration,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            estimated_cost=cost,
            tools_used=tuple(msgspec.json.decode(tools)),
            tags=tuple(tags[sid]),
            metadata=metadata[sid],
        )
        for (sid, version, status, user, purpose, parent, created, updated, completed, messages, invocations,
             duration, tokens_in, tokens_out, cost, tools, _order) in rows
    ]


_MESSAGE_COLUMNS = "role, content, tool_name, invocation_id, model, tokens_in, tokens_out, recorded_at, version, position"


def conversation(
    conn: sqlite3.Connection,
    segments: Sequence[tuple[str, int, int]],
    *,
    limit: int | None = None,
    offset: int = 0,
    hidden: Sequence[tuple[str, int, int]] = (),
) -> list[tuple[Any, ...]]:
    """The messages of a lineage of (session, first version, last version) ranges, in order: (role,
    content, tool_name, invocation_id, model, tokens_in, tokens_out, recorded_at, version, position)."""
    return in_segments(conn, "messages", _MESSAGE_COLUMNS, segments, limit, offset, hidden)
