"""OpenTelemetry GenAI spans into the ledger: ``LedgerSpanExporter``, a ``SpanExporter`` for the OpenTelemetry SDK.

    provider.add_span_processor(BatchSpanProcessor(LedgerSpanExporter(Ledger("sessions.db"))))

Any agent instrumented with the GenAI semantic conventions then lands in the ledger unchanged. Attributes
are read by name, current names first, then the deprecated ``gen_ai.system`` and
``gen_ai.usage.prompt_tokens``/``completion_tokens``. ``gen_ai.operation.name`` (else the first word of
the span name, ``"{operation} {target}"``) decides what a span becomes:

* ``chat``, ``generate_content``, ``text_completion``: the new input messages, then an assistant message
  per output message with ``model`` (``gen_ai.response.model``, else ``.request.model``) and, on the
  first, ``tokens`` from ``gen_ai.usage.input_tokens``, ``output_tokens``, ``cache_read.input_tokens``,
  ``cache_creation.input_tokens``, ``reasoning.output_tokens`` (``input``, ``output``, ``cache_read``,
  ``cache_creation``, ``reasoning``: the same meaning, parts within totals).
* ``execute_tool``: ``link_invocation`` with ``gen_ai.tool.call.id`` (else, or when it names another
  invocation already, ``span:<span id>``), ``gen_ai.tool.name`` (else the span name's target), the
  span's duration, status ``error`` (span status ERROR or ``error.type``) or ``ok``.
* ``invoke_agent``, ``create_agent``: session metadata under the attribute names ``gen_ai.agent.name``
  (else the span name's target), ``.id``, ``.description``, ``.version``, ``gen_ai.provider.name``; the
  latest span wins. Their usage and messages sum up their chat spans' and are not counted again.
* ``embeddings``: an invocation ``embeddings <model>`` with its tokens. Other spans are ``ignored``.

The session is ``gen_ai.conversation.id`` (created on first sight, metadata ``integration: otel`` and the
original id; an id the ledger refuses is mapped by :func:`session_id_for`), else the one the span's trace
named: children are exported before their parents, so a span whose trace has named none yet waits (at
most ``max_pending``) and is recorded, in start order, when one does. It is ``skipped`` (counted, never an
error) when its trace's local root ends without one, on overflow, or at ``shutdown``.

Content (opt-in in the conventions: ``gen_ai.system_instructions``, ``gen_ai.input.messages``,
``gen_ai.output.messages``, JSON strings or structured) becomes content blocks: ``text``, ``reasoning``,
``tool_call``; ``tool_call_response`` as ``tool_result`` (a ``tool`` message also gets call id and tool
name); ``blob``, ``file``, ``uri`` as ``image`` or ``file``. Other parts and keys are kept under the
block's ``provider.otel`` (an unknown part in an empty placeholder block, which ``conversation()`` skips);
the response id, finish reasons and ``error.type`` under ``provider.otel.response`` of the first output.
Without content a chat span is an assistant message holding only a placeholder, with model and usage.
Each chat span resends its history; only what the session lacks is appended: the messages after the
longest run of them the session ends with; else (a changed head) after the last one it holds; else all.

Idempotent by span: event ids are ``otel:<trace id>:<span id>:<part>``, so spans exported again write
nothing. A span is one batch (it joins the caller's batch when ended inside one on the same thread). One
whose content the ledger refuses (malformed, over a limit) is recorded without it (``degraded``); one that
cannot be recorded (a closed session, a storage failure) is logged and ``failed``, and ``export`` returns
FAILURE. ``export`` never raises for a span and is safe from any thread (routing under a lock, writes
through the ledger's own).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

try:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import StatusCode
except ImportError as exc:  # the optional extra is missing: one line naming it
    from ..extras import missing_extra

    raise missing_extra("otel", "ledger.integrations.otel", exc) from exc

from .. import InvalidInput, Ledger, SessionExists, SessionNotFound
from ..validation import check_id

__all__ = ["CONVERSATION_ID", "INTEGRATION", "ExportStats", "LedgerSpanExporter", "session_id_for"]

INTEGRATION = "otel"
"""The value of the ``integration`` metadata key on sessions this exporter creates."""
CONVERSATION_ID = "gen_ai.conversation.id"
"""The attribute naming the conversation, and the metadata key that keeps it on the session."""

_OPERATION = "gen_ai.operation.name"
_REQUEST_MODEL, _RESPONSE_MODEL = "gen_ai.request.model", "gen_ai.response.model"
_RESPONSE_ID, _FINISH_REASONS = "gen_ai.response.id", "gen_ai.response.finish_reasons"
_INPUT, _OUTPUT, _SYSTEM = "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"
_TOOL_NAME, _TOOL_CALL_ID, _ERROR_TYPE = "gen_ai.tool.name", "gen_ai.tool.call.id", "error.type"
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system")  # the current name, then the deprecated one
_AGENT = ("gen_ai.agent.name", "gen_ai.agent.id", "gen_ai.agent.description", "gen_ai.agent.version")
_USER = ("user.id", "enduser.id")
_USAGE = {  # the ledger's token field -> the attributes that give it, current name first
    "input": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cache_read": ("gen_ai.usage.cache_read.input_tokens",),
    "cache_creation": ("gen_ai.usage.cache_creation.input_tokens",),
    "reasoning": ("gen_ai.usage.reasoning.output_tokens",),
}
_CHAT = frozenset({"chat", "generate_content", "text_completion"})
_AGENT_OPS = frozenset({"invoke_agent", "create_agent"})
_TOOL, _EMBEDDINGS = "execute_tool", "embeddings"
_OPERATIONS = _CHAT | _AGENT_OPS | {_TOOL, _EMBEDDINGS}
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "developer", "tool": "tool",
          "model": "assistant", "function": "tool"}
_SOURCES = {"blob": ("content", "data"), "file": ("file_id", "file_id"), "uri": ("uri", "url")}
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")
_MAX_INT = 2**63 - 1
_TRACES = 10_000  # how many traces' conversation ids are remembered
_log = logging.getLogger(__name__)


def session_id_for(conversation_id: str) -> str:
    """The ledger session id of a ``gen_ai.conversation.id``: the id itself when the ledger accepts it
    (1-128 characters from ``[A-Za-z0-9._:-]``), else its safe characters (at most 100) and ``:`` and 20
    hex digits of its SHA-256, so different ids stay different."""
    with contextlib.suppress(InvalidInput):
        return check_id(conversation_id, "session_id")
    safe = _UNSAFE.sub("_", conversation_id).strip("._")[:100] or "otel"
    return f"{safe}:{hashlib.sha256(conversation_id.encode('utf-8', 'surrogatepass')).hexdigest()[:20]}"


@dataclass(frozen=True)
class ExportStats:
    """What an exporter did with the spans it was given, counted in spans."""

    recorded: int  #: written to the ledger (degraded ones included); a span exported again counts again
    skipped: int  #: GenAI spans whose trace named no conversation
    ignored: int  #: spans with no GenAI operation, or one the ledger does not record (``retrieval``, ...)
    failed: int  #: GenAI spans that could not be recorded (logged)
    degraded: int  #: recorded without their content, which was malformed or over the ledger's limits
    pending: int  #: waiting for their trace to name its conversation


class _Msg(NamedTuple):
    role: str
    content: str | list[dict[str, Any]]
    tool_name: str | None = None
    invocation_id: str | None = None


# -- attribute values, read leniently: a value of the wrong kind counts as absent ----------------------------


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 0 <= value <= _MAX_INT else None


def _text(value: object, limit: int) -> str | None:
    """A non-blank string cut to ``limit`` bytes of UTF-8, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore") or None


