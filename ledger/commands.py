"""The commands: validate the input, decide the event against the state, append it.

Each method validates everything it can before it takes the lock, then hands
``Engine.run`` a ``decide`` function that checks the session's current state
inside the transaction and returns the one event to append (or None when
nothing would change). Restore and fork are commands too: their events carry
the state they start from, so the fold stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from projections import queries

from . import events as ev
from .blocks import check_blocks
from .engine import Engine
from .errors import InvalidInput, LimitExceeded, SessionClosed, SessionPurged
from .lineage import Segment, segments
from .session import Session, image
from .snapshots import decode_state, encode_state
from .tokens import NO_TOKENS, normalize_tokens
from .validation import (
    Limits,
    MetadataSchema,
    check_amount,
    check_choice,
    check_id,
    check_json,
    check_key,
    check_tags,
    check_text,
    check_totals,
)


def check_not_purged(state: Session, what: str) -> None:
    """Refuse any change to a purged session."""
    if state.status == ev.PURGED:
        raise SessionPurged(f"session {state.session_id!r} was purged: cannot {what}", session_id=state.session_id)


def check_open(state: Session | None, what: str) -> Session:
    """Refuse a change that needs an active session (``SessionClosed``; ``SessionPurged`` after a purge)."""
    assert state is not None
    check_not_purged(state, what)
    if not state.is_open:
        raise SessionClosed(f"session {state.session_id!r} is {state.status}: cannot {what}", session_id=state.session_id)
    return state


def _copy(state: Session) -> Session:
    # A state the caller may keep: nothing in it is shared with the engine's cache.
    return decode_state(encode_state(state))


def _normalised(value: Any) -> Any:
    # Tuples become lists, as they will once stored, so the folded payload equals the decoded one.
    return msgspec.json.decode(msgspec.json.encode(value))


def _linked(engine: Engine, lineage: Sequence[Segment], invocation_id: str) -> tuple[Any, ...] | None:
    """The details of the invocation already linked under ``invocation_id`` in a lineage's history, or None:
    from the batch's events not yet projected, else from the invocations table."""
    connection, pending = engine.unprojected()
    for recorded in pending:
        linked = recorded.payload
        if isinstance(linked, ev.InvocationLinked) and linked.invocation_id == invocation_id and any(
            sid == recorded.session_id and first <= recorded.version <= last for sid, first, last in lineage
        ):
            return (linked.tool_name, linked.duration_ms, linked.tokens_in, linked.tokens_out, linked.cost,
                    linked.status, linked.artifact, linked.tokens_cache_read, linked.tokens_cache_creation,
                    linked.tokens_reasoning)
    return queries.linked_invocation(connection, lineage, invocation_id)


