"""search_messages: ranked full-text hits over every conversation, with user text searched as plain words."""

from __future__ import annotations

import pytest

from ledger import InvalidInput, Ledger, SearchHit, SessionNotFound


def versions(hits: list[SearchHit]) -> set[int]:
    return {h.version for h in hits}


def test_a_hit_says_where_the_message_is_and_highlights_the_match(ledger: Ledger) -> None:
    ledger.create_session("other")
    ledger.create_session("s")
    ledger.add_message("s", "user", "how do I fix the failing build")
    ledger.add_message("s", "assistant", "the build fails because of a missing dependency")
    ledger.add_message("s", "tool", "exit code 0", tool_name="make")
    hits = ledger.search_messages("build")
    assert all(isinstance(h, SearchHit) for h in hits)
    positions = {m.version: m.position for m in ledger.messages("s")}
    by_version = {h.version: h for h in hits}
    assert set(by_version) == {2, 3}
    user, assistant = by_version[2], by_version[3]
    assert (user.session_id, user.position, user.role) == ("s", positions[2], "user")
    assert (assistant.session_id, assistant.position, assistant.role) == ("s", positions[3], "assistant")
    assert user.snippet == "how do I fix the failing [build]"
    assert assistant.snippet == "the [build] fails because of a missing dependency"
    assert isinstance(user.rank, float)


def test_every_matching_word_is_highlighted(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "the build fails because the build is old")
    (hit,) = ledger.search_messages("build old")
    assert hit.snippet == "the [build] fails because the [build] is [old]"


def test_a_long_message_gives_a_shortened_snippet_around_the_match(ledger: Ledger) -> None:
    ledger.create_session("s")
    words = [f"w{i}" for i in range(200)]
    words[100] = "needle"
    ledger.add_message("s", "user", " ".join(words))
    (hit,) = ledger.search_messages("needle")
    assert "[needle]" in hit.snippet
    assert len(hit.snippet) < 200
    assert "w0 " not in hit.snippet and "w199" not in hit.snippet


def test_hits_are_ranked_best_first(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "one error among many other words in a fairly long sentence about little")
    ledger.add_message("s", "user", "error error error")
    ledger.add_message("s", "user", "no match here")
    ledger.add_message("s", "user", "an error and some words")
    hits = ledger.search_messages("error")
    assert [h.version for h in hits] == [3, 5, 2]
    ranks = [h.rank for h in hits]
    assert ranks == sorted(ranks)  # lower is better
    assert ranks[0] < ranks[-1]


def test_porter_stemming_finds_other_forms_of_a_word(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "the job fails")
    ledger.add_message("s", "user", "it failed yesterday")
    ledger.add_message("s", "user", "a failing test")
    ledger.add_message("s", "user", "the tests pass")
    assert versions(ledger.search_messages("failing")) == {2, 3, 4}
    assert versions(ledger.search_messages("fail")) == {2, 3, 4}
    snippets = {h.version: h.snippet for h in ledger.search_messages("failing")}
    assert snippets[2] == "the job [fails]"
    assert snippets[3] == "it [failed] yesterday"
    assert versions(ledger.search_messages("tested")) == {4, 5}


def test_every_word_of_the_query_must_match(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "database timeout on write")
    ledger.add_message("s", "user", "database is fine")
    ledger.add_message("s", "user", "timeout in the network")
    assert versions(ledger.search_messages("database timeout")) == {2}
    assert versions(ledger.search_messages("timeout database")) == {2}
    assert versions(ledger.search_messages("database")) == {2, 3}
    assert ledger.search_messages("database network") == []


def test_search_is_case_insensitive(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "Kubernetes Pod CrashLoopBackOff")
    assert versions(ledger.search_messages("kubernetes crashloopbackoff")) == {2}
    assert versions(ledger.search_messages("POD")) == {2}


def test_search_is_case_insensitive_beyond_ascii(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "Toplantı İstanbul ofisinde")  # Turkish capital dotted I
    assert versions(ledger.search_messages("İSTANBUL")) == {2}
    assert versions(ledger.search_messages("istanbul")) == {2}
    assert versions(ledger.search_messages("ISTANBUL")) == {2}


def test_filters_by_session_and_by_role(ledger: Ledger) -> None:
    for sid in ("a", "b"):
        ledger.create_session(sid)
        ledger.add_message(sid, "user", "deploy the service")
        ledger.add_message(sid, "assistant", "deploy started")
        ledger.add_message(sid, "tool", "deploy log", tool_name="kubectl")
    assert len(ledger.search_messages("deploy")) == 6
    assert {(h.session_id, h.role) for h in ledger.search_messages("deploy", session_id="a")} == {
        ("a", "user"), ("a", "assistant"), ("a", "tool")
    }
    assert {(h.session_id, h.role) for h in ledger.search_messages("deploy", role="tool")} == {("a", "tool"), ("b", "tool")}
    hits = ledger.search_messages("deploy", session_id="b", role="assistant")
    assert [(h.session_id, h.role, h.snippet) for h in hits] == [("b", "assistant", "[deploy] started")]
    with pytest.raises(SessionNotFound):
        ledger.search_messages("deploy", session_id="missing")
    assert ledger.search_messages("deploy", role="system") == []


