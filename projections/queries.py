"""Session queries: filters become SQL with bound parameters only, pages are keyset cursors.

Keys and values are always parameters, so quotes, ``%``, ``_``, SQL keywords
and any Unicode are data, never SQL. Metadata filters compare canonical JSON
(objects with sorted keys), so ``{"a": 1, "b": 2}`` matches in any key order;
``ANY`` asks only for a key's presence.

Each plan is built for a SQL dialect (``"sqlite"`` or ``"postgres"``, the
storage's ``dialect``); the readers below find it from the connection
(``dialect_of``). Results are the same on both.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, NamedTuple, get_args, get_type_hints

import msgspec

from ledger import events as ev
from ledger.errors import InvalidInput
from ledger.times import parse_time, time_arg
from ledger.validation import Limits, check_choice, check_filter_text, check_json, check_page_size, check_strings

from .base import Connection, dialect_of
from .search import PG_MATCH, pg_words, words
from .lineage import IN_CONVERSATION, in_segments, last_message
from .sessions import json_text

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


_TEXT_ORDERS = ("created_at", "updated_at", "session_id")
_COLUMNS = (
    "session_id, version, status, user_id, purpose, parent_id, created_at, updated_at, completed_at,"
    " message_count, invocation_count, total_duration_ms, tokens_in, tokens_out, estimated_cost, tools_used"
)


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


def _about(description: str, flag: str | None = None, **schema: Any) -> Any:
    # The field's help text, the command line's flag for it where it is not ``--field-name``, and
    # JSON-schema bounds that tools show (the filter itself checks them, with the ledger's errors).
    return msgspec.Meta(description=description, extra={"flag": flag or "", "schema": schema})


class FilterField(NamedTuple):
    """One ``SessionFilter`` field as the faces present it: its type, default, help text and command-line flag."""

    name: str
    type: Any
    default: Any
    description: str
    flag: str
    schema: dict[str, Any]


class SessionFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which sessions a listing returns, in what order, one page at a time.

    The one declaration of ``list_sessions``'s filters: ``Ledger.list_sessions``
    builds one from its keywords, and the ``ledger sessions`` options and the
    MCP ``list_sessions`` tool are derived from its fields.
    """

    user_id: Annotated[str | None, _about("Only this user's sessions.", "--user")] = None
    status: Annotated[
        str | Iterable[str] | None, _about("active, completed, failed, abandoned or purged; several mean any of them.")
    ] = None
    tags: Annotated[Iterable[str] | None, _about("Carrying all of these tags.", "--tag")] = None
    any_tags: Annotated[Iterable[str] | None, _about("Carrying any of these tags.", "--any-tag")] = None
    metadata: Annotated[
        Mapping[str, Any] | None, _about("Metadata keys equal to these JSON values (ANY: the key is present).", "--meta")
    ] = None
    created_after: Annotated[datetime | None, _about("Created after this time.")] = None
    created_before: Annotated[datetime | None, _about("Created before this time.")] = None
    updated_after: Annotated[datetime | None, _about("Changed after this time.")] = None
    text: Annotated[str | None, _about("Words anywhere in the conversation.")] = None
    parent_id: Annotated[str | None, _about("Only forks of this session.", "--parent")] = None
    order_by: Annotated[str, _about("The field to sort by: " + ", ".join(ORDERS) + ".")] = "created_at"
    descending: Annotated[bool, _about("Largest (newest) first.", "--asc")] = True
    limit: Annotated[int, _about(f"Sessions per page (1-{MAX_LIMIT}).", minimum=1, maximum=MAX_LIMIT)] = 100
    cursor: Annotated[str | None, _about("The cursor returned with the previous page.")] = None

    @classmethod
    def fields(cls) -> tuple[FilterField, ...]:
        """Every field with its type, default, help text and flag, for the faces that offer the filter."""
        hints = get_type_hints(cls, include_extras=True)
        out = []
        for field in msgspec.structs.fields(cls):
            kind, *extras = get_args(hints[field.name])
            meta = next(m for m in extras if isinstance(m, msgspec.Meta))
            extra = meta.extra or {}
            flag = extra.get("flag") or "--" + field.name.replace("_", "-")
            out.append(FilterField(field.name, kind, field.default, meta.description or "", flag, extra.get("schema", {})))
        return tuple(out)


class ListPlan(msgspec.Struct, frozen=True):
    """A validated ``list_sessions`` call: its SQL, parameters and paging, before it touches the database."""

    sql: str
    args: tuple[Any, ...]
    limit: int
    order_by: str
    descending: bool
    needs_search: bool


def _pg_cursor(value: Any, after_id: str, order_by: str) -> None:
    # SQLite compares any value with any column; PostgreSQL needs the column's kind, and text without NUL.
    if (
        isinstance(value, str) != (order_by in _TEXT_ORDERS)
        or "\x00" in after_id
        or (isinstance(value, str) and "\x00" in value)
    ):
        raise InvalidInput("cursor is not one this ledger made", field="cursor")


def plan_list(f: SessionFilter, dialect: str = "sqlite") -> ListPlan:
    """Validate the filters and build the query for the ``dialect``; raises ``InvalidInput`` naming the bad filter."""
    if not isinstance(f, SessionFilter):
        raise InvalidInput(f"a listing takes a SessionFilter; got {f!r}", field="filter")
    user_id, status, tags, any_tags, metadata = f.user_id, f.status, f.tags, f.any_tags, f.metadata
    created_after, created_before, updated_after = f.created_after, f.created_before, f.updated_after
    text, parent_id, order_by, descending, limit, cursor = f.text, f.parent_id, f.order_by, f.descending, f.limit, f.cursor
    check_page_size(limit, MAX_LIMIT)
    check_choice(order_by, "order_by", ORDERS, None)
    if not isinstance(descending, bool):
        raise InvalidInput(f"descending must be True or False; got {descending!r}", field="descending")
    pg = dialect == "postgres"
    where: list[str] = []
    args: list[Any] = []

    def add(condition: str, *values: Any) -> None:
        # PostgreSQL text cannot hold NUL, and no stored text has one: there such a filter matches nothing.
        if pg and any(isinstance(v, str) and "\x00" in v for v in values):
            condition, values = "FALSE", ()
        where.append(condition)
        args.extend(values)

    for column, value in (("user_id", user_id), ("parent_id", parent_id)):
        if value is not None:
            add(f"s.{column} = ?", check_filter_text(value, column))
    if status is not None:
        wanted = [status] if isinstance(status, str) else check_strings(status, "status")
        for s in wanted:
            if s not in ev.STATUSES:
                raise InvalidInput(f"status must be among {', '.join(ev.STATUSES)}; got {s!r}", field="status")
        where.append(f"s.status IN ({', '.join('?' * len(wanted))})")
        args += wanted
    if tags is not None:
        for tag in check_strings(tags, "tags"):
            add("EXISTS (SELECT 1 FROM session_tags AS t WHERE t.session_id = s.session_id AND t.tag = ?)", tag)
    if any_tags is not None:
        some = check_strings(any_tags, "any_tags")
        if pg:  # a tag with NUL matches nothing there (see ``add``), nor does a list of only such tags
            some = [tag for tag in some if "\x00" not in tag] or some
        add(
            "EXISTS (SELECT 1 FROM session_tags AS t WHERE t.session_id = s.session_id"
            f" AND t.tag IN ({', '.join('?' * len(some))}))",
            *some,
        )
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidInput(f"metadata must be a mapping of keys to values; got {metadata!r}", field="metadata")
        for key, value in metadata.items():
            check_filter_text(key, "metadata")
            if value is ANY:
                add("EXISTS (SELECT 1 FROM session_metadata AS m WHERE m.session_id = s.session_id AND m.key = ?)", key)
            else:
                # The value a write would have stored, or the refusal a write would have given.
                try:
                    value, _ = check_json(value, f"metadata filter {key!r}", _LIMITS.max_metadata_value_bytes, _LIMITS, None)
                except InvalidInput as exc:
                    raise InvalidInput(exc.message, field="metadata", limit=exc.limit) from exc
                add(
                    "EXISTS (SELECT 1 FROM session_metadata AS m"
                    " WHERE m.session_id = s.session_id AND m.key = ? AND m.value = ?)",
                    key,
                    json_text(value),
                )
    for column, bound, op, field in (
        ("created_at", created_after, ">", "created_after"),
        ("created_at", created_before, "<", "created_before"),
        ("updated_at", updated_after, ">", "updated_after"),
    ):
        if bound is not None:
            add(f"s.{column} {op} ?", time_arg(bound, field))
    if text is not None and pg:
        for word in pg_words(text, "text"):  # each word anywhere in the effective conversation
            add(
                "s.session_id IN (SELECT g.session_id FROM messages_fts AS f JOIN messages AS m"
                f" ON m.position = f.position JOIN session_segments AS g ON {IN_CONVERSATION} WHERE {PG_MATCH})",
                word,
            )
    elif text is not None:
        for word in words(text, "text"):
            add(
                "s.session_id IN (SELECT g.session_id FROM messages_fts JOIN messages AS m"
                f" ON m.position = messages_fts.rowid JOIN session_segments AS g ON {IN_CONVERSATION}"
                " WHERE messages_fts MATCH ?)",
                f'"{word}"',
            )
    direction, compare = ("DESC", "<") if descending else ("ASC", ">")
    if cursor is not None:
        value, after_id = _decode_cursor(cursor, order_by, descending)
        if pg:
            _pg_cursor(value, after_id, order_by)
        add(f"(s.{order_by}, s.session_id) {compare} (?, ?)", value, after_id)
    sql = f"SELECT {_COLUMNS}, s.{order_by} FROM sessions AS s"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY s.{order_by} {direction}, s.session_id {direction} LIMIT ?"
    return ListPlan(sql, tuple(args), limit, order_by, descending, text is not None)


