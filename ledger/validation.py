"""Input validation and hard limits, applied before anything is written.

Every check raises ``InvalidInput`` (or ``LimitExceeded`` for a size over a
limit) naming the session, the field and the limit. JSON values come back
normalised (tuples as lists, ``str``/``int``/``float`` subclasses as the base
type) so the state folded in this process equals the state decoded later.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, overload

import msgspec
import pydantic

from .errors import InvalidInput, LimitExceeded

S = TypeVar("S", bound=str)
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
INT_MAX = _INT_MAX  # the largest integer a column holds (SQLite and PostgreSQL BIGINT)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Limits:
    """Hard limits on what one session may hold. The defaults follow the seeds' users."""

    max_metadata_keys: int = 100
    max_key_bytes: int = 256
    max_metadata_value_bytes: int = 4096
    max_data_value_bytes: int = 1_048_576
    max_content_bytes: int = 1_048_576
    max_tags: int = 100
    max_tag_chars: int = 128
    max_name_bytes: int = 256
    max_text_bytes: int = 4096
    max_depth: int = 32
    #: A record's value (as JSON) and blob together (``Ledger.set_record``).
    max_record_bytes: int = 16_777_216


def plain(value: str) -> str:
    """The text of a string as a plain ``str``: a ``str`` subclass (a ``(str, Enum)`` member, say) becomes
    its value, so what is hashed, stored and cached is one and the same text (``str()`` of such an enum
    member would be its name, ``Cls.MEMBER``)."""
    return value if type(value) is str else str.__str__(value)


def _where(session_id: str | None) -> str:
    return f"session {session_id!r}: " if session_id else ""


def check_id(value: object, field: str, session_id: str | None = None) -> str:
    """A session or event id: 1-128 characters from [A-Za-z0-9._:-]."""
    if not isinstance(value, str):
        raise InvalidInput(
            f"{_where(session_id)}{field} must be a string, not {type(value).__name__}",
            session_id=session_id,
            field=field,
        )
    if _ID.fullmatch(value) is None or not value.strip("."):
        raise InvalidInput(
            f"{_where(session_id)}{field} {value[:140]!r} must be 1-128 characters from [A-Za-z0-9._:-], not only dots",
            session_id=session_id,
            field=field,
            limit=128,
        )
    return plain(value)


def _utf8(value: str, field: str, session_id: str | None) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{_where(session_id)}{field} is not valid Unicode text (lone surrogate at {exc.start})",
            session_id=session_id,
            field=field,
        ) from exc


@overload
def check_text(
    value: object,
    field: str,
    limit: int,
    session_id: str | None = None,
    *,
    optional: Literal[False],
    allow_nul: bool = False,
    allow_empty: bool = True,
) -> str: ...


@overload
def check_text(
    value: object,
    field: str,
    limit: int,
    session_id: str | None = None,
    *,
    optional: bool = True,
    allow_nul: bool = False,
    allow_empty: bool = True,
) -> str | None: ...


