"""session-ledger: an embedded, event-sourced ledger of AI-agent sessions on SQLite.

Start with :class:`Ledger`; every error it raises is a :class:`LedgerError`.
"""

from projections import ANY, Page, Projector, SearchHit, SessionSummary, Statistics, ToolUsage

from .chain import Digest, VerifyReport
from .errors import (
    ConcurrencyError,
    IntegrityError,
    InvalidInput,
    LedgerBusy,
    LedgerError,
    LimitExceeded,
    SessionClosed,
    SessionExists,
    SessionNotFound,
    SessionPurged,
    StorageError,
    UnsupportedFormat,
)
from .events import Event, RecordedEvent
from .handle import SessionHandle
from .ledger import Ledger
from .session import Message, Session
from .validation import Limits

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "ConcurrencyError",
    "Digest",
    "Event",
    "IntegrityError",
    "InvalidInput",
    "Ledger",
    "LedgerBusy",
    "LedgerError",
    "LimitExceeded",
    "Limits",
    "Message",
    "Page",
    "Projector",
    "RecordedEvent",
    "SearchHit",
    "Session",
    "SessionClosed",
    "SessionExists",
    "SessionHandle",
    "SessionNotFound",
    "SessionPurged",
    "SessionSummary",
    "Statistics",
    "StorageError",
    "ToolUsage",
    "UnsupportedFormat",
    "VerifyReport",
]
