"""parse_response over the real SDK response types, built offline from JSON shaped like the APIs' answers:
the assistant message (text, tool calls, reasoning, refusals), the model, and the usage passed through raw.
A recorded response renders back as the next request's input, unchanged."""

from __future__ import annotations

import copy
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message as AnthropicMessage
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from ledger.errors import InvalidInput
from ledger.providers import (
    NewMessage,
    RecordedResponse,
    detect_format,
    from_provider,
    parse_response,
    to_provider,
)
from tests.test_providers_helpers import assert_sdk_valid, stored

CHAT_TOOL_CALLS: dict[str, Any] = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_paris",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_london",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"London"}'},
                    },
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 43,
        "total_tokens": 125,
        "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}


def chat_completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    data = copy.deepcopy(CHAT_TOOL_CALLS)
    data["choices"][0]["message"] = message
    data["choices"][0]["finish_reason"] = finish_reason
    return data


RESPONSE: dict[str, Any] = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "o4-mini-2025-04-16",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_6820f383d7c08191846711c5df8233bc0ac5ba57aafcbac7",
            "summary": [{"type": "summary_text", "text": "**Checking the weather**\n\nThe user asked about Paris."}],
            "encrypted_content": "gAAAAABoIPOEabcdef==",
        },
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me look that up.", "annotations": [], "logprobs": []}],
        },
        {
            "type": "function_call",
            "id": "fc_67ca09c6bedc8190a7abfec07b1a1332096610f474011cc0",
            "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 123,
    },
    "user": None,
    "metadata": {},
}

ANTHROPIC: dict[str, Any] = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {
            "type": "thinking",
            "thinking": "The user wants the weather in Paris. I'll call the tool.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        {"type": "text", "text": "I'll check the current weather in Paris.", "citations": None},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "output_tokens": 89,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 128,
    },
}


# --- OpenAI Chat Completions ----------------------------------------------------------------------------


def test_a_chat_completion_with_parallel_tool_calls_is_recorded() -> None:
    completion = ChatCompletion.model_validate(CHAT_TOOL_CALLS)
    recorded = parse_response(completion)
    assert isinstance(recorded, RecordedResponse)
    assert recorded.model == "gpt-4o-2024-08-06"
    assert recorded.tokens is completion.usage  # the SDK's usage object, passed through
    (message,) = recorded.messages
    assert (message.role, message.model, message.tokens) == ("assistant", "gpt-4o-2024-08-06", completion.usage)
    assert isinstance(message.content, list)
    assert [(b["type"], b["id"], b["arguments"]) for b in message.content] == [
        ("tool_call", "call_paris", '{"city":"Paris"}'),
        ("tool_call", "call_london", '{"city":"London"}'),
    ]
    response = message.content[0]["provider"]["openai-chat"]["response"]
    assert response == {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "finish_reason": "tool_calls"}
    sent_back = to_provider(stored(recorded.messages), "openai-chat")
    assert sent_back == [
        {"role": "assistant", "content": None, "tool_calls": CHAT_TOOL_CALLS["choices"][0]["message"]["tool_calls"]}
    ]
    assert_sdk_valid(sent_back, "openai-chat")


def test_a_chat_completion_dict_is_recorded_and_its_usage_dict_passed_through() -> None:
    data = chat_completion({"role": "assistant", "content": "Paris is 18°C.", "refusal": None, "annotations": []})
    recorded = parse_response(data)
    assert recorded.tokens is data["usage"]
    (message,) = recorded.messages
    assert isinstance(message.content, list)
    assert message.content[0]["text"] == "Paris is 18°C."
    assert to_provider(stored(recorded.messages), "openai-chat") == [{"role": "assistant", "content": "Paris is 18°C."}]


def test_a_chat_refusal_is_kept_as_text_flagged_as_a_refusal() -> None:
    completion = ChatCompletion.model_validate(
        chat_completion({"role": "assistant", "content": None, "refusal": "I can't help with that."})
    )
    (message,) = parse_response(completion, "openai-chat").messages
    assert isinstance(message.content, list)
    (block,) = message.content
    assert block["text"] == "I can't help with that."
    assert block["provider"]["openai-chat"]["refusal"] == "field"
    assert to_provider(stored([message]), "openai-chat") == [
        {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    ]
    assert stored([message])[0].content == "I can't help with that."  # searchable text


def test_an_empty_chat_answer_is_an_empty_string() -> None:
    recorded = parse_response(chat_completion({"role": "assistant", "content": None}))
    assert recorded.messages[0].content == ""


def test_response_only_chat_fields_are_kept_but_not_sent_back() -> None:
    citation = {
        "type": "url_citation",
        "url_citation": {"start_index": 0, "end_index": 5, "title": "t", "url": "https://x"},
    }
    data = chat_completion({"role": "assistant", "content": "Paris", "annotations": [citation]})
    (message,) = parse_response(ChatCompletion.model_validate(data)).messages
    assert isinstance(message.content, list)
    assert message.content[0]["provider"]["openai-chat"]["response"]["message"] == {"annotations": [citation]}
    assert to_provider(stored([message]), "openai-chat") == [{"role": "assistant", "content": "Paris"}]


# --- OpenAI Responses -----------------------------------------------------------------------------------


def test_a_responses_response_is_recorded_as_one_assistant_turn() -> None:
    response = Response.model_validate(RESPONSE)
    recorded = parse_response(response)
    assert recorded.model == "o4-mini-2025-04-16"
    assert recorded.tokens is response.usage
    (message,) = recorded.messages
    assert isinstance(message.content, list)
    assert [b["type"] for b in message.content] == ["reasoning", "text", "tool_call"]
    reasoning, text, call = message.content
    assert reasoning["text"] == "**Checking the weather**\n\nThe user asked about Paris."
    assert (reasoning["id"], reasoning["redacted"]) == (
        "rs_6820f383d7c08191846711c5df8233bc0ac5ba57aafcbac7",
        "gAAAAABoIPOEabcdef==",
    )
    assert text["text"] == "Let me look that up."
    assert (call["id"], call["name"], call["arguments"]) == (
        "call_unLAR8MvFNptuiZK6K6HCy5k",
        "get_weather",
        '{"city":"Paris"}',
    )
    assert reasoning["provider"]["openai-responses"]["response"] == {"id": RESPONSE["id"], "status": "completed"}
    # the recorded turn goes back as the next request's input exactly as `input += response.output` would
    sent_back = to_provider(stored(recorded.messages), "openai-responses")
    assert sent_back == [item.model_dump(mode="json", exclude_none=True) for item in response.output]
    assert_sdk_valid(sent_back, "openai-responses")


def test_responses_output_given_as_input_items_matches_the_recorded_response() -> None:
    response = Response.model_validate(RESPONSE)
    as_input = from_provider([{"role": "user", "content": "Weather in Paris?"}, *response.output], "openai-responses")
    recorded = parse_response(RESPONSE)  # the dict form
    given, answered = as_input[1].content, recorded.messages[0].content
    assert isinstance(given, list) and isinstance(answered, list)

    def canonical(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in b.items() if k != "provider"} for b in blocks]

    assert canonical(given) == canonical(answered)
    assert to_provider(stored(as_input[1:]), "openai-responses") == to_provider(
        stored(recorded.messages), "openai-responses"
    )
    assert recorded.tokens is RESPONSE["usage"]


