"""search_messages: ranked full-text hits over every conversation (the query language itself: test_search_syntax)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from ledger import InvalidInput, Ledger, SearchHit, SessionNotFound
from tests.conftest import check_search_index, raw_sql


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
    assert ranks == sorted(ranks, reverse=True)  # higher is better
    assert ranks[0] > ranks[-1]
    assert all(rank > 0 for rank in ranks)


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


# -- user text is the query language, never FTS5 syntax ------------------------------------------------------

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
        ("cats AND dogs", CATS_AND_DOGS),  # AND in capitals joins, as a space does
        ("cats and dogs", {2}),  # in lower case it is a word the message must hold
        ("cats OR dogs", CATS),
        ("cats or dogs", {3}),
        ("cats NOT dogs", {9}),
        ("cats not dogs", {4}),
        ("NEAR cats dogs", {5}),  # NEAR is no operator here: a word
        ("or", {3}),
        ("NEAR", {5}),
        ("cat*", CATS | {7}),  # a prefix: "category" too
        ('"cats dogs"', {6}),  # a phrase
        ('"dogs cats"', set()),
        ("^cats", CATS),  # not "first word"
        ("dogs^", CATS_AND_DOGS),
        ("cats:", CATS),
        ("content:cats", {9}),  # not a column filter: the phrase "content cats"
        ("(cats)", CATS),
        ("( cats )", CATS),
        ("- cats", CATS),  # a lone minus is punctuation
        ("cats + dogs", CATS_AND_DOGS),
        ("{cats}", CATS),
        ("'cats'", CATS),
    ],
)
def test_fts_operators_and_punctuation_in_user_text_never_reach_fts5(
    ledger: Ledger, query: str, expected: set[int]
) -> None:
    ledger.create_session("s")
    for text in OPERATOR_MESSAGES:
        ledger.add_message("s", "user", text)
    assert versions(ledger.search_messages(query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cats,dogs", {6}),
        ("cats/dogs", {6}),
        ("dogs.cats", set()),
        ("NEAR(cats dogs)", {5}),  # a word and a group, not FTS5's NEAR
    ],
)
def test_punctuation_between_two_words_makes_them_a_phrase(ledger: Ledger, query: str, expected: set[int]) -> None:
    ledger.create_session("s")
    for text in OPERATOR_MESSAGES:
        ledger.add_message("s", "user", text)
    assert versions(ledger.search_messages(query)) == expected


@pytest.mark.parametrize("query", ["*", "^", '"', '""', "()", ":", "-", "+", "NEAR(", "AND OR NOT", "'", ";", "*:^",
                                   "AND", "NOT", 'cats " dogs', "((cats"])
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


# -- SQL tools: sqlite-utils and Datasette find the index ---------------------------------------------------------


def _file_ledger_with_messages(path: Path) -> None:
    with Ledger(path) as led:
        led.create_session("s")
        led.add_message("s", "user", "the build failed")
        led.add_message("s", "assistant", "retry the deploy")
        led.add_message("s", "user", "all green now")
    # closing a ledger that appended brings the index level, so SQL tools see every message


@contextlib.contextmanager
def opened(path: Path) -> Iterator[sqlite_utils.Database]:
    """The file as a SQL tool opens it (sqlite-utils; Datasette finds the index the same way)."""
    db = sqlite_utils.Database(path)
    try:
        yield db
    finally:
        db.close()


def test_sqlite_utils_detects_the_messages_search_index(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _file_ledger_with_messages(path)
    with opened(path) as db:
        assert db.table("messages").detect_fts() == "messages_fts"
        assert db.table("messages_fts").virtual_table_using == "FTS5"


def test_a_sqlite_utils_search_of_messages_returns_only_the_matching_rows(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _file_ledger_with_messages(path)
    with opened(path) as db:
        assert [row["content"] for row in db.table("messages").search("deploy")] == ["retry the deploy"]
        assert [row["content"] for row in db.table("messages").search("failing")] == ["the build failed"]  # stemmed
        assert list(db.table("messages").search("nowhere")) == []


def test_datasette_search_semantics_return_only_the_matching_messages(tmp_path: Path) -> None:
    # What Datasette runs for /db/messages?_search=...: the table found by detect_fts, matched on rowid.
    path = tmp_path / "l.db"
    _file_ledger_with_messages(path)
    with opened(path) as db:
        fts = db.table("messages").detect_fts()
        assert fts is not None
        sql = f"SELECT content FROM messages WHERE rowid IN (SELECT rowid FROM [{fts}] WHERE [{fts}] MATCH :search)"
        assert [row[0] for row in db.execute(sql, {"search": '"green"'})] == ["all green now"]
        assert [row[0] for row in db.execute(sql, {"search": '"the"'})] == ["the build failed", "retry the deploy"]


OLD_DECLARATION = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='position',"
    " tokenize='porter unicode61')"
)


def test_a_file_whose_index_was_declared_the_old_way_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _file_ledger_with_messages(path)
    # As a ledger written before the index's version 2 has it: content='messages' (which detect_fts misses).
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("DROP TABLE messages_fts")
        raw.execute(OLD_DECLARATION)
        raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
        raw.execute("UPDATE projector_positions SET version = 1 WHERE name = 'search'")
    with opened(path) as db:
        assert db.table("messages").detect_fts() is None
    with Ledger(path) as led:
        with opened(path) as db:
            assert db.table("messages").detect_fts() == "messages_fts"
        assert [h.snippet for h in led.search_messages("deploy")] == ["retry the [deploy]"]
        check_search_index(led)
    with opened(path) as db:
        assert db.table("messages").detect_fts() == "messages_fts"
        assert [row["content"] for row in db.table("messages").search("green")] == ["all green now"]


def test_an_index_of_an_older_version_is_rebuilt_on_open_on_every_backend(ledger_path: str) -> None:
    with Ledger(ledger_path) as led:
        led.create_session("s")
        led.add_message("s", "user", "the build failed")
        led.add_message("s", "user", "all green now")
        assert versions(led.search_messages("green")) == {3}
        with raw_sql(led, write=True) as raw:
            raw.execute("UPDATE projector_positions SET version = 1 WHERE name = 'search'")
    with Ledger(ledger_path) as led:
        assert versions(led.search_messages("green OR build")) == {2, 3}
        check_search_index(led)
        with raw_sql(led) as raw:
            assert raw.execute("SELECT version FROM projector_positions WHERE name = 'search'").fetchone()[0] == 2
