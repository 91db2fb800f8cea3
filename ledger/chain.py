"""The hash chain: how each row is linked to the one before, and how that is checked.

Row ``n``'s hash is ``sha256(hash(n-1) || header(n) || sha256(payload(n)))``,
starting from 32 zero bytes; the header holds position, event id, session,
version, type, schema and recording time. The payload enters only through
its own digest, so a payload can later be redacted (purged) while its digest
keeps the row, and every row after it, verifiable. There is no per-file salt:
the same events at the same positions give the same chain in any file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec

from .errors import InvalidInput
from .events import REDACTED_PREFIX, RecordedEvent, read_redaction
from .session import Session, apply
from .snapshots import encode_state
from .validation import Progress, check_progress

GENESIS = bytes(32)


def marked_digest(data: bytes, position: int, purge: int | None) -> tuple[bytes, int] | str | None:
    """For a redacted row (None for any other): the digest its chain hash covers and the purge it names, or
    why it cannot be a marker the ledger wrote: one names a later ``purged`` event, keeps a 64-digit hex
    digest, and names the purge the session's other markers name (``purge``; None when none was seen). The
    log's check and a proof bundle's hold rows to this same rule."""
    redaction = read_redaction(data)
    if redaction is None:
        return None
    if redaction.purged_at <= position or _HEX.fullmatch(redaction.digest) is None:
        return "a redacted row must name a later purged event and a 64-digit hex digest"
    if purge not in (None, redaction.purged_at):
        return "its redacted rows name different purges"
    return bytes.fromhex(redaction.digest), redaction.purged_at


def payload_digest(data: bytes) -> bytes:
    """The SHA-256 digest of a payload's stored bytes."""
    return hashlib.sha256(data).digest()


def stored_digest(data: bytes) -> bytes:
    """The payload digest a row's hash covers: the one a redaction marker kept, else the data's own."""
    redaction = read_redaction(data)
    return bytes.fromhex(redaction.digest) if redaction is not None else payload_digest(data)


def link(
    prev: bytes,
    position: int,
    event_id: str,
    session_id: str,
    version: int,
    type_: str,
    schema: int,
    recorded_at: str,
    digest: bytes,
) -> bytes:
    """The hash of one row, given the hash of the row before it."""
    # Unit separators cannot occur in ids, tags or timestamps, so the header is unambiguous.
    header = f"{position}\x1f{event_id}\x1f{session_id}\x1f{version}\x1f{type_}\x1f{schema}\x1f{recorded_at}"
    return hashlib.sha256(prev + header.encode() + digest).digest()


class Digest(msgspec.Struct, frozen=True):
    """The chain head: the last position and its hash. Save it to prove later that nothing up to it changed."""

    position: int
    hash: str

    def to_json(self) -> str:
        """This digest as a JSON object."""
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Digest:
        """Read a digest written by :meth:`to_json`; raises ``InvalidInput`` for anything else."""
        if not isinstance(text, (str, bytes)):
            raise InvalidInput(f"a digest is JSON text, not {type(text).__name__}", field="digest")
        try:
            digest = msgspec.json.decode(text, type=cls)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
            raise InvalidInput(f"not a ledger digest: {exc}", field="digest") from exc
        return check_digest(digest)


