"""verify's deep mode: the read tables checked against the log.

The chain proves the log; the read tables (``sessions``, ``messages``,
``invocations``, tags, metadata, data, segments, and the tables of your own
projectors) are a cache folded from it, and ``list_sessions``, ``messages``,
``statistics``, ``search_messages`` and ``usage`` answer from them. A hand
edit of a read table would be served silently, so the deep mode rebuilds
every inline projection from the log into a scratch twin of the ledger (in
memory for SQLite, a temporary schema for PostgreSQL) and compares them, table
by table and row by row, naming the first table and row that differ.
"""

from __future__ import annotations

import msgspec

from projections.base import table_rows

from .chain import VerifyReport
from .engine import Engine, open_engine

_COPY = 5000


def check_projections(engine: Engine, report: VerifyReport) -> VerifyReport:
    """Inside one read transaction: compare each inline projector's tables with their rebuild from the log."""
    storage = engine.storage
    projectors = [p for p in engine.runner.projectors if p.inline]
    where = storage.twin_path()
    try:
        twin = open_engine(where, projectors=[p for p in projectors if not p.builtin])
        try:
            with twin.write("verify"):
                target = twin.storage
                twin.runner.pin(target, 0)
                after, head = 0, storage.head.position
                while after < head:
                    rows = storage.rows(after=after, until=head, limit=_COPY)
                    if not rows:
                        break
                    target.insert_rows(rows)
                    after = rows[-1][0]
                twin.catch_up()
            for projector in projectors:
                for table in projector.tables:
                    problem = _difference(table_rows(storage.connection, table), table_rows(twin.storage.connection, table))
                    if problem is not None:
                        return msgspec.structs.replace(
                            report, ok=False, table=table,
                            reason=f"the read table {table!r} differs from the log: {problem}",
                        )
        finally:
            twin.close()
    finally:
        storage.destroy_twin(where)
    return report


def _difference(live: list[tuple[object, ...]], rebuilt: list[tuple[object, ...]]) -> str | None:
    """The first row that differs (its key is its first column), or None when the tables are equal. Both
    lists are in the same order (``table_rows``), so one walk finds it."""
    for have, want in zip(live, rebuilt):
        if have != want:
            if have[0] == want[0]:
                return f"the row with key {have[0]!r} holds {_shown(have)} where the log gives {_shown(want)}"
            if repr(have) < repr(want):
                return f"the row with key {have[0]!r} ({_shown(have)}) is not in the log"
            return f"the row with key {want[0]!r} ({_shown(want)}) is missing"
    if len(live) > len(rebuilt):
        return f"the row with key {live[len(rebuilt)][0]!r} ({_shown(live[len(rebuilt)])}) is not in the log"
    if len(rebuilt) > len(live):
        return f"the row with key {rebuilt[len(live)][0]!r} ({_shown(rebuilt[len(live)])}) is missing"
    return None


def _shown(row: tuple[object, ...], width: int = 200) -> str:
    text = repr(row)
    return text if len(text) <= width else text[: width - 1] + "…"
