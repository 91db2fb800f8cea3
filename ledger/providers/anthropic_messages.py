"""Anthropic Messages (``"anthropic"``): ``{"system": ..., "messages": [...]}`` to and from canonical messages.

Mapping (provider -> canonical; rendering is the reverse):

| Anthropic | canonical |
|---|---|
| ``system`` as a string | one ``system`` string message (first) |
| ``system`` as a list of text blocks | one ``system`` block message |
| ``{"role": "system", ...}`` inside ``messages`` (SDK 2.x) | a ``system`` message flagged ``in_messages`` (rendered back in place) |
| ``{"role": "user"/"assistant", "content": "..."}`` | a string message of that role |
| ``content`` as a list of blocks | a block message (a one-block list stays a list) |
| ``{"type": "text", "text", "cache_control", "citations"}`` | ``text`` (``cache_control``/``citations`` as extras) |
| ``{"type": "image", "source": {"type": "base64", "media_type", "data"}}`` | ``image`` with ``data`` + ``media_type`` (``"url"``: ``url``; ``"file"``: ``file_id``) |
| ``{"type": "document", "source": ..., "title"}`` | ``file``: base64 PDF -> ``data`` + ``media_type``; plain-text source -> ``data`` (the text, base64-encoded) + ``text/plain``; ``url``; ``file_id``; ``title`` <-> ``filename`` |
| ``{"type": "tool_use", "id", "name", "input"}`` | ``tool_call`` with ``arguments`` = the ``input`` object |
| ``{"type": "tool_result", "tool_use_id", "content", "is_error"}`` | ``tool_result`` ``{call_id, content (string or text/image/file blocks), is_error}``, kept inside its user message |
| ``{"type": "thinking", "thinking", "signature"}`` | ``reasoning`` ``{text, signature}`` |
| ``{"type": "redacted_thinking", "data"}`` | ``reasoning`` ``{text: "", redacted: data}`` flagged ``type: "redacted_thinking"`` |

Rendering (``to_anthropic``) returns ``{"system": str | list[text blocks] | None, "messages": [...]}``:

- every ``system`` and ``developer`` message goes to ``system``, in order: one string message gives a
  string, anything else a list of text blocks;
- ``tool`` messages become ``tool_result`` blocks (``tool_use_id`` = ``invocation_id``) in a user turn
  (a ``tool`` message's own ``tool_result`` blocks are kept as they are);
- consecutive messages of the same turn role are merged into one message so roles alternate (string
  contents become text blocks; empty strings are dropped when merging); the first turn must be a user
  turn (``InvalidInput`` otherwise);
- ``tool_call`` arguments given as a JSON string are decoded (``""`` is ``{}``; anything but an object is
  ``InvalidInput``).

Lossy cases (documented, never silent elsewhere):

- ``developer`` becomes ``system`` (Anthropic has no developer role); system/developer messages in the
  middle of a conversation move to the top-level ``system``; ``from_provider`` gives role ``system``.
- **Reasoning is provider-bound**: a ``reasoning`` block without a ``signature`` that is not Anthropic's
  redacted thinking (OpenAI reasoning, say) is dropped; an assistant message left empty by that is
  left out.
- an empty ``text`` block not recorded from Anthropic is left out (the API refuses empty text blocks;
  chat's ``content: ""`` beside tool calls, say); so is a message left with nothing by that.
- ``image.detail`` (an OpenAI hint) is dropped.
- a request given as a bare list or without ``system`` comes back with ``"system": None``; keys of the
  request other than ``system`` and ``messages`` (model, tools, ...) are not read.

Cannot be represented (``InvalidInput`` naming the block): a ``file`` with ``data`` other than PDF or
plain text, an image media type other than JPEG/PNG/GIF/WebP, non-text blocks in system messages,
``tool_call`` blocks outside assistant messages, reasoning outside assistant messages. Not accepted from
the provider: block types with no canonical form (``server_tool_use``, ``web_search_tool_result``,
``search_result``, ``container_upload``, document ``content`` sources, ...): the error names the type.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .common import (
    MISSING,
    Block,
    MessageLike,
    NewMessage,
    arguments_object,
    block_str,
    answered_call,
    build_message,
    flags,
    head_flags,
    invalid,
    is_placeholder,
    jsonable,
    mark,
    media_type,
    message_blocks,
    need_list,
    need_map,
    need_str,
    opt_str,
    rest,
    source_of,
    text_block,
    tool_runs,
    with_response,
)

FMT: Final = "anthropic"
_IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")


# --- from the provider ----------------------------------------------------------------------------------


def from_anthropic(request: object) -> list[NewMessage]:
    """An Anthropic request (``{"system": ..., "messages": [...]}``, or just the list of messages) as
    canonical messages to append."""
    data = jsonable(request, FMT, "request")
    system: object = None
    if isinstance(data, dict):
        if "messages" not in data:
            raise invalid(FMT, "messages", "is required (pass {'system': ..., 'messages': [...]} or the list)")
        system, data = data.get("system"), data["messages"]
    messages = need_list(data, FMT, "messages")
    out: list[NewMessage] = []
    if isinstance(system, str):
        out.append(NewMessage(role="system", content=system))
    elif isinstance(system, list):
        out.append(NewMessage(role="system", content=[_system_block(b, f"system[{j}]") for j, b in enumerate(system)]))
    elif system is not None:
        raise invalid(FMT, "system", "expected a string or a list of text blocks")
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        m = need_map(raw, FMT, where)
        role = m.get("role")
        if role not in ("user", "assistant", "system"):
            raise invalid(FMT, f"{where}.role", f"unknown role {role!r}; expected user or assistant")
        content = m.get("content", MISSING)
        if isinstance(content, str):
            blocks, shape = [text_block(content)], "string"
        elif isinstance(content, list):
            if role == "system":
                blocks = [_system_block(b, f"{where}.content[{j}]") for j, b in enumerate(content)]
            else:
                blocks = [_block_from(b, f"{where}.content[{j}]") for j, b in enumerate(content)]
            shape = None
        else:
            raise invalid(FMT, f"{where}.content", "expected a string or a list of content blocks")
        more = {"in_messages": True} if role == "system" else None
        out.append(build_message(FMT, str(role), blocks, rest(m, ("role", "content")), shape=shape, message_flags=more))
    return out


def _system_block(raw: object, where: str) -> Block:
    b = need_map(raw, FMT, where)
    if b.get("type") != "text":
        raise invalid(FMT, f"{where}.type", "system content holds text blocks only")
    return _block_from(b, where)


def _source_from(block: Mapping[str, Any], where: str, kinds: tuple[str, ...]) -> tuple[Block, dict[str, Any]]:
    """The canonical location fields of an image/document ``source`` and the source's extra keys."""
    source = need_map(block.get("source"), FMT, f"{where}.source")
    sw = f"{where}.source"
    kind = source.get("type")
    if kind not in kinds:
        raise invalid(FMT, f"{sw}.type", f"source type {kind!r} is not supported; expected {', '.join(kinds)}")
    if kind == "base64":
        fields: Block = {
            "data": need_str(source, "data", FMT, sw),
            "media_type": need_str(source, "media_type", FMT, sw),
        }
        return fields, rest(source, ("type", "data", "media_type"))
    if kind == "text":
        text = need_str(source, "data", FMT, sw)
        fields = {
            "data": base64.b64encode(text.encode()).decode(),
            "media_type": need_str(source, "media_type", FMT, sw),
        }
        return fields, rest(source, ("type", "data", "media_type"))
    if kind == "url":
        return {"url": need_str(source, "url", FMT, sw)}, rest(source, ("type", "url"))
    return {"file_id": need_str(source, "file_id", FMT, sw)}, rest(source, ("type", "file_id"))


