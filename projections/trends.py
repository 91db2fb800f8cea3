"""Figures over time and per tool for the report (``ledger.report``), from the read tables.

* ``lifecycle_by_day``: per day, the sessions created (``created_at``), ended as completed, failed or
  abandoned (``completed_at`` and the status they hold now) and purged (the purge is a purged session's
  last event, so its ``updated_at``). A purged session counts as purged, whatever it ended as before.
* ``tool_health``: per tool, its invocations, those whose status is not ``ok`` (the error rate), its cost,
  and the p50 and p95 of its durations (nearest rank, as ``usage()``'s p95), over invocations in
  ``[since, until)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.times import time_arg

from .base import Connection

LIFECYCLE = ("created", "completed", "failed", "abandoned", "purged")


def _window(column: str, since: datetime | None, until: datetime | None) -> tuple[str, list[str]]:
    where, args = "", []
    for name, bound, op in (("since", since, ">="), ("until", until, "<")):
        if bound is not None:
            where += f" AND {column} {op} ?"
            args.append(time_arg(bound, name))
    return where, args


def lifecycle_by_day(conn: Connection, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Rows of ``day`` and the counts of ``LIFECYCLE`` that day, in day order (days with none left out)."""
    days: dict[str, dict[str, Any]] = {}

    def count(what: str, column: str, extra: str = "", params: tuple[str, ...] = ()) -> None:
        where, args = _window(column, since, until)
        rows = conn.execute(
            f"SELECT substr({column}, 1, 10) AS day, {what} AS what, COUNT(*) FROM sessions"
            f" WHERE {column} IS NOT NULL{extra}{where} GROUP BY 1, 2",
            [*params, *args],
        ).fetchall()
        for day, kind, n in rows:
            days.setdefault(day, {"day": day, **dict.fromkeys(LIFECYCLE, 0)})[kind] += int(n)

    count("'created'", "created_at")
    count("status", "completed_at", " AND status IN (?, ?, ?)", ("completed", "failed", "abandoned"))
    count("'purged'", "updated_at", " AND status = ?", ("purged",))
    return [days[day] for day in sorted(days)]


def _rank(values: list[float], percent: int) -> float | None:
    # Nearest rank, the rule of usage()'s p95: the value at rank ceil(n * percent / 100).
    if not values:
        return None
    return values[(len(values) * percent + 99) // 100 - 1]


def tool_health(conn: Connection, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Per tool, by name: ``invocations``, ``errors`` (status not ok), ``error_rate``, ``cost``, ``p50_ms`` and
    ``p95_ms`` over the invocations recorded in ``[since, until)``."""
    where, args = _window("recorded_at", since, until)
    tools: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = {}
    rows = conn.execute(
        f"SELECT tool_name, status, cost, duration_ms FROM invocations WHERE TRUE{where} ORDER BY position", args
    )
    for tool, status, cost, duration in rows:
        entry = tools.setdefault(tool, {"tool": tool, "invocations": 0, "errors": 0, "cost": 0.0})
        entry["invocations"] += 1
        entry["errors"] += status != "ok"
        entry["cost"] += cost or 0.0
        if duration is not None:
            durations.setdefault(tool, []).append(float(duration))
    out = []
    for tool in sorted(tools):
        entry, values = tools[tool], sorted(durations.get(tool, []))
        entry.update(error_rate=entry["errors"] / entry["invocations"], p50_ms=_rank(values, 50),
                     p95_ms=_rank(values, 95))
        out.append(entry)
    return out
