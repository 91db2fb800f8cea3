"""What the provider converters share: the structs they return, provider extras, data URLs, errors.

Provider extras
---------------
Every canonical block may carry ``"provider": {...}``. This layer keeps, per format, one object under
the format's name, so that extras recorded from one provider are applied only when rendering for that
provider (an OpenAI item id never leaks into an Anthropic request)::

    {"type": "text", "text": "Hi", "provider": {"anthropic": {"extra": {"cache_control": {...}}}}}

The keys of that per-format object (all optional; absent means "the default rendering"):

| key | meaning |
|---|---|
| ``extra`` | keys of the provider part (content part, tool call, item) that have no canonical field, merged verbatim into the rendered part (``cache_control``, ``citations``, ``annotations``, item ``id``/``status``, ...) |
| ``inner`` | the same for the part's nested object (chat ``image_url``/``file``/``function``/``input_audio``, Anthropic ``source``) |
| ``item`` | on the first block of a provider message/item: the message's own extra keys (chat ``name``, Responses ``type``/``id``/``status``/``phase``); its presence also marks where a Responses message item starts |
| ``content`` | how the provider message's content was shaped when it was not a non-empty list: ``"string"``, ``"null"``, ``"absent"``, ``"list"`` (an empty list) |
| ``response`` | response metadata recorded by ``parse_response`` (``id``, finish/stop reason, response-only fields); never rendered |
| ``placeholder`` | ``true`` on a placeholder block (below) |
| ``refusal`` | ``"part"`` (a refusal content part) or ``"field"`` (chat's message-level ``refusal``) on a text block (OpenAI formats) |
| ``custom`` | ``true``: a custom (free-text) tool call or its output (OpenAI formats) |
| ``raw_data`` | ``true``: ``file_data`` was not a ``data:`` URL and is rendered back as given (OpenAI formats) |
| ``continues`` | ``true``: this block continues the previous Responses item (a further output part or summary part) |
| ``part`` | ``"input_text"``: a Responses assistant message part given as ``input_text`` (not ``output_text``) |
| ``no_detail`` | ``true``: the Responses ``input_image`` had no ``detail`` (otherwise ``"auto"`` is rendered) |
| ``empty_part`` | ``true``: a Responses reasoning summary part with empty text (not "no summary") |
| ``result_content`` | ``"absent"``: the Anthropic ``tool_result`` had no ``content`` |
| ``type`` | ``"redacted_thinking"``: the reasoning block is Anthropic redacted thinking |
| ``in_messages`` | ``true``: an Anthropic ``system`` message given inside ``messages`` (rendered back in place) |

A *placeholder* is an empty text block flagged ``placeholder``: it exists only to carry message-level
extras of a provider message that has no content blocks at all, and every renderer skips it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol, TypeAlias

import msgspec

from ledger.errors import InvalidInput

ProviderFormat: TypeAlias = Literal["openai-chat", "openai-responses", "anthropic"]
#: The provider formats this layer converts to and from.
FORMATS: Final[tuple[ProviderFormat, ...]] = ("openai-chat", "openai-responses", "anthropic")

Block: TypeAlias = dict[str, Any]
MISSING: Final[Any] = object()


class NewMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One canonical message to append (what ``from_provider`` and ``parse_response`` return).

    ``content`` is a string (a plain text message) or a list of canonical content blocks. ``tokens`` is
    the provider's raw usage (an SDK usage object or a dict), for ``ledger.tokens.normalize_tokens``.
    """

    role: str
    content: str | list[dict[str, Any]]
    tool_name: str | None = None
    invocation_id: str | None = None
    model: str | None = None
    tokens: Any = None


class RecordedResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A provider response as the messages to append, the model that answered and its raw usage.

    The assistant message(s) carry ``model`` and ``tokens`` too; ``model`` and ``tokens`` here repeat
    them for convenience (record the usage once, not twice).
    """

    messages: list[NewMessage]
    model: str | None
    tokens: Any


class MessageLike(Protocol):
    """What the renderers read from a stored message: ``ledger.session.Message`` satisfies it."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...

    @property
    def blocks(self) -> list[dict[str, Any]] | None: ...

    @property
    def tool_name(self) -> str | None: ...

    @property
    def invocation_id(self) -> str | None: ...


