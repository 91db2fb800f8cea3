"""Integration records (``set_record``, ``remove_records``, ``record``, ``records``): the contract on every backend,
and how the log's other guarantees (purge, export and import, replay, rebuild, deep verify) treat them."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from ledger import (
    IntegrityError,
    InvalidInput,
    Ledger,
    LimitExceeded,
    Limits,
    Record,
    SessionClosed,
    SessionNotFound,
    SessionPurged,
)
from tests.conftest import Clock, dump, raw_sql


def _keys(records: list[Record]) -> list[str]:
    return [r.key for r in records]


def test_a_record_is_set_read_back_and_replaced(ledger: Ledger) -> None:
    ledger.create_session("s")
    v = ledger.set_record("s", "lg.checkpoint", "/c1", {"id": "c1", "n": [1, 2.5, None]}, blob=b"\x00\xff", group="run:1")
    record = ledger.record("s", "lg.checkpoint", "/c1")
    assert record is not None
    assert (record.value, record.blob, record.group, record.version) == ({"id": "c1", "n": [1, 2.5, None]}, b"\x00\xff",
                                                                          "run:1", v)
    assert ledger.record("s", "lg.checkpoint", "/nope") is None
    assert ledger.record("s", "other", "/c1") is None
    ledger.set_record("s", "lg.checkpoint", "/c1", "replaced")
    assert ledger.record("s", "lg.checkpoint", "/c1").value == "replaced"  # type: ignore[union-attr]
    assert ledger.record("s", "lg.checkpoint", "/c1", version=v).value["id"] == "c1"  # type: ignore[union-attr]
    assert len(ledger.records("s", "lg.checkpoint")) == 1


def test_records_are_read_by_keys_prefix_range_group_and_position(ledger: Ledger) -> None:
    ledger.create_session("s")
    for key in ("a/1", "a/2", "a/3", "b/1", "b/2"):
        ledger.set_record("s", "k", key, key, group="g" if key.endswith("2") else None)
    ledger.create_session("t")
    ledger.set_record("t", "k", "a/9", "other session", group="g")
    assert _keys(ledger.records("s", "k")) == ["a/1", "a/2", "a/3", "b/1", "b/2"]
    assert _keys(ledger.records("s", "k", prefix="a/")) == ["a/1", "a/2", "a/3"]
    assert _keys(ledger.records("s", "k", prefix="a/", descending=True, limit=2)) == ["a/3", "a/2"]
    assert _keys(ledger.records("s", "k", prefix="a/", before="a/3", descending=True)) == ["a/2", "a/1"]
    assert _keys(ledger.records("s", "k", after="a/3")) == ["b/1", "b/2"]
    assert _keys(ledger.records("s", "k", keys=["b/2", "a/1", "zz", "a/1"])) == ["a/1", "b/2"]
    assert _keys(ledger.records("s", "k", group="g", by_position=True)) == ["a/2", "b/2"]
    third = ledger.records("s", "k", keys=["a/3"])[0].position
    assert _keys(ledger.records("s", "k", after_position=third, by_position=True)) == ["b/1", "b/2"]
    assert sorted((r.session_id, r.key) for r in ledger.records(None, "k", group="g")) == [
        ("s", "a/2"), ("s", "b/2"), ("t", "a/9")]
    assert ledger.records("s", "nothing") == []


def test_reads_as_of_a_version_position_or_time(ledger: Ledger) -> None:
    ledger.create_session("s")
    first = ledger.set_record("s", "k", "x", 1)
    ledger.set_record("s", "k", "y", 2)
    middle = ledger.last_position
    ledger.set_record("s", "k", "x", 3)
    ledger.remove_records("s", "k", ["y"])
    assert [(r.key, r.value) for r in ledger.records("s", "k")] == [("x", 3)]
    assert [(r.key, r.value) for r in ledger.records("s", "k", position=middle)] == [("x", 1), ("y", 2)]
    assert [(r.key, r.value) for r in ledger.records("s", "k", version=first)] == [("x", 1)]
    at = ledger.records("s", "k", position=middle)[1].recorded_at
    assert [(r.key, r.value) for r in ledger.records("s", "k", at=at)] == [("x", 1), ("y", 2)]
    assert ledger.record("s", "k", "y", position=middle).value == 2  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        ledger.records("s", "k", version=1, position=2)


def test_removal_takes_records_out_of_view_and_removing_nothing_writes_nothing(ledger: Ledger) -> None:
    ledger.create_session("s")
    for key in ("a", "b", "c"):
        ledger.set_record("s", "k", key, key)
        ledger.set_record("s", "j", key, key)
    version = ledger.remove_records("s", "k", ["a", "missing"])
    assert _keys(ledger.records("s", "k")) == ["b", "c"]
    assert list(ledger.history("s"))[-1].payload.keys == ("a",)  # type: ignore[attr-defined]
    assert ledger.remove_records("s", "k", ["a", "missing"]) == version  # nothing standing: nothing written
    assert ledger.remove_records("s", "k", ["a"], event_id="retry-1") == version + 1  # a no-op kept for its event_id
    assert ledger.remove_records("s", "k", ["a"], event_id="retry-1") == version + 1
    ledger.remove_records("s", "k")
    assert ledger.records("s", "k") == [] and len(ledger.records("s", "j")) == 3
    ledger.remove_records("s")
    assert ledger.records("s", "j") == []
    ledger.set_record("s", "j", "a", "again")  # a removed key can be set again
    assert [r.value for r in ledger.records("s", "j")] == ["again"]


def test_records_count_only_in_the_sessions_version(ledger: Ledger) -> None:
    ledger.create_session("s", metadata={"m": 1})
    ledger.add_message("s", "user", "hello")
    before = ledger.get_session("s")
    for i in range(5):
        ledger.set_record("s", "k", f"k{i}", {"i": i}, blob=b"x" * 100)
    after = ledger.get_session("s")
    assert after.version == before.version + 5
    assert (after.message_count, after.metadata, after.data) == (1, {"m": 1}, {})
    summary = ledger.list_sessions().items[0]
    assert (summary.version, summary.message_count) == (after.version, 1)


def test_bad_records_are_refused_and_write_nothing(ledger: Ledger) -> None:
    ledger.create_session("s")
    position = ledger.last_position
    bad: list[tuple[dict[str, object], type[Exception]]] = [
        ({"kind": "", "key": "k"}, InvalidInput),
        ({"kind": "k", "key": "x" * 257}, InvalidInput),
        ({"kind": "k", "key": "a\x00b"}, InvalidInput),
        ({"kind": "k", "key": "k", "value": {1, 2}}, InvalidInput),
        ({"kind": "k", "key": "k", "value": float("nan")}, InvalidInput),
        ({"kind": "k", "key": "k", "blob": "text"}, InvalidInput),
        ({"kind": "k", "key": "k", "group": ""}, InvalidInput),
    ]
    for arguments, error in bad:
        with pytest.raises(error):
            ledger.set_record("s", **arguments)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFound):
        ledger.set_record("missing", "k", "k")
    with pytest.raises(SessionNotFound):
        ledger.records("missing", "k")
    with pytest.raises(InvalidInput):
        ledger.remove_records("s", None, ["k"])
    assert ledger.last_position == position


def test_the_record_size_limit_holds_value_and_blob_together(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db", limits=Limits(max_record_bytes=1000)) as led:
        led.create_session("s")
        led.set_record("s", "k", "ok", "x" * 400, blob=b"y" * 500)
        with pytest.raises(LimitExceeded) as err:
            led.set_record("s", "k", "big", "x" * 400, blob=b"y" * 700)
        assert err.value.limit == 1000


def test_records_need_an_open_session(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.set_record("s", "k", "a", 1)
    ledger.complete_session("s")
    with pytest.raises(SessionClosed):
        ledger.set_record("s", "k", "b", 2)
    with pytest.raises(SessionClosed):
        ledger.remove_records("s")
    assert [r.value for r in ledger.records("s", "k")] == [1]  # still readable


def test_a_purge_erases_records_everywhere_and_the_chain_still_verifies(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.create_session("keep")
    ledger.set_record("s", "k", "a", {"secret": "hunter2"}, blob=b"SECRET-BYTES")
    ledger.set_record("keep", "k", "a", {"public": 1})
    ledger.purge_session("s", reason="privacy request")
    assert ledger.records("s", "k") == []
    with pytest.raises(SessionPurged):
        ledger.set_record("s", "k", "b", 1)
    assert [r.value for r in ledger.records("keep", "k")] == [{"public": 1}]
    assert ledger.verify(projections=True).ok
    with raw_sql(ledger) as raw:
        texts = [row[0] for row in raw.execute("SELECT data FROM events").fetchall()]
        assert not any("hunter2" in t or "U0VDUkVU" in t for t in texts)  # nor its base64 ("SECRET")
        assert raw.execute("SELECT count(*) FROM records WHERE session_id = 's'").fetchone()[0] == 0


def test_export_import_replay_and_rebuild_keep_the_records(tmp_path: Path, new_ledger_path: Callable[[], str]) -> None:
    make = new_ledger_path
    with Ledger(make(), clock=Clock()) as led:
        led.create_session("s")
        led.set_record("s", "k", "a", {"v": 1}, blob=bytes(range(256)), group="g")
        led.set_record("s", "k", "b", None, blob=b"")
        led.remove_records("s", "k", ["b"])
        led.set_record("s", "k", "a", {"v": 2})
        out = tmp_path / "export.jsonl"
        led.export(out)
        digest = led.digest()
        tables = dump(led)["records"]
        led.rebuild()
        assert dump(led)["records"] == tables
        assert led.verify(projections=True).ok
        copy = tmp_path / "replay.db"
        led.replay(into=copy, until_position=2)
    with Ledger(copy) as past:
        assert [(r.key, r.blob) for r in past.records("s", "k")] == [("a", bytes(range(256)))]
    with Ledger(make()) as other:
        other.import_events(out)
        assert other.digest() == digest
        assert [(r.key, r.value) for r in other.records("s", "k")] == [("a", {"v": 2})]
        assert other.record("s", "k", "a", version=2).blob == bytes(range(256))  # type: ignore[union-attr]
        assert other.verify(projections=True).ok


def test_the_deep_verify_finds_a_hand_edited_records_row(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as led:
        led.create_session("s")
        led.set_record("s", "k", "a", 1)
        led.set_record("s", "k", "b", 2)
        with raw_sql(led, write=True) as raw:
            raw.execute("UPDATE records SET removed_at = 1 WHERE key = 'a'")
        report = led.verify(projections=True)
        assert not report.ok and report.table == "records"


def _export_of(path: Path, rows: list[tuple[str, str, dict[str, object]]]) -> Path:
    from tests.test_transfer import _crafted_export

    return _crafted_export(path, rows)


@pytest.mark.parametrize("rows", [
    [("s", "created", {}), ("s", "record_set", {"kind": "k", "key": "x" * 300})],
    [("s", "created", {}), ("s", "record_set", {"kind": "k", "key": "a", "value": {"n": 2**70}})],
    [("s", "created", {}), ("s", "completed", {}), ("s", "record_set", {"kind": "k", "key": "a"})],
    [("s", "record_set", {"kind": "k", "key": "a"})],
    [("s", "created", {}), ("s", "records_removed", {"keys": ["a"]})],
])
def test_an_import_holds_records_to_the_commands_rules(tmp_path: Path, rows: list[tuple[str, str, dict[str, object]]]) -> None:
    with Ledger(tmp_path / "l.db") as led:
        with pytest.raises(IntegrityError, match="nothing was imported"):
            led.import_events(_export_of(tmp_path / "bad.jsonl", rows))
        assert led.last_position == 0


def test_a_ledger_written_before_records_gets_its_records_table_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Ledger(path) as led:
        led.create_session("s")
        led.set_record("s", "k", "a", 1)
    with contextlib.closing(sqlite3.connect(path)) as raw:  # as an older version left it: no records projector
        raw.execute("DROP TABLE records")
        raw.execute("DELETE FROM projector_positions WHERE name = 'records'")
        raw.commit()
    with Ledger(path) as led:
        assert [r.value for r in led.records("s", "k")] == [1]
        assert led.verify(projections=True).ok


def test_history_and_the_sessions_dir_export_show_record_events(tmp_path: Path, clock: Clock) -> None:
    with Ledger(tmp_path / "l.db", clock=clock) as led:
        led.create_session("s")
        led.set_record("s", "k", "a", {"v": 1}, blob=b"\x01")
        clock.now += timedelta(seconds=1)
        assert [e.type for e in led.history("s")] == ["created", "record_set"]
        led.export(tmp_path / "dir", format="sessions-dir")
        meta = json.loads((tmp_path / "dir" / "s" / "metadata.json").read_text())
        assert meta["version"] == 2
