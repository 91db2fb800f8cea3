"""The engine: one storage handle, its lock and transactions, the state cache and the command runner.

Every collaborator of the facade (commands, reads, retention, transfer) works
through an ``Engine``: ``read`` and ``write`` frame a transaction under the
lock, ``run`` turns a decision into one appended, projected and cached event,
and ``view`` resolves a state now or as of a version, position or instant.

One engine may be shared by many threads (a re-entrant lock serialises use of
its one connection) and several processes may open the same ledger (each
command is one write transaction; the storage's busy timeout makes writers
queue). A command decides against the state inside its transaction, and
either appends exactly one event or raises having written nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from projections.base import Connection, ProjectionRunner, Projector, check_custom
from projections.merkle import MerkleProjector
from projections.records import RecordsProjector
from projections.search import SearchProjector
from projections.sessions import SessionsProjector

from . import events as ev
from .errors import (
    ConcurrencyError,
    IntegrityError,
    InvalidInput,
    LedgerError,
    ReadOnlyLedger,
    SessionExists,
    SessionNotFound,
    SessionPurged,
    StorageError,
)
from .events import RecordedEvent
from .session import Session, apply, fold
from .snapshots import SnapshotPolicy, retention_victims
from .ids import new_id as default_new_id
from .storage import Storage, open_storage
from .transactions import Timings, Transaction, WriterStats, WriteScope
from .times import time_arg, utc_now
from .validation import Progress, check_id, check_int, check_progress

log = logging.getLogger("ledger")

Clock = Callable[[], datetime]
# Decides, against the session's current state (None: it does not exist), the one event a command appends,
# or None when the command would change nothing.
Decide = Callable[[Session | None], ev.Event | None]


class Engine:
    """Owns the storage and everything that frames its use; the facade's collaborators share one."""

    def __init__(
        self,
        storage: Storage,
        runner: ProjectionRunner,
        *,
        clock: Clock,
        new_id: Callable[[], str],
        new_salt: Callable[[], bytes] | None = None,
        snapshots: SnapshotPolicy,
        cache_size: int,
    ) -> None:
        self.storage = storage
        self.runner = runner
        self.clock = clock
        self.new_id = new_id
        self.new_salt = new_salt
        self.snapshots = snapshots
        self.lock = threading.RLock()
        self._cache_size = cache_size
        # session_id -> (state, epoch at which it was last known current)
        self._cache: OrderedDict[str, tuple[Session, int]] = OrderedDict()
        self._epoch = 0
        # The open write transaction (a command or a batch), or None; set and cleared by ``WriteScope``.
        self.transaction: Transaction | None = None
        self.timings = Timings()
        # A purge committed but could not yet empty the WAL of its text (see ``finish_scrub``).
        self.scrub_pending = False
        self._closed = False
        self._projections_ready = False
        self.appended = False
        try:
            self._prepare()
        except BaseException:
            storage.close()
            raise

    # -- lifecycle ----------------------------------------------------------------

    @property
    def path(self) -> str:
        """Where the ledger lives."""
        return self.storage.path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._closed

    def usable(self) -> None:
        """Raise ``StorageError`` once the engine is closed."""
        if self._closed:
            raise StorageError(f"the ledger {self.path!r} is closed")

    def close(self) -> None:
        """Level the lazy projections if this engine appended, finish a pending scrub if it can, then close
        the storage (idempotent)."""
        with self.lock:
            if not self._closed and self.transaction is None and self.appended:
                try:
                    self.level_lazy("search")
                except LedgerError as exc:  # a read-only or busy file: the next search levels it
                    log.debug("search index not levelled on close: %s", exc)
            if not self._closed and self.transaction is None and self.scrub_pending:
                self.finish_scrub()
            if not self._closed:
                self._closed = True
                self.storage.close()

    def writer_stats(self) -> WriterStats:
        """What this ledger's write transactions have cost since it was opened (``WriterStats``)."""
        timings = self.timings
        return WriterStats(timings.transactions, timings.wait, timings.held, self.storage.round_trips)

    def finish_scrub(self, *, look: bool = False) -> bool:
        """Empty the WAL of a purge's text now if no reader's snapshot still holds it; True when no scrub
        is pending any more. ``look``: first read the ledger's record (another process may have purged).

        A purge records the scrub as pending in its own transaction and clears the record once the WAL is
        empty, so a crash in between leaves it pending, to be finished at the next open.
        """
        with self.lock:
            if self._closed or self.transaction is not None:
                return not self.scrub_pending
            try:
                if look:
                    with self.read("scrub") as storage:
                        self.scrub_pending = storage.pending_scrub()
                if not self.scrub_pending or not self.storage.truncate_wal():
                    return not self.scrub_pending
                self.scrub_pending = False
                if self.storage.pending_scrub():  # a backend that records scrubs (SQLite): clear the record
                    with self.write("scrub"):
                        self.storage.set_pending_scrub(False)
                    self.storage.truncate_wal()  # the record's own page; nothing purged is left in it
            except LedgerError as exc:  # busy or read-only: still pending, finished at a later moment
                log.debug("scrub not finished: %s", exc)
                self.scrub_pending = True
                return False
            return True

    def in_batch(self) -> bool:
        """Whether this thread is inside a batch (an open write transaction it owns)."""
        tx = self.transaction
        return tx is not None and tx.owner == threading.get_ident()

    def outside_batch(self, what: str) -> None:
        """Refuse whole-ledger work inside this thread's batch: it would see, or commit, half a batch."""
        if self.in_batch():
            raise InvalidInput(f"cannot {what} inside a batch", field="batch")

    # -- transactions ---------------------------------------------------------------

    def write(self, doing: str) -> WriteScope:
        """A write transaction under the lock (joining this thread's batch, if one is open)."""
        return WriteScope(self, doing)

    @contextmanager
    def read(self, doing: str) -> Iterator[Storage]:
        """A read transaction under the lock (inside a write one, that one); catches the projections up
        first when another process appended without one of ours."""
        storage = self.storage
        with self.lock, storage.errors(doing):
            self.usable()
            if storage.in_transaction:
                if self.transaction is not None:
                    self.project_pending()  # a read inside a batch sees the batch's own commands
                yield storage
                return
            before = storage.head.position
            if storage.begin(write=False):
                self.saw_changes(before)
                if self.runner.behind(storage, storage.head.position):
                    storage.commit()
                    self.writable_to(doing)
                    with self.write("catch up"):
                        self.catch_up()
                    storage.begin(write=False)
            try:
                yield storage
            finally:
                storage.commit()

    @contextmanager
    def query(self, doing: str) -> Iterator[Connection]:
        """A read of the read tables alone (listings, search, usage): on a pooled connection where the backend
        has a pool (PostgreSQL), so threads' queries run beside each other and beside a write; else, or
        inside this thread's batch (whose own commands it must see), as :meth:`read` does."""
        pooled = None if self.in_batch() else self.storage.pooled_read(doing)
        if pooled is None:
            with self.read(doing) as storage:
                yield storage.connection
            return
        self.usable()
        with pooled as connection:
            yield connection

    def project_pending(self) -> None:
        """Inside a batch: fold the events appended so far and not yet projected into the projections."""
        tx = self.transaction
        if tx is not None and tx.unprojected:
            events, tx.unprojected = tx.unprojected, []
            try:
                self.runner.apply_inline(self.storage, events)
            except BaseException as exc:
                tx.broken = exc
                raise

    def projected(self) -> Connection:
        """Inside a transaction: the connection to read the projections with, level with every command so
        far (what a batch has not projected yet is projected first)."""
        self.project_pending()
        connection: Connection = self.storage.connection
        return connection

    def unprojected(self) -> tuple[Connection, Sequence[RecordedEvent]]:
        """Inside a transaction: the connection as the projections stand, and the events of this thread's batch
        not projected into them yet. For a check that needs one fact (is this id taken?), looking at both
        costs less than projecting the batch so far, which would split its folded writes."""
        tx = self.transaction
        connection: Connection = self.storage.connection
        return connection, tx.unprojected if tx is not None else ()

    def wait_for_appends(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds, or less when another connection may have appended (a hint)."""
        self.usable()
        self.storage.wait_for_appends(timeout)

    def invalidate(self) -> None:
        """Forget every cached state (rows arrived outside the commands, by an import)."""
        self._epoch += 1

    def saw_changes(self, before: int) -> None:
        """Another connection committed since this one last looked (the head was at ``before``): forget
        the cached states of the sessions it appended to, so other writers' appends do not make this one
        reload the states of sessions they never touched. Every state changes only by an appended event;
        a change without one (or more events than the storage looks through) forgets them all."""
        after = self.storage.head.position
        if after > before:
            if not self._cache:
                return
            changed = self.storage.sessions_after(before)
            if changed is not None:
                for session_id in changed:
                    self._cache.pop(session_id, None)
                return
        self._epoch += 1

    # -- projections ----------------------------------------------------------------

    def _prepare(self) -> None:
        """Make the projections ready before anything is served; a read when they already are, so opening
        a ledger never waits for another process's write transaction unless there is catching up to do."""
        storage = self.storage
        with self.lock, storage.errors("open"):
            if storage.begin(write=False):
                self._epoch += 1
            try:
                ready = self.runner.ready(storage, storage.head.position)
            finally:
                storage.commit()
        if ready:
            self._projections_ready = True
        else:
            self.writable_to("open")
            with self.write("open"):  # creates or catches up the projections
                self.catch_up()
            # A new or upgraded search index is filled now, not at the first search, so SQL tools reading the
            # file (Datasette's ?_search=) find what is in it.
            self.level_lazy("search")
        self.finish_scrub(look=True)  # a scrub left pending by a purge (here or in another process)

    def catch_up(self) -> None:
        """Inside a write transaction: set up the projections once, then replay what any of them missed."""
        storage = self.storage
        if not self._projections_ready:
            self.runner.ensure(storage)
            self._projections_ready = True
        head = storage.head.position
        behind = self.runner.behind(storage, head)
        if behind:
            self.runner.catch_up(storage, behind, head)

    def writable_to(self, doing: str) -> None:
        """Before bringing the read tables level with the log: refuse, saying why, on a read-only ledger."""
        if self.storage.read_only:
            raise ReadOnlyLedger(
                f"{doing}: {self.path!r} is open read-only and its read tables are behind its log (a writer has"
                " not brought them level, or an older version wrote them); open it once with write access"
            )

    def level_lazy(self, name: str) -> None:
        """Bring one lazy projector level before a read that uses it (``"search"`` before a search, ``"merkle"``
        before a proof): neither waits for the other's backlog."""
        with self.lock:
            with self.read("catch up") as storage:
                behind = self._lazy_behind(storage, name)
            if behind:
                self.writable_to(name)
                with self.write("catch up"):
                    storage = self.storage
                    self.runner.catch_up(storage, self._lazy_behind(storage, name), storage.head.position)

    def _lazy_behind(self, storage: Storage, name: str) -> list[Projector]:
        return [p for p in self.runner.behind(storage, storage.head.position, lazy=True) if p.name == name]

    def register(self, projector: Projector) -> None:
        """Add a projector of your own; its tables are created and caught up from position 0 now."""
        self.outside_batch("register a projector")
        check_custom(projector)
        with self.write("register"):
            self.runner.add(projector)
            try:
                self.runner.ensure(self.storage)
                self.catch_up()
            except BaseException:
                self.runner.remove(projector)
                raise

    def rebuild(self, name: str | None = None, progress: Progress | None = None) -> int:
        """Drop one projection (or all) and replay the whole log into it; returns the events replayed.

        Runs in one transaction: other writers wait until it is done.
        """
        self.outside_batch("rebuild")
        check_progress(progress)
        with self.write("rebuild"):
            projectors = self.runner.projectors if name is None else [self.runner.get(name)]
            head = self.storage.head.position
            self.runner.rebuild(self.storage, projectors, head, progress)
        return head

    # -- state -----------------------------------------------------------------------

    def salt(self) -> bytes:
        """The salt of the next event: 16 random bytes, or what ``new_salt`` gives (8-64 bytes)."""
        if self.new_salt is None:
            return os.urandom(16)
        salt = self.new_salt()
        if not isinstance(salt, bytes) or not 8 <= len(salt) <= 64:
            raise InvalidInput(f"new_salt must return 8-64 bytes; got {salt!r}", field="new_salt")
        return salt

    def remember(self, state: Session) -> None:
        """Cache a committed state as current."""
        self._cache[state.session_id] = (state, self._epoch)
        self._cache.move_to_end(state.session_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, session_id: str) -> None:
        """Drop a session's cached state (its events were rewritten by a purge)."""
        self._cache.pop(session_id, None)

    def state(self, session_id: str) -> Session | None:
        """Inside a transaction: the current state, pending in this batch, cached, or snapshot + tail."""
        if self.transaction is not None and session_id in self.transaction.pending:
            return self.transaction.pending[session_id]
        cached = self._cache.get(session_id)
        if cached is not None and cached[1] == self._epoch:
            self._cache.move_to_end(session_id)
            return cached[0]
        storage = self.storage
        version = storage.session_version(session_id)
        if version is None:
            self._cache.pop(session_id, None)
            return None
        base = cached[0] if cached is not None and cached[0].version <= version else None
        if base is None or version - base.version > max(self.snapshots.every, 1):
            snap = self.snapshots.pick(session_id, storage.snapshot_candidates(session_id, version))
            if snap is not None and (base is None or snap.version > base.version):
                base = snap
        state = fold(storage.iter_session(session_id, after_version=base.version if base else 0), base)
        if state is None or state.version != version:
            raise IntegrityError(f"session {session_id!r} does not fold to its latest version {version}", session_id=session_id)
        self.remember(state)
        return state

    def existing(self, session_id: str) -> Session:
        """Inside a transaction: the current state (``SessionNotFound`` when there is none)."""
        state = self.state(session_id)
        if state is None:
            raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
        return state

    # -- as-of states -------------------------------------------------------------------

    def target(
        self, session_id: str, version: int | None, position: int | None, at: datetime | None
    ) -> int | None:
        """Inside a transaction: the version meant by at most one of version/position/at (None: current).

        Costs index lookups only: the current state is not loaded to answer it.
        """
        given = [name for name, value in (("version", version), ("position", position), ("at", at)) if value is not None]
        if len(given) > 1:
            raise InvalidInput(
                f"session {session_id!r}: give at most one of version, position and at (got {', '.join(given)})",
                session_id=session_id,
                field=given[1],
            )
        storage = self.storage
        latest = storage.latest(session_id)
        if latest is None:
            raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
        current, latest_type = latest
        if not given:
            return None
        if latest_type == ev.PURGED and not (
            version == current or position is not None and position >= storage.head.position
        ):
            raise SessionPurged(
                f"session {session_id!r} was purged at version {current}: its earlier states are gone",
                session_id=session_id,
            )
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current:
                raise InvalidInput(
                    f"session {session_id!r} has versions 1 to {current}; got version {version!r}",
                    session_id=session_id,
                    field="version",
                    limit=current,
                )
            return version
        if position is not None:
            found = storage.version_at(session_id, current, position=check_int(position, "position", session_id))
            where = f"at position {position}"
        else:
            found = storage.version_at(session_id, current, at=time_arg(at, "at", session_id))
            where = f"at {at}"
        if found == 0:
            raise SessionNotFound(f"session {session_id!r} did not exist yet {where}", session_id=session_id)
        return found

    def state_at(self, session_id: str, version: int) -> Session:
        """Inside a transaction: the state right after ``version``, from the nearest snapshot and the events after it."""
        current = self.state(session_id)
        if current is not None and current.version == version:
            return current
        storage = self.storage
        base = self.snapshots.pick(session_id, storage.snapshot_candidates(session_id, version))
        tail = storage.iter_session(session_id, after_version=base.version if base else 0, until_version=version)
        state = fold(tail, base)
        if state is None or state.version != version:
            raise IntegrityError(f"session {session_id!r} does not fold to version {version}", session_id=session_id)
        return state

    def view(
        self, session_id: str, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Session:
        """Inside a transaction: the state now, or as of the one target given."""
        target = self.target(session_id, version, position, at)
        return self.existing(session_id) if target is None else self.state_at(session_id, target)

    # -- snapshots ------------------------------------------------------------------------

    def checkpoint(self, session_id: str) -> int:
        """Snapshot the session's current state now; returns the version snapshotted."""
        sid = check_id(session_id, "session_id")
        with self.write("checkpoint"):
            state = self.existing(sid)
            storage = self.storage
            row_hash = storage.event_hash(sid, state.version)
            if row_hash is None:
                raise IntegrityError(f"session {sid!r} has no event at its version {state.version}", session_id=sid)
            storage.save_snapshot(state, row_hash, storage.head.recorded_at)
        return state.version

    def drop_snapshots(self, keep: int = 3, *, bucket: timedelta | None = timedelta(days=1)) -> int:
        """Apply the retention policy: per session keep the last ``keep`` snapshots plus the newest in each
        ``bucket`` of time (None: no buckets); returns how many were dropped. Only a cache is lost."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise InvalidInput(f"keep must be an integer >= 0; got {keep!r}", field="keep")
        if bucket is not None and (not isinstance(bucket, timedelta) or bucket <= timedelta(0)):
            raise InvalidInput(f"bucket must be a positive timedelta or None; got {bucket!r}", field="bucket")
        with self.write("drop_snapshots"):
            victims = retention_victims(self.storage.snapshot_index(), keep, bucket)
            self.storage.drop_snapshots(victims)
        return len(victims)

    # -- commands ---------------------------------------------------------------------------

    def run(
        self,
        session_id: str,
        type_: str,
        decide: Decide,
        *,
        expected_version: int | None,
        event_id: str | None,
        create: bool = False,
        generated_id: bool = False,
        noop: ev.Event | None = None,
    ) -> tuple[Session | None, int]:
        """Run one command; returns the session's state and version after it.

        ``decide`` validates against the current state and returns the event,
        or None when the command changes nothing: then nothing is written,
        unless an ``event_id`` was given, in which case ``noop`` is recorded
        so that a retry is recognised. A retried ``event_id`` returns the
        version it got the first time (and no state, unless it created).
        """
        if expected_version is not None:
            check_int(expected_version, "expected_version", session_id)
        if event_id is not None:
            event_id = check_id(event_id, "event_id", session_id)
        storage = self.storage
        scope = self.write(type_)
        with scope as tx:
            if event_id is not None:
                prior = storage.find_event(event_id)
                if prior is not None:
                    return self._retried(session_id, type_, event_id, *prior, create=create, generated_id=generated_id)
            state = self.state(session_id)
            if create and state is not None:
                raise SessionExists(f"session {session_id!r} already exists", session_id=session_id)
            if not create and state is None:
                raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
            current = state.version if state is not None else 0
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(
                    f"session {session_id!r} is at version {current}, not the expected {expected_version}",
                    session_id=session_id,
                    expected=expected_version,
                    actual=current,
                )
            event = decide(state)
            if event is None:
                if event_id is None or noop is None:
                    return state, current
                event = noop
            # The built-in generator's ids are well-formed by construction; one of your own is checked.
            new_id = event_id or (self.new_id() if self.new_id is default_new_id
                                  else check_id(self.new_id(), "generated event_id", session_id))
            now = self.clock()
            salt = self.salt()
            try:
                recorded = storage.append(session_id, current + 1, event, new_id, now, salt)
                new_state = apply(state, recorded)
                tx.pending[session_id] = new_state
                if scope.outer or not self.runner.defers:
                    self.runner.apply_inline(storage, (recorded,))
                else:
                    # Inside a batch the built-in projections fold its events together (a session's row is
                    # updated once, rows are written many at a time) before the commit or a read in it.
                    tx.unprojected.append(recorded)
                self.appended = True
                if self.snapshots.due(new_state.version):
                    storage.save_snapshot(new_state, bytes.fromhex(recorded.hash), storage.head.recorded_at)
                if not scope.outer and not self.runner.defers:
                    # A projector of your own runs per command in a batch: its failure surfaces now, as its own.
                    storage.settle()
            except BaseException as exc:
                tx.broken = exc
                raise
            return new_state, new_state.version

    def _retried(
        self,
        session_id: str,
        type_: str,
        event_id: str,
        sid: str,
        version: int,
        stored_type: str,
        *,
        create: bool,
        generated_id: bool,
    ) -> tuple[Session | None, int]:
        if generated_id and stored_type == type_:
            session_id = sid  # a create retried without naming the session it generated
        if sid != session_id or stored_type != type_:
            raise InvalidInput(
                f"event_id {event_id!r} already recorded a {stored_type!r} event of session {sid!r}",
                session_id=session_id,
                field="event_id",
            )
        if not create:
            return None, version
        return fold(self.storage.iter_session(session_id, until_version=version)), version


def open_engine(
    path: str,
    *,
    durability: str = "normal",
    busy_timeout: float = 5.0,
    snapshot_every: int = 100,
    cache_size: int = 4096,
    projectors: Iterable[Projector] = (),
    clock: Clock | None = None,
    new_id: Callable[[], str] | None = None,
    new_salt: Callable[[], bytes] | None = None,
    create: bool = True,
) -> Engine:
    """Open (or, with ``create``, create) the ledger at ``path`` with the built-in projectors plus ``projectors``;
    the arguments were checked by ``validation.check_options``."""
    custom = list(projectors)
    for projector in custom:
        check_custom(projector)
    runner = ProjectionRunner([SessionsProjector(), RecordsProjector(), SearchProjector(), MerkleProjector(), *custom])
    storage = open_storage(path, durability=durability, busy_timeout=busy_timeout, create=create)
    return Engine(
        storage,
        runner,
        clock=clock or utc_now,
        new_id=new_id or default_new_id,
        new_salt=new_salt,
        snapshots=SnapshotPolicy(snapshot_every),
        cache_size=cache_size,
    )
