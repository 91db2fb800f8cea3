"""DESIGN.md laws 4, 5, 6 and 7, as hypothesis properties over random command sequences, on each backend.

4. a rejected command writes nothing: the last position and every table are unchanged.
5. the hash chain verifies after any sequence of commands, and fails at the exact
   position of any altered, removed or reordered row.
6. an append with a stale expected version raises and writes nothing; with the same
   event_id twice it is stored once.
7. the same events give the same chain head on every backend (here: the same commands, on SQLite and
   PostgreSQL side by side, give the same outcomes, chain head and reads; an export moving between
   backends is tests/test_postgres.py's).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import ANY, ConcurrencyError, Ledger, LedgerError
from tests.conftest import Clock, RawSQL, drop_schemas, dump, new_schema_url, raw_sql
from tests.pg_server import PostgresServer

SESSIONS = ["s0", "s1", "s2", "bad id!", "x" * 129]
KEYS = ["k", "role", "名前", "", "k" * 257, "'; DROP TABLE events;--"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just("\ud800"),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


big_values = st.sampled_from(["x" * 5000, {"deep": _nested(40)}])
values = st.one_of(json_values, big_values)
tags = st.lists(st.sampled_from(["a", "b", "", "t" * 200, "ok"]), max_size=3) | st.just("not-a-list")

Command = Callable[[Ledger], Any]


def _cmd(name: str, *args: Any, **kwargs: Any) -> Command:
    def run(led: Ledger) -> Any:
        return getattr(led, name)(*args, **kwargs)

    run.__name__ = f"{name}{args}{kwargs}"[:200]
    return run


sid = st.sampled_from(SESSIONS)
key = st.sampled_from(KEYS)
record_keys = st.sampled_from(["a", "/b/1", "", "k" * 257, "名前"])


def command_strategy(message_texts: st.SearchStrategy[str]) -> st.SearchStrategy[Command]:
    """Random commands, good and bad, with message contents drawn from ``message_texts``."""
    return st.one_of(
        st.builds(lambda s, t, m: _cmd("create_session", s, tags=t, metadata=m), sid, tags, st.dictionaries(key, values, max_size=3)),
        st.builds(
            lambda s, r, c, tok: _cmd("add_message", s, r, c, tokens=tok),
            sid,
            st.sampled_from(["user", "assistant", "tool", "robot"]),
            message_texts,
            st.none() | st.fixed_dictionaries({"input": st.integers(-2, 50)}),
        ),
        st.builds(
            lambda s, d, c: _cmd("link_invocation", s, "inv", "git", duration_ms=d, cost=c),
            sid,
            st.none() | st.floats(min_value=-1, max_value=1e6) | st.just(math.nan),
            st.none() | st.floats(min_value=0, max_value=10),
        ),
        st.builds(lambda s, k, v: _cmd("set_metadata", s, k, v), sid, key, values),
        st.builds(lambda s, m: _cmd("update_metadata", s, m), sid, st.dictionaries(key, values, max_size=3)),
        st.builds(lambda s, k: _cmd("remove_metadata", s, k), sid, key),
        st.builds(lambda s, k, v: _cmd("set_data", s, k, v), sid, key, values),
        st.builds(lambda s, k: _cmd("delete_data", s, k), sid, key),
        st.builds(lambda s: _cmd("clear_data", s), sid),
        st.builds(lambda s, t: _cmd("add_tags", s, t), sid, tags),
        st.builds(lambda s, t: _cmd("remove_tags", s, t), sid, tags),
        st.builds(lambda s, st_: _cmd("complete_session", s, st_), sid, st.sampled_from(["completed", "failed", "done"])),
        st.builds(lambda s, k, v, b, g: _cmd("set_record", s, "lg.value", k, v, blob=b, group=g), sid, record_keys,
                  values, st.none() | st.binary(max_size=20), st.none() | st.sampled_from(["g", ""])),
        st.builds(lambda s, ks: _cmd("remove_records", s, "lg.value", ks), sid, st.none() | st.lists(record_keys, max_size=2)),
    )


commands = command_strategy(st.text(max_size=30))

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _run_all(led: Ledger, cmds: list[Command]) -> list[bool]:
    """Run each command; for every rejected one assert it wrote nothing. Returns which succeeded."""
    ok = []
    for cmd in cmds:
        before = dump(led)
        position = led.last_position
        try:
            cmd(led)
        except LedgerError:
            assert led.last_position == position, cmd.__name__
            assert dump(led) == before, cmd.__name__
            ok.append(False)
        else:
            ok.append(True)
    return ok


@SETTINGS
@given(cmds=st.lists(commands, min_size=1, max_size=25))
def test_law4_a_rejected_command_writes_nothing(new_ledger_path: Callable[[], str], cmds: list[Command]) -> None:
    with Ledger(new_ledger_path(), clock=Clock(), snapshot_every=3) as led:
        led.create_session("s0")
        _run_all(led, cmds)
        assert led.verify().ok


@SETTINGS
@given(cmds=st.lists(commands, min_size=1, max_size=25))
def test_law4_a_rejected_command_inside_a_batch_writes_nothing(new_ledger_path: Callable[[], str], cmds: list[Command]) -> None:
    with Ledger(new_ledger_path(), clock=Clock(), snapshot_every=3) as led:
        led.create_session("s0")
        with led.batch():
            _run_all(led, cmds)
        assert led.verify().ok


def _populated(path: str, cmds: list[Command]) -> Ledger:
    led = Ledger(path, clock=Clock(), snapshot_every=4)
    for name in ("s0", "s1"):
        led.create_session(name)
        led.add_message(name, "user", "hello")
    for cmd in cmds:
        try:
            cmd(led)
        except LedgerError:
            pass
    return led


TAMPERS = ["payload", "type", "version", "hash", "recorded_at", "event_id", "session_id", "delete", "swap"]


def _tamper(raw: RawSQL, tamper: str, p: int, last: int, pick2: float) -> int:
    """Alter, remove or reorder the row at position ``p`` behind the ledger's back; returns the first position
    changed. The same statements on both backends, except where SQLite and PostgreSQL name a function apart."""
    if tamper == "payload":
        if raw.postgres:  # the text itself (jsonb would refuse a payload holding \u0000)
            raw.execute("UPDATE events SET data = CASE data WHEN '{}' THEN '{\"tampered\":1}'"
                        " ELSE '{\"tampered\":1,' || substr(data, 2) END WHERE position = ?", (p,))
        else:
            raw.execute("UPDATE events SET data = json_set(data, '$.tampered', 1) WHERE position = ?", (p,))
    elif tamper == "type":
        raw.execute("UPDATE events SET type = CASE type WHEN 'data_set' THEN 'metadata_set' ELSE 'data_set' END WHERE position = ?", (p,))
    elif tamper == "version":
        raw.execute("UPDATE events SET version = version + 1000 WHERE position = ?", (p,))
    elif tamper == "hash":
        random32 = "decode(md5(random()::text) || md5(random()::text), 'hex')" if raw.postgres else "randomblob(32)"
        raw.execute(f"UPDATE events SET hash = {random32} WHERE position = ?", (p,))
    elif tamper == "recorded_at":
        raw.execute("UPDATE events SET recorded_at = '2000-01-01T00:00:00.000000Z' WHERE position = ?", (p,))
    elif tamper == "event_id":
        raw.execute("UPDATE events SET event_id = 'forged' WHERE position = ?", (p,))
    elif tamper == "session_id":
        raw.execute("UPDATE events SET session_id = 'forged' WHERE position = ?", (p,))
    elif tamper == "delete":
        raw.execute("DELETE FROM events WHERE position = ?", (p,))
    else:  # swap the contents of two rows, keeping positions
        q = 1 + min(int(pick2 * last), last - 1)
        if q == p:
            q = p + 1 if p < last else p - 1
        p, q = min(p, q), max(p, q)
        raw.execute("UPDATE events SET position = -1 WHERE position = ?", (p,))
        raw.execute("UPDATE events SET position = ? WHERE position = ?", (p, q))
        raw.execute("UPDATE events SET position = ? WHERE position = -1", (q,))
    return p


@SETTINGS
@given(cmds=st.lists(commands, max_size=20), tamper=st.sampled_from(TAMPERS), pick=st.floats(0, 1), pick2=st.floats(0, 1))
def test_law5_the_chain_fails_at_the_exact_position_of_any_tampering(
    new_ledger_path: Callable[[], str], cmds: list[Command], tamper: str, pick: float, pick2: float
) -> None:
    led = _populated(new_ledger_path(), cmds)
    try:
        report = led.verify()
        assert report.ok and report.checked == led.last_position
        digest = led.digest()
        last = digest.position
        p = 1 + min(int(pick * last), last - 1)
        with raw_sql(led, write=True) as raw:  # a second connection, in autocommit
            p = _tamper(raw, tamper, p, last, pick2)
        if tamper == "delete" and p == last:
            # Removing the newest row leaves a shorter valid chain: only a saved digest shows it.
            assert led.verify().ok
            report = led.verify(digest)
        else:
            report = led.verify()
        assert not report.ok
        assert report.first_bad_position == p, (tamper, report)
        assert report.reason
    finally:
        led.close()


def test_law5_the_chain_verifies_after_any_sequence_and_against_older_digests(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=Clock()) as led:
        digests = []
        led.create_session("s")
        for i in range(30):
            led.set_data("s", "i", i)
            digests.append(led.digest())
        assert all(led.verify(d).ok for d in digests)


class _Model:
    """What law 6 expects: per-session versions and the version each event_id got."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.by_event_id: dict[str, tuple[str, int]] = {}


