"""Event payloads: encoding, decoding, upcasting, and refusing what this code cannot read."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import IntegrityError, UnsupportedFormat
from ledger import events as ev


def test_every_event_type_round_trips_through_its_payload() -> None:
    samples = [
        ev.Created(user_id="u", purpose="p", tags=("a",), metadata={"k": [1, {"x": None}]}),
        ev.MessageAdded(role="tool", content="c", tool_name="t", invocation_id="i", model="m", tokens_in=1, tokens_out=2),
        ev.MetadataSet(values={"k": 1.5}, modified_by="me"),
        ev.MetadataRemoved(key="k"),
        ev.DataSet(key="k", value={"deep": [True]}),
        ev.DataDeleted(key="k"),
        ev.DataCleared(),
        ev.TagsAdded(tags=("a", "b")),
        ev.TagsRemoved(tags=("a",)),
        ev.InvocationLinked(invocation_id="i", tool_name="t", duration_ms=1.25, cost=0.1, status="error", artifact="file:///x"),
        ev.Completed(status="failed", reason="r"),
        ev.Restored(target_version=3, state={"status": "active", "metadata": {"k": [1]}}),
        ev.Forked(parent_id="p", parent_version=7, state={"status": "active", "lineage": [["p", 1, 7]]}),
        ev.Purged(reason="privacy request #12", by="dpo", redacted=5),
        ev.MessageRetracted(message_session="s", message_version=4, role="assistant"),
        ev.ConversationCleared(),
        ev.RecordSet(kind="langgraph.checkpoint", key="/c1", value={"ns": "", "v": [1, 2.5]}, blob=b"\x00\xff", group="g"),
        ev.RecordsRemoved(kind="langgraph.writes", keys=("a", "b")),
    ]
    assert {type(s).type for s in samples} == set(ev.EVENT_TYPES)
    for event in samples:
        assert ev.decode_payload(event.type, event.schema, ev.encode_payload(event)) == event


def test_defaults_are_left_out_of_the_payload() -> None:
    assert ev.encode_payload(ev.MessageAdded(role="user", content="hi")) == b'{"role":"user","content":"hi"}'


def test_an_unknown_event_type_is_an_unsupported_format() -> None:
    with pytest.raises(UnsupportedFormat, match="unknown event type"):
        ev.decode_payload("teleported", 1, b"{}")


def test_a_newer_schema_is_an_unsupported_format() -> None:
    with pytest.raises(UnsupportedFormat, match="schema 9"):
        ev.decode_payload("message_added", 9, b"{}")


def test_a_payload_that_does_not_decode_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        ev.decode_payload("message_added", 1, b'{"role": "robot"}')
    with pytest.raises(IntegrityError):
        ev.decode_payload("message_added", 1, b"not json")


def test_older_schemas_are_upcast_one_version_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    class Renamed(ev.Event, frozen=True, kw_only=True):
        type = "test_renamed"
        schema = 3
        title: str
        size: int = 0

    def v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        return {"name": raw["label"]}

    def v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
        return {"title": raw["name"].upper()}

    monkeypatch.setitem(ev.EVENT_TYPES, "test_renamed", Renamed)
    monkeypatch.setitem(ev.UPCASTERS, ("test_renamed", 1), v1_to_v2)
    monkeypatch.setitem(ev.UPCASTERS, ("test_renamed", 2), v2_to_v3)
    assert ev.decode_payload("test_renamed", 1, b'{"label": "old"}') == Renamed(title="OLD")
    assert ev.decode_payload("test_renamed", 2, b'{"name": "mid"}') == Renamed(title="MID")


def test_a_redaction_marker_decodes_as_redacted_whatever_the_type() -> None:
    marker = ev.redaction_marker(bytes(range(32)), 42)
    redacted = ev.decode_payload("message_added", 1, marker)
    assert redacted == ev.Redacted(digest=bytes(range(32)).hex(), purged_at=42)
    assert ev.read_redaction('{"role": "user", "content": "{\\"$redacted\\""}') is None
