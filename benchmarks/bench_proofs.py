"""Proofs: inclusion and consistency proofs at 1k, 100k and 1M events, and what keeping the tree costs appends.

What it measures:

* proofs: on a ledger of N events (N = 1,000, 100,000 and 1,000,000; ``--quick``: 1,000 and 10,000),
  built untimed with ``ledger.batch()`` and its tile cache brought level once (untimed), the time of
  ``inclusion_proof(p)`` for random positions, of ``consistency_proof(m)`` for random old sizes, of
  ``tree_head()``, and of checking a proof with ``ledger.merkle.verify_inclusion`` /
  ``verify_consistency`` (no ledger at hand): the median of 200 calls each (``--quick``: 20), and the
  tile rows a proof read. A proof walks O(log n) complete subtrees, each from one tile of 256 hashes,
  so the goal is logarithmic growth: from 1k to 1M events (10 to 20 tree levels) the time may grow
  about 2x, not 1000x. Printed: each size's median and its ratio to the 1k ledger's.
* appends: the cost of keeping the tree. Batches of 100 ``add_message`` on a new ledger, with a
  ``tree_head()`` after every 1,000 events (the tiles brought level as they grow), against the same
  appends without proofs; paired, alternating, median of the repetitions. Goal: at least 0.95x
  (appends at most 5% slower). The tiles are never written on the append path itself (the cache is
  lazy), so what is paid is the levelling, spread over the appends.

Nothing is asserted; the goals are printed.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ledger import Ledger, merkle

from ._harness import Options, ScratchDir, fmt_rate, fmt_ratio, goal_cell, markdown_table, paired, rate, summarize

NAME = "proofs"
TITLE = "Proofs: inclusion and consistency proofs as the log grows, and the cost to appends"


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    sizes: tuple[int, ...]
    calls: int  # timed calls of each kind per size
    append_events: int
    repetitions: int
    seed: int = 20261130


FULL = Params(sizes=(1_000, 100_000, 1_000_000), calls=200, append_events=20_000, repetitions=5)
QUICK = Params(sizes=(1_000, 10_000), calls=20, append_events=2_000, repetitions=2)
APPEND_GOAL = 0.95
GROWTH_GOAL = 3.0  # 1M vs 1k: about 2x the tree levels; 3x leaves room for a deeper cache miss


def build(path: str, events: int, sessions: int = 1_000) -> Ledger:
    """A ledger of ``events`` short messages over ``sessions`` sessions, appended in batches (untimed)."""
    ledger = Ledger(path, snapshot_every=0)
    count = min(sessions, events)
    with ledger.batch():
        for i in range(count):
            ledger.create_session(f"p{i:05d}")
    done = count
    while done < events:
        with ledger.batch():
            for i in range(done, min(done + 5_000, events)):
                ledger.add_message(f"p{i % count:05d}", "user", f"event {i}")
        done = min(done + 5_000, events)
    return ledger


def median_us(fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def proof_row(ledger: Ledger, size: int, calls: int, rng: random.Random) -> dict[str, float]:
    """Median microseconds of each proof operation on a ledger of ``size`` events."""
    head = ledger.tree_head()
    positions = [rng.randint(1, size) for _ in range(calls)]
    olds = [rng.randint(1, size) for _ in range(calls)]
    proofs = [ledger.inclusion_proof(p) for p in positions[:10]]
    leaf = merkle.leaf_hash(bytes(32))
    it = iter(range(calls * 4))
    return {
        "tree_head_us": median_us(ledger.tree_head, calls),
        "inclusion_us": median_us(lambda: ledger.inclusion_proof(positions[next(it) % calls]), calls),
        "consistency_us": median_us(lambda: ledger.consistency_proof(olds[next(it) % calls]), calls),
        "verify_inclusion_us": median_us(
            lambda: merkle.verify_inclusion(leaf, positions[0] - 1, size, proofs[0], head.root), calls),
        "path_length": float(len(proofs[0])),
    }


def append_trial(scratch: ScratchDir, events: int, proofs: bool) -> Callable[[], float]:
    """Appends in batches of 100 on a new ledger; with ``proofs``, a tree_head() after every 1,000."""

    def trial() -> float:
        path = scratch.new_db("append")
        ledger = Ledger(path)
        try:
            for i in range(10):
                ledger.create_session(f"a{i}")
            started = time.perf_counter()
            for start in range(0, events, 100):
                with ledger.batch():
                    for i in range(start, start + 100):
                        ledger.add_message(f"a{i % 10}", "user", f"message {i}")
                if proofs and (start + 100) % 1_000 == 0:
                    ledger.tree_head()
            return time.perf_counter() - started
        finally:
            ledger.close()
            scratch.remove_db(path)

    return trial


def run(options: Options) -> dict[str, Any]:
    """Build the ledgers, time the proofs and the append pair, and return the tables and figures."""
    base = QUICK if options.quick else FULL
    params = replace(base, repetitions=options.repetitions(FULL.repetitions, QUICK.repetitions))
    rng = random.Random(params.seed)
    figures: dict[str, float] = {}
    rows: list[list[str]] = []
    measured: dict[int, dict[str, float]] = {}
    with ScratchDir() as scratch:
        for size in params.sizes:
            ledger = build(scratch.new_db(f"proofs-{size}"), size)
            try:
                ledger.tree_head()  # the tile cache, untimed
                measured[size] = proof_row(ledger, size, params.calls, rng)
            finally:
                ledger.close()
        smallest = measured[params.sizes[0]]
        for size, row in measured.items():
            growth = row["inclusion_us"] / smallest["inclusion_us"]
            for key, value in row.items():
                figures[f"{size}.{key}"] = value
            figures[f"{size}.inclusion_growth"] = growth
            rows.append([f"{size:,}", f"{row['path_length']:.0f}", f"{row['tree_head_us']:.0f}",
                         f"{row['inclusion_us']:.0f}", f"{row['consistency_us']:.0f}",
                         f"{row['verify_inclusion_us']:.1f}", fmt_ratio(growth),
                         goal_cell(growth <= GROWTH_GOAL, f"<= {GROWTH_GOAL:.1f}x")])
        pair = paired(append_trial(scratch, params.append_events, False),
                      append_trial(scratch, params.append_events, True), params.repetitions)
    plain = summarize(rate(params.append_events, s) for s in pair.baseline)
    kept = summarize(rate(params.append_events, s) for s in pair.candidate)
    ratio = summarize(pair.ratios)
    figures.update({"append.plain_events_per_s": plain.median, "append.with_tree_events_per_s": kept.median,
                    "append.ratio": ratio.median})
    table = markdown_table(
        ["events", "proof hashes", "tree_head us", "inclusion_proof us", "consistency_proof us",
         "verify_inclusion us", "inclusion vs 1k", "goal"],
        rows,
        align="rrrrrrrl",
    )
    appends = markdown_table(
        ["appends (batches of 100)", "ev/s", "ratio (median)", "ratio min..max", "goal"],
        [["without proofs", fmt_rate(plain.median), "", "", ""],
         ["tree_head() every 1,000 events", fmt_rate(kept.median), fmt_ratio(ratio.median),
          f"{ratio.min:.2f}..{ratio.max:.2f}", goal_cell(ratio.median >= APPEND_GOAL, f">= {APPEND_GOAL:.2f}x")]],
        align="lrrcl",
    )
    return {
        "name": NAME,
        "title": TITLE,
        "params": {"sizes": list(params.sizes), "calls": params.calls, "append_events": params.append_events,
                   "repetitions": params.repetitions},
        "note": (f"median of {params.calls} calls per cell, random positions and old sizes; appends: "
                 f"{params.append_events:,} events, median of {params.repetitions} paired repetitions"),
        "table": table + "\n\n" + appends,
        "figures": figures,
        "results": {"proofs": {str(k): v for k, v in measured.items()}, "appends": {
            "plain": plain.as_dict(), "with_tree": kept.as_dict(), "ratio": ratio.as_dict()}},
    }
