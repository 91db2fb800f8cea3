"""The OpenTelemetry exporter (ledger.integrations.otel) against the real ``opentelemetry-sdk``.

Spans are made the way an instrumented agent makes them: a ``TracerProvider`` with a ``SimpleSpanProcessor``
or a ``BatchSpanProcessor`` around the exporter, a tracer, and the GenAI conventions' attribute names. The
same spans are also caught by the SDK's ``InMemorySpanExporter`` and exported again, as a retry would.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

from ledger import Ledger, Limits  # noqa: E402
from ledger.integrations.otel import CONVERSATION_ID, ExportStats, LedgerSpanExporter, session_id_for  # noqa: E402
from tests.conftest import dump, raw_sql  # noqa: E402

T0 = 1_764_500_000_000_000_000  # ns
MS = 1_000_000

SYSTEM = [{"type": "text", "content": "Answer briefly."}]
USER = {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
CALL = {"role": "assistant", "parts": [
    {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}
RESULT = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": {"temp_c": 21}}]}
ANSWER = {"role": "assistant", "parts": [{"type": "reasoning", "content": "Report it."},
                                         {"type": "text", "content": "Sunny, 21 °C."}]}


def encode(value: list[Any], form: str) -> Any:
    """An attribute's value: a JSON string, a sequence of JSON strings (one per item), or the structured value."""
    if form == "strings":
        return [json.dumps(item, ensure_ascii=False) for item in value]
    return value if form == "structured" else json.dumps(value, ensure_ascii=False)


def _keeps_structured_values() -> bool:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("probe").start_as_current_span("probe", attributes={"a": [{"b": 1}]}):
        pass
    provider.shutdown()
    return bool((memory.get_finished_spans()[0].attributes or {}).get("a"))


STRUCTURED = _keeps_structured_values()


class Agent:
    """Makes the spans of agent runs on a tracer, with times set by hand (ms after T0)."""

    def __init__(self, processor: str = "simple", *extra: SpanExporter, **options: Any) -> None:
        self.exporter = LedgerSpanExporter(options.pop("ledger"), **options)
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        for exporter in (self.exporter, self.memory, *extra):
            made = SimpleSpanProcessor(exporter) if processor == "simple" else BatchSpanProcessor(exporter)
            self.provider.add_span_processor(made)
        self.tracer = self.provider.get_tracer("test-agent")

    def span(self, name: str, attrs: dict[str, Any], start: float, end: float, parent: Any = None,
             error: str | None = None) -> trace.Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=context, attributes=attrs, start_time=T0 + int(start * MS))
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        if end >= 0:
            span.end(end_time=T0 + int(end * MS))
        return span

    def run(self, conversation: str | None = "conv-42", *, everywhere: bool = False, content: bool = True,
            form: str = "json", at: float = 0) -> None:
        """invoke_agent > chat (calls the tool) > execute_tool > chat (answers)."""
        conv = {CONVERSATION_ID: conversation} if conversation is not None else {}
        own = conv if everywhere else {}
        root = self.span("invoke_agent Weather", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Weather",
                                                  "gen_ai.agent.id": "agent-7", "gen_ai.agent.description": "Weather bot",
                                                  "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 9999,
                                                  **conv}, at, -1)

        def chat(history: list[Any], output: Any, usage: dict[str, int], start: float) -> None:
            attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1",
                                     "gen_ai.response.model": "gpt-4.1-2025-04-14", "gen_ai.response.id": f"r{start}",
                                     **{f"gen_ai.usage.{k}": v for k, v in usage.items()}, **own}
            if content:
                attrs["gen_ai.system_instructions"] = encode(SYSTEM, form)
                attrs["gen_ai.input.messages"] = encode(history, form)
                attrs["gen_ai.output.messages"] = encode([output], form)
            self.span("chat gpt-4.1", attrs, at + start, at + start + 100, root)

        chat([USER], CALL, {"input_tokens": 1200, "output_tokens": 30, "cache_read.input_tokens": 1024}, 1)
        self.span("execute_tool get_weather", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                                               "gen_ai.tool.call.id": "call_1", **own}, at + 110, at + 122.5, root)
        chat([USER, CALL, RESULT], ANSWER, {"input_tokens": 1300, "output_tokens": 40,
                                            "reasoning.output_tokens": 8, "cache_creation.input_tokens": 200}, 130)
        root.end(end_time=T0 + int((at + 300) * MS))

    def close(self) -> None:
        self.provider.shutdown()


