"""``ledger demo`` (what ``make demo`` runs), through click's runner and as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ledger import Ledger
from ledger.cli import main

EVENTS_PER_RUN = 27  # three agents' sessions and a fork of the coder's, restored once


def test_demo_records_sessions_and_shows_what_a_user_wants_to_see(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["--db", str(db), "demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("Sessions", "planner", "coder", "reviewer", "Conversation", "pytest", "Queries", "[timeout]",
                     "Usage by tool", "Time travel", "forked", "restored", "audit trail", "verify: ok"):
        assert expected in out
    with Ledger(db) as led:
        assert led.last_position == EVENTS_PER_RUN
        assert led.verify().ok


def test_demo_runs_twice_in_a_row_on_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "ledger", "--db", str(db), "demo"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "verify: ok" in proc.stdout
    with Ledger(db) as led:
        assert led.last_position == 2 * EVENTS_PER_RUN
        assert len({e.session_id for e in led.history()}) == 8


def test_verify_command_exits_1_with_the_first_bad_position(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "l.db"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", str(db), "demo"]).exit_code == 0
    ok = runner.invoke(main, ["--db", str(db), "verify"])
    assert ok.exit_code == 0 and ok.output.startswith(f"ok: {EVENTS_PER_RUN} events verified")
    raw = sqlite3.connect(db)
    raw.execute("UPDATE events SET data = '{}' WHERE position = 7")
    raw.commit()
    raw.close()
    bad = runner.invoke(main, ["--db", str(db), "verify"])
    assert bad.exit_code == 1
    assert "position 7" in bad.output


def test_a_ledger_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    not_a_ledger = tmp_path / "x.db"
    not_a_ledger.write_bytes(b"garbage" * 1000)
    result = CliRunner().invoke(main, ["--db", str(not_a_ledger), "init"])
    assert result.exit_code == 1  # a damaged or foreign file: a failure, not a usage error
    assert "Traceback" not in result.output
    assert "not a ledger" in result.output


def test_the_demo_fits_100_columns_when_piped(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LEDGER_PATH")}
    proc = subprocess.run([sys.executable, "-m", "ledger", "--db", str(tmp_path / "demo.db"), "demo"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 100
