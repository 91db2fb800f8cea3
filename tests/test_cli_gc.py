"""``ledger gc [--idle SECONDS] [--purge-older-than DAYS] [--keep-snapshots K]``: retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke
from tests.conftest import Clock


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "ledger", *args], capture_output=True, text=True, timeout=30, env=environ)


def ago(**span: float) -> Clock:
    """A clock that starts that long before now and ticks a second per event."""
    return Clock(datetime.now(timezone.utc) - timedelta(**span), step_ms=1000)


@pytest.fixture
def idle_db(tmp_path: Path) -> Path:
    """stale and stale-2: last active two hours ago; done: ended two hours ago; fresh: active now."""
    path = tmp_path / "idle.db"
    with Ledger(path, clock=ago(hours=2)) as led:
        led.create_session("stale", user_id="alice")
        led.add_message("stale", "user", "anyone there?")
        led.create_session("stale-2")
        led.create_session("done")
        led.complete_session("done")
    with Ledger(path) as led:  # the real clock: now
        led.create_session("fresh")
    return path


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    """old-done ended 40 days ago, old-failed 39 days ago; old-active never ended; recent-done ended today."""
    path = tmp_path / "old.db"
    with Ledger(path, clock=ago(days=40)) as led:
        led.create_session("old-done", user_id="alice")
        led.add_message("old-done", "user", "ancient words qv7retain")
        led.complete_session("old-done")
        led.create_session("old-active")
    with Ledger(path, clock=ago(days=39)) as led:
        led.create_session("old-failed")
        led.complete_session("old-failed", "failed")
    with Ledger(path) as led:
        led.create_session("recent-done")
        led.complete_session("recent-done")
    return path


def statuses(db: Path) -> dict[str, str]:
    result = invoke("--db", str(db), "sessions", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert page["cursor"] is None  # one page holds every session
    return {row["session_id"]: row["status"] for row in page["items"]}


def test_gc_idle_abandons_sessions_idle_that_long(idle_db: Path) -> None:
    result = invoke("--db", str(idle_db), "gc", "--idle", "3600")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("abandoned 2 idle sessions, purged 0 ended sessions")
    assert statuses(idle_db) == {"stale": "abandoned", "stale-2": "abandoned", "done": "completed", "fresh": "active"}
    with Ledger(idle_db) as led:
        assert "idle" in (led.get_session("stale").completion_reason or "")
        assert led.verify().ok


def test_gc_idle_longer_than_anyone_has_been_idle_abandons_nothing(idle_db: Path) -> None:
    result = invoke("--db", str(idle_db), "gc", "--idle", str(3 * 3600))
    assert result.exit_code == 0 and result.stdout.startswith("abandoned 0 idle sessions")
    assert statuses(idle_db)["stale"] == "active"


def test_gc_purge_older_than_purges_sessions_that_ended_long_ago(old_db: Path) -> None:
    result = invoke("--db", str(old_db), "gc", "--purge-older-than", "30")
    assert result.exit_code == 0, result.output
    assert "purged 2 ended sessions" in result.stdout
    assert statuses(old_db) == {"old-done": "purged", "old-failed": "purged", "old-active": "active",
                                "recent-done": "completed"}
    assert invoke("--db", str(old_db), "verify").exit_code == 0
    assert b"qv7retain" not in old_db.read_bytes()
    history = json.loads(invoke("--db", str(old_db), "history", "old-done", "--json").stdout)
    assert history[-1]["type"] == "purged" and history[-1]["payload"]["by"] == "ledger gc"


def test_gc_uses_ledger_retention_days_when_the_option_is_absent(old_db: Path) -> None:
    result = invoke("--db", str(old_db), "gc", env={"LEDGER_RETENTION_DAYS": "30"})
    assert result.exit_code == 0, result.output
    assert "purged 2 ended sessions" in result.stdout
    assert statuses(old_db)["old-done"] == "purged"


def test_gc_option_wins_over_ledger_retention_days(old_db: Path) -> None:
    result = invoke("--db", str(old_db), "gc", "--purge-older-than", "39.5", env={"LEDGER_RETENTION_DAYS": "1"})
    assert result.exit_code == 0 and "purged 1 ended sessions" in result.stdout
    assert statuses(old_db) == {"old-done": "purged", "old-failed": "failed", "old-active": "active",
                                "recent-done": "completed"}


def test_gc_without_options_or_retention_purges_nothing(old_db: Path) -> None:
    result = invoke("--db", str(old_db), "gc")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("abandoned 0 idle sessions, purged 0 ended sessions")
    assert "purged" not in statuses(old_db).values()


def test_gc_thins_out_snapshots_without_changing_any_state(tmp_path: Path) -> None:
    path = tmp_path / "snaps.db"
    with Ledger(path, snapshot_every=2) as led:
        led.create_session("busy")
        for n in range(12):
            led.add_message("busy", "user", f"message {n}")
        before = led.get_session("busy")
    result = invoke("--db", str(path), "gc", "--keep-snapshots", "1")
    assert result.exit_code == 0, result.output
    dropped = int(result.stdout.split("dropped ")[1].split()[0])
    assert dropped >= 4
    with Ledger(path) as led:
        assert led.get_session("busy") == before
        assert led.get_session("busy", version=3).message_count == 2
        assert led.verify().ok


@pytest.mark.parametrize("where", ["before", "after"])
def test_gc_takes_db_before_or_after_the_command(idle_db: Path, where: str) -> None:
    args = ["--db", str(idle_db), "gc", "--idle", "3600"] if where == "before" else ["gc", "--idle", "3600", "--db", str(idle_db)]
    assert invoke(*args).exit_code == 0
    assert statuses(idle_db)["stale"] == "abandoned"


def test_gc_reads_ledger_path_from_the_environment(idle_db: Path) -> None:
    assert invoke("gc", "--idle", "3600", env={"LEDGER_PATH": str(idle_db)}).exit_code == 0
    assert statuses(idle_db)["stale"] == "abandoned"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LEDGER_RETENTION_DAYS", "forever"), ("LEDGER_RETENTION_DAYS", "0"),
     ("LEDGER_SNAPSHOT_EVERY", "-1"), ("LEDGER_SNAPSHOT_EVERY", "often"), ("LEDGER_DURABILITY", "fast")],
)
def test_gc_refuses_a_bad_setting_with_one_line_naming_the_variable(
    old_db: Path, variable: str, value: str
) -> None:
    before = statuses(old_db)
    assert_one_error_line(invoke("--db", str(old_db), "gc", env={variable: value}), variable, repr(value))
    assert statuses(old_db) == before


@pytest.mark.parametrize(("args", "word"), [(["--idle", "0"], "max_idle"), (["--purge-older-than", "-3"], "older_than"),
                                            (["--keep-snapshots", "-1"], "keep")])
def test_gc_refuses_a_bad_option_with_one_error_line(idle_db: Path, args: list[str], word: str) -> None:
    assert_one_error_line(invoke("--db", str(idle_db), "gc", *args), word)
    assert statuses(idle_db)["stale"] == "active"


def test_gc_as_a_real_process(idle_db: Path) -> None:
    proc = run("--db", str(idle_db), "gc", "--idle", "600", env={"LEDGER_RETENTION_DAYS": "365"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("abandoned 2 idle sessions, purged 0 ended sessions") and proc.stderr == ""
    bad = run("--db", str(idle_db), "gc", env={"LEDGER_SNAPSHOT_EVERY": "lots"})
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "LEDGER_SNAPSHOT_EVERY" in bad.stderr and len(bad.stderr.splitlines()) == 1