def readable(name: str, attrs: Any, *, trace_id: int = 1, span_id: int = 1, parent: int | None = None) -> ReadableSpan:
    """A span as an exporter receives it, with attribute values no SDK would let through."""
    context = trace.SpanContext(trace_id, span_id, False)
    up = trace.SpanContext(trace_id, parent, False) if parent else None
    return ReadableSpan(name, context, up, attributes=attrs, start_time=T0, end_time=T0 + 5 * MS)


@pytest.fixture(params=["simple", "batch"])
def processor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def check_the_run(led: Ledger, sid: str = "conv-42", *, alone: bool = True) -> None:
    messages = led.messages(sid)
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Answer briefly."), ("user", "Weather in Paris?"), ("assistant", ""),
        ("tool", '{"temp_c": 21}'), ("assistant", "Report it.\nSunny, 21 °C."),
    ]
    assert messages[2].blocks is not None and messages[2].blocks[0] == {
        "type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"},
        "provider": {"otel": {"response": {"id": "r1"}}}}
    assert (messages[3].tool_name, messages[3].invocation_id) == ("get_weather", "call_1")
    assert [b["type"] for b in messages[4].blocks or []] == ["reasoning", "text"]
    assert [m.model for m in messages] == [None, None, "gpt-4.1-2025-04-14", None, "gpt-4.1-2025-04-14"]
    assert [m.tokens for m in messages if m.tokens] == [
        {"input": 1200, "output": 30, "cache_read": 1024},
        {"input": 1300, "output": 40, "cache_creation": 200, "reasoning": 8},
    ]
    figures = led.statistics(sid)
    assert (figures.message_count, figures.invocation_count, figures.invocations_by_status) == (5, 1, {"ok": 1})
    assert (figures.tokens_in, figures.tokens_out) == (2500, 70)  # the agent span's own usage is not counted
    assert (figures.tokens_cache_read, figures.tokens_cache_creation, figures.tokens_reasoning) == (1024, 200, 8)
    assert [(t.tool_name, t.count, t.total_duration_ms) for t in figures.tools] == [("get_weather", 1, 12.5)]
    by_model = {row["model"]: row for row in led.usage(by="model")}
    assert not alone or (by_model["gpt-4.1-2025-04-14"]["messages"], by_model["gpt-4.1-2025-04-14"]["tokens_in"]) == (2, 2500)
    assert led.get_session(sid).metadata == {
        "integration": "otel", CONVERSATION_ID: "conv-42", "gen_ai.agent.name": "Weather",
        "gen_ai.agent.id": "agent-7", "gen_ai.agent.description": "Weather bot", "gen_ai.provider.name": "openai"}
    request = led.conversation(sid, format="openai-chat")
    assert [m["role"] for m in request] == ["system", "user", "assistant", "tool", "assistant"]
    assert request[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}


# -- a whole run ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("everywhere", [False, True], ids=["id-on-the-agent-span", "id-on-every-span"])
def test_a_whole_agent_run_lands_as_one_session(ledger: Ledger, processor: str, everywhere: bool) -> None:
    agent = Agent(processor, ledger=ledger)
    agent.run(everywhere=everywhere)
    agent.close()
    check_the_run(ledger)
    assert agent.exporter.stats == ExportStats(recorded=4, skipped=0, ignored=0, failed=0, degraded=0, pending=0)
    with raw_sql(ledger) as sql:
        rows = sql.execute(
            'SELECT "gen_ai.operation.name", "gen_ai.conversation.id", "gen_ai.response.model", "gen_ai.tool.name",'
            ' "gen_ai.tool.call.id", "gen_ai.usage.input_tokens" FROM otel_gen_ai ORDER BY position').fetchall()
    assert [tuple(r) for r in rows] == [
        ("chat", "conv-42", None, None, None, None), ("chat", "conv-42", None, None, None, None),
        ("chat", "conv-42", "gpt-4.1-2025-04-14", None, None, 1200),
        ("execute_tool", "conv-42", None, "get_weather", "call_1", None),
        ("chat", "conv-42", None, "get_weather", "call_1", None),
        ("chat", "conv-42", "gpt-4.1-2025-04-14", None, None, 1300),
    ]


