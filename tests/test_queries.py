"""list_sessions and its convenience forms: every filter, ordering, keyset pages, and filters as data."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ledger import ANY, InvalidInput, Ledger, Page, SessionSummary
from tests.conftest import Clock

UTC = timezone.utc
ORDERS = (
    "created_at",
    "updated_at",
    "session_id",
    "version",
    "message_count",
    "invocation_count",
    "total_duration_ms",
    "tokens_in",
    "tokens_out",
    "estimated_cost",
)


def ids(page: Page) -> list[str]:
    return [s.session_id for s in page.items]


def walk(led: Ledger, **filters: Any) -> list[list[str]]:
    """Every page of a listing, following cursors until there are none."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = led.list_sessions(cursor=cursor, **filters)
        pages.append(ids(page))
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 1000, "the cursor never ran out"


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


# -- the page and its summaries ----------------------------------------------------------------------


def test_list_sessions_returns_a_page_of_summaries_newest_first(ledger: Ledger) -> None:
    for sid in ("a", "b", "c"):
        ledger.create_session(sid)
    page = ledger.list_sessions()
    assert isinstance(page, Page)
    assert all(isinstance(s, SessionSummary) for s in page.items)
    assert ids(page) == ["c", "b", "a"]
    assert page.cursor is None


def test_an_empty_ledger_lists_an_empty_last_page(ledger: Ledger) -> None:
    page = ledger.list_sessions()
    assert page.items == []
    assert page.cursor is None


def test_summaries_carry_metadata_and_tags_in_insertion_order(ledger: Ledger) -> None:
    ledger.create_session("s", tags=["b", "a"], metadata={"cfg": {"z": 1, "a": [1, {"y": None}]}, "name": "chat"})
    ledger.add_tags("s", ["d", "c"])
    ledger.remove_tags("s", ["b"])
    ledger.add_tags("s", ["b"])
    ledger.update_metadata("s", {"name": "renamed", "extra": True})
    ledger.remove_metadata("s", "cfg")
    ledger.set_metadata("s", "cfg", {"q": 1.5})
    (summary,) = ledger.list_sessions().items
    assert summary.tags == ("a", "d", "c", "b")
    assert summary.metadata == {"name": "renamed", "extra": True, "cfg": {"q": 1.5}}


def test_summary_counters_equal_get_session(ledger: Ledger, clock: Clock) -> None:
    ledger.create_session("s", user_id="alice", purpose="debug", tags=["t"], metadata={"k": [1, 2]})
    ledger.add_message("s", "user", "q", tokens={"input": 10})
    ledger.add_message("s", "assistant", "a", model="m", tokens={"input": 100, "output": 20})
    ledger.link_invocation("s", "i1", "git", duration_ms=150.5, tokens={"input": 5, "output": 6}, cost=0.1)
    ledger.link_invocation("s", "i2", "search", duration_ms=49.25, cost=0.2)
    ledger.link_invocation("s", "i3", "git", cost=0.3)
    ledger.complete_session("s", "failed", reason="boom")
    clock.now += timedelta(hours=1)
    ledger.set_metadata("s", "reviewed", True)
    ledger.create_session("fresh")
    summaries = {s.session_id: s for s in ledger.list_sessions().items}
    for sid in ("s", "fresh"):
        session = ledger.get_session(sid)
        summary = summaries[sid]
        for name in (
            "session_id", "version", "status", "user_id", "purpose", "created_at", "updated_at", "completed_at",
            "message_count", "invocation_count", "total_duration_ms", "tokens_in", "tokens_out", "estimated_cost",
            "tools_used", "tags", "metadata",
        ):
            assert getattr(summary, name) == getattr(session, name), name
    s = summaries["s"]
    assert (s.message_count, s.invocation_count, s.total_duration_ms) == (2, 3, 199.75)
    assert (s.tokens_in, s.tokens_out, s.tools_used) == (115, 26, ("git", "search"))
    assert s.estimated_cost == 0.1 + 0.2 + 0.3
    assert s.created_at.tzinfo is not None and s.completed_at is not None


# -- each filter ---------------------------------------------------------------------------------------


def test_user_id_filter_matches_exactly(ledger: Ledger) -> None:
    ledger.create_session("a", user_id="alice")
    ledger.create_session("b", user_id="bob")
    ledger.create_session("c", user_id="alice")
    ledger.create_session("d")
    assert ids(ledger.list_sessions(user_id="alice")) == ["c", "a"]
    assert ids(ledger.list_sessions(user_id="bob")) == ["b"]
    assert ids(ledger.list_sessions(user_id="ALICE")) == []
    assert ids(ledger.list_sessions(user_id="carol")) == []


def test_status_filter_takes_one_status_or_several(ledger: Ledger) -> None:
    for sid in ("act", "done", "fail", "gone"):
        ledger.create_session(sid)
    ledger.complete_session("done")
    ledger.complete_session("fail", "failed")
    ledger.complete_session("gone", "abandoned")
    assert ids(ledger.list_sessions(status="active")) == ["act"]
    assert ids(ledger.list_sessions(status="completed")) == ["done"]
    assert ids(ledger.list_sessions(status=["failed", "abandoned"])) == ["gone", "fail"]
    assert ids(ledger.list_sessions(status=("active", "completed"))) == ["done", "act"]
    assert ids(ledger.list_sessions(status=["active", "completed", "failed", "abandoned"])) == [
        "gone", "fail", "done", "act"
    ]


def test_tags_filter_requires_all_of_the_tags(ledger: Ledger) -> None:
    ledger.create_session("ab", tags=["a", "b"])
    ledger.create_session("a", tags=["a"])
    ledger.create_session("abc", tags=["c", "b", "a"])
    ledger.create_session("none")
    assert ids(ledger.list_sessions(tags=["a"])) == ["abc", "a", "ab"]
    assert ids(ledger.list_sessions(tags=["a", "b"])) == ["abc", "ab"]
    assert ids(ledger.list_sessions(tags=["b", "a", "c"])) == ["abc"]
    assert ids(ledger.list_sessions(tags=["a", "zzz"])) == []


def test_any_tags_filter_requires_at_least_one_of_the_tags(ledger: Ledger) -> None:
    ledger.create_session("x", tags=["x"])
    ledger.create_session("y", tags=["y", "other"])
    ledger.create_session("xy", tags=["x", "y"])
    ledger.create_session("none")
    assert ids(ledger.list_sessions(any_tags=["x", "y"])) == ["xy", "y", "x"]
    assert ids(ledger.list_sessions(any_tags=["y"])) == ["xy", "y"]
    assert ids(ledger.list_sessions(any_tags=["zzz"])) == []
    assert ids(ledger.list_sessions(tags=["x"], any_tags=["y", "other"])) == ["xy"]


def test_tag_filters_follow_tags_added_and_removed_later(ledger: Ledger) -> None:
    ledger.create_session("s", tags=["old"])
    ledger.add_tags("s", ["new"])
    ledger.remove_tags("s", ["old"])
    assert ids(ledger.list_sessions(tags=["new"])) == ["s"]
    assert ids(ledger.list_sessions(tags=["old"])) == []
    assert ids(ledger.list_sessions(any_tags=["old"])) == []


def test_metadata_filter_is_equality_on_every_key_given(ledger: Ledger) -> None:
    ledger.create_session("a", metadata={"env": "prod", "team": "core", "n": 3})
    ledger.create_session("b", metadata={"env": "prod", "team": "web"})
    ledger.create_session("c", metadata={"env": "dev", "flag": None, "list": [1, "two"]})
    assert ids(ledger.list_sessions(metadata={"env": "prod"})) == ["b", "a"]
    assert ids(ledger.list_sessions(metadata={"env": "prod", "team": "core"})) == ["a"]
    assert ids(ledger.list_sessions(metadata={"env": "prod", "team": "nobody"})) == []
    assert ids(ledger.list_sessions(metadata={"n": 3})) == ["a"]
    assert ids(ledger.list_sessions(metadata={"n": "3"})) == []
    assert ids(ledger.list_sessions(metadata={"flag": None})) == ["c"]
    assert ids(ledger.list_sessions(metadata={"list": [1, "two"]})) == ["c"]
    assert ids(ledger.list_sessions(metadata={"list": ["two", 1]})) == []
    assert ids(ledger.list_sessions(metadata={"missing": None})) == []


