"""Full-text search over the conversation (FTS5 on ``messages.content``, porter stemming).

A query is written in the small language of ``projections.search_syntax``
(its ``SEARCH_SYNTAX_HELP``): words, all of which must match (stemmed:
"failing" finds "fails"), "quoted phrases", ``OR``, ``NOT`` or a leading
``-`` to leave a term out, ``prefix*`` and parentheses. Words are cut the way
the FTS5 tokenizer cuts text (letters and digits; anything else separates, so
``config.yaml`` is the phrase "config yaml"). The query is parsed into a tree
first; every term is then double-quoted before it reaches FTS5 (a prefix as
``"word"*``), so no user text is ever read as FTS5 syntax (column filters,
``NEAR``, ``^``), and a query that cannot be read is ``InvalidInput`` naming
the field ``query``.

Hits come best first, and a hit's ``rank`` is higher for a better match:
``-bm25`` on SQLite, ``ts_rank`` (normalised by the message's length) on
PostgreSQL; the two scales differ and only order hits of one search.

The index is declared as sqlite-utils writes one (``content=[messages]``),
so ``sqlite-utils``' and Datasette's ``detect_fts()`` find it (``?_search=``).

On PostgreSQL the index is a ``tsvector`` per message (``messages_fts``),
under English stemming without stop words (``projections.postgres``). Both
a message and a query are cut into words here, by the same rule as above,
and folded as FTS5's ``unicode61`` folds them (lower case, Latin letters
without their diacritics) before PostgreSQL stems them, so what is found
does not depend on the server's locale or its parser's idea of a word (it
would read "config.yaml" as one host name). The tree becomes a ``tsquery``
built in SQL from parameters: each word or phrase a ``phraseto_tsquery``
(plain text: never tsquery operators), a prefix a ``to_tsquery`` of the
folded word (letters and digits only) with ``:*``, joined with ``&&``,
``||``, ``!!`` and ``<->``. The snippet is ``ts_headline``'s, with the same
highlight and "…" where the message goes on.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import msgspec

from ledger import events as ev
from ledger.blocks import message_text
from ledger.errors import InvalidInput
from ledger.validation import check_page_size
from ledger.events import RecordedEvent

from .base import Connection, Projector, dialect_of
from .lineage import IN_CONVERSATION
from .postgres import SEARCH_DROP, SEARCH_SCHEMA, TEXT_CONFIG
from .search_syntax import SEARCH_SYNTAX_HELP as SEARCH_SYNTAX_HELP  # re-exported: the syntax's help text
from .search_syntax import WORD, AnyOf, Node, Term, parse

MAX_HITS = 1000


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One matching message: where it is, a ``snippet`` with the matches highlighted, and its ``rank``
    (higher is better: ``-bm25`` on SQLite, ``ts_rank`` on PostgreSQL; comparable within one search only)."""

    session_id: str
    position: int
    version: int
    role: str
    snippet: str
    rank: float


def words(text: object, field: str = "query") -> list[str]:
    """The words of a plain-text query, cut as the FTS5 tokenizer cuts (``InvalidInput`` when there are none)."""
    if not isinstance(text, str) or "\x00" in text:
        raise InvalidInput(f"{field} must be a string of words without NUL; got {text!r}", field=field)
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text (lone surrogate at {exc.start})", field=field) from exc
    found = WORD.findall(text)
    if not found:
        raise InvalidInput(f"{field} must hold at least one word (letters or digits)", field=field)
    return found


def fts_query(text: object) -> str:
    """A search query (``projections.search_syntax``) as an FTS5 ``MATCH`` expression, every term quoted."""
    return fts_match(parse(text))


def fts_match(node: Node) -> str:
    """A parsed query as an FTS5 expression: each term a double-quoted string (a prefix ``"word"*``), so no
    user text is read as FTS5 syntax; operators and parentheses come only from the tree."""
    if isinstance(node, Term):
        phrase = '"' + " ".join(node.words).replace('"', '""') + '"'
        return phrase + "*" if node.prefix else phrase
    if isinstance(node, AnyOf):
        return "(" + " OR ".join(fts_match(option) for option in node.options) + ")"
    include = " AND ".join(fts_match(child) for child in node.include)
    if not node.exclude:
        return f"({include})"
    exclude = " OR ".join(fts_match(child) for child in node.exclude)
    return f"(({include}) NOT ({exclude}))"


