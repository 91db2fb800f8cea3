"""Retracting a message and clearing the conversation: the log keeps everything, messages() moves on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import InvalidInput, Ledger, SessionClosed
from tests.conftest import Clock, raw_sql


@pytest.fixture
def led(ledger_path: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_path, clock=Clock(), snapshot_every=3)
    ledger.create_session("s")
    for i in range(4):
        ledger.add_message("s", "user" if i % 2 == 0 else "assistant", f"m{i}")
    yield ledger
    ledger.close()


def _contents(led: Ledger, sid: str = "s", **target: int) -> list[str]:
    return [m.content for m in led.messages(sid, **target)]


def test_retracting_takes_the_last_message_out_of_the_conversation_but_not_the_log(led: Ledger) -> None:
    assert led.retract_message("s") == 6
    assert _contents(led) == ["m0", "m1", "m2"]
    s = led.get_session("s")
    assert (s.message_count, s.messages_by_role) == (3, {"user": 2, "assistant": 1})
    assert _contents(led, version=5) == ["m0", "m1", "m2", "m3"]  # the past still shows it
    assert [e.type for e in led.history("s")][-1] == "message_retracted"
    assert led.list_sessions().items[0].message_count == 3
    assert led.statistics("s").message_count == 3


def test_a_message_can_be_retracted_by_version(led: Ledger) -> None:
    led.retract_message("s", 3)  # m1
    assert _contents(led) == ["m0", "m2", "m3"]
    with pytest.raises(InvalidInput, match="no message at version 3"):
        led.retract_message("s", 3)
    with pytest.raises(InvalidInput):
        led.retract_message("s", 1)  # the creation, not a message
    assert led.get_session("s").version == 6


def test_clearing_the_conversation_keeps_metadata_data_and_the_log(led: Ledger) -> None:
    led.set_data("s", "k", 1)
    led.clear_conversation("s")
    assert _contents(led) == [] and led.get_session("s").message_count == 0
    assert led.get_data("s") == {"k": 1}
    led.add_message("s", "user", "fresh start")
    assert _contents(led) == ["fresh start"]
    assert [x.session_id for x in led.list_sessions(text="m1")] == []
    assert [x.session_id for x in led.list_sessions(text="fresh")] == ["s"]
    assert len([e for e in led.history("s") if e.type == "message_added"]) == 5
    before = led.get_session("s").version
    assert led.clear_conversation("s") == before + 1
    version = led.get_session("s").version
    assert led.clear_conversation("s") == version  # nothing left to clear: a no-op


def test_there_is_nothing_to_retract_in_an_empty_conversation(led: Ledger) -> None:
    led.clear_conversation("s")
    with pytest.raises(InvalidInput, match="no message to retract"):
        led.retract_message("s")


def test_retraction_follows_forks_and_restores(led: Ledger) -> None:
    led.retract_message("s")
    fork = led.fork("s", new_session_id="f")
    assert fork.message_count == 3 and _contents(led, "f") == ["m0", "m1", "m2"]
    led.retract_message("f")
    assert _contents(led, "f") == ["m0", "m1"] and _contents(led) == ["m0", "m1", "m2"]
    led.restore("s", version=5)
    assert _contents(led) == ["m0", "m1", "m2", "m3"]


def test_a_closed_conversation_cannot_be_changed(led: Ledger) -> None:
    led.complete_session("s")
    for call in (lambda: led.retract_message("s"), lambda: led.clear_conversation("s")):
        with pytest.raises(SessionClosed):
            call()


def test_rebuild_after_retractions_gives_the_same_tables(led: Ledger) -> None:
    led.retract_message("s")
    led.fork("s", new_session_id="f")
    led.clear_conversation("f")
    led.add_message("f", "user", "again")
    names = ("sessions", "messages", "session_segments")

    def tables() -> dict[str, list[tuple[object, ...]]]:
        with raw_sql(led) as conn:
            return {n: conn.execute(f"SELECT * FROM {n} ORDER BY 1, 2").fetchall() for n in names}

    before = tables()
    led.rebuild()
    assert tables() == before
    assert led.verify().ok


def test_a_fork_retracts_its_own_messages_and_can_name_inherited_ones_by_position(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("p")
        led.add_message("p", "user", "p-v2")
        led.add_message("p", "user", "p-v3")
        led.fork("p", new_session_id="c")
        led.add_message("c", "user", "c-v2")
        led.add_message("c", "user", "c-v3")
        led.retract_message("c")
        assert _contents(led, "c") == ["p-v2", "p-v3", "c-v2"]
        led.retract_message("c", 2)  # its own version 2, not the parent's
        assert _contents(led, "c") == ["p-v2", "p-v3"]
        inherited = led.messages("c")[0].position
        led.retract_message("c", position=inherited)
        assert _contents(led, "c") == ["p-v3"]
        assert _contents(led, "p") == ["p-v2", "p-v3"]
        with pytest.raises(InvalidInput):
            led.retract_message("c", 2, position=inherited)


def test_many_pop_cycles_keep_the_state_small_and_every_view_right(led: Ledger) -> None:
    led.create_session("p")  # the fixture's "s" has messages already: a new session, snapshots every 3
    for i in range(60):  # what the OpenAI Agents adapter's pop_item does: add, add, retract the last
        led.add_message("p", "user", f"q{i}")
        led.add_message("p", "assistant", f"a{i}")
        led.retract_message("p")
    state = led.get_session("p")
    assert state.hidden == () and state.message_count == 60  # nothing in the state grows with retractions
    assert [m.content for m in led.messages("p")] == [f"q{i}" for i in range(60)]
    # A view of an earlier version still shows what was there then: a0 before its retraction (version 4).
    assert [m.content for m in led.messages("p", version=3)] == ["q0", "a0"]
    assert [m.content for m in led.messages("p", version=4)] == ["q0"]
    fork = led.fork("p", version=3, new_session_id="f")  # taken before a0 was retracted: it keeps a0
    assert [m.content for m in led.messages("f")] == ["q0", "a0"] and fork.message_count == 2
    led.restore("p", version=6)  # q0, q1, a1 (a0 retracted at 4; a1 at 7, after the restore point)
    assert [m.content for m in led.messages("p")] == ["q0", "q1", "a1"]
    assert led.retract_message("p") and [m.content for m in led.messages("p")] == ["q0", "q1"]
    assert len(led.search_messages("a0", session_id="f")) == 1  # a0 is in the fork's conversation
    assert led.search_messages("a0", session_id="p") == []  # and out of its parent's
    assert [m.content for m in led.messages("f")] == ["q0", "a0"]  # the parent's retraction stays its own
    assert led.verify(projections=True).ok
