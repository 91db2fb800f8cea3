"""Latency of a filtered ``Ledger.list_sessions``, as a ratio of one hand-written ``sqlite3`` query on the same file.

What it measures: the wall time of one call of
``ledger.list_sessions(tags=["t3"], status="active", metadata={"team": "infra"},
limit=100)`` (a tag, a status and a metadata filter, newest first), for the
first page and for the second page fetched with the first page's cursor, on a
small and a large ledger: 10k and 100k sessions (``--quick``: 1k and 5k, with
``limit=10`` so that a second page exists). Each call is the whole public
path: the read transaction, the projections' freshness check, the filter
query, the tags and metadata of the page, and the ``SessionSummary`` objects.

Baseline: the same filter written by hand as one SQL statement (``EXISTS``
for the tag and the metadata value, the page's tags and metadata gathered with
``json_group_array`` / ``json_group_object`` in the same statement, the same
order and limit, the second page by the same keyset condition) run through a
plain ``sqlite3`` connection on the same file, rows left as tuples. Both sides
must return the same sessions in the same order (checked once, untimed).

Ledgers (fixed seed; built untimed with ``ledger.batch()`` of 1000
sessions and ``snapshot_every=0``; a clock that steps one second per event so
the order is reproducible): every session has 1-3 of 10 tags ``t0``..``t9``,
a user among 200, metadata ``team`` (one of 5), ``priority`` (1-5), ``region``
(one of 3) and ``customer`` (one of 1000), and a status: 40% stay
``active``, 35% ``completed``, 15% ``failed``, 10% ``abandoned`` (one
``complete_session`` event each). About 1.6% of sessions match the filter.
The small ledger is the first sessions of the large one.

Timing: ``rounds`` rounds of ``calls`` calls of each of the 8 cells (2
sizes x 2 pages x raw/ledger), interleaved call by call, alternating which of
raw and ledger goes first, so that every cell sees the same machine state.
Reported: p50 and p95 in ms over all calls of a cell; ledger/raw is the ratio
of the two p50s (a time ratio: above 1 the ledger is slower), median of the
rounds with its min..max; scaling is large/small of the ledger's p50, also per
round. Targets, printed and never asserted: p50 <= 5 ms at 100k sessions, and
large/small p50 <= 2x.
"""

from __future__ import annotations

import gc
import json
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger import Ledger

from ._harness import (
    Options,
    ScratchDir,
    fmt_ms,
    fmt_ratio,
    goal_cell,
    markdown_table,
    percentile,
    summarize,
)

NAME = "queries"
TITLE = "list_sessions latency: tag + status + metadata filter vs one hand-written sqlite3 query"


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    sizes: tuple[int, int]  # sessions in the small and the large ledger
    limit: int  # page size
    rounds: int  # repetitions (each gives one ratio)
    calls: int  # timed calls per cell per round
    chunk: int = 1000  # sessions per ledger.batch() while building
    seed: int = 20240602


FULL = Params(sizes=(10_000, 100_000), limit=100, rounds=7, calls=60)
QUICK = Params(sizes=(1_000, 5_000), limit=10, rounds=2, calls=5)

TAGS = tuple(f"t{i}" for i in range(10))
TEAMS = ("search", "infra", "support", "billing", "research")
REGIONS = ("eu", "us", "ap")
STATUSES = ("active", "completed", "failed", "abandoned")
STATUS_WEIGHTS = (40, 35, 15, 10)
PURPOSES = ("triage a bug report", "answer a billing question", "write release notes", "plan a migration")

FILTER: dict[str, Any] = {"tags": ["t3"], "status": "active", "metadata": {"team": "infra"}}
P50_TARGET_MS = 5.0  # at the large size
SCALE_TARGET = 2.0  # large p50 / small p50
SIZE_LABELS = ("small", "large")
PAGES = (1, 2)

