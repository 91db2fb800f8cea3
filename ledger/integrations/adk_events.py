"""ADK events as ledger messages and back, losslessly (the mapping behind ``ledger.integrations.adk``).

It works on the JSON form of an ADK ``Event`` (``event.model_dump(mode="json", exclude_none=True)``),
so it imports nothing from ADK and needs no extra.

One event is one message:

- ``role``: ``tool`` when the event carries function responses, ``user`` when its author is the
  user, else ``assistant`` (an agent's text, thoughts and function calls).
- ``content``: one content block per part of ``event.content``, in order: ``text``; ``reasoning`` for
  a thought; ``tool_call`` for a ``function_call`` (its ``args`` as the block's ``arguments``);
  ``tool_result`` for a ``function_response`` (its ``response`` as JSON text, so search finds what a
  tool returned); ``image`` or ``file`` for ``inline_data`` (the base64 ``data``) and ``file_data``
  (the ``file_uri``); ``text`` for executable code and code results; an empty ``text`` block for
  any other part. An event without parts is one empty ``text`` block.
- Each block's ``provider`` is ``{"adk": {"part": ..., "field": ...}}``: the rest of the part, less
  the one field the block holds (named by ``field``, so nothing is stored twice). The first block's
  also holds ``"event"``: the whole event less its parts, and ``"v"``, this layout's version.
- ``tool_name`` and ``invocation_id``: the function response's name and call id (when the event
  answers one call); ``model``: the event's ``model_version``; ``tokens``: its ``usage_metadata``
  (Gemini's prompt, candidates, cached-content and thoughts counts, as the ledger's
  ``input``/``output``/``cache_read``/``reasoning``, thoughts counted in the output).

:func:`event_json` puts the parts back into the event, so ``Event.model_validate`` of it equals
the event appended. A message written by other code (plain text, or blocks without this layout)
reads back as a plain event of its role (:func:`foreign_event_json`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

#: The version of the layout in ``provider["adk"]``, stored in the first block as ``"v"``.
LAYOUT = 1

# The path of each part field a block can hold -> the block's key that holds it.
_HELD: dict[tuple[str, ...], str] = {
    ("text",): "text",
    ("function_call", "args"): "arguments",
    ("function_response", "response"): "content",
    ("inline_data", "data"): "data",
    ("file_data", "file_uri"): "url",
    ("executable_code", "code"): "text",
    ("code_execution_result", "output"): "text",
}


class MessageFields(NamedTuple):
    """The ``add_message`` arguments that record one ADK event."""

    role: str
    content: list[dict[str, Any]]
    tool_name: str | None
    invocation_id: str | None
    model: str | None
    tokens: dict[str, int] | None


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def delivery_id(ledger_session_id: str, event: Mapping[str, Any]) -> str:
    """The ledger ``event_id`` of an event's message: the same for an equal re-delivery of the same event
    to the same session (stored once), different for different events, even ones sharing an ADK id."""
    digest = hashlib.sha256(f"{ledger_session_id}\x00{canonical(event)}".encode()).hexdigest()
    return f"adk-{digest[:48]}"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _block(part: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """The content block for one part, and the path of the part's field it holds (None: none, the part
    is kept whole in the block's ``provider``)."""
    text = part.get("text")
    if isinstance(text, str):
        return {"type": "reasoning" if part.get("thought") is True else "text", "text": text}, ("text",)
    call = part.get("function_call")
    if isinstance(call, Mapping) and isinstance(call.get("name"), str):
        args = call.get("args")
        block = {"type": "tool_call", "id": str(call.get("id") or ""), "name": call["name"],
                 "arguments": args if isinstance(args, dict) else {}}
        return block, ("function_call", "args") if isinstance(args, dict) else None
    response = part.get("function_response")
    if isinstance(response, Mapping):
        value = response.get("response")
        block = {"type": "tool_result", "call_id": str(response.get("id") or ""),
                 "content": _json(value) if isinstance(value, dict) else ""}
        return block, ("function_response", "response") if isinstance(value, dict) else None
    for field, key, target in (("inline_data", "data", "data"), ("file_data", "file_uri", "url")):
        holder = part.get(field)
        if not isinstance(holder, Mapping) or not isinstance(holder.get(key), str):
            continue
        media = holder.get("mime_type")
        if target == "data" and not isinstance(media, str):
            break  # a block with data needs its media type: the part stays whole
        block = {"type": "image" if isinstance(media, str) and media.startswith("image/") else "file",
                 target: holder[key]}
        if isinstance(media, str):
            block["media_type"] = media
        return block, (field, key)
    for field, key in (("executable_code", "code"), ("code_execution_result", "output")):
        holder = part.get(field)
        if isinstance(holder, Mapping) and isinstance(holder.get(key), str):
            return {"type": "text", "text": holder[key]}, (field, key)
    return {"type": "text", "text": ""}, None


