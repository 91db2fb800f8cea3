"""PostgreSQL: appends vs raw ``psycopg``, concurrent writers on both backends, ``list_sessions`` and as-of loads.

The benchmark starts its own PostgreSQL server (``tests.pg_server``:
``initdb`` + ``pg_ctl`` in a temporary directory, listening on 127.0.0.1,
stopped and removed at the end). That server runs with ``fsync=off``: no
figure here includes a disk flush, but ``synchronous_commit`` still matters,
as ``on`` makes every commit wait for its WAL to be written (and flushed, a
no-op here) before the server answers, so it is still compared. Every
ledger and every raw table lives in a schema of its own in one database,
made for its trial and dropped after it. All clients talk to the server over
TCP on 127.0.0.1: a round trip costs tens of microseconds, and counting
them is most of what explains the figures.

* appends: ``Ledger(url, durability=...)`` against a plain ``psycopg``
  connection (autocommit, explicit transactions) inserting the same rows
  into an equivalent ``events`` table (the ledger's columns: ``position``
  ``BIGINT`` primary key, ``UNIQUE`` event id, ``UNIQUE (session_id,
  version)``, ``BYTEA`` hash), and into a minimal one (position, session,
  version, type, data, time; ``UNIQUE (session_id, version)``: the second
  baseline, as in the SQLite append table), every value precomputed, with the same
  ``synchronous_commit``: ``durability="normal"`` is ``off``, ``"full"`` is
  ``on``. single: one ``add_message`` = one commit (the validation, the
  fold, the hash chain, the writer lock, the inline projections) against
  ``BEGIN; INSERT; COMMIT`` per row; batch: ``with ledger.batch()`` around
  each run of 100 commands against ``BEGIN; executemany(100 rows); COMMIT``
  (psycopg pipelines an ``executemany``: about one round trip for the 100).
  Workload (fixed seed): 20 sessions created untimed, then N ``add_message``
  commands on random sessions with the append benchmark's payloads (200
  characters of content, roles alternating per session, a model and token
  counts). N is 1000 single and 5000 batched (``--quick``: 100 and 200).
  Each repetition starts both sides from a new schema, times them back to
  back (alternating which goes first; one untimed warm-up of each, not in
  ``--quick``) and the
  figure is the ratio of the pair, ledger events/s over raw events/s,
  median of the repetitions with its min..max. The table also gives the
  round trips per event of both sides, counted in one extra untimed run of
  100 commands (the ledger's ``writer_stats().round_trips``: a simple query
  of several statements, a pipeline and a COPY each count once): on a local
  socket they are most of the cost.
* concurrent writers: N in 1, 2, 4 and 8 processes (``spawn``), each with
  its own ``Ledger`` on the same ledger (a SQLite file; the PostgreSQL URL),
  each appending ``add_message`` commands (one per commit, default
  durability ``"normal"``) round-robin to 4 sessions of its own, created
  untimed with 40 untimed appends (``--quick``: 20) to warm up, for a fixed
  time (1.5 s; ``--quick``: 0.25 s) from a common start. The 8 worker
  processes are started once, while the server starts, and reused; each
  trial uses a new ledger. Aggregate rate = the appends acknowledged in the
  timed part by all writers / (the last acknowledgement - the common
  start); the ratio to one writer is taken within a repetition (the order of
  N rotates per repetition), median of 3 repetitions (``--quick``: 1).
  After each trial (untimed) the ledger is reopened and checked:
  ``history()`` holds exactly the created sessions plus every acknowledged
  append (warm-up included) of every session, positions run gapless from 1,
  and ``verify().ok``; the table says whether that held in every trial.
  What bounds the rate is measured, not assumed: each writer reads its
  ``Ledger.writer_stats()`` before and after: the wait for the writer lock
  (PostgreSQL's advisory lock, SQLite's ``BEGIN IMMEDIATE``; it includes that
  round trip and the head read) and the span from there to the commit
  returning (the lock held: an upper bound, as it includes the commit's
  reply, and on SQLite a WAL checkpoint run after the lock is released).
  Reported: the share of the wall
  time the lock was held (summed over the writers: near 100% means appends
  run one at a time and the lock is the bound; the upper bound can pass
  100%), the held and waiting time per append, on PostgreSQL the round
  trips per append (counted as above, in the timed part), and the CPU busy
  share: ours = user + system time of the writers, and on PostgreSQL of their
  server backends (found by the ``application_name`` each writer's URL
  gives its connection; ``/proc/<pid>/stat``), over wall time times the CPUs;
  machine = every process's, from ``/proc/stat`` (on a shared machine the
  two differ). The note turns these into a sentence per backend: the lock is
  named the bound when it was held at least 80% of the time, the CPUs when
  they were at least 80% busy.
* reads on PostgreSQL, on one ledger built untimed with ``ledger.batch()``
  of 1000: one long session (10,099 events: the load benchmark's command
  mix, snapshots every 100, the newest 99 behind the head) and then 100,000
  sessions (``--quick``: 1,099 events and 1,000 sessions), each with a user,
  a purpose, one or two tags and two metadata keys, under a clock that steps
  a second per event (a reproducible order), then ``ANALYZE`` of its tables
  (as autovacuum soon would: the plans measured are those of a settled
  database, whatever autovacuum's timing). ``list_sessions(limit=100)``
  (newest first), its first page and the page after it (with the first
  page's cursor), against one hand-written ``SELECT`` of the same page on
  a plain ``psycopg`` connection (the same columns, the page's tags and
  metadata gathered by ``json_agg`` / ``json_object_agg`` subqueries, the
  same order and keyset condition); the as-of load ``get_session(sid,
  version=v)`` at a random version (fixed seed, a new one per call) on a
  ledger opened with ``cache_size=1`` whose untimed step before every call
  loads a one-event session, so every call is a cold load (the public path
  resolves the current state first, then the state at ``v``: snapshot + up
  to 99 events each), against ``SELECT`` of the row at ``v`` and
  ``msgspec.json.decode`` of its payload. Both sides are checked to agree
  once, untimed. Timing: ``rounds`` rounds of ``calls`` calls of every cell
  interleaved call by call, raw and ledger alternating which goes first;
  p50 and p95 over all calls; ledger/raw is a time ratio of the p50s per
  round (above 1: the ledger is slower), median with min..max.

Goals (the issue's), printed next to the figures and never asserted:
single append >= 0.5x raw, batched >= 0.35x raw; 8 writers lose nothing and
reach at least the single-writer rate. ``--quick`` uses small sizes and
short trials and only checks that every figure was produced. A full run takes
a few minutes on 2 cores (about 2.5 on a busy one), nearly half of it
building the 100k sessions.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import queue
import random
import resource
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import msgspec

from ledger import Ledger
from ledger.errors import LedgerBusy

from ._harness import (
    Options,
    ScratchDir,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    goal_cell,
    markdown_table,
    rotated,
    percentile,
    rate,
    summarize,
    timed,
)
from .bench_append import _MODELS, Baseline, Workload, _chunks, _text, compare, make_workload
from .bench_load import session_commands
from .bench_queries import PURPOSES, TAGS, TEAMS, SteppingClock

NAME = "postgres"
TITLE = "PostgreSQL: appends vs raw psycopg, concurrent writers on both backends, list_sessions and as-of loads"


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    events: int  # timed events per single-commit trial
    batch_events: int  # timed events per batched trial
    sessions: int  # sessions created (untimed) before the timed appends
    batch: int  # commands per ledger.batch() / rows per executemany transaction
    repetitions: int  # append pairs
    writer_counts: tuple[int, ...]  # concurrent writer processes
    writer_seconds: float  # appending time of one writers trial
    writer_repetitions: int
    writer_sessions: int  # sessions of each writer, appended to round-robin
    writer_warmup: int  # untimed appends of each writer before its trial starts
    list_sessions: int  # sessions in the read ledger
    long_session: int  # nominal events of its long session (it has long_session + 99)
    limit: int  # list_sessions page size
    rounds: int  # read timing rounds
    calls: int  # timed calls per read cell per round
    warmup: bool = True  # one untimed trial of each side before the append pairs
    chunk: int = 1000  # commands per ledger.batch() while building
    seed: int = 20240610


FULL = Params(
    events=1000, batch_events=5000, sessions=20, batch=100, repetitions=5,
    writer_counts=(1, 2, 4, 8), writer_seconds=1.5, writer_repetitions=3, writer_sessions=4, writer_warmup=40,
    list_sessions=100_000, long_session=10_000, limit=100, rounds=7, calls=40,
)
QUICK = Params(
    events=100, batch_events=200, sessions=20, batch=100, repetitions=2,
    writer_counts=(1, 2, 4, 8), writer_seconds=0.25, writer_repetitions=1, writer_sessions=4, writer_warmup=20,
    list_sessions=1_000, long_session=1_000, limit=100, rounds=2, calls=5, warmup=False,
)

DURABILITIES = ("normal", "full")
SYNCHRONOUS_COMMIT = {"normal": "off", "full": "on"}
MODES = ("single", "batch")
BACKENDS = ("sqlite", "postgres")

# Goals, printed and never asserted.
TARGETS = {"single": 0.5, "batch": 0.35}
WRITERS_TARGET = 1.0  # the most writers' aggregate rate / one writer's
LOCK_BOUND = 0.8  # a lock held at least this share of the time is what bounds the rate
CPU_BOUND = 0.8  # CPUs busy at least this share of the time bound it too

_COLUMNS = "position, event_id, session_id, version, type, schema, recorded_at, data, hash"
RAW_SCHEMA = """CREATE TABLE events (
    position BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    type TEXT NOT NULL,
    schema INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    data TEXT NOT NULL,
    hash BYTEA NOT NULL,
    UNIQUE (session_id, version)
)"""
RAW_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
# The second baseline, as in the SQLite append table: the least an event log can store.
MINIMAL_SCHEMA = """CREATE TABLE events (
    position BIGINT PRIMARY KEY,
    session_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (session_id, version)
)"""
MINIMAL_INSERT = "INSERT INTO events (position, session_id, version, type, data, recorded_at) VALUES (%s, %s, %s, %s, %s, %s)"
BASELINES = (
    Baseline("minimal", "minimal row", MINIMAL_SCHEMA, MINIMAL_INSERT, lambda r: (r[0], r[2], r[3], r[4], r[7], r[6])),
    Baseline("own", "the ledger's own row", RAW_SCHEMA, RAW_INSERT, lambda r: r),
)
ROW_AT = f"SELECT {_COLUMNS} FROM events WHERE session_id = %s AND version = %s"

# One page of list_sessions by hand: the summary columns, the page's tags and metadata in the same statement.
RAW_PAGE = """
SELECT s.session_id, s.version, s.status, s.user_id, s.purpose, s.parent_id, s.created_at, s.updated_at,
       s.completed_at, s.message_count, s.invocation_count, s.total_duration_ms, s.tokens_in, s.tokens_out,
       s.estimated_cost, s.tools_used,
       (SELECT json_agg(t.tag ORDER BY t.rowid) FROM session_tags AS t WHERE t.session_id = s.session_id),
       (SELECT json_object_agg(m.key, m.value::json ORDER BY m.rowid) FROM session_metadata AS m
         WHERE m.session_id = s.session_id)
