"""The CLI against a PostgreSQL ledger: ``ledger --db postgresql://user:password@host/db?schema=... COMMAND``.

Through click's runner and as real processes. Every command reads and writes the ledger at the URL, and
the password in the URL never appears in any output: not on stdout, not on stderr, not in an error.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from ledger import Digest, Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import drop_schemas, new_schema_url, raw_sql
from tests.pg_server import PASSWORD, PostgresServer

EVENTS_PER_RUN = 27  # what one ``ledger demo`` appends (tests/test_cli_demo.py)
WRONG = "not-the-password"


@pytest.fixture
def new_url(postgres: PostgresServer) -> Iterator[Callable[[], str]]:
    """Makes URLs of fresh, empty PostgreSQL ledgers (each its own schema), dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(new_schema_url())
        return made[-1]

    yield make
    drop_schemas(made)


@pytest.fixture
def url(new_url: Callable[[], str]) -> str:
    return new_url()


@pytest.fixture
def demo_url(url: str) -> str:
    """A PostgreSQL ledger holding one run of ``ledger demo``."""
    ok(invoke("--db", url, "demo"))
    return url


def shown(url: str) -> str:
    """The URL as the ledger shows it: without the password."""
    return url.replace(f":{PASSWORD}@", "@", 1)


def no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text, text
        assert WRONG not in text, text


def ok(result: Result) -> Result:
    """Exit 0, no traceback, and no password anywhere in the output."""
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    no_password(result.output, result.stdout, result.stderr)
    return result


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "PG"))}


# -- demo --------------------------------------------------------------------------------------------


def test_demo_prints_and_records_its_sessions_in_the_url(url: str) -> None:
    out = ok(invoke("--db", url, "demo")).stdout
    for expected in ("Sessions", "planner", "coder", "reviewer", "Conversation", "pytest", "Queries", "[timeout]",
                     "Usage by tool", "Time travel", "forked", "restored", "audit trail", "verify: ok"):
        assert expected in out, expected
    assert f"into {shown(url)}" in " ".join(out.split())  # it names where it wrote (wrapped), without the password
    with Ledger(url) as led:
        assert led.last_position == EVENTS_PER_RUN
        assert led.verify().ok
        assert len(led.list_sessions().items) == 4  # three agents' sessions and a fork


def test_demo_runs_twice_on_the_same_url(url: str) -> None:
    for _ in range(2):
        assert "verify: ok" in ok(invoke("--db", url, "demo")).stdout
    with Ledger(url) as led:
        assert led.last_position == 2 * EVENTS_PER_RUN
        assert len({e.session_id for e in led.history()}) == 8


# -- reading: sessions, show, messages, history --------------------------------------------------------


def test_sessions_show_and_messages_read_the_ledger_at_the_url(demo_url: str) -> None:
    with Ledger(demo_url) as led:
        sessions = {s.session_id: s for s in led.list_sessions().items}
        page = json.loads(ok(invoke("--db", demo_url, "sessions", "--json")).stdout)
        assert page["cursor"] is None
        listed = page["items"]
        assert {row["session_id"] for row in listed} == set(sessions)
        assert {row["session_id"]: row["version"] for row in listed} == {k: s.version for k, s in sessions.items()}
        table = ok(invoke("--db", demo_url, "sessions")).stdout  # the table names every session
        assert all(session_id in table for session_id in sessions)
        for session_id in sessions:
            state = led.get_session(session_id)
            shown_state = json.loads(ok(invoke("--db", demo_url, "show", session_id, "--json")).stdout)
            assert (shown_state["session_id"], shown_state["version"], shown_state["status"]) == (
                session_id, state.version, state.status)
            messages = json.loads(ok(invoke("--db", demo_url, "messages", session_id, "--json")).stdout)
            assert [(m["version"], m["content"]) for m in messages] == [
                (m.version, m.content) for m in led.messages(session_id)]
        with_tag = json.loads(ok(invoke("--db", demo_url, "sessions", "--tag", "review", "--json")).stdout)["items"]
        assert [row["session_id"] for row in with_tag] == [s.session_id for s in led.list_sessions(tags=["review"])]


def test_history_prints_the_timeline(demo_url: str) -> None:
    rows = json.loads(ok(invoke("--db", demo_url, "history", "--json")).stdout)
    with Ledger(demo_url) as led:
        assert [(r["position"], r["event_id"], r["hash"]) for r in rows] == [
            (e.position, e.event_id, e.hash) for e in led.history()]