def test_metadata_filter_matches_nested_objects_in_either_key_order(ledger: Ledger) -> None:
    ledger.create_session("s", metadata={"cfg": {"b": 2, "a": {"y": [1, {"q": 1, "p": 2}], "x": "1"}}})
    ledger.create_session("other", metadata={"cfg": {"a": 1, "b": 2}})
    same_in_other_orders = [
        {"a": {"x": "1", "y": [1, {"p": 2, "q": 1}]}, "b": 2},
        {"b": 2, "a": {"y": [1, {"q": 1, "p": 2}], "x": "1"}},
    ]
    for value in same_in_other_orders:
        assert ids(ledger.list_sessions(metadata={"cfg": value})) == ["s"]
    assert ids(ledger.list_sessions(metadata={"cfg": {"b": 2, "a": 1}})) == ["other"]
    assert ids(ledger.list_sessions(metadata={"cfg": {"a": {"x": "1"}, "b": 2}})) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), b"x"], ids=["nan", "inf", "-inf", "bytes"])
def test_a_metadata_filter_value_that_is_not_json_matches_nothing(ledger: Ledger, value: object) -> None:
    ledger.create_session("null", metadata={"k": None})
    ledger.create_session("base64", metadata={"k": "eA=="})  # what b"x" would look like as base64 text
    try:
        found = ids(ledger.list_sessions(metadata={"k": value}))
    except InvalidInput as err:
        assert err.field == "metadata"
    else:
        assert found == []


def test_metadata_any_matches_a_key_present_with_any_value(ledger: Ledger) -> None:
    ledger.create_session("str", metadata={"owner": "alice"})
    ledger.create_session("null", metadata={"owner": None})
    ledger.create_session("obj", metadata={"owner": {"name": "bob"}, "env": "prod"})
    ledger.create_session("without", metadata={"env": "prod"})
    assert ids(ledger.list_sessions(metadata={"owner": ANY})) == ["obj", "null", "str"]
    assert ids(ledger.list_sessions(metadata={"owner": ANY, "env": "prod"})) == ["obj"]
    assert ids(ledger.list_sessions(metadata={"nobody": ANY})) == []
    ledger.remove_metadata("str", "owner")
    assert ids(ledger.list_sessions(metadata={"owner": ANY})) == ["obj", "null"]


def test_metadata_filter_sees_updates_made_after_creation(ledger: Ledger) -> None:
    ledger.create_session("s", metadata={"stage": "draft"})
    ledger.set_metadata("s", "stage", "final")
    assert ids(ledger.list_sessions(metadata={"stage": "final"})) == ["s"]
    assert ids(ledger.list_sessions(metadata={"stage": "draft"})) == []


def test_created_after_and_created_before_are_strict_bounds(ledger: Ledger, clock: Clock) -> None:
    for hour, sid in ((9, "early"), (12, "noon"), (15, "late")):
        clock.now = at(hour)
        ledger.create_session(sid)
    assert ids(ledger.list_sessions(created_after=at(12))) == ["late"]
    assert ids(ledger.list_sessions(created_after=at(12) - timedelta(microseconds=1))) == ["late", "noon"]
    assert ids(ledger.list_sessions(created_before=at(12))) == ["early"]
    assert ids(ledger.list_sessions(created_before=at(12) + timedelta(microseconds=1))) == ["noon", "early"]
    assert ids(ledger.list_sessions(created_after=at(9), created_before=at(15))) == ["noon"]
    assert ids(ledger.list_sessions(created_after=at(16))) == []


def test_time_filters_compare_instants_whatever_the_timezone(ledger: Ledger, clock: Clock) -> None:
    for hour, sid in ((9, "early"), (12, "noon"), (15, "late")):
        clock.now = at(hour)
        ledger.create_session(sid)
    plus_two = timezone(timedelta(hours=2))
    # 13:00 at UTC+2 is 11:00 UTC
    assert ids(ledger.list_sessions(created_after=datetime(2026, 1, 1, 13, tzinfo=plus_two))) == ["late", "noon"]
    minus_five = timezone(timedelta(hours=-5))
    # 05:00 at UTC-5 is 10:00 UTC
    assert ids(ledger.list_sessions(created_before=datetime(2026, 1, 1, 5, tzinfo=minus_five))) == ["early"]


