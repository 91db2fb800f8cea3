"""The LangGraph checkpointer: bytes on disk, ``put`` and ``get_tuple`` latency as a conversation grows,
against ``langgraph-checkpoint-sqlite``'s ``SqliteSaver`` in the same run.

What it measures: one real compiled graph (``StateGraph(MessagesState)``, one node that appends one
``AIMessage`` of ~250 characters to the ``messages`` channel at every step and loops back to itself),
streamed with ``durability="sync"`` on two checkpointers side by side: ``LedgerSaver`` on a ledger file
(``durability="normal"``: WAL, ``synchronous=NORMAL``) and ``SqliteSaver`` on a SQLite file (its WAL,
with ``synchronous=NORMAL`` too, so both commit alike). Both graphs advance in lockstep, one step each
in turn, so a noisy neighbour slows both alike. After 100, 1,000 and 5,000 steps (``--quick``: 20 and 50):

* bytes on disk: the file plus its WAL, after a WAL checkpoint;
* ``put``: the median time of the saver's ``put`` over the last 20 steps before the mark (each timed
  inside the saver, as the graph calls it; it includes serializing the state, which LangGraph hands over
  whole at every step);
* ``get_tuple``: the latest checkpoint read by a saver opened afresh (nothing cached from the run),
  median of several, the two savers alternating; and the rows the ledger read for it.

LangGraph's own savers store a channel's whole value at each new version, so SqliteSaver's bytes grow with
the square of the steps; the ledger stores each version's new messages only (``langgraph_values``). The
goals printed, never asserted: at 1,000 steps at most 1/10 of SqliteSaver's bytes; the rows a
``get_tuple`` reads do not grow with the steps (its time still grows with the state it returns: 5,000
messages take any saver the same time to deserialize, which the per-message column shows).
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._harness import Options, ScratchDir, checkpoint, db_bytes, goal_cell, markdown_table, summarize

NAME = "langgraph"
TITLE = "LangGraph checkpointer: LedgerSaver vs SqliteSaver as a conversation grows"

FULL_MARKS = (100, 1000, 5000)
QUICK_MARKS = (20, 50)
PUT_WINDOW = 20
PEER_NOT_INSTALLED = "langgraph-checkpoint-sqlite not installed"
THREAD = {"configurable": {"thread_id": "bench"}, "recursion_limit": 10**7}


def _graph(saver: Any) -> Any:
    from langchain_core.messages import AIMessage
    from langgraph.graph import START, MessagesState, StateGraph

    text = "The deploy failed because the migration locked the users table; retry it off-peak. " * 3

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        n = len(state["messages"])
        return {"messages": [AIMessage(content=f"{n}: {text}", id=f"m{n}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "agent")  # forever: the benchmark stops reading the stream
    return builder.compile(checkpointer=saver)


def _timed_saver(cls: type, puts: list[float]) -> type:
    """A subclass of a saver class that records how long each ``put`` takes."""

    class Timed(cls):  # type: ignore[misc, valid-type]
        def put(self, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return super().put(*args, **kwargs)
            finally:
                puts.append(time.perf_counter() - start)

    return Timed


@dataclass
class _Side:
    """One checkpointer under test: how to open it, its path, its graph's stream and its put times."""

    name: str
    path: str
    open: Callable[[], Any]
    close: Callable[[Any], None]
    saver: Any = None
    steps: Iterator[Any] | None = None
    puts: list[float] | None = None


def _ledger_side(scratch: ScratchDir) -> _Side:
    from ledger.integrations.langgraph import LedgerSaver

    path = scratch.new_db("ledger")
    puts: list[float] = []
    timed = _timed_saver(LedgerSaver, puts)
    return _Side("LedgerSaver", path, lambda: timed.from_path(path), lambda s: s.close(), puts=puts)


def _peer_installed() -> bool:
    try:
        import langgraph.checkpoint.sqlite  # noqa: F401
    except ImportError:  # the bench extra is not installed (make test installs only the test extras)
        return False
    return True


def _sqlite_side(scratch: ScratchDir) -> _Side:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = scratch.new_db("sqlitesaver")
    puts: list[float] = []
    timed = _timed_saver(SqliteSaver, puts)

    def opened() -> Any:
        conn = sqlite3.connect(path, check_same_thread=False)
        saver = timed(conn)
        saver.setup()
        conn.execute("PRAGMA synchronous=NORMAL")
        return saver

    return _Side("SqliteSaver", path, opened, lambda s: s.conn.close(), puts=puts)


def _rows_of_a_read(path: str) -> int:
    """Records the ledger reads for one ``get_tuple`` of the latest checkpoint, from a saver opened afresh."""
    from ledger.integrations.langgraph import LedgerSaver

    with LedgerSaver.from_path(path) as saver:
        led, real, rows = saver.ledger, saver.ledger.records, [0]

        def counting(*args: Any, **kwargs: Any) -> Any:
            found = real(*args, **kwargs)
            rows[0] += len(found)
            return found

        led.records = counting  # type: ignore[method-assign]  # this one instance, for this one read
        saver.get_tuple(THREAD)
    return rows[0]


def _get_tuple_seconds(side: _Side) -> float:
    saver = side.open()
    try:
        gc.collect()  # as ``_harness.timed`` does: no collection left over from the run lands in the timing
        start = time.perf_counter()
        found = saver.get_tuple(THREAD)
        seconds = time.perf_counter() - start
        assert found is not None
        return seconds
    finally:
        side.close(saver)


