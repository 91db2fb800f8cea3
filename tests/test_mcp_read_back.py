"""``ledger mcp`` for agents that read back and steer: the reading and rewinding tools, the schemas a strict
client checks, and a session's conversation as a resource; end to end through the SDK's own stdio client
(the helpers and the ``serve`` fixture are ``tests.test_mcp``'s).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import MCPError, types

from ledger import Ledger
from ledger.events import EVENT_TYPES
from ledger.mcp_server import TOOLS, output_schema
from ledger.mcp_tools import FORMATS, USAGE_GROUPS, GetMessages, Usage
from ledger.providers import FORMATS as PROVIDER_FORMATS
from projections.analytics import GROUPS
from tests.test_mcp import Client, serve

__all__ = ["serve"]  # the fixture, used by name

JSON_TYPES = {"string", "number", "boolean", "null", "object", "array"}


# -- the schemas, as a strict client reads them -----------------------------------------------------------


def _untyped(schema: Any, where: str, *, inputs: bool) -> list[str]:
    """Every place in ``schema`` a strict checker complains about, as the MCP Inspector's Ajv (strict mode)
    and the model providers do: a schema without a single ``type`` (an ``anyOf``/``oneOf`` of typed
    branches counts), a ``type`` list, a ``$ref`` (not every client resolves one), an array without
    ``items`` (in arguments: the providers want it) and a ``format`` (Ajv without its formats plugin
    refuses to compile it)."""
    if not isinstance(schema, dict):
        return [f"{where}: {schema!r} is not a schema"]
    found = []
    if "$ref" in schema or "$defs" in schema:
        found.append(f"{where}: $ref")
    branches = schema.get("anyOf", schema.get("oneOf"))
    kind = schema.get("type")
    if branches is not None:
        for i, branch in enumerate(branches):
            found += _untyped(branch, f"{where}.anyOf[{i}]", inputs=inputs)
    elif not isinstance(kind, str):
        found.append(f"{where}: type {kind!r}")
    if kind == "array":
        if "items" in schema:
            found += _untyped(schema["items"], f"{where}[]", inputs=inputs)
        elif inputs:
            found.append(f"{where}: an array without items")
    if "format" in schema:
        found.append(f"{where}: format {schema['format']!r}")
    for name, sub in schema.get("properties", {}).items():
        found += _untyped(sub, f"{where}.{name}", inputs=inputs)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        found += _untyped(extra, f"{where}.*", inputs=inputs)
    return found


def test_every_property_of_every_schema_declares_a_type_as_a_strict_client_wants(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        listed = (await c.session.list_tools()).tools
        assert {tool.name for tool in listed} == {tool.name for tool in TOOLS}
        problems = []
        for tool in listed:
            assert tool.output_schema is not None, tool.name
            assert tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object"
            Draft202012Validator.check_schema(tool.input_schema)
            Draft202012Validator.check_schema(tool.output_schema)
            problems += _untyped(tool.input_schema, f"{tool.name} input", inputs=True)
            problems += _untyped(tool.output_schema, f"{tool.name} output", inputs=False)
        assert problems == []
        by_name = {tool.name: tool for tool in listed}
        for name in ("set_metadata", "set_data"):
            value = by_name[name].input_schema["properties"]["value"]
            assert {branch["type"] for branch in value["anyOf"]} == JSON_TYPES
            assert "value" in by_name[name].input_schema["required"]

    serve(scenario)


def test_a_free_json_value_in_a_schema_accepts_every_json_value_and_the_server_any_depth(serve: Any) -> None:
    values = ["s", 1, 2.5, True, None, {"a": [1, {"b": None}]}, [], [[1, "x"], [None]], {"deep": [[[[1]]]]}]
    schema = next(tool for tool in TOOLS if tool.name == "get_data")
    result = Draft202012Validator(output_schema(schema.result, schema.drop))
    for value in values:
        assert result.is_valid({"session_id": "s", "key": "k", "value": value})

    async def scenario(c: Client) -> None:
        listed = {tool.name: tool for tool in (await c.session.list_tools()).tools}
        argument = Draft202012Validator(listed["set_data"].input_schema)
        for value in values[:-1]:
            assert argument.is_valid({"session_id": "s", "key": "k", "value": value}), value
        await c.call("create_session", session_id="s")
        for value in [*values, [[[[[1]]]]]]:  # deeper than the schema spells out: the server takes it
            await c.call("set_data", session_id="s", key="k", value=value)
            assert (await c.call("get_data", session_id="s", key="k"))["value"] == value

    serve(scenario)


def test_the_sdk_client_checks_every_result_against_the_tools_output_schema(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        created = await c.call("create_session", session_id="s1")
        assert not {"lineage", "run_start", "hidden"} & set(created)  # internal: neither returned nor declared
        listed = {tool.name: tool for tool in (await c.session.list_tools()).tools}
        assert not {"lineage", "run_start", "hidden"} & set(listed["get_session"].output_schema["properties"])
        good = types.CallToolResult(content=[], structured_content={"session_id": "s1", "version": 2})
        await c.session.validate_tool_result("add_tags", good)
        for bad in ({"session_id": "s1"}, {"session_id": "s1", "version": "2"}):
            with pytest.raises(RuntimeError, match="Invalid structured content returned by tool add_tags"):
                await c.session.validate_tool_result(
                    "add_tags", types.CallToolResult(content=[], structured_content=bad))
        with pytest.raises(RuntimeError, match="Invalid structured content returned by tool get_messages"):
            await c.session.validate_tool_result("get_messages", types.CallToolResult(
                content=[], structured_content={"session_id": "s1", "format": None, "messages": [{"role": "user"}]}))

    serve(scenario)


def test_the_argument_choices_match_the_librarys() -> None:
    assert USAGE_GROUPS == tuple(GROUPS)
    assert Usage.model_json_schema()["properties"]["by"]["enum"] == list(GROUPS)
    fmt = GetMessages.model_json_schema()["properties"]["format"]["anyOf"][0]
    assert tuple(fmt["enum"]) == FORMATS == PROVIDER_FORMATS


# -- reading back -------------------------------------------------------------------------------------------


async def _conversation(c: Client) -> list[dict[str, Any]]:
    await c.call("create_session", session_id="s1", purpose="fix the parser")
    await c.call("add_message", session_id="s1", role="system", content="You fix parsers.")
    await c.call("add_message", session_id="s1", role="user", content="The parser drops commas.")
    await c.call("add_message", session_id="s1", role="assistant", content="Looking at the tokenizer.", model="m-1",
                 tokens={"input": 30, "output": 8})
    await c.call("add_message", session_id="s1", role="user", content="Thanks!")
    return (await c.call("get_messages", session_id="s1"))["messages"]


def test_get_messages_reads_the_conversation_whole_a_page_at_a_time_and_as_it_stood(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        messages = await _conversation(c)
        assert [(m["role"], m["content"]) for m in messages] == [
            ("system", "You fix parsers."), ("user", "The parser drops commas."),
            ("assistant", "Looking at the tokenizer."), ("user", "Thanks!")]
        third = messages[2]
        assert (third["model"], third["tokens"], third["version"], third["blocks"]) == ("m-1", {"input": 30, "output": 8}, 4,
                                                                                         None)
        assert third["position"] == 4 and third["recorded_at"]

        first = await c.call("get_messages", session_id="s1", limit=3)
        assert [m["version"] for m in first["messages"]] == [2, 3, 4] and first["next_offset"] == 3
        rest = await c.call("get_messages", session_id="s1", limit=3, offset=first["next_offset"])
        assert [m["version"] for m in rest["messages"]] == [5] and rest["next_offset"] is None
        assert "next_offset" not in await c.call("get_messages", session_id="s1")

        then = await c.call("get_messages", session_id="s1", version=3)
        assert [m["content"] for m in then["messages"]] == ["You fix parsers.", "The parser drops commas."]
        assert len((await c.call("get_messages", session_id="s1", position=4))["messages"]) == 3
        at = await c.call("get_messages", session_id="s1", at=messages[0]["recorded_at"])
        assert [m["version"] for m in at["messages"]] == [2]

        _, details = await c.fail("get_messages", session_id="nope")
        assert details["error"] == "SessionNotFound"
        text, details = await c.fail("get_messages", session_id="s1", limit=0)  # a page of none would never end
        assert text.startswith("get_messages: bad arguments: limit:") and details["field"] == "limit"
        text, _ = await c.fail("get_messages", session_id="s1", format="gemini")
        assert text.startswith("get_messages: bad arguments: format:")
        text, details = await c.fail("get_messages", session_id="s1", format="anthropic", version=2)
        assert "use last and at with it, not version" in text and details["field"] == "version"

    serve(scenario)


def test_get_messages_last_n(serve: Any) -> None:
    """Needs ``Ledger.messages(last=)`` (issue 15)."""
    async def scenario(c: Client) -> None:
        await _conversation(c)
        last = await c.call("get_messages", session_id="s1", last=2)
        assert [m["content"] for m in last["messages"]] == ["Looking at the tokenizer.", "Thanks!"]
        assert "next_offset" not in last
        then = await c.call("get_messages", session_id="s1", last=2, version=3)
        assert [m["version"] for m in then["messages"]] == [2, 3]
        _, details = await c.fail("get_messages", session_id="s1", last=2, limit=1)
        assert details["field"] == "last"

    serve(scenario)


def test_get_messages_returns_a_block_messages_blocks(serve: Any) -> None:
    """Needs ``Message.blocks`` filled in by ``Ledger.messages`` (issue 15)."""
    blocks = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_call", "id": "call-1", "name": "grep", "arguments": '{"pattern": "comma"}'},
    ]

    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="s1")
        await c.call("add_message", session_id="s1", role="user", content="Find the commas.")
        await c.call("add_message", session_id="s1", role="assistant", content=blocks, model="m-1")
        await c.call("add_message", session_id="s1", role="tool", tool_name="grep", invocation_id="call-1",
                     content=[{"type": "tool_result", "call_id": "call-1", "content": "parser.py:12"}])
        plain, asked, answered = (await c.call("get_messages", session_id="s1"))["messages"]
        assert plain["blocks"] is None and plain["content"] == "Find the commas."
        assert asked["blocks"] == blocks and asked["content"] == "Let me look."
        assert answered["blocks"][0]["call_id"] == "call-1" and answered["content"] == "parser.py:12"

    serve(scenario)


def test_get_messages_in_a_providers_format(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await _conversation(c)
        chat = await c.call("get_messages", session_id="s1", format="openai-chat")
        assert chat["format"] == "openai-chat" and "messages" not in chat
        assert chat["conversation"][0] == {"role": "system", "content": "You fix parsers."}
        assert [m["role"] for m in chat["conversation"]] == ["system", "user", "assistant", "user"]
        responses = await c.call("get_messages", session_id="s1", format="openai-responses", last=1)
        # the latest message, after the instructions that still apply to it
        assert [item["role"] for item in responses["conversation"]] == ["system", "user"]
        anthropic = (await c.call("get_messages", session_id="s1", format="anthropic"))["conversation"]
        assert anthropic["system"] in ("You fix parsers.", [{"type": "text", "text": "You fix parsers."}])
        assert [m["role"] for m in anthropic["messages"]] == ["user", "assistant", "user"]

    serve(scenario)


def test_search_messages_finds_messages_best_first_with_a_snippet(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await _conversation(c)
        await c.call("create_session", session_id="s2")
        await c.call("add_message", session_id="s2", role="user", content="The tokenizer is slow; the tokenizer again.")
        hits = (await c.call("search_messages", query="tokenizer"))["hits"]
        assert {(h["session_id"], h["version"]) for h in hits} == {("s1", 4), ("s2", 2)}
        assert all(set(h) >= {"session_id", "position", "version", "role", "snippet", "rank"} for h in hits)
        assert hits[0]["rank"] >= hits[-1]["rank"]
        only = (await c.call("search_messages", query="parser OR tokenizer", session_id="s1", role="user", limit=5))
        assert [(h["session_id"], h["role"], h["version"]) for h in only["hits"]] == [("s1", "user", 3)]
        assert (await c.call("search_messages", query='"drops commas" -slow'))["hits"][0]["session_id"] == "s1"
        assert (await c.call("search_messages", query="nowhere"))["hits"] == []
        text, details = await c.fail("search_messages", query="   ")
        assert details["field"] == "query", text

    serve(scenario)


def test_get_statistics_and_usage_sum_up_a_session_and_the_ledger(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await _conversation(c)
        await c.call("link_invocation", session_id="s1", invocation_id="i1", tool_name="grep", duration_ms=12.0,
                     tokens={"input": 5, "output": 1}, cost=0.5)
        await c.call("link_invocation", session_id="s1", invocation_id="i2", tool_name="grep", duration_ms=8.0,
                     status="error")
        stats = await c.call("get_statistics", session_id="s1")
        assert (stats["message_count"], stats["messages_by_role"]) == (4, {"assistant": 1, "system": 1, "user": 2})
        assert stats["invocations_by_status"] == {"error": 1, "ok": 1}
        assert stats["tools"] == [{"tool_name": "grep", "count": 2, "total_duration_ms": 20.0}]
        assert (stats["tokens_in"], stats["tokens_out"], stats["estimated_cost"]) == (35, 9, 0.5)
        then = await c.call("get_statistics", session_id="s1", version=3)
        assert (then["message_count"], then["invocation_count"]) == (2, 0)

        by_tool = await c.call("usage")
        assert by_tool["by"] == "tool"
        grep = next(row for row in by_tool["rows"] if row["tool"] == "grep")
        assert (grep["invocations"], grep["cost"], grep["total_duration_ms"]) == (2, 0.5, 20.0)
        assert sum(row["messages"] for row in by_tool["rows"]) == 4
        by_day = (await c.call("usage", by="day", since="2000-01-01T00:00:00Z"))["rows"]
        assert len(by_day) == 1 and by_day[0]["sessions"] == 1
        assert (await c.call("usage", by="model", until="2000-01-01T00:00:00Z"))["rows"] == []
        text, _ = await c.fail("usage", by="week")
        assert text.startswith("usage: bad arguments: by:")

    serve(scenario)


def test_a_providers_usage_object_is_taken_as_tokens(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="s1")
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                 "prompt_tokens_details": {"cached_tokens": 40}}
        await c.call("add_message", session_id="s1", role="assistant", content="hi", tokens=usage)
        stats = await c.call("get_statistics", session_id="s1")
        assert (stats["tokens_in"], stats["tokens_out"]) == (100, 20)

    serve(scenario)


# -- steering -------------------------------------------------------------------------------------------------


def test_tags_are_added_and_removed_and_nothing_new_writes_nothing(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="s1", tags=["a"])
        assert await c.call("add_tags", session_id="s1", tags=["b", "c"]) == {"session_id": "s1", "version": 2}
        assert (await c.call("add_tags", session_id="s1", tags=["a", "b"]))["version"] == 2
        assert (await c.call("remove_tags", session_id="s1", tags=["a", "zzz"]))["version"] == 3
        assert (await c.call("remove_tags", session_id="s1", tags=["a"]))["version"] == 3
        assert sorted((await c.call("get_session", session_id="s1"))["tags"]) == ["b", "c"]
        _, details = await c.fail("add_tags", session_id="s1", tags=["d"], expected_version=1)
        assert details["error"] == "ConcurrencyError"
        text, _ = await c.fail("add_tags", session_id="s1", tags="d")
        assert text.startswith("add_tags: bad arguments: tags:")

    serve(scenario)


def test_fork_starts_a_new_session_from_a_past_state_and_leaves_the_source_alone(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        messages = await _conversation(c)
        child = await c.call("fork", session_id="s1", version=3, new_session_id="s1-retry")
        assert (child["session_id"], child["parent_id"], child["parent_version"]) == ("s1-retry", "s1", 3)
        assert child["status"] == "active" and child["purpose"] == "fix the parser"
        assert not {"lineage", "run_start", "hidden"} & set(child)
        await c.call("add_message", session_id="s1-retry", role="user", content="Try the lexer instead.")
        inherited = (await c.call("get_messages", session_id="s1-retry"))["messages"]
        assert [m["content"] for m in inherited] == [m["content"] for m in messages[:2]] + ["Try the lexer instead."]
        assert len((await c.call("get_messages", session_id="s1"))["messages"]) == 4  # the source is unchanged
        now = await c.call("fork", session_id="s1")  # from now, with an id generated
        assert now["session_id"] not in ("s1", "s1-retry") and now["parent_version"] == 5
        at = await c.call("fork", session_id="s1", at=messages[0]["recorded_at"])
        assert at["parent_version"] == 2
        _, details = await c.fail("fork", session_id="s1", new_session_id="s1-retry")
        assert details["error"] == "SessionExists"
        _, details = await c.fail("fork", session_id="nope")
        assert details["error"] == "SessionNotFound"

    serve(scenario)


def test_restore_rewinds_a_session_and_the_log_keeps_everything(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        messages = await _conversation(c)
        await c.call("set_data", session_id="s1", key="step", value=2)
        assert await c.call("restore", session_id="s1", version=3) == {"session_id": "s1", "version": 7}
        state = await c.call("get_session", session_id="s1")
        assert (state["version"], state["message_count"], state["data"]) == (7, 2, {})
        assert [m["version"] for m in (await c.call("get_messages", session_id="s1"))["messages"]] == [2, 3]
        await c.call("add_message", session_id="s1", role="user", content="Once more.")
        assert len((await c.call("get_messages", session_id="s1"))["messages"]) == 3
        again = await c.call("restore", session_id="s1", at=messages[-1]["recorded_at"])  # forward, to the end
        assert len((await c.call("get_messages", session_id="s1", version=again["version"]))["messages"]) == 4
        types_seen = [e["type"] for e in (await c.call("history", session_id="s1"))["events"]]
        assert types_seen.count("message_added") == 5 and types_seen.count("restored") == 2
        text, details = await c.fail("restore", session_id="s1")
        assert "needs a version or an at" in text and details["field"] == "version"
        _, details = await c.fail("restore", session_id="s1", version=2, expected_version=1)
        assert details["error"] == "ConcurrencyError"

    serve(scenario)


def test_history_filters_by_event_type_and_pages_on(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await _conversation(c)
        await c.call("create_session", session_id="s2")
        await c.call("add_message", session_id="s2", role="user", content="other")
        added = await c.call("history", types=["message_added"], limit=3)
        assert [(e["session_id"], e["version"]) for e in added["events"]] == [("s1", 2), ("s1", 3), ("s1", 4)]
        rest = await c.call("history", types=["message_added"], limit=3, after=added["next_after"])
        assert [(e["session_id"], e["version"]) for e in rest["events"]] == [("s1", 5), ("s2", 2)]
        assert rest["next_after"] is None
        created = await c.call("history", types=["created"], session_id="s2")
        assert [e["type"] for e in created["events"]] == ["created"]
        assert (await c.call("history", types=[]))["events"] == []
        text, details = await c.fail("history", types=["message_addded"])
        assert "'message_addded' is no event type" in text and details["field"] == "types"
        listed = {tool.name: tool for tool in (await c.session.list_tools()).tools}
        assert listed["history"].input_schema["properties"]["types"]["anyOf"][0]["items"]["enum"] == list(EVENT_TYPES)

    serve(scenario)


# -- the conversation as a resource ---------------------------------------------------------------------------


def test_a_sessions_conversation_is_a_resource(serve: Any, tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:  # more sessions than one resources/list page
        for n in range(101):
            led.create_session(f"bulk-{n:03}")

    async def scenario(c: Client) -> None:
        assert c.session.server_capabilities is not None and c.session.server_capabilities.resources is not None
        templates = (await c.session.list_resource_templates()).resource_templates
        assert [(t.uri_template, t.mime_type) for t in templates] == [("ledger://sessions/{id}/messages",
                                                                        "application/json")]
        await _conversation(c)
        read = await c.session.read_resource("ledger://sessions/s1/messages")
        (content,) = read.contents
        assert isinstance(content, types.TextResourceContents)
        assert (content.uri, content.mime_type) == ("ledger://sessions/s1/messages", "application/json")
        assert json.loads(content.text) == await c.call("get_messages", session_id="s1")

        first = await c.session.list_resources()
        assert len(first.resources) == 100 and first.next_cursor is not None
        assert first.resources[0].uri == "ledger://sessions/s1/messages"  # newest first
        assert first.resources[0].description == "fix the parser"
        second = await c.session.list_resources(params=types.PaginatedRequestParams(cursor=first.next_cursor))
        assert len(second.resources) == 2 and second.next_cursor is None
        uris = {r.uri for r in first.resources + second.resources}
        assert len(uris) == 102 and "ledger://sessions/bulk-000/messages" in uris

        with pytest.raises(MCPError, match="session 'nope' does not exist"):
            await c.session.read_resource("ledger://sessions/nope/messages")
        with pytest.raises(MCPError, match="unknown resource 'ledger://sessions/s1/data'"):
            await c.session.read_resource("ledger://sessions/s1/data")
        with pytest.raises(MCPError, match="session_id"):
            await c.session.read_resource("ledger://sessions/%20bad/messages")
        assert (await c.call("get_session", session_id="s1"))["version"] == 5  # still serving

    serve(scenario)
