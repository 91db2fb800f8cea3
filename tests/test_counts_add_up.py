"""Breakdowns add up to the whole: usage groups include activity with no tool, user or model (one group
keyed None, "(none)" on the command line), and the by-status counts include purged sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger
from tests.cli_helpers import invoke

FIGURES = ("messages", "invocations", "tokens_in", "tokens_out")


def _record(led: Ledger, plan: list[tuple[str | None, str | None, str | None]]) -> None:
    for n, (user, model, tool) in enumerate(plan):
        sid = f"s{n}"
        led.create_session(sid, user_id=user)
        led.add_message(sid, "user", "hi", model=model, tokens={"input": 3, "output": 1})
        if tool is not None:
            led.link_invocation(sid, f"i{n}", tool, duration_ms=float(n), tokens={"input": 5, "output": 2}, cost=0.5)
            led.add_message(sid, "tool", "done", tool_name=tool)


def _totals(led: Ledger) -> dict[str, int]:
    rows = led.usage(by="day")
    return {f: sum(r[f] for r in rows) for f in FIGURES}


plans = st.lists(
    st.tuples(st.sampled_from([None, "ann", "bob"]), st.sampled_from([None, "gpt", "claude"]),
              st.sampled_from([None, "search", "pytest"])),
    min_size=1, max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans)
def test_usage_groups_add_up_to_the_whole_for_every_grouping(plan: list[tuple[str | None, str | None, str | None]]) -> None:
    with Ledger(":memory:") as led:
        _record(led, plan)
        whole = _totals(led)
        for by in ("tool", "user", "model", "status"):
            rows = led.usage(by=by)
            assert {f: sum(r[f] for r in rows) for f in FIGURES} == whole, by
            keys = [r[by] for r in rows]
            assert None not in keys[:-1]  # the group without a key comes last
            assert len(keys) == len(set(keys))


def test_usage_without_a_user_is_one_none_group_on_every_backend(ledger: Ledger) -> None:
    _record(ledger, [("ann", "gpt", "search"), (None, None, "search"), (None, "gpt", None)])
    rows = {r["user"]: r for r in ledger.usage(by="user")}
    assert list(rows) == ["ann", None]
    assert rows[None]["sessions"] == 2 and rows[None]["messages"] == 3
    assert rows[None]["p95_duration_ms"] == 1.0  # the percentile finds the keyless group's durations too
    model = {r["model"]: r["messages"] for r in ledger.usage(by="model")}
    assert model == {"gpt": 2, None: 3}


def test_sessions_by_status_counts_purged_sessions_on_every_backend(ledger: Ledger) -> None:
    _record(ledger, [("ann", "gpt", "search"), ("bob", None, None), (None, None, None)])
    ledger.complete_session("s1")
    ledger.purge_session("s2", reason="asked")
    rows = {r["status"]: r for r in ledger.sessions_by_status()}
    assert {s: r["sessions"] for s, r in rows.items()} == {"active": 1, "completed": 1, "purged": 1}
    assert sum(r["sessions"] for r in rows.values()) == 3
    assert rows["active"]["invocations"] == 1 and rows["active"]["cost"] == pytest.approx(0.5)


def test_stats_counts_purged_sessions_and_usage_shows_a_none_group(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with Ledger(db) as led:
        _record(led, [("ann", "gpt", "search"), (None, None, None), (None, None, None)])
        led.complete_session("s1")
        led.purge_session("s1", reason="asked")
    stats = {r["status"]: r["sessions"] for r in map(json.loads, invoke("--db", str(db), "stats", "--nl").stdout.splitlines())}
    assert stats == {"active": 2, "purged": 1}
    table = invoke("--db", str(db), "usage", "--by", "user").stdout.splitlines()
    assert [line.split()[0] for line in table[2:]] == ["ann", "(none)"]
    as_json = json.loads(invoke("--db", str(db), "usage", "--by", "user", "--json").stdout)
    assert [r["user"] for r in as_json] == ["ann", None]
