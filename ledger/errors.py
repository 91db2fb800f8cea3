"""The exception tree of session-ledger.

Every failure a user can see is a :class:`LedgerError`; nothing raw from
``sqlite3`` or a ``KeyError`` escapes the public API::

    LedgerError
    ├── SessionNotFound        (also a LookupError)
    ├── SessionExists
    ├── SessionClosed
    │   └── SessionPurged
    ├── ConcurrencyError
    ├── InvalidInput           (also a ValueError)
    │   ├── LimitExceeded
    │   └── FileAccessError    (also an OSError)
    ├── IntegrityError
    ├── UnsupportedFormat
    └── StorageError
        ├── LedgerBusy
        ├── LedgerNotFound     (also a FileNotFoundError)
        ├── ReadOnlyLedger
        └── MissingExtra       (also an ImportError)

Errors carry structured attributes (``session_id``, ``field``, ``limit``,
``expected``, ``actual``) so callers can act on them without parsing text.
A command that raises has written nothing.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base class of every error session-ledger raises."""

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        field: str | None = None,
        limit: Any = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.session_id = session_id
        self.field = field
        self.limit = limit
        self.expected = expected
        self.actual = actual


class SessionNotFound(LedgerError, LookupError):
    """The session id names no session in this ledger."""


class SessionExists(LedgerError):
    """A session with this id already exists."""


class SessionClosed(LedgerError):
    """The session is completed: its conversation, invocations and data are frozen."""


class SessionPurged(SessionClosed):
    """The session was purged: it takes no more commands, and its past before the purge is gone."""


class ConcurrencyError(LedgerError):
    """The caller's ``expected_version`` is not the session's current version."""


class InvalidInput(LedgerError, ValueError):
    """An argument has the wrong type, shape or value; ``field`` names it."""


class LimitExceeded(InvalidInput):
    """An argument is over a hard limit; ``limit`` holds the limit."""


class IntegrityError(LedgerError):
    """The stored log is damaged or contradicts itself (see ``Ledger.verify``)."""


class UnsupportedFormat(LedgerError):
    """The file is not a ledger, or was written by a newer format version."""


class StorageError(LedgerError):
    """SQLite failed underneath the ledger (I/O error, disk full, ...)."""


class LedgerBusy(StorageError):
    """Another connection held the write lock for longer than the busy timeout."""


class FileAccessError(InvalidInput, OSError):
    """A file or directory named by an argument cannot be read or written (``field`` names the argument)."""


class LedgerNotFound(StorageError, FileNotFoundError):
    """Opened with ``create=False``: there is no ledger at the path (no file, an empty file, or no schema);
    ``actual`` is where it looked (a URL without its password)."""


class ReadOnlyLedger(StorageError):
    """The ledger was opened read-only (its file or directory is not writable): it can be read, not changed."""


class MissingExtra(StorageError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra
