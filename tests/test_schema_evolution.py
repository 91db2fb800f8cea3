"""A ledger written with an older event schema is read through upcasters, appended to, and verified."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ledger import Ledger, events

FIXTURE = Path(__file__).parent / "fixtures" / "ledger_v1.db"


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    copy = tmp_path / "v1.db"
    shutil.copy(FIXTURE, copy)
    return copy


def test_the_fixture_really_holds_schema_1_messages_without_model_or_tokens() -> None:
    raw = sqlite3.connect(FIXTURE)
    rows = raw.execute("SELECT schema, data FROM events WHERE type = 'message_added'").fetchall()
    assert {schema for schema, _ in rows} == {1}
    assert all("model" not in data and "tokens" not in data for _, data in rows)
    assert events.MessageAdded.schema == 2


def test_old_events_read_through_the_upcaster(old_file: Path) -> None:
    with Ledger(old_file) as led:
        assert led.verify().ok
        messages = led.messages("planner")
        assert [m.content for m in messages] == ["Plan the release notes", "Draft: three sections", "12 commits"]
        assert all(m.model is None and m.tokens is None for m in messages)
        recorded = [e for e in led.history("planner") if e.type == "message_added"]
        assert {e.schema for e in recorded} == {1}  # stored as written
        assert all(isinstance(e.payload, events.MessageAdded) for e in recorded)
        s = led.get_session("planner")
        assert (s.message_count, s.invocation_count, s.metadata, s.tags) == (
            3, 1, {"agent_role": "planner", "stage": "draft"}, ("v1",)
        )
        assert [h.position for h in led.search_messages("release")] == [2]


def test_appending_to_an_old_ledger_writes_the_current_schema_and_still_verifies(old_file: Path) -> None:
    head = Ledger(old_file).digest()
    with Ledger(old_file) as led:
        assert led.verify(head).ok
        led.add_message("planner", "assistant", "Final notes", model="m", tokens={"input": 3, "output": 4})
        last = list(led.history(after=led.last_position - 1))[0]
        assert last.schema == 2
        assert led.verify(head).ok
        assert led.get_session("planner").tokens_out == 4
        rebuilt = led.rebuild()
        assert rebuilt == 7 and led.statistics("planner").message_count == 4


def test_an_upcast_payload_equals_what_the_current_schema_would_store() -> None:
    old = events.decode_payload("message_added", 1, b'{"role":"user","content":"hi"}')
    assert old == events.MessageAdded(role="user", content="hi")