def test_updated_after_follows_the_latest_event_of_any_type(ledger: Ledger, clock: Clock) -> None:
    for hour, sid in ((9, "a"), (10, "b"), (11, "c")):
        clock.now = at(hour)
        ledger.create_session(sid)
    clock.now = at(13)
    ledger.add_message("a", "user", "late reply")
    clock.now = at(14)
    ledger.add_tags("b", ["seen"])
    assert ids(ledger.list_sessions(updated_after=at(12))) == ["b", "a"]
    assert ids(ledger.list_sessions(updated_after=at(13))) == ["b"]
    assert ids(ledger.list_sessions(updated_after=at(10, 30))) == ["c", "b", "a"]
    assert ids(ledger.list_sessions(updated_after=at(14))) == []


def test_text_filter_is_full_text_search_over_the_conversation(ledger: Ledger) -> None:
    ledger.create_session("a", purpose="the build fails")  # the purpose is not the conversation
    ledger.add_message("a", "user", "hello there")
    ledger.create_session("b")
    ledger.add_message("b", "user", "the build fails on CI")
    ledger.add_message("b", "assistant", "retry it")
    ledger.create_session("c")
    ledger.add_message("c", "tool", "Failing test in the parser", tool_name="pytest")
    ledger.create_session("d")
    ledger.add_message("d", "user", "deploy succeeded")
    assert ids(ledger.list_sessions(text="failing")) == ["c", "b"]
    assert ids(ledger.list_sessions(text="build fails")) == ["b"]
    assert ids(ledger.list_sessions(text="parser deploy")) == []
    assert ids(ledger.list_sessions(text="DEPLOY")) == ["d"]


def test_text_filter_matches_words_from_different_messages_of_one_conversation(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "the build broke")
    ledger.add_message("s", "assistant", "retry it")
    ledger.create_session("other")
    ledger.add_message("other", "user", "retry later")
    assert ids(ledger.list_sessions(text="build retry")) == ["s"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("build AND fails", []),  # no message holds the word "and"
        ("build OR nothing", []),
        ("NOT build", []),
        ("NEAR(build fails)", []),
        ("buil*", []),  # not a prefix query
        ("content:build", []),  # not a column filter: the words "content build"
        ('"build', ["s"]),
        ("^build", ["s"]),
        ("(build)", ["s"]),
        ("build -fails", ["s"]),
        ("{build}", ["s"]),
        ("'build'", ["s"]),
        ("fails!?", ["s"]),
    ],
)
def test_text_filter_treats_fts_operators_as_plain_words(ledger: Ledger, text: str, found: list[str]) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "the build fails")
    assert ids(ledger.list_sessions(text=text)) == found


# -- ordering --------------------------------------------------------------------------------------------


def _four_sessions(led: Ledger) -> None:
    """Four sessions whose every order column sorts them differently (some with ties)."""
    for sid in ("delta", "alpha", "charlie", "bravo"):  # created in this order
        led.create_session(sid)
    # charlie: version 3, 1 message, 1 invocation, 50 ms, tokens 1/40, cost 0.5
    led.link_invocation("charlie", "i1", "git", duration_ms=50, tokens={"input": 1, "output": 40}, cost=0.5)
    led.add_message("charlie", "assistant", "done")
    # bravo: version 5, 2 messages, 2 invocations, 300 ms, tokens 20/30, cost 0.375
    led.link_invocation("bravo", "i1", "git", duration_ms=100, tokens={"input": 20, "output": 30}, cost=0.125)
    led.link_invocation("bravo", "i2", "search", duration_ms=200, cost=0.25)
    led.add_message("bravo", "user", "a")
    led.add_message("bravo", "assistant", "b")
    # alpha: version 2, 1 message, no invocation, 0 ms, tokens 30/1, cost 0
    led.add_message("alpha", "user", "hello", tokens={"input": 30, "output": 1})
    # delta: version 4, 2 messages, 1 invocation, 5 ms, tokens 10/20, cost 2.0
    led.add_message("delta", "user", "q", tokens={"input": 10, "output": 20})
    led.add_message("delta", "assistant", "r")
    led.link_invocation("delta", "i1", "search", duration_ms=5, cost=2.0)


