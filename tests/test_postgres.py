"""What is PostgreSQL's own: URLs and passwords, the schema, the writer lock, many processes, one chain."""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ledger import ConcurrencyError, Ledger, LedgerBusy, StorageError, UnsupportedFormat
from tests.conftest import Clock
from tests.pg_server import PASSWORD, PostgresServer


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def test_the_url_opens_a_ledger_in_its_own_schema_and_never_shows_the_password(pg_url: str) -> None:
    with Ledger(pg_url) as led:
        led.create_session("a")
        assert PASSWORD not in led.path and PASSWORD not in repr(led)
        assert led.path.startswith("postgresql://ledger@127.0.0.1:")
        assert f"schema={_schema(pg_url)}" in led.path
    with psycopg.connect(pg_url.split("?")[0]) as conn:
        tables = {name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (_schema(pg_url),))}
    assert {"events", "snapshots", "ledger_meta", "projector_positions", "sessions", "messages"} <= tables


def test_postgres_scheme_and_environment_password_work_too(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = pg_url.replace(f":{PASSWORD}@", "@").replace("postgresql://", "postgres://")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with Ledger(bare) as led:
        assert led.create_session("a").version == 1


def test_a_refused_connection_or_a_wrong_password_is_a_storage_error_without_the_password(
    postgres: PostgresServer,
) -> None:
    wrong = postgres.url("ledger_tests").replace(PASSWORD, "not-the-password")
    for url in (wrong, f"postgresql://ledger:{PASSWORD}@127.0.0.1:1/ledger_tests"):
        with pytest.raises(StorageError) as err:
            Ledger(url)
        assert PASSWORD not in str(err.value) and "not-the-password" not in str(err.value)
        assert "127.0.0.1" in str(err.value)


def test_other_tables_in_the_database_are_never_touched(pg_url: str) -> None:
    base = pg_url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.mine (x int)")
        conn.execute("DELETE FROM public.mine")
        conn.execute("INSERT INTO public.mine VALUES (7)")
    with Ledger(pg_url) as led:
        led.create_session("a")
        led.purge_session("a", reason="test")
    with psycopg.connect(base) as conn:
        assert conn.execute("SELECT x FROM public.mine").fetchall() == [(7,)]


def test_a_schema_holding_other_tables_or_a_newer_format_is_refused(pg_url: str) -> None:
    base, schema = pg_url.split("?")[0], _schema(pg_url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".foreign_table (x int)')
    with pytest.raises(UnsupportedFormat):
        Ledger(pg_url)
    other = pg_url + "x"
    with Ledger(other):
        pass
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{_schema(other)}\".ledger_meta SET value = '99' WHERE key = 'format'")
    with pytest.raises(UnsupportedFormat) as err:
        Ledger(other)
    assert err.value.actual == 99


def test_a_bad_schema_name_is_refused(pg_url: str) -> None:
    from ledger import InvalidInput

    with pytest.raises(InvalidInput):
        Ledger(pg_url.split("?")[0] + '?schema=bad"name')


def test_a_bad_pool_size_is_refused_naming_the_parameter(pg_url: str) -> None:
    from ledger import InvalidInput

    for bad in ("-1", "many", "101"):
        with pytest.raises(InvalidInput) as caught:
            Ledger(f"{pg_url}&pool_size={bad}")
        assert caught.value.field == "pool_size"


def test_listings_in_other_threads_do_not_wait_for_a_batch_and_see_only_what_was_committed(pg_url: str) -> None:
    with Ledger(pg_url) as led:
        led.create_session("before", user_id="u")
        led.add_message("before", "user", "committed")
        seen: dict[str, object] = {}
        opened, listed = threading.Event(), threading.Event()

        def batch() -> None:
            with led.batch():
                led.create_session("inside", user_id="u")
                led.add_message("inside", "user", "not yet committed")
                assert [s.session_id for s in led.list_sessions().items] == ["inside", "before"]  # its own too
                opened.set()
                listed.wait(10)

        def lister() -> None:
            opened.wait(10)
            seen["ids"] = [s.session_id for s in led.list_sessions().items]
            seen["usage"] = [row["messages"] for row in led.usage(by="user")]
            listed.set()

        threads = [threading.Thread(target=batch), threading.Thread(target=lister)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert listed.is_set(), "the listing waited for the other thread's batch"
        assert seen == {"ids": ["before"], "usage": [1]}
        assert [s.session_id for s in led.list_sessions().items] == ["inside", "before"]
        assert [row["messages"] for row in led.usage(by="user")] == [2]


def test_many_threads_query_at_once_while_one_appends(pg_url: str) -> None:
    with Ledger(pg_url + "&pool_size=3") as led:
        for i in range(5):
            led.create_session(f"s{i}", user_id="u")
            led.add_message(f"s{i}", "user", f"alpha words {i}")
        failures: list[BaseException] = []
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    assert len(led.list_sessions(limit=100).items) >= 5
                    assert len(led.search_messages("alpha")) >= 5
            except BaseException as exc:
                failures.append(exc)

        readers = [threading.Thread(target=reader) for _ in range(6)]
        for thread in readers:
            thread.start()
        for i in range(40):
            led.add_message(f"s{i % 5}", "assistant", f"alpha reply {i}")
        stop.set()
        for thread in readers:
            thread.join(20)
        assert failures == []
        assert len(led.search_messages("alpha", limit=100)) == 45


def test_without_a_pool_every_read_shares_the_ledger_connection(pg_url: str) -> None:
    with Ledger(pg_url + "&pool_size=0") as led:
        led.create_session("a", user_id="u")
        led.add_message("a", "user", "hello there")
        assert [s.session_id for s in led.list_sessions().items] == ["a"]
        assert [h.session_id for h in led.search_messages("hello")] == ["a"]
        assert led.usage(by="user")[0]["messages"] == 1


def test_a_writer_waiting_past_the_busy_timeout_gets_ledger_busy_and_writes_nothing(pg_url: str) -> None:
    with Ledger(pg_url) as led:
        led.create_session("a")
    holder = psycopg.connect(pg_url.split("?")[0], autocommit=True)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"session-ledger:{_schema(pg_url)}",))
        with Ledger(pg_url, busy_timeout=0.3) as led:
            with pytest.raises(LedgerBusy):
                led.add_message("a", "user", "blocked")
            holder.execute("ROLLBACK")
            assert led.add_message("a", "user", "now") == 2
            assert [e.version for e in led.history("a")] == [1, 2]
    finally:
        holder.close()


