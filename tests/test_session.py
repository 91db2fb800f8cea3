"""The Session fold: pure, deterministic, and equal from a snapshot or from the start (law 1)."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IntegrityError, Ledger
from ledger.session import apply, fold
from ledger.snapshots import decode_state, encode_state
from tests.conftest import Clock

steps = st.lists(
    st.one_of(
        st.tuples(st.just("message"), st.sampled_from(["user", "assistant", "tool", "system"]), st.integers(0, 9)),
        st.tuples(st.just("meta"), st.sampled_from(["a", "b", "c"]), st.integers(-(2**63), 2**63 - 1)),
        st.tuples(st.just("unmeta"), st.sampled_from(["a", "b"]), st.none()),
        st.tuples(st.just("data"), st.sampled_from(["x", "y"]), st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3)),
        st.tuples(st.just("undata"), st.sampled_from(["x", "y"]), st.none()),
        st.tuples(st.just("invoke"), st.sampled_from(["git", "grep"]), st.floats(0, 1000)),
        st.tuples(st.just("tag"), st.sampled_from(["p", "q"]), st.booleans()),
    ),
    min_size=1,
    max_size=40,
)


def _play(led: Ledger, plan: list[tuple[str, Any, Any]]) -> None:
    led.create_session("s")
    for step, (kind, a, b) in enumerate(plan):
        if kind == "message":
            led.add_message("s", a, "text", tokens={"input": b, "output": b})
        elif kind == "meta":
            led.set_metadata("s", a, b)
        elif kind == "unmeta":
            led.remove_metadata("s", a)
        elif kind == "data":
            led.set_data("s", a, b)
        elif kind == "undata":
            led.delete_data("s", a)
        elif kind == "invoke":
            led.link_invocation("s", f"i{step}", a, duration_ms=b, cost=b / 1000, tokens={"input": 1})
        elif b:
            led.add_tags("s", [a])
        else:
            led.remove_tags("s", [a])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_law1_fold_of_all_events_equals_snapshot_plus_tail_for_every_k(new_ledger_path: Callable[[], str], plan: list[Any]) -> None:
    with Ledger(new_ledger_path(), clock=Clock(), snapshot_every=0) as led:
        _play(led, plan)
        events = list(led.history("s"))
        whole = fold(events)
        assert whole == led.get_session("s")
        for k in range(1, len(events) + 1):
            snapshot = decode_state(encode_state(fold(events[:k])))  # type: ignore[arg-type]
            assert fold(events[k:], snapshot) == whole


def test_apply_never_mutates_its_input(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=Clock()) as led:
        _play(led, [("meta", "a", 1), ("data", "x", [1.0]), ("message", "user", 1), ("tag", "p", True)])
        events = list(led.history("s"))
    state = fold(events[:1])
    for event in events[1:]:
        frozen = copy.deepcopy(state)
        new = apply(state, event)
        assert state == frozen
        state = new


def test_events_that_cannot_follow_the_state_are_integrity_errors(ledger_path: str) -> None:
    with Ledger(ledger_path, clock=Clock()) as led:
        led.create_session("s")
        led.add_message("s", "user", "a")
        led.add_message("s", "user", "b")
        created, first, second = led.history("s")
    with pytest.raises(IntegrityError, match="before it was created"):
        apply(None, first)
    with pytest.raises(IntegrityError, match="created twice"):
        apply(fold([created]), created)
    with pytest.raises(IntegrityError, match="cannot follow"):
        apply(fold([created]), second)
