"""Strings given as ``str`` subclasses (a ``(str, Enum)`` member, a user's own ``str`` type) are taken as their
plain text everywhere: hashed, stored, cached and returned as the same value (issue 13, item 1)."""

from __future__ import annotations

import enum

from ledger import Ledger


class Sid(str, enum.Enum):
    MAIN = "main-session"
    OTHER = "other-session"


class Tag(str):
    """A user's own string type."""


def test_an_enum_member_as_session_and_event_id_keeps_the_chain_and_reads_back_as_its_value(ledger: Ledger) -> None:
    created = ledger.create_session(Sid.MAIN, user_id=Tag("user-1"), tags=[Tag("t1")], metadata={Tag("k"): Tag("v")})
    assert type(created.session_id) is str and created.session_id == "main-session"
    version = ledger.add_message(Sid.MAIN, "user", Tag("hello"), event_id=Sid.OTHER)
    assert ledger.add_message(Sid.MAIN, "user", "hello", event_id="other-session") == version  # the same event_id
    assert ledger.verify().ok
    session = ledger.get_session("main-session")
    assert session.user_id == "user-1" and type(session.user_id) is str
    assert list(session.tags) == ["t1"] and session.metadata == {"k": "v"}
    assert [type(k) for k in session.metadata] == [str]
    events = list(ledger.history("main-session"))
    assert [e.session_id for e in events] == ["main-session", "main-session"]
    assert events[1].event_id == "other-session"
    assert [s.session_id for s in ledger.list_sessions().items] == ["main-session"]


def test_a_str_subclass_session_id_creates_once_and_raises_nothing_after_the_commit(ledger: Ledger) -> None:
    ledger.create_session(Tag("abc"))
    assert ledger.get_session("abc").version == 1
    assert ledger.add_message(Tag("abc"), "user", "hi") == 2
    assert ledger.session(Tag("abc")).add_message("user", "again") == 3
    assert ledger.verify().ok and ledger.last_position == 3
