"""The MCP server: the ledger's commands and reads as tools for agents, over stdio (``ledger mcp``).

Needs the ``mcp`` extra (``pip install 'session-ledger[mcp]'``), the official
Model Context Protocol SDK. Each tool's JSON input schema is generated from a
pydantic model below; arguments are validated against it (strictly: no
guessing ``"3"`` into ``3``), then the ledger validates them again by its own
rules. A bad argument or any ``LedgerError`` comes back as a tool error
(``isError``) carrying the message, and the server keeps serving. Results are
JSON objects: as text and as ``structuredContent``.

One ``Ledger`` serves the whole connection; its calls run in worker threads
(the ledger is thread-safe), so a slow write never stalls the protocol loop.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import types as types_module
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Annotated, Any, Union, cast, get_args, get_origin

import anyio
import anyio.abc
import anyio.to_thread
import msgspec
import pydantic
from mcp import MCPError, types  # first: MCPError is new in mcp 2 (v1 has McpError), so a v1 install fails here
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from . import ANY, Digest, InvalidInput, Ledger, LedgerError, SessionFilter, __version__
from .events import CLOSED_STATUSES, ROLES

__all__ = [
    "AddMessage",
    "CompleteSession",
    "CreateSession",
    "DigestArg",
    "GetData",
    "GetMetadata",
    "GetSession",
    "History",
    "INSTRUCTIONS",
    "LinkInvocation",
    "ListSessions",
    "RemoveMetadata",
    "SetData",
    "SetMetadata",
    "TOOLS",
    "Verify",
    "build_server",
    "serve",
    "serve_stdio",
]

INSTRUCTIONS = (
    "An append-only, hash-chained ledger of agent sessions. Create a session, then record its messages, "
    "tool invocations, metadata and workflow data; complete it when done. Every change is an event: "
    "history shows them, get_session reads a session now or as it stood at a version or time, "
    "verify proves the log was not rewritten."
)

# -- argument models: each tool's input schema ----------------------------------------------------

SessionId = Annotated[str, Field(description="The session's id.")]
ExpectedVersion = Annotated[
    int | None,
    Field(description="Refuse the change (a concurrency error) unless the session is at this version now."),
]
EventId = Annotated[
    str | None,
    Field(description="A unique id for this change: a retry with the same event_id is recorded only once."),
]
Tokens = Annotated[
    dict[str, int] | None,
    Field(description='Token counts: {"input": 120, "output": 40}, either key optional.'),
]
ModifiedBy = Annotated[str | None, Field(description="Who made the change (kept in the event).")]


class _Args(BaseModel):
    # Unknown arguments are refused (a misspelt one would otherwise be silently ignored).
    model_config = ConfigDict(extra="forbid", strict=True)


class _Command(_Args):
    """Arguments every command takes besides its own: optimistic concurrency and an idempotency key."""

    expected_version: ExpectedVersion = None
    event_id: EventId = None


class CreateSession(_Args):
    """Create a session and return it; a sortable unique id is generated when session_id is omitted."""

    session_id: str | None = Field(None, description="The new session's id; generated when omitted.")
    user_id: str | None = Field(None, description="Whose session it is.")
    purpose: str | None = Field(None, description="What the session is for, in a sentence.")
    tags: list[str] = Field(default_factory=list, description="Labels to find it by.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Initial metadata: {key: JSON value}.")
    event_id: EventId = None


class AddMessage(_Command):
    """Append a message to an active session's conversation; returns the session's new version."""

    session_id: SessionId
    role: str = Field(description="Who spoke.", json_schema_extra={"enum": list(ROLES)})
    content: str = Field(description="The message text.")
    tool_name: str | None = Field(None, description="For a tool message: the tool that produced it.")
    invocation_id: str | None = Field(None, description="For a tool message: the invocation it belongs to.")
    model: str | None = Field(None, description="The model that wrote it.")
    tokens: Tokens = None


class LinkInvocation(_Command):
    """Record a tool invocation of an active session, with its duration, tokens and cost; returns the new version."""

    session_id: SessionId
    invocation_id: str = Field(description="The invocation's id.")
    tool_name: str = Field(description="The tool that ran.")
    duration_ms: float | None = Field(None, description="How long it ran, in milliseconds.")
    tokens: Tokens = None
    cost: float | None = Field(None, description="What it cost.")
    status: str = Field("ok", description="How it ended, e.g. ok or error.")
    artifact: str | None = Field(None, description="A path or URI to its records.")


class SetMetadata(_Command):
    """Set one metadata key of a session to a JSON value (allowed after completion); returns the new version."""

    session_id: SessionId
    key: str = Field(description="The metadata key.")
    value: Any = Field(description="Any JSON value.")
    modified_by: ModifiedBy = None


class GetMetadata(_Args):
    """A session's metadata: every key, or one key's value (null when absent)."""

    session_id: SessionId
    key: str | None = Field(None, description="One key; all keys when omitted.")


class RemoveMetadata(_Command):
    """Remove one metadata key of a session (an absent key changes nothing); returns the version."""

    session_id: SessionId
    key: str = Field(description="The metadata key.")
    modified_by: ModifiedBy = None


class SetData(_Command):
    """Set one workflow data key of an active session to a JSON value; returns the new version."""

    session_id: SessionId
    key: str = Field(description="The data key.")
    value: Any = Field(description="Any JSON value.")


class GetData(_Args):
    """A session's workflow data: every key, or one key's value (null when absent)."""

    session_id: SessionId
    key: str | None = Field(None, description="One key; all keys when omitted.")


class CompleteSession(_Command):
    """End a session as completed, failed or abandoned; returns the new version. An ended session takes no
    more messages, invocations or data."""

    session_id: SessionId
    status: str = Field("completed", description="How it ended.", json_schema_extra={"enum": list(CLOSED_STATUSES)})
    reason: str | None = Field(None, description="Why, in a sentence.")


def _json_type(kind: Any) -> Any:
    """A ``SessionFilter`` field's type as a tool argument: lists for iterables, dicts for mappings, aware times."""
    if kind is datetime:
        return AwareDatetime
    origin = get_origin(kind)
    if origin in (Union, types_module.UnionType):
        converted = tuple(_json_type(arg) for arg in get_args(kind))
        return Union[converted]
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return dict[str, Any]
    if origin is not None and isinstance(origin, type) and issubclass(origin, Iterable):
        return list[get_args(kind)[0]]  # type: ignore[misc]  # the element type is only known at run time
    return kind


