"""Property tests of the provider layer over generated, well-formed provider conversations:

1. the round trip law: ``to_provider(stored(from_provider(x, f)), f) == x`` for each format ``f``;
2. rendering for any other format either refuses by name (InvalidInput) or gives input the SDK's types
   accept, and that rendering is itself a fixpoint of the round trip.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.providers import FORMATS, from_provider, to_provider
from tests.test_providers_helpers import assert_sdk_valid, stored

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
WORD = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
B64 = st.binary(min_size=1, max_size=12).map(lambda b: base64.b64encode(b).decode())
URL = WORD.map(lambda w: f"https://example.com/{w}")
ARGS = st.dictionaries(WORD, st.integers(-5, 5) | TEXT, max_size=3)
ARGS_TEXT = st.tuples(ARGS, st.sampled_from([(",", ":"), (", ", ": ")])).map(
    lambda a: json.dumps(a[0], separators=a[1])
)
CACHE = st.just({"type": "ephemeral"})


def maybe(draw: st.DrawFn, value: dict[str, Any], **extra: st.SearchStrategy[Any]) -> dict[str, Any]:
    """``value`` with each of ``extra`` added or not."""
    for key, strategy in extra.items():
        if draw(st.booleans()):
            value[key] = draw(strategy)
    return value


class Ids:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.n = prefix, 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}_{self.n}"


# --- OpenAI Chat Completions ----------------------------------------------------------------------------


@st.composite
def chat_user_part(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["text", "image_url", "image_data", "file_data", "file_id", "audio"]))
    if kind == "text":
        return {"type": "text", "text": draw(TEXT)}
    if kind == "image_url":
        return {
            "type": "image_url",
            "image_url": maybe(draw, {"url": draw(URL)}, detail=st.sampled_from(["auto", "low", "high"])),
        }
    if kind == "image_data":
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{draw(B64)}"}}
    if kind == "file_data":
        return {
            "type": "file",
            "file": maybe(draw, {"file_data": f"data:application/pdf;base64,{draw(B64)}"}, filename=WORD),
        }
    if kind == "file_id":
        return {"type": "file", "file": {"file_id": draw(WORD)}}
    return {"type": "input_audio", "input_audio": {"data": draw(B64), "format": draw(st.sampled_from(["wav", "mp3"]))}}


def text_parts(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [{"type": "text", "text": t} for t in draw(st.lists(TEXT, min_size=1, max_size=2))]


@st.composite
def chat_conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = Ids("call")
    out: list[dict[str, Any]] = []
    for role in draw(st.lists(st.sampled_from(["system", "developer"]), max_size=2)):
        out.append(
            maybe(
                draw,
                {"role": role, "content": draw(TEXT | st.builds(lambda: None).map(lambda _: text_parts(draw)))},
                name=WORD,
            )
        )
    for _ in range(draw(st.integers(1, 3))):
        content = draw(TEXT) if draw(st.booleans()) else draw(st.lists(chat_user_part(), min_size=1, max_size=3))
        out.append(maybe(draw, {"role": "user", "content": content}, name=WORD))
        kind = draw(st.sampled_from(["text", "tools", "refusal"]))
        if kind == "tools":
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                if draw(st.integers(0, 4)) == 0:
                    calls.append({"id": ids(), "type": "custom", "custom": {"name": draw(WORD), "input": draw(TEXT)}})
                else:
                    calls.append(
                        {
                            "id": ids(),
                            "type": "function",
                            "function": {"name": draw(WORD), "arguments": draw(ARGS_TEXT)},
                        }
                    )
            assistant: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
            shape = draw(st.sampled_from(["absent", "null", "text"]))
            if shape != "absent":
                assistant["content"] = None if shape == "null" else draw(TEXT)
            out.append(maybe(draw, assistant, refusal=st.none()))
            for call in calls:
                result = draw(TEXT) if draw(st.booleans()) else text_parts(draw)
                out.append({"role": "tool", "tool_call_id": call["id"], "content": result})
            if draw(st.booleans()):
                out.append({"role": "assistant", "content": draw(TEXT)})
        elif kind == "text":
            content = draw(TEXT) if draw(st.booleans()) else text_parts(draw)
            out.append(maybe(draw, {"role": "assistant", "content": content}, refusal=TEXT | st.none()))
        else:
            out.append({"role": "assistant", "content": [{"type": "refusal", "refusal": draw(TEXT)}]})
    return out


# --- OpenAI Responses -----------------------------------------------------------------------------------


@st.composite
def responses_input_part(draw: st.DrawFn, *, output: bool = False) -> dict[str, Any]:
    """A message content part (whose input_image needs ``detail``) or, with ``output``, a function call
    output part (whose ``detail`` is optional)."""
    kind = draw(st.sampled_from(["text", "image_url", "image_data", "image_file", "file_id", "file_url", "file_data"]))
    detail = st.sampled_from(["auto", "low", "high"])
    if kind == "text":
        return {"type": "input_text", "text": draw(TEXT)}
    if kind.startswith("image"):
        if kind == "image_url":
            image = {"type": "input_image", "image_url": draw(URL)}
        elif kind == "image_data":
            image = {"type": "input_image", "image_url": f"data:image/jpeg;base64,{draw(B64)}"}
        else:
            image = {"type": "input_image", "file_id": draw(WORD)}
        return maybe(draw, image, detail=detail) if output else {**image, "detail": draw(detail)}
    if kind == "file_id":
        return {"type": "input_file", "file_id": draw(WORD)}
    if kind == "file_url":
        return {"type": "input_file", "file_url": draw(URL)}
    return maybe(draw, {"type": "input_file", "file_data": f"data:application/pdf;base64,{draw(B64)}"}, filename=WORD)


@st.composite
def responses_conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    calls, items, reasons = Ids("call"), Ids("msg"), Ids("rs")
    out: list[dict[str, Any]] = []
    for role in draw(st.lists(st.sampled_from(["system", "developer"]), max_size=2)):
        content: Any = draw(TEXT) if draw(st.booleans()) else [{"type": "input_text", "text": draw(TEXT)}]
        out.append(maybe(draw, {"role": role, "content": content}, type=st.just("message")))
    for _ in range(draw(st.integers(1, 3))):
        content = draw(TEXT) if draw(st.booleans()) else draw(st.lists(responses_input_part(), min_size=1, max_size=3))
        out.append(maybe(draw, {"role": "user", "content": content}, type=st.just("message")))
        pending = []
        for kind in draw(st.lists(st.sampled_from(["reasoning", "message", "easy", "call"]), min_size=1, max_size=4)):
            if kind == "reasoning":
                summary = [{"type": "summary_text", "text": t} for t in draw(st.lists(TEXT, max_size=2))]
                item = {"type": "reasoning", "id": reasons(), "summary": summary}
                out.append(maybe(draw, item, encrypted_content=B64, status=st.just("completed")))
            elif kind == "message":
                parts = []
                for _ in range(draw(st.integers(1, 2))):
                    if draw(st.integers(0, 3)) == 0:
                        parts.append({"type": "refusal", "refusal": draw(TEXT)})
                    else:
                        parts.append(
                            maybe(
                                draw,
                                {"type": "output_text", "text": draw(TEXT), "annotations": []},
                                logprobs=st.just([]),
                            )
                        )
                out.append(
                    {"type": "message", "id": items(), "role": "assistant", "status": "completed", "content": parts}
                )
            elif kind == "easy":
                out.append({"role": "assistant", "content": draw(TEXT)})
            else:
                call = {"type": "function_call", "call_id": calls(), "name": draw(WORD), "arguments": draw(ARGS_TEXT)}
                out.append(maybe(draw, call, id=WORD.map(lambda w: f"fc_{w}"), status=st.just("completed")))
                pending.append(call["call_id"])
        for call_id in pending:
            output: Any = (
                draw(TEXT)
                if draw(st.booleans())
                else draw(st.lists(responses_input_part(output=True), min_size=1, max_size=2))
            )
            out.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return out


# --- Anthropic ------------------------------------------------------------------------------------------


@st.composite
def anthropic_part(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["text", "image_url", "image_data", "image_file", "pdf", "plain", "doc_url", "doc_file"])
    )
    if kind == "text":
        return maybe(draw, {"type": "text", "text": draw(TEXT.filter(bool))}, cache_control=CACHE)
    if kind == "image_url":
        return {"type": "image", "source": {"type": "url", "url": draw(URL)}}
    if kind == "image_data":
        media = draw(st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"]))
        return maybe(
            draw,
            {"type": "image", "source": {"type": "base64", "media_type": media, "data": draw(B64)}},
            cache_control=CACHE,
        )
    if kind == "image_file":
        return {"type": "image", "source": {"type": "file", "file_id": draw(WORD)}}
    if kind == "pdf":
        source = {"type": "base64", "media_type": "application/pdf", "data": draw(B64)}
    elif kind == "plain":
        source = {"type": "text", "media_type": "text/plain", "data": draw(TEXT)}
    elif kind == "doc_url":
        source = {"type": "url", "url": draw(URL)}
    else:
        source = {"type": "file", "file_id": draw(WORD)}
    return maybe(draw, {"type": "document", "source": source}, title=WORD, context=TEXT)


@st.composite
def anthropic_conversations(draw: st.DrawFn) -> dict[str, Any]:
    ids = Ids("toolu")
    system: Any = draw(
        st.none()
        | TEXT
        | st.lists(st.builds(dict, type=st.just("text"), text=TEXT.filter(bool)), min_size=1, max_size=2)
    )
    messages: list[dict[str, Any]] = []
    pending: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        results = []
        for call_id in pending:
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
            content = draw(st.sampled_from(["absent", "text", "blocks"]))
            if content == "text":
                result["content"] = draw(TEXT)
            elif content == "blocks":
                result["content"] = draw(st.lists(anthropic_part(), min_size=1, max_size=2))
            messages_extra = maybe(draw, result, is_error=st.booleans())
            results.append(messages_extra)
        if results:
            messages.append({"role": "user", "content": results + draw(st.lists(anthropic_part(), max_size=1))})
        elif draw(st.booleans()):
            messages.append({"role": "user", "content": draw(TEXT.filter(bool))})
        else:
            messages.append({"role": "user", "content": draw(st.lists(anthropic_part(), min_size=1, max_size=3))})
        pending = []
        if draw(st.booleans()) and not draw(st.booleans()):
            messages.append({"role": "assistant", "content": draw(TEXT.filter(bool))})
            continue
        blocks: list[dict[str, Any]] = []
        for kind in draw(st.lists(st.sampled_from(["thinking", "redacted", "text", "tool"]), min_size=1, max_size=4)):
            if kind == "thinking":
                blocks.append({"type": "thinking", "thinking": draw(TEXT), "signature": draw(B64)})
            elif kind == "redacted":
                blocks.append({"type": "redacted_thinking", "data": draw(B64)})
            elif kind == "text":
                blocks.append({"type": "text", "text": draw(TEXT.filter(bool))})
            else:
                call_id = ids()
                pending.append(call_id)
                blocks.append({"type": "tool_use", "id": call_id, "name": draw(WORD), "input": draw(ARGS)})
        messages.append({"role": "assistant", "content": blocks})
    return {"system": system, "messages": messages}


STRATEGIES = {
    "openai-chat": chat_conversations(),
    "openai-responses": responses_conversations(),
    "anthropic": anthropic_conversations(),
}


def check_round_trip(x: Any, fmt: str) -> None:
    assert_sdk_valid(x, fmt)  # the generator makes well-formed input
    assert to_provider(stored(from_provider(x, fmt)), fmt) == x


def check_renders_elsewhere(x: Any, source: str) -> None:
    messages = stored(from_provider(x, source))
    for target in FORMATS:
        try:
            out = to_provider(messages, target)
        except InvalidInput as e:
            assert e.field and e.field.startswith("messages[")
            event(f"{source} -> {target}: refused")
            continue
        assert_sdk_valid(out, target)
        assert to_provider(stored(from_provider(out, target)), target) == out


@settings(max_examples=150, deadline=None)
@given(chat_conversations())
def test_chat_conversations_round_trip(x: list[dict[str, Any]]) -> None:
    check_round_trip(x, "openai-chat")


@settings(max_examples=150, deadline=None)
@given(responses_conversations())
def test_responses_conversations_round_trip(x: list[dict[str, Any]]) -> None:
    check_round_trip(x, "openai-responses")


@settings(max_examples=150, deadline=None)
@given(anthropic_conversations())
def test_anthropic_conversations_round_trip(x: dict[str, Any]) -> None:
    check_round_trip(x, "anthropic")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMATS).flatmap(lambda f: st.tuples(st.just(f), STRATEGIES[f])))
def test_every_conversation_renders_validly_for_every_format_or_is_refused_by_name(case: tuple[str, Any]) -> None:
    source, x = case
    check_renders_elsewhere(x, source)