def _block_from(raw: object, where: str, *, nested: bool = False) -> Block:
    b = need_map(raw, FMT, where)
    kind = b.get("type")
    block: Block
    if kind == "text":
        return mark(text_block(need_str(b, "text", FMT, where)), FMT, extra=rest(b, ("type", "text")))
    if kind == "image":
        fields, inner = _source_from(b, where, ("base64", "url", "file"))
        return mark({"type": "image", **fields}, FMT, inner=inner, extra=rest(b, ("type", "source")))
    if kind == "document":
        fields, inner = _source_from(b, where, ("base64", "text", "url", "file"))
        if "media_type" in fields and fields["media_type"] not in ("application/pdf", "text/plain"):
            raise invalid(FMT, f"{where}.source.media_type", "documents are PDF (base64) or text/plain")
        block = {"type": "file", **fields}
        used = ["type", "source"]
        if isinstance(b.get("title"), str):
            block["filename"] = b["title"]
            used.append("title")
        return mark(block, FMT, inner=inner, extra=rest(b, used))
    if nested:
        raise invalid(
            FMT,
            f"{where}.type",
            f"block type {kind!r} is not supported in a tool result; expected text, image or document",
        )
    if kind == "tool_use":
        block = {
            "type": "tool_call",
            "id": need_str(b, "id", FMT, where),
            "name": need_str(b, "name", FMT, where),
            "arguments": need_map(b.get("input"), FMT, f"{where}.input"),
        }
        return mark(block, FMT, extra=rest(b, ("type", "id", "name", "input")))
    if kind == "tool_result":
        block = {"type": "tool_result", "call_id": need_str(b, "tool_use_id", FMT, where)}
        used = ["type", "tool_use_id", "content"]
        content = b.get("content", MISSING)
        absent = content is MISSING
        if absent:
            block["content"] = ""
        elif isinstance(content, str):
            block["content"] = content
        elif isinstance(content, list):
            block["content"] = [_block_from(x, f"{where}.content[{k}]", nested=True) for k, x in enumerate(content)]
        else:
            raise invalid(FMT, f"{where}.content", "expected a string or a list of content blocks")
        if isinstance(b.get("is_error"), bool):
            block["is_error"] = b["is_error"]
            used.append("is_error")
        return mark(block, FMT, extra=rest(b, used), result_content="absent" if absent else None)
    if kind == "thinking":
        block = {
            "type": "reasoning",
            "text": need_str(b, "thinking", FMT, where),
            "signature": need_str(b, "signature", FMT, where),
        }
        return mark(block, FMT, extra=rest(b, ("type", "thinking", "signature")))
    if kind == "redacted_thinking":
        block = {"type": "reasoning", "text": "", "redacted": need_str(b, "data", FMT, where)}
        return mark(block, FMT, type="redacted_thinking", extra=rest(b, ("type", "data")))
    raise invalid(
        FMT,
        f"{where}.type",
        f"block type {kind!r} has no canonical form; supported: text, image, document, tool_use, tool_result, thinking, redacted_thinking",
    )


