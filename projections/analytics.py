"""Analytics over the read tables: usage by tool, user, model, day or status, and per-session statistics.

The same SQL backs the ``usage()`` query and the documented views an analyst
can query directly (``sqlite3 ledger.db 'SELECT * FROM usage_by_tool'``):

* ``activity``: one row per message or invocation, with its session's user and
  status, its ``day``, tokens, cost and duration;
* ``usage_by_tool``, ``usage_by_user``, ``usage_by_model``, ``usage_by_day``,
  ``usage_by_status``: per group (rows with no tool, user or model form one group
  whose key is NULL, last, so the groups add up to the whole), ``sessions`` (distinct), ``messages``,
  ``invocations``, ``tokens_in``, ``tokens_out``, ``cost``,
  ``total_duration_ms`` and ``p95_duration_ms`` (nearest rank, over
  invocation durations; NULL where no duration applies), then
  ``tokens_cache_read``, ``tokens_cache_creation`` and ``tokens_reasoning``
  (parts of the input and output tokens, as ``ledger.tokens`` counts them).

On PostgreSQL the views have the same names and columns, with the same
values: ``day`` is the first ten characters of the time, integer sums come
back as integers, and sums of costs and durations add the rows in log order,
as SQLite's do, so their last bits agree too (SQLite 3.43 and later
compensate the rounding of a float SUM; there they may differ in the last bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from ledger.times import time_arg
from ledger.validation import check_choice

from .base import Connection, dialect_of
from .lineage import in_segments

GROUPS: dict[str, str] = {"tool": "tool", "user": "user_id", "model": "model", "day": "day", "status": "status"}
VIEWS: tuple[str, ...] = tuple(f"usage_by_{by}" for by in GROUPS) + ("activity",)

# The cache and reasoning token columns (parts of tokens_in and tokens_out), after the older columns.
_PARTS = "tokens_cache_read, tokens_cache_creation, tokens_reasoning"

_ACTIVITY = f"""
SELECT a.session_id, a.recorded_at, date(a.recorded_at) AS day, a.is_message, a.is_invocation, a.tool, a.model,
       a.tokens_in, a.tokens_out, a.cost, a.duration_ms, s.user_id, s.status, a.tokens_cache_read,
       a.tokens_cache_creation, a.tokens_reasoning
FROM (
    SELECT session_id, recorded_at, 1 AS is_message, 0 AS is_invocation, tool_name AS tool, model,
           tokens_in, tokens_out, NULL AS cost, NULL AS duration_ms, {_PARTS}
    FROM messages
    UNION ALL
    SELECT session_id, recorded_at, 0, 1, tool_name, NULL, tokens_in, tokens_out, cost, duration_ms, {_PARTS}
    FROM invocations
) AS a JOIN sessions AS s ON s.session_id = a.session_id
"""


# PostgreSQL's activity rows, with their ``position`` for ordered sums; the view leaves it out.
_PG_ACTIVITY = f"""
SELECT a.session_id, a.recorded_at, substr(a.recorded_at, 1, 10) AS day, a.is_message, a.is_invocation, a.tool,
       a.model, a.tokens_in, a.tokens_out, a.cost, a.duration_ms, s.user_id, s.status, a.tokens_cache_read,
       a.tokens_cache_creation, a.tokens_reasoning{{position}}
FROM (
    SELECT session_id, recorded_at, 1 AS is_message, 0 AS is_invocation, tool_name AS tool, model,
           tokens_in, tokens_out, NULL::DOUBLE PRECISION AS cost, NULL::DOUBLE PRECISION AS duration_ms, {_PARTS},
           position
    FROM messages
    UNION ALL
    SELECT session_id, recorded_at, 0, 1, tool_name, NULL, tokens_in, tokens_out, cost, duration_ms, {_PARTS},
           position
    FROM invocations
) AS a JOIN sessions AS s ON s.session_id = a.session_id
"""


# What the usage SELECT says differently on each dialect: where activity rows come from, the cast that keeps
# a sum of BIGINTs an integer (PostgreSQL's SUM would give NUMERIC), and the order floats are summed in (log
# order, as SQLite sums them, so the totals agree to the last bit).
_USAGE_DIALECT = {
    "sqlite": {"source": "activity", "int": "", "ordered": ""},
    "postgres": {"source": f"({_PG_ACTIVITY.format(position=', a.position')}) AS activity", "int": "::BIGINT",
                 "ordered": " ORDER BY a.position"},
}


def usage_sql(by: str, where: str = "", dialect: str = "sqlite") -> str:
    """The SELECT for usage grouped by ``by``; ``where`` filters activity rows (bound parameters only)."""
    key = GROUPS[by]
    d = _USAGE_DIALECT[dialect]
    return f"""
