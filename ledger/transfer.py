"""Moving ledgers around: JSONL export and import, the per-session directory layout, online backup.

The JSONL export is the interchange and backup format: a header line, then
one line per stored row with its payload text exactly as stored and the hash
of the row before it (``prev``), so every line can be checked on its own and
consecutive lines as a chain. Import keeps ``event_id``, ``recorded_at`` and
the payload bytes; a full export imported into an empty ledger lands at the
same positions and so has the identical chain head.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from projections import queries
from projections.base import Progress, ProjectionRunner, check_progress

from . import events as ev
from .chain import GENESIS, Digest, VerifyReport, link, stored_digest
from .errors import IntegrityError, InvalidInput, LedgerError, SessionPurged, StorageError
from .log import EventLog, sqlite_errors
from .session import Session, segments
from .snapshots import SnapshotStore
from .timetravel import new_file_path, path_arg, time_arg
from .transactions import Transaction
from .validation import check_id

EXPORT_FORMAT = "session-ledger/events"
EXPORT_VERSION = 1
_FAR = 2**62  # a purge position beyond any real one: "purged later, in another file"
_BATCH = 2000


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


def _until(until_position: object, until: object) -> tuple[int | None, datetime | None]:
    if until_position is not None and until is not None:
        raise InvalidInput("give until_position or until, not both", field="until")
    if until_position is not None and (
        isinstance(until_position, bool) or not isinstance(until_position, int) or not 0 <= until_position < 2**63
    ):
        raise InvalidInput(f"until_position must be an integer >= 0; got {until_position!r}", field="until_position")
    if until is not None:
        time_arg(until, "until", None)  # refuse now what could not be turned into a stored time later
    return until_position, until  # type: ignore[return-value]


def _text_stream(stream: object, field: str, *, write: bool) -> None:
    """A text stream to write to (or read from), not a binary one."""
    needed = "write" if write else "readline"
    if not hasattr(stream, needed) or isinstance(stream, (io.RawIOBase, io.BufferedIOBase)) or "b" in str(
        getattr(stream, "mode", "")
    ):
        raise InvalidInput(f"{field} must be a file path or a text stream; got {stream!r}", field=field)


class Transfer:
    """Export, import and backup; mixed into ``Ledger``."""

    _log: EventLog
    _runner: ProjectionRunner
    _snapshots: SnapshotStore
    _cache: Any
    _epoch: int
    path: str
    durability: str
    _lock: Any
    _usable: Callable[[], None]
    _outside_batch: Callable[[str], None]
    _read: Callable[[str], AbstractContextManager[None]]
    _write: Callable[[str], AbstractContextManager[Transaction]]
    _view: Callable[..., Session]
    _existing: Callable[[str], Session]
    _catch_up: Callable[[], None]
    _level_lazy: Callable[[], None]
    checkpoint: Callable[[str], int]

    def _cut(self, until_position: int | None, until: datetime | None) -> int:
        head = self._log.head.position
        if until_position is not None:
            return min(until_position, head)
        if until is not None:
            return self._log.position_at(ev.format_time(until))
        return head

    # -- export ------------------------------------------------------------------------

    def export(
        self,
        out: str | os.PathLike[str] | IO[str],
        *,
        format: str = "jsonl",
        sessions: Iterable[str] | None = None,
        until_position: int | None = None,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Write the events (``format="jsonl"``, to a path or text stream) or the per-session directory
        layout (``"sessions-dir"``: ``{session_id}/metadata.json``, ``conversation.jsonl``,
        ``invocations.json``, ``data.json``) up to a cut; returns the rows or sessions written."""
        if format not in ("jsonl", "sessions-dir"):
            raise InvalidInput(f"format must be jsonl or sessions-dir; got {format!r}", field="format")
        check_progress(progress)
        until_position, until = _until(until_position, until)
        if isinstance(out, (str, os.PathLike)):
            out = path_arg(out, "out")
        else:
            _text_stream(out, "out", write=True)
        wanted = None if sessions is None else [check_id(s, "sessions") for s in _listed(sessions)]
        if wanted is not None:
            with self._read("export"):
                for sid in wanted:
                    self._existing(sid)
        try:
            if format == "jsonl":
                if isinstance(out, (str, os.PathLike)):
                    with open(out, "w", encoding="utf-8") as stream:
                        return self._export_jsonl(stream, wanted, until_position, until, progress)
                return self._export_jsonl(out, wanted, until_position, until, progress)
            if not isinstance(out, str):
                raise InvalidInput("out: a sessions-dir export needs a directory path", field="out")
            return self._export_dir(Path(out), wanted, until_position, until, progress)
        except (OSError, ValueError) as exc:
            where = out if isinstance(out, str) else "the stream"
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InvalidInput(f"out: cannot write the export to {where!r}: {detail}", field="out") from exc

    def _export_jsonl(
        self,
        stream: IO[str],
        sessions: list[str] | None,
        until_position: int | None,
        until: datetime | None,
        progress: Progress | None,
    ) -> int:
        with self._read("export"):
            cut = self._cut(until_position, until)
            cut_hash = self._log.row_hash(cut) if cut else GENESIS
        header = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "head": {"position": cut, "hash": (cut_hash or GENESIS).hex()},
            "sessions": sessions,
        }
        stream.write(json.dumps(header) + "\n")
        chosen = None if sessions is None else set(sessions)
        written, after, prev = 0, 0, GENESIS
        while after < cut:
            with self._read("export"):
                rows = self._log.rows(after=after, until=cut, limit=_BATCH)
                if rows and rows[0][0] > 1 and after == 0:
                    prev = self._log.row_hash(rows[0][0] - 1) or GENESIS
            if not rows:
                break
            for position, event_id, session_id, version, type_, schema, recorded_at, data, row_hash in rows:
                if chosen is None or session_id in chosen:
                    line = ExportRow(
                        position=position, event_id=event_id, session_id=session_id, version=version, type=type_,
                        schema=schema, recorded_at=recorded_at, data=data, hash=row_hash.hex(), prev=prev.hex(),
                    )
                    stream.write(_encoder.encode(line).decode() + "\n")
                    written += 1
                prev = row_hash
            after = rows[-1][0]
            if progress is not None:
                progress(after, cut)
        stream.write(json.dumps({"format": EXPORT_FORMAT, "end": True, "rows": written}) + "\n")
        return written

    def _export_dir(
        self,
        out: Path,
        sessions: list[str] | None,
        until_position: int | None,
        until: datetime | None,
        progress: Progress | None,
    ) -> int:
        with self._read("export"):
            cut = self._cut(until_position, until)
            ids = sessions if sessions is not None else [
                sid for (sid,) in self._log.conn.execute(
                    "SELECT DISTINCT session_id FROM events WHERE position <= ? ORDER BY session_id", (cut,)
                )
            ]
        out.mkdir(parents=True, exist_ok=True)
        for done, sid in enumerate(ids, 1):
            folder = out / sid
            folder.mkdir(exist_ok=True)
            try:
                with self._read("export"):
                    state = self._view(sid, position=cut)
                    conversation = queries.conversation(self._log.conn, segments(state), hidden=state.hidden)
                    invocations = _invocations(self._log.conn, segments(state))
            except SessionPurged:  # purged since the cut: nothing of it may be written
                (folder / "metadata.json").write_text(json.dumps({"session_id": sid, "status": "purged"}) + "\n")
                continue
            summary = msgspec.to_builtins(state)
            for internal in ("lineage", "run_start", "data"):
                summary.pop(internal, None)
            (folder / "metadata.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            (folder / "data.json").write_text(json.dumps(state.data, indent=2, ensure_ascii=False) + "\n")
            (folder / "invocations.json").write_text(json.dumps(invocations, indent=2, ensure_ascii=False) + "\n")
            with open(folder / "conversation.jsonl", "w", encoding="utf-8") as convo:
                for role, content, tool, inv, model, t_in, t_out, at, version, position in conversation:
                    convo.write(json.dumps({
                        "role": role, "content": content, "timestamp": at, "tool_name": tool, "invocation_id": inv,
                        "model": model, "tokens": {"input": t_in, "output": t_out}, "version": version,
                        "position": position,
                    }, ensure_ascii=False) + "\n")
            if progress is not None:
                progress(done, len(ids))
        return len(ids)

    # -- import ------------------------------------------------------------------------

    def import_events(self, source: str | os.PathLike[str] | IO[str], *, progress: Progress | None = None) -> ImportReport:
        """Append the events of a JSONL export, idempotent by ``event_id`` (importing twice changes nothing).

        Every line's hash is checked against its ``prev`` and payload, and
        consecutive lines against each other; the whole import is one
        transaction. Raises ``IntegrityError`` for a damaged export, or for an
        event that would not continue its session here or would go back in time.
        """
        check_progress(progress)
        self._outside_batch("import")
        if isinstance(source, (str, os.PathLike)):
            source = path_arg(source, "source")
        else:
            _text_stream(source, "source", write=False)
        try:
            if isinstance(source, str):
                with open(source, encoding="utf-8") as stream:
                    return self._import(stream, progress)
            return self._import(source, progress)  # type: ignore[arg-type]
        except OSError as exc:
            raise InvalidInput(f"source: cannot read {source!r}: {exc.strerror or exc}", field="source") from exc
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"source: {source!r} is not a session-ledger export (not UTF-8 text)", field="source") from exc
        except ValueError as exc:  # a closed stream, and the like
            raise InvalidInput(f"source: cannot read {source!r}: {exc}", field="source") from exc

    def _import(self, stream: IO[str], progress: Progress | None) -> ImportReport:
        rows = read_export(stream)
        read = imported = 0
        touched: set[str] = set()
        moved: dict[int, int] = {}  # position in the export -> position here, when they differ
        with self._write("import"):
            conn = self._log.conn
            self._runner.pin(conn, self._log.head.position)
            for read, row in enumerate(rows, 1):
                if progress is not None:
                    progress(read, len(rows))
                prior = conn.execute(
                    "SELECT session_id, version, type FROM events WHERE event_id = ?", (row.event_id,)
                ).fetchone()
                if prior is not None:
                    if tuple(prior) != (row.session_id, row.version, row.type):
                        raise IntegrityError(
                            f"line for position {row.position}: event_id {row.event_id!r} is already a different event here",
                            session_id=row.session_id,
                        )
                    continue
                self._import_row(row, moved)
                touched.add(row.session_id)
                imported += 1
            if moved:
                self._remap_redactions(moved)
            self._catch_up()
            self._epoch += 1  # rows arrived outside the commands: re-check every cached state
        for sid in sorted(touched):
            with self._read("import"):
                version = self._log.session_version(sid) or 0
            if self._snapshots.every and version >= self._snapshots.every:
                self.checkpoint(sid)
        with self._read("import"):
            head = self._log.head
        return ImportReport(read=read, imported=imported, skipped=read - imported, head=Digest(head.position, head.hash.hex()))

    def _import_row(self, row: ExportRow, moved: dict[int, int]) -> None:
        head = self._log.head
        current = self._log.session_version(row.session_id) or 0
        if row.version != current + 1:
            raise IntegrityError(
                f"session {row.session_id!r} is at version {current} here; the export's next event is version {row.version}",
                session_id=row.session_id,
                expected=current + 1,
                actual=row.version,
            )
        if row.recorded_at < head.recorded_at:
            raise IntegrityError(
                f"event {row.event_id!r} was recorded at {row.recorded_at}, before this ledger's latest event"
                f" ({head.recorded_at}); import into an empty ledger or one whose events are older",
                session_id=row.session_id,
            )
        position = head.position + 1
        if position == row.position and head.hash.hex() == row.prev:
            row_hash = bytes.fromhex(row.hash)  # lands exactly where it was: the same chain
        else:
            moved[row.position] = position
            row_hash = link(head.hash, position, row.event_id, row.session_id, row.version, row.type, row.schema,
                            row.recorded_at, stored_digest(row.data.encode()))
        self._log.insert_rows([(position, row.event_id, row.session_id, row.version, row.type, row.schema,
                                row.recorded_at, row.data, row_hash)])

    def _remap_redactions(self, moved: dict[int, int]) -> None:
        conn = self._log.conn
        start = min(moved.values())
        for position, data in conn.execute("SELECT position, data FROM events WHERE position >= ?", (start,)).fetchall():
            redaction = ev.read_redaction(data)
            if redaction is not None:
                target = moved.get(redaction.purged_at, _FAR)
                conn.execute(
                    "UPDATE events SET data = ? WHERE position = ?",
                    (ev.redaction_marker(bytes.fromhex(redaction.digest), target), position),
                )

    # -- backup ------------------------------------------------------------------------

    def backup(self, out: str | os.PathLike[str], *, progress: Progress | None = None) -> VerifyReport:
        """Copy the live ledger with SQLite's online backup, then verify the copy; returns its report."""
        from .ledger import Ledger

        self._outside_batch("back up")
        check_progress(progress)
        out = new_file_path(out, "out")

        def report(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)

        try:
            target = sqlite3.connect(out)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot create {os.fspath(out)!r}: {exc}") from exc
        try:
            with self._lock, sqlite_errors("backup"):  # outside any transaction, so the copy is one moment
                self._usable()
                self._log.conn.backup(target, pages=1024, progress=report)
        finally:
            target.close()
        with Ledger(out, durability=self.durability) as copy:
            return copy.verify()


def _listed(value: object) -> list[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInput(f"sessions must be a list of session ids, not {type(value).__name__}", field="sessions")
    return list(value)


def _invocations(conn: sqlite3.Connection, lineage: tuple[tuple[str, int, int], ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for session_id, first, last in lineage:
        cursor = conn.execute(
            "SELECT invocation_id, tool_name, duration_ms, tokens_in, tokens_out, cost, status, artifact, recorded_at,"
            " version, position FROM invocations WHERE session_id = ? AND version BETWEEN ? AND ? ORDER BY version",
            (session_id, first, last),
        )
        columns = [d[0] for d in cursor.description]
        out += [dict(zip(columns, row)) for row in cursor]
    return out


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
            if ev.format_time(ev.parse_time(row.recorded_at)) != row.recorded_at:
                problem = f"recorded_at {row.recorded_at!r} is not a stored time"
            ev.decode_payload(row.type, row.schema, row.data)
        except (LedgerError, ValueError) as exc:
            problem = str(exc)
    if problem is not None:
        raise ValueError(f"line {number} holds an impossible row: {problem}")


def _damaged(message: str) -> IntegrityError:
    return IntegrityError(f"source: {message}", field="source")
