"""``ledger export [--session ID ...] [--until POS|TIME] --format jsonl|sessions-dir OUT``."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


SESSIONS = ("alpha", "alpha-fork", "beta")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Twelve events a minute apart from 12:00, with a fork, a restore, data, tags and an ended session."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000), snapshot_every=3) as led:
        led.create_session("alpha", user_id="alice", purpose="fix login", tags=["bug"], metadata={"model": "m1"})  # 1 12:00
        led.add_message("alpha", "user", "why does login fail on Safari?")  # 2 12:01
        led.link_invocation("alpha", "inv-1", "grep", duration_ms=120.5, tokens={"input": 300, "output": 20}, cost=0.25,
                            artifact="file:///runs/inv-1/")  # 3 12:02
        led.add_message("alpha", "tool", "auth.py:88 sets SameSite=None", tool_name="grep", invocation_id="inv-1")  # 4 12:03
        led.create_session("beta", user_id="bob", tags=["docs"])  # 5 12:04
        led.set_data("alpha", "step", {"name": "diagnose", "done": True})  # 6 12:05
        led.add_message("beta", "assistant", "docs written", model="gpt-x", tokens={"input": 10, "output": 40})  # 7 12:06
        led.fork("alpha", version=2, new_session_id="alpha-fork")  # 8 12:07
        led.set_metadata("alpha", "outcome", "diagnosed")  # 9 12:08
        led.complete_session("beta", reason="shipped")  # 10 12:09
        led.restore("alpha", version=4)  # 11 12:10
        led.add_tags("alpha", ["auth"])  # 12 12:11
    return path


def lines_of(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, *rows, trailer = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert trailer == {"format": "session-ledger/events", "end": True, "rows": len(rows)}
    return header, rows


def hashes(db: Path) -> dict[int, str]:
    with Ledger(db) as led:
        return {e.position: e.hash for e in led.history()}


def test_export_jsonl_writes_a_header_then_every_stored_row(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    result = invoke("--db", str(db), "export", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"exported 12 events to {out}"
    header, rows = lines_of(out)
    chain = hashes(db)
    assert header == {"format": "session-ledger/events", "version": 1, "head": {"position": 12, "hash": chain[12]},
                      "sessions": None}
    assert [r["position"] for r in rows] == list(range(1, 13))
    assert all(r["hash"] == chain[r["position"]] for r in rows)
    assert rows[0]["prev"] == "0" * 64 and all(rows[i]["prev"] == rows[i - 1]["hash"] for i in range(1, 12))
    assert rows[1]["recorded_at"].startswith("2026-01-01T12:01:00")
    assert json.loads(rows[1]["data"])["content"] == "why does login fail on Safari?"


def test_export_then_import_into_a_fresh_ledger_gives_identical_sessions_and_chain_head(db: Path, tmp_path: Path) -> None:
    out, copy = tmp_path / "all.jsonl", tmp_path / "copy.db"
    assert invoke("--db", str(db), "export", "--format", "jsonl", str(out)).exit_code == 0
    assert invoke("--db", str(copy), "import", str(out)).exit_code == 0
    with Ledger(db) as original, Ledger(copy) as imported:
        assert imported.digest() == original.digest()
        for sid in SESSIONS:
            assert imported.get_session(sid) == original.get_session(sid)
            assert imported.messages(sid) == original.messages(sid)
        assert imported.verify().ok


def test_export_session_keeps_only_those_sessions_rows(db: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "beta.jsonl", tmp_path / "two.jsonl"
    result = invoke("--db", str(db), "export", "--session", "beta", str(one))
    assert result.exit_code == 0 and "exported 3 events" in result.stdout
    header, rows = lines_of(one)
    assert header["sessions"] == ["beta"]
    assert [(r["position"], r["session_id"]) for r in rows] == [(5, "beta"), (7, "beta"), (10, "beta")]
    assert invoke("--db", str(db), "export", "--session", "beta", "--session", "alpha-fork", str(two)).exit_code == 0
    assert {r["session_id"] for r in lines_of(two)[1]} == {"beta", "alpha-fork"}


def test_export_until_a_position_stops_there(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "cut.jsonl"
    result = invoke("--db", str(db), "export", "--until", "4", str(out))
    assert result.exit_code == 0 and "exported 4 events" in result.stdout
    header, rows = lines_of(out)
    assert header["head"] == {"position": 4, "hash": hashes(db)[4]}
    assert [r["position"] for r in rows] == [1, 2, 3, 4]


def test_export_until_a_time_stops_at_the_last_event_recorded_by_then(db: Path, tmp_path: Path) -> None:
    zoned, naive = tmp_path / "zoned.jsonl", tmp_path / "naive.jsonl"
    assert invoke("--db", str(db), "export", "--until", "2026-01-01T12:03:30Z", str(zoned)).exit_code == 0
    assert invoke("--db", str(db), "export", "--until", "2026-01-01T12:03:30", str(naive)).exit_code == 0
    assert [r["position"] for r in lines_of(zoned)[1]] == [1, 2, 3, 4]
    assert zoned.read_text() == naive.read_text()


def test_export_sessions_dir_writes_the_per_session_layout(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "dir"
    result = invoke("--db", str(db), "export", "--format", "sessions-dir", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"exported 3 sessions to {out}"
    assert sorted(p.name for p in out.iterdir()) == sorted(SESSIONS)
    for sid in SESSIONS:
        assert sorted(p.name for p in (out / sid).iterdir()) == [
            "conversation.jsonl", "data.json", "invocations.json", "metadata.json"]
    with Ledger(db) as led:
        for sid in SESSIONS:
            state = json.loads(json.dumps(msgspec.to_builtins(led.get_session(sid))))
            for internal in ("lineage", "run_start", "data"):
                state.pop(internal)
            assert json.loads((out / sid / "metadata.json").read_text()) == state
            assert json.loads((out / sid / "data.json").read_text()) == led.get_data(sid)
            conversation = [json.loads(line) for line in (out / sid / "conversation.jsonl").read_text().splitlines()]
            assert [(m["role"], m["content"], m["tool_name"], m["version"]) for m in conversation] == [
                (m.role, m.content, m.tool_name, m.version) for m in led.messages(sid)]
    alpha = json.loads((out / "alpha" / "metadata.json").read_text())
    assert alpha["tags"] == ["bug", "auth"] and alpha["metadata"] == {"model": "m1"}  # restored to version 4, then tagged
    assert json.loads((out / "alpha" / "data.json").read_text()) == {}
    (invocation,) = json.loads((out / "alpha" / "invocations.json").read_text())
    assert (invocation["invocation_id"], invocation["tool_name"], invocation["duration_ms"], invocation["cost"],
            invocation["artifact"]) == ("inv-1", "grep", 120.5, 0.25, "file:///runs/inv-1/")
    assert json.loads((out / "beta" / "metadata.json").read_text())["completion_reason"] == "shipped"
    assert json.loads((out / "alpha-fork" / "invocations.json").read_text()) == []


def test_export_sessions_dir_until_a_cut_shows_the_sessions_as_they_were(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "dir"
    assert invoke("--db", str(db), "export", "--format", "sessions-dir", "--until", "6", str(out)).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["alpha", "beta"]
    assert json.loads((out / "alpha" / "data.json").read_text()) == {"step": {"name": "diagnose", "done": True}}
    assert json.loads((out / "alpha" / "metadata.json").read_text())["version"] == 5
    assert len((out / "alpha" / "conversation.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "beta" / "metadata.json").read_text())["status"] == "active"


def test_export_sessions_dir_of_one_session(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "dir"
    assert invoke("--db", str(db), "export", "--format", "sessions-dir", "--session", "beta", str(out)).exit_code == 0
    assert [p.name for p in out.iterdir()] == ["beta"]
    (message,) = [json.loads(line) for line in (out / "beta" / "conversation.jsonl").read_text().splitlines()]
    assert (message["role"], message["model"], message["tokens"]) == ("assistant", "gpt-x", {"input": 10, "output": 40})


@pytest.mark.parametrize("where", ["before", "after"])
def test_export_takes_db_before_or_after_the_command(db: Path, tmp_path: Path, where: str) -> None:
    out = tmp_path / "x.jsonl"
    args = ["--db", str(db), "export", str(out)] if where == "before" else ["export", str(out), "--db", str(db)]
    assert invoke(*args).exit_code == 0
    assert len(lines_of(out)[1]) == 12


def test_export_reads_ledger_path_from_the_environment(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert invoke("export", str(out), env={"LEDGER_PATH": str(db)}).exit_code == 0
    assert len(lines_of(out)[1]) == 12


@pytest.mark.parametrize(("args", "word"), [(["--until", "last week"], "until"), (["--session", "bad id!"], "sessions")])
def test_export_refuses_a_bad_argument_with_one_error_line_and_writes_nothing(
    db: Path, tmp_path: Path, args: list[str], word: str
) -> None:
    out = tmp_path / "x.jsonl"
    assert_one_error_line(invoke("--db", str(db), "export", *args, str(out)), word)
    assert not out.exists()


def test_export_of_a_missing_session_is_one_error_line_not_an_empty_export(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert_one_error_line(invoke("--db", str(db), "export", "--session", "nobody", str(out)), "nobody", codes=(1,))
    assert not out.exists()


# A path under a file cannot be written (1); a sessions-dir target that is already a file is a bad value (2).
@pytest.mark.parametrize(("fmt", "code"), [("jsonl", 1), ("sessions-dir", 2)])
def test_export_to_a_place_it_cannot_write_is_one_error_line(db: Path, tmp_path: Path, fmt: str, code: int) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    result = invoke("--db", str(db), "export", "--format", fmt, str(blocker / "sub" if fmt == "jsonl" else blocker))
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error:"), result.stderr
    assert blocker.read_text() == "in the way"


def test_export_as_a_real_process_is_quiet_when_piped(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "proc.jsonl"
    proc = run("--db", str(db), "export", "--until", "2026-01-01T12:05:00Z", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar on a pipe
    assert [r["position"] for r in lines_of(out)[1]] == [1, 2, 3, 4, 5, 6]


def test_export_shows_a_progress_bar_on_a_terminal(db: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "ledger", "--db", str(db), "export", str(tmp_path / "x.jsonl")],
                              stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=30, env=env)
        os.close(terminal)
        drawn = b""
        while select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal side is closed: everything has been read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert proc.returncode == 0
    assert b"export" in drawn and b"100%" in drawn


def _big(path: Path, events: int = 30_000) -> None:
    with Ledger(path) as led:
        led.create_session("s")
        for start in range(0, events, 1000):
            with led.batch():
                for i in range(start, start + 1000):
                    led.add_message("s", "user", f"message {i} " + "x" * 200)


def test_an_interrupted_export_or_backup_leaves_no_file_behind(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    _big(db, 3000)

    def interrupt(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with Ledger(db) as led:
        for name, call in (("out.jsonl", lambda out: led.export(out, progress=interrupt)),
                           ("copy.db", lambda out: led.backup(out, progress=interrupt)),
                           ("dir", lambda out: led.export(out, format="sessions-dir", progress=interrupt))):
            with pytest.raises(KeyboardInterrupt):
                call(tmp_path / name)
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["l.db", "l.db-wal", "l.db-shm"]), name


def test_ctrl_c_during_a_real_export_leaves_no_half_written_file(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "l.db"
    _big(db)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "ledger", "--db", str(db), "export", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(p.name.startswith("out.jsonl.partial-") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "the export never started writing"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr and "Exception ignored" not in stderr  # 128 + SIGINT
    assert stderr.splitlines() == ["interrupted"]
    assert not out.exists() and not any("partial" in p.name for p in tmp_path.iterdir())