FROM sessions AS s
{where}
ORDER BY s.created_at DESC, s.session_id DESC
LIMIT %s
"""
RAW_AFTER = "WHERE (s.created_at, s.session_id) < (%s, %s)"

LONG_ID = "bench-pg-long"
EVICTOR_ID = "bench-0000000"  # a one-event session of the read ledger: loading it evicts LONG_ID


# -- the server ---------------------------------------------------------------------------


class Server:
    """The benchmark's own PostgreSQL server, one database on it, and an admin connection to it."""

    def __init__(self) -> None:
        import psycopg

        from tests.pg_server import PostgresServer  # the repository root is on sys.path under ``-m benchmarks``

        self._server = PostgresServer()
        try:
            self.url = self._server.create("bench")
            self.admin = psycopg.connect(self.url, autocommit=True)
            self.version = str(self.admin.execute("SHOW server_version").fetchone()[0])
            self.fsync = str(self.admin.execute("SHOW fsync").fetchone()[0])
        except BaseException:
            self._server.stop()
            raise
        self._count = 0

    def schema(self, stem: str) -> str:
        """A new schema name (not created: a ledger creates its own)."""
        self._count += 1
        return f"{stem}_{self._count}"

    def ledger_url(self, schema: str) -> str:
        return f"{self.url}?schema={schema}"

    def connect(self, schema: str | None = None, synchronous_commit: str | None = None) -> Any:
        """A plain autocommit psycopg connection, its ``search_path`` set to ``schema``."""
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True)
        if synchronous_commit is not None:
            conn.execute(f"SET synchronous_commit = {synchronous_commit}")
        if schema is not None:
            conn.execute(f'SET search_path TO "{schema}"')
        return conn

    def drop(self, schema: str) -> None:
        self.admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def stop(self) -> None:
        try:
            self.admin.close()
        finally:
            self._server.stop()