def _latin_folds() -> dict[int, int]:
    # Latin letters with diacritics -> their base letter, as FTS5's unicode61 tokenizer removes them.
    table = {}
    for code in (*range(0xC0, 0x250), *range(0x1E00, 0x1F00)):
        parts = unicodedata.normalize("NFD", chr(code))
        if len(parts) > 1 and all(unicodedata.combining(c) for c in parts[1:]):
            table[code] = ord(parts[0])
    return table


_FOLDS = _latin_folds()


def fold(text: str) -> str:
    """Text as the PostgreSQL search reads it: lower case, Latin letters without diacritics (as unicode61)."""
    # "İ" (capital I with a dot) lowers to "i" plus a combining dot in Python; unicode61 reads it as "i".
    return text.replace("\u0130", "I").lower().translate(_FOLDS)


_MAX_WORD_BYTES = 2047  # PostgreSQL leaves longer words out of a tsvector
_MAX_VECTOR_BYTES = 1_000_000  # and refuses a tsvector over 1 MiB


def document(content: str) -> str:
    """A message's words as PostgreSQL indexes them: cut and folded like a query's, without words too long
    for a ``tsvector``, and cut short before the ``tsvector`` could outgrow its limit (a huge message)."""
    text = fold(" ".join(WORD.findall(content)))
    if len(text) <= 40_000 and (len(text) <= 500 or max(map(len, text.split(" "))) <= 500):
        return text  # the common case: nothing near either limit (at most 4 bytes a character)
    kept: list[str] = []
    seen: dict[str, int] = {}
    size = 0
    for word in text.split(" "):
        length = len(word.encode())
        if length > _MAX_WORD_BYTES:
            continue
        count = seen.get(word, 0)
        size += (length + 8 if count == 0 else 0) + (2 if count < 256 else 0)  # lexeme, entry, positions
        if size > _MAX_VECTOR_BYTES:
            break
        seen[word] = count + 1
        kept.append(word)
    return " ".join(kept)


def pg_words(text: object, field: str = "query") -> list[str]:
    """The folded words of a plain-text query, each to be one ``phraseto_tsquery`` parameter."""
    return fold(" ".join(words(text, field))).split(" ")


_PHRASE = f"phraseto_tsquery('{TEXT_CONFIG}', ?)"
_PREFIX = f"to_tsquery('{TEXT_CONFIG}', ?::text || ':*')"


def _prefix_word(word: str) -> str:
    # The one user text that reaches to_tsquery, whose input is tsquery syntax: letters and digits only, so
    # never an operator, a quote or a weight (fold keeps letters and digits letters and digits).
    folded = fold(word)
    if not folded.isalnum():
        raise InvalidInput(f"query: the prefix {word!r}* is not letters and digits", field="query")
    return folded


def pg_tsquery(node: Node, args: list[object]) -> str:
    """A parsed query as a PostgreSQL ``tsquery`` expression, its user text appended to ``args`` as parameters:
    a word or phrase is ``phraseto_tsquery`` of its folded words, a prefix ``to_tsquery`` of its folded word
    with ``:*`` (after the rest of its phrase, ``<->``), joined with ``&&``, ``||`` and ``!!``."""
    if isinstance(node, Term):
        if not node.prefix:
            args.append(fold(" ".join(node.words)))
            return _PHRASE
        *before, last = node.words
        if not before:
            args.append(_prefix_word(last))
            return _PREFIX
        args.append(fold(" ".join(before)))
        args.append(_prefix_word(last))
        return f"({_PHRASE} <-> {_PREFIX})"
    if isinstance(node, AnyOf):
        return "(" + " || ".join(pg_tsquery(option, args) for option in node.options) + ")"
    include = " && ".join(pg_tsquery(child, args) for child in node.include)
    if not node.exclude:
        return f"({include})"
    exclude = " || ".join(pg_tsquery(child, args) for child in node.exclude)
    return f"({include} && !!({exclude}))"


