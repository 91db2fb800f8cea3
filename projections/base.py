"""Projectors and the runner that keeps them level with the log.

A projector folds recorded events into tables of its own. It has a ``name``, a
``version`` (bump it when its tables or its fold change: it is then rebuilt),
the event ``handles`` it cares about (empty: all), and three methods:
``create`` its tables, ``drop`` them, ``apply`` a batch of events.

The runner records each projector's last applied position through the
storage (``projector_positions``), in the same transaction as the rows it wrote, so a
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

Inside a ``ledger.batch()``, when every inline projector is a built-in one,
the batch's events are projected together at its end (or before a read inside
it), so a session's row is updated once per batch and rows go many at a time;
with a projector of your own registered, each command is projected as it goes
(your projector may read the built-in tables and sees each command's rows).

The same projectors run on both backends: a projector lists the SQL
``dialects`` it is written for (the storage's ``dialect``: ``"sqlite"`` or
``"postgres"``), and :func:`dialect_of` tells which one a connection speaks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Protocol

import sqlite_utils

from ledger.errors import InvalidInput
from ledger.events import RecordedEvent, Redacted
from ledger.validation import Progress


class Connection(Protocol):
    """What the built-in projectors and queries use of a connection: a ``sqlite3.Connection``, or the
    PostgreSQL storage's ``PgConnection`` (``?`` placeholders on both; rows as tuples)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


def dialect_of(conn: object) -> str:
    """The SQL dialect a connection given to a projector or a query speaks: ``"sqlite"`` for a
    ``sqlite3.Connection`` or a ``sqlite_utils.Database``, else the connection's own ``dialect``
    (the PostgreSQL storage's connection says ``"postgres"``)."""
    if isinstance(conn, (sqlite3.Connection, sqlite_utils.Database)):
        return "sqlite"
    dialect = getattr(conn, "dialect", "sqlite")
    return dialect if isinstance(dialect, str) else "sqlite"


def table_rows(conn: Connection, table: str) -> list[tuple[Any, ...]]:
    """Every row of a projector's table, in a stable order (verify's deep mode compares a live table with
    its rebuild from the log)."""
    return sorted((tuple(row) for row in conn.execute(f'SELECT * FROM "{table}"').fetchall()), key=repr)


def connection_for(store: ProjectionStore, projector: Projector) -> Any:
    """The connection a projector writes with: the built-in ones get the storage's own (which may hold
    writes back until the commit); a projector of your own gets one whose every statement runs at once,
    so its cursor's ``rowcount`` and results are there when it looks."""
    return store.connection if projector.builtin else store.plain_connection


def schema_handle(store: ProjectionStore, projector: Projector) -> Any:
    """What ``create`` and ``drop`` receive: a ``sqlite_utils.Database`` over a SQLite connection,
    the projector's connection (``connection_for``) on any other backend."""
    if store.dialect == "sqlite":
        return sqlite_utils.Database(store.connection)
    return connection_for(store, projector)


class ProjectionStore(Protocol):
    """What the runner needs of a storage backend: the connection projectors write with, the events
    to replay, and the positions table (``ledger.storage.Storage`` provides all of it)."""

    dialect: str

    @property
    def connection(self) -> Any: ...

    @property
    def plain_connection(self) -> Any: ...

    def read(self, *, after: int, limit: int, session_id: str | None = None) -> list[RecordedEvent]: ...

    def projector_positions(self) -> dict[str, tuple[int, int]] | None: ...

    def create_projector_positions(self) -> None: ...

    def reset_projector(self, name: str, version: int) -> None: ...

    def set_projector_positions(self, names: Sequence[str], position: int) -> None: ...

    def pin_projectors(self, head: int, marker: int) -> None: ...

REPLAY_BATCH = 5000
IN_STEP = -1  # stored position of a built-in inline projector that every append keeps level


