"""Sortable unique ids (ULID layout: 48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: characters sort as their values do
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every 10-bit value as two characters
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0
_RAND_MASK = (1 << 80) - 1


def new_id() -> str:
    """Return a 26-character id that sorts by creation time, monotonic within this process.

    Within one millisecond the random part is incremented instead of redrawn,
    so ids made in a tight loop still sort in the order they were made.
    """
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand = (_last_rand + 1) & _RAND_MASK
        else:
            _last_ms = ms
            _last_rand = int.from_bytes(os.urandom(10), "big")
        value = (ms << 80) | _last_rand
    # 26 characters hold 130 bits: 13 chunks of 10 bits, from the top.
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])
