"""The search query language: what a user may type into ``search_messages`` (and ``ledger search``).

The syntax is ``SEARCH_SYNTAX_HELP`` below (``ledger search --help`` shows it).

A word is letters and digits (cut as FTS5's ``unicode61`` tokenizer cuts), so
``config.yaml`` is the phrase of its parts; a lone ``-`` or other punctuation
is left out. Only a ``-`` that starts a term excludes it (``e-mail`` is the
phrase "e mail"). A prefix is stemmed like a word, so a long one may miss
forms its stem does not start (FTS5's Porter reads ``deploy*`` as ``deploi*``,
which misses "deployment"; ``deplo*`` finds both). Parentheses nest at most
``MAX_DEPTH`` deep and a query holds at most ``MAX_WORDS`` words
(``LimitExceeded`` beyond).

:func:`parse` turns the text into a small tree (:class:`Term`, :class:`AllOf`,
:class:`AnyOf`) and nothing else: it never builds SQL. ``projections.search``
compiles the tree for each backend, every term quoted (FTS5) or passed as a
parameter (PostgreSQL), so no user text is ever read as FTS5 or tsquery syntax.
A query that cannot be read (an unbalanced quote or parenthesis, an operator
with nothing on one side, only excluded terms, nothing to search for) raises
``InvalidInput`` with ``field="query"`` and says what is wrong.
"""

from __future__ import annotations

import re
from typing import Union

import msgspec

from ledger.errors import InvalidInput, LimitExceeded

#: Help text for the query syntax, one line per construct (the command line shows it in ``search --help``).
SEARCH_SYNTAX_HELP = """\
Query syntax:
  error timeout      both words, in any order (AND may also be written)
  "disk full"        the exact phrase
  error OR warning   either word (OR in capitals)
  error NOT disk     error without disk; also: error -disk
  build*             words starting with build
  (a OR b) c         parentheses group
Words are stemmed (fail finds failing) and case-insensitive; punctuation
separates words, so config.yaml means "config yaml". Lower-case or, and,
not are plain words; quote an operator to search for it ("OR").
Hits come best first: a higher rank is a better match."""

#: A word as the FTS5 tokenizer cuts text: letters and digits (anything else separates words).
WORD = re.compile(r"[^\W_]+")

MAX_DEPTH = 10  # parentheses nested deeper are refused (FTS5's expression parser has a small stack)
MAX_WORDS = 1000  # words in one query (PostgreSQL takes each term as a parameter, at most 65535)

_SPECIAL = frozenset('()"')
_PREFIX = re.compile(r"[^\W_]\*+$")


class Term(msgspec.Struct, frozen=True):
    """One word or phrase: its ``words`` in order (as the user wrote them, not yet folded), the last of them
    a prefix when ``prefix`` (``deploy*``, ``"disk fu"*``)."""

    words: tuple[str, ...]
    prefix: bool = False


class AllOf(msgspec.Struct, frozen=True):
    """Messages matching every one of ``include`` and none of ``exclude`` (``include`` is never empty)."""

    include: tuple[Node, ...]
    exclude: tuple[Node, ...] = ()


class AnyOf(msgspec.Struct, frozen=True):
    """Messages matching at least one of ``options`` (two or more)."""

    options: tuple[Node, ...]


Node = Union[Term, AllOf, AnyOf]


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"query: {message}", field="query")


class _Token(msgspec.Struct, frozen=True):
    kind: str  # "term", "(", ")", "OR", "AND", "NOT"
    text: str  # what the user wrote (for messages)
    term: Term | None = None


_KEYWORDS = frozenset({"OR", "AND", "NOT"})


def _term(text: str, quoted: bool, prefix: bool) -> Term | None:
    found = tuple(WORD.findall(text))
    if not found:
        return None
    return Term(found, prefix and (quoted or bool(_PREFIX.search(text))))


