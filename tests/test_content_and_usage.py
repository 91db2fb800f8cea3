"""Conversations as agents hold them: the developer role, content blocks, usage in every provider's form
(normalised to the OpenTelemetry GenAI names), the latest N messages, and the OpenTelemetry view."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import InvalidInput, Ledger, LimitExceeded, Limits
from ledger.tokens import TokenCounts, normalize_tokens
from tests.conftest import dump, raw_sql

BLOCKS: list[dict[str, Any]] = [
    {"type": "text", "text": "Let me look at the weather."},
    {"type": "reasoning", "text": "The user wants Paris.", "signature": "sig-1"},
    {"type": "image", "url": "https://example.com/paris.png", "detail": "low"},
    {"type": "image", "data": "iVBORw0KGgo=", "media_type": "image/png"},
    {"type": "file", "file_id": "file-123", "filename": "notes.pdf"},
    {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
    {"type": "tool_call", "id": "toolu_2", "name": "get_time", "arguments": {"tz": "Europe/Paris"},
     "provider": {"cache_control": {"type": "ephemeral"}}},
]
RESULT = [{"type": "tool_result", "call_id": "call_1", "content": [{"type": "text", "text": "sunny, 21 C"}],
           "is_error": False}]


def test_the_developer_role_is_a_role(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "developer", "Answer in French.")
    assert [(m.role, m.content) for m in ledger.messages("s")] == [("developer", "Answer in French.")]
    assert ledger.statistics("s").messages_by_role == {"developer": 1}


def test_blocks_are_stored_and_read_back_exactly_and_their_text_is_the_content(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "assistant", BLOCKS, model="gpt-4.1")
    ledger.add_message("s", "tool", RESULT, tool_name="get_weather", invocation_id="call_1")
    ledger.add_message("s", "user", "plain text stays plain")
    first, result, plain = ledger.messages("s")
    assert first.blocks == BLOCKS and [list(b) for b in first.blocks] == [list(b) for b in BLOCKS]  # key order too
    assert first.content == "Let me look at the weather.\nThe user wants Paris."
    assert result.blocks == RESULT and result.content == "sunny, 21 C"
    assert plain.blocks is None and plain.content == "plain text stays plain"
    assert ledger.get_session("s").message_count == 3


def test_the_text_of_blocks_is_searchable(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "assistant", BLOCKS)
    ledger.add_message("s", "tool", RESULT, invocation_id="call_1")
    assert [h.version for h in ledger.search_messages("paris")] == [2]  # the reasoning text
    assert [h.version for h in ledger.search_messages("sunny")] == [3]  # a tool result's text
    assert ledger.search_messages("get_weather") == []  # a tool call's name is not text


def test_blocks_travel_through_export_and_import(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a.db") as led:
        led.create_session("s")
        led.add_message("s", "assistant", BLOCKS, tokens={"input_tokens": 5, "output_tokens": 2,
                                                           "cache_read_input_tokens": 10})
        led.export(tmp_path / "out.jsonl")
        before = led.messages("s")
    with Ledger(tmp_path / "b.db") as copy:
        copy.import_events(tmp_path / "out.jsonl")
        assert copy.messages("s") == before and copy.verify().ok


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ([{"type": "text"}], ["content[0]", "needs 'text'"]),
        ([{"type": "picture", "url": "x"}], ["content[0]", "'picture'"]),
        ([{"type": "text", "text": "x", "colour": "red"}], ["content[0]", "unknown key 'colour'"]),
        ([{"type": "image"}], ["exactly one of url, file_id or data"]),
        ([{"type": "image", "url": "u", "file_id": "f"}], ["exactly one of url, file_id or data"]),
        ([{"type": "image", "data": "AAAA"}], ["media_type"]),
        ([{"type": "tool_call", "id": "c", "name": "n", "arguments": 3}], ["arguments must be a str or object"]),
        ([{"type": "tool_result", "call_id": "c", "content": [{"type": "tool_call", "id": "c", "name": "n",
                                                              "arguments": "{}"}]}], ["content[0].content[0]"]),
        ([{"type": "tool_result", "call_id": "c", "content": "x", "is_error": "no"}], ["is_error must be a bool"]),
        ([{"type": "text", "text": "x", "provider": "openai"}], ["provider must be an object"]),
        (["just a string"], ["content[0] must be a content block"]),
        ({"type": "text", "text": "x"}, ["content must be a string or a list of content blocks"]),
        (b"bytes", ["content must be a string or a list of content blocks"]),
    ],
)
def test_a_malformed_block_is_refused_naming_the_block_and_writes_nothing(
    ledger: Ledger, content: Any, words: list[str]
) -> None:
    ledger.create_session("s")
    with pytest.raises(InvalidInput) as raised:
        ledger.add_message("s", "assistant", content)
    assert raised.value.session_id == "s" and all(w in str(raised.value) for w in words), str(raised.value)
    assert ledger.get_session("s").version == 1


def test_blocks_count_against_the_content_limit() -> None:
    with Ledger(":memory:", limits=Limits(max_content_bytes=100)) as led:
        led.create_session("s")
        led.add_message("s", "user", [{"type": "text", "text": "x" * 60}])
        with pytest.raises(LimitExceeded) as raised:
            led.add_message("s", "user", [{"type": "text", "text": "x" * 60}, {"type": "text", "text": "y" * 10}])
        assert raised.value.field == "content" and raised.value.limit == 100


# -- usage ----------------------------------------------------------------------------------------------

OPENAI_CHAT = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
               "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 200, "audio_tokens": 0,
                                             "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
OPENAI_RESPONSES = {"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500,
                    "input_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 200}}
ANTHROPIC = {"input_tokens": 200, "output_tokens": 300, "cache_read_input_tokens": 900,
             "cache_creation_input_tokens": 100, "service_tier": "standard", "server_tool_use": None}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"input": 10, "output": 2}, TokenCounts(input=10, output=2)),
        ({"input": 10, "output": 2, "cache_read": 4, "reasoning": 1},
         TokenCounts(input=10, output=2, cache_read=4, reasoning=1)),
        (OPENAI_CHAT, TokenCounts(input=1200, output=300, cache_read=1000, reasoning=200)),
        (OPENAI_RESPONSES, TokenCounts(input=1200, output=300, cache_read=1000, cache_creation=0, reasoning=200)),
        ({**OPENAI_CHAT, "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 150}},
         TokenCounts(input=1200, output=300, cache_read=1000, cache_creation=150, reasoning=200)),
        # Anthropic counts cache reads and writes apart from input_tokens: the input is all three.
        (ANTHROPIC, TokenCounts(input=1200, output=300, cache_read=900, cache_creation=100)),
        ({"input_tokens": 7, "output_tokens": 1}, TokenCounts(input=7, output=1)),
        ({"input_tokens": 7, "output_tokens": 1, "cache_read_input_tokens": None}, TokenCounts(input=7, output=1)),
    ],
    ids=["ours", "ours-with-parts", "openai-chat", "openai-responses", "openai-chat-cache-writes", "anthropic", "bare",
         "anthropic-nulls"],
)
def test_every_providers_usage_is_normalised_to_the_opentelemetry_figures(given: Any, expected: TokenCounts) -> None:
    assert normalize_tokens(given) == expected


def test_the_sdks_usage_objects_are_read_as_their_dicts() -> None:
    from openai.types.completion_usage import CompletionUsage
    from openai.types.responses.response_usage import ResponseUsage

    assert normalize_tokens(CompletionUsage.model_validate(OPENAI_CHAT)) == normalize_tokens(OPENAI_CHAT)
    assert normalize_tokens(ResponseUsage.model_validate(OPENAI_RESPONSES)) == normalize_tokens(OPENAI_RESPONSES)
    from anthropic.types import Usage

    usage = Usage.model_validate(ANTHROPIC)
    assert normalize_tokens(usage) == normalize_tokens(ANTHROPIC)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"prompt_token": 1}, "tokens"),
        ({"input": 1, "prompt_tokens": 2}, "tokens"),
        ({"input": -1}, "tokens.input"),
        ({"input": 1.5}, "tokens.input"),
        ({"input": 10, "cache_read": 11}, "tokens.cache_read"),
        ({"output": 1, "reasoning": 2}, "tokens.reasoning"),
        ({"prompt_tokens": 1, "prompt_tokens_details": 5}, "tokens.prompt_tokens_details"),
        ([("input", 1)], "tokens"),
    ],
)
def test_a_usage_that_is_no_form_is_refused_naming_the_field(ledger: Ledger, given: Any, field: str) -> None:
    ledger.create_session("s")
    with pytest.raises(InvalidInput) as raised:
        ledger.add_message("s", "assistant", "hi", tokens=given)
    assert raised.value.field == field and raised.value.session_id == "s"
    assert ledger.get_session("s").version == 1


def test_cache_and_reasoning_tokens_are_counted_in_statistics_usage_and_the_views(ledger: Ledger) -> None:
    ledger.create_session("s", user_id="ann")
    ledger.add_message("s", "assistant", "a", model="gpt", tokens=OPENAI_CHAT)
    ledger.add_message("s", "assistant", "b", model="claude", tokens=ANTHROPIC)
    ledger.link_invocation("s", "i1", "search", tokens=OPENAI_RESPONSES, cost=0.1)
    figures = ledger.statistics("s")
    assert (figures.tokens_in, figures.tokens_out) == (3600, 900)
    assert (figures.tokens_cache_read, figures.tokens_cache_creation, figures.tokens_reasoning) == (2900, 100, 400)
    [row] = ledger.usage(by="user")
    assert (row["tokens_in"], row["tokens_cache_read"], row["tokens_cache_creation"], row["tokens_reasoning"]) == (
        3600, 2900, 100, 400)
    by_model = {r["model"]: r for r in ledger.usage(by="model")}
    assert by_model["claude"]["tokens_cache_creation"] == 100 and by_model[None]["tokens_reasoning"] == 200
    assert [m.tokens for m in ledger.messages("s")] == [
        {"input": 1200, "output": 300, "cache_read": 1000, "reasoning": 200},
        {"input": 1200, "output": 300, "cache_read": 900, "cache_creation": 100},
    ]
    if ledger.path == ":memory:":
        return
    with raw_sql(ledger) as sql:
        view = sql.execute("SELECT tokens_cache_read, tokens_reasoning FROM usage_by_user").fetchall()
        otel = sql.execute(
            'SELECT "gen_ai.operation.name", "gen_ai.conversation.id", "gen_ai.request.model", "gen_ai.tool.name",'
            ' "gen_ai.tool.call.id", "gen_ai.usage.input_tokens", "gen_ai.usage.cache_read.input_tokens",'
            ' "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens"'
            " FROM otel_gen_ai ORDER BY position"
        ).fetchall()
    assert [tuple(r) for r in view] == [(2900, 400)]
    assert [tuple(r) for r in otel] == [
        ("chat", "s", "gpt", None, None, 1200, 1000, None, 200),
        ("chat", "s", "claude", None, None, 1200, 900, 100, None),
        ("execute_tool", "s", None, "search", "i1", 1200, 1000, 0, 200),
    ]


def test_a_restore_or_fork_carries_the_cache_and_reasoning_totals(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "assistant", "a", tokens=OPENAI_CHAT)
    ledger.add_message("s", "assistant", "b", tokens=ANTHROPIC)
    ledger.restore("s", version=2)
    child = ledger.fork("s", new_session_id="f")
    for sid in ("s", "f"):
        figures = ledger.statistics(sid)
        assert (figures.tokens_cache_read, figures.tokens_reasoning) == (1000, 200), sid
    assert child.tokens_cache_read == 1000
    summary = {r["status"]: r for r in ledger.sessions_by_status()}
    assert summary["active"]["tokens_in"] == 2400


# -- the latest messages -------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sampled_from(["add", "add", "add", "retract", "restore", "clear"]), max_size=15),
       last=st.integers(min_value=1, max_value=8))
def test_last_n_is_the_tail_of_the_conversation_in_order(steps: list[str], last: int) -> None:
    with Ledger(":memory:") as led:
        led.create_session("s")
        for n, step in enumerate(steps):
            version = led.get_session("s").version
            if step == "add":
                led.add_message("s", "user", f"m{n}")
            elif step == "retract" and led.messages("s"):
                led.retract_message("s")
            elif step == "restore" and version > 2:
                led.restore("s", version=version - 1)
            elif step == "clear":
                led.clear_conversation("s")
        everything = led.messages("s")
        assert led.messages("s", last=last) == everything[-last:]
        assert led.messages("s", last=last, version=1) == []


def test_last_goes_with_neither_limit_nor_offset(ledger: Ledger) -> None:
    ledger.create_session("s")
    with pytest.raises(InvalidInput, match="last, or limit and offset") as raised:
        ledger.messages("s", last=2, limit=3)
    assert raised.value.field == "last"
    with pytest.raises(InvalidInput):
        ledger.messages("s", last=-1)
    assert ledger.messages("s", last=0) == []


def test_an_older_ledgers_messages_read_back_as_before(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.create_session("s")
        led.add_message("s", "user", "hello", tokens={"input": 3, "output": 1})
        before = dump(led)
    with sqlite3.connect(path) as raw:  # the read tables as version 3 of the projector left them
        raw.execute("UPDATE projector_positions SET version = 3 WHERE name = 'sessions'")
    with Ledger(path) as led:
        [m] = led.messages("s")
        assert (m.content, m.tokens, m.blocks) == ("hello", {"input": 3, "output": 1}, None)
        assert dump(led)["events"] == before["events"]
