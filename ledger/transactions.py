"""Write transactions: one ``BEGIN IMMEDIATE`` per command or batch, committed or rolled back whole."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING

from .errors import LedgerBusy, StorageError
from .log import sqlite_errors, translate
from .session import Session

if TYPE_CHECKING:
    from .ledger import Ledger


class Transaction:
    """The open write transaction: states written in it, not yet visible to the cache."""

    __slots__ = ("broken", "owner", "pending")

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.pending: dict[str, Session] = {}
        # Set when a command failed after it began writing: the transaction must not commit.
        self.broken: BaseException | None = None


class WriteScope:
    """The write scope of one command or batch: lock, ``BEGIN IMMEDIATE``, then commit or roll back.

    A command inside a batch joins the batch's transaction. A class rather
    than a generator context manager, because it runs once per append.
    """

    __slots__ = ("doing", "ledger", "outer")

    def __init__(self, ledger: Ledger, doing: str) -> None:
        self.ledger = ledger
        self.doing = doing
        self.outer = False

    def __enter__(self) -> Transaction:
        led = self.ledger
        led._lock.acquire()
        try:
            led._usable()
            tx = led._tx
            if tx is not None:
                if tx.broken is not None:
                    raise StorageError(
                        f"{self.doing}: the batch was aborted by an earlier failure: {tx.broken}"
                    ) from tx.broken
                return tx
            try:
                changed = led._log.begin(write=True)
            except sqlite3.Error as exc:
                error = translate(exc, self.doing)
                if isinstance(error, LedgerBusy):
                    timeout = led._log.busy_timeout
                    error = LedgerBusy(
                        f"{self.doing}: {led.path!r} stayed locked by another writer for more than the busy timeout"
                        f" ({timeout:g} s); nothing was written",
                        limit=timeout,
                    )
                raise error from exc
            self.outer = True
            tx = led._tx = Transaction()
            if changed:
                led._epoch += 1
                try:
                    with sqlite_errors(self.doing):
                        led._catch_up()
                except BaseException:
                    led._tx = None
                    led._log.rollback()
                    raise
            return tx
        except BaseException:
            led._lock.release()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        led = self.ledger
        try:
            if isinstance(exc, sqlite3.Error) and led._tx is not None:
                led._tx.broken = exc
            if not self.outer:
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.doing) from exc
                return
            tx = led._tx
            assert tx is not None
            led._tx = None
            failure = exc if exc is not None else tx.broken
            if failure is None:
                try:
                    led._log.commit()
                except sqlite3.Error as commit_error:
                    failure = commit_error
                else:
                    for state in tx.pending.values():
                        led._remember(state)
                    return
            led._log.rollback()
            if isinstance(failure, sqlite3.Error):
                raise translate(failure, self.doing) from failure
            if exc is None:
                raise StorageError(f"{self.doing} rolled back: a command failed part-way: {failure}") from failure
        finally:
            led._lock.release()
