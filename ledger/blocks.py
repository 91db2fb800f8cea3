"""Content blocks: a message's content as a list of parts, in one provider-neutral form.

A message's ``content`` is a string, or a list of blocks (JSON objects, ``type`` first):

===============  ==============================================================================================
``text``         ``text``
``image``        one of ``url``, ``file_id`` or ``data`` (base64, only when the caller passes the bytes);
                 ``media_type`` (required with ``data``); ``detail`` (OpenAI)
``file``         one of ``url``, ``file_id`` or ``data``; ``media_type`` (required with ``data``); ``filename``
``tool_call``    ``id``, ``name``, ``arguments`` (a JSON string as OpenAI gives it, or an object as Anthropic
                 does: kept as given)
``tool_result``  ``call_id``, ``content`` (a string, or a list of text, image and file blocks), ``is_error``
``reasoning``    ``text`` (a summary, or the thinking; may be empty), ``signature``, ``redacted`` (opaque data a
                 provider needs back), ``id``
===============  ==============================================================================================

Every block may also carry ``provider``: any JSON object, kept verbatim, for what one provider needs
back and the others do not (item ids, ``cache_control``, citations). Any other key is refused, naming
the block and the key, so a misspelt field is an error rather than a silent loss. The list is stored
as given (JSON round-trips it exactly) and counts, JSON-encoded, against the content limit; its text
parts (text, reasoning, and the text of tool results) are what search indexes (:func:`text_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidInput
from .validation import Limits, check_json

_SOURCE = ("url", "file_id", "data")

# type -> (required fields and their types, optional fields and their types)
_FIELDS: dict[str, tuple[dict[str, tuple[type, ...]], dict[str, tuple[type, ...]]]] = {
    "text": ({"text": (str,)}, {}),
    "image": ({}, {"url": (str,), "file_id": (str,), "data": (str,), "media_type": (str,), "detail": (str,)}),
    "file": ({}, {"url": (str,), "file_id": (str,), "data": (str,), "media_type": (str,), "filename": (str,)}),
    "tool_call": ({"id": (str,), "name": (str,), "arguments": (str, dict)}, {}),
    "tool_result": ({"call_id": (str,), "content": (str, list)}, {"is_error": (bool,)}),
    "reasoning": ({"text": (str,)}, {"signature": (str,), "redacted": (str,), "id": (str,)}),
}
BLOCK_TYPES = tuple(_FIELDS)
_RESULT_PARTS = ("text", "image", "file")


def _where(session_id: str | None) -> str:
    return f"session {session_id!r}: " if session_id else ""


def check_blocks(value: object, limits: Limits, session_id: str | None) -> list[dict[str, Any]]:
    """A list of content blocks checked against their schema and the content limit; returns them as they
    will be stored (JSON-normalised: tuples become lists)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"{_where(session_id)}content must be a string or a list of content blocks, not {type(value).__name__}",
            session_id=session_id,
            field="content",
        )
    normal, _ = check_json(list(value), "content", limits.max_content_bytes, limits, session_id)
    for index, block in enumerate(normal):
        _check_block(block, f"content[{index}]", session_id, BLOCK_TYPES)
    return list(normal)


def _check_block(block: object, where: str, session_id: str | None, allowed: Sequence[str]) -> None:
    def refuse(problem: str) -> InvalidInput:
        return InvalidInput(f"{_where(session_id)}{where} {problem}", session_id=session_id, field=where)

    if not isinstance(block, Mapping):
        raise refuse(f"must be a content block (an object with a type), not {type(block).__name__}")
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise refuse(f"has type {kind!r}; a block's type is one of {', '.join(allowed)}")
    required, optional = _FIELDS[kind]
    for name in required:
        if name not in block:
            raise refuse(f"({kind}) needs {name!r}")
    for name, found in block.items():
        if name in ("type", "provider"):
            if name == "provider" and not isinstance(found, Mapping):
                raise refuse("provider must be an object (the provider's own extras)")
            continue
        types = required.get(name) or optional.get(name)
        if types is None:
            raise refuse(f"({kind}) has an unknown key {name!r}; known: {', '.join([*required, *optional, 'provider'])}")
        if not isinstance(found, types) or isinstance(found, bool) and bool not in types:
            names = " or ".join("object" if t is dict else "list" if t is list else t.__name__ for t in types)
            raise refuse(f"({kind}) {name} must be a {names}; got {type(found).__name__}")
    if kind in ("image", "file"):
        sources = [name for name in _SOURCE if name in block]
        if len(sources) != 1:
            raise refuse(f"({kind}) needs exactly one of url, file_id or data; got {sources or 'none'}")
        if "data" in block and "media_type" not in block:
            raise refuse(f"({kind}) with data needs its media_type")
    if kind == "tool_result" and isinstance(block["content"], list):
        for index, part in enumerate(block["content"]):
            _check_block(part, f"{where}.content[{index}]", session_id, _RESULT_PARTS)


def text_of(blocks: Sequence[Mapping[str, Any]]) -> str:
    """The text parts of a block list, one a line: what search indexes and ``Message.content`` shows."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("text", "reasoning") and block.get("text"):
            parts.append(block["text"])
        elif kind == "tool_result":
            inner = block.get("content")
            if isinstance(inner, str):
                parts.append(inner)
            elif isinstance(inner, list):
                parts.extend(p["text"] for p in inner if p.get("type") == "text" and p.get("text"))
    return "\n".join(parts)


def message_text(content: str, blocks: Sequence[Mapping[str, Any]] | None) -> str:
    """A message's text: its content, or for a block message (whose content is empty) its blocks' text parts."""
    return content if blocks is None else text_of(blocks)
