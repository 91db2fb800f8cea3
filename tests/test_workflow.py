"""The workflow helper: step inputs, outputs and results in session data, each step a linked invocation."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ledger import InvalidInput, Ledger, SessionClosed, SessionHandle
from ledger.integrations.workflow import Workflow
from tests.conftest import dump


class Timer:
    """A perf_counter stand-in that advances 0.25 s per reading."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


@pytest.fixture
def wf(ledger: Ledger) -> Workflow:
    ids = (f"inv-{n}" for n in itertools.count(1))
    return Workflow(ledger.session("run-1", purpose="workflow"), timer=Timer(), new_id=lambda: next(ids))


def invocations(led: Ledger, session_id: str) -> list[Any]:
    return [e.payload for e in led.history(session_id) if e.type == "invocation_linked"]


def test_a_step_records_input_output_status_and_one_invocation(ledger: Ledger, wf: Workflow) -> None:
    with wf.step("fetch", input={"url": "https://x"}, tokens={"input": 10, "output": 2}) as step:
        assert wf.session.get_data("step.fetch.status") == "running"
        step.output = {"rows": 3}
        step.cost = 0.5
    assert wf.session.get_data() == {
        "step.fetch.input": {"url": "https://x"},
        "step.fetch.output": {"rows": 3},
        "step.fetch.status": "ok",
    }
    (inv,) = invocations(ledger, "run-1")
    assert (inv.invocation_id, inv.tool_name, inv.status, inv.duration_ms) == ("inv-1", "fetch", "ok", 250.0)
    assert (inv.tokens_in, inv.tokens_out, inv.cost) == (10, 2, 0.5)
    assert (step.status, step.error, step.duration_ms) == ("ok", None, 250.0)


def test_an_error_in_the_step_is_recorded_and_re_raised_unchanged(ledger: Ledger, wf: Workflow) -> None:
    error = ValueError("bad row 7")
    with pytest.raises(ValueError) as caught:
        with wf.step("parse", input=[1, 2]) as step:
            step.output = {"partial": True}
            raise error
    assert caught.value is error and not getattr(error, "__notes__", None)
    assert wf.results()["parse"] == {
        "input": [1, 2],
        "output": {"partial": True},
        "status": "error",
        "error": "ValueError: bad row 7",
    }
    (inv,) = invocations(ledger, "run-1")
    assert (inv.tool_name, inv.status, inv.duration_ms) == ("parse", "error", 250.0)
    assert ledger.statistics("run-1").invocations_by_status == {"error": 1}


def test_a_step_that_sets_no_output_records_none_and_none_is_a_value(wf: Workflow) -> None:
    with wf.step("quiet"):
        pass
    with wf.step("null") as step:
        step.output = None
    results = wf.results()
    assert results["quiet"] == {"status": "ok"}
    assert results["null"] == {"status": "ok", "output": None}


def test_running_a_step_again_replaces_its_keys(wf: Workflow) -> None:
    with pytest.raises(KeyError):
        with wf.step("retry", input=1):
            raise KeyError("missing")
    with wf.step("retry") as step:
        step.output = "fine"
    assert wf.results()["retry"] == {"status": "ok", "output": "fine"}
    assert wf.session.statistics().invocation_count == 2


def test_the_decorator_records_arguments_and_return_value(wf: Workflow) -> None:
    @wf.task()
    def add(a: int, b: int = 2, *more: int) -> int:
        return a + b + sum(more)

    @wf.task("secret-step", record_input=False, record_output=False)
    def secret(token: object) -> object:
        return token

    assert add(1) == 3
    assert add(1, 2, 3, 4) == 10
    marker = object()
    assert secret(marker) is marker  # neither is JSON, and neither is recorded
    results = wf.results()
    assert results["add"] == {"input": {"a": 1, "b": 2, "more": [3, 4]}, "output": 10, "status": "ok"}
    assert results["secret-step"] == {"status": "ok"}
    assert add.__name__ == "add"


def test_the_decorator_refuses_coroutine_functions(wf: Workflow) -> None:
    async def later() -> None:
        pass

    with pytest.raises(InvalidInput):
        wf.task()(later)


def test_an_input_that_is_not_json_fails_before_the_block_runs_and_writes_nothing(ledger: Ledger, wf: Workflow) -> None:
    before = dump(ledger)
    ran = False
    with pytest.raises(InvalidInput):
        with wf.step("bad", input={"obj": object()}):
            ran = True
    assert not ran and dump(ledger) == before


