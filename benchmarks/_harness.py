"""Shared helpers for the benchmarks: paired timing, summaries, tables, result files.

Machines running these are shared and noisy, so a benchmark never reports an
absolute speed on its own: it times a baseline and our code back to back in
the same process, many times, and reports the ratio of each pair (median and
spread). Nothing here asserts a speed; ``missing_figures`` only checks that
every figure was produced.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# A trial does its own (untimed) setup and returns the seconds its timed part took.
Trial = Callable[[], float]


@dataclass(frozen=True)
class Options:
    """How a benchmark run was asked for: ``quick`` smoke mode and an optional repetition override."""

    quick: bool = False
    repeat: int | None = None

    def repetitions(self, full: int, quick: int = 2) -> int:
        """The number of repetitions to use: the override, else ``quick`` or ``full``."""
        if self.repeat is not None:
            return max(self.repeat, 1)
        return quick if self.quick else full


@dataclass(frozen=True)
class Summary:
    """Median and spread of a handful of samples."""

    median: float
    min: float
    max: float
    q1: float
    q3: float
    samples: tuple[float, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "samples": list(self.samples)}


def summarize(samples: Iterable[float]) -> Summary:
    """Median, min, max and quartiles (inclusive method, so it works from two samples)."""
    values = sorted(samples)
    if not values:
        nan = float("nan")
        return Summary(nan, nan, nan, nan, nan)
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Summary(statistics.median(values), values[0], values[-1], q1, q3, tuple(values))


def percentile(samples: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of the samples, interpolated linearly between the nearest ranks."""
    values = sorted(samples)
    if not values:
        return float("nan")
    rank = (len(values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals, such as ``1.27``."""
    return "n/a" if not math.isfinite(seconds) else f"{seconds * 1000:.2f}"


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took, after a full garbage collection (the collector stays enabled while timing)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Paired:
    """Seconds of each repetition of a baseline and a candidate, and their ratios."""

    baseline: tuple[float, ...]
    candidate: tuple[float, ...]

    @property
    def ratios(self) -> tuple[float, ...]:
        """Candidate speed over baseline speed, per repetition (baseline seconds / candidate seconds)."""
        return tuple(b / c for b, c in zip(self.baseline, self.candidate))


def paired(baseline: Trial, candidate: Trial, repetitions: int, *, warmup: Sequence[Trial] = ()) -> Paired:
    """Run the two trials back to back ``repetitions`` times, alternating which goes first.

    Alternating cancels slow drifts (a neighbour's load, the page cache
    warming up); pairing means each ratio compares two runs made moments apart.
    ``warmup`` trials run once first and are not recorded.
    """
    for trial in warmup:
        trial()
    base: list[float] = []
    cand: list[float] = []
    for rep in range(repetitions):
        if rep % 2 == 0:
            base.append(baseline())
            cand.append(candidate())
        else:
            cand.append(candidate())
            base.append(baseline())
    return Paired(tuple(base), tuple(cand))


def rotated(trials: Mapping[str, Trial], repetitions: int, *, warmup: bool = True) -> dict[str, tuple[float, ...]]:
    """Seconds of each repetition of several trials, run back to back, the order rotating each repetition.

    ``paired`` for more than two: repetition ``r`` starts with the ``r``-th
    trial (modulo their number), so each one goes first, in the middle and
    last equally often, and the ratio of any two trials can be taken per
    repetition. With ``warmup``, every trial runs once first, unrecorded.
    """
    names = list(trials)
    if warmup:
        for name in names:
            trials[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repetitions):
        shift = rep % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            seconds[name].append(trials[name]())
    return {name: tuple(values) for name, values in seconds.items()}


def rate(count: int, seconds: float) -> float:
    """Items per second (NaN for a zero duration)."""
    return count / seconds if seconds > 0 else float("nan")


def fmt_rate(value: float) -> str:
    """Events per second with thousands separators."""
    return "n/a" if not math.isfinite(value) else f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    """A ratio such as ``0.62x``."""
    return "n/a" if not math.isfinite(value) else f"{value:.2f}x"


def goal_cell(met: bool, text: str) -> str:
    """A goal cell: its text and whether this run met it."""
    return f"{text} " + ("(met)" if met else "(not met)")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A GitHub-flavoured markdown table; ``align`` holds one of ``l``/``r``/``c`` per column (default left)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    marks = {"l": ":{}", "r": "{}:", "c": ":{}:"}
    rule = []
    for i, width in enumerate(widths):
        kind = align[i] if i < len(align) else "l"
        dashes = "-" * max(width - (2 if kind == "c" else 1), 1)
        rule.append(marks.get(kind, ":{}").format(dashes))

    def line(row: Sequence[str]) -> str:
        just = {"r": str.rjust, "c": str.center}
        padded = [just.get(align[i : i + 1], str.ljust)(row[i], widths[i]) for i in range(len(row))]
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(cells[0]), "| " + " | ".join(rule) + " |", *(line(r) for r in cells[1:])])


def environment() -> dict[str, Any]:
    """Where the figures were measured, for the results file."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def memory_mb() -> tuple[float, float]:
    """This process's resident set size now and its peak, in MiB.

    From ``/proc/self/status`` (``VmRSS``, ``VmHWM``) on Linux; elsewhere the
    current size is NaN and the peak comes from ``getrusage`` (KiB on Linux,
    bytes on macOS).
    """
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    except OSError:
        pass
    if "VmHWM" not in found:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        found["VmHWM"] = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return found.get("VmRSS", float("nan")), found["VmHWM"]


def reset_peak_memory() -> bool:
    """Reset the peak RSS (``VmHWM``) to the current RSS, where Linux allows it; returns whether it did.

    So a benchmark can report the peak of its own phase rather than of everything the process ran before.
    """
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def db_bytes(path: str) -> int:
    """Bytes a database takes on disk: the main file plus its ``-wal`` (checkpoint first to fold the WAL in)."""
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(path + suffix)
        except FileNotFoundError:
            pass
    return total


def checkpoint(path: str) -> None:
    """Fold a WAL-mode file's WAL into the main file and truncate it (``wal_checkpoint(TRUNCATE)``).

    Opens its own connection; any other connection to the file must be idle (no open transaction).
    """
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    if busy:
        raise RuntimeError(f"checkpoint of {path} was blocked by another connection")


def missing_figures(figures: Mapping[str, object]) -> list[str]:
    """Names of figures that were not produced (absent, non-numeric, NaN, infinite or not positive)."""
    bad = []
    for name, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            bad.append(name)
    return bad


def write_results(payload: Mapping[str, Any], name: str = "latest.json") -> Path:
    """Write ``payload`` as JSON under ``benchmarks/results/`` (created when missing); returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def now_utc() -> str:
    """The current UTC time as ISO-8601 text."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ScratchDir:
    """A temporary directory handing out fresh SQLite file paths, and removing them with their WAL files.

    It honours ``TMPDIR``, so ``TMPDIR=/some/disk python -m benchmarks`` measures another disk.
    """

    def __init__(self, prefix: str = "ledger-bench-") -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self.path = Path(self._dir.name)
        self._count = 0

    def new_db(self, stem: str = "bench") -> str:
        """A path for a new database file that does not exist yet."""
        self._count += 1
        return str(self.path / f"{stem}-{self._count}.db")

    @staticmethod
    def remove_db(path: str) -> None:
        """Delete a database file and its ``-wal``/``-shm`` companions, if present."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass

    def cleanup(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> ScratchDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
