"""``ledger import FILE``: append a JSONL export, checking its chain; importing twice changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock, dump


SESSIONS = ("alpha", "alpha-fork", "beta")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Ten events a minute apart from 12:00: alpha (forked at 7, restored at 9), beta (completed at 10)."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000), snapshot_every=3) as led:
        led.create_session("alpha", user_id="alice", tags=["bug"], metadata={"model": "m1"})  # 1
        led.add_message("alpha", "user", "why does login fail on Safari?")  # 2
        led.link_invocation("alpha", "inv-1", "grep", duration_ms=120.5, tokens={"input": 300, "output": 20}, cost=0.25)  # 3
        led.create_session("beta", user_id="bob")  # 4
        led.add_message("alpha", "tool", "auth.py:88", tool_name="grep", invocation_id="inv-1")  # 5
        led.set_data("alpha", "step", {"done": True})  # 6
        led.fork("alpha", version=2, new_session_id="alpha-fork")  # 7
        led.add_message("beta", "assistant", "docs", model="gpt-x", tokens={"input": 1, "output": 2})  # 8
        led.restore("alpha", version=3)  # 9
        led.complete_session("beta")  # 10
    return path


@pytest.fixture
def export(db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "all.jsonl"
    result = invoke("--db", str(db), "export", str(out))
    assert result.exit_code == 0, result.output
    return out


def assert_same_ledger(original_path: Path, copy_path: Path, sessions: tuple[str, ...] = SESSIONS) -> None:
    with Ledger(original_path) as original, Ledger(copy_path) as copy:
        assert copy.digest() == original.digest()
        assert [(e.position, e.event_id, e.recorded_at, e.payload, e.hash) for e in copy.history()] == [
            (e.position, e.event_id, e.recorded_at, e.payload, e.hash) for e in original.history()]
        for sid in sessions:
            assert copy.get_session(sid) == original.get_session(sid)
            assert copy.messages(sid) == original.messages(sid)
            assert copy.statistics(sid) == original.statistics(sid)
        assert copy.verify().ok


def test_import_into_a_fresh_ledger_gives_identical_sessions_and_chain_head(db: Path, export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    result = invoke("--db", str(copy), "import", str(export))
    assert result.exit_code == 0, result.output
    with Ledger(db) as led:
        head = led.digest()
    assert result.stdout.strip() == f"read 10, imported 10, already present 0; head 10 {head.hash}"
    assert_same_ledger(db, copy)


def test_importing_twice_changes_nothing(export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    assert invoke("--db", str(copy), "import", str(export)).exit_code == 0
    with Ledger(copy) as led:
        before = dump(led)
    again = invoke("--db", str(copy), "import", str(export))
    assert again.exit_code == 0, again.output
    assert "read 10, imported 0, already present 10" in again.stdout
    with Ledger(copy) as led:
        assert dump(led) == before


def test_importing_a_cut_then_the_whole_export_catches_up_to_the_same_chain(db: Path, export: Path, tmp_path: Path) -> None:
    cut, copy = tmp_path / "cut.jsonl", tmp_path / "copy.db"
    assert invoke("--db", str(db), "export", "--until", "2026-01-01T12:05:00Z", str(cut)).exit_code == 0
    first = invoke("--db", str(copy), "import", str(cut))
    assert first.exit_code == 0 and "imported 6," in first.stdout
    rest = invoke("--db", str(copy), "import", str(export))
    assert rest.exit_code == 0 and "imported 4, already present 6" in rest.stdout
    assert_same_ledger(db, copy)


def test_importing_an_export_of_one_session_brings_only_that_session(db: Path, tmp_path: Path) -> None:
    one, copy = tmp_path / "beta.jsonl", tmp_path / "copy.db"
    assert invoke("--db", str(db), "export", "--session", "beta", str(one)).exit_code == 0
    result = invoke("--db", str(copy), "import", str(one))
    assert result.exit_code == 0 and "imported 3," in result.stdout
    with Ledger(db) as original, Ledger(copy) as led:
        assert [s.session_id for s in led.list_sessions().items] == ["beta"]
        theirs, ours = original.get_session("beta"), led.get_session("beta")
        assert (ours.status, ours.version, ours.user_id, ours.tokens_out) == (theirs.status, theirs.version, "bob", 2)
        assert [m.content for m in led.messages("beta")] == ["docs"]
        assert led.verify().ok


@pytest.mark.parametrize("where", ["before", "after"])
def test_import_takes_db_before_or_after_the_command(db: Path, export: Path, tmp_path: Path, where: str) -> None:
    copy = tmp_path / "copy.db"
    args = ["--db", str(copy), "import", str(export)] if where == "before" else ["import", str(export), "--db", str(copy)]
    assert invoke(*args).exit_code == 0
    assert_same_ledger(db, copy)


def test_import_reads_ledger_path_from_the_environment(db: Path, export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    assert invoke("import", str(export), env={"LEDGER_PATH": str(copy)}).exit_code == 0
    assert_same_ledger(db, copy)


def _edit_payload(lines: list[str]) -> list[str]:
    row = json.loads(lines[5])
    row["data"] = row["data"].replace("auth.py:88", "auth.py:99")
    return [*lines[:5], json.dumps(row), *lines[6:]]


def _drop_a_middle_line(lines: list[str]) -> list[str]:
    return [line for line in lines if '"position":7,' not in line]  # the fork's only event: no session skips a version


def _drop_the_last_line(lines: list[str]) -> list[str]:
    return lines[:-1]


def _edit_time(lines: list[str]) -> list[str]:
    row = json.loads(lines[3])
    row["recorded_at"] = row["recorded_at"].replace("12:02:00", "12:02:30")
    return [*lines[:3], json.dumps(row), *lines[4:]]


@pytest.mark.parametrize("damage", [_edit_payload, _edit_time, _drop_a_middle_line, _drop_the_last_line])
def test_a_tampered_export_is_refused_with_a_clear_message_and_nothing_is_written(
    export: Path, tmp_path: Path, damage: object
) -> None:
    lines = export.read_text(encoding="utf-8").splitlines()
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(damage(lines)) + "\n", encoding="utf-8")  # type: ignore[operator]
    copy = tmp_path / "copy.db"
    with Ledger(copy, clock=Clock(datetime(2025, 6, 1, tzinfo=timezone.utc))) as led:
        led.create_session("already-here")  # older than the export, so only the damage can stop the import
    with Ledger(copy) as led:
        before = dump(led)
    result = invoke("--db", str(copy), "import", str(tampered))
    assert_one_error_line(result, codes=(1,))  # a chain that does not hold: a failure
    assert any(word in result.stderr for word in ("line", "position", "version"))
    with Ledger(copy) as led:
        assert dump(led) == before


@pytest.mark.parametrize(
    ("content", "word", "code"),
    [(None, "cannot read", 1), ("", "not a session-ledger export", 2),
     ('{"hello": "world"}\n', "not a session-ledger export", 2),
     ('{"format": "session-ledger/events", "version": 99}\n', "newer", 2)],
)
def test_import_refuses_a_missing_or_foreign_file_with_one_error_line(
    tmp_path: Path, content: str | None, word: str, code: int
) -> None:
    source = tmp_path / "in.jsonl"
    if content is not None:
        source.write_text(content)
    # A file that cannot be read is a failure (1); one that is not an export is a bad value (2).
    assert_one_error_line(invoke("--db", str(tmp_path / "copy.db"), "import", str(source)), word, codes=(code,))


def test_import_of_a_binary_file_is_one_error_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xff\xfe\x00\x01 not text")
    assert_one_error_line(invoke("--db", str(tmp_path / "copy.db"), "import", str(source)), "not UTF-8")  # a bad value


def test_import_as_a_real_process_is_quiet_when_piped(db: Path, export: Path, tmp_path: Path) -> None:
    copy = tmp_path / "proc.db"
    proc = run("--db", str(copy), "import", str(export))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert_same_ledger(db, copy)
    lines = export.read_text().splitlines()
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(_edit_payload(lines)) + "\n")
    bad = run("--db", str(tmp_path / "other.db"), "import", str(tampered))
    assert bad.returncode == 1
    assert bad.stderr.startswith("error:") and len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr
