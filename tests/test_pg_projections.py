"""The read side on PostgreSQL answers as it does on SQLite: one scripted history, every read compared.

The same commands, with the same clock and ids, run against a SQLite file and a PostgreSQL schema; the logs
must then be identical (same digest), and so must everything the public API reads from the projections:
listings with every filter and order (page by page, cursors included), the conversation (NUL and all),
statistics, usage, the analytic views, the per-session export. Search is PostgreSQL's own full-text search,
so ranks and snippets may differ in value, but the hits must be the same messages.

The server is the test session's own (the ``postgres`` fixture, which sets ``LEDGER_TEST_PG_URL``); these tests
never skip: a server that cannot start is a failure, never mistaken for a pass.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from ledger import ANY, Ledger
from projections.queries import ORDERS
from tests.conftest import Clock
from tests.pg_server import PostgresServer

PG_ENV = "LEDGER_TEST_PG_URL"
START = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
VIEWS = ("activity", "usage_by_tool", "usage_by_user", "usage_by_model", "usage_by_day", "usage_by_status")
TABLES = {  # the read tables and a total order of their rows
    "sessions": "session_id",
    "session_tags": "session_id, tag",
    "session_metadata": "session_id, key",
    "session_data": "session_id, key",
    "session_segments": "session_id, seq",
    "messages": "position",
    "invocations": "position",
}


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh schema in the test server's database, dropped afterwards."""
    base = os.environ[PG_ENV]
    schema = f"pgproj_{uuid.uuid4().hex[:12]}"
    yield f"{base}?schema={schema}"
    with contextlib.suppress(psycopg.Error), psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _ids() -> Callable[[], str]:
    counter = iter(range(1, 10**6))
    return lambda: f"gen-{next(counter):04d}"


def _salts() -> Callable[[], bytes]:
    """The same payload salts on both backends, so the same commands give the same chain."""
    counter = itertools.count(1)
    return lambda: next(counter).to_bytes(16, "big")


@contextlib.contextmanager
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[Ledger, Ledger]]:
    """A SQLite and a PostgreSQL ledger with the same clock and id source."""
    with (
        Ledger(str(tmp_path / "ledger.db"), clock=Clock(START), new_id=_ids(), new_salt=_salts()) as sq,
        Ledger(pg_url, clock=Clock(START), new_id=_ids(), new_salt=_salts()) as pg,
    ):
        yield sq, pg


def at(minutes: float) -> datetime:
    """The clock's reading after ``minutes`` (it moves 1 ms per reading, so only early readings are < 1 min)."""
    return START + timedelta(minutes=minutes)


# -- the history ------------------------------------------------------------------------------------------------

LONG = " ".join("needle" if i == 100 else f"w{i}" for i in range(200))
TEXTS = [
    "how do I fix the failing build",
    "the build fails because of a missing dependency",
    "Kubernetes Pod CrashLoopBackOff on deploy",
    "Привет, мир! Grüße aus MÜNCHEN.",
    "東京 タワー は 高い",
    "launch 🚀 the rocket",
    "cats AND dogs, cats OR dogs, NOT cats",
    "edit config.yaml and visit example.com, version 1.2.3 of foo_bar",
    "error error error",
    "one error among many other words in a fairly long sentence about little",
    'quotes \' " and \\ backslash; -- not SQL; %s %(x)s ? $1',
    LONG,
]