# -- appends ------------------------------------------------------------------------------


def raw_trial(
    server: Server, work: Workload, durability: str, mode: str, batch: int, baseline: Baseline
) -> Callable[[], float]:
    """A baseline: a new schema with its events table, the setup rows, then the timed rows; returns seconds."""
    insert = baseline.insert
    setup_rows = [baseline.shape(r) for r in work.setup_rows]
    timed_rows = [baseline.shape(r) for r in work.rows]

    def trial() -> float:
        schema = server.schema("raw")
        server.admin.execute(f'CREATE SCHEMA "{schema}"')
        conn = server.connect(schema, SYNCHRONOUS_COMMIT[durability])
        try:
            conn.execute(baseline.schema)
            with conn.transaction():
                conn.cursor().executemany(insert, setup_rows)
            execute = conn.execute
            if mode == "single":
                rows = timed_rows

                def body() -> None:
                    for row in rows:
                        execute("BEGIN")
                        execute(insert, row)
                        execute("COMMIT")

            else:
                chunks = _chunks(tuple(timed_rows), batch)
                executemany = conn.cursor().executemany

                def body() -> None:
                    for chunk in chunks:
                        execute("BEGIN")
                        executemany(insert, chunk)
                        execute("COMMIT")

            seconds = timed(body)
            (count,) = execute("SELECT count(*) FROM events").fetchone()
        finally:
            conn.close()
            server.drop(schema)
        expected = len(work.setup_rows) + len(work.rows)
        if count != expected:
            raise RuntimeError(f"raw {mode} trial stored {count} rows, not {expected}")
        return seconds

    return trial


def _open_with_sessions(url: str, work: Workload, durability: str) -> Ledger:
    ledger = Ledger(url, durability=durability)
    try:
        for name, args, kwargs in work.creates:
            getattr(ledger, name)(*args, **kwargs)
    except BaseException:
        ledger.close()
        raise
    return ledger


def _run_commands(ledger: Ledger, commands: tuple[Any, ...], mode: str, batch: int) -> Callable[[], None]:
    calls = [(getattr(ledger, name), args, kwargs) for name, args, kwargs in commands]
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

    return body


def ledger_trial(server: Server, work: Workload, durability: str, mode: str, batch: int) -> Callable[[], float]:
    """The ledger: a new schema, the sessions created, then the timed commands; returns seconds."""

    def trial() -> float:
        schema = server.schema("ledger")
        try:
            ledger = _open_with_sessions(server.ledger_url(schema), work, durability)
            try:
                seconds = timed(_run_commands(ledger, work.commands, mode, batch))
                count = ledger.last_position
            finally:
                ledger.close()
        finally:
            server.drop(schema)
        expected = len(work.creates) + len(work.commands)
        if count != expected:
            raise RuntimeError(f"ledger {mode} trial stored {count} events, not {expected}")
        return seconds

    return trial


def round_trips(server: Server, work: Workload, batch: int) -> dict[str, float]:
    """Round trips per event of the ledger, single and batched (one untimed run of ``batch`` commands each)."""
    out: dict[str, float] = {}
    commands = work.commands[:batch]
    for mode in MODES:
        schema = server.schema("calls")
        try:
            ledger = _open_with_sessions(server.ledger_url(schema), work, "normal")
            try:
                before = ledger.writer_stats().round_trips or 0
                _run_commands(ledger, commands, mode, batch)()
                out[mode] = ((ledger.writer_stats().round_trips or 0) - before) / len(commands)
            finally:
                ledger.close()
        finally:
            server.drop(schema)
    return out


