"""The file for SQL tools: the effective_messages and *_hex views, STRICT read tables, DuckDB, Datasette metadata."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import InvalidInput, Ledger, LedgerError
from ledger.datasette import datasette_metadata
from ledger.times import format_time
from projections import SessionsProjector
from tests.conftest import Clock, is_postgres, raw_sql

# -- effective_messages: the conversation as messages() returns it ------------------------------------------------

_COLUMNS = ("session_id, ordinal, message_session, version, position, role, content, tool_name, invocation_id, model,"
            " tokens_in, tokens_out, recorded_at")


def _expected(led: Ledger, session_id: str, origin: dict[int, str]) -> list[tuple[Any, ...]]:
    """The view's rows for a session, made from ``messages()`` (PostgreSQL text reads a NUL as U+FFFD)."""
    pg = is_postgres(led)
    return [
        (session_id, ordinal, origin[m.position], m.version, m.position, m.role,
         m.content.replace("\x00", "\ufffd") if pg else m.content, m.tool_name, m.invocation_id, m.model,
         (m.tokens or {}).get("input"), (m.tokens or {}).get("output"), format_time(m.recorded_at))
        for ordinal, m in enumerate(led.messages(session_id), 1)
    ]


def _view(led: Ledger, session_id: str) -> list[tuple[Any, ...]]:
    with raw_sql(led) as raw:
        rows = raw.execute(
            f"SELECT {_COLUMNS} FROM effective_messages WHERE session_id = ? ORDER BY ordinal", (session_id,)
        ).fetchall()
    return [tuple(row) for row in rows]


def _assert_view_is_messages(led: Ledger) -> None:
    origin = {e.position: e.session_id for e in led.history()}
    sessions = sorted({e.session_id for e in led.history()})
    for sid in sessions:
        assert _view(led, sid) == _expected(led, sid, origin), sid
    with raw_sql(led) as raw:  # and no rows for anyone else
        listed = {sid for (sid,) in raw.execute("SELECT DISTINCT session_id FROM effective_messages").fetchall()}
    assert listed <= set(sessions)


def test_effective_messages_follow_forks_restores_retractions_and_clears(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=Clock()) as led:
        led.create_session("p")
        for i in range(4):
            led.add_message("p", "user" if i % 2 == 0 else "assistant", f"p{i}", model="m", tokens={"input": i})
        led.fork("p", version=4, new_session_id="f")  # p0, p1, p2
        led.add_message("f", "tool", "f0", tool_name="grep")
        led.retract_message("f", position=led.messages("f")[0].position)  # an inherited message, hidden for f only
        led.retract_message("p")  # p3, p's own
        led.restore("p", version=3)  # p0, p1
        led.add_message("p", "user", "after restore")
        led.fork("f", new_session_id="g")
        led.clear_conversation("f")
        led.add_message("f", "user", "after clear")
        assert [m.content for m in led.messages("f")] == ["after clear"]
        assert [m.content for m in led.messages("g")] == ["p1", "p2", "f0"]
        _assert_view_is_messages(led)
        assert [row[2] for row in _view(led, "g")] == ["p", "p", "f"]  # message_session: where each was recorded
        led.rebuild()  # a rebuild makes the view anew
        _assert_view_is_messages(led)


SESSIONS = ["s0", "s1", "s2", "f1"]
sid = st.sampled_from(SESSIONS)
contents = st.one_of(st.sampled_from(["hello", "run", "a\x00b", "数据"]), st.text(max_size=6))
Command = Callable[[Ledger], Any]


def _command(name: str, *args: Any, **kwargs: Any) -> Command:
    def run(led: Ledger) -> Any:
        return getattr(led, name)(*args, **kwargs)

    run.__name__ = f"{name}{args}{kwargs}"
    return run


def _retract_at(session_id: str, index: int) -> Command:
    def run(led: Ledger) -> Any:  # an inherited message is named by position
        found = led.messages(session_id)
        return led.retract_message(session_id, position=found[index % len(found)].position) if found else None

    run.__name__ = f"retract_at({session_id!r}, {index})"
    return run


commands = st.one_of(
    st.builds(lambda s, c, r: _command("add_message", s, r, c, tokens={"input": len(c)}), sid, contents,
              st.sampled_from(["user", "assistant"])),
    st.builds(lambda s, c: _command("add_message", s, "tool", c, tool_name="t", invocation_id="i"), sid, contents),
    st.builds(lambda s, n, v: _command("fork", s, version=v, new_session_id=n), sid, sid, st.none() | st.integers(1, 8)),
    st.builds(lambda s, v: _command("restore", s, version=v), sid, st.integers(1, 8)),
    st.builds(lambda s: _command("retract_message", s), sid),
    st.builds(_retract_at, sid, st.integers(0, 5)),
    st.builds(lambda s: _command("clear_conversation", s), sid),
    st.builds(lambda s: _command("complete_session", s), sid),
    st.builds(lambda s: _command("purge_session", s, reason="r"), sid),
)


