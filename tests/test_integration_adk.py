"""The Google ADK session service (ledger.integrations.adk) against the real ``google-adk`` package.

The behaviours of ADK's own session service suite (``tests/unittests/sessions/test_session_service.py`` in
google/adk-python, parametrized over its backends), written for this project and run on a SQLite file and on
PostgreSQL: sessions, state scopes, events round-tripping, ``GetSessionConfig``, listing, deleting, stale
writers, re-delivered events. Then what only the ledger adds: each event is a message the ledger's own reads
understand, deletes are purges, and ``list_sessions`` of one user is an indexed listing whatever the ledger's
size. A real ``Runner`` with a scripted model is in ``test_integration_adk_runner.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

pytest.importorskip("google.adk")

from google.adk.errors import StaleSessionError  # noqa: E402
from google.adk.errors.already_exists_error import AlreadyExistsError  # noqa: E402
from google.adk.errors.session_not_found_error import SessionNotFoundError  # noqa: E402
from google.adk.events.event import Event  # noqa: E402
from google.adk.events.event_actions import EventActions  # noqa: E402
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig  # noqa: E402
from google.adk.tools.tool_confirmation import ToolConfirmation  # noqa: E402
from google.genai import types  # noqa: E402

from ledger import Ledger, LimitExceeded, Limits, SessionClosed  # noqa: E402
from ledger.integrations.adk import INTEGRATION, LedgerSessionService, ledger_id_for  # noqa: E402
from tests.conftest import Clock  # noqa: E402

T = TypeVar("T")
APP, USER = "my_app", "test_user"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def led(ledger_path: str) -> Iterator[Ledger]:
    with Ledger(ledger_path) as ledger:
        yield ledger


@pytest.fixture
def service(led: Ledger) -> LedgerSessionService:
    return LedgerSessionService(led)


def test_it_is_an_adk_session_service() -> None:
    assert issubclass(LedgerSessionService, BaseSessionService)


# -- sessions -----------------------------------------------------------------------------------------


def test_a_missing_session_is_none(service: LedgerSessionService) -> None:
    assert run(service.get_session(app_name=APP, user_id=USER, session_id="123")) is None


def test_create_get_and_delete(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, state={"key": "value"})
        assert (session.app_name, session.user_id, session.state, session.events) == (APP, USER, {"key": "value"}, [])
        assert session.id and session.last_update_time <= time.time()
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got == session
        ledger_id = service.ledger_session_id(APP, USER, session.id)
        assert ledger_id == ledger_id_for(APP, USER, session.id)
        assert led.get_session(ledger_id).metadata == {
            "integration": INTEGRATION, "adk.app": APP, "adk.user_id": USER, "adk.session_id": session.id}
        assert led.get_session(ledger_id).user_id == USER and led.get_data(ledger_id) == {"key": "value"}

        await service.delete_session(app_name=APP, user_id=USER, session_id=session.id)
        assert await service.get_session(app_name=APP, user_id=USER, session_id=session.id) is None
        assert led.get_session(ledger_id).status == "purged"  # the log keeps a tombstone
        assert [e.type for e in led.history(ledger_id)][-1] == "purged"
        await service.delete_session(app_name=APP, user_id=USER, session_id=session.id)  # nothing to delete
        await service.delete_session(app_name="other", user_id=USER, session_id="never")

    run(body())


def test_last_update_time_is_the_ledger_clock_until_an_event(ledger_path: str) -> None:
    clock = Clock()
    start = clock.now.timestamp()

    async def body(service: LedgerSessionService) -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        assert start <= session.last_update_time < start + 1  # a reading of the ledger's clock
        await service.append_event(session, Event(author="user", timestamp=start + 10))
        assert session.last_update_time == start + 10
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and got.last_update_time == start + 10

    with Ledger(ledger_path, clock=clock) as led:
        run(body(LedgerSessionService(led)))


def test_an_existing_id_is_refused_and_ids_are_stripped(service: LedgerSessionService) -> None:
    async def body() -> None:
        await service.create_session(app_name=APP, user_id=USER, session_id="existing", state={"keep": 1})
        for again in ("existing", "  existing  ", "existing\n"):
            with pytest.raises(AlreadyExistsError):
                await service.create_session(app_name=APP, user_id=USER, session_id=again, state={"keep": 2})
        got = await service.get_session(app_name=APP, user_id=USER, session_id=" existing\t")
        assert got is not None and got.id == "existing" and got.state == {"keep": 1}
        blank = await service.create_session(app_name=APP, user_id=USER, session_id="   ")
        assert blank.id.strip() == blank.id and blank.id
        await service.delete_session(app_name=APP, user_id=USER, session_id="existing\n")
        assert await service.get_session(app_name=APP, user_id=USER, session_id="existing") is None

    run(body())


def test_the_same_session_id_belongs_to_each_user_and_app_apart(service: LedgerSessionService) -> None:
    async def body() -> None:
        first = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
        await service.append_event(first, Event(invocation_id="inv1", author="user"))
        await service.create_session(app_name=APP, user_id="u2", session_id="s1")
        await service.create_session(app_name="other", user_id="u1", session_id="s1")
        got = await service.get_session(app_name=APP, user_id="u2", session_id="s1")
        assert got is not None and got.user_id == "u2" and got.events == []
        again = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert again is not None and len(again.events) == 1

    run(body())


def test_a_deleted_session_can_be_created_again(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        for number in range(1, 6):
            session = await service.create_session(app_name=APP, user_id=USER, session_id="s", state={"n": number})
            assert service.ledger_session_id(APP, USER, "s") == ledger_id_for(APP, USER, "s", number)
            got = await service.get_session(app_name=APP, user_id=USER, session_id="s")
            assert got is not None and got.state == {"n": number}
            await service.append_event(session, Event(author="user"))
            if number < 5:
                await service.delete_session(app_name=APP, user_id=USER, session_id="s")
        listed = (await service.list_sessions(app_name=APP, user_id=USER)).sessions
        assert [(s.id, s.state) for s in listed] == [("s", {"n": 5})]
        assert [led.get_session(ledger_id_for(APP, USER, "s", n)).status for n in range(1, 6)] == [
            "purged", "purged", "purged", "purged", "active"]

    run(body())


def test_appending_to_a_deleted_session_raises_session_not_found(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        await service.delete_session(app_name=APP, user_id=USER, session_id=session.id)
        with pytest.raises(SessionNotFoundError):
            await service.append_event(session, Event(invocation_id="inv1", author="user"))
        # A session object from before a delete and a re-creation is stale, not the new session's.
        await service.create_session(app_name=APP, user_id=USER, session_id=session.id)
        with pytest.raises(StaleSessionError):
            await service.append_event(session, Event(invocation_id="inv1", author="user"))
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and got.events == []

    run(body())


# -- listing ------------------------------------------------------------------------------------------


def test_list_sessions_of_a_user_and_of_all_users(service: LedgerSessionService) -> None:
    async def body() -> None:
        for user, sid in (("user1", "session1a"), ("user1", "session1b"), ("user2", "session2a")):
            await service.create_session(app_name=APP, user_id=user, session_id=sid, state={"key": "v" + sid})
        await service.create_session(app_name="other_app", user_id="user1", session_id="elsewhere")
        await service.create_session(app_name=APP, user_id="user3", session_id="gone", state={"app:shared": 1})
        await service.delete_session(app_name=APP, user_id="user3", session_id="gone")

        one = (await service.list_sessions(app_name=APP, user_id="user1")).sessions
        assert {s.id: s.state for s in one} == {"session1a": {"key": "vsession1a", "app:shared": 1},
                                                 "session1b": {"key": "vsession1b", "app:shared": 1}}
        everyone = (await service.list_sessions(app_name=APP)).sessions
        assert {(s.user_id, s.id) for s in everyone} == {("user1", "session1a"), ("user1", "session1b"),
                                                         ("user2", "session2a")}
        assert all(s.events == [] and s.app_name == APP for s in everyone)
        assert (await service.list_sessions(app_name="nobody")).sessions == []
        assert (await service.list_sessions(app_name=APP, user_id="nobody")).sessions == []

    run(body())


def test_list_sessions_is_ordered_by_last_update_time(service: LedgerSessionService) -> None:
    async def body() -> None:
        for sid in ("a", "b", "c"):
            await service.create_session(app_name=APP, user_id=USER, session_id=sid)
        session_a = await service.get_session(app_name=APP, user_id=USER, session_id="a")
        assert session_a is not None
        await asyncio.sleep(0.01)
        await service.append_event(session_a, Event(invocation_id="invocation", author="user"))
        listed = (await service.list_sessions(app_name=APP, user_id=USER)).sessions
        assert [s.id for s in listed] == ["b", "c", "a"]
        assert listed[-1].last_update_time == session_a.last_update_time

    run(body())


def test_list_sessions_pages_through_more_than_one_ledger_page(service: LedgerSessionService, led: Ledger) -> None:
    with led.batch():  # 1,050 ADK-shaped sessions of one user, written straight to the ledger for speed
        for n in range(1050):
            led.create_session(ledger_id_for(APP, USER, f"s{n:04}"), user_id=USER, metadata={
                "integration": INTEGRATION, "adk.app": APP, "adk.user_id": USER, "adk.session_id": f"s{n:04}"})
    listed = run(service.list_sessions(app_name=APP, user_id=USER)).sessions
    assert sorted(s.id for s in listed) == [f"s{n:04}" for n in range(1050)]


# -- state --------------------------------------------------------------------------------------------


def test_app_state_is_shared_by_every_user_of_the_app(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        s1 = await service.create_session(app_name=APP, user_id="u1", session_id="s1", state={"app:k1": "v1"})
        await service.append_event(s1, Event(invocation_id="inv1", author="user",
                                              actions=EventActions(state_delta={"app:k2": "v2"})))
        s2 = await service.create_session(app_name=APP, user_id="u2", session_id="s2")
        assert s2.state == {"app:k1": "v1", "app:k2": "v2"}
        got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert got is not None and got.state == {"app:k1": "v1", "app:k2": "v2"}
        other = await service.create_session(app_name="other_app", user_id="u1")
        assert other.state == {}

    run(body())
    assert led.get_data("adk-app:my_app") == {"k1": "v1", "k2": "v2"}  # one ledger session per app


def test_user_state_is_shared_only_by_that_users_sessions(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        s1 = await service.create_session(app_name=APP, user_id="u1", session_id="s1", state={"user:k1": "v1"})
        await service.append_event(s1, Event(invocation_id="inv1", author="user",
                                              actions=EventActions(state_delta={"user:k2": "v2"})))
        assert (await service.create_session(app_name=APP, user_id="u1", session_id="s1b")).state == {
            "user:k1": "v1", "user:k2": "v2"}
        assert (await service.create_session(app_name=APP, user_id="u2", session_id="s2")).state == {}
        assert await service.get_user_state(app_name=APP, user_id="u1") == {"k1": "v1", "k2": "v2"}
        assert await service.get_user_state(app_name=APP, user_id="u2") == {}
        assert await service.get_user_state(app_name="other_app", user_id="u1") == {}

    run(body())
    assert led.get_data("adk-user:my_app:u1") == {"k1": "v1", "k2": "v2"}


def test_session_state_is_not_shared(service: LedgerSessionService) -> None:
    async def body() -> None:
        s1 = await service.create_session(app_name=APP, user_id="u1", session_id="s1", state={"sk1": "v1"})
        await service.append_event(s1, Event(invocation_id="inv1", author="user",
                                              actions=EventActions(state_delta={"sk2": "v2"})))
        got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert got is not None and got.state == {"sk1": "v1", "sk2": "v2"}
        assert (await service.create_session(app_name=APP, user_id="u1", session_id="s1b")).state == {}

    run(body())


def test_state_values_replace_store_null_and_keep_their_types(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id="u1", session_id="s1", state={
            "profile": {"name": "ada", "role": "admin"}, "flag": True, "off": False, "user:pref": "dark",
            "app:cfg": {"a": 1, "b": 2}})
        delta = {"profile": {"name": "bob"}, "flag": None, "new": 1.5, "user:pref": None, "app:cfg": {"a": 3}}
        await service.append_event(session, Event(invocation_id="inv1", author="user",
                                                   actions=EventActions(state_delta=delta)))
        expected = {"profile": {"name": "bob"}, "flag": None, "off": False, "new": 1.5, "user:pref": None,
                    "app:cfg": {"a": 3}}
        assert session.state == expected
        got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert got is not None and got.state == expected
        assert got.state["off"] is False and "flag" in got.state

    run(body())


def test_temp_state_reaches_the_object_but_is_never_stored(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id="u1", session_id="s1",
                                               state={"temp:early": 1, "kept": 0})
        assert session.state == {"kept": 0}
        event = Event(invocation_id="inv1", author="agent1",
                      actions=EventActions(state_delta={"temp:k1": "v1", "sk": "v2"}))
        await service.append_event(session, event)
        assert session.state["temp:k1"] == "v1" and session.state["sk"] == "v2"
        assert event.actions.state_delta == {"sk": "v2"}
        got = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert got is not None and got.state == {"kept": 0, "sk": "v2"}
        assert got.events[0].actions.state_delta == {"sk": "v2"}

    run(body())
    ledger_id = ledger_id_for(APP, "u1", "s1")
    assert "temp:k1" not in str([e.payload for e in led.history(ledger_id)])


def test_a_state_value_json_cannot_hold_is_stored_as_text(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, state={"made": object()})
        await service.append_event(session, Event(invocation_id="inv", author="user",
                                                  actions=EventActions(state_delta={"callback": lambda: 1, "ok": 2})))
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and len(got.events) == 1 and got.state["ok"] == 2
        assert isinstance(got.state["callback"], str) and isinstance(got.state["made"], str)

    run(body())


# -- events -------------------------------------------------------------------------------------------


def _complete_event() -> Event:
    return Event(
        invocation_id="invocation",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="test_text")]),
        turn_complete=True,
        partial=False,
        actions=EventActions(artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True),
        long_running_tool_ids={"tool1", "tool2"},
        error_code="error_code",
        error_message="error_message",
        interrupted=True,
        grounding_metadata=types.GroundingMetadata(web_search_queries=["query1"]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=1, candidates_token_count=1, total_token_count=2),
        citation_metadata=types.CitationMetadata(),
        custom_metadata={"custom_key": "custom_value"},
        timestamp=1700000000.123,
        input_transcription=types.Transcription(text="input transcription", finished=True),
        output_transcription=types.Transcription(text="output transcription", finished=True),
    )


def _rich_event() -> Event:
    """Every kind of part a model or a tool produces, in one event."""
    parts = [
        types.Part(text="Let me think.", thought=True, thought_signature=b"\x00sig"),
        types.Part(text="Here is the chart 📈"),
        types.Part.from_bytes(data=b"\x89PNG\r\n\x1a\n-image-", mime_type="image/png"),
        types.Part.from_bytes(data=b"%PDF-1.7", mime_type="application/pdf"),
        types.Part(file_data=types.FileData(file_uri="gs://bucket/report.pdf", mime_type="application/pdf")),
        types.Part(function_call=types.FunctionCall(id="call-1", name="get_weather",
                                                    args={"city": "Zürich", "days": [1, 2], "deep": {"x": None}})),
        types.Part(function_call=types.FunctionCall(name="no_args")),
        types.Part(executable_code=types.ExecutableCode(code="print(1 + 1)", language=types.Language.PYTHON)),
        types.Part(code_execution_result=types.CodeExecutionResult(outcome=types.Outcome.OUTCOME_OK, output="2\n")),
        types.Part(video_metadata=types.VideoMetadata(start_offset="1s", end_offset="2s")),
    ]
    return Event(
        invocation_id="inv-rich", author="assistant_agent", branch="root.assistant_agent",
        content=types.Content(role="model", parts=parts), model_version="gemini-2.5-flash-001",
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=1200, cached_content_token_count=1000, candidates_token_count=80,
            thoughts_token_count=20, total_token_count=1300),
        actions=EventActions(state_delta={"k": [1, {"a": None}]}, artifact_delta={"chart.png": 3},
                             requested_tool_confirmations={"call-1": ToolConfirmation(
                                 hint="dynamic hint", confirmed=False, payload={"collection_name": "photos"})}),
        grounding_metadata=types.GroundingMetadata(
            search_entry_point=types.SearchEntryPoint(sdk_blob=b"test_sdk_blob")),
        custom_metadata={"nested": {"list": [1, 2.5, "three", None, True]}},
        timestamp=1764500000.123456,
    )


def _response_event() -> Event:
    return Event(
        invocation_id="inv-rich", author="assistant_agent",
        content=types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            id="call-1", name="get_weather", response={"result": "sunny, 21 °C", "days": [{"t": 21.5}]}))]),
    )


def test_events_come_back_equal_to_those_appended(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        events = [_complete_event(), _rich_event(), _response_event(), Event(author="user"),
                  Event(author="user", content=types.Content(role="user", parts=[]))]
        for event in events:
            await service.append_event(session, event)
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and got.events == events
        assert got == session
        bytes_part = got.events[1].content.parts[2]
        assert bytes_part.inline_data.data == b"\x89PNG\r\n\x1a\n-image-"
        assert got.events[1].grounding_metadata.search_entry_point.sdk_blob == b"test_sdk_blob"
        assert got.events[0].long_running_tool_ids == {"tool1", "tool2"}

    run(body())


def test_each_event_is_a_message_the_ledger_understands(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> str:
        session = await service.create_session(app_name=APP, user_id=USER)
        for event in (Event(author="user", content=types.Content(role="user", parts=[types.Part(text="Weather?")])),
                      _rich_event(), _response_event()):
            await service.append_event(session, event)
        return session.id

    ledger_id = ledger_id_for(APP, USER, run(body()))
    user, model, tool = led.messages(ledger_id)
    assert (user.role, user.content) == ("user", "Weather?")
    assert model.role == "assistant" and model.model == "gemini-2.5-flash-001"
    assert model.tokens == {"input": 1200, "output": 100, "cache_read": 1000, "reasoning": 20}
    assert [b["type"] for b in model.blocks] == ["reasoning", "text", "image", "file", "file", "tool_call",
                                                 "tool_call", "text", "text", "text"]
    assert model.blocks[5]["arguments"] == {"city": "Zürich", "days": [1, 2], "deep": {"x": None}}
    assert model.blocks[2]["media_type"] == "image/png" and model.blocks[4]["url"] == "gs://bucket/report.pdf"
    assert model.content == "Let me think.\nHere is the chart 📈\nprint(1 + 1)\n2\n"
    assert (tool.role, tool.tool_name, tool.invocation_id) == ("tool", "get_weather", "call-1")
    assert [h.role for h in led.search_messages("sunny")] == ["tool"]
    figures = led.statistics(ledger_id)
    assert (figures.tokens_in, figures.tokens_out, figures.tokens_cache_read, figures.tokens_reasoning) == (
        1200, 100, 1000, 20)
    assert led.verify().ok


def test_a_message_other_code_adds_reads_back_as_a_plain_event(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, session_id="s")
        led.add_message(ledger_id_for(APP, USER, "s"), "assistant", "written by hand")
        got = await service.get_session(app_name=APP, user_id=USER, session_id="s")
        assert got is not None and [e.content.parts[0].text for e in got.events] == ["written by hand"]
        assert got.events[0].author == "assistant" and got.events[0].content.role == "model"
        await service.append_event(got, Event(author="user"))  # the object read after it is current
        with pytest.raises(StaleSessionError):  # the one from before it is not
            await service.append_event(session, Event(author="user"))

    run(body())


def test_partial_events_are_not_stored(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        await service.append_event(session, Event(author="user", partial=True))
        assert session.events == []
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and got.events == []

    run(body())


def test_get_session_config_limits_the_events(service: LedgerSessionService) -> None:
    async def body() -> None:
        base = int(time.time())
        session = await service.create_session(app_name=APP, user_id=USER)
        for i in range(1, 251):
            await service.append_event(session, Event(author="user", timestamp=base + i))

        async def stamps(**config: Any) -> list[float]:
            got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id,
                                            config=GetSessionConfig(**config) if config else None)
            assert got is not None and got.state == {}
            return [e.timestamp - base for e in got.events]

        assert await stamps() == list(range(1, 251))
        assert await stamps(num_recent_events=0) == []
        assert await stamps(num_recent_events=3) == [248, 249, 250]
        assert await stamps(num_recent_events=1000) == list(range(1, 251))
        assert await stamps(after_timestamp=base + 4) == list(range(4, 251))  # inclusive, across read chunks
        assert await stamps(after_timestamp=base + 249.5) == [250]
        assert await stamps(after_timestamp=base + 10_000) == []
        assert await stamps(after_timestamp=base + 248, num_recent_events=5) == [248, 249, 250]
        assert await stamps(after_timestamp=base + 100, num_recent_events=5) == [246, 247, 248, 249, 250]
        assert await stamps(after_timestamp=0.0) == list(range(1, 251))

    run(body())


@pytest.mark.parametrize("ids", [["a", "m", "z"], ["z", "m", "a"], ["m", "z", "a"]])
def test_events_sharing_a_timestamp_come_back_ordered_by_id(service: LedgerSessionService, ids: list[str]) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        await service.append_event(session, Event(author="user", id="first", timestamp=50.0))
        for event_id in ids:
            await service.append_event(session, Event(author="user", id=event_id, timestamp=100.0))
        await service.append_event(session, Event(author="user", id="0-last", timestamp=200.0))

        async def read(**config: Any) -> list[str]:
            got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id,
                                            config=GetSessionConfig(**config) if config else None)
            assert got is not None
            return [e.id for e in got.events]

        assert await read() == ["first", "a", "m", "z", "0-last"]
        assert await read(num_recent_events=3) == ["m", "z", "0-last"]  # the cut falls inside the tie
        assert await read(num_recent_events=2) == ["z", "0-last"]
        assert await read(after_timestamp=100.0, num_recent_events=10) == ["a", "m", "z", "0-last"]

    run(body())


def test_timestamps_come_back_exactly(service: LedgerSessionService) -> None:
    epochs = [1730613600.0, 1730615400.0, 1764500000.123456, 0.5]  # a repeated local hour, micros, early

    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        for epoch in epochs:
            await service.append_event(session, Event(author="user", timestamp=epoch))
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and [e.timestamp for e in got.events] == epochs
        assert got.last_update_time == 0.5  # the latest event's, as ADK's services keep it

    run(body())


# -- writers --------------------------------------------------------------------------------------------


def test_a_stale_session_object_is_refused_and_nothing_is_written(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        now = time.time()
        original = await service.create_session(app_name=APP, user_id=USER)
        await service.append_event(original, Event(invocation_id="inv1", author="user", timestamp=now + 1,
                                                   actions=EventActions(state_delta={"sk1": "v1"})))
        updated = await service.get_session(app_name=APP, user_id=USER, session_id=original.id)
        assert updated is not None
        await service.append_event(updated, Event(invocation_id="inv2", author="user", timestamp=now + 2,
                                                  actions=EventActions(state_delta={"sk2": "v2", "app:a": 1})))
        before = led.last_position
        with pytest.raises(StaleSessionError, match="modified in storage"):
            await service.append_event(original, Event(invocation_id="inv3", author="user", timestamp=now + 3,
                                                       actions=EventActions(state_delta={"sk3": "v3", "app:b": 2})))
        assert led.last_position == before
        final = await service.get_session(app_name=APP, user_id=USER, session_id=original.id)
        assert final is not None and [e.invocation_id for e in final.events] == ["inv1", "inv2"]
        assert final.state == {"sk1": "v1", "sk2": "v2", "app:a": 1}
        # A copy taken before a write is stale too (the marker travels with model_copy).
        copy = final.model_copy(deep=True)
        await service.append_event(final, Event(invocation_id="inv4", author="user"))
        with pytest.raises(StaleSessionError):
            await service.append_event(copy, Event(invocation_id="inv5", author="user"))

    run(body())


def test_of_two_concurrent_writers_one_wins(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        for i in range(6):
            latest = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
            assert latest is not None
            copies = [latest.model_copy(deep=True) for _ in range(3)]
            results = await asyncio.gather(*(
                service.append_event(copy, Event(invocation_id=f"inv{i}-{n}", author="user",
                                                 actions=EventActions(state_delta={f"sk{i}": n})))
                for n, copy in enumerate(copies)), return_exceptions=True)
            assert sum(isinstance(r, StaleSessionError) for r in results) == 2
            assert sum(isinstance(r, Event) for r in results) == 1
        final = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert final is not None and len(final.events) == 6 and sorted(final.state) == [f"sk{i}" for i in range(6)]

    run(body())


def test_annotations_by_other_code_make_no_session_stale(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, session_id="s")
        ledger_id = ledger_id_for(APP, USER, "s")
        led.set_metadata(ledger_id, "is_starred", True)
        led.add_tags(ledger_id, ["reviewed"])
        led.link_invocation(ledger_id, "tool-1", "search", duration_ms=3.0)
        await service.append_event(session, Event(author="user"))  # still current
        led.set_data(ledger_id, "sk", "changed by other code")  # the state: stale
        with pytest.raises(StaleSessionError):
            await service.append_event(session, Event(author="user"))

    run(body())


def test_an_object_without_the_marker_falls_back_to_the_update_time(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
        first = Event(invocation_id="inv1", author="user", timestamp=session.last_update_time + 10)
        await service.append_event(session, first)
        session._storage_update_marker = None
        session.last_update_time -= 0.0001  # a float round trip: still the latest event, so current
        await service.append_event(session, Event(invocation_id="inv2", author="user",
                                                  timestamp=first.timestamp + 10))
        stale = session.model_copy(deep=True)
        await service.append_event(session, Event(invocation_id="inv3", author="user",
                                                  timestamp=first.timestamp + 20))
        stale._storage_update_marker = None
        with pytest.raises(StaleSessionError):
            await service.append_event(stale, Event(invocation_id="inv4", author="user"))
        got = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
        assert got is not None and [e.invocation_id for e in got.events] == ["inv1", "inv2", "inv3"]

    run(body())


def test_an_event_delivered_twice_is_stored_once(service: LedgerSessionService) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, session_id="dup")
        event = Event(invocation_id="inv_dup", author="user", actions=EventActions(state_delta={"counter": 1}))
        for delivery in (event, event, event.model_copy(deep=True)):
            await service.append_event(session, delivery)
        shared = "shared-event-id"  # different events that share an id are both kept
        await service.append_event(session, Event(id=shared, invocation_id="inv_a", author="user"))
        await service.append_event(session, Event(id=shared, invocation_id="inv_b", author="agent"))
        got = await service.get_session(app_name=APP, user_id=USER, session_id="dup")
        assert got is not None and [e.invocation_id for e in got.events] == ["inv_dup", "inv_a", "inv_b"]
        assert got.state == {"counter": 1} and got == session

    run(body())


def test_an_append_over_the_limits_writes_nothing(ledger_path: str) -> None:
    async def body(service: LedgerSessionService, led: Ledger) -> None:
        session = await service.create_session(app_name=APP, user_id=USER)
        before = led.last_position
        big = Event(author="user", actions=EventActions(state_delta={"small": 1, "app:x": 2, "big": "x" * 500}))
        with pytest.raises(LimitExceeded):
            await service.append_event(session, big)
        assert led.last_position == before
        with pytest.raises(LimitExceeded):
            await service.append_event(session, Event(author="user", content=types.Content(
                role="user", parts=[types.Part(text="y" * 5000)])))
        assert led.last_position == before
        got = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert got is not None and got.events == [] and got.state == {}

    with Ledger(ledger_path, limits=Limits(max_data_value_bytes=100, max_content_bytes=4000)) as led:
        run(body(LedgerSessionService(led), led))


def test_a_closed_ledger_session_is_read_only(service: LedgerSessionService, led: Ledger) -> None:
    async def body() -> None:
        session = await service.create_session(app_name=APP, user_id=USER, session_id="s")
        await service.append_event(session, Event(author="user"))
        led.complete_session(ledger_id_for(APP, USER, "s"))
        got = await service.get_session(app_name=APP, user_id=USER, session_id="s")
        assert got is not None and len(got.events) == 1
        assert [s.id for s in (await service.list_sessions(app_name=APP, user_id=USER)).sessions] == ["s"]
        with pytest.raises(SessionClosed):
            await service.append_event(got, Event(author="user"))

    run(body())


def test_a_service_given_a_path_owns_its_ledger(tmp_path: Any) -> None:
    async def body() -> str:
        async with LedgerSessionService(str(tmp_path / "adk.db")) as service:
            session = await service.create_session(app_name=APP, user_id=USER, state={"k": 1})
            return session.id

    sid = run(body())
    with Ledger(str(tmp_path / "adk.db")) as led:
        assert led.get_data(ledger_id_for(APP, USER, sid)) == {"k": 1}
        assert led.verify().ok


# -- list_sessions at scale: an indexed listing, whatever the ledger's size ------------------------------------


def _background(led: Ledger, sessions: int) -> None:
    """``sessions`` ADK-shaped sessions of other users of the same app (10 a user), written straight to the ledger."""
    with led.batch():
        for n in range(sessions):
            user, sid = f"other{n // 10}", f"s{n}"
            led.create_session(ledger_id_for(APP, user, sid), user_id=user, metadata={
                "integration": INTEGRATION, "adk.app": APP, "adk.user_id": user, "adk.session_id": sid})
            led.set_data(ledger_id_for(APP, user, sid), "n", n)


def _calls(led: Ledger, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Record every ledger read the service makes, by method, with its keywords."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for name in ("list_sessions", "get_session", "get_data", "messages", "history"):
        original: Callable[..., Any] = getattr(led, name)

        def spy(*args: Any, _name: str = name, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            seen.setdefault(_name, []).append(kwargs)
            return _original(*args, **kwargs)

        monkeypatch.setattr(led, name, spy)
    return seen


@pytest.mark.parametrize("others", [100, 3000])
def test_listing_a_users_sessions_costs_the_same_however_many_sessions_the_ledger_holds(
    others: int, service: LedgerSessionService, led: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def mine() -> None:
        for sid in ("a", "b", "c"):
            await service.create_session(app_name=APP, user_id=USER, session_id=sid, state={"user:u": 1})

    run(mine())
    _background(led, others)
    seen = _calls(led, monkeypatch)
    listed = run(service.list_sessions(app_name=APP, user_id=USER)).sessions
    assert [s.id for s in listed] == ["a", "b", "c"] and listed[0].state == {"user:u": 1}
    # One listing page, one state read per listed session, the app's and the user's state: nothing per
    # session of the ledger, and no read of any session's events.
    assert len(seen["list_sessions"]) == 1 and seen["list_sessions"][0]["user_id"] == USER
    assert seen["list_sessions"][0].keys() == {"user_id", "order_by", "descending", "limit", "cursor"}
    assert len(seen["get_session"]) == 3 + 2
    assert "messages" not in seen and "history" not in seen


def test_the_listing_of_a_users_sessions_is_an_index_search(service: LedgerSessionService, led: Ledger,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from projections.queries import SessionFilter, plan_list

    from tests.conftest import is_postgres, raw_sql

    _background(led, 2000)
    seen = _calls(led, monkeypatch)
    run(service.list_sessions(app_name=APP, user_id="other7"))
    postgres = is_postgres(led)
    plan = plan_list(SessionFilter(**seen["list_sessions"][0]), "postgres" if postgres else "sqlite")
    with raw_sql(led) as sql:  # as the database plans it, without statistics (nothing has run ANALYZE)
        rows = sql.execute("EXPLAIN " + ("" if postgres else "QUERY PLAN ") + plan.sql,
                           (*plan.args, plan.limit + 1)).fetchall()
    steps = [row[0] if postgres else row[3] for row in rows]
    if postgres:
        assert any("Index Cond: (user_id = " in step for step in steps), steps
        assert not any("Seq Scan" in step for step in steps), steps
    else:
        assert any(step.startswith("SEARCH s USING INDEX") and "(user_id=?)" in step for step in steps), steps
        assert not any(step.startswith("SCAN") for step in steps), steps  # no table walked whole
    assert not any(table in step for step in steps for table in ("events", "messages")), steps