def history(led: Ledger) -> dict[str, Any]:
    """Every kind of command, in an order that leaves restores, forks, retractions, clears and a purge behind."""
    out: dict[str, Any] = {}
    led.create_session("alpha", user_id="alice", purpose="fix the build", tags=["x", "y", "z"],
                       metadata={"team": "red", "n": 1, "nested": {"b": 1, "a": [1, 2.5, None]}})
    led.create_session("beta", user_id="bob", tags=["y"], metadata={"is_starred": True, "team": "blue"})
    led.create_session("gamma", user_id="alice", metadata={"secret": "yes"})
    led.create_session("delta", user_id="carol", purpose="Ünïcödé ✓ purpose", tags=["ü", "Z", "a"])
    out["generated"] = led.create_session(user_id="dave", tags=["auto"]).session_id
    led.create_session("epsilon", user_id="erin", tags=["x"])
    led.add_message("epsilon", "user", "an early build, completed at once and purged later by retention")
    led.link_invocation("epsilon", "inv-e", "make", cost=0.5, duration_ms=3.0)
    led.complete_session("epsilon")
    for i, text in enumerate(TEXTS):
        led.add_message("alpha" if i % 2 == 0 else "beta", ("user", "assistant", "tool", "system")[i // 2 % 4], text,
                        tool_name="pytest" if i // 2 % 4 == 2 else None, model="gpt-x" if i % 3 == 0 else "claude-y",
                        tokens={"input": i * 7, "output": i * 3} if i % 5 else None)
    led.add_message("alpha", "tool", "binary\x00output\x00 with NUL: build log", tool_name="make")
    led.add_message("delta", "user", "\x00")
    led.add_message("gamma", "user", "the password is hunter2, the build is secret")
    tools = ["make", 'to"ol', "naïve\ttool", "pytest", "kubectl"]
    for i in range(30):
        sid = ("alpha", "beta", "gamma", "delta")[i % 4]
        led.link_invocation(sid, f"inv-{i}", tools[i % len(tools)], duration_ms=(i * 37 % 11) * 13.7 if i % 6 else None,
                            tokens={"input": i, "output": 2 * i} if i % 2 else None,
                            cost=(0.1, 0.2, 0.3, 0.01, 1e-9)[i % 5] if i % 7 else None,
                            status=("ok", "error", "timeout")[i % 3], artifact=f"s3://bucket/{i}" if i % 4 == 1 else None)
    led.set_metadata("alpha", "team", "blue")  # a replaced key moves last
    led.update_metadata("alpha", {"z-last": {"k": "v"}, "a-first": [3, 2, 1], "n": 2.0})
    led.remove_metadata("alpha", "nested")
    led.set_metadata("beta", "is_starred", False)
    led.set_metadata("delta", "is_starred", True)
    led.set_data("alpha", "plan", {"steps": ["a", "b"], "done": False})
    led.set_data("alpha", "tmp", 1)
    led.delete_data("alpha", "tmp")
    led.set_data("beta", "x", "y")
    led.clear_data("beta")
    led.add_tags("alpha", ["w", "x"])  # x is there already: it keeps its place
    led.remove_tags("alpha", ["y"])
    led.add_tags("alpha", ["y"])  # back, now last
    led.search_messages("build")  # levels the lazy search index here: later messages are indexed at the next search
    assistant = next(m for m in led.messages("alpha") if m.role == "assistant")
    led.retract_message("alpha", version=assistant.version)
    led.clear_conversation("beta")
    led.add_message("beta", "user", "a fresh start after the clear: rebuild the parser")
    restore_to = led.get_session("alpha").version - 3
    led.restore("alpha", version=restore_to)
    led.add_message("alpha", "assistant", "restored, retrying the failing build", model="gpt-x")
    out["fork"] = led.fork("alpha", version=restore_to + 1, new_session_id="alpha-fork").session_id
    led.add_message("alpha-fork", "user", "the fork goes its own way: deploy")
    inherited = led.messages("alpha-fork")[0]
    led.retract_message("alpha-fork", position=inherited.position)
    led.link_invocation("alpha-fork", "inv-fork", "make", duration_ms=1.5, cost=0.25)
    led.fork("alpha-fork", new_session_id="alpha-fork-2")
    led.add_message("alpha", "user", "indexed by the purge, not by a search: zebra")
    led.purge_session("gamma", reason="gdpr", by="dpo")
    out["purged_completed"] = led.purge_completed(timedelta(milliseconds=1))  # epsilon, the only one ended yet
    led.complete_session("beta", reason="done")
    led.complete_session("delta", status="failed", reason="it broke")
    led.complete_session(out["generated"], status="abandoned")
    out["cleanup"] = led.cleanup(timedelta(days=3650))  # none idle that long
    return out


# -- what the public API reads ----------------------------------------------------------------------------------


def _b(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _pages(led: Ledger, **filters: Any) -> list[Any]:
    """Every page of a listing, two sessions a page, with the cursors."""
    pages = []
    cursor = None
    while True:
        page = led.list_sessions(limit=2, cursor=cursor, **filters)
        pages.append(_b(page))
        cursor = page.cursor
        if cursor is None:
            return pages


FILTERS: list[dict[str, Any]] = [
    {},
    {"user_id": "alice"},
    {"user_id": "nobody"},
    {"status": "active"},
    {"status": ["completed", "failed", "purged"]},
    {"tags": ["x", "y"]},
    {"any_tags": ["z", "auto", "ü"]},
    {"metadata": {"team": "blue"}},
    {"metadata": {"is_starred": True}},
    {"metadata": {"a-first": [3, 2, 1], "z-last": {"k": "v"}}},
    {"metadata": {"z-last": ANY}},
    {"metadata": {"n": 2}},  # 2.0 was stored: canonical JSON "2.0" is not "2"
    {"created_after": at(0) + timedelta(milliseconds=2)},
    {"created_before": at(0) + timedelta(milliseconds=3)},
    {"updated_after": at(0) + timedelta(milliseconds=60)},
    {"text": "build"},
    {"text": "failing fix"},
    {"text": "deploy"},
    {"text": "and"},
    {"text": "cats OR dogs"},
    {"text": "hunter2"},
    {"text": "zebra"},
    {"text": "мир"},
    {"parent_id": "alpha"},
    {"parent_id": "alpha-fork"},
    {"user_id": "alice", "text": "build", "status": "active", "tags": ["x"]},
    # NUL can be in a filter, never in stored text: nothing matches (PostgreSQL text cannot even hold it)
    {"user_id": "ali\x00ce"},
    {"tags": ["x\x00"]},
    {"any_tags": ["x\x00", "y"]},
    {"metadata": {"te\x00am": ANY}},
    {"metadata": {"team": "bl\x00ue"}},
]


def reads(led: Ledger, history_out: dict[str, Any]) -> dict[str, Any]:
    """What every read of the public API answers (search aside), as plain data."""
    out: dict[str, Any] = {"history": history_out, "digest": _b(led.digest())}
    sessions = [s.session_id for s in led.list_sessions(limit=100)]
    out["sessions"] = sessions
    for sid in sessions:
        out[f"get_session {sid}"] = _b(led.get_session(sid))
        out[f"messages {sid}"] = _b(led.messages(sid))
        out[f"messages {sid} page"] = _b(led.messages(sid, limit=2, offset=1))
        out[f"statistics {sid}"] = _b(led.statistics(sid))
        state = led.get_session(sid)
        if state.status == "purged":  # its earlier states are gone
            continue
        for v in sorted({1, max(1, state.version // 2), max(1, state.version - 1)}):
            out[f"messages {sid} v{v}"] = _b(led.messages(sid, version=v))
            out[f"statistics {sid} v{v}"] = _b(led.statistics(sid, version=v))
    for i, filters in enumerate(FILTERS):
        out[f"list {i} {filters!r}"] = _pages(led, **filters)
    for order in ORDERS:
        for descending in (True, False):
            out[f"order {order} {descending}"] = _pages(led, order_by=order, descending=descending)
    out["by metadata"] = _b(led.find_sessions_by_metadata({"team": "blue"}))
    out["by tag"] = _b(led.sessions_by_tag("y", order_by="session_id", descending=False))
    out["starred"] = _b(led.starred_sessions())
    for by in ("tool", "user", "model", "day", "status"):
        out[f"usage {by}"] = led.usage(by=by)
        out[f"usage {by} window"] = led.usage(by=by, since=at(0) + timedelta(milliseconds=20),
                                              until=at(0) + timedelta(milliseconds=50))
    return out


SEARCHES = [
    "build", "failing", "fail", "fails", "tested", "deploy", "kubernetes crashloopbackoff", "POD", "мир", "ПРИВЕТ",
    "münchen grüße", "東京", "rocket", "cats AND dogs", "and", "or", '"NOT"', "cat*", '"cats dogs"', "(cats)",
    "error", "needle", "config", "yaml", "example", "foo", "bar", "1", "2", "3", "hunter2", "secret", "zebra",
    "output", "NUL", "binary", "s", "backslash", "SQL", "x", "quotes", "restored", "retrying", "parser", "fork",
]


def _hits(led: Ledger, query: str, **options: Any) -> list[tuple[str, int, int, str]]:
    return [(h.session_id, h.position, h.version, h.role) for h in led.search_messages(query, limit=1000, **options)]


def test_every_read_answers_the_same_on_postgresql_as_on_sqlite(tmp_path: Path, pg_url: str) -> None:
    with pair(tmp_path, pg_url) as (sq, pg):
        done = history(sq), history(pg)
        assert done[0] == done[1]
        expected, found = reads(sq, done[0]), reads(pg, done[1])
        assert expected["digest"] == found["digest"]  # the same log, so any difference below is the read side's
        assert list(expected) == list(found)
        for key in expected:
            assert found[key] == expected[key], key


def test_the_nul_in_a_message_comes_back_exactly(tmp_path: Path, pg_url: str) -> None:
    with pair(tmp_path, pg_url) as (sq, pg):
        for led in (sq, pg):
            led.create_session("s")
            for text in ("\x00", "a\x00b", "\x00\x00 two \\u0000 \x00", "plain", '"\x00"\n'):
                led.add_message("s", "user", text)
        assert [m.content for m in pg.messages("s")] == [m.content for m in sq.messages("s")]
        assert pg.messages("s")[2].content == "\x00\x00 two \\u0000 \x00"
        for led, out in ((sq, tmp_path / "sq"), (pg, tmp_path / "pg")):
            led.export(out, format="sessions-dir")
        for name in ("conversation.jsonl", "invocations.json", "metadata.json", "data.json"):
            assert (tmp_path / "pg" / "s" / name).read_bytes() == (tmp_path / "sq" / "s" / name).read_bytes(), name
        assert {h.version for h in pg.search_messages("two")} == {h.version for h in sq.search_messages("two")} == {4}


def test_the_per_session_export_is_the_same(tmp_path: Path, pg_url: str) -> None:
    with pair(tmp_path, pg_url) as (sq, pg):
        history(sq), history(pg)
        for led, out in ((sq, tmp_path / "sq"), (pg, tmp_path / "pg")):
            led.export(out, format="sessions-dir")
        files = sorted(p.relative_to(tmp_path / "sq") for p in (tmp_path / "sq").rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(tmp_path / "pg") for p in (tmp_path / "pg").rglob("*") if p.is_file())
        for name in files:
            assert (tmp_path / "pg" / name).read_bytes() == (tmp_path / "sq" / name).read_bytes(), name


def test_search_finds_the_same_messages(tmp_path: Path, pg_url: str) -> None:
    with pair(tmp_path, pg_url) as (sq, pg):
        history(sq), history(pg)
        for query in SEARCHES:
            assert sorted(_hits(pg, query)) == sorted(_hits(sq, query)), query
        for options in ({"role": "user"}, {"session_id": "alpha"}, {"session_id": "alpha-fork", "role": "user"},
                        {"session_id": "alpha-fork-2"}, {"session_id": "beta"}):
            for query in ("build", "deploy", "the", "error", "needle"):
                assert sorted(_hits(pg, query, **options)) == sorted(_hits(sq, query, **options)), (query, options)
        assert _hits(pg, "hunter2") == _hits(sq, "hunter2") == []  # purged


def test_search_ranks_and_highlights_like_sqlite_in_the_plain_cases(pg_url: str) -> None:
    with Ledger(pg_url, clock=Clock(START)) as led:
        led.create_session("s")
        for text in ("one error among many other words in a fairly long sentence about little", "error error error",
                     "no match here", "an error and some words", "how do I fix the failing build",
                     "the build fails because the build is old", LONG):
            led.add_message("s", "user", text)
        hits = led.search_messages("error")
        assert [h.version for h in hits] == [3, 5, 2]  # more matches, then shorter, first
        assert [h.rank for h in hits] == sorted((h.rank for h in hits), reverse=True) and hits[0].rank > hits[-1].rank
        assert {h.snippet for h in led.search_messages("failing")} == {
            "how do I fix the [failing] build", "the build [fails] because the build is old"
        }
        assert [h.snippet for h in led.search_messages("build old")] == ["the [build] fails because the [build] is [old]"]
        (long,) = led.search_messages("needle")
        assert "[needle]" in long.snippet and long.snippet.startswith("…") and long.snippet.endswith("…")
        assert len(long.snippet) < 200


def _sqlite_rows(path: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        cursor = conn.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()


def _pg_rows(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    base, _, query = url.partition("?")
    schema = query.rpartition("schema=")[2]
    with psycopg.connect(base) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cursor = conn.execute(sql)
        return [d[0] for d in cursor.description or ()], cursor.fetchall()


def test_the_tables_and_views_hold_the_same_rows_and_rebuild_gives_them_again(tmp_path: Path, pg_url: str) -> None:
    with pair(tmp_path, pg_url) as (sq, pg):
        history(sq), history(pg)
        before = {name: _pg_rows(pg_url, f"SELECT * FROM {name} ORDER BY {order}") for name, order in TABLES.items()}
        pg.rebuild()
        assert {name: _pg_rows(pg_url, f"SELECT * FROM {name} ORDER BY {order}") for name, order in TABLES.items()} == before
    db = tmp_path / "ledger.db"
    for name, order in TABLES.items():
        columns, rows = _sqlite_rows(db, f"SELECT * FROM {name} ORDER BY {order}")
        pg_columns, pg_rows = _pg_rows(pg_url, f"SELECT {', '.join(columns)} FROM {name} ORDER BY {order}")
        if name == "messages":  # the text column holds U+FFFD for NUL on PostgreSQL (the exact text is beside it)
            content = columns.index("content")
            rows = [(*r[:content], r[content].replace("\x00", "\ufffd"), *r[content + 1:]) for r in rows]
        assert set(pg_columns) - set(columns) == set() and pg_rows == rows, name
    for name, column in (("session_tags", "tag"), ("session_metadata", "key")):  # insertion order: SQLite's rowid
        sql = f"SELECT session_id, {column} FROM {name} ORDER BY rowid"
        assert _pg_rows(pg_url, sql)[1] == _sqlite_rows(db, sql)[1], name
    for view in VIEWS:
        key = view.removeprefix("usage_by_")  # the group's column; its keyless group (NULL) last on both
        order = "session_id, recorded_at, is_message, tool, cost" if view == "activity" else f"{key} IS NULL, {key}"
        columns, rows = _sqlite_rows(db, f"SELECT * FROM {view} ORDER BY {order}")
        assert _pg_rows(pg_url, f"SELECT * FROM {view} ORDER BY {order}") == (columns, rows), view


def test_purged_text_leaves_the_postgresql_search_index(pg_url: str) -> None:
    with Ledger(pg_url, clock=Clock(START)) as led:
        led.create_session("keep")
        led.create_session("gone")
        led.add_message("keep", "user", "an ordinary message")
        led.add_message("gone", "user", "my password is hunter2")
        assert [h.session_id for h in led.search_messages("hunter2")] == ["gone"]  # indexed
        led.add_message("gone", "user", "and swordfish, not yet indexed")
        led.add_message("keep", "user", "a later ordinary line, not yet indexed")
        led.purge_session("gone", reason="gdpr")
        assert led.search_messages("hunter2") == [] and led.search_messages("swordfish") == []
        assert [h.version for h in led.search_messages("later")] == [3]
        positions = {p for (p,) in _pg_rows(pg_url, "SELECT position FROM messages_fts")[1]}
        assert positions == {p for (p,) in _pg_rows(pg_url, "SELECT position FROM messages")[1]}


def test_retention_takes_sessions_that_ended_at_the_same_instant_in_the_same_order(tmp_path: Path, pg_url: str) -> None:
    now = [START]
    results = []
    for path in (str(tmp_path / "ties.db"), pg_url):
        now[0] = START  # a clock that stands still: every time below is the same instant
        with Ledger(path, clock=lambda: now[0], new_id=_ids(), new_salt=_salts()) as led:
            for sid in ("m", "b", "z", "a", "k", "q", "c", "r"):
                led.create_session(sid)
            for sid, status in (("m", "completed"), ("b", "failed"), ("z", "abandoned"), ("a", "completed"),
                                ("k", "failed")):
                led.complete_session(sid, status=status)
            now[0] = START + timedelta(days=3)
            results.append((led.purge_completed(1), led.cleanup(1), led.digest()))
    assert results[0] == results[1]
    assert results[0][0] == ["z", "m", "a", "b", "k"] and results[0][1] == ["q", "c", "r"]
