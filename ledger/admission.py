"""What an event must satisfy to join its session, stated on the event itself: the rules the commands
apply to their arguments and to the session's state, for events that arrive without a command (an import).

``admit(state, event, limits)`` raises the ``LedgerError`` a command would have raised for the same change
(``InvalidInput``, ``LimitExceeded``, ``SessionNotFound``, ``SessionExists``, ``SessionClosed``,
``SessionPurged``), and returns the state after the event, folded: an event that does not fold is refused too.
A law test holds that every event the commands write is admitted.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import events as ev
from .blocks import check_blocks
from .errors import InvalidInput, LimitExceeded, SessionClosed, SessionExists, SessionNotFound, SessionPurged
from .events import RecordedEvent
from .session import Session, apply
from .tokens import NO_TOKENS, TokenCounts, normalize_tokens
from .validation import (
    Limits,
    check_amount,
    check_choice,
    check_json,
    check_key,
    check_record,
    check_removal,
    check_tags,
    check_text,
    check_totals,
)

# Events that only an open session takes (the others: metadata and tags also after completion, as the commands
# allow; nothing after a purge).
_NEEDS_OPEN = frozenset({
    "message_added", "invocation_linked", "data_set", "data_deleted", "data_cleared", "completed", "restored",
    "message_retracted", "conversation_cleared", "record_set", "records_removed",
})
_STATE_BYTES = 64 * 1_048_576  # a restored or forked state: bounded by what its session could hold


def admit(state: Session | None, recorded: RecordedEvent, limits: Limits) -> Session:
    """The session's state after ``recorded``, or the error its command would have raised."""
    sid, kind, payload = recorded.session_id, recorded.type, recorded.payload
    if isinstance(payload, ev.Redacted):  # a purged session's row: only its place is left; verify binds it
        return _fold(state, recorded)
    if kind in ("created", "forked"):
        if state is not None:
            raise SessionExists(f"session {sid!r} already exists: a {kind!r} event cannot start it again", session_id=sid)
    else:
        if state is None:
            raise SessionNotFound(f"session {sid!r} has no created or forked event before its {kind!r}", session_id=sid)
        if state.status == ev.PURGED and kind != ev.PURGED:  # redacted rows read as purged until their purge comes
            raise SessionPurged(f"session {sid!r} was purged: it takes no {kind!r} event", session_id=sid)
        if kind in _NEEDS_OPEN and not state.is_open:
            raise SessionClosed(f"session {sid!r} is {state.status}: it takes no {kind!r} event", session_id=sid)
    _CHECKS[kind](state, payload, limits, sid)
    return _fold(state, recorded)


def _fold(state: Session | None, recorded: RecordedEvent) -> Session:
    try:
        return apply(state, recorded)
    except (KeyError, TypeError, ValueError, AttributeError, msgspec.ValidationError) as exc:
        raise InvalidInput(
            f"session {recorded.session_id!r}: its {recorded.type!r} event at version {recorded.version} does not"
            f" fold into a state ({type(exc).__name__}: {exc})",
            session_id=recorded.session_id,
            field="data",
        ) from exc


def _metadata(values: dict[str, Any], limits: Limits, sid: str, have: int) -> None:
    for key, value in values.items():
        check_key(key, "metadata", limits, sid)
        check_json(value, f"metadata[{key!r}]", limits.max_metadata_value_bytes, limits, sid)
    if have > limits.max_metadata_keys:
        raise LimitExceeded(
            f"session {sid!r}: would have {have} metadata keys; the limit is {limits.max_metadata_keys}",
            session_id=sid, field="metadata", limit=limits.max_metadata_keys, actual=have,
        )


def _tags(tags: Any, limits: Limits, sid: str, have: int) -> None:
    if len(check_tags(tags, limits, sid)) != len(tags):
        raise InvalidInput(f"session {sid!r}: tags repeat", session_id=sid, field="tags")
    if have > limits.max_tags:
        raise LimitExceeded(
            f"session {sid!r}: would have {have} tags; the limit is {limits.max_tags}",
            session_id=sid, field="tags", limit=limits.max_tags, actual=have,
        )


def _created(state: Session | None, p: ev.Created, limits: Limits, sid: str) -> None:
    check_text(p.user_id, "user_id", limits.max_name_bytes, sid)
    check_text(p.purpose, "purpose", limits.max_text_bytes, sid)
    _tags(p.tags, limits, sid, len(p.tags))
    _metadata(p.metadata, limits, sid, len(p.metadata))


def _carried(state: Session | None, p: ev.Forked | ev.Restored, limits: Limits, sid: str) -> None:
    # The state a fork or restore carries: JSON the ledger can hold (no huge integers, no endless nesting).
    check_json(p.state, "state", _STATE_BYTES, Limits(max_depth=limits.max_depth + 8), sid)
    if isinstance(p, ev.Forked):
        check_text(p.parent_id, "parent_id", limits.max_name_bytes, sid, optional=False)
    for name in ("tags", "metadata", "data"):
        if name not in p.state:
            raise InvalidInput(f"session {sid!r}: the carried state has no {name!r}", session_id=sid, field="state")
    _tags(p.state["tags"], limits, sid, len(p.state["tags"]))
    if not isinstance(p.state["metadata"], dict) or not isinstance(p.state["data"], dict):
        raise InvalidInput(f"session {sid!r}: the carried metadata and data must be objects", session_id=sid,
                           field="state")
    _metadata(p.state["metadata"], limits, sid, len(p.state["metadata"]))