@SETTINGS
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 6) | st.none(), st.sampled_from(["e1", "e2", "e3", "e4"]) | st.none()),
        min_size=1,
        max_size=30,
    )
)
def test_law6_stale_expected_versions_raise_and_event_ids_are_stored_once(new_ledger_path: Callable[[], str], steps: list[Any]) -> None:
    with Ledger(new_ledger_path(), clock=Clock()) as led:
        model = _Model()
        for name in ("a", "b"):
            led.create_session(name)
            model.versions[name] = 1
        for session, expected, event_id in steps:
            before = dump(led)
            prior = model.by_event_id.get(event_id) if event_id else None
            try:
                version = led.add_message(session, "user", "m", expected_version=expected, event_id=event_id)
            except ConcurrencyError:
                assert prior is None and expected != model.versions[session]
                assert dump(led) == before
                continue
            except LedgerError:  # the event_id was used by the other session
                assert prior is not None and prior[0] != session
                assert dump(led) == before
                continue
            if prior is not None:
                assert prior == (session, version)
                assert dump(led) == before
            else:
                assert expected is None or expected == model.versions[session]
                model.versions[session] += 1
                assert version == model.versions[session]
                if event_id:
                    model.by_event_id[event_id] = (session, version)
        stored = [e.event_id for e in led.history()]
        assert len(stored) == len(set(stored))
        assert sum(1 for e in stored if e.startswith("e")) == len(model.by_event_id)


