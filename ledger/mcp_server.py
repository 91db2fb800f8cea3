"""The MCP server: the ledger's commands and reads as tools for agents, over stdio (``ledger mcp``).

Needs the ``mcp`` extra (``pip install 'session-ledger[mcp]'``), the official
Model Context Protocol SDK. The tools are ``ledger.mcp_tools.TOOLS``: each
one's JSON input schema is generated from a pydantic model, its output schema
from its result type. Arguments are validated against the input model
(strictly: no guessing ``"3"`` into ``3``), then the ledger validates them
again by its own rules. A bad argument or any ``LedgerError`` comes back as a
tool error (``isError``) carrying the message, and the server keeps serving.
Results are JSON objects: as text and as ``structuredContent``, which the
output schema describes (the SDK's client checks it).

Every schema is made self-contained (no ``$ref``) and typed all the way down,
for strict clients: the MCP Inspector compiles output schemas with a strict
Ajv, and some model providers refuse a property without a ``type``, a
``type`` list or an array without ``items``. A free JSON value
(``set_metadata.value``) is an ``anyOf`` of the JSON types.

A session's conversation is also a resource, ``ledger://sessions/{id}/messages``
(JSON: what ``get_messages`` returns with no options); ``resources/list``
pages through the sessions, newest first.

One ``Ledger`` serves the whole connection; its calls run in worker threads
(the ledger is thread-safe), so a slow write never stalls the protocol loop.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import unquote

import anyio
import anyio.abc
import anyio.to_thread
import msgspec
import pydantic
from mcp import MCPError, types  # first: MCPError is new in mcp 2 (v1 has McpError), so a v1 install fails here
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from pydantic import BaseModel

from . import Ledger, LedgerError, __version__
from .mcp_tools import (
    AddMessage,
    AddTags,
    CompleteSession,
    CreateSession,
    DigestArg,
    Fork,
    GetData,
    GetMessages,
    GetMetadata,
    GetSession,
    GetStatistics,
    History,
    LinkInvocation,
    ListSessions,
    RemoveMetadata,
    RemoveTags,
    Restore,
    SearchMessages,
    SetData,
    SetMetadata,
    TOOLS,
    Tool,
    Usage,
    Verify,
    transcript,
)

__all__ = [
    "AddMessage",
    "AddTags",
    "CompleteSession",
    "CreateSession",
    "DigestArg",
    "Fork",
    "GetData",
    "GetMessages",
    "GetMetadata",
    "GetSession",
    "GetStatistics",
    "History",
    "INSTRUCTIONS",
    "LinkInvocation",
    "ListSessions",
    "RemoveMetadata",
    "RemoveTags",
    "Restore",
    "SearchMessages",
    "SetData",
    "SetMetadata",
    "TOOLS",
    "TRANSCRIPT",
    "Usage",
    "Verify",
    "build_server",
    "describe",
    "input_schema",
    "output_schema",
    "serve",
    "serve_stdio",
]

INSTRUCTIONS = (
    "An append-only, hash-chained ledger of agent sessions. Create a session, then record its messages, "
    "tool invocations, metadata and workflow data; complete it when done. Read it back with get_messages "
    "(also in a provider's format, ready to send), search_messages, get_statistics and usage; steer with "
    "fork (a new session from any past state) and restore (rewind, keeping the log). Every change is an "
    "event: history shows them, get_session reads a session now or as it stood at a version or time, "
    "verify proves the log was not rewritten. The resource ledger://sessions/{id}/messages is a "
    "session's conversation."
)

TRANSCRIPT = "ledger://sessions/{id}/messages"
"""The URI template of a session's conversation, as a resource."""
_TRANSCRIPT = re.compile(r"ledger://sessions/([^/?#]+)/messages")
_JSON = "application/json"
_PAGE = 100  # sessions per resources/list page

# -- JSON Schema: self-contained and typed everywhere -----------------------------------------