def test_text_with_nul_round_trips_unchanged(pg_url: str) -> None:
    with Ledger(pg_url) as led:
        led.create_session("a", metadata={"k": "x\x00y"})
        led.add_message("a", "user", "before\x00after")
        led.set_data("a", "d", {"v": "\x00"})
        assert led.messages("a")[0].content == "before\x00after"
        assert led.get_metadata("a", "k") == "x\x00y"
        assert led.get_data("a", "d") == {"v": "\x00"}
        assert led.verify().ok


def test_an_export_moves_between_backends_with_the_identical_digest(pg_url: str, tmp_path: Path) -> None:
    clock = Clock()
    with Ledger(tmp_path / "a.db", clock=clock) as source:
        source.create_session("a", user_id="u", tags=["x"], metadata={"m": 1})
        source.add_message("a", "user", "hello\x00there", tokens={"input": 3, "output": 4})
        source.link_invocation("a", "i1", "search", duration_ms=12.5, cost=0.25)
        source.fork("a", new_session_id="b")
        source.complete_session("a")
        digest = source.digest()
        exported = io.StringIO()
        source.export(exported)
    with Ledger(pg_url) as pg:
        report = pg.import_events(io.StringIO(exported.getvalue()))
        assert report.imported == report.read
        assert pg.digest() == digest and pg.verify().ok
        assert pg.messages("b")[0].content == "hello\x00there"
        back = io.StringIO()
        pg.export(back)
    with Ledger(tmp_path / "back.db") as again:
        again.import_events(io.StringIO(back.getvalue()))
        assert again.digest() == digest and again.verify().ok


