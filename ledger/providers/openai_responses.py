"""OpenAI Responses (``"openai-responses"``): ``input`` items to and from canonical messages.

Mapping (provider -> canonical; rendering is the reverse):

| Responses input item | canonical |
|---|---|
| ``{"role": "system"/"developer"/"user", "content": "..."}`` (``type: "message"`` optional) | a string message of that role (kept in place) |
| the same with a list of parts | a block message; item keys other than role/content (``type``, ``id``, ``status``) kept as ``item`` extras |
| part ``{"type": "input_text", "text"}`` | ``text`` |
| part ``{"type": "input_image", "image_url" / "file_id", "detail"}`` | ``image`` with ``url`` (or ``data`` + ``media_type`` for a data URL) or ``file_id``, and ``detail`` |
| part ``{"type": "input_file", "file_id" / "file_url" / "file_data", "filename"}`` | ``file`` with ``file_id`` / ``url`` / ``data`` + ``media_type``, and ``filename`` |
| consecutive assistant-side items (assistant ``message``, ``function_call``, ``custom_tool_call``, ``reasoning``) | **one** ``assistant`` message holding their blocks in order (one model turn) |
| ``{"role": "assistant", "content": "..."}`` | a ``text`` block (alone in its turn: a string message) |
| assistant ``message`` item with parts ``output_text`` / ``refusal`` (or ``input_text``) | ``text`` blocks (a refusal flagged ``refusal: "part"``); the first flagged with the item's keys (``item``: ``id``, ``status``, ``type``, ``phase``), later ones ``continues`` |
| ``{"type": "function_call", "call_id", "name", "arguments", "id", "status"}`` | ``tool_call`` ``{id: call_id, name, arguments}`` (``id``/``status`` as extras) |
| ``{"type": "custom_tool_call", "call_id", "name", "input"}`` | ``tool_call`` with ``arguments`` = ``input``, flagged ``custom`` |
| ``{"type": "reasoning", "id", "summary": [...], "encrypted_content"}`` | one ``reasoning`` block per summary part (``text`` = the summary text; ``""`` and one block when the summary is empty); the first holds ``id`` and ``redacted`` = ``encrypted_content``; later parts are flagged ``continues``; ``content``/``status`` kept as ``item`` extras |
| ``{"type": "function_call_output", "call_id", "output"}`` | a ``tool`` message: ``invocation_id`` = ``call_id``, content = ``output`` (string or parts), ``tool_name`` = the item's ``name`` or the matching call's |
| ``custom_tool_call_output`` | the same, flagged ``custom`` |
| a plain string ``input`` | one user message |

Rendering canonical messages that did not come from this format:

- an assistant ``text`` block becomes its own ``{"role": "assistant", "content": text}`` item (the
  easy-message form every model takes); a ``tool_call`` a ``function_call`` item (object arguments
  JSON-encoded); ``tool_result`` blocks ``function_call_output`` items, splitting the message where they
  stand (the other blocks of a ``tool`` message are the result for its own ``invocation_id``); an ``image`` without ``detail`` gets ``"detail": "auto"`` (the SDK's type requires it).

Lossy cases (documented, never silent elsewhere):

- **Reasoning is provider-bound**: a ``reasoning`` block without an ``id`` (Anthropic thinking, say) is
  dropped, as the Responses API takes back only its own reasoning items.
- ``tool_result.is_error`` is dropped (function call outputs have no error flag).
- A reasoning item's raw ``content`` (``reasoning_text``) is kept verbatim as an extra but is not part of
  the canonical ``text`` (which is the summary).

Cannot be represented (``InvalidInput`` naming the block): images or files in assistant messages;
``tool_call`` blocks outside assistant messages; reasoning outside assistant messages. Not accepted from
the provider: item types with no canonical form (``item_reference``, ``web_search_call``,
``computer_call``, MCP and shell items, ...): the error names the type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .common import (
    MISSING,
    Block,
    MessageLike,
    NewMessage,
    answered_call,
    arguments_text,
    block_str,
    build_message,
    data_url,
    flags,
    head_flags,
    invalid,
    is_placeholder,
    jsonable,
    mark,
    media_type,
    need_list,
    need_map,
    need_str,
    opt_str,
    placeholder,
    rest,
    result_to,
    source_of,
    split_data_url,
    text_block,
    tool_answers,
    walk_openai,
    with_response,
)

FMT: Final = "openai-responses"
_SUPPORTED = "message, function_call, function_call_output, custom_tool_call, custom_tool_call_output, reasoning"


# --- from the provider ----------------------------------------------------------------------------------


def from_responses(items: object) -> list[NewMessage]:
    """Responses API input items (dicts, typed dicts or the SDK's output item models, e.g.
    ``response.output``) as canonical messages to append."""
    data = jsonable(items, FMT, "input")
    if isinstance(data, str):
        return [NewMessage(role="user", content=data)]
    data = need_list(data, FMT, "input")
    out: list[NewMessage] = []
    turn: list[Block] = []
    names: dict[str, str] = {}

    def flush() -> None:
        if turn:
            out.append(_turn_message(list(turn)))
            turn.clear()

    for i, raw in enumerate(data):
        where = f"input[{i}]"
        item = need_map(raw, FMT, where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                turn.extend(_assistant_item(item, where))
            elif role in ("system", "developer", "user"):
                flush()
                out.append(_input_message(item, str(role), where))
            else:
                raise invalid(
                    FMT, f"{where}.role", f"unknown role {role!r}; expected system, developer, user or assistant"
                )
        elif kind in ("function_call", "custom_tool_call"):
            block = _call_from(item, str(kind), where)
            names[block["id"]] = block["name"]
            turn.append(block)
        elif kind == "reasoning":
            turn.extend(_reasoning_from(item, where))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            flush()
            out.append(_output_from(item, str(kind), where, names))
        else:
            raise invalid(FMT, f"{where}.type", f"item type {kind!r} has no canonical form; supported: {_SUPPORTED}")
    flush()
    return out


def _turn_message(blocks: list[Block]) -> NewMessage:
    if len(blocks) == 1 and blocks[0]["type"] == "text" and "provider" not in blocks[0]:
        return NewMessage(role="assistant", content=blocks[0]["text"])
    return NewMessage(role="assistant", content=blocks)


def _input_message(item: dict[str, Any], role: str, where: str) -> NewMessage:
    extras = rest(item, ("role", "content"))
    content = item.get("content", MISSING)
    if isinstance(content, str):
        return build_message(FMT, role, [text_block(content)], extras, shape="string")
    if not isinstance(content, list):
        raise invalid(FMT, f"{where}.content", "expected a string or a list of content parts")
    blocks = [_input_part_from(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
    return build_message(FMT, role, blocks, extras)


def _input_part_from(p: object, where: str) -> Block:
    part = need_map(p, FMT, where)
    kind = part.get("type")
    if kind == "input_text":
        return mark(text_block(need_str(part, "text", FMT, where)), FMT, extra=rest(part, ("type", "text")))
    used = ["type"]
    block: Block
    if kind == "input_image":
        if isinstance(part.get("image_url"), str):
            split = split_data_url(part["image_url"])
            block = (
                {"type": "image", "data": split[1], "media_type": split[0]}
                if split
                else {"type": "image", "url": part["image_url"]}
            )
            used.append("image_url")
        elif isinstance(part.get("file_id"), str):
            block = {"type": "image", "file_id": part["file_id"]}
            used.append("file_id")
        else:
            raise invalid(FMT, where, "an input_image needs image_url or file_id")
        if isinstance(part.get("detail"), str):
            block["detail"] = part["detail"]
            used.append("detail")
        return mark(block, FMT, extra=rest(part, used), no_detail=True if "detail" not in part else None)
    if kind == "input_file":
        raw = False
        if isinstance(part.get("file_id"), str):
            block = {"type": "file", "file_id": part["file_id"]}
            used.append("file_id")
        elif isinstance(part.get("file_url"), str):
            block = {"type": "file", "url": part["file_url"]}
            used.append("file_url")
        elif isinstance(part.get("file_data"), str):
            split = split_data_url(part["file_data"])
            if split:
                block = {"type": "file", "data": split[1], "media_type": split[0]}
            else:  # not a data URL: kept as given, flagged so it renders back unchanged
                block = {"type": "file", "data": part["file_data"], "media_type": "application/octet-stream"}
                raw = True
            used.append("file_data")
        else:
            raise invalid(FMT, where, "an input_file needs file_id, file_url or file_data")
        if isinstance(part.get("filename"), str):
            block["filename"] = part["filename"]
            used.append("filename")
        return mark(block, FMT, extra=rest(part, used), raw_data=True if raw else None)
    raise invalid(
        FMT, f"{where}.type", f"part type {kind!r} is not supported; expected input_text, input_image or input_file"
    )


def _assistant_item(item: dict[str, Any], where: str) -> list[Block]:
    extras = rest(item, ("role", "content"))
    content = item.get("content", MISSING)
    if isinstance(content, str):
        block = text_block(content)
        if extras:
            mark(block, FMT, item=extras, content="string")
        return [block]
    if not isinstance(content, list):
        raise invalid(FMT, f"{where}.content", "expected a string or a list of output_text/refusal parts")
    blocks: list[Block] = []
    for j, p in enumerate(content):
        pw = f"{where}.content[{j}]"
        part = need_map(p, FMT, pw)
        kind = part.get("type")
        if kind in ("output_text", "input_text"):  # the SDK's easy-message type allows input_text here
            block = mark(text_block(need_str(part, "text", FMT, pw)), FMT, extra=rest(part, ("type", "text")))
            if kind == "input_text":
                mark(block, FMT, part="input_text")
        elif kind == "refusal":
            block = text_block(need_str(part, "refusal", FMT, pw))
            mark(block, FMT, refusal="part", extra=rest(part, ("type", "refusal")))
        else:
            raise invalid(
                FMT,
                f"{pw}.type",
                f"part type {kind!r} is not supported in an assistant message; expected output_text, input_text or refusal",
            )
        if j:
            mark(block, FMT, continues=True)
        blocks.append(block)
    if not blocks:
        blocks.append(placeholder(FMT))
    mark(blocks[0], FMT, item=extras)
    return blocks


def _call_from(item: dict[str, Any], kind: str, where: str) -> Block:
    arg_key = "arguments" if kind == "function_call" else "input"
    block: Block = {
        "type": "tool_call",
        "id": need_str(item, "call_id", FMT, where),
        "name": need_str(item, "name", FMT, where),
        "arguments": need_str(item, arg_key, FMT, where),
    }
    return mark(
        block,
        FMT,
        custom=True if kind == "custom_tool_call" else None,
        extra=rest(item, ("type", "call_id", "name", arg_key)),
    )


def _reasoning_from(item: dict[str, Any], where: str) -> list[Block]:
    rid = need_str(item, "id", FMT, where)
    summary = need_list(item.get("summary"), FMT, f"{where}.summary")
    used = ["type", "id", "summary"]
    blocks: list[Block] = []
    for j, s in enumerate(summary):
        sw = f"{where}.summary[{j}]"
        part = need_map(s, FMT, sw)
        if part.get("type") != "summary_text":
            raise invalid(FMT, f"{sw}.type", "expected summary_text")
        block: Block = {"type": "reasoning", "text": need_str(part, "text", FMT, sw)}
        mark(block, FMT, extra=rest(part, ("type", "text")), continues=True if j else None)
        blocks.append(block)
    if not blocks:
        blocks.append({"type": "reasoning", "text": ""})
    first = blocks[0]
    first["id"] = rid
    if isinstance(item.get("encrypted_content"), str):
        first["redacted"] = item["encrypted_content"]
        used.append("encrypted_content")
    extras = rest(item, used)
    empty_part = bool(summary) and first["text"] == ""  # a summary part with no text, not "no summary"
    mark(first, FMT, item=extras or None, empty_part=True if empty_part else None)
    # keep the canonical keys first and "provider" last, for readability of stored blocks
    blocks[0] = {k: first[k] for k in ("type", "text", "id", "redacted", "provider") if k in first}
    return blocks


def _output_from(item: dict[str, Any], kind: str, where: str, names: Mapping[str, str]) -> NewMessage:
    call_id = need_str(item, "call_id", FMT, where)
    extras = rest(item, ("type", "call_id", "output"))
    name = extras.get("name") if isinstance(extras.get("name"), str) else names.get(call_id)
    output = item.get("output", MISSING)
    if isinstance(output, str):
        blocks, shape = [text_block(output)], "string"
    elif isinstance(output, list):
        blocks, shape = [_input_part_from(p, f"{where}.output[{j}]") for j, p in enumerate(output)], None
    else:
        raise invalid(FMT, f"{where}.output", "expected a string or a list of content parts")
    return build_message(
        FMT,
        "tool",
        blocks,
        extras,
        shape=shape,
        message_flags={"custom": True} if kind == "custom_tool_call_output" else None,
        tool_name=name,
        invocation_id=call_id,
    )


def message_from_response(data: Mapping[str, Any]) -> NewMessage:
    """The assistant message of a Responses ``Response`` (as JSON data): its output items, exactly as they
    are sent back as input, with the response id and status kept as response extras. Null-valued item
    keys are left out."""
    output = need_list(data.get("output"), FMT, "response.output")
    items = []
    for i, raw in enumerate(output):
        item = need_map(raw, FMT, f"response.output[{i}]")
        kind = item.get("type")
        if kind not in ("message", "function_call", "custom_tool_call", "reasoning"):
            raise invalid(FMT, f"response.output[{i}].type", f"output item type {kind!r} has no canonical form")
        items.append(_strip_nulls(item))
    messages = from_responses(items)
    message = messages[0] if messages else NewMessage(role="assistant", content="")
    info = {"id": data.get("id"), "status": data.get("status"), "incomplete_details": data.get("incomplete_details")}
    return with_response(message, FMT, info)


def _strip_nulls(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if v is not None}
    if isinstance(out.get("content"), list):
        out["content"] = [
            {k: v for k, v in p.items() if v is not None} if isinstance(p, dict) else p for p in out["content"]
        ]
    return out


# --- to the provider ------------------------------------------------------------------------------------


def to_responses(messages: Sequence[MessageLike]) -> list[dict[str, Any]]:
    """Canonical messages as a Responses API ``input`` list."""
    return walk_openai(
        messages, FMT, tool_text=lambda call, text: {"type": "function_call_output", "call_id": call, "output": text},
        assistant=_assistant_to, tool=_tool_to, plain=_input_to,
    )


def _content(parts: list[dict[str, Any]], shape: object, text_type: str) -> str | list[dict[str, Any]]:
    if shape == "string" and len(parts) == 1 and parts[0].keys() == {"type", "text"} and parts[0]["type"] == text_type:
        return str(parts[0]["text"])
    return parts


def _input_to(role: str, blocks: list[Block], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    current: tuple[dict[str, Any], list[dict[str, Any]], object] | None = None
    items: list[tuple[dict[str, Any], list[dict[str, Any]], object]] = []
    for j, b in enumerate(blocks):
        bw = f"{where}.blocks[{j}]"
        kind = b["type"]
        if kind == "tool_result":
            current = None
            out.append(result_to(b, bw, FMT, _result_part, _answer))
            continue
        if kind not in ("text", "image", "file"):
            what = "tool calls" if kind == "tool_call" else "reasoning" if kind == "reasoning" else None
            if what:
                raise invalid(FMT, f"{bw}.type", f"{what} belong in assistant messages")
            raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
        f = flags(b, FMT)
        if current is None or "item" in f:
            message: dict[str, Any] = {"role": role, "content": []}
            message.update(f.get("item", {}))
            current = (message, [], f.get("content"))
            items.append(current)
            out.append(message)
        if not is_placeholder(b):
            current[1].append(_input_part_to(b, bw))
    for message, parts, shape in items:
        message["content"] = _content(parts, shape, "input_text")
    if not out:
        out.append({"role": role, "content": []})
    return out


def _answer(call_id: str, output: str | list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _tool_to(m: MessageLike, blocks: list[Block], where: str) -> list[dict[str, Any]]:
    answers = tool_answers(m, blocks, where, FMT, _result_part, _answer)
    if answers is not None:
        return answers
    head = head_flags(blocks, FMT)
    parts = [_result_part(b, f"{where}.blocks[{j}]") for j, b in enumerate(blocks) if not is_placeholder(b)]
    item = _answer(answered_call(m, FMT, where), _content(parts, head.get("content"), "input_text"))
    if head.get("custom"):
        item["type"] = "custom_tool_call_output"
    item.update(head.get("item", {}))
    return [item]


def _result_part(b: Block, bw: str) -> dict[str, Any]:
    if b.get("type") not in ("text", "image", "file"):
        raise invalid(FMT, f"{bw}.type", f"a tool result holds text, image and file blocks, not {b.get('type')}")
    return _input_part_to(b, bw)


def _input_part_to(b: Block, bw: str) -> dict[str, Any]:
    f = flags(b, FMT)
    extra: dict[str, Any] = f.get("extra", {})
    kind = b["type"]
    if kind == "text":
        return {"type": "input_text", "text": block_str(b, "text", FMT, bw), **extra}
    where, value = source_of(b, FMT, bw)
    part: dict[str, Any]
    if kind == "image":
        if where == "file_id":
            part = {"type": "input_image", "file_id": value}
        else:
            part = {
                "type": "input_image",
                "image_url": value if where == "url" else data_url(media_type(b, FMT, bw), value),
            }
        detail = opt_str(b, "detail", FMT, bw)
        if detail is not None:
            part["detail"] = detail
        elif not f.get("no_detail"):
            part["detail"] = "auto"
        return {**part, **extra}
    if kind != "file":
        raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
    if where == "file_id":
        part = {"type": "input_file", "file_id": value}
    elif where == "url":
        part = {"type": "input_file", "file_url": value}
    else:
        raw = f.get("raw_data")
        part = {"type": "input_file", "file_data": value if raw else data_url(media_type(b, FMT, bw), value)}
    filename = opt_str(b, "filename", FMT, bw)
    if filename is not None:
        part["filename"] = filename
    return {**part, **extra}


def _assistant_to(blocks: list[Block], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    open_message: dict[str, Any] | None = None
    open_reasoning: dict[str, Any] | None = None
    for j, b in enumerate(blocks):
        bw = f"{where}.blocks[{j}]"
        kind = b["type"]
        f = flags(b, FMT)
        if kind == "reasoning":
            open_message = None
            text = block_str(b, "text", FMT, bw)
            summary = {"type": "summary_text", "text": text, **f.get("extra", {})}
            if f.get("continues") and open_reasoning is not None:
                open_reasoning["summary"].append(summary)
                continue
            rid = opt_str(b, "id", FMT, bw)
            if rid is None:
                open_reasoning = None  # not this provider's reasoning: documented as dropped
                continue
            item: dict[str, Any] = {
                "type": "reasoning",
                "id": rid,
                "summary": [summary] if text or f.get("empty_part") else [],
            }
            redacted = opt_str(b, "redacted", FMT, bw)
            if redacted is not None:
                item["encrypted_content"] = redacted
            item.update(f.get("item", {}))
            out.append(item)
            open_reasoning = item
        elif kind == "text":
            open_reasoning = None
            text = block_str(b, "text", FMT, bw)
            if f.get("refusal") == "part":
                part = {"type": "refusal", "refusal": text, **f.get("extra", {})}
            else:
                part = {"type": f.get("part", "output_text"), "text": text, **f.get("extra", {})}
            if f.get("continues") and open_message is not None:
                if not is_placeholder(b):
                    open_message["content"].append(part)
                continue
            if "item" in f or f.get("continues"):
                if f.get("content") == "string":
                    out.append({"role": "assistant", "content": text, **f.get("item", {})})
                    open_message = None
                else:
                    open_message = {"role": "assistant", "content": [] if is_placeholder(b) else [part]}
                    open_message.update(f.get("item", {"type": "message"}))
                    out.append(open_message)
            elif not is_placeholder(b):
                out.append({"role": "assistant", "content": text})
                open_message = None
        elif kind == "tool_call":
            open_message = open_reasoning = None
            out.append(_call_to(b, f, bw))
        elif kind in ("image", "file", "tool_result"):
            raise invalid(
                FMT,
                f"{bw}.type",
                f"openai-responses assistant messages hold text, refusals, reasoning and tool calls, not {kind}",
            )
        else:
            raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
    return out


def _call_to(b: Block, f: dict[str, Any], bw: str) -> dict[str, Any]:
    call_id = block_str(b, "id", FMT, bw)
    name = block_str(b, "name", FMT, bw)
    args = arguments_text(b, FMT, bw)
    if f.get("custom"):
        return {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": args, **f.get("extra", {})}
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args, **f.get("extra", {})}