class Projector:
    """Base class of every projector: subclass it, name it, and fold events into your own tables.

    ``apply`` runs inside the ledger's transaction: write with the given
    connection and never commit. It must be deterministic, so that a rebuild
    from position 0 gives exactly the tables the inline updates gave.

    What the methods receive depends on the ledger's backend (declare the ones
    you support in ``dialects``; a ledger refuses a projector that does not
    speak its dialect):

    * SQLite (``"sqlite"``, the default): ``create`` and ``drop`` get a
      ``sqlite_utils.Database``; ``apply`` and ``purged`` the ``sqlite3.Connection``.
    * PostgreSQL (``"postgres"``): all four get the storage's connection, a
      ``ledger.storage.postgres.PgConnection``: ``execute(sql, params)`` and
      ``executemany(sql, rows)`` with ``?`` placeholders, returning psycopg
      cursors; its ``dialect`` is ``"postgres"`` and ``raw`` is the psycopg
      connection. Tables are created in the ledger's schema (it is on the
      ``search_path``).

    A projector written for both tells them apart with ``projections.base.dialect_of(conn)``.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    #: The SQL dialects ``create``, ``drop`` and ``apply`` are written for (the storage backend's ``dialect``).
    dialects: ClassVar[frozenset[str]] = frozenset({"sqlite"})
    handles: ClassVar[frozenset[str]] = frozenset()
    inline: ClassVar[bool] = True
    builtin: ClassVar[bool] = False
    tables: ClassVar[tuple[str, ...]] = ()
    views: ClassVar[tuple[str, ...]] = ()
    #: A built-in projector that needs no payloads (the Merkle tiles: chain hashes only) catches up by reading
    #: the log itself (``level``), so nothing is decoded for it.
    reads_log: ClassVar[bool] = False

    # The connections are typed ``Any`` so that a subclass may annotate them as its backend's own type.
    def create(self, db: Any) -> None:
        """Create the projector's tables, indexes and views (they do not exist yet)."""
        raise NotImplementedError

    def drop(self, db: Any) -> None:
        """Drop everything ``create`` made; by default the declared ``views`` and ``tables``."""
        for view in self.views:
            db.execute(f'DROP VIEW IF EXISTS "{view}"')
        for table in self.tables:
            db.execute(f'DROP TABLE IF EXISTS "{table}"')

    def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
        """Fold a batch of events (only the handled types, in log order) into the tables."""
        raise NotImplementedError

    def level(self, conn: Any, after: int, head: int) -> None:
        """With ``reads_log``: bring the tables from position ``after`` to ``head`` reading the log directly."""
        raise NotImplementedError

    def wants(self, event: RecordedEvent) -> bool:
        """Whether this projector handles the event's type."""
        return not self.handles or event.type in self.handles

    def purged(self, conn: Any, session_ids: Sequence[str]) -> None:
        """After these sessions were purged (inside the purge's transaction): remove every row you hold
        of them. Override it to do that in place; if you do not, the ledger rebuilds your projector from
        the log instead (correct for any projector, but it replays the whole log on each purge)."""

    # What a projector of your own is given of a purged session: never its earlier events (replayed, their
    # payloads are gone: the runner leaves them out), but the ``purged`` event itself, if it handles it.