def answered_call(m: MessageLike, fmt: str, where: str) -> str:
    """The call id a tool message answers (its ``invocation_id``), which every format needs."""
    if not m.invocation_id:
        raise invalid(fmt, f"{where}.invocation_id", "a tool message needs the call id it answers (invocation_id)")
    return m.invocation_id


def walk_openai(
    messages: Sequence[MessageLike],
    fmt: str,
    *,
    tool_text: Callable[[str, str], dict[str, Any]],
    assistant: Callable[[list[Block], str], list[dict[str, Any]]],
    tool: Callable[[MessageLike, list[Block], str], list[dict[str, Any]]],
    plain: Callable[[str, list[Block], str], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The OpenAI formats' walk over canonical messages: a string message is one item (a tool's answer made by
    ``tool_text(call id, text)``), a block message goes to the format's renderer for its role."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.role
        blocks = message_blocks(m, fmt, where)
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise invalid(fmt, f"{where}.role", f"unknown role {role!r}")
        if blocks is None:
            out.append(tool_text(answered_call(m, fmt, where), m.content) if role == "tool"
                       else {"role": role, "content": m.content})
        elif role == "assistant":
            out.extend(assistant(blocks, where))
        elif role == "tool":
            out.extend(tool(m, blocks, where))
        else:
            out.extend(plain(role, blocks, where))
    return out


def invalid(fmt: str, field: str, problem: str) -> InvalidInput:
    """The error for input that is malformed or cannot be represented: names the format and the field."""
    return InvalidInput(f"{fmt}: {field}: {problem}", field=field)


def check_format(fmt: object) -> ProviderFormat:
    """``fmt`` as a provider format, or InvalidInput naming the known ones."""
    for known in FORMATS:
        if fmt == known:
            return known
    raise InvalidInput(f"format: unknown provider format {fmt!r}; expected one of {', '.join(FORMATS)}", field="format")


# --- turning what callers hand us into plain JSON values -----------------------------------------------


def jsonable(value: object, fmt: str, field: str) -> Any:
    """``value`` as plain JSON data: mappings as dicts, sequences and other iterables (the SDKs' typed
    dicts take any ``Iterable``) as lists, pydantic models (SDK objects) as their JSON dump."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json", exclude_unset=True, by_alias=True), fmt, field)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise invalid(fmt, field, f"keys must be strings, not {type(key).__name__}")
            out[key] = jsonable(item, fmt, f"{field}.{key}")
        return out
    if isinstance(value, bytes | bytearray | memoryview):
        raise invalid(fmt, field, "bytes are not accepted; pass base64 text")
    if isinstance(value, Iterable):
        return [jsonable(item, fmt, f"{field}[{i}]") for i, item in enumerate(value)]
    raise invalid(fmt, field, f"{type(value).__name__} is not JSON data")


def need_map(value: object, fmt: str, field: str) -> dict[str, Any]:
    """``value`` (already plain JSON) as an object, or InvalidInput."""
    if not isinstance(value, dict):
        raise invalid(fmt, field, f"expected an object, got {type(value).__name__}")
    return value


def need_list(value: object, fmt: str, field: str) -> list[Any]:
    """``value`` (already plain JSON) as a list, or InvalidInput."""
    if not isinstance(value, list):
        raise invalid(fmt, field, f"expected a list, got {type(value).__name__}")
    return value


def need_str(obj: Mapping[str, Any], key: str, fmt: str, field: str) -> str:
    """``obj[key]`` as a string, or InvalidInput naming ``field.key``."""
    value = obj.get(key, MISSING)
    if value is MISSING:
        raise invalid(fmt, f"{field}.{key}", "is required")
    if not isinstance(value, str):
        raise invalid(fmt, f"{field}.{key}", f"expected a string, got {type(value).__name__}")
    return value


def rest(obj: Mapping[str, Any], consumed: Iterable[str]) -> dict[str, Any]:
    """The keys of ``obj`` not in ``consumed``: the extras kept verbatim."""
    used = set(consumed)
    return {k: v for k, v in obj.items() if k not in used}


# --- provider extras on canonical blocks ----------------------------------------------------------------


def flags(block: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """The extras ``block`` carries for ``fmt`` (an empty dict when none)."""
    provider = block.get("provider")
    if isinstance(provider, Mapping):
        mine = provider.get(fmt)
        if isinstance(mine, Mapping):
            return dict(mine)
    return {}


def mark(block: Block, fmt: str, **values: Any) -> Block:
    """Set extras for ``fmt`` on ``block`` (in place; returned). ``None`` values and empty ``extra``/``inner``
    objects are skipped; ``item`` is kept even when empty (it marks where a provider message starts)."""
    kept = {k: v for k, v in values.items() if v is not None and not (k in ("extra", "inner") and not v)}
    if kept:
        provider = block.setdefault("provider", {})
        provider.setdefault(fmt, {}).update(kept)
    return block


def text_block(text: str) -> Block:
    """A canonical text block."""
    return {"type": "text", "text": text}


def placeholder(fmt: str) -> Block:
    """An empty text block that carries message-level extras of a provider message with no content."""
    return mark(text_block(""), fmt, placeholder=True)


def is_placeholder(block: Mapping[str, Any]) -> bool:
    """True for a placeholder block (of any format): every renderer skips it."""
    if block.get("type") != "text" or block.get("text") != "":
        return False
    provider = block.get("provider")
    if not isinstance(provider, Mapping):
        return False
    return any(isinstance(v, Mapping) and v.get("placeholder") is True for v in provider.values())


def head_flags(blocks: Sequence[Mapping[str, Any]], fmt: str) -> dict[str, Any]:
    """The message-level extras of a message: they live on its first block."""
    return flags(blocks[0], fmt) if blocks else {}


def build_message(
    fmt: str,
    role: str,
    blocks: list[Block],
    extras: Mapping[str, Any],
    *,
    shape: str | None = None,
    message_flags: Mapping[str, Any] | None = None,
    tool_name: str | None = None,
    invocation_id: str | None = None,
) -> NewMessage:
    """A ``NewMessage`` from parsed blocks: a string message when the provider gave a plain string and
    nothing else needs keeping; otherwise the blocks, with the message's extras, content shape and flags on
    the first block (a placeholder when there is none)."""
    more = dict(message_flags or {})
    if shape == "string" and not extras and not more and len(blocks) == 1 and "provider" not in blocks[0]:
        return NewMessage(role=role, content=blocks[0]["text"], tool_name=tool_name, invocation_id=invocation_id)
    if extras or shape is not None or more:
        if not blocks:
            blocks = [placeholder(fmt)]
        mark(blocks[0], fmt, item=dict(extras) if extras else None, content=shape, **more)
    return NewMessage(role=role, content=blocks, tool_name=tool_name, invocation_id=invocation_id)


def with_response(message: NewMessage, fmt: str, info: Mapping[str, Any]) -> NewMessage:
    """``message`` with response metadata (never rendered) on its first block. An empty answer (content
    ``""``) stays a plain string and keeps no metadata."""
    info = {k: v for k, v in info.items() if v is not None}
    content = message.content
    if not info or content == "":
        return message
    if isinstance(content, str):
        blocks = [mark(text_block(content), fmt, content="string")]
    else:
        blocks = content or [placeholder(fmt)]
    mark(blocks[0], fmt, response=info)
    return msgspec.structs.replace(message, content=blocks)


# --- canonical blocks, read for rendering ---------------------------------------------------------------


def message_blocks(message: MessageLike, fmt: str, field: str) -> list[Block] | None:
    """The blocks of a stored message (None for a string message), checked to be a list of objects."""
    blocks = message.blocks
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        raise invalid(fmt, f"{field}.blocks", "expected a list of blocks")
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(fmt, f"{field}.blocks[{j}]", "expected a block object with a string 'type'")
    return blocks


def tool_runs(blocks: Sequence[Block]) -> list[tuple[str, list[tuple[int, Block]]]]:
    """A tool message's blocks split in order into ``("result", [(j, tool_result)])`` entries and
    ``("content", [(j, block), ...])`` runs of the other blocks (the result content for the message's own
    ``invocation_id``); placeholders are left out, and so are runs left empty by that."""
    runs: list[tuple[str, list[tuple[int, Block]]]] = []
    for j, block in enumerate(blocks):
        if block.get("type") == "tool_result":
            runs.append(("result", [(j, block)]))
        elif not is_placeholder(block):
            if runs and runs[-1][0] == "content":
                runs[-1][1].append((j, block))
            else:
                runs.append(("content", [(j, block)]))
    return runs


Part = Callable[[Block, str], dict[str, Any]]  # one block as a format's content part (it checks the kind)
Answer = Callable[[str, "str | list[dict[str, Any]]"], dict[str, Any]]  # a call id and its output as an item


def result_to(b: Block, bw: str, fmt: str, part: Part, answer: Answer) -> dict[str, Any]:
    """A ``tool_result`` block as the format's answer item: its content a string, or a list of parts."""
    call_id = block_str(b, "call_id", fmt, bw)
    content = b.get("content", MISSING)
    if isinstance(content, str):
        return answer(call_id, content)
    if not isinstance(content, list):
        raise invalid(fmt, f"{bw}.content", "expected a string or a list of blocks")
    return answer(call_id, [part(need_map(inner, fmt, f"{bw}.content[{k}]"), f"{bw}.content[{k}]")
                            for k, inner in enumerate(content)])


def tool_answers(m: MessageLike, blocks: list[Block], where: str, fmt: str, part: Part,
                 answer: Answer) -> list[dict[str, Any]] | None:
    """A tool message holding ``tool_result`` blocks as answer items in order (each result its own, a run
    of other blocks the answer to the message's call); None for one without, which the format renders as
    a single answer of its own shape."""
    if not any(b["type"] == "tool_result" for b in blocks):
        return None
    out = []
    for kind, run in tool_runs(blocks):
        if kind == "result":
            out.append(result_to(run[0][1], f"{where}.blocks[{run[0][0]}]", fmt, part, answer))
        else:
            out.append(answer(answered_call(m, fmt, where), [part(b, f"{where}.blocks[{j}]") for j, b in run]))
    return out


def block_str(block: Mapping[str, Any], key: str, fmt: str, field: str) -> str:
    """A required string field of a canonical block."""
    return need_str(block, key, fmt, field)


def opt_str(block: Mapping[str, Any], key: str, fmt: str, field: str) -> str | None:
    """An optional string field of a canonical block (None when absent)."""
    if key not in block:
        return None
    return need_str(block, key, fmt, field)


def source_of(block: Mapping[str, Any], fmt: str, field: str) -> tuple[str, str]:
    """Where an image/file block's bytes are: ``("url", url)``, ``("file_id", id)`` or ``("data", b64)``."""
    for key in ("url", "file_id", "data"):
        if key in block:
            return key, need_str(block, key, fmt, field)
    raise invalid(fmt, field, f"a {block.get('type')} block needs one of url, file_id or data")


def media_type(block: Mapping[str, Any], fmt: str, field: str) -> str:
    """The media type a ``data`` block must carry."""
    if "media_type" not in block:
        raise invalid(fmt, f"{field}.media_type", "is required with data")
    return need_str(block, "media_type", fmt, field)


def arguments_text(block: Mapping[str, Any], fmt: str, field: str) -> str:
    """A tool call's arguments as the JSON string OpenAI takes (a dict is encoded)."""
    args = block.get("arguments", MISSING)
    if isinstance(args, str):
        return args
    if isinstance(args, dict):
        return msgspec.json.encode(args).decode()
    raise invalid(fmt, f"{field}.arguments", "expected a JSON string or an object")


def arguments_object(block: Mapping[str, Any], fmt: str, field: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic takes (a JSON string is decoded; "" is {})."""
    args = block.get("arguments", MISSING)
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        if args.strip() == "":
            return {}
        try:
            decoded = msgspec.json.decode(args)
        except msgspec.DecodeError:
            raise invalid(fmt, f"{field}.arguments", "is not valid JSON; this format needs a JSON object") from None
        if isinstance(decoded, dict):
            return decoded
        raise invalid(fmt, f"{field}.arguments", "is not a JSON object; this format needs an object")
    raise invalid(fmt, f"{field}.arguments", "expected a JSON string or an object")


# --- data URLs ------------------------------------------------------------------------------------------

_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)


def split_data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64 data)`` of a ``data:<type>;base64,<data>`` URL, or None for any other URL."""
    match = _DATA_URL.fullmatch(url)
    return (match.group(1), match.group(2)) if match else None


def data_url(media: str, data: str) -> str:
    """The ``data:`` URL of base64 data."""
    return f"data:{media};base64,{data}"


def audio_media_type(audio_format: str) -> str:
    """The media type of an OpenAI ``input_audio`` format (``mp3`` is ``audio/mpeg``)."""
    return "audio/mpeg" if audio_format == "mp3" else f"audio/{audio_format}"


def audio_format(media: str) -> str:
    """The OpenAI ``input_audio`` format of an audio media type."""
    return "mp3" if media in ("audio/mpeg", "audio/mp3") else media.removeprefix("audio/")
