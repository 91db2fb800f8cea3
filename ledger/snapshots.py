"""Snapshots: a session's folded state at a version, so loading never replays the whole history.

A snapshot is a cache: the state is msgpack-encoded with its own format
version, and one that fails to decode, has another format, or no longer sits
on the chain (its ``event_hash`` is not the hash of the event at its version)
is skipped, with one warning, in favour of an older snapshot or the events
themselves. ``Ledger.verify`` also checks each snapshot against the fold of
its events. The conversation is not in the state, so a snapshot's size does
not grow with it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

import msgspec

from .session import Session
from .times import parse_time

SNAPSHOT_FORMAT = 2  # 2: a session's own retracted messages are no longer listed in ``hidden``

log = logging.getLogger("ledger.snapshots")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Session)


def encode_state(state: Session) -> bytes:
    """A session state as snapshot bytes."""
    return _encoder.encode(state)


def decode_state(data: bytes) -> Session:
    """Snapshot bytes back to a session state (raises msgspec errors on bad bytes)."""
    return _decoder.decode(data)


# A stored snapshot as a backend hands it back: version, format, state bytes, and whether its event hash
# is still the hash of the session's event at that version (a plain row: this is read on every cold load).
SnapshotCandidate = tuple[int, int, bytes, "int | bool | None"]


class SnapshotPolicy:
    """When a snapshot is due (every ``every`` versions of a session; 0: never) and which stored one is usable."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._warned = False

    def due(self, version: int) -> bool:
        """Whether an automatic snapshot belongs at this version."""
        return self.every > 0 and version % self.every == 0

    def pick(self, session_id: str, candidates: Iterable[SnapshotCandidate]) -> Session | None:
        """The first usable snapshot among ``candidates`` (newest first), or None; a bad one is skipped."""
        for version, schema, blob, on_chain in candidates:
            if not on_chain:
                self._warn(f"snapshot of {session_id!r} at version {version} is not on the event chain; ignoring it")
                continue
            if schema != SNAPSHOT_FORMAT:
                self._warn(f"snapshot of {session_id!r} at version {version} has format {schema}; ignoring it")
                continue
            try:
                state = decode_state(blob)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
                self._warn(f"snapshot of {session_id!r} at version {version} does not decode ({exc}); ignoring it")
                continue
            if state.session_id == session_id and state.version == version:
                return state
            self._warn(f"snapshot of {session_id!r} at version {version} holds another state; ignoring it")
        return None

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s (the state is folded from events instead)", message)


def retention_victims(
    rows: list[tuple[str, int, str]], keep: int, bucket: timedelta | None
) -> list[tuple[str, int]]:
    """Which snapshots a retention policy drops: all but each session's last ``keep``, and the newest
    one in each ``bucket`` of creation time. ``rows`` are (session_id, version, created_at)."""
    by_session: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for session_id, version, created_at in rows:
        by_session[session_id].append((version, created_at))
    victims: list[tuple[str, int]] = []
    for session_id, snaps in by_session.items():
        snaps.sort(reverse=True)
        kept = {version for version, _ in snaps[:keep]}
        if bucket is not None:
            seen: set[int] = set()
            for version, created_at in snaps:  # newest first, so the first in a bucket is its newest
                slot = int(parse_time(created_at).timestamp() // bucket.total_seconds())
                if slot not in seen:
                    seen.add(slot)
                    kept.add(version)
        victims += [(session_id, version) for version, _ in snaps if version not in kept]
    return victims