def check_text(
    value: object,
    field: str,
    limit: int,
    session_id: str | None = None,
    *,
    optional: bool = True,
    allow_nul: bool = False,
    allow_empty: bool = True,
) -> str | None:
    """A string of at most ``limit`` UTF-8 bytes (None allowed when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f"{_where(session_id)}{field} must be a string, not {type(value).__name__}",
            session_id=session_id,
            field=field,
        )
    size = len(_utf8(value, field, session_id))
    if size > limit:
        raise LimitExceeded(
            f"{_where(session_id)}{field} is {size} bytes of UTF-8; the limit is {limit}",
            session_id=session_id,
            field=field,
            limit=limit,
            actual=size,
        )
    if not allow_empty and not value:
        raise InvalidInput(f"{_where(session_id)}{field} must not be empty", session_id=session_id, field=field)
    if not allow_nul and "\x00" in value:
        raise InvalidInput(
            f"{_where(session_id)}{field} must not contain NUL characters", session_id=session_id, field=field
        )
    return plain(value)


def check_key(key: object, field: str, limits: Limits, session_id: str | None) -> str:
    """A metadata or data key: non-empty, at most ``max_key_bytes`` of UTF-8, no NUL."""
    return check_text(
        key, field, limits.max_key_bytes, session_id, optional=False, allow_empty=False
    )


def check_json(value: object, field: str, limit: int, limits: Limits, session_id: str | None) -> tuple[Any, int]:
    """A JSON-compatible value of at most ``limit`` encoded bytes; returns (normalised value, size)."""
    normal = _normalise(value, field, limits.max_depth, session_id, 0)
    size = len(_encode(normal))
    if size > limit:
        raise LimitExceeded(
            f"{_where(session_id)}{field} is {size} bytes of JSON; the limit is {limit}",
            session_id=session_id,
            field=field,
            limit=limit,
            actual=size,
        )
    return normal, size


def _normalise(value: object, field: str, max_depth: int, session_id: str | None, depth: int) -> Any:
    if depth >= max_depth and isinstance(value, (list, tuple, Mapping)):
        raise LimitExceeded(
            f"{_where(session_id)}{field} is nested deeper than {max_depth} levels (or refers to itself)",
            session_id=session_id,
            field=field,
            limit=max_depth,
        )
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        _utf8(value, field, session_id)
        return plain(value)
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise InvalidInput(
                f"{_where(session_id)}{field} holds an integer outside the signed 64-bit range",
                session_id=session_id,
                field=field,
            )
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                f"{_where(session_id)}{field} holds {value!r}; JSON has no NaN or infinities",
                session_id=session_id,
                field=field,
            )
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_normalise(item, field, max_depth, session_id, depth + 1) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(
                    f"{_where(session_id)}{field} has a key of type {type(k).__name__}; JSON keys are strings",
                    session_id=session_id,
                    field=field,
                )
            _utf8(k, field, session_id)
            out[plain(k)] = _normalise(v, field, max_depth, session_id, depth + 1)
        return out
    raise InvalidInput(
        f"{_where(session_id)}{field} holds a {type(value).__name__}, which is not JSON-compatible",
        session_id=session_id,
        field=field,
    )


def check_blob(blob: object, session_id: str) -> bytes | None:
    """Record bytes: None, or bytes-like (kept as ``bytes``)."""
    if blob is None:
        return None
    if isinstance(blob, (bytes, bytearray, memoryview)):
        return bytes(blob)
    raise InvalidInput(f"session {session_id!r}: blob must be bytes, not {type(blob).__name__}",
                       session_id=session_id, field="blob")


def check_record(
    kind: object, key: object, value: object, blob: bytes | None, group: object, limits: Limits, session_id: str
) -> Any:
    """A record as ``set_record`` takes it: ``kind``, ``key`` and ``group`` (None or a name) by the key rules,
    a JSON ``value`` and the ``blob`` within ``Limits.max_record_bytes`` together. Returns the value normalised."""
    check_key(kind, "kind", limits, session_id)
    check_key(key, "key", limits, session_id)
    if group is not None:
        check_key(group, "group", limits, session_id)
    normal, size = check_json(value, "value", limits.max_record_bytes, limits, session_id)
    size += len(blob or b"")
    if size > limits.max_record_bytes:
        raise LimitExceeded(
            f"session {session_id!r}: record {key!r} is {size} bytes (value and blob); the limit is"
            f" {limits.max_record_bytes}",
            session_id=session_id, field="blob", limit=limits.max_record_bytes, actual=size,
        )
    return normal


def check_keys(keys: object, limits: Limits, session_id: str | None) -> tuple[str, ...]:
    """A list of record keys, each checked, without repeats (in the order given)."""
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise InvalidInput(f"{_where(session_id)}keys must be a list of keys, not {type(keys).__name__}",
                           session_id=session_id, field="keys")
    return tuple(dict.fromkeys(check_key(key, "keys", limits, session_id) for key in keys))


def check_removal(
    kind: object, keys: object, limits: Limits, session_id: str
) -> tuple[str | None, tuple[str, ...] | None]:
    """What ``remove_records`` removes: every record (kind None), every one of a kind (keys None), or these keys."""
    if kind is None:
        if keys is not None:
            raise InvalidInput(f"session {session_id!r}: keys need the kind they are keys of", session_id=session_id,
                               field="kind")
        return None, None
    name = check_key(kind, "kind", limits, session_id)
    return name, None if keys is None else check_keys(keys, limits, session_id)


def check_choice(value: object, field: str, choices: tuple[S, ...], session_id: str | None) -> S:
    """One of a fixed set of strings (returned as the choice itself, so its literal type is kept)."""
    for choice in choices:
        if value == choice and isinstance(value, str):
            return choice
    raise InvalidInput(
        f"{_where(session_id)}{field} must be one of {', '.join(choices)}; got {value!r}",
        session_id=session_id,
        field=field,
        expected=choices,
        actual=value,
    )


def check_count(value: object, field: str, session_id: str | None) -> int | None:
    """A non-negative integer (a token count), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_MAX:
        raise InvalidInput(
            f"{_where(session_id)}{field} must be a non-negative integer; got {value!r}",
            session_id=session_id,
            field=field,
        )
    return int(value)