ASCENDING = {
    "created_at": ["delta", "alpha", "charlie", "bravo"],
    "updated_at": ["charlie", "bravo", "alpha", "delta"],
    "session_id": ["alpha", "bravo", "charlie", "delta"],
    "version": ["alpha", "charlie", "delta", "bravo"],
    "message_count": ["alpha", "charlie", "bravo", "delta"],  # ties broken by session_id
    "invocation_count": ["alpha", "charlie", "delta", "bravo"],
    "total_duration_ms": ["alpha", "delta", "charlie", "bravo"],
    "tokens_in": ["charlie", "delta", "bravo", "alpha"],
    "tokens_out": ["alpha", "delta", "bravo", "charlie"],
    "estimated_cost": ["alpha", "bravo", "charlie", "delta"],
}


@pytest.mark.parametrize("order_by", ORDERS)
def test_order_by_each_column_in_both_directions(ledger: Ledger, order_by: str) -> None:
    _four_sessions(ledger)
    expected = ASCENDING[order_by]
    assert ids(ledger.list_sessions(order_by=order_by, descending=False)) == expected
    assert ids(ledger.list_sessions(order_by=order_by, descending=True)) == expected[::-1]
    assert ids(ledger.list_sessions(order_by=order_by)) == expected[::-1]  # descending by default


def test_the_default_order_is_newest_created_first(ledger: Ledger) -> None:
    _four_sessions(ledger)
    assert ids(ledger.list_sessions()) == ["bravo", "charlie", "alpha", "delta"]


def test_filters_combine_with_and(ledger: Ledger, clock: Clock) -> None:
    clock.now = at(9)
    ledger.create_session("old", user_id="alice", tags=["bug", "ui"], metadata={"env": "prod"})
    ledger.add_message("old", "user", "crash on save")
    clock.now = at(10)
    ledger.create_session("hit", user_id="alice", tags=["bug", "ui", "p1"], metadata={"env": "prod", "owner": "x"})
    ledger.add_message("hit", "user", "crash on save")
    ledger.complete_session("hit")
    ledger.create_session("bob", user_id="bob", tags=["bug", "ui"], metadata={"env": "prod", "owner": "y"})
    ledger.add_message("bob", "user", "crash on save")
    ledger.complete_session("bob")
    ledger.create_session("dev", user_id="alice", tags=["bug", "ui"], metadata={"env": "dev", "owner": "z"})
    ledger.add_message("dev", "user", "crash on save")
    ledger.complete_session("dev")
    ledger.create_session("quiet", user_id="alice", tags=["bug", "ui"], metadata={"env": "prod", "owner": "w"})
    ledger.add_message("quiet", "user", "all good")
    ledger.complete_session("quiet")
    ledger.create_session("open", user_id="alice", tags=["bug", "ui"], metadata={"env": "prod", "owner": "v"})
    ledger.add_message("open", "user", "crash on save")
    everything = dict(
        user_id="alice",
        status=["completed", "failed"],
        tags=["bug", "ui"],
        any_tags=["p1", "p2"],
        metadata={"env": "prod", "owner": ANY},
        created_after=at(9, 30),
        created_before=at(11),
        updated_after=at(9, 30),
        text="crash",
    )
    assert ids(ledger.list_sessions(**everything)) == ["hit"]
    without_any_tags = {k: v for k, v in everything.items() if k != "any_tags"}
    assert ids(ledger.list_sessions(**without_any_tags)) == ["hit"]
    assert ids(ledger.list_sessions(**{**without_any_tags, "status": "active"})) == ["open"]
    assert ids(ledger.list_sessions(**{**without_any_tags, "created_after": None})) == ["hit"]
    assert ids(ledger.list_sessions(user_id="alice", text="crash", status="active")) == ["open", "old"]


# -- pages -------------------------------------------------------------------------------------------------


