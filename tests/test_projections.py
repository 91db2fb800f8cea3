"""The projector framework: inline updates, catch-up, version bumps, rebuilds (law 3), custom projectors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import InvalidInput, Ledger, LedgerError, Projector, RecordedEvent
from projections.base import IN_STEP
from projections.postgres import TEXT_CONFIG
from tests.conftest import Clock, check_search_index, raw_sql

BUILT_IN = ("sessions", "session_tags", "session_metadata", "session_data", "messages", "invocations", "session_segments")


class CostPerCustomer(Projector):
    """Cost and invocation count per customer, from the ``customer`` metadata key at the time of each call.

    Written in the SQL both backends speak, so the same projector runs on SQLite and PostgreSQL."""

    name = "cost_per_customer"
    version = 1
    dialects = frozenset({"sqlite", "postgres"})
    handles = frozenset({"created", "metadata_set", "invocation_linked"})
    tables = ("customer_sessions", "customer_costs")

    def create(self, db: Any) -> None:
        db.execute("CREATE TABLE customer_sessions (session_id TEXT PRIMARY KEY, customer TEXT)")
        db.execute("CREATE TABLE customer_costs (customer TEXT PRIMARY KEY, invocations BIGINT, cost DOUBLE PRECISION)")

    def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            if e.type == "invocation_linked":
                conn.execute(
                    "INSERT INTO customer_costs (customer, invocations, cost)"
                    " SELECT customer, 1, ? FROM customer_sessions WHERE session_id = ?"
                    " ON CONFLICT (customer) DO UPDATE SET invocations = customer_costs.invocations + 1, cost = customer_costs.cost + excluded.cost",
                    (e.payload.cost or 0.0, e.session_id),  # type: ignore[attr-defined]
                )
                continue
            values = e.payload.metadata if e.type == "created" else e.payload.values  # type: ignore[attr-defined]
            if "customer" in values:
                conn.execute(
                    "INSERT INTO customer_sessions (session_id, customer) VALUES (?, ?)"
                    " ON CONFLICT (session_id) DO UPDATE SET customer = excluded.customer",
                    (e.session_id, str(values["customer"])),
                )


def _tables(led: Ledger, names: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    with raw_sql(led) as conn:
        return {name: conn.execute(f'SELECT * FROM "{name}" ORDER BY 1, 2').fetchall() for name in names}


def _costs(led: Ledger) -> dict[str, tuple[int, float]]:
    with raw_sql(led) as conn:
        rows = conn.execute("SELECT customer, invocations, cost FROM customer_costs").fetchall()
    return {customer: (n, round(cost, 6)) for customer, n, cost in rows}


def test_a_query_right_after_a_command_sees_it(ledger: Ledger) -> None:
    ledger.create_session("s", tags=["t"])
    assert [s.session_id for s in ledger.list_sessions(tags=["t"])] == ["s"]
    ledger.add_message("s", "user", "find the needle")
    assert [h.session_id for h in ledger.search_messages("needle")] == ["s"]
    ledger.complete_session("s")
    assert [s.status for s in ledger.list_sessions()] == ["completed"]


def _positions(led: Ledger) -> dict[str, int]:
    with raw_sql(led) as conn:
        return dict(conn.execute("SELECT name, position FROM projector_positions").fetchall())


def test_projector_positions_are_stored_with_the_rows(ledger_path: str) -> None:
    with Ledger(ledger_path, projectors=[CostPerCustomer()]) as led:
        led.create_session("s")
        led.add_message("s", "user", "the needle")
        # built-in inline: kept in step by every writer; custom: its last position; search and merkle: lazy
        assert _positions(led) == {"sessions": IN_STEP, "records": IN_STEP, "search": 0, "merkle": 0,
                                   "cost_per_customer": 2}
        assert [h.position for h in led.search_messages("needle")] == [2]
        assert _positions(led)["search"] == 2
        led.tree_head()
        assert _positions(led)["merkle"] == 2


def test_the_lazy_search_index_sees_a_message_right_after_it_is_added(ledger: Ledger) -> None:
    ledger.create_session("s")
    for word in ("alpha", "beta", "gamma"):
        ledger.add_message("s", "user", word)
        assert [h.snippet for h in ledger.search_messages(word)] == [f"[{word}]"]
        assert [s.session_id for s in ledger.list_sessions(text=word)] == ["s"]
    with ledger.batch():
        ledger.add_message("s", "user", "delta")
        assert len(ledger.search_messages("delta")) == 1  # inside a batch too


def test_a_custom_projector_registered_after_1000_events_catches_up(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=Clock()) as led:
        for i in range(10):
            led.create_session(f"s{i}", metadata={"customer": f"c{i % 3}"})
        with led.batch():
            for n in range(990):
                led.link_invocation(f"s{n % 10}", f"i{n}", "tool", cost=0.5)
        assert led.last_position == 1000
        led.register(CostPerCustomer())
        assert _costs(led) == {"c0": (396, 198.0), "c1": (297, 148.5), "c2": (297, 148.5)}
        led.link_invocation("s0", "late", "tool", cost=1.0)  # and from now on it runs inline
        assert _costs(led)["c0"] == (397, 199.0)
    with Ledger(ledger_path, projectors=[CostPerCustomer()]) as again:
        assert _costs(again)["c0"] == (397, 199.0)


def test_the_readme_style_projector_attributes_cost_to_the_customer_at_the_time(ledger: Ledger) -> None:
    ledger.register(CostPerCustomer())
    ledger.create_session("s", metadata={"customer": "acme"})
    ledger.link_invocation("s", "i1", "search", cost=0.25)
    ledger.set_metadata("s", "customer", "globex")
    ledger.link_invocation("s", "i2", "search", cost=1.0)
    assert _costs(ledger) == {"acme": (1, 0.25), "globex": (1, 1.0)}


def test_registering_the_readme_projector_after_a_purge_leaves_the_purged_session_out(ledger: Ledger) -> None:
    ledger.create_session("gone", metadata={"customer": "secret-customer"})
    ledger.link_invocation("gone", "i1", "search", cost=1.0)
    ledger.create_session("kept", metadata={"customer": "acme"})
    ledger.link_invocation("kept", "i2", "search", cost=0.25)
    ledger.purge_session("gone", reason="erasure request")
    ledger.register(CostPerCustomer())  # its catch-up is never given the purged session's redacted events
    assert _tables(ledger, ["customer_sessions", "customer_costs"]) == {
        "customer_sessions": [("kept", "acme")], "customer_costs": [("acme", 1, 0.25)]}


def test_a_purge_removes_the_session_from_a_projector_of_your_own(ledger: Ledger) -> None:
    ledger.register(CostPerCustomer())
    ledger.create_session("gone", metadata={"customer": "secret-customer"})
    ledger.link_invocation("gone", "i1", "search", cost=1.0)
    ledger.create_session("kept", metadata={"customer": "acme"})
    ledger.link_invocation("kept", "i2", "search", cost=0.25)
    ledger.purge_session("gone", reason="erasure request")  # the projector has no purged(): it is rebuilt
    tables = _tables(ledger, ["customer_sessions", "customer_costs"])
    assert tables == {"customer_sessions": [("kept", "acme")], "customer_costs": [("acme", 1, 0.25)]}
    ledger.rebuild("cost_per_customer")
    assert _tables(ledger, ["customer_sessions", "customer_costs"]) == tables  # law 3 still holds


class PurgeAware(CostPerCustomer):
    """The README's projector with a ``purged`` of its own: it removes the sessions in place."""

    name = "purge_aware"
    tables = ("customer_sessions", "customer_costs")

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def purged(self, conn: Any, session_ids: Sequence[str]) -> None:
        self.asked.append(list(session_ids))
        for sid in session_ids:
            conn.execute("DELETE FROM customer_sessions WHERE session_id = ?", (sid,))


