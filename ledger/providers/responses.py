"""Recording a provider's response: ``parse_response``.

| response | format | detected by | the assistant message holds |
|---|---|---|---|
| OpenAI ``ChatCompletion`` | ``openai-chat`` | ``object == "chat.completion"`` or a ``choices`` list | ``choices[0].message``: text, ``refusal`` (text flagged ``refusal: "field"``), ``tool_calls`` |
| OpenAI Responses ``Response`` | ``openai-responses`` | ``object == "response"`` and an ``output`` list | the ``output`` items: assistant messages (``output_text``/``refusal``), ``function_call``/``custom_tool_call``, ``reasoning`` |
| Anthropic ``Message`` | ``anthropic`` | ``type == "message"`` and a ``content`` list | the ``content`` blocks: ``text``, ``tool_use``, ``thinking``, ``redacted_thinking`` |

Each is one assistant message (one model turn) built exactly as ``from_provider`` builds the request form
of that output, so ``to_provider`` of the recorded conversation sends the output back unchanged. The
message carries ``model`` (the response's model) and ``tokens`` (the response's usage, passed through as
given: the SDK's usage object for an SDK response, the dict for a dict; ``ledger.tokens.normalize_tokens``
reads it). The response id and its finish/stop reason (``status`` for Responses) are kept in the first
block's ``provider[<format>]["response"]``, never rendered.

Lossy cases: only ``choices[0]`` of a ChatCompletion is recorded; response metadata other than the id and
finish/stop reason (``created``, ``system_fingerprint``, ``service_tier``, logprobs of a choice, ...) is not
kept; null-valued keys of Responses output items and Anthropic content blocks are left out; an empty answer
is the string ``""`` and keeps no metadata. Output that has no canonical form (Responses web search or
computer calls, Anthropic server tool blocks, ...) raises ``InvalidInput`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .anthropic_messages import message_from_message
from .common import ProviderFormat, RecordedResponse, check_format, invalid, jsonable
from .openai_chat import message_from_completion
from .openai_responses import message_from_response


def detect_format(data: Mapping[str, Any]) -> ProviderFormat:
    """The format of a response given as JSON data, or InvalidInput."""
    if data.get("object") == "chat.completion" or isinstance(data.get("choices"), list):
        return "openai-chat"
    if data.get("object") == "response" and isinstance(data.get("output"), list):
        return "openai-responses"
    if data.get("type") == "message" and isinstance(data.get("content"), list):
        return "anthropic"
    raise invalid(
        "response",
        "response",
        "not a ChatCompletion (object 'chat.completion'), a Responses Response (object 'response' with "
        "'output') or an Anthropic Message (type 'message' with 'content'); pass format= to say which",
    )


def parse_response(response: object, format: ProviderFormat | str | None = None) -> RecordedResponse:
    """A provider response (an SDK object or its dict) as the assistant message to append, the model and
    the raw usage. ``format`` is detected when None."""
    fmt_name = "response" if format is None else check_format(format)
    data = jsonable(response, fmt_name, "response")
    if not isinstance(data, dict):
        raise invalid(fmt_name, "response", f"expected a response object, got {type(response).__name__}")
    fmt = detect_format(data) if format is None else check_format(format)
    if fmt == "openai-chat":
        message = message_from_completion(data)
    elif fmt == "openai-responses":
        message = message_from_response(data)
    else:
        message = message_from_message(data)
    usage = response.get("usage") if isinstance(response, Mapping) else getattr(response, "usage", None)
    model = data.get("model") if isinstance(data.get("model"), str) else None
    message = msgspec.structs.replace(message, model=model, tokens=usage)
    return RecordedResponse(messages=[message], model=model, tokens=usage)