def test_a_responses_refusal_is_kept() -> None:
    data = copy.deepcopy(RESPONSE)
    data["output"] = [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I can't help with that."}],
        }
    ]
    (message,) = parse_response(Response.model_validate(data)).messages
    assert isinstance(message.content, list)
    assert message.content[0]["text"] == "I can't help with that."
    assert message.content[0]["provider"]["openai-responses"]["refusal"] == "part"
    assert to_provider(stored([message]), "openai-responses") == data["output"]


def test_responses_output_with_no_canonical_form_is_refused_by_name() -> None:
    data = copy.deepcopy(RESPONSE)
    data["output"].append(
        {
            "type": "web_search_call",
            "id": "ws_1",
            "status": "completed",
            "action": {"type": "search", "query": "weather"},
        }
    )
    with pytest.raises(InvalidInput, match="web_search_call") as e:
        parse_response(Response.model_validate(data))
    assert e.value.field == "response.output[3].type"


# --- Anthropic ------------------------------------------------------------------------------------------


def test_an_anthropic_message_is_recorded_with_thinking_and_tool_use() -> None:
    msg = AnthropicMessage.model_validate(ANTHROPIC)
    recorded = parse_response(msg)
    assert recorded.model == "claude-sonnet-4-5-20250929"
    assert recorded.tokens is msg.usage
    assert isinstance(recorded.tokens, anthropic.types.Usage)
    (message,) = recorded.messages
    assert isinstance(message.content, list)
    assert [b["type"] for b in message.content] == ["reasoning", "reasoning", "text", "tool_call"]
    assert message.content[0]["signature"] == ANTHROPIC["content"][0]["signature"]
    assert message.content[3]["arguments"] == {"city": "Paris"}
    assert message.content[0]["provider"]["anthropic"]["response"] == {
        "id": "msg_01Aq9w938a90dw8q",
        "stop_reason": "tool_use",
    }
    question = NewMessage(role="user", content="What's the weather in Paris?")
    sent_back = to_provider(stored([question, *recorded.messages]), "anthropic")
    content = [{k: v for k, v in b.items() if v is not None} for b in ANTHROPIC["content"]]
    assert sent_back == {
        "system": None,
        "messages": [
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": content},
        ],
    }
    assert_sdk_valid(sent_back, "anthropic")


def test_an_anthropic_text_answer_renders_for_the_other_providers_too() -> None:
    data = {**ANTHROPIC, "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn"}
    (message,) = parse_response(data).messages
    messages = stored([NewMessage(role="user", content="Weather?"), message])
    assert to_provider(messages, "openai-chat")[1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Sunny."}],
    }
    assert to_provider(messages, "openai-responses")[1] == {"role": "assistant", "content": "Sunny."}


# --- detection and bad input ----------------------------------------------------------------------------


def test_the_format_is_detected() -> None:
    assert detect_format(CHAT_TOOL_CALLS) == "openai-chat"
    assert detect_format(RESPONSE) == "openai-responses"
    assert detect_format(ANTHROPIC) == "anthropic"


def test_an_unrecognisable_response_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a ChatCompletion") as e:
        parse_response({"hello": "world"})
    assert e.value.field == "response"
    with pytest.raises(InvalidInput, match="expected a response object"):
        parse_response(["not", "a", "response"])
    with pytest.raises(InvalidInput, match="unknown provider format"):
        parse_response(CHAT_TOOL_CALLS, format="gemini")
    with pytest.raises(InvalidInput, match="response.content"):
        parse_response(CHAT_TOOL_CALLS, format="anthropic")
    with pytest.raises(InvalidInput, match="at least one choice"):
        parse_response({**CHAT_TOOL_CALLS, "choices": []})


def test_sdk_versions_used() -> None:
    # the major versions these tests were written against (the test extras allow anthropic 2.x, openai 3.x)
    assert anthropic.__version__.split(".")[0] == "2"
    assert openai.__version__.split(".")[0] == "3"
