"""Session loads (now and as of a version), storage per event, replay and memory: Ledger vs raw ``sqlite3``.

What it measures, on one session grown to 1k, 10k, 100k and 1M events
(``--quick``: 1k and 10k), built once with the append benchmark's mix and a
fixed seed (see "Workload"):

* current-state load: ``ledger.get_session(sid)`` with the session's state
  evicted from the ledger's in-process state cache before every call
  (untimed), so each call really reads: the session's latest version, the
  newest usable snapshot, the events after it, the fold, and the copy handed
  to the caller. The eviction uses only the public API: the measuring ledger
  is opened with ``cache_size=1`` (its state cache is an LRU of one session)
  and the untimed step loads a second, one-event session (``EVICTOR_ID``),
  which takes the only slot. That session exists only in the files the loads
  use: copies of the built files, made for the loads, where the measuring
  ledger creates it (then ``wal_checkpoint(TRUNCATE)``, so the loads read no
  WAL, as before) and which are deleted after the loads; the storage,
  raw-copy and replay figures read the built files, which never hold it.
  With snapshots (the default ``snapshot_every=100``) and without (a copy
  with its snapshots deleted, opened with ``snapshot_every=0``, so the whole
  history is folded).
* as-of load: ``ledger.get_session(sid, version=v)`` at a random version
  (fixed seed, a new one per call), evicted the same way. Note that the
  public path also resolves the session's current state first (to check the
  version exists), so with a cold cache it pays for a current load too.
* Baseline for both loads: a plain ``sqlite3`` connection on the same file
  doing ``SELECT`` of the session's last event row (as-of: the row at ``v``)
  and ``msgspec.json.decode`` of its payload: the least any load can do. The
  ratio ledger/raw is a time ratio of the p50s (above 1: the ledger is
  slower), per round, median with its min..max. Flatness is the ledger's
  p50 at the largest size over its p50 at 1k, per round, median.
* storage: the snapshot bytes of the session (``sum(length(state))`` of its
  snapshots, count and mean size) against its event count, and the file's
  bytes per event (main file + WAL after ``wal_checkpoint(TRUNCATE)``, so
  events, snapshots, projections and free pages), split by ``dbstat`` into
  the events table with its indexes, the projections and the snapshots.
  Baseline: the same rows copied into a new raw ``sqlite3`` file holding only
  the equivalent events table (the append benchmark's schema: the same
  columns, ``UNIQUE`` event id, ``UNIQUE (session_id, version)``), measured
  the same way. The lazy full-text index is not built by appends; for sizes
  up to 100k the file is measured a second time after a search has built it.
* replay: ``ledger.replay(into=new_file)`` of the 100k-event ledger
  (``--quick``: 10k) in events/s: a new ledger file with every event checked
  along the chain, the snapshots copied and every projection rebuilt (the
  full-text index too: the new ledger builds it when it is closed). Baseline: a
  raw ``sqlite3`` copy of the same rows: ``SELECT`` of every event row and
  ``executemany`` ``INSERT`` into the equivalent table in a new file, WAL and
  ``synchronous=NORMAL`` like the ledger's default, one transaction. Paired
  repetitions (alternating which goes first, one untimed warm-up of each);
  ratio = ledger ev/s / raw ev/s, median with min..max.
* memory while appending: the process's resident set (``VmRSS``) and its
  peak (``VmHWM``, reset before the build where Linux allows it) sampled
  every 100k events (``--quick``: every 1k) while the session is built, and
  the growth of the samples (largest over the first): flat means no growth
  with the length of the log.

Workload (fixed seed): one session, created, then ~70% ``add_message``
(200-byte content, roles alternating, a model and token counts), ~10% each
``set_metadata`` (20 distinct keys), ``set_data`` (20 keys, a small JSON
object) and ``link_invocation`` (6 tools, duration, tokens, cost), so the
state stays bounded while the log grows. It is built untimed with
``ledger.batch()`` of 1000 commands, and copied (SQLite backup API) when it
reaches each size. Each size is N + 99 events, so the newest snapshot is 99
events behind the head: the worst case of the default policy (a length that
is a multiple of 100 would load from a snapshot at its head, with no tail).

Timing: ``rounds`` rounds; in each, ``calls`` calls of every with-snapshot
cell interleaved call by call, raw and ledger alternating which goes first,
then the same for the no-snapshot cells (kept apart, so that their large
allocations do not land in the fast cells' timings). A no-snapshot cell is
probed once first and gets as many calls as fit in a time budget (3 s per
cell), spread over the rounds; one whose load does not fit the budget twice
is measured once (the probe, and the table says so); one slower than 10 s is
not repeated and neither are its as-of load and the larger sizes: the table
says they were skipped. Reported: p50 and p95 in ms over all calls of a cell.

Targets, printed next to the figures and never asserted: with snapshots,
current load p50 <= 1 ms and flat (<= 1.5x from 1k to 1M), as-of load p50
<= 1.5 ms; bytes per event constant from 1k to 100k (read here as max/min
<= 1.25x) and <= 3x the raw event row; memory while appending flat (read
here as the largest sample <= 1.10x the first). ``--quick`` only checks that
every figure was produced.
"""