def _thirty_sessions(led: Ledger, clock: Clock) -> list[str]:
    """30 sessions with many ties: the first ten created at the very same instant."""
    names = [f"s{i:02d}" for i in range(30)]
    step = clock.step
    clock.step = timedelta(0)
    with led.batch():
        for i, sid in enumerate(names):
            if i == 10:
                clock.step = step
            led.create_session(sid, tags=["even" if i % 2 == 0 else "odd"])
            for _ in range(i % 3):
                led.add_message(sid, "user", "x", tokens={"input": i % 4})
            if i % 5:
                led.link_invocation(sid, "inv", "t", duration_ms=float(i % 2), cost=0.1 * (i % 5))
    return names


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("descending", [True, False])
def test_the_cursor_walks_every_page_exactly_once(ledger: Ledger, clock: Clock, order_by: str, descending: bool) -> None:
    names = _thirty_sessions(ledger, clock)
    listing = ledger.list_sessions(order_by=order_by, descending=descending, limit=10_000).items
    whole = [s.session_id for s in listing]
    assert sorted(whole) == names
    keys = [(getattr(s, order_by), s.session_id) for s in listing]
    assert keys == sorted(keys, reverse=descending)
    for limit in (1, 2, 7, 29, 30, 31):
        pages = walk(ledger, order_by=order_by, descending=descending, limit=limit)
        assert all(1 <= len(p) <= limit for p in pages)
        assert all(len(p) == limit for p in pages[:-1])
        assert [sid for p in pages for sid in p] == whole


def test_the_order_with_ties_falls_back_to_session_id(ledger: Ledger, clock: Clock) -> None:
    names = _thirty_sessions(ledger, clock)
    # the first ten share one created_at; the rest are a millisecond or more apart
    ascending = ids(ledger.list_sessions(order_by="created_at", descending=False, limit=10))
    assert ascending == names[:10]
    pages = walk(ledger, order_by="created_at", descending=True, limit=3)
    assert [sid for p in pages for sid in p] == names[::-1]
    # message_count is i % 3: ties everywhere
    by_count = [sid for p in walk(ledger, order_by="message_count", descending=False, limit=4) for sid in p]
    assert by_count == [n for r in (0, 1, 2) for i, n in enumerate(names) if i % 3 == r]


def test_the_cursor_keeps_the_filters(ledger: Ledger, clock: Clock) -> None:
    names = _thirty_sessions(ledger, clock)
    pages = walk(ledger, tags=["even"], order_by="session_id", descending=False, limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 3]
    assert [sid for p in pages for sid in p] == names[::2]


def test_the_last_page_has_no_cursor(ledger: Ledger) -> None:
    for sid in ("a", "b", "c", "d"):
        ledger.create_session(sid)
    first = ledger.list_sessions(limit=2, order_by="session_id", descending=False)
    assert ids(first) == ["a", "b"] and first.cursor is not None
    last = ledger.list_sessions(limit=2, order_by="session_id", descending=False, cursor=first.cursor)
    assert ids(last) == ["c", "d"]
    assert last.cursor is None  # exactly full, and nothing after it
    assert ledger.list_sessions(limit=4).cursor is None
    assert ledger.list_sessions(limit=3).cursor is not None


def test_a_page_stays_valid_while_sessions_are_added(ledger: Ledger) -> None:
    for sid in ("a", "b", "c", "d"):
        ledger.create_session(sid)
    first = ledger.list_sessions(order_by="session_id", descending=False, limit=2)
    ledger.create_session("aa")  # sorts before the cursor: not seen
    ledger.create_session("e")  # sorts after: seen
    rest = ledger.list_sessions(order_by="session_id", descending=False, limit=10, cursor=first.cursor)
    assert ids(rest) == ["c", "d", "e"]


@pytest.mark.parametrize("limit", [1, 2, 10_000])
def test_limit_from_1_to_10000_is_accepted(ledger: Ledger, limit: int) -> None:
    for sid in ("a", "b", "c"):
        ledger.create_session(sid)
    assert len(ledger.list_sessions(limit=limit).items) == min(limit, 3)


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, "5", 2.0])
def test_limit_outside_1_to_10000_is_invalid_input(ledger: Ledger, limit: object) -> None:
    with pytest.raises(InvalidInput) as err:
        ledger.list_sessions(limit=limit)
    assert err.value.field == "limit"