def test_history_follow_prints_what_is_there_and_stops_at_its_timeout(demo_url: str) -> None:
    started = time.monotonic()
    result = ok(invoke("--db", demo_url, "history", "--follow", "--nl", "--timeout", "0.5"))
    assert [json.loads(line)["position"] for line in result.stdout.splitlines()] == list(range(1, EVENTS_PER_RUN + 1))
    assert time.monotonic() - started < 10


def _wait_for(lines: queue.Queue[str], wanted: Callable[[dict[str, Any]], bool], deadline: float) -> dict[str, Any]:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the follower did not print the expected event in time")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        row = json.loads(line)
        if wanted(row):
            return row


def test_history_follow_in_a_real_process_sees_an_event_another_process_appends(demo_url: str) -> None:
    args = [sys.executable, "-m", "ledger", "--db", demo_url, "history", "--follow", "--nl", "--timeout", "20"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_environ()) as proc:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 15
            _wait_for(lines, lambda row: row["position"] == EVENTS_PER_RUN, deadline)  # up, and has printed the log
            with Ledger(demo_url) as led:  # this test's process is the other writer
                session_id = led.list_sessions().items[0].session_id
                led.set_metadata(session_id, "note", "appended while followed", event_id="late-1")
            row = _wait_for(lines, lambda row: row["event_id"] == "late-1", deadline)
            assert (row["position"], row["session_id"], row["type"]) == (EVENTS_PER_RUN + 1, session_id, "metadata_set")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            reader.join(timeout=10)
        assert proc.stderr is not None
        errors = proc.stderr.read()
        assert "Traceback" not in errors
        no_password(errors)


# -- verify and digest -----------------------------------------------------------------------------------


def test_verify_and_digest_prove_the_chain(demo_url: str, tmp_path: Path) -> None:
    with Ledger(demo_url) as led:
        head = led.digest()
    verified = ok(invoke("--db", demo_url, "verify")).stdout
    assert verified.startswith(f"ok: {EVENTS_PER_RUN} events verified; head {EVENTS_PER_RUN} {head.hash}")
    assert Digest.from_json(ok(invoke("--db", demo_url, "digest")).stdout) == head
    saved = tmp_path / "digest.json"
    ok(invoke("--db", demo_url, "digest", "--out", str(saved)))
    assert Digest.from_json(saved.read_text()) == head
    against = ok(invoke("--db", demo_url, "verify", "--digest", str(saved))).stdout
    assert f"matches the digest at position {EVENTS_PER_RUN}" in against


def test_verify_exits_1_at_the_first_bad_position(demo_url: str) -> None:
    with Ledger(demo_url) as led, raw_sql(led, write=True) as raw:
        raw.execute("UPDATE events SET data = '{}' WHERE position = 7")
    bad = invoke("--db", demo_url, "verify")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("FAILED at position 7")
    no_password(bad.output, bad.stderr)


def test_verify_as_a_real_process(demo_url: str) -> None:
    proc = run("--db", demo_url, "verify")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok: {EVENTS_PER_RUN} events verified")
    no_password(proc.stdout, proc.stderr)


def test_the_url_can_come_from_ledger_path_in_a_real_process(demo_url: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "ledger", "sessions", "--json"], capture_output=True, text=True,
                          timeout=30, env={**clean_environ(), "LEDGER_PATH": demo_url})
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["items"]) == 4
    no_password(proc.stdout, proc.stderr)


# -- export and import -------------------------------------------------------------------------------------