def run_list(conn: Connection, plan: ListPlan) -> Page:
    """Run a planned listing: one page of summaries and the cursor for the next."""
    rows = conn.execute(plan.sql, (*plan.args, plan.limit + 1)).fetchall()
    more = len(rows) > plan.limit
    rows = rows[: plan.limit]
    items = _summaries(conn, rows)
    next_cursor = _encode_cursor(plan.order_by, plan.descending, rows[-1][-1], rows[-1][0]) if more else None
    return Page(items, next_cursor)


def _summaries(conn: Connection, rows: list[tuple[Any, ...]]) -> list[SessionSummary]:
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


_MESSAGE_COLUMNS = (
    "role, content, tool_name, invocation_id, model, tokens_in, tokens_out, recorded_at, version, position, blocks,"
    " tokens_cache_read, tokens_cache_creation, tokens_reasoning"
)


def conversation(
    conn: Connection,
    segments: Sequence[tuple[str, int, int]],
    *,
    limit: int | None = None,
    offset: int = 0,
    hidden: Sequence[tuple[str, int, int]] = (),
    roles: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """The messages of a lineage of (session, first version, last version) ranges, in order (only ``roles``'
    when given): (role, content, tool_name, invocation_id, model, tokens_in, tokens_out, recorded_at, version,
    position, blocks as JSON text or None, tokens_cache_read, tokens_cache_creation, tokens_reasoning)."""
    if dialect_of(conn) != "postgres":
        return in_segments(conn, "messages", _MESSAGE_COLUMNS, segments, limit, offset, hidden, roles)
    # PostgreSQL: the exact content of a message with a NUL is kept as JSON text (``projections.postgres``).
    rows = in_segments(conn, "messages", _MESSAGE_COLUMNS + ", content_exact", segments, limit, offset, hidden,
                       roles)
    return [
        row[:-1] if row[-1] is None else (row[0], msgspec.json.decode(row[-1]), *row[2:-1])
        for row in rows
    ]


def message_in_conversation(
    conn: Connection,
    session_id: str,
    segments: Sequence[tuple[str, int, int]],
    hidden: Sequence[tuple[str, int, int]],
    message_count: int,
    version: int | None,
    position: int | None,
) -> tuple[str, int, str] | None:
    """(origin session, version, role) of the last message of an effective conversation, of the session's
    own message at ``version``, or of the one at global ``position``; None when there is no such message."""
    if message_count == 0:
        return None
    if version is None and position is None:
        last = last_message(conn, "session_id, version, role", segments, hidden)
        return None if last is None else (last[0], last[1], last[2])
    rows = in_segments(conn, "messages", "session_id, version, role, position", segments, hidden=hidden)
    for origin, message_version, role, message_position in reversed(rows):
        if (position is not None and message_position == position) or (
            version is not None and origin == session_id and message_version == version
        ):
            return origin, message_version, role
    return None


def invocations(conn: Connection, segments: Sequence[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """The invocations of a lineage of version ranges, in order, as dicts of their columns."""
    columns = ("invocation_id", "tool_name", "duration_ms", "tokens_in", "tokens_out", "cost", "status", "artifact",
               "recorded_at", "version", "position")
    return [dict(zip(columns, row)) for row in in_segments(conn, "invocations", ", ".join(columns), segments)]


def linked_invocation(
    conn: Connection, segments: Sequence[tuple[str, int, int]], invocation_id: str
) -> tuple[Any, ...] | None:
    """(tool_name, duration_ms, tokens_in, tokens_out, cost, status, artifact, tokens_cache_read,
    tokens_cache_creation, tokens_reasoning) of the invocation already linked under ``invocation_id`` in a
    lineage's history, or None: found by the invocation_id index."""
    for session_id, first, last in segments:
        row: tuple[Any, ...] | None = conn.execute(
            "SELECT t.tool_name, t.duration_ms, t.tokens_in, t.tokens_out, t.cost, t.status, t.artifact,"
            " t.tokens_cache_read, t.tokens_cache_creation, t.tokens_reasoning"
            # By the invocation_id index, then the row's own session and version: a few rows, however long
            # the session (a join on events lets the planner walk the session's versions instead).
            " FROM invocations AS t"
            " WHERE t.invocation_id = ? AND t.session_id = ? AND t.version BETWEEN ? AND ? LIMIT 1",
            (invocation_id, session_id, first, last),
        ).fetchone()
        if row is not None:
            return row
    return None


def descendants(conn: Connection, session_id: str) -> list[str]:
    """Every fork of the session, and every fork of those, sorted by id."""
    rows = conn.execute(
        "WITH RECURSIVE tree(id) AS (SELECT session_id FROM sessions WHERE parent_id = ?"
        " UNION SELECT s.session_id FROM sessions AS s JOIN tree ON s.parent_id = tree.id)"
        " SELECT id FROM tree ORDER BY id",
        (session_id,),
    )
    return [sid for (sid,) in rows]


# Sessions that ended (or idled) at the same instant: SQLite returns them as its index on (status, created_at)
# finds them, then in creation order (its rowid); PostgreSQL's sort is not stable, so it is told that order.
_PG_TIES = (
    ", status, created_at, (SELECT e.position FROM events AS e WHERE e.session_id = sessions.session_id AND e.version = 1)"
)


def _ties(conn: Connection) -> str:
    return _PG_TIES if dialect_of(conn) == "postgres" else ""


def ended_before(conn: Connection, cutoff: str) -> list[str]:
    """Sessions that ended (completed, failed or abandoned) before a stored time, oldest end first."""
    marks = ", ".join("?" * len(ev.CLOSED_STATUSES))
    rows = conn.execute(
        f"SELECT session_id FROM sessions WHERE status IN ({marks}) AND completed_at < ? ORDER BY completed_at"
        + _ties(conn),
        (*ev.CLOSED_STATUSES, cutoff),
    )
    return [sid for (sid,) in rows]


def idle_since(conn: Connection, cutoff: str) -> list[str]:
    """Active sessions whose last change is before a stored time, longest idle first."""
    rows = conn.execute(
        "SELECT session_id FROM sessions WHERE status = ? AND updated_at < ? ORDER BY updated_at"
        + _ties(conn),
        (ev.ACTIVE, cutoff),
    )
    return [sid for (sid,) in rows]
