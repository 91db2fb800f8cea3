"""``AsyncLedger``: the ``Ledger``'s commands and reads as awaitables, for asyncio agents.

Every call runs on one worker thread that owns the ``Ledger`` (a
``ThreadPoolExecutor`` with one worker), so the event loop never waits on
SQLite: it only waits for the call's result, like any other I/O. One thread is
enough because the ledger serialises its writes anyway (one connection, one
``BEGIN IMMEDIATE`` per command); calls run in the order they were made.

A call cancelled while it waits in the queue never runs; one already running
finishes (a command then either wrote or did not, as always: retry it with
the same ``event_id`` to be sure). Callbacks (``progress=``) run on the
worker thread. The methods are generated from ``Ledger``'s, so their
signatures and docstrings are the ``Ledger``'s own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from itertools import islice
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from . import InvalidInput, Ledger, Limits, RecordedEvent, SessionHandle, StorageError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_CHUNK = 1000  # events fetched per hop to the worker thread while iterating a history


def _awaitable(method: Callable[Concatenate[Any, P], R], owner: str) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """An ``async def`` that runs ``method`` (by name, on the object the owner wraps) in the worker thread.

    It keeps the method's name, signature and docstring, so ``help()`` and
    type checkers see the ``Ledger`` method with an awaitable result.
    """
    name = method.__name__

    async def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._forward(name, args, kwargs)  # type: ignore[no-any-return]  # _forward runs the method by name: Any

    call.__name__ = name
    call.__qualname__ = f"{owner}.{name}"
    call.__module__ = __name__
    call.__doc__ = f"Awaitable ``{owner.removeprefix('Async')}.{name}``: {inspect.getdoc(method)}"
    call.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]  # inspect reads it; typeshed omits it
    return call


class _Batch:
    """An open ``AsyncLedger.batch``: the sync batch it holds in the worker thread, and its end."""

    __slots__ = ("done", "scope")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.scope: Any = None


# The batch whose body the current task runs in (tasks started in the body inherit it).
_in_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar("ledger_aio_batch", default=None)


class AsyncLedger:
    """The ``Ledger`` API as awaitables: ``async with AsyncLedger("sessions.db") as led: await led.add_message(...)``.

    Takes the ``Ledger``'s arguments (opened on the worker thread, so opening
    does not block the loop either), or an open ``Ledger`` to share with sync
    code (then ``aclose`` leaves it open). Errors are the ``Ledger``'s; a call
    after ``aclose`` raises ``StorageError``.
    """

    def __init__(self, path: str | os.PathLike[str] | Ledger = "ledger.db", **options: Any) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-aio")
        self._batch: _Batch | None = None
        self._closed = False
        self._sync: Ledger | None = None
        self._open_error: BaseException | None = None
        if isinstance(path, Ledger):
            if options:
                raise InvalidInput(
                    f"options {sorted(options)} apply when opening a file, not to an open Ledger", field="options"
                )
            self._owns = False
            self._sync = path
            self.path = path.path
            self._opening: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._opening.set_result(None)
        else:
            self._owns = True
            self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
            self._opening = self._executor.submit(self._open, path, options)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"AsyncLedger({self.path!r}, {state})"

    def _open(self, path: Any, options: dict[str, Any]) -> None:
        try:
            self._sync = Ledger(path, **options)
        except BaseException as exc:
            self._open_error = exc
            raise

    @property
    def limits(self) -> Limits:
        """The hard limits the ledger enforces (no I/O, so not an awaitable)."""
        return self.ledger.limits

    @property
    def ledger(self) -> Ledger:
        """The synchronous ``Ledger`` behind this one, for sync code in other threads (its calls block)."""
        if self._sync is None:
            raise StorageError(f"the ledger {self.path!r} is not open: use `async with` or await a call first")
        return self._sync

    # -- running calls on the worker thread ----------------------------------------------

    def _ledger(self) -> Ledger:
        if self._sync is None:
            assert self._open_error is not None
            raise self._open_error
        return self._sync

    async def _run(self, fn: Callable[[Ledger], T]) -> T:
        """Run ``fn(ledger)`` on the worker thread and await its result; while another task's batch is
        open, wait for it to end first (its transaction must hold only its own body's commands)."""
        while True:
            if self._closed:
                raise StorageError(f"the ledger {self.path!r} is closed")
            batch = self._batch
            if batch is None or _in_batch.get() is batch:
                break
            await batch.done.wait()
        return await asyncio.wrap_future(self._executor.submit(lambda: fn(self._ledger())))

    async def _forward(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await self._run(lambda led: getattr(led, name)(*args, **kwargs))

    async def _iterate(self, start: Callable[[Ledger], Iterator[T]]) -> AsyncIterator[T]:
        """Iterate a sync iterator the ledger returns, fetching it a chunk at a time on the worker thread."""
        iterator = await self._run(start)
        while True:
            chunk = await self._run(lambda _: list(islice(iterator, _CHUNK)))
            for item in chunk:
                yield item
            if len(chunk) < _CHUNK:
                return

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncLedger:
        try:
            await asyncio.wrap_future(self._opening)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish the calls already made, close the ledger (unless it was handed in open) and stop the
        worker thread. Safe to call twice; refused inside this task's batch (``InvalidInput``)."""
        if self._closed:
            return
        batch = _in_batch.get()
        if batch is not None and batch is self._batch:
            raise InvalidInput("cannot close the ledger inside a batch", field="batch")
        while self._batch is not None:  # another task's batch: let it commit or roll back first
            await self._batch.done.wait()
            if self._closed:
                return
        self._closed = True

        def close() -> None:
            if self._owns and self._sync is not None:
                self._sync.close()

        try:
            await asyncio.shield(asyncio.wrap_future(self._executor.submit(close)))
        finally:
            self._executor.shutdown(wait=False)

    def batch(self) -> _AsyncBatchScope:
        """``async with led.batch():`` appends every command awaited in the body in one transaction:
        all of them, or none (as ``Ledger.batch``).

        Calls from other tasks wait until the body ends, so the transaction holds
        only the body's commands (and those of tasks the body starts). Keep the
        body short and never await, inside it, something that waits for another
        task's ledger call: that call waits for the body. Batches do not nest.
        """
        return _AsyncBatchScope(self)

    # -- reads that are not plain calls --------------------------------------------------------

    async def last_position(self) -> int:
        """The position of the newest event (0 for an empty ledger); ``Ledger.last_position``."""
        return await self._run(lambda led: led.last_position)

    def history(self, session_id: str | None = None, *, after: int = 0) -> AsyncIterator[RecordedEvent]:
        """``async for event in led.history(...)``: the audit timeline (``Ledger.history``), read in chunks.

        A bad argument or a missing session raises when the iteration starts.
        """
        return self._iterate(lambda led: led.history(session_id, after=after))

    async def follow(
        self, session_id: str | None = None, *, after: int = 0, poll: float = 1.0, timeout: float | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """``async for event in led.follow(...)``: the timeline as it grows (``Ledger.follow``).

        Its waits run on a thread of their own, so other calls go on meanwhile; a bad argument raises
        when the iteration starts.
        """
        iterator = await self._run(lambda led: led.follow(session_id, after=after, poll=poll, timeout=timeout))
        done = object()
        while True:
            item = await asyncio.to_thread(next, iterator, done)
            if item is done:
                return
            yield item  # type: ignore[misc]  # not the sentinel, so a RecordedEvent

    async def session(
        self,
        session_id: str | None = None,
        *,
        create: bool = True,
        user_id: str | None = None,
        purpose: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncSessionHandle:
        """An ``AsyncSessionHandle`` bound to one session, created when missing unless ``create=False``
        (``Ledger.session``)."""
        handle = await self._run(
            lambda led: led.session(
                session_id, create=create, user_id=user_id, purpose=purpose, tags=tags, metadata=metadata
            )
        )
        return AsyncSessionHandle(self, handle)

    # -- commands --------------------------------------------------------------------------

    create_session = _awaitable(Ledger.create_session, "AsyncLedger")
    add_message = _awaitable(Ledger.add_message, "AsyncLedger")
    link_invocation = _awaitable(Ledger.link_invocation, "AsyncLedger")
    set_metadata = _awaitable(Ledger.set_metadata, "AsyncLedger")
    update_metadata = _awaitable(Ledger.update_metadata, "AsyncLedger")
    remove_metadata = _awaitable(Ledger.remove_metadata, "AsyncLedger")
    set_data = _awaitable(Ledger.set_data, "AsyncLedger")
    delete_data = _awaitable(Ledger.delete_data, "AsyncLedger")
    clear_data = _awaitable(Ledger.clear_data, "AsyncLedger")
    add_tags = _awaitable(Ledger.add_tags, "AsyncLedger")
    remove_tags = _awaitable(Ledger.remove_tags, "AsyncLedger")
    retract_message = _awaitable(Ledger.retract_message, "AsyncLedger")
    clear_conversation = _awaitable(Ledger.clear_conversation, "AsyncLedger")
    complete_session = _awaitable(Ledger.complete_session, "AsyncLedger")
    restore = _awaitable(Ledger.restore, "AsyncLedger")
    fork = _awaitable(Ledger.fork, "AsyncLedger")
    checkpoint = _awaitable(Ledger.checkpoint, "AsyncLedger")
    drop_snapshots = _awaitable(Ledger.drop_snapshots, "AsyncLedger")
    writer_stats = _awaitable(Ledger.writer_stats, "AsyncLedger")
    finish_scrub = _awaitable(Ledger.finish_scrub, "AsyncLedger")
    purge_session = _awaitable(Ledger.purge_session, "AsyncLedger")
    purge_completed = _awaitable(Ledger.purge_completed, "AsyncLedger")
    cleanup = _awaitable(Ledger.cleanup, "AsyncLedger")

    # -- reads -----------------------------------------------------------------------------

    set_record = _awaitable(Ledger.set_record, "AsyncLedger")
    remove_records = _awaitable(Ledger.remove_records, "AsyncLedger")
    record = _awaitable(Ledger.record, "AsyncLedger")
    records = _awaitable(Ledger.records, "AsyncLedger")
    get_session = _awaitable(Ledger.get_session, "AsyncLedger")
    get_metadata = _awaitable(Ledger.get_metadata, "AsyncLedger")
    get_data = _awaitable(Ledger.get_data, "AsyncLedger")
    messages = _awaitable(Ledger.messages, "AsyncLedger")
    statistics = _awaitable(Ledger.statistics, "AsyncLedger")
    list_sessions = _awaitable(Ledger.list_sessions, "AsyncLedger")
    # mypy: with **options, "self" could be a keyword too, so these do not match Concatenate exactly.
    find_sessions_by_metadata = _awaitable(Ledger.find_sessions_by_metadata, "AsyncLedger")
    sessions_by_tag = _awaitable(Ledger.sessions_by_tag, "AsyncLedger")
    starred_sessions = _awaitable(Ledger.starred_sessions, "AsyncLedger")
    search_messages = _awaitable(Ledger.search_messages, "AsyncLedger")
    usage = _awaitable(Ledger.usage, "AsyncLedger")
    sessions_by_status = _awaitable(Ledger.sessions_by_status, "AsyncLedger")
    lifecycle = _awaitable(Ledger.lifecycle, "AsyncLedger")
    tool_health = _awaitable(Ledger.tool_health, "AsyncLedger")
    conversation = _awaitable(Ledger.conversation, "AsyncLedger")
    add_messages = _awaitable(Ledger.add_messages, "AsyncLedger")
    record_response = _awaitable(Ledger.record_response, "AsyncLedger")
    digest = _awaitable(Ledger.digest, "AsyncLedger")
    verify = _awaitable(Ledger.verify, "AsyncLedger")
    report = _awaitable(Ledger.report, "AsyncLedger")
    tree_head = _awaitable(Ledger.tree_head, "AsyncLedger")
    inclusion_proof = _awaitable(Ledger.inclusion_proof, "AsyncLedger")
    consistency_proof = _awaitable(Ledger.consistency_proof, "AsyncLedger")
    sign_checkpoint = _awaitable(Ledger.sign_checkpoint, "AsyncLedger")
    proof_bundle = _awaitable(Ledger.proof_bundle, "AsyncLedger")
    latest_checkpoint = _awaitable(Ledger.latest_checkpoint, "AsyncLedger")
    verify_checkpoint = _awaitable(Ledger.verify_checkpoint, "AsyncLedger")

    # -- projections and whole-file work -----------------------------------------------------

    register = _awaitable(Ledger.register, "AsyncLedger")
    rebuild = _awaitable(Ledger.rebuild, "AsyncLedger")
    replay = _awaitable(Ledger.replay, "AsyncLedger")
    export = _awaitable(Ledger.export, "AsyncLedger")
    import_events = _awaitable(Ledger.import_events, "AsyncLedger")
    backup = _awaitable(Ledger.backup, "AsyncLedger")


class _AsyncBatchScope:
    """The async context manager ``AsyncLedger.batch`` returns."""

    __slots__ = ("batch", "led", "token")

    def __init__(self, led: AsyncLedger) -> None:
        self.led = led
        self.batch: _Batch | None = None
        self.token: contextvars.Token[_Batch | None] | None = None

    async def __aenter__(self) -> AsyncLedger:
        led = self.led
        current = _in_batch.get()
        if current is not None and current is led._batch:
            raise InvalidInput("cannot start a batch (batches do not nest)", field="batch")
        while led._batch is not None:
            await led._batch.done.wait()
        if led._closed:
            raise StorageError(f"the ledger {led.path!r} is closed")
        batch = self.batch = led._batch = _Batch()
        self.token = _in_batch.set(batch)

        def begin(sync: Ledger) -> None:
            scope = sync.batch()
            scope.__enter__()  # takes the ledger's lock in the worker thread, which runs the body's calls too
            batch.scope = scope

        try:
            await led._run(begin)
        except BaseException as exc:
            scope = batch.scope
            if scope is not None:  # begin() ran before the cancellation arrived: end the batch on the worker
                failure = (type(exc), exc, exc.__traceback__)
                ended = led._executor.submit(lambda: scope.__exit__(*failure))
                await asyncio.shield(asyncio.wrap_future(ended))
            await self._release()
            raise
        return led

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        batch = self.batch
        assert batch is not None
        scope = batch.scope

        def end() -> None:
            scope.__exit__(exc_type, exc, tb)  # commits, or rolls back when the body raised

        try:
            # Straight to the worker, past the gate, and shielded: the batch must end even if we are cancelled.
            await asyncio.shield(asyncio.wrap_future(self.led._executor.submit(end)))
        finally:
            await self._release()

    async def _release(self) -> None:
        batch = self.batch
        assert batch is not None and self.token is not None
        _in_batch.reset(self.token)
        if self.led._batch is batch:
            self.led._batch = None
        batch.done.set()


class AsyncSessionHandle:
    """One session of an ``AsyncLedger``, bound: the ``SessionHandle`` API as awaitables.

    Made by ``await led.session(...)``; ``handle`` is the sync ``SessionHandle``.
    """

    __slots__ = ("handle", "ledger", "session_id")

    def __init__(self, ledger: AsyncLedger, handle: SessionHandle) -> None:
        self.ledger = ledger
        self.handle = handle
        self.session_id = handle.session_id

    def __repr__(self) -> str:
        return f"AsyncSessionHandle({self.session_id!r}, ledger={self.ledger!r})"

    async def _forward(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        handle = self.handle
        return await self.ledger._run(lambda _: getattr(handle, name)(*args, **kwargs))

    async def fork(
        self,
        *,
        version: int | None = None,
        at: Any = None,
        new_session_id: str | None = None,
        event_id: str | None = None,
    ) -> AsyncSessionHandle:
        """Start a new session from this one's state (``SessionHandle.fork``); returns its handle."""
        handle = self.handle
        child = await self.ledger._run(
            lambda _: handle.fork(version=version, at=at, new_session_id=new_session_id, event_id=event_id)
        )
        return AsyncSessionHandle(self.ledger, child)

    def history(self, *, after: int = 0) -> AsyncIterator[RecordedEvent]:
        """``async for event in handle.history()``: the session's recorded events (``Ledger.history``)."""
        return self.ledger._iterate(lambda led: led.history(self.session_id, after=after))

    add_message = _awaitable(SessionHandle.add_message, "AsyncSessionHandle")
    link_invocation = _awaitable(SessionHandle.link_invocation, "AsyncSessionHandle")
    set_metadata = _awaitable(SessionHandle.set_metadata, "AsyncSessionHandle")
    update_metadata = _awaitable(SessionHandle.update_metadata, "AsyncSessionHandle")
    remove_metadata = _awaitable(SessionHandle.remove_metadata, "AsyncSessionHandle")
    set_data = _awaitable(SessionHandle.set_data, "AsyncSessionHandle")
    delete_data = _awaitable(SessionHandle.delete_data, "AsyncSessionHandle")
    clear_data = _awaitable(SessionHandle.clear_data, "AsyncSessionHandle")
    add_tags = _awaitable(SessionHandle.add_tags, "AsyncSessionHandle")
    remove_tags = _awaitable(SessionHandle.remove_tags, "AsyncSessionHandle")
    retract_message = _awaitable(SessionHandle.retract_message, "AsyncSessionHandle")
    clear_conversation = _awaitable(SessionHandle.clear_conversation, "AsyncSessionHandle")
    complete = _awaitable(SessionHandle.complete, "AsyncSessionHandle")
    restore = _awaitable(SessionHandle.restore, "AsyncSessionHandle")
    checkpoint = _awaitable(SessionHandle.checkpoint, "AsyncSessionHandle")
    state = _awaitable(SessionHandle.state, "AsyncSessionHandle")
    get_metadata = _awaitable(SessionHandle.get_metadata, "AsyncSessionHandle")
    get_data = _awaitable(SessionHandle.get_data, "AsyncSessionHandle")
    messages = _awaitable(SessionHandle.messages, "AsyncSessionHandle")
    statistics = _awaitable(SessionHandle.statistics, "AsyncSessionHandle")