def check_amount(value: object, field: str, session_id: str | None) -> float | None:
    """A finite non-negative number (a duration or a cost), or None."""
    if value is None:
        return None
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(
            f"{_where(session_id)}{field} must be a finite non-negative number; got {value!r}",
            session_id=session_id,
            field=field,
        )
    return number


def check_totals(
    state: Any, tokens_in: int | None, tokens_out: int | None, duration_ms: float | None, cost: float | None
) -> None:
    """Refuse an event that would push a session's running totals past 64-bit integers or finite floats."""
    for field, total, add in (("tokens.input", state.tokens_in, tokens_in), ("tokens.output", state.tokens_out, tokens_out)):
        if add and total + add > _INT_MAX:
            raise LimitExceeded(
                f"{_where(state.session_id)}{field} would take the session's total past {_INT_MAX}",
                session_id=state.session_id,
                field=field,
                limit=_INT_MAX,
            )
    for field, total, extra in (("duration_ms", state.total_duration_ms, duration_ms), ("cost", state.estimated_cost, cost)):
        if extra and not math.isfinite(total + extra):
            raise LimitExceeded(
                f"{_where(state.session_id)}{field} would make the session's total infinite",
                session_id=state.session_id,
                field=field,
            )


def check_tokens(tokens: object, session_id: str | None) -> tuple[int | None, int | None]:
    """A token mapping like ``{"input": 120, "output": 40}``; returns (input, output)."""
    if tokens is None:
        return None, None
    if not isinstance(tokens, Mapping):
        raise InvalidInput(
            f"{_where(session_id)}tokens must be a mapping like {{'input': 120, 'output': 40}}",
            session_id=session_id,
            field="tokens",
        )
    unknown = set(tokens) - {"input", "output"}
    if unknown:
        raise InvalidInput(
            f"{_where(session_id)}tokens has unknown keys {sorted(map(str, unknown))}; use 'input' and 'output'",
            session_id=session_id,
            field="tokens",
        )
    return (
        check_count(tokens.get("input"), "tokens.input", session_id),
        check_count(tokens.get("output"), "tokens.output", session_id),
    )


def check_tags(tags: object, limits: Limits, session_id: str | None) -> tuple[str, ...]:
    """A collection of tags (not one bare string), each 1-``max_tag_chars`` characters; order kept, repeats dropped."""
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
        raise InvalidInput(
            f"{_where(session_id)}tags must be a list of strings, not {type(tags).__name__}",
            session_id=session_id,
            field="tags",
        )
    out: dict[str, None] = {}
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > limits.max_tag_chars:
            raise InvalidInput(
                f"{_where(session_id)}tag {tag!r} must be a string of 1-{limits.max_tag_chars} characters",
                session_id=session_id,
                field="tags",
                limit=limits.max_tag_chars,
            )
        _utf8(tag, "tags", session_id)
        if any(unicodedata.category(ch) == "Cc" for ch in tag):
            raise InvalidInput(
                f"{_where(session_id)}tag {tag!r} must not contain control characters",
                session_id=session_id,
                field="tags",
            )
        out[plain(tag)] = None
    return tuple(out)


