"""A LangGraph checkpointer on the ledger (``langgraph-checkpoint`` 4.x): ``LedgerSaver``.

    from langgraph.graph import StateGraph
    from ledger import Ledger
    from ledger.integrations.langgraph import LedgerSaver

    graph = builder.compile(checkpointer=LedgerSaver(Ledger("sessions.db")))
    graph.invoke(inputs, {"configurable": {"thread_id": "support-42"}})

Each LangGraph thread is a ledger session, created with the first checkpoint
(metadata ``{"integration": "langgraph", "thread_id": ...}``), and everything the
checkpointer stores is an event of it: a checkpoint with its metadata, the
pending writes of a task, a channel's value at a version are ``record_set``
events (``Ledger.set_record``); deleting and pruning are ``records_removed``
events. So a graph run is on the hash chain (``verify``), readable as of any
earlier moment (``Ledger.records(..., at=...)``), exported and imported with
the rest, erased by ``purge_session`` (``purge_thread``), and listed and
counted with the other sessions.

Storage grows linearly: a channel's value is stored once per version, and a
list (or map) that only grows by appending, a messages list say, is stored as
the new items only (``langgraph_values``), so 1,000 steps of a growing
conversation cost what its messages cost rather than the 1,000 copies of it
that savers storing the whole value at each version keep.

Thread ids may be anything: a thread id of at most 125 characters from
``[A-Za-z0-9._:-]`` becomes the session ``lg:<thread id>``, any other the
session ``lg.<40 hex digits of its SHA-256>``; the thread id itself is in the
session's metadata (``thread_id``) either way (``session_id``, ``thread_id``).

Removal keeps the audit trail, as the ledger's other removals do:
``delete_thread``, ``prune`` and ``delete_for_runs`` take checkpoints and
writes out of the checkpointer's view with a recorded event; the log keeps
them (a read as of an earlier moment still sees them), and only a purge
(``purge_thread``) erases them, after which that thread id takes no new
checkpoint. The ledger's idle cleanup ends idle sessions, LangGraph threads
included: a thread whose session has ended refuses new checkpoints
(``SessionClosed``), so leave ``max_idle`` unset on a ledger that holds threads
which may resume later.

The messages the graph's tasks write to its messages channel (``messages`` by
default) are also added to the session's conversation, in the order LangGraph
applies them, when the checkpoint they lead to is stored, each message id once:
``Ledger.messages``, search and the usage figures (tokens per model, from
LangChain's ``usage_metadata``) see a graph's conversation like any other.

The async methods run the same code in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        DeltaChannelHistory,
        PendingWrite,
        get_checkpoint_id,
        get_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # the optional extra is missing: one line naming it
    from ..extras import missing_extra

    raise missing_extra("langgraph", "ledger.integrations.langgraph", exc) from exc

from .. import InvalidInput, Ledger, Record, SessionNotFound, SessionPurged
from . import run_to_completion
from .langgraph_records import (
    CHECKPOINT,
    INTEGRATION,
    KINDS,
    WRITES,
    ancestor_pages,
    checkpoint_key,
    checkpoint_metadata,
    config_of,
    decode_checkpoint,
    delta_ancestors,
    merge_writes,
    mirror_writes,
    page_writes,
    pending_writes,
    run_group,
    session_for,
    writes_prefix,
)
from .langgraph_values import CHUNK, VALUE, Values, part, value_key

__all__ = ["CHECKPOINT", "CHUNK", "INTEGRATION", "VALUE", "WRITES", "LedgerSaver"]

_PAGE = 64
_T = TypeVar("_T")




class LedgerSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer whose threads are sessions of a ``Ledger`` (see the module's docstring).

    ``ledger`` is shared (the caller closes it); ``from_path`` and ``from_conn_string`` open one that the
    saver owns. ``user_id``, ``tags`` and ``metadata`` describe the sessions it creates. ``serde`` is
    LangGraph's serializer (``JsonPlusSerializer`` by default). The messages tasks write to
    ``messages_channel`` are also added to the session's conversation, each message id once (None: none are).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        serde: SerializerProtocol | None = None,
        user_id: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        messages_channel: str | None = "messages",
    ) -> None:
        if not isinstance(ledger, Ledger):
            raise InvalidInput(f"ledger must be a Ledger (or use LedgerSaver.from_path); got {ledger!r}", field="ledger")
        super().__init__(serde=serde)
        self.ledger = ledger
        self._owns_ledger = False
        self._user_id = user_id
        self._tags = tuple(tags)
        self._session_metadata: dict[str, Any] = {**(metadata or {}), "integration": INTEGRATION}
        self.messages_channel = messages_channel
        self._values = Values(ledger, self.serde)
        self._known: set[str] = set()
        self._versions: dict[tuple[str, str], tuple[str, Mapping[str, object]]] = {}

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        serde: SerializerProtocol | None = None,
        user_id: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        messages_channel: str | None = "messages",
        **ledger_options: Any,
    ) -> LedgerSaver:
        """A saver on the ledger at ``path`` (a file, ``:memory:`` or a ``postgresql://`` URL), opened with
        ``ledger_options`` (``Ledger``'s keywords) and closed by ``close()`` (or at the end of a ``with`` block)."""
        ledger = Ledger(path, **ledger_options)
        saver = cls(ledger, serde=serde, user_id=user_id, tags=tags, metadata=metadata,
                    messages_channel=messages_channel)
        saver._owns_ledger = True
        return saver

    @classmethod
    @contextlib.contextmanager
    def from_conn_string(cls, conn_string: str | os.PathLike[str], **options: Any) -> Iterator[LedgerSaver]:
        """As ``SqliteSaver.from_conn_string``: a context manager giving a saver on the ledger at
        ``conn_string`` (a path or a ``postgresql://`` URL), closed when the block ends."""
        saver = cls.from_path(conn_string, **options)
        try:
            yield saver
        finally:
            saver.close()

    def close(self) -> None:
        """Close the ledger if this saver opened it (a shared ``Ledger`` stays open)."""
        if self._owns_ledger:
            self.ledger.close()

    def __enter__(self) -> LedgerSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LedgerSaver({self.ledger!r})"

    # -- threads and sessions -----------------------------------------------------------

    @staticmethod
    def session_id(thread_id: object) -> str:
        """The ledger session that holds a thread."""
        return session_for(str(thread_id))

    def thread_id(self, session_id: str) -> str | None:
        """The thread a session of this checkpointer holds (None for another session)."""
        if session_id.startswith("lg:"):
            return session_id[3:]
        try:
            found = self.ledger.get_metadata(session_id, "thread_id")
        except SessionNotFound:
            return None
        return found if isinstance(found, str) else None

    def purge_thread(self, thread_id: str, *, reason: str, by: str | None = None) -> None:
        """Erase the thread: ``Ledger.purge_session`` on its session (payloads gone from the log, the read
        tables and the snapshots; a ``purged`` event says why and who). The thread id takes no new checkpoint."""
        sid = self.session_id(thread_id)
        try:
            self.ledger.purge_session(sid, reason=reason, by=by)
        except SessionNotFound:
            return
        self._forget(sid)

    def _forget(self, session_id: str) -> None:
        self._known.discard(session_id)
        self._values.forget(session_id)
        self._versions = {k: v for k, v in self._versions.items() if k[0] != session_id}

    def _ensure(self, session_id: str, thread_id: str) -> None:
        """Inside a batch: create the thread's session if it does not exist yet."""
        if session_id in self._known:
            return
        try:
            self.ledger.get_session(session_id)
        except SessionNotFound:
            self.ledger.create_session(session_id, user_id=self._user_id, tags=self._tags,
                                       metadata={**self._session_metadata, "thread_id": thread_id})
        self._known.add(session_id)

    # -- reading ------------------------------------------------------------------------

    def _tuple(self, session_id: str, thread_id: str, record: Record, cut: int | None) -> CheckpointTuple:
        ns, checkpoint_id, parent = record.value["ns"], record.value["id"], record.value.get("parent")
        checkpoint, metadata = decode_checkpoint(record, self.serde)
        checkpoint["channel_values"] = self._values.read(session_id, ns, checkpoint.get("channel_versions", {}), cut)
        return CheckpointTuple(
            config=config_of(thread_id, ns, checkpoint_id),
            checkpoint=checkpoint,  # type: ignore[arg-type]  # the stored Checkpoint dict, whole again
            metadata=metadata,  # type: ignore[arg-type]  # the stored CheckpointMetadata dict
            parent_config=config_of(thread_id, ns, parent) if parent else None,
            pending_writes=self._writes(session_id, ns, checkpoint_id, cut),
        )

    def _writes(self, session_id: str, ns: str, checkpoint_id: str, cut: int | None) -> list[PendingWrite]:
        records = self.ledger.records(session_id, WRITES, prefix=writes_prefix(ns, checkpoint_id), position=cut)
        return pending_writes(records, self.serde)

    def _find(self, session_id: str, ns: str, checkpoint_id: str | None, cut: int | None) -> Record | None:
        if checkpoint_id is not None:
            return self.ledger.record(session_id, CHECKPOINT, checkpoint_key(ns, checkpoint_id), position=cut)
        latest = self.ledger.records(session_id, CHECKPOINT, prefix=f"{part(ns)}/", descending=True, limit=1,
                                     position=cut)
        return latest[0] if latest else None

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``), or the thread's latest in its namespace,
        with its channel values, metadata, parent and pending writes; None when there is none."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        sid = self.session_id(thread_id)
        cut = self.ledger.last_position  # every read below sees the ledger as it is now
        try:
            record = self._find(sid, configurable.get("checkpoint_ns", ""), get_checkpoint_id(config), cut)
            return None if record is None else self._tuple(sid, thread_id, record, cut)
        except SessionNotFound:
            return None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """The checkpoints of a thread (of one namespace when ``config`` names one; of every thread when
        ``config`` is None), newest first, whose metadata has every ``filter`` item, older than ``before``'s
        checkpoint, at most ``limit`` of them."""
        cut = self.ledger.last_position
        before_id = get_checkpoint_id(before) if before else None
        left = limit
        for sid, thread_id, record in self._listed(config, before_id, cut):
            if before_id is not None and record.value["id"] >= before_id:
                continue
            if filter and any(checkpoint_metadata(record, self.serde).get(k) != v for k, v in filter.items()):
                continue
            if left is not None:
                if left <= 0:
                    return
                left -= 1
            yield self._tuple(sid, thread_id, record, cut)

    def _listed(self, config: RunnableConfig | None, before_id: str | None, cut: int) -> Iterator[tuple[str, str, Record]]:
        """(session, thread, checkpoint record) in the order ``list`` gives them, read a page at a time."""
        if config is None:
            for record in self.ledger.records(None, CHECKPOINT, descending=True, position=cut):
                thread_id = self.thread_id(record.session_id)
                if thread_id is not None:
                    yield record.session_id, thread_id, record
            return
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        sid = self.session_id(thread_id)
        ns = configurable.get("checkpoint_ns")
        checkpoint_id = get_checkpoint_id(config)
        try:
            if checkpoint_id is not None:
                found = self._find(sid, ns or "", checkpoint_id, cut) if ns is not None else next(
                    (r for r in self.ledger.records(sid, CHECKPOINT, descending=True, position=cut)
                     if r.value["id"] == checkpoint_id), None)
                if found is not None:
                    yield sid, thread_id, found
                return
            prefix = None if ns is None else f"{part(ns)}/"
            bound = None if ns is None or before_id is None else checkpoint_key(ns, before_id)
            while True:
                page = self.ledger.records(sid, CHECKPOINT, prefix=prefix, before=bound, descending=True, limit=_PAGE,
                                           position=cut)
                for record in page:
                    yield sid, thread_id, record
                if len(page) < _PAGE:
                    return
                bound = page[-1].key
        except SessionNotFound:
            return

    # -- writing ------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint: its new channel values (once per version, growing lists as their new items),
        then the checkpoint with its metadata and parent, in one transaction."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        parent = configurable.get("checkpoint_id")
        sid = self.session_id(thread_id)
        stored = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        meta = get_checkpoint_metadata(config, metadata)
        serialized = self._values.serialize(new_versions, checkpoint.get("channel_values", {}))
        value: dict[str, Any] = {"ns": ns, "id": checkpoint["id"], "parent": parent}
        run_id = meta.get("run_id")
        group = None if run_id is None else run_group(run_id)
        with self.ledger.batch():
            self._ensure(sid, thread_id)
            if parent is not None and self.messages_channel is not None:
                mirror_writes(self.ledger, sid, ns, parent, self.serde, self.messages_channel)
            before = self._parent_versions(sid, ns, parent)
            tips = self._values.write(sid, ns, new_versions, serialized, before)
            key = checkpoint_key(ns, checkpoint["id"])
            try:
                self.ledger.set_record(sid, CHECKPOINT, key, {**value, "checkpoint": stored, "metadata": meta}, group=group)
            except InvalidInput as exc:
                if exc.field != "value" or type(exc) is not InvalidInput:
                    raise
                # Not JSON (an object the serializer knows): checkpoint and metadata go serialized instead.
                type_, blob = self.serde.dumps_typed({"checkpoint": stored, "metadata": meta})
                self.ledger.set_record(sid, CHECKPOINT, key, {**value, "type": type_}, blob=blob, group=group)
        self._values.remember(tips)  # committed: the next put may build on them
        self._versions[(sid, ns)] = (checkpoint["id"], dict(checkpoint.get("channel_versions", {})))
        return config_of(thread_id, ns, checkpoint["id"])

    def _parent_versions(self, session_id: str, ns: str, parent: str | None) -> Mapping[str, object]:
        """The channel versions of the parent checkpoint (remembered from the last put, or read)."""
        if parent is None:
            return {}
        known = self._versions.get((session_id, ns))
        if known is not None and known[0] == parent:
            return known[1]
        record = self.ledger.record(session_id, CHECKPOINT, checkpoint_key(ns, parent))
        if record is None:
            return {}
        versions: Mapping[str, object] = decode_checkpoint(record, self.serde)[0].get("channel_versions", {})
        return versions

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for a checkpoint (one record per task). A write already stored at
        its index is kept; the special ones (error, interrupt, ...) are replaced, as LangGraph's savers do."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable["checkpoint_id"]
        sid = self.session_id(thread_id)
        given = [(WRITES_IDX_MAP.get(channel, idx), channel, self.serde.dumps_typed(value))
                 for idx, (channel, value) in enumerate(writes)]
        key = f"{writes_prefix(ns, checkpoint_id)}{part(str(task_id))}"
        with self.ledger.batch():
            self._ensure(sid, thread_id)
            merged = merge_writes(self.ledger.record(sid, WRITES, key), given)
            if merged is None:
                return
            value = {"ns": ns, "checkpoint": checkpoint_id, "task": str(task_id), "path": task_path, "writes": merged[0]}
            self.ledger.set_record(sid, WRITES, key, value, blob=merged[1])

    # -- removing and copying -----------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Take every checkpoint, write and value of the thread out of view, and clear its conversation
        (``records_removed`` and ``conversation_cleared`` events: the log keeps them all, ``purge_thread``
        erases them). The thread id can be used again: it starts afresh in the same session."""
        sid = self.session_id(thread_id)
        try:
            with self.ledger.batch():
                self.ledger.remove_records(sid)
                self.ledger.clear_conversation(sid)
        except (SessionNotFound, SessionPurged):  # nothing there, or nothing left
            pass
        self._forget(sid)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of one thread to another (in one transaction)."""
        source, target = self.session_id(source_thread_id), self.session_id(str(target_thread_id))
        with self.ledger.batch():
            try:
                found = [r for kind in KINDS for r in self.ledger.records(source, kind)]
            except SessionNotFound:
                return
            if not found:
                return
            self._ensure(target, str(target_thread_id))
            for record in sorted(found, key=lambda r: r.position):  # log order: lineages read by position
                self.ledger.set_record(target, record.kind, record.key, record.value, blob=record.blob,
                                       group=record.group)
        self._forget(target)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keep each namespace's latest checkpoint (with its writes, and the ancestors its
        ``DeltaChannel`` values are rebuilt from); ``"delete"``: remove every checkpoint (``delete_thread``)."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput(f"strategy must be 'keep_latest' or 'delete'; got {strategy!r}", field="strategy")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            sid = self.session_id(thread_id)
            with self.ledger.batch():
                try:
                    checkpoints = self.ledger.records(sid, CHECKPOINT)
                except SessionNotFound:
                    continue
                latest: dict[str, Record] = {}
                for record in checkpoints:
                    ns = record.value["ns"]
                    if ns not in latest or record.value["id"] > latest[ns].value["id"]:
                        latest[ns] = record
                keep = {r.key for r in latest.values()}
                for record in latest.values():
                    keep |= delta_ancestors(record, {r.key: r for r in checkpoints}, self.serde, self._values.has_value)
                self._remove(sid, [r for r in checkpoints if r.key not in keep])

    def _remove(self, session_id: str, checkpoints: Sequence[Record]) -> None:
        """Inside a batch: remove these checkpoint records and their writes."""
        if not checkpoints:
            return
        gone = {(r.value["ns"], r.value["id"]) for r in checkpoints}
        writes = [r.key for r in self.ledger.records(session_id, WRITES)
                  if (r.value["ns"], r.value["checkpoint"]) in gone]
        self.ledger.remove_records(session_id, CHECKPOINT, [r.key for r in checkpoints])
        if writes:
            self.ledger.remove_records(session_id, WRITES, writes)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Remove the checkpoints (and their writes) that these runs made, in every thread."""
        by_session: dict[str, list[Record]] = {}
        for run_id in run_ids:
            for record in self.ledger.records(None, CHECKPOINT, group=run_group(run_id)):
                by_session.setdefault(record.session_id, []).append(record)
        for sid, checkpoints in by_session.items():
            with self.ledger.batch():
                standing = {r.key for r in self.ledger.records(sid, CHECKPOINT, keys=[r.key for r in checkpoints])}
                self._remove(sid, [r for r in checkpoints if r.key in standing])

    # -- DeltaChannel history -------------------------------------------------------------

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """For each channel, the writes of the checkpoint's ancestors (oldest first) back to the nearest one
        holding a stored value for it (its ``seed``), walking the parent chain a page of checkpoints at a time."""
        if not channels:
            return {}
        configurable = config["configurable"]
        sid = self.session_id(str(configurable["thread_id"]))
        ns = configurable.get("checkpoint_ns", "")
        cut = self.ledger.last_position
        collected: dict[str, list[PendingWrite]] = {ch: [] for ch in channels}
        seeds: dict[str, Any] = {}
        remaining = set(channels)
        try:
            target = self._find(sid, ns, get_checkpoint_id(config), cut)
            pages = ancestor_pages(self.ledger, sid, ns, target, cut) if target is not None else iter(())
            for page in pages:
                versions = [(a, decode_checkpoint(a, self.serde)[0].get("channel_versions", {})) for a in page]
                keys = {value_key(ns, ch, vs[ch]) for _, vs in versions for ch in remaining if ch in vs}
                stored = {r.key for r in self.ledger.records(sid, VALUE, keys=sorted(keys), position=cut)
                          if not (isinstance(r.value, dict) and r.value.get("empty"))}
                writes = page_writes(self.ledger, sid, ns, [a.value["id"] for a, _ in versions], cut, self.serde)
                for ancestor, vs in versions:
                    here = {ch: vs[ch] for ch in remaining if ch in vs and value_key(ns, ch, vs[ch]) in stored}
                    for write in reversed(writes.get(ancestor.value["id"], [])):
                        if write[1] in remaining:
                            collected[write[1]].append(write)
                    if here:
                        seeds.update(self._values.read(sid, ns, here, cut))
                        remaining -= set(here)
                    if not remaining:
                        break
                if not remaining:
                    break
        except SessionNotFound:
            pass
        out: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            entry: DeltaChannelHistory = {"writes": list(reversed(collected[ch]))}
            if ch in seeds:
                entry["seed"] = seeds[ch]
            out[ch] = entry
        return out

    # -- versions -------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A version after ``current``: a counter and a random fraction, as ``InMemorySaver`` makes them, so
        a branch taken from an older checkpoint never reuses a version of another branch."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- async: the same, in a worker thread ----------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """``get_tuple`` in a worker thread."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """``list`` in a worker thread, one checkpoint at a time (a long history is never held whole)."""
        listing = self.list(config, filter=filter, before=before, limit=limit)
        while True:
            item = await asyncio.to_thread(next, listing, None)
            if item is None:
                return
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """``put`` in a worker thread."""
        return await run_to_completion(lambda: self.put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """``put_writes`` in a worker thread."""
        await run_to_completion(lambda: self.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """``delete_thread`` in a worker thread."""
        await run_to_completion(lambda: self.delete_thread(thread_id))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """``copy_thread`` in a worker thread."""
        await run_to_completion(lambda: self.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``prune`` in a worker thread."""
        await run_to_completion(lambda: self.prune(thread_ids, strategy=strategy))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """``delete_for_runs`` in a worker thread."""
        await run_to_completion(lambda: self.delete_for_runs(run_ids))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """``get_delta_channel_history`` in a worker thread."""
        return await asyncio.to_thread(lambda: self.get_delta_channel_history(config=config, channels=channels))