def test_law6_nan_guard_for_hypothesis_floats(ledger_path: str) -> None:
    # The strategies above feed NaN into durations on purpose; make sure they are refused, not stored.
    with Ledger(ledger_path) as led:
        led.create_session("s")
        for bad in (math.nan, -1.0):
            try:
                led.link_invocation("s", "i", "t", duration_ms=bad)
            except LedgerError:
                pass
        assert led.get_session("s").version == 1


# -- law 7: the same commands on both backends ------------------------------------------------------------------

WORDS = ["hello", "text", "a", "0", "inv", "é", "run", "running", "café", "x1"]
LAW7_SETTINGS = settings(SETTINGS, max_examples=int(__import__("os").environ.get("LAW7_EXAMPLES", "40")))
# Random text from the Basic Multilingual Plane: SQLite's FTS5 cuts words by its own (Unicode 6.1) tables and the
# PostgreSQL search by Python's, so letters of scripts added to Unicode since (e.g. Khitan) may be cut differently
# (README, "PostgreSQL"); every stored value still round-trips exactly on both.
bmp_text = st.text(st.characters(max_codepoint=0xFFFF), max_size=40)
texts = st.one_of(bmp_text, st.sampled_from(["hello text", "running runs", "Café crème", "a\x00b hello",
                                                         "x1 y2 config.yaml", "ÉCOLE école", "don't stop", "数据 text"]))
law7_commands = st.one_of(
    command_strategy(bmp_text),
    st.builds(lambda s, r, c, m, tok: _cmd("add_message", s, r, c, model=m, tokens=tok), sid,
              st.sampled_from(["user", "assistant", "tool", "system"]), texts, st.none() | st.sampled_from(["m1", "m2"]),
              st.none() | st.fixed_dictionaries({"input": st.integers(0, 2**40), "output": st.integers(0, 99)})),
    st.builds(lambda s, i, t, d, c, stt: _cmd("link_invocation", s, i, t, duration_ms=d, cost=c, status=stt), sid,
              st.sampled_from(["i1", "i2"]), st.sampled_from(["git", "grep"]), st.none() | st.floats(0, 1e6),
              st.none() | st.floats(0, 10), st.sampled_from(["ok", "error"])),
    st.builds(lambda s, v: _cmd("restore", s, version=v), sid, st.integers(1, 6)),
    st.builds(lambda s, n: _cmd("fork", s, new_session_id=n), sid, st.sampled_from(["s1", "s2", "f1"])),
    st.builds(lambda s: _cmd("retract_message", s), sid),
    st.builds(lambda s: _cmd("clear_conversation", s), sid),
    st.builds(lambda s: _cmd("purge_session", s, reason="r"), sid),
    st.builds(lambda s: _cmd("checkpoint", s), sid),
)
ORDERS = ["created_at", "updated_at", "version", "message_count", "estimated_cost", "session_id"]


def _ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter):06d}"


