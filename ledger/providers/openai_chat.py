"""OpenAI Chat Completions (``"openai-chat"``): request ``messages`` to and from canonical messages.

Mapping (provider -> canonical; rendering is the reverse):

| OpenAI Chat | canonical |
|---|---|
| ``{"role": "system"/"developer"/"user", "content": "..."}`` | a string message of that role (kept in place) |
| ``content`` as a list of parts | a block message (a one-part list stays a list) |
| part ``{"type": "text", "text"}`` | ``text`` |
| part ``{"type": "image_url", "image_url": {"url", "detail"}}`` | ``image`` with ``url`` (or ``data`` + ``media_type`` for a ``data:...;base64,`` URL) and ``detail`` |
| part ``{"type": "file", "file": {"file_id" / "file_data", "filename"}}`` | ``file`` with ``file_id`` (or ``data`` + ``media_type`` from the data URL) and ``filename`` |
| part ``{"type": "input_audio", "input_audio": {"data", "format"}}`` | ``file`` with ``data`` and ``media_type`` ``audio/wav`` / ``audio/mpeg`` |
| assistant ``content`` (string or text/refusal parts) | ``text`` blocks (a ``refusal`` part: text flagged ``refusal: "part"``) |
| assistant ``refusal`` (string) | a ``text`` block flagged ``refusal: "field"`` |
| assistant ``tool_calls[]`` ``{"id", "type": "function", "function": {"name", "arguments"}}`` | ``tool_call`` ``{id, name, arguments}`` (the JSON string kept as the string) |
| ``{"type": "custom", "custom": {"name", "input"}}`` tool call | ``tool_call`` with ``arguments`` = ``input``, flagged ``custom`` |
| ``{"role": "tool", "tool_call_id", "content"}`` | a ``tool`` message: ``invocation_id`` = ``tool_call_id``, ``tool_name`` = the name of the matching call earlier in the input |
| any other message key (``name``, ``audio``, ``refusal: null``, ...) | kept in the first block's ``provider["openai-chat"]["item"]`` |

Rendering canonical messages that did not come from this format:

- ``tool_result`` blocks (in any user or tool message) become ``tool`` messages, splitting the message
  where they stand; the other blocks of a ``tool`` message are the result for its own ``invocation_id``
  (required then).
- ``tool_call`` arguments given as an object are JSON-encoded.
- A message with no text renders ``"content": null`` (assistant) or ``[]``.

Lossy cases (documented, never silent elsewhere):

- **Reasoning is dropped**: Chat Completions takes no reasoning input, so ``reasoning`` blocks are left out
  (an assistant message holding only reasoning is left out entirely).
- ``tool_result.is_error`` is dropped (tool messages have no error flag; say so in the result text).
- An audio ``file``'s ``filename`` is dropped (``input_audio`` has none).
- A ``file_data`` that is not a ``data:`` URL is kept as given with ``media_type``
  ``application/octet-stream`` (flagged ``raw_data``), so other formats cannot tell its type.

Cannot be represented (``InvalidInput`` naming the block): an image by ``file_id``; a file by ``url``;
images or files in system, developer, assistant or tool messages or in tool results; ``tool_call``
blocks outside assistant messages. Not accepted from the provider: the deprecated ``function`` role and
assistant ``function_call``.
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
    audio_format,
    audio_media_type,
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
    rest,
    result_to,
    source_of,
    split_data_url,
    text_block,
    tool_answers,
    walk_openai,
    with_response,
)

FMT: Final = "openai-chat"


# --- from the provider ----------------------------------------------------------------------------------


def from_chat(messages: object) -> list[NewMessage]:
    """Chat Completions request messages (dicts, the SDK's typed dicts or its message models) as
    canonical messages to append."""
    items = need_list(jsonable(messages, FMT, "messages"), FMT, "messages")
    out: list[NewMessage] = []
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        where = f"messages[{i}]"
        m = need_map(item, FMT, where)
        role = m.get("role")
        if role in ("system", "developer", "user"):
            out.append(_plain_from(m, str(role), where))
        elif role == "assistant":
            message = _assistant_from(m, where)
            if isinstance(message.content, list):
                names.update((b["id"], b["name"]) for b in message.content if b["type"] == "tool_call")
            out.append(message)
        elif role == "tool":
            out.append(_tool_from(m, where, names))
        elif role == "function":
            raise invalid(FMT, f"{where}.role", "the deprecated 'function' role is not supported; use 'tool'")
        else:
            raise invalid(
                FMT, f"{where}.role", f"unknown role {role!r}; expected system, developer, user, assistant or tool"
            )
    return out


def _plain_from(m: dict[str, Any], role: str, where: str) -> NewMessage:
    extras = rest(m, ("role", "content"))
    content = m.get("content", MISSING)
    if isinstance(content, str):
        return build_message(FMT, role, [text_block(content)], extras, shape="string")
    if not isinstance(content, list):
        raise invalid(FMT, f"{where}.content", "expected a string or a list of content parts")
    blocks = [_part_from(p, role, f"{where}.content[{j}]") for j, p in enumerate(content)]
    return build_message(FMT, role, blocks, extras)


def _tool_from(m: dict[str, Any], where: str, names: Mapping[str, str]) -> NewMessage:
    call_id = need_str(m, "tool_call_id", FMT, where)
    extras = rest(m, ("role", "content", "tool_call_id"))
    content = m.get("content", MISSING)
    if isinstance(content, str):
        blocks, shape = [text_block(content)], "string"
    elif isinstance(content, list):
        blocks, shape = [_part_from(p, "tool", f"{where}.content[{j}]") for j, p in enumerate(content)], None
    else:
        raise invalid(FMT, f"{where}.content", "expected a string or a list of text parts")
    return build_message(FMT, "tool", blocks, extras, shape=shape, tool_name=names.get(call_id), invocation_id=call_id)


def _part_from(p: object, role: str, where: str) -> Block:
    part = need_map(p, FMT, where)
    kind = part.get("type")
    if kind == "text":
        return mark(text_block(need_str(part, "text", FMT, where)), FMT, extra=rest(part, ("type", "text")))
    if role != "user" or kind not in ("image_url", "file", "input_audio"):
        allowed = "text, image_url, file or input_audio" if role == "user" else "text"
        raise invalid(
            FMT, f"{where}.type", f"part type {kind!r} is not supported in a {role} message; expected {allowed}"
        )
    inner = need_map(part.get(kind), FMT, f"{where}.{kind}")
    extra = rest(part, ("type", kind))
    if kind == "image_url":
        url = need_str(inner, "url", FMT, f"{where}.image_url")
        split = split_data_url(url)
        block: Block = (
            {"type": "image", "data": split[1], "media_type": split[0]} if split else {"type": "image", "url": url}
        )
        used = ["url"]
        if isinstance(inner.get("detail"), str):
            block["detail"] = inner["detail"]
            used.append("detail")
        return mark(block, FMT, extra=extra, inner=rest(inner, used))
    if kind == "input_audio":
        data = need_str(inner, "data", FMT, f"{where}.input_audio")
        fmt = need_str(inner, "format", FMT, f"{where}.input_audio")
        block = {"type": "file", "data": data, "media_type": audio_media_type(fmt)}
        return mark(block, FMT, extra=extra, inner=rest(inner, ("data", "format")))
    block = {"type": "file"}
    used = []
    raw = False
    if isinstance(inner.get("file_id"), str):
        block["file_id"] = inner["file_id"]
        used.append("file_id")
    elif isinstance(inner.get("file_data"), str):
        split = split_data_url(inner["file_data"])
        if split:
            block["data"], block["media_type"] = split[1], split[0]
        else:  # not a data URL: kept as given, flagged so it renders back unchanged
            block["data"], block["media_type"], raw = inner["file_data"], "application/octet-stream", True
        used.append("file_data")
    else:
        raise invalid(FMT, f"{where}.file", "a file part needs file_id or file_data")
    if isinstance(inner.get("filename"), str):
        block["filename"] = inner["filename"]
        used.append("filename")
    return mark(block, FMT, extra=extra, inner=rest(inner, used), raw_data=True if raw else None)


def _assistant_from(m: dict[str, Any], where: str) -> NewMessage:
    if m.get("function_call") is not None:
        raise invalid(FMT, f"{where}.function_call", "the deprecated function_call is not supported; use tool_calls")
    used = ["role", "content"]
    blocks: list[Block] = []
    shape: str | None = None
    content = m.get("content", MISSING)
    if content is MISSING:
        shape = "absent"
    elif content is None:
        shape = "null"
    elif isinstance(content, str):
        blocks.append(text_block(content))
        shape = "string"
    elif isinstance(content, list):
        blocks.extend(_assistant_part(p, f"{where}.content[{j}]") for j, p in enumerate(content))
        shape = None if content else "list"
    else:
        raise invalid(FMT, f"{where}.content", "expected a string, a list of text/refusal parts or null")
    refusal = m.get("refusal")
    if isinstance(refusal, str):
        blocks.append(mark(text_block(refusal), FMT, refusal="field"))
        used.append("refusal")
    calls = m.get("tool_calls")
    if isinstance(calls, list) and calls:
        blocks.extend(_call_from(c, f"{where}.tool_calls[{k}]") for k, c in enumerate(calls))
        used.append("tool_calls")
    return build_message(FMT, "assistant", blocks, rest(m, used), shape=shape)


def _assistant_part(p: object, where: str) -> Block:
    part = need_map(p, FMT, where)
    kind = part.get("type")
    if kind == "text":
        return mark(text_block(need_str(part, "text", FMT, where)), FMT, extra=rest(part, ("type", "text")))
    if kind == "refusal":
        block = text_block(need_str(part, "refusal", FMT, where))
        return mark(block, FMT, refusal="part", extra=rest(part, ("type", "refusal")))
    raise invalid(
        FMT, f"{where}.type", f"part type {kind!r} is not supported in an assistant message; expected text or refusal"
    )


def _call_from(c: object, where: str) -> Block:
    call = need_map(c, FMT, where)
    call_id = need_str(call, "id", FMT, where)
    kind = call.get("type")
    if kind == "function":
        fn = need_map(call.get("function"), FMT, f"{where}.function")
        block: Block = {
            "type": "tool_call",
            "id": call_id,
            "name": need_str(fn, "name", FMT, f"{where}.function"),
            "arguments": need_str(fn, "arguments", FMT, f"{where}.function"),
        }
        return mark(block, FMT, extra=rest(call, ("id", "type", "function")), inner=rest(fn, ("name", "arguments")))
    if kind == "custom":
        custom = need_map(call.get("custom"), FMT, f"{where}.custom")
        block = {
            "type": "tool_call",
            "id": call_id,
            "name": need_str(custom, "name", FMT, f"{where}.custom"),
            "arguments": need_str(custom, "input", FMT, f"{where}.custom"),
        }
        return mark(
            block, FMT, custom=True, extra=rest(call, ("id", "type", "custom")), inner=rest(custom, ("name", "input"))
        )
    raise invalid(FMT, f"{where}.type", f"tool call type {kind!r} is not supported; expected function or custom")


def message_from_completion(data: Mapping[str, Any]) -> NewMessage:
    """The assistant message of a ChatCompletion (as JSON data): the first choice's message, shaped as the
    request message that sends it back, with the completion id and finish reason kept as response extras.

    Only ``choices[0]`` is recorded; response-only message fields (``annotations``, the full ``audio``)
    are kept under ``provider["openai-chat"]["response"]`` and not rendered.
    """
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise invalid(FMT, "response.choices", "a ChatCompletion needs at least one choice")
    choice = need_map(choices[0], FMT, "response.choices[0]")
    msg = need_map(choice.get("message"), FMT, "response.choices[0].message")
    content = msg.get("content")
    refusal = msg.get("refusal")
    calls = msg.get("tool_calls")
    audio = msg.get("audio")
    request: dict[str, Any] = {"role": "assistant", "content": content}
    if isinstance(refusal, str):
        request["refusal"] = refusal
    if isinstance(calls, list) and calls:
        request["tool_calls"] = calls
    if isinstance(audio, dict) and isinstance(audio.get("id"), str):
        request["audio"] = {"id": audio["id"]}
    leftover = {
        k: v for k, v in rest(msg, ("role", "content", "refusal", "tool_calls")).items() if v is not None and v != []
    }
    if content is None and len(request) == 2:
        request["content"] = ""  # an empty answer
    if "function_call" in leftover:
        request["function_call"] = leftover["function_call"]  # refused, as in a request
    (message,) = from_chat([request])
    info: dict[str, Any] = {"id": data.get("id"), "finish_reason": choice.get("finish_reason")}
    if leftover:
        info["message"] = leftover
    return with_response(message, FMT, info)


# --- to the provider ------------------------------------------------------------------------------------


def to_chat(messages: Sequence[MessageLike]) -> list[dict[str, Any]]:
    """Canonical messages as a Chat Completions ``messages`` list."""
    return walk_openai(messages, FMT, tool_text=lambda call, text: {"role": "tool", "tool_call_id": call, "content": text},
                       assistant=_assistant_to, tool=_tool_to, plain=_plain_to)


def _content(parts: list[dict[str, Any]], shape: object) -> str | list[dict[str, Any]]:
    if shape == "string" and len(parts) == 1 and parts[0].keys() == {"type", "text"} and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _plain_to(role: str, blocks: list[Block], where: str) -> list[dict[str, Any]]:
    head = head_flags(blocks, FMT)
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    results = False
    first = True

    def flush() -> None:
        nonlocal first
        message = {"role": role, "content": _content(parts, head.get("content") if first else None)}
        if first:
            message.update(head.get("item", {}))
        first = False
        out.append(message)

    for j, b in enumerate(blocks):
        bw = f"{where}.blocks[{j}]"
        kind = b["type"]
        if kind == "tool_result":
            if parts:
                flush()
                parts = []
            out.append(result_to(b, bw, FMT, _text_part, _answer))
            results = True
        elif kind == "reasoning" or is_placeholder(b):
            continue
        elif kind in ("text", "image", "file"):
            if kind != "text" and role != "user":
                raise invalid(FMT, f"{bw}.type", f"openai-chat {role} messages hold text only, not {kind}")
            parts.append(_part_to(b, bw))
        elif kind == "tool_call":
            raise invalid(FMT, f"{bw}.type", "tool calls belong in assistant messages")
        else:
            raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
    if parts or not results:
        flush()
    return out


def _answer(call_id: str, content: str | list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _tool_to(m: MessageLike, blocks: list[Block], where: str) -> list[dict[str, Any]]:
    answers = tool_answers(m, blocks, where, FMT, _text_part, _answer)
    if answers is not None:
        return answers
    head = head_flags(blocks, FMT)
    parts = [_text_part(b, f"{where}.blocks[{j}]") for j, b in enumerate(blocks) if not is_placeholder(b)]
    message = _answer(answered_call(m, FMT, where), _content(parts, head.get("content")))
    message.update(head.get("item", {}))
    return [message]


def _text_part(b: Block, bw: str) -> dict[str, Any]:
    if b["type"] != "text":
        raise invalid(FMT, f"{bw}.type", f"openai-chat tool results hold text only, not {b['type']}")
    return _part_to(b, bw)


def _part_to(b: Block, bw: str) -> dict[str, Any]:
    f = flags(b, FMT)
    extra: dict[str, Any] = f.get("extra", {})
    inner: dict[str, Any] = f.get("inner", {})
    kind = b["type"]
    if kind == "text":
        return {"type": "text", "text": block_str(b, "text", FMT, bw), **extra}
    where, value = source_of(b, FMT, bw)
    if kind == "image":
        if where == "file_id":
            raise invalid(FMT, f"{bw}.file_id", "openai-chat image parts take a URL or base64 data, not a file id")
        url = value if where == "url" else data_url(media_type(b, FMT, bw), value)
        image_url: dict[str, Any] = {"url": url}
        detail = opt_str(b, "detail", FMT, bw)
        if detail is not None:
            image_url["detail"] = detail
        return {"type": "image_url", "image_url": {**image_url, **inner}, **extra}
    if kind != "file":
        raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
    if where == "url":
        raise invalid(FMT, f"{bw}.url", "openai-chat file parts take a file id or base64 data, not a URL")
    if where == "data" and media_type(b, FMT, bw).startswith("audio/"):
        audio = {"data": value, "format": audio_format(media_type(b, FMT, bw))}
        return {"type": "input_audio", "input_audio": {**audio, **inner}, **extra}
    file: dict[str, Any] = {}
    if where == "file_id":
        file["file_id"] = value
    else:
        file["file_data"] = value if f.get("raw_data") else data_url(media_type(b, FMT, bw), value)
    filename = opt_str(b, "filename", FMT, bw)
    if filename is not None:
        file["filename"] = filename
    return {"type": "file", "file": {**file, **inner}, **extra}


def _assistant_to(blocks: list[Block], where: str) -> list[dict[str, Any]]:
    head = head_flags(blocks, FMT)
    parts: list[dict[str, Any]] = []
    refusal: str | None = None
    calls: list[dict[str, Any]] = []
    for j, b in enumerate(blocks):
        bw = f"{where}.blocks[{j}]"
        kind = b["type"]
        if kind == "reasoning" or is_placeholder(b):
            continue  # Chat Completions takes no reasoning: documented as dropped
        f = flags(b, FMT)
        if kind == "text":
            text = block_str(b, "text", FMT, bw)
            if f.get("refusal") == "field":
                refusal = text
            elif f.get("refusal") == "part":
                parts.append({"type": "refusal", "refusal": text, **f.get("extra", {})})
            else:
                parts.append({"type": "text", "text": text, **f.get("extra", {})})
        elif kind == "tool_call":
            calls.append(_call_to(b, f, bw))
        elif kind in ("image", "file", "tool_result"):
            raise invalid(
                FMT, f"{bw}.type", f"openai-chat assistant messages hold text, refusals and tool calls, not {kind}"
            )
        else:
            raise invalid(FMT, f"{bw}.type", f"unknown block type {kind!r}")
    if blocks and not parts and refusal is None and not calls and not head:
        return []  # nothing but reasoning, which this format drops
    shape = head.get("content")
    message: dict[str, Any] = {"role": "assistant"}
    if shape == "absent" and not parts:
        pass
    elif shape == "null" and not parts:
        message["content"] = None
    elif shape == "list" or parts:
        message["content"] = _content(parts, shape)
    else:
        message["content"] = None
    if refusal is not None:
        message["refusal"] = refusal
    if calls:
        message["tool_calls"] = calls
    message.update(head.get("item", {}))
    return [message]


def _call_to(b: Block, f: dict[str, Any], bw: str) -> dict[str, Any]:
    call_id = block_str(b, "id", FMT, bw)
    name = block_str(b, "name", FMT, bw)
    args = arguments_text(b, FMT, bw)
    if f.get("custom"):
        return {
            "id": call_id,
            "type": "custom",
            "custom": {"name": name, "input": args, **f.get("inner", {})},
            **f.get("extra", {}),
        }
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": args, **f.get("inner", {})},
        **f.get("extra", {}),
    }
