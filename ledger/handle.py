"""A session handle: one session's commands and reads without repeating its id.

``Ledger.session("chat-1")`` returns a :class:`SessionHandle`; every method
forwards to the ``Ledger`` method of the same name (``complete`` is
``complete_session``, ``state`` is ``get_session``) with the session id filled
in, so it validates, raises and writes exactly as that method does. A handle
holds no state of its own: it is cheap, safe to share between threads, and
always reads the ledger's current truth.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, SessionExists, SessionNotFound
from .events import RecordedEvent
from .session import Message, Session
from .validation import check_id

if TYPE_CHECKING:
    from projections.analytics import Statistics

    from .ledger import Ledger


class SessionHandle:
    """One session of a ledger, bound: the ledger's commands and reads minus the session id.

    Made by ``Ledger.session``. Commands return the session's new version;
    every error is the ``LedgerError`` the ledger method raises.
    """

    __slots__ = ("ledger", "session_id")

    def __init__(self, ledger: Ledger, session_id: str) -> None:
        self.ledger = ledger
        self.session_id = check_id(session_id, "session_id")

    def __repr__(self) -> str:
        return f"SessionHandle({self.session_id!r}, ledger={self.ledger!r})"

    # -- commands ---------------------------------------------------------------

    def add_message(
        self,
        role: str,
        content: str,
        *,
        tool_name: str | None = None,
        invocation_id: str | None = None,
        model: str | None = None,
        tokens: Mapping[str, int] | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Append a message (``Ledger.add_message``); returns the new version."""
        return self.ledger.add_message(
            self.session_id, role, content, tool_name=tool_name, invocation_id=invocation_id, model=model,
            tokens=tokens, expected_version=expected_version, event_id=event_id,
        )

    def link_invocation(
        self,
        invocation_id: str,
        tool_name: str,
        *,
        duration_ms: float | None = None,
        tokens: Mapping[str, int] | None = None,
        cost: float | None = None,
        status: str = "ok",
        artifact: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Link a tool invocation (``Ledger.link_invocation``); returns the new version."""
        return self.ledger.link_invocation(
            self.session_id, invocation_id, tool_name, duration_ms=duration_ms, tokens=tokens, cost=cost,
            status=status, artifact=artifact, expected_version=expected_version, event_id=event_id,
        )

    def set_metadata(
        self,
        key: str,
        value: Any,
        *,
        modified_by: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Set one metadata key (``Ledger.set_metadata``); returns the new version."""
        return self.ledger.set_metadata(
            self.session_id, key, value, modified_by=modified_by, expected_version=expected_version, event_id=event_id
        )

    def update_metadata(
        self,
        values: Mapping[str, Any],
        *,
        modified_by: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Set several metadata keys in one event (``Ledger.update_metadata``); returns the version."""
        return self.ledger.update_metadata(
            self.session_id, values, modified_by=modified_by, expected_version=expected_version, event_id=event_id
        )

    def remove_metadata(
        self,
        key: str,
        *,
        modified_by: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Remove a metadata key (``Ledger.remove_metadata``); returns the version."""
        return self.ledger.remove_metadata(
            self.session_id, key, modified_by=modified_by, expected_version=expected_version, event_id=event_id
        )

    def set_data(
        self, key: str, value: Any, *, expected_version: int | None = None, event_id: str | None = None
    ) -> int:
        """Set a workflow data key to a JSON value (``Ledger.set_data``); returns the new version."""
        return self.ledger.set_data(self.session_id, key, value, expected_version=expected_version, event_id=event_id)

    def delete_data(self, key: str, *, expected_version: int | None = None, event_id: str | None = None) -> int:
        """Delete a workflow data key (``Ledger.delete_data``); returns the version."""
        return self.ledger.delete_data(self.session_id, key, expected_version=expected_version, event_id=event_id)

    def clear_data(self, *, expected_version: int | None = None, event_id: str | None = None) -> int:
        """Clear all workflow data, keeping the conversation (``Ledger.clear_data``); returns the version."""
        return self.ledger.clear_data(self.session_id, expected_version=expected_version, event_id=event_id)

    def add_tags(self, tags: Any, *, expected_version: int | None = None, event_id: str | None = None) -> int:
        """Add tags (``Ledger.add_tags``); returns the version."""
        return self.ledger.add_tags(self.session_id, tags, expected_version=expected_version, event_id=event_id)

    def remove_tags(self, tags: Any, *, expected_version: int | None = None, event_id: str | None = None) -> int:
        """Remove tags (``Ledger.remove_tags``); returns the version."""
        return self.ledger.remove_tags(self.session_id, tags, expected_version=expected_version, event_id=event_id)

    def retract_message(
        self,
        version: int | None = None,
        *,
        position: int | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Take a message (by default the last; or the one at ``version`` or global ``position``) out of the
        conversation (``Ledger.retract_message``); returns the new version."""
        return self.ledger.retract_message(
            self.session_id, version, position=position, expected_version=expected_version, event_id=event_id
        )

    def clear_conversation(self, *, expected_version: int | None = None, event_id: str | None = None) -> int:
        """Clear the conversation so far (``Ledger.clear_conversation``); returns the version."""
        return self.ledger.clear_conversation(self.session_id, expected_version=expected_version, event_id=event_id)

    def complete(
        self,
        status: str = "completed",
        *,
        reason: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """End the session as completed, failed or abandoned (``Ledger.complete_session``)."""
        return self.ledger.complete_session(
            self.session_id, status, reason=reason, expected_version=expected_version, event_id=event_id
        )

    def restore(
        self,
        *,
        version: int | None = None,
        at: datetime | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
    ) -> int:
        """Rewind the session to a version or instant by appending a ``restored`` event (``Ledger.restore``)."""
        return self.ledger.restore(
            self.session_id, version=version, at=at, expected_version=expected_version, event_id=event_id
        )

    def fork(
        self,
        *,
        version: int | None = None,
        at: datetime | None = None,
        new_session_id: str | None = None,
        event_id: str | None = None,
    ) -> SessionHandle:
        """Start a new session from this one's state now, or at a version or instant (``Ledger.fork``);
        returns the new session's handle."""
        child = self.ledger.fork(
            self.session_id, version=version, at=at, new_session_id=new_session_id, event_id=event_id
        )
        return SessionHandle(self.ledger, child.session_id)

    def checkpoint(self) -> int:
        """Snapshot the session's current state now (``Ledger.checkpoint``); returns the version snapshotted."""
        return self.ledger.checkpoint(self.session_id)

    # -- reads ------------------------------------------------------------------

    def state(self, *, version: int | None = None, position: int | None = None, at: datetime | None = None) -> Session:
        """The session's state now, or as of a version, position or instant (``Ledger.get_session``)."""
        return self.ledger.get_session(self.session_id, version=version, position=position, at=at)

    def get_metadata(
        self, key: str | None = None, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Any:
        """All metadata, or one key's value (None when absent), now or as of a target (``Ledger.get_metadata``)."""
        return self.ledger.get_metadata(self.session_id, key, version=version, position=position, at=at)

    def get_data(
        self, key: str | None = None, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Any:
        """All workflow data, or one key's value (None when absent), now or as of a target (``Ledger.get_data``)."""
        return self.ledger.get_data(self.session_id, key, version=version, position=position, at=at)

    def messages(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
    ) -> list[Message]:
        """The effective conversation, now or as of a target, optionally one page of it (``Ledger.messages``)."""
        return self.ledger.messages(
            self.session_id, limit=limit, offset=offset, version=version, position=position, at=at
        )

    def history(self, *, after: int = 0) -> Iterator[RecordedEvent]:
        """The session's recorded events with position > ``after``, in order (``Ledger.history``)."""
        return self.ledger.history(self.session_id, after=after)

    def statistics(
        self, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Statistics:
        """The session's figures, now or as of a target (``Ledger.statistics``)."""
        return self.ledger.statistics(self.session_id, version=version, position=position, at=at)


def open_session(ledger: Ledger, session_id: str | None, create: bool, fields: dict[str, Any]) -> SessionHandle:
    """``Ledger.session``: check or create the session, then bind a handle to it."""
    if not isinstance(create, bool):
        raise InvalidInput(f"create must be True or False; got {create!r}", field="create")
    given = {name: value for name, value in fields.items() if value is not None}
    if session_id is None and not create:
        raise InvalidInput("session_id is required when create=False", field="session_id")
    sid = None if session_id is None else check_id(session_id, "session_id")
    if not create:
        if given:
            name = sorted(given)[0]
            raise InvalidInput(
                f"session {sid!r}: {name} only applies when the session is created, and create=False never creates",
                session_id=sid,
                field=name,
            )
        assert sid is not None
        ledger.history(sid)  # raises SessionNotFound now; no event is read until it is iterated
        return SessionHandle(ledger, sid)
    # A read first: a handle on an existing session takes no write lock, so opening
    # one also works on a read-only file or one another process keeps busy.
    if sid is not None and _exists(ledger, sid):
        return SessionHandle(ledger, sid)
    try:
        created = ledger.create_session(sid, **given)
    except SessionExists:  # another thread or process created it since the read: the same outcome
        assert sid is not None
        return SessionHandle(ledger, sid)
    return SessionHandle(ledger, created.session_id)


def _exists(ledger: Ledger, session_id: str) -> bool:
    try:
        ledger.history(session_id)  # checks existence now; events are read only when iterated
    except SessionNotFound:
        return False
    return True