_HEX = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: object) -> Digest:
    """A well-formed ``Digest`` (position an int >= 0, hash 64 lower-case hex digits), or ``InvalidInput``."""
    if not isinstance(digest, Digest):
        raise InvalidInput("digest must be a Digest (see Ledger.digest and Digest.from_json)", field="digest")
    position, hash_ = digest.position, digest.hash
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < 2**63:
        raise InvalidInput(f"not a ledger digest: position {position!r} is not an integer >= 0", field="digest")
    if not isinstance(hash_, str) or _HEX.fullmatch(hash_) is None:
        raise InvalidInput("not a ledger digest: hash must be 64 lower-case hex digits", field="digest")
    return digest


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Ledger.verify`` found: ``ok``, how many rows it ``checked``, and the first bad one."""

    ok: bool
    checked: int
    first_bad_position: int | None = None
    reason: str | None = None
    head: Digest = Digest(0, GENESIS.hex())
    #: A purge's text may still be in SQLite's WAL file: another connection held an older snapshot when it
    #: committed. The ledger finishes the scrub at the first moment it can (a write, close, open, gc, verify).
    scrub_pending: bool = False
    #: With ``verify(projections=True)``: the first read table found to differ from the log.
    table: str | None = None


# One stored row: position, event_id, session_id, version, type, schema, recorded_at, data, hash.
Row = tuple[int, Any, Any, Any, Any, Any, Any, Any, Any]


_REDACTED = REDACTED_PREFIX.encode()


def _bytes(value: object) -> bytes:
    # A column as stored bytes: the driver gives text (PostgreSQL) or, asked to, bytes (SQLite).
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode(errors="surrogatepass")
    return b"" if value is None else str(value).encode()


def _str(value: bytes) -> str:
    return value.decode(errors="replace")


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


class ChainChecker:
    """Walks rows in position order and reports the first one that breaks the chain.

    Feed it consecutive batches with :meth:`check`; it keeps only the last
    hash and each session's last version between batches.
    """

    def __init__(self) -> None:
        self.prev = GENESIS
        self.position = 0
        self.checked = 0
        self.versions: dict[bytes, int] = {}
        self.recorded_at_bytes = b""
        # session -> position of the `purged` event its redacted rows name
        self.purges: dict[bytes, int] = {}
        # position of a `purged` event named by redacted rows -> (their session, the first such row). A position
        # past the log's end is left waiting: a copy cut before the purge (a replay, an import) holds such rows.
        self.awaited: dict[int, tuple[bytes, int]] = {}
        self.first_bad: int | None = None
        self.reason: str | None = None

    def check(self, rows: Iterable[Row]) -> bool:
        """Check a batch; returns False (and records why) at the first bad row.

        The loop works on the stored bytes (text columns are encoded once if the driver gave text) and
        hashes them as :func:`link` does; whether the text is UTF-8 is asked only of a row that fails, whose
        first fault it then is (text that is not UTF-8 cannot have been hashed as stored)."""
        sha256 = hashlib.sha256
        versions, purges, awaited = self.versions, self.purges, self.awaited
        prev, last_position, last_at = self.prev, self.position, self.recorded_at_bytes
        checked = 0
        try:
            for row in rows:
                position, event_id, session_id, version, type_, schema, recorded_at, data, hash_ = row
                if position != last_position + 1:
                    return self._fail(last_position + 1, f"position {last_position + 1} is missing (next row is {position})")
                if type(session_id) is not bytes or type(event_id) is not bytes or type(type_) is not bytes or (
                    type(recorded_at) is not bytes or type(data) is not bytes
                ):
                    event_id, session_id, type_, recorded_at, data = (
                        _bytes(event_id), _bytes(session_id), _bytes(type_), _bytes(recorded_at), _bytes(data))
                expected_purge = purges.get(session_id)
                waiting = awaited.pop(position, None) if awaited else None
                if waiting is not None and (waiting[0] != session_id or type_ != b"purged"):
                    return self._fail_row(
                        row, waiting[1],
                        f"redacted rows of session {_str(waiting[0])!r} name position {position} as their purge, but it"
                        f" is a {_str(type_)!r} event of session {_str(session_id)!r}",
                    )
                marked = marked_digest(data, position, expected_purge) if data.startswith(_REDACTED) else None
                if isinstance(marked, str):
                    return self._fail_row(row, position, f"session {_str(session_id)!r}: {marked}")
                if marked is not None:
                    digest, purged_at = marked
                    purges[session_id] = purged_at
                    awaited.setdefault(purged_at, (session_id, position))
                else:
                    if expected_purge is not None and expected_purge > position:
                        return self._fail_row(
                            row, position, f"session {_str(session_id)!r} has an unredacted row before its purge")
                    digest = sha256(data).digest()
                last = versions.get(session_id, 0)
                if version != last + 1:
                    return self._fail_row(
                        row, position, f"session {_str(session_id)!r} jumps from version {last} to {version}")
                if recorded_at < last_at:
                    return self._fail_row(
                        row, position,
                        f"recorded_at {_str(recorded_at)} is earlier than the row before ({_str(last_at)})")
                header = b"%d\x1f%b\x1f%b\x1f%d\x1f%b\x1f%b\x1f%b" % (
                    position, event_id, session_id, version, type_,
                    b"%d" % schema if type(schema) is int else str(schema).encode(), recorded_at)
                expected = sha256(prev + header + digest).digest()
                if expected != hash_:
                    return self._fail_row(row, position, "hash does not match the row's contents and the previous hash")
                prev, last_position, last_at = expected, position, recorded_at
                versions[session_id] = version
                checked += 1
        finally:
            self.prev, self.position, self.recorded_at_bytes = prev, last_position, last_at
            self.checked += checked
        return True

    def _fail_row(self, row: Row, position: int, reason: str) -> bool:
        # Text that is not UTF-8 (event id, session, type, time) is the row's first fault, whatever else it trips over.
        if not all(isinstance(v, str) or isinstance(v, bytes) and _is_utf8(v) for v in (row[1], row[2], row[4], row[6])):
            reason = "a text column holds bytes that are not UTF-8 text"
        return self._fail(position, reason)

    def _fail(self, position: int, reason: str) -> bool:
        self.first_bad = position
        self.reason = reason
        return False

    def report(self) -> VerifyReport:
        """The report for everything checked so far."""
        return VerifyReport(
            ok=self.first_bad is None,
            checked=self.checked,
            first_bad_position=self.first_bad,
            reason=self.reason,
            head=Digest(self.position, self.prev.hex()),
        )


# -- verify: the whole walk ---------------------------------------------------------------------

_CHUNK = 10_000


class ChainSource(Protocol):
    """What ``verify`` reads, each call in its own short read (so others can append during a long walk)."""

    def head_position(self) -> int: ...

    def raw_rows(self, after: int, limit: int) -> list[Row]: ...

    def row_hash(self, position: int) -> bytes | None: ...

    def sessions_with_snapshots(self) -> list[str]: ...

    def snapshots_and_events(self, session_id: str) -> tuple[dict[int, tuple[bytes, bytes]], list[RecordedEvent]]: ...


def verify(source: ChainSource, digest: Digest | None = None, progress: Progress | None = None) -> VerifyReport:
    """Walk the whole hash chain and report the first row that breaks it; with a ``digest`` saved
    earlier, also prove the log still holds every row up to it unchanged; then check every snapshot
    against the fold of its events. ``progress`` is told (rows checked, rows in all)."""
    if digest is not None:
        check_digest(digest)
    check_progress(progress)
    checker = ChainChecker()
    total = source.head_position()
    while True:
        rows = source.raw_rows(checker.position, _CHUNK)
        if not checker.check(rows):
            return checker.report()
        if progress is not None:
            progress(checker.position, max(total, checker.position))
        if len(rows) < _CHUNK:
            break
    report = checker.report()
    if digest is not None and digest.position > 0:
        report = _against_digest(source, report, digest)
    return report if not report.ok else _snapshots_hold(source, report)


def _against_digest(source: ChainSource, report: VerifyReport, digest: Digest) -> VerifyReport:
    if report.head.position < digest.position:
        return msgspec.structs.replace(
            report,
            ok=False,
            first_bad_position=report.head.position + 1,
            reason=f"the log ends at position {report.head.position}, before the digest's position {digest.position}",
        )
    stored_hash = source.row_hash(digest.position)
    if stored_hash is None or stored_hash.hex() != digest.hash:
        return msgspec.structs.replace(
            report,
            ok=False,
            first_bad_position=digest.position,
            reason=f"the chain at position {digest.position} differs from the saved digest: the log was rewritten",
        )
    return report


def _snapshots_hold(source: ChainSource, report: VerifyReport) -> VerifyReport:
    """Check that every snapshot equals the fold of its session's events up to its version and names
    the hash of the event it was taken at (a damaged one is ignored on load; here it is reported)."""
    for sid in source.sessions_with_snapshots():
        expected, events = source.snapshots_and_events(sid)
        state: Session | None = None
        for event in events:
            state = apply(state, event)
            stored = expected.get(state.version)
            if stored is None:
                continue
            blob, event_hash = stored
            if event_hash.hex() != event.hash:
                problem = "is not taken at its event (its event hash differs)"
            elif blob != encode_state(state):
                problem = "does not match its events"
            else:
                continue
            return msgspec.structs.replace(
                report,
                ok=False,
                first_bad_position=state.position,
                reason=f"the snapshot of session {sid!r} at version {state.version} {problem}",
            )
    return report
