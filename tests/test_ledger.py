"""The Ledger facade: commands, reads, batches, idempotency and optimistic concurrency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from ledger import (
    ConcurrencyError,
    InvalidInput,
    Ledger,
    Message,
    Projector,
    RecordedEvent,
    Session,
    SessionClosed,
    SessionExists,
    SessionNotFound,
    StorageError,
)
from projections.base import dialect_of
from tests.conftest import Clock, dump, raw_sql


def test_create_session_returns_the_new_session_at_version_1(ledger: Ledger, clock: Clock) -> None:
    s = ledger.create_session("s1", user_id="alice", purpose="debug", tags=["a", "b"], metadata={"role": "planner"})
    assert isinstance(s, Session)
    assert (s.session_id, s.version, s.status, s.user_id, s.purpose) == ("s1", 1, "active", "alice", "debug")
    assert s.tags == ("a", "b")
    assert s.metadata == {"role": "planner"}
    assert s.created_at == s.updated_at == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert s.created_at.tzinfo is not None


def test_generated_session_ids_are_unique_and_sortable(ledger: Ledger) -> None:
    ids = [ledger.create_session().session_id for _ in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)


def test_creating_an_existing_session_raises_and_writes_nothing(ledger: Ledger) -> None:
    ledger.create_session("s1")
    before = dump(ledger)
    with pytest.raises(SessionExists) as err:
        ledger.create_session("s1")
    assert err.value.session_id == "s1"
    assert dump(ledger) == before


def test_each_command_returns_the_next_version(ledger: Ledger) -> None:
    ledger.create_session("s")
    assert ledger.add_message("s", "user", "hi") == 2
    assert ledger.link_invocation("s", "inv1", "git", duration_ms=5) == 3
    assert ledger.set_metadata("s", "k", "v") == 4
    assert ledger.update_metadata("s", {"a": 1, "b": 2}) == 5
    assert ledger.remove_metadata("s", "a") == 6
    assert ledger.set_data("s", "x", {"y": [1, 2]}) == 7
    assert ledger.delete_data("s", "x") == 8
    assert ledger.set_data("s", "z", 1) == 9
    assert ledger.clear_data("s") == 10
    assert ledger.add_tags("s", ["t"]) == 11
    assert ledger.remove_tags("s", ["t"]) == 12
    assert ledger.complete_session("s", "failed", reason="boom") == 13
    s = ledger.get_session("s")
    assert (s.version, s.status, s.completion_reason) == (13, "failed", "boom")
    assert s.completed_at == s.updated_at
    assert ledger.last_position == 13


def test_statistics_follow_messages_and_invocations(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "q", tokens={"input": 10})
    ledger.add_message("s", "assistant", "a", model="m", tokens={"input": 100, "output": 20})
    ledger.add_message("s", "tool", "out", tool_name="git", invocation_id="i1")
    ledger.link_invocation("s", "i1", "git", duration_ms=150.5, tokens={"input": 5, "output": 6}, cost=0.25)
    ledger.link_invocation("s", "i2", "search", duration_ms=49.5, cost=0.5)
    ledger.link_invocation("s", "i3", "git")
    s = ledger.get_session("s")
    assert s.message_count == 3
    assert s.messages_by_role == {"user": 1, "assistant": 1, "tool": 1}
    assert s.invocation_count == 3
    assert s.total_duration_ms == 200.0
    assert s.tools_used == ("git", "search")
    assert (s.tokens_in, s.tokens_out) == (115, 26)
    assert s.estimated_cost == 0.75


def test_messages_are_read_in_order_with_paging(ledger: Ledger, clock: Clock) -> None:
    ledger.create_session("s")
    for i in range(5):
        ledger.add_message("s", "user" if i % 2 == 0 else "assistant", f"m{i}")
    ledger.add_message("s", "tool", "t", tool_name="git", invocation_id="i", model="x", tokens={"output": 3})
    msgs = ledger.messages("s")
    assert [m.content for m in msgs] == ["m0", "m1", "m2", "m3", "m4", "t"]
    assert all(isinstance(m, Message) for m in msgs)
    assert [m.version for m in msgs] == [2, 3, 4, 5, 6, 7]
    last = msgs[-1]
    assert (last.tool_name, last.invocation_id, last.model, last.tokens) == ("git", "i", "x", {"output": 3})
    assert last.recorded_at.tzinfo is not None
    assert [m.content for m in ledger.messages("s", limit=2, offset=1)] == ["m1", "m2"]
    assert ledger.messages("s", offset=10) == []


def test_updated_at_is_the_time_of_the_latest_event_of_any_type(ledger: Ledger, clock: Clock) -> None:
    ledger.create_session("s")
    ledger.complete_session("s")
    clock.now += timedelta(hours=1)
    ledger.set_metadata("s", "note", "annotated later")
    s = ledger.get_session("s")
    assert s.updated_at == datetime(2026, 1, 1, 13, 0, 0, 2000, tzinfo=timezone.utc)
    assert s.completed_at is not None and s.completed_at < s.updated_at


def test_metadata_reads_return_all_keys_one_key_or_none(ledger: Ledger) -> None:
    ledger.create_session("s")
    assert ledger.get_metadata("s") == {}
    ledger.set_metadata("s", "role", "coder")
    ledger.set_metadata("s", "role", "reviewer")  # overwrite
    assert ledger.get_metadata("s", "role") == "reviewer"
    assert ledger.get_metadata("s", "missing") is None
    assert ledger.get_metadata("s") == {"role": "reviewer"}


def test_returned_values_are_copies_that_cannot_corrupt_the_ledger(ledger: Ledger) -> None:
    ledger.create_session("s", metadata={"l": [1]})
    ledger.set_data("s", "d", {"k": [1]})
    ledger.get_metadata("s", "l").append(2)
    ledger.get_data("s")["d"]["k"].append(2)
    ledger.get_session("s").metadata["new"] = 1
    assert ledger.get_metadata("s") == {"l": [1]}
    assert ledger.get_data("s") == {"d": {"k": [1]}}


def test_data_set_delete_clear(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.set_data("s", "a", 1)
    ledger.set_data("s", "b", [1, "two", None, {"three": 3.5}])
    assert ledger.get_data("s") == {"a": 1, "b": [1, "two", None, {"three": 3.5}]}
    assert ledger.get_data("s", "b") == [1, "two", None, {"three": 3.5}]
    assert ledger.get_data("s", "nope") is None
    ledger.delete_data("s", "a")
    assert ledger.get_data("s") == {"b": [1, "two", None, {"three": 3.5}]}
    ledger.clear_data("s")
    assert ledger.get_data("s") == {}


def test_removing_what_is_absent_writes_nothing(ledger: Ledger) -> None:
    ledger.create_session("s", tags=["a"])
    before = dump(ledger)
    assert ledger.remove_metadata("s", "missing") == 1
    assert ledger.delete_data("s", "missing") == 1
    assert ledger.clear_data("s") == 1
    assert ledger.remove_tags("s", ["zzz"]) == 1
    assert ledger.add_tags("s", ["a"]) == 1
    assert ledger.update_metadata("s", {}) == 1
    assert dump(ledger) == before


def test_tags_keep_order_and_drop_repeats(ledger: Ledger) -> None:
    ledger.create_session("s", tags=["b", "a", "b"])
    ledger.add_tags("s", ["c", "a", "d"])
    ledger.remove_tags("s", ["a"])
    assert ledger.get_session("s").tags == ("b", "c", "d")


def test_a_closed_session_refuses_conversation_invocations_and_data(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.set_data("s", "k", 1)
    ledger.complete_session("s")
    before = dump(ledger)
    for call in (
        lambda: ledger.add_message("s", "user", "late"),
        lambda: ledger.link_invocation("s", "i", "git"),
        lambda: ledger.set_data("s", "k", 2),
        lambda: ledger.delete_data("s", "k"),
        lambda: ledger.clear_data("s"),
        lambda: ledger.complete_session("s"),
    ):
        with pytest.raises(SessionClosed) as err:
            call()
        assert err.value.session_id == "s"
        assert "completed" in str(err.value)
    assert dump(ledger) == before


def test_a_closed_session_still_takes_metadata_and_tags(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.complete_session("s", "abandoned")
    ledger.set_metadata("s", "reviewed", True, modified_by="auditor")
    ledger.add_tags("s", ["archived"])
    s = ledger.get_session("s")
    assert (s.status, s.metadata, s.tags) == ("abandoned", {"reviewed": True}, ("archived",))


@pytest.mark.parametrize(
    "call",
    [
        lambda led: led.get_session("nope"),
        lambda led: led.get_metadata("nope"),
        lambda led: led.get_data("nope"),
        lambda led: led.messages("nope"),
        lambda led: led.history("nope"),
        lambda led: led.add_message("nope", "user", "x"),
        lambda led: led.set_metadata("nope", "k", 1),
        lambda led: led.remove_tags("nope", ["x"]),
        lambda led: led.complete_session("nope"),
    ],
)
def test_a_missing_session_raises_session_not_found(ledger: Ledger, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SessionNotFound) as err:
        call(ledger)
    assert err.value.session_id == "nope"
    assert "'nope'" in str(err.value)
    assert ledger.last_position == 0


def test_expected_version_mismatch_raises_and_writes_nothing(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "a", expected_version=1)
    before = dump(ledger)
    with pytest.raises(ConcurrencyError) as err:
        ledger.add_message("s", "user", "b", expected_version=1)
    assert (err.value.expected, err.value.actual, err.value.session_id) == (1, 2, "s")
    assert dump(ledger) == before
    assert ledger.add_message("s", "user", "b", expected_version=2) == 3


def test_an_event_id_retried_is_stored_once_and_returns_the_first_version(ledger: Ledger) -> None:
    ledger.create_session("s", event_id="create-s")
    assert ledger.add_message("s", "user", "once", event_id="msg-1") == 2
    ledger.add_message("s", "user", "other")
    before = dump(ledger)
    assert ledger.add_message("s", "user", "once", event_id="msg-1") == 2
    # a retry that carries the caller's stale expected_version is still recognised
    assert ledger.add_message("s", "user", "once", event_id="msg-1", expected_version=1) == 2
    again = ledger.create_session("s", event_id="create-s")
    assert again.version == 1
    assert dump(ledger) == before


def test_an_event_id_reused_for_another_command_is_refused(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.create_session("t")
    ledger.add_message("s", "user", "x", event_id="e1")
    with pytest.raises(InvalidInput, match="e1"):
        ledger.add_message("t", "user", "x", event_id="e1")
    with pytest.raises(InvalidInput, match="e1"):
        ledger.set_metadata("s", "k", 1, event_id="e1")


def test_batch_appends_all_commands_in_one_transaction(ledger: Ledger) -> None:
    ledger.create_session("s")
    with ledger.batch():
        v1 = ledger.add_message("s", "user", "q")
        v2 = ledger.link_invocation("s", "i", "git")
        v3 = ledger.add_message("s", "tool", "r", tool_name="git")
    assert (v1, v2, v3) == (2, 3, 4)
    assert ledger.get_session("s").version == 4


def test_an_exception_leaving_a_batch_rolls_all_of_it_back(ledger: Ledger) -> None:
    ledger.create_session("s")
    before = dump(ledger)
    with pytest.raises(RuntimeError):
        with ledger.batch():
            ledger.add_message("s", "user", "q")
            ledger.create_session("t")
            raise RuntimeError("agent step failed")
    assert dump(ledger) == before
    assert ledger.get_session("s").version == 1
    with pytest.raises(SessionNotFound):
        ledger.get_session("t")
    assert ledger.add_message("s", "user", "after") == 2  # the cache was not left ahead of the file


def test_a_rejected_command_inside_a_batch_writes_nothing_and_the_rest_commit(ledger: Ledger) -> None:
    ledger.create_session("s")
    with ledger.batch():
        ledger.add_message("s", "user", "kept")
        with pytest.raises(InvalidInput):
            ledger.add_message("s", "robot", "refused")
        with pytest.raises(SessionNotFound):
            ledger.add_message("missing", "user", "refused")
        ledger.add_message("s", "user", "kept too")
    assert [m.content for m in ledger.messages("s")] == ["kept", "kept too"]
    assert ledger.verify().ok


def test_reads_inside_a_batch_see_its_writes(ledger: Ledger) -> None:
    with ledger.batch():
        ledger.create_session("s")
        ledger.set_metadata("s", "k", 1)
        assert ledger.get_metadata("s", "k") == 1
        assert ledger.get_session("s").version == 2


def test_history_lists_events_in_order_with_positions(ledger: Ledger) -> None:
    ledger.create_session("a")
    ledger.create_session("b")
    ledger.add_message("a", "user", "x")
    events = list(ledger.history())
    assert [(e.position, e.session_id, e.version, e.type) for e in events] == [
        (1, "a", 1, "created"),
        (2, "b", 1, "created"),
        (3, "a", 2, "message_added"),
    ]
    assert [e.position for e in ledger.history("a")] == [1, 3]
    assert [e.position for e in ledger.history(after=2)] == [3]
    assert all(len(e.hash) == 64 and e.event_id for e in events)


def test_history_walks_past_one_chunk(ledger: Ledger) -> None:
    ledger.create_session("s")
    with ledger.batch():
        for i in range(2100):
            ledger.add_message("s", "user", str(i))
    positions = [e.position for e in ledger.history()]
    assert positions == list(range(1, 2102))


def test_recorded_time_never_goes_backwards(ledger_path: str) -> None:
    times = iter([datetime(2026, 1, 1, 12, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc)])
    with Ledger(ledger_path, clock=lambda: next(times)) as led:
        led.create_session("s")
        led.add_message("s", "user", "clock went back")
        first, second = led.history()
        assert second.recorded_at == first.recorded_at
        assert led.verify().ok


def test_a_clock_in_another_zone_is_stored_in_utc(ledger_path: str) -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    with Ledger(ledger_path, clock=lambda: datetime(2026, 1, 1, 17, 30, tzinfo=zone)) as led:
        assert led.create_session("s").created_at == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_a_naive_clock_is_refused_with_a_clear_error(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=lambda: datetime(2026, 1, 1)) as led:
        with pytest.raises(InvalidInput, match="timezone-aware"):
            led.create_session("s")
        assert led.last_position == 0


def test_a_closed_ledger_refuses_use(ledger_path: str) -> None:
    led = Ledger(ledger_path)
    led.close()
    led.close()
    with pytest.raises(StorageError, match="closed"):
        led.create_session("s")


def test_metadata_schema_validates_by_key_and_supplies_defaults(ledger_path: str) -> None:
    class Meta(pydantic.BaseModel):
        name: str = ""
        turn_count: int = 0
        is_starred: bool = False
        context_window: int | None = None

    with Ledger(ledger_path, metadata_schema=Meta) as led:
        s = led.create_session("s", metadata={"name": "chat", "custom": "kept"})
        assert s.metadata == {"name": "chat", "custom": "kept", "turn_count": 0, "is_starred": False, "context_window": None}
        led.set_metadata("s", "turn_count", 3)
        with pytest.raises(InvalidInput) as err:
            led.set_metadata("s", "turn_count", "many")
        assert err.value.field == "metadata.turn_count"
        assert "turn_count" in str(err.value)
        with pytest.raises(InvalidInput):
            led.create_session("t", metadata={"is_starred": [1]})
        assert led.get_metadata("s", "turn_count") == 3


def test_metadata_schema_with_required_keys_and_no_extras(ledger_path: str) -> None:
    class Strict(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        agent: str

    with Ledger(ledger_path, metadata_schema=Strict) as led:
        with pytest.raises(InvalidInput, match="required"):
            led.create_session("s")
        led.create_session("s", metadata={"agent": "planner"})
        with pytest.raises(InvalidInput, match="not in Strict"):
            led.set_metadata("s", "other", 1)
        assert led.last_position == 1


def test_restart_keeps_everything(ledger_path: str, clock: Clock) -> None:
    with Ledger(ledger_path, clock=clock) as led:
        led.create_session("s", user_id="u", tags=["t"], metadata={"k": "v"})
        led.add_message("s", "user", "hello", tokens={"input": 1})
        led.set_data("s", "d", [1, 2])
        led.link_invocation("s", "i", "git", duration_ms=3.5, cost=0.1)
        before_session = led.get_session("s")
        before_messages = led.messages("s")
        before_digest = led.digest()
    with Ledger(ledger_path, clock=clock) as led:
        assert led.get_session("s") == before_session
        assert led.messages("s") == before_messages
        assert led.digest() == before_digest
        assert led.verify(before_digest).ok
        assert led.add_message("s", "assistant", "back") == 5


def test_loading_uses_snapshots_and_matches_a_full_fold(ledger_path: str, clock: Clock) -> None:
    with Ledger(ledger_path, clock=clock, snapshot_every=10) as led:
        led.create_session("s")
        with led.batch():
            for i in range(55):
                led.set_metadata("s", f"k{i % 7}", i)
        expected = led.get_session("s")
        with raw_sql(led) as conn:
            snaps = conn.execute("SELECT version FROM snapshots WHERE session_id='s' ORDER BY version").fetchall()
        assert [v for (v,) in snaps] == [10, 20, 30, 40, 50]
    with Ledger(ledger_path, clock=clock, snapshot_every=0) as cold:  # fresh process: no cache
        assert cold.get_session("s") == expected


def test_a_corrupt_snapshot_costs_time_not_correctness(ledger_path: str, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    with Ledger(ledger_path, clock=clock, snapshot_every=5) as led:
        led.create_session("s")
        for i in range(12):
            led.add_message("s", "user", str(i))
        expected = led.get_session("s")
        with raw_sql(led, write=True) as raw:  # a second connection, in autocommit
            assert raw.execute("UPDATE snapshots SET state = ? WHERE version = 10", (b"\x00\xff",)).rowcount == 1
    with Ledger(ledger_path, clock=clock) as led:
        assert led.get_session("s") == expected
    assert "ignoring it" in caplog.text


class FullDisk(Projector):
    """Runs inline in every ``set_data`` of the key ``big`` and meets a full disk there, so the database itself
    fails part-way through the command. On SQLite, the per-connection ``max_page_count`` lets the file grow by
    two pages only while it writes 500 kB, so SQLite fails with "database or disk is full" (the limit is put back
    straight after); on PostgreSQL, which cannot be made to run out of disk per connection, a ``CHECK``
    constraint named ``disk_full`` refuses the 500 kB row, and the server fails the statement."""

    name = "full_disk"
    dialects = frozenset({"sqlite", "postgres"})
    handles = frozenset({"data_set"})
    tables = ("full_disk_filler",)

    def create(self, db: Any) -> None:
        if dialect_of(db) == "postgres":
            db.execute("CREATE TABLE full_disk_filler (filler TEXT CONSTRAINT disk_full CHECK (length(filler) < 1000))")
        else:
            db.execute("CREATE TABLE full_disk_filler (filler BLOB)")

    def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            if e.payload.key != "big":  # type: ignore[attr-defined]
                continue
            if dialect_of(conn) == "postgres":
                conn.execute("INSERT INTO full_disk_filler (filler) VALUES (repeat('x', 500000))")
                continue
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            (limit,) = conn.execute("PRAGMA max_page_count").fetchone()
            conn.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk is full
            try:
                conn.execute("INSERT INTO full_disk_filler (filler) VALUES (zeroblob(500000))")
            finally:
                conn.execute(f"PRAGMA max_page_count={limit}")


def test_a_storage_failure_part_way_through_a_batch_rolls_the_batch_back(ledger_path: str) -> None:
    from ledger import LedgerError

    with Ledger(ledger_path, projectors=[FullDisk()]) as led:
        led.create_session("s")
        before = dump(led)
        with pytest.raises(LedgerError):
            with led.batch():
                led.add_message("s", "user", "first")
                with pytest.raises(LedgerError, match="full"):
                    led.set_data("s", "big", "x" * 500_000)
                with pytest.raises(StorageError, match="aborted"):
                    led.add_message("s", "user", "third")
        assert dump(led) == before
        assert led.verify().ok
        assert led.add_message("s", "user", "works again") == 2


def test_a_create_retried_without_a_session_id_returns_the_session_it_generated(ledger: Ledger) -> None:
    first = ledger.create_session(event_id="req-1", user_id="u")
    again = ledger.create_session(event_id="req-1", user_id="u")
    assert again == first
    assert ledger.last_position == 1


def test_a_no_op_with_an_event_id_is_remembered_so_its_retry_stays_a_no_op(ledger: Ledger) -> None:
    ledger.create_session("s", tags=["a"])
    version = ledger.add_tags("s", ["a"], event_id="tag-once")
    ledger.remove_tags("s", ["a"])
    assert ledger.add_tags("s", ["a"], event_id="tag-once") == version
    assert ledger.get_session("s").tags == ()


def test_running_totals_cannot_overflow(ledger: Ledger) -> None:
    from ledger import LimitExceeded

    ledger.create_session("s")
    ledger.add_message("s", "user", "x", tokens={"input": 2**63 - 1})
    with pytest.raises(LimitExceeded) as err:
        ledger.add_message("s", "user", "x", tokens={"input": 1})
    assert err.value.field == "tokens.input"
    ledger.link_invocation("s", "i", "t", cost=1e308)
    with pytest.raises(LimitExceeded, match="infinite"):
        ledger.link_invocation("s", "i2", "t", cost=1e308)
    assert ledger.get_session("s").version == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"snapshot_every": -1}, "snapshot_every"),
        ({"cache_size": 0}, "cache_size"),
        ({"cache_size": "big"}, "cache_size"),
        ({"limits": {"max_metadata_keys": 5}}, "limits"),
        ({"clock": "now"}, "clock"),
        ({"new_id": 5}, "new_id"),
        ({"busy_timeout": 10**19}, "busy_timeout"),
        ({"durability": "fast"}, "durability"),
    ],
)
def test_bad_constructor_arguments_are_invalid_input(ledger_path: str, kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput) as err:
        Ledger(ledger_path, **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("path", [5, "with\x00nul"])
def test_a_bad_path_is_invalid_input(path: object) -> None:
    with pytest.raises(InvalidInput):
        Ledger(path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "clock",
    [lambda: "2026-01-01", lambda: datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))],
)
def test_a_clock_returning_nonsense_is_invalid_input(ledger_path: str, clock) -> None:  # type: ignore[no-untyped-def]
    with Ledger(ledger_path, clock=clock) as led:
        with pytest.raises(InvalidInput) as err:
            led.create_session("s")
        assert err.value.field == "clock"
        assert led.last_position == 0


def test_a_new_id_function_returning_bad_ids_is_refused(ledger_path: str) -> None:
    with Ledger(ledger_path, new_id=lambda: "not a valid id") as led:
        with pytest.raises(InvalidInput, match="generated"):
            led.create_session()
        with pytest.raises(InvalidInput, match="generated event_id"):
            led.create_session("named")
        assert led.create_session("named", event_id="given").version == 1


def test_huge_numbers_are_invalid_input_not_overflow(ledger: Ledger) -> None:
    ledger.create_session("s")
    for call in (
        lambda: ledger.link_invocation("s", "i", "t", duration_ms=10**400),
        lambda: ledger.link_invocation("s", "i", "t", cost=10**400),
        lambda: ledger.history(after=2**64),
        lambda: ledger.messages("s", limit=2**64),
        lambda: ledger.add_message("s", "user", "x", expected_version=2**64),
    ):
        with pytest.raises(InvalidInput):
            call()


def test_closing_inside_a_batch_is_refused_and_the_batch_stands(ledger_path: str) -> None:
    led = Ledger(ledger_path)
    led.create_session("a")
    with led.batch():
        led.add_message("a", "user", "kept")
        with pytest.raises(InvalidInput, match="inside a batch"):
            led.close()
    assert [m.content for m in led.messages("a")] == ["kept"]
    led.close()


def test_linking_the_same_invocation_again_is_a_retry_and_a_conflicting_one_is_refused(ledger: Ledger) -> None:
    ledger.create_session("s")
    version = ledger.link_invocation("s", "inv-1", "search", duration_ms=12.5, cost=0.25, tokens={"input": 3})
    assert ledger.link_invocation("s", "inv-1", "search", duration_ms=12.5, cost=0.25, tokens={"input": 3}) == version
    stats = ledger.statistics("s")
    assert (stats.invocation_count, stats.estimated_cost, ledger.get_session("s").version) == (1, 0.25, version)
    before = ledger.last_position
    with pytest.raises(InvalidInput) as caught:
        ledger.link_invocation("s", "inv-1", "search", duration_ms=12.5, cost=0.50, tokens={"input": 3})
    assert caught.value.field == "invocation_id" and "inv-1" in caught.value.message
    assert ledger.last_position == before  # nothing written
    fork = ledger.fork("s", new_session_id="f")
    assert ledger.link_invocation("f", "inv-1", "search", duration_ms=12.5, cost=0.25, tokens={"input": 3}) == fork.version
