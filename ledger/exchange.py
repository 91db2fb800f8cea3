"""The JSONL export format: a header line, one line per stored row, and a closing line.

Each row line carries its payload text exactly as stored and the hash of the
row before it (``prev``), so every line can be checked on its own and
consecutive lines as a chain; the closing line counts the rows, so a
truncated file is refused. ``read_export`` is the one reader of the format.
"""

from __future__ import annotations

import json
from typing import IO, Any

import msgspec

from . import events as ev
from .chain import Digest, link, stored_digest
from .errors import IntegrityError, InvalidInput, LedgerError
from .times import format_time, parse_time
from .validation import check_id

EXPORT_FORMAT = "session-ledger/events"
EXPORT_VERSION = 1


class ExportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a JSONL export: a stored row, its payload text as stored, and the hash before it."""

    position: int
    event_id: str
    session_id: str
    version: int
    type: str
    schema: int
    recorded_at: str
    data: str
    hash: str
    prev: str


class ImportReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``import_events`` did: rows ``read``, ``imported`` and ``skipped`` (already present)."""

    read: int
    imported: int
    skipped: int
    head: Digest


_row_decoder = msgspec.json.Decoder(ExportRow)
_encoder = msgspec.json.Encoder()


def row_line(row: ExportRow) -> str:
    """One row of an export as its line (without the newline)."""
    return _encoder.encode(row).decode()


def header_line(head_position: int, head_hash: str, sessions: list[str] | None) -> str:
    """The first line of an export: format, version, the head it was cut at, and its sessions (None: all)."""
    return json.dumps({"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
                       "head": {"position": head_position, "hash": head_hash}, "sessions": sessions})


def closing_line(rows: int) -> str:
    """The last line of an export: how many row lines came before it."""
    return json.dumps({"format": EXPORT_FORMAT, "end": True, "rows": rows})


def read_export(stream: IO[str]) -> list[ExportRow]:
    """The rows of a JSONL export, checked: every line against its own ``prev`` and payload,
    consecutive lines as a chain, and the whole against the header and the closing line (so a
    truncated file, or a full export missing a line, is refused)."""
    first = stream.readline()
    if not isinstance(first, str):
        raise InvalidInput("source must be a text stream, not a binary one", field="source")
    try:
        header = json.loads(first)
    except ValueError as exc:
        raise InvalidInput("source is not a session-ledger export: the first line is not JSON", field="source") from exc
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise InvalidInput("source is not a session-ledger export (no export header line)", field="source")
    if not isinstance(header.get("version"), int) or header["version"] > EXPORT_VERSION:
        raise InvalidInput(f"source: export version {header.get('version')!r} is newer than this code reads", field="source")
    head = header.get("head")
    if not isinstance(head, dict) or not isinstance(header.get("sessions"), (list, type(None))):
        raise InvalidInput("source: the export header is damaged (head or sessions)", field="source")
    rows: list[ExportRow] = []
    trailer: dict[str, Any] | None = None
    for number, line in enumerate(stream, 2):
        if not line.strip():
            continue
        if trailer is not None:
            raise _damaged(f"export line {number} comes after the export's closing line")
        try:
            if line.startswith('{"format"'):
                trailer = json.loads(line)
                continue
            row = _row_decoder.decode(line)
            _check_row(row, number)
        except (ValueError, UnicodeError, msgspec.DecodeError) as exc:
            raise _damaged(f"export line {number} is not an event row: {exc}") from exc
        last = rows[-1] if rows else None
        if last is not None and row.position <= last.position:
            raise _damaged(f"export line {number}: position {row.position} is out of order")
        if last is not None and row.position == last.position + 1 and row.prev != last.hash:
            raise _damaged(f"export line {number}: position {row.position} does not follow the line before it")
        try:
            expected = link(bytes.fromhex(row.prev), row.position, row.event_id, row.session_id, row.version,
                            row.type, row.schema, row.recorded_at, stored_digest(row.data.encode()))
            intact = expected == bytes.fromhex(row.hash)
        except (ValueError, UnicodeError):
            intact = False
        if not intact:
            raise _damaged(
                f"export line {number} (position {row.position}): the hash does not match the row and the hash before it"
            )
        rows.append(row)
    if not isinstance(trailer, dict) or trailer.get("rows") != len(rows):
        raise _damaged("the export is truncated: its closing line is missing or counts other rows")
    if header.get("sessions") is None:  # a full export: every position up to the head, ending on it
        if [r.position for r in rows] != list(range(1, len(rows) + 1)):
            raise _damaged("the export is missing rows: a full export holds every position from 1")
        if rows and (rows[-1].position != head.get("position") or rows[-1].hash != head.get("hash")):
            raise _damaged("the export's last row is not the head its header names")
    return rows


def _check_row(row: ExportRow, number: int) -> None:
    """Refuse a row whose fields could not have been written by a ledger (even with a matching hash)."""
    problem = None
    cls = ev.EVENT_TYPES.get(row.type)
    if cls is None:
        problem = f"unknown event type {row.type!r}"
    elif not 1 <= row.schema <= cls.schema:
        problem = f"schema {row.schema} of {row.type!r} is not one this code reads"
    elif not (1 <= row.position < 2**63 and 1 <= row.version < 2**63):
        problem = "position and version must be positive 64-bit integers"
    else:
        try:
            check_id(row.event_id, "event_id")
            check_id(row.session_id, "session_id")
            if format_time(parse_time(row.recorded_at)) != row.recorded_at:
                problem = f"recorded_at {row.recorded_at!r} is not a stored time"
            ev.decode_payload(row.type, row.schema, row.data)
        except (LedgerError, ValueError) as exc:
            problem = str(exc)
    if problem is not None:
        raise ValueError(f"line {number} holds an impossible row: {problem}")


def _damaged(message: str) -> IntegrityError:
    return IntegrityError(f"source: {message}", field="source")