def _tokens(text: str) -> list[_Token]:
    """Cut a query into terms, parentheses and operators (``InvalidInput`` for an unbalanced quote)."""
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            out.append(_Token(char, char))
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise _invalid(f'a quote (") opened at character {i + 1} is never closed')
            prefix = end + 1 < n and text[end + 1] == "*"
            term = _term(text[i + 1:end], True, prefix)
            if term is not None:  # a phrase of punctuation only is left out, as punctuation is
                out.append(_Token("term", text[i:end + 1 + prefix], term))
            i = end + 1
            while i < n and text[i] == "*":
                i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            word = text[start:i]
            if word in _KEYWORDS:
                out.append(_Token(word, word))
                continue
            if word.startswith("-"):
                rest = word.lstrip("-")
                follows = text[i] if i < n else ""
                if (rest and WORD.search(rest)) or (not rest and follows in ('(', '"')):
                    out.append(_Token("NOT", "-"))
                    word = rest
            term = _term(word, False, word.endswith("*"))
            if term is not None:  # punctuation alone separates words and is otherwise left out
                out.append(_Token("term", word, term))
    return out


class _Parser:
    """Recursive descent over the tokens: ``or := and (OR and)*``, ``and := unary ([AND] unary)*``,
    ``unary := (NOT | -) primary | primary``, ``primary := term | ( or )``."""

    def __init__(self, found: list[_Token]) -> None:
        self.tokens = found
        self.at = 0

    def peek(self) -> str:
        return self.tokens[self.at].kind if self.at < len(self.tokens) else ""

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.any(0)
        if self.at < len(self.tokens):  # only a ")" stops the top level early
            raise _invalid("a closing parenthesis ) has no opening one")
        return node

    def any(self, depth: int) -> Node:
        options = [self.all(depth, first=True)]
        while self.peek() == "OR":
            self.take()
            if self.peek() in ("", ")", "OR", "AND"):
                raise _invalid("OR needs a word, phrase or group on both sides")
            options.append(self.all(depth, first=False))
        return options[0] if len(options) == 1 else AnyOf(tuple(options))

    def all(self, depth: int, *, first: bool) -> Node:
        include: list[Node] = []
        exclude: list[Node] = []
        while True:
            kind = self.peek()
            if kind in ("", ")", "OR"):
                break
            if kind == "AND":
                self.take()
                if not (include or exclude) or self.peek() in ("", ")", "OR", "AND"):
                    raise _invalid("AND needs a word, phrase or group on both sides")
                continue
            if kind == "NOT":
                written = self.take().text
                if self.peek() not in ("term", "("):
                    raise _invalid(f"{written} must be followed by a word, phrase or group to leave out")
                exclude.append(self.primary(depth))
            else:
                include.append(self.primary(depth))
        if not include and not exclude:
            if first and self.peek() == "OR":
                raise _invalid("OR needs a word, phrase or group on both sides")
            if self.peek() == ")" and depth > 0:
                raise _invalid("empty parentheses ()")
            if self.peek() == ")":
                raise _invalid("a closing parenthesis ) has no opening one")
            raise _invalid("must hold at least one word (letters or digits)")
        if not include:
            raise _invalid("only words to leave out (NOT or -), nothing to search for: add a word to find")
        if not exclude and len(include) == 1:
            return include[0]
        return AllOf(tuple(include), tuple(exclude))

    def primary(self, depth: int) -> Node:
        token = self.take()
        if token.term is not None:
            return token.term
        # an opening parenthesis (the callers check that a term or "(" is next)
        if depth >= MAX_DEPTH:
            raise LimitExceeded(f"query: parentheses nest more than {MAX_DEPTH} deep", field="query", limit=MAX_DEPTH)
        if self.peek() == ")":
            raise _invalid("empty parentheses ()")
        if not self.peek():
            raise _invalid("an opening parenthesis ( is never closed")
        node = self.any(depth + 1)
        if self.peek() != ")":
            raise _invalid("an opening parenthesis ( is never closed")
        self.take()
        return node


def parse(text: object) -> Node:
    """The query as a tree of terms; ``InvalidInput`` (``field="query"``) saying what is wrong if it cannot be read."""
    if not isinstance(text, str) or "\x00" in text:
        raise InvalidInput(f"query must be a string of words without NUL; got {text!r}", field="query")
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"query is not valid Unicode text (lone surrogate at {exc.start})", field="query") from exc
    found = _tokens(text)
    count = sum(len(t.term.words) for t in found if t.term is not None)
    if count > MAX_WORDS:
        raise LimitExceeded(f"query: {count} words, more than {MAX_WORDS}", field="query", limit=MAX_WORDS)
    if not found:
        raise InvalidInput("query must hold at least one word (letters or digits)", field="query")
    return _Parser(found).parse()

