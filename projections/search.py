"""Full-text search over the conversation (FTS5 on ``messages.content``, porter stemming).

A query is plain words, all of which must match (stemmed: "failing" finds
"fails"). Words are cut the way the FTS5 tokenizer cuts text (letters and
digits; anything else separates), and each is quoted before it reaches FTS5,
so punctuation and FTS operators in user text are never interpreted.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlite_utils

from ledger import events as ev
from ledger.errors import InvalidInput
from ledger.validation import check_page_size
from ledger.events import RecordedEvent

from .base import Projector
from .lineage import IN_CONVERSATION

MAX_HITS = 1000


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One matching message: where it is, a ``snippet`` with the matches highlighted, and its ``rank`` (lower is better)."""

    session_id: str
    position: int
    version: int
    role: str
    snippet: str
    rank: float


_WORD = re.compile(r"[^\W_]+")


def words(text: object, field: str = "query") -> list[str]:
    """The words of a plain-text query, cut as the FTS5 tokenizer cuts (``InvalidInput`` when there are none)."""
    if not isinstance(text, str) or "\x00" in text:
        raise InvalidInput(f"{field} must be a string of words without NUL; got {text!r}", field=field)
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text (lone surrogate at {exc.start})", field=field) from exc
    found = _WORD.findall(text)
    if not found:
        raise InvalidInput(f"{field} must hold at least one word (letters or digits)", field=field)
    return found


def fts_query(text: object, field: str = "query") -> str:
    """Plain words as an FTS5 query that matches messages holding all of them."""
    return " ".join(f'"{word}"' for word in words(text, field))


class SearchPlan(msgspec.Struct, frozen=True):
    """A validated search: its SQL and parameters, before it touches the database."""

    sql: str
    args: tuple[object, ...]


def search_messages(conn: sqlite3.Connection, query: str, **options: Any) -> list[SearchHit]:
    """Messages matching every word of ``query``, best first (see ``plan_search``)."""
    return run_search(conn, plan_search(query, **options))


def run_search(conn: sqlite3.Connection, plan: SearchPlan) -> list[SearchHit]:
    """Run a planned search."""
    return [
        SearchHit(session_id=sid, position=pos, version=ver, role=r, snippet=snip, rank=rank)
        for sid, pos, ver, r, snip, rank in conn.execute(plan.sql, plan.args)
    ]


def plan_search(
    query: str,
    *,
    session_id: str | None = None,
    role: str | None = None,
    limit: int = 20,
    highlight: tuple[str, str] = ("[", "]"),
) -> SearchPlan:
    """Validate a search and build its query; raises ``InvalidInput`` naming the bad argument."""
    check_page_size(limit, MAX_HITS)
    if not (isinstance(highlight, tuple) and len(highlight) == 2 and all(isinstance(h, str) for h in highlight)):
        raise InvalidInput("highlight must be a pair of strings (before, after)", field="highlight")
    sql = (
        "SELECT m.session_id, m.position, m.version, m.role,"
        " snippet(messages_fts, 0, ?, ?, '…', 12), bm25(messages_fts) AS rank"
        " FROM messages_fts JOIN messages AS m ON m.position = messages_fts.rowid WHERE messages_fts MATCH ?"
    )
    args: list[object] = [highlight[0], highlight[1], fts_query(query)]
    for column, value in (("session_id", session_id), ("role", role)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{column} must be a string; got {value!r}", field=column)
    if session_id is not None:  # its effective conversation, inherited messages included
        sql += f" AND EXISTS (SELECT 1 FROM session_segments AS g WHERE g.session_id = ? AND {IN_CONVERSATION})"
        args.append(session_id)
    if role is not None:
        sql += " AND m.role = ?"
        args.append(role)
    sql += " ORDER BY rank, m.position LIMIT ?"
    args.append(limit)
    return SearchPlan(sql, tuple(args))


class SearchProjector(Projector):
    """The FTS5 index ``messages_fts`` over ``messages.content`` (porter stemming, external content).

    Lazy: appends skip it, and it is brought level in bulk right before a
    search reads it, because indexing one message per commit costs more than
    the rest of the append together.
    """

    name = "search"
    version = 1
    builtin = True
    inline = False
    handles = frozenset({"message_added"})
    tables = ("messages_fts",)

    def create(self, db: sqlite_utils.Database) -> None:
        """Create the FTS5 table over the ``messages`` table's content."""
        db.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='position',"
            " tokenize='porter unicode61')"
        )

    def apply(self, conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
        """Index the content of new messages (purged ones have none left to index)."""
        conn.executemany(
            "INSERT INTO messages_fts (rowid, content) VALUES (?, ?)",
            [(e.position, e.payload.content) for e in events if isinstance(e.payload, ev.MessageAdded)],
        )

    def purged(self, conn: sqlite3.Connection, session_ids: Sequence[str]) -> None:
        """Rebuild the whole index from ``messages`` (which the purge already emptied of those sessions):
        an external-content index keeps the removed text's tokens until it is rebuilt."""
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
