"""Projection rebuild and whole-ledger verify throughput, as ratios of raw ``sqlite3`` loops over the same rows.

What it measures, in events per second of the log:

* ``ledger.rebuild()``: drop the built-in read tables (sessions, tags,
  metadata, data, messages with their FTS5 index, invocations) and replay
  every event into them, in one transaction. Baseline: a plain ``sqlite3``
  connection on the same file doing ``BEGIN IMMEDIATE``, ``CREATE TABLE`` of
  one plain table with the events' columns, ``executemany`` of an ``INSERT``
  fed straight from ``SELECT ... FROM events ORDER BY position``, ``COMMIT``
  (the copy is dropped after each trial, untimed). So the ratio is the share of
  SQLite's own read-and-insert speed that a rebuild keeps.
* ``ledger.verify()``: walk the hash chain (and, by default, check every
  snapshot against the fold of its session's events). Baseline: ``SELECT`` of
  every event row in position order and ``hashlib.sha256`` of each ``data``
  column (the least any chain check must do). Measured twice: on a ledger with
  the default snapshot policy (``snapshot_every=100``), and on the same events
  in a ledger without snapshots (``snapshot_every=0``), which isolates the
  chain walk.
* ``ledger.replay(into=...)``: a new ledger file holding every event (each
  row's chain checked as it is copied), its snapshots and its read tables.
  Baseline: every event row read with ``SELECT`` and written with
  ``executemany`` into the events table of a new file (the ledger's own row,
  WAL, ``synchronous=NORMAL``), in one transaction.

Workload: the append benchmark's mix (fixed seed): sessions created, then
~70% ``add_message`` (200-byte content), ~10% each ``set_metadata``,
``set_data`` and ``link_invocation``; 50,000 events over 200 sessions (so
sessions pass several snapshots), built untimed with ``ledger.batch()`` of
1000 commands. ``--quick``: 2,000 events over 10 sessions, 2 repetitions, and
only a check that every figure was produced.

Each repetition times the baseline and the ledger back to back on the same
file (alternating which goes first, after one untimed warm-up of each); the
figure is ledger events/s / raw events/s, median of the repetitions with the
min..max spread. Goals, printed and never asserted: rebuild >= 0.5x, verify
>= 0.5x with snapshots and >= 0.8x for the chain alone, replay >= 0.5x.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from ledger import Ledger

from ._harness import (
    Options,
    Paired,
    ScratchDir,
    fmt_rate,
    fmt_ratio,
    goal_cell,
    markdown_table,
    paired,
    rate,
    summarize,
    timed,
)
from .bench_append import RAW_INSERT, RAW_SCHEMA, SYNCHRONOUS, Workload, make_workload

NAME = "rebuild"
TITLE = "Rebuild and verify throughput: Ledger vs raw sqlite3 loops over the same rows"


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    events: int  # events after the creations
    sessions: int
    chunk: int  # commands per ledger.batch() while building
    repetitions: int
    snapshot_every: int = 100  # the default policy
    seed: int = 20240603


FULL = Params(events=50_000, sessions=200, chunk=1000, repetitions=5)
QUICK = Params(events=2_000, sessions=10, chunk=1000, repetitions=2)

# Goals for the ratios (issue 17), printed and never asserted.
REBUILD_TARGET = 0.5
VERIFY_TARGET = 0.5  # with snapshots: each one checked against the fold of its events
VERIFY_CHAIN_TARGET = 0.8
REPLAY_TARGET = 0.5

COPY_SCHEMA = (
    "CREATE TABLE bench_events_copy (position INTEGER PRIMARY KEY, event_id TEXT, session_id TEXT, version INTEGER,"
    " type TEXT, schema INTEGER, recorded_at TEXT, data TEXT, hash BLOB)"
)
COPY_INSERT = "INSERT INTO bench_events_copy VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
SELECT_EVENTS = (
    "SELECT position, event_id, session_id, version, type, schema, recorded_at, data, hash FROM events ORDER BY position"
)
SELECT_FOR_HASH = (
    "SELECT position, event_id, session_id, version, type, schema, recorded_at, CAST(data AS BLOB), hash"
    " FROM events ORDER BY position"
)


def build_ledger(path: str, work: Workload, params: Params, snapshot_every: int) -> int:
    """Append the workload to a new ledger in batches (untimed); returns the number of events."""
    ledger = Ledger(path, snapshot_every=snapshot_every)
    try:
        for name, args, kwargs in work.creates:
            getattr(ledger, name)(*args, **kwargs)
        calls = [(getattr(ledger, name), args, kwargs) for name, args, kwargs in work.commands]
        for start in range(0, len(calls), params.chunk):
            with ledger.batch():
                for fn, args, kwargs in calls[start : start + params.chunk]:
                    fn(*args, **kwargs)
        head = ledger.last_position
    finally:
        ledger.close()
    expected = len(work.creates) + len(work.commands)
    if head != expected:
        raise RuntimeError(f"building the rebuild ledger stored {head} events, not {expected}")
    return head


# -- trials ---------------------------------------------------------------------------


def raw_copy_trial(conn: sqlite3.Connection, events: int) -> Callable[[], float]:
    """The rebuild baseline: read every event row and insert it into one plain table, in one transaction."""

    def body() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(COPY_SCHEMA)
        conn.executemany(COPY_INSERT, conn.execute(SELECT_EVENTS))
        conn.execute("COMMIT")

    def trial() -> float:
        seconds = timed(body)
        (count,) = conn.execute("SELECT count(*) FROM bench_events_copy").fetchone()
        conn.execute("DROP TABLE bench_events_copy")
        if count != events:
            raise RuntimeError(f"raw copy stored {count} rows, not {events}")
        return seconds

    return trial


def rebuild_trial(ledger: Ledger, events: int) -> Callable[[], float]:
    """``ledger.rebuild()`` of every projection."""

    def trial() -> float:
        replayed: list[int] = []
        seconds = timed(lambda: replayed.append(ledger.rebuild()))
        if replayed != [events]:
            raise RuntimeError(f"rebuild replayed {replayed} events, not {events}")
        return seconds

    return trial


def raw_replay_trial(scratch: ScratchDir, conn: sqlite3.Connection, events: int, durability: str) -> Callable[[], float]:
    """The replay baseline: every event row read from the source and inserted with ``executemany`` into the
    events table of a new file (WAL, the same ``synchronous``), in one transaction."""

    def trial() -> float:
        path = scratch.new_db("raw-replay")
        target = sqlite3.connect(path, isolation_level=None)
        try:
            target.execute("PRAGMA journal_mode=WAL")
            target.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")

            def body() -> None:
                target.execute("BEGIN IMMEDIATE")
                target.execute(RAW_SCHEMA)
                target.executemany(RAW_INSERT, conn.execute(SELECT_EVENTS))
                target.execute("COMMIT")

            seconds = timed(body)
            (count,) = target.execute("SELECT count(*) FROM events").fetchone()
        finally:
            target.close()
            scratch.remove_db(path)
        if count != events:
            raise RuntimeError(f"raw replay stored {count} rows, not {events}")
        return seconds

    return trial


def replay_trial(scratch: ScratchDir, ledger: Ledger, events: int) -> Callable[[], float]:
    """``ledger.replay(into=...)``: a new ledger file with every event (chain checked) and its read tables."""

    def trial() -> float:
        path = scratch.new_db("replay")
        digests: list[Any] = []
        try:
            seconds = timed(lambda: digests.append(ledger.replay(into=path)))
        finally:
            scratch.remove_db(path)
        if digests[0].position != events:
            raise RuntimeError(f"replay copied {digests[0].position} events, not {events}")
        return seconds

    return trial


def raw_hash_trial(conn: sqlite3.Connection, events: int) -> Callable[[], float]:
    """The verify baseline: every event row, in order, and the SHA-256 of its data."""
    sha256 = hashlib.sha256

    def body() -> None:
        count = 0
        for row in conn.execute(SELECT_FOR_HASH):
            sha256(row[7]).digest()
            count += 1
        if count != events:
            raise RuntimeError(f"raw read loop saw {count} rows, not {events}")

    return lambda: timed(body)


def verify_trial(ledger: Ledger, events: int) -> Callable[[], float]:
    """``ledger.verify()`` of the whole log."""

    def trial() -> float:
        reports: list[Any] = []
        seconds = timed(lambda: reports.append(ledger.verify()))
        (report,) = reports
        if not report.ok or report.checked != events:
            raise RuntimeError(f"verify failed or checked {report.checked} of {events} rows: {report.reason}")
        return seconds

    return trial


# -- the benchmark --------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    """Build the ledgers, time every pair, and return the table, the figures and the raw samples."""
    base = QUICK if options.quick else FULL
    params = replace(base, repetitions=options.repetitions(FULL.repetitions, QUICK.repetitions))
    work = make_workload(params.events, params.sessions, params.seed)
    figures: dict[str, float] = {}
    results: list[dict[str, Any]] = []
    table_rows: list[list[str]] = []
    with ScratchDir() as scratch:
        paths = {every: scratch.new_db(f"rebuild-snap{every}") for every in (params.snapshot_every, 0)}
        events = 0
        for every, path in paths.items():
            events = build_ledger(path, work, params, every)
        cases: tuple[tuple[str, str, int, Callable[[Ledger, int], Callable[[], float]],
                           Callable[[sqlite3.Connection, int], Callable[[], float]], float], ...] = (
            ("rebuild", "rebuild() vs SELECT + INSERT into one table, 1 tx", params.snapshot_every,
             rebuild_trial, raw_copy_trial, REBUILD_TARGET),
            ("verify", f"verify(), snapshot_every={params.snapshot_every} vs SELECT + sha256(data)",
             params.snapshot_every, verify_trial, raw_hash_trial, VERIFY_TARGET),
            ("verify_no_snapshots", "verify(), snapshot_every=0 (chain only) vs SELECT + sha256(data)",
             0, verify_trial, raw_hash_trial, VERIFY_CHAIN_TARGET),
            ("replay", "replay(into=new file) vs SELECT + executemany into a new file, 1 tx", params.snapshot_every,
             lambda led, n: replay_trial(scratch, led, n),
             lambda conn, n: raw_replay_trial(scratch, conn, n, "normal"), REPLAY_TARGET),
        )
        for key, label, every, ours_for, raw_for, target in cases:
            ledger = Ledger(paths[every], snapshot_every=every)
            conn = sqlite3.connect(paths[every], isolation_level=None)
            try:
                raw, ours = raw_for(conn, events), ours_for(ledger, events)
                pair: Paired = paired(raw, ours, params.repetitions, warmup=(raw, ours))
            finally:
                ledger.close()
                conn.close()
            raw_eps = summarize(rate(events, s) for s in pair.baseline)
            ledger_eps = summarize(rate(events, s) for s in pair.candidate)
            ratio = summarize(pair.ratios)
            figures[f"{key}.raw_events_per_s"] = raw_eps.median
            figures[f"{key}.ledger_events_per_s"] = ledger_eps.median
            figures[f"{key}.ratio"] = ratio.median
            goal = goal_cell(ratio.median >= target, f">= {target:.2f}x")
            table_rows.append(
                [
                    label,
                    f"{events:,}",
                    fmt_rate(raw_eps.median),
                    fmt_rate(ledger_eps.median),
                    fmt_ratio(ratio.median),
                    f"{ratio.min:.2f}..{ratio.max:.2f}",
                    goal,
                ]
            )
            results.append(
                {
                    "operation": key,
                    "snapshot_every": every,
                    "events": events,
                    "target_ratio": target,
                    "raw_seconds": list(pair.baseline),
                    "ledger_seconds": list(pair.candidate),
                    "raw_events_per_s": raw_eps.as_dict(),
                    "ledger_events_per_s": ledger_eps.as_dict(),
                    "ratio": ratio.as_dict(),
                }
            )
    table = markdown_table(
        ["operation", "events", "raw sqlite3 ev/s", "ledger ev/s", "ratio (median)", "ratio min..max", "goal"],
        table_rows,
        align="lrrrrcl",
    )
    return {
        "name": NAME,
        "title": TITLE,
        "params": {**asdict(params), "mean_payload_bytes": round(work.mean_payload, 1)},
        "note": (
            f"{events:,} events ({params.sessions} sessions created, then {params.events:,} mixed events); "
            f"mean payload {work.mean_payload:.0f} bytes; median of {params.repetitions} paired repetitions; "
            "ratio = ledger ev/s / raw ev/s"
        ),
        "table": table,
        "figures": figures,
        "results": results,
    }
