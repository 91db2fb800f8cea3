"""Event types: the immutable facts a session is made of.

Each event is a small frozen ``msgspec.Struct``. Its tag (``type``) is stored
in its own column of the log and its payload (the Struct's fields) as JSON in
``data``, so the tag is not repeated inside the payload; one decoder per tag
is built once at import.

Schema evolution rules (also in the README):

* a new field always has a default, so old payloads still decode;
* a tag is never renamed or reused;
* a breaking change bumps the type's ``schema`` and registers an upcaster
  from the previous schema, applied one version at a time on read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, ClassVar, Literal, Union, get_args

import msgspec

from .errors import IntegrityError, UnsupportedFormat

Role = Literal["user", "assistant", "system", "developer", "tool"]
ClosedStatus = Literal["completed", "failed", "abandoned"]

ROLES: tuple[Role, ...] = ("user", "assistant", "system", "developer", "tool")

# Session statuses, defined once: a session is active until it ends (closed) or is purged.
ACTIVE = "active"
CLOSED_STATUSES: tuple[ClosedStatus, ...] = ("completed", "failed", "abandoned")
PURGED = "purged"
STATUSES: tuple[str, ...] = (ACTIVE, *CLOSED_STATUSES, PURGED)


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every event payload; ``type`` is the stored tag, ``schema`` its version."""

    type: ClassVar[str]
    schema: ClassVar[int] = 1


