"""The HTML report (``ledger report``): how long one page takes on a ledger of 100,000 events.

What it measures: a ledger of 100,000 events (``--quick``: 5,000) over 2,000 sessions, spread over 30 days
by the clock, built untimed with ``ledger.batch()``: ~70% messages with a model and tokens, ~15%
invocations (three tools, some failing), the rest metadata, with a tenth of the sessions completed. Then
``Ledger.report`` of the whole ledger, and of one session, the median of 3 runs (``--quick``: 1), and the
page's size. What a report costs is mostly ``verify()`` (the integrity line walks the chain) and the usage
queries, so the table also gives ``verify()`` alone, timed the same way, and the report's ratio to it.
Goal, printed and never asserted: the whole-ledger report in under 10 s at 100,000 events.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger import Ledger

from ._harness import Options, ScratchDir, fmt_ratio, goal_cell, markdown_table

NAME = "report"
TITLE = "The HTML report: one page on a ledger of 100,000 events"
GOAL_S = 10.0


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    events: int
    sessions: int
    repetitions: int


FULL = Params(events=100_000, sessions=2_000, repetitions=3)
QUICK = Params(events=5_000, sessions=200, repetitions=1)


class _Clock:
    """Time that advances so the events spread over 30 days."""

    def __init__(self, events: int) -> None:
        self.now = datetime(2026, 10, 1, tzinfo=timezone.utc)
        self.step = timedelta(days=30) / max(events, 1)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def build(path: str, params: Params) -> None:
    """The ledger, untimed."""
    with Ledger(path, clock=_Clock(params.events)) as ledger:
        with ledger.batch():
            for s in range(params.sessions):
                ledger.create_session(f"r{s:05d}", user_id=f"user-{s % 17}")
        done = params.sessions
        while done < params.events:
            with ledger.batch():
                for i in range(done, min(done + 2_000, params.events)):
                    sid = f"r{i % params.sessions:05d}"
                    kind = i % 20
                    if kind < 14:
                        ledger.add_message(sid, ("user", "assistant")[i % 2], f"message {i} about the report",
                                           model=("small", "large")[i % 2], tokens={"input": 40 + i % 90, "output": 9})
                    elif kind < 17:
                        ledger.link_invocation(sid, f"inv-{i}", ("grep", "sql", "web")[i % 3], duration_ms=5 + i % 400,
                                               cost=0.0001 * (i % 50), status="ok" if i % 11 else "error")
                    else:
                        ledger.set_metadata(sid, "stage", i % 7)
            done = min(done + 2_000, params.events)
        with ledger.batch():
            for s in range(0, params.sessions, 10):
                ledger.complete_session(f"r{s:05d}")


def _median(fn: Any, repetitions: int) -> float:
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(options: Options) -> dict[str, Any]:
    """Build the ledger, time the reports and verify, and return the table and figures."""
    base = QUICK if options.quick else FULL
    params = replace(base, repetitions=options.repetitions(FULL.repetitions, QUICK.repetitions))
    with ScratchDir() as scratch:
        path = scratch.new_db("report")
        build(path, params)
        out = str(scratch.path / "report.html")
        with Ledger(path) as ledger:
            ledger.tree_head()  # the tiles, as a ledger that makes checkpoints has them (untimed)
            verify_s = _median(ledger.verify, params.repetitions)
            whole_s = _median(lambda: ledger.report(out), params.repetitions)
            size = os.path.getsize(out)
            one_s = _median(lambda: ledger.report(out, session="r00001"), params.repetitions)
    figures = {"report_s": whole_s, "session_report_s": one_s, "verify_s": verify_s, "page_bytes": float(size),
               "report_vs_verify": whole_s / verify_s}
    table = markdown_table(
        ["what", "events", "seconds (median)", "vs verify()", "page", "goal"],
        [["verify() alone", f"{params.events:,}", f"{verify_s:.2f}", "1.00x", "", ""],
         ["report(out): the whole ledger", f"{params.events:,}", f"{whole_s:.2f}", fmt_ratio(whole_s / verify_s),
          f"{size / 1024:.0f} KB", goal_cell(whole_s < GOAL_S, f"< {GOAL_S:.0f} s")],
         ["report(out, session=...)", f"{params.events:,}", f"{one_s:.2f}", fmt_ratio(one_s / verify_s), "", ""]],
        align="lrrrrl",
    )
    return {"name": NAME, "title": TITLE, "params": {"events": params.events, "sessions": params.sessions,
                                                     "repetitions": params.repetitions},
            "note": f"{params.events:,} events over {params.sessions:,} sessions and 30 days; median of"
                    f" {params.repetitions} runs",
            "table": table, "figures": figures, "results": figures}
