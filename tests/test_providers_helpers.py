"""Helpers for the provider-format tests: messages as the ledger stores them, and the SDKs' request types
as validators (pydantic over the SDKs' TypedDicts), so rendered conversations are checked against what
``client.chat.completions.create``, ``client.responses.create`` and ``client.messages.create`` accept."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, Union

import msgspec
import pydantic
from anthropic.types import MessageParam, TextBlockParam
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseInputItemParam

from ledger.blocks import check_blocks, text_of
from ledger.providers import NewMessage
from ledger.session import Message
from ledger.validation import Limits

_T0 = datetime(2025, 1, 1, tzinfo=UTC)


def stored(messages: Sequence[NewMessage], *, check: bool = True) -> list[Message]:
    """``NewMessage`` objects as the ledger will return them: a string message keeps its string; a block
    message's blocks pass the ledger's block validation and are kept as JSON round-trips them, and its
    ``content`` is their text parts joined with "\\n" (``ledger.blocks.text_of``). ``check=False`` skips
    the validation (to show what the renderers do with blocks the ledger would not have stored)."""
    out = []
    for k, m in enumerate(messages, 1):
        if isinstance(m.content, str):
            content, blocks = m.content, None
        else:
            checked = check_blocks(m.content, Limits(), None) if check else m.content
            blocks = msgspec.json.decode(msgspec.json.encode(checked))
            content = text_of(blocks)
        out.append(
            Message(
                role=m.role,
                content=content,
                tool_name=m.tool_name,
                invocation_id=m.invocation_id,
                model=m.model,
                tokens=None,
                recorded_at=_T0,
                version=k,
                position=k,
                blocks=blocks,
            )
        )
    return out


def _drain(value: Any) -> None:
    """Consume pydantic's lazy validators (the SDK types use ``Iterable``), validating what they hold."""
    if isinstance(value, dict):
        for v in value.values():
            _drain(v)
    elif isinstance(value, list | tuple) or type(value).__name__ == "ValidatorIterator":
        for v in value:
            _drain(v)


@cache
def _adapter(kind: str) -> pydantic.TypeAdapter[Any]:
    types: dict[str, Any] = {
        "openai-chat": list[ChatCompletionMessageParam],
        "openai-responses": list[ResponseInputItemParam],
        "anthropic-messages": list[MessageParam],
        "anthropic-system": Union[str, list[TextBlockParam], None],  # noqa: UP007 (a runtime type)
    }
    return pydantic.TypeAdapter(types[kind])


def assert_sdk_valid(value: Any, fmt: str) -> None:
    """Raise unless ``value`` is what the SDK's request types accept for ``fmt``."""
    if fmt == "anthropic":
        assert set(value) == {"system", "messages"}
        _drain(_adapter("anthropic-system").validate_python(value["system"]))
        _drain(_adapter("anthropic-messages").validate_python(value["messages"]))
        roles = [m["role"] for m in value["messages"] if m["role"] != "system"]
        assert all(a != b for a, b in itertools.pairwise(roles)), roles  # roles alternate
        assert not roles or roles[0] == "user"
    else:
        _drain(_adapter(fmt).validate_python(value))


def test_stored_keeps_strings_and_joins_block_text() -> None:
    (a, b) = stored(
        [
            NewMessage(role="user", content="hi"),
            NewMessage(role="assistant", content=[{"type": "reasoning", "text": "r"}, {"type": "text", "text": "t"}]),
        ]
    )
    assert (a.content, a.blocks) == ("hi", None)
    assert (b.content, b.blocks) == ("r\nt", [{"type": "reasoning", "text": "r"}, {"type": "text", "text": "t"}])


def test_the_sdk_validators_reject_what_the_sdks_reject() -> None:
    import pytest

    with pytest.raises(pydantic.ValidationError):
        assert_sdk_valid([{"role": "tool", "content": "no call id"}], "openai-chat")
    with pytest.raises(pydantic.ValidationError):
        assert_sdk_valid([{"type": "function_call", "name": "f"}], "openai-responses")
    with pytest.raises(pydantic.ValidationError):
        assert_sdk_valid({"system": None, "messages": [{"role": "user", "content": [{"type": "image"}]}]}, "anthropic")