class MetadataSchema:
    """Validates metadata values by key against a pydantic model, and supplies its defaults at creation.

    Keys the model does not declare are accepted unless the model forbids
    extra fields. Values are stored as the model's JSON form.
    """

    def __init__(self, model: type[pydantic.BaseModel]) -> None:
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            raise InvalidInput("metadata_schema must be a pydantic BaseModel subclass", field="metadata_schema")
        self.model = model
        self._forbid_extra = model.model_config.get("extra") == "forbid"
        self._adapters: dict[str, pydantic.TypeAdapter[Any]] = {
            name: pydantic.TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]  # a runtime-built Annotated form
            for name, info in model.model_fields.items()
        }

    def validate(self, values: Mapping[str, Any], session_id: str | None) -> dict[str, Any]:
        """Validate the given keys; returns their values in the model's JSON form."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            adapter = self._adapters.get(key)
            if adapter is None:
                if self._forbid_extra:
                    raise InvalidInput(
                        f"{_where(session_id)}metadata key {key!r} is not in {self.model.__name__}",
                        session_id=session_id,
                        field=f"metadata.{key}",
                    )
                out[key] = value
                continue
            try:
                out[key] = adapter.dump_python(adapter.validate_python(value), mode="json")
            except pydantic.ValidationError as exc:
                problem = exc.errors()[0]["msg"]
                raise InvalidInput(
                    f"{_where(session_id)}metadata key {key!r}: {problem}",
                    session_id=session_id,
                    field=f"metadata.{key}",
                ) from exc
        return out

    def with_defaults(self, values: Mapping[str, Any], session_id: str | None) -> dict[str, Any]:
        """The given values validated, plus a default for every declared key not given."""
        out = self.validate(values, session_id)
        for name, info in self.model.model_fields.items():
            if name in out:
                continue
            if info.is_required():
                raise InvalidInput(
                    f"{_where(session_id)}metadata key {name!r} is required by {self.model.__name__}",
                    session_id=session_id,
                    field=f"metadata.{name}",
                )
            out[name] = self._adapters[name].dump_python(info.get_default(call_default_factory=True), mode="json")
        return out


# -- filters -------------------------------------------------------------------------------------


def check_strings(value: object, field: str) -> list[str]:
    """A non-empty list of filter strings (not one bare string)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInput(f"{field} must be a list of strings, not {type(value).__name__}", field=field)
    out = list(value)
    if not out:
        raise InvalidInput(f"{field} must be a non-empty list of strings", field=field)
    return [check_filter_text(v, field) for v in out]


def check_filter_text(value: object, field: str) -> str:
    """A filter string: text that SQLite can store (no lone surrogates)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string; got {value!r}", field=field)
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text (lone surrogate at {exc.start})", field=field) from exc
    return plain(value)


def check_page_size(value: object, high: int) -> int:
    """A page size (``limit``): an integer from 1 to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise InvalidInput(f"limit must be an integer from 1 to {high}; got {value!r}", field="limit", limit=high)
    return value


# -- numbers, callbacks and paths -------------------------------------------------------------

INT64_MAX = _INT_MAX
# Told (done, in all) as long work goes: a verify, an export, a rebuild.
Progress = Callable[[int, int], None]
DURABILITY: tuple[str, ...] = ("normal", "full")
_LONGEST = timedelta(days=36_500)  # a century: any retention or idle limit beyond it is a mistake


def check_int(value: object, field: str, session_id: str | None = None, *, low: int = 0) -> int:
    """An integer from ``low`` up to the signed 64-bit maximum (``InvalidInput`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _INT_MAX:
        raise InvalidInput(
            f"{_where(session_id)}{field} must be an integer >= {low}; got {value!r}", session_id=session_id, field=field
        )
    return int(value)


def check_seconds(value: object, field: str, *, low: float = 0.0) -> float:
    """A number of seconds from ``low`` to 10 million (a wait, a poll, a timeout)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 1e7:
        raise InvalidInput(f"{field} must be a number of seconds from {low:g} to 1e7; got {value!r}", field=field)
    return float(value)


def check_progress(progress: object) -> None:
    """A progress callback is None or callable (``InvalidInput`` otherwise)."""
    if progress is not None and not callable(progress):
        raise InvalidInput(f"progress must be a callable taking (done, total); got {progress!r}", field="progress")


