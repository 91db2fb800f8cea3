"""Time text: the one place that turns moments into the stored form and back.

Stored times are UTC ISO-8601 with microseconds and a ``Z``, fixed width, so
text order is time order in every table and every SQL tool. User-facing
arguments are aware datetimes (library) or ISO-8601 text (command line, where
a time without a zone is taken as UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .errors import InvalidInput


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """An aware datetime as the stored UTC text: fixed width, so text order is time order."""
    known = _known.get(id(moment))
    if known is not None and known[0] is moment:
        return known[1]
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"the clock must return timezone-aware datetimes, not {moment!r}", field="clock")
    if moment.tzinfo is not timezone.utc:
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError as exc:
            raise InvalidInput(f"the clock returned {moment!r}, which has no UTC equivalent", field="clock") from exc
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def stamp(moment: datetime) -> tuple[datetime, str]:
    """An aware datetime as (the same instant in UTC, its stored text), remembered so that formatting that
    datetime again (the fold and the projectors do, after an append) costs a lookup."""
    text = format_time(moment)
    if type(moment) is not datetime or moment.tzinfo is not timezone.utc:
        moment = datetime.fromisoformat(text)
    _remember(moment, text)
    return moment, text


def parse_time(text: str) -> datetime:
    """Stored UTC text back to an aware datetime."""
    moment = datetime.fromisoformat(text)
    _remember(moment, text)
    return moment


# The texts of the datetimes parse_time and stamp made lately, by object identity: the fold and the projectors
# format a recorded event's time after the log parsed or stamped it, and get back the very text it came from.
# Each entry holds its datetime, so no id in the table can be reused by another object while it is there.
_known: dict[int, tuple[datetime, str]] = {}
_KNOWN_MAX = 8192  # a replay batch (5,000 events) and then some


def _remember(moment: datetime, text: str) -> None:
    if len(_known) >= _KNOWN_MAX:
        _known.clear()
    _known[id(moment)] = (moment, text)


def time_arg(value: object, field: str, session_id: str | None = None) -> str:
    """An aware datetime argument as stored-time text (``InvalidInput`` naming ``field`` otherwise)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be a timezone-aware datetime; got {value!r}", session_id=session_id, field=field
        )
    try:
        return format_time(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc}", session_id=session_id, field=field) from exc


def before(now: datetime, span: timedelta, field: str) -> str:
    """The stored time ``span`` before ``now`` (``InvalidInput`` when that is before the year 1)."""
    try:
        return format_time(now - span)
    except OverflowError as exc:
        raise InvalidInput(f"{field} reaches back before the year 1", field=field) from exc


def parse_instant(text: str, field: str) -> datetime:
    """An ISO-8601 time typed by a person (a ``Z`` suffix allowed); without a zone it is taken as UTC."""
    stripped = text.strip()
    try:
        moment = datetime.fromisoformat(stripped[:-1] + "+00:00" if stripped.endswith("Z") else stripped)
    except ValueError as exc:
        raise InvalidInput(f"{field} must be an ISO 8601 time like 2026-01-31T14:03:00Z; got {text!r}", field=field) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