def _redacted(event: RecordedEvent) -> bool:
    # A purged session's earlier event, replayed: its payload is gone (``ledger.events.Redacted``).
    return isinstance(event.payload, Redacted)


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
        self._arrange()
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
        self._inline_in_step = False  # every inline projector seen level (see ``behind``)
        self._inline = [p for p in self.projectors if p.inline]
        # Only inline projectors that are not built in have their position rewritten on append.
        self._tracked = [p.name for p in self._inline if not p.builtin]
        # Whether a batch may project its events together at its end: only when every inline projector is
        # a built-in one (a projector of your own may read the built-in tables, so it sees each command's).
        self.defers = not self._tracked

    def get(self, name: str) -> Projector:
        """The registered projector of that name (``InvalidInput`` if none)."""
        for projector in self.projectors:
            if projector.name == name:
                return projector
        known = ", ".join(p.name for p in self.projectors) or "none"
        raise InvalidInput(f"no projector named {name!r} (registered: {known})", field="projection")

    @staticmethod
    def _speaks(store: ProjectionStore, projector: Projector) -> None:
        if store.dialect not in projector.dialects:
            raise InvalidInput(
                f"projector {projector.name!r} is written for {', '.join(sorted(projector.dialects))},"
                f" not for this ledger's {store.dialect}",
                field="projector",
            )

    # -- inside a write transaction ----------------------------------------------

    def ensure(self, store: ProjectionStore) -> None:
        """Create missing projectors' tables at position 0, and reset those whose version changed."""
        store.create_projector_positions()
        stored = store.projector_positions() or {}
        for projector in self.projectors:
            self._speaks(store, projector)
            db = schema_handle(store, projector)
            found = stored.get(projector.name)
            if found is not None and found[0] == projector.version:
                continue
            if found is not None:
                projector.drop(db)
            projector.create(db)
            store.reset_projector(projector.name, projector.version)

    def ready(self, store: ProjectionStore, head: int) -> bool:
        """Whether every projector exists at its current version and the inline ones are level (a read)."""
        stored = store.projector_positions()
        if stored is None:
            return False
        if any(stored.get(p.name, (None,))[0] != p.version for p in self.projectors):
            return False
        return not self._behind(stored, head, lazy=False)

    def behind(self, store: ProjectionStore, head: int, *, lazy: bool = False) -> list[Projector]:
        """Inline projectors (or, with ``lazy``, the lazy ones) that are not level with ``head``.

        A built-in inline projector counts as behind until it is marked ``IN_STEP``. Once every inline
        projector is a built-in one seen ``IN_STEP``, the answer for them stays "none" without a query: every
        writer of the ledger keeps them level in the transaction that appends (a rebuild or an import marks
        them ``IN_STEP`` again before it commits).
        """
        if not lazy and self._inline_in_step and not self._tracked:
            return []
        found = self._behind(store.projector_positions() or {}, head, lazy=lazy)
        if not lazy and not found and not self._tracked:
            self._inline_in_step = True
        return found

    def _behind(self, stored: dict[str, tuple[int, int]], head: int, *, lazy: bool) -> list[Projector]:
        out = []
        for p in self.projectors:
            position = stored.get(p.name, (0, 0))[1]
            if p.inline == lazy or position == IN_STEP:
                continue
            if position < head or (p.builtin and p.inline):
                out.append(p)
        return out

    def catch_up(
        self, store: ProjectionStore, projectors: Sequence[Projector], head: int, progress: Progress | None = None
    ) -> None:
        """Replay events from each projector's stored position up to ``head``, in large batches: the log is
        read (and decoded) once, each batch handed to every projector that has not seen it yet."""
        stored = store.projector_positions() or {}
        starts = [(projector, max(stored.get(projector.name, (0, 0))[1], 0)) for projector in projectors]
        for projector, after in starts:
            if projector.reads_log and after < head:
                projector.level(connection_for(store, projector), after, head)
        starts = [(projector, head if projector.reads_log else after) for projector, after in starts]
        start = min((at for _, at in starts), default=head)
        done = start
        while done < head:
            batch = [e for e in store.read(after=done, limit=REPLAY_BATCH) if e.position <= head]
            if not batch:
                break
            for projector, after in starts:
                if batch[-1].position <= after:
                    continue
                wanted = [
                    e for e in batch
                    if e.position > after and projector.wants(e) and (projector.builtin or not _redacted(e))
                ]
                if wanted:
                    projector.apply(connection_for(store, projector), wanted)
            done = batch[-1].position
            if progress is not None:
                progress(done - start, head - start)
        for projector, _ in starts:
            level = IN_STEP if projector.builtin and projector.inline else head
            store.set_projector_positions((projector.name,), level)

    def rebuild(
        self, store: ProjectionStore, projectors: Sequence[Projector], head: int, progress: Progress | None = None
    ) -> None:
        """Drop the projectors' tables, create them anew, and replay the whole log into them."""
        for projector in projectors:
            db = schema_handle(store, projector)
            projector.drop(db)
            projector.create(db)
            store.reset_projector(projector.name, projector.version)
        self.catch_up(store, projectors, head, progress)

    def pin(self, store: ProjectionStore, head: int) -> None:
        """Before rows are added without the inline projectors (a copy, an import): record where they stand."""
        store.pin_projectors(head, IN_STEP)

    def purged(self, store: ProjectionStore, session_ids: Sequence[str], head: int) -> None:
        """After a purge redacted these sessions (inside its transaction): every projector removes what it
        still holds of them. A built-in one, or one of your own that overrides ``Projector.purged``, is asked
        to; any other projector of your own is rebuilt from the log, which no longer gives it those
        sessions' earlier events. A lazy one is level with ``head`` afterwards (it re-read its source)."""
        rebuild = []
        for projector in self.projectors:
            if projector.builtin or type(projector).purged is not Projector.purged:
                projector.purged(connection_for(store, projector), session_ids)
            else:
                rebuild.append(projector)
        if rebuild:
            self.rebuild(store, rebuild, head)
        # (One that reads the log itself, the Merkle tiles, lost nothing: a purge keeps every chain hash.)
        lazy = [p.name for p in self.projectors if not p.inline and not p.reads_log]
        if lazy:
            store.set_projector_positions(lazy, head)

    def apply_inline(self, store: ProjectionStore, events: Sequence[RecordedEvent]) -> None:
        """Fold freshly appended events into every inline projector and advance the tracked positions."""
        for projector in self._inline:
            conn = store.connection if projector.builtin else store.plain_connection
            if projector.handles:
                wanted = [e for e in events if e.type in projector.handles]
                if wanted:
                    projector.apply(conn, wanted)
            else:
                projector.apply(conn, events)
        if self._tracked:
            store.set_projector_positions(self._tracked, events[-1].position)
