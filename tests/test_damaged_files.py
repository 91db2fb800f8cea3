"""Damaged files give a clear error or a verify report naming the first bad position, never a silent wrong answer."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ledger import IntegrityError, Ledger, LedgerError, UnsupportedFormat


def _ledger(path: Path, messages: int = 200) -> None:
    with Ledger(path, snapshot_every=10) as led:
        led.create_session("s", metadata={"k": "v"})
        with led.batch():
            for i in range(messages):
                led.add_message("s", "user", f"message {i} " + "x" * 300)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_a_truncated_file_is_refused_or_reported_never_read_wrong(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "t.db"
    _ledger(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    try:
        with Ledger(path) as led:
            report = led.verify()
            assert not report.ok, "a truncated file must not verify"
    except LedgerError as exc:
        assert isinstance(exc, (IntegrityError, UnsupportedFormat)), exc
        assert str(exc)


def test_a_file_of_random_bytes_is_not_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(UnsupportedFormat):
        Ledger(path)


def test_a_missing_snapshot_table_costs_time_not_correctness(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _ledger(path)
    with Ledger(path) as led:
        expected = led.get_session("s")
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE snapshots")
    raw.commit()
    raw.close()
    with Ledger(path) as led:
        assert led.get_session("s") == expected
        assert led.verify().ok
        led.add_message("s", "user", "after")


def test_a_missing_read_table_is_rebuilt_from_the_log(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    _ledger(path, messages=20)
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE messages_fts")
    raw.execute("DELETE FROM projector_positions WHERE name = 'search'")
    raw.commit()
    raw.close()
    with Ledger(path) as led:
        assert len(led.search_messages("message")) == 20


def test_a_missing_events_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    _ledger(path, messages=2)
    raw = sqlite3.connect(path)
    raw.execute("DROP TABLE events")
    raw.commit()
    raw.close()
    with pytest.raises(UnsupportedFormat, match="no events table"):
        Ledger(path)


def test_a_corrupted_page_is_an_integrity_error_or_a_failed_verify(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _ledger(path)
    with open(path, "r+b") as f:
        f.seek(4096 * 3)
        f.write(os.urandom(4096))
    try:
        with Ledger(path) as led:
            report = led.verify()
            state_ok = led.get_session("s").message_count == 200
            assert not report.ok or state_ok
    except LedgerError as exc:
        assert isinstance(exc, (IntegrityError, UnsupportedFormat)), exc


def _retyped(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "retyped.db"
    with Ledger(path, snapshot_every=2) as led:
        led.create_session("s")
        for i in range(5):
            led.add_message("s", "user", f"message {i}")
    raw = sqlite3.connect(path)
    raw.execute(sql)
    raw.commit()
    raw.close()
    return path


@pytest.mark.parametrize(
    ("sql", "bad_position", "words"),
    [
        ("UPDATE events SET hash = hex(hash) WHERE position = 3", 3, "hash"),
        ("UPDATE snapshots SET event_hash = hex(event_hash) WHERE version = 2", 2, "snapshot"),
        ("UPDATE snapshots SET state = 'not a snapshot' WHERE version = 4", 4, "snapshot"),
        # Bytes that are not UTF-8, stored as TEXT: the driver cannot decode them as text.
        ("UPDATE snapshots SET state = CAST(x'ff00fe' AS TEXT) WHERE version = 4", 4, "snapshot"),
    ],
)
def test_a_column_rewritten_with_another_storage_type_is_reported_by_verify_and_ignored_on_load(
    tmp_path: Path, sql: str, bad_position: int, words: str
) -> None:
    path = _retyped(tmp_path, sql)
    with Ledger(path) as led:
        report = led.verify()
        assert not report.ok and report.first_bad_position == bad_position and words in (report.reason or "")
        assert [m.content for m in led.messages("s", version=5)] == [f"message {i}" for i in range(4)]
        assert led.get_session("s").message_count == 5
