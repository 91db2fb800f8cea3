"""The MCP server's tools (``ledger.mcp_server``): each one's arguments, result type and action.

Arguments are pydantic models: each tool's JSON input schema is generated from one, and arguments are
validated against it strictly (no guessing ``"3"`` into ``3``, unknown arguments refused) before the ledger
validates them again by its own rules. Results are the library's own msgspec structs (``Session``,
``Message``, ``Statistics``, ...) or the small ones defined here, and each tool's output schema is
generated from its result type, so a result cannot drift from the schema it declares. This module needs
no MCP SDK: the server turns ``TOOLS`` into the SDK's types and makes the schemas strict-client safe.
"""

from __future__ import annotations

import types as types_module
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from . import ANY, Digest, InvalidInput, Ledger, Message, RecordedEvent, SearchHit, Session, SessionFilter
from . import SessionSummary, Statistics, VerifyReport
from .blocks import BLOCK_TYPES
from .events import CLOSED_STATUSES, EVENT_TYPES, ROLES

FORMATS = ("openai-chat", "openai-responses", "anthropic")
"""The provider formats ``get_messages`` gives a conversation in (``Ledger.conversation``)."""
USAGE_GROUPS = ("tool", "user", "model", "day", "status")
"""What ``usage`` groups by (``Ledger.usage``)."""

# -- argument models: each tool's input schema ----------------------------------------------------

SessionId = Annotated[str, Field(description="The session's id.")]
ExpectedVersion = Annotated[
    int | None,
    Field(description="Refuse the change (a concurrency error) unless the session is at this version now."),
]
EventId = Annotated[
    str | None,
    Field(description="A unique id for this change: a retry with the same event_id is recorded only once."),
]
Tokens = Annotated[
    dict[str, Any] | None,
    Field(description='Token counts: {"input": 120, "output": 40} (also cache_read, cache_creation, reasoning),'
                      " or a provider's usage object as it came (OpenAI or Anthropic)."),
]
ModifiedBy = Annotated[str | None, Field(description="Who made the change (kept in the event).")]
JsonValue = Annotated[Any, Field(description="Any JSON value.")]  # typed by the server (an anyOf)
Version = Annotated[int | None, Field(description="As it stood right after this version.")]
Position = Annotated[int | None, Field(description="As it stood right after this global log position.")]
At = Annotated[AwareDatetime | None, Field(description="As it stood at this time (ISO 8601 with a zone).")]
_BLOCK = {"type": "object", "properties": {"type": {"type": "string", "enum": list(BLOCK_TYPES)}}, "required": ["type"]}
Content = Annotated[
    str | list[dict[str, Any]],
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": _BLOCK}]}),
    Field(description="The message text, or a list of content blocks: {type: text, text}; {type: image or file, one"
                      " of url, file_id or data (base64, with media_type)}; {type: tool_call, id, name, arguments};"
                      " {type: tool_result, call_id, content, is_error}; {type: reasoning, text}. Any block may"
                      " carry provider: {...}, kept verbatim."),
]


class _Args(BaseModel):
    # Unknown arguments are refused (a misspelt one would otherwise be silently ignored).
    model_config = ConfigDict(extra="forbid", strict=True)


class _Command(_Args):
    """Arguments every command takes besides its own: optimistic concurrency and an idempotency key."""

    expected_version: ExpectedVersion = None
    event_id: EventId = None


class CreateSession(_Args):
    """Create a session and return it; a sortable unique id is generated when session_id is omitted."""

    session_id: str | None = Field(None, description="The new session's id; generated when omitted.")
    user_id: str | None = Field(None, description="Whose session it is.")
    purpose: str | None = Field(None, description="What the session is for, in a sentence.")
    tags: list[str] = Field(default_factory=list, description="Labels to find it by.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Initial metadata: {key: JSON value}.")
    event_id: EventId = None


class AddMessage(_Command):
    """Append a message to an active session's conversation; returns the session's new version."""

    session_id: SessionId
    role: str = Field(description="Who spoke.", json_schema_extra={"enum": list(ROLES)})
    content: Content
    tool_name: str | None = Field(None, description="For a tool message: the tool that produced it.")
    invocation_id: str | None = Field(None, description="For a tool message: the invocation it belongs to.")
    model: str | None = Field(None, description="The model that wrote it.")
    tokens: Tokens = None


