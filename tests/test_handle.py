"""``Ledger.session`` and ``SessionHandle``: one session's commands and reads without its id."""

from __future__ import annotations

import inspect
import threading

import pytest

from ledger import (
    ConcurrencyError,
    InvalidInput,
    Ledger,
    SessionClosed,
    SessionHandle,
    SessionNotFound,
)
from tests.conftest import Clock, dump, writer_lock_held

RENAMED = {"complete": "complete_session", "state": "get_session"}


def test_create_true_creates_the_session_with_its_fields(ledger: Ledger) -> None:
    handle = ledger.session("chat-1", user_id="ana", purpose="support", tags=["beta"], metadata={"team": "a"})
    state = handle.state()
    assert (state.session_id, state.user_id, state.purpose, state.tags) == ("chat-1", "ana", "support", ("beta",))
    assert handle.get_metadata() == {"team": "a"}


def test_create_true_uses_an_existing_session_as_it_is_and_writes_nothing(ledger: Ledger) -> None:
    ledger.create_session("chat-1", purpose="first")
    before = dump(ledger)
    handle = ledger.session("chat-1", purpose="ignored", tags=["ignored"])
    assert handle.state().purpose == "first" and handle.state().tags == ()
    assert dump(ledger) == before


def test_create_true_without_an_id_generates_one(ledger: Ledger) -> None:
    first, second = ledger.session(), ledger.session(user_id="bo")
    assert first.session_id != second.session_id
    assert second.state().user_id == "bo"


def test_create_false_raises_for_a_missing_session_and_writes_nothing(ledger: Ledger) -> None:
    before = dump(ledger)
    with pytest.raises(SessionNotFound) as caught:
        ledger.session("nope", create=False)
    assert caught.value.session_id == "nope"
    assert dump(ledger) == before
    ledger.create_session("there")
    assert ledger.session("there", create=False).session_id == "there"


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("x",), {"create": False, "purpose": "p"}, "purpose"),
        ((None,), {"create": False}, "session_id"),
        (("bad id!",), {}, "session_id"),
        ((42,), {}, "session_id"),
        (("x",), {"create": "yes"}, "create"),
        (("x",), {"tags": 5}, "tags"),
    ],
)
def test_bad_arguments_raise_invalid_input_naming_the_field(
    ledger: Ledger, args: tuple[object, ...], kwargs: dict[str, object], field: str
) -> None:
    before = dump(ledger)
    with pytest.raises(InvalidInput) as caught:
        ledger.session(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert dump(ledger) == before


def test_every_command_and_read_goes_to_the_bound_session(ledger: Ledger, clock: Clock) -> None:
    ledger.create_session("other")
    h = ledger.session("s")
    assert h.add_message("user", "hello", model="m", tokens={"input": 3, "output": 1}) == 2
    assert h.link_invocation("inv-1", "search", duration_ms=12.5, cost=0.01, status="ok") == 3
    h.set_metadata("a", 1, modified_by="me")
    h.update_metadata({"b": 2, "c": 3})
    h.remove_metadata("c")
    h.set_data("k", {"v": [1, 2]})
    h.set_data("gone", 1)
    h.delete_data("gone")
    h.add_tags(["x", "y"])
    h.remove_tags(["y"])
    h.add_message("assistant", "oops")
    h.retract_message()
    state = h.state()
    assert state.metadata == {"a": 1, "b": 2} and state.data == {"k": {"v": [1, 2]}} and state.tags == ("x",)
    assert [m.content for m in h.messages()] == ["hello"]
    assert h.get_metadata("a") == 1 and h.get_data("k") == {"v": [1, 2]} and h.get_data("missing") is None
    stats = h.statistics()
    assert (stats.message_count, stats.invocation_count, stats.tokens_in, stats.tools_used) == (1, 1, 3, ("search",))
    assert [e.version for e in h.history()] == list(range(1, state.version + 1))
    assert [e.version for e in h.history(after=state.position - 1)] == [state.version]
    assert h.checkpoint() == state.version
    assert ledger.get_session("other").version == 1  # nothing leaked to another session


def test_as_of_reads_forward_version_position_and_at(ledger: Ledger) -> None:
    h = ledger.session("s")
    h.set_data("k", 1)
    middle = h.state()
    h.set_data("k", 2)
    assert h.get_data("k", version=middle.version) == 1
    assert h.get_data("k", position=middle.position) == 1
    assert h.state(at=middle.updated_at).data == {"k": 1}
    assert h.statistics(version=1).message_count == 0
    assert h.messages(version=1) == [] and h.get_metadata(version=1) == {}


def test_restore_clear_data_clear_conversation_and_complete(ledger: Ledger) -> None:
    h = ledger.session("s")
    h.add_message("user", "one")
    h.set_data("k", 1)
    kept = h.state().version
    h.add_message("user", "two")
    h.restore(version=kept)
    assert [m.content for m in h.messages()] == ["one"]
    h.clear_data()
    h.clear_conversation()
    assert h.get_data() == {} and h.messages() == []
    h.complete("failed", reason="done")
    assert h.state().status == "failed"
    with pytest.raises(SessionClosed):
        h.add_message("user", "late")


def test_fork_returns_a_handle_on_the_new_session(ledger: Ledger) -> None:
    h = ledger.session("parent")
    h.add_message("user", "one")
    h.add_message("user", "two")
    child = h.fork(version=2, new_session_id="child")
    assert isinstance(child, SessionHandle) and child.session_id == "child"
    assert child.state().parent_id == "parent"
    assert [m.content for m in child.messages()] == ["one"]
    assert h.fork().state().parent_id == "parent"  # a generated id


def test_keyword_options_are_forwarded(ledger: Ledger) -> None:
    h = ledger.session("s")
    with pytest.raises(ConcurrencyError) as caught:
        h.set_data("k", 1, expected_version=7)
    assert (caught.value.expected, caught.value.actual) == (7, 1)
    first = h.set_data("k", 1, event_id="evt-1")
    assert h.set_data("k", 1, event_id="evt-1") == first  # an idempotent retry
    assert len(list(h.history())) == 2


def test_a_handle_on_an_existing_session_takes_no_write_lock(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
    with writer_lock_held(ledger_path):  # another writer holds the ledger
        with Ledger(ledger_path, busy_timeout=0.1) as led:
            assert led.session("s").state().version == 1


def test_threads_opening_the_same_new_session_get_one_session(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        barrier = threading.Barrier(8)
        handles: list[SessionHandle] = []
        errors: list[BaseException] = []

        def open_it() -> None:
            barrier.wait()
            try:
                handles.append(led.session("shared", purpose="race"))
            except BaseException as exc:  # pragma: no cover - the assertion below shows it
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(handles) == 8
        assert [e.type for e in led.history("shared")] == ["created"]


def test_the_handle_mirrors_the_ledger_signatures() -> None:
    """Every handle method takes the ledger method's parameters minus the session id, so options never drift."""
    methods = [name for name, member in vars(SessionHandle).items() if not name.startswith("_") and callable(member)]
    assert len(methods) == 22
    for name in methods:
        ours = list(inspect.signature(getattr(SessionHandle, name)).parameters.values())[1:]
        theirs = [
            p for p in list(inspect.signature(getattr(Ledger, RENAMED.get(name, name))).parameters.values())[1:]
            if p.name != "session_id"
        ]
        assert [(p.name, p.kind, p.default) for p in ours] == [(p.name, p.kind, p.default) for p in theirs], name
