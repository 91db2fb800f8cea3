"""Moving ledgers around: JSONL export and import, the per-session directory layout, backup and replay.

The JSONL export (``ledger.exchange``) is the interchange and backup format.
Import keeps ``event_id``, ``recorded_at`` and the payload bytes; a full
export imported into an empty ledger lands at the same positions and so has
the identical chain head. A replay writes a new ledger holding the events up
to a cut, with every projection as it stood then.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from projections import queries

from . import events as ev
from .chain import GENESIS, ChainChecker, Digest, Row, VerifyReport, link, stored_digest, verify
from .chain_source import EngineChain
from .engine import Engine, open_engine
from .admission import admit
from .errors import FileAccessError, IntegrityError, InvalidInput, LedgerError, SessionPurged
from .exchange import ExportRow, ImportReport, closing_line, header_line, read_export, row_line
from .lineage import segments
from .session import Session, tokens_dict
from .storage.sql import to_recorded
from .scratch import written
from .times import time_arg
from .validation import Limits, Progress, check_id, check_int, check_progress, new_file_path, path_arg

_FAR = 2**62  # a purge position beyond any real one: "purged later, in another file"
_BATCH = 2000
_COPY_BATCH = 5000


def _until(until_position: int | None, until: datetime | None) -> None:
    if until_position is not None and until is not None:
        raise InvalidInput("give until_position or until, not both", field="until")
    if until_position is not None:
        check_int(until_position, "until_position")
    if until is not None:
        time_arg(until, "until")  # refuse now what could not be turned into a stored time later


def _text_stream(stream: object, field: str, *, write: bool) -> None:
    """A text stream to write to (or read from), not a binary one."""
    needed = "write" if write else "readline"
    if not hasattr(stream, needed) or isinstance(stream, (io.RawIOBase, io.BufferedIOBase)) or "b" in str(
        getattr(stream, "mode", "")
    ):
        raise InvalidInput(f"{field} must be a file path or a text stream; got {stream!r}", field=field)


def _listed(value: object) -> list[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInput(f"sessions must be a list of session ids, not {type(value).__name__}", field="sessions")
    return list(value)


def _as_stored(row: Row) -> Row:
    # Text columns come back as bytes from raw_rows (SQLite); a checked row decodes cleanly (the hash stays bytes).
    position, event_id, session_id, version, type_, schema, recorded_at, data, hash_ = row
    return (position, _decoded(event_id), _decoded(session_id), version, _decoded(type_), schema,
            _decoded(recorded_at), _decoded(data), hash_)


def _decoded(value: object) -> object:
    return value.decode() if isinstance(value, bytes) else value


class Transfer:
    """Export, import, backup and replay over one engine."""

    def __init__(self, engine: Engine, limits: Limits) -> None:
        self._engine = engine
        self._limits = limits

    def _cut(self, until_position: int | None, until: datetime | None) -> int:
        """Inside a read: the last position a cut keeps."""
        storage = self._engine.storage
        head = storage.head.position
        if until_position is not None:
            return min(until_position, head)
        if until is not None:
            return storage.position_at(time_arg(until, "until"))
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
        _until(until_position, until)
        if isinstance(out, (str, os.PathLike)):
            out = path_arg(out, "out")
        else:
            _text_stream(out, "out", write=True)
        wanted = None if sessions is None else list(dict.fromkeys(check_id(s, "sessions") for s in _listed(sessions)))
        if wanted is not None:
            with self._engine.read("export"):
                for sid in wanted:
                    self._engine.existing(sid)
        try:
            if format == "jsonl":
                if isinstance(out, str):
                    with written(Path(out), "out") as scratch, open(scratch, "w", encoding="utf-8") as stream:
                        return self._export_jsonl(stream, wanted, until_position, until, progress)
                return self._export_jsonl(out, wanted, until_position, until, progress)
            if not isinstance(out, str):
                raise InvalidInput("out: a sessions-dir export needs a directory path", field="out")
            return self._export_dir(Path(out), wanted, until_position, until, progress)
        except LedgerError:
            raise  # already says what is wrong with ``out``
        except (OSError, ValueError) as exc:
            where = out if isinstance(out, str) else "the stream"
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            kind = FileAccessError if isinstance(exc, OSError) else InvalidInput
            raise kind(f"out: cannot write the export to {where!r}: {detail}", field="out") from exc

    def _export_jsonl(
        self,
        stream: IO[str],
        sessions: list[str] | None,
        until_position: int | None,
        until: datetime | None,
        progress: Progress | None,
    ) -> int:
        engine = self._engine
        with engine.read("export") as storage:
            cut = self._cut(until_position, until)
            cut_hash = storage.row_hash(cut) if cut else GENESIS
        stream.write(header_line(cut, (cut_hash or GENESIS).hex(), sessions) + "\n")
        chosen = None if sessions is None else set(sessions)
        written, after, prev = 0, 0, GENESIS
        while after < cut:
            with engine.read("export") as storage:
                rows = storage.rows(after=after, until=cut, limit=_BATCH)
                if rows and rows[0][0] > 1 and after == 0:
                    prev = storage.row_hash(rows[0][0] - 1) or GENESIS
            if not rows:
                break
            for position, event_id, session_id, version, type_, schema, recorded_at, data, row_hash in rows:
                if chosen is None or session_id in chosen:
                    line = ExportRow(
                        position=position, event_id=event_id, session_id=session_id, version=version, type=type_,
                        schema=schema, recorded_at=recorded_at, data=data, hash=row_hash.hex(), prev=prev.hex(),
                    )
                    stream.write(row_line(line) + "\n")
                    written += 1
                prev = row_hash
            after = rows[-1][0]
            if progress is not None:
                progress(after, cut)
        stream.write(closing_line(written) + "\n")
        return written

    def _export_dir(
        self,
        out: Path,
        sessions: list[str] | None,
        until_position: int | None,
        until: datetime | None,
        progress: Progress | None,
    ) -> int:
        engine = self._engine
        if out.is_symlink():
            raise InvalidInput(f"out: {str(out)!r} is a symbolic link; a sessions-dir export never follows one",
                               field="out")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InvalidInput(f"out: {str(out)!r} exists and is not an empty directory; a sessions-dir export"
                               " writes a directory of its own", field="out")
        with engine.read("export") as storage:
            cut = self._cut(until_position, until)
            ids = sessions if sessions is not None else storage.session_ids(until=cut)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written into a new private directory beside ``out`` (so nothing planted inside can redirect a
        # write), then renamed into place whole: an interrupted export leaves no half-written directory.
        with written(out, "out", directory=True) as scratch:
            self._write_dir(scratch, ids, cut, progress)
        return len(ids)

    def _write_dir(self, out: Path, ids: list[str], cut: int, progress: Progress | None) -> None:
        engine = self._engine
        for done, sid in enumerate(ids, 1):
            folder = out / sid
            folder.mkdir()
            try:
                with engine.read("export") as storage:
                    state = engine.view(sid, position=cut)
                    conversation = queries.conversation(storage.connection, segments(state), hidden=state.hidden)
                    invocations = queries.invocations(storage.connection, segments(state))
            except SessionPurged:  # purged since the cut: nothing of it may be written
                (folder / "metadata.json").write_text(json.dumps({"session_id": sid, "status": ev.PURGED}) + "\n")
                continue
            summary = msgspec.to_builtins(state)
            for internal in ("lineage", "run_start", "data"):
                summary.pop(internal, None)
            (folder / "metadata.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            (folder / "data.json").write_text(json.dumps(state.data, indent=2, ensure_ascii=False) + "\n")
            (folder / "invocations.json").write_text(json.dumps(invocations, indent=2, ensure_ascii=False) + "\n")
            with open(folder / "conversation.jsonl", "w", encoding="utf-8") as convo:
                for (role, content, tool, inv, model, t_in, t_out, at, version, position, blocks, *parts) in conversation:
                    line = {
                        "role": role, "content": content, "timestamp": at, "tool_name": tool, "invocation_id": inv,
                        "model": model,
                        # input and output always (older exports' shape), the cache and reasoning parts when given
                        "tokens": {"input": t_in, "output": t_out, **(tokens_dict(None, None, *parts) or {})},
                        "version": version, "position": position,
                    }
                    if blocks is not None:  # a block message: its blocks too, as given
                        line["blocks"] = json.loads(blocks)
                    convo.write(json.dumps(line, ensure_ascii=False) + "\n")
            if progress is not None:
                progress(done, len(ids))

    # -- import ------------------------------------------------------------------------

    def import_events(self, source: str | os.PathLike[str] | IO[str], *, progress: Progress | None = None) -> ImportReport:
        """Append the events of a JSONL export, idempotent by ``event_id`` (importing twice changes nothing).

        Every line's hash is checked against its ``prev`` and payload, and
        consecutive lines against each other; the whole import is one
        transaction. Raises ``IntegrityError`` for a damaged export, or for an
        event that would not continue its session here or would go back in time.
        """
        check_progress(progress)
        self._engine.outside_batch("import")
        if isinstance(source, (str, os.PathLike)):
            source = path_arg(source, "source")
        else:
            _text_stream(source, "source", write=False)
        try:
            if isinstance(source, str):
                with open(source, encoding="utf-8") as stream:
                    return self._import(stream, progress)
            return self._import(source, progress)
        except OSError as exc:
            raise FileAccessError(f"source: cannot read {source!r}: {exc.strerror or exc}", field="source") from exc
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"source: {source!r} is not a session-ledger export (not UTF-8 text)", field="source") from exc
        except ValueError as exc:  # a closed stream, and the like
            raise InvalidInput(f"source: cannot read {source!r}: {exc}", field="source") from exc

    def _import(self, stream: IO[str], progress: Progress | None) -> ImportReport:
        engine = self._engine
        rows = read_export(stream)
        read = imported = 0
        touched: set[str] = set()
        moved: dict[int, int] = {}  # position in the export -> position here, when they differ
        states: dict[str, Session | None] = {}  # each touched session folded through the import (``admit``)
        with engine.write("import"):
            storage = engine.storage
            engine.runner.pin(storage, storage.head.position)
            for read, row in enumerate(rows, 1):
                if progress is not None:
                    progress(read, len(rows))
                prior = storage.find_event(row.event_id)
                if prior is not None:
                    if prior != (row.session_id, row.version, row.type):
                        raise IntegrityError(
                            f"line for position {row.position}: event_id {row.event_id!r} is already a different event here",
                            session_id=row.session_id,
                        )
                    continue
                self._import_row(row, moved, read + 1, states)  # line 1 is the header
                touched.add(row.session_id)
                imported += 1
            if moved:
                storage.remap_redactions(moved, _FAR)
            engine.catch_up()
            engine.invalidate()  # rows arrived outside the commands: re-check every cached state
        every = engine.snapshots.every
        for sid in sorted(touched):
            with engine.read("import") as storage:
                version = storage.session_version(sid) or 0
            if every and version >= every:
                engine.checkpoint(sid)
        with engine.read("import") as storage:
            head = storage.head
        return ImportReport(read=read, imported=imported, skipped=read - imported, head=Digest(head.position, head.hash.hex()))

    def _admit(self, row: ExportRow, line: int, states: dict[str, Session | None]) -> None:
        """Fold the row against its session with the commands' rules (``admission.admit``); refuse the file,
        naming the line, for an event the commands would not have written."""
        engine, sid = self._engine, row.session_id
        state = states[sid] if sid in states else engine.state(sid)
        try:
            recorded = to_recorded((row.position, row.event_id, sid, row.version, row.type, row.schema,
                                    row.recorded_at, row.data, bytes.fromhex(row.hash)))
            states[sid] = admit(state, recorded, self._limits)
            if row.type == ev.PURGED and any(
                not isinstance(e.payload, ev.Redacted) for e in engine.storage.iter_session(sid)
            ):
                raise InvalidInput(f"session {sid!r}: its purged event would leave its earlier payloads in place",
                                   session_id=sid, field="data")
        except LedgerError as exc:
            raise IntegrityError(f"line {line}: {exc.message}; nothing was imported", session_id=sid) from exc

    def _import_row(self, row: ExportRow, moved: dict[int, int], line: int, states: dict[str, Session | None]) -> None:
        storage = self._engine.storage
        head = storage.head
        current = storage.session_version(row.session_id) or 0
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
        self._admit(row, line, states)
        position = head.position + 1
        if position == row.position and head.hash.hex() == row.prev:
            row_hash = bytes.fromhex(row.hash)  # lands exactly where it was: the same chain
        else:
            moved[row.position] = position
            row_hash = link(head.hash, position, row.event_id, row.session_id, row.version, row.type, row.schema,
                            row.recorded_at, stored_digest(row.data.encode()))
        storage.insert_rows([(position, row.event_id, row.session_id, row.version, row.type, row.schema,
                              row.recorded_at, row.data, row_hash)])

    # -- backup and replay -------------------------------------------------------------

    def backup(self, out: str | os.PathLike[str], *, progress: Progress | None = None) -> VerifyReport:
        """Copy the live ledger into a new file, then verify the copy; returns its report.

        A SQLite ledger is copied page by page with SQLite's online backup; a PostgreSQL ledger is
        copied, as of one moment, into a new SQLite ledger file (the chain is the same on both, so the
        copy verifies with the same digest and can be imported back).
        """
        engine = self._engine
        engine.outside_batch("back up")
        check_progress(progress)
        target = new_file_path(out, "out")
        if engine.storage.dialect == "sqlite":
            with written(Path(target), "out") as scratch:  # a backup cut short leaves no file that looks like one
                with engine.lock:  # outside any transaction, so the copy is one moment
                    engine.usable()
                    engine.storage.backup(str(scratch), progress)
        else:
            self.replay(into=target, progress=progress)
        copy = open_engine(target, durability=engine.storage.durability)
        try:
            return verify(EngineChain(copy))
        finally:
            copy.close()

    def replay(
        self,
        *,
        into: str | os.PathLike[str],
        until_position: int | None = None,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> Digest:
        """Write a new ledger file holding exactly the events up to the cut, with every projection as it stood then.

        The copy's chain is checked row by row as it is written, so the file
        verifies and its head equals this chain's hash at the cut. Returns that head.
        """
        engine = self._engine
        engine.outside_batch("replay")  # the cut must not include rows a batch may still roll back
        check_progress(progress)
        _until(until_position, until)
        target_path = new_file_path(into, "into")
        with engine.read("replay"):
            cut = self._cut(until_position, until)
        # The copy is a SQLite file: it keeps the custom projectors written for SQLite.
        projectors = [p for p in engine.runner.projectors if not p.builtin and "sqlite" in p.dialects]
        # Built under a temporary name and renamed when complete: a failed replay leaves nothing behind.
        with written(Path(target_path), "into") as scratch:
            target = open_engine(str(scratch), durability=engine.storage.durability,
                                 snapshot_every=engine.snapshots.every, projectors=projectors)
            try:
                with target.write("replay"):
                    storage = target.storage
                    target.runner.pin(storage, 0)
                    checker = ChainChecker()
                    for rows in self._copy_batches(cut):
                        if not checker.check(rows):
                            report = checker.report()
                            raise IntegrityError(
                                f"the log is damaged at position {report.first_bad_position}: {report.reason}; run verify"
                            )
                        storage.insert_rows([_as_stored(row) for row in rows])
                        if progress is not None:
                            progress(checker.position, cut)
                    with engine.read("replay") as source:
                        snapshots = source.snapshot_rows(until=cut)
                    storage.insert_snapshot_rows(snapshots)
                    target.catch_up()
                head = storage.head
            finally:
                target.close()
        return Digest(head.position, head.hash.hex())

    def _copy_batches(self, cut: int) -> Iterator[list[Any]]:
        """Stored rows up to the cut, as bytes (so damaged text is reported by the chain check, not raised)."""
        after = 0
        while after < cut:
            with self._engine.read("replay") as storage:
                rows = [row for row in storage.raw_rows(after=after, limit=_COPY_BATCH) if row[0] <= cut]
            if not rows:
                return
            yield rows
            after = rows[-1][0]