def message_from_message(data: Mapping[str, Any]) -> NewMessage:
    """The assistant message of an Anthropic ``Message`` (as JSON data): its content blocks, exactly as
    they are sent back, with the message id and stop reason kept as response extras. Null-valued block
    keys are left out; an empty answer is the string ``""``."""
    content = need_list(data.get("content"), FMT, "response.content")
    blocks = [
        {k: v for k, v in need_map(b, FMT, f"response.content[{j}]").items() if v is not None}
        for j, b in enumerate(content)
    ]
    if not blocks:
        return NewMessage(role="assistant", content="")
    (message,) = from_anthropic([{"role": "assistant", "content": blocks}])
    info = {"id": data.get("id"), "stop_reason": data.get("stop_reason"), "stop_sequence": data.get("stop_sequence")}
    return with_response(message, FMT, info)


# --- to the provider ------------------------------------------------------------------------------------


def to_anthropic(messages: Sequence[MessageLike]) -> dict[str, Any]:
    """Canonical messages as ``{"system": ..., "messages": [...]}`` for ``client.messages.create``."""
    system: list[tuple[MessageLike, list[dict[str, Any]] | None]] = []
    turns: list[dict[str, Any]] = []
    first_turn: tuple[int, str] | None = None
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.role
        blocks = message_blocks(m, FMT, where)
        if role in ("system", "developer"):
            rendered = None if blocks is None else _system_to(blocks, where)
            if blocks and head_flags(blocks, FMT).get("in_messages"):
                turn = {"role": "system", "content": _content(rendered or [], head_flags(blocks, FMT))}
                turn.update(head_flags(blocks, FMT).get("item", {}))
                turns.append(turn)
            else:
                system.append((m, rendered))
            continue
        if role in ("user", "tool"):
            turn_role = "user"
        elif role == "assistant":
            turn_role = "assistant"
        else:
            raise invalid(FMT, f"{where}.role", f"unknown role {role!r}")
        rendered_turn = _turn_to(m, blocks, where)
        if rendered_turn is None:
            continue
        if first_turn is None:
            first_turn = (i, turn_role)
        if turns and turns[-1]["role"] == turn_role:
            _merge(turns[-1], rendered_turn)
        else:
            turns.append({"role": turn_role, **rendered_turn})
    if first_turn is not None and first_turn[1] != "user":
        raise invalid(
            FMT,
            f"messages[{first_turn[0]}].role",
            "an Anthropic conversation starts with a user message, not an assistant one",
        )
    return {"system": _system_value(system), "messages": turns}