def appends(server: Server, params: Params, figures: dict[str, float], results: dict[str, Any]) -> tuple[str, str]:
    """The append pairs; returns the table and a note."""
    everything = make_workload(max(params.events, params.batch_events), params.sessions, params.seed, mix=(1, 0, 0, 0))
    workloads = {
        "single": everything.prefix(params.events),
        "batch": everything.prefix(params.batch_events),
    }
    calls = round_trips(server, everything, params.batch)
    raw_calls = {"single": 3.0, "batch": 3.0 / params.batch}  # BEGIN, INSERT/executemany, COMMIT
    rows: list[list[str]] = []
    results["appends"] = []
    for durability in DURABILITIES:
        for mode in MODES:
            work = workloads[mode]
            n = len(work.commands)
            trials = {b.name: raw_trial(server, work, durability, mode, params.batch, b) for b in BASELINES}
            trials["ledger"] = ledger_trial(server, work, durability, mode, params.batch)
            seconds = rotated(trials, params.repetitions, warmup=params.warmup)
            target = TARGETS[mode]
            figures[f"append.{mode}.ledger_round_trips_per_event"] = calls[mode]
            compared = compare(BASELINES, seconds, n, f"append.{durability}.{mode}", figures)
            for baseline, raw_eps, ledger_eps, ratio in compared:
                label = (
                    "single: 1 add_message = 1 commit vs BEGIN/INSERT/COMMIT"
                    if mode == "single"
                    else f"batch({params.batch}) vs BEGIN/executemany({params.batch})/COMMIT"
                )
                rows.append(
                    [
                        f"{durability} (synchronous_commit={SYNCHRONOUS_COMMIT[durability]})",
                        label,
                        baseline.label,
                        fmt_rate(raw_eps.median),
                        fmt_rate(ledger_eps.median),
                        fmt_ratio(ratio.median),
                        f"{ratio.min:.2f}..{ratio.max:.2f}",
                        f"{calls[mode]:.2f} / {raw_calls[mode]:.2f}",
                        goal_cell(ratio.median >= target, f">= {target:.2f}x"),
                    ]
                )
                results["appends"].append(
                    {
                        "durability": durability, "synchronous_commit": SYNCHRONOUS_COMMIT[durability], "mode": mode,
                        "baseline": baseline.name, "events": n, "target_ratio": target,
                        "raw_seconds": list(seconds[baseline.name]), "ledger_seconds": list(seconds["ledger"]),
                        "raw_events_per_s": raw_eps.as_dict(), "ledger_events_per_s": ledger_eps.as_dict(),
                        "ratio": ratio.as_dict(), "ledger_round_trips_per_event": calls[mode],
                        "raw_round_trips_per_event": raw_calls[mode],
                    }
                )
    table = markdown_table(
        ["durability", "append", "baseline row", "raw psycopg ev/s", "ledger ev/s", "ratio (median)",
         "ratio min..max", "round trips/event ledger / raw", "goal"],
        rows,
        align="lllrrrcrl",
    )
    note = (
        f"appends: {params.events} add_message per single-commit trial, {params.batch_events} per batched trial, "
        f"{params.sessions} sessions, mean payload {everything.mean_payload:.0f} bytes, a new schema per trial, "
        f"median of {params.repetitions} repetitions (both baselines and the ledger back to back, order rotating),"
        " ratio = ledger ev/s / raw ev/s"
    )
    return table, note


# -- concurrent writers -----------------------------------------------------------------------


