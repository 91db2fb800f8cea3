"""The hash chain and digests: verification reports damage by position, never raises on it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import msgspec
import pytest

from ledger import Digest, InvalidInput, Ledger
from ledger.snapshots import decode_state, encode_state
from tests.conftest import Clock, raw_sql


def _ledger(path: str | Path, events: int = 8) -> Ledger:
    led = Ledger(path, clock=Clock(), snapshot_every=3)
    led.create_session("s", metadata={"owner": "alice"})
    for i in range(events - 1):
        led.set_metadata("s", "approved", False) if i == 0 else led.add_message("s", "user", f"m{i}")
    return led


def test_a_digest_round_trips_through_json_and_compares_equal(ledger_path: str) -> None:
    with _ledger(ledger_path) as led:
        digest = led.digest()
        assert Digest.from_json(digest.to_json()) == digest
        assert digest.position == 8 and len(digest.hash) == 64


@pytest.mark.parametrize(
    "text",
    [1, "", "{}", '{"position": -1, "hash": "' + "0" * 64 + '"}', '{"position": 1, "hash": "' + "A" * 64 + '"}', "\ud800"],
)
def test_a_malformed_digest_is_invalid_input(text: object) -> None:
    with pytest.raises(InvalidInput):
        Digest.from_json(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("digest", [Digest("x", "0" * 64), Digest(-5, "0" * 64), Digest(1, "A" * 64), "not a digest"])  # type: ignore[arg-type]
def test_verify_refuses_a_malformed_digest(ledger_path: str, digest: object) -> None:
    with _ledger(ledger_path) as led:
        with pytest.raises(InvalidInput):
            led.verify(digest)  # type: ignore[arg-type]


def test_a_digest_from_beyond_the_end_of_the_log_fails(ledger_path: str) -> None:
    with _ledger(ledger_path) as led:
        report = led.verify(Digest(99, "0" * 64))
        assert not report.ok and report.first_bad_position == 9


def test_bytes_that_are_not_utf8_are_reported_at_their_position(db_path: Path) -> None:
    # SQLite only: SQLite stores whatever bytes it is given as TEXT; PostgreSQL text is always valid UTF-8.
    with _ledger(db_path) as led:
        raw = sqlite3.connect(db_path)
        raw.execute("UPDATE events SET session_id = CAST(X'80' AS TEXT) WHERE position = 4")
        raw.commit()
        raw.close()
        report = led.verify()
        assert (report.ok, report.first_bad_position) == (False, 4)


def test_a_forged_snapshot_is_reported_by_verify(ledger_path: str) -> None:
    with _ledger(ledger_path) as led:
        with raw_sql(led, write=True) as raw:
            (blob,) = raw.execute("SELECT state FROM snapshots WHERE version = 3").fetchone()
            forged = msgspec.structs.replace(decode_state(bytes(blob)), metadata={"owner": "mallory", "approved": True})
            raw.execute("UPDATE snapshots SET state = ? WHERE version = 3", (encode_state(forged),))
        report = led.verify()
        assert not report.ok
        assert report.first_bad_position == 3
        assert "snapshot" in (report.reason or "")


def test_a_snapshot_that_is_not_on_the_chain_is_ignored_on_load(ledger_path: str, caplog: pytest.LogCaptureFixture) -> None:
    with _ledger(ledger_path) as led:
        expected = led.get_session("s")
    with raw_sql(led, write=True) as raw:
        (blob,) = raw.execute("SELECT state FROM snapshots WHERE version = 6").fetchone()
        forged = msgspec.structs.replace(decode_state(bytes(blob)), metadata={"owner": "mallory"})
        raw.execute("UPDATE snapshots SET state = ?, event_hash = ? WHERE version = 6", (encode_state(forged), os.urandom(32)))
    with Ledger(ledger_path) as led:
        assert led.get_session("s") == expected
    assert "not on the event chain" in caplog.text


def test_verify_reports_its_progress(ledger_path: str) -> None:
    with _ledger(ledger_path, events=20) as led:
        seen: list[tuple[int, int]] = []
        assert led.verify(progress=lambda done, total: seen.append((done, total))).ok
        assert seen[-1] == (20, 20)
        with pytest.raises(InvalidInput):
            led.verify(progress=5)  # type: ignore[arg-type]
