"""``ledger init``: create an empty ledger file, or check an existing one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke
from tests.conftest import Clock


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, timeout=30, env=env, cwd=cwd)


def build(path: Path) -> None:
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")
        led.add_message("alpha", "user", "hello")
        led.complete_session("alpha")


def test_init_creates_an_empty_ledger_that_verifies(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = invoke("--db", str(db), "init")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ledger ") and "ready: 0 events, durability normal" in result.stdout
    assert db.exists()
    with Ledger(db) as led:
        assert led.last_position == 0
        assert led.verify().ok


def test_init_checks_an_existing_ledger_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    build(db)
    with Ledger(db) as led:
        before = led.digest()
    result = invoke("--db", str(db), "init")
    assert result.exit_code == 0, result.output
    assert "ready: 3 events" in result.stdout
    with Ledger(db) as led:
        assert led.digest() == before


@pytest.mark.parametrize("where", ["before", "after"])
def test_init_takes_db_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    db = tmp_path / f"{where}.db"
    args = ["--db", str(db), "init"] if where == "before" else ["init", "--db", str(db)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert str(db) in result.stdout
    assert db.exists()


def test_init_uses_ledger_path_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = invoke("init", env={"LEDGER_PATH": str(db)})
    assert result.exit_code == 0, result.output
    assert str(db) in result.stdout
    assert db.exists()


def test_db_option_wins_over_ledger_path(tmp_path: Path) -> None:
    given, env_path = tmp_path / "given.db", tmp_path / "env.db"
    result = invoke("init", "--db", str(given), env={"LEDGER_PATH": str(env_path)})
    assert result.exit_code == 0, result.output
    assert given.exists() and not env_path.exists()


def test_init_defaults_to_ledger_db_in_the_working_directory(tmp_path: Path) -> None:
    proc = run("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ledger.db").exists()


def test_init_reports_the_durability_from_the_environment(tmp_path: Path) -> None:
    result = invoke("--db", str(tmp_path / "l.db"), "init", env={"LEDGER_DURABILITY": "full"})
    assert result.exit_code == 0, result.output
    assert "durability full" in result.stdout


def test_init_refuses_a_bad_durability_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    result = invoke("--db", str(db), "init", env={"LEDGER_DURABILITY": "sometimes"})
    assert_one_error_line(result, "LEDGER_DURABILITY", "sometimes")
    assert not db.exists()


def test_init_refuses_a_file_that_is_not_a_ledger(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 500)
    result = invoke("--db", str(junk), "init")
    assert_one_error_line(result, "not a ledger", codes=(1,))
    assert junk.read_bytes() == b"not a database at all " * 500


@pytest.mark.parametrize(
    "command",
    [["sessions"], ["show", "s"], ["messages", "s"], ["history"], ["search", "x"], ["stats"], ["stats", "s"],
     ["usage"], ["verify"], ["digest"], ["export", "OUT"], ["backup", "OUT"], ["rebuild"],
     ["replay", "--until", "1", "OUT"], ["purge", "s", "--reason", "r"], ["gc"]],
    ids=lambda command: command[0],
)
def test_only_init_demo_and_import_create_a_ledger_every_other_command_refuses_a_missing_one(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "typo.db"
    out = tmp_path / "out"
    result = invoke("--db", str(db), *[str(out) if arg == "OUT" else arg for arg in command])
    assert_one_error_line(result, codes=(1,))
    assert result.stderr == f"error: no ledger at '{db}': no such file; create one with: ledger --db {db} init\n"
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no ledger, no -wal, no output


def test_init_as_a_real_process_creates_a_ledger_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "proc.db"
    for _ in range(2):
        proc = run("--db", str(db), "init")
        assert proc.returncode == 0, proc.stderr
        assert "ready: 0 events" in proc.stdout
        assert proc.stderr == ""
