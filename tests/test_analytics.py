"""statistics() per session, usage() by tool/user/model/day/status, and the SQL views an analyst reads directly."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ledger import InvalidInput, Ledger, SessionNotFound, Statistics, ToolUsage
from tests.conftest import Clock, is_postgres, raw_sql

UTC = timezone.utc


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


# -- statistics ----------------------------------------------------------------------------------------------


def _worked_session(led: Ledger, clock: Clock) -> None:
    """Eight events ten seconds apart, from 12:00:00 to 12:01:10."""
    clock.now = at(1, 12)
    clock.step = timedelta(seconds=10)
    led.create_session("s", user_id="alice")
    led.add_message("s", "user", "q", tokens={"input": 10})
    led.add_message("s", "assistant", "a", model="m1", tokens={"input": 100, "output": 20})
    led.add_message("s", "tool", "out", tool_name="git", invocation_id="i1")
    led.link_invocation("s", "i1", "git", duration_ms=150.5, tokens={"input": 5, "output": 6}, cost=0.25)
    led.link_invocation("s", "i2", "search", duration_ms=49.5, cost=0.5, status="error")
    led.link_invocation("s", "i3", "git")
    led.add_message("s", "assistant", "done")


def test_statistics_of_a_worked_session(ledger: Ledger, clock: Clock) -> None:
    _worked_session(ledger, clock)
    st = ledger.statistics("s")
    assert isinstance(st, Statistics)
    assert st.session_id == "s"
    assert st.status == "active"
    assert st.message_count == 4
    assert st.messages_by_role == {"user": 1, "assistant": 2, "tool": 1}
    assert st.invocation_count == 3
    assert st.invocations_by_status == {"ok": 2, "error": 1}
    assert st.total_duration_ms == 200.0
    assert st.tools_used == ("git", "search")
    assert st.tools == (ToolUsage("git", 2, 150.5), ToolUsage("search", 1, 49.5))
    assert [(t.tool_name, t.count, t.total_duration_ms) for t in st.tools] == [("git", 2, 150.5), ("search", 1, 49.5)]
    assert (st.tokens_in, st.tokens_out) == (115, 26)
    assert st.estimated_cost == 0.75
    assert st.first_activity == at(1, 12, 0)
    assert st.last_activity == datetime(2026, 1, 1, 12, 1, 10, tzinfo=UTC)
    assert st.duration_s == 70.0


def test_statistics_use_the_same_names_and_values_as_the_session(ledger: Ledger, clock: Clock) -> None:
    _worked_session(ledger, clock)
    ledger.complete_session("s", "failed")
    st = ledger.statistics("s")
    session = ledger.get_session("s")
    for name in (
        "session_id", "status", "message_count", "messages_by_role", "invocation_count", "total_duration_ms",
        "tools_used", "tokens_in", "tokens_out", "estimated_cost",
    ):
        assert getattr(st, name) == getattr(session, name), name
    assert st.first_activity == session.created_at
    assert st.last_activity == session.updated_at == session.completed_at
    assert st.duration_s == (session.updated_at - session.created_at).total_seconds() == 80.0


def test_statistics_of_a_new_session_are_zero(ledger: Ledger, clock: Clock) -> None:
    clock.now = at(1, 9)
    ledger.create_session("new")
    st = ledger.statistics("new")
    assert (st.message_count, st.messages_by_role, st.invocation_count, st.invocations_by_status) == (0, {}, 0, {})
    assert (st.total_duration_ms, st.tools_used, st.tools) == (0.0, (), ())
    assert (st.tokens_in, st.tokens_out, st.estimated_cost) == (0, 0, 0.0)
    assert st.first_activity == st.last_activity == at(1, 9)
    assert st.duration_s == 0.0


def test_statistics_of_a_missing_session_raise_session_not_found(ledger: Ledger) -> None:
    ledger.create_session("s")
    with pytest.raises(SessionNotFound) as err:
        ledger.statistics("missing")
    assert err.value.session_id == "missing"


def test_statistics_of_a_bad_session_id_are_invalid_input(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput):
        ledger.statistics("not a valid id")


# -- usage ----------------------------------------------------------------------------------------------------


def _usage_scenario(led: Ledger, clock: Clock) -> None:
    """Three sessions over two days; every row below is counted by hand in the tests.

    activity (messages and invocations):
      day 1  s1 alice completed: msg user 10/-; msg assistant model gpt 100/50; inv git 100 ms 1/2 $0.5; msg tool git
      day 2  s2 bob failed:      msg assistant model claude -/7; inv git 300 ms $1.5; inv search 20 ms (error)
      day 2  s3 alice active:    msg user; inv search 7 ms 4/- $0.25
    """
    clock.now = at(1, 10, 0)
    led.create_session("s1", user_id="alice")
    clock.now = at(1, 10, 1)
    led.add_message("s1", "user", "question", tokens={"input": 10})
    clock.now = at(1, 10, 2)
    led.add_message("s1", "assistant", "answer", model="gpt", tokens={"input": 100, "output": 50})
    clock.now = at(1, 10, 3)
    led.link_invocation("s1", "i1", "git", duration_ms=100, tokens={"input": 1, "output": 2}, cost=0.5)
    clock.now = at(1, 10, 4)
    led.add_message("s1", "tool", "git output", tool_name="git", invocation_id="i1")
    clock.now = at(1, 10, 5)
    led.complete_session("s1")
    clock.now = at(2, 9, 0)
    led.create_session("s2", user_id="bob")
    clock.now = at(2, 9, 1)
    led.add_message("s2", "assistant", "thinking", model="claude", tokens={"output": 7})
    clock.now = at(2, 9, 2)
    led.link_invocation("s2", "i1", "git", duration_ms=300, cost=1.5)
    clock.now = at(2, 9, 3)
    led.link_invocation("s2", "i2", "search", duration_ms=20, status="error")
    clock.now = at(2, 9, 4)
    led.complete_session("s2", "failed")
    clock.now = at(2, 10, 0)
    led.create_session("s3", user_id="alice")
    clock.now = at(2, 10, 1)
    led.add_message("s3", "user", "hi")
    clock.now = at(2, 10, 2)
    led.link_invocation("s3", "i1", "search", duration_ms=7, tokens={"input": 4}, cost=0.25)


def row(key: str, value: str | None, sessions: int, messages: int, invocations: int, tokens_in: int, tokens_out: int,
        cost: float, total: float | None, p95: float | None) -> dict[str, Any]:
    return {
        key: value, "sessions": sessions, "messages": messages, "invocations": invocations, "tokens_in": tokens_in,
        "tokens_out": tokens_out, "cost": cost, "total_duration_ms": total, "p95_duration_ms": p95,
        "tokens_cache_read": 0, "tokens_cache_creation": 0, "tokens_reasoning": 0,  # this scenario has none
    }


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "tool": [
        row("tool", "git", 2, 1, 2, 1, 2, 2.0, 400.0, 300.0),
        row("tool", "search", 2, 0, 2, 4, 0, 0.25, 27.0, 20.0),
        row("tool", None, 3, 4, 0, 110, 57, 0.0, None, None),  # the messages no tool wrote: the whole adds up
    ],
    "user": [
        row("user", "alice", 2, 4, 2, 115, 52, 0.75, 107.0, 100.0),
        row("user", "bob", 1, 1, 2, 0, 7, 1.5, 320.0, 300.0),
    ],
    "model": [
        row("model", "claude", 1, 1, 0, 0, 7, 0.0, None, None),
        row("model", "gpt", 1, 1, 0, 100, 50, 0.0, None, None),
        row("model", None, 3, 3, 4, 15, 2, 2.25, 427.0, 300.0),  # invocations and messages without a model
    ],
    "day": [
        row("day", "2026-01-01", 1, 3, 1, 111, 52, 0.5, 100.0, 100.0),
        row("day", "2026-01-02", 2, 2, 3, 4, 7, 1.75, 327.0, 300.0),
    ],
    "status": [
        row("status", "active", 1, 1, 1, 4, 0, 0.25, 7.0, 7.0),
        row("status", "completed", 1, 3, 1, 111, 52, 0.5, 100.0, 100.0),
        row("status", "failed", 1, 1, 2, 0, 7, 1.5, 320.0, 300.0),
    ],
}


@pytest.mark.parametrize("by", ["tool", "user", "model", "day", "status"])
def test_usage_rows_by_each_grouping(ledger: Ledger, clock: Clock, by: str) -> None:
    _usage_scenario(ledger, clock)
    assert ledger.usage(by=by) == EXPECTED[by]


def test_usage_is_by_tool_unless_told(ledger: Ledger, clock: Clock) -> None:
    _usage_scenario(ledger, clock)
    assert ledger.usage() == EXPECTED["tool"]


def test_usage_of_an_empty_ledger_has_no_rows(ledger: Ledger) -> None:
    for by in ("tool", "user", "model", "day", "status"):
        assert ledger.usage(by=by) == []


@pytest.mark.parametrize(
    ("durations", "p95"),
    [
        (list(range(1, 21)), 19.0),
        ([42.5], 42.5),
        (list(range(1, 11)), 10.0),
        (list(range(1, 101)), 95.0),
        ([5, 5, 5, 1], 5.0),
    ],
)
def test_p95_duration_is_the_nearest_rank(ledger: Ledger, durations: list[float], p95: float) -> None:
    ledger.create_session("s")
    shuffled = list(durations)
    random.Random(7).shuffle(shuffled)
    with ledger.batch():
        for i, ms in enumerate(shuffled):
            ledger.link_invocation("s", f"i{i}", "tool", duration_ms=ms)
        ledger.link_invocation("s", "no-duration", "tool")  # no duration: not ranked
    (tool,) = ledger.usage(by="tool")
    assert tool["invocations"] == len(durations) + 1
    assert tool["total_duration_ms"] == sum(durations)
    assert tool["p95_duration_ms"] == p95


def test_usage_since_is_inclusive_and_until_exclusive(ledger: Ledger, clock: Clock) -> None:
    _usage_scenario(ledger, clock)
    # from the git invocation of s1 (10:03, day 1) up to, not including, the git invocation of s2 (09:02, day 2)
    rows = ledger.usage(by="tool", since=at(1, 10, 3), until=at(2, 9, 2))
    assert rows == [row("tool", "git", 1, 1, 1, 1, 2, 0.5, 100.0, 100.0), row("tool", None, 1, 1, 0, 0, 7, 0.0, None, None)]
    assert ledger.usage(by="day", since=at(2, 0)) == [EXPECTED["day"][1]]
    assert ledger.usage(by="day", until=at(2, 0)) == [EXPECTED["day"][0]]
    assert ledger.usage(by="user", since=at(2, 9, 2), until=at(2, 10, 2)) == [
        row("user", "alice", 1, 1, 0, 0, 0, 0.0, None, None),
        row("user", "bob", 1, 0, 2, 0, 0, 1.5, 320.0, 300.0),
    ]
    assert ledger.usage(by="status", since=at(3, 0)) == []
    assert ledger.usage(by="status", since=at(2, 10, 2), until=at(2, 10, 2)) == []


def test_usage_time_bounds_compare_instants_whatever_the_timezone(ledger: Ledger, clock: Clock) -> None:
    _usage_scenario(ledger, clock)
    tokyo = timezone(timedelta(hours=9))
    assert ledger.usage(by="day", since=datetime(2026, 1, 2, 9, tzinfo=tokyo)) == [EXPECTED["day"][1]]  # 00:00 UTC


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"by": "week"}, "by"),
        ({"by": "TOOL"}, "by"),
        ({"by": "tool; DROP TABLE events"}, "by"),
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"until": datetime(2026, 1, 1)}, "until"),
        ({"since": "2026-01-01"}, "since"),
    ],
)
def test_bad_usage_arguments_are_invalid_input(ledger: Ledger, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        ledger.usage(**kwargs)
    assert err.value.field == field


# -- the SQL views ------------------------------------------------------------------------------------------


def _rows(led: Ledger, sql: str) -> list[dict[str, Any]]:
    """The rows of a plain SQL query, read by a second connection (as an analyst's tool reads them)."""
    with raw_sql(led) as conn:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r)) for r in cursor.fetchall()]


