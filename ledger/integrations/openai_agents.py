"""An OpenAI Agents SDK session (``openai-agents``) stored in the ledger: ``LedgerSession``.

    from agents import Agent, Runner
    from ledger import Ledger
    from ledger.integrations.openai_agents import LedgerSession

    session = LedgerSession("support-42", Ledger("sessions.db"))
    await Runner.run(agent, "hello", session=session)

It implements the SDK's session protocol (``agents.memory.Session``; it also
subclasses ``SessionABC`` like the SDK's own backends): ``get_items(limit)``,
``add_items``, ``pop_item``, ``clear_session`` and ``session_id``, plus
``session_settings`` (a default ``limit`` the Runner honours). Every method is
a coroutine that runs the ledger call in a worker thread (``asyncio.to_thread``),
so the event loop never waits on SQLite; a ``Ledger`` may be shared by any
number of sessions, threads and processes. (Do not await these methods inside
a ``with ledger.batch():`` block on the event loop's thread: the worker thread
would wait for the batch, and the batch for the worker.)

How an item is stored
---------------------
Each item becomes one ``message_added`` event. Its ``content`` is the item
itself, encoded as compact JSON (``ensure_ascii=False``, so text stays
readable and searchable), and ``get_items`` decodes it, so what comes back is
exactly what was added: every key, nested content part, id and ``call_id``,
whatever the item type, including types this module has never heard of. The
SDK's own ``SQLiteSession`` stores items the same way. The alternative, the
item's text as ``content`` plus the raw item somewhere else (session data,
a second event), would need two writes per item, could drift apart, and
would lose whatever a text extraction drops (tool arguments, reasoning
summaries, ids the API needs to accept the history back). The cost: the
``content`` column holds JSON rather than prose. Full-text search still finds
the words (a word right after an escaped newline or tab, ``\\n`` or ``\\t``, is the exception),
and SQL can reach into it with SQLite's ``json_extract(content, '$.role')``.

The other message fields are filled in for the analyst, best effort, from the item:

- ``role``: the item's own role (``user``, ``assistant``, ``system``; ``developer``
  becomes ``system``); tool calls and their outputs (``function_call``,
  ``function_call_output``, ``computer_call``, ``mcp_call``, ... anything with a
  ``call_id``) are ``tool``; other items the model produced (``reasoning``,
  ``compaction``, unknown types) are ``assistant``.
- ``tool_name``: the call's ``name`` (for an output, the name of the call with
  the same ``call_id``), else the kind of built-in tool (``web_search``,
  ``computer``, ...).
- ``invocation_id``: the item's ``call_id`` (else an MCP approval's request id,
  else its ``id``), so a call and its output share one, and the invocation that
  ``link_invocation`` records under the same id joins them.

One ``add_items`` call is one ledger batch: all of its items or none. Items
must be JSON values (the SDK's item dicts are); a value JSON cannot hold
(NaN, a lone surrogate, a set or other Python object) raises before anything is written, and an
item over ``Limits.max_content_bytes`` raises ``LimitExceeded`` (nothing of
that call is written either).

Removal keeps the audit trail: ``pop_item`` records ``message_retracted`` and
``clear_session`` records ``conversation_cleared``; ``messages()`` and
``get_items`` stop returning those items, ``history()`` still shows every one.
The ledger session is created (metadata ``{"integration": "openai-agents"}``
plus whatever you pass) by the first ``add_items``; reading, popping or
clearing a session that does not exist yet returns nothing and writes nothing.
A completed ledger session can still be read; writing to it raises
``SessionClosed``.

Messages written to the same ledger session by other code (``add_message``
with plain text) come back as ``{"role": role, "content": content}``, unless
their content happens to be a JSON object, which is taken for an item.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

try:
    from agents.memory.session import SessionABC
    from agents.memory.session_settings import SessionSettings, coerce_session_settings, resolve_session_limit
except ImportError as exc:  # the optional extra is missing: one line naming it
    from ..extras import missing_extra

    raise missing_extra("agents", "ledger.integrations.openai_agents", exc) from exc

from .. import Ledger, LedgerError, Limits, Message, SessionClosed, SessionNotFound, SessionPurged
from ..validation import check_id
from . import run_to_completion

__all__ = ["INTEGRATION", "LedgerSession", "item_fields"]

INTEGRATION = "openai-agents"
"""The value of the ``integration`` metadata key on sessions this adapter creates."""

_T = TypeVar("_T")
_LOOKBACK = 100  # messages searched for the call an output answers, when the same add_items lacks it
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system", "tool": "tool"}


def _name(value: object, limit: int) -> str | None:
    # A name over the ledger's limit stays only in the item itself.
    return value if isinstance(value, str) and value and len(value.encode()) <= limit else None


def _is_tool(item: Mapping[str, Any]) -> bool:
    kind = item.get("type")
    kind = kind if isinstance(kind, str) else ""
    return "call_id" in item or kind.endswith(("_call", "_output")) or kind.startswith("mcp_")


def item_fields(
    item: Mapping[str, Any], call_names: Mapping[str, str] | None = None, *, name_limit: int = Limits().max_name_bytes
) -> dict[str, Any]:
    """The ledger message fields (role, tool_name, invocation_id) that describe an item.

    ``call_names`` maps known ``call_id``s to tool names, to name the tool an output answers;
    names longer than ``name_limit`` bytes are left to the item.
    """
    role = _ROLES.get(item["role"]) if isinstance(item.get("role"), str) else None
    if role is not None and not _is_tool(item):
        return {"role": role, "tool_name": None, "invocation_id": None}
    if not _is_tool(item):
        return {"role": "assistant", "tool_name": None, "invocation_id": None}
    found = item.get("type")
    kind = found if isinstance(found, str) else ""
    invocation = (
        _name(item.get("call_id"), name_limit) or _name(item.get("approval_request_id"), name_limit)
        or _name(item.get("id"), name_limit)
    )
    tool = _name(item.get("name"), name_limit)
    if tool is None and kind.endswith("_output"):
        tool = (call_names or {}).get(invocation or "")
    if tool is None and not kind.endswith("_output") and kind:
        tool = _name(kind[: -len("_call")] if kind.endswith("_call") else kind, name_limit)
    return {"role": "tool", "tool_name": tool, "invocation_id": invocation}


def _encode(item: object, index: int) -> str:
    if not isinstance(item, Mapping):
        raise TypeError(f"session item {index} must be a dict (a TResponseInputItem), not {type(item).__name__}")
    try:
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        text.encode()  # a lone surrogate cannot be stored as text
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"session item {index} is not a JSON value and cannot be stored losslessly: {exc}") from exc
    return text


def _decode(message: Message) -> Any:
    try:
        item = json.loads(message.content)
    except ValueError:
        item = None
    if isinstance(item, dict):
        return item
    return {"role": message.role, "content": message.content}  # a plain message written by other code




class LedgerSession(SessionABC):
    """The conversation of one OpenAI Agents SDK session, kept as a ledger session.

    ``ledger`` is a ``Ledger`` (shared; the caller closes it) or a path to open one
    (this session then owns it: call ``close()``). ``session_id`` is also the ledger
    session id (1-128 characters from ``[A-Za-z0-9._:-]``). ``user_id``, ``purpose``,
    ``tags`` and ``metadata`` describe the ledger session when the first ``add_items``
    creates it; ``session_settings`` (or a dict) gives the default ``limit``.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        ledger: Ledger | str | os.PathLike[str],
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        user_id: str | None = None,
        purpose: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.session_id = check_id(session_id, "session_id")
        if isinstance(session_settings, Mapping):
            # The SDK's own coercion: an unknown key is a TypeError ("Unknown session settings: ..."), as in its sessions.
            session_settings = coerce_session_settings(dict(session_settings))
        if session_settings is not None and not isinstance(session_settings, SessionSettings):
            raise TypeError(f"session_settings must be a SessionSettings or a dict, not {type(session_settings).__name__}")
        self.session_settings = session_settings or SessionSettings()
        self._owns_ledger = not isinstance(ledger, Ledger)
        self.ledger: Ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self._create_fields: dict[str, Any] = {
            "user_id": user_id,
            "purpose": purpose,
            "tags": tags,
            "metadata": {"integration": INTEGRATION, **(metadata or {})},
        }

    def __repr__(self) -> str:
        return f"LedgerSession({self.session_id!r}, {self.ledger!r})"

    def close(self) -> None:
        """Close the ledger if this session opened it (a shared ``Ledger`` stays open)."""
        if self._owns_ledger:
            self.ledger.close()

    # -- the session protocol -----------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The conversation in chronological order: all of it, or its latest ``limit`` items.

        ``limit=None`` uses ``session_settings.limit``; 0 returns nothing and a negative
        limit everything (as the SDK's ``SQLiteSession`` does).
        """
        return await asyncio.to_thread(self._get_items, resolve_session_limit(limit, self.session_settings))

    async def add_items(self, items: list[Any]) -> None:
        """Append the items, all in one transaction (the first call creates the ledger session)."""
        encoded = [_encode(item, index) for index, item in enumerate(items)]  # nothing is written for a bad item
        if encoded:
            await run_to_completion(lambda: self._add_items(items, encoded))
        else:  # nothing to add, but a closed or purged session refuses it as it refuses every other call
            await asyncio.to_thread(self._check_open)

    async def pop_item(self) -> Any | None:
        """Retract the latest item (recorded as ``message_retracted``) and return it; None when empty."""
        return await run_to_completion(self._pop_item)

    async def clear_session(self) -> None:
        """Clear the conversation (recorded as ``conversation_cleared``; metadata and data stay)."""
        await run_to_completion(self._clear_session)

    # -- the ledger calls, each in a worker thread ----------------------------------------

    def _get_items(self, limit: int | None) -> list[Any]:
        led = self.ledger
        try:
            state = led.get_session(self.session_id)
        except SessionNotFound:
            return []
        count = state.message_count
        if limit is not None and limit >= 0:
            if limit == 0 or count == 0:
                return []
            window = min(limit, count)
            # Pinned to the version just read, so a write in between cannot shift the window.
            messages = led.messages(self.session_id, version=state.version, offset=count - window, limit=window)
        else:
            messages = led.messages(self.session_id, version=state.version)
        return [_decode(message) for message in messages]

    def _check_open(self) -> None:
        try:
            state = self.ledger.get_session(self.session_id)
        except SessionNotFound:
            return  # not created yet: the first items will create it
        if state.status == "purged":
            raise SessionPurged(f"session {self.session_id!r} was purged: cannot add items", session_id=self.session_id)
        if not state.is_open:
            raise SessionClosed(
                f"session {self.session_id!r} is {state.status}: cannot add items", session_id=self.session_id
            )

    def _add_items(self, items: list[Any], encoded: list[str]) -> None:
        led = self.ledger
        with led.batch():
            try:
                state = led.get_session(self.session_id)
            except SessionNotFound:
                led.create_session(self.session_id, **self._create_fields)
                count = 0
            else:
                count = state.message_count
            call_names = self._call_names(items, count)
            for item, content in zip(items, encoded):
                led.add_message(self.session_id, content=content, **item_fields(item, call_names, name_limit=led.limits.max_name_bytes))

    def _call_names(self, items: list[Any], count: int) -> dict[str, str]:
        """call_id -> tool name for the outputs among ``items``: from calls in the same list, else
        from the latest messages (inside the batch, so they are the ones the outputs will follow)."""
        names: dict[str, str] = {}
        wanted: set[str] = set()
        for item in items:
            fields = item_fields(item, name_limit=self.ledger.limits.max_name_bytes)
            if fields["invocation_id"] is None:
                continue
            if fields["tool_name"] is not None and not str(item.get("type", "")).endswith("_output"):
                names.setdefault(fields["invocation_id"], fields["tool_name"])
            elif fields["invocation_id"] not in names:
                wanted.add(fields["invocation_id"])
        wanted -= names.keys()
        if wanted and count:
            recent = self.ledger.messages(self.session_id, offset=max(0, count - _LOOKBACK))
            for message in recent:
                if message.invocation_id in wanted and message.tool_name is not None:
                    names.setdefault(message.invocation_id, message.tool_name)
        return names

    def _pop_item(self) -> Any | None:
        led = self.ledger
        with led.batch():  # the item read is the item retracted, whatever other writers do
            try:
                state = led.get_session(self.session_id)
            except SessionNotFound:
                return None
            if state.message_count == 0:
                return None
            count = state.message_count
            (last,) = led.messages(self.session_id, offset=count - 1, limit=1)
            led.retract_message(self.session_id)
            # Never return one item while another one disappears: on a forked session whose own
            # versions overlap its parent's, retract_message can hide the parent's message of the
            # same version instead. Raising here rolls the batch back, so nothing is written.
            if count > 1 and led.messages(self.session_id, offset=count - 2, limit=1)[0].position == last.position:
                raise LedgerError(
                    f"session {self.session_id!r}: cannot pop its last item (version {last.version}): the ledger "
                    "would retract a different message of the same version from the session it was forked from",
                    session_id=self.session_id,
                )
        return _decode(last)

    def _clear_session(self) -> None:
        try:
            self.ledger.clear_conversation(self.session_id)  # an empty conversation writes nothing
        except SessionNotFound:
            pass