def _list_sessions_arguments() -> type[_Args]:
    """The ``list_sessions`` tool's arguments: ``SessionFilter``'s fields, with ``metadata_keys`` for the
    keys that need only be present (JSON has no ``ANY``)."""
    fields: dict[str, Any] = {}
    for name, kind, default, description, _flag, schema in SessionFilter.fields():
        if name == "metadata":
            description = "Metadata keys equal to these JSON values."
        fields[name] = (_json_type(kind), Field(default, description=description, json_schema_extra=schema or None))
        if name == "metadata":
            fields["metadata_keys"] = (
                list[str] | None, Field(None, description="Metadata keys present, whatever their value.")
            )
    model: type[_Args] = pydantic.create_model("ListSessions", __base__=_Args, **fields)
    model.__doc__ = (
        "Sessions matching every filter given, newest first by default, each with its metadata; one page at a"
        " time: pass the returned cursor back for the next page."
    )
    return model


ListSessions = _list_sessions_arguments()


class GetSession(_Args):
    """A session's state: now, or as it stood right after a version, a log position or a moment (give at most one)."""

    session_id: SessionId
    version: int | None = Field(None, description="As it stood right after this version.")
    position: int | None = Field(None, description="As it stood right after this global log position.")
    at: AwareDatetime | None = Field(None, description="As it stood at this time (ISO 8601 with a zone).")


class History(_Args):
    """The audit timeline: recorded events (type, payload, hash) of one session or of all, oldest first, a page
    at a time; pass next_after back as after for the next page."""

    session_id: str | None = Field(None, description="One session's events; every session's when omitted.")
    after: int = Field(0, description="Only events after this global log position.")
    limit: int = Field(100, description="Events per page.", json_schema_extra={"minimum": 1, "maximum": 1000})


class DigestArg(_Args):
    """A chain head saved earlier (from a verify result's head)."""

    position: int
    hash: str


class Verify(_Args):
    """Walk the whole hash chain and report the first event that breaks it; with a digest saved earlier, also
    prove that nothing up to it was rewritten."""

    digest: DigestArg | None = Field(None, description="A head saved earlier: {position, hash}.")


# -- the tools ------------------------------------------------------------------------------------


def _plain_session(state: Any) -> dict[str, Any]:
    record: dict[str, Any] = msgspec.to_builtins(state)
    for internal in ("lineage", "run_start"):  # how forks and restores are stitched: not for callers
        record.pop(internal, None)
    return record


def _version(session_id: str, version: int) -> dict[str, Any]:
    return {"session_id": session_id, "version": version}


def _write_options(a: Any) -> dict[str, Any]:
    return {"expected_version": a.expected_version, "event_id": a.event_id}


def _create_session(ledger: Ledger, a: CreateSession) -> Any:
    state = ledger.create_session(
        a.session_id, user_id=a.user_id, purpose=a.purpose, tags=a.tags, metadata=a.metadata, event_id=a.event_id
    )
    return _plain_session(state)


def _add_message(ledger: Ledger, a: AddMessage) -> Any:
    version = ledger.add_message(
        a.session_id, a.role, a.content, tool_name=a.tool_name, invocation_id=a.invocation_id, model=a.model,
        tokens=a.tokens, **_write_options(a),
    )
    return _version(a.session_id, version)


