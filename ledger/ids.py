"""Sortable unique ids (ULID layout: 48-bit millisecond time + 80 random bits, Crockford base32)."""

from __future__ import annotations

import base64
import os
import threading
import time

# base64's alphabet, and Crockford's in the same value order: its characters sort as their values do.
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")
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
    # In 17 bytes, the value shifted left by 6 ends exactly on the 26th base32 character.
    text = base64.b32encode((value << 6).to_bytes(17, "big"))[:26].decode()
    return text.translate(_TO_CROCKFORD)
