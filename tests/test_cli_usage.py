"""``ledger usage --by tool|user|model|day|status``: tokens, cost and durations per group."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Day one (Jan 1): alice runs pytest twice and grep once; day two (Jan 2): bob talks to a model."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc), step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")
        led.link_invocation("alpha", "inv-1", "pytest", duration_ms=1000.0, tokens={"input": 10, "output": 1}, cost=0.5)
        led.link_invocation("alpha", "inv-2", "pytest", duration_ms=3000.0, tokens={"input": 20, "output": 2}, cost=0.25)
        led.link_invocation("alpha", "inv-3", "grep", duration_ms=10.0)
    with Ledger(path, clock=Clock(datetime(2026, 1, 2, 9, 0, tzinfo=timezone.utc), step_ms=60_000)) as led:
        led.create_session("beta", user_id="bob")
        led.add_message("beta", "assistant", "hi", model="gpt-x", tokens={"input": 7, "output": 70})
        led.complete_session("beta")
    return path


def grouped(result: Result, key: str) -> dict[str | None, dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return {row[key]: row for row in json.loads(result.stdout)}


def test_usage_by_tool_is_the_default_and_prints_a_table(db: Path) -> None:
    result = invoke("--db", str(db), "usage")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["tool", "sessions", "msgs", "calls", "tok", "in", "tok", "out", "cost", "$",
                                "total", "ms", "p95", "ms"]
    assert [line.split() for line in lines[2:]] == [
        ["grep", "1", "0", "1", "0", "0", "0", "10", "10"],
        ["pytest", "1", "0", "2", "30", "3", "0.75", "4000", "3000"],
        ["(none)", "1", "1", "0", "7", "70", "0"],  # bob's message used no tool; it has no durations
    ]


def test_usage_json_by_each_grouping(db: Path) -> None:
    base = ["--db", str(db), "usage", "--json"]
    tools = grouped(invoke(*base, "--by", "tool"), "tool")
    assert set(tools) == {"grep", "pytest", None}
    assert (tools[None]["messages"], tools[None]["tokens_out"]) == (1, 70)
    assert (tools["pytest"]["invocations"], tools["pytest"]["cost"], tools["pytest"]["total_duration_ms"]) == (2, 0.75, 4000.0)
    assert tools["pytest"]["p95_duration_ms"] == 3000.0
    users = grouped(invoke(*base, "--by", "user"), "user")
    assert (users["alice"]["tokens_in"], users["bob"]["tokens_out"]) == (30, 70)
    models = grouped(invoke(*base, "--by", "model"), "model")
    assert set(models) == {"gpt-x", None}  # the invocations named no model
    assert (models[None]["invocations"], models["gpt-x"]["messages"]) == (3, 1)
    assert set(grouped(invoke(*base, "--by", "day"), "day")) == {"2026-01-01", "2026-01-02"}
    statuses = grouped(invoke(*base, "--by", "status"), "status")
    assert (statuses["active"]["sessions"], statuses["completed"]["messages"]) == (1, 1)


@pytest.mark.parametrize("by", ["tool", "user", "model", "day", "status"])
def test_usage_always_has_the_same_columns_and_its_groups_add_up_to_the_whole(db: Path, by: str) -> None:
    rows = json.loads(invoke("--db", str(db), "usage", "--by", by, "--json").stdout)
    assert all(list(row) == [by, "sessions", "messages", "invocations", "tokens_in", "tokens_out", "cost",
                             "total_duration_ms", "p95_duration_ms", "tokens_cache_read", "tokens_cache_creation",
                             "tokens_reasoning"] for row in rows)
    totals = {field: sum(row[field] for row in rows) for field in ("messages", "invocations", "tokens_in", "tokens_out")}
    assert totals == {"messages": 1, "invocations": 3, "tokens_in": 37, "tokens_out": 73}
    assert sum(row["cost"] for row in rows) == pytest.approx(0.75)
    header = invoke("--db", str(db), "usage", "--by", by, "--csv").stdout.splitlines()[0]
    assert header == (f"{by},sessions,messages,invocations,tokens_in,tokens_out,cost,total_duration_ms,p95_duration_ms,"
                      "tokens_cache_read,tokens_cache_creation,tokens_reasoning")


def test_usage_json_equals_the_librarys_usage(db: Path) -> None:
    with Ledger(db) as led:
        expected = led.usage(by="user")
    assert json.loads(invoke("--db", str(db), "usage", "--by", "user", "--json").stdout) == expected


def test_usage_csv_leaves_missing_durations_empty(db: Path) -> None:
    result = invoke("--db", str(db), "usage", "--by", "user", "--csv")
    assert result.exit_code == 0, result.output
    rows = {r["user"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["alice"]["invocations"] == "3" and rows["alice"]["cost"] == "0.75"
    assert rows["bob"]["total_duration_ms"] == "" and rows["bob"]["tokens_out"] == "70"


def test_usage_since_and_until_bound_the_activity(db: Path) -> None:
    base = ["--db", str(db), "usage", "--by", "user", "--json"]
    assert set(grouped(invoke(*base, "--since", "2026-01-02T00:00:00Z"), "user")) == {"bob"}
    assert set(grouped(invoke(*base, "--until", "2026-01-02T00:00:00"), "user")) == {"alice"}
    only_first = grouped(invoke(*base, "--since", "2026-01-01T12:01:00Z", "--until", "2026-01-01T12:02:00Z"), "user")
    assert only_first["alice"]["invocations"] == 1


@pytest.mark.parametrize("where", ["before", "after"])
def test_usage_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "usage", "--json"] if where == "before" else ["usage", "--json", "--db", str(db)]
    assert set(grouped(invoke(*args), "tool")) == {"grep", "pytest", None}


def test_usage_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert set(grouped(invoke("usage", "--by", "model", "--json", env={"LEDGER_PATH": str(db)}), "model")) == {"gpt-x", None}


def test_usage_refuses_a_bad_time_with_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "usage", "--since", "the dawn of time"), "since")


def test_usage_refuses_an_unknown_grouping_with_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "usage", "--by", "colour"), "colour")


def test_usage_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "usage", "--by", "day", "--csv")
    assert proc.returncode == 0, proc.stderr
    assert [r["day"] for r in csv.DictReader(io.StringIO(proc.stdout))] == ["2026-01-01", "2026-01-02"]
    bad = run("--db", str(db), "usage", "--until", "later")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("error:")