def _salts() -> Callable[[], bytes]:
    counter = itertools.count(1)
    return lambda: next(counter).to_bytes(16, "big")  # the same salts on both sides: the same payloads


def _outcome(led: Ledger, cmd: Command) -> Any:
    try:
        return ("ok", cmd(led))
    except LedgerError as err:
        return (type(err).__name__, err.field)


def _reads(led: Ledger) -> dict[str, Any]:
    """What the public API reads back: states, conversations, lists, figures, search hits."""
    sessions = sorted({e.session_id for e in led.history()})
    found: dict[str, Any] = {
        "digest": led.digest(),
        "history": [(e.position, e.event_id, e.session_id, e.version, e.type, e.recorded_at, e.payload, e.hash)
                    for e in led.history()],
        "usage": {by: led.usage(by=by) for by in ("tool", "user", "model", "day", "status")},
    }
    for sid in sessions:
        found[sid] = [_outcome(led, read) for read in (
            lambda led: led.get_session(sid), lambda led: led.messages(sid), lambda led: led.get_metadata(sid),
            lambda led: led.get_data(sid), lambda led: led.statistics(sid),
            lambda led: led.get_session(sid, version=1), lambda led: led.messages(sid, version=2),
            lambda led: [(r.key, r.value, r.blob, r.group, r.position, r.version) for r in led.records(sid, "lg.value")],
            lambda led: [r.key for r in led.records(sid, "lg.value", position=4)],
        )]
    for order in ORDERS:
        for descending in (True, False):
            found[f"list {order} {descending}"] = [
                s.session_id for s in led.list_sessions(order_by=order, descending=descending, limit=3)]
    for order in ORDERS:  # every page, through the keyset cursors
        pages, cursor = [], None
        while True:
            page = led.list_sessions(order_by=order, limit=2, cursor=cursor)
            pages.append([x.session_id for x in page.items])
            if page.cursor is None:
                break
            cursor = page.cursor
        found[f"pages {order}"] = pages
    for name, query in (("status", {"status": ["active"]}), ("tags", {"tags": ["a"]}), ("any", {"any_tags": ["a", "b", "t"]}),
                        ("meta", {"metadata": {"m": 1}}), ("user", {"user_id": "u"}), ("parent", {"parent_id": "s0"})):
        found[f"filter {name}"] = [x.session_id for x in led.list_sessions(**query)]
    found["by key"] = [x.session_id for x in led.find_sessions_by_metadata({"k": ANY})]
    found["by tag"] = [x.session_id for x in led.sessions_by_tag("ok")]
    for word in WORDS:
        # The same hits (ranks and snippets are each engine's own: FTS5 bm25 and snippet, ts_rank and ts_headline).
        found[f"search {word}"] = sorted((h.session_id, h.position, h.version, h.role) for h in led.search_messages(word))
        found[f"text {word}"] = sorted(s.session_id for s in led.list_sessions(text=word))
    return found


@LAW7_SETTINGS
@given(cmds=st.lists(law7_commands, min_size=1, max_size=25))
def test_law7_the_same_commands_give_the_same_chain_head_and_reads_on_both_backends(
    postgres: PostgresServer, tmp_path_factory: Any, cmds: list[Command]
) -> None:
    url = new_schema_url()
    try:
        with Ledger(tmp_path_factory.mktemp("law7") / "l.db", clock=Clock(), new_id=_ids(), new_salt=_salts(),
                    snapshot_every=3) as lite, \
                Ledger(url, clock=Clock(), new_id=_ids(), new_salt=_salts(), snapshot_every=3) as pg:
            for led in (lite, pg):
                led.create_session("s0", tags=["t"], metadata={"m": 1})
                led.add_message("s0", "user", "hello text", tokens={"input": 1})
            for cmd in cmds:
                assert _outcome(lite, cmd) == _outcome(pg, cmd), cmd.__name__
            assert lite.verify().ok and pg.verify().ok
            assert _reads(lite) == _reads(pg)
    finally:
        drop_schemas([url])


# -- law 8: every event the commands write is one import would admit ------------------------------------------------


@LAW7_SETTINGS
@given(cmds=st.lists(law7_commands, min_size=1, max_size=25))
def test_law8_every_event_the_commands_write_passes_the_import_rules(cmds: list[Command]) -> None:
    from ledger.admission import admit
    from ledger.validation import Limits

    with Ledger(":memory:", clock=Clock(), snapshot_every=3) as led:
        led.create_session("s0", tags=["t"], metadata={"m": 1})
        for cmd in cmds:
            _outcome(led, cmd)
        states: dict[str, Any] = {}
        for event in led.history():
            states[event.session_id] = admit(states.get(event.session_id), event, Limits())