class Created(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A session came into being."""

    type: ClassVar[str] = "created"
    user_id: str | None = None
    purpose: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class MessageAdded(Event, frozen=True, kw_only=True, omit_defaults=True):
    """One message of the conversation. Schema 2 added ``model`` and token counts (see ``UPCASTERS``).

    A block message has ``blocks`` (``ledger.blocks``) and an empty ``content``: its text is derived from
    the blocks where it is needed, never stored twice. ``tokens_*`` are the OpenTelemetry GenAI figures
    (``ledger.tokens``): cache and reasoning counts are parts of ``tokens_in`` and ``tokens_out``.
    """

    type: ClassVar[str] = "message_added"
    schema: ClassVar[int] = 2
    role: Role
    content: str
    tool_name: str | None = None
    invocation_id: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    blocks: list[dict[str, Any]] | None = None
    tokens_cache_read: int | None = None
    tokens_cache_creation: int | None = None
    tokens_reasoning: int | None = None


class MetadataSet(Event, frozen=True, kw_only=True, omit_defaults=True):
    """One or more metadata keys set (``set_metadata`` writes one key, ``update_metadata`` several)."""

    type: ClassVar[str] = "metadata_set"
    values: dict[str, Any]
    modified_by: str | None = None


class MetadataRemoved(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A metadata key removed."""

    type: ClassVar[str] = "metadata_removed"
    key: str
    modified_by: str | None = None


class DataSet(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A workflow data key set to a JSON value."""

    type: ClassVar[str] = "data_set"
    key: str
    value: Any = None


class DataDeleted(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A workflow data key deleted."""

    type: ClassVar[str] = "data_deleted"
    key: str


class DataCleared(Event, frozen=True, kw_only=True, omit_defaults=True):
    """All workflow data cleared (the conversation is kept)."""

    type: ClassVar[str] = "data_cleared"


class TagsAdded(Event, frozen=True, kw_only=True, omit_defaults=True):
    """Tags added to the session."""

    type: ClassVar[str] = "tags_added"
    tags: tuple[str, ...]


class TagsRemoved(Event, frozen=True, kw_only=True, omit_defaults=True):
    """Tags removed from the session."""

    type: ClassVar[str] = "tags_removed"
    tags: tuple[str, ...]


class InvocationLinked(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A tool invocation linked to the session, with its cost; ``artifact`` points at the tool's own records."""

    type: ClassVar[str] = "invocation_linked"
    invocation_id: str
    tool_name: str
    duration_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    status: str = "ok"
    artifact: str | None = None
    tokens_cache_read: int | None = None
    tokens_cache_creation: int | None = None
    tokens_reasoning: int | None = None


class Completed(Event, frozen=True, kw_only=True, omit_defaults=True):
    """The session ended as completed, failed or abandoned."""

    type: ClassVar[str] = "completed"
    status: ClosedStatus = "completed"
    reason: str | None = None


class Restored(Event, frozen=True, kw_only=True, omit_defaults=True):
    """The session was rewound to ``target_version``; ``state`` is its state there (so the fold stays pure).

    Events between the target and the restore stay in the log: reading as of
    a version before the restore still shows them.
    """

    type: ClassVar[str] = "restored"
    target_version: int
    state: dict[str, Any]


class Forked(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A new session started from ``parent_id``'s state at ``parent_version`` (carried in ``state``)."""

    type: ClassVar[str] = "forked"
    parent_id: str
    parent_version: int
    state: dict[str, Any]


class MessageRetracted(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A message taken back out of the conversation (its ``message_version``); the log keeps it."""

    type: ClassVar[str] = "message_retracted"
    message_session: str
    message_version: int
    role: str


class ConversationCleared(Event, frozen=True, kw_only=True, omit_defaults=True):
    """The conversation so far was cleared; metadata, data and totals stay, and the log keeps it all."""

    type: ClassVar[str] = "conversation_cleared"


class Purged(Event, frozen=True, kw_only=True, omit_defaults=True):
    """The session's payloads were removed (privacy request or retention); ``reason`` says why, ``by`` who.

    Every earlier row of the session keeps its place in the chain through its
    payload digest (see ``Redacted``); the session reads as ``purged`` from then on.
    """

    type: ClassVar[str] = "purged"
    reason: str
    by: str | None = None
    redacted: int = 0


class RecordSet(Event, frozen=True, kw_only=True, omit_defaults=True):
    """A record of an integration set in the session: ``kind`` (what it is, e.g. ``langgraph.checkpoint``)
    and ``key`` name it, ``value`` is JSON and ``blob`` opaque bytes (base64 in the payload); ``group``
    gathers records an integration reads together (the pieces of one value, the checkpoints of one run).

    Setting a key that is set replaces its record. The session's state only counts it in its version: the
    records live in the ``records`` read table (``projections.records``), read by key, range or group.
    """

    type: ClassVar[str] = "record_set"
    kind: str
    key: str
    value: Any = None
    blob: bytes | None = None
    group: str | None = None


class RecordsRemoved(Event, frozen=True, kw_only=True, omit_defaults=True):
    """Records taken out of the session's view: these ``keys`` of ``kind`` (``keys`` None: every key of
    it; ``kind`` None: every record). The log keeps them, so a read as of an earlier moment still sees them."""

    type: ClassVar[str] = "records_removed"
    kind: str | None = None
    keys: tuple[str, ...] | None = None


AnyEvent = Union[
    Created,
    MessageAdded,
    MetadataSet,
    MetadataRemoved,
    DataSet,
    DataDeleted,
    DataCleared,
    TagsAdded,
    TagsRemoved,
    InvocationLinked,
    Completed,
    Restored,
    Forked,
    Purged,
    MessageRetracted,
    ConversationCleared,
    RecordSet,
    RecordsRemoved,
]

EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in get_args(AnyEvent)}

# (type, schema) -> function turning a payload dict of that schema into one of schema + 1.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _message_added_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    # Schema 1 messages knew nothing of the model or of tokens: they were not recorded, not zero.
    return {"model": None, "tokens_in": None, "tokens_out": None, **raw}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("message_added", 1): _message_added_v1_to_v2,
}

_encoder = msgspec.json.Encoder()
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()
}


class Redacted(Event, frozen=True, kw_only=True):
    """Stands in for the payload of a purged row: what it was (``digest``) and which event removed it.

    Stored in ``data`` as ``{"$redacted": "<hex sha256 of the old payload>", "purged_at": <position>}``.
    It is never appended as an event of its own.
    """

    type: ClassVar[str] = "redacted"
    digest: str
    purged_at: int


#: How the ``data`` of a redacted row begins (an ordinary payload never has the key ``$redacted``).
REDACTED_PREFIX = '{"$redacted":'
_REDACTED_PREFIX = REDACTED_PREFIX
_REDACTED_BYTES = _REDACTED_PREFIX.encode()


def redaction_marker(digest: bytes, purged_at: int) -> str:
    """The ``data`` text of a redacted row."""
    return f'{{"$redacted":"{digest.hex()}","purged_at":{purged_at}}}'


def read_redaction(data: str | bytes) -> Redacted | None:
    """The redaction a ``data`` value holds, or None for an ordinary payload."""
    if not (data.startswith(_REDACTED_PREFIX) if isinstance(data, str) else data.startswith(_REDACTED_BYTES)):
        return None
    try:
        parsed = msgspec.json.decode(data)
        return Redacted(digest=str(parsed["$redacted"]), purged_at=int(parsed["purged_at"]))
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


def encode_payload(event: Event) -> bytes:
    """Encode an event's payload (its fields, not its tag) to JSON bytes."""
    return _encoder.encode(event)


SALT_KEY = "$salt"


def salted(payload: bytes, salt: bytes) -> bytes:
    """An encoded payload with per-event random bytes added under ``"$salt"`` (decoding ignores them).

    The chain hashes a payload through its SHA-256 digest, and a purge keeps that digest while it removes
    the text: with the salt inside the payload (and removed with it), the kept digest cannot be used to
    confirm a guessed value (an email, a card number) by hashing candidates.
    """
    joiner = b"," if payload != b"{}" else b""
    return b"%s%s\"%s\":\"%s\"}" % (payload[:-1], joiner, SALT_KEY.encode(), salt.hex().encode())


def decode_payload(type_: str, schema: int, data: str | bytes) -> Event:
    """Decode a stored payload, upcasting it from an older schema when needed.

    Raises ``UnsupportedFormat`` for a tag or schema newer than this code, and
    ``IntegrityError`` for bytes that do not decode as that event.
    """
    redacted = read_redaction(data)
    if redacted is not None:
        return redacted
    cls = EVENT_TYPES.get(type_)
    if cls is None:
        raise UnsupportedFormat(
            f"unknown event type {type_!r}: written by a newer session-ledger?", field="type", actual=type_
        )
    try:
        if schema == cls.schema:
            decoded: Event = _decoders[type_].decode(data)  # no cast() call: this runs once per event read
            return decoded
        if schema > cls.schema:
            raise UnsupportedFormat(
                f"event type {type_!r} has schema {schema}; this code reads up to {cls.schema}",
                field="schema",
                limit=cls.schema,
                actual=schema,
            )
        raw = msgspec.json.decode(data)
        for step in range(schema, cls.schema):
            raw = UPCASTERS[(type_, step)](raw)
        return msgspec.convert(raw, cls)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
        raise IntegrityError(f"payload of a {type_!r} event does not decode: {exc}", field="data") from exc


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored in the log: its place in the global order and in its session."""

    position: int
    session_id: str
    version: int
    type: str
    schema: int
    recorded_at: datetime
    event_id: str
    payload: Event
    hash: str
