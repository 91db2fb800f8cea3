"""The ``Ledger`` facade, composed of an engine and the collaborators that use it, and its session handles.

``Ledger`` holds no logic of its own: each public method is a collaborator's
method (``delegation.delegate``), declared once there with its signature and
docstring. The engine owns the storage, the lock, the transactions and the
state cache; the commands decide events; the reads fold and query; retention
purges and abandons; transfer exports, imports, backs up and replays.

One ``Ledger`` may be shared by many threads and several processes may open
the same file; every command either appends exactly one event or raises
having written nothing.

``Ledger.session("chat-1")`` returns a :class:`SessionHandle`; every method
is the ``Ledger`` method of the same name (``complete`` is
``complete_session``, ``state`` is ``get_session``) with the session id filled
in, derived from it (``delegation.for_session``), so it validates, raises and
writes exactly as that method does. A handle holds no state of its own: it is
cheap, safe to share between threads, and always reads the ledger's current truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pydantic

from projections.base import Projector

from .chain import Digest, VerifyReport, verify
from .chain_source import EngineChain
from .deep import check_projections
from .commands import Commands
from .conversations import Conversations
from .delegation import bind_delegates, delegate, for_session
from .engine import Engine, open_engine
from .errors import InvalidInput, SessionExists, SessionNotFound
from .proofs import Proofs
from .reads import Reads
from .times import time_arg
from .report import render
from .records import Records
from .retention import CleanupThread, Retention
from .transfer import Transfer
from .output import save_text
from .validation import Limits, MetadataSchema, Progress, check_id, check_options, path_arg


class Ledger:
    """An event-sourced ledger of agent sessions in one SQLite file.

    ``Ledger(":memory:")`` keeps everything in memory (for tests). ``clock``
    returns aware datetimes; ``durability`` is ``"normal"`` or ``"full"`` (see
    ``ledger.storage.sqlite``); ``metadata_schema`` is an optional pydantic model that
    validates metadata by key and supplies defaults at creation. ``new_id`` makes
    event and session ids, ``new_salt`` each event's payload salt (16 random bytes by
    default; inject both only to make tests repeatable).
    ``create=False`` opens an existing ledger only (``LedgerNotFound`` when there is none),
    so a mistyped path is an error rather than a new, empty ledger. A file in a read-only
    directory, or itself read-only, opens read-only: every read works, a change raises
    ``ReadOnlyLedger``.
    Raises ``UnsupportedFormat`` for a file that is not a ledger or is newer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "ledger.db",
        *,
        clock: Callable[[], datetime] | None = None,
        durability: str = "normal",
        metadata_schema: type[pydantic.BaseModel] | None = None,
        snapshot_every: int = 100,
        limits: Limits | None = None,
        busy_timeout: float = 5.0,
        new_id: Callable[[], str] | None = None,
        new_salt: Callable[[], bytes] | None = None,
        cache_size: int = 4096,
        projectors: Iterable[Projector] = (),
        cleanup_every: float | None = None,
        max_idle: timedelta | float | None = None,
        create: bool = True,
    ) -> None:
        if not isinstance(create, bool):
            raise InvalidInput(f"create must be True or False; got {create!r}", field="create")
        options = check_options(
            path, durability=durability, busy_timeout=busy_timeout, snapshot_every=snapshot_every,
            cache_size=cache_size, clock=clock, new_id=new_id, new_salt=new_salt, limits=limits,
            cleanup_every=cleanup_every,
            max_idle=max_idle,
        )
        self._limits = limits or Limits()
        schema = MetadataSchema(metadata_schema) if metadata_schema is not None else None
        engine = self._engine = open_engine(
            options.path, durability=options.durability, busy_timeout=options.busy_timeout,
            snapshot_every=options.snapshot_every, cache_size=options.cache_size, projectors=projectors,
            clock=clock, new_id=new_id, new_salt=new_salt, create=create,
        )
        self._commands = Commands(engine, self._limits, schema)
        self._reads = Reads(engine, self._limits)
        self._retention = Retention(engine, self._commands, self._limits)
        self._transfer = Transfer(engine, self._limits)
        self._conversations = Conversations(engine, self._reads, self._commands)
        self._records = Records(engine, self._limits)
        self._proofs = Proofs(engine)
        bind_delegates(self)
        self.path = engine.path  # for a URL: without its password
        self.durability = options.durability
        self._cleaner: CleanupThread | None = None
        if options.cleanup_every is not None and options.max_idle is not None:
            self._cleaner = CleanupThread(self.cleanup, options.cleanup_every, options.max_idle)
            self._cleaner.start()

    # -- the ledger itself ------------------------------------------------------

    def close(self) -> None:
        """Close the file (and stop the background cleanup). Safe to call twice; later use raises ``StorageError``.

        If this ledger appended, the search index is brought level first, so SQL tools reading the
        file see every message in it.
        """
        engine = self._engine
        with engine.lock:
            engine.outside_batch("close the ledger")  # the batch would be lost and leave a dead transaction
        if self._cleaner is not None:
            self._cleaner.stop()
        engine.close()

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

    @contextmanager
    def batch(self) -> Iterator[Ledger]:
        """Append every command made inside the block in one transaction: all of them, or none.

        A command rejected inside the block (bad input, a missing or closed
        session, a stale version) writes nothing and the others stand; an
        exception leaving the block rolls the whole batch back, and so does a
        storage failure part-way through a command. Other threads wait until
        the block ends.
        """
        engine = self._engine
        with engine.lock:
            engine.outside_batch("start a batch (batches do not nest)")
            with engine.write("batch"):
                yield self

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
        fields = {"user_id": user_id, "purpose": purpose, "tags": tags, "metadata": metadata}
        return open_session(self, session_id, create, fields)

    # -- commands ---------------------------------------------------------------

    create_session = delegate("_commands", Commands.create_session)
    add_message = delegate("_commands", Commands.add_message)
    link_invocation = delegate("_commands", Commands.link_invocation)
    set_metadata = delegate("_commands", Commands.set_metadata)
    update_metadata = delegate("_commands", Commands.update_metadata)
    remove_metadata = delegate("_commands", Commands.remove_metadata)
    set_data = delegate("_commands", Commands.set_data)
    delete_data = delegate("_commands", Commands.delete_data)
    clear_data = delegate("_commands", Commands.clear_data)
    add_tags = delegate("_commands", Commands.add_tags)
    remove_tags = delegate("_commands", Commands.remove_tags)
    retract_message = delegate("_commands", Commands.retract_message)
    clear_conversation = delegate("_commands", Commands.clear_conversation)
    complete_session = delegate("_commands", Commands.complete_session)
    restore = delegate("_commands", Commands.restore)
    fork = delegate("_commands", Commands.fork)

    # -- records: what an integration keeps in a session (checkpoints, say) --------

    set_record = delegate("_records", Records.set_record)
    remove_records = delegate("_records", Records.remove_records)
    record = delegate("_records", Records.record)
    records = delegate("_records", Records.records)

    # -- reads --------------------------------------------------------------------

    get_session = delegate("_reads", Reads.get_session)
    get_metadata = delegate("_reads", Reads.get_metadata)
    get_data = delegate("_reads", Reads.get_data)
    messages = delegate("_reads", Reads.messages)
    history = delegate("_reads", Reads.history)
    follow = delegate("_reads", Reads.follow)
    statistics = delegate("_reads", Reads.statistics)
    list_sessions = delegate("_reads", Reads.list_sessions)
    find_sessions_by_metadata = delegate("_reads", Reads.find_sessions_by_metadata)
    sessions_by_tag = delegate("_reads", Reads.sessions_by_tag)
    starred_sessions = delegate("_reads", Reads.starred_sessions)
    search_messages = delegate("_reads", Reads.search_messages)
    usage = delegate("_reads", Reads.usage)
    conversation = delegate("_conversations", Conversations.conversation)
    add_messages = delegate("_conversations", Conversations.add_messages)
    record_response = delegate("_conversations", Conversations.record_response)
    sessions_by_status = delegate("_reads", Reads.sessions_by_status)
    lifecycle = delegate("_reads", Reads.lifecycle)
    tool_health = delegate("_reads", Reads.tool_health)
    digest = delegate("_reads", Reads.digest)

    @property
    def last_position(self) -> int:
        """The position of the newest event (0 for an empty ledger)."""
        return self._reads.last_position

    def verify(
        self, digest: Digest | None = None, *, progress: Progress | None = None, projections: bool = False
    ) -> VerifyReport:
        """Walk the whole hash chain and report the first row that breaks it.

        With a ``digest`` saved earlier, also prove that the log still holds,
        unchanged, every row up to the digest's position; then check every
        snapshot against its events. ``progress`` is told (rows checked, rows
        in all) as the walk goes. With ``projections=True`` (the deep mode),
        also rebuild the read tables from the log and name the first table and
        row that differ (``ledger.deep``). It reads one consistent snapshot of
        the log, whatever other processes append, purge or drop meanwhile
        (other threads of this ``Ledger`` wait until it is done).
        """
        if not isinstance(projections, bool):
            raise InvalidInput(f"projections must be True or False; got {projections!r}", field="projections")
        with self._engine.read("verify"):
            report = verify(EngineChain(self._engine), digest, progress)
            if projections and report.ok:
                report = check_projections(self._engine, report)
            if projections and report.ok:
                report = self._proofs.check_tiles(report)
        if not self._engine.finish_scrub(look=True):
            report = msgspec.structs.replace(report, scrub_pending=True)
        return report

    def report(
        self, out: str | os.PathLike[str], *, since: datetime | None = None, until: datetime | None = None,
        session: str | None = None,
    ) -> str:
        """Write one self-contained HTML page (``ledger.report``): activity, tokens and cost per day, the
        lifecycle, breakdowns by tool, model, user and status, the integrity line, and with ``session`` that
        session's timeline, lineage and conversation. It opens offline. Returns the path written."""
        for name, bound in (("since", since), ("until", until)):
            if bound is not None:
                time_arg(bound, name)  # InvalidInput naming the argument, before anything is read or written
        if session is not None:
            session = check_id(session, "session")
            self.get_session(session)  # SessionNotFound before anything is written
        page = render(self, since=since, until=until, session=session, now=self._engine.clock())
        path = path_arg(out, "out")
        save_text(path, page, "the report")
        return path

    def finish_scrub(self) -> bool:
        """Empty SQLite's WAL of a purge's text now, if no other connection's snapshot still holds it
        (the purge may have been another process's); True when no scrub is pending (PostgreSQL: always).
        The ledger also tries at its next write, close, open, gc and verify."""
        return self._engine.finish_scrub(look=True)

    # -- snapshots and projections ---------------------------------------------------

    checkpoint = delegate("_engine", Engine.checkpoint)
    drop_snapshots = delegate("_engine", Engine.drop_snapshots)
    writer_stats = delegate("_engine", Engine.writer_stats)
    register = delegate("_engine", Engine.register)
    rebuild = delegate("_engine", Engine.rebuild)

    # -- proofs: the Merkle tree over the log and signed checkpoints ---------------------

    tree_head = delegate("_proofs", Proofs.tree_head)
    inclusion_proof = delegate("_proofs", Proofs.inclusion_proof)
    consistency_proof = delegate("_proofs", Proofs.consistency_proof)
    sign_checkpoint = delegate("_proofs", Proofs.sign_checkpoint)
    proof_bundle = delegate("_proofs", Proofs.proof_bundle)
    latest_checkpoint = delegate("_proofs", Proofs.latest_checkpoint)
    verify_checkpoint = delegate("_proofs", Proofs.verify_checkpoint)

    # -- retention ------------------------------------------------------------------

    purge_session = delegate("_retention", Retention.purge_session)
    purge_completed = delegate("_retention", Retention.purge_completed)
    cleanup = delegate("_retention", Retention.cleanup)

    # -- transfer -------------------------------------------------------------------

    export = delegate("_transfer", Transfer.export)
    import_events = delegate("_transfer", Transfer.import_events)
    backup = delegate("_transfer", Transfer.backup)
    replay = delegate("_transfer", Transfer.replay)


