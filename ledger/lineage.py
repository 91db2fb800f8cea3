"""Lineage: which version ranges of which sessions make up a session's effective conversation.

A restore or fork starts a new run of versions; the conversation before it is
carried as closed ranges ``(session, first, last)``, and the session's own run
continues from ``run_start``. The read side stores the same ranges
(``session_segments``) and reads along them (``projections.lineage``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# (session, first version, last version); ``None`` as the last version means "still open".
OpenSegment = tuple[str, int, "int | None"]
Segment = tuple[str, int, int]


def merge_segments(segments: list[OpenSegment]) -> list[OpenSegment]:
    """A lineage without empty ranges, and with a range merged into the next one of the same session
    when only a ``restored`` event lies between them (it holds no messages): repeated restores then
    add nothing."""
    out: list[OpenSegment] = []
    for session_id, first, last in segments:
        if last is not None and first > last:
            continue
        if out:
            prev_session, prev_first, prev_last = out[-1]
            if prev_session == session_id and prev_last is not None and first <= prev_last + 2:
                out[-1] = (session_id, prev_first, last)
                continue
        out.append((session_id, first, last))
    return out


class HasLineage(Protocol):
    """What a state needs for its lineage (``session.Session`` has it)."""

    @property
    def session_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def run_start(self) -> int: ...

    @property
    def lineage(self) -> Sequence[Segment]: ...


def segments(state: HasLineage) -> tuple[Segment, ...]:
    """The version ranges whose events make up the session's effective history, oldest first."""
    merged = merge_segments([*state.lineage, (state.session_id, state.run_start, state.version)])
    return tuple((sid, first, last if last is not None else state.version) for sid, first, last in merged)