def test_a_projector_that_overrides_purged_is_asked_instead_of_rebuilt(ledger: Ledger) -> None:
    projector = PurgeAware()
    ledger.register(projector)
    ledger.create_session("gone", metadata={"customer": "secret-customer"})
    ledger.create_session("kept", metadata={"customer": "acme"})
    ledger.purge_session("gone", reason="erasure request")
    assert projector.asked == [["gone"]]
    assert _tables(ledger, ["customer_sessions"]) == {"customer_sessions": [("kept", "acme")]}


def test_a_projector_version_bump_rebuilds_it(ledger_path: str) -> None:
    with Ledger(ledger_path, projectors=[CostPerCustomer()]) as led:
        led.create_session("s", metadata={"customer": "acme"})
        led.link_invocation("s", "i", "t", cost=2.0)

    class DoubledCost(CostPerCustomer):
        version = 2

        def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
            super().apply(conn, events)
            conn.execute("UPDATE customer_costs SET cost = cost * 2")

    with Ledger(ledger_path, projectors=[DoubledCost()]) as led:
        assert _costs(led) == {"acme": (1, 4.0)}
        with raw_sql(led) as conn:
            version = conn.execute("SELECT version FROM projector_positions WHERE name = ?", ("cost_per_customer",))
            assert version.fetchone() == (2,)