#: A ``messages_fts`` row ``f`` whose message holds the word given as the parameter (PostgreSQL).
PG_MATCH = f"f.document @@ phraseto_tsquery('{TEXT_CONFIG}', ?)"
_PG_INDEX = f"INSERT INTO messages_fts (position, document) VALUES (?, to_tsvector('{TEXT_CONFIG}', ?))"


def _headline_options(before: str, after: str) -> str:
    # ts_headline's options: about 12 words around the matches (FTS5's snippet shows 12 tokens), quoted values.
    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    return f"StartSel={quoted(before)}, StopSel={quoted(after)}, MaxWords=12, MinWords=11, ShortWord=0"


class SearchPlan(msgspec.Struct, frozen=True):
    """A validated search: its SQL and parameters, before it touches the database."""

    sql: str
    args: tuple[object, ...]


def search_messages(conn: Connection, query: str, **options: Any) -> list[SearchHit]:
    """Messages matching ``query`` (``projections.search_syntax``), best first (see ``plan_search``)."""
    return run_search(conn, plan_search(query, dialect=dialect_of(conn), **options))


def run_search(conn: Connection, plan: SearchPlan) -> list[SearchHit]:
    """Run a planned search."""
    return [
        SearchHit(session_id=sid, position=pos, version=ver, role=r, snippet=snip, rank=rank)
        for sid, pos, ver, r, snip, rank in conn.execute(plan.sql, plan.args)
    ]


def _narrowed(args: list[object], session_id: str | None, role: str | None) -> str:
    """The WHERE clauses (and their parameters, appended to ``args``) for one session's effective conversation,
    inherited messages included, and one role; then the order and the limit's placeholder."""
    sql = ""
    if session_id is not None:
        sql += f" AND EXISTS (SELECT 1 FROM session_segments AS g WHERE g.session_id = ? AND {IN_CONVERSATION})"
        args.append(session_id)
    if role is not None:
        sql += " AND m.role = ?"
        args.append(role)
    return sql + " ORDER BY rank DESC, m.position LIMIT ?"


