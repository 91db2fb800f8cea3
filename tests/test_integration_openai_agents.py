"""The OpenAI Agents SDK adapter (ledger.integrations.openai_agents) against the real ``openai-agents`` package.

The SDK's wheel ships no reusable session conformance suite (its session tests live in its
repository, not in the package), so conformance is shown three ways, none calling a model:
the SDK's own ``Session`` protocol and ``SessionABC`` checks; a differential test that runs
the same operations against the SDK's reference ``SQLiteSession`` and compares every answer;
and real ``Runner.run`` turns driven by the SDK's own test model, ``agents.testing.ScriptedModel``.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import threading
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("agents")

from agents import Agent, RunConfig, Runner, SQLiteSession, function_tool  # noqa: E402
from agents.memory import Session, SessionABC, SessionSettings  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from ledger import InvalidInput, Ledger, LedgerError, LimitExceeded, Limits, SessionClosed, SessionNotFound  # noqa: E402
from ledger.integrations.openai_agents import INTEGRATION, LedgerSession  # noqa: E402
from tests.conftest import raw_sql  # noqa: E402

NO_TRACING = RunConfig(tracing_disabled=True)

# Realistic items, in the shapes the Responses API and the SDK produce them.
USER = {"role": "user", "content": "What's the weather in Paris?\nAnd in Zürich? 🌦"}
USER_PARTS = {
    "type": "message",
    "role": "user",
    "content": [
        {"type": "input_text", "text": "Describe this"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
    ],
}
DEVELOPER = {"role": "developer", "content": "Answer briefly."}
SYSTEM = {"role": "system", "content": "You are a weather bot."}
REASONING = {
    "id": "rs_68a1",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "The user wants the weather; call the tool."}],
    "encrypted_content": "gAAAAABo-opaque==",
}
CALL = {
    "id": "fc_68a2",
    "type": "function_call",
    "call_id": "call_Wx1",
    "name": "get_weather",
    "arguments": '{"city": "Paris"}',
    "status": "completed",
}
OUTPUT = {"type": "function_call_output", "call_id": "call_Wx1", "output": '{"temp_c": 21, "sky": "clear"}'}
ASSISTANT = {
    "id": "msg_68a3",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "It is 21 °C and clear in Paris.", "annotations": [], "logprobs": []}],
}
WEB_SEARCH = {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "Zürich"}}
COMPUTER_CALL = {
    "id": "cu_1",
    "type": "computer_call",
    "call_id": "call_C1",
    "action": {"type": "click", "x": 10, "y": 20, "button": "left"},
    "pending_safety_checks": [],
    "status": "completed",
}
COMPUTER_OUTPUT = {
    "type": "computer_call_output",
    "call_id": "call_C1",
    "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AAAA"},
}
MCP_CALL = {"id": "mcp_1", "type": "mcp_call", "server_label": "docs", "name": "search", "arguments": "{}", "output": "3 hits"}
FUTURE = {"type": "some_future_item", "payload": {"nested": [1, 2.5, True, None, "\x00nul"], "big": 2**62}}

ITEMS = [SYSTEM, DEVELOPER, USER, USER_PARTS, REASONING, CALL, OUTPUT, ASSISTANT,
         WEB_SEARCH, COMPUTER_CALL, COMPUTER_OUTPUT, MCP_CALL, FUTURE]
# (role, tool_name, invocation_id) each item is recorded with.
FIELDS = [
    ("system", None, None),
    ("system", None, None),
    ("user", None, None),
    ("user", None, None),
    ("assistant", None, None),
    ("tool", "get_weather", "call_Wx1"),
    ("tool", "get_weather", "call_Wx1"),
    ("assistant", None, None),
    ("tool", "web_search", "ws_1"),
    ("tool", "computer", "call_C1"),
    ("tool", "computer", "call_C1"),
    ("tool", "search", "mcp_1"),
    ("assistant", None, None),
]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def items(n: int) -> list[dict[str, Any]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"item {i}"} for i in range(n)]


@pytest.fixture
def led(ledger_path: str) -> Any:
    with Ledger(ledger_path) as ledger:
        yield ledger


# -- the protocol -------------------------------------------------------------------------


def test_implements_the_sdk_session_protocol_and_abc(led: Ledger) -> None:
    session = LedgerSession("proto", led)
    assert isinstance(session, Session)  # the SDK's runtime_checkable protocol
    assert isinstance(session, SessionABC)
    assert issubclass(LedgerSession, SessionABC) and not inspect.isabstract(LedgerSession)
    for name in ("get_items", "add_items", "pop_item", "clear_session"):
        assert inspect.iscoroutinefunction(getattr(session, name)), name
    assert session.session_id == "proto"
    assert isinstance(session.session_settings, SessionSettings) and session.session_settings.limit is None
    # The same call shapes as the protocol's (the Runner passes limit by keyword).
    assert list(inspect.signature(session.get_items).parameters) == ["limit"]
    assert list(inspect.signature(session.add_items).parameters) == ["items"]


def test_rejects_an_id_the_ledger_cannot_hold(led: Ledger) -> None:
    with pytest.raises(InvalidInput, match="session_id"):
        LedgerSession("has space", led)
    with pytest.raises(TypeError):
        LedgerSession("ok", led, session_settings=3)  # type: ignore[arg-type]


def test_unknown_session_settings_keys_are_refused_as_the_sdk_refuses_them(led: Ledger) -> None:
    with pytest.raises(TypeError, match="Unknown session settings"):
        LedgerSession("ok", led, session_settings={"limit": 2, "limt": 3})


# -- round trips ----------------------------------------------------------------------------


def test_realistic_items_round_trip_exactly(ledger: Ledger) -> None:  # memory, file and PostgreSQL
    session = LedgerSession("trip", ledger)
    added = copy.deepcopy(ITEMS)
    run(session.add_items(added[:6]))
    run(session.add_items(added[6:]))  # the output's tool name comes from the call in the earlier batch
    assert added == ITEMS  # not mutated
    got = run(session.get_items())
    assert got == ITEMS
    assert [json.dumps(i, sort_keys=True) for i in got] == [json.dumps(i, sort_keys=True) for i in ITEMS]
    assert [list(i) for i in got] == [list(i) for i in ITEMS]  # key order too
    assert [(m.role, m.tool_name, m.invocation_id) for m in ledger.messages("trip")] == FIELDS
    # Each message's content is the item's JSON, so SQL can reach into it.
    with raw_sql(ledger) as conn:  # the ledger's file, a backup of an in-memory one, or the PostgreSQL schema
        name = "content::jsonb ->> 'name'" if conn.postgres else "json_extract(content, '$.name')"
        assert conn.execute(f"SELECT {name} FROM messages WHERE tool_name = 'get_weather'"
                            " ORDER BY version").fetchall() == [("get_weather",), (None,)]


def test_items_from_a_real_run_round_trip(led: Ledger) -> None:
    session = LedgerSession("from-run", led)
    model = ScriptedModel([[function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
                           [assistant_message("Sunny.")]])
    result = run(Runner.run(_agent(model), "Weather?", run_config=NO_TRACING))
    produced = result.to_input_list()
    run(session.add_items(produced))
    assert run(session.get_items()) == produced


def test_the_session_is_created_on_first_write_with_integration_metadata(led: Ledger) -> None:
    session = LedgerSession("meta", led, user_id="u1", purpose="support", tags=["agents"], metadata={"team": "eu"})
    assert run(session.get_items()) == [] and run(session.pop_item()) is None
    run(session.clear_session())
    run(session.add_items([]))
    assert led.last_position == 0  # reading, popping, clearing or adding nothing writes nothing
    run(session.add_items([USER]))
    state = led.get_session("meta")
    assert state.metadata == {"integration": INTEGRATION, "team": "eu"}
    assert (state.user_id, state.purpose, state.tags) == ("u1", "support", ("agents",))
    assert [e.type for e in led.history("meta")] == ["created", "message_added"]
    assert led.list_sessions(metadata={"integration": "openai-agents"}).items[0].session_id == "meta"


def test_an_existing_ledger_session_is_used_and_plain_messages_read_as_items(led: Ledger) -> None:
    led.create_session("seeded", metadata={"source": "import"})
    led.add_message("seeded", "user", "hello from elsewhere")
    session = LedgerSession("seeded", led)
    run(session.add_items([ASSISTANT]))
    assert run(session.get_items()) == [{"role": "user", "content": "hello from elsewhere"}, ASSISTANT]
    assert led.get_session("seeded").metadata == {"source": "import"}  # not re-created


# -- limit ------------------------------------------------------------------------------------


def test_limit_returns_the_latest_items_in_order(led: Ledger) -> None:
    session = LedgerSession("lim", led)
    data = items(7)
    run(session.add_items(data))
    assert run(session.get_items()) == data
    assert run(session.get_items(None)) == data
    assert run(session.get_items(limit=3)) == data[-3:]
    assert run(session.get_items(1)) == data[-1:]
    assert run(session.get_items(7)) == data
    assert run(session.get_items(100)) == data
    assert run(session.get_items(0)) == []
    run(session.pop_item())
    assert run(session.get_items(3)) == data[-4:-1]  # retracted items are not counted


def test_session_settings_give_the_default_limit(led: Ledger) -> None:
    session = LedgerSession("lim2", led, session_settings=SessionSettings(limit=2))
    also = LedgerSession("lim2", led, session_settings={"limit": 4})
    run(session.add_items(items(5)))
    assert run(session.get_items()) == items(5)[-2:]
    assert run(session.get_items(limit=3)) == items(5)[-3:]  # an explicit limit wins
    assert run(also.get_items()) == items(5)[-4:]


# -- pop and clear -------------------------------------------------------------------------------


def test_pop_item(led: Ledger) -> None:
    session = LedgerSession("pop", led)
    assert run(session.pop_item()) is None  # no session yet
    run(session.add_items([USER, CALL, OUTPUT]))
    assert run(session.pop_item()) == OUTPUT
    assert run(session.get_items()) == [USER, CALL]
    assert run(session.pop_item()) == CALL
    assert run(session.pop_item()) == USER
    before = led.last_position
    assert run(session.pop_item()) is None  # empty: writes nothing
    assert led.last_position == before
    run(session.add_items([ASSISTANT]))
    assert run(session.get_items()) == [ASSISTANT]


def test_pop_item_on_a_forked_session_never_returns_one_item_and_hides_another(led: Ledger) -> None:
    parent = LedgerSession("parent", led)
    run(parent.add_items(items(3)))  # versions 2-4
    led.fork("parent", new_session_id="child")  # the child's own versions start again at 2
    child = LedgerSession("child", led)
    own = [{"role": "user", "content": f"child {i}"} for i in range(4)]
    run(child.add_items(own))
    expected = items(3) + own
    while expected:
        before = led.last_position
        try:
            popped = run(child.pop_item())
        except LedgerError:
            # ledger defect: retract_message picks the parent's message of the same version
            # (ledger/ledger.py _effective_message); the adapter refuses and writes nothing.
            assert led.last_position == before and run(child.get_items()) == expected
            break
        assert popped == expected.pop()
        assert run(child.get_items()) == expected
    assert run(parent.get_items()) == items(3)  # the parent is untouched either way


def test_clear_session(led: Ledger) -> None:
    session = LedgerSession("clr", led)
    run(session.add_items(ITEMS))
    led.set_data("clr", "step", 3)
    run(session.clear_session())
    assert run(session.get_items()) == [] and run(session.pop_item()) is None
    before = led.last_position
    run(session.clear_session())  # already empty: writes nothing
    assert led.last_position == before
    state = led.get_session("clr")
    assert state.metadata["integration"] == INTEGRATION and led.get_data("clr") == {"step": 3}
    run(session.add_items([USER]))
    assert run(session.get_items()) == [USER]


def test_the_audit_trail_keeps_popped_and_cleared_items(led: Ledger) -> None:
    session = LedgerSession("audit", led)
    run(session.add_items([USER, CALL, OUTPUT, ASSISTANT]))
    run(session.pop_item())
    run(session.clear_session())
    run(session.add_items([USER]))
    assert [m.content for m in led.messages("audit")] == [json.dumps(USER, ensure_ascii=False, separators=(",", ":"))]
    events = list(led.history("audit"))
    assert [e.type for e in events] == ["created"] + ["message_added"] * 4 + [
        "message_retracted", "conversation_cleared", "message_added"]
    retracted = events[5].payload
    assert (retracted.message_version, retracted.role) == (5, "assistant")  # ASSISTANT, added at version 5
    kept = [json.loads(e.payload.content) for e in events if e.type == "message_added"]
    assert kept == [USER, CALL, OUTPUT, ASSISTANT, USER]  # every item is still in the log, losslessly
    assert led.verify().ok
    # As of a version before the pop, the conversation is whole again.
    assert [m.version for m in led.messages("audit", version=5)] == [2, 3, 4, 5]


# -- persistence ----------------------------------------------------------------------------------


def test_persists_across_a_reopened_ledger(ledger_path: str) -> None:
    path = ledger_path
    with Ledger(path) as first:
        session = LedgerSession("persist", first)
        run(session.add_items(ITEMS))
        run(session.pop_item())
        digest = first.digest()
    owned = LedgerSession("persist", path)  # opens (and owns) its own Ledger
    try:
        assert run(owned.get_items()) == ITEMS[:-1]
        assert run(owned.pop_item()) == ITEMS[-2]
        assert owned.ledger.verify(digest).ok
    finally:
        owned.close()
    with Ledger(path) as third:
        assert run(LedgerSession("persist", third).get_items()) == ITEMS[:-2]


# -- writes are all or nothing ---------------------------------------------------------------------


def test_a_bad_item_writes_nothing(led: Ledger) -> None:
    session = LedgerSession("bad", led)
    for bad in ({"role": "user", "content": {1, 2}}, {"x": float("nan")}, "not a dict", {"t": "\ud800"}):
        with pytest.raises((TypeError, ValueError), match="session item 1"):
            run(session.add_items([USER, bad]))  # type: ignore[list-item]
    assert led.last_position == 0


def test_an_item_over_the_limit_rolls_back_the_whole_call(ledger_path: str) -> None:
    with Ledger(ledger_path, limits=Limits(max_content_bytes=200)) as small:
        session = LedgerSession("big", small)
        with pytest.raises(LimitExceeded):
            run(session.add_items([USER, {"role": "user", "content": "x" * 500}]))
        assert small.last_position == 0  # not even the session was created
        run(session.add_items([USER]))
        with pytest.raises(LimitExceeded):
            run(session.add_items([USER, {"role": "user", "content": "x" * 500}]))
        assert run(session.get_items()) == [USER]


def test_a_closed_ledger_session_reads_but_refuses_writes(led: Ledger) -> None:
    session = LedgerSession("done", led)
    run(session.add_items([USER]))
    led.complete_session("done")
    assert run(session.get_items()) == [USER]
    with pytest.raises(SessionClosed):
        run(session.add_items([ASSISTANT]))
    with pytest.raises(SessionClosed):
        run(session.add_items([]))  # nothing to add is refused like everything else
    with pytest.raises(SessionClosed):
        run(session.pop_item())
    run(LedgerSession("not-yet", led).add_items([]))  # a session not created yet: nothing to refuse, nothing made
    with pytest.raises(SessionNotFound):
        led.get_session("not-yet")


# -- asyncio --------------------------------------------------------------------------------------


class ThreadRecordingLedger(Ledger):
    """Records the thread each ledger call runs in."""

    threads: set[int]

    def add_message(self, *args: Any, **kwargs: Any) -> int:
        self.threads.add(threading.get_ident())
        return super().add_message(*args, **kwargs)

    def get_session(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.add(threading.get_ident())
        return super().get_session(*args, **kwargs)


def test_ledger_calls_run_off_the_event_loop_and_concurrent_calls_keep_their_items_together(ledger_path: str) -> None:
    with ThreadRecordingLedger(ledger_path) as led:
        led.threads = set()
        session = LedgerSession("conc", led)

        async def main() -> tuple[int, list[Any]]:
            loop_thread = threading.get_ident()
            batches = [[{"role": "user", "content": f"call {c} item {i}"} for i in range(3)] for c in range(30)]
            await asyncio.gather(*(session.add_items(b) for b in batches), *(session.get_items(2) for _ in range(10)))
            return loop_thread, await session.get_items()

        loop_thread, got = run(main())
        assert loop_thread not in led.threads and led.threads
        assert len(got) == 90
        for start in range(0, 90, 3):  # each add_items call is one transaction: its items stay adjacent
            calls = {item["content"].split(" item ")[0] for item in got[start : start + 3]}
            assert len(calls) == 1
            assert [item["content"][-1] for item in got[start : start + 3]] == ["0", "1", "2"]


def test_a_cancelled_write_completes_before_the_cancellation_surfaces(led: Ledger) -> None:
    session = LedgerSession("cancel", led)

    async def main() -> list[Any]:
        task = asyncio.ensure_future(session.add_items([USER, ASSISTANT]))
        await asyncio.sleep(0)  # the write is now under way in its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await session.get_items()

    assert run(main()) == [USER, ASSISTANT]


# -- the SDK's Runner, driven by the SDK's own scripted test model ---------------------------------


@function_tool
def get_weather(city: str) -> str:
    """The weather for a city."""
    return f"sunny in {city}"


def _agent(model: ScriptedModel) -> Agent[Any]:
    return Agent(name="weather", instructions="Answer briefly.", model=model, tools=[get_weather])


def test_runner_uses_the_session_across_turns(ledger_path: str) -> None:
    path = ledger_path
    model = ScriptedModel([
        [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
        [assistant_message("It is sunny in Paris.")],
        [assistant_message("You asked about Paris.")],
    ])
    with Ledger(path) as led:
        session = LedgerSession("runner", led)
        first = run(Runner.run(_agent(model), "Weather in Paris?", session=session, run_config=NO_TRACING))
        assert first.final_output == "It is sunny in Paris."
    with Ledger(path) as led:  # the next turn, in a new process as far as the ledger knows
        session = LedgerSession("runner", led)
        second = run(Runner.run(_agent(model), "What did I ask?", session=session, run_config=NO_TRACING))
        assert second.final_output == "You asked about Paris."
        model.assert_complete()
        # The model saw the first turn's history, read back from the ledger, then the new input.
        sent = model.last_call.input
        assert [i.get("type", "message") for i in sent] == ["message", "function_call", "function_call_output",
                                                            "message", "message"]
        assert sent[0]["content"] == "Weather in Paris?" and sent[-1]["content"] == "What did I ask?"
        stored = run(session.get_items())
        assert stored[:4] == sent[:4] and stored[4] == sent[4]
        assert len(stored) == 6 and stored[-1]["content"][0]["text"] == "You asked about Paris."
        messages = led.messages("runner")
        assert [(m.role, m.tool_name, m.invocation_id) for m in messages] == [
            ("user", None, None), ("tool", "get_weather", "call_1"), ("tool", "get_weather", "call_1"),
            ("assistant", None, None), ("user", None, None), ("assistant", None, None)]
        assert led.search_messages("sunny", session_id="runner")
        assert led.get_session("runner").metadata["integration"] == INTEGRATION


def test_runner_honours_the_session_limit(led: Ledger) -> None:
    session = LedgerSession("limited", led, session_settings=SessionSettings(limit=2))
    run(session.add_items(items(6)))
    model = ScriptedModel([[assistant_message("ok")]])
    run(Runner.run(_agent(model), "next", session=session, run_config=NO_TRACING))
    sent = model.last_call.input
    assert [i["content"] for i in sent] == ["item 4", "item 5", "next"]
    assert len(led.messages("limited")) == 8


# -- differential: the SDK's reference SQLiteSession answers the same ------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.sampled_from(ITEMS), max_size=4)),
        st.tuples(st.just("get"), st.one_of(st.none(), st.integers(-2, 8))),
        st.tuples(st.just("pop"), st.none()),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_answers_like_the_sdks_sqlite_session(new_ledger_path: Callable[[], str], ops: list[tuple[str, Any]]) -> None:
    async def apply(session: Any) -> list[Any]:
        answers: list[Any] = []
        for op, arg in ops:
            if op == "add":
                answers.append(await session.add_items(copy.deepcopy(arg)))
            elif op == "get":
                answers.append(await session.get_items(arg))
            elif op == "pop":
                answers.append(await session.pop_item())
            else:
                answers.append(await session.clear_session())
        answers.append(await session.get_items())
        return answers

    reference = SQLiteSession("diff")
    try:
        expected = run(apply(reference))
    finally:
        reference.close()
    with Ledger(new_ledger_path()) as led:  # a fresh ledger per example
        assert run(apply(LedgerSession("diff", led))) == expected
        assert led.verify().ok


def test_tags_are_checked_like_any_create(led: Ledger) -> None:
    session = LedgerSession("tagged", led, tags="support")
    with pytest.raises(InvalidInput):
        run(session.add_items([{"role": "user", "content": "hi"}]))


def test_names_over_the_ledgers_limit_stay_in_the_item(ledger_path: str) -> None:
    with Ledger(ledger_path, limits=Limits(max_name_bytes=16)) as small:
        session = LedgerSession("named", small)
        item = {"type": "function_call", "call_id": "c1", "name": "a_very_long_tool_name_indeed", "arguments": "{}"}
        run(session.add_items([item]))
        assert run(session.get_items()) == [item]
        assert small.messages("named")[0].tool_name == "function"  # the item type stands in for the long name