FOREIGN_WRITER = textwrap.dedent(
    """
    import sys
    from ledger import Ledger
    with Ledger(sys.argv[1]) as led:  # this process knows nothing of cost_per_customer
        for i in range(5):
            led.link_invocation("s", f"other-{i}", "tool", cost=1.0)
    """
)


def test_a_projector_catches_up_after_a_process_that_does_not_know_it_appended(ledger_path: str) -> None:
    with Ledger(ledger_path, projectors=[CostPerCustomer()]) as led:
        led.create_session("s", metadata={"customer": "acme"})
        led.link_invocation("s", "mine", "tool", cost=1.0)
        subprocess.run([sys.executable, "-c", FOREIGN_WRITER, ledger_path], check=True, timeout=60)
        assert _costs(led) == {"acme": (1, 1.0)}  # raw table read: not levelled yet
        assert led.get_session("s").invocation_count == 6  # any ledger read levels the projections first
        assert _costs(led) == {"acme": (6, 6.0)}
        led.link_invocation("s", "after", "tool", cost=1.0)
        assert _costs(led) == {"acme": (7, 7.0)}


def test_rebuild_reports_progress_and_returns_the_events_replayed(ledger: Ledger) -> None:
    ledger.create_session("s")
    with ledger.batch():
        for i in range(12_000):
            ledger.add_message("s", "user", f"m{i}")
    seen: list[tuple[int, int]] = []
    assert ledger.rebuild(progress=lambda done, total: seen.append((done, total))) == 12_001
    assert seen[-1] == (12_001, 12_001)
    assert len(seen) >= 3
    assert ledger.get_session("s").message_count == ledger.statistics("s").message_count == 12_000


def test_rebuilding_one_projection_leaves_the_others(ledger_path: str, clock: Clock) -> None:
    # A file or PostgreSQL ledger: the damage is written by a second connection, which an in-memory database cannot have.
    with Ledger(ledger_path, clock=clock) as ledger:
        ledger.register(CostPerCustomer())
        ledger.create_session("s", metadata={"customer": "acme"})
        ledger.link_invocation("s", "i", "t", cost=1.5)
        with raw_sql(ledger, write=True) as raw:  # a second connection, in autocommit
            raw.execute("DELETE FROM customer_costs")
            raw.execute("UPDATE sessions SET message_count = 99")
        ledger.rebuild("cost_per_customer")
        assert _costs(ledger) == {"acme": (1, 1.5)}
        with raw_sql(ledger) as conn:
            assert conn.execute("SELECT message_count FROM sessions").fetchone() == (99,)
        ledger.rebuild()
        with raw_sql(ledger) as conn:
            assert conn.execute("SELECT message_count FROM sessions").fetchone() == (0,)


