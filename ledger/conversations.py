"""Conversations in the providers' own forms: handed back as a request input, appended from one, and a
model's response recorded in one call.

The conversions are ``ledger.providers``' pure functions; this collaborator reads and appends through
the ledger's reads and commands, so every message is validated, limited and folded as ``add_message``
does it. Appending several messages is one transaction: all of them, or none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .commands import Commands
from .engine import Engine
from .providers import from_provider, parse_response, to_provider
from .providers.common import NewMessage, check_format
from .reads import Reads
from .session import Message
from .validation import check_id, check_int


class Conversations:
    """``conversation``, ``add_messages`` and ``record_response``, on one engine."""

    def __init__(self, engine: Engine, reads: Reads, commands: Commands) -> None:
        self._engine = engine
        self._reads = reads
        self._commands = commands

    def conversation(
        self, session_id: str, *, format: str, last: int | None = None, at: datetime | None = None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """The effective conversation (as it stood ``at``, when given) as the request input of a provider:
        ``format`` is ``"openai-chat"`` (a list of chat messages), ``"openai-responses"`` (a list of input
        items) or ``"anthropic"`` (``{"messages": [...]}``, with ``"system"`` when there is one), with
        system and developer messages where the provider wants them, tool calls paired with their results
        and roles valid for it (``ledger.providers``).

        ``last=N`` keeps the latest N messages as a window a model can take: the system and developer
        messages before it stay at its start (the instructions still apply), and it begins at a turn the
        provider accepts first (never an orphaned tool result; for Anthropic, a user turn), so it may hold
        a few fewer than N. Raises ``InvalidInput`` for an unknown format, or for a message the format
        cannot carry."""
        fmt = check_format(format)
        if last is None:
            messages = self._reads.messages(session_id, at=at)
        else:
            count = check_int(last, "last")
            with self._engine.read("conversation"):  # the window and the instructions from one moment
                window = _opening(self._reads.messages(session_id, last=count, at=at), fmt)
                instructions = self._reads.messages(session_id, at=at, roles=_INSTRUCTIONS)
            # The effective conversation runs in log order (a fork's own messages come after its parent's), so
            # the instructions before the window are those at earlier positions.
            first = window[0].position if window else None
            messages = [m for m in instructions if first is None or m.position < first] + window
        out = to_provider(messages, fmt)
        if isinstance(out, dict) and out.get("system") is None:
            out.pop("system", None)  # the API takes no null system: it is left out
        return out

    def add_messages(self, session_id: str, messages: object, *, format: str) -> int:
        """Append provider-shaped request messages (what a client sends the provider: ``format`` as for
        ``conversation``) to the session, all in one transaction; returns the session's new version.
        ``conversation(session_id, format=format)`` gives them back in the same shape."""
        sid = check_id(session_id, "session_id")
        return self._append(sid, from_provider(messages, check_format(format)))

    def record_response(self, session_id: str, response: object, *, format: str | None = None) -> int:
        """Record a model's response: an OpenAI Chat Completion or Responses ``Response``, or an Anthropic
        ``Message``, as the SDK's object or as a dict (``format`` found from it when None). Its assistant
        message (text, tool calls, reasoning) is appended with the model name and the usage, in one
        transaction; returns the session's new version."""
        sid = check_id(session_id, "session_id")
        return self._append(sid, parse_response(response, format).messages)

    def _append(self, session_id: str, messages: list[NewMessage]) -> int:
        version = 0
        with self._engine.write("append messages"):  # joins the caller's batch, if one is open
            for m in messages:
                version = self._commands.add_message(
                    session_id, m.role, m.content, tool_name=m.tool_name, invocation_id=m.invocation_id,
                    model=m.model, tokens=m.tokens,
                )
        return version or self._reads.get_session(session_id).version


_INSTRUCTIONS = ("system", "developer")


def _opening(window: list[Message], fmt: str) -> list[Message]:
    """The latest messages, begun where the provider accepts a conversation to begin."""
    start = 0
    while start < len(window) and _cannot_open(window[start], fmt):
        start += 1
    return window[start:]


def _cannot_open(message: Message, fmt: str) -> bool:
    # A tool result without the call before it is refused by every provider; Anthropic wants a user first.
    if message.role == "tool" or any(b.get("type") == "tool_result" for b in message.blocks or ()):
        return True
    return fmt == "anthropic" and message.role == "assistant"