def test_limit_caps_the_number_of_hits_keeping_the_best(ledger: Ledger) -> None:
    ledger.create_session("s")
    for i in range(25):
        ledger.add_message("s", "user", f"alert number {i}")
    ledger.add_message("s", "user", "alert alert alert")
    assert len(ledger.search_messages("alert")) == 20  # the default
    assert len(ledger.search_messages("alert", limit=25)) == 25
    assert len(ledger.search_messages("alert", limit=100)) == 26
    (best,) = ledger.search_messages("alert", limit=1)
    assert best.snippet == "[alert] [alert] [alert]"


@pytest.mark.parametrize("limit", [0, -1, True, "5", 2.5])
def test_a_bad_limit_is_invalid_input(ledger: Ledger, limit: object) -> None:
    with pytest.raises(InvalidInput) as err:
        ledger.search_messages("x", limit=limit)  # type: ignore[arg-type]
    assert err.value.field == "limit"


@pytest.mark.parametrize("query", ["", " ", "  \t\n  "])
def test_an_empty_query_is_invalid_input(ledger: Ledger, query: str) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "anything")
    with pytest.raises(InvalidInput) as err:
        ledger.search_messages(query)
    assert err.value.field == "query"


@pytest.mark.parametrize("query", [None, 5, b"bytes", ["word"], "nul\x00byte"])
def test_a_query_that_is_not_text_is_invalid_input(ledger: Ledger, query: object) -> None:
    with pytest.raises(InvalidInput):
        ledger.search_messages(query)  # type: ignore[arg-type]


# -- user text is words, never FTS5 syntax ---------------------------------------------------------------

OPERATOR_MESSAGES = [
    "cats AND dogs",  # 2
    "cats OR dogs",  # 3
    "cats NOT dogs",  # 4
    "cats near dogs",  # 5
    "cats dogs",  # 6
    "category theory",  # 7
    "dogs chase cats",  # 8
    "content: cats are fine",  # 9
]
CATS = {2, 3, 4, 5, 6, 8, 9}
CATS_AND_DOGS = {2, 3, 4, 5, 6, 8}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cats AND dogs", {2}),  # "and" is a word the message must hold, not a conjunction
        ("cats OR dogs", {3}),
        ("cats NOT dogs", {4}),
        ("NEAR cats dogs", {5}),
        ("AND", {2}),
        ("or", {3}),
        ("NOT", {4}),
        ("NEAR", {5}),
        ("cat*", CATS),  # not a prefix query: "category" is not found
        ('"cats dogs"', CATS_AND_DOGS),  # not a phrase
        ('cats " dogs', CATS_AND_DOGS),  # an unbalanced quote
        ("^cats", CATS),  # not "first word"
        ("dogs^", CATS_AND_DOGS),
        ("cats:", CATS),
        ("content:cats", {9}),  # not a column filter
        ("(cats)", CATS),
        ("( cats )", CATS),
        ("((cats", CATS),
        ("- cats", CATS),
        ("cats + dogs", CATS_AND_DOGS),
        ("{cats}", CATS),
        ("'cats'", CATS),
    ],
)
def test_fts_operators_and_punctuation_are_searched_as_plain_words(
    ledger: Ledger, query: str, expected: set[int]
) -> None:
    ledger.create_session("s")
    for text in OPERATOR_MESSAGES:
        ledger.add_message("s", "user", text)
    assert versions(ledger.search_messages(query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cats,dogs", CATS_AND_DOGS),
        ("NEAR(cats dogs)", {5}),
        ("cats/dogs", CATS_AND_DOGS),
    ],
)
def test_punctuation_between_two_words_separates_them_like_a_space(
    ledger: Ledger, query: str, expected: set[int]
) -> None:
    ledger.create_session("s")
    for text in OPERATOR_MESSAGES:
        ledger.add_message("s", "user", text)
    assert versions(ledger.search_messages(query)) == expected


@pytest.mark.parametrize("query", ["*", "^", '"', '""', "()", ":", "-", "+", "NEAR(", "AND OR NOT", "'", ";", "*:^"])
def test_a_query_of_only_operators_never_raises_a_raw_error(ledger: Ledger, query: str) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "plain text")
    try:
        hits = ledger.search_messages(query)
    except InvalidInput as err:
        assert err.field == "query"
    else:
        assert hits == []


# -- unicode ------------------------------------------------------------------------------------------------


def test_unicode_messages_are_found_and_highlighted(ledger: Ledger) -> None:
    ledger.create_session("s")
    ledger.add_message("s", "user", "Привет, мир! Grüße aus MÜNCHEN.")
    ledger.add_message("s", "assistant", "東京 タワー は 高い")
    ledger.add_message("s", "user", "launch 🚀 the rocket")
    ledger.add_message("s", "user", "ordinary ascii text")
    assert [h.snippet for h in ledger.search_messages("мир")] == ["Привет, [мир]! Grüße aus MÜNCHEN."]
    assert versions(ledger.search_messages("ПРИВЕТ")) == {2}
    assert versions(ledger.search_messages("münchen grüße")) == {2}
    assert [h.snippet for h in ledger.search_messages("東京")] == ["[東京] タワー は 高い"]
    assert [h.snippet for h in ledger.search_messages("rocket")] == ["launch 🚀 the [rocket]"]
    assert ledger.search_messages("мир ordinary") == []


def test_search_sees_each_message_as_soon_as_it_is_added(ledger: Ledger) -> None:
    ledger.create_session("s")
    assert ledger.search_messages("fresh") == []
    version = ledger.add_message("s", "user", "a fresh message")
    assert [h.version for h in ledger.search_messages("fresh")] == [version]
    ledger.complete_session("s")
    assert [h.version for h in ledger.search_messages("fresh")] == [version]  # closed sessions stay searchable
