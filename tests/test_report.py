"""``ledger report`` / ``Ledger.report`` (issue 19): one self-contained HTML page whose numbers are the library's."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ledger import InvalidInput, Ledger, SessionNotFound, generate_keys
from ledger.charts import number
from tests.cli_helpers import assert_one_error_line, invoke
from tests.conftest import Clock

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("grep", "sql", "web_search")


def record(led: Ledger) -> None:
    """Three days of sessions: messages with models and tokens, invocations (some failing), forks, endings."""
    for i in range(24):
        sid = f"s{i:02d}"
        led.create_session(sid, user_id=f"user-{i % 3}")
        led.add_message(sid, "user", f"question <{i}> & more", model=None)
        led.add_message(sid, "assistant", f"answer {i}", model=("small", "large")[i % 2],
                        tokens={"input": 100 + i, "output": 20 + i, "cache_read": i, "reasoning": i % 5})
        led.link_invocation(sid, f"inv-{i}", TOOLS[i % 3], duration_ms=50.0 + 10 * i, cost=0.001 * i,
                            tokens={"input": 5, "output": 1}, status="ok" if i % 4 else "error")
        led.set_metadata(sid, "stage", i)
        if i % 6 == 0:
            led.complete_session(sid, status=("completed", "failed", "abandoned")[i // 6 % 3])
    hostile = '"><script>alert(1)</script><!--<script>&amp;'  # names are data: escaped everywhere, JSON included
    led.create_session("s-odd", user_id=hostile)
    led.add_message("s-odd", "assistant", "odd names", model=hostile)
    led.link_invocation("s-odd", "inv-odd", hostile, duration_ms=None, status="ok")
    led.fork("s01", new_session_id="s01-a")
    led.fork("s01-a", new_session_id="s01-b")
    led.add_message("s01-a", "user", "and another thing")
    led.restore("s01-a", version=2)
    led.purge_session("s23", reason="erasure request")


@pytest.fixture
def led(ledger_path: str) -> Iterator[Ledger]:
    with Ledger(ledger_path, clock=Clock(step_ms=30 * 60_000)) as ledger:  # 30 minutes an event: several days
        record(ledger)
        yield ledger


class Page(HTMLParser):
    """What a test reads back of the page: the data blob, table cells by table, cards, charts and their marks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, str] = {}
        self.charts: dict[str, int] = {}
        self.external: list[str] = []
        self._table: str | None = None
        self._chart: str | None = None
        self._cell: list[str] | None = None
        self._card: str | None = None
        self._data = False
        self.data: dict[str, Any] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href"):
            if a.get(name):
                self.external.append(f"{tag} {name}={a[name]}")
        if tag in ("link", "iframe", "object", "embed", "img"):
            self.external.append(tag)
        if tag == "table":
            self._table = a.get("data-table") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "div" and a.get("data-total"):
            self._card = a["data-total"]
        elif tag == "figure":
            self._chart = a.get("data-chart")
            self.charts[self._chart or ""] = 0
        elif "mark" in (a.get("class") or "").split() and self._chart is not None:
            self.charts[self._chart] += 1
        elif tag == "script":
            self._data = a.get("id") == "report-data" and a.get("type") == "application/json"
            if not self._data:
                self.external.append("script")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "figure":
            self._chart = None
        elif tag == "script":
            self._data = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._card is not None:
            self.cards[self._card] = data
            self._card = None
        if self._data:
            self.data = json.loads(data)


def _row(table: list[list[str]], key: str) -> list[str]:
    return next(row for row in table[1:] if row[0] == key)