def _backend_pid(url: str, application_name: str) -> int | None:
    """The server process of the connection opened under ``application_name`` (None if not found)."""
    import psycopg

    with psycopg.connect(url.partition("?")[0], autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchone()
    return None if row is None else int(row[0])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of another process on this machine, from ``/proc`` (0 when unreadable)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks, from ``/proc/stat`` (NaN elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    total = sum(ticks[:8])  # guest time is already inside user time
    return total - idle, total


def _messages(seed: str, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    rng = random.Random(seed)
    return [
        (("user", "assistant")[i % 2], _text(rng, 200),
         {"model": rng.choice(_MODELS), "tokens": {"input": rng.randint(10, 4000), "output": rng.randint(10, 1500)}})
        for i in range(count)
    ]


def writer_trial(task: dict[str, Any], inbox: Any, outbox: Any) -> dict[str, Any]:
    """One writer of one trial, in a worker process: open, create its sessions and warm up (untimed), say
    ready, wait for the start, append until the stop time, report what was acknowledged and how long the
    writer lock was waited for and held."""
    worker = task["worker"]
    postgres = task["backend"] == "postgres"
    # On PostgreSQL the writer's connection is named, so its server process (whose CPU time counts) can be found.
    name = f"bench-writer-{worker}-{os.getpid()}"
    ledger = Ledger(f"{task['path']}&application_name={name}" if postgres else task["path"])
    try:
        sessions = [f"writer-{worker}-{i}" for i in range(task["sessions"])]
        for i, sid in enumerate(sessions):
            ledger.create_session(sid, user_id=f"user-{worker}", purpose=f"writer {worker}, session {i}")
        messages = _messages(f"{task['seed']}-{worker}", 256)
        add_message = ledger.add_message
        acked = [0] * len(sessions)
        for i in range(task["warmup"]):  # untimed: the code paths and statement caches warm, in every trial
            role, content, kwargs = messages[i]
            add_message(sessions[i % len(sessions)], role, content, **kwargs)
            acked[i % len(sessions)] += 1
        warm = sum(acked)
        backend_pid = _backend_pid(task["path"], name) if postgres else None
        outbox.put({"worker": worker, "ready": True})
        go = inbox.get()
        start_at, stop_at = go["start_at"], go["stop_at"]
        while time.monotonic() < start_at:
            time.sleep(0.0005)
        stats_before = ledger.writer_stats()
        cpu_before, backend_before = _cpu_seconds(), _proc_cpu_seconds(backend_pid)
        busy = 0
        clock = time.monotonic
        i = 0
        last = start_at
        while clock() < stop_at:
            s = i % len(sessions)
            role, content, kwargs = messages[i % len(messages)]
            try:
                add_message(sessions[s], role, content, **kwargs)
            except LedgerBusy:
                busy += 1
            else:
                acked[s] += 1
                last = clock()
            i += 1
        cpu = _cpu_seconds() - cpu_before
        stats = ledger.writer_stats()
        backend_cpu = _proc_cpu_seconds(backend_pid) - backend_before
        return {
            "worker": worker,
            "acked": dict(zip(sessions, acked)),  # every acknowledged message, the warm-up's too
            "timed": sum(acked) - warm,
            "busy": busy,
            "last": last,
            "wait": stats.lock_wait_seconds - stats_before.lock_wait_seconds,
            "held": stats.lock_held_seconds - stats_before.lock_held_seconds,
            "transactions": stats.transactions - stats_before.transactions,
            "cpu": cpu,
            "backend_cpu": backend_cpu,
            "round_trips": (stats.round_trips or 0) - (stats_before.round_trips or 0),
        }
    finally:
        ledger.close()


def writer_main(inbox: Any, outbox: Any) -> None:
    """A worker process: say it is up, then run writer trials until told to stop (``None``)."""
    outbox.put({"alive": os.getpid()})
    while True:
        task = inbox.get()
        if task is None:
            return
        try:
            outbox.put(writer_trial(task, inbox, outbox))
        except BaseException:
            outbox.put({"worker": task["worker"], "error": traceback.format_exc()})


class Writers:
    """Worker processes (spawned once, reused by every trial), one inbox each and a shared outbox."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.outbox = context.Queue()
        self.inboxes = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(target=writer_main, args=(inbox, self.outbox), daemon=True) for inbox in self.inboxes
        ]
        for process in self.processes:
            process.start()
        self._alive = False

    def wait_alive(self) -> None:
        """Wait until every worker has started and imported the ledger (so none is still starting while
        something is timed)."""
        if not self._alive:
            self._collect(len(self.processes), 120)
            self._alive = True

    def _collect(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        out: list[dict[str, Any]] = []
        while len(out) < count:
            try:
                out.append(self.outbox.get(timeout=0.5))
            except queue.Empty:
                dead = [p.exitcode for p in self.processes if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"writers: {len(dead)} worker process(es) exited (codes {dead})") from None
                if time.monotonic() > deadline:
                    missing = count - len(out)
                    raise RuntimeError(f"writers: {missing} of {count} workers did not answer in {timeout:g} s") from None
        return out

    def trial(self, backend: str, path: str, writers: int, params: Params) -> dict[str, Any]:
        """One trial of ``writers`` writers on the ledger at ``path``: their reports and the common start."""
        for w in range(writers):
            self.inboxes[w].put(
                {"worker": w, "backend": backend, "path": path, "sessions": params.writer_sessions,
                 "warmup": params.writer_warmup, "seed": params.seed}
            )
        ready = self._collect(writers, 120)
        errors = [r["error"] for r in ready if "error" in r]
        start_at = time.monotonic() + 0.05
        stop_at = start_at if errors else start_at + params.writer_seconds
        for r in ready:
            if "error" not in r:
                self.inboxes[r["worker"]].put({"start_at": start_at, "stop_at": stop_at})
        while time.monotonic() < start_at:
            time.sleep(0.0005)
        machine_before = _machine_cpu()
        reports = self._collect(writers - len(errors), params.writer_seconds + 120)
        machine_after = _machine_cpu()
        errors += [r["error"] for r in reports if "error" in r]
        if errors:
            raise RuntimeError("a writer failed:\n" + errors[0])
        busy, total = (after - before for after, before in zip(machine_after, machine_before))
        return {"start_at": start_at, "reports": sorted(reports, key=lambda r: r["worker"]),
                "machine_cpu_share": busy / total if total > 0 else float("nan")}

    def close(self) -> None:
        """Tell every worker to stop; kill any still running after 10 s (only these processes)."""
        for inbox in self.inboxes:
            inbox.put(None)
        deadline = time.monotonic() + 10
        for process in self.processes:
            process.join(max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                process.kill()
                process.join()


def check_ledger(path: str, acked: dict[str, int]) -> dict[str, Any]:
    """After a trial: every created session and acknowledged append is in the history, positions are
    gapless from 1, and the chain verifies."""
    with Ledger(path) as ledger:
        stored: dict[str, int] = {}
        expected_position = 0
        gapless = True
        for event in ledger.history():
            expected_position += 1
            gapless = gapless and event.position == expected_position
            stored[event.session_id] = stored.get(event.session_id, 0) + 1
        verified = ledger.verify().ok
    want = {sid: 1 + n for sid, n in acked.items()}  # created, then the acknowledged messages
    lost = sum(max(want[sid] - stored.get(sid, 0), 0) for sid in want)
    unexpected = sum(max(n - want.get(sid, 0), 0) for sid, n in stored.items())
    return {"events": expected_position, "lost": lost, "unexpected": unexpected, "gapless": gapless,
            "verified": verified, "ok": lost == 0 and unexpected == 0 and gapless and verified}


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def concurrent_writers(
    server: Server, scratch: ScratchDir, pool: Writers, params: Params, figures: dict[str, float],
    results: dict[str, Any],
) -> tuple[str, str]:
    """The writers trials on both backends; returns the table and a note saying what bounds the rate."""
    cpus = _cpus()
    counts = params.writer_counts
    trials: dict[tuple[str, int], list[dict[str, Any]]] = {(b, n): [] for b in BACKENDS for n in counts}
    pool.wait_alive()
    for rep in range(params.writer_repetitions):
        shift = rep % len(counts)
        for backend in BACKENDS:
            for n in counts[shift:] + counts[:shift]:
                trials[(backend, n)].append(writers_trial(server, scratch, pool, backend, n, rep, params, cpus))

    rows: list[list[str]] = []
    bounds: list[str] = []
    results["writers"] = {f"{b}.{n}": trials[(b, n)] for b in BACKENDS for n in counts}
    most = max(counts)
    for backend in BACKENDS:
        single = {t["rep"]: t["rate"] for t in trials[(backend, 1)]}
        med: dict[int, dict[str, float]] = {}
        for n in counts:
            runs = trials[(backend, n)]
            ratio = summarize(t["rate"] / single[t["rep"]] for t in runs)
            m = {name: statistics.median(t[name] for t in runs) for name in _MEDIANS}
            m["ratio"] = ratio.median
            med[n] = m
            ok = all(t["check"]["ok"] for t in runs)
            key = f"writers.{backend}.{n}"
            figures[f"{key}.events_per_s"] = m["rate"]
            figures[f"{key}.over_1_writer"] = ratio.median
            figures[f"{key}.lock_held_share"] = m["lock_held_share"]
            figures[f"{key}.lock_held_us_per_append"] = m["held_us"]
            figures[f"{key}.lock_wait_us_per_append"] = m["wait_us"]
            figures[f"{key}.cpu_busy_share"] = m["cpu_share"]
            figures[f"{key}.checked_events"] = sum(t["check"]["events"] for t in runs)
            if backend == "postgres":
                figures[f"{key}.round_trips_per_append"] = m["round_trips_per_append"]
            goal = ""
            if n == most:
                goal = goal_cell(ratio.median >= WRITERS_TARGET and ok, f">= {WRITERS_TARGET:.2f}x 1 writer, nothing lost")
            rows.append(
                [
                    backend,
                    str(n),
                    fmt_rate(m["rate"]),
                    fmt_ratio(ratio.median),
                    f"{ratio.min:.2f}..{ratio.max:.2f}",
                    f"{m['lock_held_share']:.0%}",
                    f"{m['held_us']:.0f}",
                    f"{m['wait_us']:.0f}",
                    f"{m['round_trips_per_append']:.1f}" if backend == "postgres" else "n/a",
                    f"{m['cpu_share']:.0%} / {m['machine_cpu_share']:.0%}",
                    _check_text(runs),
                    goal,
                ]
            )
        bounds.append(_bound_text(backend, med[1], med[most], most))
    table = markdown_table(
        ["backend", "writers", "ev/s (median)", "vs 1 writer (median)", "min..max", "writer lock held",
         "held us/append", "wait us/append", "round trips/append", f"CPU busy: ours / machine ({cpus} CPUs)",
         "all kept, gapless, verified", "goal"],
        rows,
        align="lrrrcrrrrrll",
    )
    note = (
        f"writers: processes (spawn) with a Ledger each, add_message one per commit (durability normal) to "
        f"{params.writer_sessions} sessions of their own for {params.writer_seconds:g} s after {params.writer_warmup} "
        f"untimed appends each, a new ledger per trial, median of {params.writer_repetitions} repetitions (the "
        "1-writer ratio taken within a repetition); writer lock held = time from the write begin's return (lock "
        "taken, head read) to the commit's return, summed over the writers / wall time (an upper bound); CPU busy: ours = the "
        "writers' (and on PostgreSQL their backends') CPU time / (wall time x CPUs), machine = every process's, "
        "from /proc/stat. What bounds it: " + " ".join(bounds)
    )
    return table, note


_MEDIANS = ("rate", "lock_held_share", "held_us", "wait_us", "cpu_share", "machine_cpu_share", "round_trips_per_append")


def writers_trial(
    server: Server, scratch: ScratchDir, pool: Writers, backend: str, n: int, rep: int, params: Params, cpus: int
) -> dict[str, Any]:
    """One trial: a new ledger, ``n`` writers on it, then the check that it kept everything (untimed)."""
    if backend == "sqlite":
        path = schema = scratch.new_db(f"writers-{n}")
    else:
        schema = server.schema(f"writers{n}")
        path = server.ledger_url(schema)
    try:
        Ledger(path).close()  # created before the writers open it
        run = pool.trial(backend, path, n, params)
        acked = {sid: k for r in run["reports"] for sid, k in r["acked"].items()}
        check = check_ledger(path, acked)
    finally:
        if backend == "sqlite":
            scratch.remove_db(path)
        else:
            server.drop(schema)
    reports = run["reports"]
    wall = max(r["last"] for r in reports) - run["start_at"]
    total = sum(r["timed"] for r in reports)
    transactions = max(sum(r["transactions"] for r in reports), 1)
    return {
        "rep": rep,
        "writers": n,
        "wall": wall,
        "appends": total,
        "rate": rate(total, wall),
        "per_writer": [r["timed"] for r in reports],
        "busy": sum(r["busy"] for r in reports),
        "lock_held_share": sum(r["held"] for r in reports) / wall,
        "held_us": 1e6 * sum(r["held"] for r in reports) / transactions,
        "wait_us": 1e6 * sum(r["wait"] for r in reports) / transactions,
        "cpu_share": sum(r["cpu"] + r["backend_cpu"] for r in reports) / (wall * cpus),
        "client_cpu_share": sum(r["cpu"] for r in reports) / (wall * cpus),
        "machine_cpu_share": run["machine_cpu_share"],
        "round_trips_per_append": sum(r["round_trips"] for r in reports) / max(total, 1),
        "check": check,
    }


def _check_text(runs: list[dict[str, Any]]) -> str:
    if all(t["check"]["ok"] for t in runs):
        text = "yes"
    else:
        problems = [f"{sum(t['check']['lost'] for t in runs)} lost", f"{sum(t['check']['unexpected'] for t in runs)} unexpected"]
        if not all(t["check"]["gapless"] for t in runs):
            problems.append("positions with gaps")
        if not all(t["check"]["verified"] for t in runs):
            problems.append("chain does not verify")
        text = "NO: " + ", ".join(problems)
    busy = sum(t["busy"] for t in runs)
    return text + (f" ({busy} appends refused busy, not acknowledged)" if busy else "")


def _bound_text(backend: str, one: dict[str, float], many: dict[str, float], most: int) -> str:
    """What the measurements say bounds the aggregate rate of ``most`` writers."""
    held, cpu, machine = many["lock_held_share"], many["cpu_share"], many["machine_cpu_share"]
    lock = "PostgreSQL's advisory writer lock" if backend == "postgres" else "SQLite's write lock (BEGIN IMMEDIATE)"
    text = (
        f"{backend}: one writer already holds {lock} {one['lock_held_share']:.0%} of its time ({one['held_us']:.0f} us "
        "per append: the command's state read, fold, hash, inserts and projections run inside the write "
        f"transaction), so no number of writers could pass {1 / one['lock_held_share']:.2f}x its rate even if "
        f"nothing else changed; with {most} writers ({fmt_ratio(many['ratio'])}) the lock was held {held:.0%} of "
        f"the time at {many['held_us']:.0f} us per append"
    )
    if backend == "postgres":
        trips, alone = many["round_trips_per_append"], one["round_trips_per_append"]
        text += (
            f", {trips:.1f} round trips per append instead of {alone:.1f} (a writer that finds another's commit "
            "reloads session state inside the lock)" if trips > alone + 0.05 else
            f", still {trips:.1f} round trips per append (the sessions the others changed come with the begin)"
        )
    text += f", CPUs {cpu:.0%} busy with our processes and {machine:.0%} with all of the machine's"
    if held >= LOCK_BOUND:
        text += (
            ": the writer lock bounds it. Appends are serialised (each row's hash needs its predecessor, and "
            "positions are handed out in commit order), so the aggregate rate is at most 1 / the time the lock "
            "is held per append, and contention makes each hold longer: the holder's wake-ups wait for a CPU "
            "shared with the writers preparing their next command"
            + (" and their server processes" if backend == "postgres" else
               ", and a connection re-reads the pages another connection's commit changed")
        )
        if max(cpu, machine) >= CPU_BOUND:
            text += " (the holder shares the busy CPUs with the waiting writers)"
        text += "."
    elif max(cpu, machine) >= CPU_BOUND:
        text += ": the CPUs bound it, not the lock."
    else:
        text += (
            ": neither the lock nor the CPUs are saturated; the lock's hand-over (a waiter's wake-up and round"
            " trip) bounds it."
        )
    return text


# -- reads ----------------------------------------------------------------------------------


def build_read_ledger(url: str, params: Params) -> dict[str, Any]:
    """The long session, then ``list_sessions`` sessions (fixed seed), with ``ledger.batch()``; untimed."""
    rng = random.Random(params.seed)
    started = time.perf_counter()
    long_events = params.long_session + 99
    ledger = Ledger(url, clock=SteppingClock())
    try:
        commands = itertools.chain([("create_session", (LONG_ID,), {"purpose": "the long one"})],
                                   session_commands(LONG_ID, rng))
        done = 0
        while done < long_events:
            with ledger.batch():
                for name, args, kwargs in itertools.islice(commands, min(params.chunk, long_events - done)):
                    getattr(ledger, name)(*args, **kwargs)
                    done += 1
        for start in range(0, params.list_sessions, params.chunk):
            with ledger.batch():
                for i in range(start, min(start + params.chunk, params.list_sessions)):
                    ledger.create_session(
                        f"bench-{i:07d}",
                        user_id=f"user-{rng.randrange(200)}",
                        purpose=rng.choice(PURPOSES),
                        tags=rng.sample(TAGS, rng.randint(1, 2)),
                        metadata={"team": rng.choice(TEAMS), "priority": rng.randint(1, 5)},
                    )
        head = ledger.last_position
    finally:
        ledger.close()
    events = long_events + params.list_sessions
    if head != events:
        raise RuntimeError(f"building the read ledger stored {head} events, not {events}")
    return {"sessions": params.list_sessions + 1, "events": events, "long_session_events": long_events,
            "seconds": round(time.perf_counter() - started, 3)}


@dataclass
class Cell:
    """One read: the raw statement and the ledger call, each taking the call's argument, and the
    untimed step before each ledger call."""

    key: str
    raw: Callable[[Any], object]
    ledger: Callable[[Any], object]
    clear: Callable[[], None]
    args: list[list[Any]]  # per round, per call


def read_cells(ledger: Ledger, conn: Any, params: Params, long_events: int) -> list[Cell]:
    """The three cells (list first page, list cursor page, as-of load), after checking both sides agree."""
    limit = params.limit
    execute = conn.execute
    first_sql, next_sql = RAW_PAGE.format(where=""), RAW_PAGE.format(where=RAW_AFTER)
    raw_first = execute(first_sql, (limit,)).fetchall()
    page1 = ledger.list_sessions(limit=limit)
    if page1.cursor is None or len(raw_first) < limit:
        raise RuntimeError(f"only {len(raw_first)} sessions: no second page of {limit}")
    after = (raw_first[-1][6], raw_first[-1][0])  # created_at, session_id
    raw_next = execute(next_sql, (*after, limit)).fetchall()
    page2 = ledger.list_sessions(limit=limit, cursor=page1.cursor)
    for name, raw_rows, page in (("first", raw_first, page1), ("second", raw_next, page2)):
        if [r[0] for r in raw_rows] != [item.session_id for item in page.items]:
            raise RuntimeError(f"list_sessions {name} page: the ledger and the hand-written query disagree")
        for row, item in zip(raw_rows, page.items):
            if list(row[16] or []) != list(item.tags) or (row[17] or {}) != item.metadata:
                raise RuntimeError(f"list_sessions {name} page: tags or metadata of {item.session_id} differ")

    get_session, list_sessions, decode = ledger.get_session, ledger.list_sessions, msgspec.json.decode

    def evict() -> None:
        get_session(EVICTOR_ID)

    def nothing() -> None:
        pass

    for version in (1, long_events // 2, long_events):
        evict()
        row = execute(ROW_AT, (LONG_ID, version)).fetchone()
        if get_session(LONG_ID, version=version).version != version or row[3] != version:
            raise RuntimeError(f"as-of load of version {version} returned another version")
    cursor = page1.cursor
    rng = random.Random(f"{params.seed}-as-of")
    no_args: list[list[Any]] = [[None] * params.calls for _ in range(params.rounds)]
    return [
        Cell("list.page1", lambda _: execute(first_sql, (limit,)).fetchall(), lambda _: list_sessions(limit=limit),
             nothing, no_args),
        Cell("list.page2", lambda _: execute(next_sql, (*after, limit)).fetchall(),
             lambda _: list_sessions(limit=limit, cursor=cursor), nothing, no_args),
        Cell("as_of", lambda v: decode(execute(ROW_AT, (LONG_ID, v)).fetchone()[7]),
             lambda v: get_session(LONG_ID, version=v), evict,
             [[rng.randint(1, long_events) for _ in range(params.calls)] for _ in range(params.rounds)]),
    ]


def measure(cells: list[Cell], rounds: int, calls: int) -> dict[tuple[str, str], list[list[float]]]:
    """Seconds of every call, by (cell, side) and round; calls interleaved across the cells."""
    samples: dict[tuple[str, str], list[list[float]]] = {
        (c.key, side): [[] for _ in range(rounds)] for c in cells for side in ("raw", "ledger")
    }
    for cell in cells:  # warm-up: prepared statements, caches
        for _ in range(3):
            cell.raw(cell.args[0][0])
            cell.clear()
            cell.ledger(cell.args[0][0])
    clock = time.perf_counter
    for r in range(rounds):
        gc.collect()
        for i in range(calls):
            for cell in cells:
                arg = cell.args[r][i]
                for side in (("raw", "ledger") if (i + r) % 2 == 0 else ("ledger", "raw")):
                    if side == "raw":
                        start = clock()
                        cell.raw(arg)
                    else:
                        cell.clear()
                        start = clock()
                        cell.ledger(arg)
                    samples[(cell.key, side)][r].append(clock() - start)
    return samples


def reads(server: Server, params: Params, figures: dict[str, float], results: dict[str, Any]) -> tuple[str, str]:
    """Build the read ledger, time the three cells; returns the table and a note."""
    schema = server.schema("reads")
    url = server.ledger_url(schema)
    try:
        built = build_read_ledger(url, params)
        # Settle the statistics, as autovacuum soon would: the plans are then those of a database in use, not
        # those of a just-loaded one (which of the two a run measures must not depend on autovacuum's timing).
        tables = server.admin.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
        for (table,) in tables:
            server.admin.execute(f'ANALYZE "{schema}"."{table}"')
        ledger = Ledger(url, cache_size=1)  # reopened, as a reader would; a state cache of one session
        conn = server.connect(schema)
        try:
            cells = read_cells(ledger, conn, params, built["long_session_events"])
            samples = measure(cells, params.rounds, params.calls)
        finally:
            conn.close()
            ledger.close()
    finally:
        server.drop(schema)
    results["reads"] = {"build": built, "samples": {f"{k}.{side}": v for (k, side), v in samples.items()}}
    labels = {
        "list.page1": (f"list_sessions(limit={params.limit}), first page", f"{params.list_sessions:,} sessions"),
        "list.page2": (f"list_sessions(limit={params.limit}), cursor page", f"{params.list_sessions:,} sessions"),
        "as_of": ("get_session(sid, version=random), cold cache", f"{built['long_session_events']:,} events"),
    }
    rows = []
    for cell in cells:
        raw, ours = samples[(cell.key, "raw")], samples[(cell.key, "ledger")]
        ratio = summarize(percentile(o, 50) / percentile(r, 50) for o, r in zip(ours, raw))
        raw_all = [s for rs in raw for s in rs]
        ours_all = [s for rs in ours for s in rs]
        p = {"raw_p50_ms": percentile(raw_all, 50) * 1000, "raw_p95_ms": percentile(raw_all, 95) * 1000,
             "ledger_p50_ms": percentile(ours_all, 50) * 1000, "ledger_p95_ms": percentile(ours_all, 95) * 1000}
        for name, value in p.items():
            figures[f"reads.{cell.key}.{name}"] = value
        figures[f"reads.{cell.key}.ledger_over_raw"] = ratio.median
        results.setdefault("read_summary", {})[cell.key] = {**p, "ledger_over_raw": ratio.as_dict()}
        what, size = labels[cell.key]
        rows.append([what, size, *(fmt_ms(v / 1000) for v in p.values()), fmt_ratio(ratio.median),
                     f"{ratio.min:.2f}..{ratio.max:.2f}", "none set"])
    table = markdown_table(
        ["read", "size", "raw p50 ms", "raw p95 ms", "ledger p50 ms", "ledger p95 ms", "ledger/raw p50 (median)",
         "min..max", "goal"],
        rows,
        align="llrrrrrcl",
    )
    note = (
        f"reads: {built['sessions']:,} sessions ({built['events']:,} events) built in {built['seconds']:.1f} s "
        f"(ledger.batch() of {params.chunk}), then ANALYZEd; "
        f"{params.rounds} rounds x {params.calls} calls per cell, interleaved; "
        "the as-of session evicted from the state cache (untimed) before each ledger call; "
        "ledger/raw is a time ratio (above 1: the ledger is slower)"
    )
    return table, note


# -- the benchmark ----------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    """Start the server, run the three parts, stop it; return the tables, the figures and the samples."""
    base = QUICK if options.quick else FULL
    params = replace(
        base,
        repetitions=options.repetitions(FULL.repetitions, QUICK.repetitions),
        writer_repetitions=options.repetitions(FULL.writer_repetitions, QUICK.writer_repetitions),
        rounds=options.repetitions(FULL.rounds, QUICK.rounds),
    )
    figures: dict[str, float] = {}
    results: dict[str, Any] = {}
    phases: dict[str, float] = {}
    started = time.perf_counter()
    pool = Writers(max(params.writer_counts))  # the workers start (spawn, imports) while the server does
    try:
        try:
            server = Server()
        except Exception as exc:  # no binaries, no psycopg, no repository root: say so, with no figures
            # (the run then reports them as missing)
            return {
                "name": NAME, "title": TITLE, "params": asdict(params),
                "note": f"PostgreSQL could not be started: {type(exc).__name__}: {exc}",
                "table": "(not run)", "figures": {}, "results": {},
            }
        try:
            pool.wait_alive()
            phases["server_and_workers_start"] = round(time.perf_counter() - started, 2)
            tables: list[str] = []
            notes: list[str] = []
            with ScratchDir() as scratch:
                for name, part in (
                    ("appends", lambda: appends(server, params, figures, results)),
                    ("writers", lambda: concurrent_writers(server, scratch, pool, params, figures, results)),
                    ("reads", lambda: reads(server, params, figures, results)),
                ):
                    t0 = time.perf_counter()
                    table, note = part()
                    phases[name] = round(time.perf_counter() - t0, 2)
                    tables.append(table)
                    notes.append(note)
            server_facts = {"version": server.version, "fsync": server.fsync}
        finally:
            server.stop()
    finally:
        pool.close()
    head = (
        f"server: the benchmark's own PostgreSQL {server_facts['version']} on 127.0.0.1 (TCP), "
        f"fsync={server_facts['fsync']} "
        "(no disk flushes anywhere; synchronous_commit still decides whether a commit waits for its WAL write, "
        "so it still sets the round trip)"
    )
    return {
        "name": NAME,
        "title": TITLE,
        "params": asdict(params),
        "server": server_facts,
        "phases_seconds": phases,
        "note": "; ".join([head, *notes]),
        "table": "\n\n".join(tables),
        "figures": figures,
        "results": results,
    }