from __future__ import annotations

import gc
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import msgspec

from ledger import Ledger

from ._harness import (
    Options,
    Paired,
    ScratchDir,
    checkpoint,
    db_bytes,
    fmt_ms,
    fmt_rate,
    fmt_ratio,
    goal_cell,
    markdown_table,
    memory_mb,
    paired,
    percentile,
    rate,
    reset_peak_memory,
    summarize,
    timed,
)
from .bench_append import _MODELS, _STATUSES, _TOOLS, RAW_INSERT, RAW_SCHEMA, _text

NAME = "load"
TITLE = "Session load, as-of load, storage, replay and memory: Ledger vs raw sqlite3 on the same file"


@dataclass(frozen=True)
class Params:
    """Sizes of one run."""

    sizes: tuple[int, ...]  # nominal session lengths; each session has size + snapshot_every - 1 events
    rounds: int  # repetitions of the load timings (each gives one ratio)
    calls: int  # timed calls per cell per round (no-snapshot cells: fewer, within slow_budget)
    slow_budget: float  # seconds a no-snapshot cell may take over all rounds
    skip_seconds: float  # a load slower than this is run once, reported, and not repeated
    replay_size: int  # nominal size of the ledger that replay copies
    replay_repetitions: int
    rss_every: int  # events between two memory samples while building
    fts_up_to: int  # measure the file again with the full-text index built, up to this size
    chunk: int = 1000  # commands per ledger.batch() while building
    snapshot_every: int = 100  # the default policy
    seed: int = 20240604


FULL = Params(
    sizes=(1_000, 10_000, 100_000, 1_000_000),
    rounds=7,
    calls=100,
    slow_budget=3.0,
    skip_seconds=10.0,
    replay_size=100_000,
    replay_repetitions=3,
    rss_every=100_000,
    fts_up_to=100_000,
)
QUICK = Params(
    sizes=(1_000, 10_000),
    rounds=2,
    calls=5,
    slow_budget=0.3,
    skip_seconds=10.0,
    replay_size=10_000,
    replay_repetitions=2,
    rss_every=1_000,
    fts_up_to=10_000,
)

SESSION_ID = "bench-load-session"
EVICTOR_ID = "bench-load-evictor"  # a one-event session in the load copies only: loading it evicts SESSION_ID
META_KEYS = tuple(f"meta_{i:02d}" for i in range(20))
DATA_KEYS = tuple(f"step_{i:02d}" for i in range(20))

# Goals, printed and never asserted.
CURRENT_P50_MS = 1.0
AS_OF_P50_MS = 1.5
FLAT_TARGET = 1.5  # p50 at the largest size / p50 at 1k
BYTES_TARGET = 3.0  # ledger bytes per event / raw event-table bytes per event
CONSTANT_TARGET = 1.25  # max/min of bytes per event over the sizes up to 100k
RSS_TARGET = 1.10  # largest memory sample / first sample while appending

KINDS = ("current", "as_of")
VARIANTS = ("snapshots", "no_snapshots")

_COLUMNS = "position, event_id, session_id, version, type, schema, recorded_at, data, hash"
LAST_ROW = f"SELECT {_COLUMNS} FROM events WHERE session_id = ? ORDER BY version DESC LIMIT 1"
ROW_AT = f"SELECT {_COLUMNS} FROM events WHERE session_id = ? AND version = ?"
ALL_ROWS = f"SELECT {_COLUMNS} FROM events ORDER BY position"

Command = tuple[str, tuple[Any, ...], dict[str, Any]]


def label(size: int) -> str:
    """``1_000`` -> ``1k``, ``1_000_000`` -> ``1M``."""
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


# -- workload ---------------------------------------------------------------------------


def session_commands(session_id: str, rng: random.Random) -> Iterator[Command]:
    """An endless stream of commands on one session (the append benchmark's mix), one at a time.

    Generated as they are used, so that building a 1M-event session holds no
    list of a million commands (it would show in the memory samples).
    """
    messages = 0
    n = 0
    while True:
        n += 1
        draw = rng.random()
        if draw < 0.7:
            role = ("user", "assistant")[messages % 2]
            messages += 1
            tokens = {"input": rng.randint(10, 4000), "output": rng.randint(10, 1500)}
            yield "add_message", (session_id, role, _text(rng, 200)), {"model": rng.choice(_MODELS), "tokens": tokens}
        elif draw < 0.8:
            value: Any = rng.choice((rng.randint(0, 100), _text(rng, 20)))
            yield "set_metadata", (session_id, rng.choice(META_KEYS), value), {}
        elif draw < 0.9:
            value = {"status": rng.choice(_STATUSES), "attempt": rng.randint(1, 5), "note": _text(rng, 40)}
            yield "set_data", (session_id, rng.choice(DATA_KEYS), value), {}
        else:
            kwargs = {
                "duration_ms": round(rng.uniform(1, 900), 3),
                "tokens": {"input": rng.randint(0, 2000), "output": rng.randint(0, 800)},
                "cost": round(rng.uniform(0, 0.05), 6),
            }
            yield "link_invocation", (session_id, f"inv-{n:07d}", rng.choice(_TOOLS)), kwargs