# The filter by hand: the page's columns, with its tags and metadata, in one statement.
RAW_PAGE = """
SELECT s.session_id, s.version, s.status, s.user_id, s.purpose, s.parent_id, s.created_at, s.updated_at,
       s.completed_at, s.message_count, s.invocation_count, s.total_duration_ms, s.tokens_in, s.tokens_out,
       s.estimated_cost, s.tools_used,
       (SELECT json_group_array(tag) FROM session_tags AS t WHERE t.session_id = s.session_id),
       (SELECT json_group_object(key, json(value)) FROM session_metadata AS m WHERE m.session_id = s.session_id)
FROM sessions AS s
WHERE s.status = ?
  AND EXISTS (SELECT 1 FROM session_tags AS t WHERE t.session_id = s.session_id AND t.tag = ?)
  AND EXISTS (SELECT 1 FROM session_metadata AS m WHERE m.session_id = s.session_id AND m.key = ? AND m.value = ?)
  {after}
ORDER BY s.created_at DESC, s.session_id DESC
LIMIT ?
"""
RAW_AFTER = "AND (s.created_at, s.session_id) < (?, ?)"
RAW_COUNT = (
    "SELECT count(*) FROM sessions AS s WHERE s.status = ?"
    " AND EXISTS (SELECT 1 FROM session_tags AS t WHERE t.session_id = s.session_id AND t.tag = ?)"
    " AND EXISTS (SELECT 1 FROM session_metadata AS m WHERE m.session_id = s.session_id AND m.key = ? AND m.value = ?)"
)


def _raw_args() -> tuple[Any, ...]:
    ((key, value),) = FILTER["metadata"].items()
    return (FILTER["status"], FILTER["tags"][0], key, json.dumps(value))


# -- building a ledger ------------------------------------------------------------


