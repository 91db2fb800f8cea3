"""Integration records: the ``records`` read table, an index of the ``record_set`` events, and its queries.

An integration (the LangGraph checkpointer, say) keeps things of its own in a
session as records: ``Ledger.set_record(session_id, kind, key, value, blob=...,
group=...)`` appends a ``record_set`` event and ``remove_records`` a
``records_removed`` one. The session's state only counts them in its version,
so loading a session never grows with them; this projector indexes them:

``records`` has one row per ``record_set`` event: ``position`` (the event's),
``session_id``, ``kind``, ``key``, ``record_group`` and ``removed_at`` (the
position of the event that replaced or removed it, NULL while it stands). The
value and blob are not copied: a read joins the row to its event and decodes
the payload, so what an integration reads back comes from the hash-chained log
itself and is stored once. Reads are indexed whatever the history's length: by
key, by key range (a prefix, before or after a key), by group (in log order)
and by the record's position, now or as of a past position (a row stands at
``P`` when its position is at most ``P`` and it was not removed by then).

Purged sessions' rows are deleted with them (``purged``); their events'
payloads are redacted by the purge, so nothing of them can be read back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import msgspec

from ledger import events as ev
from ledger.errors import IntegrityError
from ledger.events import RecordedEvent
from ledger.times import parse_time

from .base import Connection, Projector, dialect_of
from .postgres import RECORDS_SCHEMA

_STRICT = sqlite3.sqlite_version_info >= (3, 37, 0)
# The highest code point: a key range "starts with p" is p <= key < p + _TOP (byte order on both backends).
_TOP = "\U0010ffff"
_CHUNK = 500  # keys per IN (...) list
_COLUMNS = (
    "r.position, r.session_id, r.kind, r.key, r.record_group, r.removed_at, e.version, e.type, e.schema,"
    " e.recorded_at, e.data"
)


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One record of an integration, as ``Ledger.record`` and ``Ledger.records`` return it: where it sits
    (``session_id``, ``kind``, ``key``, ``group``), what it holds (``value``: JSON, ``blob``: bytes) and the
    event that set it (``position``, ``version``, ``recorded_at``)."""

    session_id: str
    kind: str
    key: str
    group: str | None
    value: Any
    blob: bytes | None
    position: int
    version: int
    recorded_at: datetime


def _record(row: Sequence[Any]) -> Record:
    position, session_id, kind, key, group, _, version, type_, schema, recorded_at, data = row
    payload = ev.decode_payload(type_, schema, data)
    if not isinstance(payload, ev.RecordSet):
        raise IntegrityError(
            f"session {session_id!r}: the records table points at position {position}, which is no record_set"
            " event; run rebuild()",
            session_id=session_id,
        )
    return Record(
        session_id=session_id, kind=kind, key=key, group=group, value=payload.value, blob=payload.blob,
        position=position, version=version, recorded_at=parse_time(recorded_at),
    )


def _standing(cut: int | None) -> tuple[str, list[Any]]:
    # Rows standing now (cut None), or as of position ``cut``.
    if cut is None:
        return "r.removed_at IS NULL", []
    return "r.position <= ? AND (r.removed_at IS NULL OR r.removed_at > ?)", [cut, cut]


def get_record(conn: Connection, session_id: str, kind: str, key: str, cut: int | None = None) -> Record | None:
    """The record of ``kind`` and ``key`` standing in the session now, or as of position ``cut``."""
    standing, args = _standing(cut)
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM records AS r JOIN events AS e ON e.position = r.position"
        f" WHERE r.session_id = ? AND r.kind = ? AND r.key = ? AND {standing} ORDER BY r.position DESC LIMIT 1",
        [session_id, kind, key, *args],
    ).fetchone()
    return None if row is None else _record(row)


def find_records(
    conn: Connection,
    session_id: str | None,
    kind: str,
    *,
    keys: Sequence[str] | None = None,
    prefix: str | None = None,
    before: str | None = None,
    after: str | None = None,
    group: str | None = None,
    after_position: int | None = None,
    cut: int | None = None,
    by_position: bool = False,
    descending: bool = False,
    limit: int | None = None,
) -> list[Record]:
    """The records of ``kind`` standing now (or as of position ``cut``) in one session (None: in every
    session) that have one of ``keys``, start with ``prefix``, sort before / after a key, are in ``group``
    and come after a position; in key order (``by_position``: log order), ``descending`` if asked, at most
    ``limit`` of them."""
    if keys is not None:
        found: list[Record] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start:start + _CHUNK])
            found += _find(conn, session_id, kind, chunk, prefix, before, after, group, after_position, cut,
                           by_position, descending, None)
        found.sort(key=(lambda r: r.position) if by_position else (lambda r: (r.key, r.position)), reverse=descending)
        return found[:limit] if limit is not None else found
    return _find(conn, session_id, kind, None, prefix, before, after, group, after_position, cut, by_position,
                 descending, limit)


