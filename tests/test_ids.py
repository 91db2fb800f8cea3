"""Generated ids: ULID layout, unique, and sorted in the order they were made."""

from __future__ import annotations

import re
import threading
import time

from ledger.ids import new_id

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_ids_are_26_crockford_characters_led_by_the_millisecond_time() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", value)
    ms = 0
    for ch in value[:10]:
        ms = ms * 32 + _CROCKFORD.index(ch)
    assert before <= ms <= after


def test_ids_made_in_a_tight_loop_are_unique_and_sorted() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_ids_made_by_many_threads_are_unique() -> None:
    out: list[list[str]] = [[] for _ in range(8)]

    def make(slot: list[str]) -> None:
        slot.extend(new_id() for _ in range(2000))

    threads = [threading.Thread(target=make, args=(slot,)) for slot in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for slot in out for i in slot]
    assert len(set(every)) == len(every)