def _message(state: Session | None, p: ev.MessageAdded, limits: Limits, sid: str) -> None:
    check_choice(p.role, "role", ev.ROLES, sid)
    check_text(p.content, "content", limits.max_content_bytes, sid, optional=False, allow_nul=True)
    if p.blocks is not None:
        if p.content:
            raise InvalidInput(f"session {sid!r}: a block message keeps its text in its blocks, not in content",
                               session_id=sid, field="content")
        check_blocks(p.blocks, limits, sid)
    for name in ("tool_name", "invocation_id", "model"):
        check_text(getattr(p, name), name, limits.max_name_bytes, sid)
    counts = _tokens(p, sid)
    check_totals(state, counts.input, counts.output, None, None)


def _tokens(p: ev.MessageAdded | ev.InvocationLinked, sid: str) -> TokenCounts:
    # The figures as a command would have normalised them: each a count, the parts within their totals.
    return normalize_tokens({"input": p.tokens_in, "output": p.tokens_out, "cache_read": p.tokens_cache_read,
                             "cache_creation": p.tokens_cache_creation, "reasoning": p.tokens_reasoning}, sid) or NO_TOKENS


def _invocation(state: Session | None, p: ev.InvocationLinked, limits: Limits, sid: str) -> None:
    for name in ("invocation_id", "tool_name", "status"):
        check_text(getattr(p, name), name, limits.max_name_bytes, sid, optional=False, allow_empty=False)
    check_text(p.artifact, "artifact", limits.max_text_bytes, sid)
    counts = _tokens(p, sid)
    duration = check_amount(p.duration_ms, "duration_ms", sid)
    cost = check_amount(p.cost, "cost", sid)
    check_totals(state, counts.input, counts.output, duration, cost)


def _metadata_set(state: Session | None, p: ev.MetadataSet, limits: Limits, sid: str) -> None:
    assert state is not None
    check_text(p.modified_by, "modified_by", limits.max_name_bytes, sid)
    _metadata(p.values, limits, sid, len({**state.metadata, **p.values}))


def _metadata_removed(state: Session | None, p: ev.MetadataRemoved, limits: Limits, sid: str) -> None:
    check_key(p.key, "key", limits, sid)
    check_text(p.modified_by, "modified_by", limits.max_name_bytes, sid)


def _data_set(state: Session | None, p: ev.DataSet, limits: Limits, sid: str) -> None:
    check_key(p.key, "key", limits, sid)
    check_json(p.value, f"data[{p.key!r}]", limits.max_data_value_bytes, limits, sid)


def _data_deleted(state: Session | None, p: ev.DataDeleted, limits: Limits, sid: str) -> None:
    check_key(p.key, "key", limits, sid)


def _tags_changed(state: Session | None, p: ev.TagsAdded | ev.TagsRemoved, limits: Limits, sid: str) -> None:
    assert state is not None
    added = isinstance(p, ev.TagsAdded)
    _tags(p.tags, limits, sid, len({*state.tags, *p.tags}) if added else 0)


def _completed(state: Session | None, p: ev.Completed, limits: Limits, sid: str) -> None:
    check_choice(p.status, "status", ev.CLOSED_STATUSES, sid)
    check_text(p.reason, "reason", limits.max_text_bytes, sid)


def _retracted(state: Session | None, p: ev.MessageRetracted, limits: Limits, sid: str) -> None:
    assert state is not None
    check_choice(p.role, "role", ev.ROLES, sid)
    if state.message_count < 1:
        raise InvalidInput(f"session {sid!r} has no message to retract", session_id=sid, field="version")


def _purged(state: Session | None, p: ev.Purged, limits: Limits, sid: str) -> None:
    check_text(p.reason, "reason", limits.max_text_bytes, sid, optional=False, allow_empty=False)
    check_text(p.by, "by", limits.max_name_bytes, sid)


def _nothing(state: Session | None, p: Any, limits: Limits, sid: str) -> None:
    pass


def _record_set(state: Session | None, p: ev.RecordSet, limits: Limits, sid: str) -> None:
    check_record(p.kind, p.key, p.value, p.blob, p.group, limits, sid)


def _records_removed(state: Session | None, p: ev.RecordsRemoved, limits: Limits, sid: str) -> None:
    check_removal(p.kind, p.keys, limits, sid)


_CHECKS: dict[str, Any] = {
    "created": _created,
    "forked": _carried,
    "restored": _carried,
    "message_added": _message,
    "invocation_linked": _invocation,
    "metadata_set": _metadata_set,
    "metadata_removed": _metadata_removed,
    "data_set": _data_set,
    "data_deleted": _data_deleted,
    "data_cleared": _nothing,
    "tags_added": _tags_changed,
    "tags_removed": _tags_changed,
    "completed": _completed,
    "message_retracted": _retracted,
    "conversation_cleared": _nothing,
    "purged": _purged,
    "record_set": _record_set,
    "records_removed": _records_removed,
}
