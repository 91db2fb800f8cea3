"""Token usage in every provider's form, normalised to the OpenTelemetry GenAI usage names.

``tokens=`` takes any of:

* the ledger's own ``{"input": 120, "output": 40}`` (also ``cache_read``, ``cache_creation``,
  ``reasoning``);
* OpenAI Chat Completions' ``usage``: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
  ``prompt_tokens_details.cached_tokens`` (and ``cache_write_tokens``),
  ``completion_tokens_details.reasoning_tokens``;
* OpenAI Responses' ``usage``: ``input_tokens``, ``output_tokens``, ``total_tokens``,
  ``input_tokens_details.cached_tokens`` (and ``cache_write_tokens``),
  ``output_tokens_details.reasoning_tokens``;
* Anthropic's ``usage``: ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
  ``cache_creation_input_tokens``;
* an object with those attributes (the SDKs' pydantic models).

They become :class:`TokenCounts`, named as the ``gen_ai.usage.*`` attributes, where the cache and
reasoning figures are parts of the totals, never added to them:

=================  =========================================  ===============================================
field              OpenTelemetry attribute                    from
=================  =========================================  ===============================================
``input``          ``gen_ai.usage.input_tokens``              all input, cached included: OpenAI's prompt or
                                                              input tokens (which include the cached ones);
                                                              Anthropic's ``input_tokens`` plus its cache
                                                              reads and writes (which it counts apart)
``output``         ``gen_ai.usage.output_tokens``             completion or output tokens, reasoning included
``cache_read``     ``gen_ai.usage.cache_read.input_tokens``   ``cached_tokens``; ``cache_read_input_tokens``
``cache_creation`` ``gen_ai.usage.cache_creation.input_tokens``  ``cache_write_tokens``; ``cache_creation_input_tokens``
``reasoning``      ``gen_ai.usage.reasoning.output_tokens``   ``reasoning_tokens`` (OpenAI)
=================  =========================================  ===============================================

A key that belongs to none of the forms (a typo such as ``prompt_token``) is refused, naming it; the
forms' other figures (``total_tokens``, audio or prediction token details, Anthropic's
``server_tool_use``, ``service_tier`` and the cache breakdown by lifetime) are read past.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .errors import InvalidInput
from .validation import INT_MAX as _INT_MAX, check_count

#: The normalised fields, in order, and the OpenTelemetry GenAI attribute each one is.
OTEL_NAMES = {
    "input": "gen_ai.usage.input_tokens",
    "output": "gen_ai.usage.output_tokens",
    "cache_read": "gen_ai.usage.cache_read.input_tokens",
    "cache_creation": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning": "gen_ai.usage.reasoning.output_tokens",
}

# Keys each form may hold beyond the ones read: figures the ledger does not keep.
_READ_PAST = frozenset({
    "total_tokens", "server_tool_use", "service_tier", "cache_creation", "inference_geo",
})
_OPENAI_CHAT = frozenset({"prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"})
_OPENAI_RESPONSES = frozenset({"input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"})
_ANTHROPIC = frozenset({"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"})
_OWN = frozenset(OTEL_NAMES)


class TokenCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Token usage under the OpenTelemetry GenAI names; cache and reasoning figures are parts of input and
    output. A field is None when the caller did not say."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None

    def as_dict(self) -> dict[str, int]:
        """The figures given, as ``{"input": ..., "output": ..., ...}`` (the form ``Message.tokens`` has)."""
        return {name: value for name in OTEL_NAMES if (value := getattr(self, name)) is not None}


NO_TOKENS = TokenCounts()  # no figures given


def _plain(value: object) -> object:
    """An SDK usage object (a pydantic model, or anything with attributes) as a mapping; a mapping as it is."""
    if value is None or isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict):
        return {k: v for k, v in fields.items() if not k.startswith("_")}
    return value


def _where(session_id: str | None) -> str:
    return f"session {session_id!r}: " if session_id else ""


def normalize_tokens(value: object, session_id: str | None = None) -> TokenCounts | None:
    """``tokens=`` in any of the accepted forms as :class:`TokenCounts` (None for None); ``InvalidInput``
    naming the key for anything else."""
    if type(value) is dict and len(value) == 2:  # the common {"input": n, "output": m}: checked in one step
        given_in, given_out = value.get("input", -1), value.get("output", -1)
        if type(given_in) is int and type(given_out) is int and 0 <= given_in <= _INT_MAX and 0 <= given_out <= _INT_MAX:
            return TokenCounts(input=given_in, output=given_out)
    tokens = _plain(value)
    if tokens is None:
        return None
    if not isinstance(tokens, Mapping):
        raise InvalidInput(
            f"{_where(session_id)}tokens must be a mapping like {{'input': 120, 'output': 40}} or a provider's"
            f" usage (OpenAI or Anthropic), not {type(value).__name__}",
            session_id=session_id,
            field="tokens",
        )
    keys = {k for k, v in tokens.items() if v is not None}
    for form in (_OWN, _OPENAI_CHAT, _OPENAI_RESPONSES, _ANTHROPIC):
        if keys - _READ_PAST <= form:
            break
    else:
        known = _OWN | _OPENAI_CHAT | _OPENAI_RESPONSES | _ANTHROPIC | _READ_PAST
        strange = sorted(map(str, keys - known)) or sorted(map(str, keys - _READ_PAST))
        raise InvalidInput(
            f"{_where(session_id)}tokens has keys {strange} that belong to no usage form: use 'input' and 'output'"
            " (and 'cache_read', 'cache_creation', 'reasoning'), or an OpenAI or Anthropic usage as it comes",
            session_id=session_id,
            field="tokens",
        )

    def count(key: str, field: str) -> int | None:
        return check_count(tokens.get(key), f"tokens.{field}", session_id)

    def detail(key: str, inner: str, field: str) -> int | None:
        part = _plain(tokens.get(key))
        if part is None:
            return None
        if not isinstance(part, Mapping):
            raise InvalidInput(f"{_where(session_id)}tokens.{key} must be a mapping; got {part!r}",
                               session_id=session_id, field=f"tokens.{key}")
        return check_count(part.get(inner), f"tokens.{key}.{inner}", session_id)

    if form is _OWN:
        counts = TokenCounts(input=count("input", "input"), output=count("output", "output"),
                             cache_read=count("cache_read", "cache_read"),
                             cache_creation=count("cache_creation", "cache_creation"),
                             reasoning=count("reasoning", "reasoning"))
    elif form is _OPENAI_CHAT:
        counts = TokenCounts(input=count("prompt_tokens", "prompt_tokens"),
                             output=count("completion_tokens", "completion_tokens"),
                             cache_read=detail("prompt_tokens_details", "cached_tokens", "cache_read"),
                             cache_creation=detail("prompt_tokens_details", "cache_write_tokens", "cache_creation"),
                             reasoning=detail("completion_tokens_details", "reasoning_tokens", "reasoning"))
    elif form is _ANTHROPIC:  # cache reads and writes counted apart from input_tokens
        read = count("cache_read_input_tokens", "cache_read")
        written = count("cache_creation_input_tokens", "cache_creation")
        given = count("input_tokens", "input_tokens")
        total = None if given is None and read is None and written is None else (given or 0) + (read or 0) + (written or 0)
        counts = TokenCounts(input=check_count(total, "tokens.input", session_id),
                             output=count("output_tokens", "output_tokens"), cache_read=read, cache_creation=written)
    else:  # OpenAI Responses (or Anthropic without cache figures: the same meaning)
        counts = TokenCounts(input=count("input_tokens", "input_tokens"), output=count("output_tokens", "output_tokens"),
                             cache_read=detail("input_tokens_details", "cached_tokens", "cache_read"),
                             cache_creation=detail("input_tokens_details", "cache_write_tokens", "cache_creation"),
                             reasoning=detail("output_tokens_details", "reasoning_tokens", "reasoning"))
    _check_parts(counts, session_id)
    return counts


def _check_parts(counts: TokenCounts, session_id: str | None) -> None:
    # The cache and reasoning figures are parts of the totals: a part larger than its total is a mistake.
    for part, whole in (("cache_read", "input"), ("cache_creation", "input"), ("reasoning", "output")):
        value, total = getattr(counts, part), getattr(counts, whole)
        if value is not None and total is not None and value > total:
            raise InvalidInput(
                f"{_where(session_id)}tokens.{part} ({value}) is part of tokens.{whole} and cannot exceed it ({total})",
                session_id=session_id,
                field=f"tokens.{part}",
            )
    read, written, total = counts.cache_read or 0, counts.cache_creation or 0, counts.input
    if total is not None and read + written > total:
        raise InvalidInput(
            f"{_where(session_id)}tokens.cache_read + tokens.cache_creation ({read + written}) exceed tokens.input ({total})",
            session_id=session_id,
            field="tokens.cache_read",
        )


def as_dict(counts: TokenCounts | None) -> dict[str, Any] | None:
    """``Message.tokens``: the figures given, or None when there are none."""
    return (counts.as_dict() or None) if counts is not None else None