class SteppingClock:
    """A clock for the ledger: one second later on every call, from a fixed start."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def build_ledger(path: str, sessions: int, params: Params) -> dict[str, Any]:
    """Create ``sessions`` sessions (fixed seed) in ``path``; returns what was built and how long it took."""
    rng = random.Random(params.seed)
    started = time.perf_counter()
    events = 0
    ledger = Ledger(path, snapshot_every=0, clock=SteppingClock())
    try:
        for start in range(0, sessions, params.chunk):
            with ledger.batch():
                for i in range(start, min(start + params.chunk, sessions)):
                    sid = f"bench-{i:07d}"
                    ledger.create_session(
                        sid,
                        user_id=f"user-{rng.randrange(200)}",
                        purpose=rng.choice(PURPOSES),
                        tags=rng.sample(TAGS, rng.randint(1, 3)),
                        metadata={
                            "team": rng.choice(TEAMS),
                            "priority": rng.randint(1, 5),
                            "region": rng.choice(REGIONS),
                            "customer": f"cust-{rng.randrange(1000):04d}",
                        },
                    )
                    events += 1
                    status = rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0]
                    if status != "active":
                        ledger.complete_session(sid, status)
                        events += 1
        head = ledger.last_position
    finally:
        ledger.close()
    if head != events:
        raise RuntimeError(f"building {sessions} sessions stored {head} events, not {events}")
    return {"sessions": sessions, "events": events, "seconds": round(time.perf_counter() - started, 3)}


# -- one size: the two sides and their pages -------------------------------------------


@dataclass
class Cell:
    """One (size, page) pair of calls: the raw statement and the ledger call, each returning its rows."""

    size: str
    page: int
    raw: Callable[[], object]
    ledger: Callable[[], object]


def cells_for(size: str, ledger: Ledger, conn: sqlite3.Connection, limit: int) -> tuple[list[Cell], dict[str, Any]]:
    """The two cells (first and second page) of one ledger, after checking both sides agree (untimed)."""
    args = _raw_args()
    first_sql = RAW_PAGE.format(after="")
    next_sql = RAW_PAGE.format(after=RAW_AFTER)
    (matches,) = conn.execute(RAW_COUNT, args).fetchone()

    raw_first = conn.execute(first_sql, (*args, limit)).fetchall()
    page1 = ledger.list_sessions(**FILTER, limit=limit)
    if page1.cursor is None or len(raw_first) < limit:
        raise RuntimeError(f"{size} ledger: only {matches} sessions match the filter; no second page of {limit}")
    last = raw_first[-1]
    after = (last[6], last[0])  # created_at, session_id
    raw_next = conn.execute(next_sql, (*args, *after, limit)).fetchall()
    page2 = ledger.list_sessions(**FILTER, limit=limit, cursor=page1.cursor)
    for name, raw_rows, page in (("first", raw_first, page1), ("second", raw_next, page2)):
        if [r[0] for r in raw_rows] != [item.session_id for item in page.items]:
            raise RuntimeError(f"{size} ledger, {name} page: list_sessions and the hand-written query disagree")
        for row, item in zip(raw_rows, page.items):
            if sorted(json.loads(row[16])) != sorted(item.tags) or json.loads(row[17]) != item.metadata:
                raise RuntimeError(f"{size} ledger, {name} page: tags or metadata of {item.session_id} differ")

    cursor = page1.cursor
    list_sessions = ledger.list_sessions
    execute = conn.execute
    cells = [
        Cell(
            size,
            1,
            lambda: execute(first_sql, (*args, limit)).fetchall(),
            lambda: list_sessions(**FILTER, limit=limit),
        ),
        Cell(
            size,
            2,
            lambda: execute(next_sql, (*args, *after, limit)).fetchall(),
            lambda: list_sessions(**FILTER, limit=limit, cursor=cursor),
        ),
    ]
    return cells, {"matches": matches, "page2_items": len(page2.items)}


def measure(cells: list[Cell], rounds: int, calls: int) -> dict[tuple[str, int, str], list[list[float]]]:
    """Seconds of every call, by (size, page, side) and round; calls interleaved across all cells."""
    samples: dict[tuple[str, int, str], list[list[float]]] = {
        (c.size, c.page, side): [[] for _ in range(rounds)] for c in cells for side in ("raw", "ledger")
    }
    for cell in cells:  # warm-up: caches, statement cache, page cache
        for _ in range(3):
            cell.raw()
            cell.ledger()
    clock = time.perf_counter
    for r in range(rounds):
        gc.collect()
        for i in range(calls):
            for cell in cells:
                order = (("raw", cell.raw), ("ledger", cell.ledger))
                if (i + r) % 2:
                    order = order[::-1]
                for side, fn in order:
                    start = clock()
                    fn()
                    samples[(cell.size, cell.page, side)][r].append(clock() - start)
    return samples


# -- the benchmark --------------------------------------------------------------------


def _pool(rounds: list[list[float]]) -> list[float]:
    return [s for samples in rounds for s in samples]


def _p50s(rounds: list[list[float]]) -> list[float]:
    return [percentile(samples, 50) for samples in rounds]


def run(options: Options) -> dict[str, Any]:
    """Build both ledgers, time both pages on both sides, and return the tables, figures and samples."""
    base = QUICK if options.quick else FULL
    params = replace(base, rounds=options.repetitions(FULL.rounds, QUICK.rounds))
    builds: dict[str, dict[str, Any]] = {}
    facts: dict[str, dict[str, Any]] = {}
    with ScratchDir() as scratch:
        ledgers: list[Ledger] = []
        conns: list[sqlite3.Connection] = []
        cells: list[Cell] = []
        try:
            for label, size in zip(SIZE_LABELS, params.sizes):
                path = scratch.new_db(f"queries-{size}")
                builds[label] = build_ledger(path, size, params)
                ledger = Ledger(path, snapshot_every=0)  # reopened, as a reader would
                ledgers.append(ledger)
                conn = sqlite3.connect(path)
                conns.append(conn)
                size_cells, facts[label] = cells_for(label, ledger, conn, params.limit)
                cells += size_cells
            samples = measure(cells, params.rounds, params.calls)
        finally:
            for ledger in ledgers:
                ledger.close()
            for conn in conns:
                conn.close()

    figures: dict[str, float] = {}
    results: list[dict[str, Any]] = []
    latency_rows: list[list[str]] = []
    for label, size in zip(SIZE_LABELS, params.sizes):
        for page in PAGES:
            raw = samples[(label, page, "raw")]
            ours = samples[(label, page, "ledger")]
            ratio = summarize(o / r for o, r in zip(_p50s(ours), _p50s(raw)))
            raw_all, ours_all = _pool(raw), _pool(ours)
            p = {
                "raw_p50_ms": percentile(raw_all, 50) * 1000,
                "raw_p95_ms": percentile(raw_all, 95) * 1000,
                "ledger_p50_ms": percentile(ours_all, 50) * 1000,
                "ledger_p95_ms": percentile(ours_all, 95) * 1000,
            }
            key = f"{label}.page{page}"
            for name, value in p.items():
                figures[f"{key}.{name}"] = value
            figures[f"{key}.ledger_over_raw"] = ratio.median
            if label == "large":
                met = p["ledger_p50_ms"] <= P50_TARGET_MS
                goal = goal_cell(met, f"p50 <= {P50_TARGET_MS:g} ms")
            else:
                goal = ""
            latency_rows.append(
                [
                    f"{size:,}",
                    "first" if page == 1 else "second (cursor)",
                    f"{facts[label]['matches']:,}",
                    fmt_ms(p["raw_p50_ms"] / 1000),
                    fmt_ms(p["raw_p95_ms"] / 1000),
                    fmt_ms(p["ledger_p50_ms"] / 1000),
                    fmt_ms(p["ledger_p95_ms"] / 1000),
                    fmt_ratio(ratio.median),
                    f"{ratio.min:.2f}..{ratio.max:.2f}",
                    goal,
                ]
            )
            results.append(
                {
                    "size": label,
                    "sessions": size,
                    "page": page,
                    "matches": facts[label]["matches"],
                    **{name: round(value, 4) for name, value in p.items()},
                    "ledger_over_raw": ratio.as_dict(),
                    "raw_seconds": raw,
                    "ledger_seconds": ours,
                }
            )

    scale_rows: list[list[str]] = []
    for page in PAGES:
        small, large = (samples[(label, page, "ledger")] for label in SIZE_LABELS)
        raw_small, raw_large = (samples[(label, page, "raw")] for label in SIZE_LABELS)
        scale = summarize(b / a for a, b in zip(_p50s(small), _p50s(large)))
        raw_scale = summarize(b / a for a, b in zip(_p50s(raw_small), _p50s(raw_large)))
        figures[f"scale.page{page}.ledger_large_over_small"] = scale.median
        figures[f"scale.page{page}.raw_large_over_small"] = raw_scale.median
        met = scale.median <= SCALE_TARGET
        scale_rows.append(
            [
                "first" if page == 1 else "second (cursor)",
                fmt_ms(percentile(_pool(small), 50)),
                fmt_ms(percentile(_pool(large), 50)),
                fmt_ratio(scale.median),
                f"{scale.min:.2f}..{scale.max:.2f}",
                fmt_ratio(raw_scale.median),
                goal_cell(met, f"<= {SCALE_TARGET:.2f}x"),
            ]
        )
        results.append(
            {
                "scale_page": page,
                "ledger_large_over_small": scale.as_dict(),
                "raw_large_over_small": raw_scale.as_dict(),
            }
        )

    small_n, large_n = (f"{n:,}" for n in params.sizes)
    latency = markdown_table(
        ["sessions", "page", "matches", "raw p50 ms", "raw p95 ms", "ledger p50 ms", "ledger p95 ms",
         "ledger/raw p50 (median)", "min..max", "goal"],
        latency_rows,
        align="llrrrrrrcl",
    )
    scaling = markdown_table(
        ["page", f"ledger p50 ms at {small_n}", f"at {large_n}", f"{large_n}/{small_n} (median)", "min..max",
         "raw sqlite3 same ratio", "goal"],
        scale_rows,
        align="lrrrcrl",
    )
    build_note = ", ".join(
        f"{b['sessions']:,} sessions ({b['events']:,} events) built in {b['seconds']:.1f} s" for b in builds.values()
    )
    return {
        "name": NAME,
        "title": TITLE,
        "params": {**asdict(params), "filter": FILTER},
        "builds": builds,
        "note": (
            f"filter tags={FILTER['tags']}, status={FILTER['status']!r}, metadata={FILTER['metadata']}, "
            f"limit={params.limit}; {build_note}; {params.rounds} rounds x {params.calls} calls per cell, "
            "interleaved; ledger/raw is a time ratio (above 1: the ledger is slower)"
        ),
        "table": latency + "\n\n" + scaling,
        "figures": figures,
        "results": results,
    }