# -- storage figures ------------------------------------------------------------------------


def _breakdown(conn: sqlite3.Connection) -> dict[str, int] | None:
    """Bytes of the events table with its indexes, of the snapshots, and of everything else (``dbstat``)."""
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:  # SQLite built without the dbstat table
        return None
    parts = {"events": 0, "snapshots": 0, "projections": 0}
    for name, size in rows:
        if name in ("events", "snapshots"):
            parts[name] += size
        elif name.startswith("sqlite_autoindex_events_"):
            parts["events"] += size
        elif name.startswith("sqlite_autoindex_snapshots_"):
            parts["snapshots"] += size
        else:
            parts["projections"] += size  # read tables, their indexes, metadata, the schema
    return parts


def measure_file(path: str, events: int) -> dict[str, Any]:
    """Checkpoint the file and measure its bytes, its breakdown and the session's snapshots."""
    checkpoint(path)
    size = db_bytes(path)
    conn = sqlite3.connect(path)
    try:
        count, snap_bytes = conn.execute(
            "SELECT count(*), coalesce(sum(length(state)), 0) FROM snapshots WHERE session_id = ?", (SESSION_ID,)
        ).fetchone()
        parts = _breakdown(conn)
    finally:
        conn.close()
    out: dict[str, Any] = {
        "events": events,
        "file_bytes": size,
        "bytes_per_event": size / events,
        "snapshots": count,
        "snapshot_bytes": snap_bytes,
        "bytes_per_snapshot": snap_bytes / count if count else 0.0,
        "snapshot_bytes_per_event": snap_bytes / events,
    }
    if parts is not None:
        parts["free"] = max(size - sum(parts.values()), 0)
        out["breakdown_bytes_per_event"] = {k: v / events for k, v in parts.items()}
    return out


