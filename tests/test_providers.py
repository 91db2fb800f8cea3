"""The provider conversion layer: realistic conversations round-trip through the canonical model for each
format, render validly for the other formats, and what a format cannot represent is refused by name."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ledger.errors import InvalidInput
from ledger.providers import FORMATS, NewMessage, from_provider, to_provider
from tests.test_providers_helpers import assert_sdk_valid, stored

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="


def round_trip(x: Any, fmt: str) -> Any:
    return to_provider(stored(from_provider(x, fmt)), fmt)


# --- realistic conversations, one per format ------------------------------------------------------------

CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a travel assistant. Use the tools for live data."},
    {"role": "developer", "content": [{"type": "text", "text": "Answer in metric units."}]},
    {
        "role": "user",
        "name": "alice",
        "content": [
            {"type": "text", "text": "What's the weather where these photos were taken?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/eiffel.jpg", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "trip.pdf"}},
            {"type": "file", "file": {"file_id": "file-abc123"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_paris",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {
                "id": "call_london",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "London"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_paris", "content": "18°C, sunny"},
    {
        "role": "tool",
        "tool_call_id": "call_london",
        "content": [{"type": "text", "text": "error: weather service unavailable"}],
    },
    {"role": "assistant", "content": "Paris is 18°C and sunny. I could not get London's weather."},
    {"role": "user", "content": "Thanks! Can you book me a flight with my card 4111-1111?"},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't handle card numbers."}]},
    {"role": "user", "content": [{"type": "text", "text": "OK, just list flights then."}]},
    {"role": "assistant", "content": "Here are three flights: ...", "refusal": "Not booking."},
]

RESPONSES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a travel assistant."},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer in metric units."}]},
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What's the weather where these photos were taken?"},
            {"type": "input_image", "image_url": "https://example.com/eiffel.jpg", "detail": "high"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
            {"type": "input_image", "file_id": "file-img1", "detail": "low"},
            {"type": "input_file", "file_url": "https://example.com/trip.pdf"},
            {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "trip.pdf"},
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [
            {"type": "summary_text", "text": "The photos show Paris and London."},
            {"type": "summary_text", "text": "Call the weather tool for both."},
        ],
        "encrypted_content": "gAAAAABencrypted==",
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_paris",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
        "status": "completed",
    },
    {
        "type": "function_call",
        "id": "fc_2",
        "call_id": "call_london",
        "name": "get_weather",
        "arguments": '{"city":"London"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_paris", "output": "18°C, sunny"},
    {
        "type": "function_call_output",
        "call_id": "call_london",
        "output": [{"type": "input_text", "text": "error: unavailable"}],
    },
    {"type": "reasoning", "id": "rs_2", "summary": []},
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Paris is 18°C and sunny.", "annotations": []}],
    },
    {"role": "user", "content": "And tomorrow?"},
    {"role": "assistant", "content": "Tomorrow: 20°C."},
    {"role": "user", "content": "Book it with card 4111."},
    {
        "type": "message",
        "id": "msg_2",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "refusal", "refusal": "I can't handle card numbers."}],
    },
]

ANTHROPIC: dict[str, Any] = {
    "system": [
        {"type": "text", "text": "You are a travel assistant.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in metric units."},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's the weather where these photos were taken?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/eiffel.jpg"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "title": "trip.pdf",
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "Itinerary: Paris, London"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "Paris and London: call the tool twice.",
                    "signature": "EqQBCkYIAxgC==",
                },
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
                {"type": "text", "text": "Let me check both cities."},
                {"type": "tool_use", "id": "toolu_paris", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_london", "name": "get_weather", "input": {"city": "London"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_paris", "content": "18°C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_london",
                    "content": [{"type": "text", "text": "weather service unavailable"}],
                    "is_error": True,
                },
            ],
        },
        {"role": "assistant", "content": "Paris is 18°C and sunny; London's lookup failed."},
        {"role": "user", "content": "And tomorrow?", "cache_control_note": "kept verbatim"},
        {"role": "assistant", "content": [{"type": "text", "text": "Tomorrow: 20°C."}]},
    ],
}

CONVERSATIONS = {"openai-chat": CHAT, "openai-responses": RESPONSES, "anthropic": ANTHROPIC}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_realistic_conversation_round_trips_exactly(fmt: str) -> None:
    x = CONVERSATIONS[fmt]
    before = copy.deepcopy(x)
    assert round_trip(x, fmt) == x
    assert x == before  # the input is not mutated


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_realistic_conversations_are_valid_sdk_input(fmt: str) -> None:
    assert_sdk_valid(CONVERSATIONS[fmt], fmt)  # the fixtures themselves are well formed


@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("target", FORMATS)
def test_each_conversation_renders_validly_for_every_format(source: str, target: str) -> None:
    messages = stored(from_provider(CONVERSATIONS[source], source))
    if target == "openai-chat":  # chat has no image by file id nor file by URL: leave those messages out
        messages = [m for m in messages if not any(_chat_cannot(b) for b in m.blocks or [])]
    out = to_provider(messages, target)
    assert_sdk_valid(out, target)
    again = to_provider(stored(from_provider(out, target)), target)
    assert again == out  # a rendered conversation is itself a fixpoint of the round trip


def _chat_cannot(block: dict[str, Any]) -> bool:
    return (block["type"] == "image" and "file_id" in block) or (block["type"] == "file" and "url" in block)


# --- what the canonical messages look like --------------------------------------------------------------


def test_chat_messages_map_to_canonical_messages() -> None:
    m = from_provider(CHAT, "openai-chat")
    assert m[0] == NewMessage(role="system", content="You are a travel assistant. Use the tools for live data.")
    assert m[1] == NewMessage(role="developer", content=[{"type": "text", "text": "Answer in metric units."}])
    user = m[2].content
    assert isinstance(user, list)
    assert user[0]["provider"] == {"openai-chat": {"item": {"name": "alice"}}}
    assert user[1] == {"type": "image", "url": "https://example.com/eiffel.jpg", "detail": "high"}
    assert user[2] == {"type": "image", "data": PNG, "media_type": "image/png"}
    assert user[3] == {"type": "file", "data": PDF, "media_type": "application/pdf", "filename": "trip.pdf"}
    assert user[4] == {"type": "file", "file_id": "file-abc123"}
    calls = m[3].content
    assert isinstance(calls, list)
    assert [(b["type"], b["id"], b["name"], b["arguments"]) for b in calls] == [
        ("tool_call", "call_paris", "get_weather", '{"city":"Paris"}'),
        ("tool_call", "call_london", "get_weather", '{"city": "London"}'),
    ]
    assert m[4] == NewMessage(role="tool", content="18°C, sunny", tool_name="get_weather", invocation_id="call_paris")
    assert (m[5].role, m[5].invocation_id, m[5].tool_name) == ("tool", "call_london", "get_weather")
    assert m[6].content == "Paris is 18°C and sunny. I could not get London's weather."
    assert m[9].content == [{"type": "text", "text": "OK, just list flights then."}]  # a one-part list stays a list
    refusal = m[8].content
    assert isinstance(refusal, list)
    assert refusal[0]["text"] == "I can't handle card numbers."
    assert refusal[0]["provider"]["openai-chat"]["refusal"] == "part"
    assert all(n.model is None and n.tokens is None for n in m)


def test_responses_items_group_one_model_turn_into_one_assistant_message() -> None:
    m = from_provider(RESPONSES, "openai-responses")
    assert [x.role for x in m] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    turn = m[3].content
    assert isinstance(turn, list)
    assert [b["type"] for b in turn] == ["reasoning", "reasoning", "tool_call", "tool_call"]
    assert {k: turn[0][k] for k in ("text", "id", "redacted")} == {
        "text": "The photos show Paris and London.",
        "id": "rs_1",
        "redacted": "gAAAAABencrypted==",
    }
    assert turn[2]["id"] == "call_paris" and turn[2]["provider"]["openai-responses"]["extra"] == {
        "id": "fc_1",
        "status": "completed",
    }
    assert (m[4].invocation_id, m[4].tool_name, m[4].content) == ("call_paris", "get_weather", "18°C, sunny")
    assert m[8] == NewMessage(role="assistant", content="Tomorrow: 20°C.")
    user = m[2].content
    assert isinstance(user, list)
    assert user[3] == {"type": "image", "file_id": "file-img1", "detail": "low"}
    assert user[4] == {"type": "file", "url": "https://example.com/trip.pdf"}


def test_anthropic_messages_map_to_canonical_messages() -> None:
    m = from_provider(ANTHROPIC, "anthropic")
    assert [x.role for x in m] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    system = m[0].content
    assert isinstance(system, list) and system[0]["provider"] == {
        "anthropic": {"extra": {"cache_control": {"type": "ephemeral"}}}
    }
    user = m[1].content
    assert isinstance(user, list)
    assert user[3] == {"type": "file", "data": PDF, "media_type": "application/pdf", "filename": "trip.pdf"}
    assert user[4]["media_type"] == "text/plain"
    turn = m[2].content
    assert isinstance(turn, list)
    assert turn[0] == {
        "type": "reasoning",
        "text": "Paris and London: call the tool twice.",
        "signature": "EqQBCkYIAxgC==",
    }
    assert turn[1]["redacted"] == "EmwKAhgBEgy3va3pzix/LafPsn4a"
    assert turn[3] == {"type": "tool_call", "id": "toolu_paris", "name": "get_weather", "arguments": {"city": "Paris"}}
    results = m[3].content
    assert isinstance(results, list)
    assert results[1] == {
        "type": "tool_result",
        "call_id": "toolu_london",
        "content": [{"type": "text", "text": "weather service unavailable"}],
        "is_error": True,
    }
    assert m[4] == NewMessage(role="assistant", content="Paris is 18°C and sunny; London's lookup failed.")


def test_a_bare_list_or_a_string_system_is_accepted_by_anthropic() -> None:
    plain = [{"role": "user", "content": "hi"}]
    assert to_provider(stored(from_provider(plain, "anthropic")), "anthropic") == {"system": None, "messages": plain}
    with_system = {"system": "Be brief.", "messages": plain}
    assert round_trip(with_system, "anthropic") == with_system
    assert from_provider(with_system, "anthropic")[0] == NewMessage(role="system", content="Be brief.")


def test_a_responses_string_input_is_one_user_message() -> None:
    assert from_provider("hello", "openai-responses") == [NewMessage(role="user", content="hello")]


def test_sdk_models_are_accepted_as_input() -> None:
    from openai.types.chat import ChatCompletionMessage
    from openai.types.responses import ResponseFunctionToolCall

    chat = ChatCompletionMessage.model_validate({"role": "assistant", "content": "hi", "refusal": None})
    assert to_provider(stored(from_provider([chat], "openai-chat")), "openai-chat") == [
        {"role": "assistant", "content": "hi", "refusal": None}
    ]
    call = ResponseFunctionToolCall.model_validate(
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1", "status": "completed"}
    )
    out = to_provider(
        stored(from_provider([{"role": "user", "content": "go"}, call], "openai-responses")), "openai-responses"
    )
    assert out[1] == {
        "type": "function_call",
        "call_id": "c1",
        "name": "f",
        "arguments": "{}",
        "id": "fc_1",
        "status": "completed",
    }


def test_iterables_are_accepted_where_the_sdk_types_take_iterables() -> None:
    parts = ({"type": "text", "text": t} for t in ("a", "b"))
    out = to_provider(stored(from_provider([{"role": "user", "content": parts}], "openai-chat")), "openai-chat")
    assert out == [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


# --- rendering for another provider ---------------------------------------------------------------------


def test_chat_to_anthropic_moves_system_merges_tool_results_and_decodes_arguments() -> None:
    out = to_provider(stored(from_provider(CHAT[:7], "openai-chat")), "anthropic")
    assert out["system"] == [
        {"type": "text", "text": "You are a travel assistant. Use the tools for live data."},
        {"type": "text", "text": "Answer in metric units."},
    ]
    msgs = out["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "call_paris", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_london", "name": "get_weather", "input": {"city": "London"}},
    ]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_paris", "content": "18°C, sunny"},
        {
            "type": "tool_result",
            "tool_use_id": "call_london",
            "content": [{"type": "text", "text": "error: weather service unavailable"}],
        },
    ]
    assert "name" not in msgs[0]  # chat's participant name is a chat extra


def test_anthropic_to_chat_drops_reasoning_and_splits_tool_results() -> None:
    out = to_provider(stored(from_provider(ANTHROPIC, "anthropic")), "openai-chat")
    assert out[0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "You are a travel assistant."},
            {"type": "text", "text": "Answer in metric units."},
        ],
    }
    assistant = out[2]
    assert assistant["content"] == [{"type": "text", "text": "Let me check both cities."}]
    assert [c["function"]["arguments"] for c in assistant["tool_calls"]] == ['{"city":"Paris"}', '{"city":"London"}']
    assert out[3] == {"role": "tool", "tool_call_id": "toolu_paris", "content": "18°C, sunny"}
    assert out[4] == {
        "role": "tool",
        "tool_call_id": "toolu_london",
        "content": [{"type": "text", "text": "weather service unavailable"}],
    }
    assert "thinking" not in json.dumps(out)


def test_anthropic_reasoning_is_dropped_for_responses_and_responses_reasoning_for_anthropic() -> None:
    from_anthropic = to_provider(stored(from_provider(ANTHROPIC, "anthropic")), "openai-responses")
    assert not [i for i in from_anthropic if i.get("type") == "reasoning"]
    from_responses = to_provider(stored(from_provider(RESPONSES, "openai-responses")), "anthropic")
    assert "thinking" not in json.dumps(from_responses)
    # the turn that held only reasoning (rs_2) plus text keeps its text; roles still alternate
    assert_sdk_valid(from_responses, "anthropic")


def test_an_assistant_message_of_only_foreign_reasoning_is_left_out() -> None:
    messages = stored(
        [
            NewMessage(role="user", content="q"),
            NewMessage(role="assistant", content=[{"type": "reasoning", "text": "thinking", "signature": "s"}]),
            NewMessage(role="assistant", content="a"),
        ]
    )
    assert to_provider(messages, "openai-chat") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]
    assert to_provider(messages, "openai-responses") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]
    assert to_provider(messages, "anthropic")["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "thinking", "signature": "s"},
        {"type": "text", "text": "a"},
    ]


def test_canonical_blocks_render_for_each_provider() -> None:
    messages = stored(
        [
            NewMessage(role="developer", content="Be terse."),
            NewMessage(
                role="user",
                content=[
                    {"type": "text", "text": "look"},
                    {"type": "image", "data": PNG, "media_type": "image/png", "detail": "low"},
                    {"type": "file", "data": PDF, "media_type": "application/pdf", "filename": "a.pdf"},
                ],
            ),
            NewMessage(
                role="assistant",
                content=[
                    {"type": "text", "text": "calling"},
                    {"type": "tool_call", "id": "t1", "name": "f", "arguments": {"x": 1}},
                ],
            ),
            NewMessage(role="tool", content="done", tool_name="f", invocation_id="t1"),
        ]
    )
    chat = to_provider(messages, "openai-chat")
    assert chat[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
    }
    assert chat[1]["content"][2] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
    }
    assert chat[2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x":1}'}
    assert chat[3] == {"role": "tool", "tool_call_id": "t1", "content": "done"}
    responses = to_provider(messages, "openai-responses")
    assert responses[2:] == [
        {"role": "assistant", "content": "calling"},
        {"type": "function_call", "call_id": "t1", "name": "f", "arguments": '{"x":1}'},
        {"type": "function_call_output", "call_id": "t1", "output": "done"},
    ]
    anthropic = to_provider(messages, "anthropic")
    assert anthropic["system"] == "Be terse."
    assert anthropic["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert anthropic["messages"][0]["content"][2]["title"] == "a.pdf"
    assert anthropic["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"}],
    }
    for fmt in FORMATS:
        assert_sdk_valid(to_provider(messages, fmt), fmt)


def test_consecutive_user_messages_merge_for_anthropic() -> None:
    messages = stored(
        [NewMessage(role="user", content="a"), NewMessage(role="user", content=[{"type": "text", "text": "b"}])]
    )
    assert to_provider(messages, "anthropic")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


# --- refusals: what a format cannot represent, and malformed input --------------------------------------


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown provider format 'gemini'") as e:
        to_provider([], "gemini")
    assert e.value.field == "format"
    with pytest.raises(InvalidInput, match="unknown provider format"):
        from_provider([], "openai")


@pytest.mark.parametrize(
    ("fmt", "x", "field", "text"),
    [
        ("openai-chat", [{"role": "wizard", "content": "x"}], "messages[0].role", "unknown role"),
        ("openai-chat", [{"role": "function", "name": "f", "content": "x"}], "messages[0].role", "deprecated"),
        ("openai-chat", [{"role": "tool", "content": "x"}], "messages[0].tool_call_id", "required"),
        (
            "openai-chat",
            [{"role": "user", "content": [{"type": "video"}]}],
            "messages[0].content[0].type",
            "not supported",
        ),
        (
            "openai-chat",
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}],
            "messages[0].content[0].type",
            "system",
        ),
        (
            "openai-chat",
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}],
                }
            ],
            "messages[0].tool_calls[0].function.arguments",
            "string",
        ),
        ("openai-chat", {"role": "user", "content": "x"}, "messages", "list"),
        ("openai-chat", ["hello"], "messages[0]", "object"),
        ("openai-responses", [{"type": "web_search_call", "id": "ws"}], "input[0].type", "no canonical form"),
        ("openai-responses", [{"type": "item_reference", "id": "msg_1"}], "input[0].type", "no canonical form"),
        (
            "openai-responses",
            [{"type": "function_call", "name": "f", "arguments": "{}"}],
            "input[0].call_id",
            "required",
        ),
        ("openai-responses", [{"type": "reasoning", "summary": []}], "input[0].id", "required"),
        (
            "openai-responses",
            [{"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}],
            "input[0].content[0].type",
            "output_text",
        ),
        ("anthropic", {"system": "x"}, "messages", "required"),
        (
            "anthropic",
            [{"role": "user", "content": [{"type": "server_tool_use", "id": "s"}]}],
            "messages[0].content[0].type",
            "no canonical form",
        ),
        (
            "anthropic",
            [{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}],
            "messages[0].content[0].source.type",
            "not supported",
        ),
        (
            "anthropic",
            [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}],
            "messages[0].content[0].input",
            "object",
        ),
        ("anthropic", {"system": [{"type": "image"}], "messages": []}, "system[0].type", "text"),
    ],
)
def test_malformed_provider_input_is_refused_by_field(fmt: str, x: Any, field: str, text: str) -> None:
    with pytest.raises(InvalidInput, match=text) as e:
        from_provider(x, fmt)
    assert e.value.field == field
    assert fmt in str(e.value) and field in str(e.value)


@pytest.mark.parametrize(
    ("fmt", "message", "field", "text"),
    [
        (
            "openai-chat",
            NewMessage(role="user", content=[{"type": "image", "file_id": "f"}]),
            "messages[0].blocks[0].file_id",
            "file id",
        ),
        (
            "openai-chat",
            NewMessage(role="user", content=[{"type": "file", "url": "https://x/a.pdf"}]),
            "messages[0].blocks[0].url",
            "not a URL",
        ),
        (
            "openai-chat",
            NewMessage(role="tool", content=[{"type": "image", "url": "u"}], invocation_id="c"),
            "messages[0].blocks[0].type",
            "text only",
        ),
        (
            "openai-chat",
            NewMessage(role="user", content=[{"type": "tool_call", "id": "c", "name": "f", "arguments": "{}"}]),
            "messages[0].blocks[0].type",
            "assistant",
        ),
        ("openai-chat", NewMessage(role="tool", content="x"), "messages[0].invocation_id", "call id"),
        (
            "openai-chat",
            NewMessage(role="user", content=[{"type": "image", "data": PNG}]),
            "messages[0].blocks[0].media_type",
            "required",
        ),
        (
            "openai-responses",
            NewMessage(role="assistant", content=[{"type": "image", "url": "u"}]),
            "messages[0].blocks[0].type",
            "not image",
        ),
        (
            "openai-responses",
            NewMessage(role="user", content=[{"type": "reasoning", "text": "r"}]),
            "messages[0].blocks[0].type",
            "assistant",
        ),
        (
            "anthropic",
            NewMessage(role="user", content=[{"type": "file", "data": "AAAA", "media_type": "audio/wav"}]),
            "messages[0].blocks[0].media_type",
            "application/pdf or text/plain",
        ),
        (
            "anthropic",
            NewMessage(role="user", content=[{"type": "image", "data": "AAAA", "media_type": "image/tiff"}]),
            "messages[0].blocks[0].media_type",
            "image/jpeg",
        ),
        (
            "anthropic",
            NewMessage(role="assistant", content=[{"type": "tool_call", "id": "c", "name": "f", "arguments": "[1]"}]),
            "messages[0].blocks[0].arguments",
            "not a JSON object",
        ),
        (
            "anthropic",
            NewMessage(role="assistant", content=[{"type": "tool_call", "id": "c", "name": "f", "arguments": "{oops"}]),
            "messages[0].blocks[0].arguments",
            "not valid JSON",
        ),
        ("anthropic", NewMessage(role="assistant", content="hi"), "messages[0].role", "starts with a user message"),
        (
            "anthropic",
            NewMessage(role="system", content=[{"type": "image", "url": "u"}]),
            "messages[0].blocks[0].type",
            "text only",
        ),
        ("openai-chat", NewMessage(role="narrator", content="x"), "messages[0].role", "unknown role"),
    ],
)
def test_what_a_format_cannot_represent_is_refused_by_field(
    fmt: str, message: NewMessage, field: str, text: str
) -> None:
    with pytest.raises(InvalidInput, match=text) as e:
        to_provider(stored([message], check=False), fmt)
    assert e.value.field == field


def test_tool_result_is_error_is_dropped_for_openai_and_kept_for_anthropic() -> None:
    messages = stored(
        [
            NewMessage(role="user", content="q"),
            NewMessage(role="assistant", content=[{"type": "tool_call", "id": "c", "name": "f", "arguments": "{}"}]),
            NewMessage(
                role="user", content=[{"type": "tool_result", "call_id": "c", "content": "boom", "is_error": True}]
            ),
        ]
    )
    assert to_provider(messages, "openai-chat")[2] == {"role": "tool", "tool_call_id": "c", "content": "boom"}
    assert to_provider(messages, "openai-responses")[2] == {
        "type": "function_call_output",
        "call_id": "c",
        "output": "boom",
    }
    assert to_provider(messages, "anthropic")["messages"][2]["content"][0]["is_error"] is True


def test_extras_of_one_provider_never_leak_into_another() -> None:
    messages = stored(from_provider(ANTHROPIC, "anthropic"))
    assert "cache_control" not in json.dumps(to_provider(messages, "openai-chat"))
    assert "cache_control" not in json.dumps(to_provider(messages, "openai-responses"))
    messages = stored(from_provider(RESPONSES, "openai-responses"))
    dumped = json.dumps(to_provider(messages, "anthropic"))
    assert "fc_1" not in dumped and "msg_1" not in dumped and "ABencrypted" not in dumped


# --- edge shapes still round-trip -----------------------------------------------------------------------

_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("fmt", "x"),
    [
        ("openai-chat", [{"role": "assistant", "content": None, "audio": {"id": "audio_abc"}}]),  # no content at all
        ("openai-chat", [{"role": "assistant", "tool_calls": [_CALL]}]),  # content absent
        ("openai-chat", [{"role": "assistant", "content": [], "tool_calls": [_CALL]}]),  # content an empty list
        ("openai-chat", [{"role": "assistant", "content": "", "tool_calls": [_CALL]}]),
        ("openai-chat", [{"role": "user", "content": []}]),
        (
            "openai-chat",
            [{"role": "user", "content": [{"type": "file", "file": {"file_data": "JVBERi0=", "filename": "a.pdf"}}]}],
        ),
        (
            "openai-chat",
            [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x", "prompt_cache_breakpoint": {"mode": "explicit"}}],
                }
            ],
        ),
        ("openai-chat", [{"role": "tool", "tool_call_id": "c1", "content": "ok"}]),  # a result without its call
        (
            "openai-chat",
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}],
                }
            ],
        ),
        (
            "openai-responses",
            [{"type": "message", "role": "assistant", "id": "m", "status": "completed", "content": []}],
        ),
        (
            "openai-responses",
            [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/a.png"}]}],
        ),  # no detail
        ("openai-responses", [{"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": ""}]}]),
        (
            "openai-responses",
            [
                {
                    "type": "reasoning",
                    "id": "rs",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "raw"}],
                    "status": "completed",
                }
            ],
        ),
        (
            "openai-responses",
            [
                {"type": "custom_tool_call", "call_id": "c", "name": "sql", "input": "SELECT 1"},
                {"type": "custom_tool_call_output", "call_id": "c", "output": "1"},
            ],
        ),
        ("openai-responses", [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]),
        ("openai-responses", [{"type": "message", "role": "user", "content": "typed, with a string"}]),
        (
            "openai-responses",
            [{"role": "assistant", "content": [{"type": "input_text", "text": "as the SDK type allows"}]}],
        ),
        (
            "openai-responses",
            [{"type": "function_call_output", "call_id": "c", "output": "x", "id": "fco_1", "status": "completed"}],
        ),
        ("openai-responses", [{"type": "function_call_output", "call_id": "c", "output": []}]),
        (
            "openai-responses",
            [{"role": "user", "content": [{"type": "input_file", "file_data": "JVBERi0=", "filename": "a.pdf"}]}],
        ),
        (
            "anthropic",
            {
                "system": None,
                "messages": [{"role": "system", "content": "mid-conversation"}, {"role": "user", "content": "hi"}],
            },
        ),
        ("anthropic", {"system": [], "messages": []}),
        (
            "anthropic",
            {"system": "", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
        ),
        ("anthropic", {"system": None, "messages": [{"role": "user", "content": []}]}),
        (
            "anthropic",
            {
                "system": None,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "document", "source": {"type": "file", "file_id": "f"}, "title": None}],
                    }
                ],
            },
        ),
    ],
)
def test_edge_shapes_round_trip(fmt: str, x: Any) -> None:
    assert round_trip(x, fmt) == x


def test_a_message_with_no_content_keeps_its_extras_on_a_placeholder_that_no_format_renders() -> None:
    (m,) = from_provider([{"role": "assistant", "content": None, "audio": {"id": "audio_abc"}}], "openai-chat")
    assert m.content == [
        {
            "type": "text",
            "text": "",
            "provider": {
                "openai-chat": {"placeholder": True, "item": {"audio": {"id": "audio_abc"}}, "content": "null"}
            },
        }
    ]
    messages = stored([NewMessage(role="user", content="q"), m])
    assert to_provider(messages, "openai-responses") == [{"role": "user", "content": "q"}]
    assert to_provider(messages, "anthropic")["messages"] == [{"role": "user", "content": "q"}]


def test_anthropic_in_message_system_stays_in_place_and_others_go_to_system() -> None:
    messages = stored(
        [
            NewMessage(role="user", content="hi"),
            NewMessage(role="developer", content="Be brief."),
            NewMessage(role="assistant", content="hello"),
        ]
    )
    assert to_provider(messages, "anthropic") == {
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }
    x = {
        "system": None,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "system", "content": "note"},
            {"role": "user", "content": "b"},
        ],
    }
    assert round_trip(x, "anthropic") == x  # a system message inside messages is not merged across


def test_chat_audio_is_a_file_and_cannot_go_to_anthropic() -> None:
    x = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}}]}]
    (m,) = from_provider(x, "openai-chat")
    assert m.content == [{"type": "file", "data": "UklGRg==", "media_type": "audio/mpeg"}]
    assert round_trip(x, "openai-chat") == x
    with pytest.raises(InvalidInput, match="audio/mpeg"):
        to_provider(stored([m]), "anthropic")


def test_a_plain_text_document_is_stored_as_base64_and_renders_as_text_again() -> None:
    x = {
        "system": None,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}}
                ],
            }
        ],
    }
    (m,) = from_provider(x, "anthropic")
    assert m.content == [{"type": "file", "data": "aMOpbGxv", "media_type": "text/plain"}]
    assert round_trip(x, "anthropic") == x
    assert to_provider(stored([m]), "openai-responses")[0]["content"][0] == {
        "type": "input_file",
        "file_data": "data:text/plain;base64,aMOpbGxv",
    }


def test_a_tool_message_may_hold_tool_result_blocks_with_or_without_its_invocation_id() -> None:
    result = {"type": "tool_result", "call_id": "call-1", "content": "parser.py:12"}
    for invocation_id in ("call-1", None):
        messages = stored(
            [
                NewMessage(role="user", content="Find the commas."),
                NewMessage(
                    role="assistant", content=[{"type": "tool_call", "id": "call-1", "name": "grep", "arguments": "{}"}]
                ),
                NewMessage(role="tool", content=[result], tool_name="grep", invocation_id=invocation_id),
            ]
        )
        assert to_provider(messages, "openai-chat")[2] == {
            "role": "tool",
            "tool_call_id": "call-1",
            "content": "parser.py:12",
        }
        assert to_provider(messages, "openai-responses")[2] == {
            "type": "function_call_output",
            "call_id": "call-1",
            "output": "parser.py:12",
        }
        assert to_provider(messages, "anthropic")["messages"][2] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call-1", "content": "parser.py:12"}],
        }
    # beside the results, other blocks are the result for the message's own invocation_id
    mixed = stored([NewMessage(role="tool", content=[result, {"type": "text", "text": "own"}], invocation_id="call-2")])
    assert to_provider(mixed, "openai-chat") == [
        {"role": "tool", "tool_call_id": "call-1", "content": "parser.py:12"},
        {"role": "tool", "tool_call_id": "call-2", "content": [{"type": "text", "text": "own"}]},
    ]
    orphan = stored([NewMessage(role="tool", content=[result, {"type": "text", "text": "whose?"}])])
    for fmt in FORMATS:
        with pytest.raises(InvalidInput, match="invocation_id") as e:
            to_provider(orphan, fmt)
        assert e.value.field == "messages[0].invocation_id"