def _find(
    conn: Connection, session_id: str | None, kind: str, keys: list[str] | None, prefix: str | None,
    before: str | None, after: str | None, group: str | None, after_position: int | None, cut: int | None,
    by_position: bool, descending: bool, limit: int | None,
) -> list[Record]:
    standing, args = _standing(cut)
    where = ["r.kind = ?", standing]
    params: list[Any] = [kind, *args]
    if session_id is not None:
        where.insert(0, "r.session_id = ?")
        params.insert(0, session_id)
    if keys is not None:
        where.append(f"r.key IN ({', '.join('?' * len(keys))})")
        params += keys
    if prefix:
        where.append("r.key >= ? AND r.key < ?")
        params += [prefix, prefix + _TOP]
    if before is not None:
        where.append("r.key < ?")
        params.append(before)
    if after is not None:
        where.append("r.key > ?")
        params.append(after)
    if group is not None:
        where.append("r.record_group = ?")
        params.append(group)
    if after_position is not None:
        where.append("r.position > ?")
        params.append(after_position)
    way = "DESC" if descending else "ASC"
    order = f"r.position {way}" if by_position else f"r.session_id {way}, r.key {way}, r.position {way}"
    sql = (f"SELECT {_COLUMNS} FROM records AS r JOIN events AS e ON e.position = r.position"
           f" WHERE {' AND '.join(where)} ORDER BY {order}")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_record(row) for row in conn.execute(sql, params).fetchall()]


def record_keys(conn: Connection, session_id: str, kind: str | None) -> Iterator[str]:
    """The keys of the records standing in the session (of ``kind``, or of every kind), for removing them."""
    if kind is None:
        rows = conn.execute("SELECT key FROM records WHERE session_id = ? AND removed_at IS NULL", (session_id,))
    else:
        rows = conn.execute(
            "SELECT key FROM records WHERE session_id = ? AND kind = ? AND removed_at IS NULL", (session_id, kind)
        )
    for (key,) in rows.fetchall():
        yield key


def _set(conn: Connection, event: RecordedEvent, payload: ev.RecordSet) -> None:
    conn.execute(
        "UPDATE records SET removed_at = ? WHERE session_id = ? AND kind = ? AND key = ? AND removed_at IS NULL",
        (event.position, event.session_id, payload.kind, payload.key),
    )
    conn.execute(
        "INSERT INTO records (position, session_id, kind, key, record_group) VALUES (?, ?, ?, ?, ?)",
        (event.position, event.session_id, payload.kind, payload.key, payload.group),
    )


def _removed(conn: Connection, event: RecordedEvent, payload: ev.RecordsRemoved) -> None:
    if payload.kind is None:
        conn.execute(
            "UPDATE records SET removed_at = ? WHERE session_id = ? AND removed_at IS NULL",
            (event.position, event.session_id),
        )
    elif payload.keys is None:
        conn.execute(
            "UPDATE records SET removed_at = ? WHERE session_id = ? AND kind = ? AND removed_at IS NULL",
            (event.position, event.session_id, payload.kind),
        )
    else:
        conn.executemany(
            "UPDATE records SET removed_at = ? WHERE session_id = ? AND kind = ? AND key = ? AND removed_at IS NULL",
            [(event.position, event.session_id, payload.kind, key) for key in payload.keys],
        )


class RecordsProjector(Projector):
    """The built-in index of integration records (``records``), in both dialects."""

    name = "records"
    version = 1
    dialects = frozenset({"sqlite", "postgres"})
    builtin = True
    handles = frozenset({"record_set", "records_removed", "purged"})
    tables = ("records",)

    def create(self, db: Any) -> None:
        """Create ``records`` and its two indexes: by (session, kind, key) and by (group, session, position)."""
        if dialect_of(db) == "postgres":
            for statement in RECORDS_SCHEMA:
                db.execute(statement)
            return
        db.table("records").create(
            {"position": int, "session_id": str, "kind": str, "key": str, "record_group": str, "removed_at": int},
            pk="position",
            not_null={"session_id", "kind", "key"},
            strict=_STRICT,
        )
        db.execute("CREATE INDEX idx_records_key ON records (session_id, kind, key, position)")
        db.execute(
            "CREATE INDEX idx_records_group ON records (record_group, session_id, position)"
            " WHERE record_group IS NOT NULL"
        )

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Index set records, mark replaced and removed ones, forget a purged session's."""
        for event in events:
            payload = event.payload
            if isinstance(payload, ev.RecordSet):
                _set(conn, event, payload)
            elif isinstance(payload, ev.RecordsRemoved):
                _removed(conn, event, payload)
            elif isinstance(payload, ev.Purged):
                conn.execute("DELETE FROM records WHERE session_id = ?", (event.session_id,))
            # A redacted record (a purged session's, replayed) left nothing to index.

    def purged(self, conn: Connection, session_ids: Sequence[str]) -> None:
        """Delete the purged sessions' rows (their events' payloads are redacted already)."""
        conn.executemany("DELETE FROM records WHERE session_id = ?", [(sid,) for sid in session_ids])
