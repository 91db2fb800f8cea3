"""What the listings print: tables that fit the terminal, one time format per kind of output, transcripts
that wrap, streams in flat memory, and formats programs can rely on."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.output import fit
from tests.cli_helpers import invoke

TABLE_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b")
JSON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LONG = "The payment mock resolves after the two second timeout under load, " * 12


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    moments = iter(datetime(2026, 11, 30, 14, 3, 7, tzinfo=timezone.utc) + timedelta(seconds=i) for i in range(1000))
    with Ledger(path, clock=lambda: next(moments)) as led:
        for n in range(3):
            sid = f"session-with-a-rather-long-identifier-{n}"
            led.create_session(sid, user_id="alice" if n else None, purpose=LONG, tags=["bug-fix", "ci", "flaky"],
                               metadata={"note": LONG})
            led.add_message(sid, "user", LONG, model="gpt-4.1", tokens={"input": 10, "output": 2})
            led.link_invocation(sid, f"i{n}", "code_search", duration_ms=12.5, cost=0.01)
            led.add_message(sid, "tool", "found it\n\nsecond paragraph", tool_name="code_search")
    return path


LISTINGS = [["sessions"], ["history"], ["usage"], ["usage", "--by", "user"], ["stats"], ["search", "payment"],
            ["show", "session-with-a-rather-long-identifier-1"], ["stats", "session-with-a-rather-long-identifier-1"]]


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
@pytest.mark.parametrize("columns", [None, "60", "140"])
def test_tables_fit_the_terminal_and_are_100_wide_when_piped(db: Path, args: list[str], columns: str | None) -> None:
    result = invoke("--db", str(db), *args, env={"COLUMNS": columns} if columns else None)
    assert result.exit_code == 0, result.output
    room = int(columns or 100)
    lines = result.stdout.splitlines()
    assert lines and max(map(len, lines)) <= max(room, _unshrinkable(lines)), result.stdout


def _unshrinkable(lines: list[str]) -> int:
    # Ids, times and numbers are never cut: a table narrower than those is as wide as they need.
    return len(lines[1]) if len(lines) > 1 and set(lines[1]) <= {"-", " "} else 0


def test_ids_times_and_numbers_are_never_cut_free_text_is(db: Path) -> None:
    out = invoke("--db", str(db), "sessions", env={"COLUMNS": "100"}).stdout
    assert "session-with-a-rather-long-identifier-0" in out and "2026-11-30 14:03:07" in out
    assert "…" in out  # the tags gave way


def test_tables_show_times_to_the_second_in_utc_and_json_csv_and_nl_in_iso_8601_with_z(db: Path) -> None:
    table = invoke("--db", str(db), "history", "--limit", "1").stdout
    assert TABLE_TIME.search(table).group(0) == "2026-11-30 14:03:07"  # type: ignore[union-attr]
    as_json = json.loads(invoke("--db", str(db), "history", "--limit", "1", "--json").stdout)
    assert as_json[0]["recorded_at"] == "2026-11-30T14:03:07Z"
    as_nl = json.loads(invoke("--db", str(db), "sessions", "--nl").stdout.splitlines()[0])
    assert JSON_TIME.match(as_nl["created_at"]) and JSON_TIME.match(as_nl["updated_at"])
    rows = list(csv.DictReader(io.StringIO(invoke("--db", str(db), "sessions", "--csv").stdout)))
    assert all(JSON_TIME.match(r["created_at"]) for r in rows)


def test_tables_use_short_headers(db: Path) -> None:
    header = invoke("--db", str(db), "sessions").stdout.splitlines()[0].split()
    assert header[:3] == ["session", "status", "user"] and "msgs" in header and "calls" in header


def test_messages_are_a_transcript_that_wraps_every_word_and_keeps_paragraphs(db: Path) -> None:
    out = invoke("--db", str(db), "messages", "session-with-a-rather-long-identifier-0",
                 env={"COLUMNS": "72"}).stdout
    lines = out.splitlines()
    assert lines[0] == "#2 · user · model gpt-4.1 · 2026-11-30 14:03:08"
    assert max(map(len, lines)) <= 72
    body = " ".join(line.strip() for line in lines[1:lines.index("")])
    assert body == LONG.strip()  # wrapped, not cut
    assert "#4 · tool code_search · 2026-11-30 14:03:10" in lines
    assert lines[-3:] == ["    found it", "", "    second paragraph"]


def test_json_and_csv_together_is_a_usage_error(db: Path) -> None:
    result = invoke("--db", str(db), "sessions", "--json", "--csv")
    assert result.exit_code == 2 and "--json and --csv cannot go together" in result.stderr


def test_an_empty_result_still_prints_the_csv_header_and_an_empty_json_list(db: Path) -> None:
    csv_out = invoke("--db", str(db), "sessions", "--user", "nobody", "--csv").stdout
    assert csv_out.splitlines() == [csv_out.splitlines()[0]] and csv_out.startswith("session_id,status,")
    assert invoke("--db", str(db), "history", "--after", "999", "--csv").stdout == (
        "position,recorded_at,session_id,version,type,event_id,hash,payload\n"
    )
    assert json.loads(invoke("--db", str(db), "search", "zebra", "--json").stdout) == []
    assert invoke("--db", str(db), "search", "zebra", "--nl").stdout == ""
    assert invoke("--db", str(db), "search", "zebra").stdout == "(nothing)\n"


@pytest.mark.parametrize("args", [["sessions"], ["history"], ["usage"], ["search", "payment"], ["stats"],
                                  ["messages", "session-with-a-rather-long-identifier-0"]], ids=" ".join)
def test_every_listing_prints_newline_delimited_json(db: Path, args: list[str]) -> None:
    lines = invoke("--db", str(db), *args, "--nl").stdout.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)


def test_the_sessions_cursor_is_inside_the_json_output(db: Path) -> None:
    first = json.loads(invoke("--db", str(db), "sessions", "--json", "--limit", "2").stdout)
    assert len(first["items"]) == 2 and first["cursor"]
    rest = json.loads(invoke("--db", str(db), "sessions", "--json", "--limit", "2", "--cursor", first["cursor"]).stdout)
    assert len(rest["items"]) == 1 and rest["cursor"] is None


def test_history_limit_and_tail(db: Path) -> None:
    def positions(*args: str) -> list[int]:
        return [json.loads(line)["position"] for line in invoke("--db", str(db), "history", *args, "--nl").stdout.splitlines()]

    assert positions("--limit", "3") == [1, 2, 3]
    assert positions("--tail", "2") == [11, 12]
    assert positions("--tail", "100") == list(range(1, 13))
    assert positions("session-with-a-rather-long-identifier-1", "--tail", "2") == [7, 8]
    assert positions("session-with-a-rather-long-identifier-1", "--tail", "3", "--limit", "1") == [6]


def test_a_dash_means_standard_output_and_import_reads_standard_input(db: Path, tmp_path: Path) -> None:
    exported = invoke("--db", str(db), "export", "-")
    assert exported.exit_code == 0 and exported.stdout.count("\n") == 14  # a header, 12 events, an end line
    assert "exported 12 events to -" in exported.stderr
    digest = invoke("--db", str(db), "digest", "--out", "-")
    assert json.loads(digest.stdout)["position"] == 12
    from click.testing import CliRunner

    from ledger.cli import main

    copy = tmp_path / "copy.db"
    imported = CliRunner().invoke(main, ["--db", str(copy), "import", "-"], input=exported.stdout)
    assert imported.exit_code == 0 and "imported 12" in imported.stdout


def test_fit_gives_way_from_the_widest_column_and_keeps_floors() -> None:
    assert fit([10, 40, 30], [10, 6, 6], 100) == [10, 40, 30]
    assert fit([10, 40, 30], [10, 6, 6], 50) == [10, 18, 18]
    assert fit([10, 40, 30], [10, 40, 30], 50) == [10, 40, 30]  # nothing may give way: as wide as it needs


def _history_peak_kib(db: Path) -> int:
    # The peak RSS of one ``ledger history`` run that writes to /dev/null, measured from a parent process.
    code = (
        "import resource, subprocess, sys\n"
        f"subprocess.run([sys.executable, '-m', 'ledger', '--db', {str(db)!r}, 'history', '--nl'],"
        " stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                              timeout=300).stdout)


def _events(path: Path, count: int) -> None:
    with Ledger(path) as led:
        led.create_session("s")
        for start in range(1, count, 1000):
            with led.batch():
                for i in range(start, min(start + 1000, count)):
                    led.add_message("s", "user", f"message {i} " + "x" * 300)


def test_history_streams_in_flat_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    _events(small, 4_000)
    _events(large, 40_000)
    # Ten times the events (12 MB more of them): the peak stays within a few MB of the small run's.
    assert _history_peak_kib(large) < _history_peak_kib(small) + 8_000


def test_search_help_documents_the_query_syntax_line_by_line() -> None:
    out = invoke("search", "--help").stdout
    for line in ('"disk full"        the exact phrase', "error OR warning", "error NOT disk", "words starting with",
                 "a higher rank is a better match"):
        assert line in out


def test_search_takes_or_phrases_not_and_prefixes(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with Ledger(db) as led:
        led.create_session("s")
        for text in ("tick tock", "the tests passed", "deployment failed", "tick passed"):
            led.add_message("s", "user", text)

    def found(query: str) -> list[int]:
        result = invoke("--db", str(db), "search", query, "--nl")
        assert result.exit_code == 0, result.output
        return sorted(json.loads(line)["version"] for line in result.stdout.splitlines())

    assert found("tick OR passed") == [2, 3, 5]
    assert found('"tests passed"') == [3]
    assert found("tick NOT passed") == [2]
    assert found("fail*") == [4]
    bad = invoke("--db", str(db), "search", '"unclosed')
    assert bad.exit_code == 2 and bad.stderr.startswith("error:") and bad.stderr.count("\n") == 1
