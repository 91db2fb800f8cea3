"""``ledger sessions``: list sessions with the ``list_sessions`` filters as options."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import Result

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """alpha (alice, active, bug, zebra), beta (bob, completed, docs), gamma (alice, failed), delta (a fork of alpha)."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice", tags=["bug", "auth"], metadata={"model": "m1", "team": "core"})  # 12:00
        led.add_message("alpha", "user", "why does the zebra login fail")  # 12:01
        led.create_session("beta", user_id="bob", tags=["docs"], metadata={"model": "m2"})  # 12:02
        led.add_message("beta", "assistant", "docs written", tokens={"input": 10, "output": 40})  # 12:03
        led.complete_session("beta")  # 12:04
        led.create_session("gamma", user_id="alice", tags=["bug"])  # 12:05
        led.complete_session("gamma", "failed")  # 12:06
        led.fork("alpha", new_session_id="delta")  # 12:07
    return path


def ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [row["session_id"] for row in json.loads(result.stdout)["items"]]


def test_sessions_prints_a_table_newest_first(db: Path) -> None:
    result = invoke("--db", str(db), "sessions")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["session", "status", "user", "created", "updated", "msgs", "calls", "tok", "in", "tok",
                                "out", "cost", "$", "tags"]
    assert set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == ["delta", "gamma", "beta", "alpha"]
    assert "completed" in lines[4] and "bob" in lines[4] and "docs" in lines[4]
    assert lines[4].split()[1:5] == ["completed", "bob", "2026-01-01", "12:02:00"]  # times to the second, in UTC
    # Fitted to the piped width as far as free text can give way (ids, times and numbers are never cut):
    assert all(len(line) <= max(100, len(lines[1])) for line in lines)
    assert lines[5].split()[-1] == "bug,a…" and "alpha" in lines[5] and "2026-01-01 12:00:00" in lines[5]
    assert lines[0].index("tok out") + len("tok out") == lines[4].index(" 40") + len(" 40")  # numbers right-aligned


