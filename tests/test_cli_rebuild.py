"""``ledger rebuild [--projection NAME]``: drop projections and replay the log into them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock, dump


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice", tags=["bug"], metadata={"model": "m1"})
        led.add_message("alpha", "user", "the zebra login fails")
        led.link_invocation("alpha", "inv-1", "grep", duration_ms=5.0)
        led.create_session("beta", user_id="bob")
        led.complete_session("beta")
    return path


def projections(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with Ledger(db) as led:
        led.search_messages("zebra")  # level the lazy search index first
        rows = dump(led)
    return {table: content for table, content in rows.items() if table not in ("events", "snapshots")}


def wreck(db: Path, *tables: str) -> None:
    raw = sqlite3.connect(db)
    for table in tables:
        raw.execute(f"DELETE FROM {table}")
    raw.commit()
    raw.close()


def session_ids(db: Path) -> list[str]:
    result = invoke("--db", str(db), "sessions", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert page["cursor"] is None
    return sorted(row["session_id"] for row in page["items"])


def test_rebuild_restores_every_projection_from_the_log(db: Path) -> None:
    with Ledger(db) as led:
        led.tree_head()  # the lazy Merkle tiles level, as a rebuild leaves them
    before = projections(db)
    wreck(db, "sessions", "messages", "invocations", "session_tags")
    assert session_ids(db) == []
    result = invoke("--db", str(db), "rebuild")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "rebuilt all projections from 5 events"
    assert session_ids(db) == ["alpha", "beta"]
    assert projections(db) == before


def test_rebuild_one_projection_by_name(db: Path) -> None:
    wreck(db, "sessions")
    result = invoke("--db", str(db), "rebuild", "--projection", "sessions")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "rebuilt sessions from 5 events"
    assert session_ids(db) == ["alpha", "beta"]


def test_rebuild_of_the_search_index_finds_messages_again(db: Path) -> None:
    assert invoke("--db", str(db), "rebuild", "--projection", "search").exit_code == 0
    hits = json.loads(invoke("--db", str(db), "search", "zebra", "--json").stdout)
    assert [(h["session_id"], h["position"]) for h in hits] == [("alpha", 2)]


def test_rebuild_leaves_the_log_and_its_chain_alone(db: Path) -> None:
    with Ledger(db) as led:
        head = led.digest()
    assert invoke("--db", str(db), "rebuild").exit_code == 0
    with Ledger(db) as led:
        assert led.digest() == head and led.verify().ok


@pytest.mark.parametrize("where", ["before", "after"])
def test_rebuild_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    wreck(db, "sessions")
    args = ["--db", str(db), "rebuild"] if where == "before" else ["rebuild", "--db", str(db)]
    assert invoke(*args).exit_code == 0
    assert session_ids(db) == ["alpha", "beta"]


def test_rebuild_reads_ledger_path_from_the_environment(db: Path) -> None:
    wreck(db, "sessions")
    assert invoke("rebuild", env={"LEDGER_PATH": str(db)}).exit_code == 0
    assert session_ids(db) == ["alpha", "beta"]


def test_rebuild_of_an_unknown_projection_is_one_error_line_naming_the_known_ones(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "rebuild", "--projection", "nonesuch"), "nonesuch", "sessions", "search")


def test_rebuild_of_a_missing_ledger_is_one_error_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert_one_error_line(invoke("--db", str(missing), "rebuild"), "no ledger at", str(missing), "init", codes=(1,))
    assert not missing.exists()


def test_rebuild_as_a_real_process_is_quiet_when_piped(db: Path) -> None:
    wreck(db, "sessions")
    proc = run("--db", str(db), "rebuild")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "rebuilt all projections from 5 events" and proc.stderr == ""
    assert session_ids(db) == ["alpha", "beta"]
