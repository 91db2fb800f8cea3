"""Many threads on one Ledger, and several processes on one ledger (a file, or a PostgreSQL schema): no lost or
interleaved command."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from ledger import ConcurrencyError, Ledger


def _contiguous(led: Ledger) -> None:
    positions = [e.position for e in led.history()]
    assert positions == list(range(1, len(positions) + 1))
    seen: dict[str, int] = {}
    for e in led.history():
        assert e.version == seen.get(e.session_id, 0) + 1
        seen[e.session_id] = e.version
    assert led.verify().ok


def test_threads_sharing_one_ledger_lose_nothing(ledger_path: str) -> None:
    with Ledger(ledger_path, snapshot_every=7) as led:
        for s in ("a", "b"):
            led.create_session(s)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(50):
                    session = "a" if (n + i) % 2 else "b"
                    if i % 10 == 0:
                        with led.batch():
                            led.add_message(session, "user", f"{n}-{i}")
                            led.set_metadata(session, f"t{n}", i)
                    else:
                        led.add_message(session, "assistant", f"{n}-{i}")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        total = sum(led.get_session(s).message_count for s in ("a", "b"))
        assert total == 8 * 50
        _contiguous(led)


def test_optimistic_retry_loop_across_threads_loses_no_update(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("counter", metadata={"n": 0})

        def increment() -> None:
            for _ in range(25):
                while True:
                    s = led.get_session("counter")
                    try:
                        led.set_metadata("counter", "n", s.metadata["n"] + 1, expected_version=s.version)
                        break
                    except ConcurrencyError:
                        continue

        threads = [threading.Thread(target=increment) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert led.get_metadata("counter", "n") == 100


WRITER = textwrap.dedent(
    """
    import sys
    from ledger import Ledger, ConcurrencyError
    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Ledger(path, busy_timeout=30) as led:
        for i in range(count):
            led.add_message("shared", "user", f"{name}-{i}")
            led.add_message(name, "assistant", f"{name}-{i}")
            while True:  # a read-modify-write with optimistic concurrency across processes
                s = led.get_session("shared")
                try:
                    led.set_metadata("shared", "n", s.metadata.get("n", 0) + 1, expected_version=s.version)
                    break
                except ConcurrencyError:
                    pass
    """
)


def test_two_processes_append_to_one_ledger(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        for s in ("shared", "p1", "p2"):
            led.create_session(s)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, ledger_path, name, "60"]) for name in ("p1", "p2")]
    for p in procs:
        assert p.wait(120) == 0
    with Ledger(ledger_path) as led:
        assert led.get_session("shared").message_count == 120
        assert led.get_metadata("shared", "n") == 120
        assert led.get_session("p1").message_count == led.get_session("p2").message_count == 60
        _contiguous(led)


def test_verify_reads_one_consistent_snapshot_while_another_connection_purges_and_drops(ledger_path: str) -> None:
    with Ledger(ledger_path, snapshot_every=2) as setup:
        for i in range(30):
            setup.create_session(f"s{i}")
            for j in range(6):
                setup.add_message(f"s{i}", "user", f"words {i} {j}")
            setup.complete_session(f"s{i}")
    stop = threading.Event()
    failures: list[BaseException] = []

    def gc() -> None:  # another connection, as another process would be
        try:
            with Ledger(ledger_path) as other:
                for i in range(30):
                    if stop.is_set():
                        return
                    other.purge_session(f"s{i}", reason="gc")
                    other.drop_snapshots(keep=0, bucket=None)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=gc)
    with Ledger(ledger_path) as led:
        worker.start()
        try:
            reports = [led.verify() for _ in range(15)]
        finally:
            stop.set()
            worker.join(60)
    assert failures == []
    assert all(report.ok for report in reports), [r.reason for r in reports if not r.ok]
