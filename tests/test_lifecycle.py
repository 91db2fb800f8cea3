"""Purge, retention and idle cleanup: payloads gone everywhere, the chain still verifies."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from ledger import InvalidInput, Ledger, Projector, SessionClosed, SessionPurged
from tests.conftest import Clock, check_search_index, dump, is_postgres, raw_sql

SECRETS = [b"hunter2-password", b"SSN-777-66-5555", b"card-4111-secret", b"alice-private-id", b"tag-confidential",
           b"tool-secret-scan", b"fork-only-secret"]


def _scenario(path: str, clock: Clock | None = None) -> Ledger:
    led = Ledger(path, clock=clock or Clock(), snapshot_every=2)
    led.create_session("keep", metadata={"note": "public"})
    led.add_message("keep", "user", "ordinary public words")
    led.create_session("s", user_id="alice-private-id", tags=["tag-confidential"], metadata={"ssn": "SSN-777-66-5555"})
    for i in range(4):
        led.add_message("s", "user", f"my hunter2-password is old {i}")
    led.set_data("s", "card", "card-4111-secret")
    led.link_invocation("s", "inv-1", "tool-secret-scan", cost=0.5, artifact="file:///x/tool-secret-scan")
    led.restore("s", version=3)
    led.fork("s", new_session_id="child")
    led.add_message("child", "user", "fork-only-secret")
    return led


def _stored_bytes(led: Ledger) -> bytes:
    """Everything the ledger stores. SQLite: every byte of the file and its -wal and -shm files. PostgreSQL:
    every row of every table in the ledger's schema (the server's own files, WAL and backups are beyond
    the ledger's reach, as the PostgreSQL backend documents)."""
    if is_postgres(led):
        return repr(dump(led)).encode()
    path = Path(led.path)
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_purge_removes_the_text_from_every_byte_of_the_file_and_verify_still_passes(ledger_path: str) -> None:
    led = _scenario(ledger_path)
    assert all(secret in _stored_bytes(led) for secret in SECRETS[:1])
    version = led.purge_session("s", reason="privacy request 7", by="dpo")
    assert led.verify().ok
    led.close()
    raw = _stored_bytes(led)
    for secret in SECRETS:
        assert secret not in raw, secret
    assert b"ordinary public words" in raw
    with Ledger(ledger_path) as again:
        assert again.get_session("s").version == version
        assert again.verify().ok