class SessionHandle:
    """One session of a ledger, bound: the ledger's commands and reads minus the session id.

    Made by ``Ledger.session``. Commands return the session's new version;
    every error is the ``LedgerError`` the ledger method raises.
    """

    __slots__ = ("ledger", "session_id")

    def __init__(self, ledger: Ledger, session_id: str) -> None:
        self.ledger = ledger
        self.session_id = check_id(session_id, "session_id")

    def __repr__(self) -> str:
        return f"SessionHandle({self.session_id!r}, ledger={self.ledger!r})"

    # -- commands: the ledger's own, with the session id filled in -----------------------

    add_message = for_session(Commands.add_message)
    link_invocation = for_session(Commands.link_invocation)
    set_metadata = for_session(Commands.set_metadata)
    update_metadata = for_session(Commands.update_metadata)
    remove_metadata = for_session(Commands.remove_metadata)
    set_data = for_session(Commands.set_data)
    delete_data = for_session(Commands.delete_data)
    clear_data = for_session(Commands.clear_data)
    add_tags = for_session(Commands.add_tags)
    remove_tags = for_session(Commands.remove_tags)
    retract_message = for_session(Commands.retract_message)
    clear_conversation = for_session(Commands.clear_conversation)
    complete = for_session(Commands.complete_session, "complete")
    restore = for_session(Commands.restore)
    checkpoint = for_session(Engine.checkpoint)

    def fork(
        self,
        *,
        version: int | None = None,
        at: datetime | None = None,
        new_session_id: str | None = None,
        event_id: str | None = None,
    ) -> SessionHandle:
        """Start a new session from this one's state now, or at a version or instant (``Ledger.fork``);
        returns the new session's handle."""
        child = self.ledger.fork(
            self.session_id, version=version, at=at, new_session_id=new_session_id, event_id=event_id
        )
        return SessionHandle(self.ledger, child.session_id)

    # -- reads ------------------------------------------------------------------------------

    state = for_session(Reads.get_session, "state")
    get_metadata = for_session(Reads.get_metadata)
    get_data = for_session(Reads.get_data)
    messages = for_session(Reads.messages)
    history = for_session(Reads.history)
    statistics = for_session(Reads.statistics)