@pytest.mark.parametrize("form", ["strings", "structured"])
def test_content_as_json_strings_or_structured_values_reads_the_same(ledger: Ledger, form: str) -> None:
    agent = Agent(ledger=ledger)
    agent.run(form=form)
    agent.close()
    if form == "structured" and not STRUCTURED:
        # This SDK drops structured attribute values before the exporter sees them (1.44 does, 1.45 keeps
        # them): the spans still land, with their model, usage and tools, and nothing fails.
        assert agent.exporter.failed == 0 and agent.exporter.recorded > 0
        assert ledger.statistics("conv-42").tokens_in > 0
        return
    check_the_run(ledger)


def test_exporting_the_same_spans_again_changes_nothing(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)
    agent.run()
    agent.run(conversation="conv-43", everywhere=True, at=1000)
    spans = agent.memory.get_finished_spans()
    before = dump(ledger)
    assert agent.exporter.export(spans) is SpanExportResult.SUCCESS  # the same exporter
    fresh = LedgerSpanExporter(ledger)  # as after a restart: nothing in memory
    assert fresh.export(spans) is SpanExportResult.SUCCESS
    assert fresh.export(list(reversed(spans))) is SpanExportResult.SUCCESS
    assert dump(ledger) == before
    check_the_run(ledger, alone=False)
    agent.close()


def test_later_turns_append_only_what_is_new(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)
    agent.run()

    def said(role: str, text: str) -> dict[str, Any]:
        return {"role": role, "parts": [{"type": "text", "content": text}]}

    def chat(history: list[Any], answer: str, at: float) -> None:
        agent.span("chat gpt-4.1", {"gen_ai.operation.name": "chat", CONVERSATION_ID: "conv-42",
                                    "gen_ai.input.messages": json.dumps(history),
                                    "gen_ai.output.messages": json.dumps([said("assistant", answer)])}, at, at + 1)

    first = [USER, CALL, RESULT, ANSWER, said("user", "And tomorrow?")]
    chat(first, "Rain.", 1000)  # the whole history again (without the system instructions this time)
    chat([said("user", "And after?")], "Snow.", 2000)  # server-side state: only the new input
    window = [*first[2:], said("assistant", "Rain."), said("user", "And after?"), said("assistant", "Snow."),
              said("user", "Thanks")]
    chat(window, "Welcome.", 3000)  # a window: the head of the history cut away
    compacted = [said("user", "Summary: weather talk."), said("user", "Thanks"), said("assistant", "Welcome."),
                 said("user", "Bye")]
    chat(compacted, "Bye.", 4000)  # the head replaced by a summary
    agent.close()
    assert [m.content for m in ledger.messages("conv-42")][5:] == [
        "And tomorrow?", "Rain.", "And after?", "Snow.", "Thanks", "Welcome.", "Bye", "Bye."]


def test_without_captured_content_each_chat_is_a_hidden_message_with_model_and_usage(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)
    agent.run(content=False)
    agent.close()
    messages = ledger.messages("conv-42")
    assert [(m.role, m.content, m.model) for m in messages] == [("assistant", "", "gpt-4.1-2025-04-14")] * 2
    assert messages[0].blocks == [{"type": "text", "text": "", "provider": {"otel": {"placeholder": True,
                                                                                       "response": {"id": "r1"}}}}]
    assert ledger.conversation("conv-42", format="openai-chat") == []
    figures = ledger.statistics("conv-42")
    assert (figures.tokens_in, figures.tokens_out, figures.invocation_count) == (2500, 70, 1)


# -- which conversation ---------------------------------------------------------------------------------------


def test_spans_without_a_conversation_id_are_skipped_and_counted(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)
    empty = dump(ledger)
    agent.run(conversation=None)  # three GenAI children wait for the agent span, which names nothing either
    agent.span("chat gpt-4.1", {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5}, 0, 1)
    agent.span("GET /health", {"http.request.method": "GET"}, 0, 1)  # no GenAI operation at all
    agent.span("retrieval docs", {"gen_ai.operation.name": "retrieval", CONVERSATION_ID: "c"}, 0, 1)
    agent.close()
    assert agent.exporter.stats == ExportStats(recorded=0, skipped=5, ignored=2, failed=0, degraded=0, pending=0)
    assert agent.exporter.skipped == 5 and agent.exporter.failed == 0
    assert dump(ledger) == empty


