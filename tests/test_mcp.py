"""``ledger mcp``: the MCP server, end to end through the official SDK's own stdio client.

Each test starts the server as a subprocess (``python -m ledger mcp --db PATH``) and talks to it with
``mcp.client.stdio.stdio_client`` + ``ClientSession``, under ``anyio.run`` in a plain pytest function.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

from ledger import Ledger
from ledger.events import ROLES
from ledger.mcp_server import TOOLS, input_schema

# The subprocesses the tests start directly see no LEDGER_* settings (stdio_client passes none on).
ENV = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
TOOL_NAMES = {
    "create_session", "add_message", "link_invocation", "set_metadata", "get_metadata", "remove_metadata",
    "set_data", "get_data", "add_tags", "remove_tags", "complete_session", "fork", "restore", "list_sessions",
    "get_session", "get_messages", "search_messages", "get_statistics", "usage", "history", "verify",
}
READ_ONLY = {"get_metadata", "get_data", "list_sessions", "get_session", "get_messages", "search_messages",
             "get_statistics", "usage", "history", "verify"}


class Client:
    """One connected ``ClientSession`` with helpers that check the shape of every result."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, tool: str, **arguments: Any) -> Any:
        result = await self.session.call_tool(tool, arguments)
        assert not result.is_error, result.content
        assert json.loads(result.content[0].text) == result.structured_content  # the text says the same
        return result.structured_content

    async def fail(self, tool: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
        """The message and the structured details of a call that must come back as a tool error."""
        result = await self.session.call_tool(tool, arguments)
        assert result.is_error, result.content
        return result.content[0].text, result.structured_content


def created(db: Path) -> Path:
    """``db`` as a ledger file (``ledger mcp``, like every command but init, demo and import, refuses a missing one)."""
    Ledger(db).close()
    return db


@asynccontextmanager
async def connected(db: Path, errlog: TextIO) -> AsyncIterator[Client]:
    created(db)
    params = StdioServerParameters(command=sys.executable, args=["-m", "ledger", "mcp", "--db", str(db)], cwd=str(db.parent))
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()  # the client learns each tool's output schema, and checks every result by it
        yield Client(session)


@pytest.fixture
def serve(tmp_path: Path) -> Callable[[Callable[[Client], Awaitable[None]]], None]:
    """Run ``scenario(client)`` against a fresh server on ``tmp_path/l.db``; the server must log no traceback."""
    log = tmp_path / "server.log"

    def run(scenario: Callable[[Client], Awaitable[None]]) -> None:
        async def main() -> None:
            with anyio.fail_after(30), log.open("a") as errlog:
                async with connected(tmp_path / "l.db", errlog) as client:
                    await scenario(client)

        anyio.run(main)
        assert "Traceback" not in log.read_text(), log.read_text()

    return run


def test_every_tool_is_listed_with_its_pydantic_input_schema(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        listed = {tool.name: tool for tool in (await c.session.list_tools()).tools}
        assert set(listed) == TOOL_NAMES
        for tool in TOOLS:
            schema = listed[tool.name].input_schema
            assert schema == input_schema(tool.args)
            assert set(schema["properties"]) == set(tool.args.model_fields)
            assert schema["type"] == "object" and schema["additionalProperties"] is False
            assert listed[tool.name].description
            assert listed[tool.name].annotations.read_only_hint is (tool.name in READ_ONLY)
        assert listed["add_message"].input_schema["required"] == ["session_id", "role", "content"]
        assert listed["add_message"].input_schema["properties"]["role"]["enum"] == list(ROLES)
        assert listed["add_message"].annotations.read_only_hint is False
        assert {name for name, tool in listed.items() if tool.annotations.idempotent_hint} == {
            "remove_metadata", "add_tags", "remove_tags"}

    serve(scenario)


def test_commands_record_a_session_and_get_session_reads_it_now_and_in_the_past(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        created = await c.call("create_session", session_id="s1", user_id="alice", purpose="fix login", tags=["auth"],
                               metadata={"model": "gpt"})
        assert created["session_id"] == "s1" and created["version"] == 1 and created["status"] == "active"
        assert created["tags"] == ["auth"] and created["metadata"] == {"model": "gpt"}
        assert "lineage" not in created
        assert await c.call("add_message", session_id="s1", role="user", content="Why?") == {"session_id": "s1", "version": 2}
        assert (await c.call("link_invocation", session_id="s1", invocation_id="inv-1", tool_name="grep", duration_ms=12.5,
                             tokens={"input": 30, "output": 5}, cost=0.01))["version"] == 3
        await c.call("add_message", session_id="s1", role="tool", content="auth.py:88", tool_name="grep",
                     invocation_id="inv-1")
        assert (await c.call("set_data", session_id="s1", key="step", value={"n": 1}))["version"] == 5
        assert await c.call("get_data", session_id="s1") == {"session_id": "s1", "data": {"step": {"n": 1}}}
        assert await c.call("get_data", session_id="s1", key="step") == {"session_id": "s1", "key": "step", "value": {"n": 1}}
        assert await c.call("get_data", session_id="s1", key="absent") == {"session_id": "s1", "key": "absent", "value": None}
        assert (await c.call("complete_session", session_id="s1", status="failed", reason="gave up"))["version"] == 6

        now = await c.call("get_session", session_id="s1")
        assert (now["status"], now["completion_reason"], now["message_count"], now["invocation_count"]) == ("failed", "gave up", 2, 1)
        assert (now["tokens_in"], now["tokens_out"], now["tools_used"]) == (30, 5, ["grep"])
        then = await c.call("get_session", session_id="s1", version=2)
        assert (then["version"], then["status"], then["message_count"]) == (2, "active", 1)
        at_creation = await c.call("get_session", session_id="s1", at=created["created_at"])
        assert at_creation["version"] == 1
        assert (await c.call("get_session", session_id="s1", position=3))["version"] == 3
        generated = await c.call("create_session")
        assert generated["session_id"] and generated["session_id"] != "s1"

    serve(scenario)


def test_metadata_tools_set_get_and_remove_keys_even_after_completion(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="s1", metadata={"model": "gpt"})
        await c.call("complete_session", session_id="s1")
        assert (await c.call("set_metadata", session_id="s1", key="score", value=[1, 2.5, None], modified_by="judge"))["version"] == 3
        assert await c.call("get_metadata", session_id="s1") == {"session_id": "s1", "metadata": {"model": "gpt", "score": [1, 2.5, None]}}
        assert (await c.call("get_metadata", session_id="s1", key="score"))["value"] == [1, 2.5, None]
        assert (await c.call("remove_metadata", session_id="s1", key="model"))["version"] == 4
        assert (await c.call("remove_metadata", session_id="s1", key="model"))["version"] == 4  # absent: nothing written
        assert (await c.call("get_metadata", session_id="s1"))["metadata"] == {"score": [1, 2.5, None]}

    serve(scenario)


def test_list_sessions_filters_pages_and_includes_each_sessions_metadata(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="a", user_id="alice", tags=["x", "y"], metadata={"role": "planner"})
        await c.call("create_session", session_id="b", user_id="bob", tags=["x"], metadata={"role": "coder", "starred": True})
        await c.call("add_message", session_id="b", role="user", content="refactor the parser")
        await c.call("complete_session", session_id="a")

        everything = await c.call("list_sessions")
        assert [s["session_id"] for s in everything["sessions"]] == ["b", "a"] and everything["cursor"] is None
        assert {s["session_id"]: s["metadata"] for s in everything["sessions"]} == {
            "a": {"role": "planner"}, "b": {"role": "coder", "starred": True}}

        async def ids(**filters: Any) -> list[str]:
            return [s["session_id"] for s in (await c.call("list_sessions", **filters))["sessions"]]

        assert await ids(status="completed") == ["a"]
        assert await ids(status=["active", "completed"], descending=False) == ["a", "b"]
        assert await ids(user_id="bob") == ["b"]
        assert await ids(tags=["x", "y"]) == ["a"]
        assert await ids(any_tags=["y", "z"]) == ["a"]
        assert await ids(metadata={"role": "coder"}) == ["b"]
        assert await ids(metadata_keys=["starred"]) == ["b"]
        assert await ids(text="parser") == ["b"]
        assert await ids(created_after="2000-01-01T00:00:00+00:00") == ["b", "a"]
        first = await c.call("list_sessions", limit=1)
        second = await c.call("list_sessions", limit=1, cursor=first["cursor"])
        assert [s["session_id"] for s in first["sessions"] + second["sessions"]] == ["b", "a"] and second["cursor"] is None

    serve(scenario)


def test_history_pages_through_the_events_and_verify_checks_the_chain(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="s1")
        await c.call("create_session", session_id="s2")
        await c.call("add_message", session_id="s1", role="user", content="hi")
        own = await c.call("history", session_id="s1")
        assert [(e["position"], e["type"]) for e in own["events"]] == [(1, "created"), (3, "message_added")]
        assert own["events"][1]["payload"]["content"] == "hi" and own["next_after"] is None
        page = await c.call("history", limit=2)
        assert [e["position"] for e in page["events"]] == [1, 2] and page["next_after"] == 2
        rest = await c.call("history", after=page["next_after"], limit=2)
        assert [e["position"] for e in rest["events"]] == [3] and rest["next_after"] is None

        report = await c.call("verify")
        assert report["ok"] is True and report["checked"] == 3 and report["head"]["position"] == 3
        assert report["head"]["hash"] == rest["events"][-1]["hash"]
        assert (await c.call("verify", digest=report["head"]))["ok"] is True
        rewritten = await c.call("verify", digest={"position": 2, "hash": "0" * 64})
        assert rewritten["ok"] is False and rewritten["first_bad_position"] == 2

    serve(scenario)


def test_bad_arguments_and_ledger_errors_are_tool_errors_and_the_server_keeps_serving(serve: Any) -> None:
    async def scenario(c: Client) -> None:
        await c.call("create_session", session_id="s1")
        head = (await c.call("verify"))["head"]

        text, details = await c.fail("add_message", session_id="s1", role="user", content=5, colour="red")
        assert text.startswith("add_message: bad arguments:") and "content" in text and "colour" in text
        assert (details["error"], details["field"]) == ("InvalidInput", "content")
        text, _ = await c.fail("add_message", session_id="s1")
        assert "role: field required" in text and "content: field required" in text
        text, _ = await c.fail("get_session", session_id="s1", version="1")  # no guessing "1" into 1
        assert "version" in text
        text, _ = await c.fail("get_session", session_id="s1", at="2026-01-01T00:00:00")  # no zone
        assert "at: input should have timezone info" in text

        text, details = await c.fail("add_message", session_id="s1", role="robot", content="hi")
        assert text == f"session 's1': role must be one of {', '.join(ROLES)}; got 'robot'"
        assert details == {"error": "InvalidInput", "message": text, "session_id": "s1", "field": "role"}
        text, details = await c.fail("get_session", session_id="nope")
        assert text == "session 'nope' does not exist" and details["error"] == "SessionNotFound"
        _, details = await c.fail("set_data", session_id="nope", key="k", value=1)
        assert details["error"] == "SessionNotFound"
        _, details = await c.fail("create_session", session_id="s1")
        assert details["error"] == "SessionExists"
        _, details = await c.fail("add_message", session_id="s1", role="user", content="hi", expected_version=7)
        assert details["error"] == "ConcurrencyError"
        _, details = await c.fail("history", limit=0)
        assert details["field"] == "limit"
        with pytest.raises(MCPError, match="unknown tool 'drop_table'"):
            await c.session.call_tool("drop_table", {})

        assert (await c.call("verify"))["head"] == head  # nothing rejected was written
        await c.call("complete_session", session_id="s1")
        _, details = await c.fail("add_message", session_id="s1", role="user", content="late")
        assert details["error"] == "SessionClosed"
        assert (await c.call("get_session", session_id="s1"))["status"] == "completed"  # still serving

    serve(scenario)


def test_a_restarted_server_sees_the_same_data(serve: Any, tmp_path: Path) -> None:
    async def first(c: Client) -> None:
        await c.call("create_session", session_id="s1", metadata={"k": "v"})
        await c.call("add_message", session_id="s1", role="user", content="remember me")

    async def second(c: Client) -> None:
        state = await c.call("get_session", session_id="s1")
        assert (state["version"], state["message_count"], state["metadata"]) == (2, 1, {"k": "v"})
        events = (await c.call("history", session_id="s1"))["events"]
        assert events[-1]["payload"]["content"] == "remember me"
        assert (await c.call("verify"))["ok"] is True
        await c.call("set_data", session_id="s1", key="k", value=1)

    serve(first)
    serve(second)
    with Ledger(tmp_path / "l.db") as led:  # and so does the library, after the server closed the file
        assert led.get_data("s1", "k") == 1


def _server(db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ledger", "mcp", "--db", str(created(db))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def test_the_server_exits_0_when_stdin_closes_or_on_sigterm(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "ledger", "mcp", "--db", str(created(tmp_path / "a.db"))], input="",
                          capture_output=True, text=True, timeout=30, env=ENV)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    if sys.platform == "win32":
        return
    server = _server(tmp_path / "b.db")
    time.sleep(1.5)  # let it start serving
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0  # with stdin still open: SIGTERM alone ends it
    out, err = server.communicate(timeout=30)
    assert (out, err) == ("", "")
    with Ledger(tmp_path / "b.db") as led:  # and the file was closed cleanly
        assert led.verify().ok


@pytest.mark.parametrize("setup, why", [
    ("sys.modules['mcp'] = None", "no module named 'mcp'"),  # not installed
    ("sys.modules['mcp'] = types.ModuleType('mcp')", "cannot import name 'MCPError'"),  # mcp 1.x: McpError
])
def test_without_the_mcp_extra_it_is_one_error_line_naming_it_and_exit_1(tmp_path: Path, setup: str, why: str) -> None:
    db = created(tmp_path / "l.db")
    code = f"import sys, types; {setup}; from ledger.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "mcp", "--db", str(db)], capture_output=True, text=True, timeout=30,
                          env=ENV)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ledger mcp needs the 'mcp' extra (the official MCP SDK 2.x)") and why in lines[0]
    assert lines[0].endswith("pip install 'session-ledger[mcp]'")


def _raw_exchange(db: Path, lines: list[str], wanted: int) -> list[dict[str, Any]]:
    """Send raw lines (after the handshake) to a server subprocess and collect its answers to them until
    ``wanted`` have come or 30 s have passed (a missing answer fails the test instead of hanging it)."""
    import select

    handshake = [
        json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger", "mcp", "--db", str(created(db))], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=str(db.parent),
    )
    assert proc.stdin is not None and proc.stdout is not None
    answers: list[dict[str, Any]] = []
    try:
        proc.stdin.write(("\n".join(handshake + lines) + "\n").encode("utf-8", "surrogatepass"))
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        pending = b""
        while len(answers) < wanted + 1 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            answers += [json.loads(line) for line in complete if line.strip()]
    finally:
        proc.kill()
        _, stderr = proc.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")
    return answers[1:]  # after the initialize answer


def test_requests_the_sdk_cannot_parse_still_get_an_answer_and_the_server_keeps_serving(tmp_path: Path) -> None:
    deep: Any = "bottom"
    for _ in range(300):
        deep = {"x": deep}
    call = {"jsonrpc": "2.0", "method": "tools/call"}
    lines = [
        json.dumps({**call, "id": 1, "params": {"name": "create_session", "arguments": {"session_id": "\ud800"}}}),
        json.dumps({**call, "id": 2, "params": {"name": "create_session", "arguments": {"session_id": "s",
                                                                                          "metadata": deep}}}),
        "{not json",
        json.dumps({**call, "id": 4, "params": {"name": "create_session", "arguments": {"session_id": "ok"}}}),
    ]
    answers = _raw_exchange(tmp_path / "l.db", lines, 4)
    assert [a.get("id") for a in answers] == [1, 2, None, 4]
    assert [a["error"]["code"] for a in answers[:3]] == [-32700, -32700, -32700]
    assert "recursion" in answers[1]["error"]["message"]
    assert answers[3]["result"]["structuredContent"]["session_id"] == "ok"  # still serving
    with Ledger(tmp_path / "l.db") as led:
        assert [s.session_id for s in led.list_sessions().items] == ["ok"]  # nothing else was written