class LinkInvocation(_Command):
    """Record a tool invocation of an active session, with its duration, tokens and cost; returns the new version."""

    session_id: SessionId
    invocation_id: str = Field(description="The invocation's id.")
    tool_name: str = Field(description="The tool that ran.")
    duration_ms: float | None = Field(None, description="How long it ran, in milliseconds.")
    tokens: Tokens = None
    cost: float | None = Field(None, description="What it cost.")
    status: str = Field("ok", description="How it ended, e.g. ok or error.")
    artifact: str | None = Field(None, description="A path or URI to its records.")


class SetMetadata(_Command):
    """Set one metadata key of a session to a JSON value (allowed after completion); returns the new version."""

    session_id: SessionId
    key: str = Field(description="The metadata key.")
    value: JsonValue
    modified_by: ModifiedBy = None


class GetMetadata(_Args):
    """A session's metadata: every key, or one key's value (null when absent)."""

    session_id: SessionId
    key: str | None = Field(None, description="One key; all keys when omitted.")


class RemoveMetadata(_Command):
    """Remove one metadata key of a session (an absent key changes nothing); returns the version."""

    session_id: SessionId
    key: str = Field(description="The metadata key.")
    modified_by: ModifiedBy = None


class SetData(_Command):
    """Set one workflow data key of an active session to a JSON value; returns the new version."""

    session_id: SessionId
    key: str = Field(description="The data key.")
    value: JsonValue


class GetData(_Args):
    """A session's workflow data: every key, or one key's value (null when absent)."""

    session_id: SessionId
    key: str | None = Field(None, description="One key; all keys when omitted.")


class AddTags(_Command):
    """Add tags to a session (those it has already are ignored; nothing new writes nothing); returns the version."""

    session_id: SessionId
    tags: list[str] = Field(description="The tags to add.")


class RemoveTags(_Command):
    """Remove tags from a session (those it lacks are ignored; none present writes nothing); returns the version."""

    session_id: SessionId
    tags: list[str] = Field(description="The tags to remove.")


class CompleteSession(_Command):
    """End a session as completed, failed or abandoned; returns the new version. An ended session takes no
    more messages, invocations or data."""

    session_id: SessionId
    status: str = Field("completed", description="How it ended.", json_schema_extra={"enum": list(CLOSED_STATUSES)})
    reason: str | None = Field(None, description="Why, in a sentence.")


class Fork(_Args):
    """Start a new session from a session's state now, or as it stood at a version or time: its conversation,
    metadata and data carry over and the source is untouched. Returns the new session."""

    session_id: SessionId
    version: int | None = Field(None, description="Fork from the session as it stood right after this version.")
    at: AwareDatetime | None = Field(None, description="Fork from the session as it stood at this time.")
    new_session_id: str | None = Field(None, description="The new session's id; generated when omitted.")
    event_id: EventId = None


class Restore(_Command):
    """Rewind a session to what it was at a version or time (give one): its conversation, metadata and data
    become the target's, and new events continue from there. Nothing is erased: the events in between stay
    in the log and history. Returns the new version."""

    session_id: SessionId
    version: int | None = Field(None, description="Rewind to the session as it stood right after this version.")
    at: AwareDatetime | None = Field(None, description="Rewind to the session as it stood at this time.")


def _json_type(kind: Any) -> Any:
    """A ``SessionFilter`` field's type as a tool argument: lists for iterables, dicts for mappings, aware times."""
    if kind is datetime:
        return AwareDatetime
    origin = get_origin(kind)
    if origin in (Union, types_module.UnionType):
        converted = tuple(_json_type(arg) for arg in get_args(kind))
        return Union[converted]
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return dict[str, Any]
    if origin is not None and isinstance(origin, type) and issubclass(origin, Iterable):
        return list[get_args(kind)[0]]  # type: ignore[misc]  # the element type is only known at run time
    return kind