@pytest.mark.parametrize("name", ["", None, 5, "a\x00b", "x" * 300])
def test_a_bad_step_name_is_refused_before_the_block_runs(ledger: Ledger, wf: Workflow, name: object) -> None:
    before = dump(ledger)
    with pytest.raises(InvalidInput):
        with wf.step(name):  # type: ignore[arg-type]
            pytest.fail("the block ran")
    assert dump(ledger) == before


def test_an_output_that_cannot_be_stored_fails_the_step(ledger: Ledger, wf: Workflow) -> None:
    with pytest.raises(InvalidInput):
        with wf.step("export") as step:
            step.output = {1, 2}  # a set is not JSON
    result = wf.results()["export"]
    assert result["status"] == "error" and "could not be recorded" in result["error"] and "output" not in result
    assert [inv.status for inv in invocations(ledger, "run-1")] == ["error"]


def test_bad_tokens_fail_the_step_without_a_half_recorded_end(ledger: Ledger, wf: Workflow) -> None:
    with pytest.raises(InvalidInput):
        with wf.step("llm") as step:
            step.output = "answer"
            step.tokens = {"input": -1}
    assert wf.results()["llm"]["status"] == "error"
    assert "output" not in wf.results()["llm"]
    assert [(inv.status, inv.tokens_in) for inv in invocations(ledger, "run-1")] == [("error", None)]


def test_a_closed_session_refuses_the_step_before_it_runs(wf: Workflow) -> None:
    wf.session.complete()
    with pytest.raises(SessionClosed):
        with wf.step("late"):
            pytest.fail("the block ran")


def test_when_the_error_cannot_be_recorded_the_step_error_still_wins_with_a_note(wf: Workflow) -> None:
    with pytest.raises(RuntimeError) as caught:
        with wf.step("ends-session"):
            wf.session.complete()
            raise RuntimeError("boom")
    assert any("could not record step 'ends-session'" in note for note in caught.value.__notes__)


def test_steps_inside_a_batch_join_it_and_roll_back_with_it(ledger: Ledger, wf: Workflow) -> None:
    before = dump(ledger)
    with pytest.raises(LookupError):
        with ledger.batch():
            with wf.step("in-batch") as step:
                step.output = 1
            raise LookupError("abort the batch")
    assert dump(ledger) == before
    with ledger.batch():
        with wf.step("in-batch") as step:
            step.output = 2
    assert wf.results()["in-batch"] == {"status": "ok", "output": 2}


def test_dotted_step_names_and_other_data_keys(wf: Workflow) -> None:
    wf.session.set_data("workflow.input", {"q": 1})
    with wf.step("load.users") as step:
        step.output = ["ana"]
    assert wf.results() == {"load.users": {"status": "ok", "output": ["ana"]}}
    assert wf.key("load.users", "output") == "step.load.users.output"


def test_a_workflow_on_a_ledger_and_session_id_opens_the_session(ledger: Ledger) -> None:
    wf = Workflow(ledger, "wf-9")
    with wf.step("one") as step:
        step.output = 1
    assert ledger.get_data("wf-9", "step.one.output") == 1
    assert Workflow(ledger, "wf-9").results() == wf.results()
    assert Workflow(ledger).session.session_id != "wf-9"  # a new session with a generated id


def test_bad_targets_are_refused(ledger: Ledger) -> None:
    handle = ledger.session("s")
    with pytest.raises(InvalidInput):
        Workflow(handle, "s")
    with pytest.raises(InvalidInput):
        Workflow("ledger.db")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Workflow(handle, timer=3)  # type: ignore[arg-type]
    assert isinstance(Workflow(handle).session, SessionHandle)


def test_the_default_timer_measures_real_durations(ledger: Ledger) -> None:
    wf = Workflow(ledger, "timed")
    with wf.step("wait"):
        sum(range(10_000))
    (inv,) = invocations(ledger, "timed")
    assert inv.duration_ms is not None and 0 <= inv.duration_ms < 10_000


def test_task_works_without_parentheses_too(ledger_path: str) -> None:
    with Ledger(ledger_path) as ledger:
        run = Workflow(ledger, "wf")

        @run.task
        def double(n: int) -> int:
            return 2 * n

        assert double(3) == 6
        assert run.results()["double"]["output"] == 6
