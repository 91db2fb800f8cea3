"""``ledger backup OUT``: an online copy of a live ledger, verified."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000), snapshot_every=2) as led:
        led.create_session("alpha", user_id="alice", tags=["bug"])
        for n in range(4):
            led.add_message("alpha", "user", f"message {n}")
        led.create_session("beta", user_id="bob")
        led.complete_session("beta")
    return path


def test_backup_of_a_live_ledger_is_a_verified_identical_copy(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "backup.db"
    with Ledger(db) as live:  # another Ledger has the file open, and writes while the backup is taken
        live.add_message("alpha", "assistant", "written by the live ledger")
        result = invoke("--db", str(db), "backup", str(out))
        assert result.exit_code == 0, result.output
        head = live.digest()
        assert result.stdout.strip() == f"backup {out}: 8 events, verified; head 8 {head.hash}"
        live.add_message("alpha", "user", "after the backup")
        with Ledger(out) as copy:
            assert copy.digest() == head
            assert copy.verify().ok
            assert copy.get_session("beta") == live.get_session("beta")
            assert [m.content for m in copy.messages("alpha")][-1] == "written by the live ledger"
    assert invoke("--db", str(out), "verify").exit_code == 0


def test_backup_refuses_an_existing_target_and_leaves_it_alone(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken.db"
    out.write_bytes(b"precious")
    result = invoke("--db", str(db), "backup", str(out))
    assert_one_error_line(result, "already exists")
    assert out.read_bytes() == b"precious"


def test_backup_refuses_to_overwrite_its_own_ledger(db: Path) -> None:
    with Ledger(db) as led:
        before = led.digest()
    assert_one_error_line(invoke("--db", str(db), "backup", str(db)), "already exists")
    with Ledger(db) as led:
        assert led.digest() == before


def test_backup_into_a_missing_directory_is_one_error_line(db: Path, tmp_path: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "backup", str(tmp_path / "no" / "such" / "b.db")), codes=(1,))


@pytest.mark.parametrize("where", ["before", "after"])
def test_backup_takes_db_before_or_after_the_command(db: Path, tmp_path: Path, where: str) -> None:
    out = tmp_path / f"{where}.db"
    args = ["--db", str(db), "backup", str(out)] if where == "before" else ["backup", str(out), "--db", str(db)]
    assert invoke(*args).exit_code == 0
    with Ledger(out) as copy:
        assert copy.last_position == 7


def test_backup_reads_ledger_path_from_the_environment(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.db"
    assert invoke("backup", str(out), env={"LEDGER_PATH": str(db)}).exit_code == 0
    with Ledger(out) as copy, Ledger(db) as original:
        assert copy.digest() == original.digest()


def test_backup_as_a_real_process_while_the_test_holds_the_ledger_open(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "proc.db"
    with Ledger(db) as live:
        live.create_session("gamma")
        proc = run("--db", str(db), "backup", str(out))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        head = live.digest()
    verified = run("--db", str(out), "verify")
    assert verified.returncode == 0 and f"head 8 {head.hash}" in verified.stdout
    again = run("--db", str(db), "backup", str(out))
    assert again.returncode == 2 and again.stderr.startswith("error:") and len(again.stderr.splitlines()) == 1
