"""How the ADK service names its ledger sessions and records events (ledger.integrations.adk, .adk_events).

Properties: any ADK event's JSON form survives the trip through a ledger message unchanged; the ledger ids
of (app, user, session) triples are valid, readable where they can be, and never shared by two triples.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger
from ledger.integrations.adk_events import event_json, gemini_tokens, message_fields

NAME_LIMIT = 256

# JSON values as ADK's pydantic models dump them (no NaN; integers in 64 bits).
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
                                                                                   allow_infinity=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner,
                                                                                            max_size=3), max_leaves=8)
extras = st.dictionaries(st.sampled_from(["thought_signature", "video_metadata", "part_metadata"]), values, max_size=2)


def _part(kind: str, data: Any, extra: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": {"text": data},
        "thought": {"text": data, "thought": True},
        "call": {"function_call": {"name": "tool", "args": {"x": data}, "id": "c1"}},
        "call_without_args": {"function_call": {"name": "tool"}},
        "response": {"function_response": {"name": "tool", "id": "c1", "response": {"r": data}}},
        "response_without_body": {"function_response": {"name": "tool"}},
        "inline": {"inline_data": {"mime_type": "image/png", "data": "aGk="}},
        "inline_without_type": {"inline_data": {"data": "aGk="}},
        "file": {"file_data": {"file_uri": "gs://b/f", "mime_type": "application/pdf"}},
        "code": {"executable_code": {"code": str(data), "language": "PYTHON"}},
        "result": {"code_execution_result": {"outcome": "OUTCOME_OK", "output": str(data)}},
        "other": {"video_metadata": {"fps": 1.5}},
    }[kind]
    return {**extra, **body}


parts = st.builds(_part, st.sampled_from(["text", "thought", "call", "call_without_args", "response",
                                          "response_without_body", "inline", "inline_without_type", "file",
                                          "code", "result", "other"]), st.text(), extras)
events = st.fixed_dictionaries(
    {"id": st.text(min_size=1), "author": st.sampled_from(["user", "agent", "tool_agent"]),
     "invocation_id": st.text(), "timestamp": st.floats(0, 4e9),
     "actions": st.fixed_dictionaries({"state_delta": st.dictionaries(st.text(min_size=1), values, max_size=3)})},
    optional={"content": st.fixed_dictionaries({}, optional={"role": st.sampled_from(["user", "model"]),
                                                             "parts": st.lists(parts, max_size=4)}),
              "custom_metadata": st.dictionaries(st.text(), values, max_size=2),
              "usage_metadata": st.fixed_dictionaries({"prompt_token_count": st.integers(0, 10**6),
                                                       "candidates_token_count": st.integers(0, 10**6)})},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
def test_any_event_survives_the_trip_through_a_ledger_message(event: dict[str, Any]) -> None:
    fields = message_fields(event, name_limit=NAME_LIMIT)
    with Ledger(":memory:") as led:
        led.create_session("s")
        led.add_message("s", fields.role, fields.content, tool_name=fields.tool_name,
                        invocation_id=fields.invocation_id, model=fields.model, tokens=fields.tokens)
        (message,) = led.messages("s")
    assert event_json(message.blocks) == event
    assert json.dumps(event_json(fields.content), sort_keys=True) == json.dumps(event, sort_keys=True)


def test_roles_tools_and_blocks() -> None:
    call = {"author": "agent", "content": {"role": "model", "parts": [
        {"function_call": {"id": "c1", "name": "lookup", "args": {"q": "x"}}}]}}
    answer = {"author": "agent", "content": {"role": "user", "parts": [
        {"function_response": {"id": "c1", "name": "lookup", "response": {"hits": 2}}}]}}
    said = {"author": "user", "content": {"role": "user", "parts": [{"text": "hello"}]}}
    bare = {"author": "agent"}
    assert message_fields(call, name_limit=NAME_LIMIT)[:4] == (
        "assistant", [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": "x"},
                       "provider": {"adk": {"part": {"function_call": {"id": "c1", "name": "lookup"}},
                                            "field": "function_call.args", "v": 1,
                                            "event": {"author": "agent", "content": {"role": "model"}},
                                            "parts_moved": True}}}], None, None)
    role, blocks, tool, invocation = message_fields(answer, name_limit=NAME_LIMIT)[:4]
    assert (role, tool, invocation) == ("tool", "lookup", "c1")
    assert blocks[0]["type"] == "tool_result" and blocks[0]["content"] == '{"hits":2}'
    assert message_fields(said, name_limit=NAME_LIMIT).role == "user"
    assert message_fields(bare, name_limit=NAME_LIMIT).content == [
        {"type": "text", "text": "", "provider": {"adk": {"v": 1, "event": bare, "parts_moved": False}}}]
    long_name = {"author": "agent", "content": {"parts": [
        {"function_response": {"id": "c" * 300, "name": "n" * 300, "response": {}}}]}}
    assert message_fields(long_name, name_limit=NAME_LIMIT)[2:4] == (None, None)  # kept in the blocks only


def test_gemini_usage_becomes_the_ledgers_token_figures() -> None:
    assert gemini_tokens(None) is None and gemini_tokens({"total_token_count": 3}) is None
    assert gemini_tokens({"prompt_token_count": 100, "candidates_token_count": 10}) == {"input": 100, "output": 10}
    assert gemini_tokens({"prompt_token_count": 100, "tool_use_prompt_token_count": 5, "cached_content_token_count": 60,
                          "candidates_token_count": 10, "thoughts_token_count": 7}) == {
        "input": 105, "output": 17, "cache_read": 60, "reasoning": 7}
    # Inconsistent or odd figures are left out rather than refused: an event is never lost to its usage.
    assert gemini_tokens({"prompt_token_count": 10, "cached_content_token_count": 60, "candidates_token_count": -1,
                          "thoughts_token_count": True}) == {"input": 10, "output": 0}


def test_a_message_written_without_the_layout_is_not_taken_for_an_event() -> None:
    assert event_json(None) is None and event_json([]) is None
    assert event_json([{"type": "text", "text": "hi"}]) is None
    assert event_json([{"type": "text", "text": "", "provider": {"adk": {"v": 99, "event": {}}}}]) is None


# -- ledger ids ---------------------------------------------------------------------------------------------

pytest.importorskip("google.adk")

from ledger.integrations.adk import ledger_id_for  # noqa: E402

texts = st.text(max_size=60) | st.sampled_from(["", "a", "a:b", "a.3A", ".", "my_app", "user-1", "é", "a" * 130])


def test_ids_are_readable_where_they_can_be() -> None:
    assert ledger_id_for("my_app", "user-1", "9f1c-42") == "adk:my_app:user-1:9f1c-42"
    assert ledger_id_for("my app", "a@b.c", "s/1") == "adk:my.20app:a.40b.2Ec:s.2F1"
    assert ledger_id_for("app", "user", "s", 3) == "adk:app:user:s:3"
    assert ledger_id_for("app", "üser", " s ") == "adk:app:.C3.BCser:s"  # the id stripped, as ADK strips it
    long = ledger_id_for("app", "u" * 200, "s")
    assert long.startswith("adk-h:") and len(long) == len("adk-h:") + 64


@settings(max_examples=300, deadline=None)
@given(first=st.tuples(texts, texts, texts), second=st.tuples(texts, texts, texts), number=st.integers(1, 10**6))
def test_different_sessions_never_share_a_ledger_id(first: tuple[str, str, str], second: tuple[str, str, str],
                                                    number: int) -> None:
    first = (first[0], first[1], first[2].strip())
    second = (second[0], second[1], second[2].strip())
    one, other = ledger_id_for(*first, number), ledger_id_for(*second)
    assert (one == other) == (first == second and number == 1)
    assert len(one) <= 128 and all(ch.isascii() and (ch.isalnum() or ch in "._:-") for ch in one)


@settings(max_examples=50, deadline=None)
@given(triple=st.tuples(texts, texts, texts))
def test_every_id_is_one_the_ledger_takes(triple: tuple[str, str, str]) -> None:
    with Ledger(":memory:") as led:
        led.create_session(ledger_id_for(*triple, 7))


def test_without_google_adk_the_import_names_the_extra() -> None:
    code = (
        "import sys\nsys.modules['google.adk'] = None\nfrom ledger import MissingExtra\n"
        "try:\n    import ledger.integrations.adk\nexcept MissingExtra as exc:\n"
        "    print(exc.extra, isinstance(exc, ImportError), exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("adk True") and "pip install 'session-ledger[adk]'" in proc.stdout, proc.stderr
    assert "ledger.integrations.adk_events" not in proc.stderr
