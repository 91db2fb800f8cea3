"""The ``Ledger`` facade: commands become events, events are appended, reads fold them back.

One ``Ledger`` may be shared by many threads (a lock serialises use of its one
connection) and several processes may open the same file (each command is one
``BEGIN IMMEDIATE`` transaction; SQLite's busy timeout makes writers queue).
Each command validates everything it can before it takes the lock, checks the
session's state inside the transaction, and either appends exactly one event
or raises having written nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import pydantic

from projections import analytics, queries, search
from projections.base import ProjectionRunner, Progress, Projector, check_custom, check_progress
from projections.lineage import in_segments
from projections.sessions import SearchProjector, SessionsProjector

from . import events as ev
from . import snapshots
from .chain import ChainChecker, Digest, VerifyReport, check_digest
from .commands import Commands
from .errors import (
    ConcurrencyError,
    IntegrityError,
    InvalidInput,
    LedgerError,
    SessionExists,
    SessionNotFound,
    StorageError,
)
from .events import RecordedEvent
from .ids import new_id as default_new_id
from .log import EventLog, sqlite_errors
from .session import Message, Session, apply, fold, segments, tokens_dict
from .snapshots import SnapshotStore, decode_state, encode_state
from .lifecycle import CleanupThread, Lifecycle, duration_arg
from .timetravel import TimeTravel
from .transfer import Transfer
from .transactions import Transaction, WriteScope
from .validation import Limits, MetadataSchema, check_choice, check_id, check_key

if TYPE_CHECKING:
    from .handle import SessionHandle

Clock = Callable[[], datetime]
_READ_CHUNK = 1000
_copy_encoder = msgspec.msgpack.Encoder()


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(timezone.utc)


def _copy(value: Any) -> Any:
    # A deep copy of a JSON-compatible value, so callers can never mutate cached state.
    return msgspec.msgpack.decode(_copy_encoder.encode(value))


class Ledger(Commands, TimeTravel, Lifecycle, Transfer):
    """An event-sourced ledger of agent sessions in one SQLite file.

    ``Ledger(":memory:")`` keeps everything in memory (for tests). ``clock``
    returns aware datetimes; ``durability`` is ``"normal"`` or ``"full"`` (see
    ``ledger.log``); ``metadata_schema`` is an optional pydantic model that
    validates metadata by key and supplies defaults at creation.
    Raises ``UnsupportedFormat`` for a file that is not a ledger or is newer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "ledger.db",
        *,
        clock: Clock | None = None,
        durability: str = "normal",
        metadata_schema: type[pydantic.BaseModel] | None = None,
        snapshot_every: int = 100,
        limits: Limits | None = None,
        busy_timeout: float = 5.0,
        new_id: Callable[[], str] | None = None,
        cache_size: int = 4096,
        projectors: Iterable[Projector] = (),
        cleanup_every: float | None = None,
        max_idle: timedelta | float | None = None,
    ) -> None:
        for name, value, low in (("snapshot_every", snapshot_every, 0), ("cache_size", cache_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInput(f"{name} must be an integer >= {low}; got {value!r}", field=name)
        for name, function in (("clock", clock), ("new_id", new_id)):
            if function is not None and not callable(function):
                raise InvalidInput(f"{name} must be a callable; got {function!r}", field=name)
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidInput(f"limits must be a ledger.Limits; got {limits!r}", field="limits")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or not 0 <= busy_timeout <= 86_400:
            raise InvalidInput(f"busy_timeout must be 0-86400 seconds; got {busy_timeout!r}", field="busy_timeout")
        self._clock: Clock = clock or utc_now
        self._new_id = new_id or default_new_id
        self._limits = limits or Limits()
        self._schema = MetadataSchema(metadata_schema) if metadata_schema is not None else None
        self._snapshots = SnapshotStore(snapshot_every)
        self._cache_size = cache_size
        # session_id -> (state, epoch at which it was last known current)
        self._cache: OrderedDict[str, tuple[Session, int]] = OrderedDict()
        self._epoch = 0
        self._tx: Transaction | None = None
        self._lock = threading.RLock()
        self._closed = False
        if (cleanup_every is None) != (max_idle is None):
            raise InvalidInput("cleanup_every and max_idle go together", field="cleanup_every" if cleanup_every is None else "max_idle")
        idle = None if max_idle is None else duration_arg(max_idle, "max_idle", 1)
        every = None if cleanup_every is None else duration_arg(cleanup_every, "cleanup_every", 1).total_seconds()
        self._cleaner: CleanupThread | None = None
        self._appended = False
        custom = list(projectors)
        for projector in custom:
            check_custom(projector)
        self._runner = ProjectionRunner([SessionsProjector(), SearchProjector(), *custom])
        self._projections_ready = False
        self._log = EventLog(path, durability=durability, busy_timeout=busy_timeout, extra_schema=snapshots.SCHEMA)
        self.path = self._log.path
        self.durability = durability
        try:
            self._prepare()
        except BaseException:
            self._log.close()
            raise
        if every is not None and idle is not None:
            self._cleaner = CleanupThread(self.cleanup, every, idle)
            self._cleaner.start()

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Close the file (and stop the background cleanup). Safe to call twice; later use raises ``StorageError``.

        If this ledger appended, the search index is brought level first, so SQL tools reading the
        file see every message in it.
        """
        with self._lock:
            self._outside_batch("close the ledger")  # the batch would be lost and leave a dead transaction
        if self._cleaner is not None:
            self._cleaner.stop()
        with self._lock:
            if not self._closed and self._tx is None and self._appended:
                try:
                    self._level_lazy()
                except LedgerError as exc:  # a read-only or busy file: the next search levels it
                    logging.getLogger("ledger").debug("search index not levelled on close: %s", exc)
            if not self._closed:
                self._closed = True
                self._log.close()

    @property
    def limits(self) -> Limits:
        """The hard limits this ledger enforces."""
        return self._limits

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.path!r}, durability={self.durability!r})"

    # -- transactions -----------------------------------------------------------

    def _outside_batch(self, what: str) -> None:
        """Refuse whole-file work inside this thread's batch: it would see, or commit, half a batch."""
        tx = self._tx
        if tx is not None and tx.owner == threading.get_ident():
            raise InvalidInput(f"cannot {what} inside a batch", field="batch")

    def _usable(self) -> None:
        if self._closed:
            raise StorageError(f"the ledger {self.path!r} is closed")

    def _write(self, doing: str) -> WriteScope:
        return WriteScope(self, doing)

    @contextmanager
    def _read(self, doing: str) -> Iterator[None]:
        with self._lock, sqlite_errors(doing):
            self._usable()
            if self._log.in_transaction:
                yield
                return
            if self._log.begin(write=False):
                self._epoch += 1
                if self._runner.behind(self._log.conn, self._log.head.position):
                    # Another process appended without one of our projectors: level it first.
                    self._log.commit()
                    with self._write("catch up"):
                        self._catch_up()
                    self._log.begin(write=False)
            try:
                yield
            finally:
                self._log.commit()

    def _read_batch(self, after: int, limit: int) -> list[RecordedEvent]:
        return self._log.read(after=after, limit=limit)

    def _prepare(self) -> None:
        """Make the projections ready before anything is served; a read when they already are, so opening
        a file never waits for another process's write transaction unless there is catching up to do."""
        with self._lock, sqlite_errors("open"):
            if self._log.begin(write=False):
                self._epoch += 1
            try:
                ready = self._runner.ready(self._log.conn, self._log.head.position)
            finally:
                self._log.commit()
        if ready:
            self._projections_ready = True
        else:
            with self._write("open"):  # creates or catches up the projections
                self._catch_up()

    def _level_lazy(self) -> None:
        """Bring the lazy projectors (the search index) level before a read that uses them."""
        with self._lock:
            with self._read("catch up"):
                behind = self._runner.behind(self._log.conn, self._log.head.position, lazy=True)
            if behind:
                with self._write("catch up"):
                    head = self._log.head.position
                    behind = self._runner.behind(self._log.conn, head, lazy=True)
                    self._runner.catch_up(self._log.conn, behind, self._read_batch, head)

    def _catch_up(self) -> None:
        """Inside a write transaction: set up the projections once, then replay what any of them missed."""
        conn = self._log.conn
        if not self._projections_ready:
            self._runner.ensure(conn)
            self._projections_ready = True
        head = self._log.head.position
        behind = self._runner.behind(conn, head)
        if behind:
            self._runner.catch_up(conn, behind, self._read_batch, head)

    @contextmanager
    def batch(self) -> Iterator[Ledger]:
        """Append every command made inside the block in one transaction: all of them, or none.

        A command rejected inside the block (bad input, a missing or closed
        session, a stale version) writes nothing and the others stand; an
        exception leaving the block rolls the whole batch back, and so does a
        storage failure part-way through a command. Other threads wait until
        the block ends.
        """
        with self._lock:
            self._outside_batch("start a batch (batches do not nest)")
            with self._write("batch"):
                yield self

    # -- state --------------------------------------------------------------------

    def _remember(self, state: Session) -> None:
        self._cache[state.session_id] = (state, self._epoch)
        self._cache.move_to_end(state.session_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _state(self, session_id: str) -> Session | None:
        """The current state (inside a transaction): pending, cached, or snapshot + tail."""
        if self._tx is not None and session_id in self._tx.pending:
            return self._tx.pending[session_id]
        cached = self._cache.get(session_id)
        if cached is not None and cached[1] == self._epoch:
            self._cache.move_to_end(session_id)
            return cached[0]
        version = self._log.session_version(session_id)
        if version is None:
            self._cache.pop(session_id, None)
            return None
        base = cached[0] if cached is not None and cached[0].version <= version else None
        if base is None or version - base.version > max(self._snapshots.every, 1):
            snap = self._snapshots.load(self._log.conn, session_id, version)
            if snap is not None and (base is None or snap.version > base.version):
                base = snap
        state = fold(self._log.iter_session(session_id, after_version=base.version if base else 0), base)
        if state is None or state.version != version:
            raise IntegrityError(f"session {session_id!r} does not fold to its latest version {version}", session_id=session_id)
        self._remember(state)
        return state

    def _existing(self, session_id: str) -> Session:
        state = self._state(session_id)
        if state is None:
            raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
        return state

    def _command(
        self,
        session_id: str,
        type_: str,
        decide: Callable[[Session | None], ev.Event | None],
        *,
        expected_version: int | None,
        event_id: str | None,
        create: bool = False,
        generated_id: bool = False,
        noop: ev.Event | None = None,
    ) -> tuple[Session | None, int]:
        """Run one command; returns the session's state and version after it.

        ``decide`` validates against the current state and returns the event,
        or None when the command changes nothing: then nothing is written,
        unless an ``event_id`` was given, in which case ``noop`` is recorded
        so that a retry is recognised. A retried ``event_id`` returns the
        version it got the first time (and no state, unless it created).
        """
        if expected_version is not None and (
            isinstance(expected_version, bool) or not isinstance(expected_version, int) or not 0 <= expected_version < 2**63
        ):
            raise InvalidInput(
                f"session {session_id!r}: expected_version must be an integer >= 0; got {expected_version!r}",
                session_id=session_id,
                field="expected_version",
            )
        if event_id is not None:
            check_id(event_id, "event_id", session_id)
        with self._write(type_) as tx:
            if event_id is not None:
                prior = self._log.find_event(event_id)
                if prior is not None:
                    return self._retried(session_id, type_, event_id, *prior, create=create, generated_id=generated_id)
            state = self._state(session_id)
            if create and state is not None:
                raise SessionExists(f"session {session_id!r} already exists", session_id=session_id)
            if not create and state is None:
                raise SessionNotFound(f"session {session_id!r} does not exist", session_id=session_id)
            current = state.version if state is not None else 0
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(
                    f"session {session_id!r} is at version {current}, not the expected {expected_version}",
                    session_id=session_id,
                    expected=expected_version,
                    actual=current,
                )
            event = decide(state)
            if event is None:
                if event_id is None or noop is None:
                    return state, current
                event = noop
            new_id = event_id or check_id(self._new_id(), "generated event_id", session_id)
            now = self._clock()
            try:
                recorded = self._log.append(session_id, current + 1, event, new_id, now)
                new_state = apply(state, recorded)
                tx.pending[session_id] = new_state
                self._runner.apply_inline(self._log.conn, (recorded,))
                self._appended = True
                if self._snapshots.due(new_state.version):
                    self._snapshots.save(self._log.conn, new_state, recorded.hash, self._log.head.recorded_at)
            except BaseException as exc:
                tx.broken = exc
                raise
            return new_state, new_state.version

    def _retried(
        self,
        session_id: str,
        type_: str,
        event_id: str,
        sid: str,
        version: int,
        stored_type: str,
        *,
        create: bool,
        generated_id: bool,
    ) -> tuple[Session | None, int]:
        if generated_id and stored_type == type_:
            session_id = sid  # a create retried without naming the session it generated
        if sid != session_id or stored_type != type_:
            raise InvalidInput(
                f"event_id {event_id!r} already recorded a {stored_type!r} event of session {sid!r}",
                session_id=session_id,
                field="event_id",
            )
        if not create:
            return None, version
        return fold(self._log.read_session(session_id, until_version=version)), version

    # -- reads ----------------------------------------------------------------------

    def get_session(
        self, session_id: str, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Session:
        """The session's state now, or right after a ``version``, a global ``position`` or an instant ``at``.

        Raises ``SessionNotFound`` (also for a time or position before it existed) and ``InvalidInput``.
        """
        sid = check_id(session_id, "session_id")
        with self._read("get_session"):
            state = self._view(sid, version, position, at)
        return decode_state(encode_state(state))

    def get_metadata(
        self,
        session_id: str,
        key: str | None = None,
        *,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> Any:
        """All metadata as a dict, or one key's value (None when the key is absent); now or as of a target."""
        return self._keyed("metadata", session_id, key, version, position, at)

    def get_data(
        self,
        session_id: str,
        key: str | None = None,
        *,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> Any:
        """All workflow data as a dict, or one key's value (None when the key is absent); now or as of a target."""
        return self._keyed("data", session_id, key, version, position, at)

    def _keyed(self, what: str, session_id: str, key: str | None, version: object, position: object, at: object) -> Any:
        # ``what`` is "metadata" or "data": the whole mapping, or one key's value, as a copy.
        sid = check_id(session_id, "session_id")
        if key is not None:
            check_key(key, f"{what} key", self._limits, sid)
        with self._read(f"get_{what}"):
            values = getattr(self._view(sid, version, position, at), what)
        return _copy(values if key is None else values.get(key))

    def messages(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> list[Message]:
        """The effective conversation in order (after restores and forks, the one they lead to), now or
        as of a target; optionally one page of it (``limit`` messages after ``offset``)."""
        sid = check_id(session_id, "session_id")
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63):
                raise InvalidInput(
                    f"session {sid!r}: {name} must be an integer >= 0; got {value!r}", session_id=sid, field=name
                )
        with self._read("messages"):
            state = self._view(sid, version, position, at)
            rows = queries.conversation(self._log.conn, segments(state), limit=limit, offset=offset, hidden=state.hidden)
        return [
            Message(
                role=role,
                content=content,
                tool_name=tool_name,
                invocation_id=invocation_id,
                model=model,
                tokens=tokens_dict(tokens_in, tokens_out),
                recorded_at=ev.parse_time(recorded_at),
                version=version,
                position=position,
            )
            for role, content, tool_name, invocation_id, model, tokens_in, tokens_out, recorded_at, version, position in rows
        ]

    def _effective_message(
        self, state: Session, version: int | None, position: int | None = None
    ) -> tuple[str, int, str] | None:
        """Inside a transaction: (origin session, version, role) of the last message of the effective
        conversation, of this session's own message at ``version``, or of the one at ``position``."""
        if state.message_count == 0:
            return None
        last_only = version is None and position is None
        rows = in_segments(
            self._log.conn, "messages", "session_id, version, role, position", segments(state),
            limit=1 if last_only else None, offset=state.message_count - 1 if last_only else 0, hidden=state.hidden,
        )
        for origin, message_version, role, message_position in reversed(rows):
            if (
                (version is None and position is None)
                or (position is not None and message_position == position)
                or (version is not None and origin == state.session_id and message_version == version)
            ):
                return origin, message_version, role
        return None

    def history(self, session_id: str | None = None, *, after: int = 0) -> Iterator[RecordedEvent]:
        """The audit timeline: recorded events with position > ``after``, of one session or all, in order.

        Reads in chunks, so other threads can append while a long history is walked.
        """
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
            raise InvalidInput(f"after must be an integer >= 0; got {after!r}", field="after")
        sid = None if session_id is None else check_id(session_id, "session_id")
        if sid is not None:
            with self._read("history"):
                self._existing(sid)
        return self._history(sid, after)

    def _history(self, session_id: str | None, after: int) -> Iterator[RecordedEvent]:
        while True:
            with self._read("history"):
                chunk = self._log.read(after=after, limit=_READ_CHUNK, session_id=session_id)
            yield from chunk
            if len(chunk) < _READ_CHUNK:
                return
            after = chunk[-1].position

    @property
    def last_position(self) -> int:
        """The position of the newest event (0 for an empty ledger)."""
        with self._read("last_position"):
            return self._log.head.position

    def digest(self) -> Digest:
        """The chain head (last position and its hash); keep it to ``verify`` against later."""
        with self._read("digest"):
            head = self._log.head
        return Digest(head.position, head.hash.hex())

    def verify(self, digest: Digest | None = None, *, progress: Progress | None = None) -> VerifyReport:
        """Walk the whole hash chain and report the first row that breaks it.

        With a ``digest`` saved earlier, also prove that the log still holds,
        unchanged, every row up to the digest's position. ``progress`` is told
        (rows checked, rows in all) as the walk goes.
        """
        if digest is not None:
            check_digest(digest)
        check_progress(progress)
        checker = ChainChecker()
        with self._read("verify"):
            total = self._log.head.position
        while True:  # in chunks, so other threads can append while a long log is walked
            with self._read("verify"):
                rows = self._log.raw_rows(after=checker.position, limit=10 * _READ_CHUNK)
            if not checker.check(rows):
                return checker.report()
            if progress is not None:
                progress(checker.position, max(total, checker.position))
            if len(rows) < 10 * _READ_CHUNK:
                break
        report = checker.report()
        if digest is not None and digest.position > 0:
            report = self._verify_digest(report, digest)
        return report if not report.ok else self._verify_snapshots(report)

    def _verify_digest(self, report: VerifyReport, digest: Digest) -> VerifyReport:
        if report.head.position < digest.position:
            return msgspec.structs.replace(
                report,
                ok=False,
                first_bad_position=report.head.position + 1,
                reason=f"the log ends at position {report.head.position}, before the digest's position {digest.position}",
            )
        with self._read("verify"):
            stored_hash = self._log.row_hash(digest.position)
        if stored_hash is None or stored_hash.hex() != digest.hash:
            return msgspec.structs.replace(
                report,
                ok=False,
                first_bad_position=digest.position,
                reason=f"the chain at position {digest.position} differs from the saved digest: the log was rewritten",
            )
        return report

    def _verify_snapshots(self, report: VerifyReport) -> VerifyReport:
        """Check that every snapshot equals the fold of its session's events up to its version."""
        with self._read("verify"):
            sessions = snapshots.sessions_with_snapshots(self._log.conn)
        for sid in sessions:
            with self._read("verify"):
                expected = snapshots.stored(self._log.conn, sid)
                events = self._log.read_session(sid, until_version=max(expected))
            state = None
            for event in events:
                state = apply(state, event)
                blob = expected.get(state.version)
                if blob is not None and blob != snapshots.encode_state(state):
                    return msgspec.structs.replace(
                        report,
                        ok=False,
                        first_bad_position=state.position,
                        reason=f"the snapshot of session {sid!r} at version {state.version} does not match its events",
                    )
        return report

    # -- projections and queries ------------------------------------------------------

    def register(self, projector: Projector) -> None:
        """Add a projector of your own; its tables are created and caught up from position 0 now."""
        self._outside_batch("register a projector")
        check_custom(projector)
        with self._write("register"):
            self._runner.add(projector)
            try:
                self._runner.ensure(self._log.conn)
                self._catch_up()
            except BaseException:
                self._runner.remove(projector)
                raise

    def rebuild(self, name: str | None = None, progress: Progress | None = None) -> int:
        """Drop one projection (or all) and replay the whole log into it; returns the events replayed.

        Runs in one transaction: other writers wait until it is done.
        """
        self._outside_batch("rebuild")
        check_progress(progress)
        with self._write("rebuild"):
            projectors = self._runner.projectors if name is None else [self._runner.get(name)]
            head = self._log.head.position
            self._runner.rebuild(self._log.conn, projectors, self._read_batch, head, progress)
        return head

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        status: str | Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        any_tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        text: str | None = None,
        parent_id: str | None = None,
        order_by: str = "created_at",
        descending: bool = True,
        limit: int = 100,
        cursor: str | None = None,
    ) -> queries.Page:
        """Sessions matching every filter given, a page at a time; ``Page.cursor`` fetches the next.

        ``tags``: all of them; ``any_tags``: any of them; ``metadata``: {key: value}
        equality, or ``ANY`` for the key's presence; ``text``: words in the
        conversation; ``limit``: 1-10000. Raises ``InvalidInput`` for a bad filter.
        """
        plan = queries.plan_list(
            user_id=user_id,
            status=status,
            tags=tags,
            any_tags=any_tags,
            metadata=metadata,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            text=text,
            parent_id=parent_id,
            order_by=order_by,
            descending=descending,
            limit=limit,
            cursor=cursor,
        )
        if plan.needs_search:  # validated first: a rejected listing writes nothing, not even the index
            self._level_lazy()
        with self._read("list_sessions"):
            return queries.run_list(self._log.conn, plan)

    def find_sessions_by_metadata(self, filters: Mapping[str, Any], **options: Any) -> queries.Page:
        """Sessions whose metadata has every given key with the given value (``ANY``: just the key)."""
        return self.list_sessions(metadata=filters, **options)

    def sessions_by_tag(self, tag: str, **options: Any) -> queries.Page:
        """Sessions carrying the tag."""
        return self.list_sessions(tags=[tag], **options)

    def starred_sessions(self, **options: Any) -> queries.Page:
        """Sessions whose metadata key ``is_starred`` is true."""
        return self.list_sessions(metadata={"is_starred": True}, **options)

    def search_messages(
        self, query: str, *, session_id: str | None = None, role: str | None = None, limit: int = 20
    ) -> list[search.SearchHit]:
        """Full-text search over every conversation: the best ``limit`` messages holding all the words.

        ``session_id`` limits it to that session's effective conversation (inherited messages included).
        """
        sid = None if session_id is None else check_id(session_id, "session_id")
        if role is not None:
            check_choice(role, "role", ev.ROLES, sid)
        plan = search.plan_search(query, session_id=sid, role=role, limit=limit)
        if sid is not None:
            with self._read("search_messages"):
                self._existing(sid)
        self._level_lazy()  # validated first: a rejected search writes nothing, not even the index
        with self._read("search_messages"):
            return search.run_search(self._log.conn, plan)

    def statistics(
        self, session_id: str, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> analytics.Statistics:
        """A session's figures, now or as of a target: counts by role, invocations by status, tools with
        count and duration each, tokens, cost, first and last activity."""
        sid = check_id(session_id, "session_id")
        with self._read("statistics"):
            state = self._view(sid, version, position, at)
            tools, by_status = analytics.invocation_figures(self._log.conn, segments(state))
        return analytics.Statistics(
            session_id=sid,
            status=state.status,
            message_count=state.message_count,
            messages_by_role=dict(sorted(state.messages_by_role.items())),
            invocation_count=state.invocation_count,
            invocations_by_status=by_status,
            total_duration_ms=state.total_duration_ms,
            tools_used=state.tools_used,
            tools=tools,
            tokens_in=state.tokens_in,
            tokens_out=state.tokens_out,
            estimated_cost=state.estimated_cost,
            first_activity=state.created_at,
            last_activity=state.updated_at,
            duration_s=(state.updated_at - state.created_at).total_seconds(),
        )

    def usage(
        self, *, by: str = "tool", since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Usage grouped by tool, user, model, day or status: sessions, messages, invocations, tokens, cost, durations."""
        with self._read("usage"):
            return analytics.usage(self._log.conn, by, since, until)

    # -- handles ----------------------------------------------------------------------

    def session(
        self,
        session_id: str | None = None,
        *,
        create: bool = True,
        user_id: str | None = None,
        purpose: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> SessionHandle:
        """A ``SessionHandle`` bound to one session: its commands and reads without the id.

        With ``create=True`` (the default) a missing session is created with
        ``user_id``, ``purpose``, ``tags`` and ``metadata`` (and an id generated
        when ``session_id`` is None); an existing one is used as it is, those
        fields ignored. With ``create=False`` a missing session raises
        ``SessionNotFound``, and giving any field raises ``InvalidInput``.
        """
        from .handle import open_session

        fields = {"user_id": user_id, "purpose": purpose, "tags": tags, "metadata": metadata}
        return open_session(self, session_id, create, fields)
