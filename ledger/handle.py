"""A session handle: one session's commands and reads without repeating its id.

``Ledger.session("chat-1")`` returns a :class:`SessionHandle`; every method
is the ``Ledger`` method of the same name (``complete`` is
``complete_session``, ``state`` is ``get_session``) with the session id filled
in, derived from it (``delegation.for_session``), so it validates, raises and
writes exactly as that method does. A handle
holds no state of its own: it is cheap, safe to share between threads, and
always reads the ledger's current truth.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .commands import Commands
from .delegation import for_session
from .engine import Engine
from .errors import InvalidInput, SessionExists, SessionNotFound
from .reads import Reads
from .validation import check_id

if TYPE_CHECKING:
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

    # -- commands: the ledger's own, with the session id filled in -----------------------

    add_message = for_session(Commands.add_message)
    link_invocation = for_session(Commands.link_invocation)
    set_metadata = for_session(Commands.set_metadata)
    update_metadata = for_session(Commands.update_metadata)
    remove_metadata = for_session(Commands.remove_metadata)
    set_data = for_session(Commands.set_data)
    delete_data = for_session(Commands.delete_data)
    clear_data = for_session(Commands.clear_data)
    add_tags = for_session(Commands.add_tags)
    remove_tags = for_session(Commands.remove_tags)
    retract_message = for_session(Commands.retract_message)
    clear_conversation = for_session(Commands.clear_conversation)
    complete = for_session(Commands.complete_session, "complete")
    restore = for_session(Commands.restore)
    checkpoint = for_session(Engine.checkpoint)

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

    # -- reads ------------------------------------------------------------------------------

    state = for_session(Reads.get_session, "state")
    get_metadata = for_session(Reads.get_metadata)
    get_data = for_session(Reads.get_data)
    messages = for_session(Reads.messages)
    history = for_session(Reads.history)
    statistics = for_session(Reads.statistics)


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
