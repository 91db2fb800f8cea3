"""The log as ``chain.verify`` reads it (``chain.ChainSource``): each call one short read of an engine, so
other writers can append during a long walk."""

from __future__ import annotations

from .chain import Row
from .engine import Engine
from .events import RecordedEvent


class EngineChain:
    """An engine's log, read in chunks for ``chain.verify``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def head_position(self) -> int:
        """The last position of the log."""
        with self.engine.read("verify") as storage:
            return storage.head.position

    def raw_rows(self, after: int, limit: int) -> list[Row]:
        """Stored rows after a position, as stored."""
        with self.engine.read("verify") as storage:
            return storage.raw_rows(after=after, limit=limit)

    def row_hash(self, position: int) -> bytes | None:
        """The stored hash at a position."""
        with self.engine.read("verify") as storage:
            return storage.row_hash(position)

    def sessions_with_snapshots(self) -> list[str]:
        """Sessions that have snapshots."""
        with self.engine.read("verify") as storage:
            return storage.sessions_with_snapshots()

    def snapshots_and_events(
        self, session_id: str
    ) -> tuple[dict[int, tuple[bytes, bytes]], list[RecordedEvent]]:
        """A session's snapshots (version -> (state, event hash)) and its events up to the newest of them."""
        with self.engine.read("verify") as storage:
            stored = storage.snapshots_of(session_id)
            events = list(storage.iter_session(session_id, until_version=max(stored, default=0)))
        return stored, events
