"""The ledger speaks the providers' forms: provider-shaped messages in, the same shape out, through a real
ledger on every backend; a response recorded in one call from the SDKs' own types, built offline."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from anthropic.types import Message as AnthropicMessage
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from ledger import InvalidInput, Ledger
from tests.test_providers import CONVERSATIONS

FORMATS = ("openai-chat", "openai-responses", "anthropic")


@pytest.mark.parametrize("fmt", FORMATS)
def test_provider_shaped_messages_come_back_in_the_same_shape(ledger: Ledger, fmt: str) -> None:
    ledger.create_session("s")
    ledger.add_messages("s", CONVERSATIONS[fmt], format=fmt)
    assert ledger.conversation("s", format=fmt) == CONVERSATIONS[fmt]
    assert ledger.verify().ok


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_conversation_renders_for_every_other_provider_or_names_what_cannot_go(ledger: Ledger, fmt: str) -> None:
    ledger.create_session("s")
    ledger.add_messages("s", CONVERSATIONS[fmt], format=fmt)
    for other in FORMATS:
        try:
            assert ledger.conversation("s", format=other)  # valid input for it (checked in test_providers)
        except InvalidInput as exc:  # an image by file id has no place in Chat Completions, say
            assert exc.field and "blocks" in exc.field and other in str(exc)


def test_add_messages_is_all_or_nothing(ledger: Ledger) -> None:
    ledger.create_session("s")
    bad = [{"role": "user", "content": "first"}, {"role": "user", "content": [{"type": "text"}]}]
    with pytest.raises(InvalidInput):
        ledger.add_messages("s", bad, format="openai-chat")
    assert ledger.get_session("s").version == 1 and ledger.messages("s") == []


def test_conversation_takes_the_latest_messages_or_a_past_moment(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_messages("s", [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one"}],
                        format="openai-chat")
    ledger.add_message("s", "assistant", "two")
    assert ledger.conversation("s", format="openai-chat", last=1) == [{"role": "system", "content": "be brief"},
                                                                      {"role": "assistant", "content": "two"}]
    at = ledger.messages("s")[1].recorded_at
    assert ledger.conversation("s", format="anthropic", at=at) == {
        "system": "be brief", "messages": [{"role": "user", "content": "one"}]
    }
    with pytest.raises(InvalidInput, match="format"):
        ledger.conversation("s", format="gemini")


CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-9", "object": "chat.completion", "created": 1764500000, "model": "gpt-4.1-2025-04-14",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Checking.", "refusal": None,
        "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather",
                                                                          "arguments": '{"city":"Paris"}'}}]}}],
    "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940,
              "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
}
RESPONSE: dict[str, Any] = {
    "id": "resp_1", "object": "response", "created_at": 1764500000, "model": "o4-mini", "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need the weather."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_b", "name": "get_weather",
         "arguments": '{"city":"Paris"}', "status": "completed"},
    ],
    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    "usage": {"input_tokens": 700, "output_tokens": 90, "total_tokens": 790,
              "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
              "output_tokens_details": {"reasoning_tokens": 64}},
}
ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "The user wants Paris.", "signature": "sig=="},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 50, "output_tokens": 80, "cache_read_input_tokens": 1000,
              "cache_creation_input_tokens": 20},
}


@pytest.mark.parametrize(
    ("response", "fmt", "model", "tokens"),
    [
        (ChatCompletion.model_validate(CHAT_COMPLETION), "openai-chat", "gpt-4.1-2025-04-14",
         {"input": 900, "output": 40, "cache_read": 512, "reasoning": 0}),
        (CHAT_COMPLETION, "openai-chat", "gpt-4.1-2025-04-14",
         {"input": 900, "output": 40, "cache_read": 512, "reasoning": 0}),
        (Response.model_validate(RESPONSE), "openai-responses", "o4-mini",
         {"input": 700, "output": 90, "cache_read": 0, "cache_creation": 0, "reasoning": 64}),
        (AnthropicMessage.model_validate(ANTHROPIC_MESSAGE), "anthropic", "claude-sonnet-4-5",
         {"input": 1070, "output": 80, "cache_read": 1000, "cache_creation": 20}),
    ],
    ids=["chat-sdk", "chat-dict", "responses-sdk", "anthropic-sdk"],
)
def test_a_response_is_recorded_in_one_call_with_its_tool_calls_model_and_usage(
    ledger: Ledger, response: Any, fmt: str, model: str, tokens: dict[str, int]
) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "Weather in Paris?")
    version = ledger.record_response("s", response)
    [answer] = ledger.messages("s", last=1)
    assert answer.role == "assistant" and answer.model == model and answer.tokens == tokens
    assert version == ledger.get_session("s").version
    assert answer.blocks is not None
    calls = [b for b in answer.blocks if b["type"] == "tool_call"]
    assert [(c["name"], c["id"]) for c in calls] == [("get_weather", calls[0]["id"])]
    figures = ledger.statistics("s")
    assert (figures.tokens_in, figures.tokens_out) == (tokens["input"], tokens["output"])
    request = ledger.conversation("s", format=fmt)  # handed back in the same provider's form
    assert request


def test_a_malformed_response_is_refused_and_records_nothing(ledger: Ledger) -> None:
    ledger.create_session("s")
    with pytest.raises(InvalidInput):
        ledger.record_response("s", {"object": "chat.completion", "choices": "no"})
    assert ledger.get_session("s").version == 1


def test_a_window_of_the_latest_messages_keeps_the_instructions_and_starts_where_a_provider_can(
    ledger: Ledger,
) -> None:
    ledger.create_session("s")
    ledger.add_messages("s", [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "thanks"},
    ], format="openai-chat")
    chat = ledger.conversation("s", format="openai-chat", last=3)  # the tool result would open it: skipped
    assert chat == [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "Sunny."},
                    {"role": "user", "content": "thanks"}]
    anthropic = ledger.conversation("s", format="anthropic", last=3)  # and for Anthropic a user turn opens it
    assert anthropic == {"system": "be brief", "messages": [{"role": "user", "content": "thanks"}]}
    assert ledger.conversation("s", format="openai-chat", last=0) == [{"role": "system", "content": "be brief"}]


def test_an_anthropic_conversation_without_instructions_has_no_system_key(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "hi")
    assert ledger.conversation("s", format="anthropic") == {"messages": [{"role": "user", "content": "hi"}]}


_ROLES = ("system", "developer", "user", "assistant")


def _reference_window(ledger: Ledger, session_id: str, last: int, fmt: str) -> list[dict[str, Any]]:
    """The window's rule applied to the whole conversation: the latest ``last`` messages, begun where the
    provider accepts a beginning, after every instruction that came before them."""
    from ledger.providers import to_provider

    messages = ledger.messages(session_id)
    start = max(len(messages) - last, 0)
    while start < len(messages) and (messages[start].role == "tool" or
                                     fmt == "anthropic" and messages[start].role == "assistant"):
        start += 1
    chosen = [m for m in messages[:start] if m.role in ("system", "developer")] + messages[start:]
    out = to_provider(chosen, fmt)
    if isinstance(out, dict) and out.get("system") is None:
        out.pop("system", None)
    return out  # type: ignore[return-value]


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(("say", "say", "say", "fork", "restore", "retract")),
                                st.integers(0, 40)), min_size=1, max_size=30),
       last=st.integers(0, 12), fmt=st.sampled_from(("openai-chat", "anthropic")))
def test_a_conversation_window_reads_only_what_it_returns_yet_equals_the_whole_conversation_rule(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]], last: int, fmt: str
) -> None:
    with Ledger(tmp_path_factory.mktemp("window") / "w.db") as ledger:
        current = ledger.create_session("root").session_id
        ledger.add_message(current, "system", "instructions")
        for n, (kind, k) in enumerate(steps):
            state = ledger.get_session(current)
            if kind == "say":
                ledger.add_message(current, _ROLES[k % 4], f"message {n}")
            elif kind == "fork":
                current = ledger.fork(current, new_session_id=f"fork-{n}").session_id
            elif kind == "restore" and state.version > 2:
                ledger.restore(current, version=2 + k % (state.version - 1))
            elif kind == "retract":
                messages = ledger.messages(current)
                if messages:
                    ledger.retract_message(current, position=messages[k % len(messages)].position)
        def outcome(read: Any) -> Any:
            try:
                return read()
            except InvalidInput as exc:  # a window the provider cannot take either way (no user turn yet)
                return ("refused", exc.field)

        assert outcome(lambda: ledger.conversation(current, format=fmt, last=last)) == outcome(
            lambda: _reference_window(ledger, current, last, fmt))


def test_messages_of_some_roles_only(ledger: Ledger) -> None:
    ledger.create_session("s")
    for role, text in (("system", "rules"), ("user", "hi"), ("developer", "more rules"), ("assistant", "hello")):
        ledger.add_message("s", role, text)
    assert [m.content for m in ledger.messages("s", roles=["system", "developer"])] == ["rules", "more rules"]
    assert [m.content for m in ledger.messages("s", roles=["user", "assistant"], limit=1, offset=1)] == ["hello"]
    for bad in ({"roles": "system"}, {"roles": ["nobody"]}, {"roles": ["user"], "last": 1}):
        with pytest.raises(InvalidInput) as caught:
            ledger.messages("s", **bad)
        assert caught.value.field == "roles"