def test_waiting_spans_are_bounded_and_skipped_at_shutdown(tmp_path: Any) -> None:
    exporter = LedgerSpanExporter(str(tmp_path / "owned.db"), max_pending=2)
    chats = [readable("chat m", {"gen_ai.operation.name": "chat"}, trace_id=t, span_id=t, parent=99) for t in (1, 2, 3)]
    assert exporter.export(chats) is SpanExportResult.SUCCESS
    assert (exporter.pending, exporter.skipped) == (2, 1)  # the oldest trace gave up
    exporter.export([readable("invoke_agent a", {"gen_ai.operation.name": "invoke_agent", CONVERSATION_ID: "c"},
                              trace_id=3, span_id=30)])
    assert (exporter.pending, exporter.recorded) == (1, 2)
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert (exporter.pending, exporter.skipped) == (0, 2)
    assert exporter.export(chats) is SpanExportResult.FAILURE and exporter.force_flush() is False
    with Ledger(str(tmp_path / "owned.db")) as again:  # closed by the exporter that opened it, and readable
        assert again.statistics("c").message_count == 1 and again.get_session("c").metadata["gen_ai.agent.name"] == "a"


@pytest.mark.parametrize("conversation", ["thread 42/ü", "x" * 300, "...", 12345])
def test_conversation_ids_the_ledger_refuses_are_mapped_and_kept(ledger: Ledger, conversation: Any) -> None:
    exporter = LedgerSpanExporter(ledger, user_id="alice")
    span = readable("chat m", {"gen_ai.operation.name": "chat", CONVERSATION_ID: conversation, "user.id": "bob"})
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    sid = session_id_for(str(conversation))
    assert sid == str(conversation) or (len(sid) <= 128 and sid != session_id_for(str(conversation) + "!"))
    session = ledger.get_session(sid)
    assert session.metadata[CONVERSATION_ID] == str(conversation) and session.user_id == "alice"


def test_other_attributes_can_name_the_conversation(ledger: Ledger) -> None:
    exporter = LedgerSpanExporter(ledger, conversation_keys=("session.id", CONVERSATION_ID), tags=["otel"])
    exporter.export([readable("chat m", {"gen_ai.operation.name": "chat", "session.id": "s-1", "user.id": "bob"})])
    assert (ledger.get_session("s-1").user_id, ledger.get_session("s-1").tags) == ("bob", ("otel",))
    with pytest.raises(TypeError):
        LedgerSpanExporter(ledger, conversation_keys="session.id")


# -- tools, agents, embeddings ---------------------------------------------------------------------------------


def test_a_failed_tool_is_an_error_invocation_and_a_reused_call_id_gets_the_span_id(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.call.id": "<not specified>", CONVERSATION_ID: "c"}
    agent.span("execute_tool search", tool, 0, 40, error="TimeoutError")
    agent.span("execute_tool search", tool, 50, 60)
    agent.span("execute_tool", {**tool, "gen_ai.tool.call.id": 7}, 70, 71)  # neither name nor call id
    agent.close()
    links = [e.payload for e in ledger.history("c") if e.type == "invocation_linked"]
    assert [(p.tool_name, p.status, p.duration_ms) for p in links] == [
        ("search", "error", 40.0), ("search", "ok", 10.0), ("unknown", "ok", 1.0)]
    assert links[0].invocation_id == "<not specified>" and links[1].invocation_id.startswith("span:")
    assert ledger.statistics("c").invocations_by_status == {"error": 1, "ok": 2}


def test_embeddings_are_an_invocation_with_their_tokens_and_other_operations_are_ignored(ledger: Ledger) -> None:
    exporter = LedgerSpanExporter(ledger)
    spans = [readable("embeddings te-3", {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "te-3",
                                          "gen_ai.usage.input_tokens": 64, CONVERSATION_ID: "c"}),
             readable("plan", {"gen_ai.operation.name": "plan", CONVERSATION_ID: "c"}, span_id=2)]
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    figures = ledger.statistics("c")
    assert (figures.tools_used, figures.tokens_in, figures.message_count) == (("embeddings te-3",), 64, 0)
    assert (exporter.recorded, exporter.ignored) == (1, 1)


# -- never an error --------------------------------------------------------------------------------------------


MALFORMED: list[Any] = [
    {"gen_ai.input.messages": "{not json", "gen_ai.usage.input_tokens": "12"},
    {"gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": "text"}])},
    {"gen_ai.output.messages": json.dumps([5])},
    {"gen_ai.output.messages": "[" * 100_000},
    {"gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "x" * 300}]}])},
    {"gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": NaN}]}]'},
    {"gen_ai.usage.input_tokens": -3, "gen_ai.usage.output_tokens": 2**70, "gen_ai.usage.cache_read.input_tokens": 9},
    {"gen_ai.usage.input_tokens": True, "gen_ai.usage.output_tokens": 1.5, "gen_ai.request.model": b"\xff"},
    {"gen_ai.usage.input_tokens": 5, "gen_ai.usage.cache_read.input_tokens": 9, "gen_ai.response.model": "m" * 999},
    {"gen_ai.input.messages": ({"role": 3, "parts": ({"type": "blob", "modality": "image", "content": b"\x89PNG"},
                                                      {"type": "tool_call", "name": 1}, 7, {"no": "type"})},),
     "gen_ai.response.finish_reasons": "stop"},
    {"gen_ai.system_instructions": "plain text, not JSON", "gen_ai.input.messages": json.dumps({"role": "user",
                                                                                              "content": "old"})},
    {"gen_ai.input.messages": object(), "gen_ai.operation.name": "chat", CONVERSATION_ID: ["a", "b"]},
]