def _list_sessions_arguments() -> type[_Args]:
    """The ``list_sessions`` tool's arguments: ``SessionFilter``'s fields, with ``metadata_keys`` for the
    keys that need only be present (JSON has no ``ANY``)."""
    fields: dict[str, Any] = {}
    for name, kind, default, description, _flag, schema in SessionFilter.fields():
        if name == "metadata":
            description = "Metadata keys equal to these JSON values."
        fields[name] = (_json_type(kind), Field(default, description=description, json_schema_extra=schema or None))
        if name == "metadata":
            fields["metadata_keys"] = (
                list[str] | None, Field(None, description="Metadata keys present, whatever their value.")
            )
    model: type[_Args] = pydantic.create_model("ListSessions", __base__=_Args, **fields)
    model.__doc__ = (
        "Sessions matching every filter given, newest first by default, each with its metadata; one page at a"
        " time: pass the returned cursor back for the next page."
    )
    return model


ListSessions = _list_sessions_arguments()


class GetSession(_Args):
    """A session's state: now, or as it stood right after a version, a log position or a moment (give at most one)."""

    session_id: SessionId
    version: Version = None
    position: Position = None
    at: At = None


class GetMessages(_Args):
    """A session's conversation in order (after restores and forks, the one they lead to): all of it, the
    last N messages, or a page (limit after offset); now or as it stood at a version, position or time. With
    format, the conversation as that provider's request input, ready to send (with last and at only)."""

    session_id: SessionId
    last: int | None = Field(None, description="Only the latest this many messages (still oldest first).")
    limit: int | None = Field(
        None, ge=1, description="At most this many messages (after offset); next_offset pages on."
    )
    offset: int = Field(0, description="Skip this many messages first.")
    version: Version = None
    position: Position = None
    at: At = None
    format: Literal["openai-chat", "openai-responses", "anthropic"] | None = Field(
        None, description="openai-chat: Chat Completions messages; openai-responses: Responses input items;"
                          " anthropic: {system, messages}. Omitted: the ledger's own messages."
    )


class SearchMessages(_Args):
    """Full-text search over every conversation (or one session's): the best messages matching the query,
    best first, each with a snippet. Words, "phrases", OR, NOT or -word, prefix*, parentheses."""

    query: str = Field(description='What to find: words (all of them), "a phrase", a OR b, -word, pref*.')
    session_id: str | None = Field(None, description="Only this session's conversation (inherited messages included).")
    role: str | None = Field(None, description="Only messages of this role.", json_schema_extra={"enum": list(ROLES)})
    limit: int = Field(20, description="At most this many hits.")


class GetStatistics(GetSession):
    """A session's figures, now or as of a version, position or time: messages by role, invocations by status,
    tools (count and duration), tokens, cost, first and last activity."""


class Usage(_Args):
    """Usage across the ledger grouped by tool, user, model, day or status: sessions, messages, invocations,
    tokens, cost and durations per group (activity without one is the group null); the groups add up."""

    by: Literal["tool", "user", "model", "day", "status"] = Field("tool", description="What to group by.")
    since: AwareDatetime | None = Field(None, description="Only activity from this time on.")
    until: AwareDatetime | None = Field(None, description="Only activity before this time.")


EventType = Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]


class History(_Args):
    """The audit timeline: recorded events (type, payload, hash) of one session or of all, optionally only some
    types, oldest first, a page at a time; pass next_after back as after for the next page."""

    session_id: str | None = Field(None, description="One session's events; every session's when omitted.")
    types: list[EventType] | None = Field(None, description="Only events of these types.")
    after: int = Field(0, description="Only events after this global log position.")
    limit: int = Field(100, description="Events per page.", json_schema_extra={"minimum": 1, "maximum": 1000})


class DigestArg(_Args):
    """A chain head saved earlier (from a verify result's head)."""

    position: int
    hash: str


class Verify(_Args):
    """Walk the whole hash chain and report the first event that breaks it; with a digest saved earlier, also
    prove that nothing up to it was rewritten."""

    digest: DigestArg | None = Field(None, description="A head saved earlier: {position, hash}.")


