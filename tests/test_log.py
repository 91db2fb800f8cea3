"""The event log's file: format checks on open, WAL and durability settings, busy handling."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlite_utils

from ledger import Ledger, LedgerBusy, LedgerError, InvalidInput, Projector, RecordedEvent, UnsupportedFormat
from ledger.storage.sqlite import APPLICATION_ID, FORMAT_VERSION


def test_a_new_file_is_a_wal_ledger_marked_with_its_format(db_path: Path) -> None:
    Ledger(db_path).close()
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert raw.execute("SELECT value FROM ledger_meta WHERE key='format'").fetchone()[0] == str(FORMAT_VERSION)


class SynchronousProbe(Projector):
    """Notes ``PRAGMA synchronous`` (a per-connection setting) on the connection the ledger hands its inline
    projectors: the one every append is written and committed through."""

    name = "synchronous_probe"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def create(self, db: sqlite_utils.Database) -> None:
        pass  # no tables

    def apply(self, conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
        self.seen.append(conn.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.parametrize(("durability", "synchronous"), [("normal", 1), ("full", 2)])
def test_durability_sets_synchronous(db_path: Path, durability: str, synchronous: int) -> None:
    probe = SynchronousProbe()
    with Ledger(db_path, durability=durability, projectors=[probe]) as led:
        led.create_session("s")
        assert probe.seen and set(probe.seen) == {synchronous}
        assert led.durability == durability


def test_an_unknown_durability_is_refused(db_path: Path) -> None:
    with pytest.raises(InvalidInput, match="durability"):
        Ledger(db_path, durability="paranoid")


def test_a_file_of_random_bytes_is_refused(db_path: Path) -> None:
    db_path.write_bytes(os.urandom(8192))
    with pytest.raises(UnsupportedFormat, match="not a ledger"):
        Ledger(db_path)


def test_an_sqlite_file_that_is_not_a_ledger_is_refused_and_left_alone(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE customers (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(UnsupportedFormat, match="not a session-ledger file"):
        Ledger(db_path)
    tables = [r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")]
    assert tables == ["customers"]


def test_a_file_from_a_newer_format_is_refused(db_path: Path) -> None:
    Ledger(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE ledger_meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION + 1),))
    raw.commit()
    raw.close()
    with pytest.raises(UnsupportedFormat, match="newer") as err:
        Ledger(db_path)
    assert err.value.actual == FORMAT_VERSION + 1


def test_an_empty_file_becomes_a_ledger(db_path: Path) -> None:
    db_path.touch()
    with Ledger(db_path) as led:
        assert led.create_session("s").version == 1


def test_opening_does_not_walk_the_chain(db_path: Path) -> None:
    with Ledger(db_path) as led:
        led.create_session("s")
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE events SET hash = zeroblob(32)")
    raw.commit()
    raw.close()
    with Ledger(db_path) as led:  # opens fine; damage is verify's business
        report = led.verify()
        assert not report.ok and report.first_bad_position == 1


def test_a_directory_path_gives_a_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError):
        Ledger(tmp_path)


HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


@contextmanager
def _write_lock_held(path: Path, seconds: float) -> Iterator[None]:
    """Another process holds the write lock for ``seconds`` (from when this yields)."""
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield
        proc.wait(30)


def test_a_writer_waits_for_a_busy_file_and_then_succeeds(db_path: Path) -> None:
    Ledger(db_path).close()
    with _write_lock_held(db_path, 1.0), Ledger(db_path, busy_timeout=10) as led:
        assert led.create_session("s").version == 1


def test_a_writer_that_waits_past_the_busy_timeout_gets_ledger_busy_and_writes_nothing(db_path: Path) -> None:
    with Ledger(db_path, busy_timeout=0.2) as led:
        with _write_lock_held(db_path, 2.0), pytest.raises(LedgerBusy, match="locked"):
            led.create_session("s")
        assert led.last_position == 0
        assert led.create_session("s").version == 1  # usable again afterwards


def test_a_foreign_sqlite_file_is_not_switched_to_wal(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    with pytest.raises(UnsupportedFormat):
        Ledger(db_path)
    assert sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


OPENER = textwrap.dedent(
    """
    import sys
    from ledger import Ledger
    with Ledger(sys.argv[1], busy_timeout=20) as led:
        led.create_session()
    """
)


def test_many_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    for round_ in range(4):
        path = tmp_path / f"race{round_}.db"
        procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path)]) for _ in range(6)]
        assert [p.wait(60) for p in procs] == [0] * 6
        with Ledger(path) as led:
            assert led.last_position == 6
            assert led.verify().ok