def _first(attrs: Mapping[str, object], keys: Sequence[str], limit: int) -> str | None:
    return next((text for key in keys if (text := _text(attrs.get(key), limit)) is not None), None)


def _fit(value: str, limit: int) -> str:
    """``value`` as valid text (a lone surrogate becomes U+FFFD: the session id keeps the exact id apart),
    cut until its JSON fits in ``limit`` bytes (a metadata value)."""
    value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    while value and len(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")) > limit - 16:
        value = value[: len(value) * 3 // 4]
    return value


def _conversation(attrs: Mapping[str, object], keys: Sequence[str]) -> str | None:
    for value in map(attrs.get, keys):
        if isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and value.strip():
            return str(value)
    return None


def _operation(span: ReadableSpan, attrs: Mapping[str, object]) -> str | None:
    value = attrs.get(_OPERATION)
    if isinstance(value, str) and value:
        return value
    first = span.name.split(" ", 1)[0] if isinstance(span.name, str) else ""
    return first if first in _OPERATIONS else None  # the span name is "{operation} {target}"


def _target(span: ReadableSpan) -> str | None:
    """What the span name says the operation was on: the tool or agent of ``"execute_tool get_weather"``."""
    parts = span.name.split(" ", 1) if isinstance(span.name, str) else []
    return parts[1] if len(parts) == 2 and parts[0] in _OPERATIONS else None


def _usage(attrs: Mapping[str, object]) -> dict[str, int] | None:
    """The ``gen_ai.usage.*`` figures as the ledger's ``tokens``; parts larger than their total are dropped."""
    found: dict[str, int] = {}
    for field, keys in _USAGE.items():
        number = next((n for key in keys if (n := _count(attrs.get(key))) is not None), None)
        if number is not None:
            found[field] = number
    if "input" in found and found.get("cache_read", 0) + found.get("cache_creation", 0) > found["input"]:
        _log.warning("cache token counts exceed gen_ai.usage.input_tokens (%s); dropped", found)
        for part in ("cache_read", "cache_creation"):
            found.pop(part, None)
    if "output" in found and found.get("reasoning", 0) > found["output"]:
        _log.warning("reasoning tokens exceed gen_ai.usage.output_tokens (%s); dropped", found)
        del found["reasoning"]
    return found or None


def _is_error(span: ReadableSpan, attrs: Mapping[str, object]) -> bool:
    status = getattr(span, "status", None)
    return getattr(status, "status_code", None) is StatusCode.ERROR or _text(attrs.get(_ERROR_TYPE), 256) is not None


def _seen(exc: BaseException) -> bool:
    """Whether ``exc`` says one of the span's event ids is stored already, as another session's event."""
    return isinstance(exc, InvalidInput) and exc.field == "event_id"


def _duration(span: ReadableSpan) -> float | None:
    start, end = span.start_time, span.end_time
    return (end - start) / 1e6 if isinstance(start, int) and isinstance(end, int) and end >= start else None


# -- content: the conventions' messages and parts as ledger messages and blocks -------------------------------


def _plain(value: object) -> Any:
    """A structured attribute value as JSON values: mappings as dicts, sequences as lists, bytes as base64."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def _json_list(value: object, name: str, *, text_ok: bool = False) -> list[Any] | None:
    """A list attribute given as a JSON string, a sequence of JSON strings, or structured; None when absent.
    ``text_ok``: a string that is not JSON is one text part (system instructions as plain text)."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            found = json.loads(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            found = [json.loads(v) for v in value]
        else:
            found = _plain(value)
    except (ValueError, RecursionError) as exc:
        if text_ok and isinstance(value, str):
            return [{"type": "text", "content": value}]
        raise ValueError(f"{name} is not JSON: {exc}") from None
    found = [found] if isinstance(found, dict) else found
    if not isinstance(found, list):
        raise ValueError(f"{name} is not a list")
    return found


def _mark(block: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Keep ``values`` (those not empty) under ``block["provider"]["otel"]``."""
    kept = {k: v for k, v in values.items() if v is not None and v != {}}
    if kept:
        block.setdefault("provider", {}).setdefault(INTEGRATION, {}).update(kept)
    return block


def _placeholder(**values: Any) -> dict[str, Any]:
    return _mark({"type": "text", "text": ""}, placeholder=True, **values)


def _block(part: object) -> dict[str, Any]:
    """One part of a message as a content block."""
    if not isinstance(part, dict):
        return _placeholder(part=part)
    kind, call_id = part.get("type"), part.get("id")

    def rest(*used: str) -> dict[str, Any]:
        return {k: v for k, v in part.items() if k not in ("type", *used)}

    if kind in ("text", "reasoning") and isinstance(part.get("content"), str):
        return _mark({"type": kind, "text": part["content"]}, extra=rest("content"))
    if kind == "tool_call" and isinstance(part.get("name"), str) and isinstance(call_id, (str, type(None))):
        arguments = part.get("arguments")
        if not isinstance(arguments, (str, dict)):
            arguments = {} if arguments is None else json.dumps(arguments, ensure_ascii=False)
        block = {"type": "tool_call", "id": call_id or "", "name": part["name"], "arguments": arguments}
        return _mark(block, extra=rest("id", "name", "arguments"))
    if kind == "tool_call_response" and "response" in part and isinstance(call_id, (str, type(None))):
        response = part["response"]
        content = response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
        return _mark({"type": "tool_result", "call_id": call_id or "", "content": content}, extra=rest("id", "response"))
    if isinstance(kind, str) and kind in _SOURCES:
        source, field = _SOURCES[kind]
        value, media, modality = part.get(source), part.get("mime_type"), part.get("modality")
        if isinstance(value, str) and isinstance(media, (str, type(None))):
            block = {"type": "image" if modality == "image" else "file", field: value}
            if media or kind == "blob":
                block["media_type"] = media or "application/octet-stream"
            return _mark(block, extra=rest(source, "mime_type", *(("modality",) if modality == "image" else ())))
    return _placeholder(part=part)  # a part with no block (server tool calls, compaction, ...), kept verbatim


def _message(raw: object, output: bool, names: dict[str, str], limit: int) -> _Msg:
    """One input or output message (``{"role", "parts", ...}``) as a ledger message; ``names`` maps the
    tool calls seen so far to their tool (a tool message is named after the call it answers)."""
    if not isinstance(raw, dict):
        raise ValueError(f"a message is not an object: {raw!r:.80}")
    parts, extra = raw.get("parts"), {k: v for k, v in raw.items() if k not in ("role", "parts")}
    if parts is None and isinstance(raw.get("content"), str):  # an older shape: the text as "content"
        parts = [{"type": "text", "content": extra.pop("content")}]
    if not isinstance(parts, list):
        raise ValueError(f"a message has no list of parts: {raw!r:.80}")
    given = raw.get("role")
    role = _ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        role, extra["role"] = ("assistant" if output else "user"), given
    blocks = [_block(part) for part in parts]
    if extra:  # the message's own keys (name, finish_reason, an unknown role) on its first block
        blocks = blocks or [_placeholder()]
        _mark(blocks[0], item=extra)
    for block in blocks:
        if block["type"] == "tool_call" and block["id"]:
            names[block["id"]] = block["name"]
    calls = [b["call_id"] for b in blocks if b["type"] == "tool_result" and b["call_id"]] if role == "tool" else []
    call = _text(calls[0], limit) if calls else None
    return _Msg(role, _simple(blocks), _text(names.get(call or ""), limit), call)


def _simple(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One plain text block as its text (a string message), other blocks as they are."""
    if len(blocks) == 1 and blocks[0]["type"] == "text" and "provider" not in blocks[0]:
        return str(blocks[0]["text"])
    return blocks


def _fingerprint(role: str, content: object) -> str:
    """What two messages share when one is the other sent again: role and blocks, without provider extras,
    empty text or the form of tool-call arguments."""
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    kept = []
    for block in blocks if isinstance(blocks, list) else []:
        bare = {k: v for k, v in block.items() if k != "provider"} if isinstance(block, Mapping) else {"?": block}
        if bare.get("type") == "text" and not bare.get("text"):
            continue
        if bare.get("type") == "tool_call" and isinstance(bare.get("arguments"), str):
            try:
                bare["arguments"] = json.loads(bare["arguments"])
            except (ValueError, RecursionError):
                pass
        kept.append(bare)
    return role + "\n" + json.dumps(kept, sort_keys=True, ensure_ascii=False, default=repr)


class LedgerSpanExporter(SpanExporter):
    """An OpenTelemetry ``SpanExporter`` that records GenAI spans as ledger events (see the module docstring).

    ``ledger`` is a ``Ledger`` (shared; the caller closes it) or a path or URL to open one (this exporter
    then owns it and closes it on ``shutdown``). ``user_id``, ``purpose``, ``tags`` and ``metadata``
    describe the sessions it creates (``user_id`` defaults to the span's ``user.id``). ``conversation_keys``
    are the attributes that name the conversation, tried in order (add ``"session.id"`` for OpenInference).
    ``max_pending`` bounds the spans kept waiting for their trace to name its conversation.

    The counters ``recorded``, ``skipped``, ``ignored``, ``failed`` and ``degraded`` (and ``pending``,
    ``stats``) say what became of the spans.
    """

    def __init__(
        self,
        ledger: Ledger | str | os.PathLike[str],
        *,
        user_id: str | None = None,
        purpose: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        conversation_keys: Sequence[str] = (CONVERSATION_ID,),
        max_pending: int = 10_000,
    ) -> None:
        if isinstance(conversation_keys, str) or not conversation_keys:
            raise TypeError("conversation_keys must be a non-empty sequence of attribute names")
        self._owns_ledger = not isinstance(ledger, Ledger)
        self.ledger: Ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self._create: dict[str, Any] = {"user_id": user_id, "purpose": purpose, "tags": tuple(tags),
                                        "metadata": dict(metadata or {})}
        self._keys = tuple(conversation_keys)
        self._max_pending = max(0, max_pending)
        self._lock = threading.RLock()  # re-entered when a span fails while routed under it
        self._closed = False
        self._traces: OrderedDict[int, str] = OrderedDict()  # trace id -> the conversation it named last
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()  # trace id -> its waiting spans
        self._waiting = 0  # how many spans _pending holds
        self.recorded = self.skipped = self.ignored = self.failed = self.degraded = 0

    def __repr__(self) -> str:
        return f"LedgerSpanExporter({self.ledger!r})"

    @property
    def pending(self) -> int:
        """GenAI spans waiting for their trace to name its conversation."""
        return self._waiting

    @property
    def stats(self) -> ExportStats:
        """All the counters at once."""
        with self._lock:
            return ExportStats(self.recorded, self.skipped, self.ignored, self.failed, self.degraded, self.pending)

    # -- the SpanExporter contract -----------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Record the GenAI spans among ``spans``; FAILURE when one of them could not be recorded (or after
        ``shutdown``). Never raises for a span."""
        ready: list[tuple[ReadableSpan, str]] = []
        ok = True
        with self._lock:  # routing under the lock; the writes after it, so a writer in a batch never waits here
            if self._closed:
                return SpanExportResult.FAILURE
            for span in spans:
                ok = self._guard(span, lambda: self._take(span, ready)) and ok
        for span, conversation in ready:
            ok = self._guard(span, lambda: self._record(span, conversation)) and ok
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def _guard(self, span: ReadableSpan, work: Callable[[], bool]) -> bool:
        try:
            return work()
        except Exception:  # a span the code did not foresee: logged and counted, never raised
            _log.exception("span %r not recorded", getattr(span, "name", span))
            self._add("failed")
            return False

    def _add(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered but spans waiting for their trace's conversation id, which keep waiting."""
        return not self._closed

    def shutdown(self) -> None:
        """Skip the spans still waiting, stop accepting spans, and close the ledger if this exporter opened it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.skipped += self._waiting
            self._pending.clear()
            self._waiting = 0
        if self._owns_ledger:  # outside the lock: closing waits for a batch another thread may be in
            self.ledger.close()

    # -- routing: which conversation, now or later ---------------------------------------------------------

    def _take(self, span: ReadableSpan, ready: list[tuple[ReadableSpan, str]]) -> bool:
        """Route one span: to ``ready`` with its conversation (and the spans of its trace that waited for
        one, in start order), to the waiting spans, or to a counter."""
        context = span.context
        if context is None:
            _log.warning("span %r has no span context: not recorded", span.name)
            self.failed += 1
            return False
        attrs: Mapping[str, object] = span.attributes or {}
        trace = context.trace_id
        conversation = _conversation(attrs, self._keys)
        if conversation is not None:
            self._traces[trace] = conversation
            self._traces.move_to_end(trace)
            while len(self._traces) > _TRACES:
                self._traces.popitem(last=False)
        else:
            conversation = self._traces.get(trace)
        root = span.parent is None or span.parent.is_remote
        found = self._release(trace) if conversation is not None else []
        if conversation is None and root:
            self.skipped += len(self._release(trace))  # the trace ended here without naming a conversation
        if _operation(span, attrs) not in _OPERATIONS:
            self.ignored += 1
        elif conversation is not None:
            found.append(span)
        elif root:
            self.skipped += 1
        else:
            self._pending.setdefault(trace, []).append(span)
            self._waiting += 1
            while self._waiting > self._max_pending:  # the oldest waiting trace gives up
                self.skipped += len(self._release(next(iter(self._pending))))
        ready += [(item, conversation or "") for item in sorted(found, key=lambda s: s.start_time or 0)]
        return True

    def _release(self, trace: int) -> list[ReadableSpan]:
        spans = self._pending.pop(trace, [])
        self._waiting -= len(spans)
        return spans

    def _record(self, span: ReadableSpan, conversation: str) -> bool:
        session_id = session_id_for(conversation)
        try:
            try:
                self._write(span, session_id, conversation, content=True)
            except (ValueError, TypeError) as exc:  # content the ledger refuses: the span without it
                if _seen(exc):
                    raise
                self._write(span, session_id, conversation, content=False)
                self._add("degraded")
                _log.warning("span %r of session %r recorded without its content: %s", span.name, session_id, exc)
        except Exception as exc:
            if not _seen(exc):
                self._add("failed")
                _log.warning("span %r of session %r not recorded: %s", span.name, session_id, exc)
                return False
            # Its events are stored already, in another session: its trace named another conversation when it
            # was first exported. The batch rolled back; it stays where it is.
            _log.debug("span %r was recorded before: %s", span.name, exc)
        self._add("recorded")
        return True

    # -- writing one span: one batch -----------------------------------------------------------------------

    def _write(self, span: ReadableSpan, session_id: str, conversation: str, *, content: bool) -> None:
        assert span.context is not None
        attrs: Mapping[str, object] = span.attributes or {}
        base = f"otel:{span.context.trace_id:032x}:{span.context.span_id:016x}"
        operation = _operation(span, attrs)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.ledger.batch())
            except InvalidInput as exc:  # ended inside the caller's own batch on this thread: join it
                if exc.field != "batch":
                    raise
            self._ensure_session(session_id, conversation, attrs)
            if operation in _CHAT:
                self._chat(span, attrs, session_id, base, content)
            elif operation == _TOOL or operation == _EMBEDDINGS:
                self._invocation(span, attrs, session_id, base, operation)
            else:
                self._agent(span, attrs, session_id, base)

    def _ensure_session(self, session_id: str, conversation: str, attrs: Mapping[str, object]) -> None:
        led = self.ledger
        with contextlib.suppress(SessionNotFound):
            led.get_session(session_id)
            return
        limits = led.limits
        fields = dict(self._create)
        fields["user_id"] = fields["user_id"] or _first(attrs, _USER, limits.max_name_bytes)
        fields["metadata"] = {"integration": INTEGRATION, CONVERSATION_ID: _fit(conversation, limits.max_metadata_value_bytes),
                              **fields["metadata"]}
        with contextlib.suppress(SessionExists):  # created meanwhile by another writer
            led.create_session(session_id, **fields)

    def _chat(self, span: ReadableSpan, attrs: Mapping[str, object], session_id: str, base: str, content: bool) -> None:
        led, limit = self.ledger, self.ledger.limits.max_name_bytes
        model = _text(attrs.get(_RESPONSE_MODEL), limit) or _text(attrs.get(_REQUEST_MODEL), limit)
        tokens = _usage(attrs)
        reasons = attrs.get(_FINISH_REASONS)
        response = {
            "id": _text(attrs.get(_RESPONSE_ID), limit),
            "finish_reasons": [r for r in reasons if isinstance(r, str)] if isinstance(reasons, (list, tuple)) else None,
            "error.type": _text(attrs.get(_ERROR_TYPE), limit),
        }
        history: list[_Msg] = []
        outputs: list[_Msg] = []
        if content:
            names: dict[str, str] = {}
            system = _json_list(attrs.get(_SYSTEM), _SYSTEM, text_ok=True)
            if system:
                history.append(_Msg("system", _simple([_block(part) for part in system])))
            history += [_message(m, False, names, limit) for m in _json_list(attrs.get(_INPUT), _INPUT) or []]
            outputs = [_message(m, True, names, limit) for m in _json_list(attrs.get(_OUTPUT), _OUTPUT) or []]
        for index in range(self._unrecorded(session_id, history, len(outputs) + 1), len(history)):
            m = history[index]
            led.add_message(session_id, m.role, m.content, tool_name=m.tool_name, invocation_id=m.invocation_id,
                            event_id=f"{base}:i{index}")
        if not outputs and (tokens or not _is_error(span, attrs)):  # the carrier of the model and the usage
            outputs = [_Msg("assistant", [_placeholder() if content else _placeholder(content_dropped=True)])]
        for index, m in enumerate(outputs):
            body = m.content
            if index == 0 and any(response.values()):
                blocks = [{"type": "text", "text": body}] if isinstance(body, str) else [dict(b) for b in body]
                body = blocks or [_placeholder()]
                _mark(body[0], response={k: v for k, v in response.items() if v})
            led.add_message(session_id, m.role, body, tool_name=m.tool_name, invocation_id=m.invocation_id,
                            model=model, tokens=tokens if index == 0 else None, event_id=f"{base}:o{index}")

    def _unrecorded(self, session_id: str, history: list[_Msg], slack: int) -> int:
        """The index in ``history`` of its first message the session does not hold yet (module docstring)."""
        if not history:
            return 0
        recent = self.ledger.messages(session_id, last=len(history) + slack)
        seen = [_fingerprint(m.role, m.blocks if m.blocks is not None else m.content) for m in recent]
        wanted = [_fingerprint(m.role, m.content) for m in history]
        for size in range(min(len(seen), len(wanted)), 0, -1):
            if seen[len(seen) - size:] == wanted[:size]:
                return size  # the session ends with the first ``size`` messages
        if len(wanted) > 1:
            known = set(seen)
            for index in range(len(wanted) - 1, -1, -1):
                if wanted[index] in known:
                    return index + 1  # the head of the history changed (compacted, cut): after the last known
        return 0

    def _invocation(self, span: ReadableSpan, attrs: Mapping[str, object], session_id: str, base: str,
                    operation: str) -> None:
        assert span.context is not None
        limit = self.ledger.limits.max_name_bytes
        own = f"span:{span.context.span_id:016x}"
        if operation == _TOOL:
            tool = _text(attrs.get(_TOOL_NAME), limit) or _text(_target(span), limit) or "unknown"
            call = _text(attrs.get(_TOOL_CALL_ID), limit) or own
        else:
            model = _text(attrs.get(_RESPONSE_MODEL), limit) or _text(attrs.get(_REQUEST_MODEL), limit)
            tool, call = _text(f"embeddings {model}" if model else "embeddings", limit) or "embeddings", own
        status = "error" if _is_error(span, attrs) else "ok"
        duration, tokens, event_id = _duration(span), _usage(attrs), f"{base}:{'t' if operation == _TOOL else 'e'}"
        try:
            self.ledger.link_invocation(session_id, call, tool, duration_ms=duration, tokens=tokens, status=status,
                                        event_id=event_id)
        except InvalidInput as exc:  # the call id names another invocation already (a reused or placeholder id)
            if exc.field != "invocation_id" or call == own:
                raise
            self.ledger.link_invocation(session_id, own, tool, duration_ms=duration, tokens=tokens, status=status,
                                        event_id=event_id)

    def _agent(self, span: ReadableSpan, attrs: Mapping[str, object], session_id: str, base: str) -> None:
        limit = self.ledger.limits.max_metadata_value_bytes
        values = {key: _fit(text, limit) for key in _AGENT if (text := _text(attrs.get(key), limit))}
        if _AGENT[0] not in values and (named := _text(_target(span), limit)):
            values[_AGENT[0]] = _fit(named, limit)
        provider = _first(attrs, _PROVIDER, limit)
        if provider:
            values[_PROVIDER[0]] = _fit(provider, limit)
        if values:
            self.ledger.update_metadata(session_id, values, modified_by=INTEGRATION, event_id=f"{base}:a")