def test_a_purged_session_reads_as_purged_not_missing(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        led.purge_session("s", reason="retention")
        s = led.get_session("s")
        assert (s.status, s.completion_reason, s.metadata, s.data, s.tags, s.user_id, s.message_count) == (
            "purged", "retention", {}, {}, (), None, 0
        )
        assert led.messages("s") == []
        assert led.get_metadata("s") == {} and led.get_data("s") == {}
        assert [x.status for x in led.list_sessions(status="purged").items] == ["purged", "purged"]
        assert led.statistics("s").message_count == 0
        assert led.search_messages("hunter2") == []
        assert [h.session_id for h in led.search_messages("ordinary")] == ["keep"]
        assert led.get_session("keep").metadata == {"note": "public"}


def test_a_purged_session_takes_no_commands_and_has_no_past(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        led.purge_session("s", reason="r")
        for call in (
            lambda: led.add_message("s", "user", "x"),
            lambda: led.set_metadata("s", "k", 1),
            lambda: led.add_tags("s", ["t"]),
            lambda: led.restore("s", version=2),
            lambda: led.fork("s"),
            lambda: led.get_session("s", version=2),
            lambda: led.messages("s", version=3),
        ):
            with pytest.raises(SessionPurged):
                call()
        assert issubclass(SessionPurged, SessionClosed)
        assert led.purge_session("s", reason="again") == led.get_session("s").version  # a no-op


def test_purge_cascades_to_forks(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        led.fork("child", new_session_id="grandchild")
        led.purge_session("s", reason="r")
        assert {led.get_session(x).status for x in ("s", "child", "grandchild")} == {"purged"}
        assert led.get_session("keep").status == "active"


def test_purging_a_fork_leaves_its_parent(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        led.purge_session("child", reason="r")
        assert led.get_session("s").status == "active"
        assert led.get_metadata("s", "ssn") == "SSN-777-66-5555"


def test_rebuild_after_a_purge_gives_the_same_tables(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        led.purge_session("s", reason="r")
        names = ("sessions", "session_tags", "session_metadata", "session_data", "messages", "invocations")

        def tables() -> dict[str, list[tuple[object, ...]]]:
            with raw_sql(led) as conn:
                return {n: conn.execute(f"SELECT * FROM {n} ORDER BY 1, 2").fetchall() for n in names}

        before = tables()
        led.rebuild()
        assert tables() == before
        check_search_index(led)
        # A cold load (snapshot + tail, nothing cached): a second ledger on the same file, as another process.
        with Ledger(ledger_path, snapshot_every=2) as cold:
            assert cold.get_session("s").status == "purged"


def test_copies_cut_before_the_purge_still_verify(
    ledger_path: str, new_ledger_path: Callable[[], str], tmp_path: Path
) -> None:
    with _scenario(ledger_path) as led:
        cut = led.last_position
        led.purge_session("s", reason="r")
        led.replay(into=tmp_path / "cut.db", until_position=cut)
        led.export(tmp_path / "cut.jsonl", until_position=cut)
        led.export(tmp_path / "all.jsonl")
    with Ledger(tmp_path / "cut.db") as copy:
        assert copy.verify().ok
        assert copy.get_session("s").status == "purged"  # its rows are redacted; the purge event is past the cut
        assert copy.messages("s") == []
    with Ledger(new_ledger_path()) as imported:
        imported.import_events(tmp_path / "cut.jsonl")
        assert imported.verify().ok
        imported.import_events(tmp_path / "all.jsonl")
        assert imported.verify().ok
        assert imported.get_session("s").status == "purged"
    assert b"hunter2" not in (tmp_path / "all.jsonl").read_bytes()


def _forge_digest(marker: dict[str, Any]) -> None:
    marker["$redacted"] = "00" + marker["$redacted"][2:]


def _forge_purged_at(marker: dict[str, Any]) -> None:
    marker["purged_at"] = 2


@pytest.mark.parametrize(("change", "reason"), [(_forge_digest, "hash"), (_forge_purged_at, "later purged event")])
def test_a_tampered_redaction_is_reported(
    ledger_path: str, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    with _scenario(ledger_path) as led:
        led.purge_session("s", reason="r")
        with raw_sql(led, write=True) as raw:
            data, position = raw.execute(
                "SELECT data, position FROM events WHERE session_id = 's' ORDER BY position LIMIT 1 OFFSET 2"
            ).fetchone()
            marker = json.loads(data)
            change(marker)  # the redaction marker rewritten in place, keys in order, as SQLite's json_set writes it
            raw.execute("UPDATE events SET data = ? WHERE position = ?", (json.dumps(marker, separators=(",", ":")), position))
        report = led.verify()
        assert not report.ok and report.first_bad_position == position
        assert reason in (report.reason or "")


def test_redacting_a_row_without_a_purge_is_caught(ledger_path: str) -> None:
    from ledger.events import redaction_marker

    with _scenario(ledger_path) as led:
        with raw_sql(led, write=True) as raw:
            data, position = raw.execute("SELECT data, position FROM events WHERE position = 4").fetchone()
            import hashlib

            marker = redaction_marker(hashlib.sha256(data.encode()).digest(), 5)  # names an ordinary event as its purge
            raw.execute("UPDATE events SET data = ? WHERE position = 4", (marker,))
        report = led.verify()
        assert not report.ok and report.first_bad_position == 4  # the row whose payload was replaced


def test_a_redaction_naming_another_sessions_purge_is_caught_even_against_a_saved_digest(ledger_path: str) -> None:
    import hashlib

    from ledger.events import redaction_marker

    with Ledger(ledger_path) as led:
        led.create_session("victim")
        led.add_message("victim", "user", "evidence the attacker wants gone")
        led.create_session("other")
        led.purge_session("other", reason="erasure request")
        digest = led.digest()
        with raw_sql(led, write=True) as raw:
            (purge_at,) = raw.execute("SELECT position FROM events WHERE type = 'purged'").fetchone()
            data, position = raw.execute(
                "SELECT data, position FROM events WHERE session_id = 'victim' AND version = 2").fetchone()
            marker = redaction_marker(hashlib.sha256(data.encode()).digest(), purge_at)
            raw.execute("UPDATE events SET data = ? WHERE position = ?", (marker, position))
        report = led.verify(digest)
        assert not report.ok and report.first_bad_position == position
        assert "victim" in (report.reason or "") and "other" in (report.reason or "")


def test_purge_needs_a_reason(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        for bad in ("", None, 5):
            with pytest.raises(InvalidInput):
                led.purge_session("s", reason=bad)  # type: ignore[arg-type]
        assert led.get_session("s").status == "active"


def test_cleanup_abandons_only_sessions_idle_too_long(ledger_path: str) -> None:
    clock = Clock(step_ms=1000)
    with Ledger(ledger_path, clock=clock) as led:
        led.create_session("old")
        led.create_session("done")
        led.complete_session("done")
        clock.now += timedelta(hours=2)
        led.create_session("fresh")
        abandoned = led.cleanup(timedelta(hours=1))
        assert abandoned == ["old"]
        old = led.get_session("old")
        assert (old.status, old.completion_reason) == ("abandoned", "idle for more than 1:00:00")
        assert led.get_session("fresh").status == "active"
        assert led.cleanup(3600) == []
        with pytest.raises(InvalidInput):
            led.cleanup(-1)


def test_purge_completed_purges_sessions_that_ended_long_ago(ledger_path: str) -> None:
    clock = Clock(step_ms=1000)
    with Ledger(ledger_path, clock=clock) as led:
        led.create_session("ancient")
        led.add_message("ancient", "user", "ancient-secret")
        led.complete_session("ancient")
        led.create_session("running")
        clock.now += timedelta(days=40)
        led.create_session("recent")
        led.complete_session("recent")
        assert led.purge_completed(30) == ["ancient"]
        assert [led.get_session(x).status for x in ("ancient", "running", "recent")] == ["purged", "active", "completed"]
        assert led.verify().ok


def test_the_background_cleanup_thread_abandons_idle_sessions(ledger_path: str) -> None:
    clock = Clock(step_ms=1000)
    earlier = {t for t in threading.enumerate() if t.name == "ledger-cleanup"}  # other tests' (none, if all closed)
    led = Ledger(ledger_path, clock=clock, cleanup_every=0.05, max_idle=60)
    cleaners = [t for t in threading.enumerate() if t.name == "ledger-cleanup" and t not in earlier]
    try:
        led.create_session("idle")
        clock.now += timedelta(minutes=5)
        deadline = time.monotonic() + 10
        while led.get_session("idle").status == "active" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert led.get_session("idle").status == "abandoned"
    finally:
        led.close()
    assert len(cleaners) == 1 and not cleaners[0].is_alive()  # the ledger started its cleanup thread; close stopped it


def test_cleanup_settings_go_together(ledger_path: str) -> None:
    with pytest.raises(InvalidInput):
        Ledger(ledger_path, cleanup_every=1)
    with pytest.raises(InvalidInput):
        Ledger(ledger_path, cleanup_every=1, max_idle="long")


def test_purge_is_refused_inside_a_batch(ledger_path: str) -> None:
    with _scenario(ledger_path) as led:
        with led.batch():
            for call in (lambda: led.purge_session("s", reason="r"), lambda: led.purge_completed(1)):
                with pytest.raises(InvalidInput, match="inside a batch"):
                    call()
        assert led.get_session("s").status == "active"


def test_cleanup_and_retention_report_their_progress(ledger_path: str) -> None:
    clock = Clock(step_ms=1000)
    with Ledger(ledger_path, clock=clock) as led:
        for name in ("a", "b", "c"):
            led.create_session(name)
        led.complete_session("c")
        clock.now += timedelta(days=40)
        seen: list[tuple[int, int]] = []
        assert led.cleanup(3600, progress=lambda d, t: seen.append((d, t))) == ["a", "b"]
        assert seen == [(1, 2), (2, 2)]
        seen.clear()
        assert led.purge_completed(30, progress=lambda d, t: seen.append((d, t))) == ["c"]
        assert seen == [(1, 1)]


class ScrubRecorder(Projector):
    """A projector of one's own that records each call of its ``purged`` hook."""

    name = "scrub_recorder"
    dialects = frozenset({"sqlite", "postgres"})
    tables = ("scrub_nothing",)

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def create(self, db: Any) -> None:
        db.execute("CREATE TABLE scrub_nothing (x INTEGER)")

    def apply(self, conn: Any, events: Any) -> None:
        pass

    def purged(self, conn: Any, session_ids: Any) -> None:
        self.calls.append(sorted(session_ids))


def test_purge_completed_scrubs_the_projections_once_for_every_session_it_purged(ledger_path: str) -> None:
    clock = Clock()
    recorder = ScrubRecorder()
    with Ledger(ledger_path, clock=clock, projectors=[recorder]) as led:
        for i in range(6):
            led.create_session(f"old-{i}")
            led.add_message(f"old-{i}", "user", f"secret words {i}")
            led.complete_session(f"old-{i}")
        led.fork("old-0", new_session_id="old-0-fork")
        clock.now += timedelta(days=40)
        purged = led.purge_completed(30)
        assert sorted(purged) == [f"old-{i}" for i in range(6)]
        assert recorder.calls == [sorted([*purged, "old-0-fork"])]  # one scrub, forks included, not one per session
        assert led.search_messages("secret") == []
        check_search_index(led)


def test_a_purge_leaves_no_byte_of_the_session_in_a_projector_of_your_own(ledger_path: str) -> None:
    from tests.test_projections import CostPerCustomer

    with Ledger(ledger_path, projectors=[CostPerCustomer()]) as led:
        led.create_session("gone", metadata={"customer": "customer-qz9-secret"})
        led.link_invocation("gone", "i1", "search", cost=1.0)
        led.create_session("kept", metadata={"customer": "acme"})
        assert b"customer-qz9-secret" in _stored_bytes(led)
        led.purge_session("gone", reason="erasure request")
        assert b"customer-qz9-secret" not in _stored_bytes(led)
        assert led.verify().ok


def _file_set(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def _secret_and_other(tmp_path: Path, secret: str) -> Path:
    """A ledger file with session "s" holding ``secret`` in a message, and an "other" session."""
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.create_session("s")
        led.add_message("s", "user", secret)
        led.create_session("other")
    return path


def _reader_holding_a_snapshot(path: Path) -> Any:
    """Another connection inside a read transaction: it holds the snapshot it began with."""
    import sqlite3

    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()
    return reader


def test_a_purge_while_a_reader_holds_a_snapshot_says_the_scrub_is_pending_and_finishes_it_later(
    tmp_path: Path,
) -> None:
    path = _secret_and_other(tmp_path, "secret-zq7-text")
    with Ledger(path) as led:
        reader = _reader_holding_a_snapshot(path)
        try:
            led.purge_session("s", reason="erasure")  # returns at once: it does not wait for the reader
            report = led.verify()
            assert report.ok and report.scrub_pending
            assert not led.finish_scrub()
            led.add_message("other", "user", "a later write")  # still held: still pending
            assert led.verify().scrub_pending
        finally:
            reader.close()
        led.add_message("other", "user", "the first write after the reader let go")  # finishes the scrub
        assert not led.verify().scrub_pending and led.finish_scrub()
        assert b"secret-zq7-text" not in _file_set(path)


def test_a_scrub_left_pending_by_a_killed_process_is_seen_and_finished_by_another(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    path = _secret_and_other(tmp_path, "secret-qq3-text")
    reader = _reader_holding_a_snapshot(path)
    try:
        script = (
            "import sys, time\nfrom ledger import Ledger\nled = Ledger(sys.argv[1])\n"
            "led.purge_session('s', reason='erasure')\nprint('purged', flush=True)\ntime.sleep(60)\n"
        )
        purger = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        assert purger.stdout is not None and purger.stdout.readline().strip() == "purged"
        purger.send_signal(signal.SIGKILL)  # dies with the scrub pending: no close, no later write
        purger.wait()
        purger.stdout.close()
        with Ledger(path) as other:
            assert other.verify().scrub_pending  # recorded in the ledger, so another process sees it
            reader.close()
            assert other.finish_scrub() and not other.verify().scrub_pending
            assert b"secret-qq3-text" not in _file_set(path)
    finally:
        reader.close()


def test_a_purged_value_cannot_be_confirmed_by_hashing_a_guess(ledger_path: str) -> None:
    import hashlib

    from ledger import events as ev
    from ledger.events import read_redaction

    with Ledger(ledger_path) as led:
        led.create_session("s", metadata={"email": "alice@example.com"})
        led.add_message("s", "user", "my card is 4111-1111")
        payload = list(led.history("s"))[0].payload
        assert payload == ev.Created(metadata={"email": "alice@example.com"})  # the salt is not part of the event
        led.purge_session("s", reason="erasure")
        with raw_sql(led) as raw:
            kept = [read_redaction(data) for (data,) in raw.execute(
                "SELECT data FROM events WHERE session_id = 's' AND type <> 'purged' ORDER BY version")]
    guesses = [ev.Created(metadata={"email": "alice@example.com"}), ev.MessageAdded(role="user", content="my card is 4111-1111")]
    for redaction, guess in zip(kept, guesses):
        assert redaction is not None
        assert redaction.digest != hashlib.sha256(ev.encode_payload(guess)).hexdigest()  # the guess does not match


def test_payloads_written_before_salts_still_verify_and_the_file_is_upgraded(tmp_path: Path) -> None:
    import shutil
    import sqlite3

    from ledger.storage.sql import FORMAT_VERSION

    old = tmp_path / "v1.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "ledger_v1.db", old)
    with Ledger(old) as led:
        assert led.verify().ok
        sid = led.list_sessions().items[0].session_id
        led.add_message(sid, "user", "a new, salted payload")
        assert led.verify().ok
    raw = sqlite3.connect(old)
    assert raw.execute("SELECT value FROM ledger_meta WHERE key = 'format'").fetchone()[0] == str(FORMAT_VERSION)
    assert b'"$salt"' in raw.execute("SELECT data FROM events ORDER BY position DESC LIMIT 1").fetchone()[0].encode()
    raw.close()