def test_malformed_attribute_values_never_raise(ledger: Ledger) -> None:
    exporter = LedgerSpanExporter(ledger)
    small = Limits(max_content_bytes=256)
    spans = [readable("chat m", {"gen_ai.operation.name": "chat", CONVERSATION_ID: "c", **attrs}, trace_id=n + 1)
             for n, attrs in enumerate(MALFORMED)]
    spans.append(ReadableSpan("chat m", None, attributes={"gen_ai.operation.name": "chat", CONVERSATION_ID: "c"}))
    with Ledger(":memory:", limits=small) as tight:
        capped = LedgerSpanExporter(tight)
        assert capped.export(spans) is SpanExportResult.FAILURE  # the span without a context
        assert (capped.recorded, capped.skipped, capped.failed) == (len(MALFORMED) - 1, 1, 1)
        assert capped.degraded == 7 and tight.statistics("c").message_count >= len(MALFORMED) - 1
    assert exporter.export(spans) is SpanExportResult.FAILURE
    messages = ledger.messages("c")
    assert messages[0].tokens == {"input": 12} and {"input": 5} in [m.tokens for m in messages]
    images = [b for m in messages for b in m.blocks or [] if b["type"] == "image"]
    assert images == [{"type": "image", "data": "iVBORw==", "media_type": "application/octet-stream",
                       "provider": {"otel": {"item": {"role": 3}}}}]  # an unknown role: user, the given one kept
    assert exporter.degraded == 5 and exporter.failed == 1


TEXT = st.text(st.characters(exclude_categories=[]), max_size=8)  # lone surrogates included
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "tool_call", "tool_call_response", "reasoning", "blob",
                                                       "file", "uri", "compaction", "x"])},
                             optional={"content": JSON, "id": JSON, "name": JSON, "arguments": JSON, "response": JSON,
                                       "mime_type": JSON, "modality": JSON, "file_id": JSON, "uri": JSON})
MESSAGE = st.fixed_dictionaries({"role": JSON | st.sampled_from(["user", "assistant", "tool", "system"]),
                                 "parts": st.lists(PART, max_size=3) | JSON}, optional={"name": JSON})
VALUE = (JSON | st.binary(max_size=4) | st.tuples(JSON, JSON)
         | st.lists(MESSAGE, max_size=3).map(lambda m: json.dumps(m, allow_nan=True)) | st.lists(MESSAGE, max_size=2))
KEYS = ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.request.model",
        "gen_ai.response.model", "gen_ai.tool.name", "gen_ai.tool.call.id", "gen_ai.agent.name", "error.type",
        "gen_ai.response.finish_reasons", "user.id", *(f"gen_ai.usage.{k}" for k in (
            "input_tokens", "output_tokens", "cache_read.input_tokens", "cache_creation.input_tokens",
            "reasoning.output_tokens", "prompt_tokens"))]
SPAN = st.tuples(
    st.sampled_from(["chat", "generate_content", "execute_tool", "invoke_agent", "embeddings", "retrieval", None]),
    st.none() | st.sampled_from(["c1", "c 2", "", "."]) | st.integers() | TEXT,
    st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=5),
    st.integers(1, 3), st.none() | st.integers(1, 4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SPAN, min_size=1, max_size=6))
