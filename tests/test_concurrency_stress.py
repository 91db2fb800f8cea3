"""Stress: processes and threads writing overlapping sessions while readers check everything they see.

Writers: 4 processes with 2 threads each (one ``Ledger`` per process, shared by
its threads) plus 8 threads in the test process sharing one ``Ledger``, all on
the same 4 sessions until a common deadline. Each does optimistic
read-modify-write increments (``expected_version`` with a retry loop on
``ConcurrencyError``), plain appends (messages with and without an
``event_id``, invocations), batches that span two sessions, batches it
abandons, and appends under ``event_id``s that every writer sends; it writes
every acknowledged command to its own file.

Readers (2 threads and 1 process with their own ``Ledger``, 1 thread on the
writers' shared ``Ledger``, 1 thread running ``verify``) meanwhile check that
every state they read is a whole number of commands: the counters a state
carries agree with one another, with the projections, with the search index
and with the conversation at the same version.

At the end: no lost update, no invented, duplicated or abandoned event,
versions contiguous, positions gapless, projections equal to the acknowledged
commands and to a rebuild, and a chain that verifies.

Also here: a batch held open by another process for a second (writers wait,
then succeed or see a ``ConcurrencyError``, never a lost update; a reader opens
the file meanwhile without waiting), and a ledger with a 0.1 s busy timeout
that gets ``LedgerBusy`` and writes nothing.

The file doubles as the script the child processes run
(``python -m tests.test_concurrency_stress MODE ...``).
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from ledger import ConcurrencyError, Ledger, LedgerBusy, LedgerError, Session

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = ("s0", "s1", "s2", "s3")
COUNTERS = ("n", "x", "y")  # n: everyone's counter; x (in a) and y (in b): one each per two-session batch
PLAIN_TOOL, BATCH_TOOL = "plain-tool", "batch-tool"
TOKENS = {"input": 1, "output": 2}
SNAPSHOT_EVERY = 5  # small, so snapshots are written and loaded all the time under contention
BUSY = 60.0  # writers in the stress test wait, they never give up

PROCESSES = 4
THREADS_PER_PROCESS = 2
MAIN_THREADS = 8
WRITE_SECONDS = 10.0  # every writer runs until the same deadline, so all of them overlap throughout
MIN_ITERATIONS = 20  # per writer thread, however slow the machine
READER_THREADS = 2
OPS = ("inc", "msg", "gen", "inv", "batch", "dup", "abort")
WEIGHTS = (35, 15, 10, 15, 25, 5, 5)
DUPLICATES = 40  # event_ids shared by all writers
WRITERS = (
    *(f"p{k}t{j}" for k in range(PROCESSES) for j in range(THREADS_PER_PROCESS)),
    *(f"m{j}" for j in range(MAIN_THREADS)),
)


# -- the writer -------------------------------------------------------------------------


def increment(led: Ledger, sid: str, key: str, event_id: str) -> tuple[int, int, int]:
    """Optimistic read-modify-write of one metadata counter: (value written, version, conflicts retried)."""
    conflicts = 0
    while True:
        s = led.get_session(sid)
        value = s.metadata[key] + 1
        try:
            version = led.set_metadata(sid, key, value, expected_version=s.version, event_id=event_id)
        except ConcurrencyError:
            conflicts += 1
            if conflicts > 10_000:
                raise AssertionError(f"{event_id}: starved after {conflicts} conflicts") from None
            continue
        if version != s.version + 1:
            raise AssertionError(
                f"{event_id}: set_metadata with expected_version={s.version} returned version {version}"
            )
        return value, version, conflicts


class Abandoned(Exception):
    """Raised inside a batch to roll it back."""


def write_loop(led: Ledger, name: str, deadline: float, ack_path: Path) -> None:
    """Run random commands until ``deadline`` (``time.time()``; at least ``MIN_ITERATIONS``); append each
    acknowledged one to ``ack_path`` as a JSON line.

    Never raises: a failure is written to the file as an ``error`` line.
    """
    rng = random.Random(name)
    ops: Counter[str] = Counter()
    conflicts = 0
    start = time.time()
    with open(ack_path, "w", encoding="utf-8") as out:

        def ack(
            kind: str, sid: str, version: int, eid: str | None, content: str | None = None, value: int | None = None
        ) -> None:
            rec = {"kind": kind, "sid": sid, "version": version, "eid": eid, "content": content, "value": value}
            out.write(json.dumps(rec) + "\n")
            out.flush()

        try:
            i = -1
            while (i := i + 1) < MIN_ITERATIONS or time.time() < deadline:
                sid = rng.choice(SESSIONS)
                op = rng.choices(OPS, weights=WEIGHTS)[0]
                eid = f"{name}-{i}"
                ops[op] += 1
                if op == "inc":
                    value, version, c = increment(led, sid, "n", eid)
                    conflicts += c
                    ack("inc:n", sid, version, eid, value=value)
                elif op == "msg":
                    content = f"{eid} plain"
                    version = led.add_message(sid, "user", content, tokens=TOKENS, event_id=eid)
                    ack("msg", sid, version, eid, content)
                elif op == "gen":  # no event_id: recognised later by (session, returned version, content)
                    content = f"{eid} generated"
                    version = led.add_message(sid, "assistant", content, tokens=TOKENS)
                    ack("msg", sid, version, None, content)
                elif op == "dup":  # the same event_id sent by many writers, often at once: stored once
                    k = rng.randrange(DUPLICATES)
                    sid, eid, content = SESSIONS[k % len(SESSIONS)], f"dup-{k}", f"dup-{k} retried"
                    version = led.add_message(sid, "tool", content, tokens=TOKENS, event_id=eid)
                    ack("msg", sid, version, eid, content)
                elif op == "abort":  # a batch the caller abandons after four commands: none of them stays
                    other = SESSIONS[(SESSIONS.index(sid) + 1) % len(SESSIONS)]
                    try:
                        with led.batch():
                            led.add_message(sid, "system", f"{eid} aborted", tokens=TOKENS, event_id=f"{eid}-m")
                            led.link_invocation(sid, f"inv-{eid}", BATCH_TOOL, duration_ms=1.0, event_id=f"{eid}-i")
                            increment(led, sid, "x", f"{eid}-x")
                            increment(led, other, "y", f"{eid}-y")
                            raise Abandoned
                    except Abandoned:
                        out.write(json.dumps({"aborted": [f"{eid}-{k}" for k in "mixy"]}) + "\n")
                elif op == "inv":
                    version = led.link_invocation(sid, f"inv-{eid}", PLAIN_TOOL, duration_ms=1.0, event_id=eid)
                    ack("inv", sid, version, eid)
                else:  # a batch over two sessions: a system message, a batch-tool invocation, x in a and y in b
                    other = SESSIONS[(SESSIONS.index(sid) + 1) % len(SESSIONS)]
                    done: list[tuple[Any, ...]] = []
                    with led.batch():
                        content = f"{eid} batch"
                        v = led.add_message(sid, "system", content, tokens=TOKENS, event_id=f"{eid}-m")
                        done.append(("msg", sid, v, f"{eid}-m", content, None))
                        v = led.link_invocation(sid, f"inv-{eid}", BATCH_TOOL, duration_ms=1.0, event_id=f"{eid}-i")
                        done.append(("inv", sid, v, f"{eid}-i", None, None))
                        for key, target in (("x", sid), ("y", other)):
                            value, v, c = increment(led, target, key, f"{eid}-{key}")
                            if c:
                                raise AssertionError(f"{eid}: {c} ConcurrencyError(s) inside a batch holding the lock")
                            done.append((f"inc:{key}", target, v, f"{eid}-{key}", None, value))
                    for rec in done:  # acknowledged only once the whole batch committed
                        ack(*rec)
        except BaseException:  # reported to the test through the file
            out.write(json.dumps({"error": traceback.format_exc()}) + "\n")
        else:
            out.write(json.dumps({"done": name, "ops": ops, "conflicts": conflicts, "span": (start, time.time())}) + "\n")


def run_writer_process(path: str, name: str, threads: int, outdir: str) -> None:
    with Ledger(path, busy_timeout=BUSY, snapshot_every=SNAPSHOT_EVERY) as led:
        print("ready", flush=True)
        deadline = float(sys.stdin.readline())  # wait for it, so every writer starts together
        workers = [
            threading.Thread(target=write_loop, args=(led, f"{name}t{j}", deadline, Path(outdir) / f"acks-{name}t{j}.jsonl"))
            for j in range(threads)
        ]
        for t in workers:
            t.start()
        for t in workers:
            t.join()


# -- the readers ---------------------------------------------------------------------------


def check_counters(where: str, version: int, message_count: int, invocation_count: int, metadata: dict[str, Any],
                   tokens_in: int, tokens_out: int, duration: float) -> None:
    """Every command adds exactly one event and one to exactly one counter: a whole number of commands."""
    n, x, y = (metadata[k] for k in COUNTERS)
    assert version == 1 + message_count + invocation_count + n + x + y, (
        f"{where}: version {version} != 1 + messages {message_count} + invocations {invocation_count} + n {n} + x {x} + y {y}"
    )
    assert (tokens_in, tokens_out) == (message_count, 2 * message_count), (
        f"{where}: tokens {tokens_in}/{tokens_out} for {message_count} messages"
    )
    assert duration == float(invocation_count), f"{where}: duration {duration} for {invocation_count} invocations"


def check_state(where: str, s: Session) -> None:
    check_counters(
        where, s.version, s.message_count, s.invocation_count, s.metadata, s.tokens_in, s.tokens_out, s.total_duration_ms
    )
    assert sum(s.messages_by_role.values()) == s.message_count, f"{where}: by role {s.messages_by_role} vs {s.message_count}"
    assert s.messages_by_role.get("system", 0) == s.metadata["x"], f"{where}: system messages vs x={s.metadata['x']}"


def check_round(led: Ledger, rng: random.Random, seen: dict[str, int], round_: int) -> int:
    """One round of reads; raises AssertionError on anything a half-applied command would show. Returns checks made."""
    checks = 0
    sid = rng.choice(SESSIONS)

    s = led.get_session(sid)  # one state: its counters agree
    check_state(f"get_session({sid}) v{s.version}", s)
    assert s.version >= seen.get(sid, 0), f"{sid}: version went back from {seen[sid]} to {s.version}"
    seen[sid] = s.version
    msgs = led.messages(sid, version=s.version)  # the conversation at that version has exactly its messages
    assert len(msgs) == s.message_count, f"{sid} v{s.version}: {len(msgs)} messages, state says {s.message_count}"
    assert Counter(m.role for m in msgs) == Counter(s.messages_by_role), f"{sid} v{s.version}: roles differ"
    assert all(a.version < b.version for a, b in zip(msgs, msgs[1:])) and all(m.version <= s.version for m in msgs)
    checks += 3

    st = led.statistics(sid)  # fold counters and the invocations projection, read in one transaction
    tools = {t.tool_name: t.count for t in st.tools}
    where = f"statistics({sid})"
    assert sum(tools.values()) == st.invocation_count == sum(st.invocations_by_status.values()), (
        f"{where}: {tools} vs {st.invocation_count}"
    )
    assert tools.get(BATCH_TOOL, 0) == st.messages_by_role.get("system", 0), (
        f"{where}: batch half applied: {tools} {st.messages_by_role}"
    )
    assert sum(t.total_duration_ms for t in st.tools) == st.total_duration_ms == float(st.invocation_count), where
    assert st.tokens_in == st.message_count == sum(st.messages_by_role.values()), where
    checks += 1

    page = led.list_sessions(limit=100)  # the projection rows, all from one transaction
    assert sorted(p.session_id for p in page) == sorted(SESSIONS)
    assert sum(p.metadata["x"] for p in page) == sum(p.metadata["y"] for p in page), (
        "a two-session batch is half visible in list_sessions:"
        f" x {[p.metadata['x'] for p in page]} y {[p.metadata['y'] for p in page]}"
    )
    for p in page:
        where = f"list_sessions {p.session_id} v{p.version}"
        check_counters(
            where, p.version, p.message_count, p.invocation_count, p.metadata, p.tokens_in, p.tokens_out, p.total_duration_ms
        )
        at = led.get_session(p.session_id, version=p.version)  # the fold at the same version agrees with the projection
        assert (at.message_count, at.invocation_count, at.metadata, at.tokens_in) == (
            p.message_count, p.invocation_count, p.metadata, p.tokens_in
        ), f"{where}: projection {p} != fold {at}"
        assert len(led.messages(p.session_id, version=p.version)) == p.message_count, f"{where}: messages() count differs"
        checks += 3

    if round_ % 5 == 0:  # the search index, brought level by whichever reader searches (a write)
        writer = rng.choice(WRITERS)  # one writer's batch messages: well under the 1000-hit cap

        def theirs(version: int) -> set[int]:
            return {
                m.position
                for m in led.messages(sid, version=version)
                if m.role == "system" and m.content.startswith(f"{writer}-")
            }

        before = theirs(led.get_session(sid).version)
        hits = led.search_messages(f"{writer} batch", session_id=sid, role="system", limit=1000)
        after = theirs(led.get_session(sid).version)
        found = {h.position for h in hits}
        assert len(found) == len(hits), f"search {sid} {writer}: a message found twice"
        assert before <= found <= after, f"search {sid} {writer}: {len(hits)} hits, {len(before)}..{len(after)} messages"
        checks += 1

    if round_ % 25 == 0:  # the log seen so far: gapless positions, contiguous versions
        versions: dict[str, int] = {}
        position = 0
        for e in led.history():
            assert e.position == position + 1, f"history: position {e.position} after {position}"
            previous = versions.get(e.session_id, 0)
            assert e.version == previous + 1, f"history: {e.session_id} v{e.version} after v{previous}"
            position, versions[e.session_id] = e.position, e.version
        checks += 1
    return checks


def read_loop(
    path: str, stop: Callable[[], bool], seed: int, *, verify_only: bool = False, shared: Ledger | None = None
) -> dict[str, Any]:
    """Read until ``stop()`` with a ``Ledger`` of its own (or the ``shared`` one the writers use);
    returns the number of checks and the problems found (never raises)."""
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    checks, problems, round_ = 0, [], 0
    try:
        with (Ledger(path, busy_timeout=BUSY) if shared is None else nullcontext(shared)) as led:
            while not stop() or round_ == 0:
                round_ += 1
                try:
                    if verify_only:
                        report = led.verify()
                        assert report.ok, f"verify while writers run: {report}"
                        checks += 1
                    else:
                        checks += check_round(led, rng, seen, round_)
                except AssertionError as exc:
                    problems.append(str(exc))
                    if len(problems) > 20:
                        break
                time.sleep(0.002)
    except BaseException:
        problems.append(traceback.format_exc())
    return {"checks": checks, "rounds": round_, "problems": problems}


def run_reader_process(path: str, stop_file: str, out: str) -> None:
    result = read_loop(path, Path(stop_file).exists, seed=99)
    Path(out).write_text(json.dumps(result), encoding="utf-8")


# -- the stress test ------------------------------------------------------------------------


def _child(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_concurrency_stress", *args], cwd=ROOT, text=True, **kwargs
    )


@contextmanager
def _reaped(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Kill (by pid) any child still running when the block leaves, so a failure leaves no orphan."""
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            for stream in (p.stdin, p.stdout):
                if stream is not None and not stream.closed:
                    stream.close()