def test_backup_of_a_postgres_ledger_is_a_sqlite_file_with_the_same_digest(pg_url: str, tmp_path: Path) -> None:
    with Ledger(pg_url) as led:
        led.create_session("a")
        led.add_message("a", "user", "hi")
        report = led.backup(tmp_path / "copy.db")
        assert report.ok and report.head == led.digest()
    with Ledger(tmp_path / "copy.db") as copy:
        assert copy.messages("a")[0].content == "hi"


def test_follow_wakes_on_a_notification_from_another_connection(pg_url: str) -> None:
    with Ledger(pg_url) as reader, Ledger(pg_url) as writer:
        writer.create_session("a")
        timer = threading.Timer(0.3, lambda: writer.add_message("a", "user", "late"))
        started = time.monotonic()
        timer.start()
        try:
            versions = []
            for event in reader.follow("a", poll=30, timeout=20):
                versions.append(event.version)
                if len(versions) == 2:
                    break
        finally:
            timer.join()
        assert versions == [1, 2]
        assert time.monotonic() - started < 10  # woken by the notification, not by the 30-second poll


def _append_many(url: str, worker: int, count: int, errors: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        with Ledger(url) as led:
            threads = []

            def run(thread: int) -> None:
                sid = f"w{worker}-{thread}"
                led.create_session(sid)
                for i in range(count):
                    while True:  # optimistic concurrency on a shared session, retried
                        version = led.get_session("shared").version
                        try:
                            led.add_message("shared", "user", f"{sid}-{i}", expected_version=version)
                            break
                        except ConcurrencyError:
                            continue
                    led.add_message(sid, "user", f"own-{i}")

            for thread in range(4):
                threads.append(threading.Thread(target=run, args=(thread,)))
                threads[-1].start()
            for thread in threads:
                thread.join()
    except BaseException as exc:  # report it to the parent: a child's traceback is easy to miss
        errors.put(repr(exc))


@pytest.mark.slow
def test_four_processes_of_four_threads_lose_nothing_and_keep_positions_gapless(pg_url: str) -> None:
    with Ledger(pg_url) as led:
        led.create_session("shared")
    count = 10
    errors: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()  # type: ignore[type-arg]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(pg_url, w, count, errors)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert errors.empty(), errors.get()
    with Ledger(pg_url) as led:
        events = list(led.history())
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert led.get_session("shared").message_count == 4 * 4 * count
        for w in range(4):
            for t in range(4):
                assert [e.version for e in led.history(f"w{w}-{t}")] == list(range(1, count + 2))
        assert led.verify().ok
        before = {s.session_id: (s.version, s.message_count) for s in led.list_sessions(limit=100)}
        led.rebuild()
        assert {s.session_id: (s.version, s.message_count) for s in led.list_sessions(limit=100)} == before


def _batch_forever(url: str, ready: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    with Ledger(url) as led:
        led.create_session(f"k{os.getpid()}")
        ready.set()
        i = 0
        while True:
            with led.batch():
                for _ in range(5):
                    led.add_message(f"k{os.getpid()}", "user", f"m{i}")
                    i += 1


@pytest.mark.slow
def test_a_writer_killed_mid_batch_leaves_whole_batches_and_a_chain_that_verifies(pg_url: str) -> None:
    with Ledger(pg_url):
        pass
    context = multiprocessing.get_context("spawn")
    for _ in range(3):
        ready = context.Event()
        child = context.Process(target=_batch_forever, args=(pg_url, ready))
        child.start()
        assert ready.wait(60)
        time.sleep(0.3)
        child.kill()
        child.join()
    with Ledger(pg_url) as led:
        events = list(led.history())
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert led.verify().ok
        for summary in led.list_sessions():
            assert (summary.version - 1) % 5 == 0  # created, then whole batches of five