class Commands:
    """Every command that appends to a session, run through one engine."""

    def __init__(self, engine: Engine, limits: Limits, schema: MetadataSchema | None) -> None:
        self._engine = engine
        self._limits = limits
        self._schema = schema
        self._run = engine.run

    _open = staticmethod(check_open)

    # -- validation helpers -----------------------------------------------------

    def _metadata_values(self, values: object, session_id: str, *, create: bool) -> dict[str, Any]:
        if not isinstance(values, Mapping):
            raise InvalidInput(
                f"session {session_id!r}: metadata must be a mapping of keys to values, not {type(values).__name__}",
                session_id=session_id,
                field="metadata",
            )
        limits = self._limits
        for key in values:
            check_key(key, "metadata key", limits, session_id)
        if self._schema is not None:
            values = self._schema.with_defaults(values, session_id) if create else self._schema.validate(values, session_id)
        out = {
            key: check_json(value, f"metadata[{key!r}]", limits.max_metadata_value_bytes, limits, session_id)[0]
            for key, value in values.items()
        }
        if len(out) > limits.max_metadata_keys:
            self._too_many_keys(session_id, len(out))
        return out

    def _too_many_keys(self, session_id: str, count: int) -> None:
        limit = self._limits.max_metadata_keys
        raise LimitExceeded(
            f"session {session_id!r}: metadata would have {count} keys; the limit is {limit}",
            session_id=session_id,
            field="metadata",
            limit=limit,
            actual=count,
        )

    def _tag_list(self, tags: object, session_id: str) -> tuple[str, ...]:
        return check_tags(tags, self._limits, session_id)

    def _check_tag_count(self, session_id: str, count: int) -> None:
        if count > self._limits.max_tags:
            raise LimitExceeded(
                f"session {session_id!r}: would have {count} tags; the limit is {self._limits.max_tags}",
                session_id=session_id,
                field="tags",
                limit=self._limits.max_tags,
                actual=count,
            )

    # -- commands -------------------------------------------------------------------

    def create_session(
        self,
        session_id: str | None = None,
        *,
        user_id: str | None = None,
        purpose: str | None = None,
        tags: Any = (),
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> Session:
        """Create a session (a sortable unique id is generated when none is given) and return it.

        Raises ``SessionExists``, ``InvalidInput`` or ``LimitExceeded``.
        """
        generated = session_id is None
        sid = check_id(self._engine.new_id() if generated else session_id, "generated session_id" if generated else "session_id")
        limits = self._limits
        event = ev.Created(
            user_id=check_text(user_id, "user_id", limits.max_name_bytes, sid),
            purpose=check_text(purpose, "purpose", limits.max_text_bytes, sid),
            tags=self._tag_list(tags, sid),
            metadata=self._metadata_values({} if metadata is None else metadata, sid, create=True),
        )
        self._check_tag_count(sid, len(event.tags))
        if expected_version not in (None, 0):
            raise InvalidInput(
                f"session {sid!r}: a new session's expected_version can only be 0", session_id=sid, field="expected_version"
            )
        state, _ = self._run(
            sid, "created", lambda _: event, expected_version=None, event_id=event_id, create=True, generated_id=generated
        )
        assert state is not None
        return _copy(state)

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str | Sequence[Mapping[str, Any]],
        *,
        tool_name: str | None = None,
        invocation_id: str | None = None,
        model: str | None = None,
        tokens: object = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Append a message (role user, assistant, system, developer or tool); returns the new version.

        ``content`` is a string or a list of content blocks (``ledger.blocks``: text, images and files by
        reference, tool calls and results, reasoning). ``tokens`` is ``{"input": .., "output": ..}`` or a
        provider's usage as it comes (``ledger.tokens``). Raises ``SessionNotFound``, ``SessionClosed``,
        ``ConcurrencyError`` or ``InvalidInput``.
        """
        sid = check_id(session_id, "session_id")
        limits = self._limits
        counts = normalize_tokens(tokens, sid) or NO_TOKENS
        blocks = None if isinstance(content, str) else check_blocks(content, limits, sid)
        event = ev.MessageAdded(
            role=check_choice(role, "role", ev.ROLES, sid),
            content="" if blocks is not None else check_text(
                content, "content", limits.max_content_bytes, sid, optional=False, allow_nul=True
            ),
            tool_name=check_text(tool_name, "tool_name", limits.max_name_bytes, sid),
            invocation_id=check_text(invocation_id, "invocation_id", limits.max_name_bytes, sid),
            model=check_text(model, "model", limits.max_name_bytes, sid),
            tokens_in=counts.input,
            tokens_out=counts.output,
            blocks=blocks,
            tokens_cache_read=counts.cache_read,
            tokens_cache_creation=counts.cache_creation,
            tokens_reasoning=counts.reasoning,
        )

        def decide(state: Session | None) -> ev.Event:
            state = self._open(state, "add a message")
            check_totals(state, counts.input, counts.output, None, None)
            return event

        return self._run(sid, event.type, decide, expected_version=expected_version, event_id=event_id)[1]

    def link_invocation(
        self,
        session_id: str,
        invocation_id: str,
        tool_name: str,
        *,
        duration_ms: float | None = None,
        tokens: object = None,
        cost: float | None = None,
        status: str = "ok",
        artifact: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Link a tool invocation with its duration, tokens and cost; ``artifact`` is a path or URI to its records.

        Returns the new version. Raises ``SessionNotFound``, ``SessionClosed``,
        ``ConcurrencyError`` or ``InvalidInput``.
        """
        sid = check_id(session_id, "session_id")
        limits = self._limits
        counts = normalize_tokens(tokens, sid) or NO_TOKENS
        event = ev.InvocationLinked(
            invocation_id=check_text(invocation_id, "invocation_id", limits.max_name_bytes, sid, optional=False,
                                     allow_empty=False),
            tool_name=check_text(tool_name, "tool_name", limits.max_name_bytes, sid, optional=False, allow_empty=False),
            duration_ms=check_amount(duration_ms, "duration_ms", sid),
            tokens_in=counts.input,
            tokens_out=counts.output,
            cost=check_amount(cost, "cost", sid),
            status=check_text(status, "status", limits.max_name_bytes, sid, optional=False, allow_empty=False),
            artifact=check_text(artifact, "artifact", limits.max_text_bytes, sid),
            tokens_cache_read=counts.cache_read,
            tokens_cache_creation=counts.cache_creation,
            tokens_reasoning=counts.reasoning,
        )

        details = (event.tool_name, event.duration_ms, counts.input, counts.output, event.cost, event.status,
                   event.artifact, counts.cache_read, counts.cache_creation, counts.reasoning)

        def decide(state: Session | None) -> ev.Event | None:
            state = self._open(state, "link an invocation")
            linked = _linked(self._engine, segments(state), event.invocation_id)
            if linked is not None:
                if tuple(linked) == details:
                    return None  # the same invocation linked again: a retry, recorded once
                raise InvalidInput(
                    f"session {sid!r}: invocation {event.invocation_id!r} is already linked with other details"
                    f" (tool, duration, tokens, cost, status, artifact, cache and reasoning tokens {tuple(linked)!r});"
                    " give a new invocation_id",
                    session_id=sid,
                    field="invocation_id",
                )
            check_totals(state, counts.input, counts.output, event.duration_ms, event.cost)
            return event

        return self._run(sid, event.type, decide, expected_version=expected_version, event_id=event_id)[1]

    def set_metadata(
        self,
        session_id: str,
        key: str,
        value: Any,
        *,
        modified_by: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Set one metadata key (allowed on closed sessions: metadata annotates); returns the new version."""
        sid = check_id(session_id, "session_id")
        check_key(key, "metadata key", self._limits, sid)
        return self.update_metadata(
            sid, {key: value}, modified_by=modified_by, expected_version=expected_version, event_id=event_id
        )

    def update_metadata(
        self,
        session_id: str,
        values: Mapping[str, Any],
        *,
        modified_by: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Set several metadata keys in one event; returns the new version (unchanged for an empty mapping).

        Raises ``LimitExceeded`` past 100 keys, 256-byte keys or 4096-byte values.
        """
        sid = check_id(session_id, "session_id")
        clean = self._metadata_values(values, sid, create=False)
        by = check_text(modified_by, "modified_by", self._limits.max_name_bytes, sid)

        def decide(state: Session | None) -> ev.Event | None:
            assert state is not None
            check_not_purged(state, "set metadata")
            if not clean:
                return None
            count = len(state.metadata.keys() | clean.keys())
            if count > self._limits.max_metadata_keys:
                self._too_many_keys(sid, count)
            return ev.MetadataSet(values=clean, modified_by=by)

        noop = ev.MetadataSet(values={}, modified_by=by)
        return self._run(
            sid, "metadata_set", decide, expected_version=expected_version, event_id=event_id, noop=noop
        )[1]

    def remove_metadata(
        self,
        session_id: str,
        key: str,
        *,
        modified_by: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Remove a metadata key; removing an absent key writes nothing. Returns the version."""
        sid = check_id(session_id, "session_id")
        check_key(key, "metadata key", self._limits, sid)
        by = check_text(modified_by, "modified_by", self._limits.max_name_bytes, sid)

        event = ev.MetadataRemoved(key=key, modified_by=by)

        def decide(state: Session | None) -> ev.Event | None:
            assert state is not None
            check_not_purged(state, "remove metadata")
            return event if key in state.metadata else None

        return self._run(
            sid, event.type, decide, expected_version=expected_version, event_id=event_id, noop=event
        )[1]

    def set_data(
        self,
        session_id: str,
        key: str,
        value: Any,
        *,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Set a workflow data key to a JSON value (at most ``Limits.max_data_value_bytes`` encoded)."""
        sid = check_id(session_id, "session_id")
        limits = self._limits
        check_key(key, "data key", limits, sid)
        clean, _ = check_json(value, f"data[{key!r}]", limits.max_data_value_bytes, limits, sid)
        event = ev.DataSet(key=key, value=clean)

        def decide(state: Session | None) -> ev.Event:
            self._open(state, "set data")
            return event

        return self._run(sid, event.type, decide, expected_version=expected_version, event_id=event_id)[1]

    def delete_data(
        self, session_id: str, key: str, *, expected_version: int | None = None, event_id: str | None = None
    ) -> int:
        """Delete a workflow data key; deleting an absent key writes nothing. Returns the version."""
        sid = check_id(session_id, "session_id")
        check_key(key, "data key", self._limits, sid)

        event = ev.DataDeleted(key=key)

        def decide(state: Session | None) -> ev.Event | None:
            state = self._open(state, "delete data")
            return event if key in state.data else None

        return self._run(
            sid, event.type, decide, expected_version=expected_version, event_id=event_id, noop=event
        )[1]

    def clear_data(self, session_id: str, *, expected_version: int | None = None, event_id: str | None = None) -> int:
        """Clear all workflow data (the conversation stays); clearing empty data writes nothing."""
        sid = check_id(session_id, "session_id")

        event = ev.DataCleared()

        def decide(state: Session | None) -> ev.Event | None:
            state = self._open(state, "clear data")
            return event if state.data else None

        return self._run(
            sid, event.type, decide, expected_version=expected_version, event_id=event_id, noop=event
        )[1]

    def add_tags(
        self, session_id: str, tags: Any, *, expected_version: int | None = None, event_id: str | None = None
    ) -> int:
        """Add tags (those already present are ignored; nothing new writes nothing). Returns the version."""
        return self._tags(session_id, tags, True, expected_version, event_id)

    def remove_tags(
        self, session_id: str, tags: Any, *, expected_version: int | None = None, event_id: str | None = None
    ) -> int:
        """Remove tags; absent tags are ignored (none present writes nothing). Returns the version."""
        return self._tags(session_id, tags, False, expected_version, event_id)

    def _tags(
        self, session_id: str, tags: Any, adding: bool, expected_version: int | None, event_id: str | None
    ) -> int:
        sid = check_id(session_id, "session_id")
        given = self._tag_list(tags, sid)
        kind = ev.TagsAdded if adding else ev.TagsRemoved

        def decide(state: Session | None) -> ev.Event | None:
            assert state is not None
            check_not_purged(state, "add tags" if adding else "remove tags")
            changed = tuple(t for t in given if (t in state.tags) != adding)
            if not changed:
                return None
            if adding:
                self._check_tag_count(sid, len(state.tags) + len(changed))
            return kind(tags=changed)

        noop = kind(tags=given)
        return self._run(
            sid, noop.type, decide, expected_version=expected_version, event_id=event_id, noop=noop
        )[1]

    def retract_message(
        self,
        session_id: str,
        version: int | None = None,
        *,
        position: int | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Take a message back out of the conversation: the last one, this session's own message at
        ``version``, or the one at a global ``position`` (for one inherited from a fork's parent).
        The log keeps it; ``messages()`` no longer returns it. Returns the new version."""
        sid = check_id(session_id, "session_id")
        for name, value in (("version", version), ("position", position)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63):
                raise InvalidInput(f"session {sid!r}: {name} must be a message's {name}; got {value!r}",
                                   session_id=sid, field=name)
        if version is not None and position is not None:
            raise InvalidInput(f"session {sid!r}: give version or position, not both", session_id=sid, field="position")

        def decide(state: Session | None) -> ev.Event:
            state = self._open(state, "retract a message")
            found = queries.message_in_conversation(
                self._engine.projected(), sid, segments(state), state.hidden, state.message_count, version,
                position,
            )
            if found is None:
                what = (
                    "no message to retract" if version is None and position is None
                    else f"no message at {'version ' + str(version) if version else 'position ' + str(position)}"
                    " in its conversation"
                )
                raise InvalidInput(f"session {sid!r} has {what}", session_id=sid,
                                   field="position" if position is not None else "version")
            return ev.MessageRetracted(message_session=found[0], message_version=found[1], role=found[2])

        return self._run(sid, "message_retracted", decide, expected_version=expected_version, event_id=event_id)[1]

    def clear_conversation(
        self, session_id: str, *, expected_version: int | None = None, event_id: str | None = None
    ) -> int:
        """Clear the conversation so far (metadata, data and totals stay; the log keeps every message).
        Clearing an empty conversation writes nothing. Returns the version."""
        sid = check_id(session_id, "session_id")
        event = ev.ConversationCleared()

        def decide(state: Session | None) -> ev.Event | None:
            state = self._open(state, "clear its conversation")
            return event if state.message_count else None

        return self._run(sid, event.type, decide, expected_version=expected_version, event_id=event_id,
                             noop=event)[1]

    def complete_session(
        self,
        session_id: str,
        status: str = "completed",
        *,
        reason: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """End the session as completed, failed or abandoned; returns the new version.

        Raises ``SessionClosed`` if it already ended.
        """
        sid = check_id(session_id, "session_id")
        event = ev.Completed(
            status=check_choice(status, "status", ev.CLOSED_STATUSES, sid),
            reason=check_text(reason, "reason", self._limits.max_text_bytes, sid),
        )

        def decide(state: Session | None) -> ev.Event:
            self._open(state, "complete it again")
            return event

        return self._run(sid, event.type, decide, expected_version=expected_version, event_id=event_id)[1]

    # -- rewinding --------------------------------------------------------------------

    def restore(
        self,
        session_id: str,
        *,
        version: int | None = None,
        at: datetime | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Rewind the session to what it was at a version or instant, by appending a ``restored`` event.

        Its state, metadata, data and conversation become the target's; new
        events continue from there. The events in between stay in the log.
        Returns the new version.
        """
        sid = check_id(session_id, "session_id")
        if version is None and at is None:
            raise InvalidInput(f"session {sid!r}: restore needs a version or an at", session_id=sid, field="version")
        engine = self._engine

        def decide(state: Session | None) -> ev.Event:
            assert state is not None
            check_not_purged(state, "restore it")
            target = engine.target(sid, version, None, at)
            assert target is not None
            return ev.Restored(target_version=target, state=_normalised(image(engine.state_at(sid, target))))

        return self._run(sid, "restored", decide, expected_version=expected_version, event_id=event_id)[1]

    def fork(
        self,
        session_id: str,
        *,
        version: int | None = None,
        at: datetime | None = None,
        new_session_id: str | None = None,
        event_id: str | None = None,
    ) -> Session:
        """Start a new session from this one's state at a version or instant (now when neither is given).

        The source is untouched; the new session's first event is ``forked``,
        naming the parent and its version. Returns the new session.
        """
        parent = check_id(session_id, "session_id")
        generated = new_session_id is None
        engine = self._engine
        child = check_id(engine.new_id() if generated else new_session_id, "new_session_id")

        def decide(state: Session | None) -> ev.Event:
            check_not_purged(engine.existing(parent), "fork it")
            source = engine.view(parent, version, None, at)
            return ev.Forked(parent_id=parent, parent_version=source.version, state=_normalised(image(source)))

        state, _ = self._run(
            child, "forked", decide, expected_version=None, event_id=event_id, create=True, generated_id=generated
        )
        assert state is not None
        return _copy(state)