def _system_to(blocks: list[Block], where: str) -> list[dict[str, Any]]:
    out = []
    for j, b in enumerate(blocks):
        bw = f"{where}.blocks[{j}]"
        if b["type"] != "text":
            raise invalid(FMT, f"{bw}.type", f"Anthropic system content holds text only, not {b['type']}")
        if not is_placeholder(b):
            out.append(_text_to(b, bw))
    return out


def _system_value(system: list[tuple[MessageLike, list[dict[str, Any]] | None]]) -> str | list[dict[str, Any]] | None:
    if not system:
        return None
    if len(system) == 1 and system[0][1] is None:
        return system[0][0].content
    out: list[dict[str, Any]] = []
    for m, rendered in system:
        out.extend([{"type": "text", "text": m.content}] if rendered is None else rendered)
    return out


def _content(parts: list[dict[str, Any]], head: Mapping[str, Any]) -> str | list[dict[str, Any]]:
    if (
        head.get("content") == "string"
        and len(parts) == 1
        and parts[0].keys() == {"type", "text"}
        and parts[0]["type"] == "text"
    ):
        return str(parts[0]["text"])
    return parts


def _turn_to(m: MessageLike, blocks: list[Block] | None, where: str) -> dict[str, Any] | None:
    """The ``content`` (and message extras) a message contributes to its turn; None when nothing is left."""
    role = m.role
    if role == "tool":
        if blocks is None:
            content: str | list[dict[str, Any]] = m.content
            return {"content": [{"type": "tool_result", "tool_use_id": answered_call(m, FMT, where), "content": content}]}
        if any(b["type"] == "tool_result" for b in blocks):
            results: list[dict[str, Any]] = []
            for kind, run in tool_runs(blocks):
                if kind == "result":
                    results.append(_result_to(run[0][1], f"{where}.blocks[{run[0][0]}]"))
                else:
                    parts = [_result_part(b, f"{where}.blocks[{j}]") for j, b in run]
                    results.append({"type": "tool_result", "tool_use_id": answered_call(m, FMT, where), "content": parts})
            return {"content": results}
        parts = [_result_part(b, f"{where}.blocks[{j}]") for j, b in enumerate(blocks) if not is_placeholder(b)]
        content = _content(parts, head_flags(blocks, FMT))
        return {"content": [{"type": "tool_result", "tool_use_id": answered_call(m, FMT, where), "content": content}]}
    if blocks is None:
        return {"content": m.content}
    rendered: list[dict[str, Any]] = []
    for j, b in enumerate(blocks):
        bw = f"{where}.blocks[{j}]"
        kind = b["type"]
        if role == "user" and kind in ("tool_call", "reasoning"):
            what = "tool calls" if kind == "tool_call" else "reasoning"
            raise invalid(FMT, f"{bw}.type", f"{what} belong in assistant messages")
        if role == "assistant" and kind == "tool_result":
            raise invalid(FMT, f"{bw}.type", "tool results belong in user or tool messages")
        if is_placeholder(b) or _foreign_empty_text(b):
            continue
        part = _block_to(b, bw)
        if part is not None:
            rendered.append(part)
    if blocks and not rendered and all(b["type"] == "reasoning" or _foreign_empty_text(b) for b in blocks):
        return None  # only another provider's reasoning or empty text: documented as left out
    head = head_flags(blocks, FMT)
    turn: dict[str, Any] = {"content": _content(rendered, head)}
    turn.update(head.get("item", {}))
    return turn


def _result_part(b: Block, bw: str) -> dict[str, Any]:
    if b["type"] not in ("text", "image", "file"):
        raise invalid(FMT, f"{bw}.type", f"a tool result holds text, image and file blocks, not {b['type']}")
    return _part_to(b, bw)


def _foreign_empty_text(b: Block) -> bool:
    """An empty text block not recorded from Anthropic (say, chat's ``content: ""`` beside tool calls): the
    API refuses empty text blocks, so it is left out."""
    return b["type"] == "text" and b.get("text") == "" and not flags(b, FMT)