# -- result types: each tool's output schema -------------------------------------------------------


class Changed(msgspec.Struct, kw_only=True):
    """What a command did: the session's version after it (unchanged when there was nothing to change)."""

    session_id: str
    version: int


class MetadataResult(msgspec.Struct, kw_only=True):
    """A session's metadata: every key (metadata), or one key and its value (null when absent)."""

    session_id: str
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    key: str | msgspec.UnsetType = msgspec.UNSET
    value: Any | msgspec.UnsetType = msgspec.UNSET


class DataResult(msgspec.Struct, kw_only=True):
    """A session's workflow data: every key (data), or one key and its value (null when absent)."""

    session_id: str
    data: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    key: str | msgspec.UnsetType = msgspec.UNSET
    value: Any | msgspec.UnsetType = msgspec.UNSET


class SessionsResult(msgspec.Struct, kw_only=True):
    """One page of sessions, each with its metadata."""

    sessions: list[SessionSummary]
    cursor: Annotated[str | None, msgspec.Meta(description="Pass back as cursor for the next page; null on the last.")]


class MessagesResult(msgspec.Struct, kw_only=True):
    """A session's conversation: messages (the ledger's own form; blocks for a block message), or, with a
    format, conversation (that provider's request input: a list, or {system, messages} for anthropic)."""

    session_id: str
    format: str | None
    messages: list[Message] | msgspec.UnsetType = msgspec.UNSET
    conversation: list[dict[str, Any]] | dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    next_offset: Annotated[
        int | None | msgspec.UnsetType,
        msgspec.Meta(description="With limit: the offset of the next page; null when this page is the last."),
    ] = msgspec.UNSET


class HitsResult(msgspec.Struct, kw_only=True):
    """Messages matching a search, best first (a higher rank is better)."""

    hits: list[SearchHit]


class UsageResult(msgspec.Struct, kw_only=True):
    """Usage per group: each row has the group (under the name given as by), sessions, messages, invocations,
    tokens_in, tokens_out (and the cache and reasoning parts), cost, total_duration_ms and p95_duration_ms."""

    by: str
    rows: list[dict[str, str | int | float | None]]


class EventsResult(msgspec.Struct, kw_only=True):
    """One page of the audit timeline, oldest first."""

    events: list[RecordedEvent]
    next_after: Annotated[
        int | None, msgspec.Meta(description="Pass back as after for the next page; null on the last.")
    ]


_INTERNAL = ("lineage", "run_start", "hidden")  # how forks, restores and retractions are stitched: not for callers


# -- the tools ------------------------------------------------------------------------------------


def _plain_session(state: Any) -> dict[str, Any]:
    record: dict[str, Any] = msgspec.to_builtins(state)
    for internal in _INTERNAL:
        record.pop(internal, None)
    return record


def _write_options(a: Any) -> dict[str, Any]:
    return {"expected_version": a.expected_version, "event_id": a.event_id}


def _create_session(ledger: Ledger, a: CreateSession) -> Any:
    state = ledger.create_session(
        a.session_id, user_id=a.user_id, purpose=a.purpose, tags=a.tags, metadata=a.metadata, event_id=a.event_id
    )
    return _plain_session(state)


def _add_message(ledger: Ledger, a: AddMessage) -> Changed:
    version = ledger.add_message(
        a.session_id, a.role, a.content, tool_name=a.tool_name, invocation_id=a.invocation_id, model=a.model,
        tokens=a.tokens, **_write_options(a),
    )
    return Changed(session_id=a.session_id, version=version)


def _link_invocation(ledger: Ledger, a: LinkInvocation) -> Changed:
    version = ledger.link_invocation(
        a.session_id, a.invocation_id, a.tool_name, duration_ms=a.duration_ms, tokens=a.tokens, cost=a.cost,
        status=a.status, artifact=a.artifact, **_write_options(a),
    )
    return Changed(session_id=a.session_id, version=version)


def _set_metadata(ledger: Ledger, a: SetMetadata) -> Changed:
    version = ledger.set_metadata(a.session_id, a.key, a.value, modified_by=a.modified_by, **_write_options(a))
    return Changed(session_id=a.session_id, version=version)