@pytest.mark.parametrize("by", ["tool", "user", "model", "day", "status"])
def test_the_usage_views_give_the_same_rows_as_usage(ledger_path: str, clock: Clock, by: str) -> None:
    with Ledger(ledger_path, clock=clock) as led:
        _usage_scenario(led, clock)
        expected = led.usage(by=by)
        assert _rows(led, f"SELECT * FROM usage_by_{by}") == expected == EXPECTED[by]  # while the ledger is open
    assert _rows(led, f"SELECT * FROM usage_by_{by} ORDER BY {by} IS NULL, {by}") == EXPECTED[by]  # and after it closed


def test_the_activity_view_has_one_row_per_message_or_invocation(ledger_path: str, clock: Clock) -> None:
    with Ledger(ledger_path, clock=clock) as led:
        _usage_scenario(led, clock)
    rows = _rows(
        led,
        "SELECT session_id, day, is_message, is_invocation, tool, model, tokens_in, tokens_out, cost, duration_ms,"
        " user_id, status FROM activity ORDER BY recorded_at",
    )
    assert [tuple(r.values()) for r in rows] == [
        ("s1", "2026-01-01", 1, 0, None, None, 10, None, None, None, "alice", "completed"),
        ("s1", "2026-01-01", 1, 0, None, "gpt", 100, 50, None, None, "alice", "completed"),
        ("s1", "2026-01-01", 0, 1, "git", None, 1, 2, 0.5, 100.0, "alice", "completed"),
        ("s1", "2026-01-01", 1, 0, "git", None, None, None, None, None, "alice", "completed"),
        ("s2", "2026-01-02", 1, 0, None, "claude", None, 7, None, None, "bob", "failed"),
        ("s2", "2026-01-02", 0, 1, "git", None, None, None, 1.5, 300.0, "bob", "failed"),
        ("s2", "2026-01-02", 0, 1, "search", None, None, None, None, 20.0, "bob", "failed"),
        ("s3", "2026-01-02", 1, 0, None, None, None, None, None, None, "alice", "active"),
        ("s3", "2026-01-02", 0, 1, "search", None, 4, None, 0.25, 7.0, "alice", "active"),
    ]


def test_the_views_are_listed_in_the_schema(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        pass
    if is_postgres(led):  # the ledger's own schema
        listed = "SELECT table_name AS name FROM information_schema.views WHERE table_schema = current_schema()"
    else:
        listed = "SELECT name FROM sqlite_master WHERE type = 'view'"
    views = {r["name"] for r in _rows(led, listed)}
    assert {"activity", "usage_by_tool", "usage_by_user", "usage_by_model", "usage_by_day", "usage_by_status"} <= views
