"""``ledger messages SESSION``: a session's conversation, now or as of a target."""

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
    """chat: four messages, one a minute from 12:01; the last is long and spans two lines."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("chat", user_id="alice")  # v1 12:00
        led.add_message("chat", "user", "why does login fail on Safari?")  # v2 12:01
        led.add_message("chat", "tool", "auth.py:88 sets SameSite=None", tool_name="grep", invocation_id="inv-1")  # v3 12:02
        led.add_message("chat", "assistant", "Add the Secure flag.", model="gpt-x", tokens={"input": 900, "output": 60})  # v4
        led.add_message("chat", "user", "thanks,\nand " + "very " * 40 + "long")  # v5 12:04
    return path


def contents(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [m["content"] for m in json.loads(result.stdout)]


def test_messages_prints_the_conversation_as_a_transcript(db: Path) -> None:
    result = invoke("--db", str(db), "messages", "chat")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:9] == [
        "#2 · user · 2026-01-01 12:01:00",
        "    why does login fail on Safari?",
        "",
        "#3 · tool grep · 2026-01-01 12:02:00",
        "    auth.py:88 sets SameSite=None",
        "",
        "#4 · assistant · model gpt-x · 2026-01-01 12:03:00",
        "    Add the Secure flag.",
        "",
    ]
    assert lines[9] == "#5 · user · 2026-01-01 12:04:00"
    body = lines[10:]
    assert body[0] == "    thanks,"  # its own line: the paragraphs are kept
    assert len(body) > 2  # the long line is wrapped, not cut
    assert all(line.startswith("    ") and len(line) <= 100 for line in body)
    assert " ".join(line.strip() for line in body[1:]) == "and " + "very " * 40 + "long"
    assert "…" not in result.stdout


def test_messages_json_holds_every_field_of_every_message(db: Path) -> None:
    result = invoke("--db", str(db), "messages", "chat", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [m["role"] for m in found] == ["user", "tool", "assistant", "user"]
    assert found[1]["tool_name"] == "grep" and found[1]["invocation_id"] == "inv-1"
    assert found[2]["model"] == "gpt-x"
    assert found[3]["content"].startswith("thanks,\nand very") and found[3]["version"] == 5
    assert found[3]["position"] == 5
    assert found[0]["recorded_at"] == "2026-01-01T12:01:00Z"
    fields = ["session_id", "version", "position", "recorded_at", "role", "tool_name", "invocation_id", "model",
              "tokens_in", "tokens_out", "content"]
    assert all(list(m) == fields for m in found)
    assert {m["session_id"] for m in found} == {"chat"}
    assert (found[2]["tokens_in"], found[2]["tokens_out"]) == (900, 60)
    assert (found[0]["tokens_in"], found[0]["tokens_out"]) == (None, None)


def test_messages_nl_and_csv_hold_the_same_fields_as_json(db: Path) -> None:
    found = json.loads(invoke("--db", str(db), "messages", "chat", "--json").stdout)
    result = invoke("--db", str(db), "messages", "chat", "--nl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == found
    result = invoke("--db", str(db), "messages", "chat", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and all(list(r) == list(found[0]) for r in rows)
    assert rows[0]["recorded_at"] == "2026-01-01T12:01:00Z"


def test_messages_csv_keeps_the_full_content(db: Path) -> None:
    result = invoke("--db", str(db), "messages", "chat", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["version"] for r in rows] == ["2", "3", "4", "5"]
    assert rows[3]["content"].endswith("very long") and len(rows[3]["content"]) > 100


def test_messages_as_of_a_time_version_or_position_and_paged(db: Path) -> None:
    base = ["--db", str(db), "messages", "chat", "--json"]
    assert len(contents(invoke(*base, "--at", "2026-01-01T12:02:30Z"))) == 2
    assert len(contents(invoke(*base, "--at", "2026-01-01T12:02:30"))) == 2
    assert contents(invoke(*base, "--version", "2")) == ["why does login fail on Safari?"]
    assert len(contents(invoke(*base, "--position", "4"))) == 3
    assert contents(invoke(*base, "--limit", "1", "--offset", "2")) == ["Add the Secure flag."]


def test_messages_of_a_session_without_messages_says_no_messages(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.create_session("quiet")
    result = invoke("--db", str(path), "messages", "quiet")
    assert result.exit_code == 0 and result.stdout == "(no messages)\n"
    assert invoke("--db", str(path), "messages", "quiet", "--json").stdout.strip() == "[]"
    header = invoke("--db", str(path), "messages", "quiet", "--csv").stdout
    assert header.splitlines() == [
        "session_id,version,position,recorded_at,role,tool_name,invocation_id,model,tokens_in,tokens_out,content"
    ]


@pytest.mark.parametrize("where", ["before", "after"])
def test_messages_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "messages", "chat", "--json"] if where == "before" else ["messages", "chat", "--json", "--db", str(db)]
    assert len(contents(invoke(*args))) == 4


def test_messages_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert len(contents(invoke("messages", "chat", "--json", env={"LEDGER_PATH": str(db)}))) == 4


def test_messages_of_a_missing_session_is_one_error_line(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "messages", "nobody"), "nobody", "does not exist", codes=(1,))


@pytest.mark.parametrize(
    ("args", "word", "code"),
    [(["--at", "yesterday"], "at", 2), (["--limit", "-1"], "limit", 2), (["--version", "0"], "version", 2),
     (["--at", "2025-01-01T00:00:00Z"], "did not exist yet", 1)],  # a session missing then: a failure, not bad input
)
def test_messages_refuses_a_bad_argument_with_one_error_line(db: Path, args: list[str], word: str, code: int) -> None:
    assert_one_error_line(invoke("--db", str(db), "messages", "chat", *args), word, codes=(code,))


def test_messages_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "messages", "chat", "--json", "--limit", "2")
    assert proc.returncode == 0, proc.stderr
    assert [m["role"] for m in json.loads(proc.stdout)] == ["user", "tool"]
    bad = run("--db", str(db), "messages", "chat", "--at", "yesterday")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("error:")