def test_the_report_is_one_page_with_no_reference_to_fetch(led: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert led.report(out) == str(out)
    text = out.read_text()
    page = Page(text)
    assert page.external == []
    assert re.findall(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", text) == []
    assert set(page.charts) == {"activity", "sessions", "tokens", "cost", "lifecycle", "by_tool", "by_model",
                                "by_user", "by_status"}
    assert all(marks > 0 for marks in page.charts.values()), page.charts


def test_the_numbers_are_usages_numbers(led: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    led.report(out)
    page = Page(out.read_text())
    by_status = led.usage(by="status")
    for key in ("sessions", "messages", "invocations", "tokens_in", "tokens_out", "tokens_cache_read",
                "tokens_reasoning", "cost"):
        total = sum(row[key] for row in by_status)
        assert page.data["totals"][key] == total
        assert page.cards[key] == number(total)
    assert page.data["days"] == led.usage(by="day")
    assert len(page.data["days"]) >= 3  # the clock spreads the events over days: a chart over time
    for by in ("tool", "model", "user", "status"):
        rows = led.usage(by=by)
        assert page.data[f"by_{by}"] == rows
        for row in rows:
            cells = _row(page.tables[f"by_{by}"], str(row[by]) if row[by] is not None else "(none)")
            assert cells[1:7] == [number(row[k]) for k in ("sessions", "messages", "invocations", "tokens_in",
                                                              "tokens_out", "cost")]
    health = {row["tool"]: row for row in led.tool_health()}
    for tool in TOOLS:
        cells = _row(page.tables["by_tool"], tool)
        assert cells[7:] == [number(health[tool]["p50_ms"]), number(health[tool]["p95_ms"]),
                             f"{health[tool]['error_rate']:.1%}"]
    lifecycle = led.lifecycle()
    assert page.data["lifecycle"] == lifecycle
    assert sum(r["created"] for r in lifecycle) == 27 and sum(r["purged"] for r in lifecycle) == 1


def test_tool_health_counts_errors_and_takes_nearest_rank_percentiles(led: Ledger) -> None:
    grep = next(row for row in led.tool_health() if row["tool"] == "grep")
    durations = sorted(50.0 + 10 * i for i in range(0, 24, 3))
    assert grep["invocations"] == 8 and grep["errors"] == 2 and grep["error_rate"] == 0.25  # i = 0 and 12
    assert grep["p50_ms"] == durations[3] and grep["p95_ms"] == durations[7]
    assert next(r for r in led.usage(by="tool") if r["tool"] == "grep")["p95_duration_ms"] == grep["p95_ms"]


def test_the_integrity_line_has_the_verify_result_the_digest_and_the_latest_checkpoint(led: Ledger,
                                                                                       tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    led.report(out)
    page = Page(out.read_text())
    head = led.digest()
    assert page.data["integrity"]["ok"] is True
    assert page.data["integrity"]["head"] == {"position": head.position, "hash": head.hash}
    assert page.data["integrity"]["checkpoint"] is None
    signer, _ = generate_keys("auditor")
    led.sign_checkpoint(signer)
    led.report(out)
    checkpoint = Page(out.read_text()).data["integrity"]["checkpoint"]
    tree = led.tree_head()
    assert checkpoint["size"] == tree.size and checkpoint["root"] == tree.root_hex
    assert led.latest_checkpoint() is not None


def test_a_session_report_shows_its_timeline_lineage_conversation_and_statistics(led: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "session.html"
    led.report(out, session="s01-a")
    text = out.read_text()
    page = Page(text)
    assert page.data["session_statistics"] == json.loads(msgspec.json.encode(led.statistics("s01-a")))
    assert page.charts["timeline"] >= len(list(led.history("s01-a")))
    assert page.charts["lineage"] == 4  # s01, s01-a, its restore (a branch within it), s01-b
    assert "restored to v2" in text
    assert "and another thing" in text and "question &lt;1&gt; &amp; more" in text


def test_a_window_limits_the_activity(led: Ledger, tmp_path: Path) -> None:
    days = [row["day"] for row in led.usage(by="day")]
    since = datetime.fromisoformat(days[1]).replace(tzinfo=timezone.utc)
    out = tmp_path / "window.html"
    led.report(out, since=since, until=since + timedelta(days=1))
    page = Page(out.read_text())
    assert [row["day"] for row in page.data["days"]] == [days[1]]


def test_a_report_of_a_missing_session_or_a_bad_window_writes_nothing(led: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "nope.html"
    with pytest.raises(SessionNotFound):
        led.report(out, session="nope")
    for bad in ({"since": "yesterday"}, {"until": datetime(2026, 1, 1)}, {"session": ""}):
        with pytest.raises(InvalidInput) as caught:
            led.report(out, **bad)  # type: ignore[arg-type]
        assert caught.value.field == next(iter(bad))
    assert not out.exists()


def test_an_empty_ledger_and_a_purged_session_report_without_their_text(tmp_path: Path) -> None:
    with Ledger(tmp_path / "e.db") as led:
        assert Page(Path(led.report(tmp_path / "empty.html")).read_text()).data["totals"]["messages"] == 0
        led.create_session("a")
        led.add_message("a", "user", "a secret")
        led.purge_session("a", reason="erasure request")
        text = Path(led.report(tmp_path / "purged.html", session="a")).read_text()
    assert "a secret" not in text and "purged" in text


def test_the_command_writes_the_report_and_says_where(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with Ledger(db, clock=Clock(step_ms=3_600_000)) as ledger:
        record(ledger)
    out = tmp_path / "r.html"
    result = invoke("--db", str(db), "report", str(out), "--session", "s01")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report written to {out}"
    assert Page(out.read_text()).charts["timeline"] > 0
    missing = invoke("--db", str(db), "report", str(tmp_path / "x.html"), "--session", "nope")
    assert_one_error_line(missing, "nope", codes=(1,))
    assert invoke("--db", str(db), "report", str(tmp_path / "y.html"), "--since", "yesterday-ish").exit_code == 2


def test_make_demo_ends_by_writing_the_demo_report(tmp_path: Path) -> None:
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [shlex.split(line.strip().replace("$(BIN)/ledger", f"{sys.executable} -m ledger")) for line in recipe]
    assert commands[-1][-2:] == ["report", "demo-report.html"]
    for command in commands:
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "report written to demo-report.html"
    assert Page((tmp_path / "demo-report.html").read_text()).charts["activity"] > 0