def run(options: Options) -> dict[str, Any]:
    """Grow the conversation on both savers in lockstep and measure at each mark."""
    marks = QUICK_MARKS if options.quick else FULL_MARKS
    reads = options.repetitions(9, 3)
    figures: dict[str, float] = {}
    rows: list[list[str]] = []
    with ScratchDir(prefix="ledger-bench-langgraph-") as scratch:
        sides = [_ledger_side(scratch), *([_sqlite_side(scratch)] if _peer_installed() else [])]
        try:
            for side in sides:
                side.saver = side.open()
                side.steps = iter(_graph(side.saver).stream({"messages": []}, THREAD, durability="sync"))
            done = 0
            for mark in marks:
                while done < mark:
                    for side in sides:
                        assert side.steps is not None
                        next(side.steps)
                    done += 1
                found = _measure(sides, mark, reads)
                figures.update(found)
                rows.append(_row(mark, found))
        finally:
            for side in sides:
                with contextlib.suppress(Exception):
                    if side.steps is not None:
                        side.steps.close()  # type: ignore[attr-defined]
                    if side.saver is not None:
                        side.close(side.saver)
    return {"name": NAME, "title": TITLE, "note": _note(marks, figures), "table": _table(rows, marks, figures),
            "figures": figures}


def _measure(sides: list[_Side], mark: int, reads: int) -> dict[str, float]:
    keyed = list(zip(sides, ("ledger", "sqlite")))
    out: dict[str, float] = {}
    for side, key in keyed:
        checkpoint(side.path)
        out[f"{mark}.{key}.bytes"] = db_bytes(side.path)
        assert side.puts is not None
        out[f"{mark}.{key}.put_ms"] = statistics.median(side.puts[-PUT_WINDOW:]) * 1000
    if len(keyed) == 2:
        out[f"{mark}.bytes_ratio"] = out[f"{mark}.ledger.bytes"] / out[f"{mark}.sqlite.bytes"]
    seconds: dict[str, list[float]] = {key: [] for _, key in keyed}
    for rep in range(reads):
        for side, key in keyed[:: 1 if rep % 2 == 0 else -1]:
            seconds[key].append(_get_tuple_seconds(side))
    for key, values in seconds.items():
        out[f"{mark}.{key}.get_tuple_ms"] = summarize(values).median * 1000
        out[f"{mark}.{key}.get_tuple_us_per_message"] = summarize(values).median * 1e6 / mark
    out[f"{mark}.ledger.get_tuple_rows"] = _rows_of_a_read(sides[0].path)
    return out


def _pair(f: dict[str, float], mark: int, figure: str, form: str) -> str:
    ours = format(f[f"{mark}.ledger.{figure}"], form)
    theirs = f.get(f"{mark}.sqlite.{figure}")
    return f"{ours} / {'n/a' if theirs is None else format(theirs, form)}"


def _row(mark: int, f: dict[str, float]) -> list[str]:
    def mb(n: float | None) -> str:
        return PEER_NOT_INSTALLED if n is None else f"{n / 1_048_576:,.2f} MB"

    ratio = f.get(f"{mark}.bytes_ratio")
    return [
        f"{mark:,}",
        mb(f[f"{mark}.ledger.bytes"]), mb(f.get(f"{mark}.sqlite.bytes")), "n/a" if ratio is None else f"{ratio:.3f}",
        _pair(f, mark, "put_ms", ".2f"), _pair(f, mark, "get_tuple_ms", ".2f"),
        _pair(f, mark, "get_tuple_us_per_message", ".1f"), f"{f[f'{mark}.ledger.get_tuple_rows']:.0f}",
    ]


def _table(rows: list[list[str]], marks: tuple[int, ...], f: dict[str, float]) -> str:
    headers = ["steps", "LedgerSaver bytes", "SqliteSaver bytes", "bytes ratio", "put ms (ours / theirs)",
               "get_tuple ms (ours / theirs)", "get_tuple us per message", "rows read"]
    table = markdown_table(headers, rows, "rrrrrrrr")
    at = 1000 if 1000 in marks else marks[-1]
    first, last = marks[0], marks[-1]
    flat = f[f"{last}.ledger.get_tuple_rows"] <= f[f"{first}.ledger.get_tuple_rows"] + 16
    ratio = f.get(f"{at}.bytes_ratio")
    goals = [
        f"bytes at {at:,} steps <= 1/10 of SqliteSaver's: {PEER_NOT_INSTALLED}" if ratio is None
        else goal_cell(ratio <= 0.1, f"bytes at {at:,} steps <= 1/10 of SqliteSaver's: {ratio:.3f}"),
        goal_cell(flat, f"get_tuple reads as many rows at {last:,} steps as at {first:,}:"
                  f" {f[f'{last}.ledger.get_tuple_rows']:.0f} vs {f[f'{first}.ledger.get_tuple_rows']:.0f}"),
    ]
    return table + "\n\n" + "\n".join(f"- {g}" for g in goals)


def _note(marks: tuple[int, ...], f: dict[str, float]) -> str:
    first, last = marks[0], marks[-1]
    ours = f"the ledger's {f[f'{last}.ledger.bytes'] / f[f'{first}.ledger.bytes']:.0f}x"
    if f"{last}.sqlite.bytes" not in f:
        return f"{last:,} steps; get_tuple from a saver opened afresh; {PEER_NOT_INSTALLED}; from {first:,} steps {ours}"
    theirs = f"SqliteSaver's file grew {f[f'{last}.sqlite.bytes'] / f[f'{first}.sqlite.bytes']:.0f}x"
    return (f"One graph per saver, {last:,} steps in lockstep; get_tuple from a saver opened afresh. From"
            f" {first:,} steps {theirs}, {ours}")
