"""A real ADK ``Runner`` on the ledger's session service, offline: a scripted model (a ``BaseLlm``) and a tool.

The same turns run on ADK's own ``InMemorySessionService`` give the same events and state, so the ledger's
service changes nothing of what the agent sees; and the run lands in the ledger as a conversation its own
reads (messages, usage, search, provider formats, verify) understand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import pytest

pytest.importorskip("google.adk")

from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_request import LlmRequest  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import Runner  # noqa: E402
from google.adk.sessions.base_session_service import BaseSessionService  # noqa: E402
from google.adk.sessions.in_memory_session_service import InMemorySessionService  # noqa: E402
from google.genai import types  # noqa: E402

from ledger import Ledger  # noqa: E402
from ledger.integrations.adk import LedgerSessionService  # noqa: E402

APP = "weather_app"


class ScriptedModel(BaseLlm):
    """Calls ``get_weather`` for a user's question, then answers with what the tool returned."""

    model: str = "scripted-gemini"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        parts = last.parts or []
        if parts and parts[0].function_response is not None:
            answer = (parts[0].function_response.response or {})["result"]
            yield LlmResponse(
                content=types.Content(role="model", parts=[types.Part(text=f"It is {answer}.")]),
                model_version="scripted-gemini-001",
                usage_metadata=types.GenerateContentResponseUsageMetadata(
                    prompt_token_count=40, cached_content_token_count=30, candidates_token_count=6,
                    total_token_count=46),
            )
            return
        city = (parts[0].text or "").rstrip("?").split()[-1] if parts else "Paris"
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(
                id=f"call-{city}", name="get_weather", args={"city": city}))]),
            model_version="scripted-gemini-001",
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=20, candidates_token_count=4, thoughts_token_count=2, total_token_count=26),
        )


def get_weather(city: str) -> dict[str, str]:
    """The weather in a city."""
    return {"result": f"sunny in {city}"}


def agent() -> LlmAgent:
    return LlmAgent(name="weather", model=ScriptedModel(), instruction="Be brief.", tools=[get_weather],
                    output_key="last_answer")


async def converse(service: BaseSessionService, questions: list[str]) -> tuple[list[Any], dict[str, Any], str]:
    """Two users' turns through a Runner: (the events of alice's session, its state, its id)."""
    runner = Runner(agent=agent(), app_name=APP, session_service=service)
    session = await service.create_session(app_name=APP, user_id="alice", state={"user:lang": "fr", "n": 0})
    other = await service.create_session(app_name=APP, user_id="bob")
    for question in questions:
        message = types.Content(role="user", parts=[types.Part(text=question)])
        async for _ in runner.run_async(user_id="alice", session_id=session.id, new_message=message,
                                        state_delta={"n": len(question)}):
            pass
    async for _ in runner.run_async(user_id="bob", session_id=other.id, new_message=types.Content(
            role="user", parts=[types.Part(text="Weather in Oslo?")])):
        pass
    got = await service.get_session(app_name=APP, user_id="alice", session_id=session.id)
    assert got is not None
    return got.events, got.state, session.id


def _shape(event: Any) -> tuple[Any, ...]:
    """What the agent sees of an event: ids and times are fresh in every run."""
    content = event.content.model_dump(exclude_none=True) if event.content else None
    for part in (content or {}).get("parts", []):
        for key in ("function_call", "function_response"):
            part.get(key, {}).pop("id", None)
    return event.author, content, event.actions.state_delta, event.model_version, event.usage_metadata


@pytest.fixture
def led(ledger_path: str) -> Iterator[Ledger]:
    with Ledger(ledger_path) as ledger:
        yield ledger


def test_a_runner_on_the_ledger_sees_what_it_sees_on_adks_in_memory_service(led: Ledger) -> None:
    questions = ["Weather in Paris?", "And in Zürich?"]
    events, state, _ = asyncio.run(converse(LedgerSessionService(led), questions))
    reference, reference_state, _ = asyncio.run(converse(InMemorySessionService(), questions))
    assert [_shape(e) for e in events] == [_shape(e) for e in reference]
    assert state == reference_state == {"user:lang": "fr", "n": len("And in Zürich?"),
                                        "last_answer": "It is sunny in Zürich."}
    assert len(events) == 8  # per turn: the question, the call, the tool's answer, the model's answer


def test_the_run_lands_in_the_ledger(led: Ledger) -> None:
    service = LedgerSessionService(led)
    _, _, sid = asyncio.run(converse(service, ["Weather in Paris?"]))
    ledger_id = service.ledger_session_id(APP, "alice", sid)
    assert ledger_id is not None
    messages = led.messages(ledger_id)
    assert [(m.role, m.tool_name) for m in messages] == [
        ("user", None), ("assistant", None), ("tool", "get_weather"), ("assistant", None)]
    assert messages[0].content == "Weather in Paris?" and messages[3].content == "It is sunny in Paris."
    assert messages[1].model == "scripted-gemini-001"
    assert messages[2].invocation_id == "call-Paris"
    figures = led.statistics(ledger_id)
    assert (figures.tokens_in, figures.tokens_out, figures.tokens_cache_read, figures.tokens_reasoning) == (
        60, 12, 30, 2)
    chat = led.conversation(ledger_id, format="openai-chat")
    assert [m["role"] for m in chat] == ["user", "assistant", "tool", "assistant"]
    assert chat[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert chat[2] == {"role": "tool", "tool_call_id": "call-Paris", "content": '{"result":"sunny in Paris"}'}
    assert [hit.session_id for hit in led.search_messages("sunny Paris", role="assistant")] == [ledger_id]
    assert led.get_data(ledger_id) == {"n": len("Weather in Paris?"), "last_answer": "It is sunny in Paris."}
    assert {s.user_id for s in led.list_sessions(metadata={"adk.app": APP})} == {"alice", "bob"}
    by_user = {row["user"]: row for row in led.usage(by="user")}
    assert by_user["alice"]["tokens_in"] == 60 and by_user["bob"]["tokens_in"] == 60
    assert led.verify().ok
