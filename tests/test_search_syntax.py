"""The search query language: words, "phrases", OR, NOT / -, prefix*, parentheses; safe on both backends.

The parser is pure (``projections.search_syntax``); the behaviour is specified through
``Ledger.search_messages`` on every backend (the ``ledger`` fixture: in memory, a file, PostgreSQL), and
checked against a model of the language on a corpus of every short sentence over a few words.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger import InvalidInput, Ledger, LimitExceeded, SearchHit
from projections.search_syntax import MAX_DEPTH, MAX_WORDS, SEARCH_SYNTAX_HELP, WORD, AllOf, AnyOf, Node, Term, parse
from tests.conftest import is_postgres


def versions(hits: list[SearchHit]) -> set[int]:
    return {h.version for h in hits}


def found(ledger: Ledger, query: str) -> set[int]:
    return versions(ledger.search_messages(query, limit=1000))


# -- the parser ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("cats", Term(("cats",))),
        ("cats dogs", AllOf((Term(("cats",)), Term(("dogs",))))),
        ("cats AND dogs", AllOf((Term(("cats",)), Term(("dogs",))))),
        ('"cats dogs"', Term(("cats", "dogs"))),
        ("cats OR dogs", AnyOf((Term(("cats",)), Term(("dogs",))))),
        ("cats NOT dogs", AllOf((Term(("cats",)),), (Term(("dogs",)),))),
        ("cats -dogs", AllOf((Term(("cats",)),), (Term(("dogs",)),))),
        ('cats -"big dogs"', AllOf((Term(("cats",)),), (Term(("big", "dogs")),))),
        ("cats -(dogs OR birds)", AllOf((Term(("cats",)),), (AnyOf((Term(("dogs",)), Term(("birds",)))),))),
        ("cat*", Term(("cat",), prefix=True)),
        ('"big ca"*', Term(("big", "ca"), prefix=True)),
        ("config.ya*", Term(("config", "ya"), prefix=True)),
        ("config.yaml", Term(("config", "yaml"))),
        ("e-mail", Term(("e", "mail"))),
        ("a b OR c", AnyOf((AllOf((Term(("a",)), Term(("b",)))), Term(("c",))))),  # OR binds loosest
        ("a (b OR c)", AllOf((Term(("a",)), AnyOf((Term(("b",)), Term(("c",))))))),
        ("((a))", Term(("a",))),
        ("cats or dogs", AllOf((Term(("cats",)), Term(("or",)), Term(("dogs",))))),  # lower case: words
        ("not and", AllOf((Term(("not",)), Term(("and",))))),
        ('"OR" "NOT"', AllOf((Term(("OR",)), Term(("NOT",))))),  # a quoted operator is a word
        ("NEAR(cats dogs)", AllOf((Term(("NEAR",)), AllOf((Term(("cats",)), Term(("dogs",))))))),
        ("content:cats", Term(("content", "cats"))),  # never a column filter
        ("^cats dogs^ {x} 'y' +z", AllOf(tuple(Term((w,)) for w in ("cats", "dogs", "x", "y", "z")))),
        ("- cats + dogs", AllOf((Term(("cats",)), Term(("dogs",))))),  # punctuation alone is left out
        ("*cat", Term(("cat",))),  # a star before a word is punctuation
        ("cat.*", Term(("cat",))),  # and so is one after punctuation
    ],
)
def test_a_query_parses_to_its_tree(query: str, tree: Node) -> None:
    assert parse(query) == tree


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "at least one word"),
        ("   ", "at least one word"),
        ("*", "at least one word"),
        ('""', "at least one word"),
        ('"', "never closed"),
        ('cats " dogs', "never closed"),
        ('"cats dogs', "never closed"),
        ("(cats", "( is never closed"),
        ("((cats)", "( is never closed"),
        ("cats)", ") has no opening"),
        (")", ") has no opening"),
        ("()", "empty parentheses"),
        ("cats ()", "empty parentheses"),
        ("OR", "OR needs"),
        ("OR cats", "OR needs"),
        ("cats OR", "OR needs"),
        ("cats OR OR dogs", "OR needs"),
        ("(cats OR) dogs", "OR needs"),
        ("AND", "AND needs"),
        ("AND cats", "AND needs"),
        ("cats AND", "AND needs"),
        ("cats AND OR dogs", "AND needs"),
        ("cats OR AND dogs", "OR needs"),
        ("NOT", "NOT must be followed"),
        ("cats NOT", "NOT must be followed"),
        ("cats NOT NOT dogs", "NOT must be followed"),
        ("cats NOT -dogs", "NOT must be followed"),
        ("cats NOT )", "NOT must be followed"),
        ("NOT cats", "only words to leave out"),
        ("-cats", "only words to leave out"),
        ("-cats -dogs", "only words to leave out"),
        ("cats OR -dogs", "only words to leave out"),
        ("cats (-dogs)", "only words to leave out"),
        ("-(cats dogs)", "only words to leave out"),
        ("AND OR NOT", "needs"),
        ("NEAR(", "( is never closed"),
    ],
)
def test_a_malformed_query_is_invalid_input_naming_the_query_and_what_is_wrong(query: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse(query)
    assert err.value.field == "query"
    assert says in str(err.value)


@pytest.mark.parametrize("query", [None, 5, b"cats", ["cats"], "nul\x00byte", "lone \ud800 surrogate"])
def test_a_query_that_is_not_text_is_invalid_input(query: object) -> None:
    with pytest.raises(InvalidInput) as err:
        parse(query)
    assert err.value.field == "query"


def test_parentheses_nest_up_to_the_limit() -> None:
    assert parse("(" * MAX_DEPTH + "cats" + ")" * MAX_DEPTH) == Term(("cats",))
    with pytest.raises(LimitExceeded) as err:
        parse("(" * (MAX_DEPTH + 1) + "cats" + ")" * (MAX_DEPTH + 1))
    assert (err.value.field, err.value.limit) == ("query", MAX_DEPTH)


def test_a_query_holds_at_most_the_word_limit() -> None:
    tree = parse(" ".join(["w"] * MAX_WORDS))
    assert isinstance(tree, AllOf) and len(tree.include) == MAX_WORDS
    with pytest.raises(LimitExceeded) as err:
        parse(" ".join(["w"] * (MAX_WORDS + 1)))
    assert (err.value.field, err.value.limit) == ("query", MAX_WORDS)


def test_the_help_is_short_and_every_example_in_it_is_a_valid_query() -> None:
    lines = SEARCH_SYNTAX_HELP.splitlines()
    assert all(len(line) <= 76 for line in lines)
    samples = [re.split(r"\s{2,}", line.strip())[0] for line in lines if line.startswith("  ")]
    assert len(samples) == 6
    for sample in samples:
        parse(sample)
    parse("error -disk")  # the other way to write NOT, given in the help
    for construct in ('"', "OR", "NOT", "*", "("):
        assert any(construct in sample for sample in samples), construct


def test_the_help_is_exported_where_search_lives() -> None:
    import projections.search

    assert projections.search.SEARCH_SYNTAX_HELP is SEARCH_SYNTAX_HELP


# -- behaviour, on every backend ------------------------------------------------------------------------------

MESSAGES = [
    "tick tock goes the clock",  # 2
    "all tests passed",  # 3
    "the server failed",  # 4
    "restart the service",  # 5
    "passed the tick test",  # 6
    "disk full on the build machine",  # 7
    "the full disk was cleaned",  # 8
    "config.yaml is missing",  # 9
    "the yaml config is fine",  # 10
    "cats NEAR dogs",  # 11
    "content: cats",  # 12
    "or else",  # 13
]


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    ledger.create_session("s")
    for text in MESSAGES:
        ledger.add_message("s", "user", text)
    return ledger


def test_or_finds_messages_holding_either_word(filled: Ledger) -> None:
    assert found(filled, "tick OR passed") == {2, 3, 6}
    assert found(filled, "tick OR passed OR yaml") == {2, 3, 6, 9, 10}


def test_words_side_by_side_must_all_match_and_an_explicit_and_means_the_same(filled: Ledger) -> None:
    assert found(filled, "tick passed") == {6}
    assert found(filled, "tick AND passed") == {6}
    assert found(filled, "passed tick") == {6}


def test_not_and_a_leading_minus_leave_messages_out(filled: Ledger) -> None:
    assert found(filled, "tick NOT passed") == {2}
    assert found(filled, "tick -passed") == {2}
    assert found(filled, "passed -tick") == {3}
    assert found(filled, "disk -full") == set()
    assert found(filled, 'disk -"disk full"') == {8}
    assert found(filled, "the -(serv* OR disk)") == {2, 6, 10}


def test_a_phrase_needs_its_words_next_to_each_other_in_order(filled: Ledger) -> None:
    assert found(filled, '"disk full"') == {7}
    assert found(filled, '"full disk"') == {8}
    assert found(filled, "disk full") == {7, 8}
    assert found(filled, '"tests passed"') == {3}
    assert found(filled, '"passed tests"') == set()


def test_a_word_with_punctuation_inside_is_the_phrase_of_its_parts(filled: Ledger) -> None:
    assert found(filled, "config.yaml") == {9}
    assert found(filled, "yaml.config") == {10}
    assert found(filled, "config yaml") == {9, 10}


def test_a_prefix_finds_longer_words(filled: Ledger) -> None:
    assert found(filled, "service") == {5}
    assert found(filled, "serv*") == {4, 5}
    assert found(filled, "s*") == {4, 5}
    assert found(filled, "ya*") == {9, 10}
    assert found(filled, "config.ya*") == {9}  # the phrase "config ya"*
    assert found(filled, '"the serv"*') == {4, 5}
    assert found(filled, '"restart the s"*') == {5}
    assert found(filled, "tes* -tick") == {3}


def test_a_prefix_is_stemmed_like_a_word(filled: Ledger) -> None:
    assert found(filled, "failing*") == {4}  # "fail"*: finds "failed"


def test_parentheses_group(filled: Ledger) -> None:
    assert found(filled, "(tick OR restart) the") == {2, 5, 6}
    assert found(filled, "(tick OR restart) tock") == {2}
    assert found(filled, "tick OR restart tock") == {2, 6}  # OR joins groups of words: tick, or restart and tock
    assert found(filled, "tick OR (restart service)") == {2, 5, 6}
    assert found(filled, "(tick OR disk) (passed OR full)") == {6, 7, 8}
    assert found(filled, "((tick))") == {2, 6}


def test_lower_case_operators_are_words_and_a_quoted_operator_is_searched_as_a_word(filled: Ledger) -> None:
    assert found(filled, "or else") == {13}
    assert found(filled, "tick or passed") == set()  # three words, "or" among them
    assert found(filled, '"OR"') == {13}
    assert found(filled, 'else "NOT"') == set()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("NEAR(cats dogs)", {11}),  # not FTS5's NEAR group: three words
        ("NEAR(cats, dogs, 2)", set()),  # "2" is a word no message holds
        ("content:cats", {12}),  # not a column filter: the phrase "content cats"
        ("content : cats", {12}),
        ("^cats", {11, 12}),  # not "first word"
        ("cats^", {11, 12}),
        ("cats + dogs", {11}),
        ("{content} cats", {12}),
        ("'cats'", {11, 12}),
        ("cats;", {11, 12}),
        ("c:a*", set()),  # the phrase "c a"*
    ],
)
def test_fts5_syntax_in_user_text_is_searched_as_text(filled: Ledger, query: str, expected: set[int]) -> None:
    assert found(filled, query) == expected


@pytest.mark.parametrize(
    "query", ["tick OR", "NOT tick", "-tick", '"tick', "(tick", "tick)", "()", "AND", "tick NOT NOT tock", "NEAR("]
)
def test_a_malformed_query_raises_invalid_input_on_every_backend(filled: Ledger, query: str) -> None:
    with pytest.raises(InvalidInput) as err:
        filled.search_messages(query)
    assert err.value.field == "query"


def test_rank_is_higher_for_a_better_match_and_hits_come_best_first(filled: Ledger) -> None:
    hits = filled.search_messages("tick OR passed")
    assert hits[0].version == 6  # the one message holding both words
    ranks = [h.rank for h in hits]
    assert ranks == sorted(ranks, reverse=True)
    assert ranks[0] > ranks[-1]


def test_an_excluded_word_is_not_highlighted(filled: Ledger) -> None:
    assert [h.snippet for h in filled.search_messages("clock -passed")] == ["tick tock goes the [clock]"]
    (phrase,) = filled.search_messages('"disk full"')
    assert phrase.snippet.startswith("[disk") and "full] on the build machine" in phrase.snippet


@pytest.mark.parametrize("shape", ["(x{k} OR clock NOT {q})", "(tock -x{k} OR the AND {q} -y{k})", "-(x{k} OR {q}) tick"])
def test_the_deepest_allowed_query_runs_on_every_backend(filled: Ledger, shape: str) -> None:
    query = "tick"
    for k in range(MAX_DEPTH):
        query = shape.format(k=k, q=query)
    if not query.startswith("("):
        query = f"the {query}"
    tree = parse(query)
    expected = {n for n, text in enumerate(MESSAGES, 2) if _matches(tree, WORD.findall(text.lower()))}
    assert found(filled, query) == expected


def test_a_query_at_the_word_limit_runs_on_every_backend(filled: Ledger) -> None:
    assert found(filled, " OR ".join(["tick"] * (MAX_WORDS - 1) + ["passed*"])) == {2, 3, 6}


# -- the language against a model of it ---------------------------------------------------------------------

VOCABULARY = ("cat", "dog", "fish", "bird", "cow")  # each its own stem, in both stemmers
CORPUS = [" ".join(words) for n in (1, 2, 3) for words in itertools.product(VOCABULARY, repeat=n)]


def _matches(node: Node, words: list[str]) -> bool:
    """The model: what a query tree means for a message of these words."""
    if isinstance(node, Term):
        *head, last = node.words
        n = len(node.words)
        return any(
            words[i:i + n - 1] == head and (words[i + n - 1].startswith(last) if node.prefix else words[i + n - 1] == last)
            for i in range(len(words) - n + 1)
        )
    if isinstance(node, AnyOf):
        return any(_matches(option, words) for option in node.options)
    return all(_matches(c, words) for c in node.include) and not any(_matches(c, words) for c in node.exclude)


def _render(node: Node, draw: Callable[[st.SearchStrategy[bool]], bool]) -> str:
    """A tree as a user could write it (each group in parentheses; AND or a space; NOT or -)."""
    if isinstance(node, Term):
        text = " ".join(node.words)
        if len(node.words) > 1:
            text = f'"{text}"'
        return text + "*" if node.prefix else text

    def child(c: Node) -> str:
        return _render(c, draw) if isinstance(c, Term) else f"({_render(c, draw)})"

    if isinstance(node, AnyOf):
        return " OR ".join(child(option) for option in node.options)
    parts = [child(c) for c in node.include]
    text = (" AND " if draw(st.booleans()) else " ").join(parts)
    for c in node.exclude:
        text += (" NOT " if draw(st.booleans()) else " -") + child(c)
    return text


prefixes = st.builds(lambda w, n: w[:n], st.sampled_from(VOCABULARY), st.integers(1, 4))
terms = st.one_of(
    st.builds(lambda w: Term((w,)), st.sampled_from(VOCABULARY)),
    st.builds(lambda p: Term((p,), prefix=True), prefixes),
    st.builds(lambda ws: Term(tuple(ws)), st.lists(st.sampled_from(VOCABULARY), min_size=2, max_size=3)),
    st.builds(lambda w, p: Term((w, p), prefix=True), st.sampled_from(VOCABULARY), prefixes),
)
trees = st.recursive(
    terms,
    lambda children: st.one_of(
        st.builds(lambda i, e: AllOf(tuple(i), tuple(e)), st.lists(children, min_size=1, max_size=3),
                  st.lists(children, max_size=2)),
        st.builds(lambda o: AnyOf(tuple(o)), st.lists(children, min_size=2, max_size=3)),
    ),
    max_leaves=6,
)


@pytest.fixture
def corpus(ledger: Ledger) -> Iterator[Ledger]:
    ledger.create_session("s")
    with ledger.batch():
        for text in CORPUS:
            ledger.add_message("s", "user", text)
    yield ledger


MODEL_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@MODEL_SETTINGS
@given(data=st.data())
def test_a_search_finds_exactly_the_messages_the_query_means(corpus: Ledger, data: st.DataObject) -> None:
    tree = data.draw(trees)
    text = _render(tree, data.draw)
    expected = {n for n, message in enumerate(CORPUS, 2) if _matches(tree, message.split())}
    assert found(corpus, text) == expected, text


# -- no query reaches the database as anything but text --------------------------------------------------------

NASTY = ['"', "'", "(", ")", "*", "-", "+", "^", ":", ";", "\\", "%", "?", "$1", "&", "|", "!", "<->", "<", ">", "@@",
         "::", "NEAR", "NEAR(", "AND", "OR", "NOT", "content:", "{", "}", "--", "/*", "*/", "E'", "\t", "\n",
         "tsquery", "DROP TABLE events", "cat", "dog", "a1", "é", "İ", "東京", "x" * 3000]
queries = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(NASTY), max_size=12).map(" ".join),
    st.lists(st.sampled_from(NASTY), max_size=12).map("".join),
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=queries)
@example(query="x" * 3000 + "*")  # a prefix longer than PostgreSQL keeps a word
@example(query='"' + "y " * 999 + 'y"*')
@example(query="cat*:* & dog:A | !fish <-> bird")  # tsquery syntax
@example(query="content:cat* NEAR(cat dog, 1) ^cat {content}: dog")  # FTS5 syntax
@example(query="cat'); DROP TABLE events; --")
def test_any_text_as_a_query_either_is_invalid_input_or_searches(corpus: Ledger, query: str) -> None:
    try:
        hits = corpus.search_messages(query, limit=1000)
    except InvalidInput as err:
        assert err.field == "query"
    else:
        assert all(isinstance(h, SearchHit) for h in hits)
        if not is_postgres(corpus):
            assert versions(hits) <= set(range(2, len(CORPUS) + 2))
