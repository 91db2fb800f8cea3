"""Write transactions: one per command or batch, committed or rolled back whole.

A command inside a batch joins the batch's transaction; a failure part-way
through a command marks the transaction broken, so it can only roll back.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import NamedTuple, Protocol

from .errors import LedgerBusy, StorageError
from .events import RecordedEvent
from .session import Session
from .storage import Storage


class WriterStats(NamedTuple):
    """What this ledger's write transactions have cost since it was opened: how many ran, how long they
    waited for the writer lock (the storage's write begin: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
    advisory lock), how long they then held it until their commit or rollback returned, and the round
    trips to the server (None on SQLite, which has no server). Subtract two readings for a span of work;
    it tells an operator whether writers queue on the lock and what one append holds it for."""

    transactions: int
    lock_wait_seconds: float
    lock_held_seconds: float
    round_trips: int | None


class Timings:
    """The running totals behind ``WriterStats`` (two clock reads per write transaction)."""

    __slots__ = ("held", "transactions", "wait")

    def __init__(self) -> None:
        self.transactions = 0
        self.wait = 0.0
        self.held = 0.0


class Host(Protocol):
    """What a write scope needs of its engine (``engine.Engine`` is one)."""

    lock: threading.RLock
    storage: Storage
    transaction: Transaction | None
    timings: Timings

    def usable(self) -> None: ...

    def saw_changes(self, before: int) -> None: ...

    def catch_up(self) -> None: ...

    def remember(self, state: Session) -> None: ...

    def project_pending(self) -> None: ...

    scrub_pending: bool

    def finish_scrub(self, *, look: bool = False) -> bool: ...


class Transaction:
    """The open write transaction: its owner thread, the states written in it (not yet visible to the
    cache), the events appended in it and not yet projected, and the failure that broke it, if any."""

    __slots__ = ("broken", "owner", "pending", "unprojected")

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.pending: dict[str, Session] = {}
        # A batch projects its events together, before its commit or a read inside it (``Engine.run``).
        self.unprojected: list[RecordedEvent] = []
        # Set when a command failed after it began writing: the transaction must not commit.
        self.broken: BaseException | None = None


class WriteScope:
    """The write scope of one command or batch: lock, begin a write transaction, then commit or roll back.

    A command inside a batch joins the batch's transaction. A class rather
    than a generator context manager, because it runs once per append.
    """

    __slots__ = ("doing", "engine", "outer", "since")

    def __init__(self, engine: Host, doing: str) -> None:
        self.engine = engine
        self.doing = doing
        self.outer = False
        self.since = 0.0

    def __enter__(self) -> Transaction:
        engine = self.engine
        engine.lock.acquire()
        try:
            engine.usable()
            tx = engine.transaction
            if tx is not None:
                if tx.broken is not None:
                    raise StorageError(
                        f"{self.doing}: the batch was aborted by an earlier failure: {tx.broken}"
                    ) from tx.broken
                return tx
            storage = engine.storage
            before = storage.head.position
            started = time.perf_counter()
            try:
                changed = storage.begin(write=True)
            except Exception as exc:
                engine.timings.wait += time.perf_counter() - started
                error = storage.translate(exc, self.doing)
                if error is None:
                    raise
                raise (storage.busy(self.doing) if isinstance(error, LedgerBusy) else error) from exc
            self.since = time.perf_counter()
            engine.timings.wait += self.since - started
            self.outer = True
            tx = engine.transaction = Transaction()
            if changed:
                engine.saw_changes(before)
                try:
                    with storage.errors(self.doing):
                        engine.catch_up()
                except BaseException:
                    engine.transaction = None
                    storage.rollback()
                    self._held()
                    raise
            return tx
        except BaseException:
            engine.lock.release()
            raise

    def _held(self) -> None:
        timings = self.engine.timings
        timings.held += time.perf_counter() - self.since
        timings.transactions += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        engine = self.engine
        storage = engine.storage
        try:
            driver_error = None if exc is None else storage.translate(exc, self.doing)
            if driver_error is not None and engine.transaction is not None:
                engine.transaction.broken = exc
            if not self.outer:
                if driver_error is not None:
                    raise driver_error from exc
                return
            tx = engine.transaction
            assert tx is not None
            failure = exc if exc is not None else tx.broken
            if failure is None:
                try:
                    engine.project_pending()
                except Exception as projection_error:
                    failure = projection_error
            engine.transaction = None
            if failure is None:
                try:
                    storage.commit()
                except Exception as commit_error:
                    if storage.translate(commit_error, self.doing) is None:
                        raise
                    failure = commit_error
                else:
                    self._held()
                    for state in tx.pending.values():
                        engine.remember(state)
                    if engine.scrub_pending:  # the first write after a reader let go finishes a purge's scrub
                        engine.finish_scrub()
                    return
            storage.rollback()
            self._held()
            translated = storage.translate(failure, self.doing)
            if translated is not None:
                raise translated from failure
            if exc is None:
                raise StorageError(f"{self.doing} rolled back: a command failed part-way: {failure}") from failure
        finally:
            engine.lock.release()
