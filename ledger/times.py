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
    parsed, text = _last_parsed
    if moment is parsed:
        return text
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"the clock must return timezone-aware datetimes, not {moment!r}", field="clock")
    if moment.tzinfo is not timezone.utc:
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError as exc:
            raise InvalidInput(f"the clock returned {moment!r}, which has no UTC equivalent", field="clock") from exc
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """Stored UTC text back to an aware datetime."""
    global _last_parsed
    moment = datetime.fromisoformat(text)
    _last_parsed = (moment, text)
    return moment


# The last (datetime, text) pair parse_time made: the projectors format a recorded event's time right
# after the log parsed it, and the identity check hands back the very text it came from.
_last_parsed: tuple[datetime | None, str] = (None, "")


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