def _link_invocation(ledger: Ledger, a: LinkInvocation) -> Any:
    version = ledger.link_invocation(
        a.session_id, a.invocation_id, a.tool_name, duration_ms=a.duration_ms, tokens=a.tokens, cost=a.cost,
        status=a.status, artifact=a.artifact, **_write_options(a),
    )
    return _version(a.session_id, version)


def _set_metadata(ledger: Ledger, a: SetMetadata) -> Any:
    version = ledger.set_metadata(a.session_id, a.key, a.value, modified_by=a.modified_by, **_write_options(a))
    return _version(a.session_id, version)


def _lookup(session_id: str, everything: str, key: str | None, value: Any) -> dict[str, Any]:
    if key is None:
        return {"session_id": session_id, everything: value}
    return {"session_id": session_id, "key": key, "value": value}


def _get_metadata(ledger: Ledger, a: GetMetadata) -> Any:
    return _lookup(a.session_id, "metadata", a.key, ledger.get_metadata(a.session_id, a.key))


def _remove_metadata(ledger: Ledger, a: RemoveMetadata) -> Any:
    version = ledger.remove_metadata(a.session_id, a.key, modified_by=a.modified_by, **_write_options(a))
    return _version(a.session_id, version)


def _set_data(ledger: Ledger, a: SetData) -> Any:
    return _version(a.session_id, ledger.set_data(a.session_id, a.key, a.value, **_write_options(a)))


def _get_data(ledger: Ledger, a: GetData) -> Any:
    return _lookup(a.session_id, "data", a.key, ledger.get_data(a.session_id, a.key))


def _complete_session(ledger: Ledger, a: CompleteSession) -> Any:
    return _version(a.session_id, ledger.complete_session(a.session_id, a.status, reason=a.reason, **_write_options(a)))


def _list_sessions(ledger: Ledger, a: Any) -> Any:
    given = a.model_dump(exclude={"metadata_keys"})
    if a.metadata is not None or a.metadata_keys is not None:
        # A key both present-only and equal-to-a-value means equal: the stricter of the two.
        given["metadata"] = {key: ANY for key in a.metadata_keys or ()} | (a.metadata or {})
    page = ledger.list_sessions(**given)
    return {"sessions": msgspec.to_builtins(page.items), "cursor": page.cursor}


def _get_session(ledger: Ledger, a: GetSession) -> Any:
    return _plain_session(ledger.get_session(a.session_id, version=a.version, position=a.position, at=a.at))


def _history(ledger: Ledger, a: History) -> Any:
    if not 1 <= a.limit <= 1000:
        raise InvalidInput(f"limit must be an integer from 1 to 1000; got {a.limit!r}", field="limit", limit=1000)
    # One more than asked tells whether there is a next page without a second query.
    found = list(islice(ledger.history(a.session_id, after=a.after), a.limit + 1))
    page = found[: a.limit]
    return {
        "events": msgspec.to_builtins(page),
        "next_after": page[-1].position if len(found) > a.limit else None,
    }


def _verify(ledger: Ledger, a: Verify) -> Any:
    digest = None if a.digest is None else Digest(a.digest.position, a.digest.hash)
    return msgspec.to_builtins(ledger.verify(digest))


@dataclass(frozen=True)
class _Tool:
    name: str
    args: type[BaseModel]
    run: Callable[[Ledger, Any], Any]
    read_only: bool = False
    idempotent: bool = False

    def describe(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            description=" ".join((self.args.__doc__ or "").split()),
            input_schema=self.args.model_json_schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=self.read_only,
                destructive_hint=False,  # the log is append-only: every change is one more event
                idempotent_hint=self.idempotent,
                open_world_hint=False,
            ),
        )


TOOLS: tuple[_Tool, ...] = (
    _Tool("create_session", CreateSession, _create_session),
    _Tool("add_message", AddMessage, _add_message),
    _Tool("link_invocation", LinkInvocation, _link_invocation),
    _Tool("set_metadata", SetMetadata, _set_metadata),  # the same value again is one more event
    _Tool("get_metadata", GetMetadata, _get_metadata, read_only=True),
    _Tool("remove_metadata", RemoveMetadata, _remove_metadata, idempotent=True),  # an absent key writes nothing
    _Tool("set_data", SetData, _set_data),
    _Tool("get_data", GetData, _get_data, read_only=True),
    _Tool("complete_session", CompleteSession, _complete_session),
    _Tool("list_sessions", ListSessions, _list_sessions, read_only=True),
    _Tool("get_session", GetSession, _get_session, read_only=True),
    _Tool("history", History, _history, read_only=True),
    _Tool("verify", Verify, _verify, read_only=True),
)
"""Every tool the server offers, in the order ``tools/list`` gives them."""


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


def build_server(ledger: Ledger) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) whose tools act on ``ledger``; run it on any transport."""
    by_name = {tool.name: tool for tool in TOOLS}
    listing = types.ListToolsResult(tools=[tool.describe() for tool in TOOLS])
    schemas = {tool.name: tool.input_schema for tool in listing.tools}

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

    return Server(
        "session-ledger",
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
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