def _without(part: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    rest = copy.deepcopy(dict(part))
    inner = rest
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return rest


def _put(part: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    inner = part
    for key in path[:-1]:
        inner = inner.setdefault(key, {})
    inner[path[-1]] = value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def gemini_tokens(usage: Any) -> dict[str, int] | None:
    """Gemini's ``usage_metadata`` (JSON form) as the ledger's token figures, None when it has none.

    ``input`` is the prompt (cached content included, as Gemini counts it) plus tool-use prompt tokens;
    ``output`` the candidates plus the thoughts (OpenTelemetry counts reasoning in the output);
    ``cache_read`` the cached content, ``reasoning`` the thoughts. A figure that would exceed its total
    (inconsistent usage) is left out rather than refused.
    """
    if not isinstance(usage, Mapping):
        return None
    names = ("prompt_token_count", "tool_use_prompt_token_count", "candidates_token_count", "thoughts_token_count",
             "cached_content_token_count")
    if not any(name in usage for name in names):
        return None
    thoughts = _count(usage.get("thoughts_token_count"))
    cached = _count(usage.get("cached_content_token_count"))
    tokens = {
        "input": _count(usage.get("prompt_token_count")) + _count(usage.get("tool_use_prompt_token_count")),
        "output": _count(usage.get("candidates_token_count")) + thoughts,
    }
    if cached and cached <= tokens["input"]:
        tokens["cache_read"] = cached
    if thoughts:
        tokens["reasoning"] = thoughts
    return tokens


def _name(value: object, limit: int) -> str | None:
    return value if isinstance(value, str) and value and len(value.encode()) <= limit else None


def message_fields(event: Mapping[str, Any], *, name_limit: int) -> MessageFields:
    """The message that records an event (its JSON form; see the module's docstring)."""
    stored = copy.deepcopy(dict(event))
    content = stored.get("content")
    parts = content.pop("parts", None) if isinstance(content, dict) else None
    blocks: list[dict[str, Any]] = []
    responses: list[Mapping[str, Any]] = []
    for part in parts if isinstance(parts, list) else []:
        block, moved = _block(part)
        adk: dict[str, Any] = {"part": part if moved is None else _without(part, moved)}
        if moved is not None:
            adk["field"] = ".".join(moved)
        blocks.append({**block, "provider": {"adk": adk}})
        if isinstance(part, Mapping) and isinstance(part.get("function_response"), Mapping):
            responses.append(part["function_response"])
    if not isinstance(parts, list) or not parts:
        if isinstance(content, dict) and parts is not None:
            content["parts"] = parts  # an empty (or odd) parts value stays in the event as it was
        blocks = [{"type": "text", "text": "", "provider": {"adk": {}}}]
    first = blocks[0]["provider"]["adk"]
    first.update({"v": LAYOUT, "event": stored, "parts_moved": isinstance(parts, list) and bool(parts)})
    if responses:
        role = "tool"
    elif event.get("author") == "user":
        role = "user"
    else:
        role = "assistant"
    tool_name = invocation_id = None
    if len(responses) == 1:
        tool_name = _name(responses[0].get("name"), name_limit)
        invocation_id = _name(responses[0].get("id"), name_limit)
    return MessageFields(
        role=role,
        content=blocks,
        tool_name=tool_name,
        invocation_id=invocation_id,
        model=_name(event.get("model_version"), name_limit),
        tokens=gemini_tokens(event.get("usage_metadata")),
    )


def _adk(block: object) -> Mapping[str, Any] | None:
    if not isinstance(block, Mapping):
        return None
    provider = block.get("provider")
    adk = provider.get("adk") if isinstance(provider, Mapping) else None
    return adk if isinstance(adk, Mapping) else None


def event_json(blocks: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    """The JSON form of the event a message recorded (parts put back), or None for a message this
    layout did not write."""
    head = _adk(blocks[0]) if blocks else None
    if blocks is None or head is None or head.get("v") != LAYOUT or not isinstance(head.get("event"), Mapping):
        return None
    event = copy.deepcopy(dict(head["event"]))
    if head.get("parts_moved"):
        parts = []
        for block in blocks:
            adk = _adk(block) or {}
            part = copy.deepcopy(dict(adk.get("part") or {}))
            field = adk.get("field")
            path = tuple(field.split(".")) if isinstance(field, str) else ()
            if path in _HELD:
                value = block[_HELD[path]]
                _put(part, path, json.loads(value) if path == ("function_response", "response") else value)
            parts.append(part)
        content = event.get("content")
        event["content"] = {**(content if isinstance(content, dict) else {}), "parts": parts}
    return event


def foreign_event_json(role: str, text: str, recorded_at: datetime, position: int) -> dict[str, Any]:
    """An ADK event for a message that other code wrote: its text as one part, the user's or the model's."""
    return {
        "id": f"ledger-{position}",
        "invocation_id": "",
        "author": "user" if role == "user" else role,
        "content": {"role": "user" if role in ("user", "tool") else "model", "parts": [{"text": text}]},
        "timestamp": recorded_at.timestamp(),
    }
