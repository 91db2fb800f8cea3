"""Provider formats: canonical conversations to and from OpenAI Chat Completions, OpenAI Responses and
Anthropic Messages (issue 15, "Reading back and recording"). Pure functions: no ledger, no SQL, no I/O.

- ``to_provider(messages, format)``: stored messages (``ledger.session.Message``) as that provider's
  request input: a list of chat messages (``"openai-chat"``), a list of Responses input items
  (``"openai-responses"``), or ``{"system": ..., "messages": [...]}`` (``"anthropic"``).
- ``from_provider(messages, format)``: what a client sends (dicts, the SDKs' typed dicts, SDK models) as
  ``NewMessage`` objects to append.
- ``parse_response(response, format=None)``: a ChatCompletion, a Responses ``Response`` or an Anthropic
  ``Message`` (SDK object or dict) as a ``RecordedResponse``: the assistant message, the model and the
  raw usage.

The round trip law: for well-formed provider input ``x``,
``to_provider(stored(from_provider(x, f)), f) == x``, where ``stored`` is what the ledger keeps (a string
message's content; a block message's blocks as JSON round-trips them). Provider details without a
canonical field are kept in each block's ``"provider"`` object under the format's name (see
``ledger.providers.common``); a block from one provider renders for another from its canonical fields
alone.

The mapping tables and the lossy cases of each format are in the docstrings of
``ledger.providers.openai_chat``, ``ledger.providers.openai_responses``,
``ledger.providers.anthropic_messages`` and ``ledger.providers.responses``. In short:

| concept | openai-chat | openai-responses | anthropic |
|---|---|---|---|
| system / developer | messages in place | message items in place | top-level ``system`` (developer becomes system) |
| tool calls | ``tool_calls`` on the assistant message | ``function_call`` items | ``tool_use`` blocks |
| tool results | ``tool`` messages | ``function_call_output`` items | ``tool_result`` blocks in a user turn |
| reasoning | **dropped** | ``reasoning`` items (only those with an id) | ``thinking`` / ``redacted_thinking`` (only Anthropic's) |
| images | ``image_url`` (URL or data URL) | ``input_image`` (URL, data URL, file id) | ``image`` (base64, URL, file id) |
| files | ``file`` (file id or data URL), ``input_audio`` | ``input_file`` (file id, URL, data URL) | ``document`` (PDF, plain text, URL, file id) |

Anything a format cannot represent raises ``ledger.errors.InvalidInput`` naming the field; nothing is
dropped silently except the documented cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

from .anthropic_messages import from_anthropic, to_anthropic
from .common import (
    FORMATS,
    MessageLike,
    NewMessage,
    ProviderFormat,
    RecordedResponse,
    check_format,
)
from .openai_chat import from_chat, to_chat
from .openai_responses import from_responses, to_responses
from .responses import detect_format, parse_response

__all__ = [
    "FORMATS",
    "MessageLike",
    "NewMessage",
    "ProviderFormat",
    "RecordedResponse",
    "detect_format",
    "from_provider",
    "parse_response",
    "to_provider",
]


@overload
def to_provider(messages: Sequence[MessageLike], format: Literal["anthropic"]) -> dict[str, Any]: ...


@overload
def to_provider(
    messages: Sequence[MessageLike], format: Literal["openai-chat", "openai-responses"]
) -> list[dict[str, Any]]: ...


@overload
def to_provider(messages: Sequence[MessageLike], format: str) -> dict[str, Any] | list[dict[str, Any]]: ...


def to_provider(messages: Sequence[MessageLike], format: str) -> dict[str, Any] | list[dict[str, Any]]:
    """The conversation ``messages`` (``ledger.session.Message`` objects, in order) as ``format``'s request
    input: a list of chat messages (``"openai-chat"``), a list of Responses input items
    (``"openai-responses"``) or ``{"system": ..., "messages": [...]}`` (``"anthropic"``).

    Raises ``InvalidInput`` for an unknown format or for content the format cannot represent (the error
    names the message and block).
    """
    fmt = check_format(format)
    if fmt == "openai-chat":
        return to_chat(messages)
    if fmt == "openai-responses":
        return to_responses(messages)
    return to_anthropic(messages)


def from_provider(messages: object, format: ProviderFormat | str) -> list[NewMessage]:
    """Provider-shaped request input as canonical messages to append, in order.

    ``"openai-chat"``: the ``messages`` list; ``"openai-responses"``: the ``input`` list (or a string);
    ``"anthropic"``: ``{"system": ..., "messages": [...]}`` or the list of messages. Items may be dicts,
    the SDKs' typed dicts or SDK models. Raises ``InvalidInput`` naming the offending field for malformed
    input or provider content with no canonical form.
    """
    fmt = check_format(format)
    if fmt == "openai-chat":
        return from_chat(messages)
    if fmt == "openai-responses":
        return from_responses(messages)
    return from_anthropic(messages)
