"""``ledger stats [SESSION]``: a session's statistics, or the whole ledger's by status."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import Result

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """alpha (active): a message and two invocations from 12:00 to 12:03; beta (completed) after it."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")  # 12:00
        led.add_message("alpha", "user", "run the tests", tokens={"input": 5})  # 12:01
        led.link_invocation("alpha", "inv-1", "pytest", duration_ms=1500.0, tokens={"input": 100, "output": 10}, cost=0.5)
        led.link_invocation("alpha", "inv-2", "grep", duration_ms=20.0, status="error", cost=0.25)  # 12:03
        led.create_session("beta", user_id="bob")  # 12:04
        led.add_message("beta", "assistant", "done", tokens={"input": 1, "output": 2})  # 12:05
        led.complete_session("beta")  # 12:06
    return path


def figures(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_of_a_session_prints_its_figures_as_field_value_lines(db: Path) -> None:
    result = invoke("--db", str(db), "stats", "alpha")
    assert result.exit_code == 0, result.output
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
             for line in result.stdout.splitlines()[2:]}
    assert lines["session_id"] == "alpha"
    assert lines["invocation_count"] == "2"
    assert lines["estimated_cost"] == "0.75"
    assert lines["duration_s"] == "180"
    assert json.loads(lines["invocations_by_status"]) == {"error": 1, "ok": 1}


def test_stats_table_shows_nested_figures_as_json_not_python_reprs(db: Path) -> None:
    wide = invoke("--db", str(db), "stats", "alpha", env={"COLUMNS": "400"})  # room for the whole value
    assert wide.exit_code == 0, wide.output
    tools = next(line for line in wide.stdout.splitlines() if line.startswith("tools "))
    assert "{'" not in tools
    assert sorted(t["tool_name"] for t in json.loads(tools.split(None, 1)[1])) == ["grep", "pytest"]
    result = invoke("--db", str(db), "stats", "alpha")  # piped: 100 columns, the long value cut
    assert result.exit_code == 0, result.output
    assert max(map(len, result.stdout.splitlines())) <= 100
    tools = next(line for line in result.stdout.splitlines() if line.startswith("tools "))
    assert tools.split(None, 1)[1].startswith('[{"') and tools.endswith("…")


def test_stats_json_equals_the_librarys_statistics(db: Path) -> None:
    with Ledger(db) as led:
        expected = json.loads(json.dumps(msgspec.to_builtins(led.statistics("alpha"))))
    assert figures(invoke("--db", str(db), "stats", "alpha", "--json")) == expected


def test_stats_csv_of_a_session_is_one_row(db: Path) -> None:
    result = invoke("--db", str(db), "stats", "alpha", "--csv")
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["session_id"], row["message_count"], row["tokens_in"]) == ("alpha", "1", "105")


def test_stats_as_of_a_time_or_version(db: Path) -> None:
    early = figures(invoke("--db", str(db), "stats", "alpha", "--json", "--at", "2026-01-01T12:02:30Z"))
    assert (early["invocation_count"], early["estimated_cost"], early["duration_s"]) == (1, 0.5, 120.0)
    assert figures(invoke("--db", str(db), "stats", "alpha", "--json", "--version", "1"))["message_count"] == 0


def test_stats_without_a_session_sums_the_ledger_by_status(db: Path) -> None:
    result = invoke("--db", str(db), "stats", "--json")
    found = figures(result)
    assert all(list(row) == ["status", "sessions", "messages", "invocations", "tokens_in", "tokens_out", "cost"]
               for row in found)
    rows = {row["status"]: row for row in found}
    assert set(rows) == {"active", "completed"}
    assert (rows["active"]["sessions"], rows["active"]["invocations"], rows["active"]["cost"]) == (1, 2, 0.75)
    assert rows["completed"]["tokens_out"] == 2
    assert result.stderr.strip() == "7 events in all"


def test_stats_without_a_session_counts_purged_sessions_too(db: Path) -> None:
    assert invoke("--db", str(db), "purge", "beta", "--reason", "test").exit_code == 0
    rows = {row["status"]: row for row in figures(invoke("--db", str(db), "stats", "--json"))}
    assert set(rows) == {"active", "purged"}
    assert rows["purged"]["sessions"] == 1
    assert rows["active"]["sessions"] == 1


def test_stats_of_an_empty_ledger_says_nothing_and_of_a_missing_one_is_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert_one_error_line(invoke("--db", str(missing), "stats"), "no ledger at", str(missing), "init", codes=(1,))
    assert not missing.exists()
    assert invoke("--db", str(missing), "init").exit_code == 0
    empty = invoke("--db", str(missing), "stats")
    assert empty.exit_code == 0, empty.output
    assert empty.stdout == "(nothing)\n" and empty.stderr.strip() == "0 events in all"
    assert figures(invoke("--db", str(missing), "stats", "--json")) == []


def test_stats_without_a_session_as_table_and_csv(db: Path) -> None:
    table = invoke("--db", str(db), "stats")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == ["status", "sessions", "msgs", "calls", "tok", "in", "tok", "out",
                                                    "cost", "$"]
    assert table.stdout.splitlines()[2].split() == ["active", "1", "1", "2", "105", "10", "0.75"]
    assert [line.split()[0] for line in table.stdout.splitlines()[2:]] == ["active", "completed"]
    rows = list(csv.DictReader(io.StringIO(invoke("--db", str(db), "stats", "--csv").stdout)))
    assert [(r["status"], r["sessions"]) for r in rows] == [("active", "1"), ("completed", "1")]
    assert list(rows[0]) == ["status", "sessions", "messages", "invocations", "tokens_in", "tokens_out", "cost"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_stats_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "stats", "beta", "--json"] if where == "before" else ["stats", "beta", "--json", "--db", str(db)]
    assert figures(invoke(*args))["status"] == "completed"


def test_stats_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert figures(invoke("stats", "beta", "--json", env={"LEDGER_PATH": str(db)}))["tokens_out"] == 2


def test_stats_of_a_missing_session_is_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "stats", "nobody"), "nobody", "does not exist", codes=(1,))


@pytest.mark.parametrize(("args", "word"), [(["--at", "soon"], "at"), (["--version", "42"], "42")])
def test_stats_refuses_a_bad_target_with_one_error_line(db: Path, args: list[str], word: str) -> None:
    assert_one_error_line(invoke("--db", str(db), "stats", "alpha", *args), word)


def test_stats_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "stats", "alpha", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tools_used"] == ["pytest", "grep"]
    missing = run("--db", str(db), "stats", "nobody")
    assert missing.returncode == 1 and missing.stderr.splitlines() == ["error: session 'nobody' does not exist"]
