"""Time travel: as-of reads, checkpoints and retention, restore, fork, replay; laws 1 and 2 as a state machine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from ledger import InvalidInput, Ledger, SessionNotFound
from ledger.session import Session, fold
from ledger.snapshots import encode_state
from tests.conftest import Clock, raw_sql

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def _minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def led(ledger_path: str) -> Iterator[Ledger]:
    """A session 's' whose events are one minute apart: version v was recorded at T0 + (v - 1) minutes."""
    ledger = Ledger(ledger_path, clock=Clock(step_ms=60_000), snapshot_every=3)
    ledger.create_session("s", tags=["start"], metadata={"stage": "plan"})  # v1
    ledger.add_message("s", "user", "first question")  # v2
    ledger.set_data("s", "step", 1)  # v3
    ledger.add_message("s", "assistant", "first answer", tokens={"input": 10, "output": 5})  # v4
    ledger.link_invocation("s", "i1", "grep", duration_ms=12.5, cost=0.25)  # v5
    ledger.set_metadata("s", "stage", "build")  # v6
    ledger.add_message("s", "user", "second question")  # v7
    ledger.set_data("s", "step", 2)  # v8
    yield ledger
    ledger.close()


def test_as_of_reads_by_version_position_and_time_agree(led: Ledger) -> None:
    by_version = led.get_session("s", version=4)
    assert (by_version.version, by_version.message_count, by_version.data) == (4, 2, {"step": 1})
    assert led.get_session("s", position=4) == by_version
    assert led.get_session("s", at=_minutes(3)) == by_version
    assert led.get_session("s", at=_minutes(3.5)) == by_version  # between events: the last one before
    assert led.get_metadata("s", "stage", version=5) == "plan"
    assert led.get_metadata("s", "stage", at=_minutes(5)) == "build"
    assert led.get_data("s", version=2) == {}
    assert led.get_data("s", "step", position=8) == 2
    assert [m.content for m in led.messages("s", version=4)] == ["first question", "first answer"]
    assert [m.content for m in led.messages("s", at=_minutes(6), limit=1, offset=2)] == ["second question"]
    stats = led.statistics("s", version=5)
    assert (stats.message_count, stats.invocation_count, stats.estimated_cost) == (2, 1, 0.25)
    assert led.statistics("s", version=4).tools == ()


def test_as_of_a_position_of_another_session_means_the_state_then(led: Ledger) -> None:
    led.create_session("other")  # position 9
    led.add_message("s", "user", "later")  # position 10, version 9
    assert led.get_session("s", position=9).version == 8


def test_at_most_one_target_may_be_given(led: Ledger) -> None:
    with pytest.raises(InvalidInput, match="at most one") as err:
        led.get_session("s", version=2, at=_minutes(1))
    assert err.value.field == "at"
    with pytest.raises(InvalidInput):
        led.messages("s", version=1, position=1)


@pytest.mark.parametrize("version", [0, 9, -1, "2", True])
def test_a_version_outside_the_session_is_invalid_input(led: Ledger, version: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        led.get_session("s", version=version)
    assert err.value.limit == 8


def test_a_time_or_position_before_the_session_existed_is_session_not_found(led: Ledger) -> None:
    with pytest.raises(SessionNotFound, match="did not exist yet"):
        led.get_session("s", at=T0 - timedelta(seconds=1))
    with pytest.raises(SessionNotFound):
        led.get_session("s", position=0)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        led.get_session("s", at=datetime(2026, 1, 1))


def test_restore_rewinds_state_metadata_data_and_conversation(led: Ledger) -> None:
    before = led.get_session("s", version=4)
    version = led.restore("s", version=4)
    assert version == 9
    now = led.get_session("s")
    assert (now.version, now.message_count, now.invocation_count, now.data, now.metadata) == (
        9, before.message_count, 0, {"step": 1}, {"stage": "plan"}
    )
    assert [m.content for m in led.messages("s")] == ["first question", "first answer"]
    led.add_message("s", "user", "a new path")
    assert [m.content for m in led.messages("s")] == ["first question", "first answer", "a new path"]
    # the past is still there
    assert led.get_session("s", version=8).data == {"step": 2}
    assert [m.content for m in led.messages("s", version=8)][-1] == "second question"
    assert [e.type for e in led.history("s")][-2:] == ["restored", "message_added"]
    assert led.verify().ok


def test_restore_by_time_and_of_a_closed_session(led: Ledger) -> None:
    led.complete_session("s", "failed")
    led.restore("s", at=_minutes(5.5))  # version 6 was recorded at minute 5
    s = led.get_session("s")
    assert (s.status, s.metadata["stage"], s.completed_at) == ("active", "build", None)
    led.add_message("s", "user", "retrying")  # open again


def test_restore_needs_a_target_and_checks_it(led: Ledger) -> None:
    with pytest.raises(InvalidInput):
        led.restore("s")
    with pytest.raises(InvalidInput):
        led.restore("s", version=99)
    with pytest.raises(SessionNotFound):
        led.restore("nope", version=1)
    assert led.last_position == 8


def test_the_read_tables_follow_a_restore(led: Ledger) -> None:
    led.restore("s", version=3)
    summary = led.list_sessions().items[0]
    assert (summary.version, summary.message_count, summary.invocation_count, summary.estimated_cost) == (9, 1, 0, 0.0)
    assert summary.metadata == {"stage": "plan"} and summary.tags == ("start",)
    stats = led.statistics("s")
    assert (stats.message_count, stats.messages_by_role, stats.invocation_count, stats.tools) == (1, {"user": 1}, 0, ())
    assert led.list_sessions(metadata={"stage": "build"}).items == []


def test_fork_starts_a_new_session_from_the_source_at_a_target(led: Ledger) -> None:
    child = led.fork("s", version=5, new_session_id="alt")
    assert (child.session_id, child.version, child.parent_id, child.parent_version) == ("alt", 1, "s", 5)
    assert (child.message_count, child.invocation_count, child.data) == (2, 1, {"step": 1})
    led.add_message("alt", "assistant", "another answer")
    assert [m.content for m in led.messages("alt")] == ["first question", "first answer", "another answer"]
    assert led.get_session("s").version == 8  # the source is untouched
    assert [s.session_id for s in led.list_sessions(parent_id="s")] == ["alt"]
    history = list(led.history("alt"))
    assert history[0].type == "forked" and history[0].payload.parent_id == "s"  # type: ignore[attr-defined]
    stats = led.statistics("alt")
    assert [(t.tool_name, t.count) for t in stats.tools] == [("grep", 1)]


def test_a_fork_of_a_fork_and_of_a_closed_session(led: Ledger) -> None:
    led.fork("s", new_session_id="a")
    led.add_message("a", "user", "in a")
    led.complete_session("a")
    b = led.fork("a", new_session_id="b")
    assert b.status == "active"
    led.add_message("b", "user", "in b")
    assert [m.content for m in led.messages("b")][-3:] == ["second question", "in a", "in b"]
    generated = led.fork("b", version=1)
    assert generated.parent_id == "b" and len(generated.session_id) == 26


def test_a_fork_retried_with_its_event_id_is_made_once(led: Ledger) -> None:
    first = led.fork("s", event_id="fork-1")
    again = led.fork("s", event_id="fork-1")
    assert again == first
    assert len(led.list_sessions(parent_id="s").items) == 1


def test_checkpoint_and_retention(ledger_path: str) -> None:
    clock = Clock(step_ms=3_600_000)  # one event an hour
    with Ledger(ledger_path, clock=clock, snapshot_every=2) as led:
        led.create_session("s")
        for i in range(59):
            led.set_data("s", "i", i)
        assert led.checkpoint("s") == 60
        with raw_sql(led) as conn:
            versions = [v for (v,) in conn.execute("SELECT version FROM snapshots ORDER BY version")]
        assert versions == list(range(2, 61, 2))
        dropped = led.drop_snapshots(keep=3, bucket=timedelta(days=1))
        with raw_sql(led) as conn:
            kept = [v for (v,) in conn.execute("SELECT version FROM snapshots ORDER BY version")]
        assert dropped == len(versions) - len(kept)
        assert kept[-3:] == [56, 58, 60]
        # one per day: the clock starts at noon, so days end after versions 12 and 36
        assert kept == [12, 36, 56, 58, 60]
        assert led.drop_snapshots(keep=0, bucket=None) == 5
        assert led.get_session("s").data == {"i": 58}
        assert led.get_session("s", version=31).data == {"i": 29}
        with pytest.raises(InvalidInput):
            led.drop_snapshots(keep=-1)


def test_snapshot_size_does_not_grow_with_the_conversation(ledger_path: str) -> None:
    with Ledger(ledger_path, snapshot_every=0) as led:
        led.create_session("s")
        sizes = []
        for i in range(1, 2001):
            led.add_message("s", "user" if i % 2 else "assistant", "x" * 200, tokens={"input": i})
            if i in (10, 2000):
                sizes.append(len(encode_state(led.get_session("s"))))
        assert sizes[1] - sizes[0] < 16  # only counters grow, by a few digits


def test_replay_writes_the_ledger_as_it_stood_at_a_cut(led: Ledger, tmp_path: Path) -> None:
    led.restore("s", version=4)
    led.fork("s", new_session_id="alt")
    hashes = {e.position: e.hash for e in led.history()}
    seen: list[tuple[int, int]] = []
    digest = led.replay(into=tmp_path / "cut.db", until_position=6, progress=lambda d, t: seen.append((d, t)))
    assert (digest.position, digest.hash) == (6, hashes[6])
    assert seen[-1] == (6, 6)
    with Ledger(tmp_path / "cut.db") as past:
        assert past.verify().ok
        assert past.get_session("s") == led.get_session("s", version=6)
        assert [s.session_id for s in past.list_sessions().items] == ["s"]
        assert past.list_sessions().items[0].metadata == {"stage": "build"}
        assert past.statistics("s").invocation_count == 1
        assert [h.position for h in past.search_messages("question")] == [2]
    by_time = led.replay(into=tmp_path / "t.db", until=_minutes(2.5))
    assert by_time.position == 3
    full = led.replay(into=tmp_path / "all.db")
    assert full == led.digest()


def test_replay_refuses_an_existing_file_and_bad_cuts(led: Ledger, tmp_path: Path) -> None:
    (tmp_path / "x.db").write_bytes(b"something")
    with pytest.raises(InvalidInput, match="already exists"):
        led.replay(into=tmp_path / "x.db")
    with pytest.raises(InvalidInput):
        led.replay(into=tmp_path / "y.db", until_position=2, until=T0)
    with pytest.raises(InvalidInput):
        led.replay(into=tmp_path / "y.db", until_position=-1)
    with pytest.raises(InvalidInput):
        led.replay(into=":memory:")


def test_replay_of_a_damaged_log_fails_clearly(led: Ledger, tmp_path: Path) -> None:
    from ledger import IntegrityError

    with raw_sql(led, write=True) as raw:
        raw.execute("UPDATE events SET data = '{}' WHERE position = 3")
    with pytest.raises(IntegrityError, match="position 3"):
        led.replay(into=tmp_path / "bad.db")


class TimeTravelMachine(RuleBasedStateMachine):
    """Random commands, restores, forks, checkpoints, reopenings and snapshot intervals.

    Law 1: the state from snapshot + tail equals the fold of all events.
    Law 2: the state as of every earlier version equals what was observed at that step.
    """

    sessions = Bundle("sessions")

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.clock = Clock()
        self.led: Ledger | None = None
        self.observed: dict[str, dict[int, tuple[Session, list[str]]]] = {}
        self.counter = 0

    @initialize(every=st.sampled_from([0, 1, 2, 3, 7]))
    def open(self, every: int) -> None:
        self.every = every
        self.led = Ledger(self.path, clock=self.clock, snapshot_every=every)

    def _observe(self, sid: str) -> None:
        assert self.led is not None
        state = self.led.get_session(sid)
        self.observed.setdefault(sid, {})[state.version] = (state, [m.content for m in self.led.messages(sid)])

    @rule(target=sessions)
    def create(self) -> str:
        assert self.led is not None
        self.counter += 1
        sid = f"s{self.counter}"
        self.led.create_session(sid, metadata={"n": self.counter})
        self._observe(sid)
        return sid

    @rule(sid=sessions, kind=st.sampled_from(["message", "meta", "data", "undata", "tag", "invoke", "complete"]), n=st.integers(0, 9))
    def command(self, sid: str, kind: str, n: int) -> None:
        assert self.led is not None
        try:
            if kind == "message":
                self.led.add_message(sid, "user", f"{sid}-m{n}", tokens={"input": n})
            elif kind == "meta":
                self.led.set_metadata(sid, f"k{n % 3}", n)
            elif kind == "data":
                self.led.set_data(sid, f"d{n % 2}", [n])
            elif kind == "undata":
                self.led.delete_data(sid, f"d{n % 2}")
            elif kind == "tag":
                self.led.add_tags(sid, [f"t{n % 3}"])
            elif kind == "invoke":
                self.led.link_invocation(sid, f"i{n}", f"tool{n % 2}", duration_ms=n * 1.5, cost=n / 10)
            else:
                self.led.complete_session(sid)
        except Exception as exc:  # only the closed-session refusal is expected
            assert type(exc).__name__ == "SessionClosed", exc
        self._observe(sid)

    @rule(sid=sessions, pick=st.floats(0, 1))
    def restore(self, sid: str, pick: float) -> None:
        assert self.led is not None
        current = self.led.get_session(sid).version
        target = 1 + int(pick * (current - 1))
        expected_state, expected_messages = self.observed[sid][target]
        self.led.restore(sid, version=target)
        self._observe(sid)
        now, messages = self.observed[sid][current + 1]
        assert (now.metadata, now.data, now.tags, now.message_count) == (
            expected_state.metadata, expected_state.data, expected_state.tags, expected_state.message_count
        )
        assert messages == expected_messages

    @rule(target=sessions, sid=sessions, pick=st.floats(0, 1))
    def fork(self, sid: str, pick: float) -> str:
        assert self.led is not None
        current = self.led.get_session(sid).version
        target = 1 + int(pick * (current - 1))
        self.counter += 1
        child = f"s{self.counter}"
        self.led.fork(sid, version=target, new_session_id=child)
        self._observe(child)
        assert self.observed[child][1][1] == self.observed[sid][target][1]
        return child

    @rule(sid=sessions)
    def checkpoint(self, sid: str) -> None:
        assert self.led is not None
        self.led.checkpoint(sid)

    @rule(every=st.sampled_from([0, 1, 4]))
    def reopen(self, every: int) -> None:
        assert self.led is not None
        self.led.close()
        self.every = every
        self.led = Ledger(self.path, clock=self.clock, snapshot_every=every)

    @invariant()
    def laws_hold(self) -> None:
        if self.led is None:
            return
        led = self.led
        for sid, seen in self.observed.items():
            events = list(led.history(sid))
            # law 1: the cold load is snapshot + tail (a second ledger on the file: nothing of sid cached)
            with Ledger(self.path, clock=self.clock, snapshot_every=self.every) as cold:  # led.path hides a password
                assert cold.get_session(sid) == fold(events)
            for version, (state, messages) in seen.items():  # law 2
                assert led.get_session(sid, version=version) == state
                assert [m.content for m in led.messages(sid, version=version)] == messages
        assert led.verify().ok  # every snapshot equals the fold of its events too

    def teardown(self) -> None:
        if self.led is not None:
            self.led.close()


def test_laws_1_and_2_time_travel(new_ledger_path: Callable[[], str]) -> None:
    """The state machine on each backend, a fresh ledger per example."""
    run_state_machine_as_test(
        lambda: TimeTravelMachine(new_ledger_path()),
        settings=settings(
            max_examples=25, stateful_step_count=25, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def test_replay_of_a_ledger_without_snapshots(ledger_path: str, tmp_path: Path) -> None:
    with Ledger(ledger_path, snapshot_every=0) as led:
        led.create_session("s")
        led.add_message("s", "user", "hi")
        assert led.replay(into=tmp_path / "copy.db") == led.digest()
    with Ledger(tmp_path / "copy.db") as copy:
        assert [m.content for m in copy.messages("s")] == ["hi"]


def test_hundreds_of_restores_keep_the_lineage_short_and_reads_working(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
        led.add_message("s", "user", "hello")
        for i in range(600):
            led.restore("s", version=led.get_session("s").version)
            led.add_message("s", "assistant", f"turn {i}")
        s = led.get_session("s")
        assert len(s.lineage) <= 1
        assert len(led.messages("s")) == 601
        assert [m.content for m in led.messages("s", limit=2, offset=599)] == ["turn 598", "turn 599"]
        assert led.statistics("s").message_count == 601
        last = list(led.history("s", after=led.last_position - 2))[0]
        assert len(msgspec.json.encode(last.payload)) < 1000  # restore events do not grow with the count


def test_restores_to_earlier_versions_page_across_segments(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
        for i in range(3):
            led.add_message("s", "user", f"a{i}")
        led.restore("s", version=3)  # keeps a0, a1
        for i in range(3):
            led.add_message("s", "user", f"b{i}")
        led.restore("s", version=6)  # keeps a0, a1, b0
        led.add_message("s", "user", "c0")
        expected = ["a0", "a1", "b0", "c0"]
        assert [m.content for m in led.messages("s")] == expected
        for offset in range(5):
            assert [m.content for m in led.messages("s", limit=2, offset=offset)] == expected[offset : offset + 2]


def test_text_filters_and_search_follow_restores_and_forks(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
        led.add_message("s", "user", "alpha")
        led.add_message("s", "user", "bravo")
        led.restore("s", version=2)  # bravo undone
        led.fork("s", new_session_id="f")
        assert [x.session_id for x in led.list_sessions(text="bravo")] == []
        assert sorted(x.session_id for x in led.list_sessions(text="alpha")) == ["f", "s"]
        assert [h.snippet for h in led.search_messages("alpha", session_id="f")] == ["[alpha]"]
        assert led.search_messages("bravo", session_id="s") == []


def test_whole_file_work_is_refused_inside_a_batch(ledger_path: str, tmp_path: Path) -> None:
    from ledger import Projector

    class Counts(Projector):
        name = "counts"
        dialects = frozenset({"sqlite", "postgres"})

        def create(self, db: Any) -> None:
            db.execute("CREATE TABLE counts (n INTEGER)")

        def apply(self, conn: Any, events: Any) -> None:
            pass

    with Ledger(ledger_path) as led:
        led.create_session("s")
        with led.batch():
            led.add_message("s", "user", "x")
            for call in (
                lambda: led.register(Counts()),
                lambda: led.rebuild(),
                lambda: led.replay(into=tmp_path / "r.db"),
                lambda: led.backup(tmp_path / "k.db"),
                lambda: led.import_events(tmp_path / "nothing.jsonl"),
                lambda: led.batch().__enter__(),
            ):
                with pytest.raises(InvalidInput, match="inside a batch"):
                    call()
        assert led.get_session("s").version == 2
        assert not (tmp_path / "r.db").exists()


def test_a_failed_replay_leaves_nothing_and_can_be_retried(ledger_path: str, tmp_path: Path) -> None:
    from ledger import IntegrityError

    with Ledger(ledger_path) as led:
        led.create_session("s")
        led.add_message("s", "user", "x")
        with pytest.raises(ZeroDivisionError):
            led.replay(into=tmp_path / "r.db", progress=lambda done, total: 1 / 0)
        assert list(tmp_path.glob("r.db*")) == []
        assert led.replay(into=tmp_path / "r.db") == led.digest()
        with raw_sql(led, write=True) as raw:
            if raw.postgres:  # PostgreSQL text is always valid UTF-8: damage it with other text
                raw.execute("UPDATE events SET data = '{}' WHERE position = 2")
            else:  # bytes that are not UTF-8
                raw.execute("UPDATE events SET data = CAST(X'80' AS TEXT) WHERE position = 2")
        with pytest.raises(IntegrityError, match="position 2"):
            led.replay(into=tmp_path / "bad.db")
        assert list(tmp_path.glob("bad.db*")) == []


@pytest.mark.parametrize("into", ["", ":memory:", "file:x?mode=memory", 5])
def test_replay_needs_a_real_file_name(led: Ledger, into: Any) -> None:
    with pytest.raises(InvalidInput):
        led.replay(into=into)


def test_a_progress_that_is_not_callable_is_invalid_input(led: Ledger, tmp_path: Path) -> None:
    for call in (
        lambda: led.replay(into=tmp_path / "a.db", progress=5),
        lambda: led.rebuild(progress=5),
        lambda: led.export(tmp_path / "e.jsonl", progress="yes"),
        lambda: led.backup(tmp_path / "b.db", progress=5),
        lambda: led.import_events(tmp_path / "e.jsonl", progress=5),
    ):
        with pytest.raises(InvalidInput) as err:
            call()
        assert err.value.field == "progress"
