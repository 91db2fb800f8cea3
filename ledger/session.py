"""Session state and the pure fold that builds it from events.

``apply(state, event)`` returns a new ``Session`` and never mutates its
input: containers that an event does not touch are shared between states,
and those it touches are copied. The conversation itself is not part of the
state (it would make every load and snapshot grow with history); the state
keeps its counters, and ``Ledger.messages`` reads the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

import msgspec

from . import events as ev
from .blocks import message_text
from .errors import IntegrityError
from .events import ACTIVE, PURGED
from .lineage import segments
from .times import format_time


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A session as it stood right after its latest event (``version``) at global ``position``."""

    session_id: str
    version: int
    position: int
    status: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    completion_reason: str | None = None
    user_id: str | None = None
    purpose: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    message_count: int = 0
    messages_by_role: dict[str, int] = msgspec.field(default_factory=dict)
    invocation_count: int = 0
    total_duration_ms: float = 0.0
    tools_used: tuple[str, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    # Parts of tokens_in and tokens_out (the OpenTelemetry GenAI figures; see ``ledger.tokens``).
    tokens_cache_read: int = 0
    tokens_cache_creation: int = 0
    tokens_reasoning: int = 0
    estimated_cost: float = 0.0
    parent_id: str | None = None
    parent_version: int | None = None
    # Where the effective conversation comes from: closed (session, first, last) version ranges
    # left by forks and restores, then this session's own versions from ``run_start`` on.
    lineage: tuple[tuple[str, int, int], ...] = ()
    run_start: int = 1
    # Message versions taken out of the conversation (retracted, or cleared), as (session, first, last).
    hidden: tuple[tuple[str, int, int], ...] = ()

    @property
    def is_open(self) -> bool:
        """True while the session is active (its conversation and data still writable)."""
        return self.status == ACTIVE


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a conversation, as ``Ledger.messages`` returns it."""

    role: str
    content: str
    tool_name: str | None = None
    invocation_id: str | None = None
    model: str | None = None
    tokens: dict[str, int] | None = None
    recorded_at: datetime
    version: int
    position: int
    #: The content blocks of a block message, exactly as given (None for a string message, whose ``content``
    #: is the text; for a block message ``content`` is the text of its text parts).
    blocks: list[dict[str, Any]] | None = None


TOKEN_KEYS = ("input", "output", "cache_read", "cache_creation", "reasoning")


def tokens_dict(*counts: int | None) -> dict[str, int] | None:
    """Token counts (input, output, cache_read, cache_creation, reasoning; trailing ones may be left out) in
    the shape ``Message.tokens`` has: ``{"input": ..., "output": ...}`` with the figures given, or None."""
    given = {k: v for k, v in zip(TOKEN_KEYS, counts) if v is not None}
    return given or None


def message_from(event: ev.RecordedEvent) -> Message:
    """The ``Message`` a ``message_added`` event records."""
    p = cast(ev.MessageAdded, event.payload)
    return Message(
        role=p.role,
        content=message_text(p.content, p.blocks),
        tool_name=p.tool_name,
        invocation_id=p.invocation_id,
        model=p.model,
        tokens=tokens_dict(p.tokens_in, p.tokens_out, p.tokens_cache_read, p.tokens_cache_creation, p.tokens_reasoning),
        recorded_at=event.recorded_at,
        version=event.version,
        position=event.position,
        blocks=p.blocks,
    )


def _created(state: Session | None, e: ev.RecordedEvent, p: ev.Created) -> Session:
    if state is not None:
        raise IntegrityError(f"session {e.session_id!r} is created twice (version {e.version})", session_id=e.session_id)
    return Session(
        session_id=e.session_id,
        version=e.version,
        position=e.position,
        status=ACTIVE,
        created_at=e.recorded_at,
        updated_at=e.recorded_at,
        user_id=p.user_id,
        purpose=p.purpose,
        tags=p.tags,
        metadata=dict(p.metadata),
    )


# Fields a restore or fork carries over from the state it copies.
_IDENTITY = ("session_id", "version", "position", "updated_at", "lineage", "run_start")


def image(state: Session) -> dict[str, Any]:
    """A state as the JSON-compatible dict that ``restored`` and ``forked`` events carry."""
    out: dict[str, Any] = msgspec.to_builtins(state)
    for name in _IDENTITY:
        out.pop(name)
    out["lineage"] = [list(seg) for seg in segments(state)]
    out["hidden"] = [list(seg) for seg in state.hidden]
    return out


def _from_image(e: ev.RecordedEvent, state: dict[str, Any], run_start: int, **changes: Any) -> Session:
    fields = {k: v for k, v in state.items() if k != "lineage"}
    return msgspec.convert(
        {
            **fields,
            **changes,
            "session_id": e.session_id,
            "version": e.version,
            "position": e.position,
            "updated_at": format_time(e.recorded_at),
            "lineage": state.get("lineage", []),
            "run_start": run_start,
        },
        Session,
    )


def _forked(state: Session | None, e: ev.RecordedEvent, p: ev.Forked) -> Session:
    if state is not None:
        raise IntegrityError(f"session {e.session_id!r} is created twice (version {e.version})", session_id=e.session_id)
    # A fork is a new path: it starts active even from a session that had ended.
    return _from_image(e, p.state, 2, parent_id=p.parent_id, parent_version=p.parent_version,
                       created_at=format_time(e.recorded_at), status=ACTIVE, completed_at=None,
                       completion_reason=None)


def _message_added(s: Session, p: ev.MessageAdded) -> dict[str, Any]:
    by_role = dict(s.messages_by_role)
    by_role[p.role] = by_role.get(p.role, 0) + 1
    return {
        "message_count": s.message_count + 1,
        "messages_by_role": by_role,
        **_token_totals(s, p),
    }


def _token_totals(s: Session, p: ev.MessageAdded | ev.InvocationLinked) -> dict[str, int]:
    return {
        "tokens_in": s.tokens_in + (p.tokens_in or 0),
        "tokens_out": s.tokens_out + (p.tokens_out or 0),
        "tokens_cache_read": s.tokens_cache_read + (p.tokens_cache_read or 0),
        "tokens_cache_creation": s.tokens_cache_creation + (p.tokens_cache_creation or 0),
        "tokens_reasoning": s.tokens_reasoning + (p.tokens_reasoning or 0),
    }


def _metadata_set(s: Session, p: ev.MetadataSet) -> dict[str, Any]:
    return {"metadata": {**s.metadata, **p.values}}


def _metadata_removed(s: Session, p: ev.MetadataRemoved) -> dict[str, Any]:
    return {"metadata": {k: v for k, v in s.metadata.items() if k != p.key}}


def _data_set(s: Session, p: ev.DataSet) -> dict[str, Any]:
    return {"data": {**s.data, p.key: p.value}}


def _data_deleted(s: Session, p: ev.DataDeleted) -> dict[str, Any]:
    return {"data": {k: v for k, v in s.data.items() if k != p.key}}


def _data_cleared(s: Session, p: ev.DataCleared) -> dict[str, Any]:
    return {"data": {}}


def _tags_added(s: Session, p: ev.TagsAdded) -> dict[str, Any]:
    return {"tags": tuple(dict.fromkeys(s.tags + p.tags))}


def _tags_removed(s: Session, p: ev.TagsRemoved) -> dict[str, Any]:
    gone = set(p.tags)
    return {"tags": tuple(t for t in s.tags if t not in gone)}


def _invocation_linked(s: Session, p: ev.InvocationLinked) -> dict[str, Any]:
    tools = s.tools_used if p.tool_name in s.tools_used else (*s.tools_used, p.tool_name)
    return {
        "invocation_count": s.invocation_count + 1,
        "total_duration_ms": s.total_duration_ms + (p.duration_ms or 0.0),
        "tools_used": tools,
        **_token_totals(s, p),
        "estimated_cost": s.estimated_cost + (p.cost or 0.0),
    }


def _message_retracted(s: Session, p: ev.MessageRetracted) -> dict[str, Any]:
    by_role = dict(s.messages_by_role)
    by_role[p.role] = by_role.get(p.role, 0) - 1
    if by_role[p.role] <= 0:
        del by_role[p.role]
    if p.message_session == s.session_id and p.message_version >= s.run_start:
        # A message of its current run: the read table marks the row with the version that retracted it,
        # and a view of this run from then on leaves it out, so the state carries nothing that grows.
        return {"message_count": s.message_count - 1, "messages_by_role": by_role}
    # One inherited from a fork's parent, or from before a restore: hidden for this session's view only.
    hidden = (*s.hidden, (p.message_session, p.message_version, p.message_version))
    return {"message_count": s.message_count - 1, "messages_by_role": by_role, "hidden": hidden}


def _conversation_cleared(s: Session, p: ev.ConversationCleared) -> dict[str, Any]:
    return {"message_count": 0, "messages_by_role": {}, "hidden": segments(s)}


def _record(s: Session, p: ev.RecordSet | ev.RecordsRemoved) -> dict[str, Any]:
    # Records are an integration's, kept in their own read table: the state only counts them in its version.
    return {}


def _completed(s: Session, p: ev.Completed) -> dict[str, Any]:
    return {"status": p.status, "completion_reason": p.reason}


_HANDLERS: dict[str, Callable[[Session, Any], dict[str, Any]]] = {
    "message_added": _message_added,
    "metadata_set": _metadata_set,
    "metadata_removed": _metadata_removed,
    "data_set": _data_set,
    "data_deleted": _data_deleted,
    "data_cleared": _data_cleared,
    "tags_added": _tags_added,
    "tags_removed": _tags_removed,
    "invocation_linked": _invocation_linked,
    "completed": _completed,
    "message_retracted": _message_retracted,
    "conversation_cleared": _conversation_cleared,
    "record_set": _record,
    "records_removed": _record,
}


def apply(state: Session | None, event: ev.RecordedEvent) -> Session:
    """Fold one event into a session state; pure and deterministic.

    Raises ``IntegrityError`` when the event cannot follow the state (a
    session created twice, an event before creation, a version out of order).
    """
    payload: Any = event.payload  # the handlers take it as the type its tag names
    if isinstance(payload, ev.Redacted):
        return _opaque(state, event)
    if event.type == "created":
        return _created(state, event, payload)
    if event.type == "forked":
        return _forked(state, event, payload)
    if state is None:
        raise IntegrityError(
            f"session {event.session_id!r} has a {event.type!r} event before it was created",
            session_id=event.session_id,
        )
    if event.version != state.version + 1:
        raise IntegrityError(
            f"session {event.session_id!r}: version {event.version} cannot follow {state.version}",
            session_id=event.session_id,
            expected=state.version + 1,
            actual=event.version,
        )
    if event.type == "purged":
        return Session(
            session_id=state.session_id,
            version=event.version,
            position=event.position,
            status=PURGED,
            created_at=state.created_at,
            updated_at=event.recorded_at,
            completed_at=event.recorded_at,
            completion_reason=payload.reason,
        )
    if event.type == "restored":
        p: ev.Restored = payload
        return _from_image(event, p.state, event.version + 1, parent_id=state.parent_id,
                           parent_version=state.parent_version, created_at=format_time(state.created_at))
    changes = _HANDLERS[event.type](state, payload)
    if event.type == "completed":
        changes["completed_at"] = event.recorded_at
    return msgspec.structs.replace(
        state, version=event.version, position=event.position, updated_at=event.recorded_at, **changes
    )


def _opaque(state: Session | None, e: ev.RecordedEvent) -> Session:
    # A redacted row: its content is gone, only its place and time remain. Its marker says a purge
    # follows, so the session reads as purged even in a copy cut before that event.
    if state is None:
        return Session(session_id=e.session_id, version=e.version, position=e.position, status=PURGED,
                       created_at=e.recorded_at, updated_at=e.recorded_at)
    if e.version != state.version + 1:
        raise IntegrityError(f"session {e.session_id!r}: version {e.version} cannot follow {state.version}",
                             session_id=e.session_id)
    return msgspec.structs.replace(state, version=e.version, position=e.position, updated_at=e.recorded_at)


def fold(events: Iterable[ev.RecordedEvent], state: Session | None = None) -> Session | None:
    """Fold events, in order, onto ``state`` (None: from nothing)."""
    for event in events:
        state = apply(state, event)
    return state