@settings(max_examples=int(os.environ.get("SQL_TOOLS_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cmds=st.lists(commands, max_size=30))
def test_effective_messages_equal_messages_for_any_history(new_ledger_path: Callable[[], str], cmds: list[Command]) -> None:
    with Ledger(new_ledger_path(), clock=Clock(), snapshot_every=3) as led:
        led.create_session("s0")
        led.add_message("s0", "user", "first")
        for cmd in cmds:
            with contextlib.suppress(LedgerError):
                cmd(led)
        _assert_view_is_messages(led)


# -- hashes as hex --------------------------------------------------------------------------------------------


def test_the_hex_views_show_each_hash_as_the_api_does(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=Clock(), snapshot_every=2) as led:
        led.create_session("s")
        for i in range(5):
            led.add_message("s", "user", f"m{i}")
        events = list(led.history())
        head = led.digest().hash
        with raw_sql(led) as raw:
            rows = raw.execute("SELECT position, session_id, version, hash FROM events_hex ORDER BY position").fetchall()
            snapshots = raw.execute("SELECT session_id, version, event_hash FROM snapshots_hex").fetchall()
    assert [tuple(r) for r in rows] == [(e.position, e.session_id, e.version, e.hash) for e in events]
    assert all(isinstance(e.hash, str) and e.hash == e.hash.lower() and len(e.hash) == 64 for e in events)
    assert rows[-1][3] == head
    by_version = {(e.session_id, e.version): e.hash for e in events}
    assert snapshots and all(by_version[(s, v)] == h for s, v, h in snapshots)


# -- STRICT read tables ----------------------------------------------------------------------------------------

STRICT = sqlite3.sqlite_version_info >= (3, 37, 0)  # older SQLite has no STRICT tables: the read tables are plain


def _strict_tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        return {name for name, sql in rows if sql.rstrip().upper().endswith("STRICT")}


def test_the_read_tables_are_strict_and_refuse_a_value_of_another_type(db_path: Path) -> None:
    with Ledger(db_path) as led:
        led.create_session("s")
        led.add_message("s", "user", "hi", tokens={"input": 1})
    if not STRICT:
        assert not _strict_tables(db_path)  # a file this SQLite can open, and one older ones can too
        return
    assert set(SessionsProjector.tables) <= _strict_tables(db_path)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="cannot store"):
            conn.execute("UPDATE messages SET tokens_in = 2.5")
        with pytest.raises(sqlite3.IntegrityError, match="cannot store"):
            conn.execute("UPDATE sessions SET message_count = 'many'")


def test_a_file_written_before_the_views_and_strict_tables_gets_them_when_opened(db_path: Path) -> None:
    with Ledger(db_path, clock=Clock()) as led:
        led.create_session("p")
        led.add_message("p", "user", "hello")
        led.fork("p", new_session_id="f")
        led.set_data("f", "k", 1)
        before = led.messages("f")
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:  # as version 2 left it
        for view in ("effective_messages", "events_hex", "snapshots_hex"):
            conn.execute(f"DROP VIEW {view}")
        conn.execute("CREATE TABLE old AS SELECT * FROM session_data")
        conn.execute("DROP TABLE session_data")
        conn.execute("ALTER TABLE old RENAME TO session_data")
        conn.execute("UPDATE projector_positions SET version = 2 WHERE name = 'sessions'")
    assert "session_data" not in _strict_tables(db_path)
    with Ledger(db_path) as led:
        assert led.messages("f") == before and led.get_data("f") == {"k": 1}
        _assert_view_is_messages(led)
    assert set(SessionsProjector.tables) <= _strict_tables(db_path) or not STRICT


# -- DuckDB reads every table and view -------------------------------------------------------------------------


def _duckdb() -> Any:
    """A DuckDB connection with its sqlite extension loaded (both test dependencies: the extension ships as a
    Python package, duckdb-extension-sqlite-scanner, since DuckDB's own download may be out of reach)."""
    import duckdb
    import duckdb_extension_sqlite_scanner as ext

    conn = duckdb.connect()
    (found,) = glob.glob(os.path.join(os.path.dirname(ext.__file__), "extensions", "*", "sqlite_scanner.duckdb_extension"))
    conn.execute(f"LOAD '{found}'")
    return conn


def _rich_file(path: Path) -> None:
    with Ledger(path, clock=Clock(), snapshot_every=2) as led:
        led.create_session("p", user_id="u", purpose="x", tags=["a"], metadata={"k": {"b": 1, "a": 2}, "n": None})
        led.add_message("p", "user", "hello world")
        led.add_message("p", "assistant", "hi", model="m", tokens={"input": 3, "output": 4})
        led.link_invocation("p", "i1", "grep", duration_ms=10, tokens={"input": 1}, cost=1)
        led.link_invocation("p", "i2", "grep", duration_ms=2.5, cost=0.25, status="error", artifact="file:///x")
        led.add_message("p", "tool", "found", tool_name="grep", invocation_id="i1")
        led.set_data("p", "d", [1, 2.5, "x"])
        led.fork("p", version=3, new_session_id="f")
        led.add_message("f", "user", "in the fork")
        led.retract_message("f", position=2)
        led.restore("p", version=3)
        led.complete_session("p")
        led.create_session("gone")
        led.add_message("gone", "user", "secret")
        led.purge_session("gone", reason="test")
        led.search_messages("hello")  # the search index, level


def test_duckdb_reads_every_table_and_view_of_a_ledger_file(tmp_path: Path) -> None:
    conn = _duckdb()
    path = tmp_path / "ledger.db"
    _rich_file(path)
    with contextlib.closing(sqlite3.connect(path)) as lite:
        names = [n for (n,) in lite.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")]
        expected = sorted(lite.execute(f"SELECT {_COLUMNS} FROM effective_messages").fetchall())
    conn.execute(f"ATTACH '{path}' AS l (TYPE sqlite, READ_ONLY)")
    for name in names:  # the tables by their declared types (a mismatched value is an error), the views re-read by DuckDB
        conn.execute(f'SELECT * FROM l."{name}"').fetchall()
        conn.execute("SELECT * FROM sqlite_scan(?, ?)", [str(path), name]).fetchall()
    assert sorted(conn.execute(f"SELECT {_COLUMNS} FROM l.effective_messages").fetchall()) == expected
    types = dict(conn.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM l.sessions)").fetchall())
    assert (types["tokens_in"], types["estimated_cost"], types["status"]) == ("BIGINT", "DOUBLE", "VARCHAR")


# -- Datasette metadata ----------------------------------------------------------------------------------------


def _shadow_tables(conn: sqlite3.Connection) -> set[str]:
    virtual = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'")]
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n for n in names for v in virtual if n.startswith(v + "_")}


def test_the_datasette_metadata_describes_every_table_view_and_column(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    _rich_file(path)
    metadata = datasette_metadata(str(path))
    assert json.loads(json.dumps(metadata)) == metadata
    assert list(metadata["databases"]) == ["team"]  # Datasette names a database after its file's stem
    described = metadata["databases"]["team"]["tables"]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        shadows = _shadow_tables(conn)
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        names = {n for n in names if not n.startswith("sqlite_")} - shadows
        assert names - set(described) == set(), "tables or views without a description"
        for name in sorted(names):
            about = described[name]
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
            assert about["description"], name
            assert set(about["columns"]) == set(columns), name  # every column, and none that is not there
            assert all(about["columns"].values()), name
            assert set(about.get("units", {})) <= set(columns), name
            for key in ("sort", "sort_desc"):
                assert about.get(key, columns[0]) in columns, name
            assert set(about.get("facets", [])) <= set(columns), name
            if "fts_table" in about:
                assert about["fts_table"] in names | shadows and about["fts_pk"] in columns, name
    stale = {n for n, about in described.items() if n not in names and not about.get("hidden")}
    assert stale == set(), "descriptions of tables that a new file does not have"
    assert {n for n, about in described.items() if about.get("hidden")} >= {"ledger_meta", "projector_positions"}
    units = {unit for about in described.values() for unit in about.get("units", {}).values()}
    assert units == {"token", "USD", "ms"}
    assert described["sessions"]["units"] == {"tokens_in": "token", "tokens_out": "token", "tokens_cache_read": "token",
                                              "tokens_cache_creation": "token", "tokens_reasoning": "token",
                                              "total_duration_ms": "ms", "estimated_cost": "USD"}
    assert described["messages"]["fts_table"] == "messages_fts"
    assert {"token = [token]", "USD = [currency]"} <= set(metadata["custom_units"])


def test_the_datasette_metadata_takes_a_ledger_and_a_name(tmp_path: Path) -> None:
    with Ledger(tmp_path / "sessions.db") as led:
        assert list(datasette_metadata(led)["databases"]) == ["sessions"]
        assert list(datasette_metadata(led, database="prod")["databases"]) == ["prod"]
    with Ledger(":memory:") as led:
        with pytest.raises(InvalidInput, match="name the database"):
            datasette_metadata(led)
        assert list(datasette_metadata(led, database="mem")["databases"]) == ["mem"]
    with pytest.raises(InvalidInput, match="PostgreSQL"):
        datasette_metadata("postgresql://ledger@localhost/db")
    with pytest.raises(InvalidInput):
        datasette_metadata(tmp_path / "x.db", database="")



def test_the_datasette_metadata_command_prints_or_writes_what_the_function_gives(tmp_path: Path) -> None:
    from tests.cli_helpers import invoke

    path = tmp_path / "team.db"
    _rich_file(path)
    printed = invoke("--db", str(path), "datasette-metadata")
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == datasette_metadata(path)
    out = tmp_path / "metadata.json"
    written = invoke("--db", str(path), "datasette-metadata", "--out", str(out), "--database", "audit")
    assert written.exit_code == 0 and "datasette" in written.stdout
    assert list(json.loads(out.read_text())["databases"]) == ["audit"]
    missing = invoke("--db", str(tmp_path / "nope.db"), "datasette-metadata")
    assert missing.exit_code == 1 and "no ledger at" in missing.stderr