def _merge(turn: dict[str, Any], more: dict[str, Any]) -> None:
    def as_list(content: object) -> list[Any]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        return list(content) if isinstance(content, list) else []

    content = as_list(turn["content"]) + as_list(more["content"])
    turn.update({k: v for k, v in more.items() if k != "content"})
    turn["content"] = content


def _text_to(b: Block, bw: str) -> dict[str, Any]:
    return {"type": "text", "text": block_str(b, "text", FMT, bw), **flags(b, FMT).get("extra", {})}


def _source_to(b: Block, bw: str, kind: str) -> dict[str, Any]:
    where, value = source_of(b, FMT, bw)
    inner: dict[str, Any] = flags(b, FMT).get("inner", {})
    if where == "url":
        return {"type": "url", "url": value, **inner}
    if where == "file_id":
        return {"type": "file", "file_id": value, **inner}
    media = media_type(b, FMT, bw)
    if kind == "image":
        if media not in _IMAGE_TYPES:
            raise invalid(FMT, f"{bw}.media_type", f"Anthropic images are {', '.join(_IMAGE_TYPES)}, not {media!r}")
        return {"type": "base64", "media_type": media, "data": value, **inner}
    if media == "application/pdf":
        return {"type": "base64", "media_type": media, "data": value, **inner}
    if media == "text/plain":
        try:
            text = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise invalid(FMT, f"{bw}.data", "a text/plain file must be base64 of UTF-8 text") from None
        return {"type": "text", "media_type": media, "data": text, **inner}
    raise invalid(FMT, f"{bw}.media_type", f"Anthropic documents are application/pdf or text/plain, not {media!r}")


def _part_to(b: Block, bw: str) -> dict[str, Any]:
    """A text, image or file block as Anthropic content."""
    kind = b["type"]
    extra: dict[str, Any] = flags(b, FMT).get("extra", {})
    if kind == "text":
        return _text_to(b, bw)
    if kind == "image":
        return {"type": "image", "source": _source_to(b, bw, "image"), **extra}
    doc: dict[str, Any] = {"type": "document", "source": _source_to(b, bw, "file")}
    filename = opt_str(b, "filename", FMT, bw)
    if filename is not None:
        doc["title"] = filename
    return {**doc, **extra}


def _result_to(b: Block, bw: str) -> dict[str, Any]:
    f = flags(b, FMT)
    extra: dict[str, Any] = f.get("extra", {})
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block_str(b, "call_id", FMT, bw)}
    content = b.get("content", MISSING)
    if isinstance(content, str):
        if not (f.get("result_content") == "absent" and content == ""):
            result["content"] = content
    elif isinstance(content, list):
        parts = []
        for k, inner in enumerate(content):
            iw = f"{bw}.content[{k}]"
            block = need_map(inner, FMT, iw)
            if block.get("type") not in ("text", "image", "file"):
                raise invalid(FMT, f"{iw}.type", "tool result content holds text, image and file blocks")
            parts.append(_part_to(block, iw))
        result["content"] = parts
    else:
        raise invalid(FMT, f"{bw}.content", "expected a string or a list of blocks")
    if "is_error" in b:
        if not isinstance(b["is_error"], bool):
            raise invalid(FMT, f"{bw}.is_error", "expected a boolean")
        result["is_error"] = b["is_error"]
    return {**result, **extra}


def _block_to(b: Block, bw: str) -> dict[str, Any] | None:
    kind = b["type"]
    f = flags(b, FMT)
    extra: dict[str, Any] = f.get("extra", {})
    if kind in ("text", "image", "file"):
        return _part_to(b, bw)
    if kind == "tool_call":
        return {
            "type": "tool_use",
            "id": block_str(b, "id", FMT, bw),
            "name": block_str(b, "name", FMT, bw),
            "input": arguments_object(b, FMT, bw),
            **extra,
        }
    if kind == "tool_result":
        return _result_to(b, bw)
    if kind == "reasoning":
        text = block_str(b, "text", FMT, bw)
        signature = opt_str(b, "signature", FMT, bw)
        if signature is not None:
            return {"type": "thinking", "thinking": text, "signature": signature, **extra}
        redacted = opt_str(b, "redacted", FMT, bw)
        if f.get("type") == "redacted_thinking" and redacted is not None:
            return {"type": "redacted_thinking", "data": redacted, **extra}
        return None  # not this provider's reasoning: documented as dropped
    raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