def backup(src: str, dst: str) -> None:
    """Copy a database file page by page (SQLite's online backup), WAL included."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def raw_copy(src: str, dst: str) -> int:
    """Copy every event row of ``src`` into the equivalent raw events table in a new file, one transaction.

    WAL and ``synchronous=NORMAL``, like a ledger at its default durability. Returns the rows copied.
    """
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst, isolation_level=None)
    try:
        target.execute("PRAGMA journal_mode=WAL")
        target.execute("PRAGMA synchronous=NORMAL")
        target.execute(RAW_SCHEMA)
        target.execute("BEGIN IMMEDIATE")
        target.executemany(RAW_INSERT, source.execute(ALL_ROWS))
        target.execute("COMMIT")
        (count,) = target.execute("SELECT count(*) FROM events").fetchone()
    finally:
        target.close()
        source.close()
    return count  # type: ignore[no-any-return]


# -- building the session ---------------------------------------------------------------------


@dataclass
class Build:
    """The session as built: a copy of the file at each size, and what was measured on the way."""

    copies: dict[int, str]  # nominal size -> path of the file when the session had size + tail events
    storage: dict[int, dict[str, Any]]
    memory: list[tuple[int, float, float]]  # (events appended, RSS MiB, peak RSS MiB)
    peak_reset: bool
    events: int
    seconds: float  # appending only (copies and measurements excluded)


def build(scratch: ScratchDir, params: Params) -> Build:
    """Grow one session through every size (untimed, in batches), copying the file at each size."""
    tail = params.snapshot_every - 1
    targets = {size + tail: size for size in params.sizes}
    last = max(targets)
    marks = set(range(params.rss_every, last + 1, params.rss_every))
    stops = sorted(set(targets) | marks)
    commands = session_commands(SESSION_ID, random.Random(params.seed))
    path = scratch.new_db("load-build")
    copies: dict[int, str] = {}
    storage: dict[int, dict[str, Any]] = {}
    gc.collect()
    peak_reset = reset_peak_memory()
    memory = [(0, *memory_mb())]
    seconds = 0.0
    ledger = Ledger(path, snapshot_every=params.snapshot_every)
    try:
        start = time.perf_counter()
        ledger.create_session(SESSION_ID, user_id="user-1", purpose="a long-running agent session")
        version = 1
        seconds += time.perf_counter() - start
        begin = ledger.batch
        for stop in stops:
            start = time.perf_counter()
            while version < stop:
                count = min(params.chunk, stop - version)
                with begin():
                    for _ in range(count):
                        name, args, kwargs = next(commands)
                        version = getattr(ledger, name)(*args, **kwargs)
            seconds += time.perf_counter() - start
            if stop in marks:
                memory.append((stop, *memory_mb()))
            if stop in targets:
                size = targets[stop]
                storage[size] = measure_file(path, stop)  # the build ledger is idle: no open transaction
                copies[size] = scratch.new_db(f"load-{label(size)}")
                backup(path, copies[size])
        head = ledger.last_position
    finally:
        ledger.close()
    scratch.remove_db(path)
    if head != last:
        raise RuntimeError(f"building the session stored {head} events, not {last}")
    return Build(copies, storage, memory, peak_reset, last, seconds)


# -- load timings ---------------------------------------------------------------------------


def open_cold(path: str, snapshot_every: int) -> tuple[Ledger, Callable[[], None]]:
    """A measuring ledger on ``path`` and its untimed eviction step, public API only.

    The ledger is opened with ``cache_size=1``: its state cache is an LRU of
    one session. It creates the one-event session ``EVICTOR_ID`` in the file
    (so only call this on a file made for the loads), then the file is
    checkpointed (``wal_checkpoint(TRUNCATE)``) so the loads read no WAL. The
    returned step loads that session, which takes the cache's only slot: the
    next ``get_session`` of any other session is a cold load (its latest
    version, the newest usable snapshot, the events after it, the fold).
    """
    ledger = Ledger(path, snapshot_every=snapshot_every, cache_size=1)
    try:
        ledger.create_session(EVICTOR_ID)
        checkpoint(path)  # the measuring ledger is idle: no open transaction
    except BaseException:
        ledger.close()
        raise
    get_session = ledger.get_session

    def evict() -> None:
        get_session(EVICTOR_ID)

    return ledger, evict


@dataclass
class Cell:
    """One (size, snapshots or not, current or as-of) pair of loads: raw and ledger, each taking the version."""

    size: int
    events: int
    variant: str
    kind: str
    raw: Callable[[int | None], object]
    ledger: Callable[[int | None], object]
    clear: Callable[[], None]  # run untimed before each ledger call
    versions: list[list[int | None]]  # per round, per call: the version to load (None: current)
    calls: int = 0
    rounds_run: int = 1_000_000  # the rounds this cell takes part in (the first ones)
    single: bool = False  # measured once, by the probe (too slow to repeat within the budget)
    probe: float | None = None  # seconds of the first no-snapshot call
    probe_peak_mb: float | None = None  # peak RSS during that call
    skipped: str | None = None

    @property
    def key(self) -> str:
        return f"{self.variant}.{self.kind}.{label(self.size)}"


def make_cell(
    size: int,
    events: int,
    variant: str,
    kind: str,
    ledger: Ledger,
    evict: Callable[[], None],
    conn: sqlite3.Connection,
    params: Params,
) -> Cell:
    """A cell, after checking once (untimed) that both sides load what they should.

    ``ledger`` and ``evict`` come from :func:`open_cold`: ``evict`` runs untimed before every ledger call.
    """
    get_session = ledger.get_session
    execute = conn.execute
    decode = msgspec.json.decode
    rng = random.Random(f"{params.seed}-{size}-{variant}-{kind}")
    versions: list[list[int | None]]
    if kind == "current":

        def raw(_: int | None) -> object:
            return decode(execute(LAST_ROW, (SESSION_ID,)).fetchone()[7])

        def ours(_: int | None) -> object:
            return get_session(SESSION_ID)

        versions = [[None] * params.calls for _ in range(params.rounds)]
        checks: list[int | None] = [None]
    else:

        def raw(version: int | None) -> object:
            return decode(execute(ROW_AT, (SESSION_ID, version)).fetchone()[7])

        def ours(version: int | None) -> object:
            return get_session(SESSION_ID, version=version)

        versions = [[rng.randint(1, events) for _ in range(params.calls)] for _ in range(params.rounds)]
        checks = [1, events // 2, events]
    evict()
    for version in checks:
        want = version or events
        row = execute(ROW_AT if version else LAST_ROW, (SESSION_ID, version) if version else (SESSION_ID,)).fetchone()
        # Without snapshots a ledger load of a large session takes seconds: its probe checks it instead.
        got = get_session(SESSION_ID, version=version).version if variant == "snapshots" else want
        if got != want or row[3] != want:
            raise RuntimeError(f"{size}-event session ({variant}): loaded versions {got}/{row[3]}, not {want}")
        evict()
    return Cell(size, events, variant, kind, raw, ours, evict, versions, calls=params.calls)


def probe(cell: Cell, params: Params) -> None:
    """Time one ledger call of a no-snapshot cell and fit its calls into the time budget (or skip it).

    The cell gets as many calls as ``slow_budget`` allows, spread over the
    rounds (one per round, in fewer rounds, when they do not all fit). When
    not even two fit, the probe is its one sample; when the probe took more
    than ``skip_seconds``, the cell is reported as skipped.
    """
    gc.collect()
    reset = reset_peak_memory()
    cell.clear()
    version = cell.versions[0][0]
    start = time.perf_counter()
    state = cell.ledger(version)
    cell.probe = time.perf_counter() - start
    want = version or cell.events
    if getattr(state, "version", None) != want:
        raise RuntimeError(f"{cell.key}: the load returned version {getattr(state, 'version', None)}, not {want}")
    if reset:
        cell.probe_peak_mb = memory_mb()[1]
    total = int(params.slow_budget / cell.probe)
    if cell.probe > params.skip_seconds:
        cell.skipped = f"one load took {cell.probe:.1f} s (> {params.skip_seconds:g} s): not repeated"
        cell.calls = 0
    elif total <= 1:
        cell.single = True  # the probe is the sample; only the raw side is timed in the rounds
    elif total >= params.rounds:
        cell.calls = min(params.calls, total // params.rounds)
    else:
        cell.rounds_run, cell.calls = total, 1


def measure(cells: list[Cell], rounds: int) -> dict[tuple[str, str], list[list[float]]]:
    """Seconds of every call, by (cell, side) and round; calls interleaved across the cells."""
    samples: dict[tuple[str, str], list[list[float]]] = {
        (c.key, side): [[] for _ in range(rounds)] for c in cells for side in ("raw", "ledger")
    }
    for cell in cells:  # warm-up: statement caches, page cache
        for _ in range(3 if cell.probe is None else 1):
            cell.raw(cell.versions[0][0])
            if cell.probe is None:
                cell.clear()
                cell.ledger(cell.versions[0][0])
    clock = time.perf_counter
    most = max((c.calls for c in cells), default=0)
    for r in range(rounds):
        gc.collect()
        for i in range(most):
            for cell in cells:
                if i >= cell.calls or r >= cell.rounds_run:
                    continue
                version = cell.versions[r][i]
                raw_samples = samples[(cell.key, "raw")][r]
                ours_samples = samples[(cell.key, "ledger")][r]
                for side in (("raw", "ledger") if (i + r) % 2 == 0 else ("ledger", "raw")):
                    if side == "raw":
                        start = clock()
                        cell.raw(version)
                        raw_samples.append(clock() - start)
                    elif not cell.single:
                        cell.clear()
                        start = clock()
                        cell.ledger(version)
                        ours_samples.append(clock() - start)
    for cell in cells:
        if cell.single and cell.probe is not None:
            samples[(cell.key, "ledger")][0].append(cell.probe)
    return samples


def _pool(rounds: list[list[float]]) -> list[float]:
    return [s for samples in rounds for s in samples]


def _p50s(rounds: list[list[float]]) -> list[float]:
    return [percentile(samples, 50) for samples in rounds if samples]


# -- replay -------------------------------------------------------------------------------


def replay_pair(scratch: ScratchDir, path: str, events: int, repetitions: int) -> Paired:
    """Paired timings of the raw row copy and ``ledger.replay(into=...)`` of the file at ``path``."""
    ledger = Ledger(path)
    try:
        digest = ledger.digest()

        def ours() -> float:
            out = scratch.new_db("replay")
            got: list[Any] = []
            try:
                seconds = timed(lambda: got.append(ledger.replay(into=out)))
            finally:
                scratch.remove_db(out)
            if got != [digest]:
                raise RuntimeError(f"replay ended at {got}, not at the source's head {digest}")
            return seconds

        def raw() -> float:
            out = scratch.new_db("replay-raw")
            copied: list[int] = []
            try:
                seconds = timed(lambda: copied.append(raw_copy(path, out)))
            finally:
                scratch.remove_db(out)
            if copied != [events]:
                raise RuntimeError(f"the raw copy stored {copied} rows, not {events}")
            return seconds

        return paired(raw, ours, repetitions, warmup=(raw, ours))
    finally:
        ledger.close()


# -- the benchmark ------------------------------------------------------------------------------


@dataclass
class Opened:
    """The ledgers and raw connections open on the copies, closed at the end."""

    ledgers: list[Ledger] = field(default_factory=list)
    conns: list[sqlite3.Connection] = field(default_factory=list)

    def close(self) -> None:
        for ledger in self.ledgers:
            ledger.close()
        for conn in self.conns:
            conn.close()


def run(options: Options) -> dict[str, Any]:
    """Build the session, time every load, measure storage, replay and memory; return tables and figures."""
    base = QUICK if options.quick else FULL
    params = replace(
        base,
        rounds=options.repetitions(FULL.rounds, QUICK.rounds),
        replay_repetitions=options.repetitions(FULL.replay_repetitions, QUICK.replay_repetitions),
    )
    tail = params.snapshot_every - 1
    figures: dict[str, float] = {}
    results: dict[str, Any] = {}
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 2)
        mark = now

    with ScratchDir() as scratch:
        built = build(scratch, params)
        phase("build and copy at each size")
        sizes = params.sizes
        events_of = {size: size + tail for size in sizes}

        # The files the loads use, where open_cold adds the evictor session: copies of the built files,
        # which stay as built for the storage, raw-copy and replay figures; and files without snapshots
        # (the same events, snapshots deleted).
        loaded: dict[int, str] = {}
        bare: dict[int, str] = {}
        for size in sizes:
            loaded[size] = scratch.new_db(f"load-{label(size)}-loads")
            backup(built.copies[size], loaded[size])
            bare[size] = scratch.new_db(f"load-{label(size)}-bare")
            backup(built.copies[size], bare[size])
            conn = sqlite3.connect(bare[size])
            with conn:
                conn.execute("DELETE FROM snapshots")
            conn.close()
        phase("copies for the loads, with and without snapshots")

        # -- loads
        opened = Opened()
        try:
            cells: dict[str, list[Cell]] = {v: [] for v in VARIANTS}
            for variant in VARIANTS:
                for size in sizes:
                    path = loaded[size] if variant == "snapshots" else bare[size]
                    every = params.snapshot_every if variant == "snapshots" else 0
                    ledger, evict = open_cold(path, every)
                    opened.ledgers.append(ledger)
                    conn = sqlite3.connect(path)
                    opened.conns.append(conn)
                    for kind in KINDS:
                        cells[variant].append(
                            make_cell(size, events_of[size], variant, kind, ledger, evict, conn, params)
                        )
            too_slow: str | None = None
            for cell in cells["no_snapshots"]:  # sizes ascending, current before as-of
                if too_slow is not None:
                    cell.skipped = too_slow
                    continue
                probe(cell, params)
                if cell.skipped is not None:
                    too_slow = f"not run: a smaller or equal load without snapshots took {cell.probe:.1f} s"
            samples = measure(cells["snapshots"], params.rounds)
            samples.update(measure([c for c in cells["no_snapshots"] if c.skipped is None], params.rounds))
        finally:
            opened.close()
            for path in loaded.values():
                scratch.remove_db(path)
        phase("loads")

        # -- storage: raw baseline files, and the full-text index built
        for size in sizes:
            raw_path = scratch.new_db(f"load-{label(size)}-raw")
            copied = raw_copy(built.copies[size], raw_path)
            if copied != events_of[size]:
                raise RuntimeError(f"raw copy of the {label(size)} file stored {copied} rows, not {events_of[size]}")
            checkpoint(raw_path)
            built.storage[size]["raw_file_bytes"] = db_bytes(raw_path)
            built.storage[size]["raw_bytes_per_event"] = db_bytes(raw_path) / events_of[size]
            scratch.remove_db(raw_path)
            if size <= params.fts_up_to:
                with Ledger(built.copies[size]) as ledger:
                    ledger.search_messages("agent", limit=1)  # builds the lazy full-text index
                checkpoint(built.copies[size])
                built.storage[size]["fts_bytes_per_event"] = db_bytes(built.copies[size]) / events_of[size]

        phase("storage baselines and full-text index")

        # -- replay
        replay_size = params.replay_size if params.replay_size in sizes else max(sizes)
        replay = replay_pair(scratch, built.copies[replay_size], events_of[replay_size], params.replay_repetitions)
        phase("replay")
        for path in (*built.copies.values(), *bare.values()):
            scratch.remove_db(path)

    # -- load tables and figures
    load_rows: list[list[str]] = []
    load_results: list[dict[str, Any]] = []
    by_key: dict[str, Cell] = {c.key: c for cs in cells.values() for c in cs}
    for variant in VARIANTS:
        for cell in cells[variant]:
            key = cell.key
            snap_text = f"every {params.snapshot_every}" if variant == "snapshots" else "none"
            load_text = "current" if cell.kind == "current" else "as of a random version"
            entry: dict[str, Any] = {
                "size": cell.size, "events": cell.events, "variant": variant, "kind": cell.kind,
                "calls_per_round": cell.calls, "probe_seconds": cell.probe, "probe_peak_rss_mib": cell.probe_peak_mb,
                "skipped": cell.skipped,
            }
            if cell.skipped is not None:
                if cell.probe is not None:
                    figures[f"{key}.single_load_ms"] = cell.probe * 1000
                load_rows.append(
                    [f"{cell.events:,}", snap_text, load_text, "1" if cell.probe is not None else "0", "n/a", "n/a",
                     fmt_ms(cell.probe) if cell.probe is not None else "n/a", "n/a", "n/a", "", f"skipped: {cell.skipped}"]
                )
                load_results.append(entry)
                continue
            raw, ours = samples[(key, "raw")], samples[(key, "ledger")]
            raw_all, ours_all = _pool(raw), _pool(ours)
            ratio = summarize(o / r for o, r in zip(_p50s(ours), _p50s(raw)))
            p = {
                "raw_p50_ms": percentile(raw_all, 50) * 1000,
                "raw_p95_ms": percentile(raw_all, 95) * 1000,
                "ledger_p50_ms": percentile(ours_all, 50) * 1000,
                "ledger_p95_ms": percentile(ours_all, 95) * 1000,
            }
            for name, value in p.items():
                figures[f"{key}.{name}"] = value
            figures[f"{key}.ledger_over_raw"] = ratio.median
            goal = "measured once: one load does not fit the time budget twice" if cell.single else ""
            if variant == "snapshots":
                limit = CURRENT_P50_MS if cell.kind == "current" else AS_OF_P50_MS
                goal = goal_cell(p["ledger_p50_ms"] <= limit, f"p50 <= {limit:g} ms")
            load_rows.append(
                [
                    f"{cell.events:,}", snap_text, load_text, str(len(ours_all)),
                    fmt_ms(p["raw_p50_ms"] / 1000), fmt_ms(p["raw_p95_ms"] / 1000),
                    fmt_ms(p["ledger_p50_ms"] / 1000), fmt_ms(p["ledger_p95_ms"] / 1000),
                    fmt_ratio(ratio.median), f"{ratio.min:.2f}..{ratio.max:.2f}", goal,
                ]
            )
            load_results.append(
                {**entry, **{k: round(v, 5) for k, v in p.items()}, "ledger_over_raw": ratio.as_dict(),
                 "raw_seconds": raw, "ledger_seconds": ours}
            )
    results["loads"] = load_results

    flat_rows: list[list[str]] = []
    smallest = sizes[0]
    for variant in VARIANTS:
        for kind in KINDS:
            measured = [s for s in sizes if by_key[f"{variant}.{kind}.{label(s)}"].skipped is None]
            largest = measured[-1]
            if largest == smallest:
                continue
            small, large = (samples[(f"{variant}.{kind}.{label(s)}", "ledger")] for s in (smallest, largest))
            raw_small, raw_large = (samples[(f"{variant}.{kind}.{label(s)}", "raw")] for s in (smallest, largest))
            scale = summarize(b / a for a, b in zip(_p50s(small), _p50s(large)))
            raw_scale = summarize(b / a for a, b in zip(_p50s(raw_small), _p50s(raw_large)))
            name = f"{variant}.{kind}.flatness"
            figures[f"{name}.{label(largest)}_over_{label(smallest)}"] = scale.median
            figures[f"{name}.raw_{label(largest)}_over_{label(smallest)}"] = raw_scale.median
            goal = ""
            if variant == "snapshots" and kind == "current":
                goal = goal_cell(scale.median <= FLAT_TARGET, f"<= {FLAT_TARGET:g}x")
                if largest != max(sizes):
                    goal += f" (only up to {label(largest)})"
            flat_rows.append(
                [
                    f"every {params.snapshot_every}" if variant == "snapshots" else "none",
                    "current" if kind == "current" else "as of a random version",
                    fmt_ms(percentile(_pool(small), 50)),
                    f"{largest + tail:,}",
                    fmt_ms(percentile(_pool(large), 50)),
                    fmt_ratio(scale.median),
                    f"{scale.min:.2f}..{scale.max:.2f}",
                    fmt_ratio(raw_scale.median),
                    goal,
                ]
            )
            results.setdefault("flatness", []).append(
                {"variant": variant, "kind": kind, "smallest": smallest, "largest": largest,
                 "ledger_largest_over_smallest": scale.as_dict(), "raw_largest_over_smallest": raw_scale.as_dict()}
            )

    # -- storage table
    storage_rows: list[list[str]] = []
    constant_sizes = [s for s in sizes if s <= 100_000]
    for size in sizes:
        st = built.storage[size]
        ratio_bytes = st["bytes_per_event"] / st["raw_bytes_per_event"]
        key = f"storage.{label(size)}"
        figures[f"{key}.snapshots"] = st["snapshots"]
        figures[f"{key}.snapshot_bytes"] = st["snapshot_bytes"]
        figures[f"{key}.bytes_per_snapshot"] = st["bytes_per_snapshot"]
        figures[f"{key}.snapshot_bytes_per_event"] = st["snapshot_bytes_per_event"]
        figures[f"{key}.ledger_bytes_per_event"] = st["bytes_per_event"]
        figures[f"{key}.raw_bytes_per_event"] = st["raw_bytes_per_event"]
        figures[f"{key}.ledger_over_raw"] = ratio_bytes
        parts = st.get("breakdown_bytes_per_event")
        split = " / ".join(f"{parts[k]:.0f}" for k in ("events", "projections", "snapshots", "free")) if parts else "n/a"
        fts = st.get("fts_bytes_per_event")
        if fts is not None:
            figures[f"{key}.with_fts_bytes_per_event"] = fts
            figures[f"{key}.with_fts_over_raw"] = fts / st["raw_bytes_per_event"]
        storage_rows.append(
            [
                f"{st['events']:,}",
                f"{st['snapshots']:,}",
                f"{st['snapshot_bytes']:,}",
                f"{st['bytes_per_snapshot']:.0f}",
                f"{st['snapshot_bytes_per_event']:.2f}",
                f"{st['bytes_per_event']:.0f}",
                split,
                f"{st['raw_bytes_per_event']:.0f}",
                fmt_ratio(ratio_bytes),
                f"{fts:.0f} ({fts / st['raw_bytes_per_event']:.2f}x)" if fts is not None else "not measured",
                goal_cell(ratio_bytes <= BYTES_TARGET, f"<= {BYTES_TARGET:g}x raw"),
            ]
        )
    results["storage"] = {str(size): built.storage[size] for size in sizes}

    constant_rows: list[list[str]] = []
    for name, field_name, target in (
        ("ledger file bytes per event", "bytes_per_event", CONSTANT_TARGET),
        ("snapshot bytes per event (total snapshot bytes linear in events)", "snapshot_bytes_per_event", CONSTANT_TARGET),
        ("bytes per snapshot", "bytes_per_snapshot", None),
        ("raw events-table bytes per event", "raw_bytes_per_event", None),
    ):
        values = [built.storage[s][field_name] for s in constant_sizes]
        spread = max(values) / min(values)
        figures[f"storage.spread.{field_name}"] = spread
        constant_rows.append(
            [
                name,
                f"{label(constant_sizes[0])}..{label(constant_sizes[-1])}",
                f"{min(values):.2f}",
                f"{max(values):.2f}",
                fmt_ratio(spread),
                goal_cell(spread <= target, f"constant: <= {target:g}x") if target is not None else "",
            ]
        )

    # -- replay table
    replay_events = events_of[replay_size]
    raw_eps = summarize(rate(replay_events, s) for s in replay.baseline)
    ledger_eps = summarize(rate(replay_events, s) for s in replay.candidate)
    replay_ratio = summarize(replay.ratios)
    figures["replay.raw_events_per_s"] = raw_eps.median
    figures["replay.ledger_events_per_s"] = ledger_eps.median
    figures["replay.ratio"] = replay_ratio.median
    results["replay"] = {
        "events": replay_events, "raw_seconds": list(replay.baseline), "ledger_seconds": list(replay.candidate),
        "raw_events_per_s": raw_eps.as_dict(), "ledger_events_per_s": ledger_eps.as_dict(),
        "ratio": replay_ratio.as_dict(),
    }
    replay_rows = [
        [
            "replay(into=new file) vs SELECT + executemany INSERT into a new raw file, 1 tx",
            f"{replay_events:,}",
            fmt_rate(raw_eps.median),
            fmt_rate(ledger_eps.median),
            fmt_ratio(replay_ratio.median),
            f"{replay_ratio.min:.2f}..{replay_ratio.max:.2f}",
            "none set",
        ]
    ]

    # -- memory table
    samples_mem = [m for m in built.memory if m[0] > 0]
    first_rss = samples_mem[0][1]
    growth = max(m[1] for m in samples_mem) / first_rss
    figures["memory.first_rss_mib"] = first_rss
    figures["memory.last_rss_mib"] = samples_mem[-1][1]
    figures["memory.peak_rss_mib"] = max(m[2] for m in samples_mem)
    figures["memory.rss_growth"] = growth
    results["memory"] = {
        "peak_reset": built.peak_reset,
        "samples": [{"events": e, "rss_mib": round(r, 2), "peak_rss_mib": round(p, 2)} for e, r, p in built.memory],
        "growth": growth,
    }
    memory_rows = [[f"{e:,}", f"{r:.1f}", f"{p:.1f}", ""] for e, r, p in built.memory]
    memory_rows.append(
        [
            "largest / first sample",
            fmt_ratio(growth),
            fmt_ratio(max(m[2] for m in samples_mem) / samples_mem[0][2]),
            goal_cell(growth <= RSS_TARGET, f"flat: <= {RSS_TARGET:.2f}x"),
        ]
    )

    tables = [
        markdown_table(
            ["events", "snapshots", "load", "calls", "raw p50 ms", "raw p95 ms", "ledger p50 ms", "ledger p95 ms",
             "ledger/raw p50 (median)", "min..max", "goal"],
            load_rows,
            align="rllrrrrrrcl",
        ),
        markdown_table(
            ["snapshots", "load", f"ledger p50 ms at {smallest + tail:,}", "largest measured", "ledger p50 ms there",
             "largest/smallest (median)", "min..max", "raw sqlite3 same ratio", "goal"],
            flat_rows,
            align="llrrrrcrl",
        ),
        markdown_table(
            ["events", "snapshots", "snapshot bytes", "B/snapshot", "snapshot B/event", "ledger file B/event",
             "events / projections / snapshots / free B/event", "raw events file B/event", "ledger/raw",
             "with FTS index B/event", "goal"],
            storage_rows,
            align="rrrrrrcrrrl",
        ),
        markdown_table(["figure", "sizes", "min", "max", "max/min", "goal"], constant_rows, align="llrrrl"),
        markdown_table(
            ["operation", "events", "raw sqlite3 ev/s", "ledger ev/s", "ratio (median)", "ratio min..max", "goal"],
            replay_rows,
            align="lrrrrcl",
        ),
        markdown_table(
            ["events appended", "RSS MiB", "peak RSS MiB" + ("" if built.peak_reset else " (process lifetime)"), "goal"],
            memory_rows,
            align="rrrl",
        ),
    ]
    skipped_notes = [
        f"without snapshots one {'current' if c.kind == 'current' else 'as-of'} load of {c.events:,} events took "
        f"{c.probe:.1f} s with a peak RSS of {c.probe_peak_mb:.0f} MiB"
        for c in cells["no_snapshots"]
        if (c.skipped is not None or c.single) and c.probe is not None and c.probe_peak_mb is not None
    ]
    note = (
        f"one session built to {built.events:,} events in {built.seconds:.1f} s "
        f"({rate(built.events - 1, built.seconds):,.0f} ev/s, ledger.batch() of {params.chunk}); "
        f"sizes are N + {tail} events (newest snapshot {tail} behind the head); "
        f"{params.rounds} rounds x up to {params.calls} calls per load cell, "
        "the session evicted from the state cache (untimed) before each ledger call; "
        "ledger/raw is a time ratio (above 1: the ledger is slower); "
        f"replay: median of {params.replay_repetitions} paired repetitions, ratio = ledger ev/s / raw ev/s"
        + ("; " + "; ".join(skipped_notes) if skipped_notes else "")
    )
    return {
        "name": NAME,
        "title": TITLE,
        "params": asdict(params),
        "build": {"events": built.events, "seconds": round(built.seconds, 3)},
        "phases_seconds": phases,
        "note": note,
        "table": "\n\n".join(tables),
        "figures": figures,
        "results": results,
    }