def test_only_built_in_projectors_may_be_lazy_or_built_in(ledger: Ledger) -> None:
    for flag in ({"inline": False}, {"builtin": True}):
        with pytest.raises(InvalidInput, match="reserved"):
            ledger.register(type("Odd", (CostPerCustomer,), flag)())


def test_closing_levels_the_search_index_for_plain_sql_readers(ledger_path: str) -> None:
    led = Ledger(ledger_path)
    with led:
        led.create_session("s")
        led.add_message("s", "user", "findable after close")
    with raw_sql(led) as conn:  # plain SQL, each backend's own full-text match
        if conn.postgres:
            query = f"SELECT position FROM messages_fts WHERE document @@ phraseto_tsquery('{TEXT_CONFIG}', 'findable')"
        else:
            query = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'findable'"
        rows = conn.execute(query).fetchall()
    assert rows == [(2,)]


@pytest.mark.parametrize(
    "bad",
    [object(), CostPerCustomer, type("Nameless", (CostPerCustomer,), {"name": ""})(),
     type("BadName", (CostPerCustomer,), {"name": "drop table; --"})(),
     type("BadVersion", (CostPerCustomer,), {"version": 0})()],
)
def test_registering_a_bad_projector_is_invalid_input(ledger: Ledger, bad: object) -> None:
    with pytest.raises(InvalidInput):
        ledger.register(bad)  # type: ignore[arg-type]


def test_registering_a_name_twice_or_rebuilding_an_unknown_one_is_invalid_input(ledger: Ledger) -> None:
    ledger.register(CostPerCustomer())
    with pytest.raises(InvalidInput, match="already registered"):
        ledger.register(CostPerCustomer())
    with pytest.raises(InvalidInput, match="no projector named"):
        ledger.rebuild("nope")


def test_a_projector_that_fails_makes_the_command_write_nothing(ledger: Ledger) -> None:
    class Broken(Projector):
        name = "broken"
        dialects = frozenset({"sqlite", "postgres"})
        handles = frozenset({"data_set"})

        def create(self, db: Any) -> None:
            pass

        def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
            raise RuntimeError("projector bug")

    ledger.register(Broken())
    ledger.create_session("s")
    position = ledger.last_position
    with pytest.raises(RuntimeError):
        ledger.set_data("s", "k", 1)
    assert ledger.last_position == position
    assert ledger.get_data("s") == {}
    assert ledger.list_sessions().items[0].version == 1