def test_any_attributes_are_recorded_skipped_or_ignored_and_never_raise(specs: list[Any]) -> None:
    spans = []
    for n, (operation, conversation, attrs, trace_id, parent) in enumerate(specs, 1):
        given_attrs = {**attrs, **({"gen_ai.operation.name": operation} if operation else {}),
                       **({CONVERSATION_ID: conversation} if conversation is not None else {})}
        spans.append(readable(f"{operation} x", given_attrs, trace_id=trace_id, span_id=n, parent=parent))
    with Ledger(":memory:") as led:
        exporter = LedgerSpanExporter(led, max_pending=3)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        # Again: a span skipped the first time may now know its trace's conversation; after that, nothing new.
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        before = dump(led)
        assert exporter.export(spans) is SpanExportResult.SUCCESS and dump(led) == before
        exporter.shutdown()
        stats = exporter.stats
        assert stats.failed == 0 and stats.recorded + stats.skipped + stats.ignored == 3 * len(spans)


def test_a_closed_session_fails_the_export_without_raising(ledger: Ledger) -> None:
    exporter = LedgerSpanExporter(ledger)
    chat = {"gen_ai.operation.name": "chat", CONVERSATION_ID: "c"}
    exporter.export([readable("chat m", chat)])
    ledger.complete_session("c")
    assert exporter.export([readable("chat m", chat, span_id=2)]) is SpanExportResult.FAILURE
    assert exporter.export([readable("chat m", chat)]) is SpanExportResult.SUCCESS  # the first, again: a no-op
    assert (exporter.recorded, exporter.failed) == (2, 1)


def test_concurrent_exports_from_many_threads_all_land(ledger: Ledger, processor: str) -> None:
    agent = Agent(processor, ledger=ledger)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            agent.run(conversation=f"conv-{n}", at=n * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    agent.close()
    assert errors == [] and agent.exporter.stats.recorded == 32
    for n in range(8):
        assert ledger.statistics(f"conv-{n}").message_count == 5


def test_the_exporter_is_an_sdk_span_exporter() -> None:
    assert issubclass(LedgerSpanExporter, SpanExporter)



def test_a_span_ended_inside_the_callers_batch_joins_it(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)
    with ledger.batch():
        ledger.create_session("conv-42", metadata={"integration": "otel", CONVERSATION_ID: "conv-42"})
        agent.run()  # SimpleSpanProcessor: exported on this thread, inside the batch
    agent.close()
    check_the_run(ledger)


def test_threads_ending_spans_inside_their_own_batches_do_not_deadlock(ledger: Ledger) -> None:
    agent = Agent(ledger=ledger)

    def work(n: int) -> None:  # even workers end their spans inside a batch; odd ones export outside any
        for turn in range(3):
            with ledger.batch() if n % 2 == 0 else contextlib.nullcontext():
                ledger.set_metadata("shared", f"worker-{n}", turn)
                agent.run(conversation=f"conv-{n}", at=(n * 10 + turn) * 1000)

    ledger.create_session("shared")
    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    agent.close()
    assert agent.exporter.stats.recorded == 4 * 3 * 4 and agent.exporter.failed == 0


def test_a_span_recorded_under_another_conversation_stays_there(ledger: Ledger) -> None:
    chat = readable("chat m", {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3}, span_id=2, parent=9)
    first, second = (readable("invoke_agent a", {"gen_ai.operation.name": "invoke_agent", CONVERSATION_ID: name},
                              span_id=n) for n, name in ((1, "c1"), (3, "c2")))
    LedgerSpanExporter(ledger).export([first, chat, second])
    before = dump(ledger)
    again = LedgerSpanExporter(ledger)  # a restart, and the trace's spans in another order: the chat now goes with c2
    assert again.export([second, chat, first]) is SpanExportResult.SUCCESS
    assert dump(ledger) == before and again.stats.failed == 0
    assert ledger.statistics("c1").tokens_in == 3 and ledger.statistics("c2").message_count == 0


def test_without_the_sdk_the_import_names_the_extra() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['opentelemetry.sdk.trace'] = None\n"
            "try:\n    import ledger.integrations.otel\nexcept Exception as exc:\n"
            "    print(type(exc).__name__, exc.extra, exc)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("MissingExtra otel ") and "session-ledger[otel]" in run.stdout


def test_something_that_is_not_a_span_is_counted_as_failed(ledger: Ledger) -> None:
    exporter = LedgerSpanExporter(ledger)
    chat = readable("chat m", {"gen_ai.operation.name": "chat", CONVERSATION_ID: "c"})
    assert exporter.export([object(), chat]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert (exporter.failed, exporter.recorded) == (1, 1)
