"""session-ledger: an embedded, event-sourced ledger of AI-agent sessions on SQLite.

Start with :class:`Ledger`; every error it raises is a :class:`LedgerError`.

The public names load on first use (PEP 562), so importing a pure-core module
such as ``ledger.events`` does not load the facade, and ``projections`` can
build on the core without a cycle.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from .errors import (
    ConcurrencyError,
    FileAccessError,
    IntegrityError,
    InvalidInput,
    LedgerBusy,
    LedgerError,
    LedgerNotFound,
    LimitExceeded,
    MissingExtra,
    ReadOnlyLedger,
    SessionClosed,
    SessionExists,
    SessionNotFound,
    SessionPurged,
    StorageError,
    UnsupportedFormat,
)

if _TYPE_CHECKING:
    from projections import ANY, Page, Projector, Record, SearchHit, SessionFilter, SessionSummary, Statistics, ToolUsage

    from .bundles import BundleReport, verify_bundle
    from .chain import Digest, VerifyReport
    from .datasette import datasette_metadata
    from .events import Event, RecordedEvent
    from .ledger import Ledger, SessionHandle
    from .proofs import TreeHead
    from .signing import Checkpoint, Signer, Verifier, generate_keys
    from .session import Message, Session
    from .transactions import WriterStats
    from .validation import Limits

__version__ = "0.1.0"

# Public name -> the module that defines it (loaded when the name is first used).
_LAZY = {
    "ANY": "projections",
    "BundleReport": "ledger.bundles",
    "Checkpoint": "ledger.signing",
    "Signer": "ledger.signing",
    "TreeHead": "ledger.proofs",
    "Verifier": "ledger.signing",
    "generate_keys": "ledger.signing",
    "verify_bundle": "ledger.bundles",
    "Digest": "ledger.chain",
    "Event": "ledger.events",
    "Ledger": "ledger.ledger",
    "Limits": "ledger.validation",
    "Message": "ledger.session",
    "Page": "projections",
    "Projector": "projections",
    "Record": "projections",
    "RecordedEvent": "ledger.events",
    "SearchHit": "projections",
    "Session": "ledger.session",
    "SessionFilter": "projections",
    "SessionHandle": "ledger.ledger",
    "SessionSummary": "projections",
    "Statistics": "projections",
    "ToolUsage": "projections",
    "VerifyReport": "ledger.chain",
    "WriterStats": "ledger.transactions",
    "datasette_metadata": "ledger.datasette",
}

__all__ = [
    "ANY",
    "BundleReport",
    "Checkpoint",
    "ConcurrencyError",
    "Digest",
    "Event",
    "FileAccessError",
    "IntegrityError",
    "InvalidInput",
    "Ledger",
    "LedgerBusy",
    "LedgerError",
    "LedgerNotFound",
    "LimitExceeded",
    "Limits",
    "Message",
    "MissingExtra",
    "Page",
    "Projector",
    "ReadOnlyLedger",
    "Record",
    "RecordedEvent",
    "SearchHit",
    "Session",
    "SessionClosed",
    "SessionExists",
    "SessionFilter",
    "SessionHandle",
    "SessionNotFound",
    "SessionPurged",
    "SessionSummary",
    "Signer",
    "Statistics",
    "StorageError",
    "ToolUsage",
    "TreeHead",
    "UnsupportedFormat",
    "Verifier",
    "VerifyReport",
    "WriterStats",
    "datasette_metadata",
    "generate_keys",
    "verify_bundle",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