class EventCounter(Projector):
    """Counts events by type the way many projectors upsert: an UPDATE, then an INSERT when it touched no row
    (the ``rowcount`` of the cursor ``execute`` returns, on both backends)."""

    name = "event_counter"
    dialects = frozenset({"sqlite", "postgres"})
    tables = ("event_counts",)

    def create(self, db: Any) -> None:
        db.execute("CREATE TABLE event_counts (type TEXT PRIMARY KEY, n BIGINT NOT NULL)")

    def apply(self, conn: Any, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            if conn.execute("UPDATE event_counts SET n = n + 1 WHERE type = ?", (e.type,)).rowcount == 0:
                conn.execute("INSERT INTO event_counts (type, n) VALUES (?, 1)", (e.type,))


def test_a_projector_sees_what_its_own_statements_did(ledger: Ledger) -> None:
    ledger.register(EventCounter())
    ledger.create_session("s")
    ledger.add_message("s", "user", "one")
    with ledger.batch():
        ledger.add_message("s", "user", "two")
        ledger.set_data("s", "k", 1)
    with raw_sql(ledger) as conn:
        assert dict(conn.execute("SELECT type, n FROM event_counts").fetchall()) == {
            "created": 1, "message_added": 2, "data_set": 1}


steps = st.lists(
    st.tuples(
        st.sampled_from(["create", "message", "invoke", "meta", "unmeta", "data", "undata", "clear", "tag", "untag",
                         "complete", "restore", "fork"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["k1", "k2", "名前"]),
        st.one_of(st.integers(-5, 5), st.text(max_size=8), st.dictionaries(st.sampled_from(["x", "y"]), st.booleans(), max_size=2)),
    ),
    max_size=40,
)


def _play(led: Ledger, plan: list[tuple[str, str, str, Any]]) -> None:
    for kind, sid, key, value in plan:
        try:
            if kind == "create":
                led.create_session(sid, user_id=key, tags=[key], metadata={key: value})
            elif kind == "message":
                led.add_message(sid, "assistant" if len(str(value)) % 2 else "user", f"{key} {value} words",
                                model=key, tokens={"input": len(str(value)), "output": 1})
            elif kind == "invoke":
                led.link_invocation(sid, f"i-{value}", key, duration_ms=len(str(value)) * 1.5, cost=0.1,
                                    status="ok" if value else "error")
            elif kind == "meta":
                led.set_metadata(sid, key, value)
            elif kind == "unmeta":
                led.remove_metadata(sid, key)
            elif kind == "data":
                led.set_data(sid, key, value)
            elif kind == "undata":
                led.delete_data(sid, key)
            elif kind == "clear":
                led.clear_data(sid)
            elif kind == "tag":
                led.add_tags(sid, [key, str(value)[:5] or "t"])
            elif kind == "untag":
                led.remove_tags(sid, [key])
            elif kind == "restore":
                led.restore(sid, version=max(1, led.get_session(sid).version - len(str(value))))
            elif kind == "fork":
                led.fork(sid, new_session_id=f"{sid}-{key}-{len(str(value))}")
            else:
                led.complete_session(sid, "failed" if value else "completed")
        except LedgerError:
            pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_law3_rebuilding_from_position_0_gives_the_same_tables_as_the_inline_updates(
    new_ledger_path: Callable[[], str], plan: list[Any]
) -> None:
    with Ledger(new_ledger_path(), clock=Clock(), projectors=[CostPerCustomer()]) as led:
        _play(led, plan)
        names = (*BUILT_IN, "customer_sessions", "customer_costs")
        inline = _tables(led, names)
        inline_usage = {by: led.usage(by=by) for by in ("tool", "user", "model", "day", "status")}
        led.rebuild()
        assert _tables(led, names) == inline
        assert {by: led.usage(by=by) for by in ("tool", "user", "model", "day", "status")} == inline_usage
        check_search_index(led)


def test_deep_verify_names_a_hand_edited_read_table_and_its_row(ledger_path: str) -> None:
    with Ledger(ledger_path) as ledger:
        ledger.register(CostPerCustomer())
        ledger.create_session("s", metadata={"customer": "acme"})
        ledger.add_message("s", "user", "the real words")
        ledger.link_invocation("s", "i1", "search", cost=0.5)
        assert ledger.verify(projections=True).ok
        with raw_sql(ledger, write=True) as conn:
            conn.execute("UPDATE messages SET content = 'FORGED' WHERE session_id = 's'")
        assert ledger.verify().ok  # the chain alone cannot see it: the log was not touched
        report = ledger.verify(projections=True)
        assert not report.ok and report.table == "messages" and "FORGED" in (report.reason or "")
        ledger.rebuild("sessions")
        assert ledger.verify(projections=True).ok
        with raw_sql(ledger, write=True) as conn:
            conn.execute("DELETE FROM customer_costs")  # a projector of your own is checked too
        report = ledger.verify(projections=True)
        assert not report.ok and report.table == "customer_costs" and "missing" in (report.reason or "")
