"""``ledger show SESSION``: a session's state, now or as of --version, --at or --position."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import msgspec
import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """alpha: one event a minute from 12:00 (positions 1-5); beta interleaved at position 3."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice", purpose="fix login", tags=["bug"], metadata={"model": "m1"})  # 1 12:00
        led.add_message("alpha", "user", "why does login fail")  # 2 12:01
        led.create_session("beta", user_id="bob")  # 3 12:02
        led.link_invocation("alpha", "inv-1", "grep", duration_ms=120.0, tokens={"input": 300, "output": 20}, cost=0.25)  # 4
        led.set_data("alpha", "step", {"name": "diagnose"})  # 5 12:04
        led.complete_session("alpha", reason="fixed")  # 6 12:05
    return path


def state_json(db: Path, *target: str) -> dict[str, object]:
    result = invoke("--db", str(db), "show", "alpha", "--json", *target)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_show_prints_the_current_state_as_field_value_lines(db: Path) -> None:
    result = invoke("--db", str(db), "show", "alpha")
    assert result.exit_code == 0, result.output
    fields = dict(line.split(None, 1) if len(line.split(None, 1)) == 2 else (line.strip(), "")
                  for line in result.stdout.splitlines()[2:])
    assert fields["session_id"] == "alpha"
    assert fields["status"] == "completed"
    assert fields["completion_reason"] == "fixed"
    assert fields["version"] == "5"
    assert fields["tools_used"] == "grep"
    assert json.loads(fields["metadata"]) == {"model": "m1"}
    assert json.loads(fields["data"]) == {"step": {"name": "diagnose"}}
    assert "lineage" not in fields and "run_start" not in fields
    assert fields["created_at"] == "2026-01-01 12:00:00"  # times to the second, in UTC
    assert result.stdout.splitlines()[0].split() == ["field", "value"]


def test_show_fits_the_table_to_the_width_cutting_long_values(tmp_path: Path) -> None:
    path = tmp_path / "long.db"
    purpose = "untangle the login flow " * 20
    with Ledger(path) as led:
        led.create_session("wordy", purpose=purpose)
    for columns in (None, "60"):
        result = invoke("--db", str(path), "show", "wordy", env={"COLUMNS": columns} if columns else None)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert max(map(len, lines)) <= int(columns or 100)
        (line,) = [line for line in lines if line.startswith("purpose ")]
        assert line.endswith("…") and line.split(None, 1)[1].startswith("untangle the login flow")
        assert any(line.split() == ["session_id", "wordy"] for line in lines)  # ids are not cut
    assert json.loads(invoke("--db", str(path), "show", "wordy", "--json").stdout)["purpose"] == purpose


def test_show_json_equals_the_librarys_state(db: Path) -> None:
    with Ledger(db) as led:
        expected = msgspec.to_builtins(led.get_session("alpha"))
    for internal in ("lineage", "run_start"):
        expected.pop(internal)
    assert state_json(db) == json.loads(json.dumps(expected))


def test_show_csv_is_a_header_and_one_row(db: Path) -> None:
    result = invoke("--db", str(db), "show", "alpha", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    assert rows[0]["session_id"] == "alpha" and rows[0]["status"] == "completed" and rows[0]["version"] == "5"


def test_show_travels_to_a_version_a_time_or_a_position(db: Path) -> None:
    at_version = state_json(db, "--version", "2")
    assert (at_version["version"], at_version["message_count"], at_version["status"]) == (2, 1, "active")
    assert state_json(db, "--at", "2026-01-01T12:02:30Z")["version"] == 2
    assert state_json(db, "--at", "2026-01-01T12:02:30")["version"] == 2  # no zone: UTC
    assert state_json(db, "--at", "2026-01-01T13:02:30+01:00")["version"] == 2
    at_position = state_json(db, "--position", "4")
    assert (at_position["version"], at_position["invocation_count"], at_position["data"]) == (3, 1, {})


@pytest.mark.parametrize("where", ["before", "after"])
def test_show_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "show", "alpha", "--json"] if where == "before" else ["show", "alpha", "--json", "--db", str(db)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["session_id"] == "alpha"


def test_show_reads_ledger_path_from_the_environment(db: Path) -> None:
    result = invoke("show", "beta", "--json", env={"LEDGER_PATH": str(db)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["user_id"] == "bob"


def test_show_of_a_missing_session_is_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "show", "nobody"), "nobody", "does not exist", codes=(1,))


@pytest.mark.parametrize(
    ("args", "word", "code"),
    [(["bad id!"], "session_id", 2), (["alpha", "--at", "noon"], "at", 2), (["alpha", "--version", "99"], "99", 2),
     (["alpha", "--at", "2025-12-31T00:00:00Z"], "did not exist yet", 1),  # missing then: a failure, not bad input
     (["alpha", "--version", "2", "--at", "2026-01-01T12:00:00Z"], "", 2)],
)
def test_show_refuses_a_bad_target_with_one_error_line(db: Path, args: list[str], word: str, code: int) -> None:
    assert_one_error_line(invoke("--db", str(db), "show", *args), word, codes=(code,))


def test_show_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "show", "alpha", "--json", "--version", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["purpose"] == "fix login"
    missing = run("--db", str(db), "show", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == ["error: session 'nobody' does not exist"]
