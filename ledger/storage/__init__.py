"""Where a ledger's events live: the ``Storage`` interface and its backends.

``open_storage`` picks the backend for a path: PostgreSQL for a
``postgresql://`` or ``postgres://`` URL (psycopg 3, the ``postgres`` extra,
imported only then), SQLite for a file path or ``":memory:"``. Every statement on the ledger's own tables is in a backend
module; nothing above this package writes SQL for them.
"""

from __future__ import annotations

from pathlib import Path

from ..extras import require_extra
from ..scratch import remove_stale
from .base import EMPTY_HEAD, Head, SnapshotRow, Storage
from .sqlite import SQLiteStorage

__all__ = ["EMPTY_HEAD", "Head", "SQLiteStorage", "SnapshotRow", "Storage", "open_storage"]


def open_storage(path: str, *, durability: str, busy_timeout: float, create: bool = True) -> Storage:
    """Open the ledger at ``path`` (checked by ``validation.ledger_path``), creating it when missing if ``create``."""
    if path.startswith(("postgresql://", "postgres://")):
        # psycopg is optional: loaded only for a PostgreSQL ledger
        postgres = require_extra("ledger.storage.postgres", "postgres", "a PostgreSQL ledger")
        storage: Storage = postgres.PostgresStorage(path, durability=durability, busy_timeout=busy_timeout, create=create)
        return storage
    if path != ":memory:" and not path.startswith("file:"):
        remove_stale(Path(path))  # a copy a killed replay left beside this file (see ``ledger.scratch``)
    return SQLiteStorage(path, durability=durability, busy_timeout=busy_timeout, create=create)