WITH a AS (SELECT {key} AS grp, * FROM {d["source"]} WHERE TRUE {where}),
ranked AS (
    SELECT grp, duration_ms,
           ROW_NUMBER() OVER (PARTITION BY grp ORDER BY duration_ms) AS rn,
           COUNT(*) OVER (PARTITION BY grp) AS n
    FROM a WHERE duration_ms IS NOT NULL
)
SELECT a.grp AS {by}, COUNT(DISTINCT a.session_id) AS sessions, SUM(a.is_message) AS messages,
       SUM(a.is_invocation) AS invocations, COALESCE(SUM(a.tokens_in), 0){d["int"]} AS tokens_in,
       COALESCE(SUM(a.tokens_out), 0){d["int"]} AS tokens_out, COALESCE(SUM(a.cost{d["ordered"]}), 0.0) AS cost,
       SUM(a.duration_ms{d["ordered"]}) AS total_duration_ms,
       (SELECT r.duration_ms FROM ranked AS r
        -- the keyless group (NULL) too; spelled out, as SQLite before 3.39 and DuckDB's reading of the view take it
        WHERE (r.grp = a.grp OR r.grp IS NULL AND a.grp IS NULL) AND r.rn = (r.n * 95 + 99) / 100) AS p95_duration_ms,
       COALESCE(SUM(a.tokens_cache_read), 0){d["int"]} AS tokens_cache_read,
       COALESCE(SUM(a.tokens_cache_creation), 0){d["int"]} AS tokens_cache_creation,
       COALESCE(SUM(a.tokens_reasoning), 0){d["int"]} AS tokens_reasoning
FROM a GROUP BY a.grp ORDER BY a.grp IS NULL, a.grp"""


def view_statements(dialect: str = "sqlite") -> list[str]:
    """CREATE VIEW statements for ``activity`` and every ``usage_by_*`` view."""
    activity = _PG_ACTIVITY.format(position="") if dialect == "postgres" else _ACTIVITY
    return [f"CREATE VIEW activity AS {activity}"] + [
        f"CREATE VIEW usage_by_{by} AS {usage_sql(by, dialect=dialect)}" for by in GROUPS
    ]


def usage(
    conn: Connection, by: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Usage rows grouped by tool, user, model, day or status, over activity in ``[since, until)``; activity
    with no tool, user or model is one group keyed None (last), so the groups add up to the whole."""
    check_choice(by, "by", tuple(GROUPS), None)
    where, args = "", []
    for name, bound, op in (("since", since, ">="), ("until", until, "<")):
        if bound is not None:
            where += f" AND recorded_at {op} ?"
            args.append(time_arg(bound, name))
    cursor = conn.execute(usage_sql(by, where, dialect_of(conn)), args)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor]


class ToolUsage(msgspec.Struct, frozen=True):
    """One tool's share of a session: how often it ran and for how long in all."""

    tool_name: str
    count: int
    total_duration_ms: float


class Statistics(msgspec.Struct, frozen=True, kw_only=True):
    """A session's figures; names shared with ``Session`` mean the same thing."""

    session_id: str
    status: str
    message_count: int
    messages_by_role: dict[str, int]
    invocation_count: int
    invocations_by_status: dict[str, int]
    total_duration_ms: float
    tools_used: tuple[str, ...]
    tools: tuple[ToolUsage, ...]
    tokens_in: int
    tokens_out: int
    #: Parts of tokens_in and tokens_out (OpenTelemetry GenAI: cache reads and writes of the input,
    #: reasoning of the output).
    tokens_cache_read: int
    tokens_cache_creation: int
    tokens_reasoning: int
    estimated_cost: float
    first_activity: datetime
    last_activity: datetime
    duration_s: float


def invocation_figures(
    conn: Connection, segments: Sequence[tuple[str, int, int]]
) -> tuple[tuple[ToolUsage, ...], dict[str, int]]:
    """Per tool (count, total duration) in first-use order, and counts by status, over a lineage of version ranges."""
    tools: dict[str, list[Any]] = {}
    by_status: dict[str, int] = {}
    for tool, duration, status in in_segments(conn, "invocations", "tool_name, duration_ms, status", segments):
        entry = tools.setdefault(tool, [0, 0.0])
        entry[0] += 1
        entry[1] += duration or 0.0
        by_status[status] = by_status.get(status, 0) + 1
    return tuple(ToolUsage(t, n, d) for t, (n, d) in tools.items()), dict(sorted(by_status.items()))


_BY_STATUS = """
SELECT status, COUNT(*) AS sessions, CAST(COALESCE(SUM(message_count), 0) AS BIGINT) AS messages,
       CAST(COALESCE(SUM(invocation_count), 0) AS BIGINT) AS invocations,
       CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT) AS tokens_in, CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) AS tokens_out,
       COALESCE(SUM(estimated_cost), 0.0) AS cost
FROM sessions GROUP BY status ORDER BY status"""


def sessions_by_status(conn: Connection) -> list[dict[str, Any]]:
    """Every session counted by its status (purged ones included), with their messages, invocations, tokens
    and cost as the sessions table holds them."""
    cursor = conn.execute(_BY_STATUS)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor]
