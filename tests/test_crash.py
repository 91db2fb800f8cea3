"""Crash safety with real processes: a child appends in a loop and is killed with SIGKILL at random moments.

The child (a helper module written to ``tmp_path``) opens a file ledger with
``snapshot_every=3`` (on alternate trials with a custom projector registered,
so that the projector's catch-up runs at open and can be interrupted) and then,
forever, runs single commands and batches: creates, messages, invocations,
metadata, data, tags, restores, forks, checkpoints, completions and searches
(which level the lazy search index). It reports on stdout, flushed:

* ``ready`` once imported, ``open`` once the ``Ledger`` constructor returned;
* ``try <event_id>`` before a single command and ``ack <event_id>`` only after it returned;
* ``start <name> <n>`` before a ``with ledger.batch():`` of ``n`` commands with the
  event_ids ``<name>-0`` .. ``<name>-<n-1>``, and ``batch <name> <n>`` only after the block returned.

The parent kills the child at seeded random moments (some a few milliseconds
after ``ready``, so the kill lands while the file is being opened and the
projections caught up), then reopens the file and checks that every
acknowledged command is there, that no batch is half there, that nothing was
invented, that the chain and snapshots verify, that every projection equals a
rebuild from the log, and that the next append works. Numbering continues
across trials, so no id is ever reused.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from tests.conftest import check_search_index, committed

TRIALS = 40
SEED = 20260507
BUILT_IN = ("sessions", "session_tags", "session_metadata", "session_data", "messages", "invocations", "session_segments")
CUSTOM = ("tally_events", "tally_sessions")
WORDS = ("alpha", "beta", "gamma", "delta", "needle", "haystack", "ledger", "crash")

CHILD = r'''
"""Crash-test child: appends forever to a ledger file and reports what was acknowledged."""

import os
import random
import sqlite3
import sys
import time
from collections.abc import Sequence

import sqlite_utils

from ledger import Ledger, Projector, RecordedEvent

WORDS = ("alpha", "beta", "gamma", "delta", "needle", "haystack", "ledger", "crash")
# Seconds slept per event inside the custom projector, in the child only: it widens the window in
# which a kill lands during the projector's catch-up at open, without changing what it writes.
SLOW = float(os.environ.get("CRASH_PROJECTOR_SLEEP", "0"))


class Tally(Projector):
    """One row per event, and per-session counters: a catch-up that skips or repeats an event shows."""

    name = "crash_tally"
    version = 1
    tables = ("tally_events", "tally_sessions")

    def create(self, db: sqlite_utils.Database) -> None:
        db["tally_events"].create(
            {"position": int, "event_id": str, "session_id": str, "version": int, "type": str}, pk="position"
        )
        db["tally_sessions"].create(
            {"session_id": str, "events": int, "messages": int, "cost": float, "last_position": int}, pk="session_id"
        )

    def apply(self, conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
        for e in events:
            if SLOW:
                time.sleep(SLOW)
            conn.execute(
                "INSERT INTO tally_events (position, event_id, session_id, version, type) VALUES (?, ?, ?, ?, ?)",
                (e.position, e.event_id, e.session_id, e.version, e.type),
            )
            cost = getattr(e.payload, "cost", None) or 0.0 if e.type == "invocation_linked" else 0.0
            conn.execute(
                "INSERT INTO tally_sessions (session_id, events, messages, cost, last_position) VALUES (?, 1, ?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET events = events + 1, messages = messages + excluded.messages,"
                " cost = cost + excluded.cost, last_position = excluded.last_position",
                (e.session_id, int(e.type == "message_added"), cost, e.position),
            )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    path, start, seed, with_projector = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    rng = random.Random(seed)
    counter = [start]

    def next_n() -> int:
        counter[0] += 1
        return counter[0]

    say("ready")
    led = Ledger(path, snapshot_every=3, projectors=[Tally()] if with_projector else [])
    say("open")
    page = led.list_sessions(status="active", limit=12)
    sessions = [s.session_id for s in page.items]

    def words() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))

    def one(sid: str, eid: str, kind: str) -> str | None:
        """Run one command with an explicit event_id; returns a session id it created, if any."""
        if kind == "create":
            new = f"s{next_n()}"
            led.create_session(new, user_id=rng.choice(["ann", "bob"]), tags=[rng.choice(WORDS)],
                               metadata={"customer": rng.choice(["acme", "globex"])}, event_id=eid)
            return new
        if kind == "message":
            led.add_message(sid, rng.choice(["user", "assistant"]), words(), model=rng.choice(["m1", "m2"]),
                            tokens={"input": rng.randint(0, 50), "output": rng.randint(0, 50)}, event_id=eid)
        elif kind == "invoke":
            led.link_invocation(sid, f"inv-{eid}", rng.choice(["search", "shell", "fetch"]),
                                duration_ms=rng.randint(1, 500) / 4, tokens={"input": 3, "output": 4},
                                cost=rng.randint(0, 100) / 8, status=rng.choice(["ok", "ok", "error"]), event_id=eid)
        elif kind == "meta":
            led.set_metadata(sid, rng.choice(["customer", "stage", "score"]), rng.choice([1, 2.5, "x", [1, 2], {"a": 1}]),
                             event_id=eid)
        elif kind == "data":
            led.set_data(sid, rng.choice(["k1", "k2", "k3"]), {"n": rng.randint(0, 9), "w": words()}, event_id=eid)
        elif kind == "tag":
            led.add_tags(sid, [rng.choice(WORDS)], event_id=eid)
        elif kind == "restore":
            led.restore(sid, version=rng.randint(1, led.get_session(sid).version), event_id=eid)
        elif kind == "fork":
            new = f"s{next_n()}"
            state = led.fork(sid, new_session_id=new, event_id=eid)
            return new if state.is_open else None
        else:
            raise AssertionError(kind)
        return None

    single = ["create", "message", "message", "message", "invoke", "invoke", "meta", "data", "tag",
              "restore", "fork", "checkpoint", "search", "complete", "batch", "batch", "batch"]
    in_batch = ["message", "message", "invoke", "meta", "data", "tag", "restore", "create", "fork"]
    while True:
        while len(sessions) < 3:
            eid = f"e{next_n()}"
            say(f"try {eid}")
            new = one("", eid, "create")
            say(f"ack {eid}")
            sessions.append(new)
        sid = rng.choice(sessions)
        kind = rng.choice(single)
        if kind == "checkpoint":
            led.checkpoint(sid)
            say(f"checkpoint {sid}")
        elif kind == "search":
            led.search_messages(rng.choice(WORDS))
            say("search")
        elif kind == "batch":
            name = f"b{next_n()}"
            n = rng.randint(2, 9)
            say(f"start {name} {n}")
            created = []
            with led.batch():
                for j in range(n):
                    new = one(rng.choice(sessions + created), f"{name}-{j}", rng.choice(in_batch))
                    if new is not None:
                        created.append(new)
            say(f"batch {name} {n}")
            sessions += created
        else:
            eid = f"e{next_n()}"
            say(f"try {eid}")
            if kind == "complete":
                led.complete_session(sid, rng.choice(["completed", "failed"]), reason=words(), event_id=eid)
                sessions.remove(sid)
                new = None
            else:
                new = one(sid, eid, kind)
            say(f"ack {eid}")
            if new is not None:
                sessions.append(new)
        del sessions[:-12]  # work on the newest few, so versions stay small and folds cheap


if __name__ == "__main__":
    main()
'''


@dataclass
class Record:
    """What the children reported, over every trial so far."""

    tried: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    batches: dict[str, int] = field(default_factory=dict)  # name -> n, every batch started
    batches_acked: set[str] = field(default_factory=set)
    probes: set[str] = field(default_factory=set)
    kills: dict[str, int] = field(default_factory=dict)
    catch_ups_cut: int = 0  # trials whose kill left the custom projector behind the log

    def expected_ids(self) -> set[str]:
        """Every event_id any process ever attempted."""
        return self.tried | self.probes | {f"{name}-{j}" for name, n in self.batches.items() for j in range(n)}


def _load_helper(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"crash_child_{os.getpid()}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dump(led: Ledger, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with committed(led) as conn:
        for table in tables:
            width = len(conn.execute(f'PRAGMA table_info("{table}")').fetchall())
            order = ", ".join(str(i) for i in range(1, width + 1))
            out[table] = conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
    return out


def _fts(led: Ledger) -> dict[str, list[int]]:
    with committed(led) as conn:
        return {
            word: [r for (r,) in conn.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (word,)
            )]
            for word in WORDS
        }


def _run_child(
    helper: Path, db: Path, start: int, seed: int, with_projector: bool, delay: float, log: Path
) -> tuple[list[str], bool]:
    """Start a child, kill it ``delay`` seconds after it is ready; returns its lines and whether it was killed."""
    env = dict(os.environ, CRASH_PROJECTOR_SLEEP="0.0004")
    lines: list[str] = []
    ready = threading.Event()
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, str(helper), str(db), str(start), str(seed), "1" if with_projector else "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
        assert proc.stdout is not None

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("ready"):
                    ready.set()
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert ready.wait(60), "the child never became ready"
            time.sleep(delay)
            alive = proc.poll() is None
            if alive:
                os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            reader.join(timeout=60)
            proc.stdout.close()
    return lines, alive and proc.returncode == -signal.SIGKILL


def _where(lines: list[str]) -> str:
    """Where the kill landed, from the last thing the child said."""
    if "open" not in lines:
        return "opening (projection catch-up)"
    last = lines[-1].split()
    if last[0] == "start":
        return "inside a batch"
    if last[0] == "try":
        return "inside a single command"
    return "between commands (a read, a checkpoint or a search)"


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_command_and_splits_no_batch(tmp_path: Path) -> None:
    helper = tmp_path / "crash_child.py"
    helper.write_text(CHILD)
    tally = _load_helper(helper).Tally
    db = tmp_path / "crash.db"
    log = tmp_path / "children.log"
    rng = random.Random(SEED)
    record = Record()
    counter = 0  # numbering continues across trials: every id any child may use is above it
    started = time.monotonic()

    for trial in range(TRIALS):
        with_projector = trial % 2 == 0
        # A third of the kills land within a few ms of the child being ready: during the open and the
        # custom projector's catch-up of what the previous trial appended without it.
        delay = rng.choice([rng.uniform(0.0, 0.04), rng.uniform(0.04, 0.15), rng.uniform(0.15, 0.35)])
        lines, killed = _run_child(helper, db, counter, rng.randrange(2**32), with_projector, delay, log)
        assert killed, f"trial {trial}: the child ended on its own:\n{log.read_text()[-3000:]}\n{lines[-5:]}"
        where = _where(lines)
        record.kills[where] = record.kills.get(where, 0) + 1

        tried_now: list[str] = []
        for line in lines:
            word, *rest = line.split()
            if word == "try":
                tried_now.append(rest[0])
                record.tried.add(rest[0])
            elif word == "ack":
                record.acked.add(rest[0])
            elif word == "start":
                record.batches[rest[0]] = int(rest[1])
            elif word == "batch":
                assert record.batches[rest[0]] == int(rest[1])
                record.batches_acked.add(rest[0])
            for token in rest:
                digits = token.lstrip("ebs").split("-")[0]
                if token[:1] in ("e", "b", "s") and digits.isdigit():
                    counter = max(counter, int(digits))
        counter += 1000  # ids a child drew but never printed (a session it was about to create) stay unused

        with contextlib.closing(sqlite3.connect(db)) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",), f"trial {trial}: file damaged"
            if with_projector and raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
                (head,) = raw.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
                known = raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'projector_positions'").fetchone()
                stored = known and raw.execute(
                    "SELECT position FROM projector_positions WHERE name = 'crash_tally'"
                ).fetchone()
                if stored is None or stored[0] < head:  # the child died before its catch-up committed
                    record.catch_ups_cut += 1

        with Ledger(db, snapshot_every=3, projectors=[tally()] if with_projector else []) as led:
            history = list(led.history())
            ids = [e.event_id for e in history]
            present = set(ids)
            context = f"trial {trial}, killed {where}, after {delay:.3f}s"

            assert [e.position for e in history] == list(range(1, len(history) + 1)), context
            versions: dict[str, int] = {}
            for e in history:
                assert e.version == versions.get(e.session_id, 0) + 1, f"{context}: version gap at {e.position}"
                versions[e.session_id] = e.version
            assert len(present) == len(ids), f"{context}: an event_id is stored twice"

            lost = record.acked - present
            assert not lost, f"{context}: acknowledged commands lost: {sorted(lost)[:10]}"
            invented = present - record.expected_ids()
            assert not invented, f"{context}: events nobody appended: {sorted(invented)[:10]}"
            unacked = [eid for eid in tried_now if eid in present and eid not in record.acked]
            assert unacked in ([], tried_now[-1:]), f"{context}: unacknowledged commands present: {unacked}"
            for name, n in record.batches.items():
                count = sum(f"{name}-{j}" in present for j in range(n))
                assert count in (0, n), f"{context}: batch {name} is half there: {count} of {n} events"
                if name in record.batches_acked:
                    assert count == n, f"{context}: acknowledged batch {name} lost"

            report = led.verify()
            assert report.ok, f"{context}: {report}"

            tables = BUILT_IN + (CUSTOM if with_projector else ())
            led.search_messages("needle")  # levels the lazy search index
            check_search_index(led)
            inline, fts = _dump(led, tables), _fts(led)
            if with_projector:
                assert [row[0] for row in inline["tally_events"]] == list(range(1, len(history) + 1)), context
            led.rebuild()
            assert _dump(led, tables) == inline, f"{context}: projections differ from a rebuild"
            assert _fts(led) == fts, f"{context}: the search index differs from a rebuild"
            check_search_index(led)

            probe = f"probe-{trial}"
            record.probes.add(probe)
            sid = f"probe-session-{trial}"
            led.create_session(sid, event_id=f"{probe}-create")
            record.probes.add(f"{probe}-create")
            version = led.add_message(sid, "user", "the next append works", event_id=probe)
            assert version == 2
            assert led.last_position == len(history) + 2
            assert led.verify().ok

    elapsed = time.monotonic() - started
    in_batch = record.kills.get("inside a batch", 0)
    print(
        f"\ncrash test: {TRIALS} kill trials in {elapsed:.1f}s; kills landed: {record.kills}; "
        f"{len(record.acked)} single commands and {len(record.batches_acked)} batches acknowledged, "
        f"{len(record.batches)} batches started; {record.catch_ups_cut} kills cut the custom projector's catch-up"
    )
    assert sum(record.kills.values()) == TRIALS >= 30
    assert in_batch >= 1, f"no kill landed inside a batch: {record.kills}"
    assert record.kills.get("opening (projection catch-up)", 0) >= 1, f"no kill landed during the open: {record.kills}"
    assert record.catch_ups_cut >= 1, "no kill interrupted the custom projector's catch-up"