def _get_metadata(ledger: Ledger, a: GetMetadata) -> MetadataResult:
    found = ledger.get_metadata(a.session_id, a.key)
    if a.key is None:
        return MetadataResult(session_id=a.session_id, metadata=found)
    return MetadataResult(session_id=a.session_id, key=a.key, value=found)


def _remove_metadata(ledger: Ledger, a: RemoveMetadata) -> Changed:
    version = ledger.remove_metadata(a.session_id, a.key, modified_by=a.modified_by, **_write_options(a))
    return Changed(session_id=a.session_id, version=version)


def _set_data(ledger: Ledger, a: SetData) -> Changed:
    return Changed(session_id=a.session_id, version=ledger.set_data(a.session_id, a.key, a.value, **_write_options(a)))


def _get_data(ledger: Ledger, a: GetData) -> DataResult:
    found = ledger.get_data(a.session_id, a.key)
    if a.key is None:
        return DataResult(session_id=a.session_id, data=found)
    return DataResult(session_id=a.session_id, key=a.key, value=found)


def _add_tags(ledger: Ledger, a: AddTags) -> Changed:
    return Changed(session_id=a.session_id, version=ledger.add_tags(a.session_id, a.tags, **_write_options(a)))


def _remove_tags(ledger: Ledger, a: RemoveTags) -> Changed:
    return Changed(session_id=a.session_id, version=ledger.remove_tags(a.session_id, a.tags, **_write_options(a)))


def _complete_session(ledger: Ledger, a: CompleteSession) -> Changed:
    version = ledger.complete_session(a.session_id, a.status, reason=a.reason, **_write_options(a))
    return Changed(session_id=a.session_id, version=version)


def _fork(ledger: Ledger, a: Fork) -> Any:
    child = ledger.fork(a.session_id, version=a.version, at=a.at, new_session_id=a.new_session_id, event_id=a.event_id)
    return _plain_session(child)


def _restore(ledger: Ledger, a: Restore) -> Changed:
    version = ledger.restore(a.session_id, version=a.version, at=a.at, **_write_options(a))
    return Changed(session_id=a.session_id, version=version)


def _list_sessions(ledger: Ledger, a: Any) -> SessionsResult:
    given = a.model_dump(exclude={"metadata_keys"})
    if a.metadata is not None or a.metadata_keys is not None:
        # A key both present-only and equal-to-a-value means equal: the stricter of the two.
        given["metadata"] = {key: ANY for key in a.metadata_keys or ()} | (a.metadata or {})
    page = ledger.list_sessions(**given)
    return SessionsResult(sessions=page.items, cursor=page.cursor)


def _get_session(ledger: Ledger, a: GetSession) -> Any:
    return _plain_session(ledger.get_session(a.session_id, version=a.version, position=a.position, at=a.at))


def transcript(ledger: Ledger, session_id: str) -> MessagesResult:
    """A session's whole conversation now, as ``get_messages`` gives it (and the transcript resource)."""
    return MessagesResult(session_id=session_id, format=None, messages=ledger.messages(session_id))


def _get_messages(ledger: Ledger, a: GetMessages) -> MessagesResult:
    sid = a.session_id
    if a.format is not None:
        for name in ("version", "position", "limit", "offset"):
            if getattr(a, name):
                raise InvalidInput(
                    f"session {sid!r}: format gives the conversation now or at a time: use last and at with it,"
                    f" not {name}", session_id=sid, field=name,
                )
        conversation = ledger.conversation(sid, format=a.format, last=a.last, at=a.at)
        return MessagesResult(session_id=sid, format=a.format, conversation=conversation)
    if a.limit is None or a.last is not None:
        found = ledger.messages(sid, last=a.last, limit=a.limit, offset=a.offset, version=a.version,
                                position=a.position, at=a.at)
        return MessagesResult(session_id=sid, format=None, messages=found)
    # One more than asked tells whether another page follows.
    found = ledger.messages(sid, limit=a.limit + 1, offset=a.offset, version=a.version, position=a.position, at=a.at)
    more = len(found) > a.limit
    return MessagesResult(session_id=sid, format=None, messages=found[: a.limit],
                          next_offset=a.offset + a.limit if more else None)