def duration_arg(value: object, field: str, unit: float) -> timedelta:
    """A positive duration given as a timedelta or a number of ``unit`` seconds (``InvalidInput`` otherwise)."""
    if isinstance(value, timedelta):
        span = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e12:
        try:
            span = timedelta(seconds=float(value) * unit)
        except OverflowError as exc:
            raise InvalidInput(f"{field} is far too long; got {value!r}", field=field) from exc
    else:
        raise InvalidInput(f"{field} must be a positive number or timedelta; got {value!r}", field=field)
    if span <= timedelta(0) or span > _LONGEST:
        raise InvalidInput(f"{field} must be positive and at most {_LONGEST.days} days; got {value!r}", field=field)
    return span


def path_arg(path: object, field: str) -> str:
    """A file system path given as text or ``os.PathLike``: non-empty, no NUL, valid Unicode."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"{field} must be a file path; got {path!r}", field=field)
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidInput(f"{field} must be a file path; got {text!r}", field=field)
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not a usable file name (lone surrogate)", field=field) from exc
    if len(os.path.basename(text).encode()) > _NAME_MAX:
        raise InvalidInput(f"{field}: a file name is at most {_NAME_MAX} bytes; got {text[:60]!r}…", field=field,
                           limit=_NAME_MAX)
    return text


_NAME_MAX = 255  # bytes in one file name, on every file system the ledger runs on


def new_file_path(path: object, field: str) -> str:
    """A path for a file this call creates: a real file name, not in use yet."""
    text = path_arg(path, field)
    if text == ":memory:" or text.startswith("file:"):
        raise InvalidInput(f"{field} must be a file path; got {text!r}", field=field)
    if os.path.exists(text) and (os.path.isdir(text) or os.path.getsize(text) > 0):
        raise InvalidInput(f"{field} {text!r} already exists; this writes a new file", field=field)
    return text


def ledger_path(path: object) -> str:
    """Where a ledger lives: a file path, or ``":memory:"``."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"path must be a string or a path, not {type(path).__name__}", field="path")
    text = os.fspath(path)
    if not isinstance(text, str) or "\x00" in text:
        raise InvalidInput(f"path {text!r} is not a usable file name", field="path")
    return text


class Options(NamedTuple):
    """The checked settings of a ``Ledger``."""

    path: str
    durability: str
    busy_timeout: float
    snapshot_every: int
    cache_size: int
    max_idle: timedelta | None
    cleanup_every: float | None


def check_options(
    path: object,
    *,
    durability: object,
    busy_timeout: object,
    snapshot_every: object,
    cache_size: object,
    clock: object,
    new_id: object,
    new_salt: object = None,
    limits: object,
    cleanup_every: object,
    max_idle: object,
) -> Options:
    """Every ``Ledger(...)`` argument checked, in one place, before anything is opened."""
    counts = []
    for name, value, low in (("snapshot_every", snapshot_every, 0), ("cache_size", cache_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInput(f"{name} must be an integer >= {low}; got {value!r}", field=name)
        counts.append(value)
    for name, function in (("clock", clock), ("new_id", new_id), ("new_salt", new_salt)):
        if function is not None and not callable(function):
            raise InvalidInput(f"{name} must be a callable; got {function!r}", field=name)
    if limits is not None and not isinstance(limits, Limits):
        raise InvalidInput(f"limits must be a ledger.Limits; got {limits!r}", field="limits")
    if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or not 0 <= busy_timeout <= 86_400:
        raise InvalidInput(f"busy_timeout must be 0-86400 seconds; got {busy_timeout!r}", field="busy_timeout")
    if (cleanup_every is None) != (max_idle is None):
        raise InvalidInput("cleanup_every and max_idle go together", field="cleanup_every" if cleanup_every is None else "max_idle")
    idle = None if max_idle is None else duration_arg(max_idle, "max_idle", 1)
    every = None if cleanup_every is None else duration_arg(cleanup_every, "cleanup_every", 1).total_seconds()
    if not isinstance(durability, str) or durability not in DURABILITY:
        raise InvalidInput(f"durability must be one of {', '.join(DURABILITY)}; got {durability!r}", field="durability")
    return Options(ledger_path(path), durability, float(busy_timeout), counts[0], counts[1], idle, every)
