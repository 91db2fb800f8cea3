"""The LangGraph checkpointer (ledger.integrations.langgraph) against the real ``langgraph`` packages.

Conformance is the official suite, ``langgraph-checkpoint-conformance``: the saver is registered with its
``checkpointer_test`` decorator and ``validate()`` runs every capability it detects (all eight), on SQLite
and PostgreSQL. Then real compiled graphs (a messages channel, a ``DeltaChannel``, an interrupt, a subgraph)
run against the saver and against LangGraph's ``InMemorySaver`` side by side, are reopened and resumed;
a thread is exported, imported, verified and purged; and storage is shown to grow linearly.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langgraph.channels.delta import DeltaChannel  # noqa: E402
from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402
from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.graph.message import _messages_delta_reducer  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402
from typing_extensions import TypedDict  # noqa: E402

from ledger import Ledger, SessionPurged, StorageError  # noqa: E402
from ledger.integrations.langgraph import CHECKPOINT, INTEGRATION, LedgerSaver  # noqa: E402
from tests.conftest import raw_sql  # noqa: E402

# -- the official conformance suite ----------------------------------------------------------------------------


def test_the_conformance_suite_passes_every_capability(new_ledger_path: Callable[[], str], backend: str) -> None:
    @checkpointer_test(name=f"LedgerSaver ({backend})")
    async def ledger_saver() -> Any:
        saver = LedgerSaver.from_path(new_ledger_path())  # a fresh ledger for each capability's suite
        try:
            yield saver
        finally:
            saver.close()

    report = asyncio.run(validate(ledger_saver))
    results = report.results
    assert set(results) == {c.value for c in ALL_CAPABILITIES}
    failures = {name: r.failures for name, r in results.items() if r.failures}
    assert failures == {}
    assert all(r.detected and r.passed and r.tests_skipped == 0 for r in results.values()), report.to_dict()
    assert report.conformance_level() == "FULL"
    assert sum(r.tests_passed for r in results.values()) == 81


# -- real graphs, side by side with InMemorySaver ---------------------------------------------------------------


class DeltaState(TypedDict):
    messages: Annotated[list, DeltaChannel(_messages_delta_reducer, snapshot_frequency=4)]


def _agent(state: dict[str, Any]) -> dict[str, Any]:
    n = len(state["messages"])
    return {"messages": [AIMessage(content=f"reply {n}: " + "words " * 20, id=f"ai-{n}")]}


def _graph(state: type, saver: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(state)
    builder.add_node("agent", _agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=saver)


def _turn(graph: Any, thread: str, i: int) -> Any:
    return graph.invoke({"messages": [HumanMessage(content=f"question {i}", id=f"h-{i}")]},
                        {"configurable": {"thread_id": thread}})


def _history(graph: Any, thread: str) -> list[tuple[Any, ...]]:
    return [(s.values, s.next, s.metadata["step"], s.metadata["source"])
            for s in graph.get_state_history({"configurable": {"thread_id": thread}})]


@pytest.mark.parametrize("state", [MessagesState, DeltaState], ids=["messages", "delta-channel"])
def test_a_graph_runs_reopens_and_resumes_as_on_the_reference_saver(
    new_ledger_path: Callable[[], str], state: type
) -> None:
    path = new_ledger_path()
    reference = _graph(state, InMemorySaver())
    with LedgerSaver.from_path(path) as saver:
        graph = _graph(state, saver)
        for i in range(9):
            assert _turn(graph, "chat", i) == _turn(reference, "chat", i)
    with LedgerSaver.from_path(path) as saver:  # reopened: everything is read back from the ledger
        graph = _graph(state, saver)
        config = {"configurable": {"thread_id": "chat"}}
        assert graph.get_state(config).values == reference.get_state(config).values
        assert _history(graph, "chat") == _history(reference, "chat")
        assert _turn(graph, "chat", 9) == _turn(reference, "chat", 9)  # resumed
        assert len(graph.get_state(config).values["messages"]) == 20
        session = saver.ledger.get_session(saver.session_id("chat"))
        assert session.metadata == {"integration": INTEGRATION, "thread_id": "chat"}
        assert saver.ledger.verify(projections=True).ok


def test_the_delta_channel_history_is_the_reference_savers(tmp_path: Path) -> None:
    reference_saver = InMemorySaver()
    reference = _graph(DeltaState, reference_saver)
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        graph = _graph(DeltaState, saver)
        for i in range(7):
            _turn(graph, "d", i)
            _turn(reference, "d", i)
        config = {"configurable": {"thread_id": "d"}}
        mine = [s.config for s in graph.get_state_history(config)]
        theirs = [s.config for s in reference.get_state_history(config)]
        assert len(mine) == len(theirs) == 21

        def history(found: BaseCheckpointSaver[Any], at: Any) -> Any:
            entry = found.get_delta_channel_history(config=at, channels=["messages", "missing"])
            return {ch: ([(w[1], w[2]) for w in h["writes"]], h.get("seed")) for ch, h in entry.items()}

        for at_mine, at_theirs in zip(mine, theirs):
            assert history(saver, at_mine) == history(reference_saver, at_theirs)


def test_an_interrupted_graph_resumes_after_the_ledger_is_reopened(tmp_path: Path) -> None:
    def ask(state: dict[str, Any]) -> dict[str, Any]:
        answer = interrupt({"question": "approve?"})
        return {"messages": [AIMessage(content=f"approved: {answer}", id="approval")]}

    def build(saver: BaseCheckpointSaver[Any]) -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", END)
        return builder.compile(checkpointer=saver)

    config = {"configurable": {"thread_id": "review"}}
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        out = build(saver).invoke({"messages": [HumanMessage(content="deploy?", id="q")]}, config)
        assert out["__interrupt__"][0].value == {"question": "approve?"}
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        graph = build(saver)
        assert graph.get_state(config).next == ("ask",)
        out = graph.invoke(Command(resume="yes"), config)
        assert out["messages"][-1].content == "approved: yes"


def test_subgraph_checkpoints_live_in_their_namespaces(tmp_path: Path) -> None:
    inner = StateGraph(MessagesState)
    inner.add_node("agent", _agent)
    inner.add_edge(START, "agent")
    inner.add_edge("agent", END)

    def outer(saver: BaseCheckpointSaver[Any]) -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("inner", inner.compile(checkpointer=True))
        builder.add_edge(START, "inner")
        builder.add_edge("inner", END)
        return builder.compile(checkpointer=saver)

    reference = outer(InMemorySaver())
    config = {"configurable": {"thread_id": "nested"}}
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        graph = outer(saver)
        for i in range(3):
            assert _turn(graph, "nested", i) == _turn(reference, "nested", i)
        namespaces = {r.value["ns"] for r in saver.ledger.records(saver.session_id("nested"), CHECKPOINT)}
        assert "" in namespaces and any(ns.startswith("inner") for ns in namespaces)
        mine = graph.get_state(config, subgraphs=True)
        theirs = reference.get_state(config, subgraphs=True)
        assert mine.values == theirs.values


def test_from_conn_string_opens_and_closes_its_own_ledger(tmp_path: Path) -> None:
    with LedgerSaver.from_conn_string(tmp_path / "l.db") as saver:
        _turn(_graph(MessagesState, saver), "t", 0)
        led = saver.ledger
    with pytest.raises(StorageError):  # the saver owned it, and closed it
        led.last_position
    shared = Ledger(tmp_path / "l.db")
    with LedgerSaver(shared) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is not None
    assert shared.records(LedgerSaver.session_id("t"), CHECKPOINT)  # a shared ledger stays open
    shared.close()


def test_the_async_methods_run_a_graph(tmp_path: Path) -> None:
    async def main() -> list[str]:
        with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
            graph = _graph(MessagesState, saver)
            config = {"configurable": {"thread_id": "async"}}
            for i in range(3):
                await graph.ainvoke({"messages": [HumanMessage(content=f"q{i}", id=f"q{i}")]}, config)
            state = await graph.aget_state(config)
            assert len([s async for s in graph.aget_state_history(config)]) == 9
            return [m.content.split(":")[0] for m in state.values["messages"]]

    assert asyncio.run(main()) == ["q0", "reply 1", "q1", "reply 3", "q2", "reply 5"]


def test_the_graphs_messages_join_the_sessions_conversation_once_each(tmp_path: Path) -> None:
    def model(state: dict[str, Any]) -> dict[str, Any]:
        n = len(state["messages"])
        return {"messages": [AIMessage(content=[{"type": "text", "text": f"answer {n}"}], id=f"ai-{n}",
                                       response_metadata={"model_name": "gpt-test"},
                                       usage_metadata={"input_tokens": 100, "output_tokens": 7, "total_tokens": 107,
                                                       "input_token_details": {"cache_read": 60}})]}

    inner = StateGraph(MessagesState)
    inner.add_node("model", model)
    inner.add_edge(START, "model")
    inner.add_edge("model", END)

    def build(saver: BaseCheckpointSaver[Any]) -> Any:  # the subgraph hands its whole state back: ids repeat
        builder = StateGraph(MessagesState)
        builder.add_node("inner", inner.compile())
        builder.add_edge(START, "inner")
        builder.add_edge("inner", END)
        return builder.compile(checkpointer=saver)

    path = str(tmp_path / "l.db")
    with LedgerSaver.from_path(path) as saver:
        _turn(build(saver), "chat", 0)
    with LedgerSaver.from_path(path) as saver:
        _turn(build(saver), "chat", 1)
        sid = saver.session_id("chat")
        led = saver.ledger
        assert [(m.role, m.content, m.model) for m in led.messages(sid)] == [
            ("user", "question 0", None), ("assistant", "answer 1", "gpt-test"),
            ("user", "question 1", None), ("assistant", "answer 3", "gpt-test")]
        assert led.statistics(sid).tokens_in == 200 and led.statistics(sid).tokens_cache_read == 120
        (by_model,) = [row for row in led.usage(by="model") if row["model"] == "gpt-test"]
        assert by_model["tokens_out"] == 14
        assert [hit.session_id for hit in led.search_messages("answer")] == [sid, sid]
    with LedgerSaver.from_path(path, messages_channel=None) as quiet:
        _turn(build(quiet), "other", 0)
        assert quiet.ledger.messages(quiet.session_id("other")) == []


@pytest.mark.parametrize("thread_id", ["plain-1", "with space/and slash", "ü" * 300, "x" * 126, "lg.looks-hashed"])
def test_any_thread_id_is_held_by_a_valid_session_and_can_be_found_again(tmp_path: Path, thread_id: str) -> None:
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        _turn(_graph(MessagesState, saver), thread_id, 0)
        sid = saver.session_id(thread_id)
        assert len(sid) <= 128 and saver.thread_id(sid) == thread_id
        assert saver.ledger.get_metadata(sid, "thread_id") == thread_id
        (listed,) = [t for t in saver.list(None) if t.metadata["step"] == 1]
        assert listed.config["configurable"]["thread_id"] == thread_id


# -- the ledger's guarantees for a thread ------------------------------------------------------------------------


def test_a_thread_is_exported_imported_verified_and_purged(new_ledger_path: Callable[[], str], tmp_path: Path) -> None:
    source, target = new_ledger_path(), new_ledger_path()
    config = {"configurable": {"thread_id": "private"}}
    with LedgerSaver.from_path(source) as saver:
        graph = _graph(MessagesState, saver)
        graph.invoke({"messages": [HumanMessage(content="my card is 4111-1111", id="secret")]}, config)
        _turn(graph, "private", 1)
        _turn(graph, "other", 1)
        state = graph.get_state(config).values
        digest = saver.ledger.digest()
        saver.ledger.export(tmp_path / "export.jsonl")
    with LedgerSaver.from_path(target) as copy:
        copy.ledger.import_events(tmp_path / "export.jsonl")
        assert copy.ledger.digest() == digest
        assert copy.ledger.verify(projections=True).ok
        assert _graph(MessagesState, copy).get_state(config).values == state
        copy.purge_thread("private", reason="privacy request", by="dpo")
        assert copy.get_tuple(config) is None and list(copy.list(config)) == []
        assert copy.get_tuple({"configurable": {"thread_id": "other"}}) is not None
        assert copy.ledger.verify(projections=True).ok
        with pytest.raises(SessionPurged):
            _turn(_graph(MessagesState, copy), "private", 2)
        copy.delete_thread("private")  # nothing left to delete: not an error
        assert [t.config["configurable"]["thread_id"] for t in copy.list(None)] == ["other"] * 3
        with raw_sql(copy.ledger) as raw:
            data = " ".join(row[0] for row in raw.execute("SELECT data FROM events").fetchall())
    assert "4111" not in data and "NDExMS0xMTEx" not in data  # neither as JSON nor inside a base64 blob


def test_deleting_a_thread_keeps_the_audit_trail_and_the_thread_can_start_again(tmp_path: Path) -> None:
    config = {"configurable": {"thread_id": "t"}}
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        graph = _graph(MessagesState, saver)
        _turn(graph, "t", 0)
        before = saver.ledger.last_position
        latest = saver.get_tuple(config)
        assert latest is not None
        saver.delete_thread("t")
        assert saver.get_tuple(config) is None
        sid = saver.session_id("t")
        assert len(saver.ledger.records(sid, CHECKPOINT, position=before)) == 3  # as of before the delete
        assert [e.type for e in saver.ledger.history(sid)][-2:] == ["records_removed", "conversation_cleared"]
        out = _turn(graph, "t", 5)
        assert [m.id for m in out["messages"]] == ["h-5", "ai-1"]  # a fresh start on the same thread


def test_checkpoints_are_read_as_of_an_earlier_moment(tmp_path: Path) -> None:
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        graph = _graph(MessagesState, saver)
        _turn(graph, "t", 0)
        noon = datetime.now(timezone.utc)
        _turn(graph, "t", 1)
        sid = saver.session_id("t")
        then = saver.ledger.records(sid, CHECKPOINT, at=noon)
        assert [r.value["metadata"]["step"] for r in then] == [-1, 0, 1]
        assert len(saver.ledger.records(sid, CHECKPOINT)) == 6


def test_a_put_rolled_back_leaves_nothing_the_next_one_builds_on(tmp_path: Path) -> None:
    from ledger import LimitExceeded, Limits

    reference = _graph(MessagesState, InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    with LedgerSaver(Ledger(tmp_path / "l.db", limits=Limits(max_record_bytes=100_000))) as saver:
        graph = _graph(MessagesState, saver)
        for i in range(3):
            _turn(graph, "t", i)
            _turn(reference, "t", i)
        latest = saver.get_tuple(config)
        assert latest is not None
        grown = [*latest.checkpoint["channel_values"]["messages"], AIMessage(content="lost", id="lost")]
        checkpoint = {**latest.checkpoint, "id": "1f0fffff-ffff-6fff-8fff-ffffffffffff",
                      "channel_values": {"messages": grown},
                      "channel_versions": {**latest.checkpoint["channel_versions"], "messages": saver.get_next_version(
                          latest.checkpoint["channel_versions"]["messages"], None)}}
        with pytest.raises(LimitExceeded):  # its metadata is too big: the whole put rolls back
            saver.put(latest.config, checkpoint, {"source": "update", "step": 99, "big": "x" * 200_000},  # type: ignore[arg-type]
                      {"messages": checkpoint["channel_versions"]["messages"]})
        for i in range(3, 5):
            _turn(graph, "t", i)
            _turn(reference, "t", i)
        saver.ledger.close()
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        assert _graph(MessagesState, saver).get_state(config).values == reference.get_state(config).values


def test_a_checkpoint_json_cannot_hold_is_kept_serialized(tmp_path: Path) -> None:
    with LedgerSaver.from_path(str(tmp_path / "l.db")) as saver:
        from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config

        when = datetime(2026, 1, 2, tzinfo=timezone.utc)
        stored = saver.put(generate_config("t"), generate_checkpoint(), {"source": "loop", "step": 1, "when": when}, {})
        found = saver.get_tuple(stored)
        assert found is not None and found.metadata["when"] == when
        assert [t.metadata["step"] for t in saver.list(None, filter={"when": when})] == [1]


# -- storage grows linearly ---------------------------------------------------------------------------------------


class Looping(TypedDict):
    messages: Annotated[list, lambda left, right: left + right]
    steps: int


def _looping(saver: BaseCheckpointSaver[Any]) -> Any:
    def step(state: dict[str, Any]) -> dict[str, Any]:
        n = len(state["messages"])
        return {"messages": [AIMessage(content=f"step {n}: " + "lorem ipsum " * 8, id=f"m{n}")], "steps": n + 1}

    builder = StateGraph(Looping)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", "step")  # forever: the caller stops reading the stream
    return builder.compile(checkpointer=saver)


def _grow(graph: Any, steps: int) -> None:
    for _ in graph.stream({"messages": [], "steps": 0}, {"configurable": {"thread_id": "grow"}, "recursion_limit": 10**6},
                          durability="sync"):
        steps -= 1
        if steps == 0:
            return


def _payload_bytes(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT coalesce(sum(length(data)), 0) FROM events").fetchone()[0])


@contextlib.contextmanager
def _counting_rows(led: Ledger) -> Iterator[list[int]]:
    """Counts the records every ``records`` call of this one ledger returns (an instance attribute only)."""
    calls: list[int] = []
    real = led.records

    def records(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        calls.append(len(found))
        return found

    led.records = records  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        del led.records


def test_storage_grows_linearly_and_a_read_stays_flat(tmp_path: Path) -> None:
    sizes, rows = {}, {}
    for steps in (150, 300, 600):
        path = tmp_path / f"grow-{steps}.db"
        with LedgerSaver.from_path(str(path)) as saver:
            _grow(_looping(saver), steps)
        with LedgerSaver.from_path(str(path)) as saver:  # reopened: nothing cached, the value is read back
            with _counting_rows(saver.ledger) as calls:
                found = saver.get_tuple({"configurable": {"thread_id": "grow"}})
            assert found is not None and len(found.checkpoint["channel_values"]["messages"]) == steps
            rows[steps] = sum(calls)
        sizes[steps] = _payload_bytes(path)
    # Linear: twice the steps, about twice the bytes (a whole copy per step would make it four times).
    assert sizes[300] / sizes[150] < 2.3 and sizes[600] / sizes[300] < 2.3, sizes
    # Flat: the rows a read fetches grow with the log of the steps, not with the steps.
    assert rows[600] <= rows[150] + 20, rows


def test_a_delta_channel_snapshot_stores_only_what_is_new(tmp_path: Path) -> None:
    path = tmp_path / "delta.db"
    with LedgerSaver.from_path(str(path)) as saver:
        graph = _graph(DeltaState, saver)
        for i in range(40):
            _turn(graph, "d", i)
        sid = saver.session_id("d")
        lineages = {r.group for r in saver.ledger.records(sid, "langgraph.value", prefix="/messages/") if r.group}
        assert len(lineages) == 1  # every snapshot extended the one before
    with LedgerSaver.from_path(str(path)) as saver:
        assert len(_graph(DeltaState, saver).get_state({"configurable": {"thread_id": "d"}}).values["messages"]) == 80
    assert _payload_bytes(path) < 1_000_000