def _search_messages(ledger: Ledger, a: SearchMessages) -> HitsResult:
    return HitsResult(hits=ledger.search_messages(a.query, session_id=a.session_id, role=a.role, limit=a.limit))


def _get_statistics(ledger: Ledger, a: GetStatistics) -> Statistics:
    return ledger.statistics(a.session_id, version=a.version, position=a.position, at=a.at)


def _usage(ledger: Ledger, a: Usage) -> UsageResult:
    return UsageResult(by=a.by, rows=ledger.usage(by=a.by, since=a.since, until=a.until))


def _history(ledger: Ledger, a: History) -> EventsResult:
    if not 1 <= a.limit <= 1000:
        raise InvalidInput(f"limit must be an integer from 1 to 1000; got {a.limit!r}", field="limit", limit=1000)
    unknown = sorted(set(a.types or ()) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"types: {unknown[0]!r} is no event type; the types are {', '.join(EVENT_TYPES)}",
                           field="types")
    events: Iterable[RecordedEvent] = ledger.history(a.session_id, after=a.after)
    if a.types is not None:
        wanted = set(a.types)
        events = (event for event in events if event.type in wanted)
    # One more than asked tells whether there is a next page without a second query.
    found = list(islice(events, a.limit + 1))
    page = found[: a.limit]
    return EventsResult(events=page, next_after=page[-1].position if len(found) > a.limit else None)


def _verify(ledger: Ledger, a: Verify) -> VerifyReport:
    return ledger.verify(None if a.digest is None else Digest(a.digest.position, a.digest.hash))


@dataclass(frozen=True)
class Tool:
    """One tool: its name, arguments (described by their docstring), result type (less the properties in
    ``drop``), what it does, and whether it only reads or may be repeated safely."""

    name: str
    args: type[BaseModel]
    result: Any
    run: Callable[[Ledger, Any], Any]
    read_only: bool = False
    idempotent: bool = False
    drop: tuple[str, ...] = ()


TOOLS: tuple[Tool, ...] = (
    Tool("create_session", CreateSession, Session, _create_session, drop=_INTERNAL),
    Tool("add_message", AddMessage, Changed, _add_message),
    Tool("link_invocation", LinkInvocation, Changed, _link_invocation),
    Tool("set_metadata", SetMetadata, Changed, _set_metadata),  # the same value again is one more event
    Tool("get_metadata", GetMetadata, MetadataResult, _get_metadata, read_only=True),
    Tool("remove_metadata", RemoveMetadata, Changed, _remove_metadata, idempotent=True),  # absent: nothing written
    Tool("set_data", SetData, Changed, _set_data),
    Tool("get_data", GetData, DataResult, _get_data, read_only=True),
    Tool("add_tags", AddTags, Changed, _add_tags, idempotent=True),  # nothing new: nothing written
    Tool("remove_tags", RemoveTags, Changed, _remove_tags, idempotent=True),
    Tool("complete_session", CompleteSession, Changed, _complete_session),
    Tool("fork", Fork, Session, _fork, drop=_INTERNAL),
    Tool("restore", Restore, Changed, _restore),  # each call appends one more restored event
    Tool("list_sessions", ListSessions, SessionsResult, _list_sessions, read_only=True),
    Tool("get_session", GetSession, Session, _get_session, read_only=True, drop=_INTERNAL),
    Tool("get_messages", GetMessages, MessagesResult, _get_messages, read_only=True),
    Tool("search_messages", SearchMessages, HitsResult, _search_messages, read_only=True),
    Tool("get_statistics", GetStatistics, Statistics, _get_statistics, read_only=True),
    Tool("usage", Usage, UsageResult, _usage, read_only=True),
    Tool("history", History, EventsResult, _history, read_only=True),
    Tool("verify", Verify, VerifyReport, _verify, read_only=True),
)
"""Every tool the server offers, in the order ``tools/list`` gives them."""
