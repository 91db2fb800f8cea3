"""``ledger search QUERY``: full-text search over every conversation, ranked, matches highlighted."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from ledger import Ledger
from tests.cli_helpers import assert_one_error_line, invoke, run
from tests.conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "l.db"
    with Ledger(path, clock=Clock(step_ms=60_000)) as led:
        led.create_session("alpha", user_id="alice")
        led.add_message("alpha", "user", "the zebra login fails on Safari")  # position 2
        led.add_message("alpha", "assistant", "a zebra crossing is unrelated")  # 3
        led.create_session("beta", user_id="bob")
        led.add_message("beta", "user", "zebra stripes and login cookies")  # 5
        led.add_message("beta", "tool", "nothing to see here", tool_name="grep")  # 6
    return path


def hits(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_search_prints_ranked_hits_with_the_matches_highlighted(db: Path) -> None:
    result = invoke("--db", str(db), "search", "zebra login")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["session", "pos", "ver", "role", "snippet"]  # no rank: the order shows it
    assert len(lines) == 2 + 2  # positions 2 and 5 hold both words; 3 does not
    assert sorted(line.split()[:2] for line in lines[2:]) == [["alpha", "2"], ["beta", "5"]]
    assert "[zebra]" in result.stdout and "[login]" in result.stdout


def test_search_json_holds_where_each_hit_is(db: Path) -> None:
    found = hits(invoke("--db", str(db), "search", "zebra", "--json"))
    assert {(h["session_id"], h["position"], h["role"]) for h in found} == {
        ("alpha", 2, "user"), ("alpha", 3, "assistant"), ("beta", 5, "user")}
    assert all(list(h) == ["session_id", "position", "version", "role", "rank", "snippet"] for h in found)
    ranks = [h["rank"] for h in found]
    assert ranks == sorted(ranks, reverse=True)  # higher is better, best first
    assert all("[zebra]" in h["snippet"] for h in found)


def test_search_csv_has_a_header_and_one_row_per_hit(db: Path) -> None:
    result = invoke("--db", str(db), "search", "stripes", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["session_id"], r["position"]) for r in rows] == [("beta", "5")]
    assert list(rows[0]) == ["session_id", "position", "version", "role", "rank", "snippet"]  # programs keep the rank
    assert float(rows[0]["rank"]) == hits(invoke("--db", str(db), "search", "stripes", "--json"))[0]["rank"]


def test_search_narrows_by_session_and_role_and_limits(db: Path) -> None:
    base = ["--db", str(db), "search", "zebra", "--json"]
    assert {h["session_id"] for h in hits(invoke(*base, "--session", "beta"))} == {"beta"}
    assert [h["position"] for h in hits(invoke(*base, "--role", "assistant"))] == [3]
    assert len(hits(invoke(*base, "--limit", "1"))) == 1
    assert hits(invoke("--db", str(db), "search", "giraffe", "--json")) == []


def test_search_without_hits_says_nothing(db: Path) -> None:
    result = invoke("--db", str(db), "search", "giraffe")
    assert result.exit_code == 0 and result.stdout.strip() == "(nothing)"


@pytest.mark.parametrize("where", ["before", "after"])
def test_search_takes_db_before_or_after_the_command(db: Path, where: str) -> None:
    args = ["--db", str(db), "search", "zebra", "--json"] if where == "before" else ["search", "zebra", "--json", "--db", str(db)]
    assert len(hits(invoke(*args))) == 3


def test_search_reads_ledger_path_from_the_environment(db: Path) -> None:
    assert len(hits(invoke("search", "cookies", "--json", env={"LEDGER_PATH": str(db)}))) == 1


@pytest.mark.parametrize(
    ("args", "word"),
    [(["  "], "query"), (["zebra", "--limit", "0"], "limit"), (["zebra", "--role", "robot"], "role"),
     (["zebra", "--session", "bad id!"], "session")],
)
def test_search_refuses_a_bad_argument_with_one_error_line(db: Path, args: list[str], word: str) -> None:
    assert_one_error_line(invoke("--db", str(db), "search", *args), word)


def test_search_in_a_missing_session_is_one_error_line_like_history(db: Path) -> None:
    assert_one_error_line(invoke("--db", str(db), "search", "zebra", "--session", "nobody"), "nobody", "does not exist",
                          codes=(1,))


def test_search_as_a_real_process(db: Path) -> None:
    proc = run("--db", str(db), "search", "safari", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [(h["session_id"], h["position"]) for h in json.loads(proc.stdout)] == [("alpha", 2)]
    bad = run("--db", str(db), "search", "!!!")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("error:")