def open_session(ledger: Ledger, session_id: str | None, create: bool, fields: dict[str, Any]) -> SessionHandle:
    """``Ledger.session``: check or create the session, then bind a handle to it."""
    if not isinstance(create, bool):
        raise InvalidInput(f"create must be True or False; got {create!r}", field="create")
    given = {name: value for name, value in fields.items() if value is not None}
    if session_id is None and not create:
        raise InvalidInput("session_id is required when create=False", field="session_id")
    sid = None if session_id is None else check_id(session_id, "session_id")
    if not create:
        if given:
            name = sorted(given)[0]
            raise InvalidInput(
                f"session {sid!r}: {name} only applies when the session is created, and create=False never creates",
                session_id=sid,
                field=name,
            )
        assert sid is not None
        ledger.history(sid)  # raises SessionNotFound now; no event is read until it is iterated
        return SessionHandle(ledger, sid)
    # A read first: a handle on an existing session takes no write lock, so opening
    # one also works on a read-only file or one another process keeps busy.
    if sid is not None and _exists(ledger, sid):
        return SessionHandle(ledger, sid)
    try:
        created = ledger.create_session(sid, **given)
    except SessionExists:  # another thread or process created it since the read: the same outcome
        assert sid is not None
        return SessionHandle(ledger, sid)
    return SessionHandle(ledger, created.session_id)


def _exists(ledger: Ledger, session_id: str) -> bool:
    try:
        ledger.history(session_id)  # checks existence now; events are read only when iterated
    except SessionNotFound:
        return False
    return True
