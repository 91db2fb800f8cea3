"""Projectors and the runner that keeps them level with the log.

A projector folds recorded events into tables of its own. It has a ``name``, a
``version`` (bump it when its tables or its fold change: it is then rebuilt),
the event ``handles`` it cares about (empty: all), and three methods:
``create`` its tables, ``drop`` them, ``apply`` a batch of events.

The runner stores each projector's last applied position in
``projector_positions``, in the same transaction as the rows it wrote, so a
projection is never ahead of or behind what it says. Inline, the ledger calls
:meth:`ProjectionRunner.apply_inline` inside every append; a projector that is
new, bumped, or behind (another process appended without knowing it) catches
up from its position before the ledger serves it.

Two refinements keep appends cheap. A *built-in* inline projector is kept
level by every writer of the file (the file format guarantees they all run
it), so once caught up its position is stored as ``IN_STEP`` instead of being
rewritten on every append. A *lazy* projector (``inline = False``) is skipped
on append and caught up in bulk right before a read that needs it, so a
query after a command still sees it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

import sqlite_utils

from ledger.errors import InvalidInput
from ledger.events import RecordedEvent

POSITIONS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS projector_positions ("
    " name TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL)"
)

# Reads up to ``limit`` recorded events after a position, in log order.
ReadBatch = Callable[[int, int], list[RecordedEvent]]
# Told (events done, events in all) as a long replay goes.
Progress = Callable[[int, int], None]

REPLAY_BATCH = 5000
IN_STEP = -1  # stored position of a built-in inline projector that every append keeps level


class Projector:
    """Base class of every projector: subclass it, name it, and fold events into your own tables.

    ``apply`` runs inside the ledger's transaction: write with the given
    connection and never commit. It must be deterministic, so that a rebuild
    from position 0 gives exactly the tables the inline updates gave.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[str]] = frozenset()
    inline: ClassVar[bool] = True
    builtin: ClassVar[bool] = False
    tables: ClassVar[tuple[str, ...]] = ()
    views: ClassVar[tuple[str, ...]] = ()

    def create(self, db: sqlite_utils.Database) -> None:
        """Create the projector's tables, indexes and views (they do not exist yet)."""
        raise NotImplementedError

    def drop(self, db: sqlite_utils.Database) -> None:
        """Drop everything ``create`` made; by default the declared ``views`` and ``tables``."""
        for view in self.views:
            db.execute(f'DROP VIEW IF EXISTS "{view}"')
        for table in self.tables:
            db.execute(f'DROP TABLE IF EXISTS "{table}"')

    def apply(self, conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
        """Fold a batch of events (only the handled types, in log order) into the tables."""
        raise NotImplementedError

    def wants(self, event: RecordedEvent) -> bool:
        """Whether this projector handles the event's type."""
        return not self.handles or event.type in self.handles

    # A projector that copies payload text must also handle ``purged`` events and delete what it
    # holds for that session; when the log is replayed, purged rows arrive with a ``Redacted`` payload.


def check_progress(progress: object) -> None:
    """A progress callback is None or callable (``InvalidInput`` otherwise)."""
    if progress is not None and not callable(progress):
        raise InvalidInput(f"progress must be a callable taking (done, total); got {progress!r}", field="progress")


def check_custom(projector: object) -> None:
    """A user's projector runs inline and is not built in (both are reserved for the ledger's own)."""
    if isinstance(projector, Projector) and (not projector.inline or projector.builtin):
        raise InvalidInput(
            f"projector {projector.name!r}: inline = False and builtin = True are reserved for built-in projectors",
            field="projector",
        )


class ProjectionRunner:
    """Keeps a set of projectors level with the log: inline on append, catch-up and rebuild otherwise."""

    def __init__(self, projectors: Iterable[Projector] = ()) -> None:
        self.projectors: list[Projector] = []
        for projector in projectors:
            self.add(projector)

    def add(self, projector: Projector) -> None:
        """Register a projector (its tables are created or caught up by :meth:`ensure`)."""
        if not isinstance(projector, Projector):
            raise InvalidInput(f"a projector must subclass projections.Projector; got {projector!r}", field="projector")
        name = projector.name
        if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
            raise InvalidInput(f"a projector needs a name of letters, digits and _; got {name!r}", field="projector.name")
        if isinstance(projector.version, bool) or not isinstance(projector.version, int) or not 1 <= projector.version < 2**63:
            raise InvalidInput(f"projector {name!r} needs an integer version >= 1", field="projector.version")
        if any(p.name == name for p in self.projectors):
            raise InvalidInput(f"a projector named {name!r} is already registered", field="projector.name")
        self.projectors.append(projector)
        self._arrange()

    def remove(self, projector: Projector) -> None:
        """Forget a projector (its tables stay)."""
        self.projectors = [p for p in self.projectors if p is not projector]
        self._arrange()

    def _arrange(self) -> None:
        self._inline = [p for p in self.projectors if p.inline]
        # Only inline projectors that are not built in have their position rewritten on append.
        self._tracked = [p.name for p in self._inline if not p.builtin]
        marks = ", ".join("?" * len(self._tracked))
        self._advance_sql = f"UPDATE projector_positions SET position = ? WHERE name IN ({marks})"

    def get(self, name: str) -> Projector:
        """The registered projector of that name (``InvalidInput`` if none)."""
        for projector in self.projectors:
            if projector.name == name:
                return projector
        known = ", ".join(p.name for p in self.projectors) or "none"
        raise InvalidInput(f"no projector named {name!r} (registered: {known})", field="projection")

    # -- inside a write transaction ----------------------------------------------

    def ensure(self, conn: sqlite3.Connection) -> None:
        """Create missing projectors' tables at position 0, and reset those whose version changed."""
        conn.execute(POSITIONS_SCHEMA)
        stored = dict(conn.execute("SELECT name, version FROM projector_positions").fetchall())
        db = sqlite_utils.Database(conn)
        for projector in self.projectors:
            version = stored.get(projector.name)
            if version == projector.version:
                continue
            if version is not None:
                projector.drop(db)
            projector.create(db)
            self._reset(conn, projector)

    def ready(self, conn: sqlite3.Connection, head: int) -> bool:
        """Whether every projector exists at its current version and the inline ones are level (a read)."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'projector_positions'").fetchone() is None:
            return False
        stored = dict(conn.execute("SELECT name, version FROM projector_positions").fetchall())
        if any(stored.get(p.name) != p.version for p in self.projectors):
            return False
        return not self.behind(conn, head)

    def behind(self, conn: sqlite3.Connection, head: int, *, lazy: bool = False) -> list[Projector]:
        """Inline projectors (or, with ``lazy``, the lazy ones) that are not level with ``head``.

        A built-in inline projector counts as behind until it is marked ``IN_STEP``.
        """
        positions = dict(conn.execute("SELECT name, position FROM projector_positions").fetchall())
        out = []
        for p in self.projectors:
            position = positions.get(p.name, 0)
            if p.inline == lazy or position == IN_STEP:
                continue
            if position < head or (p.builtin and p.inline):
                out.append(p)
        return out

    def catch_up(
        self,
        conn: sqlite3.Connection,
        projectors: Sequence[Projector],
        read: ReadBatch,
        head: int,
        progress: Progress | None = None,
    ) -> None:
        """Replay events from each projector's stored position up to ``head``, in large batches."""
        for projector in projectors:
            (start,) = conn.execute(
                "SELECT position FROM projector_positions WHERE name = ?", (projector.name,)
            ).fetchone()
            start = max(start, 0)
            done = start
            while done < head:
                batch = [e for e in read(done, REPLAY_BATCH) if e.position <= head]
                if not batch:
                    break
                wanted = [e for e in batch if projector.wants(e)]
                if wanted:
                    projector.apply(conn, wanted)
                done = batch[-1].position
                if progress is not None:
                    progress(done - start, head - start)
            level = IN_STEP if projector.builtin and projector.inline else head
            conn.execute("UPDATE projector_positions SET position = ? WHERE name = ?", (level, projector.name))

    def rebuild(
        self,
        conn: sqlite3.Connection,
        projectors: Sequence[Projector],
        read: ReadBatch,
        head: int,
        progress: Progress | None = None,
    ) -> None:
        """Drop the projectors' tables, create them anew, and replay the whole log into them."""
        db = sqlite_utils.Database(conn)
        for projector in projectors:
            projector.drop(db)
            projector.create(db)
            self._reset(conn, projector)
        self.catch_up(conn, projectors, read, head, progress)

    def pin(self, conn: sqlite3.Connection, head: int) -> None:
        """Before rows are added without the inline projectors (a copy, an import): record where they stand."""
        conn.execute("UPDATE projector_positions SET position = ? WHERE position = ?", (head, IN_STEP))

    @staticmethod
    def _reset(conn: sqlite3.Connection, projector: Projector) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO projector_positions (name, version, position) VALUES (?, ?, 0)",
            (projector.name, projector.version),
        )

    def apply_inline(self, conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
        """Fold freshly appended events into every inline projector and advance the tracked positions."""
        for projector in self._inline:
            if projector.handles:
                wanted = [e for e in events if e.type in projector.handles]
                if wanted:
                    projector.apply(conn, wanted)
            else:
                projector.apply(conn, events)
        if self._tracked:
            conn.execute(self._advance_sql, (events[-1].position, *self._tracked))