def _read_acks(outdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[str]]:
    acks, done, errors, aborted = [], [], [], []
    for f in sorted(outdir.glob("acks-*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if "error" in rec:
                errors.append(f"{f.name}: {rec['error']}")
            elif "aborted" in rec:
                aborted.extend(rec["aborted"])
            elif "done" in rec:
                done.append(rec)
            else:
                acks.append(rec)
    return acks, done, errors, aborted


def _tables(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
        for t in ("sessions", "session_metadata", "session_tags", "messages", "invocations", "session_segments")
    }


@pytest.mark.slow
def test_processes_and_threads_on_overlapping_sessions_lose_nothing_and_readers_never_see_half_a_command(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stress.db"
    with Ledger(path, snapshot_every=SNAPSHOT_EVERY) as led:
        for sid in SESSIONS:
            led.create_session(sid, metadata={k: 0 for k in COUNTERS}, event_id=f"setup-{sid}")

    writers = [
        _child("writers", str(path), f"p{k}", str(THREADS_PER_PROCESS), str(tmp_path),
               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for k in range(PROCESSES)
    ]
    stop_file = tmp_path / "stop"
    reader_proc = _child("reader", str(path), str(stop_file), str(tmp_path / "reader.json"))
    stop = threading.Event()
    reads: list[dict[str, Any]] = []
    started = time.monotonic()
    with _reaped([*writers, reader_proc]), Ledger(path, busy_timeout=BUSY, snapshot_every=SNAPSHOT_EVERY) as shared:
        readers = [  # own-ledger readers, one on the writers' shared ledger (its cache), one verifying
            threading.Thread(target=lambda kw=kw: reads.append(read_loop(str(path), stop.is_set, **kw)), daemon=True)
            for kw in [
                *({"seed": k} for k in range(READER_THREADS)),
                {"seed": 50, "shared": shared},
                {"seed": 100, "verify_only": True},
            ]
        ]
        try:
            for t in readers:
                t.start()
            for p in writers:  # every writer process has opened the file
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            deadline = time.time() + WRITE_SECONDS
            threads = [
                threading.Thread(
                    target=write_loop, args=(shared, f"m{j}", deadline, tmp_path / f"acks-m{j}.jsonl"), daemon=True
                )
                for j in range(MAIN_THREADS)
            ]
            for p in writers:
                assert p.stdin is not None
                p.stdin.write(f"{deadline!r}\n")
                p.stdin.close()
            for t in threads:
                t.start()
            for t in threads:
                t.join(WRITE_SECONDS + 120)
            assert [p.wait(WRITE_SECONDS + 120) for p in writers] == [0] * PROCESSES
            assert not any(t.is_alive() for t in threads)
            writing = time.monotonic() - started
        finally:
            stop.set()
            stop_file.touch()
            for t in readers:
                t.join(60)
        assert reader_proc.wait(60) == 0
    reads.append(json.loads((tmp_path / "reader.json").read_text(encoding="utf-8")))

    acks, done, errors, aborted = _read_acks(tmp_path)
    problems = [p for r in reads for p in r["problems"]]
    assert not errors and not problems, (
        "writers failed:\n" + "\n".join(errors[:5]) + "\nreaders saw inconsistent states:\n" + "\n".join(problems[:10])
    )
    assert len(done) == PROCESSES * THREADS_PER_PROCESS + MAIN_THREADS  # every writer finished its loop
    latest_start = max(d["span"][0] for d in done)
    earliest_end = min(d["span"][1] for d in done)
    assert latest_start < earliest_end, "the writers did not all run at the same time"
    assert all(r["rounds"] > 0 for r in reads)

    with Ledger(path) as led:
        events = list(led.history())
        # positions gapless, versions contiguous per session
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        versions: dict[str, list[int]] = defaultdict(list)
        for e in events:
            versions[e.session_id].append(e.version)
        for sid, vs in versions.items():
            assert vs == list(range(1, len(vs) + 1)), f"{sid}: versions not contiguous"

        # every acknowledged command is there exactly once, at the version it was given, and nothing else is
        by_key = {(e.session_id, e.version): e for e in events}
        ids = Counter(e.event_id for e in events)
        assert max(ids.values()) == 1
        assert aborted and not set(aborted) & set(ids), "a command of an abandoned batch was stored"
        for a in acks:
            e = by_key.get((a["sid"], a["version"]))
            assert e is not None, f"acknowledged {a} is missing"
            if a["eid"] is not None:
                assert e.event_id == a["eid"], f"acknowledged {a} but {a['sid']} v{a['version']} is {e.event_id}"
            expected_type = {"msg": "message_added", "inv": "invocation_linked"}.get(a["kind"], "metadata_set")
            assert e.type == expected_type, f"{a}: stored as {e.type}"
            if a["content"] is not None:
                assert e.payload.content == a["content"]
            if a["value"] is not None:
                assert e.payload.values == {a["kind"].split(":")[1]: a["value"]}
        for eid in {a["eid"] for a in acks if a["eid"] and a["eid"].startswith("dup-")}:  # one version for every sender
            assert len({(a["sid"], a["version"]) for a in acks if a["eid"] == eid}) == 1, f"{eid} stored at several versions"
        acks = list({(a["sid"], a["version"]): a for a in acks}.values())  # each command once
        assert len(events) == len(SESSIONS) + len(acks), "the log holds events nobody acknowledged"

        # no lost update: each counter's writes are 1, 2, ..., N in version order, N = acknowledged increments
        per: Counter[tuple[str, str]] = Counter((a["sid"], a["kind"]) for a in acks)
        for sid in SESSIONS:
            for key in COUNTERS:
                written = [
                    e.payload.values[key]
                    for e in events
                    if e.session_id == sid and e.type == "metadata_set" and key in e.payload.values
                ]
                assert written == list(range(1, per[sid, f"inc:{key}"] + 1)), f"{sid}.{key}: lost or repeated update {written}"
                assert led.get_metadata(sid, key) == per[sid, f"inc:{key}"]

        # each writer saw its own commands on a session in increasing versions
        mine: dict[tuple[str, str], list[int]] = defaultdict(list)
        for a in acks:
            if a["content"] and a["content"].startswith("dup-"):
                continue  # it returns the version of whoever stored it first
            writer = (a["eid"] or a["content"]).split("-", 1)[0]
            mine[writer, a["sid"]].append(a["version"])
        for key, vs in mine.items():
            assert vs == sorted(vs), f"{key}: acknowledged versions out of order {vs}"

        # the projections hold exactly the acknowledged commands
        raw = sqlite3.connect(path)
        try:
            for sid in SESSIONS:
                messages, invocations = per[sid, "msg"], per[sid, "inv"]
                increments = sum(per[sid, f"inc:{k}"] for k in COUNTERS)
                row = raw.execute(
                    "SELECT message_count, invocation_count, version, tokens_in, tokens_out, total_duration_ms"
                    " FROM sessions WHERE session_id = ?", (sid,),
                ).fetchone()
                version = 1 + messages + invocations + increments
                assert row == (messages, invocations, version, messages, 2 * messages, float(invocations)), sid
                for table, count in (("messages", messages), ("invocations", invocations)):
                    assert raw.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?", (sid,)).fetchone()[0] == count
                stored = dict(raw.execute("SELECT key, value FROM session_metadata WHERE session_id = ?", (sid,)))
                assert {k: json.loads(v) for k, v in stored.items()} == {k: per[sid, f"inc:{k}"] for k in COUNTERS}
                s = led.get_session(sid)
                assert (s.message_count, s.invocation_count) == (messages, invocations)
                check_state(f"final {sid}", s)
            indexed: dict[tuple[str, str, str], set[int]] = defaultdict(set)  # (session, writer, word) -> positions
            for a in acks:
                if a["kind"] == "msg" and not a["content"].startswith("dup-"):
                    writer, word = a["content"].split("-", 1)[0], a["content"].rsplit(" ", 1)[1]
                    indexed[a["sid"], writer, word].add(by_key[a["sid"], a["version"]].position)
            for sid in SESSIONS:  # the lazy search index holds every message once
                for writer in WRITERS:
                    for word, role in (("plain", "user"), ("generated", "assistant"), ("batch", "system")):
                        hits = led.search_messages(f"{writer} {word}", session_id=sid, role=role, limit=1000)
                        expected = indexed[sid, writer, word]
                        found = {h.position for h in hits}
                        assert len(hits) == len(expected) and found == expected, f"search {sid} {writer} {word!r}"
            raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            raw.commit()  # the INSERT opened a write transaction; the check itself changes nothing
            before = _tables(raw)
            led.rebuild()
            assert _tables(raw) == before, "projections built under concurrency differ from a rebuild"
        finally:
            raw.close()
        report = led.verify()
        assert report.ok, report

    ops: Counter[str] = Counter()
    for d in done:
        ops.update(d["ops"])
    print(
        f"\nstress: {PROCESSES} processes x {THREADS_PER_PROCESS} threads + {MAIN_THREADS} threads in the test process,"
        f" {WRITE_SECONDS:.0f}s each; ops {dict(ops)}; {len(acks)} acknowledged commands, {len(events)} events;"
        f" {sum(d['conflicts'] for d in done)} ConcurrencyError retries; readers: {len(reads)}"
        f" ({READER_THREADS} threads with own ledgers, 1 on the shared ledger, 1 verify thread, 1 process),"
        f" {sum(r['checks'] for r in reads)} checks in {sum(r['rounds'] for r in reads)} rounds;"
        f" writing took {writing:.1f}s, all {len(done)} writers overlapping for {earliest_end - latest_start:.1f}s"
    )


# -- a busy file -------------------------------------------------------------------------------


def run_holder(path: str, hold: float) -> None:
    """Hold a batch (the write lock) open on s0 for ``hold`` seconds, between its two appends."""
    with Ledger(path, busy_timeout=30) as led:
        with led.batch():
            led.add_message("s0", "user", "held 1", event_id="held-1")
            print("locked", flush=True)
            time.sleep(hold)
            led.add_message("s0", "user", "held 2", event_id="held-2")
        print("released", flush=True)


def run_waiter(path: str, event_id: str) -> None:
    """A writer in another process: open, say ready, wait for go, then append (it will have to wait)."""
    with Ledger(path, busy_timeout=30) as led:
        print("ready", flush=True)
        sys.stdin.readline()
        start = time.monotonic()
        version = led.add_message("s1", "user", event_id, event_id=event_id)
        print(json.dumps({"version": version, "waited": time.monotonic() - start}), flush=True)


@contextmanager
def _batch_held(path: Path, hold: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``with ledger.batch():`` open (its first append made) for ``hold`` seconds."""
    proc = _child("hold", str(path), str(hold), stdout=subprocess.PIPE)
    with _reaped([proc]):
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
        assert proc.stdout.readline().strip() == "released"
        assert proc.wait(30) == 0


def _setup(path: Path) -> None:
    with Ledger(path) as led:
        for sid in ("s0", "s1"):
            led.create_session(sid, metadata={"n": 0})


def test_writers_wait_for_a_batch_held_open_by_another_process_and_then_succeed(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    _setup(path)
    hold = 1.0
    waiter_proc = _child("wait", str(path), "proc-1", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ledgers = [Ledger(path, busy_timeout=30) for _ in range(3)]  # opened before the lock is taken
    results: dict[str, Any] = {}
    try:
        with _reaped([waiter_proc]):
            assert waiter_proc.stdout is not None and waiter_proc.stdout.readline().strip() == "ready"
            stale = ledgers[2].get_session("s0")  # read before the held batch commits

            def plain(k: int) -> None:
                start = time.monotonic()
                try:
                    version = ledgers[k].add_message("s1", "user", f"t{k}", event_id=f"t{k}")
                    results[f"t{k}"] = (version, time.monotonic() - start)
                except BaseException as exc:  # reported below
                    results[f"t{k}"] = exc

            def read_modify_write() -> None:
                led, start = ledgers[2], time.monotonic()
                try:
                    try:
                        led.set_metadata("s0", "n", stale.metadata["n"] + 1, expected_version=stale.version, event_id="rmw")
                        results["first"] = "succeeded on a stale version: a lost update"
                    except ConcurrencyError as exc:
                        results["first"] = exc
                    results["waited"] = time.monotonic() - start
                    _, version, conflicts = increment(led, "s0", "n", "rmw")
                    results["rmw"] = (version, conflicts)
                except BaseException as exc:  # reported below
                    results["rmw"] = exc

            with _batch_held(path, hold):
                threads = [threading.Thread(target=plain, args=(k,)) for k in range(2)]
                threads.append(threading.Thread(target=read_modify_write))
                for t in threads:
                    t.start()
                assert waiter_proc.stdin is not None
                waiter_proc.stdin.write("go\n")
                waiter_proc.stdin.close()
                time.sleep(0.3)
                assert all(t.is_alive() for t in threads), "a writer did not wait for the held batch"
            for t in threads:
                t.join(30)
            waited = json.loads(waiter_proc.stdout.readline())["waited"]
            assert waiter_proc.wait(30) == 0
    finally:
        for led in ledgers:
            led.close()

    for k in range(2):
        assert not isinstance(results[f"t{k}"], BaseException), results[f"t{k}"]
        assert results[f"t{k}"][1] >= 0.5 * hold, f"t{k} did not wait: {results[f't{k}']}"
    assert waited >= 0.3 * hold, f"the writer process did not wait: {waited:.2f}s"
    assert isinstance(results["first"], ConcurrencyError), results["first"]
    assert results["first"].expected == stale.version and results["first"].actual == stale.version + 2
    assert results["waited"] >= 0.5 * hold
    assert not isinstance(results["rmw"], BaseException), results["rmw"]
    with Ledger(path) as led:
        events = {e.event_id: e for e in led.history()}
        held = events["held-1"].position, events["held-2"].position
        assert held[1] == held[0] + 1, "the held batch was interleaved with another writer"
        for eid in ("t0", "t1", "proc-1", "rmw"):
            assert events[eid].position > held[1], f"{eid} was appended inside the held batch"
        assert led.get_metadata("s0", "n") == 1
        assert led.get_session("s0").message_count == 2 and led.get_session("s1").message_count == 3
        assert led.verify().ok


def test_a_writer_with_a_short_busy_timeout_gets_ledger_busy_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    _setup(path)
    with Ledger(path, busy_timeout=0.1) as led:  # opened before the lock is taken
        before = led.last_position
        with _batch_held(path, 1.5):
            start = time.monotonic()
            with pytest.raises(LedgerBusy) as err:
                led.add_message("s0", "user", "never", event_id="busy-1")
            assert time.monotonic() - start < 1.0, "it waited for the holder instead of timing out"
            assert isinstance(err.value, LedgerError)
            message = str(err.value)
            assert "message_added" in message and "locked" in message and "busy timeout" in message, message

            body_ran = False
            with pytest.raises(LedgerBusy):
                with led.batch():
                    body_ran = True
            assert not body_ran

            s = led.get_session("s0")  # reads go on meanwhile, and see nothing of the held batch
            assert s.version == 1 and led.last_position == before
            with pytest.raises(LedgerBusy):
                led.set_metadata("s0", "n", 1, expected_version=s.version, event_id="busy-2")
        ids = [e.event_id for e in led.history()]
        assert "busy-1" not in ids and "busy-2" not in ids
        assert led.last_position == before + 2  # only the holder's batch
        assert led.get_session("s0").message_count == 2 and led.get_metadata("s0", "n") == 0
        assert led.verify().ok
        assert led.add_message("s0", "user", "now", event_id="busy-1") == 4  # usable again


def test_a_reader_opens_the_file_at_once_while_another_process_holds_a_batch(tmp_path: Path) -> None:
    """WAL readers do not wait for writers: opening a ledger to read it must not need the write lock."""
    path = tmp_path / "busy.db"
    _setup(path)
    with _batch_held(path, 1.5):
        start = time.monotonic()
        with Ledger(path, busy_timeout=0.1) as reader:  # the file's projections are level: nothing to write
            opened = time.monotonic() - start
            s = reader.get_session("s0")
            assert (s.version, s.message_count) == (1, 0)  # none of the held batch
            assert len(reader.list_sessions()) == 2 and reader.verify().ok
        assert opened < 1.0, f"opening waited {opened:.2f}s for the writer"


# -- the child processes' entry point -------------------------------------------------------------


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "writers":
        path, name, threads, outdir = args
        run_writer_process(path, name, int(threads), outdir)
    elif mode == "reader":
        run_reader_process(*args)
    elif mode == "hold":
        run_holder(args[0], float(args[1]))
    elif mode == "wait":
        run_waiter(*args)
    else:  # pragma: no cover
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