def test_export_and_import_round_trip_between_urls_and_into_a_file(
    demo_url: str, new_url: Callable[[], str], tmp_path: Path
) -> None:
    out = tmp_path / "all.jsonl"
    assert ok(invoke("--db", demo_url, "export", str(out))).stdout.startswith(f"exported {EVENTS_PER_RUN} events to")
    with Ledger(demo_url) as source:
        head = source.digest()
        timeline = [(e.position, e.event_id, e.recorded_at, e.payload, e.hash) for e in source.history()]
    copy = new_url()
    imported = ok(invoke("--db", copy, "import", str(out))).stdout
    assert imported.startswith(f"read {EVENTS_PER_RUN}, imported {EVENTS_PER_RUN}, already present 0;")
    assert f"head {head.position} {head.hash}" in imported
    again = ok(invoke("--db", copy, "import", str(out))).stdout
    assert again.startswith(f"read {EVENTS_PER_RUN}, imported 0, already present {EVENTS_PER_RUN};")
    assert Digest.from_json(ok(invoke("--db", copy, "digest")).stdout) == head
    with Ledger(copy) as led:
        assert [(e.position, e.event_id, e.recorded_at, e.payload, e.hash) for e in led.history()] == timeline
    # And on to SQLite (law 7, through the CLI): the same chain head.
    file = tmp_path / "copy.db"
    ok(invoke("--db", str(file), "import", str(out)))
    assert Digest.from_json(ok(invoke("--db", str(file), "digest")).stdout) == head


def test_export_of_one_session_as_a_sessions_dir(demo_url: str, tmp_path: Path) -> None:
    with Ledger(demo_url) as led:
        coder = next(s for s in led.list_sessions().items if s.metadata.get("agent_role") == "coder" and not s.parent_id)
        conversation = [m.content for m in led.messages(coder.session_id)]
    ok(invoke("--db", demo_url, "export", "--format", "sessions-dir", "--session", coder.session_id, str(tmp_path / "d")))
    lines = (tmp_path / "d" / coder.session_id / "conversation.jsonl").read_text().splitlines()
    assert [json.loads(line)["content"] for line in lines] == conversation


# -- the rest of the commands, and errors -------------------------------------------------------------------


def test_every_other_command_works_on_the_url_without_showing_the_password(demo_url: str, tmp_path: Path) -> None:
    with Ledger(demo_url) as led:
        reviewer = next(s.session_id for s in led.list_sessions().items if s.status == "failed")
    for args in (["stats"], ["stats", reviewer], ["usage", "--by", "model"], ["search", "timeout"], ["rebuild"],
                 ["init"], ["gc", "--idle", "1e6"], ["backup", str(tmp_path / "backup.db")],
                 ["replay", "--until", "5", str(tmp_path / "cut.db")]):
        ok(invoke("--db", demo_url, *args))
    hits = json.loads(ok(invoke("--db", demo_url, "search", "timeout", "--json")).stdout)
    assert reviewer in {h["session_id"] for h in hits}
    with Ledger(tmp_path / "backup.db") as backup, Ledger(demo_url) as led:
        assert backup.digest() == led.digest()
    with Ledger(tmp_path / "cut.db") as cut:
        assert cut.last_position == 5 and cut.verify().ok
    purged = ok(invoke("--db", demo_url, "purge", reviewer, "--reason", "test"))
    no_password(purged.output)
    with Ledger(demo_url) as led:
        assert led.get_session(reviewer).status == "purged" and led.verify().ok


def test_a_missing_session_is_one_error_line_without_the_password(demo_url: str) -> None:
    result = invoke("--db", demo_url, "show", "nobody")
    assert_one_error_line(result, "nobody", codes=(1,))
    no_password(result.output, result.stderr)


def test_a_url_without_a_ledger_is_one_error_line_without_the_password_until_init(url: str) -> None:
    for command in (["sessions"], ["verify"], ["digest"], ["history"]):
        result = invoke("--db", url, *command)
        assert_one_error_line(result, "no ledger at", "init", codes=(1,))
        assert result.stdout == ""
        no_password(result.output, result.stderr)
    ok(invoke("--db", url, "init"))
    assert ok(invoke("--db", url, "sessions")).stdout == "(nothing)\n"


def test_a_wrong_password_or_an_unreachable_server_is_one_error_line_without_any_password(
    postgres: PostgresServer, url: str
) -> None:
    wrong = url.replace(f":{PASSWORD}@", f":{WRONG}@", 1)
    unreachable = url.replace(f":{postgres.port}/", ":1/", 1)
    for bad in (wrong, unreachable):
        result = invoke("--db", bad, "verify")
        assert_one_error_line(result, "127.0.0.1", codes=(1,))  # a ledger that cannot be opened: a failure
        no_password(result.output, result.stderr)
        proc = run("--db", bad, "sessions")
        assert proc.returncode == 1 and proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error:"), proc.stderr
        no_password(proc.stdout, proc.stderr)