_TYPED = ("type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const")
_PLAIN = ({"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}, {"type": "object"})


def json_value(depth: int) -> dict[str, Any]:
    """An argument that may be any JSON value, each branch of the ``anyOf`` typed. Model providers want an
    array's ``items`` declared, so arrays nest ``depth`` deep in the schema (objects hold anything); the
    server itself takes any depth."""
    branches: list[dict[str, Any]] = [dict(plain) for plain in _PLAIN]
    if depth > 0:
        branches.append({"type": "array", "items": json_value(depth - 1)})
    return {"anyOf": branches}


ANY_JSON: dict[str, Any] = {"anyOf": [*(dict(plain) for plain in _PLAIN), {"type": "array"}]}
"""A result that may be any JSON value: typed branches that together accept every value."""


def _inline(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by a copy of its definition (kept beside the ref's siblings)."""
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            raise ValueError(f"recursive schema {name}: cannot be inlined")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _inline(defs[name], defs, (*seen, name)) | _inline(siblings, defs, seen)
    return {k: _inline(v, defs, seen) for k, v in node.items() if k != "$defs"}


def _subschemas(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for key in ("properties", "patternProperties"):
        yield from node.get(key, {}).values()
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield node[key]
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        yield from node.get(key, ())


def _type_everything(node: dict[str, Any], value: Mapping[str, Any]) -> None:
    """Give every untyped schema below ``node`` (an ``Any``) the schema ``value``, and drop every ``format``
    (a strict Ajv without the formats plugin refuses to compile a schema with one: ``_times`` says it)."""
    node.pop("format", None)
    for sub in _subschemas(node):
        if not any(key in sub for key in _TYPED):
            sub.update(copy.deepcopy(value))
        _type_everything(sub, value)


def _times(schema: dict[str, Any]) -> None:
    """Say in its description what a time property's ``format`` said."""
    for prop in schema.get("properties", {}).values():
        said = prop.get("description", "")
        if '"date-time"' in json.dumps(prop) and "ISO 8601" not in said:
            prop["description"] = f"{said} ISO 8601, with a zone (2026-01-31T14:03:00Z).".lstrip()


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A tool's input schema: the pydantic model's, self-contained and typed everywhere."""
    raw = model.model_json_schema()
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    _times(schema)
    _type_everything(schema, json_value(2))
    return schema


def output_schema(result: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A tool's output schema: the JSON Schema of its msgspec result type (an object), self-contained and
    typed everywhere, without the properties in ``drop``."""
    raw = msgspec.json.schema(result)
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    for name in drop:
        del schema["properties"][name]
    schema["required"] = [name for name in schema.get("required", ()) if name not in drop]
    _type_everything(schema, ANY_JSON)
    return schema


def describe(tool: Tool) -> types.Tool:
    """``tool`` as ``tools/list`` gives it: name, description, both schemas and the behaviour hints."""
    return types.Tool(
        name=tool.name,
        description=" ".join((tool.args.__doc__ or "").split()),
        input_schema=input_schema(tool.args),
        output_schema=output_schema(tool.result, tool.drop),
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only,
            destructive_hint=False,  # the log is append-only: every change is one more event (restore too)
            idempotent_hint=tool.idempotent,
            open_world_hint=False,
        ),
    )


# -- results and errors ---------------------------------------------------------------------------


def _result(value: Any) -> types.CallToolResult:
    encoded = msgspec.json.encode(value)
    return types.CallToolResult(
        content=[types.TextContent(text=encoded.decode())], structured_content=msgspec.json.decode(encoded)
    )


def _safe(text: str | None) -> str | None:
    """Text that can go on the wire: a lone surrogate (from a bad argument echoed back) as its escape."""
    return None if text is None else text.encode("utf-8", "backslashreplace").decode()


def _error(message: str, kind: str, *, session_id: str | None = None, field: str | None = None) -> types.CallToolResult:
    message = _safe(message) or ""
    details = {"error": kind, "message": message, "session_id": _safe(session_id), "field": _safe(field)}
    return types.CallToolResult(content=[types.TextContent(text=message)], structured_content=details, is_error=True)


def _shown(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _invalid_arguments(tool: str, exc: pydantic.ValidationError) -> str:
    """One line naming each bad argument, what is wrong with it and what was given."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        given = "" if error["type"] == "missing" else f"; got {_shown(error['input'])}"
        message = error["msg"][:1].lower() + error["msg"][1:]  # "Field required" -> "field required"
        parts.append(f"{where}: {message}{given}")
    return f"{tool}: bad arguments: " + "; ".join(parts)


_T = TypeVar("_T")


def build_server(ledger: Ledger) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) whose tools and resources act on ``ledger``; run it on
    any transport."""
    by_name = {tool.name: tool for tool in TOOLS}
    listing = types.ListToolsResult(tools=[describe(tool) for tool in TOOLS])
    schemas = {tool.name: tool.input_schema for tool in listing.tools}
    templates = types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate(
        name="session-messages",
        title="A session's conversation",
        uri_template=TRANSCRIPT,
        description="A session's conversation in order, as JSON: {session_id, format: null, messages}, each message"
                    " with role, content, blocks, tool_name, invocation_id, model, tokens, recorded_at, version and"
                    " position (what get_messages returns with no options).",
        mime_type=_JSON,
    )])

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing.model_copy(deep=True)  # the SDK may fill in fields of a result: keep the original clean

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:  # the spec makes an unknown tool a protocol error, not a tool error
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"unknown tool {params.name!r}; the tools are {', '.join(by_name)}"
            )
        try:
            # Validated as the JSON it arrived as, so times are ISO 8601 text while "3" stays no integer.
            args = tool.args.model_validate_json(json.dumps(params.arguments or {}))
        except pydantic.ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            return _error(_invalid_arguments(tool.name, exc), "InvalidInput", field=str(loc[0]) if loc else None)
        try:
            value = await anyio.to_thread.run_sync(tool.run, ledger, args)
        except LedgerError as exc:
            return _error(exc.message, type(exc).__name__, session_id=exc.session_id, field=exc.field)
        return _result(value)

    async def read(call: Callable[[], _T]) -> _T:
        """``call`` in a worker thread; a ``LedgerError`` as the protocol error for bad parameters."""
        try:
            return await anyio.to_thread.run_sync(call)
        except LedgerError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=_safe(exc.message) or "") from None

    async def list_resource_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return templates.model_copy(deep=True)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        cursor = params.cursor if params is not None else None
        page = await read(lambda: ledger.list_sessions(limit=_PAGE, cursor=cursor))
        resources = [
            types.Resource(
                name=f"session {s.session_id}",
                uri=TRANSCRIPT.format(id=s.session_id),
                title=f"Session {s.session_id}: {s.message_count} messages, {s.status}",
                description=s.purpose,
                mime_type=_JSON,
            )
            for s in page.items
        ]
        return types.ListResourcesResult(resources=resources, next_cursor=page.cursor)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        match = _TRANSCRIPT.fullmatch(params.uri)
        if match is None:
            unknown = f"unknown resource {_safe(params.uri)!r}; the ledger offers {TRANSCRIPT}"
            raise MCPError(code=types.INVALID_PARAMS, message=unknown)
        session_id = unquote(match[1])
        found = await read(lambda: transcript(ledger, session_id))
        text = msgspec.json.encode(found).decode()
        contents = types.TextResourceContents(uri=params.uri, mime_type=_JSON, text=text)
        return types.ReadResourceResult(contents=[contents])

    return Server(
        "session-ledger",
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )


async def _stop_on_sigterm(
    scope: anyio.CancelScope, ledger: Ledger, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            # The SDK reads stdin in a thread that cannot be cancelled: close the file and leave now.
            scope.cancel()
            ledger.close()
            os._exit(0)


class _Unowned(io.TextIOWrapper):
    """A text layer over sys.stdin's or sys.stdout's buffer that leaves the buffer open when it goes."""

    def close(self) -> None:
        try:
            self.detach()
        except ValueError:  # already detached
            pass


class _Wire:
    """This process's stdin and stdout as the SDK's stdio transport uses them, with a check in between.

    The SDK drops a line its parser refuses (nested too deep, a lone surrogate escape, not JSON), and the
    client then waits for ever. Here such a line is answered with a JSON-RPC error (parse error or invalid
    request, with the request's id when plain ``json`` can still read it) and never reaches the SDK. The
    answers and the SDK's own writes share one lock, so lines never tear.
    """

    def __init__(self) -> None:
        self._in = anyio.wrap_file(_Unowned(sys.stdin.buffer, encoding="utf-8", errors="replace"))
        self._out = anyio.wrap_file(_Unowned(sys.stdout.buffer, encoding="utf-8", write_through=True))
        self._lock = anyio.Lock()

    async def write(self, text: str) -> None:
        async with self._lock:
            await self._out.write(text)

    async def flush(self) -> None:
        async with self._lock:
            await self._out.flush()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self._in:
            try:
                types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except pydantic.ValidationError as exc:
                await self._refuse(line, exc)
                continue
            yield line

    async def _refuse(self, line: str, exc: pydantic.ValidationError) -> None:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            request = None
        kind = exc.errors()[0]["type"] if exc.errors() else ""
        if kind == "json_invalid":
            code, what = types.PARSE_ERROR, "not JSON this server can read"
        else:
            code, what = types.INVALID_REQUEST, "not a valid JSON-RPC request"
        if isinstance(request, dict):
            if "id" not in request:
                return  # a notification gets no answer, even an error
            request_id = request["id"] if isinstance(request["id"], (str, int)) else None
        else:
            request_id = None
        reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        answer = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": f"{what}: {reason}"}}
        await self.write(json.dumps(answer) + "\n")  # json escapes any lone surrogate in the id
        await self.flush()


async def serve_stdio(ledger: Ledger) -> None:
    """Serve ``ledger`` over this process's stdin and stdout until the client closes stdin (or SIGTERM)."""
    server = build_server(ledger)
    wire = _Wire()
    async with anyio.create_task_group() as tasks:
        if sys.platform != "win32":  # no signal receivers there; the client closes stdin instead
            await tasks.start(_stop_on_sigterm, tasks.cancel_scope, ledger)
        # The SDK's transport over the checked wire (both sides duck-typed as its anyio text files).
        async with stdio_server(stdin=cast(Any, wire), stdout=cast(Any, wire)) as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        tasks.cancel_scope.cancel()


def serve(ledger: Ledger) -> None:
    """Serve ``ledger`` over stdio, blocking until the client disconnects; the caller closes the ledger."""
    try:
        anyio.run(serve_stdio, ledger)
    except KeyboardInterrupt:  # Ctrl-C in a terminal: a normal way to stop a server
        pass