def plan_search(
    query: str,
    *,
    session_id: str | None = None,
    role: str | None = None,
    limit: int = 20,
    highlight: tuple[str, str] = ("[", "]"),
    dialect: str = "sqlite",
) -> SearchPlan:
    """Validate a search and build its query for the ``dialect``; raises ``InvalidInput`` naming the bad argument
    (``query``: the query cannot be read, and the message says why)."""
    check_page_size(limit, MAX_HITS)
    if not (isinstance(highlight, tuple) and len(highlight) == 2 and all(isinstance(h, str) for h in highlight)):
        raise InvalidInput("highlight must be a pair of strings (before, after)", field="highlight")
    if dialect == "postgres":
        return _pg_plan(query, session_id, role, limit, highlight)
    sql = (
        "SELECT m.session_id, m.position, m.version, m.role,"
        " snippet(messages_fts, 0, ?, ?, '…', 12), -bm25(messages_fts) AS rank"
        " FROM messages_fts JOIN messages AS m ON m.position = messages_fts.rowid WHERE messages_fts MATCH ?"
    )
    args: list[object] = [highlight[0], highlight[1], fts_query(query)]
    for column, value in (("session_id", session_id), ("role", role)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{column} must be a string; got {value!r}", field=column)
    sql += _narrowed(args, session_id, role)
    args.append(limit)
    return SearchPlan(sql, tuple(args))


def _pg_plan(
    query: str, session_id: str | None, role: str | None, limit: int, highlight: tuple[str, str]
) -> SearchPlan:
    args: list[object] = []
    matches = pg_tsquery(parse(query), args)
    for column, value in (("session_id", session_id), ("role", role)):
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            raise InvalidInput(f"{column} must be a string without NUL; got {value!r}", field=column)
    if "\x00" in highlight[0] + highlight[1]:
        raise InvalidInput("highlight must be a pair of strings without NUL", field="highlight")
    # The best ``limit`` hits first, then a headline for each of them only (twice: marked, and plain to see
    # whether it reaches the message's start and end, where no "…" is due).
    sql = (
        "SELECT m.session_id, m.position, m.version, m.role, q.query,"
        # (where a NUL was, the text column holds U+FFFD: a space there lets the headline see the words apart)
        " CASE WHEN m.content_exact IS NULL THEN m.content ELSE replace(m.content, '\ufffd', ' ') END AS content,"
        " ts_rank(f.document, q.query, 1)::DOUBLE PRECISION AS rank"
        f" FROM (SELECT {matches} AS query) AS q JOIN messages_fts AS f ON f.document @@ q.query"
        " JOIN messages AS m ON m.position = f.position WHERE TRUE"
    )
    sql += _narrowed(args, session_id, role)
    args += [limit, _headline_options(*highlight), _headline_options("", "")]
    sql = (
        "SELECT hit.session_id, hit.position, hit.version, hit.role,"
        " CASE WHEN left(hit.content, length(h.plain)) = h.plain THEN '' ELSE '…' END || h.marked"
        " || CASE WHEN right(hit.content, length(h.plain)) = h.plain THEN '' ELSE '…' END, hit.rank"
        f" FROM ({sql}) AS hit CROSS JOIN LATERAL (SELECT ts_headline('{TEXT_CONFIG}', hit.content, hit.query, ?)"
        f" AS marked, ts_headline('{TEXT_CONFIG}', hit.content, hit.query, ?) AS plain) AS h"
        " ORDER BY hit.rank DESC, hit.position"
    )
    return SearchPlan(sql, tuple(args))


class SearchProjector(Projector):
    """The FTS5 index ``messages_fts`` over ``messages.content`` (porter stemming, external content).

    Lazy: appends skip it, and it is brought level in bulk right before a
    search reads it, because indexing one message per commit costs more than
    the rest of the append together.
    """

    name = "search"
    version = 2  # 2: declared content=[messages], as sqlite-utils writes it, so detect_fts() finds it
    dialects = frozenset({"sqlite", "postgres"})
    builtin = True
    inline = False
    handles = frozenset({"message_added"})
    tables = ("messages_fts",)

    def create(self, db: Any) -> None:
        """Create the FTS5 table over the ``messages`` table's content (PostgreSQL: ``messages_fts`` and its
        text search configuration)."""
        if dialect_of(db) == "postgres":
            for statement in SEARCH_SCHEMA:
                db.execute(statement)
            return
        db.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content=[messages], content_rowid='position',"
            " tokenize='porter unicode61')"
        )

    def drop(self, db: Any) -> None:
        """Drop the index (PostgreSQL: with its text search configuration)."""
        if dialect_of(db) == "postgres":
            for statement in SEARCH_DROP:
                db.execute(statement)
            return
        super().drop(db)

    def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Index the content of new messages (purged ones have none left to index)."""
        if dialect_of(conn) == "postgres":
            conn.executemany(
                _PG_INDEX,
                [(e.position, document(message_text(e.payload.content, e.payload.blocks)))
                 for e in events if isinstance(e.payload, ev.MessageAdded)],
            )
            return
        conn.executemany(
            "INSERT INTO messages_fts (rowid, content) VALUES (?, ?)",
            [(e.position, message_text(e.payload.content, e.payload.blocks))
             for e in events if isinstance(e.payload, ev.MessageAdded)],
        )

    def purged(self, conn: Connection, session_ids: Sequence[str]) -> None:
        """Rebuild the whole index from ``messages`` (which the purge already emptied of those sessions):
        an external-content index keeps the removed text's tokens until it is rebuilt.

        PostgreSQL: delete those sessions' rows from ``messages_fts``, and index the messages it has not
        reached yet (the runner then counts the index level with the log, as after SQLite's rebuild).
        """
        if dialect_of(conn) == "postgres":
            conn.execute(
                "DELETE FROM messages_fts WHERE position IN (SELECT position FROM events WHERE session_id = ANY(?))",
                (list(session_ids),),
            )
            rows = conn.execute(
                "SELECT position, content FROM messages"
                " WHERE position > (SELECT COALESCE(MAX(position), 0) FROM messages_fts) ORDER BY position"
            ).fetchall()
            conn.executemany(_PG_INDEX, [(position, document(content)) for position, content in rows])
            return
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