# -- bad filters -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"tags": "bug"}, "tags"),
        ({"tags": b"bug"}, "tags"),
        ({"tags": 5}, "tags"),
        ({"tags": ["ok", 5]}, "tags"),
        ({"any_tags": "bug"}, "any_tags"),
        ({"status": "done"}, "status"),
        ({"status": ["active", "done"]}, "status"),
        ({"status": "ACTIVE"}, "status"),
        ({"user_id": 5}, "user_id"),
        ({"metadata": ["k"]}, "metadata"),
        ({"metadata": {1: "v"}}, "metadata"),
        ({"metadata": {"k": object()}}, "metadata"),
        ({"created_after": datetime(2026, 1, 1)}, "created_after"),
        ({"created_before": datetime(2026, 1, 1)}, "created_before"),
        ({"updated_after": datetime(2026, 1, 1)}, "updated_after"),
        ({"created_after": "2026-01-01T00:00:00Z"}, "created_after"),
        ({"created_after": 1767225600}, "created_after"),
        ({"text": ""}, "text"),
        ({"text": "  \t\n"}, "text"),
        ({"text": 5}, "text"),
        ({"order_by": "name"}, "order_by"),
        ({"order_by": "created_at; DROP TABLE sessions"}, "order_by"),
        ({"order_by": "CREATED_AT"}, "order_by"),
        ({"descending": "yes"}, "descending"),
    ],
)
def test_bad_filters_are_invalid_input_naming_the_field(ledger: Ledger, filters: dict[str, Any], field: str) -> None:
    ledger.create_session("s", user_id="u", tags=["bug"])
    with pytest.raises(InvalidInput) as err:
        ledger.list_sessions(**filters)
    assert err.value.field == field
    assert ids(ledger.list_sessions()) == ["s"]


def test_a_cursor_from_another_order_is_refused(ledger: Ledger) -> None:
    for sid in ("a", "b", "c"):
        ledger.create_session(sid)
    cursor = ledger.list_sessions(order_by="created_at", limit=1).cursor
    assert cursor is not None
    with pytest.raises(InvalidInput) as err:
        ledger.list_sessions(order_by="session_id", limit=1, cursor=cursor)
    assert err.value.field == "cursor"
    with pytest.raises(InvalidInput) as err:
        ledger.list_sessions(order_by="created_at", descending=False, limit=1, cursor=cursor)
    assert err.value.field == "cursor"


def _forged(*parts: object) -> str:
    import json

    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "",
        "é",
        "AAAA",
        5,
        b"abc",
        pytest.param(_forged("created_at", True), id="forged-too-short"),
        pytest.param(_forged("created_at", True, "2026-01-01T12:00:00.000000Z", 7), id="forged-id-not-a-string"),
        pytest.param(_forged("created_at", True, {"a": 1}, "s"), id="forged-value-an-object"),
        pytest.param(_forged("created_at", True, [1, 2], "s"), id="forged-value-a-list"),
    ],
)
def test_a_garbage_cursor_is_invalid_input(ledger: Ledger, cursor: object) -> None:
    ledger.create_session("s")
    with pytest.raises(InvalidInput) as err:
        ledger.list_sessions(cursor=cursor)
    assert err.value.field == "cursor"


# -- filters are data --------------------------------------------------------------------------------------

AWKWARD = [
    "it's",
    'say "hi"',
    "100%",
    "%",
    "_",
    "a_b",
    "'; DROP TABLE sessions; --",
    "\" OR 1=1 --",
    "SELECT * FROM events",
    "NULL",
    "ключ",
    "日本語のキー",
    "emoji 🚀",
    "back\\slash",
    "[a-z]*",
    "?",
    ":name",
    "$1",
    "tab\there",
    "line\nbreak",
    "\x01bell\x07\x1f",
]


