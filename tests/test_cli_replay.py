"""``ledger replay --until POS|TIME OUT``: the audit copy, the ledger as it stood at the cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Eight events a minute apart from 12:00; snapshots every two versions."""
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000), snapshot_every=2) as led:
        led.create_session("alpha", user_id="alice")  # 1 12:00
        led.add_message("alpha", "user", "first question")  # 2 12:01
        led.set_metadata("alpha", "outcome", "open")  # 3 12:02
        led.create_session("beta", user_id="bob")  # 4 12:03
        led.add_message("alpha", "assistant", "an answer")  # 5 12:04
        led.set_metadata("alpha", "outcome", "answered")  # 6 12:05
        led.complete_session("beta")  # 7 12:06
        led.complete_session("alpha")  # 8 12:07
    return path


def hash_at(db: Path, position: int) -> str:
    with Ledger(db) as led:
        return next(e.hash for e in led.history(after=position - 1))


def test_replay_until_a_position_writes_a_verified_copy_whose_head_is_the_hash_there(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "at4.db"
    result = invoke("--db", str(db), "replay", "--until", "4", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"replayed 4 events into {out}; head {hash_at(db, 4)}"
    with Ledger(out) as copy, Ledger(db) as original:
        assert copy.verify().ok
        assert (copy.digest().position, copy.digest().hash) == (4, hash_at(db, 4))
        assert copy.get_session("alpha") == original.get_session("alpha", position=4)
        assert copy.get_session("beta").status == "active"
        assert copy.get_metadata("alpha", "outcome") == "open"
    verified = invoke("--db", str(out), "verify")
    assert verified.exit_code == 0 and f"head 4 {hash_at(db, 4)}" in verified.stdout


def test_replay_until_a_time_cuts_at_the_last_event_recorded_by_then(db: Path, tmp_path: Path) -> None:
    out, naive = tmp_path / "t.db", tmp_path / "naive.db"
    result = invoke("--db", str(db), "replay", "--until", "2026-01-01T12:05:30Z", str(out))
    assert result.exit_code == 0, result.output
    assert invoke("--db", str(db), "replay", "--until", "2026-01-01T12:05:30", str(naive)).exit_code == 0
    with Ledger(out) as copy, Ledger(naive) as same:
        assert copy.digest().position == 6
        assert copy.digest().hash == hash_at(db, 6) == same.digest().hash
        assert copy.verify().ok
        assert copy.get_metadata("alpha", "outcome") == "answered"
        assert copy.get_session("alpha").status == "active"


def test_replay_copy_answers_queries_as_the_ledger_stood_then(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "at5.db"
    assert invoke("--db", str(db), "replay", "--until", "5", str(out)).exit_code == 0
    listed = json.loads(invoke("--db", str(out), "sessions", "--json").stdout)["items"]
    assert {(row["session_id"], row["status"]) for row in listed} == {("alpha", "active"), ("beta", "active")}
    messages = json.loads(invoke("--db", str(out), "messages", "alpha", "--json").stdout)
    assert [m["content"] for m in messages] == ["first question", "an answer"]


def test_replay_beyond_the_head_copies_everything(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.db"
    assert invoke("--db", str(db), "replay", "--until", "999", str(out)).exit_code == 0
    with Ledger(out) as copy, Ledger(db) as original:
        assert copy.digest() == original.digest()


@pytest.mark.parametrize("where", ["before", "after"])
def test_replay_takes_db_before_or_after_the_command(db: Path, tmp_path: Path, where: str) -> None:
    out = tmp_path / f"{where}.db"
    args = (["--db", str(db), "replay", "--until", "3", str(out)] if where == "before"
            else ["replay", "--until", "3", str(out), "--db", str(db)])
    assert invoke(*args).exit_code == 0
    with Ledger(out) as copy:
        assert copy.digest().hash == hash_at(db, 3)


def test_replay_reads_ledger_path_from_the_environment(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.db"
    assert invoke("replay", "--until", "2", str(out), env={"LEDGER_PATH": str(db)}).exit_code == 0
    with Ledger(out) as copy:
        assert copy.last_position == 2


def test_replay_refuses_an_existing_target(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken.db"
    out.write_bytes(b"keep me")
    assert_one_error_line(invoke("--db", str(db), "replay", "--until", "3", str(out)), "already exists")
    assert out.read_bytes() == b"keep me"


def test_replay_refuses_a_bad_cut_with_one_error_line_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad.db"
    assert_one_error_line(invoke("--db", str(db), "replay", "--until", "after lunch", str(out)), "until")
    assert not out.exists()


def test_replay_as_a_real_process(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "proc.db"
    proc = run("--db", str(db), "replay", "--until", "2026-01-01T12:03:00Z", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    verified = run("--db", str(out), "verify")
    assert verified.returncode == 0 and f"ok: 4 events verified; head 4 {hash_at(db, 4)}" in verified.stdout


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_replays_leftovers_are_removed_by_the_next_replay_or_open(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.db"
    dead = _dead_pid()
    leftovers = [tmp_path / f"copy.db.partial-{dead}{suffix}" for suffix in ("", "-wal", "-shm")]
    for leftover in leftovers:
        leftover.write_bytes(b"a full copy of the ledger, purged text included")
    in_use = tmp_path / f"copy.db.partial-{os.getppid()}"  # a live process's replay is left alone
    in_use.write_bytes(b"in use")
    result = invoke("--db", str(db), "replay", "--until", "999", str(out))
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in leftovers) and in_use.exists()
    for leftover in leftovers:
        leftover.write_bytes(b"left again")
    with Ledger(out):  # opening the copy cleans up beside it too
        pass
    assert not any(p.exists() for p in leftovers)