def test_sessions_json_holds_each_sessions_summary(db: Path) -> None:
    result = invoke("--db", str(db), "sessions", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert list(page) == ["items", "cursor"] and page["cursor"] is None
    rows = {row["session_id"]: row for row in page["items"]}
    assert set(rows) == {"alpha", "beta", "gamma", "delta"}
    assert rows["beta"]["status"] == "completed" and rows["beta"]["user_id"] == "bob"
    assert rows["beta"]["tokens_out"] == 40 and rows["beta"]["message_count"] == 1
    assert rows["gamma"]["status"] == "failed"
    assert rows["alpha"]["created_at"] == "2026-01-01T12:00:00Z"
    assert rows["delta"]["parent_id"] == "alpha" and rows["alpha"]["tags"] == ["bug", "auth"]


def test_sessions_csv_has_a_header_and_one_row_per_session(db: Path) -> None:
    result = invoke("--db", str(db), "sessions", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["session_id"] for r in rows] == ["delta", "gamma", "beta", "alpha"]
    assert rows[2]["status"] == "completed" and rows[2]["tokens_out"] == "40"
    assert json.loads(rows[3]["tags"]) == ["bug", "auth"]  # a list as JSON in its cell
    assert rows[3]["created_at"] == "2026-01-01T12:00:00Z"


def test_sessions_filters_by_user_status_tag_metadata_text_and_parent(db: Path) -> None:
    base = ["--db", str(db), "sessions", "--json"]
    assert set(ids(invoke(*base, "--user", "alice"))) == {"alpha", "gamma", "delta"}  # a fork keeps its user
    assert set(ids(invoke(*base, "--status", "completed", "--status", "failed"))) == {"beta", "gamma"}
    assert set(ids(invoke(*base, "--tag", "bug", "--tag", "auth"))) == {"alpha", "delta"}
    assert set(ids(invoke(*base, "--any-tag", "docs", "--any-tag", "auth"))) == {"alpha", "beta", "delta"}
    assert set(ids(invoke(*base, "--meta", "model=m2"))) == {"beta"}
    assert set(ids(invoke(*base, "--meta", "team"))) == {"alpha", "delta"}
    assert set(ids(invoke(*base, "--text", "zebra"))) >= {"alpha"}
    assert "beta" not in ids(invoke(*base, "--text", "zebra"))
    assert ids(invoke(*base, "--parent", "alpha")) == ["delta"]


def test_sessions_filters_by_time_in_utc_with_or_without_a_zone(db: Path) -> None:
    base = ["--db", str(db), "sessions", "--json"]
    assert set(ids(invoke(*base, "--created-after", "2026-01-01T12:04:30Z"))) == {"gamma", "delta"}
    assert set(ids(invoke(*base, "--created-after", "2026-01-01T12:04:30"))) == {"gamma", "delta"}
    assert set(ids(invoke(*base, "--created-before", "2026-01-01T12:02:30+00:00"))) == {"alpha", "beta"}


def test_sessions_orders_ascending_and_pages_with_a_cursor(db: Path) -> None:
    first = invoke("--db", str(db), "sessions", "--json", "--asc", "--limit", "3")
    assert ids(first) == ["alpha", "beta", "gamma"]
    cursor = json.loads(first.stdout)["cursor"]  # with --json, the cursor is in the document
    assert isinstance(cursor, str) and cursor
    rest = invoke("--db", str(db), "sessions", "--json", "--asc", "--limit", "3", "--cursor", cursor)
    assert ids(rest) == ["delta"]
    assert json.loads(rest.stdout)["cursor"] is None
    table = invoke("--db", str(db), "sessions", "--asc", "--limit", "3")  # without --json, on stderr
    assert table.exit_code == 0, table.output
    assert [line.split()[0] for line in table.stdout.splitlines()[2:]] == ["alpha", "beta", "gamma"]
    assert table.stderr == f"more: --cursor {cursor}\n"
    last = invoke("--db", str(db), "sessions", "--asc", "--limit", "3", "--cursor", cursor)
    assert [line.split()[0] for line in last.stdout.splitlines()[2:]] == ["delta"]
    assert last.stderr == ""


def test_sessions_of_an_empty_ledger_says_nothing(tmp_path: Path) -> None:
    empty = str(tmp_path / "empty.db")
    assert invoke("--db", empty, "init").exit_code == 0
    result = invoke("--db", empty, "sessions")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "(nothing)"
    assert json.loads(invoke("--db", empty, "sessions", "--json").stdout) == {"items": [], "cursor": None}
    assert invoke("--db", empty, "sessions", "--nl").stdout == ""
    header = invoke("--db", empty, "sessions", "--csv").stdout.splitlines()
    assert header == [
        "session_id,status,user_id,purpose,created_at,updated_at,version,message_count,invocation_count,"
        + "tokens_in,tokens_out,estimated_cost,tags,parent_id"
    ]


def test_sessions_of_a_missing_ledger_is_one_error_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = invoke("--db", str(missing), "sessions")
    assert_one_error_line(result, f"error: no ledger at '{missing}': no such file; create one with: ledger --db {missing} init",
                          codes=(1,))
    assert result.stdout == ""
    assert not missing.exists()


def test_sessions_nl_prints_one_json_object_a_line(db: Path) -> None:
    result = invoke("--db", str(db), "sessions", "--nl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == json.loads(invoke("--db", str(db), "sessions", "--json").stdout)["items"]


@pytest.mark.parametrize("formats", [["--json", "--csv"], ["--json", "--nl"], ["--nl", "--csv"]])
def test_sessions_refuses_two_output_formats_with_one_error_line(db: Path, formats: list[str]) -> None:
    result = invoke("--db", str(db), "sessions", *formats)
    assert_one_error_line(result, *formats)
    assert result.stdout == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_sessions_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "sessions", "--json"] if where == "before" else ["sessions", "--json", "--db", str(db)]
    assert set(ids(invoke(*args))) == {"alpha", "beta", "gamma", "delta"}


def test_sessions_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert set(ids(invoke("sessions", "--json", env={"LEDGER_PATH": str(db)}))) == {"alpha", "beta", "gamma", "delta"}


@pytest.mark.parametrize(
    ("option", "value", "word"),
    [("--status", "sleeping", "status"), ("--created-after", "last tuesday", "created_after"), ("--limit", "0", "limit"),
     ("--cursor", "not-a-cursor", "cursor"), ("--order-by", "password", "order_by")],
)
def test_sessions_refuses_a_bad_filter_with_one_error_line(db: Path, option: str, value: str, word: str) -> None:
    assert_one_error_line(invoke("--db", str(db), "sessions", option, value), word)


def test_sessions_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "sessions", "--json", "--user", "bob")
    assert proc.returncode == 0, proc.stderr
    assert [row["session_id"] for row in json.loads(proc.stdout)["items"]] == ["beta"]
    bad = run("--db", str(db), "sessions", "--status", "sleeping")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_a_meta_filter_nested_thousands_deep_is_one_error_line(db: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    done = run("--db", str(db), "sessions", "--meta", f"k={deep}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error:") and "meta" in done.stderr