@pytest.mark.parametrize("word", AWKWARD)
def test_filter_keys_and_values_match_exactly_as_data(ledger: Ledger, word: str) -> None:
    tag_ok = all(ch >= " " for ch in word)  # tags may not hold control characters
    ledger.create_session(
        "hit", user_id=word, tags=[word] if tag_ok else ["plain"], metadata={word: word, "v": word, "nested": {word: [word]}}
    )
    ledger.create_session(
        "decoy", user_id="alice", tags=["abc", "a-b", "plain-decoy"], metadata={"x": "y", "v": "anything", "ab": 1}
    )
    assert ids(ledger.list_sessions(user_id=word)) == ["hit"]
    assert ids(ledger.list_sessions(metadata={word: word})) == ["hit"]
    assert ids(ledger.list_sessions(metadata={"v": word})) == ["hit"]
    assert ids(ledger.list_sessions(metadata={word: ANY})) == ["hit"]
    assert ids(ledger.list_sessions(metadata={"nested": {word: [word]}})) == ["hit"]
    assert ids(ledger.list_sessions(metadata={word: word + "x"})) == []
    assert ids(ledger.find_sessions_by_metadata({word: word})) == ["hit"]
    if tag_ok:
        assert ids(ledger.list_sessions(tags=[word])) == ["hit"]
        assert ids(ledger.list_sessions(any_tags=[word, "nothing"])) == ["hit"]
        assert ids(ledger.sessions_by_tag(word)) == ["hit"]
    assert sorted(ids(ledger.list_sessions())) == ["decoy", "hit"]  # nothing was dropped or rewritten
    assert ledger.get_session("hit").metadata[word] == word


def test_like_wildcards_in_filters_match_only_themselves(ledger: Ledger) -> None:
    ledger.create_session("alice", user_id="alice", tags=["tag", "Bug"], metadata={"abc": "value", "k": "v1"})
    ledger.create_session("literal", user_id="a_ice", tags=["t_g"], metadata={"a%": "v%", "k": "v_"})
    assert ids(ledger.list_sessions(user_id="a_ice")) == ["literal"]
    assert ids(ledger.list_sessions(user_id="%")) == []
    assert ids(ledger.list_sessions(user_id="ALICE")) == []
    assert ids(ledger.list_sessions(tags=["t_g"])) == ["literal"]
    assert ids(ledger.list_sessions(tags=["t%"])) == []
    assert ids(ledger.list_sessions(tags=["bug"])) == []
    assert ids(ledger.list_sessions(metadata={"a%": ANY})) == ["literal"]
    assert ids(ledger.list_sessions(metadata={"a_c": ANY})) == []
    assert ids(ledger.list_sessions(metadata={"%": ANY})) == []
    assert ids(ledger.list_sessions(metadata={"k": "v_"})) == ["literal"]
    assert ids(ledger.list_sessions(metadata={"k": "v%"})) == []
    assert ids(ledger.list_sessions(metadata={"abc": "VALUE"})) == []


# -- convenience forms ---------------------------------------------------------------------------------------


def test_find_sessions_by_metadata_returns_a_page(ledger: Ledger) -> None:
    ledger.create_session("a", metadata={"project": "x", "env": "prod"})
    ledger.create_session("b", metadata={"project": "x"})
    ledger.create_session("c", metadata={"project": "y"})
    page = ledger.find_sessions_by_metadata({"project": "x"})
    assert isinstance(page, Page)
    assert ids(page) == ["b", "a"]
    assert ids(ledger.find_sessions_by_metadata({"project": "x", "env": ANY})) == ["a"]
    first = ledger.find_sessions_by_metadata({"project": "x"}, limit=1)
    assert ids(first) == ["b"]
    assert ids(ledger.find_sessions_by_metadata({"project": "x"}, limit=1, cursor=first.cursor)) == ["a"]


def test_sessions_by_tag_returns_a_page(ledger: Ledger) -> None:
    ledger.create_session("a", tags=["urgent"])
    ledger.create_session("b", tags=["later"])
    ledger.create_session("c", tags=["later", "urgent"])
    page = ledger.sessions_by_tag("urgent")
    assert isinstance(page, Page)
    assert ids(page) == ["c", "a"]
    assert ids(ledger.sessions_by_tag("none")) == []


def test_starred_sessions_are_those_with_is_starred_true(ledger: Ledger) -> None:
    ledger.create_session("star", metadata={"is_starred": True})
    ledger.create_session("unstarred", metadata={"is_starred": False})
    ledger.create_session("plain")
    ledger.create_session("truthy", metadata={"is_starred": "yes"})
    ledger.create_session("later")
    ledger.set_metadata("later", "is_starred", True)
    page = ledger.starred_sessions()
    assert isinstance(page, Page)
    assert ids(page) == ["later", "star"]
    ledger.set_metadata("star", "is_starred", False)
    assert ids(ledger.starred_sessions()) == ["later"]
