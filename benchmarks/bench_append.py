"""Append throughput of ``Ledger`` commands, as a ratio of raw ``sqlite3`` inserts into the same table.

What it measures: how many events per second ``Ledger(path, durability=...)``
appends through its public commands (``add_message``, ``set_metadata``,
``set_data``, ``link_invocation``), each one validated, folded into the
session state, hash-chained, projected inline into the built-in read tables
(sessions, messages with their FTS5 index, invocations, metadata, data: the
projections are always on) and committed, with the default snapshot policy.
So the "single" row is also the cost of inline projections on the
single-event append rate.

Baseline, the "physical limit": a plain ``sqlite3`` connection inserting the
same number of rows into an equivalent ``events`` table (same columns,
``INTEGER PRIMARY KEY`` position, ``UNIQUE`` event id, ``UNIQUE (session_id,
version)``), in a file in a temporary directory, WAL mode and the same
``synchronous`` setting, with every value precomputed: the payloads are the
same events already encoded to JSON, the ids, times and hashes ready-made.
So the ratio is the share of SQLite's own insert speed the ledger keeps.
A second baseline is the least an event log can store: a minimal row
(``position``, ``session_id``, ``version``, ``type``, ``data``,
``recorded_at``; ``UNIQUE (session_id, version)``), the same timed rows
without the event id, schema and hash. Each repetition runs the three
trials (both baselines and the ledger) back to back, the order rotating.

Two pairs, each for ``durability="normal"`` (``synchronous=NORMAL``) and
``"full"`` (``synchronous=FULL``):

* single: one ledger command = one commit, against ``BEGIN IMMEDIATE; INSERT;
  COMMIT`` per row (``isolation_level=None``);
* batch: ``with ledger.batch()`` around each run of 100 commands, against
  ``executemany`` of the same 100 rows in one ``BEGIN IMMEDIATE ... COMMIT``.
  The baseline commits as often as the ledger does (once per 100 rows, not
  once for the whole run), so at FULL both pay the same number of fsyncs.

Workload (fixed seed): 20 sessions created before timing (not timed), then
N events on randomly chosen sessions: ~70% ``add_message`` (200-byte
content, role alternating user/assistant per session, a model and token
counts), ~10% each ``set_metadata``, ``set_data`` (a small JSON object) and
``link_invocation`` (tool, duration, tokens, cost). N is 2000 for the
single-commit pair and 10000 for the batched pair (whose raw side takes only
a few milliseconds for 2000 rows, too short to time steadily); the smaller
workload is the first 2000 events of the larger. ``--quick`` uses 200 events
and 2 repetitions and only checks that every figure was produced.

Every trial starts from a new file; each repetition times the baselines and
the ledger back to back (the order rotating) and the figure is the
ratio of each pair: ledger events/s / raw events/s, median of the repetitions,
with the min..max spread (quartiles in the JSON). Targets are goals printed
next to the ratio, never asserted: single >= 0.5x at NORMAL and >= 0.8x at
FULL, batched >= 0.35x.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger import Ledger
from ledger import events as ev
from ledger.ids import new_id
from ledger.times import format_time

from ._harness import (
    Options,
    ScratchDir,
    Summary,
    fmt_rate,
    fmt_ratio,
    goal_cell,
    markdown_table,
    rate,
    rotated,
    summarize,
    timed,
)

NAME = "append"
TITLE = "Append throughput: Ledger commands vs raw sqlite3 inserts"


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    events: int  # timed events per single-commit trial
    batch_events: int  # timed events per batched trial (batches are ~5x faster: longer runs, steadier timings)
    sessions: int  # sessions created (untimed) before the timed events
    batch: int  # commands per ledger.batch() / rows per executemany transaction
    repetitions: int
    seed: int = 20240601


FULL = Params(events=2000, batch_events=10000, sessions=20, batch=100, repetitions=7)
QUICK = Params(events=200, batch_events=200, sessions=20, batch=100, repetitions=2)

DURABILITIES = ("normal", "full")
SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}
MODES = ("single", "batch")

# Goals for the ratio (ledger events/s over raw events/s). Printed, never asserted.
TARGETS: dict[tuple[str, str], float] = {
    ("normal", "single"): 0.5,
    ("full", "single"): 0.8,
    ("normal", "batch"): 0.35,
    ("full", "batch"): 0.35,
}

RAW_SCHEMA = """CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    data TEXT NOT NULL,
    hash BLOB NOT NULL,
    UNIQUE (session_id, version)
)"""
RAW_INSERT = (
    "INSERT INTO events (position, event_id, session_id, version, type, schema, recorded_at, data, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The second baseline: the least an event log can store (no event id, schema or hash, one index).
MINIMAL_SCHEMA = """CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (session_id, version)
)"""
MINIMAL_INSERT = "INSERT INTO events (position, session_id, version, type, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True)
class Baseline:
    """A raw table the ledger is compared with: its schema, its insert, and a workload row in its shape."""

    name: str
    label: str
    schema: str
    insert: str
    shape: Callable[[RawRow], tuple[Any, ...]]


BASELINES = (
    Baseline("minimal", "minimal row (position, session, version, type, data, time)", MINIMAL_SCHEMA, MINIMAL_INSERT,
             lambda r: (r[0], r[2], r[3], r[4], r[7], r[6])),
    Baseline("own", "the ledger's own row (+ event id, schema, hash)", RAW_SCHEMA, RAW_INSERT, lambda r: r),
)

# -- workload -------------------------------------------------------------------

_WORDS = (
    "agent tool call result context token model prompt reply plan step retry search file read write "
    "summary answer question user assistant session ledger event state cache query index table value "
    "error check test build deploy review patch branch commit merge update fetch parse render"
).split()
_MODELS = ("model-small", "model-large", "model-fast")
_TOOLS = ("web_search", "read_file", "write_file", "run_tests", "shell", "sql_query")
_META_KEYS = ("stage", "priority", "owner", "customer", "ticket", "region")
_STATUSES = ("pending", "running", "done", "failed")

Command = tuple[str, tuple[Any, ...], dict[str, Any]]  # Ledger method name, args, kwargs
RawRow = tuple[int, str, str, int, str, int, str, str, bytes]


@dataclass(frozen=True)
class Workload:
    """The same events twice: as Ledger commands, and as ready-to-insert raw rows."""

    creates: tuple[Command, ...]  # untimed setup for the ledger
    setup_rows: tuple[RawRow, ...]  # the same setup for the raw table
    commands: tuple[Command, ...]  # timed ledger commands
    rows: tuple[RawRow, ...]  # timed raw rows, one per command

    def prefix(self, n: int) -> Workload:
        """The first ``n`` timed events (the same sessions): still a valid workload."""
        return Workload(self.creates, self.setup_rows, self.commands[:n], self.rows[:n])

    @property
    def mean_payload(self) -> float:
        """Mean JSON payload size of the timed events, in bytes."""
        return sum(len(r[7]) for r in self.rows) / max(len(self.rows), 1)


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def make_workload(
    events: int, sessions: int, seed: int, mix: tuple[int, int, int, int] = (70, 10, 10, 10)
) -> Workload:
    """Build the fixed-seed workload: ``sessions`` creations, then ``events`` commands, mixed by the
    ``mix`` weights of messages, metadata, data and invocations."""
    rng = random.Random(seed)
    session_ids = [f"bench-session-{i:03d}" for i in range(sessions)]
    versions = dict.fromkeys(session_ids, 0)
    messages = dict.fromkeys(session_ids, 0)
    clock = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
    position = 0

    def row(session_id: str, event: ev.Event) -> RawRow:
        nonlocal position, clock
        position += 1
        versions[session_id] += 1
        clock += timedelta(milliseconds=1)
        data = ev.encode_payload(event).decode()
        return (
            position,
            new_id(),  # ULIDs, sortable like the ones the ledger generates
            session_id,
            versions[session_id],
            event.type,
            event.schema,
            format_time(clock),
            data,
            rng.randbytes(32),
        )

    creates: list[Command] = []
    setup_rows: list[RawRow] = []
    for i, sid in enumerate(session_ids):
        kwargs = {"user_id": f"user-{i % 5}", "purpose": _text(rng, 60)}
        creates.append(("create_session", (sid,), kwargs))
        setup_rows.append(row(sid, ev.Created(**kwargs)))

    commands: list[Command] = []
    rows: list[RawRow] = []
    kinds = rng.choices(("message", "metadata", "data", "invocation"), weights=mix, k=events)
    for n, kind in enumerate(kinds):
        sid = rng.choice(session_ids)
        event: ev.Event
        if kind == "message":
            role = ("user", "assistant")[messages[sid] % 2]
            messages[sid] += 1
            content = _text(rng, 200)
            model = rng.choice(_MODELS)
            tokens_in, tokens_out = rng.randint(10, 4000), rng.randint(10, 1500)
            commands.append(
                ("add_message", (sid, role, content), {"model": model, "tokens": {"input": tokens_in, "output": tokens_out}})
            )
            event = ev.MessageAdded(role=role, content=content, model=model, tokens_in=tokens_in, tokens_out=tokens_out)
        elif kind == "metadata":
            key = rng.choice(_META_KEYS)
            value: Any = rng.choice((rng.randint(0, 100), _text(rng, 20)))
            commands.append(("set_metadata", (sid, key, value), {}))
            event = ev.MetadataSet(values={key: value})
        elif kind == "data":
            key = f"step_{rng.randrange(20)}"
            value = {"status": rng.choice(_STATUSES), "attempt": rng.randint(1, 5), "note": _text(rng, 40)}
            commands.append(("set_data", (sid, key, value), {}))
            event = ev.DataSet(key=key, value=value)
        else:
            inv = f"inv-{n:06d}"
            tool = rng.choice(_TOOLS)
            duration = round(rng.uniform(1, 900), 3)
            tokens_in, tokens_out = rng.randint(0, 2000), rng.randint(0, 800)
            cost = round(rng.uniform(0, 0.05), 6)
            commands.append(
                (
                    "link_invocation",
                    (sid, inv, tool),
                    {"duration_ms": duration, "tokens": {"input": tokens_in, "output": tokens_out}, "cost": cost},
                )
            )
            event = ev.InvocationLinked(
                invocation_id=inv, tool_name=tool, duration_ms=duration, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost
            )
        rows.append(row(sid, event))
    return Workload(
        creates=tuple(creates),
        setup_rows=tuple(setup_rows),
        commands=tuple(commands),
        rows=tuple(rows),
    )


def compare(
    baselines: Sequence[Baseline], seconds: Mapping[str, Sequence[float]], events: int, key: str,
    figures: dict[str, float],
) -> Iterator[tuple[Baseline, Summary, Summary, Summary]]:
    """For each baseline of a rotated run: its events/s, the ledger's, and the ratio of each repetition's pair,
    recorded in ``figures`` under ``key`` (``key.<baseline>`` for all but the ledger's own row)."""
    ledger_eps = summarize(rate(events, s) for s in seconds["ledger"])
    for baseline in baselines:
        raw_eps = summarize(rate(events, s) for s in seconds[baseline.name])
        ratio = summarize(b / c for b, c in zip(seconds[baseline.name], seconds["ledger"]))
        name = key + ("" if baseline.name == "own" else f".{baseline.name}")
        figures[f"{name}.raw_events_per_s"] = raw_eps.median
        figures[f"{name}.ledger_events_per_s"] = ledger_eps.median
        figures[f"{name}.ratio"] = ratio.median
        yield baseline, raw_eps, ledger_eps, ratio


def _chunks(items: tuple[Any, ...], size: int) -> list[tuple[Any, ...]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- trials ---------------------------------------------------------------------


def raw_trial(
    scratch: ScratchDir, work: Workload, durability: str, mode: str, batch: int, baseline: Baseline = BASELINES[1]
) -> Callable[[], float]:
    """A trial of a baseline: a new file, the setup rows, then the timed rows; returns seconds."""
    insert, setup_rows, timed_rows = baseline.insert, [baseline.shape(r) for r in work.setup_rows], [
        baseline.shape(r) for r in work.rows]

    def trial() -> float:
        path = scratch.new_db("raw")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
            conn.execute(baseline.schema)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, setup_rows)
            conn.execute("COMMIT")
            execute, executemany = conn.execute, conn.executemany
            if mode == "single":
                rows = timed_rows

                def body() -> None:
                    for row in rows:
                        execute("BEGIN IMMEDIATE")
                        execute(insert, row)
                        execute("COMMIT")

            else:
                chunks = _chunks(tuple(timed_rows), batch)

                def body() -> None:
                    for chunk in chunks:
                        execute("BEGIN IMMEDIATE")
                        executemany(insert, chunk)
                        execute("COMMIT")

            seconds = timed(body)
            (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        finally:
            conn.close()
            scratch.remove_db(path)
        expected = len(work.setup_rows) + len(work.rows)
        if count != expected:
            raise RuntimeError(f"raw {mode} trial stored {count} rows, not {expected}")
        return seconds

    return trial


def ledger_trial(scratch: ScratchDir, work: Workload, durability: str, mode: str, batch: int) -> Callable[[], float]:
    """A trial of the ledger: a new file, the sessions created, then the timed commands; returns seconds."""

    def trial() -> float:
        path = scratch.new_db("ledger")
        ledger = Ledger(path, durability=durability)
        try:
            for name, args, kwargs in work.creates:
                getattr(ledger, name)(*args, **kwargs)
            calls = [(getattr(ledger, name), args, kwargs) for name, args, kwargs in work.commands]
            if mode == "single":

                def body() -> None:
                    for fn, args, kwargs in calls:
                        fn(*args, **kwargs)

            else:
                chunks = _chunks(tuple(calls), batch)
                begin = ledger.batch

                def body() -> None:
                    for chunk in chunks:
                        with begin():
                            for fn, args, kwargs in chunk:
                                fn(*args, **kwargs)

            seconds = timed(body)
            count = ledger.last_position
        finally:
            ledger.close()
            scratch.remove_db(path)
        expected = len(work.creates) + len(work.commands)
        if count != expected:
            raise RuntimeError(f"ledger {mode} trial stored {count} events, not {expected}")
        return seconds

    return trial


# -- the benchmark --------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    """Run every pair and return the table, the figures and the raw samples."""
    base = QUICK if options.quick else FULL
    params = replace(base, repetitions=options.repetitions(FULL.repetitions, QUICK.repetitions))
    everything = make_workload(max(params.events, params.batch_events), params.sessions, params.seed)
    workloads = {"single": everything.prefix(params.events), "batch": everything.prefix(params.batch_events)}
    results: list[dict[str, Any]] = []
    figures: dict[str, float] = {}
    table_rows: list[list[str]] = []
    with ScratchDir() as scratch:
        for durability in DURABILITIES:
            for mode in MODES:
                work = workloads[mode]
                n = len(work.commands)
                trials = {b.name: raw_trial(scratch, work, durability, mode, params.batch, b) for b in BASELINES}
                trials["ledger"] = ledger_trial(scratch, work, durability, mode, params.batch)
                seconds = rotated(trials, params.repetitions)
                target = TARGETS[(durability, mode)]
                for baseline, raw_eps, ledger_eps, ratio in compare(BASELINES, seconds, n, f"{durability}.{mode}", figures):
                    label = (
                        "single: 1 command = 1 commit vs BEGIN/INSERT/COMMIT"
                        if mode == "single"
                        else f"batch({params.batch}) vs executemany({params.batch}) per tx"
                    )
                    table_rows.append(
                        [
                            durability,
                            label,
                            baseline.label,
                            fmt_rate(raw_eps.median),
                            fmt_rate(ledger_eps.median),
                            fmt_ratio(ratio.median),
                            f"{ratio.min:.2f}..{ratio.max:.2f}",
                            goal_cell(ratio.median >= target, f">= {target:.2f}x"),
                        ]
                    )
                    results.append(
                        {
                            "durability": durability,
                            "synchronous": SYNCHRONOUS[durability],
                            "mode": mode,
                            "baseline": baseline.name,
                            "events": n,
                            "target_ratio": target,
                            "raw_seconds": list(seconds[baseline.name]),
                            "ledger_seconds": list(seconds["ledger"]),
                            "raw_events_per_s": raw_eps.as_dict(),
                            "ledger_events_per_s": ledger_eps.as_dict(),
                            "ratio": ratio.as_dict(),
                        }
                    )
    table = markdown_table(
        ["durability", "append (inline projections on)", "baseline: raw sqlite3 into", "raw ev/s", "ledger ev/s",
         "ratio (median)", "ratio min..max", "goal"],
        table_rows,
        align="lllrrrcl",
    )
    return {
        "name": NAME,
        "title": TITLE,
        "params": {**asdict(params), "mean_payload_bytes": round(everything.mean_payload, 1)},
        "note": (
            f"{params.events} events per single-commit trial, {params.batch_events} per batched trial; "
            f"{params.sessions} sessions; mean payload {everything.mean_payload:.0f} bytes; "
            f"median of {params.repetitions} repetitions (the three trials back to back, order rotating); ratio = ledger ev/s / raw ev/s"
        ),
        "table": table,
        "figures": figures,
        "results": results,
    }
