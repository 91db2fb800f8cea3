"""``Ledger.writer_stats()``: what the write transactions cost, for operators and the benchmarks."""

from __future__ import annotations

import pytest

from ledger import ConcurrencyError, Ledger, LedgerBusy, WriterStats
from tests.conftest import is_postgres, writer_lock_held


def test_each_command_is_one_write_transaction_with_its_wait_and_hold_timed(ledger: Ledger) -> None:
    before = ledger.writer_stats()
    ledger.create_session("s")
    for i in range(5):
        ledger.add_message("s", "user", f"message {i}")
    after = ledger.writer_stats()
    assert isinstance(after, WriterStats)
    assert after.transactions - before.transactions == 6
    assert after.lock_wait_seconds >= before.lock_wait_seconds
    assert after.lock_held_seconds > before.lock_held_seconds


def test_a_batch_is_one_transaction_and_a_refused_command_still_counts_its_rollback(ledger: Ledger) -> None:
    ledger.create_session("s")
    before = ledger.writer_stats()
    with ledger.batch():
        for i in range(50):
            ledger.add_message("s", "user", f"message {i}")
    assert ledger.writer_stats().transactions - before.transactions == 1
    with pytest.raises(ConcurrencyError):
        ledger.add_message("s", "user", "stale", expected_version=1)
    assert ledger.writer_stats().transactions - before.transactions == 2


def test_round_trips_are_counted_on_postgresql_only(ledger: Ledger) -> None:
    ledger.create_session("s")
    if not is_postgres(ledger):
        assert ledger.writer_stats().round_trips is None
        return
    start = ledger.writer_stats().round_trips
    assert start is not None
    ledger.add_message("s", "user", "one")
    single = ledger.writer_stats().round_trips
    assert single is not None and single - start == 2  # begin with the lock and head; the writes with the commit
    with ledger.batch():
        for i in range(100):
            ledger.add_message("s", "user", f"message {i}")
    batched = ledger.writer_stats().round_trips
    # The begin; the event rows and the message rows by COPY; the snapshot taken at version 100 (between event
    # rows) and the session's row with the commit, in pipelines: a handful, not one per command.
    assert batched is not None and batched - single <= 6


def test_a_writer_refused_busy_counts_its_wait(ledger_path: str) -> None:
    with Ledger(ledger_path, busy_timeout=0.2) as led:
        led.create_session("s")
        before = led.writer_stats()
        with writer_lock_held(ledger_path):
            with pytest.raises(LedgerBusy):
                led.add_message("s", "user", "blocked")
        after = led.writer_stats()
    assert after.transactions == before.transactions
    assert after.lock_wait_seconds - before.lock_wait_seconds >= 0.15
