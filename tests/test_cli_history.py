"""``ledger history [SESSION] [--after POS] [--follow]``: the audit timeline."""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from ledger import InvalidInput, Ledger
from tests.cli_helpers import assert_one_error_line, invoke
from tests.conftest import Clock


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, timeout=30, env=clean_environ())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Five events a minute apart from 12:00: alpha at 1, 2, 4, 5; beta at 3."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")
        led.add_message("alpha", "user", "hello", event_id="msg-1")
        led.create_session("beta", user_id="bob")
        led.set_metadata("alpha", "outcome", "diagnosed")
        led.complete_session("alpha", reason="done")
    return path


def timeline(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_history_prints_every_event_in_order_as_a_table(db: Path) -> None:
    result = invoke("--db", str(db), "history")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["pos", "recorded", "session", "ver", "type", "payload"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4", "5"]
    assert lines[3].split()[1:6] == ["2026-01-01", "12:01:00", "alpha", "2", "message_added"]
    assert '"content": "hello"' in lines[3]
    assert all(len(line) <= 100 for line in lines)  # fitted to the piped width


def test_history_json_holds_position_time_ids_payload_and_hash(db: Path) -> None:
    events = timeline(invoke("--db", str(db), "history", "--json"))
    assert [e["type"] for e in events] == ["created", "message_added", "created", "metadata_set", "completed"]
    assert events[1]["event_id"] == "msg-1" and events[1]["payload"]["content"] == "hello"
    assert events[1]["recorded_at"].startswith("2026-01-01T12:01:00")
    with Ledger(db) as led:
        assert events[-1]["hash"] == led.digest().hash


def test_history_csv_has_one_row_per_event(db: Path) -> None:
    result = invoke("--db", str(db), "history", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["position"], r["session_id"], r["type"]) for r in rows][2] == ("3", "beta", "created")
    assert json.loads(rows[1]["payload"])["content"] == "hello"


def test_history_of_one_session_and_after_a_position(db: Path) -> None:
    assert [e["position"] for e in timeline(invoke("--db", str(db), "history", "alpha", "--json"))] == [1, 2, 4, 5]
    assert [e["position"] for e in timeline(invoke("--db", str(db), "history", "--after", "3", "--json"))] == [4, 5]
    assert [e["position"] for e in timeline(invoke("--db", str(db), "history", "alpha", "--after", "2", "--json"))] == [4, 5]
    assert timeline(invoke("--db", str(db), "history", "--after", "5", "--json")) == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_history_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "history", "--json"] if where == "before" else ["history", "--json", "--db", str(db)]
    assert len(timeline(invoke(*args))) == 5


def test_history_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert len(timeline(invoke("history", "beta", "--json", env={"LEDGER_PATH": str(db)}))) == 1


def test_history_of_a_missing_session_is_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "history", "nobody"), "nobody", "does not exist", codes=(1,))


def test_history_refuses_a_negative_after_with_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "history", "--after", "-1"), "after")


def test_history_limit_and_tail_cut_the_timeline(db: Path) -> None:
    def positions(*args: str) -> list[int]:
        return [e["position"] for e in timeline(invoke("--db", str(db), "history", *args, "--json"))]

    assert positions("--limit", "2") == [1, 2]
    assert positions("--tail", "2") == [4, 5]
    assert positions("alpha", "--tail", "3") == [2, 4, 5]
    assert positions("alpha", "--tail", "3", "--limit", "1") == [2]
    assert positions("--after", "3", "--limit", "1") == [4]
    assert positions("--tail", "99") == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("args", [["--limit", "0"], ["--tail", "0"], ["--tail", "-2"]])
def test_history_refuses_a_bad_limit_or_tail_with_one_error_line(db: Path, args: list[str]) -> None:
    assert_one_error_line(invoke("--db", str(db), "history", *args), args[0])


def test_history_nl_prints_one_json_object_a_line(db: Path) -> None:
    result = invoke("--db", str(db), "history", "--nl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == timeline(invoke("--db", str(db), "history", "--json"))
    assert rows[1]["recorded_at"] == "2026-01-01T12:01:00Z"


def test_follow_prints_what_is_there_and_stops_at_its_timeout(db: Path) -> None:
    started = time.monotonic()
    result = invoke("--db", str(db), "history", "--follow", "--nl", "--timeout", "0.3", "--interval", "0.05")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["position"] for line in result.stdout.splitlines()] == [1, 2, 3, 4, 5]
    assert time.monotonic() - started < 5


def test_follow_with_json_prints_one_array_when_it_stops(db: Path) -> None:
    result = invoke("--db", str(db), "history", "--follow", "--json", "--timeout", "0.2", "--interval", "0.05")
    assert [e["position"] for e in timeline(result)] == [1, 2, 3, 4, 5]


def test_follow_without_a_format_prints_a_table(db: Path) -> None:
    result = invoke("--db", str(db), "history", "--follow", "--timeout", "0.2", "--interval", "0.05")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["pos", "recorded", "session", "ver", "type", "payload"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3", "4", "5"]
    assert lines[2].split()[1:5] == ["2026-01-01", "12:00:00", "alpha", "1"]


def test_follow_table_never_cuts_event_types_ids_or_numbers(db: Path) -> None:
    # Sized on the first row ("created"), yet the later, longer types are whole.
    result = invoke("--db", str(db), "history", "--follow", "--timeout", "0.2", "--interval", "0.05")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [row[5] for row in rows] == ["created", "message_added", "created", "metadata_set", "completed"]
    assert "…" not in "".join(" ".join(row[:6]) for row in rows)


def test_a_long_history_table_never_cuts_positions_or_ids_after_the_rows_it_was_sized_on(tmp_path: Path) -> None:
    path = tmp_path / "long.db"
    with Ledger(path) as led:
        led.create_session("a")
        for _ in range(1005):
            led.add_message("a", "user", "x")
        led.create_session("a-much-longer-session-id")
    result = invoke("--db", str(path), "history")
    assert result.exit_code == 0, result.output
    last = result.stdout.splitlines()[-1].split()
    assert (last[0], last[3], last[4]) == ("1007", "a-much-longer-session-id", "1")


def test_follow_with_csv_prints_csv_rows(db: Path) -> None:
    result = invoke("--db", str(db), "history", "--follow", "--csv", "--timeout", "0.2", "--interval", "0.05")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["position"], r["session_id"], r["type"]) for r in rows][:3] == [
        ("1", "alpha", "created"), ("2", "alpha", "message_added"), ("3", "beta", "created")]


def _wait_for(lines: queue.Queue[str], wanted: Callable[[dict[str, Any]], bool], deadline: float) -> dict[str, Any]:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the follower did not print the expected event in time")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        row = json.loads(line)
        if wanted(row):
            return row


def test_follow_sees_an_event_appended_by_another_process(db: Path) -> None:
    args = [sys.executable, "-m", "ledger", "--db", str(db), "history", "--follow", "--nl", "--timeout", "20",
            "--interval", "0.05"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_environ()) as proc:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 15
            _wait_for(lines, lambda row: row["position"] == 5, deadline)  # the follower is up and has printed the log
            with Ledger(db) as led:  # this test's process is the other writer
                led.add_message("beta", "user", "appended while followed", event_id="late-1")
            row = _wait_for(lines, lambda row: row["event_id"] == "late-1", deadline)
            assert (row["position"], row["session_id"], row["type"]) == (6, "beta", "message_added")
            assert row["payload"]["content"] == "appended while followed"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            reader.join(timeout=10)
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()


def test_history_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "history", "beta", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [e["type"] for e in json.loads(proc.stdout)] == ["created"]
    missing = run("--db", str(db), "history", "nobody")
    assert missing.returncode == 1 and missing.stderr.splitlines() == ["error: session 'nobody' does not exist"]


# The library's follow, under the command's tests: on both backends, as the rest of the contract suite.


def test_the_library_follow_yields_what_is_there_then_what_another_thread_appends(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
        late = threading.Timer(0.1, lambda: led.add_message("s", "user", "late"))
        late.start()
        try:
            followed = []
            for event in led.follow("s", poll=0.02, timeout=5):
                followed.append(event.type)
                if len(followed) == 2:
                    break
        finally:
            late.join()
        assert followed == ["created", "message_added"]


def test_follow_stops_at_its_timeout_and_refuses_a_bad_poll(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
        started = time.monotonic()
        assert [e.version for e in led.follow(poll=0.01, timeout=0.2)] == [1]
        assert time.monotonic() - started < 5
        for bad in (0, -1, float("nan"), "1", True):
            with pytest.raises(InvalidInput) as err:
                next(led.follow(poll=bad))
            assert err.value.field == "poll"
