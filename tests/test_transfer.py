"""Export, import and backup: the chain travels intact, imports are idempotent, damage is refused."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from ledger import IntegrityError, InvalidInput, Ledger
from tests.conftest import Clock


def _source(path: str, clock: Clock | None = None) -> Ledger:
    led = Ledger(path, clock=clock or Clock(), snapshot_every=3)
    led.create_session("a", user_id="u", tags=["x"], metadata={"k": {"n": [1, 2]}})
    led.create_session("b")
    for i in range(5):
        led.add_message("a", "user", f"a{i}", tokens={"input": i})
        led.add_message("b", "assistant", f"b{i}", model="m")
    led.link_invocation("a", "i", "grep", duration_ms=3.5, cost=0.1)
    led.set_data("b", "d", {"deep": True})
    led.restore("a", version=4)
    led.fork("b", new_session_id="c")
    return led


def _sessions(led: Ledger) -> dict[str, object]:
    ids = sorted({e.session_id for e in led.history()})
    return {sid: (led.get_session(sid), led.messages(sid)) for sid in ids}


def test_a_full_export_imported_into_an_empty_ledger_has_the_same_sessions_and_chain_head(
    ledger_path: str, new_ledger_path: Callable[[], str], tmp_path: Path
) -> None:
    with _source(ledger_path) as src:
        assert src.export(tmp_path / "all.jsonl") == src.last_position
        expected, head = _sessions(src), src.digest()
    with Ledger(new_ledger_path()) as dst:
        report = dst.import_events(tmp_path / "all.jsonl")
        assert (report.read, report.imported, report.skipped) == (head.position, head.position, 0)
        assert dst.digest() == head == report.head
        assert _sessions(dst) == expected
        assert dst.verify().ok
        assert [s.session_id for s in dst.list_sessions(parent_id="b").items] == ["c"]
        again = dst.import_events(tmp_path / "all.jsonl")
        assert (again.imported, again.skipped) == (0, head.position)
        assert dst.digest() == head


def test_export_to_a_stream_has_a_header_and_one_row_per_line(ledger_path: str) -> None:
    with _source(ledger_path) as src:
        stream = io.StringIO()
        src.export(stream, until_position=3)
        lines = stream.getvalue().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "session-ledger/events" and header["head"]["position"] == 3
    rows = [json.loads(line) for line in lines[1:-1]]
    assert json.loads(lines[-1]) == {"format": "session-ledger/events", "end": True, "rows": 3}
    assert [r["position"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev"] == "0" * 64 and rows[1]["prev"] == rows[0]["hash"]
    assert json.loads(rows[0]["data"])["metadata"] == {"k": {"n": [1, 2]}}


def test_a_session_export_carries_only_its_rows_and_still_checks(
    ledger_path: str, new_ledger_path: Callable[[], str], tmp_path: Path
) -> None:
    with _source(ledger_path) as src:
        assert src.export(tmp_path / "b.jsonl", sessions=["b"]) == 7
    with Ledger(new_ledger_path()) as dst:
        dst.import_events(tmp_path / "b.jsonl")
        assert dst.get_session("b").message_count == 5
        assert dst.verify().ok  # re-linked into this ledger's own chain


def test_an_export_cut_by_time_stops_there(ledger_path: str, tmp_path: Path) -> None:
    clock = Clock(step_ms=60_000)  # position p is recorded at minute p - 1
    start = clock.now
    with _source(ledger_path, clock) as src:
        assert src.export(tmp_path / "cut.jsonl", until=start + timedelta(minutes=4, seconds=30)) == 5
        with pytest.raises(InvalidInput):
            src.export(tmp_path / "x.jsonl", until_position=1, until=start)


def test_a_tampered_export_line_is_refused_and_nothing_is_written(
    ledger_path: str, new_ledger_path: Callable[[], str], tmp_path: Path
) -> None:
    with _source(ledger_path) as src:
        src.export(tmp_path / "all.jsonl")
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    row = json.loads(lines[4])
    row["data"] = row["data"].replace("a", "A", 1)
    lines[4] = json.dumps(row)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    with Ledger(new_ledger_path()) as dst:
        with pytest.raises(IntegrityError, match="line 5"):
            dst.import_events(tmp_path / "bad.jsonl")
        assert dst.last_position == 0
    original = (tmp_path / "all.jsonl").read_text().splitlines()
    for name, damaged in (("gap", original[:4] + original[5:]), ("short", original[:-2] + original[-1:]),
                          ("cut", original[:-1])):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(damaged) + "\n")
    for name in ("gap", "short", "cut"):  # a missing line, a missing last row, a truncated file
        with Ledger(new_ledger_path()) as dst:
            with pytest.raises(IntegrityError):
                dst.import_events(tmp_path / f"{name}.jsonl")
            assert dst.last_position == 0


def test_import_refuses_what_is_not_an_export(new_ledger_path: Callable[[], str], tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"hello": 1}\n')
    with Ledger(new_ledger_path()) as dst:
        with pytest.raises(InvalidInput, match="not a session-ledger export"):
            dst.import_events(tmp_path / "x.jsonl")
        with pytest.raises(InvalidInput, match="cannot read"):
            dst.import_events(tmp_path / "missing.jsonl")


def test_import_refuses_events_that_do_not_continue_their_session_or_go_back_in_time(
    ledger_path: str, new_ledger_path: Callable[[], str], tmp_path: Path
) -> None:
    with _source(ledger_path) as src:
        src.export(tmp_path / "all.jsonl")
    with Ledger(new_ledger_path()) as dst:  # its events are newer than the export's
        dst.create_session("z")
        with pytest.raises(IntegrityError, match="before this ledger's latest event"):
            dst.import_events(tmp_path / "all.jsonl")
        assert dst.last_position == 1
    with Ledger(new_ledger_path(), clock=Clock()) as dst:
        dst.create_session("a")  # same id, a different history
        with pytest.raises(IntegrityError, match="version"):
            dst.import_events(tmp_path / "all.jsonl")


def test_import_into_a_ledger_with_older_events_relinks_the_chain(
    ledger_path: str, new_ledger_path: Callable[[], str], tmp_path: Path
) -> None:
    old = Clock()
    old.now -= timedelta(days=1)
    dst_path = new_ledger_path()
    with Ledger(dst_path, clock=old) as dst:
        dst.create_session("older")
    with _source(ledger_path) as src:
        src.purge_session("c", reason="r")
        src.export(tmp_path / "all.jsonl")
        expected = {sid: src.get_session(sid).version for sid in ("a", "b", "c")}
    with Ledger(dst_path) as dst:
        dst.import_events(tmp_path / "all.jsonl")
        assert dst.verify().ok
        assert {sid: dst.get_session(sid).version for sid in ("a", "b", "c")} == expected
        assert dst.get_session("c").status == "purged"


def test_the_sessions_dir_layout(ledger_path: str, tmp_path: Path) -> None:
    with _source(ledger_path) as src:
        assert src.export(tmp_path / "dir", format="sessions-dir") == 3
        folder = tmp_path / "dir" / "a"
        assert sorted(p.name for p in folder.iterdir()) == ["conversation.jsonl", "data.json", "invocations.json", "metadata.json"]
        meta = json.loads((folder / "metadata.json").read_text())
        assert (meta["session_id"], meta["metadata"], meta["tags"]) == ("a", {"k": {"n": [1, 2]}}, ["x"])
        conversation = [json.loads(line) for line in (folder / "conversation.jsonl").read_text().splitlines()]
        assert [m["content"] for m in conversation] == [m.content for m in src.messages("a")]
        assert json.loads((tmp_path / "dir" / "b" / "data.json").read_text()) == {"d": {"deep": True}}
        fork = [json.loads(line)["content"] for line in (tmp_path / "dir" / "c" / "conversation.jsonl").read_text().splitlines()]
        assert fork == [f"b{i}" for i in range(5)]
        src.export(tmp_path / "early", format="sessions-dir", until_position=4)
        assert sorted(p.name for p in (tmp_path / "early").iterdir()) == ["a", "b"]
        with pytest.raises(InvalidInput):
            src.export(tmp_path / "x", format="xml")


def test_a_sessions_dir_export_never_follows_a_planted_symlink(ledger_path: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "a").symlink_to(tmp_path)  # a folder the export would write into
    (planted / "metadata.json").symlink_to(victim)
    linked = tmp_path / "linked"
    linked.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with _source(ledger_path) as src:
        for out in (planted, linked):
            with pytest.raises(InvalidInput) as caught:
                src.export(out, format="sessions-dir")
            assert caught.value.field == "out"
        assert victim.read_text() == "precious\n" and not (tmp_path / "elsewhere").exists()
        empty = tmp_path / "empty"
        empty.mkdir()
        assert src.export(empty, format="sessions-dir") == 3  # an empty directory is written into
        assert sorted(p.name for p in empty.iterdir()) == ["a", "b", "c"]
        assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no scratch directory left


def test_backup_of_a_live_ledger_verifies(ledger_path: str, tmp_path: Path) -> None:
    with _source(ledger_path) as src, Ledger(ledger_path) as other:
        other.add_message("b", "user", "from another connection")
        report = src.backup(tmp_path / "copy.db")
        assert report.ok and report.head == src.digest()
        with pytest.raises(InvalidInput, match="already exists"):
            src.backup(tmp_path / "copy.db")
    with Ledger(tmp_path / "copy.db") as copy:
        assert copy.messages("b")[-1].content == "from another connection"


def test_the_sessions_dir_leaves_out_retracted_messages_and_stubs_purged_sessions(
    ledger_path: str, tmp_path: Path
) -> None:
    with _source(ledger_path) as src:
        src.add_message("b", "user", "SECRET retract me")
        src.retract_message("b")
        cut = src.last_position
        src.purge_session("a", reason="r")
        src.export(tmp_path / "dir", format="sessions-dir", until_position=cut)
    conversation = (tmp_path / "dir" / "b" / "conversation.jsonl").read_text()
    assert "SECRET" not in conversation and len(conversation.splitlines()) == 5
    assert json.loads((tmp_path / "dir" / "a" / "metadata.json").read_text()) == {"session_id": "a", "status": "purged"}
    assert sorted(p.name for p in (tmp_path / "dir" / "a").iterdir()) == ["metadata.json"]


# -- import holds events to the commands' rules (issue 13, item 11) ---------------------------------------------


def _crafted_export(path: Path, events: list[tuple[str, str, dict[str, object]]]) -> Path:
    """A well-chained export of the given (session_id, type, payload) events, as a hostile tool could write."""
    from ledger.chain import GENESIS, link, stored_digest
    from ledger.events import EVENT_TYPES
    from ledger.exchange import ExportRow, closing_line, header_line, row_line

    versions: dict[str, int] = {}
    prev, lines = GENESIS, []
    for position, (sid, kind, payload) in enumerate(events, 1):
        versions[sid] = versions.get(sid, 0) + 1
        data = json.dumps(payload)
        at = f"2026-01-01T12:00:{position:02d}.000000Z"
        schema = EVENT_TYPES[kind].schema
        row_hash = link(prev, position, f"e{position}", sid, versions[sid], kind, schema, at, stored_digest(data.encode()))
        lines.append(row_line(ExportRow(position=position, event_id=f"e{position}", session_id=sid,
                                         version=versions[sid], type=kind, schema=schema, recorded_at=at, data=data,
                                         hash=row_hash.hex(), prev=prev.hex())))
        prev = row_hash
    path.write_text("\n".join([header_line(len(events), prev.hex(), None), *lines, closing_line(len(events))]) + "\n")
    return path


_CREATED = ("s", "created", {})
_HOSTILE: dict[str, list[tuple[str, str, dict[str, object]]]] = {
    "a message with no created": [("s", "message_added", {"role": "user", "content": "hi"})],
    "an integer of 2**97 in metadata": [("s", "created", {"metadata": {"n": 2**97}})],
    "a fork with an empty state": [("s", "forked", {"parent_id": "p", "parent_version": 1, "state": {}})],
    "1,000 tags with control characters": [("s", "created", {"tags": [f"t\x07{i}" for i in range(1000)]})],
    "a 100 KB metadata value": [("s", "created", {"metadata": {"k": "x" * 100_000}})],
    "a negative cost": [_CREATED, ("s", "invocation_linked", {"invocation_id": "i", "tool_name": "t", "cost": -5.0})],
    "negative tokens": [_CREATED, ("s", "message_added", {"role": "user", "content": "hi", "tokens_in": -3})],
    "a message after completion": [_CREATED, ("s", "completed", {}), ("s", "message_added",
                                                                        {"role": "user", "content": "late"})],
    "a purge that leaves the text": [_CREATED, ("s", "message_added", {"role": "user", "content": "secret"}),
                                     ("s", "purged", {"reason": "gdpr", "redacted": 2})],
}


@pytest.mark.parametrize("case", sorted(_HOSTILE))
def test_import_refuses_an_event_the_commands_would_not_have_written_and_names_its_line(
    ledger_path: str, tmp_path: Path, case: str
) -> None:
    events = _HOSTILE[case]
    export = _crafted_export(tmp_path / "hostile.jsonl", events)
    with Ledger(ledger_path) as led:
        with pytest.raises(IntegrityError, match=f"line {len(events) + 1}:"):  # the last event, after the header
            led.import_events(export)
        assert led.last_position == 0 and led.verify().ok  # nothing was written


def test_a_crafted_export_of_admissible_events_imports(ledger_path: str, tmp_path: Path) -> None:
    export = _crafted_export(tmp_path / "fine.jsonl", [
        ("s", "created", {"tags": ["a"], "metadata": {"k": 1}}),
        ("s", "message_added", {"role": "user", "content": "hi", "tokens_in": 3}),
        ("s", "completed", {}),
        ("s", "metadata_set", {"values": {"after": True}}),  # metadata may change after completion
    ])
    with Ledger(ledger_path) as led:
        assert led.import_events(export).imported == 4
        assert led.get_session("s").metadata == {"k": 1, "after": True}
